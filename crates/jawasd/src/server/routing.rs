//! The routing stage: a connection to a service with `routes` waits in the
//! loop until its first request head has arrived, is matched against the
//! routes by `Host` and path, and goes to admission as a connection of the
//! service its route names, with the route in the engine's environment and
//! a hand-back socket on the engine's fd 3. An engine that reads a later
//! request for another route sends the connection back on that socket;
//! it then comes through this stage again (docs/engine-protocol.md).
//!
//! Owns the connections being routed (registry sources, edge-triggered,
//! with a deadline) and jawasd's ends of the hand-back sockets.
//! Invariants: no byte of a client is ever consumed before an engine has
//! it (the head is only peeked; bytes are read only from a connection
//! jawasd answers itself); nothing here blocks; a silent client leaves at
//! `route_timeout`; routing and PROXY waits share `max_pending`.

use std::ffi::CString;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;
use std::time::Instant;

use jawas_http::route::{Miss, FALLBACK};
use log::{debug, info};
use nix::sys::socket::{recv, send, MsgFlags};

use super::{Server, Source};
use crate::admission::Refusal;
use crate::config::Router;
use crate::registry::Key;

/// The most of a request head jawasd looks at to route it.
const MAX_HEAD: usize = 16 * 1024;

/// One connection waiting for its first request head.
pub struct Routing {
    pub stream: TcpStream,
    router: Rc<str>,
    remote: SocketAddr,
    local: Option<SocketAddr>,
    /// Bytes the last peek saw: an event that shows no more may be the
    /// client's end (a FIN after part of a head).
    seen: usize,
}

/// A connection an engine handed back, waiting for that engine to exit.
pub struct Returned {
    stream: TcpStream,
    router: Rc<str>,
    remote: SocketAddr,
    local: Option<SocketAddr>,
}

/// jawasd's end of a routed engine's hand-back socket, with what the
/// connection's next trip through the router needs.
pub struct Handback {
    pub fd: OwnedFd,
    router: Rc<str>,
    remote: SocketAddr,
    local: Option<SocketAddr>,
    /// The socket's own peer (not a PROXY header's): a socket handed back
    /// must be this connection, not one the engine made up.
    peer: Option<SocketAddr>,
    /// The engine holding the other end.
    pid: libc::pid_t,
}

/// Where a routed connection goes, and what its engine is told.
pub struct Pick {
    pub service: Rc<str>,
    pub router: Rc<str>,
    pub env: Vec<CString>,
    /// Whether the engine gets a hand-back socket: not when the client
    /// said this is its last request (`Connection: close`, or HTTP/1.0
    /// without keep-alive), since no request can follow.
    pub handback: bool,
}

/// A request the router answers itself.
struct Answer {
    status: &'static str,
    why: &'static str,
    refusal: Refusal,
}

impl Server {
    /// The router of `service`, if it routes.
    fn router_of(&self, service: &str) -> Option<Rc<Router>> {
        self.services
            .get(service)
            .and_then(|s| s.prepared.config.router.clone())
    }

    /// A connection past accept (and its PROXY header): routed, or
    /// admitted to its own service.
    pub(super) fn front(
        &mut self,
        service: &Rc<str>,
        stream: TcpStream,
        remote: SocketAddr,
        local: Option<SocketAddr>,
    ) {
        let Some(router) = self.router_of(service) else {
            self.admit(service, stream, remote, local, None);
            return;
        };
        // The router's own access rules and rates apply first.
        if let Err(r) = self.check(service, Some(remote)) {
            self.refused(service, Some(remote), r);
            return;
        }
        self.wait_for_head(service.clone(), stream, remote, local, &router);
    }

