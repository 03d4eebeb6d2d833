//! The PROXY stage between accept and admission: a connection to a
//! `proxy_protocol` service waits in the loop until its PROXY header has
//! arrived whole, then goes to admission with the addresses the header
//! names (so access rules, per-source limits, rates, the sensor and the
//! engine's environment all see the real client).
//!
//! Owns the pending connections (registry sources with a deadline) and
//! their count. Invariants: only header bytes are ever consumed (a peek
//! shows what has arrived; bytes of a header still incomplete are all
//! header, so they are read; once complete, exactly the rest of it is
//! read), so the engine gets the client's first byte untouched; nothing
//! here blocks (peek and read with MSG_DONTWAIT); a silent peer leaves at
//! its deadline; at most `max_pending` wait at once.

use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::Instant;

use log::info;
use nix::sys::socket::{recv, MsgFlags};

use super::{Server, Source};
use crate::admission::Refusal;
use crate::proxy::{self, Parsed};
use crate::registry::Key;

/// One accepted connection waiting for its header.
pub struct Pending {
    pub stream: TcpStream,
    service: Rc<str>,
    /// The socket's own addresses, until the header replaces them.
    remote: SocketAddr,
    local: Option<SocketAddr>,
    /// Header bytes already read (a prefix of the header).
    got: Vec<u8>,
}

impl Server {
    /// A connection just accepted: to admission at once, or first to the
    /// PROXY stage when its service reads a header.
    pub(super) fn accepted(
        &mut self,
        service: &Rc<str>,
        stream: TcpStream,
        remote: SocketAddr,
        local: Option<SocketAddr>,
    ) {
        let Some(proxy) = self
            .services
            .get(service)
            .and_then(|s| s.prepared.config.proxy.as_ref())
        else {
            self.front(service, stream, remote, local);
            return;
        };
        if !proxy.from.iter().any(|c| c.contains(remote.ip())) {
            info!(
                "proxy svc={service} remote={remote}: not in proxy_from; a PROXY header is taken only from the load balancers listed there"
            );
            self.refused(service, Some(remote), Refusal::ProxyUntrusted);
            return;
        }
        if self.pending_full() {
            self.refused(service, Some(remote), Refusal::MaxPending);
            return;
        }
        let deadline = Instant::now() + proxy.timeout;
        let pending = Pending {
            stream,
            service: service.clone(),
            remote,
            local,
            got: Vec::new(),
        };
        match self.registry.add(Source::Pending(pending), true) {
            Ok(key) => {
                self.pending += 1;
                self.registry.set_deadline(key, Some(deadline));
            }
            Err((_, e)) => info!("proxy svc={service} remote={remote}: not watched: {e}"),
        }
    }

    /// Bytes (or the end) arrived on a pending connection.
    pub(super) fn pending_readable(&mut self, key: Key) {
        let Some(Source::Pending(p)) = self.registry.get_mut(key) else {
            return;
        };
        let mut buf = vec![0u8; proxy::MAX_HEADER - p.got.len()];
        let fd = p.stream.as_raw_fd();
        let n = match recv(fd, &mut buf, MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT) {
            Ok(0) => return self.pending_failed(key, "closed before its PROXY header ended"),
            Ok(n) => n,
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => return,
            Err(_) => return self.pending_failed(key, "failed before its PROXY header ended"),
        };
        let mut seen = std::mem::take(&mut p.got);
        let before = seen.len();
        seen.extend_from_slice(&buf[..n]);
        let (take, header) = match proxy::parse(&seen) {
            // Every byte seen is header: read them, so the socket is not
            // reported readable again for bytes already looked at.
            Parsed::Incomplete => (n, None),
            Parsed::Complete(h) => (h.len - before, Some(h)),
            Parsed::Invalid(why) => return self.pending_failed(key, why),
        };
        let mut sink = vec![0u8; take];
        let read = recv(fd, &mut sink, MsgFlags::MSG_DONTWAIT);
        if read != Ok(take) {
            return self.pending_failed(key, "its PROXY header could not be read");
        }
        seen.truncate(before + take);
        let Some(header) = header else {
            p.got = seen;
            return;
        };
        let Some(Source::Pending(p)) = self.remove_pending(key) else {
            return;
        };
        let (remote, local) = match header.addrs {
            Some((src, dst)) => (src, Some(dst)),
            // LOCAL / UNKNOWN: the balancer speaking for itself.
            None => (p.remote, p.local),
        };
        self.front(&p.service, p.stream, remote, local);
    }

    /// A pending connection whose deadline passed.
    pub(super) fn pending_expired(&mut self, key: Key) {
        self.pending_failed(key, "no complete PROXY header before proxy_timeout");
    }

    fn pending_failed(&mut self, key: Key, why: &str) {
        let Some(Source::Pending(p)) = self.remove_pending(key) else {
            return;
        };
        info!("proxy svc={} remote={}: {why}", p.service, p.remote);
        let reason = if why.starts_with("no complete") {
            Refusal::ProxyTimeout
        } else {
            Refusal::ProxyHeader
        };
        self.refused(&p.service, Some(p.remote), reason);
        // The connection closes as `p` drops.
    }

    fn remove_pending(&mut self, key: Key) -> Option<Source> {
        let source = self.registry.remove(key)?;
        self.pending -= 1;
        Some(source)
    }

    /// At shutdown: connections still waiting for a header are closed.
    pub(super) fn drop_pending(&mut self) {
        for key in self
            .registry
            .keys_where(|s| matches!(s, Source::Pending(_)))
        {
            self.remove_pending(key);
        }
    }
}
