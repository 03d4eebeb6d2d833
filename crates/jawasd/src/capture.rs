//! Captured stderr: the bytes engines write to fd 2, cut into lines for
//! jawasd's log, each line with the pid that wrote it.
//!
//! Two shapes. An exec'd engine gets a pipe of its own (`Pipe`): what
//! comes out of it is that engine's. A zygote and every child it forks
//! share one Unix stream socket (`Shared`), the child's fd 2 inherited
//! from the zygote, so a connection costs no pipe, no descriptor passed
//! and no registration in the loop; jawasd's end has SO_PASSCRED, so each
//! read carries the writer's pid, and the kernel never joins the writes of
//! two processes into one read.
//!
//! Invariants: no byte is dropped (a line longer than `MAX_LINE` goes out
//! in pieces of that size); a partial line waits for its end, per writer,
//! until the writer is known to have ended or the capture ends.

#![forbid(unsafe_code)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{self, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    recvmsg, setsockopt, socketpair, sockopt, AddressFamily, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};

/// Longest line kept from an engine before it is cut.
pub const MAX_LINE: usize = 4096;
/// Bytes read from one capture per wakeup of the loop (in reads of at
/// most 16 KiB): an engine writing faster than jawasd logs must not keep
/// the loop there (epoll is level triggered, so the rest is read on the
/// next round). A shared capture returns one writer's bytes per read, so
/// it is bounded by bytes, not reads: the children of a busy zygote write
/// a short line each, and reading only a few per round would fill the
/// socket and block them in their last write, still counted as running.
const BUDGET: usize = 64 * 1024;
/// Writers with a partial line kept at most; past it every partial line is
/// logged as it is (a bound on memory, whatever the engines do). Also how
/// many ended writers are remembered.
const MAX_WRITERS: usize = 1024;

/// A line an engine wrote, and who wrote it.
#[derive(Debug, PartialEq, Eq)]
pub struct Line {
    pub pid: libc::pid_t,
    pub text: String,
}

/// Bytes in, complete lines out: one writer's partial line.
#[derive(Default, Debug)]
struct Splitter {
    partial: Vec<u8>,
}

impl Splitter {
    fn push(&mut self, pid: libc::pid_t, bytes: &[u8], out: &mut Vec<Line>) {
        self.partial.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(at) = self.partial[start..].iter().position(|&b| b == b'\n') {
            out.push(line(pid, &self.partial[start..start + at]));
            start += at + 1;
        }
        self.partial.drain(..start);
        while self.partial.len() > MAX_LINE {
            let piece: Vec<u8> = self.partial.drain(..MAX_LINE).collect();
            out.push(line(pid, &piece));
        }
    }

    fn finish(self, pid: libc::pid_t) -> Option<Line> {
        (!self.partial.is_empty()).then(|| line(pid, &self.partial))
    }
}

fn line(pid: libc::pid_t, bytes: &[u8]) -> Line {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    Line {
        pid,
        text: crate::escape(bytes, MAX_LINE),
    }
}

/// An exec'd engine's stderr pipe (the read end, non-blocking).
pub struct Pipe {
    fd: OwnedFd,
    pid: libc::pid_t,
    lines: Splitter,
}

impl Pipe {
    pub fn new(fd: OwnedFd, pid: libc::pid_t) -> Pipe {
        Pipe {
            fd,
            pid,
            lines: Splitter::default(),
        }
    }

    /// The lines waiting, and whether the pipe has ended (its last partial
    /// line is then among them).
    pub fn read(&mut self) -> (Vec<Line>, bool) {
        let mut out = Vec::new();
        let mut buf = [0u8; 16384];
        let mut budget = BUDGET;
        let eof = loop {
            if budget == 0 {
                break false;
            }
            match nix::unistd::read(self.fd.as_raw_fd(), &mut buf) {
                Ok(0) => break true,
                Ok(n) => {
                    self.lines.push(self.pid, &buf[..n], &mut out);
                    budget = budget.saturating_sub(n);
                }
                Err(Errno::EAGAIN) => break false,
                Err(Errno::EINTR) => continue,
                Err(_) => break true,
            }
        };
        if eof {
            out.extend(std::mem::take(&mut self.lines).finish(self.pid));
        }
        (out, eof)
    }
}

