//! Rooms: WebSocket connections (each its own jawas-ws process) that
//! share messages. A room on one host is a hub process (`hub`) that the
//! members' processes connect to over a Unix socket under the room
//! directory; with a broker (`broker`: Redis or NATS) the hubs of every
//! host pass the room's events through it. Owns the room settings, the
//! room name rules, connection ids and joining (starting the hub when
//! there is none). Invariants: a room name is safe as a file name and a
//! broker subject; at most one hub per room per host (started under
//! `hub.lock`).

/// A line on stderr that never panics: a hub outlives the engine that
/// started it, and the pipe its stderr is may be gone (eprintln! panics
/// on EPIPE).
macro_rules! log {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod bot;
pub mod broker;
pub mod hub;
pub mod member;
pub mod options;
pub mod wire;
pub mod with_program;

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hub::HubConfig;
use tungstenite::protocol::frame::coding::CloseCode;
use wire::Event;

pub const HUB_SOCK: &str = "hub.sock";
const HUB_LOCK: &str = "hub.lock";
/// Subject (NATS) or channel (Redis) of room R: this prefix and R.
pub const SUBJECT_PREFIX: &str = "jawas.room.";
/// How long a new hub has to answer, and a join to be answered.
const START_WAIT: Duration = Duration::from_secs(3);
const JOIN_TRIES: usize = 4;

/// What to do with a member whose client does not keep up.
#[derive(Debug, Clone)]
pub struct RoomConfig {
    /// `--room NAME`: every connection joins it.
    pub fixed: Option<String>,
    /// `--room-path PREFIX`: the room is the URL path after PREFIX.
    pub path_prefix: Option<String>,
    pub dir: PathBuf,
    pub echo: bool,
    pub events: bool,
    pub bot: Vec<String>,
    pub linger: Option<Duration>,
    pub max_members: Option<usize>,
    pub max_rooms: Option<usize>,
    /// Messages per second a member may send (bursts of as many).
    pub rate: Option<f64>,
    /// Bytes that may wait for a slow client before it is cut.
    pub queue: usize,
    pub slow_code: CloseCode,
    /// On losing the hub or broker: close (1011) instead of a system message.
    pub lost_close: bool,
    pub broker: Option<String>,
    pub host_id: String,
}

/// Why a connection could not join.
#[derive(Debug)]
pub enum JoinError {
    Full,
    /// The hub cut this member (it did not read); it may not come back.
    Cut(CloseCode),
    TooManyRooms,
    Failed(String),
}

impl std::fmt::Display for JoinError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JoinError::Full => f.write_str("the room is full"),
            JoinError::Cut(_) => f.write_str("cut by the hub for not reading"),
            JoinError::TooManyRooms => f.write_str("too many rooms"),
            JoinError::Failed(why) => f.write_str(why),
        }
    }
}

impl JoinError {
    pub fn close_code(&self) -> CloseCode {
        match self {
            JoinError::Full | JoinError::TooManyRooms => CloseCode::Again,
            JoinError::Cut(code) => *code,
            JoinError::Failed(_) => CloseCode::Error,
        }
    }
}

impl RoomConfig {
    /// The room a request path is for: `None` when it names none.
    pub fn room_for(&self, path: &str) -> Option<String> {
        if let Some(r) = &self.fixed {
            return Some(r.clone());
        }
        let prefix = self.path_prefix.as_deref()?;
        let name = path.split('?').next()?.strip_prefix(prefix)?;
        valid_name(name).then(|| name.to_string())
    }

    fn hub_config(&self, room: &str) -> HubConfig {
        HubConfig {
            dir: self.dir.clone(),
            room: room.to_string(),
            max_members: self.max_members,
            linger: self.linger,
            bot: self.bot.clone(),
            broker: self.broker.clone(),
            subject: SUBJECT_PREFIX.to_string(),
            events: self.events,
        }
    }

