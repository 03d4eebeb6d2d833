//! The loop's side of zygote services: starting each service's zygote,
//! handing it admitted connections, reading its messages, restarting it
//! with backoff when it dies, and retiring it on reload.
//!
//! Owns the per-service zygote slots, the pid of every zygote still
//! running, and the connections handed to each zygote and not answered
//! yet. Invariants: a service has at most one current zygote (older ones
//! are retired and only finish their children); a connection goes to a
//! zygote only when it is ready, else it is served by exec, so a zygote
//! that is starting, restarting or broken never refuses a client; the loop
//! never waits for a zygote: a handed connection stays pending (counted as
//! running) until its `PID` or `FAIL` is read, and one left unanswered for
//! `HAND_TIMEOUT`, or whose zygote is gone, is served by exec; every
//! `EXIT` a zygote reports ends its session exactly like a reaped engine.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use log::{debug, info, warn};

use super::routing;
use super::{Server, Source};
use crate::config::SpawnMode;
use crate::launcher::{self, Conn, Launched, RouteConn};
use crate::reaper::ExitStatus;
use crate::registry::Key;
use crate::spawn::{self, SpawnError};
use crate::zygote::{Message, Zygote, HAND_TIMEOUT};

/// First and longest wait before a dead zygote is started again.
const RESTART_MIN: Duration = Duration::from_secs(1);
const RESTART_MAX: Duration = Duration::from_secs(60);
/// How long a zygote may take to say READY before it is taken for an
/// engine that does not speak the protocol (or one stuck in `init`).
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// One zygote service's state.
#[derive(Default)]
pub struct Slot {
    /// The registry key of the current zygote.
    current: Option<Key>,
    /// When to start a zygote again after one died or failed to start.
    restart_at: Option<Instant>,
    /// The wait after the next death.
    backoff: Option<Duration>,
    /// When the current zygote must have said READY.
    ready_by: Option<Instant>,
    /// When the current zygote was started: one that ran longer than
    /// `RESTART_MAX` before dying starts the backoff over.
    started: Option<Instant>,
}

/// Every zygote service's slot, the running zygotes by pid, and the
/// connections handed to each and not yet answered, oldest first.
#[derive(Default)]
pub struct Zygotes {
    slots: HashMap<Rc<str>, Slot>,
    pids: HashMap<libc::pid_t, Rc<str>>,
    handing: HashMap<Key, VecDeque<Handing>>,
}

/// An admitted connection on its way to an engine.
pub struct Admitted {
    pub service: Rc<str>,
    /// jawasd's copy, kept until the engine has it (a zygote's answer), so
    /// that a connection a zygote could not take is served by exec.
    pub stream: TcpStream,
    pub remote: SocketAddr,
    pub local: Option<SocketAddr>,
    pub route: Option<routing::Pick>,
    /// A routed engine's way back to the router: (jawasd's end, the engine's).
    pub handback: Option<(OwnedFd, OwnedFd)>,
}

impl Admitted {
    /// What a launcher needs of it.
    pub fn conn(&self) -> Conn<'_> {
        Conn {
            socket: self.stream.as_fd(),
            local: self.local,
            remote: Some(self.remote),
            route: self.route.as_ref().map(|p| RouteConn {
                env: &p.env,
                handback: self.handback.as_ref().map(|(_, theirs)| theirs.as_fd()),
            }),
        }
    }
}

/// A connection handed to a zygote, waiting for its answer.
struct Handing {
    conn: Admitted,
    /// The socket's inode, by which an answer may name it.
    ino: u64,
    /// The read end of the child's stderr capture pipe.
    stderr: Option<OwnedFd>,
    deadline: Instant,
}

impl Zygotes {
    /// The earliest restart, READY or answer deadline due.
    pub fn next_restart(&self) -> Option<Instant> {
        let answers = self
            .handing
            .values()
            .filter_map(|q| q.front().map(|h| h.deadline));
        self.slots
            .values()
            .flat_map(|s| [s.restart_at, s.ready_by])
            .flatten()
            .chain(answers)
            .min()
    }

    /// Connections handed over and not answered yet: in all, for
    /// `service`, and for `service` from `ip` (admission counts them as
    /// running).
    pub fn pending(&self, service: &str, ip: Option<IpAddr>) -> (usize, u32, u32) {
        let mut counts = (0, 0, 0);
        for h in self.handing.values().flatten() {
            counts.0 += 1;
            if &*h.conn.service == service {
                counts.1 += 1;
                if ip == Some(h.conn.remote.ip().to_canonical()) {
                    counts.2 += 1;
                }
            }
        }
        counts
    }

