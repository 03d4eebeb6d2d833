//! config-fuzz: mutates real configurations (TOML and xinetd) and runs each
//! through `jawasd --check`, recording every run that panics, crashes or
//! takes too long.
//!
//! Owns the seeds (etc/, configs embedded in tests/*.rs, the xinetd
//! fixtures, and a few written here to reach every key), the mutations, and
//! the findings directory. A finding is any exit other than 0 or 100 (101 is
//! a Rust panic; a signal is a crash) or a run over `--slow` seconds; its
//! input and output are saved for a unit test to be written from.
//!
//! Invariants: bounded by `--runs` and `--seconds`; every input is under
//! 1 MiB; engine checks are skipped (JAWASD_SKIP_ENGINE_CHECK) unless
//! `--engine-checks`; xinetd inputs, which may name hosts to look up, run
//! in a network namespace without network (`unshare -rn`) or not at all.
//! Standard library only: the generator is a small xorshift.
//!
//! Run: cargo build --workspace && target/debug/config-fuzz --seconds 600

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Largest input handed to jawasd.
const MAX_INPUT: usize = 1 << 20;

struct Options {
    runs: u64,
    seconds: u64,
    seed: u64,
    jawasd: PathBuf,
    findings: PathBuf,
    slow: Duration,
    engine_checks: bool,
    quiet: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: config-fuzz [--runs N] [--seconds N] [--seed N] [--jawasd PATH] [--findings DIR] [--slow SECS] [--engine-checks] [--quiet]"
    );
    std::process::exit(100);
}

fn options() -> Options {
    let root = workspace_root();
    let mut o = Options {
        runs: u64::MAX,
        seconds: 60,
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
        jawasd: root.join("target/debug/jawasd"),
        findings: root.join("target/fuzz-findings"),
        slow: Duration::from_secs(5),
        engine_checks: false,
        quiet: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        let number = |v: String| v.parse::<u64>().unwrap_or_else(|_| usage());
        match a.as_str() {
            "--runs" => o.runs = number(value()),
            "--seconds" => o.seconds = number(value()),
            "--seed" => o.seed = number(value()),
            "--jawasd" => o.jawasd = PathBuf::from(value()),
            "--findings" => o.findings = PathBuf::from(value()),
            "--slow" => o.slow = Duration::from_secs(number(value())),
            "--engine-checks" => o.engine_checks = true,
            "--quiet" => o.quiet = true,
            _ => usage(),
        }
    }
    o
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// xorshift64*: plenty for choosing mutations, and reproducible by `--seed`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Toml,
    Xinetd,
}

struct Seed {
    kind: Kind,
    text: Vec<u8>,
}

/// Configurations written here so every key and attribute is reached.
const TOML_SEEDS: &[&str] = &[
    r#"[server]
max_connections = 100
shutdown_grace = "5s"
[defaults]
instances = 10
per_source = 2
rate = 5
rate_burst = 10
per_source_rate = 1.5
per_source_rate_burst = 3
only_from = ["127.0.0.0/8", "::1"]
no_access = "10.0.0.0/8"
[services.a]
listen = ["127.0.0.1:0", "[::1]:0"]
engine = "cat"
args = ["-u"]
env = { LANG = "C", X = "y" }
pass_env = ["HOME", "*"]
limit_banner = "busy\r\n"
workdir = "/tmp"
umask = "022"
nice = 5
rlimit_as = "256M"
rlimit_cpu = "30s"
rlimit_nofile = 64
rlimit_data = "1G"
rlimit_rss = 1048576
rlimit_stack = "8M"
capture_stderr = false
stderr = "capture"
protocol = "tcp"
wait = false
argv0 = "kitty"
banner = "hi\n"
banner_success = "ok\n"
access_times = ["08:00-17:00", "22:00-02:00"]
max_load = 4.5
nodelay = true
keepalive = true
remote_host_env = true
log_on_success = ["PID", "HOST", "EXIT", "DURATION"]
log_on_failure = ["HOST", "ATTEMPT"]
log_syslog = "daemon.info"
log_format = "xinetd"
[services.s]
listen = "127.0.0.1:0"
engine = "true"
sensor = true
deny_time = "10m"
log_file = "s.log"
[services.u]
listen = "127.0.0.1:0"
engine = "cat"
protocol = "udp"
wait = true
disabled = false
groups = false
deny_time = "forever"
"#,
    r#"[services.web]
listen = "127.0.0.1:0"
engine = "jawas-static"
args = ["--root", "/tmp", "--cache-control", "*.css=max-age=60"]
[services.cgi]
listen = "127.0.0.1:0"
engine = "jawas-cgi"
args = ["--root", "/tmp"]
[services.echo]
listen = "127.0.0.1:0"
engine = "jawas-builtin"
args = ["echo"]
"#,
];