    /// Joins `room` as `id`: connects to its hub (starting it when there
    /// is none) and waits for the welcome. The connection, blocking.
    pub fn join(&self, room: &str, id: &str) -> Result<UnixStream, JoinError> {
        safe_dir(&self.dir).map_err(JoinError::Failed)?;
        let room_dir = self.dir.join(room);
        let mut last = String::from("no answer");
        for _ in 0..JOIN_TRIES {
            let mut stream = match UnixStream::connect(room_dir.join(HUB_SOCK)) {
                Ok(s) => s,
                Err(_) => self.start_hub(room)?,
            };
            match handshake(&mut stream, id) {
                Ok(Event::Welcome) => return Ok(stream),
                Ok(Event::Full) => return Err(JoinError::Full),
                Ok(Event::Cut) => return Err(JoinError::Cut(self.slow_code)),
                Ok(_) => last = "the hub answered the join with something else".into(),
                // A hub that was leaving just as we came: try again.
                Err(e) => last = e.to_string(),
            }
        }
        Err(JoinError::Failed(format!("room {room}: {last}")))
    }

    /// Starts the room's hub unless another member just did (under
    /// hub.lock); a connection to it.
    fn start_hub(&self, room: &str) -> Result<UnixStream, JoinError> {
        let fail =
            |what: &str, e: io::Error| JoinError::Failed(format!("room {room}: {what}: {e}"));
        let room_dir = self.dir.join(room);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&room_dir)
            .map_err(|e| fail(&format!("cannot create {}", room_dir.display()), e))?;
        let _lock = lock_file(&room_dir).map_err(|e| fail("hub.lock", e))?;
        let sock = room_dir.join(HUB_SOCK);
        if let Ok(s) = UnixStream::connect(&sock) {
            return Ok(s);
        }
        if let Some(max) = self.max_rooms {
            if live_rooms(&self.dir) >= max {
                return Err(JoinError::TooManyRooms);
            }
        }
        let exe = std::env::current_exe().map_err(|e| fail("own executable", e))?;
        let mut cmd = Command::new(exe);
        cmd.arg(HUB_FLAG)
            .args(self.hub_config(room).to_args())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .current_dir("/");
        // The hub logs where this engine does, unless that is the client's
        // socket (stderr = "socket"), which it must not hold.
        if stderr_is_socket() {
            cmd.stderr(Stdio::null());
        }
        // SAFETY: between fork and exec the closure calls only setsid,
        // which is async-signal-safe, and touches no memory of ours.
        unsafe {
            cmd.pre_exec(|| {
                // Its own session: it outlives this connection and must
                // not get the signals meant for this engine's group.
                libc::setsid();
                Ok(())
            });
        }
        cmd.spawn().map_err(|e| fail("cannot start the hub", e))?;
        let end = Instant::now() + START_WAIT;
        loop {
            match UnixStream::connect(&sock) {
                Ok(s) => return Ok(s),
                Err(e) if Instant::now() >= end => {
                    return Err(fail("the hub did not come up", e));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }
}

/// The argument that makes jawas-ws run as a room's hub.
pub const HUB_FLAG: &str = "--room-hub";

/// Sends the join and reads the answer, within START_WAIT. Reads that
/// one frame exactly: what the hub sends next (the bot's greeting, say)
/// stays in the socket for the member.
fn handshake(stream: &mut UnixStream, id: &str) -> io::Result<Event> {
    stream.set_read_timeout(Some(START_WAIT))?;
    stream.set_write_timeout(Some(START_WAIT))?;
    stream.write_all(&Event::Join(id.to_string()).frame())?;
    let mut len = [0u8; 4];
    stream.read_exact(&mut len)?;
    let n = u32::from_be_bytes(len) as usize;
    if n > 64 {
        return Err(io::Error::other("the hub's answer is not a join's"));
    }
    let mut body = vec![0u8; n];
    stream.read_exact(&mut body)?;
    Event::decode(&body).ok_or_else(|| io::Error::other("bad frame"))
}

/// An exclusive flock on DIR/hub.lock, released when the file closes.
pub fn lock_file(room_dir: &Path) -> io::Result<File> {
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(room_dir.join(HUB_LOCK))?;
    loop {
        // SAFETY: flock takes a descriptor we own (open for the call) and
        // an integer operation; no memory is passed.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(f);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// The rooms directory, once it exists, must be ours and writable only
/// by us: another user's directory (made first under /tmp) could hold a
/// socket posing as a hub, and read every room. Created here if missing.
fn safe_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let _ = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir);
    let meta = std::fs::symlink_metadata(dir)
        .map_err(|e| format!("rooms directory {}: {e}", dir.display()))?;
    let me = nix::unistd::geteuid().as_raw();
    if !meta.is_dir() || meta.uid() != me || meta.mode() & 0o022 != 0 {
        return Err(format!(
            "rooms directory {}: not a directory of user {me} that only it can write",
            dir.display()
        ));
    }
    Ok(())
}

/// Rooms with a hub now (a socket that answers) under `dir`.
fn live_rooms(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| UnixStream::connect(e.path().join(HUB_SOCK)).is_ok())
        .count()
}

fn stderr_is_socket() -> bool {
    nix::sys::stat::fstat(2).is_ok_and(|s| s.st_mode & libc::S_IFMT == libc::S_IFSOCK)
}

/// Room names: 1 to 64 of A-Z a-z 0-9 `_` `-` (a file name and a broker
/// subject token as they are).
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A connection id unique across hosts: the host's id and 48 random bits.
pub fn new_id(host: &str) -> String {
    let mut r = [0u8; 6];
    if File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut r))
        .is_err()
    {
        // Without randomness: the pid and the clock still differ.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let v = t ^ (u64::from(std::process::id()) << 32);
        r.copy_from_slice(&v.to_le_bytes()[..6]);
    }
    let hex: String = r.iter().map(|b| format!("{b:02x}")).collect();
    format!("{host}-{hex}")
}

