//! The loop's side of zygote services: starting each service's zygote,
//! handing it admitted connections, reading its messages, restarting it
//! with backoff when it dies, and retiring it on reload.
//!
//! Owns the per-service zygote slots, the pid of every zygote still
//! running, and the connections handed to each zygote whose answer has
//! not come yet. Invariants: a service has at most one current zygote
//! (older ones are retired and only finish their children); a connection
//! goes to a zygote only when it is ready, else it is served by exec, so a
//! zygote that is starting, restarting or broken never refuses a client;
//! jawasd closes its copy of a connection as soon as it is sent (the
//! engine's close must reach the client at once), so a connection handed
//! over is the zygote's: one it answers with `FAIL`, or leaves unanswered
//! when it dies or is killed, is lost and logged as a failed start;
//! connections waiting for their answer count as running engines for the
//! limits; every `PID` starts a session and every `EXIT` ends one exactly
//! like a started and a reaped engine.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use log::{debug, info, warn};

use super::{Server, Source};
use crate::config::SpawnMode;
use crate::launcher::{self, Conn, Launched};
use crate::reaper::ExitStatus;
use crate::registry::Key;
use crate::sessions::SessionId;
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
    /// When a full control socket was last logged.
    full_logged: Option<Instant>,
}

/// Every zygote service's slot, the running zygotes by pid, and the
/// connections handed to each zygote (by its key) and not answered yet,
/// oldest first.
#[derive(Default)]
pub struct Zygotes {
    slots: HashMap<Rc<str>, Slot>,
    pids: HashMap<libc::pid_t, Rc<str>>,
    handing: HashMap<Key, Handed>,
}

/// The connections handed to one zygote and not answered yet, oldest
/// first, and when it last made progress: it is given `HAND_TIMEOUT` from
/// its last answer (or from the first connection it was handed since it
/// had none waiting), so a deep queue drained at the zygote's pace is not
/// mistaken for a zygote that stopped.
struct Handed {
    queue: VecDeque<Handing>,
    progress: Instant,
}

/// A connection handed to a zygote, waiting for its answer. jawasd no
/// longer holds its socket.
pub struct Handing {
    pub service: Rc<str>,
    pub remote: SocketAddr,
    pub local: Option<SocketAddr>,
    /// The socket's inode, by which an answer names it.
    ino: u64,
    /// A routed engine's way back, watched once the engine is known.
    pub handback: Option<Handback>,
}

/// jawasd's end of a routed engine's hand-back socket, kept until the
/// zygote names the engine.
pub struct Handback {
    pub fd: OwnedFd,
    pub router: Rc<str>,
    /// The connection's peer as the socket says (not the PROXY header's).
    pub peer: Option<SocketAddr>,
}

impl Handing {
    pub fn new(
        service: Rc<str>,
        socket: BorrowedFd<'_>,
        (remote, local): (SocketAddr, Option<SocketAddr>),
        handback: Option<Handback>,
    ) -> Handing {
        let ino = nix::sys::stat::fstat(socket.as_raw_fd()).map_or(0, |st| st.st_ino);
        Handing {
            service,
            remote,
            local,
            ino,
            handback,
        }
    }
}

impl Zygotes {
    /// Whether `pid` is a zygote jawasd started (current or retired) that
    /// has not been reaped.
    pub fn is_zygote(&self, pid: libc::pid_t) -> bool {
        self.pids.contains_key(&pid)
    }

    /// The earliest restart, READY or answer deadline due.
    pub fn next_restart(&self) -> Option<Instant> {
        let answers = self.handing.values().map(|h| h.progress + HAND_TIMEOUT);
        self.slots
            .values()
            .flat_map(|s| [s.restart_at, s.ready_by])
            .flatten()
            .chain(answers)
            .min()
    }

    /// Connections handed over and not answered yet: in all, for
    /// `service`, and for `service` from `ip` (admission counts them as
    /// running: their engines are starting).
    pub fn handing(&self, service: &str, ip: Option<IpAddr>) -> (usize, u32, u32) {
        let mut counts = (0, 0, 0);
        for h in self.handing.values().flat_map(|h| &h.queue) {
            counts.0 += 1;
            if &*h.service == service {
                counts.1 += 1;
                if ip == Some(h.remote.ip().to_canonical()) {
                    counts.2 += 1;
                }
            }
        }
        counts
    }

    /// A connection handed to the zygote under `key`.
    pub fn handed(&mut self, key: Key, h: Handing) {
        let handed = self.handing.entry(key).or_insert_with(|| Handed {
            queue: VecDeque::new(),
            progress: Instant::now(),
        });
        handed.queue.push_back(h);
    }

