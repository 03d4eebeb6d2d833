//! Test support: run the real `jawasd` with a temporary config and talk to it.
//!
//! Owns temp directories, starting and stopping jawasd, collecting its log,
//! and small socket helpers. Every test gets a fresh directory and its own
//! ephemeral ports on loopback, so tests run in parallel without sharing
//! anything. Binaries are the ones `cargo build --workspace` left beside the
//! test executable's `deps/` directory.
//!
//! Config text may use `{dir}` (the test's temp dir) and `{bin}` (the
//! directory of the built binaries); both are substituted before writing.

pub mod browser;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Directory holding the workspace's built binaries (`target/debug`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("deps dir");
    let dir = deps.parent().expect("target profile dir").to_path_buf();
    assert!(
        dir.join("jawasd").exists(),
        "{} has no jawasd: run `cargo build --workspace` before `cargo test`",
        dir.display()
    );
    dir
}

/// Path of a built binary, e.g. `bin("jawas-builtin")`.
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --workspace`",
        p.display()
    );
    p
}

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("jawas-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Default for TempDir {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Shared log text of a running jawasd, with a condvar for waiters.
#[derive(Default)]
struct Log {
    text: Mutex<String>,
    grew: Condvar,
}

/// Options for starting jawasd.
pub struct Builder {
    config: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    nofile: Option<u64>,
    dir: Option<TempDir>,
    xinetd: bool,
}

impl Builder {
    /// Extra command-line arguments (`--log-level debug`).
    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.to_string());
        self
    }
    /// An environment variable for jawasd itself.
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }
    /// Starts jawasd with this RLIMIT_NOFILE (soft and hard).
    pub fn nofile(mut self, n: u64) -> Self {
        self.nofile = Some(n);
        self
    }
    /// The config is an xinetd.conf, run with `--xinetd`.
    pub fn xinetd(mut self) -> Self {
        self.xinetd = true;
        self
    }
    /// Uses an existing temp dir (to place files before start).
    pub fn dir(mut self, d: TempDir) -> Self {
        self.dir = Some(d);
        self
    }

    /// Starts jawasd and waits for its ready line; panics with the log if it
    /// does not come within 10 s.
    pub fn start(self) -> Jawasd {
        let dir = self.dir.unwrap_or_default();
        let (file, flag) = if self.xinetd {
            ("xinetd.conf", "--xinetd")
        } else {
            ("jawasd.toml", "--config")
        };
        let config_path = dir.path().join(file);
        std::fs::write(&config_path, expand(&self.config, dir.path())).expect("write config");
        let mut cmd = Command::new(bin("jawasd"));
        cmd.arg(flag)
            .arg(&config_path)
            .args(&self.args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if let Some(n) = self.nofile {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe.
            unsafe {
                cmd.pre_exec(move || {
                    let lim = libc::rlimit {
                        rlim_cur: n,
                        rlim_max: n,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = cmd.spawn().expect("spawn jawasd");
        let log = Arc::new(Log::default());
        let stderr = child.stderr.take().expect("stderr pipe");
        let log2 = log.clone();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stderr);
            let mut line = String::new();
            while r.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                let mut t = log2.text.lock().unwrap();
                t.push_str(&line);
                log2.grew.notify_all();
                line.clear();
            }
        });
        let mut d = Jawasd {
            child: Some(child),
            dir,
            config_path,
            log,
            addrs: HashMap::new(),
        };
        if !d.wait_log(" ready pid=", Duration::from_secs(10)) {
            panic!("jawasd did not become ready; log:\n{}", d.log());
        }
        d.read_ready(1);
        d
    }
}

fn expand(config: &str, dir: &Path) -> String {
    config
        .replace("{dir}", &dir.display().to_string())
        .replace("{bin}", &bin_dir().display().to_string())
}

/// A running jawasd; stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Jawasd {
    child: Option<Child>,
    dir: TempDir,
    config_path: PathBuf,
    log: Arc<Log>,
    addrs: HashMap<String, Vec<SocketAddr>>,
}

impl Jawasd {
    pub fn builder(config: &str) -> Builder {
        Builder {
            config: config.to_string(),
            args: Vec::new(),
            env: Vec::new(),
            nofile: None,
            dir: None,
            xinetd: false,
        }
    }

    /// Starts jawasd with `config` in a fresh temp dir.
    pub fn start(config: &str) -> Jawasd {
        Jawasd::builder(config).start()
    }

    /// Parses the `n`th ready line: `ready pid=N svc=addr,addr svc2=addr`.
    fn read_ready(&mut self, n: usize) {
        let log = self.log();
        let line = log
            .lines()
            .filter(|l| l.contains(" ready pid="))
            .nth(n - 1)
            .expect("ready line")
            .to_string();
        self.addrs = parse_ready(&line);
    }

    /// The first address of service `svc`.
    pub fn addr(&self, svc: &str) -> SocketAddr {
        self.addrs(svc)[0]
    }

    /// Every address of service `svc` from the latest ready line.
    pub fn addrs(&self, svc: &str) -> Vec<SocketAddr> {
        match self.addrs.get(svc) {
            Some(a) if !a.is_empty() => a.clone(),
            _ => panic!("service {svc} has no address; log:\n{}", self.log()),
        }
    }

    pub fn has_service(&self, svc: &str) -> bool {
        self.addrs.contains_key(svc)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    /// Everything jawasd has logged so far.
    pub fn log(&self) -> String {
        self.log.text.lock().unwrap().clone()
    }

    /// Waits until the log contains `needle` (anywhere); false on timeout.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        self.wait_log_count(needle, 1, timeout)
    }

    /// Waits until `needle` occurs at least `count` times in the log.
    pub fn wait_log_count(&self, needle: &str, count: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut t = self.log.text.lock().unwrap();
        loop {
            if t.matches(needle).count() >= count {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            t = self.log.grew.wait_timeout(t, deadline - now).unwrap().0;
        }
    }

    /// Sends a signal to jawasd.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill has no memory effects.
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// Replaces the config file and sends SIGHUP; waits for the outcome.
    /// Returns true when the new config was taken (a new ready line), false
    /// when jawasd kept the old one.
    pub fn reload(&mut self, config: &str) -> bool {
        std::fs::write(&self.config_path, expand(config, self.dir.path())).expect("write config");
        let readies = self.log().matches(" ready pid=").count();
        let fails = self
            .log()
            .matches("keeping the running configuration")
            .count();
        self.signal(libc::SIGHUP);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let log = self.log();
            if log.matches(" ready pid=").count() > readies {
                self.read_ready(readies + 1);
                return true;
            }
            if log.matches("keeping the running configuration").count() > fails {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("no reload outcome; log:\n{}", self.log());
    }

    /// Number of open descriptors of jawasd.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .expect("read /proc/PID/fd")
            .count()
    }

    /// (pid, state) of jawasd's direct children.
    pub fn children(&self) -> Vec<(i32, char)> {
        children_of(self.pid())
    }

    /// jawasd's user+system CPU time so far, in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = after.split(' ').collect();
        f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
    }

    /// Waits for jawasd to exit and returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut()?;
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

impl Drop for Jawasd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill has no memory effects.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// (pid, state) of the direct children of `parent`, from /proc.
pub fn children_of(parent: i32) -> Vec<(i32, char)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
        if fields.get(1).and_then(|p| p.parse::<i32>().ok()) == Some(parent) {
            out.push((pid, fields[0].chars().next().unwrap_or('?')));
        }
    }
    out
}

/// Connects with a 10 s read/write timeout.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Connects from a chosen local address (e.g. 127.0.0.2), for per-source
/// and ACL tests.
pub fn connect_from(local: &str, addr: SocketAddr) -> std::io::Result<TcpStream> {
    use std::os::fd::FromRawFd;
    let local: std::net::IpAddr = local.parse().unwrap();
    let bind_to = SocketAddr::new(local, 0);
    // SAFETY: socket/bind/connect on a descriptor this function owns, with
    // sockaddr buffers it built and their true lengths; the descriptor is
    // handed to a TcpStream (or closed) exactly once.
    unsafe {
        let domain = if addr.is_ipv4() {
            libc::AF_INET
        } else {
            libc::AF_INET6
        };
        let fd = libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        let s = TcpStream::from_raw_fd(fd);
        let (sa, len) = sockaddr(bind_to);
        if libc::bind(fd, &sa as *const _ as *const libc::sockaddr, len) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let (sa, len) = sockaddr(addr);
        if libc::connect(fd, &sa as *const _ as *const libc::sockaddr, len) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(s)
    }
}

fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; all zeroes is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is large and aligned enough for any
            // sockaddr, sockaddr_in included.
            unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in, sin) };
            (
                storage,
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: 0,
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in6, sin6) };
            (
                storage,
                std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            )
        }
    }
}

/// Sends `data`, half-closes, and reads everything until EOF.
pub fn exchange(addr: SocketAddr, data: &[u8]) -> Vec<u8> {
    let mut s = connect(addr);
    // A refused connection may be closed before we finish writing; what
    // came back (banner or nothing) is still the answer.
    let _ = s.write_all(data);
    let _ = s.shutdown(std::net::Shutdown::Write);
    read_all(&mut s)
}

/// Reads until EOF (or reset, which also ends a refused connection).
pub fn read_all(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return out,
            // A signal handled in this process (a test's own) may land here.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => panic!("read: {e} after {} bytes", out.len()),
        }
    }
}

/// Writes an executable shell script into `dir` and returns its path.
pub fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// A port that was free a moment ago on 127.0.0.1 (TCP and UDP), for
/// configs that cannot say port 0 (such as real xinetd's).
pub fn free_port() -> u16 {
    loop {
        let t = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = t.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Waits until something accepts TCP connections on `addr`.
pub fn wait_for_port(addr: SocketAddr, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A request waiting on an engine's stdin that `run_engine` checks is
/// left unread.
pub const WAITING: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";

/// Runs the engine binary `name` with ARGS in `cwd`, with `WAITING` on
/// stdin, a pipe held open (so reading it would succeed and reading on
/// would hang), for at most 10 s: (exit code, stdout, stderr, whether
/// stdin was left unread). For `--help`, `--version` and `--check`.
pub fn run_engine(name: &str, cwd: &Path, args: &[&str]) -> (i32, String, String, bool) {
    let (stdin_r, mut stdin_w) = std::io::pipe().unwrap();
    stdin_w.write_all(WAITING).unwrap();
    let mut child = Command::new(bin(name))
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::from(stdin_r.try_clone().unwrap()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{args:?}: still running after 10 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    drop(stdin_w);
    let mut left = Vec::new();
    let mut stdin_r = stdin_r;
    stdin_r.read_to_end(&mut left).unwrap();
    let mut out = String::new();
    let mut err = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let code = status.code().expect("exited, not killed");
    (code, out, err, left == WAITING)
}

/// Checks an engine's `--help` text: each option starts a line of its own
/// that says `says`, and no line is over 79 columns.
pub fn assert_help_lists(out: &str, options: &[(&str, &str)]) {
    for (option, says) in options {
        let line = out
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{option} ")))
            .unwrap_or_else(|| panic!("no {option} in:\n{out}"));
        assert!(line.contains(says), "{option}: {line}");
    }
    assert!(
        out.lines().all(|l| l.len() <= 79),
        "lines over 79 columns:\n{out}"
    );
}

/// The first address of each service in the ready line of a jawasd
/// started by hand (its stderr piped): reads up to that line, skipping the
/// ones before it (zygotes log their start first). Empty when jawasd
/// ended before it was ready. Pass `&mut` the pipe and keep it: jawasd
/// goes on writing to it.
pub fn ready_addrs(stderr: impl std::io::Read) -> HashMap<String, SocketAddr> {
    let mut reader = BufReader::new(stderr);
    let mut line = String::new();
    while !line.contains(" ready pid=") {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return HashMap::new();
        }
    }
    parse_ready(&line)
        .into_iter()
        .filter_map(|(name, addrs)| Some((name, *addrs.first()?)))
        .collect()
}

/// The services and addresses of a ready line:
/// `... ready pid=N svc=addr,addr svc2=addr`.
fn parse_ready(line: &str) -> HashMap<String, Vec<SocketAddr>> {
    line.split_whitespace()
        .skip_while(|w| *w != "ready")
        .skip(2)
        .map(|part| {
            let (name, list) = part.split_once('=').expect("svc=addrs");
            let addrs = list
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| s.parse().expect("address"))
                .collect();
            (name.to_string(), addrs)
        })
        .collect()
}
