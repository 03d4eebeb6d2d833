//! Zygotes: one initialised engine per `spawn = "zygote"` service that
//! forks a child per connection (the engine side is jawas-engine's
//! `zygote` module; the contract is in docs/engine-protocol.md).
//!
//! Owns jawasd's end of each zygote's control socket (a Unix
//! SOCK_SEQPACKET pair, one message per datagram) and the messages on it:
//! `READY`, `PID n`, `FAIL why` and `EXIT n exit CODE|signal SIGNO` from
//! the zygote; `CONN` with the connection's environment and descriptors
//! (SCM_RIGHTS) to it. Starting the zygote process is the spawner's job
//! (the same checks, credentials and limits as any engine); deciding when
//! to start, restart or retire one is the loop's.
//!
//! Invariants: a connection is handed to a zygote only after admission
//! (the loop's job); `hand` waits for the zygote's answer for at most
//! `HAND_TIMEOUT`, so a stuck zygote costs the loop that long once, and is
//! then killed; messages that arrive while waiting are returned, never
//! dropped, so every `EXIT` reaches the sessions table.

#![forbid(unsafe_code)]

use std::ffi::CString;
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use nix::sys::socket::{
    recvmsg, sendmsg, shutdown, socketpair, AddressFamily, ControlMessage, MsgFlags, Shutdown,
    SockFlag, SockType,
};

use crate::reaper::ExitStatus;

/// Longest wait for a zygote's answer to a connection (its fork).
pub const HAND_TIMEOUT: Duration = Duration::from_millis(500);
/// Largest message a zygote sends.
const MAX_MESSAGE: usize = 512;

/// A message from a zygote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// `init` is done: connections may come.
    Ready,
    /// The child serving the connection just handed over.
    Pid(libc::pid_t),
    /// The connection just handed over could not be served.
    Fail(String),
    /// A child ended.
    Exit(libc::pid_t, ExitStatus),
}

impl Message {
    /// Parses one message; `None` for anything else (a zygote written
    /// against a later contract, or garbage), which the loop logs.
    pub fn parse(text: &[u8]) -> Option<Message> {
        let text = std::str::from_utf8(text).ok()?;
        let mut words = text.split(' ');
        let msg = match (words.next()?, words.next(), words.next(), words.next()) {
            ("READY", None, ..) => Message::Ready,
            ("PID", Some(pid), None, _) => Message::Pid(pid_of(pid)?),
            ("FAIL", ..) => Message::Fail(text[4..].trim_start().to_string()),
            ("EXIT", Some(pid), Some(how), Some(n)) if words.next().is_none() => {
                let n: i32 = n.parse().ok()?;
                let status = match how {
                    "exit" if (0..=255).contains(&n) => ExitStatus::Exited(n),
                    "signal" if (1..=64).contains(&n) => ExitStatus::Signaled(n),
                    _ => return None,
                };
                Message::Exit(pid_of(pid)?, status)
            }
            _ => return None,
        };
        Some(msg)
    }
}

fn pid_of(s: &str) -> Option<libc::pid_t> {
    s.parse().ok().filter(|p| *p > 1)
}

/// The socket pair for a new zygote: (jawasd's end, the zygote's end).
/// Both close-on-exec: the spawner puts the zygote's end on its fds 0
/// and 1, which clears the flag there. Only jawasd's end is non-blocking:
/// the zygote's is an engine's fd 0, blocking as a connection would be.
pub fn control_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    fcntl(ours.as_raw_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
    Ok((ours, theirs))
}

/// jawasd's side of one running zygote.
#[derive(Debug)]
pub struct Zygote {
    pub pid: libc::pid_t,
    control: OwnedFd,
    /// `READY` has been received.
    pub ready: bool,
    /// Retired (reload, removal): it gets no more connections and exits
    /// once its children have.
    pub retired: bool,
    /// The loop's key of the stderr capture it and its children share.
    pub capture: Option<crate::registry::Key>,
}

