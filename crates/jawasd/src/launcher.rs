//! Launchers: how an admitted connection becomes a running engine.
//!
//! The loop hands a launcher the service (prepared once per load) and the
//! connection (socket, addresses); the launcher starts an engine serving it
//! and reports the pid, a pidfd to reap it by, and the read end of its
//! stderr pipe. `Exec` spawns the engine with clone+exec; a zygote launcher
//! (fork from an initialised engine) will implement the same trait.
//!
//! Also owns the per-connection environment (UCSPI's tcp-environ(5)
//! variables) and turning a failed start into a cause an operator can act
//! on.

#![forbid(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::rc::Rc;

use crate::config::{Protocol, Service, StderrMode};
use crate::spawn::{CStrArray, Command, SpawnError, Spawner};

/// A service ready to launch: its config, and argv and environment built
/// once when the config is applied, not per connection.
pub struct Prepared {
    pub config: Rc<Service>,
    pub argv: CStrArray,
    pub env: CStrArray,
}

impl Prepared {
    pub fn new(config: Rc<Service>) -> Prepared {
        Prepared {
            argv: CStrArray::new(config.argv.clone()),
            env: CStrArray::new(config.env.clone()),
            config,
        }
    }
}

/// The connection an engine will serve.
pub struct Conn<'a> {
    /// Becomes the engine's fds 0 and 1.
    pub socket: BorrowedFd<'a>,
    pub local: Option<SocketAddr>,
    pub remote: Option<SocketAddr>,
    /// A routed connection: the route's variables, and the socket the
    /// engine hands the connection back on (its fd 3).
    pub route: Option<RouteConn<'a>>,
}

/// What a routed connection adds (docs/engine-protocol.md, Routes).
#[derive(Clone, Copy)]
pub struct RouteConn<'a> {
    pub env: &'a [CString],
    /// `None` when the client said it sends no other request.
    pub handback: Option<BorrowedFd<'a>>,
}

/// A started engine.
pub struct Launched {
    pub pid: libc::pid_t,
    /// Readable when the engine exits; `None` on kernels without pidfds.
    pub pidfd: Option<OwnedFd>,
    /// The read end of the engine's stderr, when it is captured.
    pub stderr: Option<OwnedFd>,
    /// The zygote whose `PID` answer named it (exec'd engines: `None`).
    pub zygote: Option<libc::pid_t>,
}

