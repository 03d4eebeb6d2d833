//! The event loop: listeners, admission, engines, signals, in one thread.
//!
//! Owns every socket jawasd listens on, the table of running engines, the
//! per-service counters that limits are checked against, and the signalfd
//! through which SIGCHLD, SIGHUP, SIGTERM, SIGINT and SIGUSR1 arrive as events.
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
//! - **Running counts are derived from the table of engines**, so a reload
//!   can never leave a service's count out of step with reality.
//! - Every child is reaped, from the signalfd, in this loop.

use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use log::{debug, error, info, warn};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use polling::{Event, Events, PollMode, Poller};

use crate::config::{Config, Env, Protocol, Service, StderrMode};
use crate::spawn::{self, Plan, Spawner};

const SIGNAL_KEY: usize = 0;
/// Log target of the ready line, which is logged whatever the level.
pub const READY_TARGET: &str = "jawasd::ready";
/// Connections accepted from one listener before the loop looks at its
/// other sources again, so a flood on one port cannot starve the rest.
const ACCEPT_BATCH: usize = 32;
const BACKLOG: i32 = 1024;
/// Longest stderr line kept from an engine before it is cut.
const MAX_LOG_LINE: usize = 4096;

/// A bound socket: a TCP listener, or a UDP socket for a wait service.
enum Socket {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

impl Socket {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Socket::Tcp(s) => s.as_fd(),
            Socket::Udp(s) => s.as_fd(),
        }
    }
    fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Socket::Tcp(s) => s.local_addr(),
            Socket::Udp(s) => s.local_addr(),
        }
    }
}

/// What makes two bound sockets interchangeable across a reload.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Binding {
    addr: SocketAddr,
    udp: bool,
    /// Wait services get a blocking socket (the engine reads it).
    wait: bool,
}

/// A listening socket and the service it belongs to.
struct Listener {
    socket: Socket,
    binding: Binding,
    /// The address it is bound to.
    local: SocketAddr,
    service: Rc<str>,
}

/// What jawasd counts about one service, for the log and SIGUSR1.
#[derive(Default, Debug, Clone)]
struct Stats {
    accepted: u64,
    refused: u64,
    spawn_failed: u64,
}

/// A service as the loop sees it: the config plus its live counters.
struct ServiceState {
    config: Rc<Service>,
    running: u32,
    by_source: HashMap<IpAddr, u32>,
    /// Token bucket for the `rate` limit.
    tokens: f64,
    refilled: Instant,
    stats: Stats,
    log: EventLog,
}

/// A running engine.
struct Child {
    service: Rc<str>,
    /// The client; unknown for a TCP wait service (the engine accepts).
    remote: Option<SocketAddr>,
    started: Instant,
    /// For a wait service, the listener to watch again when this exits.
    waiting_on: Option<usize>,
}

/// Where a service's connection events are written.
enum EventLog {
    /// jawasd's own log (stderr).
    Main,
    File(std::fs::File),
    Syslog(libc::c_int),
}

/// The read end of an engine's captured stderr.
struct StderrPipe {
    fd: OwnedFd,
    service: Rc<str>,
    pid: libc::pid_t,
    partial: Vec<u8>,
}

enum Refusal {
    Access,
    MaxConnections,
    Instances,
    PerSource,
    Rate,
    AccessTimes,
    Load,
    Denied,
}

impl Refusal {
    /// The reason word xinetd writes in its FAIL lines.
    fn xinetd_reason(&self) -> &'static str {
        match self {
            Refusal::Access => "address",
            Refusal::AccessTimes => "time",
            Refusal::Load => "load",
            Refusal::MaxConnections => "process_limit",
            Refusal::Instances => "service_limit",
            Refusal::PerSource => "per_source_limit",
            Refusal::Rate => "cps",
            Refusal::Denied => "sensor",
        }
    }

    fn as_str(&self) -> &'static str {
        match self {
            Refusal::Access => "access",
            Refusal::MaxConnections => "max_connections",
            Refusal::Instances => "instances",
            Refusal::PerSource => "per_source",
            Refusal::Rate => "rate",
            Refusal::AccessTimes => "access_times",
            Refusal::Load => "max_load",
            Refusal::Denied => "deny_time",
        }
    }
}

/// Loads the configuration again (TOML or xinetd) for a reload; the
/// error is the text to log.
pub type Loader = Box<dyn Fn(&Env<'_>) -> Result<Config, String>>;

pub struct Server {
    config: Config,
    poller: Poller,
    signals: SignalFd,
    listeners: HashMap<usize, Listener>,
    services: HashMap<Rc<str>, ServiceState>,
    children: HashMap<libc::pid_t, Child>,
    pipes: HashMap<usize, StderrPipe>,
    spawner: Spawner,
    next_key: usize,
    /// Set while accept is paused after EMFILE and the like.
    paused_until: Option<Instant>,
    backoff: Duration,
    /// Set once SIGTERM/SIGINT arrived: the moment engines get SIGKILL.
    stopping: Option<Instant>,
    killed: bool,
    /// Where engine names were looked up, kept for reloads.
    exe_dir: Option<std::path::PathBuf>,
    /// Clients that touched a `sensor` service, denied until the instant.
    denied: HashMap<IpAddr, Instant>,
    /// The 1-minute load average and when it was read, for `max_load`.
    load: (f64, Option<Instant>),
    /// How to load the config again on SIGHUP.
    loader: Loader,
}

/// Signals read through the signalfd.
pub const HANDLED_SIGNALS: [libc::c_int; 6] = [
    libc::SIGQUIT,
    libc::SIGCHLD,
    libc::SIGHUP,
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGUSR1,
];

/// Start-up failures, mapped to exit codes by `main`.
#[derive(Debug)]
pub enum StartError {
    Bind(SocketAddr, io::Error),
    System(&'static str, io::Error),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Bind(a, e) => write!(f, "unable to bind {a}: {}", crate::errno_text(e)),
            StartError::System(what, e) => write!(f, "unable to {what}: {}", crate::errno_text(e)),
        }
    }
}

