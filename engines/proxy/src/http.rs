//! `jawas-proxy http`: an HTTP/1.1 reverse proxy on the shared layer. The
//! client side is jawas-http's `Conn` (keep-alive, request bodies,
//! framing, the access log); this module owns the upstream side: one
//! connection held for the life of the client connection, each request
//! written to it, each response head read and its body streamed back.
//!
//! Invariants: bodies stream in pieces, never whole; a response whose
//! upstream fails part way is cut off (the client sees a broken message,
//! never a short one passed as complete); a request is sent twice only
//! when it is idempotent, has no body, and its first try failed on a
//! reused connection before any answer; every 502 and 504 is logged with
//! its reason.

use std::cell::{Cell, RefCell};
use std::io::{self, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use jawas_engine::{Connection, Error};
use jawas_http::client::{read_response_head, response_body_kind, BodyKind, BodyReader};
use jawas_http::{AccessLog, Body, Conn, Framing, HttpError, Limits, Request, Response};

use crate::proxy_header;
use crate::relay;
use crate::rewrite::{self, BodyFraming, Context, Prefix};
use crate::upstream::{describe, Stream, Upstreams};

/// Largest upstream response head, and most fields in it.
const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 100;
/// Response bodies up to this length are read whole before the head is
/// sent: the answer leaves in one write, and an upstream failing within
/// it is a clean 502 rather than a cut-off response.
const SMALL_BODY: u64 = 64 * 1024;

/// Everything `http` mode is configured with.
pub struct Config {
    pub upstreams: Upstreams,
    pub send_proxy: Option<proxy_header::Version>,
    pub host: Option<String>,
    pub prefix: Option<Prefix>,
    pub trust_forwarded: bool,
    /// How long the upstream may take to start its answer (504 beyond).
    pub response_timeout: Duration,
    /// How long a response body may pause, and a write upstream wait.
    pub body_timeout: Duration,
    /// Idle limit of an upgraded (WebSocket) tunnel.
    pub idle: Option<Duration>,
    pub limits: Limits,
    pub access_log: bool,
}

/// One upstream connection.
struct Link {
    reader: BufReader<Stream>,
    writer: Stream,
    /// Its Host, for Location rewriting when `--host` is not given.
    authority: String,
    /// It carried a request before: a failure now may only mean the
    /// upstream closed it while idle.
    used: bool,
    /// The receive timeout set on the socket, so it is set only when it
    /// changes rather than twice per request.
    timeout: Option<Duration>,
    /// When its last response ended (or it was opened).
    idle_since: Instant,
}

impl Link {
    fn read_timeout(&mut self, t: Duration) {
        if self.timeout != Some(t) {
            let _ = self.reader.get_ref().set_read_timeout(Some(t));
            self.timeout = Some(t);
        }
    }
}

/// Why an exchange with the upstream failed.
enum Fail {
    /// The upstream closed or reset before answering: retried once when
    /// that is safe, otherwise 502.
    Closed(String),
    /// The answer to send, and the reason to log.
    Status(u16, String),
    /// The client's request body could not be read.
    Client(HttpError),
}

/// Serves one client connection.
pub fn serve(cfg: &Config, conn: Connection) -> Result<(), Error> {
    let client_ip = conn.peer.remote_ip;
    let client_out = conn.output().as_raw_fd();
    let addrs = conn.peer.remote().zip(conn.peer.local());
    let mut conn = Conn::from_connection(conn, cfg.limits.clone());
    if !cfg.access_log {
        conn.log = jawas_http::AccessLog::Off;
    }
    let mut proxy = Proxy {
        cfg,
        link: None,
        client_ip,
        addrs,
        client_out,
        broken: false,
    };
    let code = jawas_http::serve(&mut conn, |conn, req| proxy.handle(conn, req));
    if proxy.broken {
        // Logged already (see `log`); 111 says the failure was not the
        // client's, without a second line that could reach the socket.
        return Err(Error::exit_code(jawas_engine::exit::SYSTEM));
    }
    jawas_engine::status(code)
}

struct Proxy<'a> {
    cfg: &'a Config,
    link: Option<Link>,
    client_ip: Option<std::net::IpAddr>,
    /// Client and local address, for a PROXY header.
    addrs: Option<(std::net::SocketAddr, std::net::SocketAddr)>,
    /// The client socket (owned by the `Conn`, open while it lives).
    client_out: std::os::fd::RawFd,
    /// The upstream failed in the middle of a response, which ended the
    /// client connection.
    broken: bool,
}