impl AsFd for Pipe {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The socket pair for a zygote's shared capture: (jawasd's end,
/// non-blocking, with SO_PASSCRED; the zygote's fd 2, blocking as a pipe
/// would be). Both close-on-exec: the spawner puts the zygote's end on fd
/// 2, which clears the flag there.
pub fn shared_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    fcntl(ours.as_raw_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
    setsockopt(&ours, sockopt::PassCred, &true)?;
    // Nothing is ever sent to the engines this way.
    nix::sys::socket::shutdown(ours.as_raw_fd(), nix::sys::socket::Shutdown::Write)?;
    Ok((ours, theirs))
}

/// A zygote's shared capture: jawasd's end, and each writer's partial line.
pub struct Shared {
    fd: OwnedFd,
    /// Whom bytes without a pid are logged as (the zygote).
    owner: libc::pid_t,
    /// Writers with a partial line (none kept empty).
    partial: HashMap<libc::pid_t, Splitter>,
    /// Writers known to have ended, most recent last (at most
    /// `MAX_WRITERS`): what they wrote may still be unread (their end is
    /// reported on another socket), and a partial line of theirs is
    /// logged as soon as it is read.
    gone: VecDeque<libc::pid_t>,
    gone_set: HashSet<libc::pid_t>,
}

impl Shared {
    pub fn new(fd: OwnedFd, owner: libc::pid_t) -> Shared {
        Shared {
            fd,
            owner,
            partial: HashMap::new(),
            gone: VecDeque::new(),
            gone_set: HashSet::new(),
        }
    }

    /// The lines waiting, and whether every writer is gone (every partial
    /// line is then among them).
    pub fn read(&mut self) -> (Vec<Line>, bool) {
        let mut out = Vec::new();
        let mut eof = false;
        let mut budget = BUDGET;
        while budget > 0 {
            match self.receive(&mut out) {
                Ok(n) if n > 0 => budget = budget.saturating_sub(n),
                Ok(_) => break,
                Err(_) => {
                    eof = true;
                    break;
                }
            }
        }
        if eof || self.partial.len() > MAX_WRITERS {
            out.extend(self.finish_all());
        }
        (out, eof)
    }

    /// One read: how many bytes came (0 when none are waiting), an error
    /// at the end (every writer gone, or a broken socket).
    fn receive(&mut self, out: &mut Vec<Line>) -> io::Result<usize> {
        let mut buf = [0u8; 16384];
        loop {
            // Room for the credentials only: descriptors an engine sends
            // along do not fit and are closed by the kernel, never kept.
            let mut space = nix::cmsg_space!(nix::sys::socket::UnixCredentials);
            let mut iov = [IoSliceMut::new(&mut buf)];
            let got = recvmsg::<()>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC,
            );
            let (n, pid) = match got {
                Ok(m) if m.bytes == 0 => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
                Ok(m) => {
                    let pid = m.cmsgs().ok().and_then(|mut c| {
                        c.find_map(|c| match c {
                            ControlMessageOwned::ScmCredentials(cred) => Some(cred.pid()),
                            _ => None,
                        })
                    });
                    (m.bytes, pid)
                }
                Err(Errno::EAGAIN) => return Ok(0),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            };
            // A writer outside jawasd's pid namespace reads as 0.
            let pid = pid.filter(|p| *p > 0).unwrap_or(self.owner);
            let mut lines = self.partial.remove(&pid).unwrap_or_default();
            lines.push(pid, &buf[..n], out);
            if self.gone_set.contains(&pid) {
                out.extend(lines.finish(pid));
            } else if !lines.partial.is_empty() {
                self.partial.insert(pid, lines);
            }
            return Ok(n);
        }
    }

    /// A writer ended: its partial line, once what it wrote before its end
    /// has been read (now when a partial line of its is waiting, else
    /// whenever its bytes are read).
    pub fn ended(&mut self, pid: libc::pid_t) -> Vec<Line> {
        if !self.partial.contains_key(&pid) {
            if self.gone.len() >= MAX_WRITERS {
                if let Some(old) = self.gone.pop_front() {
                    self.gone_set.remove(&old);
                }
            }
            if self.gone_set.insert(pid) {
                self.gone.push_back(pid);
            }
            return Vec::new();
        }
        let (mut out, _) = self.read();
        out.extend(self.partial.remove(&pid).and_then(|s| s.finish(pid)));
        out
    }

    fn finish_all(&mut self) -> Vec<Line> {
        let mut left: Vec<(libc::pid_t, Splitter)> = self.partial.drain().collect();
        left.sort_by_key(|(pid, _)| *pid);
        left.into_iter()
            .filter_map(|(pid, s)| s.finish(pid))
            .collect()
    }
}

impl AsFd for Shared {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    /// Runs `sh -c SCRIPT` with its stderr on a copy of `theirs`, to its
    /// end; its pid.
    fn writer(theirs: &impl AsFd, script: &str) -> libc::pid_t {
        let copy = theirs.as_fd().try_clone_to_owned().unwrap();
        let mut child = std::process::Command::new("sh")
            .args(["-c", script])
            .stderr(std::process::Stdio::from(copy))
            .spawn()
            .unwrap();
        assert!(child.wait().unwrap().success());
        child.id() as libc::pid_t
    }

    fn texts(lines: &[Line]) -> Vec<&str> {
        lines.iter().map(|l| l.text.as_str()).collect()
    }

