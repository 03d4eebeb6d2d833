//! One HTTP connection over two file descriptors (0 in, 1 out).
//!
//! Owns the input buffer (so pipelined requests are read in order), the
//! deadlines (an idle timeout between requests, a whole-request timeout
//! from the first byte of a request to the end of its body; the write
//! deadline lives in `Output`), request body reading (Content-Length and
//! chunked, with 100-continue), response heads with correct framing, and
//! the hand-off of the connection to a handler.
//!
//! Invariants: every wait has a deadline, so a slow client cannot hold the
//! process; a request body is read by the handler, drained after the
//! answer, or the connection closes: its bytes are never parsed as a
//! request; after a 101 or `hand_off` the connection is never read as HTTP.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use crate::handoff::{Duplex, Upgraded};
use crate::log::AccessLog;
use crate::output::{set_socket_timeout, Output};
use crate::request::{Framing, Request};
use crate::response::{reason, Body, Response, Segment};
use crate::route::Routed;
use crate::{format_http_date, HttpError, Peer};

/// Whether `fd` is a socket, and whether it is one without O_NONBLOCK.
fn socket_kind(fd: RawFd) -> (bool, bool) {
    // SAFETY: fstat into a buffer we own and fcntl(F_GETFL) only query.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        let socket = libc::fstat(fd, &mut st) == 0 && (st.st_mode & libc::S_IFMT) == libc::S_IFSOCK;
        if !socket {
            return (false, false);
        }
        let flags = libc::fcntl(fd, libc::F_GETFL);
        (true, flags >= 0 && flags & libc::O_NONBLOCK == 0)
    }
}

/// For a request line `METHOD SP target SP HTTP/d.d` (ending in CRLF or
/// not yet ended): where the version starts, and its major and minor.
/// `None` for any other line, which is a malformed request line (400), not
/// an unsupported version (505).
fn version_of_line(buf: &[u8]) -> Option<(usize, u8, u8)> {
    let line = buf.split(|&b| b == b'\n').next().unwrap_or(b"");
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut parts = line.split(|&b| b == b' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || method.is_empty() || target.is_empty() {
        return None;
    }
    match version {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            Some((method.len() + target.len() + 2, major - b'0', minor - b'0'))
        }
        _ => None,
    }
}

/// Parses a chunk-size line: exactly 1*HEXDIG (leading zeros allowed, no
/// whitespace of any kind), then optional extensions after `;` (with the
/// BWS RFC 9112 allows before it). Extensions are ignored.
pub(crate) fn chunk_size(line: &[u8]) -> Option<u64> {
    let size = match line.iter().position(|&b| b == b';') {
        Some(i) => {
            let mut s = &line[..i];
            while let Some(rest) = s.strip_suffix(b" ").or_else(|| s.strip_suffix(b"\t")) {
                s = rest;
            }
            s
        }
        None => line,
    };
    if size.is_empty() || !size.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let first = size.iter().position(|&b| b != b'0').unwrap_or(size.len());
    let digits = &size[first..];
    if digits.len() > 15 {
        return None;
    }
    // Only ASCII hex digits remain, so both conversions succeed.
    let text = std::str::from_utf8(digits).ok()?;
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 16).ok()
}

/// Whether a response field can be written as is: a CR, LF or NUL in a
/// name or value would split the response (a handler passing on what a
/// script or upstream said must not be able to). Unsafe fields are dropped.
fn field_is_safe(name: &str, value: &[u8]) -> bool {
    !name.is_empty()
        && !name
            .bytes()
            .chain(value.iter().copied())
            .any(|b| matches!(b, b'\r' | b'\n' | 0))
        && !name.contains(':')
}

/// Files up to this size are sent with their head in one write.
const SMALL_BODY: u64 = 32 * 1024;

/// Bounds on what a client may send.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request head (request line plus headers), bytes.
    pub max_head: usize,
    pub max_headers: usize,
    /// Longest request target, bytes (414 beyond).
    pub max_target: usize,
    /// Largest request body, bytes (413 beyond).
    pub max_body: u64,
    /// How long a kept-alive connection may sit idle between requests.
    pub idle: Duration,
    /// How long one request (head and body) may take to arrive.
    pub request: Duration,
    /// How long a write may wait for the client to take bytes (nginx's
    /// send_timeout): a client that stops reading is cut off after this.
    pub send: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head: 16 * 1024,
            max_headers: 100,
            max_target: 8 * 1024,
            max_body: 1 << 20,
            idle: Duration::from_secs(15),
            request: Duration::from_secs(30),
            send: Duration::from_secs(60),
        }
    }
}

/// A request body the handler has not read (yet).
#[derive(Debug, Clone, Copy)]
struct PendingBody {
    framing: Framing,
    expect_continue: bool,
}