const XINETD_SEEDS: &[&str] = &[
    "defaults\n{\n instances = 40\n per_source = 5\n cps = 100 30\n max_load = 50\n umask = 022\n groups = yes\n passenv = PATH\n log_on_success = PID HOST\n deny_time = 5\n only_from = 127.0.0.1 10.1.{2,3} ::1\n no_access += 192.0.2.0\n}\nservice x\n{\n type = UNLISTED\n id = x-stream\n flags = NODELAY KEEPALIVE IPv4 NAMEINARGS SENSOR\n socket_type = stream\n protocol = tcp\n wait = no\n port = 9\n bind = 127.0.0.1\n server = /bin/cat\n server_args = cat -u\n user = nobody\n group = nogroup\n nice = 10\n rlimit_as = 64M\n rlimit_files = 100\n rlimit_cpu = 30\n rlimit_data = UNLIMITED\n rlimit_rss = 1K\n rlimit_stack = 8M\n env = A=1 B=2\n access_times = 08:00-17:00\n deny_time = FOREVER\n log_type = SYSLOG daemon info\n log_on_failure += HOST\n}\nservice echo\n{\n type = INTERNAL UNLISTED\n socket_type = dgram\n wait = yes\n port = 7\n disable = no\n cps = 10 5\n max_load = 2.5\n}\n",
    "service r\n{\n type = UNLISTED\n socket_type = stream\n wait = no\n port = 19\n redirect = 127.0.0.1 7\n log_type = FILE /tmp/x.log 10K 20K\n}\n",
];

/// Every key a mutation may insert or rename to.
const TOML_KEYS: &[&str] = &[
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
    "max_connections",
    "shutdown_grace",
    "drain",
    "max_pending",
    "proxy_protocol",
    "proxy_from",
    "proxy_timeout",
];

const XINETD_KEYS: &[&str] = &[
    "id",
    "type",
    "flags",
    "disable",
    "socket_type",
    "protocol",
    "wait",
    "user",
    "group",
    "instances",
    "nice",
    "server",
    "server_args",
    "only_from",
    "no_access",
    "access_times",
    "log_type",
    "log_on_success",
    "log_on_failure",
    "env",
    "passenv",
    "port",
    "redirect",
    "bind",
    "banner",
    "per_source",
    "cps",
    "max_load",
    "groups",
    "umask",
    "rlimit_as",
    "rlimit_files",
    "rlimit_cpu",
    "rlimit_data",
    "rlimit_rss",
    "rlimit_stack",
    "deny_time",
    "v6only",
    "include",
    "includedir",
];

/// Values that have hurt parsers: huge, negative, fractional, not numbers.
const NUMBERS: &[&str] = &[
    "0",
    "-1",
    "1",
    "1e20",
    "-1e20",
    "1e308",
    "1e-300",
    "99999999999999999999999",
    "18446744073709551615",
    "18446744073709551616",
    "9223372036854775807",
    "-9223372036854775808",
    "4294967295",
    "4294967296",
    "160000000000000000",
    "nan",
    "inf",
    "-inf",
    "+inf",
    "0.0000001",
    "1.5",
    "0x7fffffff",
    "0o777",
    "0b1",
    "1_000",
    "NaN",
    "UNLIMITED",
    "FOREVER",
    "NEVER",
    "10K",
    "99999999999999999G",
    "5.5.5",
];

const DURATIONS: &[&str] = &[
    "\"99999999999999999999999s\"",
    "\"1e20s\"",
    "\"18446744073709551615h\"",
    "\"160000000000000000m\"",
    "\"99999999999d\"",
    "\".s\"",
    "\"1..5m\"",
    "\"-5s\"",
    "\"5 fortnights\"",
    "\"0ms\"",
    "\"9999999999999999999999999999999999999ms\"",
    "\"forever\"",
    "\"unlimited\"",
    "\"\"",
    "\"5\"",
    "\"1h\"",
    "\"365d\"",
    "\"366d\"",
];

