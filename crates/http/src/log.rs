//! The access log: one line per request, common log format plus the
//! duration, on stderr. When stderr is the connection itself (xinetd hands
//! the socket to fds 0, 1 and 2), the line goes to syslog instead: a log
//! line must never reach the client.
//!
//! Lines on stderr are buffered, as nginx's `access_log ... buffer=` does:
//! many engines share one stderr, and a write per request makes them queue
//! on that file. A buffer is written whole (complete lines, one write of at
//! most 4 KiB, so lines never interleave) when it fills, when its oldest
//! line is a second old, when the engine waits idle, and when it exits or
//! is asked to stop. Only a SIGKILL or a crash can lose buffered lines.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::io::Write;
use std::time::{Duration, Instant};

use crate::{Peer, Request};

pub enum AccessLog {
    Stderr(RefCell<Buffer>),
    Syslog,
    Off,
}

/// Lines not yet written, and when the oldest was added.
#[derive(Default)]
pub struct Buffer {
    data: Vec<u8>,
    since: Option<Instant>,
    /// Write every line at once (no buffering).
    unbuffered: bool,
}

/// Largest buffer written in one go: within PIPE_BUF, so a write to a pipe
/// is atomic too.
const BUFFER_MAX: usize = 4096;
const BUFFER_AGE: Duration = Duration::from_secs(1);

impl AccessLog {
    /// Stderr (buffered), unless fd 2 is the same open file as `output`,
    /// the descriptor responses go to.
    pub fn detect(output: i32) -> AccessLog {
        if same_file(output, 2) {
            AccessLog::Syslog
        } else {
            AccessLog::Stderr(RefCell::new(Buffer::default()))
        }
    }

    /// Stderr with one write per line.
    pub fn unbuffered(self) -> AccessLog {
        match self {
            AccessLog::Stderr(b) => {
                b.borrow_mut().unbuffered = true;
                AccessLog::Stderr(b)
            }
            other => other,
        }
    }

    /// The client's address as the log has always shown it: IPv4 dotted,
    /// IPv6 in its compact form (no brackets, no port), `-` when unknown.
    pub fn client_text(peer: &Peer) -> String {
        peer.remote_ip
            .map_or_else(|| "-".to_string(), |ip| ip.to_string())
    }

    /// Writes out buffered lines.
    pub fn flush(&self) {
        if let AccessLog::Stderr(b) = self {
            let mut b = b.borrow_mut();
            if !b.data.is_empty() {
                let _ = std::io::stderr().lock().write_all(&b.data);
                b.data.clear();
            }
            b.since = None;
        }
    }

    /// Writes out buffered lines once the oldest is a second old.
    pub fn flush_if_old(&self) {
        if let AccessLog::Stderr(b) = self {
            if b.borrow().since.is_some_and(|t| t.elapsed() >= BUFFER_AGE) {
                self.flush();
            }
        }
    }

    /// `192.0.2.7 - - [24/Nov/2026:13:45:12 +0000] "GET / HTTP/1.1" 200 1234 0.000123`
    /// `client` is `client_text` of the connection's peer.
    pub fn request(&self, client: &str, req: &Request, status: u16, bytes: u64, took: Duration) {
        if matches!(self, AccessLog::Off) {
            return;
        }
        // Built in one reused string: this runs once per request.
        let mut line = String::with_capacity(160);
        line.push_str(client);
        line.push_str(" - - [");
        clf_time(&mut line);
        line.push_str("] \"");
        clean_into(&mut line, &req.method, 32);
        line.push(' ');
        clean_into(&mut line, &req.target, 1024);
        line.push(' ');
        line.push_str(req.version());
        let _ = write!(line, "\" {status} {bytes} {:.6}", took.as_secs_f64());
        self.line(&line);
    }

    /// A line for a request that could not be parsed.
    pub fn failure(&self, client: &str, status: u16, why: &str) {
        if matches!(self, AccessLog::Off) {
            return;
        }
        let mut line = String::with_capacity(160);
        line.push_str(client);
        line.push_str(" - - [");
        clf_time(&mut line);
        let _ = write!(line, "] \"-\" {status} 0 - ");
        clean_into(&mut line, why, 200);
        self.line(&line);
    }

