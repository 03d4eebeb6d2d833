//! The configuration file: TOML text in, a checked `Config` out.
//!
//! Owns reading the file, validating every key, resolving what can be resolved
//! once (engine paths, user and group ids, the engine's base environment and
//! argv) so the accept path never does a lookup. It does not bind sockets.
//!
//! After parsing, a separate stage has the bundled engines check their own
//! arguments (`engine_check`), so their refusals are config errors too; those
//! checks are the only processes it starts.
//!
//! Invariants: a `Config` exists only if the file had no error; every error is
//! reported, not just the first, each as `FILE:LINE: KEY: message` on one
//! line; unknown keys are errors with a did-you-mean where one is close;
//! every number is finite and within `limits`, so nothing downstream can
//! overflow; no input panics, and work is linear in the file's size (line
//! numbers by binary search, `[defaults]` copies bounded).

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::acl::{Acl, Cidr};
use crate::engine_check::{self, Check, Verdict};

/// Runs engine checks: `engine_check::run`, or a stand-in in tests.
pub type Runner<'a> = dyn Fn(&[Check]) -> Vec<engine_check::Ran> + 'a;

/// Keys allowed in `[server]`.
const SERVER_KEYS: &[&str] = &[
    "max_connections",
    "shutdown_grace",
    "max_pending",
    "drain",
    "control",
    "control_mode",
];

/// Keys allowed in `[services.NAME]`; all but `listen` may also sit in `[defaults]`.
const SERVICE_KEYS: &[&str] = &[
    "listen",
    "engine",
    "args",
    "env",
    "pass_env",
    "instances",
    "per_source",
    "rate",
    "rate_burst",
    "per_source_rate",
    "per_source_rate_burst",
    "limit_banner",
    "only_from",
    "no_access",
    "user",
    "group",
    "workdir",
    "umask",
    "nice",
    "rlimit_as",
    "rlimit_cpu",
    "rlimit_nofile",
    "chroot",
    "capture_stderr",
    "disabled",
    "protocol",
    "wait",
    "stderr",
    "argv0",
    "groups",
    "banner",
    "banner_success",
    "access_times",
    "max_load",
    "nodelay",
    "keepalive",
    "rlimit_data",
    "rlimit_rss",
    "rlimit_stack",
    "remote_host_env",
    "sensor",
    "deny_time",
    "log_on_success",
    "log_on_failure",
    "log_file",
    "log_syslog",
    "log_format",
    "spawn",
    "zygote_fallback",
    "limit_wait",
    "proxy_protocol",
    "proxy_from",
    "proxy_timeout",
    "routes",
    "route_fallback",
    "route_timeout",
];

const TOP_KEYS: &[&str] = &["server", "defaults", "services"];

/// `limit_wait` when unset: longer than the moment between an engine
/// closing its connection and its exit being seen (a client that
/// reconnects at once comes in between), short enough that a client truly
/// over a limit hears so at once.
pub const DEFAULT_LIMIT_WAIT: Duration = Duration::from_millis(100);

/// PATH given to engines when the config neither sets nor passes one, so
/// shell engines can find ordinary commands without jawasd's own PATH leaking in.
pub const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The largest (and for rates the smallest) value of every number the file
/// may hold, so no later arithmetic on instants, rates or limits can
/// overflow. docs/config.md lists the same numbers.
pub mod limits {
    use std::time::Duration;

    const DAY: u64 = 24 * 3600;
    /// `server.shutdown_grace`.
    pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3600);
    /// `proxy_timeout`.
    pub const PROXY_TIMEOUT: Duration = Duration::from_secs(3600);
    /// `limit_wait`.
    pub const LIMIT_WAIT: Duration = Duration::from_secs(60);
    /// `deny_time` as a duration.
    pub const DENY_TIME: Duration = Duration::from_secs(365 * DAY);
    /// What `deny_time = "forever"` means: longer than any jawasd runs, yet
    /// far from the end of `Instant`'s range.
    pub const DENY_FOREVER: Duration = Duration::from_secs(u32::MAX as u64);
    /// `rlimit_cpu`.
    pub const RLIMIT_CPU: Duration = Duration::from_secs(365 * DAY);
    /// `rate` and `per_source_rate`, connections per second.
    pub const RATE_MIN: f64 = 0.001;
    pub const RATE_MAX: f64 = 1_000_000.0;
    /// `rate_burst` and `per_source_rate_burst`.
    pub const BURST: u32 = 1_000_000;
    /// `max_load` (0 refuses always).
    pub const MAX_LOAD: f64 = 1_000_000.0;
    /// `rlimit_as`, `rlimit_data`, `rlimit_rss`, `rlimit_stack`: 1 PiB,
    /// beyond any machine's memory; `"unlimited"` is RLIM_INFINITY.
    pub const RLIMIT_SIZE: u64 = 1 << 50;
    /// `rlimit_nofile`: Linux never allows more open files (`fs.nr_open`'s ceiling).
    pub const RLIMIT_NOFILE: u32 = 1 << 30;
    /// `max_connections`, `instances`, `per_source`.
    pub const COUNT: u32 = u32::MAX;
    /// `[defaults]` bytes times services: the most a file may expand to.
    pub const EXPANDED: usize = 16 << 20;
    /// Bytes of one configuration file (or xinetd include).
    pub const FILE: usize = 16 << 20;
    /// Errors printed for one file; the rest are counted.
    pub const REPORTED_ERRORS: usize = 100;
    /// Bytes of a router's table as `JAWAS_ROUTES`.
    pub const ROUTES_ENV: usize = 32 * 1024;
}

/// Server-wide settings.
#[derive(Debug, Clone)]
pub struct Server {
    /// Most engines running at once over all services; `None` is unlimited.
    pub max_connections: Option<u32>,
    /// How long SIGTERM waits for engines before SIGKILL.
    pub shutdown_grace: Duration,
    /// Most accepted connections waiting for their PROXY header at once.
    pub max_pending: u32,
    /// After SIGTERM, how long engines may finish on their own before
    /// they are sent SIGTERM.
    pub drain: Duration,
    /// The control socket's path (`jawasd ctl`); `None`: no control socket.
    pub control: Option<PathBuf>,
    /// The control socket's permission bits (default 0600: its owner only).
    pub control_mode: libc::mode_t,
}

/// A service's listeners read a PROXY protocol header first.
#[derive(Debug, Clone)]
pub struct ProxyConf {
    /// Who may send one (the load balancers' networks).
    pub from: Vec<Cidr>,
    /// How long the header may take to arrive.
    pub timeout: Duration,
}

/// A service that starts no engine itself: it reads each connection's
/// first request head and hands the connection to the service of the
/// route it matches (docs/config.md, Routes).
#[derive(Debug, Clone)]
pub struct Router {
    pub table: jawas_http::route::Table,
    /// The service of each route of `table`, by index.
    pub targets: Vec<String>,
    /// The service of requests no route matches; without one jawasd
    /// answers 404 (or 421 for an unknown host) itself.
    pub fallback: Option<String>,
    /// How long the first request head may take to arrive.
    pub timeout: Duration,
    /// `table` as `JAWAS_ROUTES` spells it, made once.
    pub env: String,
}

/// New-connection rate limit of a service: a token bucket.
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    pub per_second: f64,
    pub burst: u32,
}

/// Credentials an engine runs with, resolved from names at load time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creds {
    pub uid: Option<libc::uid_t>,
    pub gid: libc::gid_t,
    pub groups: Vec<libc::gid_t>,
}

/// One service, ready to spawn engines.
#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub listen: Vec<SocketAddr>,
    /// Where each `listen` address was written (`FILE:LINE`), for errors
    /// such as a bind failure; filled in once the file's name is known.
    pub listen_at: Vec<String>,
    /// The line of each `listen` address in the parsed text.
    pub listen_lines: Vec<usize>,
    /// Absolute path of the engine executable.
    pub engine: CString,
    /// argv, argv[0] being the engine as written in the config.
    pub argv: Vec<CString>,
    /// `KEY=VALUE` pairs every engine of this service gets; the per-connection
    /// UCSPI variables are added at spawn time.
    pub env: Vec<CString>,
    pub instances: Option<u32>,
    pub per_source: Option<u32>,
    pub rate: Option<Rate>,
    /// New connections per second from one client IP address (a token
    /// bucket per address): unlike `rate`, it isolates clients.
    pub per_source_rate: Option<Rate>,
    pub limit_banner: Option<Vec<u8>>,
    pub acl: Acl,
    pub creds: Option<Creds>,
    pub workdir: Option<CString>,
    pub umask: Option<libc::mode_t>,
    pub nice: Option<i32>,
    pub rlimits: Vec<(RlimitKind, u64)>,
    pub chroot: Option<CString>,
    pub stderr: StderrMode,
    pub protocol: Protocol,
    /// inetd's `wait = yes`: the listening (or UDP) socket itself is handed
    /// to one engine, and not watched again until that engine exits.
    pub wait: bool,
    /// Written to every connection before anything else (xinetd's `banner`).
    pub banner: Option<Vec<u8>>,
    /// Written to an admitted connection before the engine starts.
    pub banner_success: Option<Vec<u8>>,
    /// Minutes of the day (from, to) when the service is available.
    pub access_times: Vec<(u16, u16)>,
    pub max_load: Option<f64>,
    pub nodelay: bool,
    pub keepalive: bool,
    /// Sets `REMOTE_HOST` (the client address) as xinetd does.
    pub remote_host_env: bool,
    /// A client of this service is denied every service for `deny_time`.
    pub sensor: bool,
    pub deny_time: Option<Duration>,
    /// Fields of the `done` line; `None` is every field.
    pub log_on_success: Option<Vec<String>>,
    /// Fields of the `refuse` line; `None` is every field.
    pub log_on_failure: Option<Vec<String>>,
    pub log_file: Option<PathBuf>,
    /// (facility, level) for syslog(3).
    pub log_syslog: Option<(libc::c_int, libc::c_int)>,
    /// Connection events as xinetd writes them (START/EXIT/FAIL lines).
    pub xinetd_log: bool,
    /// How an engine is started per connection.
    pub spawn: SpawnMode,
    /// With `spawn = "zygote"`: refuse (rather than exec) while no zygote
    /// is ready.
    pub zygote_refuse: bool,
    /// How long a connection over a count limit (`max_connections`,
    /// `instances`, `per_source`) waits for a running engine to end
    /// before it is refused; zero refuses at once.
    pub limit_wait: Duration,
    /// Read a PROXY protocol header before anything else.
    pub proxy: Option<ProxyConf>,
    /// Route connections to other services instead of starting an engine.
    pub router: Option<std::rc::Rc<Router>>,
}

/// How a service's engines start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SpawnMode {
    /// clone + exec per connection.
    #[default]
    Exec,
    /// One initialised engine forks per connection (docs/engine-protocol.md).
    Zygote,
}

/// Where an engine's fd 2 goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StderrMode {
    /// jawasd's own stderr.
    Log,
    /// A pipe to jawasd, which logs each line.
    Capture,
    /// The connection itself, as under inetd and xinetd.
    Socket,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Udp,
}

/// The resource limits a service may set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RlimitKind {
    As,
    Cpu,
    Nofile,
    Data,
    Rss,
    Stack,
}

