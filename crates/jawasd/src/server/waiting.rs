//! The short wait before a refusal for a count: a connection over
//! `max_connections`, `instances` or `per_source` waits up to its
//! service's `limit_wait` for a running engine to end, and is admitted
//! then, or refused at the end of the wait.
//!
//! Why: an engine closes its connection a moment before jawasd learns
//! that it exited (the exit itself, then the reap, or a zygote's `EXIT`
//! message). A client that reconnects the instant it reads the end (wrk,
//! a polling script, a browser) comes in that moment and would be refused
//! for a count that is already stale, and refused again on every retry.
//!
//! Owns the waiting connections, oldest first. Invariants: the loop never
//! blocks here (a connection waits in this queue, re-checked only after a
//! session ended or when its deadline passes); a connection is admitted
//! through the same checks and the same path as one admitted at once;
//! waiting connections share `[server] max_pending` with the PROXY stage,
//! one client address at most a quarter of it; at a stop they are closed.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::rc::Rc;
use std::time::Instant;

use super::{routing, Server};
use crate::admission::Refusal;

/// One connection waiting for a count to go down.
pub struct Waiting {
    service: Rc<str>,
    stream: TcpStream,
    remote: SocketAddr,
    local: Option<SocketAddr>,
    route: Option<routing::Pick>,
    deadline: Instant,
    /// The refusal it gets if the wait ends without room.
    reason: Refusal,
}

/// One client address may have at most 1/SOURCE_SHARE of `max_pending`
/// waiting.
const SOURCE_SHARE: usize = 4;

/// The waiting connections, and whether a session ended since they were
/// last checked.
#[derive(Default)]
pub struct Waits {
    queue: VecDeque<Waiting>,
    freed: bool,
}

impl Waits {
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// How many of them come from `source` (a walk: there are at most
    /// `max_pending`, and it runs only for a connection about to wait).
    fn from(&self, source: IpAddr) -> usize {
        self.queue
            .iter()
            .filter(|w| w.remote.ip().to_canonical() == source)
            .count()
    }

    /// A session ended (or a connection handed to a zygote was lost):
    /// the waiting connections are checked again after this round.
    pub fn freed(&mut self) {
        self.freed = true;
    }

    /// The earliest deadline (the queue is in arrival order, and every
    /// service's wait is fixed per load, so the oldest is not always the
    /// first due: all are looked at; there are few).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.queue.iter().map(|w| w.deadline).min()
    }
}

impl Server {
    /// A connection refused for a count: waits when its service allows
    /// and there is room, else is handed back to be refused now.
    pub(super) fn wait_for_room(
        &mut self,
        service: &Rc<str>,
        stream: TcpStream,
        (remote, local): (SocketAddr, Option<SocketAddr>),
        route: Option<routing::Pick>,
        reason: Refusal,
    ) -> Result<(), TcpStream> {
        let Some(wait) = self.config_of(service).map(|c| c.limit_wait) else {
            return Err(stream);
        };
        if wait.is_zero() || self.pending_full() || self.stopping.is_some() {
            return Err(stream);
        }
        // One client address may hold at most a quarter of the room, so
        // that one reconnecting in a loop cannot take it all from others.
        let share = (self.config.server.max_pending as usize / SOURCE_SHARE).max(1);
        if self.waits.from(remote.ip().to_canonical()) >= share {
            return Err(stream);
        }
        self.waits.queue.push_back(Waiting {
            service: service.clone(),
            stream,
            remote,
            local,
            route,
            deadline: Instant::now() + wait,
            reason,
        });
        Ok(())
    }

    /// After a round in which sessions ended: the waiting connections, in
    /// order, are admitted while there is room; one refused now for
    /// another reason (a rate) is refused.
    pub(super) fn admit_waiting(&mut self) {
        if !std::mem::take(&mut self.waits.freed) {
            return;
        }
        let mut still = VecDeque::new();
        while let Some(mut w) = self.waits.queue.pop_front() {
            match self.check(&w.service, Some(w.remote)) {
                Ok(()) => self.admitted(&w.service, w.stream, (w.remote, w.local), w.route),
                Err(r) if r.counts_sessions() => {
                    w.reason = r;
                    still.push_back(w);
                }
                Err(r) => self.refuse_waiting(w, r),
            }
        }
        self.waits.queue = still;
    }

    /// The connections whose wait is over are refused.
    pub(super) fn waiting_timers(&mut self, now: Instant) {
        if self.waits.queue.iter().all(|w| w.deadline > now) {
            return;
        }
        let (due, still) = std::mem::take(&mut self.waits.queue)
            .into_iter()
            .partition(|w| w.deadline <= now);
        self.waits.queue = still;
        for w in due {
            let reason = w.reason;
            self.refuse_waiting(w, reason);
        }
    }

    fn refuse_waiting(&mut self, w: Waiting, r: Refusal) {
        self.refuse_connection(&w.service, &w.stream, w.remote, r);
        // The connection closes as `w` drops.
    }

    /// At a stop: waiting connections are closed.
    pub(super) fn drop_waiting(&mut self) {
        self.waits.queue.clear();
    }
}
