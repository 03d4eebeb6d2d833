//! The loop's side of the control socket: accepting control clients,
//! answering their requests from the loop's own tables, and publishing
//! connection events to the clients that subscribed.
//!
//! Owns the control state (the socket's key, the subscribers, when jawasd
//! started and its configuration was loaded, the services drained by
//! hand). Transport and parsing live in `crate::control`.
//!
//! Invariants: every answer is built from memory the loop already holds
//! (no lookup, no blocking call); a client whose unread output passes
//! `control::MAX_OUTPUT` is dropped, never waited for; an event is
//! serialised once, whatever the number of subscribers.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Instant, SystemTime};

use log::{info, warn};
use serde_json::{json, Map, Value};

use super::{Server, Source, StartError};
use crate::control::{self, Client, ControlSocket, Request};
use crate::registry::Key;
use crate::sessions::SessionId;
use crate::timefmt;

/// Control clients accepted per loop wakeup.
const ACCEPTS_PER_WAKEUP: usize = 8;
/// How long jawasd's process figures are reused.
const PROCESS_FRESH: std::time::Duration = std::time::Duration::from_secs(1);

pub struct ControlState {
    /// The listening socket's key, when `[server] control` is set.
    socket: Option<Key>,
    clients: usize,
    subscribers: BTreeSet<Key>,
    started: SystemTime,
    started_at: Instant,
    loaded: SystemTime,
    /// Services whose listeners `drain` closed (until the next reload).
    pub drained: HashSet<Rc<str>>,
    /// jawasd's CPU, descriptors and memory, and when they were read:
    /// reading /proc/self/fd costs one entry per descriptor (a pidfd and a
    /// pipe per engine), so a client asking often gets a recent copy.
    process: Option<(Instant, Value)>,
    /// The last `connections` answer (its filter, when it was made): many
    /// clients polling a big table get a copy at most a second old instead
    /// of one walk of the sessions each.
    connections: Option<(Option<String>, Instant, Value)>,
}

impl ControlState {
    /// The sessions changed: the next `connections` is built afresh.
    pub fn forget_connections(&mut self) {
        self.connections = None;
    }
}

impl Default for ControlState {
    fn default() -> Self {
        ControlState {
            socket: None,
            clients: 0,
            subscribers: BTreeSet::new(),
            started: SystemTime::now(),
            started_at: Instant::now(),
            loaded: SystemTime::now(),
            drained: HashSet::new(),
            process: None,
            connections: None,
        }
    }
}

/// An address for JSON: the text, or null when unknown.
fn addr(a: Option<SocketAddr>) -> Value {
    a.map_or(Value::Null, |a| Value::String(a.to_string()))
}

impl Server {
    /// Opens the socket `[server] control` names when it is not the one
    /// open already; the old one closes once the new one is in place.
    /// Called before a configuration is committed, so a socket that cannot
    /// be created fails the start or the reload.
    pub(super) fn open_control(
        &mut self,
        config: &crate::config::Config,
    ) -> Result<(), StartError> {
        let wanted = &config.server.control;
        let current = self
            .control
            .socket
            .and_then(|k| match self.registry.get(k) {
                Some(Source::Control(s)) => Some((s.path.clone(), s.mode, s.still_ours())),
                _ => None,
            });
        // Unchanged, same mode, and still ours at its path: nothing to do.
        // A changed mode, or a socket removed or replaced meanwhile, gets
        // a fresh one (never a chmod by path).
        let ours = match (wanted, &current) {
            (Some(path), Some((p, mode, still))) if path == p => {
                if *mode == config.server.control_mode && *still {
                    return Ok(());
                }
                *still
            }
            (None, None) => return Ok(()),
            _ => false,
        };
        let upgrading = std::env::var_os(super::upgrade::FROM_VAR).is_some();
        let fresh = match wanted {
            Some(path) => {
                let socket =
                    ControlSocket::bind(path, config.server.control_mode, ours || upgrading)
                        .map_err(|e| StartError::Control(path.display().to_string(), e))?;
                let key = self
                    .registry
                    .add(Source::Control(socket), true)
                    .map_err(|(_, e)| StartError::System("watch the control socket", e))?;
                info!("control socket={}", path.display());
                Some(key)
            }
            None => None,
        };
        if let Some(old) = std::mem::replace(&mut self.control.socket, fresh) {
            self.registry.remove(old);
        }
        Ok(())
    }

