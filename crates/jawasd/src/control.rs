//! The control socket's transport: the listening Unix socket, each client's
//! bounded buffers, and the request line protocol (JSON lines, or plain
//! words for people typing into socat).
//!
//! Owns the socket file (created with the configured mode, removed at exit
//! only while it is still ours) and the byte buffers. It does not know what
//! a request does: the loop answers (see `server/control.rs`).
//!
//! Invariants:
//! - **Nothing here blocks**: every socket is non-blocking; output the
//!   kernel does not take waits in the client's buffer.
//! - **A client's buffers are bounded**: input past `MAX_LINE` without a
//!   newline, or output past `MAX_OUTPUT` not yet read, drops the client;
//!   a stuck reader costs jawasd at most that much memory and no time.

use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use serde_json::Value;

/// Longest request line.
pub const MAX_LINE: usize = 64 * 1024;
/// Most answer and event bytes waiting for one client to read them.
pub const MAX_OUTPUT: usize = 256 * 1024;
/// Most control clients at once; more are told so and closed.
pub const MAX_CLIENTS: usize = 64;
/// Requests answered per client per loop wakeup, so one client sending
/// many cannot hold the loop.
pub const LINES_PER_WAKEUP: usize = 16;
/// A client (other than an `events` subscriber) that neither sends nor
/// takes anything for this long is closed, so idle connections cannot
/// hold the `MAX_CLIENTS` slots.
pub const IDLE: std::time::Duration = std::time::Duration::from_secs(10);

/// The listening control socket.
pub struct ControlSocket {
    pub listener: UnixListener,
    pub path: PathBuf,
    /// (device, inode) of the socket file we created: it is removed at exit
    /// only if it is still this one (a successor may have replaced it).
    id: (u64, u64),
    /// The permission bits it was created with.
    pub mode: libc::mode_t,
}

impl ControlSocket {
    /// Creates the socket at `path` with permissions `mode`. It is bound
    /// under a temporary name and renamed into place, so a running jawasd's
    /// socket is replaced atomically (an upgrade, or a reload that changes
    /// the mode). The umask makes bind(2) create it with exactly `mode`:
    /// no chmod by path afterwards, which a symlink put in its place could
    /// turn onto another file. A socket at `path` that another process
    /// still answers on is not taken over unless `replace_live` (our own
    /// socket, or our predecessor's in an upgrade).
    pub fn bind(path: &Path, mode: libc::mode_t, replace_live: bool) -> io::Result<ControlSocket> {
        if let Ok(m) = std::fs::symlink_metadata(path) {
            if !m.file_type().is_socket() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "exists and is not a socket",
                ));
            }
            if !replace_live && UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    "another process answers on it (a jawasd running with this control socket?)",
                ));
            }
        }
        let tmp = temp_name(path);
        let _ = std::fs::remove_file(&tmp);
        let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(!mode & 0o777));
        let bound = UnixListener::bind(&tmp);
        nix::sys::stat::umask(old);
        let listener = bound?;
        let done = (|| {
            listener.set_nonblocking(true)?;
            std::fs::rename(&tmp, path)?;
            std::fs::symlink_metadata(path)
        })();
        match done {
            Ok(m) => Ok(ControlSocket {
                listener,
                path: path.to_path_buf(),
                id: (m.dev(), m.ino()),
                mode,
            }),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }
}

impl ControlSocket {
    /// Whether the file at its path is still the socket it created.
    pub fn still_ours(&self) -> bool {
        std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.id)
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        if std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.id) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Whether the peer of `stream` runs as root or as this process's user.
fn peer_is_admin(stream: &UnixStream) -> bool {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    let me = nix::unistd::geteuid().as_raw();
    getsockopt(stream, PeerCredentials).is_ok_and(|c| c.uid() == 0 || c.uid() == me)
}

/// A short name beside `path` (a long one could pass sun_path's limit
/// where `path` itself fits).
fn temp_name(path: &Path) -> PathBuf {
    let name = format!(".jc{}", std::process::id());
    match path.parent() {
        Some(dir) => dir.join(name),
        None => PathBuf::from(name),
    }
}

