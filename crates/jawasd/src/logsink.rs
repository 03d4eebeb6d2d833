//! Where jawasd's own log lines go (stderr or `--log-file`), written so
//! that a slow or stopped reader never holds up the loop.
//!
//! Owns the log's descriptor, the lines the reader has not taken yet, and
//! the count of lines dropped when those passed `MAX_PENDING`. Invariants:
//! - **A write never blocks**: a pipe or terminal on stderr is reopened
//!   through /proc/self/fd/2 as a new open file description with
//!   O_NONBLOCK (engines that share jawasd's stderr keep a blocking one);
//!   a socket (journald's stream) is written with MSG_DONTWAIT; a regular
//!   file is written as is (writes to files do not wait for a reader).
//! - Memory is bounded: at most `MAX_PENDING` bytes wait; beyond that whole
//!   lines are dropped and counted, and once the backlog is written one
//!   line says how many were lost.
//! - `reopen` swaps the `--log-file` for a fresh open of the same path, so
//!   logrotate's rename-then-signal loses no line.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::Mutex;

/// Most log bytes waiting for a stalled reader.
pub const MAX_PENDING: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// write(2) on a descriptor of our own that is O_NONBLOCK (or a file).
    Write,
    /// send(2) with MSG_DONTWAIT.
    Socket,
}

struct Output {
    fd: OwnedFd,
    kind: Kind,
    /// `--log-file`, reopened on SIGHUP and SIGUSR1.
    path: Option<PathBuf>,
    pending: Vec<u8>,
    dropped: u64,
}

static OUTPUT: Mutex<Option<Output>> = Mutex::new(None);

/// Sends the log to stderr.
pub fn to_stderr() {
    let (fd, kind) = stderr_fd();
    install(fd, kind, None);
}

/// Sends the log to `path` (appending, created if missing).
pub fn to_file(path: PathBuf) -> io::Result<()> {
    let f = open(&path)?;
    install(f.into(), Kind::Write, Some(path));
    Ok(())
}

fn install(fd: OwnedFd, kind: Kind, path: Option<PathBuf>) {
    let out = Output {
        fd,
        kind,
        path,
        pending: Vec::new(),
        dropped: 0,
    };
    if let Ok(mut g) = OUTPUT.lock() {
        *g = Some(out);
    }
}

/// Opens a log file for appending, non-blocking: a path that is a pipe
/// (`/dev/stdout` in a container, a FIFO) then never holds up the loop,
/// its lines wait in `pending` like stderr's, and a FIFO without a reader
/// is an error at once (ENXIO) rather than an open that never returns.
pub fn open(path: &std::path::Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
}

/// A descriptor for stderr that writes without blocking.
fn stderr_fd() -> (OwnedFd, Kind) {
    let dup = || -> OwnedFd {
        // SAFETY: fcntl F_DUPFD_CLOEXEC on fd 2 (which `ensure_std_fds`
        // guarantees is open) returns a new descriptor we own, or -1.
        let fd = unsafe { libc::fcntl(2, libc::F_DUPFD_CLOEXEC, 3) };
        if fd < 0 {
            // No usable stderr: a /dev/null stands in.
            return File::options()
                .write(true)
                .open("/dev/null")
                .expect("/dev/null")
                .into();
        }
        // SAFETY: `fd` was just created and is owned by nobody else.
        unsafe { OwnedFd::from_raw_fd(fd) }
    };
    let Ok(meta) = File::from(dup()).metadata() else {
        return (dup(), Kind::Write);
    };
    let t = meta.file_type();
    if t.is_socket() {
        return (dup(), Kind::Socket);
    }
    if t.is_fifo() || t.is_char_device() {
        // A new open file description, so O_NONBLOCK is ours alone.
        let reopened = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/proc/self/fd/2");
        if let Ok(f) = reopened {
            return (f.into(), Kind::Write);
        }
    }
    (dup(), Kind::Write)
}

