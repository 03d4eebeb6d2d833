//! Zygotes: one initialised engine per `spawn = "zygote"` service that
//! forks a child per connection (the engine side is jawas-engine's
//! `zygote` module; the contract is in docs/engine-protocol.md).
//!
//! Owns jawasd's end of each zygote's control socket (a Unix
//! SOCK_SEQPACKET pair, one message per datagram) and the messages on it:
//! `READY`, `PID n [INO]`, `FAIL [ino=INO] why` and `EXIT n exit
//! CODE|signal SIGNO` from the zygote; `CONN` with the connection's
//! environment and descriptors (SCM_RIGHTS) to it. Starting the zygote process is the spawner's job
//! (the same checks, credentials and limits as any engine); deciding when
//! to start, restart or retire one is the loop's.
//!
//! Invariants: a connection is handed to a zygote only after admission
//! (the loop's job); `send` never waits: the answer comes through the
//! loop like any other message, and names its connection by the socket's
//! inode (several spares may answer in either order), an answer without
//! one meaning the oldest connection not answered yet. Reads are bounded,
//! and every message read is returned, so every `EXIT` reaches the
//! sessions table.

#![forbid(unsafe_code)]

use std::ffi::CString;
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use nix::sys::socket::{
    recvmsg, sendmsg, shutdown, socketpair, AddressFamily, ControlMessage, MsgFlags, Shutdown,
    SockFlag, SockType,
};

use crate::reaper::ExitStatus;

/// Longest a zygote may go without answering while connections handed to
/// it wait (a zygote that answers nothing for this long is killed).
pub const HAND_TIMEOUT: Duration = Duration::from_millis(500);
/// Largest message a zygote sends.
const MAX_MESSAGE: usize = 512;

/// A message from a zygote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// `init` is done: connections may come.
    Ready,
    /// The child serving a connection, and that connection's socket inode
    /// when the zygote names it.
    Pid(libc::pid_t, Option<u64>),
    /// A connection (named as for `Pid`) could not be served, and why.
    Fail(Option<u64>, String),
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
            ("PID", Some(pid), None, _) => Message::Pid(pid_of(pid)?, None),
            ("PID", Some(pid), Some(ino), None) => {
                Message::Pid(pid_of(pid)?, Some(ino.parse().ok().filter(|i| *i > 0)?))
            }
            ("FAIL", ..) => {
                let why = text[4..].trim_start();
                match why.strip_prefix("ino=").and_then(|r| r.split_once(' ')) {
                    Some((ino, rest)) => {
                        let ino = ino.parse().ok().filter(|i| *i > 0)?;
                        Message::Fail(Some(ino), rest.trim_start().to_string())
                    }
                    None => Message::Fail(None, why.to_string()),
                }
            }
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
    /// stderr if any, the routed engine's hand-back socket if any, and its
    /// environment. Never waits: a full control socket is `WouldBlock`.
    /// The answer comes later, through `read`.
    pub fn send(
        &mut self,
        socket: BorrowedFd<'_>,
        stderr: Option<BorrowedFd<'_>>,
        handback: Option<BorrowedFd<'_>>,
        env: &[CString],
    ) -> io::Result<()> {
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
        Ok(())
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
            ("PID 1234", Some(Message::Pid(1234, None))),
            ("PID 1234 987654", Some(Message::Pid(1234, Some(987654)))),
            (
                "FAIL fork: out of memory",
                Some(Message::Fail(None, "fork: out of memory".into())),
            ),
            (
                "FAIL ino=42 fork: out of memory",
                Some(Message::Fail(Some(42), "fork: out of memory".into())),
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
            ("PID 12 0", None),
            ("PID 12 x", None),
            ("PID 12 13 14", None),
            ("FAIL ino=x why", None),
            ("FAIL ino=0 why", None),
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

    /// The "zygote" end: one CONN's body and how many descriptors came.
    fn take_conn(theirs: &OwnedFd) -> (Vec<u8>, usize) {
        let mut buf = [0u8; 256];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([RawFd; 3]);
        let m = recvmsg::<()>(
            theirs.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_DONTWAIT,
        )
        .expect("a CONN waits");
        let nfds: usize = m
            .cmsgs()
            .unwrap()
            .map(|c| match c {
                ControlMessageOwned::ScmRights(f) => {
                    for fd in &f {
                        let _ = nix::unistd::close(*fd);
                    }
                    f.len()
                }
                _ => 0,
            })
            .sum();
        let n = m.bytes;
        (buf[..n].to_vec(), nfds)
    }

    #[test]
    fn send_never_waits_and_answers_come_through_read() {
        let (ours, theirs) = control_pair().unwrap();
        let mut z = Zygote::new(4242, ours);
        let null = std::fs::File::open("/dev/null").unwrap();
        let env = [CString::new("PROTO=TCP").unwrap()];
        // Two connections in a row, nobody answering yet.
        z.send(null.as_fd(), Some(null.as_fd()), None, &env)
            .expect("sent");
        z.send(null.as_fd(), None, Some(null.as_fd()), &env)
            .expect("sent");
        assert_eq!(z.read(), (vec![], true));
        assert_eq!(take_conn(&theirs), (b"CONN\0PROTO=TCP\0".to_vec(), 2));
        assert_eq!(take_conn(&theirs), (b"CONN\0PROTO=TCP\0".to_vec(), 2));
        // Answers in any order, with an exit between them.
        for msg in [&b"PID 556 12"[..], b"EXIT 99 exit 3", b"PID 555 11"] {
            nix::sys::socket::send(theirs.as_raw_fd(), msg, MsgFlags::empty()).unwrap();
        }
        assert_eq!(
            z.read(),
            (
                vec![
                    Message::Pid(556, Some(12)),
                    Message::Exit(99, ExitStatus::Exited(3)),
                    Message::Pid(555, Some(11)),
                ],
                true
            )
        );
        // A zygote that reads nothing: the socket fills, and `send` says
        // so at once instead of waiting.
        let mut sent = 0;
        let full = loop {
            match z.send(null.as_fd(), None, None, &env) {
                Ok(()) => sent += 1,
                Err(e) => break e,
            }
            assert!(sent < 100_000, "the control socket never filled");
        };
        assert_eq!(full.kind(), io::ErrorKind::WouldBlock, "{full}");
        assert!(sent > 2, "{sent}");
        // Messages before the end of the socket are kept.
        nix::sys::socket::send(theirs.as_raw_fd(), b"EXIT 97 exit 0", MsgFlags::empty()).unwrap();
        drop(theirs);
        assert_eq!(
            z.read(),
            (vec![Message::Exit(97, ExitStatus::Exited(0))], false)
        );
    }
}