/// One connected control client.
pub struct Client {
    pub stream: UnixStream,
    input: Vec<u8>,
    output: Vec<u8>,
    /// Bytes of `output` already written.
    sent: usize,
    /// Close once the output is written (the client sent EOF).
    pub closing: bool,
    /// When it last sent or took a byte.
    last_active: std::time::Instant,
    /// The peer runs as root or as jawasd's own user (SO_PEERCRED): only
    /// such a client may change anything (`kill`, `reload`, `drain`);
    /// others (a metrics engine's user, given the socket's group) may
    /// only look.
    pub admin: bool,
}

/// What reading a client gave.
pub struct Input {
    pub lines: Vec<Vec<u8>>,
    /// The client is gone, or broke the protocol: drop it.
    pub gone: bool,
    /// Why, when it broke the protocol.
    pub error: Option<&'static str>,
}

impl Client {
    pub fn new(stream: UnixStream) -> io::Result<Client> {
        stream.set_nonblocking(true)?;
        let admin = peer_is_admin(&stream);
        Ok(Client {
            stream,
            input: Vec::new(),
            output: Vec::new(),
            sent: 0,
            closing: false,
            last_active: std::time::Instant::now(),
            admin,
        })
    }

    /// How long since it last sent or took a byte.
    pub fn idle_for(&self) -> std::time::Duration {
        self.last_active.elapsed()
    }

