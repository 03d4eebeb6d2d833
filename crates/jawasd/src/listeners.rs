//! Listening sockets: binding them, and deciding across a reload which
//! sockets stay, which are new and which close.
//!
//! `plan` is the first phase of applying a configuration: everything that
//! can fail (binding every new address) happens here, and a failure leaves
//! the running sockets untouched. The server then registers the new sockets
//! (which can fail too, and is undone) and only then commits with steps that
//! cannot fail. It does not accept connections; the server does.

#![forbid(unsafe_code)]

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::rc::Rc;

use nix::sys::socket::{self, sockopt, AddressFamily, SockFlag, SockType, SockaddrStorage};

use crate::registry::Key;

/// The listen(2) backlog of every TCP listener.
pub const BACKLOG: i32 = 1024;

/// A bound socket: a TCP listener, or a UDP socket.
pub enum Socket {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

impl AsFd for Socket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Socket::Tcp(s) => s.as_fd(),
            Socket::Udp(s) => s.as_fd(),
        }
    }
}

/// What makes two bound sockets interchangeable across a reload.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Binding {
    pub addr: SocketAddr,
    pub udp: bool,
    /// Wait services get a blocking socket (the engine reads it).
    pub wait: bool,
}

/// A listening socket and the service it belongs to.
pub struct Listener {
    pub socket: Socket,
    pub binding: Binding,
    /// The address it is bound to (the real port when 0 was asked).
    pub local: SocketAddr,
    pub service: Rc<str>,
}

/// One address a configuration wants, for a service.
pub struct Wanted {
    pub binding: Binding,
    pub service: Rc<str>,
    /// Where the address was written (`FILE:LINE`).
    pub at: String,
}

/// The outcome of the first phase: nothing running has changed yet.
pub struct Plan {
    /// Running listeners that stay, with their (possibly new) service.
    pub keep: Vec<(Key, Rc<str>)>,
    /// Newly bound sockets, not yet watched.
    pub fresh: Vec<Listener>,
    /// Running listeners the new configuration no longer has.
    pub close: Vec<Key>,
    /// Addresses left out because the host lacks their address family.
    pub skipped: Vec<(Rc<str>, SocketAddr)>,
}

/// Why a configuration's sockets could not be prepared.
#[derive(Debug)]
pub struct BindError {
    pub service: Rc<str>,
    pub at: String,
    pub addr: SocketAddr,
    pub error: io::Error,
}

/// Matches `wanted` against the running listeners and binds the rest.
/// A socket is kept for the same configured address (for port 0, any free
/// port, only within the same service), or for the address a port-0 socket
/// was actually given. A new address that overlaps a socket about to close
/// (`127.0.0.1:P` widened to `0.0.0.0:P`) is bound beside it with
/// SO_REUSEPORT set on both for the moment of the bind.
pub fn plan(running: &[(Key, &Listener)], wanted: Vec<Wanted>) -> Result<Plan, BindError> {
    let mut unclaimed: Vec<(Key, &Listener)> = running.to_vec();
    let mut keep = Vec::new();
    let mut to_bind = Vec::new();
    for w in wanted {
        let same = |l: &Listener| {
            l.binding == w.binding && (w.binding.addr.port() != 0 || l.service == w.service)
        };
        let given = |l: &Listener| {
            l.local == w.binding.addr
                && l.binding.udp == w.binding.udp
                && l.binding.wait == w.binding.wait
        };
        let found = unclaimed
            .iter()
            .position(|(_, l)| same(l))
            .or_else(|| unclaimed.iter().position(|(_, l)| given(l)));
        match found {
            Some(i) => {
                let (key, _) = unclaimed.swap_remove(i);
                keep.push((key, w.service));
            }
            None => to_bind.push(w),
        }
    }
    let mut fresh = Vec::new();
    let mut skipped = Vec::new();
    for w in to_bind {
        let overlapping: Vec<&Listener> = unclaimed
            .iter()
            .map(|(_, l)| *l)
            .filter(|l| {
                l.local.port() == w.binding.addr.port()
                    && l.local.is_ipv4() == w.binding.addr.is_ipv4()
                    && l.binding.udp == w.binding.udp
            })
            .collect();
        match bind_beside(&w.binding, &overlapping) {
            Ok(socket) => {
                let local = local_addr(&socket).unwrap_or(w.binding.addr);
                fresh.push(Listener {
                    socket,
                    binding: w.binding,
                    local,
                    service: w.service,
                });
            }
            Err(e) if family_unavailable(&w.binding.addr, &e) => {
                skipped.push((w.service, w.binding.addr));
            }
            Err(error) => {
                return Err(BindError {
                    service: w.service,
                    at: w.at,
                    addr: w.binding.addr,
                    error,
                })
            }
        }
    }
    let close = unclaimed.into_iter().map(|(k, _)| k).collect();
    Ok(Plan {
        keep,
        fresh,
        close,
        skipped,
    })
}