pub trait Launcher {
    fn launch(&mut self, svc: &Prepared, conn: &Conn<'_>) -> Result<Launched, SpawnError>;
}

/// Starts a fresh engine process per connection (clone + exec).
#[derive(Default)]
pub struct Exec {
    spawner: Spawner,
    /// Set after a capture pipe could not be made for lack of descriptors.
    pub pipe_shortage: bool,
}

impl Launcher for Exec {
    fn launch(&mut self, svc: &Prepared, conn: &Conn<'_>) -> Result<Launched, SpawnError> {
        let cfg = &svc.config;
        let mut conn_env = connection_env(cfg, conn.local, conn.remote);
        if let Some(r) = &conn.route {
            conn_env.extend(r.env.iter().cloned());
        }
        let envp = CStrArray::chain(&svc.env, &conn_env);
        // Out of descriptors for the capture pipe: the engine still serves
        // its client, with its stderr on jawasd's (the loop pauses
        // accepting, as after EMFILE on accept).
        let pipe = match cfg.stderr {
            StderrMode::Capture => match capture_pipe() {
                Ok(p) => Some(p),
                Err(e) if crate::server::is_resource_exhaustion(&e) => {
                    self.pipe_shortage = true;
                    None
                }
                Err(error) => {
                    return Err(SpawnError {
                        step: "pipe",
                        error,
                    })
                }
            },
            _ => None,
        };
        let stderr = match cfg.stderr {
            StderrMode::Capture => pipe.as_ref().map(|(_, w)| w.as_fd()),
            StderrMode::Socket => Some(conn.socket),
            StderrMode::Log => None,
        };
        let cmd = Command {
            path: &cfg.engine,
            argv: &svc.argv,
            envp: &envp,
            socket: conn.socket,
            stderr,
            handback: conn.route.and_then(|r| r.handback),
            creds: cfg.creds.as_ref(),
            rlimits: &cfg.rlimits,
            nice: cfg.nice,
            chroot: cfg.chroot.as_deref(),
            workdir: cfg.workdir.as_deref(),
            umask: cfg.umask,
        };
        let spawned = self.spawner.spawn(&cmd)?;
        // Our copy of the write end closes here: only the engine holds it.
        Ok(Launched {
            pid: spawned.pid,
            pidfd: spawned.pidfd,
            stderr: pipe.map(|(r, _)| crate::spawn::keep_high(r)),
            zygote: None,
        })
    }
}

/// A started zygote: its pid, jawasd's end of its control socket, and the
/// read end of its captured stderr.
pub struct StartedZygote {
    pub pid: libc::pid_t,
    pub control: OwnedFd,
    pub stderr: Option<OwnedFd>,
}

impl Exec {
    /// Starts the zygote of a `spawn = "zygote"` service: the service's
    /// engine, credentials and limits, with the control socket where a
    /// connection would be and `JAWAS_ZYGOTE=1` added to its environment.
    /// Its stderr is captured when the service captures, on a socket its
    /// children share (see `capture`); the socket mode has no connection
    /// yet, so there it stays jawasd's.
    pub fn start_zygote(&mut self, svc: &Prepared) -> Result<StartedZygote, SpawnError> {
        let cfg = &svc.config;
        let step = |step| move |error| SpawnError { step, error };
        let (ours, theirs) = crate::zygote::control_pair().map_err(step("socketpair"))?;
        let pipe = match cfg.stderr {
            StderrMode::Capture => Some(crate::capture::shared_pair().map_err(step("socketpair"))?),
            _ => None,
        };
        let extra = [
            c_var("JAWAS_ZYGOTE=1".to_string()),
            c_var(format!("JAWAS_SERVICE={}", cfg.name)),
        ];
        let envp = CStrArray::chain(&svc.env, &extra);
        let cmd = Command {
            path: &cfg.engine,
            argv: &svc.argv,
            envp: &envp,
            socket: theirs.as_fd(),
            stderr: pipe.as_ref().map(|(_, w)| w.as_fd()),
            handback: None,
            creds: cfg.creds.as_ref(),
            rlimits: &cfg.rlimits,
            nice: cfg.nice,
            chroot: cfg.chroot.as_deref(),
            workdir: cfg.workdir.as_deref(),
            umask: cfg.umask,
        };
        // The zygote is reaped by SIGCHLD like an orphan: its pidfd is not
        // needed.
        let spawned = self.spawner.spawn(&cmd)?;
        Ok(StartedZygote {
            pid: spawned.pid,
            control: crate::spawn::keep_high(ours),
            stderr: pipe.map(|(r, _)| crate::spawn::keep_high(r)),
        })
    }
}

/// Hands an admitted connection to a ready zygote: the child it forks
/// gets the socket, the connection's environment, and the socket as its
/// stderr too under `stderr = "socket"` (else it keeps the zygote's: the
/// shared capture, or jawasd's own). Does not wait for the answer: the
/// zygote's `PID` (the child, a started engine without a pidfd) comes
/// through the loop.
pub fn hand_to_zygote(
    zygote: &mut crate::zygote::Zygote,
    svc: &Prepared,
    conn: &Conn<'_>,
) -> Result<(), SpawnError> {
    let cfg = &svc.config;
    let stderr = (cfg.stderr == StderrMode::Socket).then_some(conn.socket);
    let mut env = connection_env(cfg, conn.local, conn.remote);
    if let Some(r) = &conn.route {
        env.extend(r.env.iter().cloned());
    }
    zygote
        .send(
            conn.socket,
            stderr,
            conn.route.and_then(|r| r.handback),
            &env,
        )
        .map_err(|error| SpawnError {
            step: "zygote",
            error,
        })
}

/// A close-on-exec pipe; the read end (ours) is non-blocking, the write
/// end (the engine's fd 2) blocking.
pub fn capture_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    fcntl(
        std::os::fd::AsRawFd::as_raw_fd(&r),
        FcntlArg::F_SETFL(OFlag::O_NONBLOCK),
    )?;
    Ok((r, w))
}

/// The per-connection environment: UCSPI's for a TCP client, REMOTE_HOST
/// when asked, and JAWAS_SERVICE always.
pub fn connection_env(
    svc: &Service,
    local: Option<SocketAddr>,
    remote: Option<SocketAddr>,
) -> Vec<CString> {
    let mut vars = match (svc.protocol, local, remote) {
        (Protocol::Tcp, Some(l), Some(r)) => ucspi_env(&svc.name, l, r),
        _ => vec![c_var(format!("JAWAS_SERVICE={}", svc.name))],
    };
    if let (true, Some(r)) = (svc.remote_host_env, remote) {
        vars.push(c_var(format!("REMOTE_HOST={}", r.ip().to_canonical())));
    }
    vars
}

