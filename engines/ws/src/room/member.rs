//! One connection's side of a room: the pump's backend when the
//! connection is in a room. Client messages become room events (a JSON
//! object with "to" addresses one member or the bot); room events become
//! JSON messages for the client. Owns the connection to the hub, the
//! member's send-rate bucket and what happens when the hub or broker goes
//! away (a system message and rejoining, or close 1011). Invariants: the
//! hub is read at once whatever the client does (`read_ahead`), so a slow
//! client fills only its own bounded queue (the pump cuts it), never the
//! hub's; nothing here blocks except rejoining after a loss.

use std::fs::File;
use std::io::{self, ErrorKind, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::Message;

use super::wire::{take_frames, Event};
use super::{JoinError, RoomConfig};
use crate::pump::Backend;

/// Bytes of client messages waiting for the hub before the client is
/// not read (pushing back on it).
const OUT_LIMIT: usize = 256 << 10;
/// How often a member that lost its hub tries to rejoin.
const REJOIN_EVERY: Duration = Duration::from_millis(250);

enum State {
    In(UnixStream),
    /// Lost the hub; rejoining on each timer tick.
    Lost,
    /// Ends with this code at the next read.
    Ending(CloseCode),
}

pub struct Member<'a> {
    cfg: &'a RoomConfig,
    room: String,
    id: String,
    state: State,
    input: Vec<u8>,
    out: Vec<u8>,
    timer: Timer,
    bucket: Option<Bucket>,
}

impl<'a> Member<'a> {
    /// Joins `room`; the member and the welcome for its client.
    pub fn join(cfg: &'a RoomConfig, room: &str) -> Result<(Member<'a>, Message), JoinError> {
        let id = super::new_id(&cfg.host_id);
        let stream = cfg.join(room, &id)?;
        stream
            .set_nonblocking(true)
            .map_err(|e| JoinError::Failed(e.to_string()))?;
        let timer = Timer::new().map_err(|e| JoinError::Failed(format!("timerfd: {e}")))?;
        let welcome = json!({"type": "welcome", "id": id, "room": room}).to_string();
        let m = Member {
            cfg,
            room: room.to_string(),
            id,
            state: State::In(stream),
            input: Vec::new(),
            out: Vec::new(),
            timer,
            bucket: cfg.rate.map(Bucket::new),
        };
        Ok((m, Message::text(welcome)))
    }

    /// The code to close with once `read_output` said the end.
    pub fn close_code(&self) -> CloseCode {
        match self.state {
            State::Ending(c) => c,
            _ => CloseCode::Error,
        }
    }

    /// Says `text` to the room as this member (a program's line: no rate
    /// limit, the same addressing as a client's message).
    pub fn say(&mut self, text: &str) {
        if let State::In(_) = self.state {
            self.out.extend_from_slice(&parse_client(text).frame());
            self.write_input();
        }
    }

    /// The hub connection while messages wait to be written to it.
    pub fn hub_blocked(&self) -> Option<BorrowedFd<'_>> {
        self.input_blocked()
    }

    /// Ends the member at the next read, closing with `code`.
    pub fn end(&mut self, code: CloseCode) {
        self.state = State::Ending(code);
        self.timer.arm(Duration::from_nanos(1));
    }

    /// The hub or broker is gone: close, or say so and rejoin.
    fn lost(&mut self, what: &str, rejoin: bool, out: &mut Vec<Message>) {
        eprintln!("jawas-ws room {}: {what}", self.room);
        if self.cfg.lost_close {
            self.end(CloseCode::Error);
        } else {
            out.push(system(what));
            if rejoin {
                self.state = State::Lost;
                self.out.clear();
                self.timer.arm(REJOIN_EVERY);
            }
        }
    }

    fn read_hub(&mut self) -> io::Result<Option<Vec<Message>>> {
        let State::In(stream) = &mut self.state else {
            return Ok(Some(Vec::new()));
        };
        let mut buf = [0u8; 65536];
        let mut eof = false;
        loop {
            match stream.read(&mut buf) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => {
                    self.input.extend_from_slice(&buf[..n]);
                    // A short read took all there was: no second read
                    // just to hear EAGAIN (a syscall per message per
                    // member, in a room of a thousand).
                    if n < buf.len() {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => {
                    eof = true;
                    break;
                }
            }
        }
        let mut msgs = Vec::new();
        match take_frames(&mut self.input) {
            Ok(evs) => {
                for ev in evs {
                    self.for_client(ev, &mut msgs);
                }
            }
            Err(()) => eof = true,
        }
        if eof {
            self.input.clear();
            self.lost("the room's hub went away; rejoining", true, &mut msgs);
        }
        Ok(Some(msgs))
    }

    fn for_client(&mut self, ev: Event, out: &mut Vec<Message>) {
        let v = match ev {
            Event::Msg { from, .. } if from == self.id && !self.cfg.echo => return,
            Event::Msg { from, text } => {
                json!({"type": "message", "from": from, "text": lossy(&text)})
            }
            Event::To { from, to, text } => {
                json!({"type": "message", "from": from, "to": to, "text": lossy(&text)})
            }
            Event::Join(id) | Event::Leave(id) if id == self.id => return,
            Event::Join(id) if self.cfg.events => json!({"type": "join", "id": id}),
            Event::Leave(id) if self.cfg.events => json!({"type": "leave", "id": id}),
            Event::Full => return self.end(CloseCode::Again),
            Event::Broker(false) => {
                return self.lost(
                    "the room's broker is unreachable; messages are lost until it is back",
                    false,
                    out,
                )
            }
            Event::Broker(true) => json!({"type": "system", "text": "the room's broker is back"}),
            _ => return,
        };
        out.push(Message::text(v.to_string()));
    }

    fn rejoin(&mut self) -> Vec<Message> {
        self.timer.clear();
        match self.cfg.join(&self.room, &self.id) {
            Ok(s) if s.set_nonblocking(true).is_ok() => {
                self.state = State::In(s);
                vec![system("back in the room")]
            }
            Ok(_) | Err(JoinError::Failed(_)) => {
                self.timer.arm(REJOIN_EVERY);
                Vec::new()
            }
            Err(e) => {
                self.end(e.close_code());
                Vec::new()
            }
        }
    }
}