pub struct Conn {
    input: RawFd,
    out: Output,
    buf: Vec<u8>,
    /// Unconsumed input is `buf[pos..end]`.
    pos: usize,
    end: usize,
    pub limits: Limits,
    peer: Peer,
    /// The client as the access log shows it, formatted once per
    /// connection rather than once per request.
    client: String,
    pub log: AccessLog,
    /// Deadline of the request being read.
    deadline: Option<Instant>,
    /// The body of the current request, until it has been read.
    body_pending: Option<PendingBody>,
    /// Reading a body failed part way (over the limit, bad framing, too
    /// slow): where the next request would start is unknown, so no other
    /// request is read on this connection.
    poisoned: bool,
    /// A handler took the connection (`hand_off`): no more HTTP on it.
    handed_off: bool,
    /// Input is a blocking socket with SO_RCVTIMEO set: reads block with a
    /// timeout themselves, saving a poll(2) per request; deadlines are
    /// checked at each timeout tick.
    timed_reads: bool,
    /// Set when jawasd routed this connection (`JAWAS_ROUTE`): a later
    /// request for another route goes back to jawasd.
    routed: Option<Routed>,
    /// The route peek just found the next request to be this engine's:
    /// the head it reads next is that one, so it is not matched again.
    peeked_own: bool,
    /// Responses sent on this connection.
    pub served: u64,
    /// Date header, cached per second.
    date: (i64, String),
    /// The descriptors, when the `Conn` owns them (`from_connection`):
    /// held only to close them when it is dropped.
    _owned: Option<(OwnedFd, OwnedFd)>,
}

impl Conn {
    /// HTTP over the connection an engine was given (`Engine::serve`):
    /// takes its descriptors (closed when the `Conn` is dropped) and its
    /// peer; the access log goes to stderr, or to syslog when stderr is
    /// the connection itself.
    pub fn from_connection(conn: jawas_engine::Connection, limits: Limits) -> Conn {
        let peer = conn.peer;
        let (input, output) = conn.into_fds();
        let log = AccessLog::detect(output.as_raw_fd());
        let mut c = Conn::new(input.as_raw_fd(), output.as_raw_fd(), limits, peer, log);
        c._owned = Some((input, output));
        c.routed = Routed::from_env();
        c
    }

    /// HTTP over two descriptors the caller keeps open (and closes) for as
    /// long as the `Conn` lives; they may be the same.
    pub fn new(input: RawFd, output: RawFd, limits: Limits, peer: Peer, log: AccessLog) -> Conn {
        let (is_socket, out_blocking) = socket_kind(output);
        if is_socket {
            // Responses are written whole (head and body in one go, or
            // corked around sendfile), so Nagle only adds delay.
            let one: libc::c_int = 1;
            // SAFETY: setsockopt with an int we own.
            unsafe {
                libc::setsockopt(
                    output,
                    libc::IPPROTO_TCP,
                    libc::TCP_NODELAY,
                    (&one as *const libc::c_int).cast(),
                    4,
                );
                // Room for a typical page or image in the send buffer, so
                // one sendfile hands it all to the kernel instead of
                // sleeping until the client has read part of it.
                let sndbuf: libc::c_int = 512 * 1024;
                libc::setsockopt(
                    output,
                    libc::SOL_SOCKET,
                    libc::SO_SNDBUF,
                    (&sndbuf as *const libc::c_int).cast(),
                    4,
                );
            }
        }
        let in_blocking_socket = if input == output {
            is_socket && out_blocking
        } else {
            socket_kind(input) == (true, true)
        };
        let timed_reads = in_blocking_socket && {
            let tick = limits.idle.min(limits.request).min(Duration::from_secs(1));
            set_socket_timeout(input, libc::SO_RCVTIMEO, tick)
        };
        let out = Output::new(output, is_socket, is_socket && out_blocking, limits.send);
        Conn {
            input,
            timed_reads,
            out,
            // Small at first (a head fits; each page is one fault in a
            // fresh process), grown by `fill` when a request needs more.
            buf: vec![0; 4 * 1024],
            pos: 0,
            end: 0,
            limits,
            client: AccessLog::client_text(&peer),
            peer,
            log,
            deadline: None,
            body_pending: None,
            poisoned: false,
            handed_off: false,
            routed: None,
            peeked_own: false,
            served: 0,
            date: (0, String::new()),
            _owned: None,
        }
    }