const JUNK: &[&[u8]] = &[
    b"\0",
    b"\xff\xfe",
    b"\xc3\x28",
    b"\xf0\x9f\x92\xa9",
    b"\"",
    b"'",
    b"\\",
    b"\n",
    b"\r\n",
    b"[",
    b"]",
    b"{",
    b"}",
    b"=",
    b"+=",
    b"-=",
    b"#",
    b"\t",
    b"\"\"\"",
    b"'''",
    b"\\u0000",
    b"[services]",
    b"[services.x.y]",
    b"[[services.a]]",
    b"[defaults]\n",
    b"[server]\n",
    b"service x\n{\n",
    b"}\n",
    b"include /etc/passwd\n",
    b"includedir /nonexistent\n",
];

fn seeds(root: &Path) -> Vec<Seed> {
    let mut out = Vec::new();
    let mut add = |kind, text: Vec<u8>| {
        if !text.is_empty() && text.len() < MAX_INPUT {
            out.push(Seed { kind, text });
        }
    };
    for s in TOML_SEEDS {
        add(Kind::Toml, s.as_bytes().to_vec());
    }
    for s in XINETD_SEEDS {
        add(Kind::Xinetd, s.as_bytes().to_vec());
    }
    if let Ok(t) = std::fs::read(root.join("etc/jawasd.toml")) {
        add(Kind::Toml, t);
    }
    // Configs embedded in the system tests: raw strings holding a table.
    if let Ok(dir) = std::fs::read_dir(root.join("tests")) {
        let mut files: Vec<PathBuf> = dir.flatten().map(|e| e.path()).collect();
        files.sort();
        for f in files
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "rs"))
        {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            for piece in text.split("r#\"").skip(1) {
                let body = piece.split("\"#").next().unwrap_or("");
                if body.contains("[services.") {
                    add(
                        Kind::Toml,
                        body.replace("{dir}", "/tmp")
                            .replace("{bin}", "/tmp")
                            .into_bytes(),
                    );
                } else if body.contains("socket_type") {
                    add(Kind::Xinetd, body.into());
                }
            }
        }
    }
    // The xinetd fixtures: the shipped Debian files and the all-attribute file.
    let fixtures = root.join("tests/fixtures/xinetd");
    let mut stack = vec![fixtures];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n != "services") {
                if let Ok(t) = std::fs::read(&p) {
                    let t = String::from_utf8_lossy(&t).replace("{dir}", "/tmp");
                    add(Kind::Xinetd, t.into_bytes());
                }
            }
        }
    }
    out
}

/// Byte ranges of the ASCII digit runs in `t`.
fn digit_runs(t: &[u8]) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < t.len() {
        if t[i].is_ascii_digit() {
            let start = i;
            while i < t.len() && (t[i].is_ascii_digit() || t[i] == b'.') {
                i += 1;
            }
            runs.push((start, i));
        } else {
            i += 1;
        }
    }
    runs
}

/// Byte ranges of the lines of `t` (without the newline).
fn lines(t: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, &b) in t.iter().enumerate() {
        if b == b'\n' {
            out.push((start, i));
            start = i + 1;
        }
    }
    if start < t.len() {
        out.push((start, t.len()));
    }
    out
}

fn splice(t: &mut Vec<u8>, range: (usize, usize), with: &[u8]) {
    t.splice(range.0..range.1, with.iter().copied());
}