impl Server {
    /// Binds every listener of `config` and prepares the loop; signals must
    /// already be blocked (see `spawn::prepare_signals`).
    pub fn new(
        config: Config,
        exe_dir: Option<std::path::PathBuf>,
        loader: Loader,
    ) -> Result<Server, StartError> {
        let poller =
            Poller::new().map_err(|e| StartError::System("create the epoll instance", e))?;
        let mut mask = SigSet::empty();
        for s in HANDLED_SIGNALS {
            mask.add(Signal::try_from(s).expect("known signal"));
        }
        let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(|e| StartError::System("create the signalfd", e.into()))?;
        // SAFETY: the signalfd lives as long as the poller (both are fields of
        // Server and never replaced).
        unsafe {
            poller.add_with_mode(
                signals.as_fd().as_raw_fd(),
                Event::readable(SIGNAL_KEY),
                PollMode::Level,
            )
        }
        .map_err(|e| StartError::System("watch the signalfd", e))?;
        let mut server = Server {
            config: config.clone(),
            poller,
            signals,
            listeners: HashMap::new(),
            services: HashMap::new(),
            children: HashMap::new(),
            pipes: HashMap::new(),
            spawner: Spawner::new(),
            next_key: SIGNAL_KEY + 1,
            paused_until: None,
            backoff: Duration::from_millis(50),
            stopping: None,
            killed: false,
            exe_dir,
            denied: HashMap::new(),
            load: (0.0, None),
            loader,
        };
        server.apply(config)?;
        Ok(server)
    }

    /// Makes `config` the running one: binds new addresses, keeps sockets
    /// whose address is unchanged, closes the rest. On a bind failure
    /// nothing changes.
    fn apply(&mut self, config: Config) -> Result<(), StartError> {
        // A socket is kept for the same configured address; for port 0
        // (any free port) only within the same service.
        let reuse_key = |b: &Binding, service: &str| -> (Binding, String) {
            let owner = if b.addr.port() == 0 {
                service.to_string()
            } else {
                String::new()
            };
            (b.clone(), owner)
        };
        let mut kept: HashMap<(Binding, String), (usize, Listener)> = HashMap::new();
        for (key, l) in self.listeners.drain() {
            kept.insert(reuse_key(&l.binding, &l.service), (key, l));
        }
        let mut next: HashMap<usize, Listener> = HashMap::new();
        let mut fresh: Vec<usize> = Vec::new();
        let mut failure = None;
        'outer: for svc in &config.services {
            let name: Rc<str> = Rc::from(svc.name.as_str());
            for addr in &svc.listen {
                let binding = Binding {
                    addr: *addr,
                    udp: svc.protocol == Protocol::Udp,
                    wait: svc.wait,
                };
                // Same configured address, or the address a port-0 socket
                // was actually given.
                let found = kept.remove(&reuse_key(&binding, &svc.name)).or_else(|| {
                    let k = kept
                        .iter()
                        .find(|(_, (_, l))| {
                            l.local == *addr
                                && l.binding.udp == binding.udp
                                && l.binding.wait == binding.wait
                        })
                        .map(|(k, _)| k.clone())?;
                    kept.remove(&k)
                });
                if let Some((key, mut l)) = found {
                    l.service = name.clone();
                    l.binding = binding;
                    next.insert(key, l);
                    continue;
                }
                match bind(&binding) {
                    Ok(socket) => {
                        let local = socket.local_addr().unwrap_or(*addr);
                        let key = self.next_key;
                        self.next_key += 1;
                        fresh.push(key);
                        next.insert(
                            key,
                            Listener {
                                socket,
                                binding,
                                local,
                                service: name.clone(),
                            },
                        );
                    }
                    Err(e) => {
                        failure = Some(StartError::Bind(*addr, e));
                        break 'outer;
                    }
                }
            }
        }
        if let Some(e) = failure {
            // Put the old set back untouched; the fresh sockets close on drop.
            for key in fresh {
                next.remove(&key);
            }
            for (_, (key, l)) in kept {
                next.insert(key, l);
            }
            self.listeners = next;
            return Err(e);
        }
        // Old listeners not kept: stop watching, then close by dropping.
        for (_, (_, l)) in kept {
            let _ = self.poller.delete(l.socket.fd());
            info!("close svc={} listen={}", l.service, l.local);
        }
        for key in &fresh {
            let l = &next[key];
            // SAFETY: the socket is deleted from the poller before it is
            // dropped (above, on reload, and in `shutdown`).
            if let Err(e) = unsafe {
                self.poller.add_with_mode(
                    l.socket.fd().as_raw_fd(),
                    Event::readable(*key),
                    PollMode::Level,
                )
            } {
                return Err(StartError::System("watch a listener", e));
            }
        }
        self.listeners = next;
        // A kept wait listener whose engine still runs stays unwatched.
        for child in self.children.values() {
            if let Some(l) = child.waiting_on.and_then(|k| self.listeners.get(&k)) {
                let _ =
                    self.poller
                        .modify_with_mode(l.socket.fd(), Event::none(0), PollMode::Level);
            }
        }