    /// The two ends of the connection, as given when it was made.
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// Waits until fd 0 is readable or `deadline` passes.
    fn wait_readable(&self, deadline: Instant) -> Result<(), HttpError> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(HttpError::Timeout);
            }
            let mut pfd = libc::pollfd {
                fd: self.input,
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = left.as_millis().min(i32::MAX as u128) as i32;
            // SAFETY: poll on one pollfd we own.
            let n = unsafe { libc::poll(&mut pfd, 1, ms.max(1)) };
            if n > 0 {
                return Ok(());
            }
            if n == 0 {
                return Err(HttpError::Timeout);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(HttpError::Io(e));
            }
        }
    }

    /// Reads more input into the buffer; Ok(0) at EOF.
    fn fill(&mut self, deadline: Instant) -> Result<usize, HttpError> {
        if self.pos == self.end {
            self.pos = 0;
            self.end = 0;
        } else if self.end == self.buf.len() && self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
        if self.end == self.buf.len() {
            let grow = self.buf.len();
            self.buf.resize(self.buf.len() + grow, 0);
        }
        if !self.timed_reads {
            // About to wait on a pipe: nothing stays buffered meanwhile.
            self.log.flush();
            self.wait_readable(deadline)?;
        }
        loop {
            if jawas_engine::stopping() {
                return Err(HttpError::Io(io::ErrorKind::Interrupted.into()));
            }
            if self.timed_reads && Instant::now() >= deadline {
                return Err(HttpError::Timeout);
            }
            // SAFETY: read into the free tail of our buffer.
            let n = unsafe {
                libc::read(
                    self.input,
                    self.buf[self.end..].as_mut_ptr().cast(),
                    self.buf.len() - self.end,
                )
            };
            if n >= 0 {
                self.end += n as usize;
                return Ok(n as usize);
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => continue,
                // With timed reads, EAGAIN is the receive timeout ticking:
                // write out old log lines, check the deadline, read again.
                io::ErrorKind::WouldBlock if self.timed_reads => self.log.flush_if_old(),
                io::ErrorKind::WouldBlock => {
                    self.wait_readable(deadline)?;
                }
                io::ErrorKind::ConnectionReset => return Ok(0),
                _ => return Err(HttpError::Io(e)),
            }
        }
    }

    /// Reads the next request head. `Ok(None)` when the client closed the
    /// connection (or stayed idle past the idle timeout) between requests.
    pub fn next_request(&mut self) -> Result<Option<Request>, HttpError> {
        // A body nobody read, or one that failed part way, must never be
        // parsed as requests.
        if self.body_pending.is_some() && !self.poisoned && self.discard_pending().is_err() {
            self.poisoned = true;
        }
        if self.poisoned || self.body_pending.is_some() {
            return Ok(None);
        }
        let idle_deadline = Instant::now() + self.limits.idle;
        // Skip the empty lines a client may send between requests.
        loop {
            while self.pos < self.end
                && (self.buf[self.pos] == b'\r' || self.buf[self.pos] == b'\n')
            {
                self.pos += 1;
            }
            if self.pos < self.end {
                break;
            }
            if self.served > 0 && self.routed.is_some() {
                match self.peek_route(idle_deadline) {
                    Ok(true) => {}
                    Ok(false) => return Ok(None),
                    Err(e) => return Err(e),
                }
            }
            match self.fill(idle_deadline) {
                Ok(0) => return Ok(None),
                Ok(_) => {}
                Err(HttpError::Timeout) => return Ok(None),
                Err(HttpError::Io(_)) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
        let started = Instant::now();
        let deadline = started + self.limits.request;
        self.deadline = Some(deadline);
        loop {
            let avail = &self.buf[self.pos..self.end];
            let mut headers = vec![httparse::EMPTY_HEADER; self.limits.max_headers];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(avail) {
                Ok(httparse::Status::Complete(n)) => {
                    if n > self.limits.max_head {
                        return Err(HttpError::HeadersTooLarge);
                    }
                    if req.path.is_some_and(|p| p.len() > self.limits.max_target) {
                        return Err(HttpError::UriTooLong);
                    }
                    let r = Request::from_parsed(&req, started)?;
                    // A pipelined request for another route: its bytes are
                    // read already, so it cannot be handed back intact; the
                    // connection ends and the client sends it again on a
                    // new one (RFC 9112 section 9.3.2).
                    let peeked_own = std::mem::take(&mut self.peeked_own);
                    if self.served > 0
                        && !peeked_own
                        && self.routed.as_ref().is_some_and(|rt| {
                            !rt.is_own(r.header("host").map(str::as_bytes), r.target.as_bytes())
                        })
                    {
                        return Ok(None);
                    }
                    self.pos += n;
                    self.body_pending = (r.framing != Framing::None).then_some(PendingBody {
                        framing: r.framing,
                        expect_continue: r.expect_continue,
                    });
                    return Ok(Some(r));
                }
                Ok(httparse::Status::Partial) => {
                    if avail.len() > self.limits.max_head {
                        // Still inside the request line: the target is too long.
                        let first_line_done = avail.contains(&b'\n');
                        return Err(if first_line_done {
                            HttpError::HeadersTooLarge
                        } else {
                            HttpError::UriTooLong
                        });
                    }
                }
                Err(httparse::Error::TooManyHeaders) => return Err(HttpError::HeadersTooLarge),
                Err(httparse::Error::Version) => match version_of_line(avail) {
                    // HTTP/1.2 and later minors are served as 1.1 (RFC 9110
                    // section 6.2): rewrite the version in place (same
                    // length) and parse again.
                    Some((at, 1, _)) => {
                        self.buf[self.pos + at..self.pos + at + 8].copy_from_slice(b"HTTP/1.1");
                        continue;
                    }
                    Some(_) => return Err(HttpError::VersionNotSupported),
                    None => return Err(HttpError::BadRequest("malformed request line")),
                },
                Err(_) => return Err(HttpError::BadRequest("malformed request head")),
            }
            match self.fill(deadline) {
                Ok(0) => return Err(HttpError::Io(io::ErrorKind::UnexpectedEof.into())),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads the request body and hands it to `sink` piece by piece;
    /// returns its length. Sends `100 Continue` first when asked to.
    pub fn read_body(
        &mut self,
        req: &Request,
        sink: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> Result<u64, HttpError> {
        let deadline = self
            .deadline
            .unwrap_or_else(|| Instant::now() + self.limits.request);
        if let Framing::Length(n) = req.framing {
            if n > self.limits.max_body {
                self.poisoned = true;
                return Err(HttpError::PayloadTooLarge);
            }
        }
        if req.expect_continue && self.pos == self.end {
            self.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        let n = match req.framing {
            Framing::None => Ok(0),
            Framing::Length(n) => self.pass_exact(n, deadline, sink).map(|_| n),
            Framing::Chunked => self.read_chunked(deadline, sink),
        };
        match n {
            Ok(n) => {
                self.body_pending = None;
                Ok(n)
            }
            Err(e) => {
                self.poisoned = true;
                Err(e)
            }
        }
    }

    /// Whether a body the handler left unread can be drained so the
    /// connection goes on: not when it is larger than the body limit, and
    /// not when the client waits for `100 Continue` (it may never send the
    /// body; closing is the safe answer, as nginx does).
    fn body_drainable(&self) -> bool {
        if self.poisoned {
            return false;
        }
        match self.body_pending {
            None => true,
            Some(p) if p.expect_continue => false,
            Some(PendingBody {
                framing: Framing::Length(n),
                ..
            }) => n <= self.limits.max_body,
            Some(_) => true,
        }
    }

    /// Reads and drops the body the handler left unread (within the body
    /// limit and the request deadline), so its bytes are never parsed as
    /// the next request.
    fn discard_pending(&mut self) -> Result<(), HttpError> {
        let Some(p) = self.body_pending else {
            return Ok(());
        };
        self.deadline = Some(Instant::now() + self.limits.request);
        let req_like = Request {
            method: String::new(),
            target: String::new(),
            minor: 1,
            headers: Vec::new(),
            framing: p.framing,
            keep_alive: true,
            expect_continue: false,
            started: Instant::now(),
        };
        let r = self.read_body(&req_like, &mut |_| Ok(()));
        self.deadline = None;
        r.map(|_| ())
    }

    /// Hands exactly `n` bytes of input to `sink`, reading as needed.
    fn pass_exact(
        &mut self,
        n: u64,
        deadline: Instant,
        sink: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> Result<(), HttpError> {
        let mut left = n;
        while left > 0 {
            if self.pos == self.end && self.fill(deadline)? == 0 {
                return Err(HttpError::Io(io::ErrorKind::UnexpectedEof.into()));
            }
            let take = (self.end - self.pos).min(left as usize);
            sink(&self.buf[self.pos..self.pos + take]).map_err(HttpError::Io)?;
            self.pos += take;
            left -= take as u64;
        }
        Ok(())
    }

    /// Reads one line (without CRLF) of at most 4 KiB for chunk framing.
    fn read_line(&mut self, deadline: Instant) -> Result<Vec<u8>, HttpError> {
        loop {
            if let Some(i) = self.buf[self.pos..self.end]
                .iter()
                .position(|&b| b == b'\n')
            {
                let mut line = self.buf[self.pos..self.pos + i].to_vec();
                self.pos += i + 1;
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            if self.end - self.pos > 4096 {
                return Err(HttpError::BadRequest("chunk line too long"));
            }
            if self.fill(deadline)? == 0 {
                return Err(HttpError::Io(io::ErrorKind::UnexpectedEof.into()));
            }
        }
    }

    fn read_chunked(
        &mut self,
        deadline: Instant,
        sink: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> Result<u64, HttpError> {
        let mut total: u64 = 0;
        loop {
            let line = self.read_line(deadline)?;
            let size = chunk_size(&line).ok_or(HttpError::BadRequest("bad chunk size"))?;
            if size == 0 {
                // Trailers, ignored, up to the empty line.
                loop {
                    let t = self.read_line(deadline)?;
                    if t.is_empty() {
                        return Ok(total);
                    }
                }
            }
            total += size;
            if total > self.limits.max_body {
                return Err(HttpError::PayloadTooLarge);
            }
            self.pass_exact(size, deadline, sink)?;
            if !self.read_line(deadline)?.is_empty() {
                return Err(HttpError::BadRequest("chunk data longer than its size"));
            }
        }
    }

    /// Ends HTTP on this connection and gives it to the caller: the client
    /// descriptors (duplicated) and the bytes already read past the request
    /// head. The receive and send timeouts the layer set are taken off
    /// again. Typically called right after sending a 101; `serve` then
    /// returns when the handler does, whatever it returns.
    pub fn hand_off(&mut self) -> io::Result<Upgraded> {
        self.log.flush();
        if self.timed_reads {
            set_socket_timeout(self.input, libc::SO_RCVTIMEO, Duration::ZERO);
            self.timed_reads = false;
        }
        self.out.clear_timeout();
        let buffered = self.buf[self.pos..self.end].to_vec();
        self.pos = self.end;
        self.body_pending = None;
        self.handed_off = true;
        Ok(Upgraded {
            stream: Duplex::dup(self.input, self.out.fd)?,
            buffered,
        })
    }

    /// Whether `hand_off` was called or a 101 sent: the connection is no
    /// longer HTTP.
    pub fn is_handed_off(&self) -> bool {
        self.handed_off
    }

    /// On a routed connection, before reading the next request: looks at
    /// its head without taking it off the socket and, if it belongs to
    /// another route, hands the connection back to jawasd untouched.
    /// `Ok(true)` to go on reading here, `Ok(false)` when the connection is
    /// no longer this engine's (handed back, or closed by the client).
    fn peek_route(&mut self, deadline: Instant) -> Result<bool, HttpError> {
        // The buffer is empty here: peek into it (nothing is consumed, so
        // a later `fill` reads the same bytes for real).
        self.pos = 0;
        self.end = 0;
        let mut pause = Duration::from_millis(2);
        loop {
            if !self.timed_reads {
                self.log.flush();
                match self.wait_readable(deadline) {
                    Ok(()) => {}
                    Err(HttpError::Timeout) | Err(HttpError::Io(_)) => return Ok(false),
                    Err(e) => return Err(e),
                }
            }
            if jawas_engine::stopping() || Instant::now() >= deadline {
                return Ok(false);
            }
            // With timed reads the socket blocks with a timeout tick, as
            // `fill` reads; otherwise poll said it is readable.
            let flags = if self.timed_reads {
                libc::MSG_PEEK
            } else {
                libc::MSG_PEEK | libc::MSG_DONTWAIT
            };
            // SAFETY: recv into our own buffer, peeking only.
            let n = unsafe {
                libc::recv(
                    self.input,
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    flags,
                )
            };
            if n == 0 {
                return Ok(false);
            }
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::WouldBlock => {
                        self.log.flush_if_old();
                        continue;
                    }
                    io::ErrorKind::ConnectionReset => return Ok(false),
                    // Not a socket (pipes in tests): the normal read path
                    // decides.
                    _ => return Ok(true),
                }
            }
            let n = n as usize;
            let mut headers = vec![httparse::EMPTY_HEADER; self.limits.max_headers];
            let mut req = httparse::Request::new(&mut headers);
            let own = match req.parse(&self.buf[..n]) {
                Ok(httparse::Status::Complete(_)) => {
                    let host = crate::route::host_field(req.headers);
                    let target = req.path.unwrap_or("/").as_bytes();
                    self.routed
                        .as_ref()
                        .is_none_or(|routed| routed.is_own(host, target))
                }
                // The buffer is full: a long head (cookies) needs more room
                // to be seen whole, up to the head limit.
                Ok(httparse::Status::Partial)
                    if n == self.buf.len() && self.buf.len() < self.limits.max_head =>
                {
                    let more = self.buf.len().min(self.limits.max_head - self.buf.len());
                    self.buf.resize(self.buf.len() + more, 0);
                    continue;
                }
                Ok(httparse::Status::Partial) if n < self.buf.len() => {
                    // The head is still arriving: the socket stays readable
                    // with the bytes already seen, so look again after a
                    // pause that grows (a client that stops mid-head costs
                    // a few wake-ups a second, not hundreds).
                    std::thread::sleep(
                        pause.min(deadline.saturating_duration_since(Instant::now())),
                    );
                    pause = (pause * 2).min(Duration::from_millis(200));
                    continue;
                }
                // Too big, too many fields, malformed: which route it is
                // cannot be told here, so jawasd decides (and answers 400).
                _ => false,
            };
            if own {
                self.peeked_own = true;
                return Ok(true);
            }
            return Ok(self.hand_back());
        }
    }

    /// Sends the connection back to jawasd; after that, nothing more is
    /// written or read here. `false` either way: the connection is no
    /// longer this engine's (if the hand-back failed, it is closed rather
    /// than served under another route's rules).
    fn hand_back(&mut self) -> bool {
        let Some(routed) = &self.routed else {
            return false;
        };
        if routed.hand_back(self.input).is_ok() {
            // jawasd routes it once this engine has exited; the next
            // owner gets the socket without our timeouts.
            if self.timed_reads {
                set_socket_timeout(self.input, libc::SO_RCVTIMEO, Duration::ZERO);
                self.timed_reads = false;
            }
            self.out.clear_timeout();
        }
        self.handed_off = true;
        false
    }

    /// Reads and drops the body, so the next pipelined request can be read.
    pub fn discard_body(&mut self, req: &Request) -> Result<(), HttpError> {
        self.read_body(req, &mut |_| Ok(())).map(|_| ())
    }

    /// Whether input is already buffered (a pipelined request waits).
    pub fn has_buffered_input(&self) -> bool {
        self.pos < self.end
    }

    fn date(&mut self) -> &str {
        // SAFETY: time(NULL).
        let now = unsafe { libc::time(std::ptr::null_mut()) } as i64;
        if self.date.0 != now {
            self.date = (now, format_http_date(now));
        }
        &self.date.1
    }

    /// Writes raw bytes to the client, within the send timeout.
    pub fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.out.put(data, false)
    }

    /// Writes `data` saying more follows (MSG_MORE on a socket), so a head
    /// and the start of a sendfile body leave in the same segments without
    /// corking and uncorking around every response.
    fn write_more(&mut self, data: &[u8]) -> io::Result<()> {
        self.out.put(data, true)
    }

    /// Sends `resp` as the answer to `req` (or to an unreadable request
    /// when `req` is None), adding Date, framing and Connection headers,
    /// and logs it with the body bytes really sent. Returns whether the
    /// connection may carry another request: a request body the handler
    /// left unread is drained first (or the connection closes), and after a
    /// 101 the connection is no longer HTTP (see `hand_off`).
    pub fn send(&mut self, req: Option<&Request>, mut resp: Response) -> io::Result<bool> {
        let upgrade = resp.status == 101;
        let head_only = req.is_some_and(|r| r.is_head())
            || resp.status == 304
            || resp.status == 204
            || resp.status < 200;
        let minor = req.map(|r| r.minor).unwrap_or(1);
        let len = resp.body.len();
        let chunked = len.is_none() && minor == 1 && !head_only;
        let keep = req.is_some_and(|r| r.keep_alive)
            && !resp.close
            && !upgrade
            && self.body_drainable()
            && (len.is_some() || chunked || head_only);
        let framing = match len {
            _ if upgrade => Framing::None,
            Some(n) if resp.status != 304 && resp.status != 204 && resp.status >= 200 => {
                Framing::Length(n)
            }
            None if chunked => Framing::Chunked,
            _ => Framing::None,
        };
        let connection = match (upgrade, keep, minor) {
            (true, _, _) => None,
            (false, false, _) => Some("close"),
            (false, true, 0) => Some("keep-alive"),
            (false, true, _) => None,
        };
        let head = self.head(&resp, framing, connection, upgrade);
        let head_len = head.len() as u64;
        let before = self.out.written;
        let body = std::mem::replace(&mut resp.body, Body::Empty);
        let result = if head_only {
            self.write_all(&head)
        } else {
            self.write_body(head, body, chunked)
        };
        if let Some(r) = req {
            let body_sent = (self.out.written - before).saturating_sub(head_len);
            self.log
                .request(&self.client, r, resp.status, body_sent, r.started.elapsed());
        }
        self.served += 1;
        self.deadline = None;
        result?;
        if upgrade {
            // Whatever follows a 101 is another protocol: even a handler
            // that does not take the connection must not see it as HTTP.
            self.handed_off = true;
        }
        if keep && self.body_pending.is_some() && self.discard_pending().is_err() {
            return Ok(false);
        }
        Ok(keep)
    }

    /// The response head: status line, Date, Server (unless the handler
    /// gives its own), the handler's fields
    /// (framing and Connection fields are ours, unsafe ones dropped; a 101
    /// keeps the handler's Connection: Upgrade), then framing.
    fn head(
        &mut self,
        resp: &Response,
        framing: Framing,
        connection: Option<&str>,
        upgrade: bool,
    ) -> Vec<u8> {
        let mut head = Vec::with_capacity(256);
        // Our version, whatever the client's (RFC 9110 section 6.2).
        head.extend_from_slice(b"HTTP/1.1 ");
        head.extend_from_slice(resp.status.to_string().as_bytes());
        head.push(b' ');
        head.extend_from_slice(reason(resp.status).as_bytes());
        // A handler's own Date or Server (a proxy passing on an
        // upstream's) replaces ours rather than doubling it.
        let has = |name: &str| {
            resp.headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case(name))
        };
        if !has("Date") {
            head.extend_from_slice(b"\r\nDate: ");
            head.extend_from_slice(self.date().as_bytes());
        }
        head.extend_from_slice(b"\r\n");
        if !has("Server") {
            head.extend_from_slice(b"Server: jawas\r\n");
        }
        for (k, v) in &resp.headers {
            if k.eq_ignore_ascii_case("Content-Length")
                || k.eq_ignore_ascii_case("Transfer-Encoding")
                || (k.eq_ignore_ascii_case("Connection") && !upgrade)
                || !field_is_safe(k, v)
            {
                continue;
            }
            head.extend_from_slice(k.as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(v);
            head.extend_from_slice(b"\r\n");
        }
        match framing {
            Framing::Length(n) => {
                head.extend_from_slice(b"Content-Length: ");
                head.extend_from_slice(n.to_string().as_bytes());
                head.extend_from_slice(b"\r\n");
            }
            Framing::Chunked => head.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
            Framing::None => {}
        }
        if let Some(c) = connection {
            head.extend_from_slice(b"Connection: ");
            head.extend_from_slice(c.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        head.extend_from_slice(b"\r\n");
        head
    }

    /// Writes the head and the body.
    fn write_body(&mut self, mut head: Vec<u8>, body: Body, chunked: bool) -> io::Result<()> {
        match body {
            Body::Empty => self.write_all(&head),
            Body::Bytes(b) => {
                head.extend_from_slice(&b);
                self.write_all(&head)
            }
            Body::Segments(file, segs) => match segs.as_slice() {
                // A small file goes out with its head in one write: one
                // pread instead of a sendfile, and no partial segments.
                [Segment::File { offset, len }] if *len <= SMALL_BODY => {
                    use std::os::unix::fs::FileExt;
                    let start = head.len();
                    head.resize(start + *len as usize, 0);
                    file.read_exact_at(&mut head[start..], *offset)?;
                    self.write_all(&head)
                }
                _ => {
                    let last = segs.len().saturating_sub(1);
                    self.write_more(&head)?;
                    for (i, s) in segs.iter().enumerate() {
                        match s {
                            Segment::Bytes(b) if i == last => self.write_all(b)?,
                            Segment::Bytes(b) => self.write_more(b)?,
                            Segment::File { offset, len } => {
                                self.out.send_file_range(&file, *offset, *len)?
                            }
                        }
                    }
                    Ok(())
                }
            },
            Body::Stream(reader) => {
                self.write_all(&head)?;
                self.copy_stream(reader, None, chunked)
            }
            Body::Sized(reader, n) => {
                self.write_all(&head)?;
                self.copy_stream(reader, Some(n), false)
            }
        }
    }

    /// Copies a body of unknown (or promised) length to the client,
    /// chunked when asked. A stream that ends before its promised length
    /// is an error: the connection must then close.
    fn copy_stream(
        &mut self,
        mut reader: Box<dyn Read>,
        promised: Option<u64>,
        chunked: bool,
    ) -> io::Result<()> {
        let mut count = 0u64;
        let count = &mut count;
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let want = match promised {
                Some(p) if *count >= p => break,
                Some(p) => ((p - *count) as usize).min(buf.len()),
                None => buf.len(),
            };
            let n = match reader.read(&mut buf[..want]) {
                Ok(0) if promised.is_some() => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunked {
                let mut piece = format!("{n:x}\r\n").into_bytes();
                piece.extend_from_slice(&buf[..n]);
                piece.extend_from_slice(b"\r\n");
                self.write_all(&piece)?;
            } else {
                self.write_all(&buf[..n])?;
            }
            *count += n as u64;
        }
        if chunked {
            self.write_all(b"0\r\n\r\n")?;
        }
        Ok(())
    }

    /// Answers a request that could not be read, when the connection can
    /// still carry an answer, and logs it.
    pub fn send_error(&mut self, e: &HttpError) {
        if let Some(status) = e.status() {
            self.log.failure(&self.client, status, &e.to_string());
            // After a request that could not be read, the rest of the
            // input cannot be trusted: answer and close.
            let mut resp = Response::error(status);
            resp.close = true;
            let _ = self.send(None, resp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_line_versions() {
        type Case<'a> = (&'a str, Option<(usize, u8, u8)>);
        let cases: &[Case] = &[
            ("GET / HTTP/1.2\r\n", Some((6, 1, 2))),
            ("GET /x HTTP/2.0\r\n", Some((7, 2, 0))),
            ("GET / HTTP/1.2", Some((6, 1, 2))),
            ("GET / FOO HTTP/1.1\r\n", None),
            ("GET / HTTP/1.10\r\n", None),
            ("GET  / HTTP/1.1\r\n", None),
            ("GET / http/1.1\r\n", None),
            ("garbage HTTP/2\r\n", None),
        ];
        for (line, want) in cases {
            assert_eq!(version_of_line(line.as_bytes()), *want, "{line:?}");
        }
    }

    #[test]
    fn chunk_size_cases() {
        let cases: &[(&[u8], Option<u64>)] = &[
            (b"0", Some(0)),
            (b"1a", Some(26)),
            (b"1A", Some(26)),
            (b"0000000000000000000001", Some(1)),
            (b"000", Some(0)),
            (b"5;name=value", Some(5)),
            (b"5 ;ext", Some(5)),
            (b"5\t; ext", Some(5)),
            (b"fffffffffffffff", Some(0xfff_ffff_ffff_ffff)),
            (b"1000000000000000", None),
            (b"", None),
            (b" 5", None),
            (b"5 ", None),
            (b"5\t", None),
            ("5\u{a0}".as_bytes(), None),
            ("\u{2003}5".as_bytes(), None),
            (b"+5", None),
            (b"0x5", None),
            (b"5 5", None),
            (b";ext", None),
        ];
        for (line, want) in cases {
            assert_eq!(
                chunk_size(line),
                *want,
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn unsafe_fields_are_refused() {
        for (k, v, want) in [
            ("X-A", "a b\tc", true),
            ("X-A", "a\rSet-Cookie: x", false),
            ("X-A", "a\nSet-Cookie: x", false),
            ("X-A", "a\0", false),
            ("X\rA", "a", false),
            ("X:A", "a", false),
            ("", "a", false),
        ] {
            assert_eq!(field_is_safe(k, v.as_bytes()), want, "{k:?}: {v:?}");
        }
    }

    /// Runs `serve` over pipes with `input` as everything the client sent;
    /// the handler answers each request with its path and never reads a
    /// body. Returns everything written.
    fn serve_pipes(input: &[u8], limits: Limits) -> String {
        use std::io::{Read as _, Write as _};
        let (in_r, mut in_w) = std::io::pipe().unwrap();
        let (mut out_r, out_w) = std::io::pipe().unwrap();
        in_w.write_all(input).unwrap();
        drop(in_w);
        let (ri, wo) = (
            std::os::fd::AsRawFd::as_raw_fd(&in_r),
            std::os::fd::AsRawFd::as_raw_fd(&out_w),
        );
        let mut conn = Conn::new(ri, wo, limits, Peer::default(), AccessLog::Off);
        crate::serve(&mut conn, |conn, req| {
            let path = req.path().to_string();
            conn.send(Some(&req), Response::new(200).bytes("text/plain", path))
        });
        drop((conn, in_r, out_w));
        let mut out = String::new();
        out_r.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn unread_bodies_are_drained_never_parsed() {
        let smuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
        let cases: &[(String, &[&str])] = &[
            (
                format!(
                    "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{smuggled}GET /b HTTP/1.1\r\nHost: x\r\n\r\n",
                    smuggled.len()
                ),
                &["/a", "/b"],
            ),
            (
                format!(
                    "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{smuggled}\r\n0\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
                    smuggled.len()
                ),
                &["/a", "/b"],
            ),
            // Larger than the body limit, or waiting for 100 Continue: the
            // answer closes the connection instead.
            (
                format!(
                    "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n{smuggled}"
                ),
                &["/a"],
            ),
            (
                format!(
                    "POST /a HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n{smuggled}",
                    smuggled.len()
                ),
                &["/a"],
            ),
        ];
        for (input, paths) in cases {
            let limits = Limits {
                max_body: 1000,
                ..Limits::default()
            };
            let out = serve_pipes(input.as_bytes(), limits);
            let got: Vec<&str> = out
                .split("\r\n\r\n")
                .filter_map(|part| part.strip_prefix('/').map(|_| part))
                .map(|p| p.split("HTTP/").next().unwrap_or(p))
                .collect();
            assert_eq!(&got, paths, "{input:?}: {out}");
            assert!(!out.contains("smuggled") && !out.contains(" 100 "), "{out}");
            if paths.len() == 1 {
                assert!(out.contains("Connection: close\r\n"), "{out}");
            }
        }
    }
}

#[cfg(test)]
mod desync_tests {
    use super::*;
    use std::io::Write as _;
    use std::os::fd::AsRawFd;

    /// A handler that answers 413 itself after `read_body` refused a chunked
    /// body over the limit: the rest of the body (which hides a request)
    /// must not be read as the next request.
    #[test]
    fn a_body_refused_part_way_is_never_parsed_as_requests() {
        let smuggled = "0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
        let input = format!(
            "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{smuggled}\r\n0\r\n\r\n",
            smuggled.len()
        );
        let (in_r, mut in_w) = std::io::pipe().unwrap();
        let (mut out_r, out_w) = std::io::pipe().unwrap();
        in_w.write_all(input.as_bytes()).unwrap();
        drop(in_w);
        let limits = Limits {
            max_body: 10,
            ..Limits::default()
        };
        let mut conn = Conn::new(
            in_r.as_raw_fd(),
            out_w.as_raw_fd(),
            limits,
            Peer::default(),
            AccessLog::Off,
        );
        crate::serve(&mut conn, |conn, req| {
            if req.method == "POST" {
                let e = conn.read_body(&req, &mut |_| Ok(())).unwrap_err();
                assert!(matches!(e, HttpError::PayloadTooLarge));
                return conn.send(Some(&req), Response::error(413));
            }
            let path = req.path().to_string();
            conn.send(Some(&req), Response::new(200).bytes("text/plain", path))
        });
        drop((conn, in_r, out_w));
        let mut out = String::new();
        out_r.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 413 "), "{out}");
        assert!(out.contains("Connection: close"), "{out}");
        assert!(
            !out.contains("/smuggled"),
            "body parsed as a request:\n{out}"
        );
    }
}