    #[test]
    fn lines_are_cut_at_newlines_and_at_the_longest_line() {
        let mut s = Splitter::default();
        let mut out = Vec::new();
        s.push(7, b"one\r\ntw", &mut out);
        s.push(7, b"o\nthr", &mut out);
        assert_eq!(texts(&out), ["one", "two"]);
        let long = vec![b'x'; MAX_LINE + 10];
        out.clear();
        s.push(7, &long, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].text.len(), MAX_LINE);
        assert!(out[0].text.starts_with("thrxxx"));
        assert_eq!(s.finish(7).unwrap().text, "x".repeat(13));
    }

    #[test]
    fn one_read_takes_many_writers_lines() {
        // Each writer's bytes come in a read of their own: a round of the
        // loop must take many, or a busy zygote's children would block in
        // their last write with their connections still counted.
        let (ours, theirs) = shared_pair().unwrap();
        let mut shared = Shared::new(ours, 1);
        for i in 0..20 {
            writer(&theirs, &format!("echo writer{i} >&2"));
        }
        let (lines, eof) = shared.read();
        assert!(!eof);
        let mut got = texts(&lines);
        got.sort();
        let mut want: Vec<String> = (0..20).map(|i| format!("writer{i}")).collect();
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn writers_whose_lines_ended_are_not_kept() {
        // Only a partial line is state: many children that each wrote
        // whole lines leave nothing behind, so an end costs no read and
        // the bound on writers is not reached by them.
        let (ours, theirs) = shared_pair().unwrap();
        let mut shared = Shared::new(ours, 1);
        let done = writer(&theirs, "echo whole >&2");
        let partial = writer(&theirs, "printf half >&2");
        let (lines, _) = shared.read();
        assert_eq!(texts(&lines), ["whole"]);
        assert_eq!(shared.partial.len(), 1);
        assert!(shared.partial.contains_key(&partial));
        assert_eq!(shared.ended(done), Vec::new());
        assert_eq!(texts(&shared.ended(partial)), ["half"]);
        assert!(shared.partial.is_empty());
    }

    #[test]
    fn descriptors_sent_on_a_shared_capture_are_not_kept() {
        use nix::sys::socket::{sendmsg, ControlMessage};
        let (ours, theirs) = shared_pair().unwrap();
        let mut shared = Shared::new(ours, 1);
        // An engine sends the write end of a pipe along with a line.
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let fds = [w.as_raw_fd()];
        let iov = [std::io::IoSlice::new(b"with a descriptor\n")];
        let rights = [ControlMessage::ScmRights(&fds)];
        sendmsg::<()>(theirs.as_raw_fd(), &iov, &rights, MsgFlags::empty(), None).unwrap();
        drop(w);
        let (lines, eof) = shared.read();
        assert_eq!(texts(&lines), ["with a descriptor"]);
        assert!(!eof);
        // No copy of the write end stayed in this process: the read end
        // sees the end (a process starting alongside may hold a copy until
        // its exec, so the end is waited for).
        let mut p = [nix::poll::PollFd::new(
            r.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let ready = nix::poll::poll(&mut p, nix::poll::PollTimeout::from(2000u16)).unwrap();
        assert_eq!(ready, 1, "the pipe's write end is still open somewhere");
        let mut byte = [0u8; 1];
        assert_eq!(nix::unistd::read(r.as_raw_fd(), &mut byte).unwrap(), 0);
    }

    #[test]
    fn a_shared_capture_names_each_writer() {
        let (ours, theirs) = shared_pair().unwrap();
        let mut shared = Shared::new(ours, 1);
        let theirs = UnixStream::from(theirs);
        // This process writes half a line; a child writes a line and ends.
        (&theirs).write_all(b"parent sa").unwrap();
        let child = writer(&theirs, "printf 'child line\\nchild tail' >&2");
        (&theirs).write_all(b"ys\n").unwrap();
        let (lines, eof) = shared.read();
        assert!(!eof);
        let me = std::process::id() as libc::pid_t;
        assert!(lines.contains(&Line {
            pid: child,
            text: "child line".into()
        }));
        assert!(lines.contains(&Line {
            pid: me,
            text: "parent says".into()
        }));
        assert_eq!(
            shared.ended(child),
            vec![Line {
                pid: child,
                text: "child tail".into()
            }]
        );
        // An end reported before the writer's bytes are read.
        let late = writer(&theirs, "printf 'late' >&2");
        assert_eq!(shared.ended(late), Vec::new());
        let want = Line {
            pid: late,
            text: "late".into(),
        };
        assert_eq!(shared.read(), (vec![want], false));
        drop(theirs);
        // The end comes once no process holds the other end: a test
        // running alongside may be starting a process, whose copy of every
        // descriptor lasts until its exec.
        let mut ended = false;
        for _ in 0..200 {
            let (lines, eof) = shared.read();
            assert_eq!(lines, Vec::new());
            if eof {
                ended = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(ended, "no end after every writer was gone");
    }
}