/// An IPv6 address on a host without IPv6 (no IPv6 sockets, or no `::1`).
fn family_unavailable(addr: &SocketAddr, e: &io::Error) -> bool {
    addr.is_ipv6()
        && match e.raw_os_error() {
            Some(libc::EAFNOSUPPORT) => true,
            Some(libc::EADDRNOTAVAIL) => addr.ip().is_loopback() || addr.ip().is_unspecified(),
            _ => false,
        }
}

/// Binds `b`; when the address is in use by one of `overlapping` (sockets
/// about to close), binds again with SO_REUSEPORT on both, then clears it
/// on the new socket so nobody else can join it later.
fn bind_beside(b: &Binding, overlapping: &[&Listener]) -> io::Result<Socket> {
    match bind(b, false) {
        Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) && !overlapping.is_empty() => {
            for l in overlapping {
                let _ = socket::setsockopt(&l.socket, sockopt::ReusePort, &true);
            }
            let result = bind(b, true);
            for l in overlapping {
                let _ = socket::setsockopt(&l.socket, sockopt::ReusePort, &false);
            }
            let s = result?;
            let _ = socket::setsockopt(&s, sockopt::ReusePort, &false);
            Ok(s)
        }
        other => other,
    }
}

fn local_addr(s: &Socket) -> io::Result<SocketAddr> {
    match s {
        Socket::Tcp(s) => s.local_addr(),
        Socket::Udp(s) => s.local_addr(),
    }
}

/// A close-on-exec socket bound to `b.addr`: a TCP listener, or a UDP
/// socket. Sockets the loop accepts on are non-blocking; a wait service's
/// socket is blocking, since its engine reads it (the flag is shared with
/// the engine's copy). IPv6 sockets are IPv6-only, so `[::]:80` and
/// `0.0.0.0:80` can both be configured.
pub fn bind(b: &Binding, reuseport: bool) -> io::Result<Socket> {
    let addr = b.addr;
    if let Some(fd) = crate::activation::take(addr, b.udp) {
        return adopted(fd, b);
    }
    let family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let kind = if b.udp {
        SockType::Datagram
    } else {
        SockType::Stream
    };
    let mut flags = SockFlag::SOCK_CLOEXEC;
    // Only a TCP listener the loop accepts on is non-blocking; UDP sockets
    // end up in an engine (the loop only peeks, when epoll says a datagram
    // is there).
    if !b.wait && !b.udp {
        flags |= SockFlag::SOCK_NONBLOCK;
    }
    let fd: OwnedFd = socket::socket(family, kind, flags, None)?;
    socket::setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    if reuseport {
        socket::setsockopt(&fd, sockopt::ReusePort, &true)?;
    }
    if addr.is_ipv6() {
        socket::setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
    }
    socket::bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrStorage::from(addr),
    )?;
    if b.udp {
        return Ok(Socket::Udp(UdpSocket::from(fd)));
    }
    socket::listen(
        &fd,
        socket::Backlog::new(BACKLOG).unwrap_or(socket::Backlog::MAXCONN),
    )?;
    Ok(Socket::Tcp(TcpListener::from(fd)))
}

/// A socket systemd passed for `b`'s address, made what `bind` would have
/// made: non-blocking only for a TCP listener the loop accepts on.
fn adopted(fd: OwnedFd, b: &Binding) -> io::Result<Socket> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
    let mut flags = OFlag::from_bits_truncate(fcntl(raw, FcntlArg::F_GETFL)?);
    flags.set(OFlag::O_NONBLOCK, !b.wait && !b.udp);
    fcntl(raw, FcntlArg::F_SETFL(flags))?;
    if b.udp {
        return Ok(Socket::Udp(UdpSocket::from(fd)));
    }
    // systemd listens already; listening again only sets the backlog.
    socket::listen(
        &fd,
        socket::Backlog::new(BACKLOG).unwrap_or(socket::Backlog::MAXCONN),
    )?;
    Ok(Socket::Tcp(TcpListener::from(fd)))
}