    /// Notes a configuration just applied.
    pub(super) fn control_loaded(&mut self) {
        self.control.loaded = SystemTime::now();
        self.control.drained.clear();
    }

    /// New control clients.
    pub(super) fn control_accept(&mut self, key: Key) {
        for _ in 0..ACCEPTS_PER_WAKEUP {
            let Some(Source::Control(socket)) = self.registry.get(key) else {
                return;
            };
            let stream = match socket.listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if super::is_resource_exhaustion(&e) => {
                    warn!("control accept failed: {}", crate::errno_text(&e));
                    return;
                }
                Err(_) => continue,
            };
            let Ok(mut client) = Client::new(stream) else {
                continue;
            };
            if self.control.clients >= control::MAX_CLIENTS {
                client.queue(&error_line("too many control clients"));
                let _ = client.flush();
                continue;
            }
            match self.registry.add(Source::ControlClient(client), true) {
                Ok(_) => self.control.clients += 1,
                Err((_, e)) => warn!("control client not watched: {e}"),
            }
        }
    }

    /// A control client is readable or writable (or has requests left
    /// from an earlier wakeup): answer what it asked, write what it takes.
    pub(super) fn control_ready(&mut self, key: Key) {
        let Some(Source::ControlClient(client)) = self.registry.get_mut(key) else {
            return;
        };
        let input = client.read();
        let closing = client.closing;
        let subscriber = self.control.subscribers.contains(&key);
        if input.lines.is_empty()
            && !input.gone
            && input.error.is_none()
            && !subscriber
            && client.idle_for() >= control::IDLE
        {
            self.drop_client(key, None);
            return;
        }
        if let Some(why) = input.error {
            client.queue(&error_line(why));
            let _ = client.flush();
        }
        if input.gone {
            self.drop_client(key, None);
            return;
        }
        for line in input.lines {
            let answer = match control::parse(&line) {
                Ok(req) => self.answer(key, req),
                Err(e) => error_line(&e),
            };
            if !self.send(key, &answer) {
                return;
            }
        }
        // Writable, or answers queued above: write what the kernel takes.
        let Some(Source::ControlClient(client)) = self.registry.get_mut(key) else {
            return;
        };
        match client.flush() {
            Ok(done) => self.registry.want_write(key, !done),
            Err(_) => {
                self.drop_client(key, None);
                return;
            }
        }
        let Some(Source::ControlClient(client)) = self.registry.get(key) else {
            return;
        };
        // Requests left for the next round: epoll will not say so, as
        // they are already read, so an immediate deadline does.
        let more = client.has_lines();
        if more {
            self.registry.set_deadline(key, Some(Instant::now()));
        } else if !closing && !self.control.subscribers.contains(&key) {
            self.registry
                .set_deadline(key, Some(Instant::now() + control::IDLE));
        } else if closing {
            if self.control.subscribers.contains(&key) {
                // A subscriber that closed its side is gone: epoll cannot
                // tell a half-close from a hang-up, and watching neither
                // would keep a dead client for good.
                self.drop_client(key, None);
            } else {
                self.finish_if_flushed(key);
            }
        }
    }

    /// Queues `line` for a client and writes what the kernel takes; false
    /// when the client was dropped (gone, or too far behind).
    fn send(&mut self, key: Key, line: &str) -> bool {
        let Some(Source::ControlClient(client)) = self.registry.get_mut(key) else {
            return false;
        };
        if !client.queue(line) {
            self.drop_client(
                key,
                Some("output buffer full: it does not read what it asked for"),
            );
            return false;
        }
        match client.flush() {
            Ok(done) => {
                self.registry.want_write(key, !done);
                true
            }
            Err(_) => {
                self.drop_client(key, None);
                false
            }
        }
    }

    /// Closes a client that sent EOF once its answers are written.
    fn finish_if_flushed(&mut self, key: Key) {
        if let Some(Source::ControlClient(client)) = self.registry.get_mut(key) {
            if matches!(client.flush(), Ok(true) | Err(_)) {
                self.drop_client(key, None);
            } else {
                // Nothing more to read; wait for writability only.
                self.registry.arm(key, false);
                self.registry.want_write(key, true);
            }
        }
    }

    fn drop_client(&mut self, key: Key, why: Option<&str>) {
        if self.registry.remove(key).is_some() {
            self.control.clients -= 1;
            self.control.subscribers.remove(&key);
            if let Some(why) = why {
                warn!("control client dropped: {why}");
            }
        }
    }

    /// The answer to one request, as one JSON line.
    fn answer(&mut self, key: Key, req: Request) -> String {
        let admin = matches!(self.registry.get(key), Some(Source::ControlClient(c)) if c.admin);
        if !admin
            && matches!(
                req,
                Request::Kill { .. } | Request::Reload | Request::Drain(_)
            )
        {
            return error_line(
                "kill, reload and drain need root or jawasd's own user; other users may only look (status, connections, events)",
            );
        }
        let v = match req {
            Request::Status => self.status(),
            Request::Connections(service) => self.connections_cached(service),
            Request::Kill { id, signal } => self.kill(id, signal),
            Request::Reload => match self.reload() {
                Ok(()) => json!({"ok": true, "result": "applied"}),
                Err(errors) => {
                    json!({"ok": false, "error": "reload failed; keeping the running configuration", "errors": errors})
                }
            },
            Request::Drain(service) => self.drain(&service),
            Request::Events => {
                self.control.subscribers.insert(key);
                json!({"ok": true, "events": true})
            }
        };
        v.to_string()
    }

    fn status(&mut self) -> Value {
        let now = Instant::now();
        let mut services = Vec::new();
        let mut names: Vec<Rc<str>> = self.services.keys().cloned().collect();
        names.sort();
        // One pass over the registry, not one per service.
        let mut listening: HashMap<Rc<str>, Vec<String>> = HashMap::new();
        for key in self.listener_keys() {
            if let Some(l) = self.listener(key) {
                listening
                    .entry(l.service.clone())
                    .or_default()
                    .push(l.local.to_string());
            }
        }
        let process = match &self.control.process {
            Some((at, v)) if now.saturating_duration_since(*at) < PROCESS_FRESH => v.clone(),
            _ => {
                let v = process();
                self.control.process = Some((now, v.clone()));
                v
            }
        };
        for name in names {
            let mut listen = listening.remove(&name).unwrap_or_default();
            listen.sort();
            let running = self.sessions.running(&name);
            let drained = self.control.drained.contains(&name);
            let Some(state) = self.services.get_mut(&name) else {
                continue;
            };
            let s = &mut state.stats;
            let buckets: Vec<Value> = s
                .durations
                .cumulative()
                .into_iter()
                .map(|(le, n)| json!([le.map_or("+Inf".to_string(), |b| b.to_string()), n]))
                .collect();
            services.push(json!({
                "name": &*name,
                "listen": listen,
                "drained": drained,
                "running": running,
                "accepted": s.accepted,
                "refused": s.refused,
                "refused_by": s.refused_by,
                "spawn_failed": s.spawn_failed,
                "failed": s.failed,
                "exits": s.exits,
                "rate": s.rate.per_second(now),
                "duration": {"buckets": buckets, "sum": s.durations.sum, "count": s.durations.count},
            }));
        }
        let zone = timefmt::zone();
        json!({
            "ok": true,
            "pid": std::process::id(),
            "version": env!("CARGO_PKG_VERSION"),
            "started": timefmt::rfc3339(self.control.started, zone),
            "started_unix": unix(self.control.started),
            "loaded_unix": unix(self.control.loaded),
            "uptime": self.control.started_at.elapsed().as_secs_f64(),
            "config": self.config.path.display().to_string(),
            "loaded": timefmt::rfc3339(self.control.loaded, zone),
            "engines": self.sessions.len(),
            "pending": self.pending,
            "waiting": self.waits.len(),
            "control_clients": self.control.clients,
            "process": process,
            "services": services,
        })
    }

    fn connections_cached(&mut self, service: Option<String>) -> Value {
        if let Some((filter, at, v)) = &self.control.connections {
            if *filter == service && at.elapsed() < PROCESS_FRESH {
                return v.clone();
            }
        }
        let v = self.connections(service.as_deref());
        self.control.connections = Some((service, Instant::now(), v.clone()));
        v
    }

    fn connections(&self, service: Option<&str>) -> Value {
        if let Some(s) = service {
            if !self.services.contains_key(s) {
                return json!({"ok": false, "error": format!("no service '{s}'")});
            }
        }
        let now = Instant::now();
        let wall = SystemTime::now();
        let zone = timefmt::zone();
        let mut list: Vec<(SessionId, Value)> = self
            .sessions
            .iter_ids()
            .filter(|(_, s)| service.is_none_or(|want| *s.service == *want))
            .map(|(id, s)| {
                let age = now.saturating_duration_since(s.started);
                let kind = match self.services.get(&s.service) {
                    Some(st) if st.prepared.config.protocol == crate::config::Protocol::Udp => {
                        if s.waiting_on.is_some() {
                            "udp-wait"
                        } else {
                            "udp"
                        }
                    }
                    _ if s.waiting_on.is_some() => "wait",
                    _ => "stream",
                };
                let started = wall.checked_sub(age).unwrap_or(wall);
                (
                    id,
                    json!({
                        "id": id.raw(),
                        "service": &*s.service,
                        "pid": s.pid,
                        "remote": addr(s.remote),
                        "local": addr(s.local),
                        "kind": kind,
                        "started": timefmt::rfc3339(started, zone),
                        "age": age.as_secs_f64(),
                    }),
                )
            })
            .collect();
        list.sort_by_key(|(id, _)| *id);
        let list: Vec<Value> = list.into_iter().map(|(_, v)| v).collect();
        json!({"ok": true, "connections": list})
    }

    fn kill(&mut self, id: u64, signal: libc::c_int) -> Value {
        let Some(s) = self.sessions.get(SessionId::from_raw(id)) else {
            return json!({"ok": false, "error": format!("no connection {id} (see connections)")});
        };
        if !self.may_signal(s) {
            return json!({"ok": false, "error": format!("connection {id}: pid {} is not an engine of jawasd's", s.pid)});
        }
        crate::spawn::signal_group(s.pid, signal);
        info!(
            "control: kill id={id} svc={} pid={} signal={signal}",
            s.service, s.pid
        );
        json!({"ok": true, "id": id, "pid": s.pid})
    }

    fn drain(&mut self, service: &str) -> Value {
        if !self.services.contains_key(service) {
            return json!({"ok": false, "error": format!("no service '{service}'")});
        }
        let keys = self
            .registry
            .keys_where(|s| matches!(s, Source::Listener(l) if *l.service == *service));
        let mut closed = Vec::new();
        for key in keys {
            if let Some(Source::Listener(l)) = self.registry.remove(key) {
                closed.push(l.local.to_string());
                info!("drain svc={service} listen={}", l.local);
            }
        }
        let name: Rc<str> = Rc::from(service);
        self.control.drained.insert(name);
        self.publish(|| json!({"event": "drain", "service": service, "closed": closed}));
        json!({"ok": true, "service": service, "closed": closed})
    }

    /// Sends an event to every subscriber; `event` makes an object, to
    /// which the time is added. It is only called when someone listens,
    /// so the accept path builds nothing when nobody does.
    pub(super) fn publish(&mut self, event: impl FnOnce() -> Value) {
        if self.control.subscribers.is_empty() {
            return;
        }
        let mut event = event();
        if let Value::Object(m) = &mut event {
            let mut with_time = Map::new();
            with_time.insert("time".into(), timefmt::now(timefmt::zone()).into());
            with_time.append(m);
            *m = with_time;
        }
        let line = event.to_string();
        let keys: Vec<Key> = self.control.subscribers.iter().copied().collect();
        for key in keys {
            self.send(key, &line);
        }
    }
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn error_line(why: &str) -> String {
    json!({"ok": false, "error": why}).to_string()
}

/// jawasd's own CPU time, descriptors and memory.
fn process() -> Value {
    let cpu = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF)
        .map(|u| {
            let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
            t(u.user_time()) + t(u.system_time())
        })
        .unwrap_or(0.0);
    // Less the descriptor read_dir itself holds open while counting.
    let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count().saturating_sub(1));
    let max_fds = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(0, |(soft, _)| soft);
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .unwrap_or(4096) as u64;
    let rss = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * page);
    json!({"cpu_seconds": cpu, "fds": fds, "max_fds": max_fds, "rss_bytes": rss})
}