        // Services: keep the rate bucket and stats of a name that stays;
        // recount running engines from the table of children.
        let mut old = std::mem::take(&mut self.services);
        let now = Instant::now();
        for svc in &config.services {
            let name: Rc<str> = Rc::from(svc.name.as_str());
            let (tokens, refilled, stats) = match old.remove(&name) {
                Some(s) => (s.tokens, s.refilled, s.stats),
                None => (
                    svc.rate.map(|r| f64::from(r.burst)).unwrap_or(0.0),
                    now,
                    Stats::default(),
                ),
            };
            self.services.insert(
                name,
                ServiceState {
                    config: Rc::new(svc.clone()),
                    running: 0,
                    by_source: HashMap::new(),
                    tokens,
                    refilled,
                    stats,
                    log: event_log(svc),
                },
            );
        }
        for child in self.children.values() {
            if let Some(s) = self.services.get_mut(&child.service) {
                s.running += 1;
                if let Some(r) = child.remote {
                    *s.by_source.entry(r.ip().to_canonical()).or_insert(0) += 1;
                }
            }
        }
        self.config = config;
        Ok(())
    }

    /// The one line that tells tests and supervisors jawasd is up.
    pub fn log_ready(&self) {
        let mut parts = Vec::new();
        for svc in &self.config.services {
            let mut addrs: Vec<String> = self
                .listeners
                .values()
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
                if self.children.is_empty() && (self.pipes.is_empty() || Instant::now() >= deadline)
                {
                    info!("exit engines=0");
                    return Ok(());
                }
            }
            let timeout = self.timeout();
            events.clear();
            match self.poller.wait(&mut events, timeout) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for ev in events.iter() {
                match ev.key {
                    SIGNAL_KEY => self.signals_ready(),
                    key if self.listeners.contains_key(&key) => self.accept_ready(key),
                    key if self.pipes.contains_key(&key) => self.pipe_ready(key),
                    _ => {}
                }
            }
            self.timers();
        }
    }

    fn timeout(&self) -> Option<Duration> {
        let now = Instant::now();
        let stop = self
            .stopping
            .filter(|_| !self.killed || self.children.is_empty());
        [self.paused_until, stop]
            .into_iter()
            .flatten()
            .map(|t| t.saturating_duration_since(now))
            .min()
    }

    fn timers(&mut self) {
        let now = Instant::now();
        if self.paused_until.is_some_and(|t| t <= now) {
            self.paused_until = None;
            if self.stopping.is_none() {
                for (key, l) in &self.listeners {
                    if !self.children.values().any(|c| c.waiting_on == Some(*key)) {
                        let _ = self.poller.modify_with_mode(
                            l.socket.fd(),
                            Event::readable(*key),
                            PollMode::Level,
                        );
                    }
                }
            }
        }
        if let Some(deadline) = self.stopping {
            if !self.killed && deadline <= now {
                warn!(
                    "shutdown grace over; killing engines={}",
                    self.children.len()
                );
                self.kill_all(libc::SIGKILL);
                self.killed = true;
            }
        }
    }

    fn signals_ready(&mut self) {
        loop {
            let sig = match self.signals.read_signal() {
                Ok(Some(info)) => info.ssi_signo as libc::c_int,
                Ok(None) => return,
                Err(e) => {
                    error!("signalfd read failed: {}", e.desc());
                    return;
                }
            };
            match sig {
                libc::SIGCHLD => self.reap(),
                libc::SIGHUP => self.reload(),
                libc::SIGTERM | libc::SIGINT | libc::SIGQUIT => self.shutdown(sig),
                libc::SIGUSR1 => self.dump(),
                _ => {}
            }
        }
    }

    fn accept_ready(&mut self, key: usize) {
        let Some(listener) = self.listeners.get(&key) else {
            return;
        };
        if listener.binding.wait {
            self.hand_over(key);
            return;
        }
        if listener.binding.udp {
            self.udp_per_sender(key);
            return;
        }
        for _ in 0..ACCEPT_BATCH {
            let Some(listener) = self.listeners.get(&key) else {
                return;
            };
            let Socket::Tcp(socket) = &listener.socket else {
                return;
            };
            // A listener bound to one address knows the local address of
            // every connection; only a wildcard one must ask (getsockname).
            let local = (!listener.local.ip().is_unspecified()).then_some(listener.local);
            match socket.accept() {
                Ok((stream, remote)) => {
                    let service = listener.service.clone();
                    self.backoff = Duration::from_millis(50);
                    self.admit(&service, stream, remote, local);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if is_resource_exhaustion(&e) => {
                    self.pause_accepting(&e);
                    return;
                }
                // ECONNABORTED, EPROTO, EPERM (firewall) and friends concern
                // one connection only.
                Err(e) => debug!("accept failed: {e}"),
            }
        }
    }

    /// A wait service is ready: its socket itself goes to one engine, and
    /// the listener is not watched until that engine exits. For UDP the
    /// first datagram's sender is checked against the access rules first
    /// (its datagram is dropped when refused).
    fn hand_over(&mut self, key: usize) {
        let Some(listener) = self.listeners.get(&key) else {
            return;
        };
        let service = listener.service.clone();
        let fd = listener.socket.fd().as_raw_fd();
        let remote = match &listener.socket {
            Socket::Udp(u) => match peek_sender(u) {
                Ok(from) => Some(from),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => None,
            },
            Socket::Tcp(_) => None,
        };
        if let Some(from) = remote {
            if let Some(r) = self.check(&service, from.ip().to_canonical()) {
                self.refused(&service, Some(from), &r);
                // Drop the refused datagram so it is not seen again.
                if let Some(Socket::Udp(u)) = self.listeners.get(&key).map(|l| &l.socket) {
                    let mut buf = [0u8; 1];
                    let _ = u.recv_from(&mut buf);
                }
                return;
            }
        }
        let Some(svc) = self.services.get(&service).map(|s| s.config.clone()) else {
            return;
        };
        let local = self.listeners[&key].local;
        match self.spawn(&svc, fd, Some(local), remote) {
            Ok((pid, pipe)) => {
                if let Some(l) = self.listeners.get(&key) {
                    let _ = self.poller.modify_with_mode(
                        l.socket.fd(),
                        Event::none(0),
                        PollMode::Level,
                    );
                }
                self.started(&service, pid, remote, Some(key), pipe);
            }
            Err(e) => {
                self.spawn_failed(&service, remote, &e);
                // Do not spin on a socket we cannot serve: unwatch it
                // for a while, as after EMFILE.
                self.pause_accepting(&e.error);
            }
        }
    }

    /// Out of descriptors or memory: stop watching listeners for a while
    /// instead of spinning on a level-triggered event we cannot serve.
    /// Pending connections wait in the kernel's backlog.
    fn pause_accepting(&mut self, e: &io::Error) {
        warn!(
            "accept paused for {}ms: {} (engines={})",
            self.backoff.as_millis(),
            crate::errno_text(e),
            self.children.len()
        );
        for l in self.listeners.values() {
            let _ = self
                .poller
                .modify_with_mode(l.socket.fd(), Event::none(0), PollMode::Level);
        }
        self.paused_until = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(Duration::from_secs(1));
    }

    /// A UDP service without wait: one engine per datagram sender, as
    /// xinetd and udpsvd do. The bound socket is connected to the sender
    /// and handed to the engine, datagram still queued, so that sender's
    /// later datagrams reach that engine too; the listener continues on a
    /// fresh socket bound to the same address.
    fn udp_per_sender(&mut self, key: usize) {
        let Some(listener) = self.listeners.get(&key) else {
            return;
        };
        let Socket::Udp(socket) = &listener.socket else {
            return;
        };
        let from = match peek_sender(socket) {
            Ok(from) => from,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(_) => {
                let _ = socket.recv_from(&mut [0u8; 1]);
                return;
            }
        };
        let service = listener.service.clone();
        let drop_datagram = |l: &Listener| {
            if let Socket::Udp(u) = &l.socket {
                let _ = u.recv_from(&mut [0u8; 1]);
            }
        };
        if let Some(r) = self.check(&service, from.ip().to_canonical()) {
            self.refused(&service, Some(from), &r);
            drop_datagram(&self.listeners[&key]);
            return;
        }
        let fresh = match bind(&self.listeners[&key].binding) {
            Ok(s) => s,
            Err(e) => {
                // Without a second socket we cannot hand this one over;
                // serve nobody rather than drop the listener.
                warn!(
                    "svc={service} unable to bind a fresh socket: {}",
                    crate::errno_text(&e)
                );
                drop_datagram(&self.listeners[&key]);
                return;
            }
        };
        let listener = self.listeners.get_mut(&key).expect("checked above");
        let _ = self.poller.delete(listener.socket.fd());
        let old = std::mem::replace(&mut listener.socket, fresh);
        // SAFETY: the fresh socket is deleted from the poller before it is
        // dropped, like every listener.
        let _ = unsafe {
            self.poller.add_with_mode(
                listener.socket.fd().as_raw_fd(),
                Event::readable(key),
                PollMode::Level,
            )
        };
        let Socket::Udp(old) = old else { return };
        if let Err(e) = old.connect(from) {
            warn!(
                "svc={service} remote={from} connect failed: {}",
                crate::errno_text(&e)
            );
            return;
        }
        let Some(svc) = self.services.get(&service).map(|s| s.config.clone()) else {
            return;
        };
        let local = old.local_addr().ok();
        match self.spawn(&svc, old.as_raw_fd(), local, Some(from)) {
            Ok((pid, pipe)) => self.started(&service, pid, Some(from), None, pipe),
            Err(e) => self.spawn_failed(&service, Some(from), &e),
        }
        // `old` drops here: the engine holds the connected socket.
    }

    /// Which rule, if any, refuses a client of `service` now. Consumes a
    /// rate token when it admits.
    fn check(&mut self, service: &Rc<str>, ip: IpAddr) -> Option<Refusal> {
        let total = self.children.len();
        let max_total = self.config.server.max_connections;
        let now = Instant::now();
        if let Some(until) = self.denied.get(&ip) {
            if *until > now {
                return Some(Refusal::Denied);
            }
            self.denied.remove(&ip);
        }
        let svc = self.services.get(service)?.config.clone();
        // Only services that set max_load pay for reading the load.
        let load = if svc.max_load.is_some() {
            self.load_average(now)
        } else {
            0.0
        };
        let state = self.services.get_mut(service)?;
        if svc.sensor {
            if let Some(d) = svc.deny_time.filter(|d| !d.is_zero()) {
                self.denied.insert(ip, now + d);
            }
            return Some(Refusal::Denied);
        }
        if !svc.acl.allows(ip) {
            Some(Refusal::Access)
        } else if !svc.access_times.is_empty() && !within_access_times(&svc.access_times) {
            Some(Refusal::AccessTimes)
        } else if svc.max_load.is_some_and(|m| load >= m) {
            Some(Refusal::Load)
        } else if max_total.is_some_and(|m| total >= m as usize) {
            Some(Refusal::MaxConnections)
        } else if svc.instances.is_some_and(|m| state.running >= m) {
            Some(Refusal::Instances)
        } else if svc
            .per_source
            .is_some_and(|m| state.by_source.get(&ip).copied().unwrap_or(0) >= m)
        {
            Some(Refusal::PerSource)
        } else if let Some(rate) = svc.rate {
            let elapsed = now.duration_since(state.refilled).as_secs_f64();
            state.tokens = (state.tokens + elapsed * rate.per_second).min(f64::from(rate.burst));
            state.refilled = now;
            if state.tokens < 1.0 {
                Some(Refusal::Rate)
            } else {
                state.tokens -= 1.0;
                None
            }
        } else {
            None
        }
    }

    /// The 1-minute load average, read from /proc at most once a second.
    fn load_average(&mut self, now: Instant) -> f64 {
        if self
            .load
            .1
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            return self.load.0;
        }
        let value = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|t| t.split_whitespace().next().and_then(|v| v.parse().ok()))
            .unwrap_or(0.0);
        self.load = (value, Some(now));
        value
    }

    /// Decides whether a connection gets an engine, and starts it.
    fn admit(
        &mut self,
        service: &Rc<str>,
        stream: TcpStream,
        remote: SocketAddr,
        local: Option<SocketAddr>,
    ) {
        let Some(svc) = self.services.get(service).map(|s| s.config.clone()) else {
            return;
        };
        if let Some(banner) = &svc.banner {
            send_banner(&stream, banner);
        }
        let ip = remote.ip().to_canonical();
        if let Some(r) = self.check(service, ip) {
            self.refused(service, Some(remote), &r);
            if let Some(banner) = &svc.limit_banner {
                send_banner(&stream, banner);
            }
            return;
        }
        if svc.nodelay {
            let _ = stream.set_nodelay(true);
        }
        if svc.keepalive {
            let _ =
                nix::sys::socket::setsockopt(&stream, nix::sys::socket::sockopt::KeepAlive, &true);
        }
        if let Some(banner) = &svc.banner_success {
            send_banner(&stream, banner);
        }
        let local = local.or_else(|| stream.local_addr().ok());
        match self.spawn(&svc, stream.as_raw_fd(), local, Some(remote)) {
            Ok((pid, pipe)) => self.started(service, pid, Some(remote), None, pipe),
            Err(e) => self.spawn_failed(service, Some(remote), &e),
        }
        // `stream` drops here: jawasd's copy of the connection is closed.
    }

    /// Records a running engine.
    fn started(
        &mut self,
        service: &Rc<str>,
        pid: libc::pid_t,
        remote: Option<SocketAddr>,
        waiting_on: Option<usize>,
        pipe: Option<OwnedFd>,
    ) {
        if let Some(state) = self.services.get_mut(service) {
            state.stats.accepted += 1;
            state.running += 1;
            if let Some(r) = remote {
                *state.by_source.entry(r.ip().to_canonical()).or_insert(0) += 1;
            }
        }
        debug!("accept svc={service} pid={pid} remote={}", show(remote));
        if let Some(state) = self
            .services
            .get_mut(service)
            .filter(|s| s.config.xinetd_log)
        {
            let fields = state.config.log_on_success.as_deref();
            let want = |f: &str| fields.is_none_or(|list| list.iter().any(|x| x == f));
            if !fields.is_some_and(|f| f.is_empty()) {
                let mut line = format!("START: {service}");
                if want("PID") {
                    line.push_str(&format!(" pid={pid}"));
                }
                if let (true, Some(r)) = (want("HOST"), remote) {
                    line.push_str(&format!(" from={}", r.ip().to_canonical()));
                }
                state.log.write(log::Level::Info, &line);
            }
        }
        self.children.insert(
            pid,
            Child {
                service: service.clone(),
                remote,
                started: Instant::now(),
                waiting_on,
            },
        );
        if let Some(fd) = pipe {
            self.watch_pipe(fd, service.clone(), pid);
        }
    }

    fn refused(&mut self, service: &Rc<str>, remote: Option<SocketAddr>, r: &Refusal) {
        let Some(state) = self.services.get_mut(service) else {
            return;
        };
        state.stats.refused += 1;
        let fields = state.config.log_on_failure.as_deref();
        let host = fields.is_none_or(|f| f.iter().any(|x| x == "HOST"));
        let line = if state.config.xinetd_log {
            // xinetd's own line, which log watchers such as fail2ban's
            // xinetd-fail filter parse.
            let from = remote
                .filter(|_| host)
                .map(|r| format!(" from={}", r.ip().to_canonical()))
                .unwrap_or_default();
            format!("FAIL: {service} {}{from}", r.xinetd_reason())
        } else {
            let mut line = format!("refuse svc={service}");
            if host {
                line.push_str(&format!(" remote={}", show(remote)));
            }
            line.push_str(&format!(" reason={}", r.as_str()));
            line
        };
        // log_on_failure = [] still logs that an attempt failed, as xinetd's
        // ATTEMPT is implied.
        state.log.write(log::Level::Info, &line);
    }

    fn spawn_failed(
        &mut self,
        service: &Rc<str>,
        remote: Option<SocketAddr>,
        e: &spawn::SpawnError,
    ) {
        if let Some(state) = self.services.get_mut(service) {
            state.stats.spawn_failed += 1;
        }
        error!(
            "spawn-failed svc={service} remote={} step={} error=\"{}\"",
            show(remote),
            e.step,
            crate::errno_text(&e.error)
        );
    }

    /// Prepares the engine's argv, environment and fds, and spawns it with
    /// `socket` as fds 0 and 1.
    fn spawn(
        &mut self,
        svc: &Service,
        socket: RawFd,
        local: Option<SocketAddr>,
        remote: Option<SocketAddr>,
    ) -> Result<(libc::pid_t, Option<OwnedFd>), spawn::SpawnError> {
        let conn_env = connection_env(svc, local, remote);
        let argv = spawn::pointers(&svc.argv);
        let envp = spawn::pointers(svc.env.iter().chain(conn_env.iter()));
        let (read_end, write_end) = if svc.stderr == StderrMode::Capture {
            let (r, w) =
                nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
                    .map_err(|e| spawn::SpawnError {
                        step: "pipe",
                        error: e.into(),
                    })?;
            (Some(r), Some(w))
        } else {
            (None, None)
        };
        let mut plan = Plan::new(&svc.engine, &argv, &envp, socket);
        plan.stderr = match svc.stderr {
            StderrMode::Capture => write_end.as_ref().map(|w| w.as_raw_fd()),
            StderrMode::Socket => Some(socket),
            StderrMode::Log => None,
        };
        plan.creds = svc.creds.as_ref();
        plan.rlimits = &svc.rlimits;
        plan.nice = svc.nice;
        plan.chroot = svc.chroot.as_deref();
        plan.workdir = svc.workdir.as_deref();
        plan.umask = svc.umask;
        // The write end must reach only the engine: the child got its copy
        // as fd 2 across exec, ours is dropped when this function returns.
        // The engine's stdin was blocking from accept; O_NONBLOCK was only
        // set on the read end, which stays here.
        let pid = self.spawner.spawn(&mut plan)?;
        Ok((pid, read_end))
    }

    fn watch_pipe(&mut self, fd: OwnedFd, service: Rc<str>, pid: libc::pid_t) {
        let key = self.next_key;
        self.next_key += 1;
        // SAFETY: the pipe is deleted from the poller before it is dropped
        // (in `pipe_ready` at EOF).
        if let Err(e) = unsafe {
            self.poller
                .add_with_mode(&fd, Event::readable(key), PollMode::Level)
        } {
            warn!("stderr capture svc={service} pid={pid} unavailable: {e}");
            return;
        }
        self.pipes.insert(
            key,
            StderrPipe {
                fd,
                service,
                pid,
                partial: Vec::new(),
            },
        );
    }

    fn pipe_ready(&mut self, key: usize) {
        let Some(pipe) = self.pipes.get_mut(&key) else {
            return;
        };
        let mut buf = [0u8; 16384];
        let eof = loop {
            match nix::unistd::read(pipe.fd.as_raw_fd(), &mut buf) {
                Ok(0) => break true,
                Ok(n) => {
                    pipe.partial.extend_from_slice(&buf[..n]);
                    while let Some(pos) = pipe.partial.iter().position(|&b| b == b'\n') {
                        let line: Vec<u8> = pipe.partial.drain(..=pos).collect();
                        log_engine_line(&pipe.service, pipe.pid, &line[..line.len() - 1]);
                    }
                    if pipe.partial.len() > MAX_LOG_LINE {
                        let line = std::mem::take(&mut pipe.partial);
                        log_engine_line(&pipe.service, pipe.pid, &line);
                    }
                }
                Err(nix::errno::Errno::EAGAIN) => break false,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => break true,
            }
        };
        if eof {
            if let Some(pipe) = self.pipes.remove(&key) {
                if !pipe.partial.is_empty() {
                    log_engine_line(&pipe.service, pipe.pid, &pipe.partial);
                }
                let _ = self.poller.delete(&pipe.fd);
            }
        }
    }

    fn reap(&mut self) {
        while let Some(exit) = spawn::reap() {
            let Some(child) = self.children.remove(&exit.pid) else {
                continue;
            };
            if let Some(key) = child.waiting_on {
                if let (Some(l), None) = (self.listeners.get(&key), self.stopping) {
                    let _ = self.poller.modify_with_mode(
                        l.socket.fd(),
                        Event::readable(key),
                        PollMode::Level,
                    );
                }
            }
            let Some(state) = self.services.get_mut(&child.service) else {
                info!(
                    "done svc={} pid={} {}",
                    child.service,
                    exit.pid,
                    spawn::describe_status(exit.status)
                );
                continue;
            };
            state.running = state.running.saturating_sub(1);
            if let Some(ip) = child.remote.map(|r| r.ip().to_canonical()) {
                if let Some(n) = state.by_source.get_mut(&ip) {
                    *n -= 1;
                    if *n == 0 {
                        state.by_source.remove(&ip);
                    }
                }
            }
            let fields = state.config.log_on_success.as_deref();
            let want = |f: &str| fields.is_none_or(|list| list.iter().any(|x| x == f));
            if fields.is_some_and(|f| f.is_empty()) {
                continue;
            }
            if state.config.xinetd_log {
                let mut line = format!("EXIT: {}", child.service);
                if want("EXIT") {
                    let status = exit.status;
                    if libc::WIFEXITED(status) {
                        line.push_str(&format!(" status={}", libc::WEXITSTATUS(status)));
                    } else {
                        line.push_str(&format!(" signal={}", libc::WTERMSIG(status)));
                    }
                }
                if want("PID") {
                    line.push_str(&format!(" pid={}", exit.pid));
                }
                if want("DURATION") {
                    line.push_str(&format!(
                        " duration={}(sec)",
                        child.started.elapsed().as_secs()
                    ));
                }
                state.log.write(log::Level::Info, &line);
                continue;
            }
            let mut line = format!("done svc={}", child.service);
            if want("PID") {
                line.push_str(&format!(" pid={}", exit.pid));
            }
            if want("HOST") {
                line.push_str(&format!(" remote={}", show(child.remote)));
            }
            if want("EXIT") {
                line.push_str(&format!(" {}", spawn::describe_status(exit.status)));
            }
            if want("DURATION") {
                line.push_str(&format!(
                    " duration={:.3}s",
                    child.started.elapsed().as_secs_f64()
                ));
            }
            state.log.write(log::Level::Info, &line);
        }
    }

    fn reload(&mut self) {
        if self.stopping.is_some() {
            return;
        }
        let path = self.config.path.clone();
        info!("reload config={}", path.display());
        let path_var = std::env::var_os("PATH");
        let env = Env {
            exe_dir: self.exe_dir.as_deref(),
            path_var: path_var.as_deref(),
        };
        match (self.loader)(&env) {
            Err(errors) => {
                for e in errors.lines() {
                    error!("reload failed: {e}");
                }
                error!("reload failed: keeping the running configuration");
            }
            Ok(config) => match self.apply(config) {
                Ok(()) => self.log_ready(),
                Err(e) => error!("reload failed: {e}; keeping the running configuration"),
            },
        }
    }

    fn shutdown(&mut self, sig: libc::c_int) {
        if self.stopping.is_some() {
            // A second request: do not wait out the grace.
            warn!(
                "second stop signal; killing engines={}",
                self.children.len()
            );
            self.kill_all(libc::SIGKILL);
            self.killed = true;
            return;
        }
        let name = Signal::try_from(sig).map(|s| s.as_str()).unwrap_or("?");
        info!(
            "stop signal={name} engines={} grace={:.1}s",
            self.children.len(),
            self.config.server.shutdown_grace.as_secs_f64()
        );
        for (_, l) in self.listeners.drain() {
            let _ = self.poller.delete(l.socket.fd());
        }
        self.kill_all(libc::SIGTERM);
        self.stopping = Some(Instant::now() + self.config.server.shutdown_grace);
        self.dump();
    }

    fn kill_all(&self, sig: libc::c_int) {
        for pid in self.children.keys() {
            spawn::signal_group(*pid, sig);
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
                s.running, s.stats.accepted, s.stats.refused, s.stats.spawn_failed
            );
        }
    }
}