impl Output {
    /// Writes what the reader takes now; true when nothing is left.
    fn drain(&mut self) -> bool {
        while !self.pending.is_empty() {
            match raw_write(&self.fd, self.kind, &self.pending) {
                Ok(0) => return false,
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // WouldBlock: later. Any other error: the lines are lost
                // anyway; keeping them would only fill memory.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(_) => {
                    self.pending.clear();
                }
            }
        }
        if self.dropped > 0 {
            let line = format!(
                "{} jawasd warn log: {} lines dropped while the log's reader was not reading\n",
                crate::timefmt::now(crate::timefmt::zone()),
                std::mem::take(&mut self.dropped)
            );
            self.pending.extend_from_slice(line.as_bytes());
            return self.drain();
        }
        true
    }

    fn push(&mut self, buf: &[u8]) {
        self.drain();
        if self.pending.len() + buf.len() > MAX_PENDING {
            self.dropped += buf.iter().filter(|&&b| b == b'\n').count().max(1) as u64;
            return;
        }
        self.pending.extend_from_slice(buf);
        self.drain();
    }
}

fn raw_write(fd: &OwnedFd, kind: Kind, buf: &[u8]) -> io::Result<usize> {
    let r = match kind {
        Kind::Write => nix::unistd::write(fd, buf),
        Kind::Socket => nix::sys::socket::send(
            fd.as_raw_fd(),
            buf,
            nix::sys::socket::MsgFlags::MSG_DONTWAIT | nix::sys::socket::MsgFlags::MSG_NOSIGNAL,
        ),
    };
    r.map_err(io::Error::from)
}

/// Bytes waiting for the reader (the loop wakes to retry while any do).
pub fn pending() -> bool {
    OUTPUT
        .lock()
        .ok()
        .is_some_and(|g| g.as_ref().is_some_and(|o| !o.pending.is_empty()))
}

/// Retries writing the backlog.
pub fn flush() {
    if let Ok(mut g) = OUTPUT.lock() {
        if let Some(o) = g.as_mut() {
            o.drain();
        }
    }
}

/// Opens `--log-file` again (after logrotate renamed it); the old file
/// gets what is pending first. Err names the file and the reason.
pub fn reopen() -> Result<(), String> {
    let Ok(mut g) = OUTPUT.lock() else {
        return Ok(());
    };
    let Some(o) = g.as_mut() else { return Ok(()) };
    let Some(path) = o.path.clone() else {
        return Ok(());
    };
    o.drain();
    match open(&path) {
        Ok(f) => {
            o.fd = f.into();
            Ok(())
        }
        Err(e) => {
            let why = format!(
                "unable to reopen log file {}: {}; still writing to the old one",
                path.display(),
                crate::errno_text(&e)
            );
            // The old file may be gone (its directory removed): say it
            // where someone can see it too.
            let line = format!("jawasd: {why}\n");
            // SAFETY: write(2) of a buffer we own to fd 2, which
            // `ensure_std_fds` keeps open; a failure is ignored.
            unsafe { libc::write(2, line.as_ptr().cast(), line.len()) };
            Err(why)
        }
    }
}

/// The logger's target: every formatted record goes through `push`.
pub struct Writer;

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Ok(mut g) = OUTPUT.lock() {
            if let Some(o) = g.as_mut() {
                o.push(buf);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stalled_pipe_costs_bounded_memory_and_is_counted() {
        let (r, w) = nix::unistd::pipe().unwrap();
        nix::fcntl::fcntl(
            w.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .unwrap();
        let mut o = Output {
            fd: w,
            kind: Kind::Write,
            path: None,
            pending: Vec::new(),
            dropped: 0,
        };
        let line = [b'x'; 99].iter().chain(b"\n").copied().collect::<Vec<u8>>();
        for _ in 0..10_000 {
            o.push(&line);
        }
        assert!(o.pending.len() <= MAX_PENDING);
        assert!(o.dropped > 0);
        let dropped = o.dropped;
        // The reader comes back: everything pending is written, then the count.
        let mut reader = File::from(r);
        let mut got = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        for _ in 0..100 {
            use std::io::Read;
            nix::fcntl::fcntl(
                reader.as_raw_fd(),
                nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
            )
            .unwrap();
            if let Ok(n) = reader.read(&mut buf) {
                got.extend_from_slice(&buf[..n]);
            }
            if o.drain() && o.pending.is_empty() {
                if let Ok(n) = reader.read(&mut buf) {
                    got.extend_from_slice(&buf[..n]);
                }
                break;
            }
        }
        let text = String::from_utf8(got).unwrap();
        assert!(
            text.ends_with(&format!(
                "log: {dropped} lines dropped while the log's reader was not reading\n"
            )),
            "{}",
            &text[text.len().saturating_sub(200)..]
        );
        assert_eq!(text.lines().count() as u64 + dropped, 10_000 + 1);
    }
}