    /// The connection an answer is for: the one with that socket inode,
    /// or the oldest when the answer names none.
    fn answered(&mut self, key: Key, ino: Option<u64>) -> Option<Handing> {
        let handed = self.handing.get_mut(&key)?;
        let at = match ino {
            Some(ino) => handed.queue.iter().position(|h| h.ino == ino)?,
            None => 0,
        };
        let h = handed.queue.remove(at);
        handed.progress = Instant::now();
        if handed.queue.is_empty() {
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
        let mut zygote = Zygote::new(pid, started.control);
        if let Some(fd) = started.stderr {
            let shared = crate::capture::Shared::new(fd, pid);
            match self
                .registry
                .add(Source::Shared(service.clone(), shared), true)
            {
                Ok(key) => zygote.capture = Some(key),
                Err((_, e)) => warn!("stderr capture svc={service} pid={pid} unavailable: {e}"),
            }
        }
        let source = Source::Zygote(service.clone(), zygote);
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

    /// Starts the zygotes whose restart is due, and kills those that
    /// answered nothing for `HAND_TIMEOUT` while connections waited.
    pub(super) fn zygote_timers(&mut self, now: Instant) {
        let silent: Vec<Key> = self
            .zygotes
            .handing
            .iter()
            .filter(|(_, h)| h.progress + HAND_TIMEOUT <= now)
            .map(|(k, _)| *k)
            .collect();
        for key in silent {
            let Some(Source::Zygote(service, z)) = self.registry.get(key) else {
                self.abandon_handing(key, "its zygote is gone");
                continue;
            };
            let (service, pid) = (service.clone(), z.pid);
            warn!("zygote svc={service} pid={pid}: hand-over failed: the zygote did not answer in time");
            self.kill_zygote(&service, key, pid);
            self.abandon_handing(key, "the zygote did not answer in time");
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
            let pid = z.pid;
            self.kill_zygote(&name, key, pid);
        }
    }

    /// Hands `conn` to the service's zygote when one is ready, without
    /// waiting for its answer: the key of the zygote it went to, for the
    /// caller to record it as handed (`Zygotes::handed`). `None` sends the
    /// connection to exec instead (no zygote service, or its zygote not
    /// ready, or the hand-over failed).
    pub(super) fn launch_by_zygote(&mut self, service: &Rc<str>, conn: &Conn<'_>) -> Option<Key> {
        let key = self.zygotes.slots.get(service)?.current?;
        let state = self.services.get(service)?;
        let Some(Source::Zygote(_, z)) = self.registry.get_mut(key) else {
            return None;
        };
        if !z.ready {
            return None;
        }
        match launcher::hand_to_zygote(z, &state.prepared, conn) {
            Ok(()) => Some(key),
            Err(e) => {
                self.zygote_broken(service, key, &e);
                None
            }
        }
    }

    /// A hand-over could not be sent: a zygote that is only behind (its
    /// control socket full) keeps its place and this connection is served
    /// without it; one whose socket broke is killed and replaced.
    fn zygote_broken(&mut self, service: &Rc<str>, key: Key, e: &SpawnError) {
        let Some(Source::Zygote(_, z)) = self.registry.get_mut(key) else {
            return;
        };
        let pid = z.pid;
        let error = crate::errno_text(&e.error);
        let behind = e.error.kind() == std::io::ErrorKind::WouldBlock
            || matches!(
                e.error.raw_os_error(),
                Some(libc::ETOOMANYREFS | libc::ENOBUFS | libc::ENOMEM)
            );
        if behind {
            let Some(slot) = self.zygotes.slots.get_mut(service) else {
                return;
            };
            let now = Instant::now();
            if slot
                .full_logged
                .is_none_or(|t| now - t >= Duration::from_secs(10))
            {
                slot.full_logged = Some(now);
                warn!(
                    "zygote svc={service} pid={pid}: hand-over not sent ({error}): the zygote is behind; {} meanwhile",
                    self.fallback_of(service)
                );
            }
            return;
        }
        warn!("zygote svc={service} pid={pid}: hand-over failed: {error}");
        self.kill_zygote(service, key, pid);
    }

    /// Kills a zygote that broke the contract or went silent, with the
    /// spares in its group.
    fn kill_zygote(&mut self, service: &Rc<str>, key: Key, pid: libc::pid_t) {
        // Not retired: its death is a failure, so it is started again.
        if let Some(slot) = self.zygotes.slots.get_mut(service) {
            if slot.current == Some(key) {
                slot.current = None;
            }
        }
        spawn::signal_group(pid, libc::SIGKILL);
        spawn::signal_pid(pid, libc::SIGKILL);
        // Its death (reaped by SIGCHLD) schedules the restart.
    }

    /// The connections still waiting for this zygote's answer are lost
    /// (the zygote died, closed its socket, or was killed): each is a
    /// failed start.
    fn abandon_handing(&mut self, key: Key, why: &str) {
        let Some(lost) = self.zygotes.handing.remove(&key) else {
            return;
        };
        for h in lost.queue {
            self.lost(&h, why);
        }
    }

    /// A connection handed to a zygote that started no engine for it: a
    /// failed start, and room for one waiting.
    fn lost(&mut self, h: &Handing, why: &str) {
        self.waits.freed();
        let e = SpawnError {
            step: "zygote",
            error: std::io::Error::other(why),
        };
        self.spawn_failed(&h.service, Some(h.remote), &e);
    }

    /// A zygote answered a connection: the session starts, or the failure
    /// is logged.
    fn zygote_answered(
        &mut self,
        (key, zygote): (Key, libc::pid_t),
        child: Result<libc::pid_t, String>,
        ino: Option<u64>,
    ) {
        let Some(h) = self.zygotes.answered(key, ino) else {
            // An answer to a connection already given up (its zygote was
            // killed for silence): that child is an orphan jawasd reaps
            // without counting it.
            debug!("zygote: late answer {child:?} ino={ino:?}");
            return;
        };
        match child {
            Ok(pid) => {
                let launched = Launched {
                    pid,
                    pidfd: None,
                    stderr: None,
                    zygote: Some(zygote),
                };
                self.started(&h.service, launched, Some(h.remote), h.local, None);
                if let Some(b) = h.handback {
                    self.watch_handback(b.fd, b.router, (h.remote, h.local), (b.peer, pid));
                }
            }
            Err(why) => self.lost(&h, &why),
        }
    }

    /// A zygote's `PID n`, checked for what cannot be a new child of its:
    /// jawasd, a zygote, jawasd's successor, or a pid a session already
    /// has (which would end that session at the new one's `EXIT`). Whether `n` is
    /// really its child is checked when jawasd signals it (`may_signal`).
    fn new_child(&self, zygote: libc::pid_t, child: libc::pid_t) -> Result<libc::pid_t, String> {
        let taken = if child == zygote {
            "the zygote's own"
        } else if child == std::process::id() as libc::pid_t {
            "jawasd's"
        } else if self.zygotes.is_zygote(child) {
            "another zygote's"
        } else if self.upgrade.successor == Some(child) {
            "jawasd's successor's"
        } else if self.sessions.by_pid(child).is_some() {
            "a running engine's"
        } else {
            return Ok(child);
        };
        warn!("zygote pid={zygote}: answered PID {child}, {taken} pid; taken as a failed start");
        Err(format!("answered {taken} pid {child}"))
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
            self.abandon_handing(key, "the zygote closed its control socket");
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
                Message::Exit(child, status) => {
                    // Not `reaped`: a zygote's child is no zygote, and its
                    // `PID` came before this on the same socket. Only a
                    // session this zygote started can be ended by its word.
                    let own = self.sessions.by_pid(child).filter(|id| {
                        self.sessions
                            .get(*id)
                            .is_some_and(|s| s.zygote == Some(pid))
                    });
                    match own {
                        Some(id) => self.session_ended(id, status),
                        None => debug!("orphan pid={child} {}", status.describe()),
                    }
                    self.capture_ended(key, service, child);
                }
                Message::Pid(child, ino) => {
                    let claim = self.new_child(pid, child);
                    self.zygote_answered((key, pid), claim, ino);
                }
                Message::Fail(ino, why) => self.zygote_answered((key, pid), Err(why), ino),
            }
        }
    }