    /// Any other diagnostic line (engine errors).
    pub fn line(&self, text: &str) {
        match self {
            AccessLog::Stderr(b) => {
                // Room for the line, or out with what is there first.
                if b.borrow().data.len() + text.len() + 1 > BUFFER_MAX {
                    self.flush();
                }
                let due = {
                    let mut b = b.borrow_mut();
                    b.data.extend_from_slice(text.as_bytes());
                    b.data.push(b'\n');
                    let since = *b.since.get_or_insert_with(Instant::now);
                    b.unbuffered || b.data.len() >= BUFFER_MAX || since.elapsed() >= BUFFER_AGE
                };
                if due {
                    self.flush();
                }
            }
            AccessLog::Syslog => {
                if let Ok(c) = std::ffi::CString::new(text) {
                    // SAFETY: a "%s" format with one C string argument.
                    unsafe {
                        libc::syslog(
                            libc::LOG_DAEMON | libc::LOG_INFO,
                            c"%s".as_ptr(),
                            c.as_ptr(),
                        )
                    };
                }
            }
            AccessLog::Off => {}
        }
    }
}

fn same_file(a: i32, b: i32) -> bool {
    // SAFETY: fstat into stat buffers we own.
    unsafe {
        let mut sa: libc::stat = std::mem::zeroed();
        let mut sb: libc::stat = std::mem::zeroed();
        libc::fstat(a, &mut sa) == 0
            && libc::fstat(b, &mut sb) == 0
            && sa.st_dev == sb.st_dev
            && sa.st_ino == sb.st_ino
    }
}

/// Appends attacker-controlled text made safe for one log line: printable
/// ASCII except `"` and `\\` stays; everything else becomes `\\xNN`; cut at
/// `max` bytes.
fn clean_into(out: &mut String, s: &str, max: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let start = out.len();
    for b in s.bytes() {
        if out.len() - start >= max {
            out.push_str("...");
            break;
        }
        if (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' {
            out.push(b as char);
        } else {
            out.push_str("\\x");
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
}

/// Appends the CLF time (`24/Nov/2026:13:45:12 +0000`), formatted once
/// per second.
fn clf_time(out: &mut String) {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    thread_local! {
        static CACHE: RefCell<(libc::time_t, String)> = const { RefCell::new((0, String::new())) };
    }
    // SAFETY: time(NULL) has no memory effects.
    let now = unsafe { libc::time(std::ptr::null_mut()) };
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != now || c.1.is_empty() {
            // SAFETY: gmtime_r into a tm we own.
            let tm = unsafe {
                let mut tm: libc::tm = std::mem::zeroed();
                libc::gmtime_r(&now, &mut tm);
                tm
            };
            c.1.clear();
            let _ = write!(
                c.1,
                "{:02}/{}/{}:{:02}:{:02}:{:02} +0000",
                tm.tm_mday,
                MONTHS[tm.tm_mon.clamp(0, 11) as usize],
                tm.tm_year + 1900,
                tm.tm_hour,
                tm.tm_min,
                tm.tm_sec
            );
            c.0 = now;
        }
        out.push_str(&c.1);
    });
}

#[cfg(test)]
mod tests {
    use crate::Peer;

    #[test]
    fn client_address_as_logged() {
        // (TCPREMOTEIP, REMOTE_HOST, logged)
        let table = [
            (Some("192.0.2.7"), None, "192.0.2.7"),
            (Some("::1"), None, "::1"),
            (Some("2001:0db8:0:0:0:0:0:0001"), None, "2001:db8::1"),
            (Some("::ffff:10.0.0.1"), None, "10.0.0.1"),
            (None, Some("203.0.113.5"), "203.0.113.5"),
            (None, None, "-"),
            (Some("not an address"), None, "-"),
        ];
        for (ip, host, want) in table {
            let peer = Peer::from_vars(|k| match k {
                "TCPREMOTEIP" => ip.map(String::from),
                "TCPREMOTEPORT" => Some("4711".into()),
                "REMOTE_HOST" => host.map(String::from),
                _ => None,
            });
            let line = super::AccessLog::client_text(&peer);
            assert_eq!(line, want, "{ip:?} {host:?}");
        }
    }

    #[test]
    fn clean_cases() {
        let clean = |s: &str, max: usize| {
            let mut out = String::new();
            super::clean_into(&mut out, s, max);
            out
        };
        assert_eq!(clean("GET", 10), "GET");
        assert_eq!(clean("/a\"b\\c\x1b[", 100), "/a\\x22b\\x5cc\\x1b[");
        assert_eq!(clean("abcdef", 3), "abc...");
    }
}
