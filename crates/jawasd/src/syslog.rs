//! syslog without syslog(3): datagrams to /dev/log written with
//! MSG_DONTWAIT, so a syslog daemon that stops reading can cost jawasd
//! lines, never time (glibc's syslog(3) blocks on a full socket).
//!
//! Owns the socket, jawasd's default facility and the count of lines the
//! daemon did not take. Invariants: a send never blocks; a daemon that was
//! restarted (ECONNREFUSED, ENOTCONN) is reconnected to once per line;
//! lines it could not take are counted and the count is sent with the
//! next line that goes through.

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::Mutex;

use nix::errno::Errno;
use nix::sys::socket::{send, MsgFlags};

/// Where syslog daemons listen.
pub const SOCKET: &str = "/dev/log";

struct State {
    socket: Option<UnixDatagram>,
    /// For lines whose priority names no facility (jawasd's own log).
    facility: libc::c_int,
    dropped: u64,
}

static STATE: Mutex<State> = Mutex::new(State {
    socket: None,
    facility: libc::LOG_DAEMON,
    dropped: 0,
});

/// The socket's path: /dev/log, or `JAWASD_SYSLOG_SOCKET` (the tests' stand-in).
fn path() -> PathBuf {
    std::env::var_os("JAWASD_SYSLOG_SOCKET").map_or_else(|| PathBuf::from(SOCKET), PathBuf::from)
}

fn connect() -> std::io::Result<UnixDatagram> {
    let s = UnixDatagram::unbound()?;
    s.connect(path())?;
    Ok(s)
}

/// `--syslog FACILITY`: connects now, so a missing daemon is a start-up
/// error naming the socket.
pub fn init(facility: libc::c_int) -> Result<(), String> {
    let socket = connect().map_err(|e| {
        format!(
            "--syslog: {} is not reachable ({}); start a syslog daemon (or systemd-journald), or log to stderr or --log-file instead",
            path().display(),
            crate::errno_text(&e)
        )
    })?;
    if let Ok(mut s) = STATE.lock() {
        s.socket = Some(socket);
        s.facility = facility;
    }
    Ok(())
}

/// One RFC 3164 datagram: `<PRI>Mmm dd hh:mm:ss jawasd[PID]: TEXT`.
pub fn format(priority: libc::c_int, stamp: &str, pid: u32, line: &str) -> String {
    format!("<{priority}>{stamp} jawasd[{pid}]: {line}")
}

fn try_send(state: &mut State, datagram: &[u8]) -> Result<(), Errno> {
    if state.socket.is_none() {
        state.socket = connect().ok();
    }
    let Some(socket) = &state.socket else {
        return Err(Errno::ENOTCONN);
    };
    let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
    match send(socket.as_raw_fd(), datagram, flags) {
        Ok(_) => Ok(()),
        Err(Errno::ECONNREFUSED | Errno::ENOTCONN) => {
            // The daemon was restarted: its socket is a new one.
            state.socket = connect().ok();
            match &state.socket {
                Some(s) => send(s.as_raw_fd(), datagram, flags).map(|_| ()),
                None => Err(Errno::ENOTCONN),
            }
        }
        Err(e) => Err(e),
    }
}

/// Sends `line` with `priority` (facility | level; jawasd's facility when
/// it names none).
pub fn send_line(priority: libc::c_int, line: &str) {
    let Ok(mut state) = STATE.lock() else { return };
    let priority = if priority & libc::LOG_FACMASK == 0 {
        priority | state.facility
    } else {
        priority
    };
    let stamp = crate::timefmt::rfc3164(std::time::SystemTime::now());
    let pid = std::process::id();
    if state.dropped > 0 {
        let note = format!(
            "warn log: {} lines dropped while syslog was not taking them",
            state.dropped
        );
        let warn = (priority & libc::LOG_FACMASK) | libc::LOG_WARNING;
        if try_send(&mut state, format(warn, &stamp, pid, &note).as_bytes()).is_ok() {
            state.dropped = 0;
        }
    }
    let datagram = format(priority, &stamp, pid, line);
    if try_send(&mut state, datagram.as_bytes()).is_err() {
        state.dropped += 1;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn datagrams() {
        assert_eq!(
            super::format(30, "Nov  5 02:23:01", 7, "info ready"),
            "<30>Nov  5 02:23:01 jawasd[7]: info ready"
        );
    }
}