impl RlimitKind {
    pub fn resource(self) -> libc::__rlimit_resource_t {
        match self {
            RlimitKind::As => libc::RLIMIT_AS,
            RlimitKind::Cpu => libc::RLIMIT_CPU,
            RlimitKind::Nofile => libc::RLIMIT_NOFILE,
            RlimitKind::Data => libc::RLIMIT_DATA,
            RlimitKind::Rss => libc::RLIMIT_RSS,
            RlimitKind::Stack => libc::RLIMIT_STACK,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub server: Server,
    pub services: Vec<Service>,
}

/// One problem found in the file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ConfigError {
    pub line: usize,
    pub message: String,
}

/// Everything wrong with one file.
#[derive(Debug)]
pub struct ConfigErrors {
    pub path: PathBuf,
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A file with thousands of errors needs its first ones fixed, not
        // a screenful of the same mistake.
        let shown = self.errors.len().min(limits::REPORTED_ERRORS);
        for (i, e) in self.errors[..shown].iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            if e.line == 0 {
                write!(f, "{}: {}", self.path.display(), e.message)?;
            } else {
                write!(f, "{}:{}: {}", self.path.display(), e.line, e.message)?;
            }
        }
        if self.errors.len() > shown {
            write!(
                f,
                "\n{}: and {} more errors",
                self.path.display(),
                self.errors.len() - shown
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Where names and executables are looked up; passed in so tests and
/// `--check` see the same rules as the running server.
pub struct Env<'a> {
    /// Directory of the jawasd executable: bare engine names are looked up here first.
    pub exe_dir: Option<&'a Path>,
    /// jawasd's own PATH.
    pub path_var: Option<&'a std::ffi::OsStr>,
}

impl Config {
    /// Reads and checks `path`.
    pub fn load(path: &Path, env: &Env<'_>) -> Result<Config, ConfigErrors> {
        let fail = |message: String| ConfigErrors {
            path: path.to_path_buf(),
            errors: vec![ConfigError { line: 0, message }],
        };
        let bytes =
            read_capped(path, limits::FILE).map_err(|m| fail(format!("unable to read: {m}")))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            fail(format!(
                "not UTF-8 text (byte {})",
                e.utf8_error().valid_up_to()
            ))
        })?;
        Config::parse(&text, path, env)
    }

    /// Checks `text` as if it were the contents of `path`, bundled
    /// engines' own checks included.
    pub fn parse(text: &str, path: &Path, env: &Env<'_>) -> Result<Config, ConfigErrors> {
        Config::parse_with(text, path, env, false, &engine_check::run).map(|(c, _)| c)
    }

    /// As `parse`, but as xinetd does: a service with errors is left out
    /// (its errors returned beside the config) while the others run, and a
    /// config with no service left is not an error.
    pub fn parse_lenient(
        text: &str,
        path: &Path,
        env: &Env<'_>,
    ) -> Result<(Config, Vec<ConfigError>), ConfigErrors> {
        Config::parse_with(text, path, env, true, &engine_check::run)
    }

    /// Parses, then (only if the file itself is sound) has the bundled
    /// engines check their arguments through `runner`: a separate stage, so
    /// tests can hand in a runner that starts no process.
    fn parse_with(
        text: &str,
        path: &Path,
        env: &Env<'_>,
        lenient: bool,
        runner: &Runner<'_>,
    ) -> Result<(Config, Vec<ConfigError>), ConfigErrors> {
        let mut p = Parser {
            text,
            errors: Vec::new(),
            base_dir: path.parent().unwrap_or(Path::new(".")).to_path_buf(),
            env,
            lenient,
            dropped: Vec::new(),
            lines: LineIndex::new(text),
            check_at: Vec::new(),
            unlistened: Vec::new(),
            route_refs: Vec::new(),
        };
        let config = p.document();
        let mut errors = p.errors;
        let mut dropped = p.dropped;
        let mut config = config.filter(|_| errors.is_empty());
        if let Some((_, services)) = config.as_mut() {
            let failed = check_engines(services, &p.check_at, path, runner);
            if lenient {
                // As with any other error: the service is left out.
                let mut gone = std::collections::BTreeSet::new();
                for (i, e) in failed {
                    gone.insert(i);
                    dropped.push(e);
                }
                let mut i = 0;
                services.retain(|_| {
                    i += 1;
                    !gone.contains(&(i - 1))
                });
            } else {
                errors.extend(failed.into_iter().map(|(_, e)| e));
            }
        }
        errors.sort();
        errors.dedup();
        match config {
            Some((server, mut services)) if errors.is_empty() => {
                for svc in &mut services {
                    svc.listen_at = svc
                        .listen_lines
                        .iter()
                        .map(|l| format!("{}:{l}", path.display()))
                        .collect();
                }
                Ok((
                    Config {
                        path: path.to_path_buf(),
                        server,
                        services,
                    },
                    dropped,
                ))
            }
            _ => Err(ConfigErrors {
                path: path.to_path_buf(),
                errors,
            }),
        }
    }
}

type Value<'i> = Spanned<DeValue<'i>>;

struct Parser<'t, 'e> {
    text: &'t str,
    errors: Vec<ConfigError>,
    base_dir: PathBuf,
    env: &'e Env<'e>,
    /// Leave broken services out instead of failing (xinetd's way).
    lenient: bool,
    /// In lenient mode, the errors of the services left out.
    dropped: Vec<ConfigError>,
    lines: LineIndex,
    /// For each service kept, in order, where an engine check's findings
    /// point: its `args` line (or `engine` line) and that key.
    check_at: Vec<(usize, &'static str)>,
    /// Services read without `listen` (name, line): each needs a route.
    unlistened: Vec<(String, usize)>,
    /// Services named by routes: (name, line, key), checked at the end.
    route_refs: Vec<(String, usize, String)>,
}

/// Byte offsets where each line starts, computed once, so turning an
/// error's offset into a line number is a binary search: reporting N errors
/// costs O(N log L), not a rescan of the file per error.
pub struct LineIndex {
    /// `starts[i]` is the offset of line i + 1; `starts[0]` is 0.
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(
            text.bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineIndex { starts }
    }

    /// The 1-based line holding byte `offset` (offsets past the end are on the last line).
    pub fn line_of(&self, offset: usize) -> usize {
        // The number of line starts at or before `offset` is its line number.
        self.starts.partition_point(|&s| s <= offset)
    }
}

impl<'t> Parser<'t, '_> {
    fn line_of(&self, span: Range<usize>) -> usize {
        self.lines.line_of(span.start)
    }

    fn error(&mut self, span: Range<usize>, message: String) {
        let line = self.line_of(span);
        self.errors.push(ConfigError {
            line,
            message: one_line(&message),
        });
    }

    fn document(&mut self) -> Option<(Server, Vec<Service>)> {
        let (doc, parse_errors) = DeTable::parse_recoverable(self.text);
        for e in parse_errors {
            let line = e.span().map(|s| self.line_of(s)).unwrap_or(0);
            let message = format!("TOML syntax: {}", e.message().trim());
            self.errors.push(ConfigError {
                line,
                message: one_line(&message),
            });
        }
        if !self.errors.is_empty() {
            return None;
        }
        let doc = doc.into_inner();
        let mut server_table = None;
        let mut defaults_span = None;
        let mut defaults = BTreeMap::new();
        let mut services_table = None;
        for (key, value) in doc.iter() {
            match key.get_ref().as_ref() {
                "server" => server_table = self.table(key.get_ref(), value),
                "defaults" => {
                    defaults_span = Some(key.span());
                    if let Some(t) = self.table(key.get_ref(), value) {
                        for (k, v) in t.iter() {
                            let name = k.get_ref().as_ref();
                            if name == "listen" {
                                self.error(
                                    k.span(),
                                    "defaults.listen: a listen address belongs to one service, not to [defaults]".into(),
                                );
                            } else if self.known(k, SERVICE_KEYS, "defaults") {
                                defaults.insert(name.to_string(), v.clone());
                            }
                        }
                    }
                }
                "services" => services_table = self.table(key.get_ref(), value),
                _ => {
                    self.known(key, TOP_KEYS, "");
                }
            }
        }
        let server = self.server(server_table);
        let mut services = Vec::new();
        let mut seen_addr: BTreeMap<(SocketAddr, bool), String> = BTreeMap::new();
        match services_table {
            None if self.lenient => {}
            None => self.errors.push(ConfigError {
                line: 0,
                message: "no [services.NAME] table: nothing to serve".into(),
            }),
            Some(table) if self.defaults_too_big(&defaults, table.len(), defaults_span) => {}
            Some(table) => {
                for (name, value) in table.iter() {
                    let name_text = name.get_ref().to_string();
                    if !valid_name(&name_text) {
                        self.error(
                            name.span(),
                            format!("services.{name_text}: a service name may hold letters, digits, '-', '_' and '.' only"),
                        );
                        continue;
                    }
                    let key = format!("services.{name_text}");
                    let Some(table) = self.table(&key, value) else {
                        continue;
                    };
                    let before = self.errors.len();
                    let svc = self.service(&name_text, name.span(), table, &defaults);
                    if self.lenient && self.errors.len() > before {
                        let errs: Vec<ConfigError> = self.errors.drain(before..).collect();
                        self.dropped.extend(errs);
                        continue;
                    }
                    if let Some(svc) = svc {
                        // Port 0 asks the kernel for any free port, so
                        // several services may say it. TCP and UDP may
                        // share a port.
                        for addr in svc.listen.iter().filter(|a| a.port() != 0) {
                            let slot = (*addr, svc.protocol == Protocol::Udp);
                            if let Some(other) = seen_addr.insert(slot, svc.name.clone()) {
                                let span =
                                    table.get("listen").map(|v| v.span()).unwrap_or(name.span());
                                self.error(span, format!("services.{}.listen: {addr} is already the address of service '{other}'", svc.name));
                            }
                        }
                        // Findings about the arguments point at them.
                        let at = ["args", "engine"].into_iter().find_map(|k| {
                            let v = table.get(k).or_else(|| defaults.get(k))?;
                            Some((self.line_of(v.span()), k))
                        });
                        self.check_at
                            .push(at.unwrap_or((self.line_of(name.span()), "engine")));
                        services.push(svc);
                    }
                }
            }
        }
        self.check_routes(&services);
        if services.is_empty() && self.errors.is_empty() && !self.lenient {
            self.errors.push(ConfigError {
                line: 0,
                message: "every service is disabled: nothing to serve".into(),
            });
        }
        Some((server, services))
    }

    /// Every service gets its own copy of `[defaults]`, so a large defaults
    /// table times many services is quadratic work and memory in the size of
    /// the file (a megabyte could expand to gigabytes). Refuses the file,
    /// saying why, when that product is over `limits::EXPANDED`.
    fn defaults_too_big(
        &mut self,
        defaults: &BTreeMap<String, Value<'_>>,
        services: usize,
        span: Option<Range<usize>>,
    ) -> bool {
        let bytes: usize = defaults.values().map(|v| v.span().len()).sum();
        if bytes.saturating_mul(services) <= limits::EXPANDED {
            return false;
        }
        self.error(
            span.unwrap_or_default(),
            format!(
                "defaults: {bytes} bytes of values copied into {services} services is over the {} MiB a file may expand to; set large values (long only_from lists, say) in the services that need them",
                limits::EXPANDED >> 20
            ),
        );
        true
    }

    fn table<'a, 'i>(&mut self, key: &str, value: &'a Value<'i>) -> Option<&'a DeTable<'i>> {
        match value.get_ref() {
            DeValue::Table(t) => Some(t),
            other => {
                self.error(
                    value.span(),
                    format!("{key}: expected a table, found {}", other.type_str()),
                );
                None
            }
        }
    }

    /// Reports `key` if it is not one of `allowed`, with a suggestion.
    fn known(
        &mut self,
        key: &Spanned<std::borrow::Cow<'_, str>>,
        allowed: &[&str],
        within: &str,
    ) -> bool {
        let name = key.get_ref().as_ref();
        if allowed.contains(&name) {
            return true;
        }
        let full = if within.is_empty() {
            name.to_string()
        } else {
            format!("{within}.{name}")
        };
        let mut message = format!("{full}: unknown key");
        if let Some(near) = did_you_mean(name, allowed) {
            message.push_str(&format!("; did you mean '{near}'?"));
        }
        self.error(key.span(), message);
        false
    }

