//! Socket activation (sd_listen_fds(3)): listening sockets systemd (or
//! `systemd-socket-activate`, or a previous jawasd handing over) passes as
//! fds 3.. with LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES.
//!
//! Owns the inherited sockets until a listener claims one: `bind` asks
//! `take` for a socket with the wanted address and type before binding
//! one itself, so a service whose address systemd already holds uses
//! systemd's socket, and a reload keeps it like any other (by address).
//!
//! Invariants: only descriptors LISTEN_PID says are ours, and only
//! sockets, are adopted (anything else inherited is closed at start, as
//! before); adopted sockets are made close-on-exec at once, so no engine
//! inherits them; the variables are removed from the environment.

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;

use nix::sys::socket::{getsockname, getsockopt, sockopt, SockType, SockaddrStorage};

/// The first descriptor systemd passes.
const FIRST: RawFd = 3;

struct Inherited {
    fd: OwnedFd,
    addr: SocketAddr,
    udp: bool,
    name: String,
}

static POOL: Mutex<Vec<Inherited>> = Mutex::new(Vec::new());

/// Adopts the sockets passed to this process. Returns the number of
/// descriptors systemd passed (adopted or not), so that the caller closes
/// only what lies above them; call before anything else opens a file.
pub fn adopt() -> RawFd {
    let pid = std::env::var("LISTEN_PID").ok();
    let count = std::env::var("LISTEN_FDS").ok();
    let names = std::env::var("LISTEN_FDNAMES").ok();
    for k in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(k);
    }
    // systemd names this process; an upgrading jawasd names itself, the
    // parent (it cannot know its child's pid before the exec).
    let from_parent = std::env::var(crate::server::upgrade::FROM_VAR)
        .ok()
        .is_some_and(|p| p.trim() == nix::unistd::getppid().as_raw().to_string());
    let ours = from_parent || pid.is_some_and(|p| p.trim() == std::process::id().to_string());
    let n: RawFd = match count.and_then(|c| c.trim().parse().ok()) {
        Some(n) if ours && (1..=4096).contains(&n) => n,
        _ => return 0,
    };
    let names: Vec<String> = names
        .map(|s| s.split(':').map(String::from).collect())
        .unwrap_or_default();
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    for i in 0..n {
        let raw = FIRST + i;
        // SAFETY: LISTEN_PID names this process, so systemd's contract
        // says fds 3..3+LISTEN_FDS are open and ours; nothing else in
        // jawasd has opened or owns a descriptor yet (main calls this
        // first), so this is their only owner.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let name = names.get(i as usize).cloned().unwrap_or_default();
        match describe(&fd) {
            Some((addr, udp)) => {
                let _ = nix::fcntl::fcntl(
                    fd.as_raw_fd(),
                    nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
                );
                pool.push(Inherited {
                    fd,
                    addr,
                    udp,
                    name,
                })
            }
            None => {
                log::warn!("socket activation: fd {raw} ({name}) is not an IPv4/IPv6 TCP or UDP socket; closed");
            }
        }
    }
    n
}

/// A socket's bound address and whether it is UDP; `None` for anything
/// jawasd cannot listen on (a Unix socket, a file).
fn describe(fd: &OwnedFd) -> Option<(SocketAddr, bool)> {
    let udp = match getsockopt(fd, sockopt::SockType).ok()? {
        SockType::Stream => false,
        SockType::Datagram => true,
        _ => return None,
    };
    let ss: SockaddrStorage = getsockname(fd.as_raw_fd()).ok()?;
    let addr = if let Some(a) = ss.as_sockaddr_in() {
        SocketAddr::V4(std::net::SocketAddrV4::from(*a))
    } else {
        SocketAddr::V6(std::net::SocketAddrV6::from(*ss.as_sockaddr_in6()?))
    };
    Some((addr, udp))
}

/// The inherited socket bound to `addr` (of that type), taken from the
/// pool.
pub fn take(addr: SocketAddr, udp: bool) -> Option<OwnedFd> {
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    let i = pool.iter().position(|s| s.addr == addr && s.udp == udp)?;
    let s = pool.swap_remove(i);
    log::info!(
        "socket activation: listen={} {}from fd {}",
        s.addr,
        if s.name.is_empty() {
            String::new()
        } else {
            format!("name={} ", s.name)
        },
        s.fd.as_raw_fd()
    );
    Some(s.fd)
}

/// The inherited sockets no service claimed, for a warning.
pub fn unclaimed() -> Vec<SocketAddr> {
    let pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    pool.iter().map(|s| s.addr).collect()
}