/// The sender of the next queued datagram, without taking it and without
/// blocking: the socket itself is blocking (it is meant for an engine),
/// and something else holding it (a process an engine left) may have taken
/// the datagram since epoll said it was there.
pub fn peek_sender(u: &UdpSocket) -> io::Result<SocketAddr> {
    use nix::sys::socket::{recvmsg, MsgFlags};
    let mut byte = [0u8; 1];
    let mut iov = [std::io::IoSliceMut::new(&mut byte)];
    let msg = recvmsg::<SockaddrStorage>(
        std::os::fd::AsRawFd::as_raw_fd(u),
        &mut iov,
        None,
        MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT,
    )?;
    let from = msg
        .address
        .ok_or_else(|| io::Error::other("datagram without a sender"))?;
    if let Some(v4) = from.as_sockaddr_in() {
        return Ok(SocketAddr::V4((*v4).into()));
    }
    if let Some(v6) = from.as_sockaddr_in6() {
        return Ok(SocketAddr::V6((*v6).into()));
    }
    Err(io::Error::other("not an IP address"))
}

/// Takes the next datagram off the socket and drops it, without blocking.
pub fn drop_datagram(u: &UdpSocket) {
    let _ = socket::recv(
        std::os::fd::AsRawFd::as_raw_fd(u),
        &mut [0u8; 1],
        nix::sys::socket::MsgFlags::MSG_DONTWAIT,
    );
}

/// Writes a banner without blocking: the socket's buffer is empty, and a
/// client already gone costs nothing.
pub fn send_banner(stream: &TcpStream, banner: &[u8]) {
    use nix::sys::socket::MsgFlags;
    let _ = socket::send(
        std::os::fd::AsRawFd::as_raw_fd(stream),
        banner,
        MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(addr: &str, service: &str) -> Listener {
        let binding = Binding {
            addr: addr.parse().unwrap(),
            udp: false,
            wait: false,
        };
        let socket = bind(&binding, false).unwrap();
        let local = local_addr(&socket).unwrap();
        Listener {
            socket,
            binding,
            local,
            service: Rc::from(service),
        }
    }

    fn want(addr: &str, service: &str) -> Wanted {
        Wanted {
            binding: Binding {
                addr: addr.parse().unwrap(),
                udp: false,
                wait: false,
            },
            service: Rc::from(service),
            at: "test.toml:1".into(),
        }
    }

    #[test]
    fn keeps_binds_and_closes() {
        let a = listener("127.0.0.1:0", "web");
        let b = listener("127.0.0.1:0", "old");
        let b_addr = b.local.to_string();
        let running = [(1, &a), (2, &b)];
        let p = plan(
            &running,
            vec![
                want("127.0.0.1:0", "web"),
                want(&b_addr, "other"),
                want("127.0.0.1:0", "new"),
            ],
        )
        .unwrap();
        let kept: Vec<(Key, &str)> = p.keep.iter().map(|(k, s)| (*k, &**s)).collect();
        assert_eq!(
            kept,
            vec![(1, "web"), (2, "other")],
            "port 0 kept within its service; a given port kept by address"
        );
        assert_eq!(p.fresh.len(), 1);
        assert!(p.close.is_empty());
        let p = plan(&running, vec![want("127.0.0.1:0", "web")]).unwrap();
        assert_eq!(p.close, vec![2]);
        assert!(p.fresh.is_empty());
    }

    #[test]
    fn widening_an_address_on_the_same_port_binds() {
        let narrow = listener("127.0.0.1:0", "web");
        let port = narrow.local.port();
        let running = [(1, &narrow)];
        let p = plan(&running, vec![want(&format!("0.0.0.0:{port}"), "web")]).unwrap();
        assert_eq!(p.fresh.len(), 1);
        assert_eq!(p.close, vec![1]);
        // Once the old socket is gone, the new one takes its clients.
        let Socket::Tcp(new) = &p.fresh[0].socket else {
            panic!("a TCP listener")
        };
        drop(narrow);
        let _client = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(new.accept().is_ok(), "non-blocking accept finds the client");
    }

    #[test]
    fn an_address_in_use_elsewhere_fails_the_plan() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let err = match plan(&[], vec![want(&format!("127.0.0.1:{port}"), "web")]) {
            Err(e) => e,
            Ok(_) => panic!("bound a port in use"),
        };
        assert_eq!(err.error.raw_os_error(), Some(libc::EADDRINUSE));
        assert_eq!(&*err.service, "web");
    }
}
