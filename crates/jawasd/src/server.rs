//! The event loop: one thread, one epoll, every source in the registry.
//!
//! Ties the parts together: the registry of event sources (`registry`), the
//! sessions table (`sessions`), admission (`admission`), the launcher
//! (`launcher`), listening sockets (`listeners`) and event lines
//! (`events`). Owns the loop itself, signals, reload and shutdown, and the
//! per-service health that pauses a service whose engine cannot start.
//! It does not parse configuration (see `config`) or touch a child between
//! clone and exec (see `spawn`).
//!
//! Invariants:
//! - **The loop never blocks on anything but `epoll_wait`.** Before a spawn
//!   only counters and address rules are consulted; every lookup was done
//!   when the config was loaded.
//! - **An accepted socket is closed by jawasd right after the spawn**, on
//!   every path: the engine owns the connection, and jawasd's descriptor
//!   count stays flat however many clients come and go.
//! - **A configuration is applied whole or not at all**: sockets are bound
//!   and registered before anything running changes.
//! - Every child is reaped in this loop: engines through their pidfds,
//!   orphans and kernels without pidfds through SIGCHLD.

#![forbid(unsafe_code)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use log::{debug, error, info, warn};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use polling::Events;

use crate::admission::{self, Admission, Counts, Policy, Refusal};
use crate::capture;
use crate::clock::SystemClock;
use crate::config::{Config, Env, Protocol, SpawnMode, StderrMode};
use crate::events::{self, Fields, Format, Sink};
use crate::launcher::{self, Conn, Exec, Launched, Launcher, Prepared};
use crate::listeners::{self, Binding, Listener, Socket, Wanted};
use crate::reaper::{self, ExitStatus, Reaped};
use crate::registry::{Key, Registry};
use crate::sessions::{NewSession, SessionId, Sessions};
use crate::spawn::{self, SpawnError};
use crate::stats::Stats;
use crate::zygote::Zygote;

mod control;
mod pending;
mod routing;
pub mod upgrade;
mod waiting;
mod zygotes;

/// Log target of the ready line, which is logged whatever the level.
pub const READY_TARGET: &str = "jawasd::ready";
/// Connections accepted from one listener before the loop looks at its
/// other sources again, so a flood on one port cannot starve the rest.
const ACCEPT_BATCH: usize = 32;
/// First and longest pause of accepting after a resource error or a failed
/// engine start.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Engines ending with 100, 111 or 127 this soon count as failing at once;
/// this many within `FAILING_WINDOW` earn a warning, at most once a minute.
const QUICK_EXIT: Duration = Duration::from_secs(2);
const FAILING_COUNT: usize = 12;
const FAILING_WINDOW: Duration = Duration::from_secs(10);
const WARN_EVERY: Duration = Duration::from_secs(60);
/// Most exited children reaped by one catch-up before a refusal.
const CATCH_UP_MAX: usize = 256;
/// How soon children are swept for after an orphan or an engine without a
/// pidfd ended (its SIGCHLD may have merged with others'), and how often
/// while stopping.
const SWEEP_SOON: Duration = Duration::from_millis(200);
/// How often children are swept for while engines run, as a safety net.
/// A sweep walks every child (waitpid(-1)), so it is rare.
const SWEEP_EVERY: Duration = Duration::from_secs(5);
/// How often log lines waiting for a stalled reader are retried.
const LOG_RETRY: Duration = Duration::from_millis(100);

/// Everything the loop waits on.
enum Source {
    Signals(SignalFd),
    Listener(Listener),
    /// The read end of an engine's captured stderr (its service's name).
    Pipe(Rc<str>, capture::Pipe),
    /// jawasd's end of a zygote's shared stderr capture (its service's name).
    Shared(Rc<str>, capture::Shared),
    /// An engine's pidfd: readable when it exits.
    Engine(SessionId, OwnedFd),
    /// A zygote's control socket (its service's name).
    Zygote(Rc<str>, Zygote),
    /// An accepted connection waiting for its PROXY header.
    Pending(pending::Pending),
    /// A connection to a router waiting for its first request head.
    Routing(routing::Routing),
    /// jawasd's end of a routed engine's hand-back socket.
    Handback(routing::Handback),
    /// The control socket, and one client of it.
    Control(crate::control::ControlSocket),
    ControlClient(crate::control::Client),
}

impl AsFd for Source {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Source::Signals(s) => s.as_fd(),
            Source::Listener(l) => l.socket.as_fd(),
            Source::Pipe(_, p) => p.as_fd(),
            Source::Shared(_, s) => s.as_fd(),
            Source::Engine(_, fd) => fd.as_fd(),
            Source::Zygote(_, z) => z.fd(),
            Source::Pending(p) => p.stream.as_fd(),
            Source::Routing(r) => r.stream.as_fd(),
            Source::Handback(h) => h.fd.as_fd(),
            Source::Control(c) => c.listener.as_fd(),
            Source::ControlClient(c) => c.stream.as_fd(),
        }
    }
}

/// Whether a service's engine starts and keeps running.
#[derive(Default)]
struct Health {
    /// The pause after the next failed start.
    backoff: Option<Duration>,
    /// When a spawn-failed line was last written, and failures since.
    logged_at: Option<Instant>,
    unlogged: u64,
    /// Recent engines that ended at once with 100, 111 or 127.
    quick_exits: VecDeque<Instant>,
    warned_at: Option<Instant>,
    /// The last line an engine of this service wrote to captured stderr.
    last_stderr: Option<String>,
}

/// A service as the loop sees it.
struct ServiceState {
    prepared: Prepared,
    policy: Policy,
    format: Format,
    stats: Stats,
    sink: Sink,
    health: Health,
}