/// Makes the coming close of the client connection a reset (SO_LINGER 0):
/// a response cut off by the upstream must not end like a complete one,
/// and for a body delimited by the close (an HTTP/1.0 client) a clean
/// close would say exactly that. On a pipe (a test) it does nothing.
fn reset_on_close(fd: std::os::fd::RawFd) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt with a linger struct we own, on a descriptor the
    // caller keeps open.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

/// Logs why a request failed: to syslog when stderr is the connection
/// itself (`stderr = "socket"`, where a line would corrupt the response),
/// else to stderr, whether or not the access log is on.
fn log(conn: &Conn, msg: &str) {
    let line = format!("jawas-proxy: {msg}");
    match conn.log {
        AccessLog::Syslog => conn.log.line(&line),
        _ => {
            let _ = io::stderr()
                .lock()
                .write_all(format!("{line}\n").as_bytes());
        }
    }
}

fn idempotent(method: &str) -> bool {
    ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"].contains(&method)
}

/// The protocol of an Upgrade request (`Connection: upgrade` and
/// `Upgrade: ...`), to pass on.
fn upgrade_of(req: &Request) -> Option<Vec<u8>> {
    let asked = req
        .header_list("Connection")
        .any(|t| t.eq_ignore_ascii_case("upgrade"));
    let proto = req
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("Upgrade"))?;
    asked.then(|| proto.1.clone())
}

/// An absolute-form target (`http://host/path`) as origin-form.
fn origin_form(target: &str) -> &str {
    if target.starts_with('/') || target == "*" {
        return target;
    }
    match target.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => target,
    }
}

/// Whether the upstream will take another request on this connection.
fn upstream_keeps(head: &jawas_http::client::ResponseHead) -> bool {
    let has = |t: &str| {
        head.header_list("Connection")
            .any(|v| v.eq_ignore_ascii_case(t))
    };
    !has("close") && (head.minor >= 1 || has("keep-alive"))
}

/// Servers close idle keep-alive connections after seconds (Node, Apache
/// and uvicorn after 5, gunicorn after 2, nginx after 75): one idle for
/// less than this is taken as open without a system call, which saves a
/// poll per request under load. (If it was closed after all, an
/// idempotent request is sent again; see `handle`.)
const SURELY_OPEN: Duration = Duration::from_millis(1000);