    /// The connection an answer is for: the one with that socket inode, or
    /// the oldest.
    fn answered(&mut self, key: Key, ino: Option<u64>) -> Option<Handing> {
        let queue = self.handing.get_mut(&key)?;
        let at = match ino {
            Some(ino) => queue.iter().position(|h| h.ino == ino)?,
            None => 0,
        };
        let h = queue.remove(at);
        if queue.is_empty() {
            self.handing.remove(&key);
        }
        h
    }
}

impl Server {
    /// After a configuration is applied: every zygote service gets a fresh
    /// zygote (so a reload picks up a new binary, new arguments, new
    /// content), the previous one retired; services no longer zygotes have
    /// theirs retired.
    pub(super) fn refresh_zygotes(&mut self) {
        let wanted: Vec<Rc<str>> = self
            .services
            .iter()
            .filter(|(_, s)| s.prepared.config.spawn == SpawnMode::Zygote)
            .map(|(name, _)| name.clone())
            .collect();
        let names: Vec<Rc<str>> = self.zygotes.slots.keys().cloned().collect();
        for name in names {
            self.retire_zygote(&name);
            if !wanted.contains(&name) {
                self.zygotes.slots.remove(&name);
            }
        }
        if self.stopping.is_some() {
            return;
        }
        for name in wanted {
            self.zygotes.slots.entry(name.clone()).or_default();
            self.start_zygote(&name);
        }
    }

    /// At a stop: every zygote takes no more connections and exits once
    /// its children have.
    pub(super) fn retire_all_zygotes(&mut self) {
        let names: Vec<Rc<str>> = self.zygotes.slots.keys().cloned().collect();
        for name in names {
            self.retire_zygote(&name);
        }
    }

    fn retire_zygote(&mut self, service: &Rc<str>) {
        let Some(slot) = self.zygotes.slots.get_mut(service) else {
            return;
        };
        slot.restart_at = None;
        slot.ready_by = None;
        if let Some(key) = slot.current.take() {
            if let Some(Source::Zygote(_, z)) = self.registry.get_mut(key) {
                info!("zygote retire svc={service} pid={}", z.pid);
                z.retire();
            }
        }
    }

    fn start_zygote(&mut self, service: &Rc<str>) {
        let Some(state) = self.services.get(service) else {
            return;
        };
        let started = match self.launcher.start_zygote(&state.prepared) {
            Ok(s) => s,
            Err(e) => {
                warn!(
                    "zygote svc={service}: unable to start: step={} error=\"{}\" cause=\"{}\"; {} meanwhile",
                    e.step,
                    crate::errno_text(&e.error),
                    launcher::explain(&state.prepared.config, &e),
                    fallback_words(&state.prepared.config)
                );
                self.schedule_restart(service);
                return;
            }
        };
        let pid = started.pid;
        info!("zygote start svc={service} pid={pid}");
        self.childless = false;
        self.zygotes.pids.insert(pid, service.clone());
        if let Some(fd) = started.stderr {
            self.watch_pipe(fd, service.clone(), pid);
        }
        let source = Source::Zygote(service.clone(), Zygote::new(pid, started.control));
        match self.registry.add(source, true) {
            Ok(key) => {
                if let Some(slot) = self.zygotes.slots.get_mut(service) {
                    slot.current = Some(key);
                    slot.ready_by = Some(Instant::now() + READY_TIMEOUT);
                    slot.started = Some(Instant::now());
                }
            }
            Err((_, e)) => {
                warn!("zygote svc={service} pid={pid}: unable to watch its control socket: {e}");
                spawn::signal_pid(pid, libc::SIGKILL);
                self.schedule_restart(service);
            }
        }
    }

    fn schedule_restart(&mut self, service: &Rc<str>) {
        if self.stopping.is_some() {
            return;
        }
        let Some(slot) = self.zygotes.slots.get_mut(service) else {
            return;
        };
        // A zygote that ran a while died of something new: start over.
        if slot.started.is_some_and(|t| t.elapsed() > RESTART_MAX) {
            slot.backoff = None;
        }
        let wait = slot.backoff.unwrap_or(RESTART_MIN);
        slot.backoff = Some((wait * 2).min(RESTART_MAX));
        slot.restart_at = Some(Instant::now() + wait);
        info!(
            "zygote svc={service}: starting again in {:.0}s",
            wait.as_secs_f64()
        );
    }

