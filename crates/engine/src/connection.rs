//! The connection an engine serves: descriptors for input and output (fds
//! 0 and 1 when started by a super-server) and who is on the other end.
//!
//! Owns both descriptors: dropping a `Connection` closes them. Invariant:
//! `Connection::stdio` is called at most once per process (by `run`, or by
//! a zygote's child once the connection is on its fds 0 and 1), so
//! fds 0 and 1 have exactly one owner.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::Peer;

/// What the input descriptor is, which decides how an engine serves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A connected stream: a TCP connection, a pipe, a file or a terminal.
    Stream,
    /// A UDP socket (inetd's datagram services): `recvfrom`/`sendto` on it.
    Datagram,
    /// A listening socket (a `wait = true` stream service): accept on it.
    Listener,
}

/// One connection to serve.
#[derive(Debug)]
pub struct Connection {
    input: OwnedFd,
    output: OwnedFd,
    kind: Kind,
    /// The two ends' addresses, from the UCSPI environment.
    pub peer: Peer,
}

impl Connection {
    /// Takes fds 0 and 1 and the peer from the environment.
    pub(crate) fn stdio() -> Connection {
        // SAFETY: fds 0 and 1 are open for the life of the process (a
        // super-server, tcpserver or a shell always passes them) and `run`
        // calls this once, so these are their only owners.
        let (input, output) = unsafe { (OwnedFd::from_raw_fd(0), OwnedFd::from_raw_fd(1)) };
        Connection::from_fds(input, output, Peer::from_env())
    }

    /// A connection over any two descriptors (a socket pair or pipes in a
    /// test, or one accepted by a future zygote). They may be the same
    /// socket duplicated.
    pub fn from_fds(input: OwnedFd, output: OwnedFd, peer: Peer) -> Connection {
        let kind = kind_of(input.as_fd());
        Connection {
            input,
            output,
            kind,
            peer,
        }
    }

    /// What the input descriptor is.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The descriptor to read from.
    pub fn input(&self) -> BorrowedFd<'_> {
        self.input.as_fd()
    }

    /// The descriptor to write to.
    pub fn output(&self) -> BorrowedFd<'_> {
        self.output.as_fd()
    }

    /// The descriptors as files, for `Read`/`Write` (unbuffered: wrap them
    /// if many small writes are made).
    pub fn into_files(self) -> (File, File) {
        (File::from(self.input), File::from(self.output))
    }

    /// The descriptors themselves, for a layer that manages its own I/O.
    pub fn into_fds(self) -> (OwnedFd, OwnedFd) {
        (self.input, self.output)
    }

    /// Half-closes the output (`shutdown(SHUT_WR)`), so a client sees the
    /// end of the reply while the input stays readable. Closing fd 1 alone
    /// would not do it, as fd 0 is the same socket. Not a socket (a pipe in
    /// a test) is not an error: there, the end comes when the file closes.
    pub fn shutdown_output(fd: BorrowedFd<'_>) -> io::Result<()> {
        // SAFETY: shutdown on a descriptor the borrow keeps open.
        if unsafe { libc::shutdown(fd.as_raw_fd(), libc::SHUT_WR) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ENOTSOCK) | Some(libc::ENOTCONN) => Ok(()),
            _ => Err(e),
        }
    }
}

/// A socket's type and whether it listens; anything that is not a socket
/// (a pipe, a file) is a stream.
fn kind_of(fd: BorrowedFd<'_>) -> Kind {
    let int_opt = |opt| {
        let mut v: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into a c_int we own;
        // the borrow keeps the descriptor open.
        let rc = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&mut v as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        (rc == 0).then_some(v)
    };
    match int_opt(libc::SO_TYPE) {
        Some(libc::SOCK_DGRAM) => Kind::Datagram,
        Some(_) if int_opt(libc::SO_ACCEPTCONN) == Some(1) => Kind::Listener,
        _ => Kind::Stream,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, UdpSocket};
    use std::os::unix::net::UnixStream;

    fn owned(fd: impl Into<OwnedFd>) -> OwnedFd {
        fd.into()
    }

    #[test]
    fn kinds_of_descriptor() {
        let (a, _b) = UnixStream::pair().unwrap();
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let file = File::open("/dev/null").unwrap();
        let table = [
            (owned(a), Kind::Stream),
            (owned(udp), Kind::Datagram),
            (owned(listener), Kind::Listener),
            (owned(file), Kind::Stream),
        ];
        for (fd, want) in table {
            let out = fd.try_clone().unwrap();
            let c = Connection::from_fds(fd, out, Peer::default());
            assert_eq!(c.kind(), want);
        }
    }

    #[test]
    fn files_read_and_write_the_descriptors_and_half_close_works() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let theirs = owned(theirs);
        let c = Connection::from_fds(theirs.try_clone().unwrap(), theirs, Peer::default());
        let (mut input, mut output) = c.into_files();
        let mut ours2 = ours.try_clone().unwrap();
        ours2.write_all(b"ping").unwrap();
        let mut buf = [0u8; 4];
        input.read_exact(&mut buf).unwrap();
        output.write_all(b"pong").unwrap();
        Connection::shutdown_output(output.as_fd()).unwrap();
        let mut got = Vec::new();
        (&ours).read_to_end(&mut got).unwrap();
        assert_eq!((&buf, got.as_slice()), (b"ping", &b"pong"[..]));
        let null = File::open("/dev/null").unwrap();
        Connection::shutdown_output(null.as_fd()).unwrap();
    }
}
