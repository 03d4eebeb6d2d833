//! The PROGRAM behind a socket: started with pipes in its own process
//! group (or, with --pty, on a pseudo-terminal in its own session), fed
//! messages on stdin (non-blocking, from a bounded queue the
//! pump flushes when the pipe has room), read on stdout as lines (or raw
//! chunks with --binary), and stopped so that nothing of it is left
//! running. Owns the child, its pipes and its process group.
//! Invariant: `finish` returns only once the group is gone or has been
//! sent SIGKILL.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tungstenite::Message;

use crate::pump::Backend;

/// Messages queued for stdin before the pump stops reading the client:
/// enough to absorb a burst, small enough to push back on a client the
/// program cannot keep up with.
const STDIN_QUEUE: usize = 16;

/// How the program's output becomes messages.
#[derive(Debug, Clone, Copy)]
pub struct Framing {
    pub binary: bool,
    /// Longest message sent; a longer line is sent in pieces of this size.
    pub max: usize,
    /// `--pty`: the program's stdin and stdout are a pseudo-terminal.
    pub pty: bool,
}

pub struct Program {
    child: Child,
    /// Non-blocking; `None` once closed (by us, or the program stopped
    /// reading it: then messages are dropped).
    stdin: Option<File>,
    /// Messages not yet written to stdin, oldest first; `written` bytes of
    /// the first one are.
    queue: VecDeque<Vec<u8>>,
    written: usize,
    stdout: Option<File>,
    framing: Framing,
    pending: Vec<u8>,
}

impl Program {
    /// Starts `argv` with `vars` added to this process's environment.
    pub fn start(
        argv: &[String],
        vars: &[(String, String)],
        framing: Framing,
    ) -> io::Result<Program> {
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]).envs(vars.iter().map(|(k, v)| (k, v)));
        let (child, stdin, stdout) = if framing.pty {
            spawn_on_pty(&mut cmd)?
        } else {
            let mut child = cmd
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .process_group(0)
                .spawn()?;
            let stdin = OwnedFd::from(child.stdin.take().expect("stdin was piped"));
            let stdout = OwnedFd::from(child.stdout.take().expect("stdout was piped"));
            (child, File::from(stdin), File::from(stdout))
        };
        // Only our end: the program's end of the pipe stays blocking. (A
        // terminal's master is one file for both: reads are non-blocking
        // too, which `read_output` allows for.)
        fcntl(stdin.as_raw_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).map_err(io::Error::from)?;
        Ok(Program {
            stdout: Some(stdout),
            child,
            stdin: Some(stdin),
            queue: VecDeque::new(),
            written: 0,
            framing,
            pending: Vec::new(),
        })
    }

    fn pgid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// Writes what is queued for stdin until it is written or `deadline`
    /// passes, then closes stdin; gives the program until `grace` after
    /// the start to exit, then SIGTERM to its group, then (`grace` later)
    /// SIGKILL. Returns the program's exit status, if it exited by itself.
    pub fn finish(&mut self, grace: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + grace;
        while !self.queue.is_empty() && self.stdin.is_some() {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(fd) = self.input_blocked() else {
                break;
            };
            let mut set = [PollFd::new(fd, PollFlags::POLLOUT)];
            if left.is_zero() || poll(&mut set, timeout(left)).is_err() {
                break;
            }
            self.write_input();
        }
        self.stdin = None;
        self.queue.clear();
        // The output is not read any more. (On a terminal, this closes the
        // master: the program's end hangs up, its stdin's end.)
        self.stdout = None;
        let status = self.wait(deadline.saturating_duration_since(Instant::now()));
        if self.group_alive() {
            let _ = killpg(self.pgid(), Signal::SIGTERM);
            let _ = self.wait(grace);
            let end = Instant::now() + grace;
            while self.group_alive() && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = killpg(self.pgid(), Signal::SIGKILL);
        }
        let _ = self.child.wait();
        status
    }

    /// The program's status if it exits within `limit`. Waits on a pidfd
    /// (woken at the exit, not polling); without one, polls every 10 ms.
    fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + limit;
        let pidfd = pidfd_open(self.child.id());
        loop {
            match self.child.try_wait() {
                Ok(Some(s)) => return Some(s),
                Ok(None) if Instant::now() < end => {}
                _ => return None,
            }
            let left = end.saturating_duration_since(Instant::now());
            match &pidfd {
                Some(fd) => {
                    let mut set = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
                    let _ = poll(&mut set, timeout(left));
                }
                None => std::thread::sleep(left.min(Duration::from_millis(10))),
            }
        }
    }

    fn group_alive(&self) -> bool {
        killpg(self.pgid(), None).is_ok()
    }
}

/// Spawns `cmd` with stdin and stdout on a new pseudo-terminal, as the
/// leader of a new session with the terminal as its controlling one (so
/// the program's stdio is line-buffered, as on a console). The terminal is
/// raw: no echo, no line editing or its 4 KiB line limit, no signals from
/// characters, no `\n` to `\r\n` translation. Returns the child and the
/// master twice (to write, to read).
fn spawn_on_pty(cmd: &mut Command) -> io::Result<(Child, File, File)> {
    use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
    let pty = nix::pty::openpty(None, None).map_err(io::Error::from)?;
    let mut mode = tcgetattr(&pty.slave).map_err(io::Error::from)?;
    cfmakeraw(&mut mode);
    tcsetattr(&pty.slave, SetArg::TCSANOW, &mode).map_err(io::Error::from)?;
    let slave_in = pty.slave.try_clone()?;
    cmd.stdin(Stdio::from(slave_in))
        .stdout(Stdio::from(pty.slave));
    // SAFETY: between fork and exec the closure calls only setsid and
    // ioctl, which are async-signal-safe, and touches no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            // A new session, so the terminal can become the controlling
            // one; its process group is the one `finish` signals.
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    let master = File::from(pty.master);
    let reader = master.try_clone()?;
    Ok((child, master, reader))
}

