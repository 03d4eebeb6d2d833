//! The message pump: the socket side of a WebSocket, moving messages
//! between the client and a `Backend` (the program today; a room later)
//! in one thread with poll(2). Owns the WebSocket's read and write
//! readiness. Invariants: nothing here blocks (the socket is non-blocking,
//! the backend takes messages without waiting), so a client leaving is
//! always seen; while frames wait to be written, the backend's output is
//! not read, and while the backend is full, the client is not read (each
//! side pushes back instead of memory growing).

use std::fs::File;
use std::io::{self, ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use tungstenite::error::{CapacityError, ProtocolError};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Error, Message, WebSocket};

/// The longest wait without checking for SIGTERM.
const STOP_RECHECK: Duration = Duration::from_secs(1);

/// How long a client that shut down its sending side waits for the
/// backend to take its last frames before it is taken as gone (a client
/// whose process ended sends the same FIN as one that closed politely).
const SHUT_WAIT: Duration = Duration::from_secs(2);

/// How often a full backend is checked for room again.
const BACKEND_RECHECK: Duration = Duration::from_millis(20);

/// Where client messages go and server messages come from.
pub trait Backend {
    /// A descriptor readable when `read_output` has something; `None`
    /// once the output has ended.
    fn output(&self) -> Option<BorrowedFd<'_>>;
    /// Messages for the client; `None` at the end of the output.
    fn read_output(&mut self) -> io::Result<Option<Vec<Message>>>;
    /// A text or binary message from the client.
    fn deliver(&mut self, msg: Message);
    /// Whether it takes more messages now; while not, the client's frames
    /// wait in the socket (pushing back on the client).
    fn wants_input(&self) -> bool {
        true
    }
    /// While delivered messages wait to be written: a descriptor that
    /// becomes writable when `write_input` can go on.
    fn input_blocked(&self) -> Option<BorrowedFd<'_>> {
        None
    }
    /// Writes what waiting messages it can, without blocking.
    fn write_input(&mut self) {}
    /// Whether its output is read even while frames wait for the client
    /// (a room: its hub must never wait for one slow client). The
    /// client's queue is then bounded by the WebSocket's write buffer
    /// limit, and a client past it ends the pump with `End::Lagging`.
    fn read_ahead(&self) -> bool {
        false
    }
    /// More descriptors to watch (with their poll events) that are not
    /// the client's business: a program whose output goes to a room.
    fn side(&self) -> Vec<(BorrowedFd<'_>, i16)> {
        Vec::new()
    }
    /// One of `side` is ready.
    fn on_side(&mut self) {}
}

/// Why the pump stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The backend's output ended: the server closes.
    BackendDone,
    /// The client completed a close handshake.
    ClientClosed,
    /// The connection broke without a close.
    ClientGone,
    /// The client broke the protocol; close with this code.
    Refused(CloseCode),
    /// The engine was asked to stop (SIGTERM).
    Stopping,
    /// No message either way for the idle limit.
    Idle,
    /// The client did not read fast enough: its queue passed the limit.
    Lagging,
}

/// The socket's descriptors, for poll: separate from the WebSocket,
/// which owns the stream itself.
pub struct SocketFds {
    pub input: File,
    pub output: File,
}