    /// `proxy_protocol`, `proxy_from`, `proxy_timeout`: the PROXY header
    /// settings, checked together.
    fn proxy_conf<'v>(
        &mut self,
        key: &dyn Fn(&str) -> String,
        get: &dyn Fn(&str) -> Option<&'v Value<'v>>,
        udp_or_wait: bool,
    ) -> Option<ProxyConf> {
        let on = get("proxy_protocol").and_then(|v| self.boolean(&key("proxy_protocol"), v));
        let mut from = Vec::new();
        if let Some(v) = get("proxy_from") {
            for (text, span) in self.strings(&key("proxy_from"), v, true) {
                match Cidr::parse(&text) {
                    Ok(c) => from.push(c),
                    Err(m) => self.error(span, format!("{}: {m}", key("proxy_from"))),
                }
            }
        }
        let timeout = get("proxy_timeout")
            .and_then(|v| self.duration(&key("proxy_timeout"), v, limits::PROXY_TIMEOUT));
        if on != Some(true) {
            for k in ["proxy_from", "proxy_timeout"] {
                if let Some(v) = get(k) {
                    self.error(v.span(), format!("{}: needs proxy_protocol = true", key(k)));
                }
            }
            return None;
        }
        let at = get("proxy_protocol").map(|v| v.span()).unwrap_or_default();
        if udp_or_wait {
            self.error(
                at.clone(),
                format!(
                    "{}: a PROXY header comes first on a TCP connection jawasd accepts; \
                     it cannot be used with protocol = \"udp\" or wait = true",
                    key("proxy_protocol")
                ),
            );
        }
        if get("proxy_from").is_none() {
            self.error(
                at,
                format!(
                    "{}: needs proxy_from, the networks of the load balancers allowed to send \
                     a header (e.g. proxy_from = [\"10.0.0.0/8\"])",
                    key("proxy_protocol")
                ),
            );
        }
        Some(ProxyConf {
            from,
            timeout: timeout.unwrap_or(Duration::from_secs(3)),
        })
    }

    fn server(&mut self, table: Option<&DeTable<'_>>) -> Server {
        let mut server = Server {
            max_connections: None,
            shutdown_grace: Duration::from_secs(5),
            max_pending: 1024,
            drain: Duration::ZERO,
            control: None,
            control_mode: 0o600,
        };
        let Some(table) = table else { return server };
        for (k, v) in table.iter() {
            if !self.known(k, SERVER_KEYS, "server") {
                continue;
            }
            let key = format!("server.{}", k.get_ref());
            match k.get_ref().as_ref() {
                "max_connections" => server.max_connections = self.count(&key, v, limits::COUNT),
                "drain" => {
                    if let Some(d) = self.duration(&key, v, limits::SHUTDOWN_GRACE) {
                        server.drain = d;
                    }
                }
                "max_pending" => {
                    if let Some(n) = self.count(&key, v, limits::COUNT) {
                        server.max_pending = n;
                    }
                }
                "shutdown_grace" => {
                    if let Some(d) = self.duration(&key, v, limits::SHUTDOWN_GRACE) {
                        server.shutdown_grace = d;
                    }
                }
                "control" => {
                    if let Some(p) = self.path_value(&key, v) {
                        server.control =
                            Some(PathBuf::from(std::ffi::OsStr::from_bytes(p.as_bytes())));
                    }
                }
                "control_mode" => {
                    if let Some(m) = self.umask(&key, v) {
                        server.control_mode = m;
                    }
                }
                _ => unreachable!("key list and match disagree"),
            }
        }
        server
    }

    fn service(
        &mut self,
        name: &str,
        name_span: Range<usize>,
        table: &DeTable<'_>,
        defaults: &BTreeMap<String, Value<'_>>,
    ) -> Option<Service> {
        let errors_before = self.errors.len();
        // The service's own keys win over [defaults].
        let mut merged: BTreeMap<String, Value<'_>> = defaults.clone();
        for (k, v) in table.iter() {
            if self.known(k, SERVICE_KEYS, &format!("services.{name}")) {
                merged.insert(k.get_ref().to_string(), v.clone());
            }
        }
        let key = |k: &str| format!("services.{name}.{k}");
        let get = |k: &str| merged.get(k);

        if let Some(v) = get("disabled") {
            if self.boolean(&key("disabled"), v) == Some(true) {
                return None;
            }
        }

        let mut listen_lines = Vec::new();
        let listen = match get("listen") {
            // Fine if a route leads to it; `document` checks that.
            None => {
                self.unlistened
                    .push((name.to_string(), self.line_of(name_span.clone())));
                Vec::new()
            }
            Some(v) => {
                let mut addrs = Vec::new();
                for (text, span) in self.strings(&key("listen"), v, true) {
                    match parse_listen(&text) {
                        Ok(a) => {
                            addrs.push(a);
                            listen_lines.push(self.line_of(span));
                        }
                        Err(m) => self.error(span, format!("{}: {m}", key("listen"))),
                    }
                }
                if addrs.is_empty() && self.errors.len() == errors_before {
                    self.error(v.span(), format!("{}: no address given", key("listen")));
                }
                addrs
            }
        };

        let routes_given = table.get("routes").is_some();
        let engine_written = match get("engine") {
            None if routes_given => None,
            Some(v) if routes_given => {
                self.error(
                    v.span(),
                    format!(
                        "services.{name}: a service with routes starts no engine itself; \
                         the engines belong to the services its routes name"
                    ),
                );
                None
            }
            None => {
                self.error(
                    name_span.clone(),
                    format!("services.{name}: missing key 'engine'"),
                );
                None
            }
            Some(v) => self.string(&key("engine"), v).map(|s| (s, v.span())),
        };
        let chroot = get("chroot").and_then(|v| {
            let p = self.path_value(&key("chroot"), v)?;
            if !Path::new(std::ffi::OsStr::from_bytes(p.as_bytes())).is_dir() {
                self.error(
                    v.span(),
                    format!(
                        "{}: {} is not a directory",
                        key("chroot"),
                        p.to_string_lossy()
                    ),
                );
            }
            Some(p)
        });
        // With chroot, the engine is a path inside the new root: it is
        // checked there, and exec'd by that path after the chroot.
        let inside = |dir: &CString, text: &str| -> Result<CString, String> {
            if !text.starts_with('/') {
                return Err(
                    "with chroot, give the engine as an absolute path inside the new root".into(),
                );
            }
            let host = Path::new(std::ffi::OsStr::from_bytes(dir.as_bytes())).join(&text[1..]);
            is_executable(&host).map_err(|e| format!("{}: {e}", host.display()))?;
            CString::new(text).map_err(|_| "path contains a NUL byte".to_string())
        };
        let engine = engine_written.as_ref().and_then(|(text, span)| {
            match chroot
                .as_ref()
                .map_or_else(|| self.resolve_engine(text), |dir| inside(dir, text))
            {
                Ok(p) => Some(p),
                Err(m) => {
                    self.error(span.clone(), format!("{}: {m}", key("engine")));
                    None
                }
            }
        });

        let mut argv = Vec::new();
        if let Some(v) = get("argv0") {
            argv.extend(self.string(&key("argv0"), v));
        } else if let Some((written, _)) = &engine_written {
            argv.push(written.clone());
        }
        if let Some(v) = get("args") {
            argv.extend(
                self.strings(&key("args"), v, false)
                    .into_iter()
                    .map(|(s, _)| s),
            );
        }

        let mut env: BTreeMap<String, String> = BTreeMap::new();
        if let Some(v) = get("pass_env") {
            for (var, span) in self.strings(&key("pass_env"), v, true) {
                if var == "*" {
                    // Everything, as xinetd does without passenv.
                    for (k, val) in std::env::vars_os() {
                        if let (Ok(k), Ok(val)) = (k.into_string(), val.into_string()) {
                            env.insert(k, val);
                        }
                    }
                } else if !valid_env_name(&var) {
                    self.error(
                        span,
                        format!("{}: '{var}' is not a variable name", key("pass_env")),
                    );
                } else if let Some(value) = std::env::var_os(&var) {
                    env.insert(var, value.to_string_lossy().into_owned());
                }
            }
        }
        if let Some(v) = get("env") {
            match v.get_ref() {
                DeValue::Table(t) => {
                    for (k, val) in t.iter() {
                        let var = k.get_ref().to_string();
                        if !valid_env_name(&var) {
                            self.error(
                                k.span(),
                                format!("{}: '{var}' is not a variable name", key("env")),
                            );
                            continue;
                        }
                        if let Some(s) = self.string(&format!("{}.{var}", key("env")), val) {
                            env.insert(var, s);
                        }
                    }
                }
                other => self.error(
                    v.span(),
                    format!(
                        "{}: expected a table of strings, found {}",
                        key("env"),
                        other.type_str()
                    ),
                ),
            }
        }
        env.entry("PATH".into())
            .or_insert_with(|| DEFAULT_PATH.into());

        let instances =
            get("instances").and_then(|v| self.count(&key("instances"), v, limits::COUNT));
        let per_source =
            get("per_source").and_then(|v| self.count(&key("per_source"), v, limits::COUNT));
        let rate = self.rate(name, "rate", "rate_burst", &merged);
        let per_source_rate = self.rate(name, "per_source_rate", "per_source_rate_burst", &merged);
        let limit_banner = get("limit_banner")
            .and_then(|v| self.string(&key("limit_banner"), v))
            .map(|s| s.into_bytes());

        let mut acl = Acl::default();
        for k in ["only_from", "no_access"] {
            if let Some(v) = get(k) {
                let mut list = Vec::new();
                for (text, span) in self.strings(&key(k), v, true) {
                    match Cidr::parse(&text) {
                        Ok(c) => list.push(c),
                        Err(m) => self.error(span, format!("{}: {m}", key(k))),
                    }
                }
                if k == "only_from" {
                    // Present but empty: nobody, as in xinetd.
                    acl.only_from = Some(list);
                } else {
                    acl.no_access = list;
                }
            }
        }

        let user = get("user").and_then(|v| self.string(&key("user"), v).map(|s| (s, v.span())));
        let group = get("group").and_then(|v| self.string(&key("group"), v).map(|s| (s, v.span())));
        let mut creds = self.creds(name, user, group);
        if let Some(v) = get("groups") {
            if self.boolean(&key("groups"), v) == Some(false) {
                // Only the primary group, no supplementary ones.
                if let Some(c) = creds.as_mut() {
                    c.groups = vec![c.gid];
                }
            }
        }

        let workdir = get("workdir").and_then(|v| self.path_value(&key("workdir"), v));
        let umask = get("umask").and_then(|v| self.umask(&key("umask"), v));
        let nice = get("nice").and_then(|v| {
            let n = self.in_range(&key("nice"), v, -20, 19)?;
            i32::try_from(n).ok()
        });
        let mut rlimits = Vec::new();
        if let Some(v) = get("rlimit_as") {
            if let Some(n) = self.size(&key("rlimit_as"), v) {
                rlimits.push((RlimitKind::As, n));
            }
        }
        if let Some(v) = get("rlimit_cpu") {
            let unlimited = matches!(v.get_ref(), DeValue::String(s) if s == "unlimited");
            if unlimited {
                rlimits.push((RlimitKind::Cpu, libc::RLIM_INFINITY));
            } else if let Some(d) = self.duration(&key("rlimit_cpu"), v, limits::RLIMIT_CPU) {
                rlimits.push((RlimitKind::Cpu, d.as_secs().max(1)));
            }
        }
        if let Some(v) = get("rlimit_nofile") {
            if let Some(n) = self.count(&key("rlimit_nofile"), v, limits::RLIMIT_NOFILE) {
                rlimits.push((RlimitKind::Nofile, u64::from(n)));
            }
        }
        for (k, kind) in [
            ("rlimit_data", RlimitKind::Data),
            ("rlimit_rss", RlimitKind::Rss),
            ("rlimit_stack", RlimitKind::Stack),
        ] {
            if let Some(v) = get(k) {
                if let Some(n) = self.size(&key(k), v) {
                    rlimits.push((kind, n));
                }
            }
        }
        // Captured unless the file says otherwise: every engine line then
        // reaches jawasd's log with its service, pid and time.
        let capture_stderr =
            get("capture_stderr").and_then(|v| self.boolean(&key("capture_stderr"), v));
        let mut stderr = if capture_stderr == Some(false) {
            StderrMode::Log
        } else {
            StderrMode::Capture
        };
        let forced = capture_stderr == Some(true);
        if let Some(v) = get("stderr") {
            match self.string(&key("stderr"), v).as_deref() {
                Some("log") if !forced => stderr = StderrMode::Log,
                Some("capture") => stderr = StderrMode::Capture,
                Some("socket") if !forced => stderr = StderrMode::Socket,
                Some("log" | "socket") => self.error(
                    v.span(),
                    format!("{}: contradicts capture_stderr = true", key("stderr")),
                ),
                Some(other) => self.error(
                    v.span(),
                    format!("{}: '{other}' is not log, capture or socket", key("stderr")),
                ),
                None => {}
            }
        }
        let protocol = match get("protocol").map(|v| (self.string(&key("protocol"), v), v.span())) {
            None => Protocol::Tcp,
            Some((Some(p), span)) => match p.as_str() {
                "tcp" => Protocol::Tcp,
                "udp" => Protocol::Udp,
                other => {
                    self.error(
                        span,
                        format!("{}: '{other}' is not tcp or udp", key("protocol")),
                    );
                    Protocol::Tcp
                }
            },
            Some((None, _)) => Protocol::Tcp,
        };
        let flag =
            |p: &mut Self, k: &str| get(k).and_then(|v| p.boolean(&key(k), v)).unwrap_or(false);
        let zygote_refuse = match get("zygote_fallback")
            .map(|v| (self.string(&key("zygote_fallback"), v), v.span()))
        {
            None | Some((None, _)) => false,
            Some((Some(m), span)) => match m.as_str() {
                "exec" => false,
                "refuse" => true,
                other => {
                    self.error(
                        span,
                        format!(
                            "{}: '{other}' is not exec or refuse",
                            key("zygote_fallback")
                        ),
                    );
                    false
                }
            },
        };
        let limit_wait = get("limit_wait")
            .and_then(|v| self.duration(&key("limit_wait"), v, limits::LIMIT_WAIT))
            .unwrap_or(DEFAULT_LIMIT_WAIT);
        let wait = flag(self, "wait");
        let spawn = match get("spawn").map(|v| (self.string(&key("spawn"), v), v.span())) {
            None | Some((None, _)) => SpawnMode::Exec,
            Some((Some(m), span)) => match m.as_str() {
                "exec" => SpawnMode::Exec,
                "zygote" if protocol == Protocol::Udp || wait => {
                    self.error(
                        span,
                        format!(
                            "{}: zygote mode serves one TCP connection per child; \
                             it cannot be used with protocol = \"udp\" or wait = true",
                            key("spawn")
                        ),
                    );
                    SpawnMode::Exec
                }
                "zygote" => SpawnMode::Zygote,
                other => {
                    self.error(
                        span,
                        format!("{}: '{other}' is not exec or zygote", key("spawn")),
                    );
                    SpawnMode::Exec
                }
            },
        };
        let proxy = self.proxy_conf(&key, &get, protocol == Protocol::Udp || wait);
        if let (Some(v), SpawnMode::Exec) = (get("zygote_fallback"), spawn) {
            self.error(
                v.span(),
                format!("{}: needs spawn = \"zygote\"", key("zygote_fallback")),
            );
        }
        let nodelay = flag(self, "nodelay");
        let keepalive = flag(self, "keepalive");
        let remote_host_env = flag(self, "remote_host_env");
        let sensor = flag(self, "sensor");
        let banner = get("banner")
            .and_then(|v| self.string(&key("banner"), v))
            .map(String::into_bytes);
        let banner_success = get("banner_success")
            .and_then(|v| self.string(&key("banner_success"), v))
            .map(String::into_bytes);
        let mut access_times = Vec::new();
        if let Some(v) = get("access_times") {
            for (t, span) in self.strings(&key("access_times"), v, true) {
                match parse_time_range(&t) {
                    Some(r) => access_times.push(r),
                    None => self.error(
                        span,
                        format!("{}: '{t}' is not HH:MM-HH:MM", key("access_times")),
                    ),
                }
            }
        }
        let max_load = get("max_load").and_then(|v| {
            let l = self.number(&key("max_load"), v)?;
            if !(0.0..=limits::MAX_LOAD).contains(&l) {
                self.error(
                    v.span(),
                    format!(
                        "{}: must be from 0 to {}",
                        key("max_load"),
                        limits::MAX_LOAD
                    ),
                );
                return None;
            }
            Some(l)
        });
        let deny_time = get("deny_time").and_then(|v| match v.get_ref() {
            DeValue::String(s) if s == "forever" => Some(limits::DENY_FOREVER),
            _ => self.duration(&key("deny_time"), v, limits::DENY_TIME),
        });
        let log_fields = |p: &mut Self, k: &str| -> Option<Vec<String>> {
            let v = get(k)?;
            let mut fields = Vec::new();
            for (f, span) in p.strings(&key(k), v, false) {
                if ["PID", "HOST", "EXIT", "DURATION", "ATTEMPT", "TRAFFIC"].contains(&f.as_str()) {
                    fields.push(f);
                } else {
                    p.error(
                        span,
                        format!(
                            "{}: '{f}' is not PID, HOST, EXIT, DURATION, ATTEMPT or TRAFFIC",
                            key(k)
                        ),
                    );
                }
            }
            Some(fields)
        };
        let log_on_success = log_fields(self, "log_on_success");
        let log_on_failure = log_fields(self, "log_on_failure");
        let log_file = get("log_file").and_then(|v| {
            let s = self.string(&key("log_file"), v)?;
            Some(self.base_dir.join(s))
        });
        let xinetd_log = match get("log_format") {
            None => false,
            Some(v) => match self.string(&key("log_format"), v).as_deref() {
                Some("xinetd") => true,
                Some("jawas") | None => false,
                Some(other) => {
                    self.error(
                        v.span(),
                        format!("{}: '{other}' is not jawas or xinetd", key("log_format")),
                    );
                    false
                }
            },
        };
        let log_syslog = get("log_syslog").and_then(|v| {
            let s = self.string(&key("log_syslog"), v)?;
            let parsed = parse_syslog(&s);
            if parsed.is_none() {
                self.error(
                    v.span(),
                    format!(
                        "{}: '{s}' is not FACILITY.LEVEL such as daemon.info",
                        key("log_syslog")
                    ),
                );
            }
            parsed
        });

        let router = if routes_given {
            self.router(name, table, spawn, protocol == Protocol::Udp || wait)
        } else {
            for k in ["route_fallback", "route_timeout"] {
                if let Some(v) = table.get(k) {
                    self.error(v.span(), format!("{}: needs routes", key(k)));
                }
            }
            None
        };
        if self.errors.len() != errors_before {
            return None;
        }
        let engine = match router {
            Some(_) => CString::default(),
            None => engine?,
        };
        let cstr = |s: String| CString::new(s).ok();
        let argv: Option<Vec<CString>> = argv.into_iter().map(cstr).collect();
        let env: Option<Vec<CString>> = env
            .into_iter()
            .map(|(k, v)| cstr(format!("{k}={v}")))
            .collect();
        let (Some(argv), Some(env)) = (argv, env) else {
            self.error(
                name_span,
                format!("services.{name}: args and env may not contain NUL bytes"),
            );
            return None;
        };
        Some(Service {
            name: name.to_string(),
            listen,
            listen_at: Vec::new(),
            listen_lines,
            engine,
            argv,
            env,
            instances,
            per_source,
            rate,
            per_source_rate,
            limit_banner,
            acl,
            creds,
            workdir,
            umask,
            nice,
            rlimits,
            chroot,
            stderr,
            protocol,
            wait,
            banner,
            banner_success,
            access_times,
            max_load,
            nodelay,
            keepalive,
            remote_host_env,
            sensor,
            deny_time,
            log_on_success,
            log_on_failure,
            log_file,
            log_syslog,
            xinetd_log,
            spawn,
            zygote_refuse,
            limit_wait,
            proxy,
            router: router.map(std::rc::Rc::new),
        })
    }

    /// `routes`, `route_fallback`, `route_timeout` of a routing service.
    /// Whether the services named exist is checked once all are read.
    fn router(
        &mut self,
        name: &str,
        table: &DeTable<'_>,
        spawn: SpawnMode,
        udp_or_wait: bool,
    ) -> Option<Router> {
        use jawas_http::route::{HostPattern, Prefix, Route};
        let key = |k: &str| format!("services.{name}.{k}");
        let v = table.get("routes")?;
        if udp_or_wait || spawn == SpawnMode::Zygote {
            self.error(
                v.span(),
                format!(
                    "{}: routes read HTTP requests on TCP connections jawasd accepts; \
                     not with protocol = \"udp\", wait = true or spawn = \"zygote\"",
                    key("routes")
                ),
            );
        }
        let DeValue::Array(items) = v.get_ref() else {
            self.error(
                v.span(),
                format!(
                    "{}: expected a list such as [{{ path = \"/\", service = \"blog\" }}]",
                    key("routes")
                ),
            );
            return None;
        };
        let mut routes: Vec<Route> = Vec::new();
        let mut targets = Vec::new();
        let mut lines: Vec<usize> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let at = format!("{}[{i}]", key("routes"));
            let line = self.line_of(item.span());
            let DeValue::Table(t) = item.get_ref() else {
                self.error(
                    item.span(),
                    format!(
                        "{at}: expected {{ host = \"...\", path = \"/...\", service = \"...\" }}"
                    ),
                );
                continue;
            };
            let errors_before = self.errors.len();
            let mut host = HostPattern::Any;
            let mut prefix = None;
            let mut target = None;
            for (k, val) in t.iter() {
                if !self.known(k, &["host", "path", "service"], &at) {
                    continue;
                }
                let field = format!("{at}.{}", k.get_ref());
                let Some(text) = self.string(&field, val) else {
                    continue;
                };
                match k.get_ref().as_ref() {
                    "host" => match HostPattern::parse(&text) {
                        Ok(h) => host = h,
                        Err(m) => self.error(val.span(), format!("{field}: {m}")),
                    },
                    "path" => match Prefix::parse(&text) {
                        Ok(p) => prefix = Some(p),
                        Err(m) => self.error(val.span(), format!("{field}: {m}")),
                    },
                    _ => target = Some((text, val.span())),
                }
            }
            let Some((target, _)) = target else {
                self.error(item.span(), format!("{at}: missing key 'service'"));
                continue;
            };
            // The service is still checked, so that one line's mistakes
            // are all reported.
            self.route_refs.push((target.clone(), line, at.clone()));
            if self.errors.len() != errors_before {
                continue;
            }
            let route = Route {
                host,
                prefix: prefix.unwrap_or_else(|| Prefix::parse("/").expect("root")),
            };
            if let Some(j) = routes.iter().position(|r| *r == route) {
                self.error(
                    item.span(),
                    format!(
                        "{at}: '{}' is already routed at line {} (each host and path once)",
                        route.token(),
                        lines[j]
                    ),
                );
                continue;
            }
            routes.push(route);
            targets.push(target);
            lines.push(line);
        }
        if routes.is_empty() && items.is_empty() {
            self.error(v.span(), format!("{}: no route given", key("routes")));
        }
        let fallback = table.get("route_fallback").and_then(|v| {
            let s = self.string(&key("route_fallback"), v)?;
            self.route_refs
                .push((s.clone(), self.line_of(v.span()), key("route_fallback")));
            Some(s)
        });
        let timeout = table
            .get("route_timeout")
            .and_then(|v| self.duration(&key("route_timeout"), v, limits::PROXY_TIMEOUT))
            .unwrap_or(Duration::from_secs(10));
        let table = jawas_http::route::Table::new(routes);
        let env = table.to_env();
        // Every routed engine gets the table in its environment (and a
        // zygote's CONN message carries it).
        if env.len() > limits::ROUTES_ENV {
            self.error(
                v.span(),
                format!(
                    "{}: the routes take {} bytes as JAWAS_ROUTES; at most {} per router (split the hosts over several listeners)",
                    key("routes"),
                    env.len(),
                    limits::ROUTES_ENV
                ),
            );
        }
        Some(Router {
            env,
            table,
            targets,
            fallback,
            timeout,
        })
    }

    /// After all services are read: every route leads to a TCP service
    /// that starts an engine, and every service has a listener or a route.
    fn check_routes(&mut self, services: &[Service]) {
        let names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
        let refs = std::mem::take(&mut self.route_refs);
        let routed: Vec<String> = refs.iter().map(|(t, _, _)| t.clone()).collect();
        for (target, line, at) in refs {
            let message = match services.iter().find(|s| s.name == target) {
                None => {
                    let mut m = format!("{at}: no service named '{target}'");
                    if let Some(near) = did_you_mean(&target, &names) {
                        m.push_str(&format!("; did you mean '{near}'?"));
                    }
                    m
                }
                Some(s) if s.router.is_some() => {
                    format!(
                        "{at}: '{target}' routes itself; a route leads to a service with an engine"
                    )
                }
                Some(s) if s.protocol == Protocol::Udp || s.wait => {
                    format!(
                        "{at}: '{target}' is a udp or wait service; routes lead to TCP services"
                    )
                }
                Some(_) => continue,
            };
            self.errors.push(ConfigError { line, message });
        }
        for (name, line) in std::mem::take(&mut self.unlistened) {
            if !routed.contains(&name) && services.iter().any(|s| s.name == name) {
                self.errors.push(ConfigError {
                    line,
                    message: format!(
                        "services.{name}: missing key 'listen' (a service needs a listen address, or a route that leads to it)"
                    ),
                });
            }
        }
    }

    /// Finds the engine: absolute, relative to the config file, or a bare
    /// name beside jawasd then in PATH. It must be an executable file.
    fn resolve_engine(&self, written: &str) -> Result<CString, String> {
        if written.is_empty() {
            return Err("empty engine name".into());
        }
        let candidates: Vec<PathBuf> = if written.contains('/') {
            vec![self.base_dir.join(written)]
        } else {
            let mut c = Vec::new();
            if let Some(dir) = self.env.exe_dir {
                c.push(dir.join(written));
            }
            if let Some(path) = self.env.path_var {
                c.extend(std::env::split_paths(path).map(|d| d.join(written)));
            }
            c
        };
        let mut last = None;
        for c in &candidates {
            match is_executable(c) {
                Ok(()) => {
                    let abs = if c.is_absolute() {
                        c.clone()
                    } else {
                        std::env::current_dir()
                            .map(|d| d.join(c))
                            .unwrap_or_else(|_| c.clone())
                    };
                    return CString::new(abs.as_os_str().as_bytes())
                        .map_err(|_| "path contains a NUL byte".into());
                }
                Err(e) => last = Some((c, e)),
            }
        }
        match last {
            Some((c, e)) if written.contains('/') => Err(format!("{}: {e}", c.display())),
            _ => Err(format!(
                "'{written}' not found beside jawasd{} or in PATH",
                self.env
                    .exe_dir
                    .map(|d| format!(" ({})", d.display()))
                    .unwrap_or_default()
            )),
        }
    }

    fn creds(
        &mut self,
        name: &str,
        user: Option<(String, Range<usize>)>,
        group: Option<(String, Range<usize>)>,
    ) -> Option<Creds> {
        if user.is_none() && group.is_none() {
            return None;
        }
        let key = |k: &str| format!("services.{name}.{k}");
        let mut uid = None;
        let mut gid = None;
        let mut groups = Vec::new();
        if let Some((u, span)) = &user {
            match lookup_user(u) {
                Ok((id, primary, list)) => {
                    uid = Some(id);
                    gid = Some(primary);
                    groups = list;
                }
                Err(m) => self.error(span.clone(), format!("{}: {m}", key("user"))),
            }
        }
        if let Some((g, span)) = &group {
            match lookup_group(g) {
                Ok(id) => {
                    gid = Some(id);
                    if user.is_none() {
                        groups = vec![id];
                    } else if !groups.contains(&id) {
                        groups.insert(0, id);
                    }
                }
                Err(m) => self.error(span.clone(), format!("{}: {m}", key("group"))),
            }
        }
        let gid = gid?;
        // Switching identity needs privilege; say so now rather than failing
        // every connection later.
        let euid = nix::unistd::geteuid().as_raw();
        let egid = nix::unistd::getegid().as_raw();
        if euid != 0 && (uid.is_some_and(|u| u != euid) || gid != egid) {
            let span = user.or(group).map(|(_, s)| s).unwrap_or_default();
            self.error(span, format!("services.{name}: jawasd runs as uid {euid} and cannot change to another user or group; run it as root or drop 'user'/'group'"));
            return None;
        }
        Some(Creds { uid, gid, groups })
    }

    fn string(&mut self, key: &str, v: &Value<'_>) -> Option<String> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            other => {
                self.error(
                    v.span(),
                    format!("{key}: expected a string, found {}", other.type_str()),
                );
                None
            }
        }
    }

    /// A string or a list of strings (`one_ok`), or a list only.
    fn strings(&mut self, key: &str, v: &Value<'_>, one_ok: bool) -> Vec<(String, Range<usize>)> {
        match v.get_ref() {
            DeValue::String(s) if one_ok => vec![(s.to_string(), v.span())],
            DeValue::Array(items) => {
                let mut out = Vec::new();
                for item in items.iter() {
                    if let Some(s) = self.string(key, item) {
                        out.push((s, item.span()));
                    }
                }
                out
            }
            other => {
                let want = if one_ok {
                    "a string or a list of strings"
                } else {
                    "a list of strings"
                };
                self.error(
                    v.span(),
                    format!("{key}: expected {want}, found {}", other.type_str()),
                );
                Vec::new()
            }
        }
    }

    fn boolean(&mut self, key: &str, v: &Value<'_>) -> Option<bool> {
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            other => {
                self.error(
                    v.span(),
                    format!("{key}: expected true or false, found {}", other.type_str()),
                );
                None
            }
        }
    }

    fn integer(&mut self, key: &str, v: &Value<'_>) -> Option<i64> {
        match v.get_ref() {
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Some(n),
                Err(_) => {
                    self.error(
                        v.span(),
                        format!("{key}: integer out of range (at most {})", i64::MAX),
                    );
                    None
                }
            },
            other => {
                self.error(
                    v.span(),
                    format!("{key}: expected an integer, found {}", other.type_str()),
                );
                None
            }
        }
    }

    /// An integer from `lo` to `hi`, the error naming both.
    fn in_range(&mut self, key: &str, v: &Value<'_>, lo: i64, hi: i64) -> Option<i64> {
        let n = match v.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok(),
            _ => return self.integer(key, v),
        };
        match n {
            Some(n) if (lo..=hi).contains(&n) => Some(n),
            _ => {
                self.error(v.span(), format!("{key}: must be from {lo} to {hi}"));
                None
            }
        }
    }

    /// A positive count (limits): 1 to `max`.
    fn count(&mut self, key: &str, v: &Value<'_>, max: u32) -> Option<u32> {
        let n = match v.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok(),
            _ => return self.integer(key, v).and(None),
        };
        match n.and_then(|n| u32::try_from(n).ok()) {
            Some(n) if n > 0 && n <= max => Some(n),
            _ => {
                self.error(
                    v.span(),
                    format!(
                        "{key}: must be a whole number from 1 to {max}; leave the key out for no limit"
                    ),
                );
                None
            }
        }
    }

    /// A finite number; TOML's `nan` and `inf` are refused here.
    fn number(&mut self, key: &str, v: &Value<'_>) -> Option<f64> {
        let n = match v.get_ref() {
            DeValue::Float(f) => f.as_str().replace('_', "").parse::<f64>().ok(),
            DeValue::Integer(_) => self.integer(key, v).map(|n| n as f64),
            other => {
                self.error(
                    v.span(),
                    format!("{key}: expected a number, found {}", other.type_str()),
                );
                return None;
            }
        };
        match n {
            Some(n) if n.is_finite() => Some(n),
            Some(_) => {
                self.error(v.span(), format!("{key}: must be a finite number"));
                None
            }
            None => None,
        }
    }

    /// `rate_key` (connections per second) with its `burst_key` as a token
    /// bucket, both bounded so the bucket's arithmetic stays finite.
    fn rate(
        &mut self,
        name: &str,
        rate_key: &str,
        burst_key: &str,
        merged: &BTreeMap<String, Value<'_>>,
    ) -> Option<Rate> {
        let key = |k: &str| format!("services.{name}.{k}");
        let per_second = merged.get(rate_key).and_then(|v| {
            let n = self.number(&key(rate_key), v)?;
            if !(limits::RATE_MIN..=limits::RATE_MAX).contains(&n) {
                self.error(
                    v.span(),
                    format!(
                        "{}: must be from {} to {} connections per second",
                        key(rate_key),
                        limits::RATE_MIN,
                        limits::RATE_MAX
                    ),
                );
                return None;
            }
            Some(n)
        });
        let burst_value = merged.get(burst_key);
        let burst = burst_value.and_then(|v| self.count(&key(burst_key), v, limits::BURST));
        if let (Some(v), None) = (burst_value, merged.get(rate_key)) {
            self.error(
                v.span(),
                format!(
                    "{}: set '{rate_key}' too; a burst means nothing without it",
                    key(burst_key)
                ),
            );
        }
        // RATE_MAX bounds the cast: ceil(per_second) fits a u32.
        per_second.map(|per_second| Rate {
            per_second,
            burst: burst.unwrap_or((per_second.ceil() as u32).max(1)),
        })
    }

    /// Seconds as a number, or a string with a unit: "500ms", "5s", "2m",
    /// "1h", "1d"; at most `max`.
    fn duration(&mut self, key: &str, v: &Value<'_>, max: Duration) -> Option<Duration> {
        let parsed = match v.get_ref() {
            DeValue::String(s) => parse_duration(s),
            DeValue::Integer(_) | DeValue::Float(_) => {
                let n = self.number(key, v)?;
                if n < 0.0 {
                    Err(DurationError::Negative)
                } else {
                    Duration::try_from_secs_f64(n).map_err(|_| DurationError::TooLong)
                }
            }
            _ => Err(DurationError::Syntax),
        };
        let message = match parsed {
            Ok(d) if d <= max => return Some(d),
            Ok(_) | Err(DurationError::TooLong) => {
                format!("{key}: too long; at most {}", duration_text(max))
            }
            Err(DurationError::Negative) => format!("{key}: must not be negative"),
            Err(DurationError::Syntax) => format!(
                "{key}: expected a duration such as 5, \"500ms\", \"30s\", \"2m\", \"1h\" or \"1d\""
            ),
        };
        self.error(v.span(), message);
        None
    }

    /// Bytes as an integer, a string with a K/M/G/T suffix (powers of
    /// 1024), or "unlimited"; at most `limits::RLIMIT_SIZE`.
    fn size(&mut self, key: &str, v: &Value<'_>) -> Option<u64> {
        let parsed = match v.get_ref() {
            DeValue::String(s) if s == "unlimited" => return Some(libc::RLIM_INFINITY),
            DeValue::String(s) => parse_size(s).ok_or_else(|| size_is_numeric(s)),
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
                .ok()
                .and_then(|n| u64::try_from(n).ok())
                // Only a positive number can fail to parse by being too large.
                .ok_or(!i.as_str().starts_with('-')),
            _ => Err(false),
        };
        let message = match parsed {
            Ok(n) if n <= limits::RLIMIT_SIZE => return Some(n),
            Ok(_) | Err(true) => format!(
                "{key}: too large; at most {} (\"1024T\"), or \"unlimited\"",
                limits::RLIMIT_SIZE
            ),
            Err(false) => {
                format!("{key}: expected a size such as 268435456, \"256M\" or \"unlimited\"")
            }
        };
        self.error(v.span(), message);
        None
    }

    fn umask(&mut self, key: &str, v: &Value<'_>) -> Option<libc::mode_t> {
        let parsed = match v.get_ref() {
            DeValue::String(s) => libc::mode_t::from_str_radix(s, 8).ok(),
            DeValue::Integer(i) if i.radix() == 8 => {
                libc::mode_t::from_str_radix(i.as_str(), 8).ok()
            }
            _ => None,
        };
        match parsed {
            Some(m) if m <= 0o777 => Some(m),
            _ => {
                self.error(v.span(), format!("{key}: expected octal permission bits as a string such as \"022\" (or 0o022)"));
                None
            }
        }
    }

    /// A directory path; relative paths are relative to the config file.
    fn path_value(&mut self, key: &str, v: &Value<'_>) -> Option<CString> {
        let s = self.string(key, v)?;
        if s.is_empty() {
            self.error(v.span(), format!("{key}: empty path"));
            return None;
        }
        // Relative paths are relative to the config file, like engines. (With
        // chroot, give workdir as an absolute path inside the new root.)
        let p = if Path::new(&s).is_absolute() {
            PathBuf::from(&s)
        } else {
            self.base_dir.join(&s)
        };
        match CString::new(p.as_os_str().as_bytes()) {
            Ok(c) => Some(c),
            Err(_) => {
                self.error(v.span(), format!("{key}: path contains a NUL byte"));
                None
            }
        }
    }
}