    /// Starts the zygotes whose restart is due, and kills those that left
    /// a connection unanswered past `HAND_TIMEOUT`.
    pub(super) fn zygote_timers(&mut self, now: Instant) {
        let silent: Vec<Key> = self
            .zygotes
            .handing
            .iter()
            .filter(|(_, q)| q.front().is_some_and(|h| h.deadline <= now))
            .map(|(k, _)| *k)
            .collect();
        for key in silent {
            let Some(Source::Zygote(service, z)) = self.registry.get(key) else {
                self.abandon_handing(key);
                continue;
            };
            let (service, pid) = (service.clone(), z.pid);
            warn!("zygote svc={service} pid={pid}: hand-over failed: the zygote did not answer in time");
            self.kill_zygote(&service, key, pid);
        }
        let due: Vec<Rc<str>> = self
            .zygotes
            .slots
            .iter()
            .filter(|(_, s)| s.restart_at.is_some_and(|t| t <= now))
            .map(|(n, _)| n.clone())
            .collect();
        for name in due {
            if let Some(slot) = self.zygotes.slots.get_mut(&name) {
                slot.restart_at = None;
            }
            self.start_zygote(&name);
        }
        let late: Vec<(Rc<str>, Key)> = self
            .zygotes
            .slots
            .iter_mut()
            .filter(|(_, s)| s.ready_by.is_some_and(|t| t <= now))
            .filter_map(|(n, s)| {
                s.ready_by = None;
                s.current.map(|k| (n.clone(), k))
            })
            .collect();
        for (name, key) in late {
            let Some(Source::Zygote(_, z)) = self.registry.get(key) else {
                continue;
            };
            warn!(
                "zygote svc={name} pid={}: no READY within {}s; does the engine support spawn = \"zygote\" (docs/engine-protocol.md)? {} meanwhile",
                z.pid,
                READY_TIMEOUT.as_secs(),
                self.fallback_of(&name)
            );
            // Killed without being retired: its death schedules a restart.
            spawn::signal_group(z.pid, libc::SIGKILL);
            spawn::signal_pid(z.pid, libc::SIGKILL);
        }
    }

    /// Hands an admitted connection to the service's ready zygote; gives
    /// it back when there is none (or the hand-over failed), to be served
    /// without (a `Result` would carry it as a large error).
    pub(super) fn hand_to_zygote(&mut self, a: Admitted) -> Option<Admitted> {
        let Some(key) = self.zygotes.slots.get(&a.service).and_then(|s| s.current) else {
            return Some(a);
        };
        let Some(state) = self.services.get(&a.service) else {
            return Some(a);
        };
        let Some(Source::Zygote(_, z)) = self.registry.get_mut(key) else {
            return Some(a);
        };
        if !z.ready {
            return Some(a);
        }
        match launcher::hand_to_zygote(z, &state.prepared, &a.conn()) {
            Ok(stderr) => {
                let ino = nix::sys::stat::fstat(a.stream.as_raw_fd()).map_or(0, |st| st.st_ino);
                let h = Handing {
                    conn: a,
                    ino,
                    stderr,
                    deadline: Instant::now() + HAND_TIMEOUT,
                };
                self.zygotes.handing.entry(key).or_default().push_back(h);
                None
            }
            Err(e) => {
                let service = a.service.clone();
                self.zygote_broken(&service, key, &e);
                Some(a)
            }
        }
    }

    /// A connection no zygote serves: refused when the service says so,
    /// else exec'd.
    pub(super) fn without_zygote(&mut self, a: Admitted) {
        let refuse = self.services.get(&a.service).is_some_and(|s| {
            s.prepared.config.spawn == SpawnMode::Zygote && s.prepared.config.zygote_refuse
        });
        if refuse {
            self.refused(
                &a.service,
                Some(a.remote),
                crate::admission::Refusal::NoZygote,
            );
        } else {
            self.launch_exec(a);
        }
    }

    /// Every connection still waiting for this zygote's answer is served
    /// without it (the zygote died, closed its socket, or was killed).
    fn abandon_handing(&mut self, key: Key) {
        for h in self.zygotes.handing.remove(&key).unwrap_or_default() {
            self.without_zygote(h.conn);
        }
    }

    /// A hand-over failed: a zygote that said why (FAIL: its fork failed)
    /// keeps its place; one that broke the contract or went silent is
    /// killed and replaced.
    fn zygote_broken(&mut self, service: &Rc<str>, key: Key, e: &SpawnError) {
        let Some(Source::Zygote(_, z)) = self.registry.get_mut(key) else {
            return;
        };
        let pid = z.pid;
        let said_why = e.error.kind() == std::io::ErrorKind::Other;
        let error = crate::errno_text(&e.error);
        warn!("zygote svc={service} pid={pid}: hand-over failed: {error}");
        if said_why {
            return;
        }
        self.kill_zygote(service, key, pid);
    }