    fn wait_for_head(
        &mut self,
        router_name: Rc<str>,
        stream: TcpStream,
        remote: SocketAddr,
        local: Option<SocketAddr>,
        router: &Router,
    ) {
        if self.pending_full() {
            self.refused(&router_name, Some(remote), Refusal::MaxPending);
            return;
        }
        let waiting = Routing {
            stream,
            router: router_name,
            remote,
            local,
            seen: 0,
        };
        // Edge-triggered: a peeked byte stays readable, so level-triggered
        // would wake the loop again and again for a head still arriving.
        match self.registry.add_edge(Source::Routing(waiting)) {
            Ok(key) => {
                self.pending += 1;
                self.registry
                    .set_deadline(key, Some(Instant::now() + router.timeout));
                // Bytes that came before the registration raise no edge.
                self.routing_readable(key);
            }
            Err((s, e)) => {
                if let Source::Routing(w) = s {
                    info!(
                        "route svc={} remote={}: not watched: {e}",
                        w.router, w.remote
                    );
                }
            }
        }
    }

    /// Bytes (or the end) arrived on a connection being routed.
    pub(super) fn routing_readable(&mut self, key: Key) {
        // One buffer for every peek, not 16 KiB zeroed per connection.
        let mut buf = std::mem::take(&mut self.peek_buf);
        buf.resize(MAX_HEAD, 0);
        self.route_peeked(key, &mut buf);
        self.peek_buf = buf;
    }

    fn route_peeked(&mut self, key: Key, buf: &mut [u8]) {
        let Some(Source::Routing(w)) = self.registry.get_mut(key) else {
            return;
        };
        let fd = w.stream.as_raw_fd();
        let n = match recv(fd, buf, MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT) {
            Ok(0) => return self.routing_gone(key),
            // Woken with nothing new: the client's FIN after part of a
            // head (or the event of the registration itself).
            Ok(n) if n == w.seen => {
                if crate::fdpass::peer_closed(fd) {
                    self.routing_gone(key);
                }
                return;
            }
            Ok(n) => n,
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => return,
            Err(_) => return self.routing_gone(key),
        };
        w.seen = n;
        let router_name = w.router.clone();
        let Some(router) = self.router_of(&router_name) else {
            return self.routing_gone(key);
        };
        let head = &buf[..n];
        let mut headers = [httparse::EMPTY_HEADER; 100];
        let mut req = httparse::Request::new(&mut headers);
        let mut more_may_follow = true;
        let found: Result<usize, Answer> = match req.parse(head) {
            Ok(httparse::Status::Complete(_)) => {
                more_may_follow = keeps_alive(&req);
                let host = jawas_http::route::host_field(req.headers);
                let target = req.path.unwrap_or("/").as_bytes();
                if host.is_none() && req.version == Some(1) && !target.contains(&b':') {
                    Err(answer_for(Miss::Bad("no Host field")))
                } else {
                    router.table.find(host, target).map_err(answer_for)
                }
            }
            Ok(httparse::Status::Partial) if n < MAX_HEAD => return,
            // Still in the request line: the target is what is too long.
            Ok(httparse::Status::Partial) if !head.contains(&b'\n') => Err(TARGET_TOO_LONG),
            Ok(httparse::Status::Partial) => Err(HEAD_TOO_BIG),
            Err(httparse::Error::TooManyHeaders) => Err(HEAD_TOO_BIG),
            Err(_) => Err(answer_for(Miss::Bad("malformed request head"))),
        };
        let Some(Source::Routing(w)) = self.remove_routing(key) else {
            return;
        };
        let target = match &found {
            Ok(i) => Some((router.targets[*i].as_str(), Some(*i))),
            // What could not be read is never the fallback's.
            Err(a) if a.refusal == Refusal::RouteBad => None,
            Err(_) => router.fallback.as_deref().map(|f| (f, None)),
        };
        match (target, found) {
            (Some((service, index)), _) => {
                // The router's `accepted`: connections it routed.
                if let Some(state) = self.services.get_mut(&w.router) {
                    state.stats.accept(Instant::now());
                }
                let pick = pick(&w.router, &router, service, index, more_may_follow);
                debug!(
                    "route svc={} remote={} to={}",
                    w.router, w.remote, pick.service
                );
                self.admit(
                    &pick.service.clone(),
                    w.stream,
                    w.remote,
                    w.local,
                    Some(pick),
                );
            }
            (None, Err(answer)) => {
                info!(
                    "route svc={} remote={}: {} ({})",
                    w.router, w.remote, answer.status, answer.why
                );
                self.refused(&w.router, Some(w.remote), answer.refusal);
                answer_and_close(w.stream, n, &answer);
            }
            (None, Ok(_)) => unreachable!("a found route has a target"),
        }
    }