/// The engine-check stage: every service whose engine is a bundled one (and
/// not chrooted, as the check runs outside any jail) runs `ENGINE --check
/// ARGS` as it would run; identical checks run once. Returns the errors
/// with the index of their service; inconclusive checks are logged as
/// warnings and never fail the config.
fn check_engines(
    services: &[Service],
    at: &[(usize, &'static str)],
    path: &Path,
    runner: &Runner<'_>,
) -> Vec<(usize, ConfigError)> {
    let mut groups: BTreeMap<Check, Vec<usize>> = BTreeMap::new();
    for (i, svc) in services.iter().enumerate() {
        let check = Check {
            engine: svc.engine.clone(),
            argv: svc.argv.clone(),
            env: svc.env.clone(),
            workdir: svc.workdir.clone(),
            uid: svc.creds.as_ref().and_then(|c| c.uid),
            gid: svc.creds.as_ref().map(|c| c.gid),
        };
        if svc.chroot.is_none() && engine_check::BUNDLED.contains(&check.name().as_str()) {
            groups.entry(check).or_default().push(i);
        }
    }
    if groups.is_empty() {
        return Vec::new();
    }
    let checks: Vec<Check> = groups.keys().cloned().collect();
    let results = runner(&checks);
    let mut errors = Vec::new();
    for ((check, users), ran) in groups.iter().zip(results) {
        match engine_check::judge(&check.name(), &ran) {
            Verdict::Valid | Verdict::Unsupported => {}
            Verdict::Invalid(lines) => {
                for &i in users {
                    let (line, key) = at.get(i).copied().unwrap_or((0, "engine"));
                    for l in &lines {
                        let message =
                            format!("services.{}.{key}: engine check: {l}", services[i].name);
                        errors.push((i, ConfigError { line, message }));
                    }
                }
            }
            Verdict::Inconclusive(why) => {
                let names: Vec<String> = users
                    .iter()
                    .map(|&i| format!("services.{}", services[i].name))
                    .collect();
                log::warn!(
                    "{}: {}: {why}; arguments not checked",
                    path.display(),
                    names.join(", ")
                );
            }
        }
    }
    errors
}

/// Reads `path`, refusing more than `max` bytes: a mistaken path such as
/// /dev/zero is an error, not a hang that eats memory.
pub fn read_capped(path: &Path, max: usize) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| crate::errno_text(&e))?;
    read_file_capped(file, max)
}