/// Runs until one side ends. With `ping`, a client silent for that long
/// is pinged, and one silent for twice that long is taken as gone; with
/// `idle`, no message either way for that long ends it too.
pub fn run<S: Read + Write>(
    ws: &mut WebSocket<S>,
    fds: &SocketFds,
    backend: &mut dyn Backend,
    ping: Option<Duration>,
    idle: Option<Duration>,
) -> End {
    let mut unflushed = false;
    let mut alive = Keepalive::new(ping, idle);
    // Frames that came with the handshake are already in tungstenite's
    // buffer, where poll cannot see them: read them first. `held`: the
    // last read stopped for a full backend, so frames may be buffered.
    let mut held = true;
    // When the client shut down its sending side (its last frames may
    // still wait in the socket): no more watching for that.
    let mut shut: Option<Instant> = None;
    loop {
        if shut.is_some_and(|t| t.elapsed() >= SHUT_WAIT) && !backend.wants_input() {
            return End::ClientGone;
        }
        if held && backend.wants_input() {
            held = match read_all(ws, backend, &mut alive) {
                Reading::Drained => false,
                Reading::Held => true,
                Reading::End(end) => return end,
            };
        }
        match alive.due(backend.wants_input()) {
            Due::Nothing => {}
            Due::Gone => return End::ClientGone,
            Due::Idle => return End::Idle,
            Due::Ping => match ws.send(Message::Ping(Default::default())) {
                Ok(()) => {}
                Err(e) if would_block(&e) => unflushed = true,
                Err(_) => return End::ClientGone,
            },
        }
        let ready = match wait(fds, backend, unflushed, shut.is_some(), alive.poll_limit()) {
            Ok(r) => r,
            Err(end) => return end,
        };
        if ready.input {
            backend.write_input();
        }
        if ready.side {
            backend.on_side();
        }
        if ready.sock_out {
            match ws.flush() {
                Ok(()) => unflushed = false,
                Err(e) if would_block(&e) => {}
                Err(_) => return End::ClientGone,
            }
        }
        if ready.output {
            alive.active = Instant::now();
            match pass_output(ws, backend) {
                Ok(more) => unflushed |= more,
                Err(end) => return end,
            }
        }
        held |= ready.sock_in;
        if ready.shut && shut.is_none() {
            shut = Some(Instant::now());
        }
    }
}

/// One read of the backend's output, written to the client. `Ok(true)`:
/// frames still wait to be written.
fn pass_output<S: Read + Write>(
    ws: &mut WebSocket<S>,
    backend: &mut dyn Backend,
) -> Result<bool, End> {
    let msgs = match backend.read_output() {
        Ok(Some(msgs)) => msgs,
        Ok(None) | Err(_) => return Err(End::BackendDone),
    };
    for m in msgs {
        match ws.write(m) {
            Ok(()) => {}
            Err(Error::WriteBufferFull(_)) => return Err(End::Lagging),
            Err(_) if !ws.can_write() => return Err(End::ClientGone),
            Err(_) => {}
        }
    }
    let unflushed = match ws.flush() {
        Ok(()) => false,
        Err(e) if would_block(&e) => true,
        Err(_) => return Err(End::ClientGone),
    };
    match backend.output() {
        Some(_) => Ok(unflushed),
        None => Err(End::BackendDone),
    }
}

/// `--ping` and `--idle-timeout` bookkeeping: when the client was last
/// heard from and pinged, when the last message passed either way.
struct Keepalive {
    every: Option<Duration>,
    idle: Option<Duration>,
    heard: Instant,
    pinged: Instant,
    active: Instant,
}

#[derive(Debug, PartialEq, Eq)]
enum Due {
    Nothing,
    Ping,
    Gone,
    Idle,
}

impl Keepalive {
    fn new(every: Option<Duration>, idle: Option<Duration>) -> Keepalive {
        let now = Instant::now();
        Keepalive {
            every,
            idle,
            heard: now,
            pinged: now,
            active: now,
        }
    }

    /// What to do now. While the client is not being read (`listening`
    /// false: the backend is full), its silence is not its fault.
    fn due(&mut self, listening: bool) -> Due {
        let now = Instant::now();
        if self
            .idle
            .is_some_and(|idle| now.duration_since(self.active) >= idle)
        {
            return Due::Idle;
        }
        let Some(every) = self.every else {
            return Due::Nothing;
        };
        if !listening {
            self.heard = now;
        }
        let silent = now.duration_since(self.heard);
        if silent >= every * 2 {
            Due::Gone
        } else if silent >= every && now.duration_since(self.pinged) >= every {
            self.pinged = now;
            Due::Ping
        } else {
            Due::Nothing
        }
    }