/// Applies one random mutation to `t`.
fn mutate(rng: &mut Rng, t: &mut Vec<u8>, kind: Kind, seeds: &[Seed]) {
    let keys = if kind == Kind::Toml {
        TOML_KEYS
    } else {
        XINETD_KEYS
    };
    match rng.below(14) {
        0 => {
            // Byte flips.
            for _ in 0..1 + rng.below(4) {
                if !t.is_empty() {
                    let i = rng.below(t.len());
                    t[i] = rng.next() as u8;
                }
            }
        }
        1 | 2 => {
            let runs = digit_runs(t);
            if !runs.is_empty() {
                let r = *rng.pick(&runs);
                let n = rng.pick(NUMBERS).as_bytes().to_vec();
                splice(t, r, &n);
            }
        }
        3 => {
            // A duration string with an absurd value or unit.
            let ls = lines(t);
            if !ls.is_empty() {
                let (s, e) = *rng.pick(&ls);
                if let Some(eq) = t[s..e].iter().position(|&b| b == b'=') {
                    let d = rng.pick(DURATIONS).as_bytes().to_vec();
                    let d = if kind == Kind::Xinetd {
                        d.into_iter().filter(|&b| b != b'"').collect()
                    } else {
                        d
                    };
                    let mut with = b" ".to_vec();
                    with.extend(d);
                    splice(t, (s + eq + 1, e), &with);
                }
            }
        }
        4 => {
            // Duplicate a line, up to thousands of times.
            let ls = lines(t);
            if !ls.is_empty() {
                let (s, e) = *rng.pick(&ls);
                let mut line = t[s..e].to_vec();
                line.push(b'\n');
                let times = [1, 2, 10, 100, 1000, 5000][rng.below(6)];
                let block = line.repeat(times);
                splice(t, (s, s), &block);
            }
        }
        5 => {
            let ls = lines(t);
            if !ls.is_empty() {
                let (s, e) = *rng.pick(&ls);
                splice(t, (s, (e + 1).min(t.len())), b"");
            }
        }
        6 => {
            // Rename a key to another known key (type confusion, duplicates).
            let ls = lines(t);
            if !ls.is_empty() {
                let (s, e) = *rng.pick(&ls);
                if let Some(eq) = t[s..e].iter().position(|&b| b == b'=') {
                    let k = rng.pick(keys).as_bytes().to_vec();
                    let mut with = k;
                    with.push(b' ');
                    let end = if eq > 0 && (t[s + eq - 1] == b'+' || t[s + eq - 1] == b'-') {
                        eq - 1
                    } else {
                        eq
                    };
                    splice(t, (s, s + end), &[b" ".as_slice(), &with].concat());
                }
            }
        }
        7 => {
            // Insert a known key with a random value.
            let ls = lines(t);
            let at = if ls.is_empty() { 0 } else { rng.pick(&ls).1 };
            let k = rng.pick(keys);
            let v: String = match rng.below(4) {
                0 => rng.pick(NUMBERS).to_string(),
                1 => rng.pick(DURATIONS).to_string(),
                2 => format!("[{}]", rng.pick(NUMBERS)),
                _ => format!("\"{}\"", rng.pick(NUMBERS)),
            };
            let line = format!("\n{k} = {v}");
            splice(t, (at, at), line.as_bytes());
        }
        8 => {
            // Junk bytes: NUL, broken UTF-8, quotes, brackets, block lines.
            let at = rng.below(t.len() + 1);
            let j = rng.pick(JUNK).to_vec();
            splice(t, (at, at), &j);
        }
        9 => {
            // Deep nesting.
            let depth = [10, 100, 1000, 10_000, 100_000][rng.below(5)];
            let (open, close) = [(b"[", b"]"), (b"{", b"}")][rng.below(2)];
            let mut v = b"\nnest = ".to_vec();
            if open == b"{" {
                v.extend(b"{a = ".repeat(depth));
                v.extend(b"1");
            } else {
                v.extend(open.repeat(depth));
            }
            v.extend(close.repeat(depth));
            v.push(b'\n');
            let at = rng.below(t.len() + 1);
            splice(t, (at, at), &v);
        }
        10 => {
            let n = rng.below(t.len() + 1);
            t.truncate(n);
        }
        11 => {
            // Splice a chunk of another seed.
            let other = &rng.pick(seeds).text;
            let a = rng.below(other.len());
            let b = (a + rng.below(400)).min(other.len());
            let chunk = other[a..b].to_vec();
            let at = rng.below(t.len() + 1);
            splice(t, (at, at), &chunk);
        }
        12 => {
            // The whole text again, renamed, many times: many services.
            let times = [2, 10, 100, 1000][rng.below(4)];
            let base = t.clone();
            for i in 0..times {
                if t.len() + base.len() > MAX_INPUT {
                    break;
                }
                let copy = String::from_utf8_lossy(&base)
                    .replace("[services.", &format!("[services.c{i}"))
                    .replace("service ", &format!("service c{i}"));
                t.extend(copy.into_bytes());
            }
        }
        _ => {
            // A long value: a string of thousands of characters.
            let ls = lines(t);
            if !ls.is_empty() {
                let (s, e) = *rng.pick(&ls);
                if let Some(eq) = t[s..e].iter().position(|&b| b == b'=') {
                    let len = [100, 10_000, 500_000][rng.below(3)];
                    let v = if kind == Kind::Toml {
                        format!(" \"{}\"", "é".repeat(len / 2))
                    } else {
                        format!(" {}", "a ".repeat(len / 2))
                    };
                    splice(t, (s + eq + 1, e), v.as_bytes());
                }
            }
        }
    }
    t.truncate(MAX_INPUT - 1);
}

/// What one run of jawasd did.
struct Outcome {
    code: Option<i32>,
    signal: Option<i32>,
    took: Duration,
    output: Vec<u8>,
}