fn is_resource_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// A close-on-exec socket bound to `b.addr`: a TCP listener, or a UDP
/// socket. Sockets the loop accepts on are non-blocking; a wait service's
/// socket is blocking, since its engine reads it (the flag is shared with
/// the engine's copy). IPv6 sockets are IPv6-only, so `[::]:80` and
/// `0.0.0.0:80` can both be configured.
fn bind(b: &Binding) -> io::Result<Socket> {
    use nix::sys::socket::{self, sockopt, AddressFamily, SockFlag, SockType, SockaddrStorage};
    let addr = b.addr;
    let family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let kind = if b.udp {
        SockType::Datagram
    } else {
        SockType::Stream
    };
    let mut flags = SockFlag::SOCK_CLOEXEC;
    // Only a TCP listener the loop accepts on is non-blocking; UDP sockets
    // end up in an engine (the loop only peeks, with MSG_DONTWAIT).
    if !b.wait && !b.udp {
        flags |= SockFlag::SOCK_NONBLOCK;
    }
    let fd = socket::socket(family, kind, flags, None)?;
    socket::setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    if addr.is_ipv6() {
        socket::setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
    }
    socket::bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))?;
    let raw = std::os::fd::IntoRawFd::into_raw_fd(fd);
    if b.udp {
        // SAFETY: `raw` is a bound UDP socket we own; ownership moves.
        return Ok(Socket::Udp(unsafe { UdpSocket::from_raw_fd(raw) }));
    }
    // SAFETY: as above, a bound TCP socket.
    let listener = unsafe { TcpListener::from_raw_fd(raw) };
    socket::listen(
        &listener,
        socket::Backlog::new(BACKLOG).unwrap_or(socket::Backlog::MAXCONN),
    )?;
    Ok(Socket::Tcp(listener))
}