impl Zygote {
    pub fn new(pid: libc::pid_t, control: OwnedFd) -> Zygote {
        Zygote {
            pid,
            control,
            ready: false,
            retired: false,
            capture: None,
        }
    }

    /// Hands one connection over: its socket, the descriptor for its
    /// stderr if any, and its environment. Returns the child's pid and
    /// any other messages received meanwhile, in order.
    pub fn hand(
        &mut self,
        socket: BorrowedFd<'_>,
        stderr: Option<BorrowedFd<'_>>,
        handback: Option<BorrowedFd<'_>>,
        env: &[CString],
    ) -> io::Result<(libc::pid_t, Vec<Message>)> {
        let mut body = b"CONN\0".to_vec();
        for var in env {
            body.extend_from_slice(var.as_bytes_with_nul());
        }
        let mut fds: Vec<RawFd> = vec![socket.as_raw_fd()];
        fds.extend(stderr.map(|fd| fd.as_raw_fd()));
        // Last, and announced by JAWAS_HANDBACK_FD in `env`.
        fds.extend(handback.map(|fd| fd.as_raw_fd()));
        let rights = [ControlMessage::ScmRights(&fds)];
        sendmsg::<()>(
            self.control.as_raw_fd(),
            &[IoSlice::new(&body)],
            &rights,
            MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT,
            None,
        )?;
        let deadline = Instant::now() + HAND_TIMEOUT;
        let mut others = Vec::new();
        loop {
            match self.receive()? {
                Some(Message::Pid(pid)) => return Ok((pid, others)),
                Some(Message::Fail(why)) => return Err(io::Error::other(why)),
                Some(m) => others.push(m),
                None => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() || !self.wait_readable(left)? {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "the zygote did not answer in time",
                        ));
                    }
                }
            }
        }
    }

    /// Every message waiting now, and whether the control socket is still
    /// open (false once the zygote's end has closed, or on an error).
    pub fn read(&mut self) -> (Vec<Message>, bool) {
        let mut out = Vec::new();
        let mut open = true;
        // Bounded: a zygote cannot keep the loop here.
        for _ in 0..256 {
            match self.receive() {
                Ok(Some(m)) => out.push(m),
                Ok(None) => break,
                // A zygote that exits with a hand-over unread resets the
                // socket: the error comes first, its last messages after.
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => open = false,
                Err(_) => {
                    open = false;
                    break;
                }
            }
        }
        (out, open)
    }

    /// One message, `None` when none is waiting; unknown messages are
    /// skipped with a warning.
    fn receive(&mut self) -> io::Result<Option<Message>> {
        loop {
            let mut buf = [0u8; MAX_MESSAGE];
            let mut iov = [IoSliceMut::new(&mut buf)];
            let got = recvmsg::<()>(
                self.control.as_raw_fd(),
                &mut iov,
                None,
                MsgFlags::MSG_DONTWAIT,
            );
            // No control buffer: should a zygote send descriptors, the
            // kernel closes them (MSG_CTRUNC) rather than jawasd leaking them.
            let n = match got {
                Ok(m) => m.bytes,
                Err(nix::errno::Errno::EAGAIN) => return Ok(None),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            };
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "control socket closed",
                ));
            }
            match Message::parse(&buf[..n]) {
                Some(m) => return Ok(Some(m)),
                None => log::warn!(
                    "zygote pid={}: unknown message '{}'",
                    self.pid,
                    String::from_utf8_lossy(&buf[..n]).escape_debug()
                ),
            }
        }
    }

    fn wait_readable(&self, timeout: Duration) -> io::Result<bool> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let mut fds = [PollFd::new(self.control.as_fd(), PollFlags::POLLIN)];
        let ms = u16::try_from(timeout.as_millis().max(1)).unwrap_or(u16::MAX);
        loop {
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(n) => return Ok(n > 0),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Tells the zygote to take no more connections: it sees the end of
    /// the control socket, waits for its children (still reporting their
    /// exits) and exits.
    pub fn retire(&mut self) {
        self.retired = true;
        let _ = shutdown(self.control.as_raw_fd(), Shutdown::Write);
    }

    /// The control socket, for the loop to watch.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.control.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::ControlMessageOwned;

    #[test]
    fn messages_parse_strictly() {
        let table: &[(&str, Option<Message>)] = &[
            ("READY", Some(Message::Ready)),
            ("PID 1234", Some(Message::Pid(1234))),
            (
                "FAIL fork: out of memory",
                Some(Message::Fail("fork: out of memory".into())),
            ),
            (
                "EXIT 77 exit 0",
                Some(Message::Exit(77, ExitStatus::Exited(0))),
            ),
            (
                "EXIT 77 exit 111",
                Some(Message::Exit(77, ExitStatus::Exited(111))),
            ),
            (
                "EXIT 77 signal 9",
                Some(Message::Exit(77, ExitStatus::Signaled(9))),
            ),
            ("READY now", None),
            ("PID", None),
            ("PID 0", None),
            ("PID 1", None),
            ("PID -5", None),
            ("PID 12 13", None),
            ("EXIT 77 exit 256", None),
            ("EXIT 77 signal 0", None),
            ("EXIT 77 stopped 1", None),
            ("EXIT 77 exit 0 extra", None),
            ("HELLO", None),
            ("", None),
        ];
        for (text, want) in table {
            assert_eq!(Message::parse(text.as_bytes()), *want, "{text:?}");
        }
        assert_eq!(Message::parse(b"\xff\xfe"), None);
    }

    #[test]
    fn hand_sends_the_descriptors_and_waits_for_the_pid() {
        let (ours, theirs) = control_pair().unwrap();
        let mut z = Zygote::new(4242, ours);
        let null = std::fs::File::open("/dev/null").unwrap();
        // The "zygote": answers with an EXIT for an earlier child, then the pid.
        let peer = std::thread::spawn(move || {
            let mut buf = [0u8; 256];
            let mut iov = [IoSliceMut::new(&mut buf)];
            let mut space = nix::cmsg_space!([RawFd; 2]);
            use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
            let mut p = [PollFd::new(theirs.as_fd(), PollFlags::POLLIN)];
            poll(&mut p, PollTimeout::from(2000u16)).unwrap();
            let m = recvmsg::<()>(
                theirs.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::empty(),
            )
            .unwrap();
            let nfds: usize = m
                .cmsgs()
                .unwrap()
                .map(|c| match c {
                    ControlMessageOwned::ScmRights(f) => f.len(),
                    _ => 0,
                })
                .sum();
            let n = m.bytes;
            let body = buf[..n].to_vec();
            for msg in [&b"EXIT 99 exit 3"[..], b"PID 555"] {
                nix::sys::socket::send(theirs.as_raw_fd(), msg, MsgFlags::empty()).unwrap();
            }
            (body, nfds, theirs)
        });
        let env = [CString::new("PROTO=TCP").unwrap()];
        let (pid, others) = z
            .hand(null.as_fd(), Some(null.as_fd()), None, &env)
            .expect("handed");
        let (body, nfds, theirs) = peer.join().unwrap();
        assert_eq!(pid, 555);
        assert_eq!(others, vec![Message::Exit(99, ExitStatus::Exited(3))]);
        assert_eq!(body, b"CONN\0PROTO=TCP\0");
        assert_eq!(nfds, 2);
        // Silence past the timeout is an error, not a hang.
        let started = Instant::now();
        let e = z.hand(null.as_fd(), None, None, &env).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() < HAND_TIMEOUT * 4);
        // Messages before the end of the socket are kept.
        nix::sys::socket::send(theirs.as_raw_fd(), b"EXIT 98 signal 9", MsgFlags::empty()).unwrap();
        assert_eq!(
            z.read(),
            (vec![Message::Exit(98, ExitStatus::Signaled(9))], true)
        );
        nix::sys::socket::send(theirs.as_raw_fd(), b"EXIT 97 exit 0", MsgFlags::empty()).unwrap();
        drop(theirs);
        assert_eq!(
            z.read(),
            (vec![Message::Exit(97, ExitStatus::Exited(0))], false)
        );
    }
}