/// As `read_capped`, for files a configuration merely names (xinetd
/// includes, banners): only a regular file will do, so a FIFO or a device
/// like /proc/kmsg, which never ends or never answers, is an error too.
pub fn read_regular_capped(path: &Path, max: usize) -> Result<Vec<u8>, String> {
    use std::os::unix::fs::OpenOptionsExt;
    // Non-blocking, so opening a FIFO does not wait for a writer.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| crate::errno_text(&e))?;
    let meta = file.metadata().map_err(|e| crate::errno_text(&e))?;
    // /proc files are "regular" yet endless or blocking; they are no config.
    if !meta.is_file() || path.starts_with("/proc") {
        return Err("not a regular file".into());
    }
    read_file_capped(file, max)
}

fn read_file_capped(file: std::fs::File, max: usize) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    file.take(max as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| crate::errno_text(&e))?;
    if bytes.len() > max {
        return Err(format!("larger than {max} bytes"));
    }
    Ok(bytes)
}

fn is_executable(p: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(p).map_err(|e| crate::errno_text(&e))?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err("not executable (no x permission bit)".into());
    }
    Ok(())
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

fn valid_env_name(s: &str) -> bool {
    !s.is_empty()
        && !s.as_bytes()[0].is_ascii_digit()
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `127.0.0.1:8080`, `[::1]:8080`, `0.0.0.0:7`, `[::]:80`.
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    s.parse::<SocketAddr>().map_err(|_| {
        if s.parse::<std::net::IpAddr>().is_ok() || !s.contains(':') {
            format!("'{s}' has no port; write ADDRESS:PORT such as 127.0.0.1:8080 or [::1]:8080")
        } else {
            format!("'{s}' is not ADDRESS:PORT (such as 127.0.0.1:8080 or [::1]:8080); host names are not looked up")
        }
    })
}