fn system(text: &str) -> Message {
    Message::text(json!({"type": "system", "text": text}).to_string())
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A client message as a room event: `{"to": ID, "text": T}` goes to
/// one member (or `"bot"`); anything else to everyone, as it is.
pub fn parse_client(text: &str) -> Event {
    let from = String::new(); // the hub stamps the sender
    if text.starts_with('{') {
        if let Ok(Value::Object(o)) = serde_json::from_str::<Value>(text) {
            if let (Some(Value::String(to)), Some(Value::String(t))) = (o.get("to"), o.get("text"))
            {
                return Event::To {
                    from,
                    to: to.clone(),
                    text: t.clone().into_bytes(),
                };
            }
        }
    }
    Event::Msg {
        from,
        text: text.as_bytes().to_vec(),
    }
}

impl Backend for Member<'_> {
    fn output(&self) -> Option<BorrowedFd<'_>> {
        match &self.state {
            State::In(s) => Some(s.as_fd()),
            _ => Some(self.timer.fd.as_fd()),
        }
    }

    fn read_output(&mut self) -> io::Result<Option<Vec<Message>>> {
        match self.state {
            State::Ending(_) => Ok(None),
            State::Lost => Ok(Some(self.rejoin())),
            State::In(_) => self.read_hub(),
        }
    }

    fn deliver(&mut self, msg: Message) {
        if let Some(b) = self.bucket.as_mut() {
            if !b.take() {
                return self.end(CloseCode::Policy);
            }
        }
        let State::In(_) = self.state else { return };
        let text = match &msg {
            Message::Text(t) => t.as_str().to_string(),
            Message::Binary(b) => lossy(b),
            _ => return,
        };
        self.out.extend_from_slice(&parse_client(&text).frame());
        self.write_input();
    }

    fn wants_input(&self) -> bool {
        self.out.len() < OUT_LIMIT
    }

    fn input_blocked(&self) -> Option<BorrowedFd<'_>> {
        match (&self.state, self.out.is_empty()) {
            (State::In(s), false) => Some(s.as_fd()),
            _ => None,
        }
    }

    fn write_input(&mut self) {
        let State::In(stream) = &mut self.state else {
            self.out.clear();
            return;
        };
        while !self.out.is_empty() {
            match stream.write(&self.out) {
                Ok(n) if n > 0 => drop(self.out.drain(..n)),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                // The read side sees the end and reports it.
                _ => return self.out.clear(),
            }
        }
    }

    fn read_ahead(&self) -> bool {
        true
    }
}

/// Messages per second with bursts of as many: `take` is false when the
/// member is over its rate.
struct Bucket {
    rate: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: f64) -> Bucket {
        Bucket {
            rate,
            tokens: rate.max(1.0),
            at: Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.rate.max(1.0));
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A timerfd: readable when armed time has passed, so the pump's poll
/// wakes the member when it has something to do without the hub.
struct Timer {
    fd: File,
}

impl Timer {
    fn new() -> io::Result<Timer> {
        // SAFETY: timerfd_create takes two integer flags and returns a new
        // descriptor or -1; no memory is passed.
        let fd = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a descriptor the kernel just gave us, owned by nobody else.
        let fd = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        Ok(Timer { fd })
    }

    fn set(&self, d: Duration) {
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: d.as_secs() as libc::time_t,
                tv_nsec: d.subsec_nanos() as libc::c_long,
            },
        };
        use std::os::fd::AsRawFd;
        // SAFETY: `spec` is a valid itimerspec for the call; the old value
        // is not asked for (null).
        unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
    }

    fn arm(&self, d: Duration) {
        self.set(d.max(Duration::from_nanos(1)));
    }

    /// Disarms it and reads away any expiry.
    fn clear(&mut self) {
        self.set(Duration::ZERO);
        let mut b = [0u8; 8];
        let _ = self.fd.read(&mut b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages() {
        let to = |to: &str, t: &str| Event::To {
            from: String::new(),
            to: to.into(),
            text: t.as_bytes().to_vec(),
        };
        let all = |t: &str| Event::Msg {
            from: String::new(),
            text: t.as_bytes().to_vec(),
        };
        let cases = [
            ("hello", all("hello")),
            (r#"{"to":"h-01","text":"psst"}"#, to("h-01", "psst")),
            (
                r#"{"to":"bot","text":"move e4","x":1}"#,
                to("bot", "move e4"),
            ),
            (r#"{"to":5,"text":"x"}"#, all(r#"{"to":5,"text":"x"}"#)),
            (r#"{"text":"x"}"#, all(r#"{"text":"x"}"#)),
            ("{not json", all("{not json")),
            ("", all("")),
        ];
        for (input, want) in cases {
            assert_eq!(parse_client(input), want, "{input}");
        }
    }

    #[test]
    fn the_bucket_allows_a_burst_then_the_rate() {
        let mut b = Bucket::new(3.0);
        assert!((0..3).all(|_| b.take()));
        assert!(!b.take());
        b.at -= Duration::from_millis(400);
        assert!(b.take(), "a third of a second buys one more");
        assert!(!b.take());
    }
}