    /// Reads what has arrived and returns up to `LINES_PER_WAKEUP` whole
    /// lines (the rest stay buffered for the next wakeup).
    pub fn read(&mut self) -> Input {
        let mut out = Input {
            lines: Vec::new(),
            gone: false,
            error: None,
        };
        if self.input.len() <= MAX_LINE {
            let mut buf = [0u8; 8192];
            match self.stream.read(&mut buf) {
                Ok(0) => self.closing = true,
                Ok(n) => {
                    self.input.extend_from_slice(&buf[..n]);
                    self.last_active = std::time::Instant::now();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => out.gone = true,
            }
        }
        while out.lines.len() < LINES_PER_WAKEUP {
            let Some(pos) = self.input.iter().position(|&b| b == b'\n') else {
                break;
            };
            let line: Vec<u8> = self.input.drain(..=pos).collect();
            out.lines.push(line);
        }
        // A last request without its newline, then EOF (`printf status |
        // socat ...`): still a request.
        if self.closing
            && out.lines.len() < LINES_PER_WAKEUP
            && !self.input.is_empty()
            && !self.input.contains(&b'\n')
            && self.input.len() <= MAX_LINE
        {
            out.lines.push(std::mem::take(&mut self.input));
        }
        if self.input.len() > MAX_LINE && !self.input.contains(&b'\n') {
            out.gone = true;
            out.error = Some("request line too long");
        }
        out
    }

    /// Whole lines wait in the input buffer (more than one wakeup's worth).
    pub fn has_lines(&self) -> bool {
        self.input.contains(&b'\n')
    }

    /// Queues one line; false when the client already has more than
    /// `MAX_OUTPUT` bytes unread, so it must be dropped. An answer is
    /// always taken by a client with nothing pending, however long.
    pub fn queue(&mut self, line: &str) -> bool {
        let pending = self.output.len() - self.sent;
        if pending > 0 && pending + line.len() + 1 > MAX_OUTPUT {
            return false;
        }
        self.output.extend_from_slice(line.as_bytes());
        self.output.push(b'\n');
        true
    }

    /// Writes what the kernel takes now; Ok(true) when nothing is left.
    pub fn flush(&mut self) -> io::Result<bool> {
        while self.sent < self.output.len() {
            match self.stream.write(&self.output[self.sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.sent += n;
                    self.last_active = std::time::Instant::now();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.output.clear();
        self.sent = 0;
        Ok(true)
    }
}

/// A request, parsed.
#[derive(Debug, PartialEq)]
pub enum Request {
    Status,
    Connections(Option<String>),
    Kill { id: u64, signal: libc::c_int },
    Reload,
    Drain(String),
    Events,
}

/// Parses one request line: a JSON object `{"cmd": "status", ...}` or the
/// same as words (`status`, `connections web`, `kill 12 KILL`).
pub fn parse(line: &[u8]) -> Result<Request, String> {
    let text = std::str::from_utf8(line).map_err(|_| "request is not UTF-8".to_string())?;
    let text = text.trim();
    let (cmd, arg, extra): (String, Option<String>, Option<String>) = if text.starts_with('{') {
        let v: Value =
            serde_json::from_str(text).map_err(|e| format!("request is not valid JSON: {e}"))?;
        let Some(obj) = v.as_object() else {
            return Err("request is not a JSON object".into());
        };
        // Each field by its name and type: a `service` of the wrong type
        // must not widen `connections` to every service, nor `service`
        // stand in for `id`.
        let field = |k: &str, numbers: bool| -> Result<Option<String>, String> {
            match obj.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(Value::Number(n)) if numbers => Ok(Some(n.to_string())),
                Some(_) => Err(format!("\"{k}\" has the wrong type")),
            }
        };
        let cmd = field("cmd", false)?.ok_or("request has no \"cmd\" string")?;
        let arg = match cmd.as_str() {
            "kill" => field("id", true)?,
            _ => field("service", false)?,
        };
        (cmd, arg, field("signal", false)?)
    } else {
        let mut words = text.split_whitespace().map(str::to_string);
        let cmd = words.next().ok_or("empty request")?;
        (cmd, words.next(), words.next())
    };
    match cmd.as_str() {
        "status" => Ok(Request::Status),
        "connections" => Ok(Request::Connections(arg)),
        "reload" => Ok(Request::Reload),
        "events" => Ok(Request::Events),
        "drain" => Ok(Request::Drain(arg.ok_or("drain needs a service name")?)),
        "kill" => {
            let id = arg.ok_or("kill needs a connection id (see connections)")?;
            let id = id
                .parse()
                .map_err(|_| format!("kill: '{id}' is not a connection id"))?;
            let signal = match extra.as_deref() {
                None => libc::SIGTERM,
                Some(s) => signal_by_name(s).ok_or(format!(
                    "kill: '{s}' is not a signal name such as TERM or KILL"
                ))?,
            };
            Ok(Request::Kill { id, signal })
        }
        other => Err(format!(
            "unknown command '{other}' (status, connections, kill, reload, drain, events)"
        )),
    }
}

fn signal_by_name(s: &str) -> Option<libc::c_int> {
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    match name {
        "TERM" => Some(libc::SIGTERM),
        "KILL" => Some(libc::SIGKILL),
        "INT" => Some(libc::SIGINT),
        "HUP" => Some(libc::SIGHUP),
        "QUIT" => Some(libc::SIGQUIT),
        "USR1" => Some(libc::SIGUSR1),
        "USR2" => Some(libc::SIGUSR2),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests() {
        let cases: [(&str, Result<Request, &str>); 15] = [
            ("status\n", Ok(Request::Status)),
            ("{\"cmd\":\"status\"}", Ok(Request::Status)),
            ("connections", Ok(Request::Connections(None))),
            (
                "{\"cmd\":\"connections\",\"service\":\"web\"}",
                Ok(Request::Connections(Some("web".into()))),
            ),
            (
                "kill 12",
                Ok(Request::Kill {
                    id: 12,
                    signal: libc::SIGTERM,
                }),
            ),
            (
                "{\"cmd\":\"kill\",\"id\":7,\"signal\":\"SIGKILL\"}",
                Ok(Request::Kill {
                    id: 7,
                    signal: libc::SIGKILL,
                }),
            ),
            ("kill x", Err("kill: 'x' is not a connection id")),
            ("kill 1 FOO", Err("kill: 'FOO' is not a signal name")),
            ("drain", Err("drain needs a service name")),
            ("frob", Err("unknown command 'frob'")),
            ("{\"cmd\":", Err("request is not valid JSON")),
            ("{\"id\":1}", Err("request has no \"cmd\" string")),
            (
                "{\"cmd\":\"connections\",\"service\":[\"x\"]}",
                Err("\"service\" has the wrong type"),
            ),
            (
                "{\"cmd\":\"kill\",\"service\":\"3\"}",
                Err("kill needs a connection id"),
            ),
            ("{\"cmd\":1}", Err("\"cmd\" has the wrong type")),
        ];
        for (line, want) in cases {
            match (parse(line.as_bytes()), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{line}"),
                (Err(got), Err(want)) => assert!(got.starts_with(want), "{line}: {got}"),
                (got, want) => panic!("{line}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn output_is_bounded() {
        let (a, _b) = UnixStream::pair().unwrap();
        let mut c = Client::new(a).unwrap();
        let big = "x".repeat(MAX_OUTPUT * 2);
        assert!(c.queue(&big), "an answer to an idle client is taken");
        assert!(!c.queue("more"), "but nothing after it until it is read");
    }
}
