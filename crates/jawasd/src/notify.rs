//! systemd's readiness protocol (sd_notify(3)), spoken without libsystemd:
//! one datagram per state change to the socket named by NOTIFY_SOCKET.
//!
//! Owns that socket and the watchdog interval. Invariants: nothing here
//! blocks (a non-blocking datagram send; a full or absent receiver only
//! loses the message, never stalls the loop); without NOTIFY_SOCKET every
//! call does nothing, so jawasd behaves the same under any supervisor;
//! the variables are removed from jawasd's environment at start, so no
//! engine (not even with `pass_env = ["*"]`) inherits them.

#![forbid(unsafe_code)]

use std::os::unix::net::{SocketAddr as UnixAddr, UnixDatagram};
use std::time::Duration;

#[derive(Default)]
pub struct Notifier {
    target: Option<(UnixDatagram, UnixAddr)>,
    /// NOTIFY_SOCKET as given, for a successor started by an upgrade.
    path: Option<std::ffi::OsString>,
    /// How often to send WATCHDOG=1: half of WATCHDOG_USEC.
    watchdog: Option<Duration>,
}

impl Notifier {
    /// Reads NOTIFY_SOCKET (a path, or `@name` for the abstract
    /// namespace) and WATCHDOG_USEC (honoured when WATCHDOG_PID is unset
    /// or names jawasd), then removes them and WATCHDOG_PID from the
    /// environment.
    pub fn from_env() -> Notifier {
        let socket = std::env::var_os("NOTIFY_SOCKET");
        let usec = std::env::var("WATCHDOG_USEC").ok();
        let pid = std::env::var("WATCHDOG_PID").ok();
        for k in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] {
            std::env::remove_var(k);
        }
        let ours = pid.is_none_or(|p| p.trim() == std::process::id().to_string());
        let watchdog = usec
            .and_then(|u| u.trim().parse::<u64>().ok())
            .filter(|u| *u > 0 && ours)
            .map(|u| Duration::from_micros(u / 2));
        let path = socket.clone();
        let target = socket.and_then(|s| {
            let bytes = std::os::unix::ffi::OsStrExt::as_bytes(s.as_os_str());
            let addr = match bytes.strip_prefix(b"@") {
                Some(name) => {
                    use std::os::linux::net::SocketAddrExt;
                    UnixAddr::from_abstract_name(name).ok()?
                }
                None => UnixAddr::from_pathname(std::path::Path::new(&s)).ok()?,
            };
            let sock = UnixDatagram::unbound().ok()?;
            sock.set_nonblocking(true).ok()?;
            Some((sock, addr))
        });
        Notifier {
            target,
            path,
            watchdog,
        }
    }

    /// NOTIFY_SOCKET as jawasd got it.
    pub fn socket_path(&self) -> Option<&std::ffi::OsStr> {
        self.path.as_deref()
    }

    fn send(&self, msg: &str) {
        if let Some((sock, addr)) = &self.target {
            if let Err(e) = sock.send_to_addr(msg.as_bytes(), addr) {
                log::debug!("sd_notify '{}': {e}", msg.replace('\n', " "));
            }
        }
    }

    /// Every listener is bound: the service is up.
    pub fn ready(&self, status: &str) {
        self.send(&format!(
            "READY=1\nSTATUS={status}\nMAINPID={}",
            std::process::id()
        ));
    }

    /// A reload (SIGHUP) begins; `ready` follows when it is over, whatever
    /// its outcome.
    pub fn reloading(&self) {
        self.send(&format!("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec()));
    }

    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }

    pub fn watchdog_ping(&self) {
        self.send("WATCHDOG=1");
    }

    /// How often the loop must call `watchdog_ping`, when systemd asked.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog
    }
}

/// CLOCK_MONOTONIC in microseconds, as systemd compares reload times.
fn monotonic_usec() -> u64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1000);
    t.unwrap_or(0)
}