    /// How long a wait may last for the next check to be on time.
    fn poll_limit(&self) -> Option<Duration> {
        let quarter = |d: Option<Duration>| d.map(|d| d / 4);
        match (quarter(self.every), quarter(self.idle)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// How a round of reading the socket ended.
enum Reading {
    /// Nothing more to read now.
    Drained,
    /// The backend is full; more may be buffered.
    Held,
    End(End),
}

/// Reads every message the socket has ready, while the backend takes them,
/// noting in `alive` when the client was heard from.
fn read_all<S: Read + Write>(
    ws: &mut WebSocket<S>,
    backend: &mut dyn Backend,
    alive: &mut Keepalive,
) -> Reading {
    let end = |e| Reading::End(e);
    loop {
        if !backend.wants_input() {
            return Reading::Held;
        }
        let got = ws.read();
        if let Ok(m) = &got {
            alive.heard = Instant::now();
            if m.is_text() || m.is_binary() {
                alive.active = alive.heard;
            }
        }
        match got {
            Ok(m @ (Message::Text(_) | Message::Binary(_))) => backend.deliver(m),
            Ok(_) => {} // ping, pong, close: tungstenite answers them
            Err(e) if would_block(&e) => return Reading::Drained,
            Err(Error::ConnectionClosed) => return end(End::ClientClosed),
            Err(Error::Capacity(CapacityError::MessageTooLong { .. })) => {
                return end(End::Refused(CloseCode::Size))
            }
            Err(Error::Utf8(_)) => return end(End::Refused(CloseCode::Invalid)),
            Err(Error::Protocol(ProtocolError::ResetWithoutClosingHandshake)) => {
                return end(End::ClientGone)
            }
            Err(Error::Protocol(_) | Error::Capacity(_)) => {
                return end(End::Refused(CloseCode::Protocol))
            }
            Err(_) => return end(End::ClientGone),
        }
    }
}

/// Sends a close frame with `code` and waits up to `limit` for the
/// client's answer, so the code reaches it before the socket closes.
pub fn close<S: Read + Write>(
    ws: &mut WebSocket<S>,
    fds: &SocketFds,
    code: CloseCode,
    limit: Duration,
) {
    let frame = CloseFrame {
        code,
        reason: "".into(),
    };
    if ws.close(Some(frame)).is_err() && !ws.can_read() {
        return;
    }
    let end = Instant::now() + limit;
    loop {
        // What still waits for the client (a slow one's queue, then the
        // close frame) goes out as it reads, not only when it speaks.
        let unflushed = match ws.flush() {
            Ok(()) => false,
            Err(e) if would_block(&e) => true,
            Err(_) => return,
        };
        match ws.read() {
            Ok(_) => {}
            Err(e) if would_block(&e) => {
                let left = end.saturating_duration_since(Instant::now());
                if left.is_zero() || wait(fds, &NoBackend, unflushed, false, Some(left)).is_err() {
                    return;
                }
            }
            Err(_) => return,
        }
    }
}

struct NoBackend;

impl Backend for NoBackend {
    fn output(&self) -> Option<BorrowedFd<'_>> {
        None
    }
    fn read_output(&mut self) -> io::Result<Option<Vec<Message>>> {
        Ok(None)
    }
    fn deliver(&mut self, _: Message) {}
}

fn would_block(e: &Error) -> bool {
    matches!(e, Error::Io(io) if io.kind() == ErrorKind::WouldBlock)
}

/// What `wait` found ready.
#[derive(Default)]
struct Ready {
    /// The client sent something.
    sock_in: bool,
    /// Frames waiting for the client can go on.
    sock_out: bool,
    /// The backend has output.
    output: bool,
    /// The backend's waiting input can go on.
    input: bool,
    /// While not reading: the client shut down its sending side.
    shut: bool,
    /// One of the backend's side descriptors.
    side: bool,
}

/// Waits for the socket (and, unless frames are waiting to be written,
/// the backend's output; and its input while messages wait for it). While
/// the backend is full, the socket is watched only for the client
/// leaving, and the wait is short, to see the backend drain. A client
/// that only shut down its sending side has not left: the frames it sent
/// before (its close among them) are still to be read, so that is
/// reported once (`shut`, after which the caller passes `shut` true).
fn wait(
    fds: &SocketFds,
    backend: &dyn Backend,
    unflushed: bool,
    shut: bool,
    limit: Option<Duration>,
) -> Result<Ready, End> {
    let reading = backend.wants_input();
    // POLLHUP and POLLERR (the connection is gone) are always reported.
    let sock_events = match (reading, shut) {
        (true, _) => libc::POLLIN,
        (false, false) => libc::POLLRDHUP,
        (false, true) => 0,
    };
    let entry = |fd: BorrowedFd<'_>, events| libc::pollfd {
        fd: fd.as_raw_fd(),
        events,
        revents: 0,
    };
    let mut set = vec![entry(fds.input.as_fd(), sock_events)];
    if unflushed {
        set.push(entry(fds.output.as_fd(), libc::POLLOUT));
    }
    let backend_fd = if unflushed && !backend.read_ahead() {
        None
    } else {
        backend.output()
    };
    if let Some(fd) = backend_fd {
        set.push(entry(fd, libc::POLLIN));
    }
    let input_fd = backend.input_blocked();
    if let Some(fd) = input_fd {
        set.push(entry(fd, libc::POLLOUT));
    }
    let side_at = set.len();
    set.extend(backend.side().into_iter().map(|(fd, ev)| entry(fd, ev)));
    // A SIGTERM that lands between the check and poll is seen at the
    // latest after STOP_RECHECK.
    if jawas_engine::stopping() {
        return Err(End::Stopping);
    }
    let recheck = if reading {
        STOP_RECHECK
    } else {
        BACKEND_RECHECK
    };
    let limit = limit.map_or(recheck, |l| l.min(recheck));
    let timeout = limit.as_millis().min(60_000) as libc::c_int;
    // libc's poll, not nix's: nix drops every event of a descriptor when
    // one of them (POLLRDHUP) is a flag it does not know.
    // SAFETY: `set` is a live, exclusively borrowed array of `set.len()`
    // pollfd entries for the whole call.
    let n = unsafe { libc::poll(set.as_mut_ptr(), set.len() as libc::nfds_t, timeout) };
    if n < 0 {
        return match Errno::last() {
            Errno::EINTR if jawas_engine::stopping() => Err(End::Stopping),
            Errno::EINTR => Ok(Ready::default()),
            _ => Err(End::ClientGone),
        };
    }
    let any = libc::POLLIN | libc::POLLOUT | libc::POLLHUP | libc::POLLERR;
    let sock = set[0].revents;
    if !reading && sock & (libc::POLLHUP | libc::POLLERR) != 0 {
        return Err(End::ClientGone);
    }
    let mut at = 1;
    let mut next = |watched: bool| {
        let r = watched && set[at].revents & any != 0;
        at += usize::from(watched);
        r
    };
    Ok(Ready {
        sock_in: reading && sock & any != 0,
        sock_out: next(unflushed),
        output: next(backend_fd.is_some()),
        input: next(input_fd.is_some()),
        shut: !reading && sock & libc::POLLRDHUP != 0,
        side: set[side_at..].iter().any(|p| p.revents & any != 0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalive_pings_then_gives_up() {
        let s = Duration::from_secs;
        // (heard ago, pinged ago, listening, due)
        let cases = [
            (s(0), s(0), true, Due::Nothing),
            (s(10), s(10), true, Due::Ping),
            (s(15), s(5), true, Due::Nothing),
            (s(20), s(10), true, Due::Gone),
            (s(20), s(10), false, Due::Nothing),
        ];
        for (heard, pinged, listening, want) in cases {
            let now = Instant::now();
            let mut k = Keepalive {
                every: Some(s(10)),
                idle: None,
                heard: now - heard,
                pinged: now - pinged,
                active: now,
            };
            assert_eq!(k.due(listening), want, "{heard:?} {pinged:?} {listening}");
        }
        assert_eq!(Keepalive::new(None, None).due(true), Due::Nothing);
        let mut idle = Keepalive::new(None, Some(s(10)));
        assert_eq!(idle.due(true), Due::Nothing);
        idle.active -= s(10);
        assert_eq!(idle.due(true), Due::Idle);
    }
}