    /// A connection being routed whose deadline passed.
    pub(super) fn routing_expired(&mut self, key: Key) {
        let Some(Source::Routing(w)) = self.remove_routing(key) else {
            return;
        };
        info!(
            "route svc={} remote={}: no complete request head before route_timeout",
            w.router, w.remote
        );
        self.refused(&w.router, Some(w.remote), Refusal::RouteTimeout);
        let answer = Answer {
            status: "408 Request Timeout",
            why: "no request in time",
            refusal: Refusal::RouteTimeout,
        };
        answer_and_close(w.stream, 0, &answer);
    }

    /// The client left before its head was complete: nothing to log but a
    /// debug line, as for a client that connects and closes at once.
    fn routing_gone(&mut self, key: Key) {
        if let Some(Source::Routing(w)) = self.remove_routing(key) {
            debug!(
                "route svc={} remote={}: closed before a request",
                w.router, w.remote
            );
        }
    }

    fn remove_routing(&mut self, key: Key) -> Option<Source> {
        let source = self.registry.remove(key)?;
        self.pending -= 1;
        Some(source)
    }

    /// After a routed engine started: watch jawasd's end of its hand-back
    /// socket.
    pub(super) fn watch_handback(
        &mut self,
        fd: OwnedFd,
        router: Rc<str>,
        (remote, local): (SocketAddr, Option<SocketAddr>),
        (peer, pid): (Option<SocketAddr>, libc::pid_t),
    ) {
        let h = Handback {
            fd,
            router,
            remote,
            local,
            peer,
            pid,
        };
        if let Err((_, e)) = self.registry.add(Source::Handback(h), true) {
            info!("route: hand-back socket not watched: {e}");
        }
    }

    /// A routed engine sent its connection back, or ended.
    pub(super) fn handback_readable(&mut self, key: Key) {
        let Some(Source::Handback(h)) = self.registry.get(key) else {
            return;
        };
        let received = crate::fdpass::receive_fd(h.fd.as_raw_fd());
        if matches!(
            received,
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR)
        ) {
            return;
        }
        let Some(Source::Handback(h)) = self.registry.remove(key) else {
            return;
        };
        let Ok(Some(fd)) = received else {
            // The engine ended without handing anything back.
            return;
        };
        let is_stream = matches!(
            nix::sys::socket::getsockopt(&fd, nix::sys::socket::sockopt::SockType),
            Ok(nix::sys::socket::SockType::Stream)
        );
        let stream = TcpStream::from(fd);
        if !is_stream || stream.local_addr().is_err() || stream.peer_addr().ok() != h.peer {
            info!(
                "route svc={} remote={}: a hand-back carried something other than this client's TCP connection; dropped",
                h.router, h.remote
            );
            return;
        }
        debug!("route svc={} remote={}: handed back", h.router, h.remote);
        let r = Returned {
            stream,
            router: h.router,
            remote: h.remote,
            local: h.local,
        };
        // Routed again once the engine that handed it back has exited, so
        // that it no longer counts against `instances`, `per_source` and
        // `max_connections` (it exits right after handing back).
        match self.sessions.by_pid(h.pid) {
            Some(id) => {
                self.returned.insert(id, r);
            }
            None => self.route_returned(r),
        }
    }

    /// A handed-back connection whose engine has exited: through the
    /// routing stage again. While jawasd stops (or has handed over to its
    /// successor), it is closed instead: the client reconnects, to the
    /// new jawasd if there is one.
    pub(super) fn route_returned(&mut self, r: Returned) {
        if self.stopping.is_some() {
            return;
        }
        let Some(router) = self.router_of(&r.router) else {
            return; // the router is gone after a reload: the client reconnects
        };
        self.wait_for_head(r.router, r.stream, r.remote, r.local, &router);
    }

    /// At shutdown: connections still waiting for a request are closed.
    pub(super) fn drop_routing(&mut self) {
        for key in self
            .registry
            .keys_where(|s| matches!(s, Source::Routing(_)))
        {
            self.remove_routing(key);
        }
    }
}