/// Whether an idle upstream connection is still usable: nothing to read
/// (a readable idle connection was closed, or sent what nobody asked for).
fn still_open(link: &Link) -> bool {
    if !link.reader.buffer().is_empty() {
        return false;
    }
    if link.idle_since.elapsed() < SURELY_OPEN {
        return true;
    }
    let mut pfd = libc::pollfd {
        fd: link.writer.as_fd().as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: poll on one pollfd we own, not waiting.
    unsafe { libc::poll(&mut pfd, 1, 0) == 0 }
}

impl Proxy<'_> {
    fn handle(&mut self, conn: &mut Conn, req: Request) -> io::Result<bool> {
        let target = origin_form(&req.target);
        let target = match &self.cfg.prefix {
            None => target.to_string(),
            Some(p) => match p.strip(target) {
                Some(t) => t,
                None => return conn.send(Some(&req), Response::error(404)),
            },
        };
        let upgrade = upgrade_of(&req);
        let framing = match req.framing {
            Framing::None => BodyFraming::None,
            Framing::Length(n) => BodyFraming::Length(n),
            Framing::Chunked => BodyFraming::Chunked,
        };
        let retryable = idempotent(&req.method) && framing == BodyFraming::None;
        let mut tried_fresh = false;
        let (head, link) = loop {
            let mut link = match self.open_link() {
                Ok(l) => l,
                Err(why) => {
                    return self.fail(conn, &req, 502, &format!("no upstream answered: {why}"))
                }
            };
            let ctx = Context {
                host: self.cfg.host.as_deref(),
                upstream: &link.authority,
                client_ip: self.client_ip,
                trust_forwarded: self.cfg.trust_forwarded,
            };
            let out = rewrite::request_head(
                &req.method,
                &target,
                &req.headers,
                framing,
                upgrade.as_deref(),
                &ctx,
            );
            let used = link.used;
            match self.exchange(conn, &req, &out, &mut link) {
                Ok(h) => break (h, link),
                Err(Fail::Closed(_)) if used && retryable && !tried_fresh => {
                    tried_fresh = true;
                }
                Err(Fail::Closed(why)) => return self.fail(conn, &req, 502, &why),
                Err(Fail::Status(s, why)) => return self.fail(conn, &req, s, &why),
                Err(Fail::Client(e)) => {
                    if e.status().is_some() {
                        conn.send_error(&e);
                    }
                    return Ok(false);
                }
            }
        };
        self.respond(conn, &req, head, link, upgrade.is_some())
    }

    /// The upstream connection for the next request: the kept one if it
    /// is still open, else a new one. Taken out of `self.link` until the
    /// response is done and it may be kept again.
    fn open_link(&mut self) -> Result<Link, String> {
        if let Some(link) = self.link.take().filter(still_open) {
            return Ok(link);
        }
        let (stream, target) = self.cfg.upstreams.connect()?;
        let writer = stream.try_clone().map_err(|e| e.to_string())?;
        let _ = writer.set_write_timeout(Some(self.cfg.body_timeout));
        let mut link = Link {
            reader: BufReader::with_capacity(16 * 1024, stream),
            writer,
            authority: target.authority(),
            used: false,
            timeout: None,
            idle_since: Instant::now(),
        };
        if let Some(v) = self.cfg.send_proxy {
            let header = proxy_header::encode(v, self.addrs);
            link.writer
                .write_all(&header)
                .map_err(|e| format!("{}: {}", link.authority, describe(&e)))?;
        }
        Ok(link)
    }

    /// Sends the request (head, then the client's body as it arrives) and
    /// reads the response head, skipping interim 1xx answers.
    fn exchange(
        &self,
        conn: &mut Conn,
        req: &Request,
        head: &[u8],
        link: &mut Link,
    ) -> Result<jawas_http::client::ResponseHead, Fail> {
        let cfg = self.cfg;
        let name = link.authority.clone();
        let closed = |e: &io::Error| Fail::Closed(format!("{name}: {}", describe(e)));
        link.writer.write_all(head).map_err(|e| closed(&e))?;
        if req.framing != Framing::None {
            send_body(conn, req, &mut link.writer).map_err(|f| match f {
                Ok(e) => Fail::Status(
                    502,
                    format!("{name}: sending the request body: {}", describe(&e)),
                ),
                Err(e) => Fail::Client(e),
            })?;
        }
        link.used = true;
        link.read_timeout(cfg.response_timeout);
        loop {
            let h = match read_response_head(&mut link.reader, MAX_HEAD, MAX_HEADERS) {
                Ok(h) => h,
                Err(HttpError::Io(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(Fail::Status(
                        504,
                        format!(
                            "{name}: no response within {}s",
                            cfg.response_timeout.as_secs_f64()
                        ),
                    ))
                }
                Err(HttpError::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Err(Fail::Closed(format!(
                        "{name}: closed the connection without answering"
                    )))
                }
                Err(HttpError::Io(e)) => return Err(closed(&e)),
                Err(e) => return Err(Fail::Status(502, format!("{name}: {e}"))),
            };
            if (100..200).contains(&h.status) && h.status != 101 {
                continue;
            }
            return Ok(h);
        }
    }

    /// Answers a request the upstream could not: logs why, drops the
    /// upstream connection.
    fn fail(&mut self, conn: &mut Conn, req: &Request, status: u16, why: &str) -> io::Result<bool> {
        log(
            conn,
            &format!("{} {}: {status}: {why}", req.method, req.target),
        );
        self.link = None;
        conn.send(Some(req), Response::error(status))
    }

    /// Passes the response on: head, then its body streamed; or, after a
    /// 101 to an Upgrade, the tunnel.
    fn respond(
        &mut self,
        conn: &mut Conn,
        req: &Request,
        head: jawas_http::client::ResponseHead,
        link: Link,
        upgrading: bool,
    ) -> io::Result<bool> {
        let name = link.authority.clone();
        let kind = match response_body_kind(&req.method, &head) {
            Ok(k) => k,
            Err(e) => return self.fail(conn, req, 502, &format!("{name}: {e}")),
        };
        if head.status == 101 && !upgrading {
            return self.fail(
                conn,
                req,
                502,
                &format!("{name}: 101 to a request without Upgrade"),
            );
        }
        let sent_host = match (&self.cfg.host, req.header_bytes("Host")) {
            (Some(h), _) => h.as_bytes().to_vec(),
            (None, Some(h)) => h.to_vec(),
            (None, None) => name.as_bytes().to_vec(),
        };
        let keeps = upstream_keeps(&head) && kind != BodyKind::UntilClose && !upgrading;
        let upgrade_proto = head
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("Upgrade"))
            .map(|(_, v)| v.clone());
        let mut resp = Response::new(head.status);
        let content_length = match kind {
            BodyKind::None if req.is_head() => head
                .header("Content-Length")
                .and_then(|v| v.trim().parse::<u64>().ok()),
            _ => None,
        };
        resp.headers = rewrite::response_fields(head.headers, self.cfg.prefix.as_ref(), &sent_host);
        if head.status == 101 {
            resp.headers
                .push(("Connection".into(), b"Upgrade".to_vec()));
            resp.headers
                .push(("Upgrade".into(), upgrade_proto.unwrap_or_default()));
            conn.send(Some(req), resp)?;
            return self.tunnel(conn, link);
        }
        let mut link = link;
        match kind {
            BodyKind::None => {
                link.idle_since = Instant::now();
                resp.body = match content_length {
                    Some(n) => Body::Sized(Box::new(io::empty()), n),
                    None if req.is_head() => Body::Stream(Box::new(io::empty())),
                    None => Body::Empty,
                };
            }
            BodyKind::Length(n @ 0..=SMALL_BODY) => {
                link.read_timeout(self.cfg.body_timeout);
                let mut body = vec![0; n as usize];
                if let Err(e) = BodyReader::new(kind, &mut link.reader).read_exact(&mut body) {
                    let why = format!("{name}: response body cut off: {}", body_failure(&e));
                    return self.fail(conn, req, 502, &why);
                }
                link.idle_since = Instant::now();
                resp.body = Body::Bytes(body);
            }
            _ => {
                link.read_timeout(self.cfg.body_timeout);
                return self.stream(conn, req, resp, link, kind, keeps);
            }
        }
        let keep = conn.send(Some(req), resp)?;
        if keeps {
            self.link = Some(link);
        }
        Ok(keep)
    }

    /// Sends a response whose body is pulled from the upstream as the
    /// client takes it; keeps the upstream connection if the body ended
    /// where its framing said.
    fn stream(
        &mut self,
        conn: &mut Conn,
        req: &Request,
        mut resp: Response,
        link: Link,
        kind: BodyKind,
        keeps: bool,
    ) -> io::Result<bool> {
        let name = link.authority.clone();
        let Link {
            reader,
            writer,
            authority,
            used,
            timeout,
            ..
        } = link;
        let pull = Pull {
            body: Rc::new(RefCell::new(BodyReader::new(kind, reader))),
            failed: Rc::new(Cell::new(None)),
            last_read: Rc::new(Cell::new(Instant::now())),
        };
        let (body, failed, last_read) = (
            pull.body.clone(),
            pull.failed.clone(),
            pull.last_read.clone(),
        );
        resp.body = match kind {
            BodyKind::Length(n) => Body::Sized(Box::new(pull), n),
            _ => Body::Stream(Box::new(pull)),
        };
        let sent = conn.send(Some(req), resp);
        if let Some(e) = failed.take() {
            let why = format!("{name}: response body cut off: {e}");
            log(conn, &format!("{} {}: {why}", req.method, req.target));
            self.broken = true;
            reset_on_close(self.client_out);
            return Err(io::Error::other("upstream failed mid-body"));
        }
        let keep = sent?;
        if let Ok(body) = Rc::try_unwrap(body).map(RefCell::into_inner) {
            if keeps && body.is_done() {
                self.link = Some(Link {
                    reader: body.into_inner(),
                    writer,
                    authority,
                    used,
                    timeout,
                    idle_since: last_read.get(),
                });
            }
        }
        Ok(keep)
    }

    /// After a 101: bytes both ways until both sides are done.
    fn tunnel(&mut self, conn: &mut Conn, link: Link) -> io::Result<bool> {
        let up = conn.hand_off()?;
        let Link {
            reader, mut writer, ..
        } = link;
        // What each side sent after its head, already read by us.
        let mut client = up.stream;
        client.write_all(reader.buffer())?;
        writer.write_all(&up.buffered)?;
        let _ = writer.set_read_timeout(None);
        let _ = writer.set_write_timeout(None);
        let cin: OwnedFd = client.input().try_clone()?.into();
        let cout: OwnedFd = client.output().try_clone()?.into();
        relay::run(cin.as_fd(), cout.as_fd(), writer.as_fd(), self.cfg.idle)?;
        drop(reader);
        Ok(false)
    }
}

