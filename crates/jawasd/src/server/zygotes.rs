//! The loop's side of zygote services: starting each service's zygote,
//! handing it admitted connections, reading its messages, restarting it
//! with backoff when it dies, and retiring it on reload.
//!
//! Owns the per-service zygote slots and the pid of every zygote still
//! running. Invariants: a service has at most one current zygote (older
//! ones are retired and only finish their children); a connection goes to
//! a zygote only when it is ready, else it is served by exec, so a zygote
//! that is starting, restarting or broken never refuses a client; every
//! `EXIT` a zygote reports ends its session exactly like a reaped engine.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use log::{debug, info, warn};

use super::{Server, Source};
use crate::config::SpawnMode;
use crate::launcher::{self, Conn, Launched};
use crate::reaper::ExitStatus;
use crate::registry::Key;
use crate::spawn::{self, SpawnError};
use crate::zygote::{Message, Zygote};

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

/// Every zygote service's slot, and the running zygotes by pid.
#[derive(Default)]
pub struct Zygotes {
    slots: HashMap<Rc<str>, Slot>,
    pids: HashMap<libc::pid_t, Rc<str>>,
}

impl Zygotes {
    /// The earliest restart or READY deadline due.
    pub fn next_restart(&self) -> Option<Instant> {
        self.slots
            .values()
            .flat_map(|s| [s.restart_at, s.ready_by])
            .flatten()
            .min()
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

    /// Starts the zygotes whose restart is due.
    pub(super) fn zygote_timers(&mut self, now: Instant) {
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

    /// Hands `conn` to the service's zygote when one is ready: `None`
    /// sends the connection to exec instead (no zygote service, or its
    /// zygote not ready, or it failed this hand-over). The messages that
    /// came while it forked (exits of earlier children) are taken in
    /// first.
    pub(super) fn launch_by_zygote(
        &mut self,
        service: &Rc<str>,
        conn: &Conn<'_>,
    ) -> Option<Launched> {
        let key = self.zygotes.slots.get(service)?.current?;
        let state = self.services.get(service)?;
        let Some(Source::Zygote(_, z)) = self.registry.get_mut(key) else {
            return None;
        };
        if !z.ready {
            return None;
        }
        let zpid = z.pid;
        match launcher::hand_to_zygote(z, &state.prepared, conn) {
            Ok((launched, others)) => {
                self.zygote_messages(key, service, zpid, others);
                Some(launched)
            }
            Err(e) => {
                self.zygote_broken(service, key, &e);
                None
            }
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
        // Not retired: its death is a failure, so it is started again.
        if let Some(slot) = self.zygotes.slots.get_mut(service) {
            slot.current = None;
        }
        spawn::signal_group(pid, libc::SIGKILL);
        spawn::signal_pid(pid, libc::SIGKILL);
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
                    self.reaped(child, status);
                    self.capture_ended(key, service, child);
                }
                // A late answer to a hand-over that timed out: that child
                // is an orphan jawasd does not count.
                Message::Pid(child) => debug!("zygote svc={service} pid={pid}: late PID {child}"),
                Message::Fail(why) => debug!("zygote svc={service} pid={pid}: late FAIL {why}"),
            }
        }
    }

    /// A zygote's child ended: its last partial stderr line, if any.
    fn capture_ended(&mut self, key: Key, service: &Rc<str>, child: libc::pid_t) {
        let Some(Source::Zygote(_, z)) = self.registry.get(key) else {
            return;
        };
        let (Some(capture), zygote) = (z.capture, z.pid) else {
            return;
        };
        // The key is checked against its owner: a capture that ended may
        // have left its key to another source since.
        if let Some(Source::Shared(_, shared)) = self.registry.get_mut(capture) {
            if shared.owner() != zygote {
                return;
            }
            let lines = shared.ended(child);
            if !lines.is_empty() {
                self.log_engine_lines(service, lines);
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