/// The sender of the next queued datagram, without taking it and without
/// blocking (the socket itself is blocking: it is meant for an engine).
fn peek_sender(u: &UdpSocket) -> io::Result<SocketAddr> {
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let mut byte = 0u8;
    // SAFETY: recvfrom into a byte and a sockaddr_storage we own, with
    // their true sizes.
    let n = unsafe {
        libc::recvfrom(
            u.as_raw_fd(),
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
            (&mut storage as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel filled `len` bytes of a sockaddr_storage.
    let addr = unsafe {
        <nix::sys::socket::SockaddrStorage as nix::sys::socket::SockaddrLike>::from_raw(
            (&storage as *const libc::sockaddr_storage).cast(),
            Some(len),
        )
    };
    let addr = addr.ok_or_else(|| io::Error::other("unknown address family"))?;
    if let Some(v4) = addr.as_sockaddr_in() {
        return Ok(SocketAddr::V4((*v4).into()));
    }
    if let Some(v6) = addr.as_sockaddr_in6() {
        return Ok(SocketAddr::V6((*v6).into()));
    }
    Err(io::Error::other("not an IP address"))
}

/// Writes a banner without blocking: the socket's buffer is empty, and a
/// client already gone costs nothing.
fn send_banner(stream: &TcpStream, banner: &[u8]) {
    // SAFETY: send on a socket we hold, from a buffer we own.
    unsafe {
        libc::send(
            stream.as_raw_fd(),
            banner.as_ptr().cast(),
            banner.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
}

fn show(remote: Option<SocketAddr>) -> String {
    remote.map(|r| r.to_string()).unwrap_or_else(|| "-".into())
}

/// Whether the local time of day falls in one of the ranges (minutes;
/// a range may wrap past midnight; bounds are included, as in xinetd).
fn within_access_times(ranges: &[(u16, u16)]) -> bool {
    // SAFETY: time and localtime_r with out-parameters we own.
    let minute = unsafe {
        let t = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&t, &mut tm);
        (tm.tm_hour * 60 + tm.tm_min) as u16
    };
    ranges.iter().any(|&(a, b)| {
        if a <= b {
            a <= minute && minute <= b
        } else {
            minute >= a || minute <= b
        }
    })
}

/// Opens a service's event log; failures fall back to the main log.
fn event_log(svc: &Service) -> EventLog {
    if let Some(path) = &svc.log_file {
        match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            Ok(f) => return EventLog::File(f),
            Err(e) => warn!(
                "svc={} log_file {}: {}; logging to stderr",
                svc.name,
                path.display(),
                crate::errno_text(&e)
            ),
        }
    }
    if let Some((facility, level)) = svc.log_syslog {
        // SAFETY: openlog keeps the pointer; the ident is a static C string.
        unsafe {
            libc::openlog(
                c"jawasd".as_ptr(),
                libc::LOG_PID | libc::LOG_NDELAY,
                facility,
            )
        };
        return EventLog::Syslog(facility | level);
    }
    EventLog::Main
}

impl EventLog {
    fn write(&mut self, level: log::Level, line: &str) {
        match self {
            EventLog::Main => log::log!(level, "{line}"),
            EventLog::File(f) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let _ = writeln!(f, "{now} {line}");
            }
            EventLog::Syslog(priority) => {
                if let Ok(c) = CString::new(line) {
                    // SAFETY: a "%s" format with one C string argument.
                    unsafe { libc::syslog(*priority, c"%s".as_ptr(), c.as_ptr()) };
                }
            }
        }
    }
}

/// The per-connection environment: UCSPI's for a TCP client, REMOTE_HOST
/// when asked, and JAWAS_SERVICE always.
fn connection_env(
    svc: &Service,
    local: Option<SocketAddr>,
    remote: Option<SocketAddr>,
) -> Vec<CString> {
    let mut vars =
        match (svc.protocol, local, remote) {
            (Protocol::Tcp, Some(l), Some(r)) => ucspi_env(&svc.name, l, r),
            _ => vec![CString::new(format!("JAWAS_SERVICE={}", svc.name))
                .expect("no NUL in a service name")],
        };
    if let (true, Some(r)) = (svc.remote_host_env, remote) {
        vars.push(
            CString::new(format!("REMOTE_HOST={}", r.ip().to_canonical()))
                .expect("no NUL in an address"),
        );
    }
    vars
}

/// The UCSPI variables (tcp-environ(5)) plus JAWAS_SERVICE. For IPv6, as
/// ucspi-tcp6 does: PROTO=TCP6, compact addresses in TCPLOCALIP and
/// TCPREMOTEIP, and the TCP6* names besides.
fn ucspi_env(service: &str, local: SocketAddr, remote: SocketAddr) -> Vec<CString> {
    let local_ip = local.ip().to_canonical();
    let remote_ip = remote.ip().to_canonical();
    let mut vars = vec![
        format!("JAWAS_SERVICE={service}"),
        format!("TCPLOCALIP={local_ip}"),
        format!("TCPLOCALPORT={}", local.port()),
        format!("TCPREMOTEIP={remote_ip}"),
        format!("TCPREMOTEPORT={}", remote.port()),
    ];
    if remote_ip.is_ipv6() {
        vars.push("PROTO=TCP6".into());
        vars.push(format!("TCP6LOCALIP={local_ip}"));
        vars.push(format!("TCP6LOCALPORT={}", local.port()));
        vars.push(format!("TCP6REMOTEIP={remote_ip}"));
        vars.push(format!("TCP6REMOTEPORT={}", remote.port()));
    } else {
        vars.push("PROTO=TCP".into());
    }
    vars.into_iter()
        .map(|v| CString::new(v).expect("no NUL in formatted addresses"))
        .collect()
}

/// Logs one line an engine wrote to its captured stderr, escaped and capped.
fn log_engine_line(service: &str, pid: libc::pid_t, line: &[u8]) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    info!(
        "engine svc={service} pid={pid}: {}",
        crate::escape(line, MAX_LOG_LINE)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ucspi_env_cases() {
        let env = |l: &str, r: &str| -> Vec<String> {
            ucspi_env("web", l.parse().unwrap(), r.parse().unwrap())
                .into_iter()
                .map(|c| c.into_string().unwrap())
                .collect()
        };
        let v4 = env("127.0.0.1:80", "192.0.2.7:51514");
        for want in [
            "PROTO=TCP",
            "TCPREMOTEIP=192.0.2.7",
            "TCPREMOTEPORT=51514",
            "TCPLOCALPORT=80",
            "JAWAS_SERVICE=web",
        ] {
            assert!(v4.iter().any(|v| v == want), "{want} in {v4:?}");
        }
        let v6 = env("[::1]:80", "[2001:db8::7]:4000");
        for want in [
            "PROTO=TCP6",
            "TCPREMOTEIP=2001:db8::7",
            "TCP6REMOTEIP=2001:db8::7",
            "TCP6LOCALIP=::1",
        ] {
            assert!(v6.iter().any(|v| v == want), "{want} in {v6:?}");
        }
        let mapped = env("[::ffff:127.0.0.1]:80", "[::ffff:127.0.0.2]:9");
        assert!(
            mapped.iter().any(|v| v == "TCPREMOTEIP=127.0.0.2"),
            "{mapped:?}"
        );
        assert!(mapped.iter().any(|v| v == "PROTO=TCP"), "{mapped:?}");
    }
}