/// Loads the configuration again (TOML or xinetd) for a reload; the
/// error is the text to log.
pub type Loader = Box<dyn Fn(&Env<'_>) -> Result<Config, String>>;

pub struct Server {
    config: Config,
    registry: Registry<Source>,
    /// The signalfd's key in the registry.
    signals: Key,
    services: HashMap<Rc<str>, ServiceState>,
    sessions: Sessions,
    admission: Admission,
    clock: SystemClock,
    launcher: Exec,
    /// The pause after the next resource error on accept.
    accept_backoff: Duration,
    /// Set once SIGTERM/SIGINT arrived: the moment engines get SIGKILL.
    stopping: Option<Instant>,
    killed: bool,
    /// When to look for orphans (and, while stopping, signal them).
    sweep_at: Option<Instant>,
    /// Orphans already told to stop.
    signalled: HashSet<libc::pid_t>,
    /// No child of any kind is left (seen while stopping).
    childless: bool,
    /// Where engine names were looked up, kept for reloads.
    exe_dir: Option<std::path::PathBuf>,
    /// How to load the config again on SIGHUP.
    loader: Loader,
    /// The zygotes of `spawn = "zygote"` services.
    zygotes: zygotes::Zygotes,
    /// Connections waiting for their PROXY header (`Source::Pending`).
    pending: usize,
    /// Connections handed back by an engine that has not exited yet, by
    /// its session: routed again when it has, so that it no longer counts
    /// against the limits the next engine is checked against.
    returned: HashMap<SessionId, routing::Returned>,
    /// The routing stage's peek buffer, reused.
    peek_buf: Vec<u8>,
    /// systemd's readiness protocol (nothing without NOTIFY_SOCKET).
    notify: crate::notify::Notifier,
    /// When the next WATCHDOG=1 is due, when systemd asked for them.
    watchdog_at: Option<Instant>,
    /// While stopping with `[server] drain`: when engines get SIGTERM.
    draining_until: Option<Instant>,
    /// A zero-downtime upgrade (SIGUSR2) under way or done.
    upgrade: upgrade::Upgrade,
    /// The control socket, its clients and event subscribers.
    control: control::ControlState,
    /// Exits were caught up with since the loop last woke (`catch_up_exits`).
    caught_up: bool,
    /// Connections over a count limit waiting for room (`limit_wait`).
    waits: waiting::Waits,
}

/// Whose child a process is (`Server::parent`).
enum Parent {
    /// jawasd's or a zygote's.
    Ours,
    /// Another process's.
    Other(libc::pid_t),
    /// No such process.
    Gone,
}

/// Signals read through the signalfd.
pub const HANDLED_SIGNALS: [libc::c_int; 7] = [
    libc::SIGQUIT,
    libc::SIGCHLD,
    libc::SIGHUP,
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

/// Start-up failures, mapped to exit codes by `main`.
#[derive(Debug)]
pub enum StartError {
    /// Where the address was written, the service, the address, why.
    Bind(String, Rc<str>, SocketAddr, io::Error),
    System(&'static str, io::Error),
    /// The control socket's path, why it could not be created.
    Control(String, io::Error),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Bind(at, svc, a, e) => {
                write!(
                    f,
                    "{at}: service {svc}: unable to bind {a}: {}",
                    crate::errno_text(e)
                )?;
                if e.raw_os_error() == Some(libc::EACCES) && a.port() < 1024 {
                    write!(
                        f,
                        " (ports below 1024 need root, or CAP_NET_BIND_SERVICE \
                         (setcap cap_net_bind_service=+ep jawasd, or AmbientCapabilities= \
                         in the unit), or a systemd socket unit passing the socket: \
                         docs/systemd.md)"
                    )?;
                }
                Ok(())
            }
            StartError::System(what, e) => write!(f, "unable to {what}: {}", crate::errno_text(e)),
            StartError::Control(path, e) => write!(
                f,
                "server.control: unable to create the control socket {path}: {}",
                crate::errno_text(e)
            ),
        }
    }
}

pub fn is_resource_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

impl Server {
    /// Binds every listener of `config` and prepares the loop; signals must
    /// already be blocked (see `spawn::prepare_signals`).
    pub fn new(
        config: Config,
        exe_dir: Option<std::path::PathBuf>,
        loader: Loader,
        notify: crate::notify::Notifier,
    ) -> Result<Server, StartError> {
        let mut registry =
            Registry::new().map_err(|e| StartError::System("create the epoll instance", e))?;
        let mut mask = SigSet::empty();
        for s in HANDLED_SIGNALS {
            if let Ok(sig) = Signal::try_from(s) {
                mask.add(sig);
            }
        }
        let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(|e| StartError::System("create the signalfd", e.into()))?;
        let signals = registry
            .add(Source::Signals(signals), true)
            .map_err(|(_, e)| StartError::System("watch the signalfd", e))?;
        if let Err(e) = reaper::become_subreaper() {
            warn!(
                "unable to become a child subreaper: {}; processes engines leave behind will not be stopped at shutdown",
                e.desc()
            );
        }
        let mut server = Server {
            config: config.clone(),
            registry,
            signals,
            services: HashMap::new(),
            sessions: Sessions::default(),
            admission: Admission::default(),
            clock: SystemClock::default(),
            launcher: Exec::default(),
            accept_backoff: BACKOFF_MIN,
            stopping: None,
            killed: false,
            sweep_at: None,
            signalled: HashSet::new(),
            childless: false,
            exe_dir,
            loader,
            zygotes: zygotes::Zygotes::default(),
            pending: 0,
            waits: waiting::Waits::default(),
            returned: HashMap::new(),
            peek_buf: Vec::new(),
            watchdog_at: notify.watchdog_interval().map(|d| Instant::now() + d),
            draining_until: None,
            upgrade: upgrade::Upgrade::default(),
            control: control::ControlState::default(),
            caught_up: false,
            notify,
        };
        server.apply(config)?;
        Ok(server)
    }

    fn listener_keys(&self) -> Vec<Key> {
        self.registry
            .keys_where(|s| matches!(s, Source::Listener(_)))
    }

    fn listener(&self, key: Key) -> Option<&Listener> {
        match self.registry.get(key) {
            Some(Source::Listener(l)) => Some(l),
            _ => None,
        }
    }

    /// Makes `config` the running one, in two phases: bind and register
    /// every new socket (undone on any failure, leaving the running
    /// configuration whole), then commit with steps that cannot fail.
    fn apply(&mut self, config: Config) -> Result<(), StartError> {
        let wanted: Vec<Wanted> = config
            .services
            .iter()
            .flat_map(|svc| {
                let name: Rc<str> = Rc::from(svc.name.as_str());
                svc.listen.iter().enumerate().map(move |(i, addr)| Wanted {
                    binding: Binding {
                        addr: *addr,
                        udp: svc.protocol == Protocol::Udp,
                        wait: svc.wait,
                    },
                    service: name.clone(),
                    at: svc.listen_at.get(i).cloned().unwrap_or_default(),
                })
            })
            .collect();
        let keys = self.listener_keys();
        let running: Vec<(Key, &Listener)> = keys
            .iter()
            .filter_map(|k| self.listener(*k).map(|l| (*k, l)))
            .collect();
        let plan = listeners::plan(&running, wanted)
            .map_err(|e| StartError::Bind(e.at, e.service, e.addr, e.error))?;
        let mut added = Vec::new();
        for l in plan.fresh {
            match self.registry.add(Source::Listener(l), false) {
                Ok(key) => added.push(key),
                Err((_, e)) => {
                    // Undo: the sockets registered so far close on drop.
                    for key in added {
                        self.registry.remove(key);
                    }
                    return Err(StartError::System("watch a listener", e));
                }
            }
        }
        if let Err(e) = self.open_control(&config) {
            for key in added {
                self.registry.remove(key);
            }
            return Err(e);
        }
        // Commit. Connections already queued on a TCP listener that closes
        // are served first, by the configuration they arrived under (a
        // wait or UDP socket is simply closed, as before).
        for key in plan.close {
            if self
                .listener(key)
                .is_some_and(|l| !l.binding.wait && !l.binding.udp)
            {
                // The whole backlog, a batch at a time (bounded by it).
                for _ in 0..listeners::BACKLOG as usize / ACCEPT_BATCH + 1 {
                    if !self.accept_ready(key) {
                        break;
                    }
                }
            }
            if let Some(Source::Listener(l)) = self.registry.remove(key) {
                info!("close svc={} listen={}", l.service, l.local);
            }
        }
        for (key, service) in plan.keep {
            if let Some(Source::Listener(l)) = self.registry.get_mut(key) {
                l.service = service;
            }
        }
        for (service, addr) in plan.skipped {
            warn!("svc={service} listen={addr}: skipped, this host has no IPv6");
        }
        let mut old = std::mem::take(&mut self.services);
        for svc in &config.services {
            let name: Rc<str> = Rc::from(svc.name.as_str());
            let (stats, health) = old
                .remove(&name)
                .map(|s| (s.stats, s.health))
                .unwrap_or_default();
            let config = Rc::new(svc.clone());
            self.services.insert(
                name,
                ServiceState {
                    policy: Policy::of(svc),
                    format: if svc.xinetd_log {
                        Format::Xinetd
                    } else {
                        Format::Native
                    },
                    sink: Sink::open(svc),
                    prepared: Prepared::new(config),
                    stats,
                    health,
                },
            );
        }
        let services = &self.services;
        self.admission
            .retain_services(|name| services.contains_key(name));
        self.config = config;
        self.control_loaded();
        self.refresh_zygotes();
        // Limits may have risen: connections waiting for room look again.
        self.waits.freed();
        self.rearm_listeners();
        Ok(())
    }

    /// Arms each listener unless jawasd is stopping, its pause (a registry
    /// deadline) is running, or it is a wait listener whose engine runs.
    fn rearm_listeners(&mut self) {
        let waiting: HashSet<Key> = self.sessions.iter().filter_map(|s| s.waiting_on).collect();
        for key in self.listener_keys() {
            let paused = self.registry.deadline(key).is_some();
            let on = self.stopping.is_none() && !paused && !waiting.contains(&key);
            self.registry.arm(key, on);
        }
    }

    /// Drops the capabilities the running configuration does not need.
    pub fn drop_privileges(&self) {
        crate::privilege::drop_unneeded(&self.config);
    }

    /// READY=1 for systemd, with a one-line status.
    pub fn notify_ready(&self) {
        self.notify.ready(&format!(
            "serving {} services, {} engines running",
            self.services.len(),
            self.sessions.len()
        ));
    }

    /// The one line that tells tests and supervisors jawasd is up.
    pub fn log_ready(&self) {
        let mut parts = Vec::new();
        for svc in &self.config.services {
            let mut addrs: Vec<String> = self
                .listener_keys()
                .into_iter()
                .filter_map(|k| self.listener(k))
                .filter(|l| *l.service == *svc.name)
                .map(|l| l.local.to_string())
                .collect();
            addrs.sort();
            parts.push(format!("{}={}", svc.name, addrs.join(",")));
        }
        info!(target: READY_TARGET, "ready pid={} {}", std::process::id(), parts.join(" "));
    }

    /// Runs until SIGTERM/SIGINT and every engine is gone.
    pub fn run(&mut self) -> io::Result<()> {
        let mut events = Events::new();
        loop {
            if let Some(deadline) = self.stopping {
                // Done when every engine is reaped and what they wrote to
                // captured stderr has been logged (a pipe a grandchild
                // keeps open is not waited for past the grace).
                let pipes = !self
                    .registry
                    .keys_where(|s| matches!(s, Source::Pipe(..) | Source::Shared(..)))
                    .is_empty();
                if self.sessions.is_empty()
                    && self.childless
                    && (!pipes || Instant::now() >= deadline)
                {
                    info!("exit engines=0");
                    return Ok(());
                }
            }
            self.registry.wait(&mut events, self.timeout())?;
            self.caught_up = false;
            let keys: Vec<Key> = events.iter().map(|e| e.key).collect();
            for key in keys {
                match self.registry.get(key) {
                    Some(Source::Signals(_)) => self.signals_ready(),
                    Some(Source::Listener(_)) => {
                        self.accept_ready(key);
                    }
                    Some(Source::Pipe(..) | Source::Shared(..)) => self.capture_ready(key),
                    Some(Source::Engine(..)) => self.engine_exited(key),
                    Some(Source::Zygote(..)) => self.zygote_readable(key),
                    Some(Source::Pending(..)) => self.pending_readable(key),
                    Some(Source::Routing(..)) => self.routing_readable(key),
                    Some(Source::Handback(..)) => self.handback_readable(key),
                    Some(Source::Control(_)) => self.control_accept(key),
                    Some(Source::ControlClient(_)) => self.control_ready(key),
                    None => {}
                }
            }
            self.timers();
            self.admit_waiting();
            if crate::logsink::pending() {
                crate::logsink::flush();
            }
        }
    }

    fn timeout(&self) -> Option<Duration> {
        let now = Instant::now();
        // Once SIGKILL went out, nothing is left to time: waiting on the
        // passed deadline would spin until the last engine is reaped.
        let stop = self
            .stopping
            .filter(|_| !self.killed)
            .or(self.draining_until);
        let restart = self.zygotes.next_restart();
        // Log lines a stalled reader has not taken are retried this often.
        let log_retry = crate::logsink::pending().then(|| now + LOG_RETRY);
        [
            self.registry.next_deadline(),
            stop,
            self.sweep_at,
            restart,
            self.watchdog_at,
            log_retry,
            self.waits.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .map(|t| t.saturating_duration_since(now))
        .min()
    }

    fn timers(&mut self) {
        let now = Instant::now();
        let mut pause_over = false;
        for key in self.registry.expired(now) {
            match self.registry.get(key) {
                Some(Source::Pending(_)) => self.pending_expired(key),
                Some(Source::Routing(_)) => self.routing_expired(key),
                // Requests left over from an earlier wakeup.
                Some(Source::ControlClient(_)) => self.control_ready(key),
                // A listener's pause ended.
                _ => pause_over = true,
            }
        }
        if pause_over {
            self.rearm_listeners();
        }
        if self.sweep_at.is_some_and(|t| t <= now) {
            self.sweep_at = None;
            self.sweep();
        }
        self.zygote_timers(now);
        self.waiting_timers(now);
        if let (Some(at), Some(every)) = (self.watchdog_at, self.notify.watchdog_interval()) {
            if at <= now {
                self.notify.watchdog_ping();
                self.watchdog_at = Some(now + every);
            }
        }
        if self.draining_until.is_some_and(|t| t <= now) {
            self.end_drain("drain over");
        }
        if let Some(deadline) = self.stopping {
            if !self.killed && deadline <= now {
                warn!(
                    "shutdown grace over; killing engines={}",
                    self.sessions.len()
                );
                self.killed = true;
                self.signalled.clear();
                self.kill_all(libc::SIGKILL);
            }
        }
    }

    fn signals_ready(&mut self) {
        let Some(Source::Signals(signals)) = self.registry.get_mut(self.signals) else {
            return;
        };
        let mut got = Vec::new();
        loop {
            match signals.read_signal() {
                Ok(Some(info)) => got.push((info.ssi_signo as libc::c_int, info.ssi_pid as i32)),
                Ok(None) => break,
                Err(e) => {
                    error!("signalfd read failed: {}", e.desc());
                    break;
                }
            }
        }
        for (sig, pid) in got {
            match sig {
                libc::SIGCHLD => self.child_signal(pid),
                libc::SIGHUP => {
                    let _ = self.reload();
                }
                libc::SIGTERM | libc::SIGINT | libc::SIGQUIT => self.shutdown(sig),
                libc::SIGUSR1 => {
                    self.reopen_logs();
                    self.dump();
                }
                libc::SIGUSR2 => self.upgrade_signal(pid),
                _ => {}
            }
        }
    }

    /// SIGCHLD from `pid`. An engine with a pidfd is reaped when its pidfd
    /// fires (which may already have happened); anything else (an adopted
    /// orphan, an engine without a pidfd) is reaped by pid at once.
    /// SIGCHLDs of children that end together merge into one, so after
    /// such a child a sweep follows shortly to catch the others.
    fn child_signal(&mut self, pid: libc::pid_t) {
        // A child signalled, so jawasd may have children again (an orphan
        // adopted since the last sweep found none).
        self.childless = false;
        if self
            .sessions
            .by_pid(pid)
            .is_some_and(|id| self.sessions.has_pidfd(id))
        {
            return;
        }
        if let Some(status) = reaper::reap_pid(pid) {
            self.reaped(pid, status);
            self.sweep_within(SWEEP_SOON);
        }
    }

    fn sweep_within(&mut self, delay: Duration) {
        let at = Instant::now() + delay;
        self.sweep_at = Some(self.sweep_at.map_or(at, |t| t.min(at)));
    }

    /// Reaps whatever has exited that no event announced (waitpid(-1)
    /// walks every child, so this runs rarely: `SWEEP_SOON` after an
    /// orphan ended, else every `SWEEP_EVERY` while engines run), and
    /// while stopping, tells new orphans to stop too.
    fn sweep(&mut self) {
        match self.reap_exited(usize::MAX) {
            Reaped::NoChildren => self.childless = true,
            _ => {
                if self.upgrade.handed_over && self.only_successor_left() {
                    self.childless = true;
                }
            }
        }
        if self.stopping.is_some() {
            // While draining, orphans (and retired zygotes) are left to
            // finish like the engines.
            if self.draining_until.is_none() {
                let sig = if self.killed {
                    libc::SIGKILL
                } else {
                    libc::SIGTERM
                };
                self.signal_orphans(sig);
            }
            self.sweep_within(SWEEP_SOON);
        } else if !self.sessions.is_empty() {
            self.sweep_within(SWEEP_EVERY);
        }
    }

    /// Reaps the children that have exited, at most `max`, each the end of
    /// its session or an orphan gone; what waiting said last (`NoneYet`
    /// when `max` was reached).
    fn reap_exited(&mut self, max: usize) -> Reaped {
        for _ in 0..max {
            match reaper::reap_any() {
                Reaped::One(pid, status) => self.reaped(pid, status),
                other => return other,
            }
        }
        Reaped::NoneYet
    }

    /// A reaped pid: the end of its session, or an orphan gone.
    fn reaped(&mut self, pid: libc::pid_t, status: ExitStatus) {
        match self.sessions.by_pid(pid) {
            Some(id) => self.session_ended(id, status),
            None if self.zygote_exited(pid, status) => {}
            None if self.successor_exited(pid, status) => {}
            None if self.unanswered_child_exited(pid, status) => {}
            None => {
                self.signalled.remove(&pid);
                debug!("orphan pid={pid} {}", status.describe());
            }
        }
    }

    /// An engine's pidfd is readable: it has exited.
    fn engine_exited(&mut self, key: Key) {
        let Some(Source::Engine(id, fd)) = self.registry.get(key) else {
            return;
        };
        let id = *id;
        if let Some((_, status)) = reaper::reap_pidfd(fd.as_fd()) {
            self.session_ended(id, status);
        }
    }

    /// Everything that follows the end of a session, in one place.
    fn session_ended(&mut self, id: SessionId, status: ExitStatus) {
        let Some(session) = self.sessions.end(id) else {
            return;
        };
        self.waits.freed();
        self.control.forget_connections();
        if let Some(r) = self.returned.remove(&id) {
            self.route_returned(r);
        }
        if let Some(key) = session.pidfd {
            self.registry.remove(key);
        }
        if session.waiting_on.is_some() {
            self.rearm_listeners();
        }
        let took = session.started.elapsed();
        self.publish(|| {
            serde_json::json!({
                "event": "exit", "id": id.raw(), "service": &*session.service, "pid": session.pid,
                "remote": events::show(session.remote), "status": status.describe(),
                "duration": took.as_secs_f64(),
            })
        });
        let Some(state) = self.services.get_mut(&session.service) else {
            info!(
                "done svc={} pid={} {}",
                session.service,
                session.pid,
                status.describe()
            );
            return;
        };
        state.stats.ended(status, took);
        let fields = Fields(state.prepared.config.log_on_success.as_deref());
        if let Some(line) = events::exit(
            state.format,
            fields,
            &session.service,
            session.pid,
            session.remote,
            status,
            took,
        ) {
            state.sink.write(log::Level::Info, &line);
        }
        let failed_at_once =
            took < QUICK_EXIT && matches!(status, ExitStatus::Exited(100 | 111 | 127));
        if failed_at_once {
            warn_if_failing(&session.service, state, Instant::now());
        } else {
            state.health.quick_exits.clear();
        }
    }

    /// Serves what is ready on a listener; true when a TCP listener gave a
    /// whole batch (more may be queued).
    fn accept_ready(&mut self, key: Key) -> bool {
        let Some(listener) = self.listener(key) else {
            return false;
        };
        if listener.binding.wait {
            self.hand_over(key);
            return false;
        }
        if listener.binding.udp {
            self.udp_per_sender(key);
            return false;
        }
        for _ in 0..ACCEPT_BATCH {
            let Some(listener) = self.listener(key) else {
                return false;
            };
            let Socket::Tcp(socket) = &listener.socket else {
                return false;
            };
            // A listener bound to one address knows the local address of
            // every connection; only a wildcard one must ask (getsockname).
            let local = (!listener.local.ip().is_unspecified()).then_some(listener.local);
            match socket.accept() {
                Ok((stream, remote)) => {
                    let service = listener.service.clone();
                    let at = listener.local;
                    self.accept_backoff = BACKOFF_MIN;
                    self.publish(|| {
                        serde_json::json!({
                            "event": "accept", "service": &*service, "remote": remote.to_string(),
                            "local": at.to_string(),
                        })
                    });
                    self.accepted(&service, stream, remote, local);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if is_resource_exhaustion(&e) => {
                    self.pause_accepting(&e);
                    return false;
                }
                // ECONNABORTED, EPROTO, EPERM (firewall) and friends concern
                // one connection only.
                Err(e) => debug!("accept failed: {e}"),
            }
        }
        true
    }

    /// Out of descriptors or memory: stop watching listeners for a while
    /// instead of spinning on a level-triggered event we cannot serve.
    /// Pending connections wait in the kernel's backlog.
    fn pause_accepting(&mut self, e: &io::Error) {
        warn!(
            "accept paused for {}ms: {} (engines={})",
            self.accept_backoff.as_millis(),
            crate::errno_text(e),
            self.sessions.len()
        );
        let until = Instant::now() + self.accept_backoff;
        for key in self.listener_keys() {
            self.registry.set_deadline(key, Some(until));
        }
        self.accept_backoff = (self.accept_backoff * 2).min(BACKOFF_MAX);
        self.rearm_listeners();
    }

    /// A service's engine cannot start: stop accepting for that service
    /// for a while (50 ms doubling to 1 s), as after EMFILE, instead of
    /// accepting and resetting every client.
    fn pause_service(&mut self, service: &Rc<str>) {
        let Some(state) = self.services.get_mut(service) else {
            return;
        };
        let pause = state.health.backoff.unwrap_or(BACKOFF_MIN);
        state.health.backoff = Some((pause * 2).min(BACKOFF_MAX));
        let until = Instant::now() + pause;
        let keys: Vec<Key> = self
            .registry
            .keys_where(|s| matches!(s, Source::Listener(l) if l.service == *service));
        for key in keys {
            self.registry.set_deadline(key, Some(until));
        }
        self.rearm_listeners();
    }

    /// A wait service is ready: its socket itself goes to one engine, and
    /// the listener is not watched until that engine exits. For UDP the
    /// first datagram's sender is checked against the access rules first
    /// (its datagram is dropped when refused).
    fn hand_over(&mut self, key: Key) {
        let Some(listener) = self.listener(key) else {
            return;
        };
        let service = listener.service.clone();
        let local = listener.local;
        let remote = match &listener.socket {
            Socket::Udp(u) => match listeners::peek_sender(u) {
                Ok(from) => Some(from),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => None,
            },
            Socket::Tcp(_) => None,
        };
        if let Err(r) = self.check(&service, remote) {
            self.refused(&service, remote, r);
            match self.listener(key).map(|l| &l.socket) {
                // Drop the refused datagram so it is not seen again.
                Some(Socket::Udp(u)) => listeners::drop_datagram(u),
                // A TCP wait service's engine accepts for itself: try again
                // after a pause instead of spinning on the ready listener.
                _ => self.pause_service(&service),
            }
            return;
        }
        let launched = {
            let Some(state) = self.services.get(&service) else {
                return;
            };
            let Some(Source::Listener(listener)) = self.registry.get(key) else {
                return;
            };
            let conn = Conn {
                socket: listener.socket.as_fd(),
                local: Some(local),
                remote,
                route: None,
            };
            self.launcher.launch(&state.prepared, &conn)
        };
        match launched {
            Ok(l) => {
                self.started(&service, l, remote, Some(local), Some(key));
                self.registry.arm(key, false);
            }
            Err(e) => {
                self.spawn_failed(&service, remote, &e);
                // Do not spin on a socket we cannot serve.
                self.pause_service(&service);
            }
        }
    }

    /// A UDP service without wait: one engine per datagram sender, as
    /// xinetd and udpsvd do. The bound socket is connected to the sender
    /// and handed to the engine, datagram still queued, so that sender's
    /// later datagrams reach that engine too; the listener continues on a
    /// fresh socket bound to the same address.
    fn udp_per_sender(&mut self, key: Key) {
        let Some(Listener {
            socket: Socket::Udp(socket),
            service,
            binding,
            ..
        }) = self.listener(key)
        else {
            return;
        };
        let (service, binding) = (service.clone(), binding.clone());
        let from = match listeners::peek_sender(socket) {
            Ok(from) => from,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(_) => {
                listeners::drop_datagram(socket);
                return;
            }
        };
        if let Err(r) = self.check(&service, Some(from)) {
            self.refused(&service, Some(from), r);
            if let Some(Listener {
                socket: Socket::Udp(u),
                ..
            }) = self.listener(key)
            {
                listeners::drop_datagram(u);
            }
            return;
        }
        let fresh = match listeners::bind(&binding, false) {
            Ok(s) => s,
            Err(e) => {
                // Without a second socket we cannot hand this one over;
                // serve nobody rather than drop the listener.
                warn!(
                    "svc={service} unable to bind a fresh socket: {}",
                    crate::errno_text(&e)
                );
                if let Some(Listener {
                    socket: Socket::Udp(u),
                    ..
                }) = self.listener(key)
                {
                    listeners::drop_datagram(u);
                }
                return;
            }
        };
        // The fresh socket takes the old one's place under a new key.
        let Some(Source::Listener(old)) = self.registry.remove(key) else {
            return;
        };
        let local = old.local;
        let replacement = Listener {
            socket: fresh,
            binding: old.binding.clone(),
            local: old.local,
            service: old.service.clone(),
        };
        match self.registry.add(Source::Listener(replacement), false) {
            Ok(new_key) => {
                // Paused like the others if a pause is running.
                let pause = self
                    .registry
                    .keys_where(|s| matches!(s, Source::Listener(l) if l.service == service))
                    .into_iter()
                    .find_map(|k| self.registry.deadline(k));
                self.registry.set_deadline(new_key, pause);
                self.rearm_listeners();
            }
            Err((_, e)) => error!(
                "svc={service} listen={local}: unable to watch the fresh socket: {}",
                crate::errno_text(&e)
            ),
        }
        let Socket::Udp(old) = old.socket else { return };
        if let Err(e) = old.connect(from) {
            warn!(
                "svc={service} remote={from} connect failed: {}",
                crate::errno_text(&e)
            );
            return;
        }
        let udp_local = old.local_addr().ok();
        let launched = {
            let Some(state) = self.services.get(&service) else {
                return;
            };
            let conn = Conn {
                socket: old.as_fd(),
                local: udp_local,
                remote: Some(from),
                route: None,
            };
            self.launcher.launch(&state.prepared, &conn)
        };
        match launched {
            Ok(l) => self.started(&service, l, Some(from), udp_local, None),
            Err(e) => {
                self.spawn_failed(&service, Some(from), &e);
                self.pause_service(&service);
            }
        }
        // `old` drops here: the engine holds the connected socket.
    }

    /// Which rule, if any, refuses a client of `service` now.
    fn check(&mut self, service: &Rc<str>, remote: Option<SocketAddr>) -> Result<(), Refusal> {
        let Some(state) = self.services.get(service) else {
            return Err(Refusal::Access);
        };
        let ip: Option<IpAddr> = remote.map(|r| r.ip().to_canonical());
        // Connections handed to a zygote and not answered yet count as
        // running: their engines are starting.
        let (all, of_service, from_ip) = self.zygotes.handing(service, ip);
        let req = admission::Request {
            service,
            ip,
            counts: Counts {
                total: self.sessions.len() + all,
                service: self.sessions.running(service) + of_service,
                source: ip.map_or(0, |ip| self.sessions.running_from(service, ip)) + from_ip,
            },
            max_total: self.config.server.max_connections,
        };
        self.admission.check(&state.policy, &req, &mut self.clock)
    }

    /// Before a refusal for a count of running engines: takes in the exits
    /// not read yet (children waiting to be reaped, zygotes' reports), at
    /// most once per wakeup of the loop. A client that reconnects the
    /// moment it reads EOF can come before its last engine's exit is seen.
    /// True when it ran (counts may have changed).
    fn catch_up_exits(&mut self) -> bool {
        if std::mem::replace(&mut self.caught_up, true) {
            return false;
        }
        self.reap_exited(CATCH_UP_MAX);
        for key in self
            .registry
            .keys_where(|s| matches!(s, Source::Zygote(..)))
        {
            self.zygote_readable(key);
        }
        true
    }

    /// Decides whether a connection gets an engine, and starts it.
    fn admit(
        &mut self,
        service: &Rc<str>,
        stream: TcpStream,
        remote: SocketAddr,
        local: Option<SocketAddr>,
        route: Option<routing::Pick>,
    ) {
        let Some(svc) = self.config_of(service) else {
            return;
        };
        if let Some(banner) = &svc.banner {
            listeners::send_banner(&stream, banner);
        }
        let mut verdict = self.check(service, Some(remote));
        if verdict.is_err_and(Refusal::counts_sessions) && self.catch_up_exits() {
            verdict = self.check(service, Some(remote));
        }
        let Err(r) = verdict else {
            return self.admitted(service, stream, (remote, local), route);
        };
        // Over a count, a connection may wait a moment for an engine to end.
        let stream = if r.counts_sessions() {
            match self.wait_for_room(service, stream, (remote, local), route, r) {
                Ok(()) => return,
                Err(stream) => stream,
            }
        } else {
            stream
        };
        self.refuse_connection(service, &stream, remote, r);
    }

    /// Whether `[server] max_pending` is taken up by connections waiting
    /// in jawasd (for a PROXY header, a request head, or room).
    fn pending_full(&self) -> bool {
        self.pending + self.waits.len() >= self.config.server.max_pending as usize
    }

    /// The service's configuration as loaded now.
    fn config_of(&self, service: &str) -> Option<Rc<crate::config::Service>> {
        self.services
            .get(service)
            .map(|s| s.prepared.config.clone())
    }

    /// A refusal of a connection jawasd holds: logged and counted, then
    /// the service's `limit_banner` (the connection closes as the caller
    /// drops it).
    fn refuse_connection(
        &mut self,
        service: &Rc<str>,
        stream: &TcpStream,
        remote: SocketAddr,
        r: Refusal,
    ) {
        self.refused(service, Some(remote), r);
        let banner = self.config_of(service).and_then(|c| c.limit_banner.clone());
        if let Some(banner) = banner {
            listeners::send_banner(stream, &banner);
        }
    }

    /// Starts the engine of an admitted connection: by its zygote, or
    /// exec.
    fn admitted(
        &mut self,
        service: &Rc<str>,
        stream: TcpStream,
        (remote, local): (SocketAddr, Option<SocketAddr>),
        route: Option<routing::Pick>,
    ) {
        let Some(svc) = self.config_of(service) else {
            return;
        };
        if svc.nodelay {
            let _ = stream.set_nodelay(true);
        }
        if svc.keepalive {
            let _ =
                nix::sys::socket::setsockopt(&stream, nix::sys::socket::sockopt::KeepAlive, &true);
        }
        if let Some(banner) = &svc.banner_success {
            listeners::send_banner(&stream, banner);
        }
        let local = local.or_else(|| stream.local_addr().ok());
        // A routed engine's way back to the router (its fd 3).
        let handback = match &route {
            Some(pick) if pick.handback => match crate::zygote::control_pair() {
                Ok(pair) => Some(pair),
                Err(error) => {
                    let e = SpawnError {
                        step: "socketpair",
                        error,
                    };
                    self.spawn_failed(service, Some(remote), &e);
                    return;
                }
            },
            _ => None,
        };
        let conn = Conn {
            socket: stream.as_fd(),
            local,
            remote: Some(remote),
            route: route.as_ref().map(|p| crate::launcher::RouteConn {
                env: &p.env,
                handback: handback.as_ref().map(|(_, theirs)| theirs.as_fd()),
            }),
        };
        // A ready zygote forks the engine, and its answer comes through
        // the loop; otherwise it is exec'd, unless the service would
        // rather refuse.
        if let Some(key) = self.launch_by_zygote(service, &conn) {
            let back = match (route, handback) {
                (Some(pick), Some((fd, _))) => Some(zygotes::Handback {
                    fd,
                    router: pick.router,
                    peer: stream.peer_addr().ok(),
                }),
                _ => None,
            };
            let h = zygotes::Handing::new(service.clone(), stream.as_fd(), (remote, local), back);
            self.zygotes.handed(key, h);
            // `stream` drops here: the zygote has the connection.
            return;
        }
        if svc.spawn == SpawnMode::Zygote && svc.zygote_refuse {
            self.refused(service, Some(remote), Refusal::NoZygote);
            return;
        }
        let launched = match self.services.get(service) {
            Some(state) => self.launcher.launch(&state.prepared, &conn),
            None => return,
        };
        match launched {
            Ok(l) => {
                let pid = l.pid;
                self.started(service, l, Some(remote), local, None);
                if let (Some(pick), Some((ours, _))) = (route, handback) {
                    let peer = stream.peer_addr().ok();
                    self.watch_handback(ours, pick.router, (remote, local), (peer, pid));
                }
            }
            Err(e) => {
                self.spawn_failed(service, Some(remote), &e);
                if is_resource_exhaustion(&e.error) {
                    self.pause_accepting(&e.error);
                } else {
                    self.pause_service(service);
                }
            }
        }
        if std::mem::take(&mut self.launcher.pipe_shortage) {
            self.pause_accepting(&io::Error::from_raw_os_error(libc::EMFILE));
        }
        // `stream` drops here: jawasd's copy of the connection is closed.
    }

    /// Everything that follows a successful start, in one place.
    fn started(
        &mut self,
        service: &Rc<str>,
        launched: Launched,
        remote: Option<SocketAddr>,
        local: Option<SocketAddr>,
        waiting_on: Option<Key>,
    ) {
        let pid = launched.pid;
        let now = Instant::now();
        self.control.forget_connections();
        let id = self.sessions.start(
            NewSession {
                service: service.clone(),
                pid,
                remote,
                local,
                waiting_on,
                zygote: launched.zygote,
            },
            now,
        );
        self.childless = false;
        if self.sweep_at.is_none() {
            self.sweep_within(SWEEP_EVERY);
        }
        if let Some(fd) = launched.pidfd {
            match self.registry.add(Source::Engine(id, fd), true) {
                Ok(key) => self.sessions.set_pidfd(id, key),
                // The pidfd closes; SIGCHLD reaps this engine by pid.
                Err((_, e)) => debug!("pidfd of pid={pid} not watched: {e}"),
            }
        }
        if let Some(state) = self.services.get_mut(service) {
            state.stats.accept(now);
            state.health.backoff = None;
            let fields = Fields(state.prepared.config.log_on_success.as_deref());
            if let Some(line) = events::start(state.format, fields, service, pid, remote) {
                state.sink.write(log::Level::Info, &line);
            }
        }
        debug!("{}", events::accept(service, pid, remote));
        self.publish(|| {
            serde_json::json!({
                "event": "spawn", "id": id.raw(), "service": &**service, "pid": pid,
                "remote": events::show(remote), "local": events::show(local),
            })
        });
        if let Some(fd) = launched.stderr {
            self.watch_pipe(fd, service.clone(), pid);
        }
    }

    fn refused(&mut self, service: &Rc<str>, remote: Option<SocketAddr>, r: Refusal) {
        let Some(state) = self.services.get_mut(service) else {
            return;
        };
        state.stats.refuse(r.as_str());
        let fields = Fields(state.prepared.config.log_on_failure.as_deref());
        let line = events::refuse(state.format, fields, service, remote, r);
        state.sink.write(log::Level::Warn, &line);
        self.publish(|| {
            serde_json::json!({
                "event": "refuse", "service": &**service, "remote": events::show(remote),
                "reason": r.as_str(),
            })
        });
    }

    /// Logs a failed start at most once a second per service, with the
    /// number of failures since the last line and the cause in words.
    fn spawn_failed(&mut self, service: &Rc<str>, remote: Option<SocketAddr>, e: &SpawnError) {
        self.publish(|| {
            serde_json::json!({
                "event": "spawn_failed", "service": &**service, "remote": events::show(remote),
                "step": e.step, "error": crate::errno_text(&e.error),
            })
        });
        let Some(state) = self.services.get_mut(service) else {
            return;
        };
        state.stats.spawn_failed += 1;
        let now = Instant::now();
        let h = &mut state.health;
        if h.logged_at
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            h.unlogged += 1;
            return;
        }
        let more = std::mem::take(&mut h.unlogged);
        h.logged_at = Some(now);
        let also = if more > 0 {
            format!(" (and {more} more since the last line)")
        } else {
            String::new()
        };
        error!(
            "spawn-failed svc={service} remote={} step={} error=\"{}\" cause=\"{}\"{also}",
            events::show(remote),
            e.step,
            crate::errno_text(&e.error),
            launcher::explain(&state.prepared.config, e),
        );
    }

    fn watch_pipe(&mut self, fd: OwnedFd, service: Rc<str>, pid: libc::pid_t) {
        let pipe = capture::Pipe::new(fd, pid);
        if let Err((_, e)) = self.registry.add(Source::Pipe(service.clone(), pipe), true) {
            warn!("stderr capture svc={service} pid={pid} unavailable: {e}");
        }
    }

    /// Captured stderr is readable: its lines go to the log.
    fn capture_ready(&mut self, key: Key) {
        let (service, (lines, eof)) = match self.registry.get_mut(key) {
            Some(Source::Pipe(service, p)) => (service.clone(), p.read()),
            Some(Source::Shared(service, s)) => (service.clone(), s.read()),
            _ => return,
        };
        if eof {
            self.registry.remove(key);
        }
        self.log_engine_lines(&service, lines);
    }

    /// Lines engines wrote to stderr: to the service's own log_file (or
    /// syslog facility) when it has one, else jawasd's log.
    fn log_engine_lines(&mut self, service: &Rc<str>, mut lines: Vec<capture::Line>) {
        let Some(state) = self.services.get_mut(service) else {
            for l in &lines {
                info!("engine svc={service} pid={}: {}", l.pid, l.text);
            }
            return;
        };
        for l in &lines {
            let line = format!("engine svc={service} pid={}: {}", l.pid, l.text);
            state.sink.write(log::Level::Info, &line);
        }
        if let Some(last) = lines.pop() {
            state.health.last_stderr = Some(last.text);
        }
    }

    /// SIGHUP or `jawasd ctl reload`: loads the configuration again and
    /// applies it; the error lines (file:line: ...) when it was not.
    fn reload(&mut self) -> Result<(), Vec<String>> {
        if self.stopping.is_some() {
            return Err(vec!["jawasd is stopping".into()]);
        }
        let path = self.config.path.clone();
        if let Err(e) = crate::logsink::reopen() {
            error!("{e}");
        }
        info!("reload config={}", path.display());
        self.notify.reloading();
        let path_var = std::env::var_os("PATH");
        let env = Env {
            exe_dir: self.exe_dir.as_deref(),
            path_var: path_var.as_deref(),
        };
        // No configuration, however wrong, may take the running daemon
        // down: a bug in the loader is a failed reload, not an exit.
        let loaded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (self.loader)(&env)))
            .unwrap_or_else(|_| Err("internal error while loading the configuration".into()));
        let result = match loaded {
            Err(errors) => Err(errors.lines().map(str::to_string).collect::<Vec<_>>()),
            Ok(config) => {
                let missing = crate::privilege::missing(&config);
                if !missing.is_empty() {
                    Err(vec![format!(
                        "the new configuration needs {}, which jawasd dropped at start (it keeps only what its first configuration needed); restart jawasd to apply it",
                        missing.join(", ")
                    )])
                } else {
                    self.apply(config).map_err(|e| vec![e.to_string()])
                }
            }
        };
        match &result {
            Ok(()) => self.log_ready(),
            Err(errors) => {
                for e in errors {
                    error!("reload failed: {e}");
                }
                error!("reload failed: keeping the running configuration");
            }
        }
        self.publish(|| match &result {
            Ok(()) => serde_json::json!({"event": "reload", "ok": true}),
            Err(errors) => serde_json::json!({"event": "reload", "ok": false, "errors": errors}),
        });
        // Whatever the outcome, jawasd is serving (the new configuration
        // or the old one).
        self.notify_ready();
        result
    }

    fn shutdown(&mut self, sig: libc::c_int) {
        if self.draining_until.is_some() {
            // A second request while draining: stop waiting for engines.
            self.end_drain("second stop signal");
            return;
        }
        if self.stopping.is_some() {
            // A second request: do not wait out the grace.
            warn!(
                "second stop signal; killing engines={}",
                self.sessions.len()
            );
            self.killed = true;
            self.signalled.clear();
            self.kill_all(libc::SIGKILL);
            return;
        }
        let name = Signal::try_from(sig).map(|s| s.as_str()).unwrap_or("?");
        let grace = self.config.server.shutdown_grace;
        let drain = self.config.server.drain;
        self.notify.stopping();
        info!(
            "stop signal={name} engines={} drain={:.1}s grace={:.1}s",
            self.sessions.len(),
            drain.as_secs_f64(),
            grace.as_secs_f64()
        );
        for key in self.listener_keys() {
            self.registry.remove(key);
        }
        self.drop_pending();
        self.drop_waiting();
        self.drop_routing();
        self.returned.clear();
        self.retire_all_zygotes();
        let now = Instant::now();
        self.sweep_at = Some(now);
        self.dump();
        if !drain.is_zero() && !self.sessions.is_empty() {
            // Engines finish on their own first; nothing is signalled yet.
            let until = now.checked_add(drain).unwrap_or(now);
            self.draining_until = Some(until);
            self.stopping = Some(until.checked_add(grace).unwrap_or(until));
            return;
        }
        self.stopping = Some(now.checked_add(grace).unwrap_or(now));
        self.kill_all(libc::SIGTERM);
    }

    /// The drain is over (its time is up, or a second stop signal came):
    /// engines still running get SIGTERM and `shutdown_grace`.
    fn end_drain(&mut self, why: &str) {
        self.draining_until = None;
        let now = Instant::now();
        let grace = self.config.server.shutdown_grace;
        info!(
            "{why}; stopping engines={} grace={:.1}s",
            self.sessions.len(),
            grace.as_secs_f64()
        );
        self.stopping = Some(now.checked_add(grace).unwrap_or(now));
        self.kill_all(libc::SIGTERM);
        self.sweep_at = Some(now);
    }

    /// Signals every engine's process group, and every orphan.
    fn kill_all(&mut self, sig: libc::c_int) {
        for s in self.sessions.iter() {
            if self.may_signal(s) {
                spawn::signal_group(s.pid, sig);
            }
        }
        self.signal_orphans(sig);
    }

    /// Whether a session's pid is an engine jawasd may signal. One without
    /// a pidfd came from a zygote's `PID` answer (or from a kernel without
    /// pidfds): it must be a child of jawasd's or of a zygote's, so that a
    /// zygote that names some other process's pid cannot have jawasd
    /// (often root) signal that process's group.
    fn may_signal(&self, s: &crate::sessions::Session) -> bool {
        if s.pidfd.is_some() {
            return true;
        }
        match self.parent(s.pid) {
            Parent::Ours => true,
            Parent::Other(p) => {
                warn!(
                    "not signalling pid={} svc={}: its parent (pid={p}) is neither jawasd nor a zygote",
                    s.pid, s.service
                );
                false
            }
            Parent::Gone => false,
        }
    }

    /// Whose child `pid` is, from /proc.
    fn parent(&self, pid: libc::pid_t) -> Parent {
        match crate::reaper::parent_of(pid) {
            Some(p) if p == std::process::id() as libc::pid_t || self.zygotes.is_zygote(p) => {
                Parent::Ours
            }
            Some(p) => Parent::Other(p),
            None => Parent::Gone,
        }
    }

    /// Signals the children of jawasd that are no session's engine: the
    /// orphans it adopted as subreaper (each in its own group, often).
    fn signal_orphans(&mut self, sig: libc::c_int) {
        for pid in reaper::children() {
            if self.sessions.by_pid(pid).is_some()
                || self.upgrade.successor == Some(pid)
                || !self.signalled.insert(pid)
            {
                continue;
            }
            debug!("stopping orphan pid={pid}");
            spawn::signal_group(pid, sig);
            spawn::signal_pid(pid, sig);
        }
    }

    /// SIGUSR1 (logrotate's postrotate): `--log-file` and every service's
    /// `log_file` are opened again by name.
    fn reopen_logs(&mut self) {
        if let Err(e) = crate::logsink::reopen() {
            error!("{e}");
        }
        for state in self.services.values_mut() {
            if state.prepared.config.log_file.is_some() {
                state.sink = Sink::open(&state.prepared.config);
            }
        }
    }

    /// SIGUSR1: one line per service with its counters.
    fn dump(&self) {
        let mut names: Vec<&Rc<str>> = self.services.keys().collect();
        names.sort();
        for name in names {
            let s = &self.services[name];
            info!(
                "stats svc={name} running={} accepted={} refused={} spawn_failed={}",
                self.sessions.running(name),
                s.stats.accepted,
                s.stats.refused,
                s.stats.spawn_failed
            );
        }
    }
}