/// A descriptor readable when process `pid` has exited; `None` on kernels
/// without pidfd_open (before 5.3).
fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor
    // or -1; no memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: a descriptor the kernel just gave us, owned by nobody else.
    Some(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// `d` as a poll timeout, rounded up to whole milliseconds (so a short
/// wait does not become a busy loop), at most a minute.
fn timeout(d: Duration) -> PollTimeout {
    let ms = d.as_micros().div_ceil(1000).min(60_000) as i32;
    PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
}

/// Splits `pending` (output read so far) into messages, leaving an
/// unfinished line in it; with `eof`, what is left is one message too.
fn split(pending: &mut Vec<u8>, framing: Framing, eof: bool) -> Vec<Message> {
    let max = framing.max.max(1);
    if framing.binary {
        let data = std::mem::take(pending);
        return data
            .chunks(max)
            .map(|c| Message::binary(c.to_vec()))
            .collect();
    }
    let mut out = Vec::new();
    loop {
        let line = match pending.iter().position(|&b| b == b'\n') {
            Some(i) if i <= max => {
                let mut line: Vec<u8> = pending.drain(..=i).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                line
            }
            _ if pending.len() > max => pending.drain(..max).collect(),
            _ if eof && !pending.is_empty() => std::mem::take(pending),
            _ => break,
        };
        out.push(Message::text(String::from_utf8_lossy(&line).into_owned()));
    }
    out
}

impl Backend for Program {
    fn output(&self) -> Option<BorrowedFd<'_>> {
        self.stdout.as_ref().map(|s| s.as_fd())
    }

    fn read_output(&mut self) -> io::Result<Option<Vec<Message>>> {
        let Some(stdout) = self.stdout.as_mut() else {
            return Ok(None);
        };
        let mut buf = [0u8; 16384];
        let n = match stdout.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(Some(Vec::new())),
            // A terminal's master is non-blocking: poll may wake us early.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Some(Vec::new())),
            // A terminal whose program side is all closed reads EIO: its end.
            Err(e) if e.raw_os_error() == Some(libc::EIO) && self.framing.pty => 0,
            Err(e) => return Err(e),
        };
        if n == 0 {
            self.stdout = None;
            let last = split(&mut self.pending, self.framing, true);
            return Ok(if last.is_empty() { None } else { Some(last) });
        }
        self.pending.extend_from_slice(&buf[..n]);
        Ok(Some(split(&mut self.pending, self.framing, false)))
    }

    fn deliver(&mut self, msg: Message) {
        // A program that closed its stdin no longer wants messages.
        if self.stdin.is_none() {
            return;
        }
        let mut data = msg.into_data().to_vec();
        if !self.framing.binary {
            data.push(b'\n');
        }
        self.queue.push_back(data);
        // Most writes fit in the pipe at once: no wait for the next poll.
        self.write_input();
    }

    fn wants_input(&self) -> bool {
        self.queue.len() < STDIN_QUEUE
    }

    fn input_blocked(&self) -> Option<BorrowedFd<'_>> {
        match (&self.stdin, self.queue.is_empty()) {
            (Some(stdin), false) => Some(stdin.as_fd()),
            _ => None,
        }
    }

    fn write_input(&mut self) {
        while let (Some(stdin), Some(front)) = (self.stdin.as_mut(), self.queue.front()) {
            match stdin.write(&front[self.written..]) {
                Ok(0) => return,
                Ok(n) => {
                    self.written += n;
                    if self.written == front.len() {
                        self.queue.pop_front();
                        self.written = 0;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // EPIPE: the program closed its stdin.
                Err(_) => {
                    self.stdin = None;
                    self.queue.clear();
                    self.written = 0;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Framing, output, end of output, messages sent, bytes left over.
    type Case = (
        Framing,
        &'static [u8],
        bool,
        &'static [&'static [u8]],
        &'static [u8],
    );

    #[test]
    fn output_becomes_messages() {
        let text = |max| Framing {
            binary: false,
            max,
            pty: false,
        };
        let bin = Framing {
            binary: true,
            max: 3,
            pty: false,
        };
        let cases: &[Case] = &[
            (text(100), b"a\nb\n", false, &[b"a", b"b"], b""),
            (text(100), b"a\r\nb", false, &[b"a"], b"b"),
            (text(100), b"a\nb", true, &[b"a", b"b"], b""),
            (text(100), b"\n", false, &[b""], b""),
            (text(100), b"", true, &[], b""),
            (text(3), b"abcdefg\n", false, &[b"abc", b"def", b"g"], b""),
            (text(3), b"abcd", false, &[b"abc"], b"d"),
            (text(100), b"\xff\n", false, &[b"\xef\xbf\xbd"], b""),
            (bin, b"ab\ncdefg", false, &[b"ab\n", b"cde", b"fg"], b""),
        ];
        for (framing, output, eof, want, left) in cases {
            let mut pending = output.to_vec();
            let got: Vec<Vec<u8>> = split(&mut pending, *framing, *eof)
                .into_iter()
                .map(|m| {
                    assert_eq!(m.is_binary(), framing.binary);
                    m.into_data().to_vec()
                })
                .collect();
            let want: Vec<Vec<u8>> = want.iter().map(|w| w.to_vec()).collect();
            assert_eq!(got, want, "{output:?} eof={eof}");
            assert_eq!(pending, *left, "{output:?}");
        }
    }
}