/// This host's default id: 8 hex digits of /etc/machine-id, else of the
/// host name's hash.
pub fn default_host_id() -> String {
    if let Ok(m) = std::fs::read_to_string("/etc/machine-id") {
        let m = m.trim();
        if m.len() >= 8 && m.bytes().all(|b| b.is_ascii_hexdigit()) {
            return m[..8].to_string();
        }
    }
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    // FNV-1a: stable across runs, unlike std's hasher.
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    format!("{:08x}", h as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names() {
        let cases = [
            ("lobby", true),
            ("a-b_C9", true),
            ("", false),
            (".hidden", false),
            ("a/b", false),
            ("a.b", false),
            ("é", false),
            (&"x".repeat(64), true),
            (&"x".repeat(65), false),
        ];
        for (name, ok) in cases {
            assert_eq!(valid_name(name), ok, "{name}");
        }
    }

    #[test]
    fn rooms_from_paths() {
        let cfg = |fixed: Option<&str>, prefix: Option<&str>| RoomConfig {
            fixed: fixed.map(String::from),
            path_prefix: prefix.map(String::from),
            dir: "/tmp".into(),
            echo: false,
            events: false,
            bot: vec![],
            linger: None,
            max_members: None,
            max_rooms: None,
            rate: None,
            queue: 1,
            slow_code: CloseCode::Again,
            lost_close: false,
            broker: None,
            host_id: "h".into(),
        };
        let rooms = cfg(None, Some("/rooms/"));
        let cases = [
            ("/rooms/lobby", Some("lobby")),
            ("/rooms/lobby?x=1", Some("lobby")),
            ("/rooms/", None),
            ("/rooms/a/b", None),
            ("/rooms/..", None),
            ("/other/lobby", None),
        ];
        for (path, want) in cases {
            assert_eq!(rooms.room_for(path).as_deref(), want, "{path}");
        }
        assert_eq!(
            cfg(Some("all"), None).room_for("/x").as_deref(),
            Some("all")
        );
    }

    #[test]
    fn ids_differ_and_name_the_host() {
        let a = new_id("h1");
        let b = new_id("h1");
        assert_ne!(a, b);
        assert!(a.starts_with("h1-") && a.len() == 15, "{a}");
        let h = default_host_id();
        assert_eq!(h.len(), 8, "{h}");
    }
}