    /// Kills a zygote that broke the contract or went silent, with the
    /// spares in its group; its pending connections are served without it.
    fn kill_zygote(&mut self, service: &Rc<str>, key: Key, pid: libc::pid_t) {
        // Not retired: its death is a failure, so it is started again.
        if let Some(slot) = self.zygotes.slots.get_mut(service) {
            if slot.current == Some(key) {
                slot.current = None;
            }
        }
        spawn::signal_group(pid, libc::SIGKILL);
        spawn::signal_pid(pid, libc::SIGKILL);
        self.abandon_handing(key);
        // Its death (reaped by SIGCHLD) schedules the restart.
    }

    /// The control socket of a zygote is readable.
    pub(super) fn zygote_readable(&mut self, key: Key) {
        let Some(Source::Zygote(service, z)) = self.registry.get_mut(key) else {
            return;
        };
        let (service, pid) = (service.clone(), z.pid);
        let (messages, open) = z.read();
        if !open {
            // No more connections for it; its exit, reaped by SIGCHLD,
            // does the rest (a socket at its end would wake the loop
            // forever, so it is no longer watched).
            z.ready = false;
            debug!("zygote svc={service} pid={pid}: control socket closed");
            self.registry.arm(key, false);
        }
        self.zygote_messages(key, &service, pid, messages);
        if !open {
            self.abandon_handing(key);
        }
    }

    pub(super) fn zygote_messages(
        &mut self,
        key: Key,
        service: &Rc<str>,
        pid: libc::pid_t,
        messages: Vec<Message>,
    ) {
        for m in messages {
            match m {
                Message::Ready => {
                    if let Some(Source::Zygote(_, z)) = self.registry.get_mut(key) {
                        z.ready = true;
                    }
                    if let Some(slot) = self.zygotes.slots.get_mut(service) {
                        slot.ready_by = None;
                    }
                    info!("zygote ready svc={service} pid={pid}");
                }
                Message::Exit(child, status) => self.reaped(child, status),
                Message::Pid(child, ino) => match self.zygotes.answered(key, ino) {
                    Some(h) => {
                        let launched = Launched {
                            pid: child,
                            pidfd: None,
                            stderr: h.stderr,
                        };
                        self.launch_result(h.conn, Ok(launched));
                    }
                    // A late answer to a hand-over that timed out: that
                    // child is an orphan jawasd does not count.
                    None => debug!("zygote svc={service} pid={pid}: late PID {child}"),
                },
                // The zygote keeps its place (its fork failed); this
                // connection is served without it.
                Message::Fail(ino, why) => match self.zygotes.answered(key, ino) {
                    Some(h) => {
                        warn!("zygote svc={service} pid={pid}: hand-over failed: {why}");
                        self.without_zygote(h.conn);
                    }
                    None => debug!("zygote svc={service} pid={pid}: late FAIL {why}"),
                },
            }
        }
    }

    fn drop_zygote_source(&mut self, key: Key) {
        if let Some(Source::Zygote(service, _)) = self.registry.remove(key) {
            if let Some(slot) = self.zygotes.slots.get_mut(&service) {
                if slot.current == Some(key) {
                    slot.current = None;
                }
            }
        }
    }

    /// A reaped pid that is no session's: a zygote ended? Its last
    /// messages are read, its children (now jawasd's, as subreaper) keep
    /// their sessions, and a current zygote is started again.
    pub(super) fn zygote_exited(&mut self, pid: libc::pid_t, status: ExitStatus) -> bool {
        let Some(service) = self.zygotes.pids.remove(&pid) else {
            return false;
        };
        let key = self
            .registry
            .keys_where(|s| matches!(s, Source::Zygote(_, z) if z.pid == pid))
            .first()
            .copied();
        let mut retired = true;
        if let Some(key) = key {
            if let Some(Source::Zygote(_, z)) = self.registry.get_mut(key) {
                retired = z.retired;
                let (messages, _) = z.read();
                self.zygote_messages(key, &service, pid, messages);
            }
            self.abandon_handing(key);
            self.drop_zygote_source(key);
        }
        let quiet = retired || self.stopping.is_some();
        if quiet {
            info!("zygote done svc={service} pid={pid} {}", status.describe());
        } else {
            warn!(
                "zygote died svc={service} pid={pid} {}; {} meanwhile",
                status.describe(),
                self.fallback_of(&service)
            );
            self.schedule_restart(&service);
        }
        true
    }
}

/// What a service does with connections while it has no ready zygote.
fn fallback_words(svc: &crate::config::Service) -> &'static str {
    if svc.zygote_refuse {
        "refusing connections"
    } else {
        "serving by exec"
    }
}

impl Server {
    fn fallback_of(&self, service: &Rc<str>) -> &'static str {
        self.services
            .get(service)
            .map_or("serving by exec", |s| fallback_words(&s.prepared.config))
    }
}