/// Service names and addresses never hold NUL; an empty variable is the
/// harmless answer if one ever did.
fn c_var(s: String) -> CString {
    CString::new(s).unwrap_or_default()
}

/// The UCSPI variables (tcp-environ(5)) plus JAWAS_SERVICE. For IPv6, as
/// ucspi-tcp6 does: PROTO=TCP6, compact addresses in TCPLOCALIP and
/// TCPREMOTEIP, and the TCP6* names besides.
pub fn ucspi_env(service: &str, local: SocketAddr, remote: SocketAddr) -> Vec<CString> {
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
    vars.into_iter().map(c_var).collect()
}

/// What went wrong when an engine could not start, in words an operator
/// can act on. Reads the engine's first line only to tell a missing `#!`
/// interpreter from a missing engine, and only on this failure path.
pub fn explain(svc: &Service, e: &SpawnError) -> String {
    let engine = svc.engine.to_string_lossy();
    let errno = e.error.raw_os_error();
    match (e.step, errno) {
        ("clone", Some(libc::EAGAIN)) => {
            "process limit reached (RLIMIT_NPROC of jawasd's user, kernel.pid_max or kernel.threads-max)"
                .into()
        }
        ("execve", Some(libc::ENOENT)) if svc.chroot.is_none() => {
            match interpreter_of(std::path::Path::new(&*engine)) {
                Some(interp) => format!(
                    "the interpreter {interp} named on the #! line of {engine} does not exist"
                ),
                None if std::path::Path::new(&*engine).exists() => format!(
                    "{engine} exists but cannot be executed (no such file or directory: a missing loader or library?)"
                ),
                None => format!("engine {engine} does not exist (deleted since the config was loaded?)"),
            }
        }
        ("execve", Some(libc::EACCES)) => {
            format!("permission denied executing {engine} (not executable, or a directory on its path is not searchable)")
        }
        ("execve", Some(libc::ENOEXEC)) => {
            format!("{engine} is not in an executable format (a script without #!?)")
        }
        ("zygote", None) => {
            "the connection went to the zygote, which started no engine for it; it is closed".into()
        }
        (step, _) => format!("{step}: {}", crate::errno_text(&e.error)),
    }
}

/// The interpreter named by a `#!` line, when the file has one and the
/// interpreter is missing.
fn interpreter_of(path: &std::path::Path) -> Option<String> {
    use std::io::Read;
    let mut head = [0u8; 256];
    let n = std::fs::File::open(path).ok()?.read(&mut head).ok()?;
    let line = head[..n].strip_prefix(b"#!")?;
    let line = line.split(|&b| b == b'\n').next()?;
    let text = String::from_utf8_lossy(line);
    let interp = text.split_whitespace().next()?.to_string();
    (!std::path::Path::new(&interp).exists()).then_some(interp)
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

    #[test]
    fn a_missing_interpreter_is_named() {
        let dir = std::env::temp_dir().join(format!("jawasd-interp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("engine.sh");
        std::fs::write(&script, "#!/nonexistent/bin/shell -e\necho hi\n").unwrap();
        assert_eq!(
            interpreter_of(&script).as_deref(),
            Some("/nonexistent/bin/shell")
        );
        std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
        assert_eq!(interpreter_of(&script), None, "/bin/sh exists");
        std::fs::write(&script, "echo hi\n").unwrap();
        assert_eq!(interpreter_of(&script), None, "no #! line");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[cfg(test)]
mod explain_tests {
    use super::*;
    use crate::config::{Config, Env};

    #[test]
    fn causes_in_words() {
        let env = Env {
            exe_dir: None,
            path_var: Some(std::ffi::OsStr::new("/usr/bin:/bin")),
        };
        let config = Config::parse(
            "[services.a]\nlisten = \"127.0.0.1:0\"\nengine = \"/bin/sh\"\n",
            std::path::Path::new("t.toml"),
            &env,
        )
        .unwrap();
        let svc = &config.services[0];
        let err = |step, errno| SpawnError {
            step,
            error: io::Error::from_raw_os_error(errno),
        };
        let cases = [
            (err("clone", libc::EAGAIN), "process limit reached"),
            (
                err("execve", libc::EACCES),
                "permission denied executing /bin/sh",
            ),
            (err("execve", libc::ENOEXEC), "not in an executable format"),
            (
                err("execve", libc::ENOENT),
                "/bin/sh exists but cannot be executed",
            ),
            (
                err("setuid", libc::EPERM),
                "setuid: operation not permitted",
            ),
        ];
        for (e, want) in cases {
            let got = explain(svc, &e);
            assert!(got.contains(want), "{} {:?}: {got}", e.step, e.error);
        }
    }
}
