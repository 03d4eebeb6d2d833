//! Engine self-checks: a bundled engine validates its own arguments
//! (`ENGINE --check ARGS...`) before a configuration is accepted, so a typo
//! such as `--cache-controll` or a missing `--root` is a config error at
//! `--check`, start-up and reload, not a failure of every connection.
//!
//! Owns running the checks (concurrently, each killed after `TIMEOUT`, all
//! done within `TOTAL`) and judging what they said. Does not know about
//! config files: `config` builds the `Check`s and places the findings.
//!
//! Invariants: only exit 100 with `NAME: error: ...` lines fails a check;
//! anything else (a crash, a timeout, an engine too old to know `--check`)
//! is at most a warning, so jawasd keeps working with any engine. A check
//! never gets the connection's fds: stdin and stdout are /dev/null.

#![forbid(unsafe_code)]

use std::ffi::{CString, OsStr};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// File names of the engines shipped with jawasd, which all implement `--check`.
pub const BUNDLED: &[&str] = &[
    "jawas-builtin",
    "jawas-static",
    "jawas-cgi",
    "jawas-ws",
    "jawas-proxy",
    "jawas-blog",
];

/// How long one engine may take to check its arguments.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// How long all checks of one configuration may take; checks not started
/// by then are skipped (with a warning), so a reload stays bounded.
pub const TOTAL: Duration = Duration::from_secs(10);
/// Checks running at once.
const PARALLEL: usize = 8;
/// Most bytes of an engine's stderr kept; the rest is read and dropped.
const MAX_STDERR: usize = 16 * 1024;
/// Most error lines reported per engine.
const MAX_LINES: usize = 10;

/// Set (non-empty) to skip every engine check, e.g. for the config fuzzer.
pub const SKIP_VAR: &str = "JAWASD_SKIP_ENGINE_CHECK";

/// One `ENGINE --check ARGS...` to run, as the service would run the engine.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Check {
    pub engine: CString,
    /// argv[0], then the service's arguments (`--check` is put between).
    pub argv: Vec<CString>,
    pub env: Vec<CString>,
    pub workdir: Option<CString>,
    /// The service's user and group, so files are checked as the engine
    /// will see them.
    pub uid: Option<libc::uid_t>,
    pub gid: Option<libc::gid_t>,
}

impl Check {
    /// The engine's file name, as it names itself in messages.
    pub fn name(&self) -> String {
        let path = std::path::Path::new(OsStr::from_bytes(self.engine.as_bytes()));
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// How a check ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
    TimedOut,
    /// Could not be started, or not within `TOTAL`; the reason.
    NotRun(String),
    /// Not run because `SKIP_VAR` says so.
    Skipped,
}

/// What one check produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ran {
    pub exit: Exit,
    pub stderr: Vec<u8>,
}

/// What jawasd makes of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    /// The engine refused its arguments: these lines are config errors.
    Invalid(Vec<String>),
    /// Nothing is known; worth a warning.
    Inconclusive(String),
    /// The engine does not speak `--check`; nothing to say.
    Unsupported,
}

/// Judges one check by the contract: 0 valid, 100 with `NAME: error:`
/// lines invalid; an engine answering 100 without such a line (an
/// "unknown option '--check'" or a usage text) predates `--check`.
pub fn judge(name: &str, ran: &Ran) -> Verdict {
    let text = String::from_utf8_lossy(&ran.stderr);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    match &ran.exit {
        Exit::Code(0) => Verdict::Valid,
        Exit::Code(100) => {
            let knows_check = !lines
                .iter()
                .any(|l| l.contains("unknown option") && l.contains("--check"));
            let errors: Vec<String> = lines
                .iter()
                .filter(|l| l.contains("error:"))
                .take(MAX_LINES)
                .map(|l| crate::config::one_line(l))
                .collect();
            if knows_check && !errors.is_empty() {
                Verdict::Invalid(errors)
            } else {
                Verdict::Unsupported
            }
        }
        Exit::Code(n) => {
            Verdict::Inconclusive(format!("{name} --check exited {n}{}", first_line(&lines)))
        }
        Exit::Signal(s) => Verdict::Inconclusive(format!(
            "{name} --check was killed by signal {s}{}",
            first_line(&lines)
        )),
        Exit::TimedOut => Verdict::Inconclusive(format!(
            "{name} --check took longer than {}s (or than all checks may, {}s) and was killed",
            TIMEOUT.as_secs(),
            TOTAL.as_secs()
        )),
        Exit::NotRun(why) => Verdict::Inconclusive(format!("{name} --check not run: {why}")),
        Exit::Skipped => Verdict::Unsupported,
    }
}

