//! A room's bot: one program per room, run by the room's hub, that sees
//! every event as a line on stdin and speaks to the room by lines on
//! stdout. Owns the child, its pipes and the line protocol (pure parts
//! table-tested here). Invariants: the hub never waits for the bot (its
//! stdin is non-blocking and its queue bounded: a bot that stops reading
//! loses lines, logged); `stop` leaves nothing of the bot's group running.
//!
//! In:  `join\tID`, `leave\tID`, `msg\tFROM\tTEXT`, `dm\tFROM\tTEXT`.
//! Out: `to\tID\tTEXT` (one member), `all\tTEXT` or any other line (room).
//! TEXT is escaped: `\\` `\n` `\t` `\r` stand for backslash, newline, tab, CR.

use std::fs::File;
use std::io::{self, ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// Bytes queued for a bot that does not read, before lines are dropped.
const QUEUE_LIMIT: usize = 1 << 20;

/// What the bot asked for.
#[derive(Debug, PartialEq, Eq)]
pub enum Says {
    All(Vec<u8>),
    To(String, Vec<u8>),
}

pub struct Bot {
    child: Child,
    stdin: Option<File>,
    queue: Vec<u8>,
    stdout: Option<File>,
    pending: Vec<u8>,
    dropped: u64,
}

impl Bot {
    /// Starts `argv` in its own process group, `JAWAS_ROOM` set to the room.
    pub fn start(argv: &[String], room: &str) -> io::Result<Bot> {
        let mut child = Command::new(&argv[0])
            .args(&argv[1..])
            .env("JAWAS_ROOM", room)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()?;
        let stdin = File::from(OwnedFd::from(child.stdin.take().expect("piped")));
        let stdout = File::from(OwnedFd::from(child.stdout.take().expect("piped")));
        for f in [&stdin, &stdout] {
            nix::fcntl::fcntl(
                f.as_raw_fd(),
                nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
            )
            .map_err(io::Error::from)?;
        }
        Ok(Bot {
            child,
            stdin: Some(stdin),
            queue: Vec::new(),
            stdout: Some(stdout),
            pending: Vec::new(),
            dropped: 0,
        })
    }

    /// Queues one line (fields joined by tabs, the last one escaped).
    pub fn tell(&mut self, fields: &[&str], text: Option<&[u8]>) {
        if self.stdin.is_none() {
            return;
        }
        let mut line = fields.join("\t");
        if let Some(t) = text {
            line.push('\t');
            line.push_str(&escape(t));
        }
        line.push('\n');
        if self.queue.len() + line.len() > QUEUE_LIMIT {
            self.dropped += 1;
            if self.dropped.is_power_of_two() {
                log!(
                    "jawas-ws room: the bot does not read its stdin; {} lines dropped",
                    self.dropped
                );
            }
            return;
        }
        self.queue.extend_from_slice(line.as_bytes());
        self.flush();
    }

    fn flush(&mut self) {
        while let (Some(stdin), false) = (self.stdin.as_mut(), self.queue.is_empty()) {
            match stdin.write(&self.queue) {
                Ok(n) if n > 0 => drop(self.queue.drain(..n)),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                _ => {
                    self.stdin = None;
                    self.queue.clear();
                }
            }
        }
    }

    /// Descriptors and events to poll.
    pub fn poll_entries(&self) -> Vec<(RawFd, i16)> {
        let mut v = Vec::new();
        if let Some(o) = &self.stdout {
            v.push((o.as_raw_fd(), libc::POLLIN));
        }
        if let (Some(i), false) = (&self.stdin, self.queue.is_empty()) {
            v.push((i.as_raw_fd(), libc::POLLOUT));
        }
        v
    }

    /// After poll: writes queued lines, reads what the bot said. `None`
    /// once its stdout has ended.
    pub fn pump(&mut self) -> Option<Vec<Says>> {
        self.flush();
        let stdout = self.stdout.as_mut()?;
        let mut buf = [0u8; 16384];
        loop {
            match stdout.read(&mut buf) {
                Ok(0) => {
                    self.stdout = None;
                    break;
                }
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => {
                    self.stdout = None;
                    break;
                }
            }
        }
        let mut says = Vec::new();
        while let Some(i) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=i).collect();
            says.push(parse_line(&line[..line.len() - 1]));
        }
        match (&self.stdout, says.is_empty()) {
            (None, true) => None,
            _ => Some(says),
        }
    }

    /// Closes its stdin, gives it `grace` to exit, then SIGTERM and
    /// SIGKILL to its group.
    pub fn stop(&mut self, grace: Duration) {
        self.stdin = None;
        self.stdout = None;
        let pgid = Pid::from_raw(self.child.id() as i32);
        let wait = |child: &mut Child, limit: Duration| {
            let end = Instant::now() + limit;
            while Instant::now() < end {
                if let Ok(Some(_)) = child.try_wait() {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            false
        };
        if !wait(&mut self.child, grace) {
            let _ = killpg(pgid, Signal::SIGTERM);
            if !wait(&mut self.child, grace) {
                let _ = killpg(pgid, Signal::SIGKILL);
            }
        }
        let _ = killpg(pgid, Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

fn parse_line(line: &[u8]) -> Says {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if let Some(rest) = line.strip_prefix(b"to\t") {
        if let Some(i) = rest.iter().position(|&b| b == b'\t') {
            let id = String::from_utf8_lossy(&rest[..i]).into_owned();
            return Says::To(id, unescape(&rest[i + 1..]));
        }
    }
    let text = line.strip_prefix(b"all\t").unwrap_or(line);
    Says::All(unescape(text))
}

pub fn escape(text: &[u8]) -> String {
    let mut s = String::with_capacity(text.len());
    for c in String::from_utf8_lossy(text).chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\t' => s.push_str("\\t"),
            '\r' => s.push_str("\\r"),
            c => s.push(c),
        }
    }
    s
}

pub fn unescape(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut it = text.iter();
    while let Some(&b) = it.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match it.next() {
            Some(b'n') => out.push(b'\n'),
            Some(b't') => out.push(b'\t'),
            Some(b'r') => out.push(b'\r'),
            Some(&o) => out.push(o),
            None => out.push(b'\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_from_the_bot() {
        let all = |t: &[u8]| Says::All(t.to_vec());
        let cases: &[(&[u8], Says)] = &[
            (b"hello", all(b"hello")),
            (b"all\thi\\tthere", all(b"hi\tthere")),
            (
                b"to\tab12\tpsst\\n",
                Says::To("ab12".into(), b"psst\n".to_vec()),
            ),
            (b"to\tnotab", all(b"to\tnotab")),
            (b"x\r", all(b"x")),
            (b"", all(b"")),
        ];
        for (line, want) in cases {
            assert_eq!(&parse_line(line), want, "{line:?}");
        }
    }

    #[test]
    fn escaping_round_trips() {
        let cases: &[(&[u8], &str)] = &[
            (b"plain", "plain"),
            (b"a\tb\nc\\d\r", "a\\tb\\nc\\\\d\\r"),
            (b"", ""),
        ];
        for (raw, esc) in cases {
            assert_eq!(escape(raw), *esc);
            assert_eq!(unescape(esc.as_bytes()), *raw);
        }
        assert_eq!(unescape(b"end\\"), b"end\\");
        assert_eq!(unescape(b"\\q"), b"q");
    }
}