fn run(
    o: &Options,
    file: &Path,
    out_file: &Path,
    kind: Kind,
    netns: bool,
) -> std::io::Result<Outcome> {
    use std::os::unix::process::ExitStatusExt;
    let out = std::fs::File::create(out_file)?;
    let mut cmd = if kind == Kind::Xinetd && netns {
        let mut c = Command::new("unshare");
        c.arg("-rn").arg(&o.jawasd);
        c
    } else {
        Command::new(&o.jawasd)
    };
    cmd.arg("--check")
        .arg(if kind == Kind::Toml {
            "--config"
        } else {
            "--xinetd"
        })
        .arg(file)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    if !o.engine_checks {
        cmd.env("JAWASD_SKIP_ENGINE_CHECK", "1");
    }
    let started = Instant::now();
    let mut child = cmd.spawn()?;
    // Twice the slow limit, then killed: a hang is a finding, not a stall.
    let limit = o.slow * 2;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            break child.wait()?;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    Ok(Outcome {
        code: status.code(),
        signal: status.signal(),
        took: started.elapsed(),
        output: std::fs::read(out_file).unwrap_or_default(),
    })
}

fn main() {
    let o = options();
    if !o.jawasd.exists() {
        eprintln!(
            "config-fuzz: {} not found; run cargo build --workspace",
            o.jawasd.display()
        );
        std::process::exit(100);
    }
    let root = workspace_root();
    let seeds = seeds(&root);
    let netns = Command::new("unshare")
        .args(["-rn", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let usable: Vec<&Seed> = seeds
        .iter()
        .filter(|s| s.kind == Kind::Toml || netns)
        .collect();
    if !netns {
        eprintln!("config-fuzz: unshare -rn unavailable: xinetd inputs (which may look up host names) are skipped");
    }
    let work = std::env::temp_dir().join(format!("config-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("create work dir");
    let mut rng = Rng(o.seed | 1);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(o.seconds);
    let (mut runs, mut findings, mut slowest, mut by_code) =
        (0u64, 0u64, Duration::ZERO, [0u64; 2]);
    eprintln!(
        "config-fuzz: seed {}, {} seeds ({} xinetd), up to {} runs / {} s, findings in {}",
        o.seed,
        usable.len(),
        usable.iter().filter(|s| s.kind == Kind::Xinetd).count(),
        o.runs,
        o.seconds,
        o.findings.display()
    );
    while runs < o.runs && Instant::now() < deadline {
        let seed = *rng.pick(&usable);
        let mut text = seed.text.clone();
        for _ in 0..1 + rng.below(4) {
            mutate(&mut rng, &mut text, seed.kind, &seeds);
        }
        let ext = if seed.kind == Kind::Toml {
            "toml"
        } else {
            "conf"
        };
        let file = work.join(format!("input.{ext}"));
        std::fs::write(&file, &text).expect("write input");
        let outcome = match run(&o, &file, &work.join("output"), seed.kind, netns) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("config-fuzz: unable to run {}: {e}", o.jawasd.display());
                std::process::exit(111);
            }
        };
        runs += 1;
        slowest = slowest.max(outcome.took);
        match outcome.code {
            Some(0) => by_code[0] += 1,
            Some(100) => by_code[1] += 1,
            _ => {}
        }
        let bad_exit = !matches!(outcome.code, Some(0) | Some(100));
        let slow = outcome.took > o.slow;
        if bad_exit || slow {
            findings += 1;
            std::fs::create_dir_all(&o.findings).expect("create findings dir");
            let name = format!("{}-{runs}", if slow { "slow" } else { "crash" });
            let input = o.findings.join(format!("{name}.{ext}"));
            std::fs::write(&input, &text).expect("save finding");
            let mut report = format!(
                "exit {:?} signal {:?} in {:?} ({} bytes, {ext})\n",
                outcome.code,
                outcome.signal,
                outcome.took,
                text.len()
            )
            .into_bytes();
            report.extend(&outcome.output[..outcome.output.len().min(64 * 1024)]);
            std::fs::write(o.findings.join(format!("{name}.txt")), report).expect("save report");
            eprintln!(
                "config-fuzz: FINDING {} (exit {:?}, signal {:?}, {:?})",
                input.display(),
                outcome.code,
                outcome.signal,
                outcome.took
            );
        }
        if !o.quiet && runs % 1000 == 0 {
            eprintln!("config-fuzz: {runs} runs, {findings} findings, slowest {slowest:?}");
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    println!(
        "config-fuzz: {runs} runs in {:.0?}: {} ok, {} config errors, {findings} findings (panics, crashes, runs over {:?}); slowest run {slowest:?}",
        started.elapsed(),
        by_code[0],
        by_code[1],
        o.slow
    );
    std::process::exit(if findings == 0 { 0 } else { 1 });
}