/// Why a duration was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationError {
    Syntax,
    Negative,
    /// Beyond what a `Duration` holds (the caller's maximum is smaller still).
    TooLong,
}

/// `"500ms"`, `"5s"`, `"5"`, `"2m"`, `"1h"`, `"1d"`; never panics, however long.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    // Digits and at most one dot: a huge number parses as a huge (or
    // infinite) float, caught below, never as an error of its own.
    let n: f64 = num.parse().map_err(|_| DurationError::Syntax)?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        _ => return Err(DurationError::Syntax),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| DurationError::TooLong)
}

/// A maximum as the file would say it: `"1h" (3600 seconds)`.
fn duration_text(d: Duration) -> String {
    let secs = d.as_secs();
    let short = if secs.is_multiple_of(86400) {
        format!("{}d", secs / 86400)
    } else if secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else {
        format!("{secs}s")
    };
    format!("\"{short}\" ({secs} seconds)")
}

/// `HH:MM-HH:MM` as minutes of the day.
pub fn parse_time_range(s: &str) -> Option<(u16, u16)> {
    let minutes = |t: &str| -> Option<u16> {
        let (h, m) = t.trim().split_once(':')?;
        let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60).then_some(h * 60 + m)
    };
    let (a, b) = s.split_once('-')?;
    Some((minutes(a)?, minutes(b)?))
}

/// `facility.level` for syslog(3).
pub fn parse_syslog(s: &str) -> Option<(libc::c_int, libc::c_int)> {
    let (f, l) = s.split_once('.').unwrap_or((s, "info"));
    let facility = match f {
        "daemon" => libc::LOG_DAEMON,
        "auth" => libc::LOG_AUTH,
        "authpriv" => libc::LOG_AUTHPRIV,
        "user" => libc::LOG_USER,
        "mail" => libc::LOG_MAIL,
        "lpr" => libc::LOG_LPR,
        "news" => libc::LOG_NEWS,
        "uucp" => libc::LOG_UUCP,
        "ftp" => libc::LOG_FTP,
        "local0" => libc::LOG_LOCAL0,
        "local1" => libc::LOG_LOCAL1,
        "local2" => libc::LOG_LOCAL2,
        "local3" => libc::LOG_LOCAL3,
        "local4" => libc::LOG_LOCAL4,
        "local5" => libc::LOG_LOCAL5,
        "local6" => libc::LOG_LOCAL6,
        "local7" => libc::LOG_LOCAL7,
        _ => return None,
    };
    let level = match l {
        "emerg" => libc::LOG_EMERG,
        "alert" => libc::LOG_ALERT,
        "crit" => libc::LOG_CRIT,
        "err" => libc::LOG_ERR,
        "warning" => libc::LOG_WARNING,
        "notice" => libc::LOG_NOTICE,
        "info" => libc::LOG_INFO,
        "debug" => libc::LOG_DEBUG,
        _ => return None,
    };
    Some((facility, level))
}

/// Bytes with an optional K, M, G or T suffix (powers of 1024); `None` when
/// malformed or beyond u64.
pub fn parse_size(s: &str) -> Option<u64> {
    let (num, mult) = split_size(s)?;
    num.parse::<u64>().ok()?.checked_mul(mult)
}