    /// A reaped pid no session knows may be a zygote's child whose `PID`
    /// still waits unread (its zygote died, so jawasd reaped it first):
    /// the zygotes' messages are read, and true when that started its
    /// session, now ended.
    pub(super) fn unanswered_child_exited(&mut self, pid: libc::pid_t, status: ExitStatus) -> bool {
        let waiting: Vec<Key> = self.zygotes.handing.keys().copied().collect();
        for key in waiting {
            self.zygote_readable(key);
        }
        match self.sessions.by_pid(pid) {
            Some(id) => {
                self.session_ended(id, status);
                true
            }
            None => false,
        }
    }

    /// A zygote's child ended: its last partial stderr line, if any.
    fn capture_ended(&mut self, key: Key, service: &Rc<str>, child: libc::pid_t) {
        let Some(Source::Zygote(_, z)) = self.registry.get(key) else {
            return;
        };
        let Some(capture) = z.capture else {
            return;
        };
        // Registry keys are never reused: this is the zygote's capture or
        // nothing.
        if let Some(Source::Shared(_, shared)) = self.registry.get_mut(capture) {
            let lines = shared.ended(child);
            if !lines.is_empty() {
                self.log_engine_lines(service, lines);
            }
        }
    }

    /// After a zygote is reaped (its last messages read), its children are
    /// jawasd's (as subreaper) and will be reaped here. A session it
    /// started whose pid has another parent, or is gone unreaped, came from
    /// a `PID` answer naming a process that was never its child: nothing
    /// would ever end it, so it ends now (`exit=?`) rather than hold its
    /// counts and a stop forever.
    fn forget_strangers(&mut self, service: &Rc<str>, zygote: libc::pid_t) {
        let strangers: Vec<(SessionId, libc::pid_t)> = self
            .sessions
            .iter_ids()
            .filter(|(_, s)| s.zygote == Some(zygote))
            .filter(|(_, s)| !matches!(self.parent(s.pid), super::Parent::Ours))
            .map(|(id, s)| (id, s.pid))
            .collect();
        for (id, pid) in strangers {
            warn!("zygote svc={service} pid={zygote} is gone, and pid={pid} it answered is no child of its: that session ends unseen");
            self.session_ended(id, ExitStatus::Unknown);
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
            self.abandon_handing(key, "the zygote died");
            self.drop_zygote_source(key);
        }
        self.forget_strangers(&service, pid);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    fn handing(service: &str, ip: &str) -> (Handing, UnixStream) {
        let (socket, _) = UnixStream::pair().unwrap();
        let remote: SocketAddr = format!("{ip}:4000").parse().unwrap();
        let h = Handing::new(service.into(), socket.as_fd(), (remote, None), None);
        (h, socket)
    }

    #[test]
    fn answers_find_their_connection_by_inode_or_take_the_oldest() {
        let mut z = Zygotes::default();
        let mut inodes = Vec::new();
        let mut keep = Vec::new();
        for ip in ["10.0.0.1", "10.0.0.2", "10.0.0.1"] {
            let (h, socket) = handing("web", ip);
            inodes.push(h.ino);
            z.handed(7, h);
            keep.push(socket);
        }
        let (h, socket) = handing("other", "10.0.0.1");
        z.handed(8, h);
        keep.push(socket);
        assert!(inodes.iter().all(|i| *i > 0));
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(z.handing("web", Some(ip)), (4, 3, 2));
        // A spare answering out of order names its connection.
        let second = z.answered(7, Some(inodes[1])).expect("found by inode");
        assert_eq!(second.remote.ip().to_string(), "10.0.0.2");
        // An answer naming no connection takes the oldest.
        assert_eq!(z.answered(7, None).unwrap().ino, inodes[0]);
        // An inode nobody waits for, or a zygote with nothing handed,
        // answers nothing (a late answer).
        assert!(z.answered(7, Some(u64::MAX)).is_none());
        assert!(z.answered(9, None).is_none());
        assert_eq!(z.handing("web", Some(ip)), (2, 1, 1));
        assert_eq!(z.answered(7, Some(inodes[2])).unwrap().ino, inodes[2]);
        assert!(!z.handing.contains_key(&7), "an empty queue is dropped");
        // A zygote's deadline (its last answer, plus HAND_TIMEOUT) wakes
        // the loop, and each answer moves it: a deep queue drained at the
        // zygote's pace is progress, not silence.
        let before = z.next_restart().expect("a deadline");
        assert!(before <= Instant::now() + HAND_TIMEOUT);
        std::thread::sleep(Duration::from_millis(20));
        assert!(z.answered(8, None).is_some());
        assert!(z.next_restart().is_none(), "nothing waits any more");
        let (h, _socket) = handing("other", "10.0.0.1");
        z.handed(8, h);
        let (h, _socket2) = handing("other", "10.0.0.1");
        z.handed(8, h);
        let first = z.next_restart().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert!(z.answered(8, None).is_some());
        assert!(z.next_restart().unwrap() > first, "an answer is progress");
    }
}