fn first_line(lines: &[&str]) -> String {
    lines
        .first()
        .map(|l| format!(": {}", crate::config::one_line(l)))
        .unwrap_or_default()
}

/// Whether checks are switched off by `SKIP_VAR`.
pub fn skipped() -> bool {
    std::env::var_os(SKIP_VAR).is_some_and(|v| !v.is_empty())
}

/// The runner jawasd uses: `run_all`, unless `SKIP_VAR` is set.
pub fn run(checks: &[Check]) -> Vec<Ran> {
    if skipped() {
        return checks
            .iter()
            .map(|_| Ran {
                exit: Exit::Skipped,
                stderr: Vec::new(),
            })
            .collect();
    }
    run_all(checks)
}

/// Runs every check, at most `PARALLEL` at once, each for at most
/// `TIMEOUT`, all within `TOTAL`; one `Ran` per check, in order.
pub fn run_all(checks: &[Check]) -> Vec<Ran> {
    let started = Instant::now();
    let mut results: Vec<Option<Ran>> = vec![None; checks.len()];
    let mut running: Vec<Running> = Vec::new();
    let mut next = 0;
    while next < checks.len() || !running.is_empty() {
        while running.len() < PARALLEL && next < checks.len() {
            if started.elapsed() >= TOTAL {
                let why = format!("all checks took over {}s", TOTAL.as_secs());
                results[next] = Some(not_run(why));
            } else {
                // None outlives TOTAL: a check started late gets less time.
                let deadline = (Instant::now() + TIMEOUT).min(started + TOTAL);
                match Running::start(&checks[next], next, deadline) {
                    Ok(r) => running.push(r),
                    Err(why) => results[next] = Some(not_run(why)),
                }
            }
            next += 1;
        }
        wait_readable(&running, Duration::from_millis(20));
        let mut i = 0;
        while i < running.len() {
            match running[i].poll() {
                Some(ran) => {
                    let r = running.swap_remove(i);
                    results[r.index] = Some(ran);
                }
                None => i += 1,
            }
        }
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| not_run("lost".into())))
        .collect()
}

fn not_run(why: String) -> Ran {
    Ran {
        exit: Exit::NotRun(why),
        stderr: Vec::new(),
    }
}

/// A check under way: the child, its stderr pipe, what it wrote so far.
struct Running {
    index: usize,
    child: Child,
    stderr: std::process::ChildStderr,
    text: Vec<u8>,
    /// The pipe reached end of file: no use polling it again.
    eof: bool,
    deadline: Instant,
}