fn split_size(s: &str) -> Option<(&str, u64)> {
    let s = s.trim();
    let (num, mult) = match s.as_bytes().last()? {
        b'K' | b'k' => (&s[..s.len() - 1], 1u64 << 10),
        b'M' | b'm' => (&s[..s.len() - 1], 1 << 20),
        b'G' | b'g' => (&s[..s.len() - 1], 1 << 30),
        b'T' | b't' => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    Some((num.trim(), mult))
}

/// Whether a size `parse_size` refused is well formed, and so too large.
fn size_is_numeric(s: &str) -> bool {
    split_size(s).is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn lookup_user(name: &str) -> Result<(libc::uid_t, libc::gid_t, Vec<libc::gid_t>), String> {
    use nix::unistd::{getgrouplist, Uid, User};
    let user = match name.parse::<u32>() {
        Ok(n) => User::from_uid(Uid::from_raw(n)),
        Err(_) => User::from_name(name),
    };
    match user {
        Ok(Some(u)) => {
            let cname = CString::new(u.name.as_bytes()).map_err(|_| "bad user name".to_string())?;
            let groups = getgrouplist(&cname, u.gid)
                .map_err(|e| format!("unable to list the groups of '{name}': {}", e.desc()))?;
            Ok((
                u.uid.as_raw(),
                u.gid.as_raw(),
                groups.into_iter().map(|g| g.as_raw()).collect(),
            ))
        }
        Ok(None) => Err(format!("no such user '{name}'")),
        Err(e) => Err(format!("unable to look up user '{name}': {}", e.desc())),
    }
}

fn lookup_group(name: &str) -> Result<libc::gid_t, String> {
    use nix::unistd::{Gid, Group};
    let group = match name.parse::<u32>() {
        Ok(n) => Group::from_gid(Gid::from_raw(n)),
        Err(_) => Group::from_name(name),
    };
    match group {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        Ok(None) => Err(format!("no such group '{name}'")),
        Err(e) => Err(format!("unable to look up group '{name}': {}", e.desc())),
    }
}

/// Longest message text kept from one error: values quoted from the file
/// are cut so a megabyte-long string cannot become a megabyte-long line.
const MAX_MESSAGE: usize = 400;

/// `message` as one printable line: control characters (a newline in a
/// quoted key, say) escaped, and cut at `MAX_MESSAGE` bytes.
pub fn one_line(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(MAX_MESSAGE + 3));
    for c in message.chars() {
        if out.len() >= MAX_MESSAGE {
            out.push_str("...");
            break;
        }
        if c.is_control() {
            out.push_str(&c.escape_default().to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// The closest allowed key within edit distance 2 (or a third of the length).
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    // No key is this long; comparing would cost length x key length per
    // candidate for nothing.
    if word.len() > 64 {
        return None;
    }
    let limit = (word.len() / 3).max(2);
    candidates
        .iter()
        .filter_map(|c| Some((edit_distance(word.as_bytes(), c.as_bytes(), limit)?, *c)))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance of `a` and `b` (bytes: keys are ASCII), or `None`
/// once it must exceed `limit`. Both are at most 64 bytes (`did_you_mean`
/// checks), so two rows on the stack do: a file of 20,000 unknown keys
/// costs no allocation per comparison.
fn edit_distance(a: &[u8], b: &[u8], limit: usize) -> Option<usize> {
    const MAX: usize = 64;
    if a.len() > MAX || b.len() > MAX || a.len().abs_diff(b.len()) > limit {
        return None;
    }
    let mut prev = [0usize; MAX + 1];
    let mut cur = [0usize; MAX + 1];
    for (j, p) in prev.iter_mut().enumerate().take(b.len() + 1) {
        *p = j;
    }
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        let mut row_min = cur[0];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
            row_min = row_min.min(cur[j + 1]);
        }
        // Distances never shrink down the rows.
        if row_min > limit {
            return None;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    Some(prev[b.len()]).filter(|&d| d <= limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Env<'static> {
        Env {
            exe_dir: None,
            path_var: Some(std::ffi::OsStr::new("/bin:/usr/bin")),
        }
    }

    /// Parses `text` and returns the error lines, or "ok".
    fn check(text: &str) -> String {
        match Config::parse(text, Path::new("/etc/j.toml"), &env()) {
            Ok(_) => "ok".into(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let cases = [
            (
                "[services.a]\nlisten = \"127.0.0.1:1\"\nengine = \"true\"\n",
                "ok",
            ),
            (
                "[services.a]\nlisten = \"127.0.0.1:1\"\nengine = \"true\"\ninstancs = 3\n",
                "/etc/j.toml:4: services.a.instancs: unknown key; did you mean 'instances'?",
            ),
            (
                "[services.a]\nlisten = \"127.0.0.1\"\nengine = \"true\"\n",
                "/etc/j.toml:2: services.a.listen: '127.0.0.1' has no port; write ADDRESS:PORT such as 127.0.0.1:8080 or [::1]:8080",
            ),
            (
                "[services.a]\nlisten = \"127.0.0.1:1\"\nengine = \"no-such-engine-xyz\"\n",
                "/etc/j.toml:3: services.a.engine: 'no-such-engine-xyz' not found beside jawasd or in PATH",
            ),
            (
                "[services.a]\nlisten = \"127.0.0.1:1\"\nengine = \"/etc/passwd\"\n",
                "/etc/j.toml:3: services.a.engine: /etc/passwd: not executable (no x permission bit)",
            ),
            (
                "[services.a]\nengine = \"true\"\n",
                "/etc/j.toml:1: services.a: missing key 'listen'",
            ),
            (
                "[server]\nmax_conections = 5\n[services.a]\nlisten = \"127.0.0.1:1\"\nengine = \"true\"\ninstances = 0\n",
                "/etc/j.toml:2: server.max_conections: unknown key; did you mean 'max_connections'?\n/etc/j.toml:6: services.a.instances: must be a whole number from 1 to 4294967295; leave the key out for no limit",
            ),
            (
                "[services.a]\nlisten = [\"127.0.0.1:1\", \"[::1]:1\"]\nengine = \"true\"\nonly_from = [\"10.0.0.0/8\", \"bogus\"]\n",
                "/etc/j.toml:4: services.a.only_from: 'bogus' is not an address or CIDR block (e.g. 10.0.0.0/8, ::1)",
            ),
            (
                "[services.a]\nlisten = \"127.0.0.1:1\"\nengine = \"true\"\n[services.b]\nlisten = \"127.0.0.1:1\"\nengine = \"true\"\n",
                "/etc/j.toml:5: services.b.listen: 127.0.0.1:1 is already the address of service 'a'",
            ),
            (
                "[defaults]\ninstances = \"ten\"\n[services.a]\nlisten = \"127.0.0.1:1\"\nengine = \"true\"\n",
                "/etc/j.toml:2: services.a.instances: expected an integer, found string",
            ),
            (
                "[services.a]\nlisten = \"127.0.0.1:1\"\nengine = \"true\"\numask = 22\n",
                "/etc/j.toml:4: services.a.umask: expected octal permission bits as a string such as \"022\" (or 0o022)",
            ),
            (
                "[services.a]\nlisten = \"127.0.0.1:1\"\nengine = \"true\"\nuser = \"no-such-user-xyz\"\n",
                "/etc/j.toml:4: services.a.user: no such user 'no-such-user-xyz'",
            ),
            ("[services.a\n", "/etc/j.toml:1: TOML syntax:"),
            ("", "/etc/j.toml: no [services.NAME] table: nothing to serve"),
            (
                "servics = 1\n[services.a]\nlisten = \"127.0.0.1:1\"\nengine = \"true\"\n",
                "/etc/j.toml:1: servics: unknown key; did you mean 'services'?",
            ),
            (
                "[services.a]\nlisten = \"127.0.0.1:1\"\nengine = \"true\"\ndisabled = true\n",
                "/etc/j.toml: every service is disabled: nothing to serve",
            ),
            (
                "[server]\ncontrol_mode = \"0999\"\n[services.a]\nlisten = \"127.0.0.1:1\"\nengine = \"true\"\n",
                "/etc/j.toml:2: server.control_mode: expected octal permission bits",
            ),
            (
                "[server]\ncontrol = 5\n[services.a]\nlisten = \"127.0.0.1:1\"\nengine = \"true\"\n",
                "/etc/j.toml:2: server.control: expected a string, found integer",
            ),
            (
                "[server]\ncontrol = \"\"\n[services.a]\nlisten = \"127.0.0.1:1\"\nengine = \"true\"\n",
                "/etc/j.toml:2: server.control: empty path",
            ),
        ];
        for (input, want) in cases {
            let got = check(input);
            assert!(
                got.starts_with(want),
                "input:\n{input}\nwant: {want}\ngot:  {got}"
            );
        }
    }

    /// Every number the file holds is bounded, the error naming the key,
    /// its line and the maximum; none of these may panic.
    #[test]
    fn control_socket_and_stderr_defaults() {
        let cases: &[(&str, Option<&str>, libc::mode_t, StderrMode)] = &[
            ("", None, 0o600, StderrMode::Capture),
            (
                "[server]\ncontrol = \"run/c.sock\"\ncontrol_mode = \"0660\"\n",
                Some("/etc/run/c.sock"),
                0o660,
                StderrMode::Capture,
            ),
            (
                "[server]\ncontrol = \"/run/j.sock\"\n[defaults]\ncapture_stderr = false\n",
                Some("/run/j.sock"),
                0o600,
                StderrMode::Log,
            ),
            (
                "[defaults]\nstderr = \"log\"\n",
                None,
                0o600,
                StderrMode::Log,
            ),
        ];
        for (head, control, mode, stderr) in cases {
            let text = format!("{head}[services.a]\nlisten = \"127.0.0.1:1\"\nengine = \"true\"\n");
            let c = Config::parse(&text, Path::new("/etc/j.toml"), &env()).unwrap();
            assert_eq!(
                c.server.control.as_deref(),
                control.map(Path::new),
                "{head}"
            );
            assert_eq!(c.server.control_mode, *mode, "{head}");
            assert_eq!(c.services[0].stderr, *stderr, "{head}");
        }
    }

    #[test]
    fn absurd_values_are_errors_naming_the_maximum() {
        let svc = "[services.a]\nlisten = \"127.0.0.1:1\"\nengine = \"true\"\n";
        let cases: &[(&str, &str)] = &[
            ("[server]\nshutdown_grace = 1e20\n", "/etc/j.toml:2: server.shutdown_grace: too long; at most \"1h\" (3600 seconds)"),
            ("[server]\nshutdown_grace = \"99999999999999999999999s\"\n", "/etc/j.toml:2: server.shutdown_grace: too long; at most \"1h\""),
            ("[server]\nshutdown_grace = 3601\n", "/etc/j.toml:2: server.shutdown_grace: too long; at most \"1h\""),
            ("[server]\nshutdown_grace = \"2h\"\n", "server.shutdown_grace: too long"),
            ("[server]\nshutdown_grace = -1\n", "/etc/j.toml:2: server.shutdown_grace: must not be negative"),
            ("[server]\nshutdown_grace = nan\n", "/etc/j.toml:2: server.shutdown_grace: must be a finite number"),
            ("[server]\nshutdown_grace = inf\n", "/etc/j.toml:2: server.shutdown_grace: must be a finite number"),
            ("[server]\nshutdown_grace = \"1e3s\"\n", "server.shutdown_grace: expected a duration"),
            ("[server]\nshutdown_grace = 99999999999999999999\n", "server.shutdown_grace: integer out of range"),
            ("[server]\nmax_connections = 4294967296\n", "server.max_connections: must be a whole number from 1 to 4294967295"),
            ("[server]\nmax_connections = 99999999999999999999\n", "server.max_connections: must be a whole number from 1 to 4294967295"),
            ("[defaults]\ndeny_time = \"160000000000000000m\"\n", "/etc/j.toml:2: services.a.deny_time: too long; at most \"365d\" (31536000 seconds)"),
            ("[defaults]\ndeny_time = \"366d\"\n", "services.a.deny_time: too long; at most \"365d\""),
            ("[defaults]\nlimit_wait = \"2m\"\n", "/etc/j.toml:2: services.a.limit_wait: too long; at most \"60s\""),
            ("[defaults]\nlimit_wait = -1\n", "services.a.limit_wait: must not be negative"),
            ("[defaults]\nlimit_wait = \"soon\"\n", "services.a.limit_wait: expected a duration"),
            ("[defaults]\nrate = 0\n", "/etc/j.toml:2: services.a.rate: must be from 0.001 to 1000000 connections per second"),
            ("[defaults]\nrate = 1e300\n", "services.a.rate: must be from 0.001 to 1000000"),
            ("[defaults]\nrate = nan\n", "services.a.rate: must be a finite number"),
            ("[defaults]\nrate = -inf\n", "services.a.rate: must be a finite number"),
            ("[defaults]\nrate = 5\nrate_burst = 1000001\n", "/etc/j.toml:3: services.a.rate_burst: must be a whole number from 1 to 1000000"),
            ("[defaults]\nper_source_rate = 2000000\n", "services.a.per_source_rate: must be from 0.001 to 1000000"),
            ("[defaults]\nper_source_rate_burst = 3\n", "services.a.per_source_rate_burst: set 'per_source_rate' too"),
            ("[defaults]\nmax_load = -1\n", "services.a.max_load: must be from 0 to 1000000"),
            ("[defaults]\nmax_load = 1e7\n", "services.a.max_load: must be from 0 to 1000000"),
            ("[defaults]\nmax_load = nan\n", "services.a.max_load: must be a finite number"),
            ("[defaults]\nnice = 99999999999999999999\n", "services.a.nice: must be from -20 to 19"),
            ("[defaults]\nrlimit_cpu = \"400d\"\n", "services.a.rlimit_cpu: too long; at most \"365d\""),
            ("[defaults]\nrlimit_nofile = 1073741825\n", "services.a.rlimit_nofile: must be a whole number from 1 to 1073741824"),
            ("[defaults]\nrlimit_as = \"99999999999999999999G\"\n", "services.a.rlimit_as: too large; at most 1125899906842624"),
            ("[defaults]\nrlimit_as = \"1025T\"\n", "services.a.rlimit_as: too large"),
            ("[defaults]\nrlimit_as = 99999999999999999999\n", "services.a.rlimit_as: too large"),
            ("[defaults]\nrlimit_stack = -1\n", "services.a.rlimit_stack: expected a size"),
            ("[defaults]\ninstances = 0\n", "services.a.instances: must be a whole number from 1 to 4294967295"),
            ("[defaults]\n\"bad\\nkey\" = 1\n", "/etc/j.toml:2: defaults.bad\\nkey: unknown key"),
        ];
        for (head, want) in cases {
            let got = check(&format!("{head}{svc}"));
            assert!(
                got.contains(want),
                "input:\n{head}\nwant: {want}\ngot:  {got}"
            );
            assert_eq!(got.lines().count(), 1, "one error, one line: {got}");
        }
    }

    #[test]
    fn largest_values_are_accepted() {
        let text = "[server]\nshutdown_grace = \"1h\"\nmax_connections = 4294967295\n[services.a]\nlisten = \"127.0.0.1:1\"\nengine = \"true\"\nsensor = true\ndeny_time = \"365d\"\nrate = 1000000\nrate_burst = 1000000\nper_source_rate = 0.5\nper_source_rate_burst = 3\nmax_load = 1000000\nrlimit_cpu = \"unlimited\"\nrlimit_as = \"1024T\"\nrlimit_data = \"unlimited\"\nrlimit_nofile = 1073741824\n";
        let c = Config::parse(text, Path::new("/etc/j.toml"), &env()).unwrap();
        assert_eq!(c.server.shutdown_grace, Duration::from_secs(3600));
        let a = &c.services[0];
        assert_eq!(a.deny_time, Some(limits::DENY_TIME));
        assert_eq!(
            a.rate.map(|r| (r.per_second, r.burst)),
            Some((1e6, 1_000_000))
        );
        let psr = a.per_source_rate.unwrap();
        assert_eq!((psr.per_second, psr.burst), (0.5, 3));
        assert_eq!(
            a.rlimits,
            vec![
                (RlimitKind::As, 1 << 50),
                (RlimitKind::Cpu, libc::RLIM_INFINITY),
                (RlimitKind::Nofile, 1 << 30),
                (RlimitKind::Data, libc::RLIM_INFINITY),
            ]
        );
        // A per-source rate without a burst gets ceil(rate), at least 1.
        let text = "[defaults]\nper_source_rate = 2.5\n[services.a]\nlisten = \"127.0.0.1:1\"\nengine = \"true\"\n";
        let c = Config::parse(text, Path::new("/etc/j.toml"), &env()).unwrap();
        assert_eq!(c.services[0].per_source_rate.map(|r| r.burst), Some(3));
        assert!(c.services[0].rate.is_none());
    }

    #[test]
    fn line_index_matches_a_recount() {
        let texts = ["", "a", "a\n", "\n\n", "ab\ncd\n\nef", "\nx"];
        for t in texts {
            let index = LineIndex::new(t);
            for offset in 0..=t.len() + 2 {
                let want = t.as_bytes()[..offset.min(t.len())]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count()
                    + 1;
                assert_eq!(index.line_of(offset), want, "{t:?} at {offset}");
            }
        }
    }

    /// 20,000 errors in 1.5 MB: linear reporting, and only the first
    /// `REPORTED_ERRORS` printed.
    #[test]
    fn many_errors_are_reported_fast_and_capped() {
        let mut text = String::from("[services.a]\nlisten = \"127.0.0.1:1\"\nengine = \"true\"\n");
        for i in 0..20_000 {
            text.push_str(&format!(
                "unknown_key_number_{i:05} = \"{}\"\n",
                "x".repeat(40)
            ));
        }
        assert!(text.len() > 1_400_000, "{}", text.len());
        let started = std::time::Instant::now();
        let err = Config::parse(&text, Path::new("/etc/j.toml"), &env()).unwrap_err();
        let shown = err.to_string();
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(err.errors.len(), 20_000);
        assert_eq!(shown.lines().count(), limits::REPORTED_ERRORS + 1);
        assert!(
            shown.starts_with("/etc/j.toml:4: services.a.unknown_key_number_00000: unknown key")
        );
        assert!(
            shown.ends_with("/etc/j.toml: and 19900 more errors"),
            "{}",
            &shown[shown.len() - 100..]
        );
    }

    #[test]
    fn messages_are_one_short_line() {
        assert_eq!(one_line("a\nb\tc\u{7}"), "a\\nb\\tc\\u{7}");
        let long = one_line(&"é".repeat(1000));
        assert!(
            long.len() <= MAX_MESSAGE + 5 && long.ends_with("..."),
            "{}",
            long.len()
        );
        assert_eq!(did_you_mean(&"x".repeat(100_000), SERVICE_KEYS), None);
    }

    /// The engine-check stage with a stand-in runner: which services are
    /// checked, with what, and where their findings point.
    #[test]
    fn engine_checks_point_at_the_service_args() {
        use engine_check::{Exit, Ran};
        use std::cell::RefCell;
        let dir = std::env::temp_dir().join(format!("jawas-config-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fake = dir.join("jawas-static");
        let _ = std::fs::remove_file(&fake);
        std::os::unix::fs::symlink("/bin/true", &fake).unwrap();
        let text = format!(
            "[defaults]\nengine = \"{f}\"\n[services.a]\nlisten = \"127.0.0.1:1\"\nargs = [\"--cache-controll\"]\n[services.b]\nlisten = \"127.0.0.1:2\"\nargs = [\"--cache-controll\"]\n[services.c]\nlisten = \"127.0.0.1:3\"\n[services.d]\nlisten = \"127.0.0.1:4\"\nengine = \"true\"\n[services.e]\nlisten = \"127.0.0.1:5\"\nargs = [\"--slow\"]\n",
            f = fake.display()
        );
        let seen = RefCell::new(Vec::new());
        let runner = |checks: &[Check]| -> Vec<Ran> {
            seen.borrow_mut().extend(checks.iter().cloned());
            checks
                .iter()
                .map(|c| {
                    let args: Vec<&[u8]> = c.argv.iter().map(|a| a.as_bytes()).collect();
                    let (exit, stderr) = match &args[1..] {
                        [b"--cache-controll"] => (
                            Exit::Code(100),
                            "jawas-static: error: unknown option '--cache-controll'\n",
                        ),
                        [b"--slow"] => (Exit::TimedOut, ""),
                        _ => (Exit::Code(0), ""),
                    };
                    Ran {
                        exit,
                        stderr: stderr.into(),
                    }
                })
                .collect()
        };
        let path = dir.join("j.toml");
        let err = Config::parse_with(&text, &path, &env(), false, &runner).unwrap_err();
        let want = [
            (5, "services.a.args: engine check: jawas-static: error: unknown option '--cache-controll'"),
            (8, "services.b.args: engine check: jawas-static: error: unknown option '--cache-controll'"),
        ];
        let got: Vec<(usize, &str)> = err
            .errors
            .iter()
            .map(|e| (e.line, e.message.as_str()))
            .collect();
        assert_eq!(got, want);
        // a and b share one check; d's engine is not bundled; c and e are
        // checked, e's timeout is no error.
        let argvs: Vec<Vec<String>> = seen
            .borrow()
            .iter()
            .map(|c| {
                c.argv
                    .iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect()
            })
            .collect();
        assert_eq!(argvs.len(), 3, "{argvs:?}");
        assert!(seen
            .borrow()
            .iter()
            .all(|c| c.env.iter().any(|e| e.as_bytes().starts_with(b"PATH="))));
        // Leniently (xinetd), the broken services are left out, the rest run.
        seen.borrow_mut().clear();
        let (c, dropped) = Config::parse_with(&text, &path, &env(), true, &runner).unwrap();
        let names: Vec<&str> = c.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["c", "d", "e"]);
        assert_eq!(dropped.len(), 2);
        // Without args, the finding points at the engine line.
        let text = format!(
            "[services.a]\nlisten = \"127.0.0.1:1\"\nengine = \"{}\"\n",
            fake.display()
        );
        let refuse = |checks: &[Check]| -> Vec<Ran> {
            checks
                .iter()
                .map(|_| Ran {
                    exit: Exit::Code(100),
                    stderr: b"jawas-static: error: --root is required\n".to_vec(),
                })
                .collect()
        };
        let err = Config::parse_with(&text, &path, &env(), false, &refuse).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}:3: services.a.engine: engine check: jawas-static: error: --root is required",
                path.display()
            )
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Found by config-fuzz: 400 kB of [defaults] copied into 15,000
    /// services took over a minute; now one error, at once.
    #[test]
    fn defaults_times_services_is_bounded() {
        let acl: Vec<String> = (0..25_000)
            .map(|i| format!("\"10.{}.{}.0/24\"", i / 256, i % 256))
            .collect();
        let mut text = format!(
            "[defaults]\nengine = \"true\"\nonly_from = [{}]\n",
            acl.join(",")
        );
        for i in 0..15_000 {
            text.push_str(&format!("[services.s{i}]\nlisten = \"127.0.0.1:0\"\n"));
        }
        let started = std::time::Instant::now();
        let got = check(&text);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert!(got.starts_with("/etc/j.toml:1: defaults: "), "{got}");
        assert!(
            got.contains("bytes of values copied into 15000 services is over the 16 MiB"),
            "{got}"
        );
        // The same defaults for a few services are fine.
        let text = format!("[defaults]\nengine = \"true\"\nonly_from = [{}]\n[services.a]\nlisten = \"127.0.0.1:0\"\n", acl.join(","));
        assert_eq!(check(&text), "ok");
    }

    #[test]
    fn reads_are_capped() {
        assert_eq!(
            read_capped(Path::new("/dev/zero"), 1000),
            Err("larger than 1000 bytes".into())
        );
        assert_eq!(
            read_regular_capped(Path::new("/dev/zero"), 1000),
            Err("not a regular file".into())
        );
        assert!(read_regular_capped(Path::new("/proc/kmsg"), 1000).is_err());
        assert_eq!(
            read_capped(Path::new("/nonexistent"), 1000),
            Err("no such file or directory".into())
        );
        let err = Config::load(Path::new("/dev/zero"), &env()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "/dev/zero: unable to read: larger than {} bytes",
                limits::FILE
            )
        );
    }

    #[test]
    fn defaults_apply_and_services_override() {
        let text = "[defaults]\ninstances = 7\nper_source = 2\n[services.a]\nlisten = \"127.0.0.1:1\"\nengine = \"true\"\n[services.b]\nlisten = \"127.0.0.1:2\"\nengine = \"true\"\ninstances = 9\nenv = { FOO = \"bar\" }\n";
        let c = Config::parse(text, Path::new("/etc/j.toml"), &env()).unwrap();
        let a = &c.services[0];
        let b = &c.services[1];
        assert_eq!((a.instances, a.per_source), (Some(7), Some(2)));
        assert_eq!((b.instances, b.per_source), (Some(9), Some(2)));
        assert!(b.env.iter().any(|e| e.to_bytes() == b"FOO=bar"));
        assert!(a
            .env
            .iter()
            .any(|e| e.to_bytes() == format!("PATH={DEFAULT_PATH}").as_bytes()));
        assert_eq!(a.engine.to_bytes(), b"/bin/true");
        assert_eq!(a.argv[0].to_bytes(), b"true");
    }

    #[test]
    fn units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("3 fortnights"), Err(DurationError::Syntax));
        assert_eq!(parse_size("256M"), Some(256 << 20));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size("12"), Some(12));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(did_you_mean("per_sorce", SERVICE_KEYS), Some("per_source"));
        assert_eq!(did_you_mean("zzzzzz", SERVICE_KEYS), None);
        let distances: &[(&str, &str, usize, Option<usize>)] = &[
            ("", "", 2, Some(0)),
            ("abc", "abc", 2, Some(0)),
            ("kitten", "sitting", 3, Some(3)),
            ("kitten", "sitting", 2, None),
            ("a", "abcd", 2, None),
            ("rate_brust", "rate_burst", 3, Some(2)),
        ];
        for &(a, b, limit, want) in distances {
            assert_eq!(
                edit_distance(a.as_bytes(), b.as_bytes(), limit),
                want,
                "{a} {b}"
            );
        }
    }
}
