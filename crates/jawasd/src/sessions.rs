//! The sessions table: one entry per connection an engine is serving.
//!
//! Owns the running sessions, keyed by a session id rather than a pid (a
//! zygote's children are not jawasd's children, and a pid can be reused),
//! and the counts limits are checked against: per service, per service and
//! source address, and in all.
//!
//! Invariant: **counts change in exactly two places**, `start` and `end`, so
//! they always equal what the table holds; a reload changes neither.

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::Instant;

use crate::registry::Key;

/// A session's name; never reused while jawasd runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(u64);

impl SessionId {
    /// The id a control client names (`jawasd ctl kill ID`).
    pub fn from_raw(n: u64) -> SessionId {
        SessionId(n)
    }

    pub fn raw(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One connection being served.
#[derive(Debug)]
pub struct Session {
    pub service: Rc<str>,
    /// The engine's pid (its process group too: engines call setsid).
    pub pid: libc::pid_t,
    /// The client; unknown for a TCP wait service (the engine accepts).
    pub remote: Option<SocketAddr>,
    /// The address the client connected to, when known.
    pub local: Option<SocketAddr>,
    pub started: Instant,
    /// For a wait service, the listener to watch again when this ends.
    pub waiting_on: Option<Key>,
    /// The registry key of the engine's pidfd, when it has one.
    pub pidfd: Option<Key>,
    /// The zygote whose `PID` answer started it: its word is all jawasd
    /// has that this pid is the engine.
    pub zygote: Option<libc::pid_t>,
}

impl Session {
    /// The address per-source counts use (IPv4-mapped IPv6 as IPv4).
    pub fn source(&self) -> Option<IpAddr> {
        self.remote.map(|r| r.ip().to_canonical())
    }
}

/// A session about to start.
pub struct NewSession {
    pub service: Rc<str>,
    pub pid: libc::pid_t,
    pub remote: Option<SocketAddr>,
    pub local: Option<SocketAddr>,
    pub waiting_on: Option<Key>,
    pub zygote: Option<libc::pid_t>,
}

#[derive(Default)]
pub struct Sessions {
    by_id: HashMap<SessionId, Session>,
    by_pid: HashMap<libc::pid_t, SessionId>,
    per_service: HashMap<Rc<str>, u32>,
    per_source: HashMap<(Rc<str>, IpAddr), u32>,
    next: u64,
}

impl Sessions {
    /// Records a started session and counts it.
    pub fn start(&mut self, new: NewSession, now: Instant) -> SessionId {
        self.next += 1;
        let id = SessionId(self.next);
        let session = Session {
            service: new.service,
            pid: new.pid,
            remote: new.remote,
            local: new.local,
            started: now,
            waiting_on: new.waiting_on,
            pidfd: None,
            zygote: new.zygote,
        };
        *self.per_service.entry(session.service.clone()).or_insert(0) += 1;
        if let Some(ip) = session.source() {
            *self
                .per_source
                .entry((session.service.clone(), ip))
                .or_insert(0) += 1;
        }
        self.by_pid.insert(session.pid, id);
        self.by_id.insert(id, session);
        id
    }

    /// Removes a finished session and uncounts it.
    pub fn end(&mut self, id: SessionId) -> Option<Session> {
        let session = self.by_id.remove(&id)?;
        if self.by_pid.get(&session.pid) == Some(&id) {
            self.by_pid.remove(&session.pid);
        }
        decrement(&mut self.per_service, &session.service);
        if let Some(ip) = session.source() {
            decrement(&mut self.per_source, &(session.service.clone(), ip));
        }
        Some(session)
    }

    /// Notes the registry key of a session's pidfd.
    pub fn set_pidfd(&mut self, id: SessionId, key: Key) {
        if let Some(s) = self.by_id.get_mut(&id) {
            s.pidfd = Some(key);
        }
    }

    pub fn by_pid(&self, pid: libc::pid_t) -> Option<SessionId> {
        self.by_pid.get(&pid).copied()
    }

    pub fn has_pidfd(&self, id: SessionId) -> bool {
        self.by_id.get(&id).is_some_and(|s| s.pidfd.is_some())
    }

    /// Sessions of `service` running now.
    pub fn running(&self, service: &str) -> u32 {
        self.per_service.get(service).copied().unwrap_or(0)
    }

    /// Sessions of `service` from `ip` running now.
    pub fn running_from(&self, service: &Rc<str>, ip: IpAddr) -> u32 {
        self.per_source
            .get(&(service.clone(), ip))
            .copied()
            .unwrap_or(0)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Session> {
        self.by_id.values()
    }

    pub fn iter_ids(&self) -> impl Iterator<Item = (SessionId, &Session)> {
        self.by_id.iter().map(|(id, s)| (*id, s))
    }

    pub fn get(&self, id: SessionId) -> Option<&Session> {
        self.by_id.get(&id)
    }
}

fn decrement<K: std::hash::Hash + Eq>(map: &mut HashMap<K, u32>, key: &K) {
    if let Some(n) = map.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            map.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(service: &Rc<str>, pid: i32, remote: &str) -> NewSession {
        NewSession {
            service: service.clone(),
            pid,
            remote: Some(remote.parse().unwrap()),
            local: None,
            waiting_on: None,
            zygote: None,
        }
    }

    #[test]
    fn counts_follow_starts_and_ends() {
        let web: Rc<str> = Rc::from("web");
        let ssh: Rc<str> = Rc::from("ssh");
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let mut s = Sessions::default();
        let now = Instant::now();
        let a = s.start(new(&web, 10, "192.0.2.7:1000"), now);
        let b = s.start(new(&web, 11, "[::ffff:192.0.2.7]:1001"), now);
        let c = s.start(new(&ssh, 12, "192.0.2.7:1002"), now);
        assert_eq!((s.running("web"), s.running("ssh"), s.len()), (2, 1, 3));
        assert_eq!(s.running_from(&web, ip), 2, "mapped address counts as v4");
        assert_eq!(s.by_pid(11), Some(b));
        assert_eq!(s.end(a).map(|x| x.pid), Some(10));
        assert!(s.end(a).is_none(), "a session ends once");
        assert_eq!((s.running("web"), s.running_from(&web, ip)), (1, 1));
        s.end(b);
        s.end(c);
        assert!(s.is_empty());
        assert_eq!((s.running("web"), s.running_from(&web, ip)), (0, 0));
        assert!(s.per_service.is_empty() && s.per_source.is_empty());
    }
}