impl Running {
    fn start(check: &Check, index: usize, deadline: Instant) -> Result<Running, String> {
        let os = |c: &CString| OsStr::from_bytes(c.as_bytes()).to_os_string();
        let mut cmd = Command::new(os(&check.engine));
        if let Some(argv0) = check.argv.first() {
            cmd.arg0(os(argv0));
        }
        cmd.arg("--check")
            .args(check.argv.iter().skip(1).map(os))
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // Its own group, so a timeout kills whatever it started too.
            .process_group(0);
        for kv in &check.env {
            let bytes = kv.as_bytes();
            if let Some(eq) = bytes.iter().position(|&b| b == b'=') {
                cmd.env(
                    OsStr::from_bytes(&bytes[..eq]),
                    OsStr::from_bytes(&bytes[eq + 1..]),
                );
            }
        }
        if let Some(dir) = &check.workdir {
            cmd.current_dir(os(dir));
        }
        if let Some(gid) = check.gid {
            cmd.gid(gid);
        }
        if let Some(uid) = check.uid {
            cmd.uid(uid);
        }
        let mut child = cmd.spawn().map_err(|e| crate::errno_text(&e))?;
        let stderr = child.stderr.take().expect("stderr is piped");
        // Non-blocking: the loop reads what is there and moves on, even if
        // a grandchild keeps the pipe open after the engine exits.
        let fd = stderr.as_raw_fd();
        nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .map_err(|e| e.desc().to_ascii_lowercase())?;
        Ok(Running {
            index,
            child,
            stderr,
            text: Vec::new(),
            eof: false,
            deadline,
        })
    }

    /// Reads what stderr holds; the result once the engine has ended.
    fn poll(&mut self) -> Option<Ran> {
        self.drain();
        let exit = match self.child.try_wait() {
            Ok(Some(status)) => match (status.code(), status.signal()) {
                (Some(c), _) => Exit::Code(c),
                (None, Some(s)) => Exit::Signal(s),
                (None, None) => Exit::NotRun("no exit status".into()),
            },
            Ok(None) if Instant::now() < self.deadline => return None,
            Ok(None) => {
                self.kill();
                Exit::TimedOut
            }
            Err(e) => {
                self.kill();
                Exit::NotRun(crate::errno_text(&e))
            }
        };
        // After the exit, everything it wrote is in the pipe.
        self.drain();
        Some(Ran {
            exit,
            stderr: std::mem::take(&mut self.text),
        })
    }

    fn drain(&mut self) {
        let mut buf = [0u8; 4096];
        loop {
            match self.stderr.read(&mut buf) {
                Ok(0) => {
                    self.eof = true;
                    return;
                }
                Err(_) => return,
                Ok(n) => {
                    let room = MAX_STDERR.saturating_sub(self.text.len());
                    self.text.extend_from_slice(&buf[..n.min(room)]);
                }
            }
        }
    }