/// Streams the client's request body upstream as it arrives (chunked
/// again when it came chunked). `Err(Ok(e))`: the upstream failed;
/// `Err(Err(e))`: the client's body could not be read.
fn send_body(
    conn: &mut Conn,
    req: &Request,
    up: &mut Stream,
) -> Result<(), Result<io::Error, HttpError>> {
    let chunked = req.framing == Framing::Chunked;
    let mut up_err: Option<io::Error> = None;
    let result = conn.read_body(req, &mut |piece: &[u8]| {
        let r = if chunked {
            let mut framed = format!("{:x}\r\n", piece.len()).into_bytes();
            framed.extend_from_slice(piece);
            framed.extend_from_slice(b"\r\n");
            up.write_all(&framed)
        } else {
            up.write_all(piece)
        };
        r.map_err(|e| {
            let kind = e.kind();
            up_err = Some(e);
            io::Error::new(kind, "upstream")
        })
    });
    if let Some(e) = up_err {
        return Err(Ok(e));
    }
    result.map_err(Err)?;
    if chunked {
        up.write_all(b"0\r\n\r\n").map_err(Ok)?;
    }
    Ok(())
}

/// Why reading a response body failed, as the log says it.
fn body_failure(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => "the upstream closed the connection".to_string(),
        _ => describe(e),
    }
}

/// The response body as the layer pulls it, remembering an upstream
/// failure (so it is logged as the upstream's, not the client's).
struct Pull {
    body: Rc<RefCell<BodyReader<BufReader<Stream>>>>,
    failed: Rc<Cell<Option<String>>>,
    /// When the upstream last gave bytes: once the body is done, when the
    /// upstream connection became idle.
    last_read: Rc<Cell<Instant>>,
}

impl Read for Pull {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = self.body.borrow_mut().read(buf);
        match &r {
            Ok(_) => self.last_read.set(Instant::now()),
            Err(e) => self.failed.set(Some(body_failure(e))),
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_form_cases() {
        let cases = [
            ("/a?b", "/a?b"),
            ("*", "*"),
            ("http://h:1/x?y", "/x?y"),
            ("http://h", "/"),
        ];
        for (t, want) in cases {
            assert_eq!(origin_form(t), want, "{t}");
        }
    }
}