/// The service and environment for route `index` (`None`: the fallback).
fn pick(
    router_name: &Rc<str>,
    router: &Router,
    service: &str,
    index: Option<usize>,
    handback: bool,
) -> Pick {
    let (token, mount) = match index {
        Some(i) => {
            let r = &router.table.routes()[i];
            (r.token(), r.prefix.mount())
        }
        None => (FALLBACK.to_string(), String::new()),
    };
    let var = |s: String| CString::new(s).unwrap_or_default();
    let mut env = vec![
        var(format!("JAWAS_ROUTE={token}")),
        var(format!("JAWAS_ROUTE_PREFIX={mount}")),
        var(format!("JAWAS_ROUTES={}", router.env)),
        var(format!("JAWAS_ROUTER={router_name}")),
    ];
    if handback {
        env.push(var("JAWAS_HANDBACK_FD=3".to_string()));
    }
    Pick {
        service: Rc::from(service),
        router: router_name.clone(),
        env,
        handback,
    }
}

/// Whether another request may follow this one on the connection: HTTP/1.1
/// unless `Connection: close`, HTTP/1.0 only with `Connection: keep-alive`.
fn keeps_alive(req: &httparse::Request<'_, '_>) -> bool {
    let mut close = false;
    let mut keep = false;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                close |= token.eq_ignore_ascii_case(b"close");
                keep |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }
    match req.version {
        Some(1) => !close,
        _ => keep && !close,
    }
}

/// Heads too big to read, answered as nginx and the engines would.
const TARGET_TOO_LONG: Answer = Answer {
    status: "414 URI Too Long",
    why: "request target over 16 KiB",
    refusal: Refusal::RouteBad,
};
const HEAD_TOO_BIG: Answer = Answer {
    status: "431 Request Header Fields Too Large",
    why: "request head over 16 KiB or 100 fields",
    refusal: Refusal::RouteBad,
};

fn answer_for(miss: Miss) -> Answer {
    match miss {
        Miss::Bad(why) => Answer {
            status: "400 Bad Request",
            why,
            refusal: Refusal::RouteBad,
        },
        Miss::UnknownHost => Answer {
            status: "421 Misdirected Request",
            why: "no route for this host",
            refusal: Refusal::RouteHost,
        },
        Miss::NoPrefix => Answer {
            status: "404 Not Found",
            why: "no route for this path",
            refusal: Refusal::RouteNone,
        },
    }
}

/// Takes the `seen` bytes of the request off the socket (so that closing
/// does not reset the connection over unread data), writes a small
/// complete response without blocking, and closes.
fn answer_and_close(stream: TcpStream, seen: usize, answer: &Answer) {
    let fd = stream.as_raw_fd();
    if seen > 0 {
        let mut sink = vec![0u8; seen];
        let _ = recv(fd, &mut sink, MsgFlags::MSG_DONTWAIT);
    }
    let body = format!("{}\n", answer.status);
    let text = format!(
        "HTTP/1.1 {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        answer.status,
        body.len()
    );
    let _ = send(
        fd,
        text.as_bytes(),
        MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
    );
    let _ = stream.shutdown(std::net::Shutdown::Write);
}