    fn kill(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// Sleeps until some check wrote to stderr (or ended), at most `max`.
fn wait_readable(running: &[Running], max: Duration) {
    use std::os::fd::AsFd;
    let mut fds: Vec<nix::poll::PollFd> = running
        .iter()
        .filter(|r| !r.eof)
        .map(|r| nix::poll::PollFd::new(r.stderr.as_fd(), nix::poll::PollFlags::POLLIN))
        .collect();
    let ms = u16::try_from(max.as_millis()).unwrap_or(u16::MAX);
    // An exited engine with a grandchild holding its pipe never makes the
    // pipe readable: the short timeout bounds that wait.
    let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ran(exit: Exit, stderr: &str) -> Ran {
        Ran {
            exit,
            stderr: stderr.as_bytes().to_vec(),
        }
    }

    #[test]
    fn verdicts() {
        let cases: &[(Ran, Verdict)] = &[
            (ran(Exit::Code(0), ""), Verdict::Valid),
            (ran(Exit::Code(0), "jawas-static: warning: x\n"), Verdict::Valid),
            (
                ran(
                    Exit::Code(100),
                    "jawas-static: error: unknown option '--cache-controll'\n\njawas-static: error: --root /nope: no such file or directory\njawas-static: usage: ...\n",
                ),
                Verdict::Invalid(vec![
                    "jawas-static: error: unknown option '--cache-controll'".into(),
                    "jawas-static: error: --root /nope: no such file or directory".into(),
                ]),
            ),
            // Engines from before --check.
            (
                ran(Exit::Code(100), "jawas-static: unknown option '--check'\njawas-static: usage: ...\n"),
                Verdict::Unsupported,
            ),
            (
                ran(Exit::Code(100), "jawas-x: error: unknown option '--check'\n"),
                Verdict::Unsupported,
            ),
            (
                ran(Exit::Code(100), "jawas-builtin: usage: jawas-builtin echo|discard\n"),
                Verdict::Unsupported,
            ),
            (
                ran(Exit::Code(127), "exec failed\n"),
                Verdict::Inconclusive("jawas-static --check exited 127: exec failed".into()),
            ),
            (
                ran(Exit::Signal(11), ""),
                Verdict::Inconclusive("jawas-static --check was killed by signal 11".into()),
            ),
            (
                ran(Exit::TimedOut, ""),
                Verdict::Inconclusive("jawas-static --check took longer than 5s (or than all checks may, 10s) and was killed".into()),
            ),
            (
                ran(Exit::NotRun("permission denied".into()), ""),
                Verdict::Inconclusive("jawas-static --check not run: permission denied".into()),
            ),
            (
                ran(Exit::Code(100), "a: error: line\nwith\x1b[31m escape\n"),
                Verdict::Invalid(vec!["a: error: line".into()]),
            ),
        ];
        for (r, want) in cases {
            assert_eq!(&judge("jawas-static", r), want, "{r:?}");
        }
        // At most MAX_LINES error lines per engine.
        let many = "x: error: e\n".repeat(50);
        match judge("x", &ran(Exit::Code(100), &many)) {
            Verdict::Invalid(lines) => assert_eq!(lines.len(), MAX_LINES),
            other => panic!("{other:?}"),
        }
    }

    /// A check of a fake engine that drops `--check` and runs SCRIPT.
    fn sh(engine: &std::path::Path, script: &str) -> Check {
        Check {
            engine: CString::new(engine.as_os_str().as_bytes()).unwrap(),
            argv: vec![CString::new("fake").unwrap(), CString::new(script).unwrap()],
            env: vec![CString::new("GREETING=hi").unwrap()],
            workdir: Some(CString::new("/").unwrap()),
            uid: None,
            gid: None,
        }
    }

    /// The runner over real processes: exit codes, stderr, env, workdir,
    /// a timeout, run concurrently.
    #[test]
    fn runner_runs_concurrently_and_kills_at_the_timeout() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("jawas-check-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fake = dir.join("fake-engine");
        std::fs::write(
            &fake,
            "#!/bin/sh\n[ \"$1\" = --check ] || exit 9\nshift\neval \"$1\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let sh = |script: &str| sh(&fake, script);
        let checks = vec![
            sh("echo \"$GREETING $(pwd)\" >&2; exit 100"),
            sh("exit 0"),
            sh("kill -SEGV $$"),
            sh("exec sleep 30"),
            sh("sleep 3 & echo started >&2; exit 0"),
            sh("exec 2>&-; sleep 1; exit 3"),
            Check {
                engine: CString::new("/nonexistent/engine").unwrap(),
                ..sh("true")
            },
        ];
        let started = Instant::now();
        let results = run_all(&checks);
        let took = started.elapsed();
        assert!(took < TIMEOUT + Duration::from_secs(2), "{took:?}");
        assert!(
            took >= TIMEOUT,
            "the sleeper is killed at the timeout: {took:?}"
        );
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(results[0], ran(Exit::Code(100), "hi /\n"));
        assert_eq!(results[1], ran(Exit::Code(0), ""));
        assert_eq!(results[2].exit, Exit::Signal(libc::SIGSEGV));
        assert_eq!(results[3].exit, Exit::TimedOut);
        assert_eq!(results[4], ran(Exit::Code(0), "started\n"));
        assert_eq!(results[5], ran(Exit::Code(3), ""));
        assert_eq!(
            results[6].exit,
            Exit::NotRun("no such file or directory".into())
        );
    }
}