/// Counts an engine that failed at once; past `FAILING_COUNT` of them in
/// `FAILING_WINDOW`, one loud line (at most once a minute) quoting what the
/// engine last said.
fn warn_if_failing(service: &str, state: &mut ServiceState, now: Instant) {
    let h = &mut state.health;
    h.quick_exits.push_back(now);
    while h.quick_exits.len() > FAILING_COUNT {
        h.quick_exits.pop_front();
    }
    let failing = h.quick_exits.len() == FAILING_COUNT
        && h.quick_exits
            .front()
            .is_some_and(|first| now.duration_since(*first) <= FAILING_WINDOW);
    if !failing
        || h.warned_at
            .is_some_and(|t| now.duration_since(t) < WARN_EVERY)
    {
        return;
    }
    h.warned_at = Some(now);
    let said = match (&h.last_stderr, state.prepared.config.stderr) {
        (Some(line), _) => format!("last stderr line: \"{line}\""),
        (None, StderrMode::Capture) => "it wrote nothing to stderr".into(),
        (None, _) => "its stderr is not captured (set stderr = \"capture\" to see it here)".into(),
    };
    warn!(
        "svc={service} engines keep failing: {FAILING_COUNT} exited with 100, 111 or 127 within {}s of starting; {said}; check the service's engine and args",
        QUICK_EXIT.as_secs()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parse(text: &str) -> Config {
        let env = Env {
            exe_dir: None,
            path_var: Some(std::ffi::OsStr::new("/usr/bin:/bin")),
        };
        Config::parse(text, Path::new("test.toml"), &env).expect("valid config")
    }

    #[test]
    fn a_reload_whose_registration_fails_changes_nothing() {
        let first = parse("[services.a]\nlisten = \"127.0.0.1:0\"\nengine = \"cat\"\n");
        let mut s = Server::new(
            first,
            None,
            Box::new(|_| Err("unused".into())),
            crate::notify::Notifier::default(),
        )
        .unwrap();
        let before = s.listener_keys();
        let addr = s.listener(before[0]).unwrap().local;
        let second = parse(
            "[services.a]\nlisten = \"127.0.0.1:0\"\nengine = \"cat\"\n\
             [services.b]\nlisten = [\"127.0.0.1:0\", \"127.0.0.1:0\"]\nengine = \"cat\"\n",
        );
        // The second of b's two new sockets fails to register.
        s.registry.fail_after = Some(1);
        assert!(matches!(s.apply(second), Err(StartError::System(..))));
        s.registry.fail_after = None;
        assert_eq!(s.listener_keys(), before, "no listener lost or leaked");
        assert!(s.services.contains_key("a") && !s.services.contains_key("b"));
        // The kept listener is still watched: a client makes it ready.
        let _client = std::net::TcpStream::connect(addr).unwrap();
        let mut events = Events::new();
        s.registry
            .wait(&mut events, Some(Duration::from_secs(5)))
            .unwrap();
        assert!(events.iter().any(|e| e.key == before[0]));
    }
}
