//! jawas-cgi: CGI/1.1 (RFC 3875) over the shared HTTP layer, so that HTTP
//! applications can be written in any language, one process per
//! connection, keep-alive across requests.
//!
//! Failure paths, each one HTTP answer and a log line with the reason, after
//! which the engine goes on to the next request on the connection: no
//! script for the path (404), a script that is not executable (403), a
//! script that cannot be started, dies before its header or writes a
//! malformed one (500), a script that runs past the timeout (504, its
//! process group killed). A failure after the header was sent can only
//! close the connection. Usage and configuration errors exit 100 before
//! anything is read, with one `jawas-cgi: error: ...` line each.
//!
//! Start-up, options (one table that also writes `--help`), `--version`,
//! `--check` and exit codes come from the engine runtime, jawas-engine:
//! `init` validates every option (the root is a directory, the script an
//! executable file); `serve` runs the HTTP loop of jawas-http.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jawas_engine::{join, parse_secs, Args, Connection, Engine, Error, Opt};
use jawas_http::path::{segments, PathError};
use jawas_http::pipe::DeadlineReader;
use jawas_http::{Body, Conn, Framing, HttpError, Limits, Request, Response};

/// Longest script header block.
const MAX_SCRIPT_HEAD: usize = 64 * 1024;
/// Local redirects followed before giving up (a loop).
const MAX_LOCAL_REDIRECTS: usize = 5;

/// Invariant: exactly one of `root` and `script` is set, canonical.
struct Options {
    root: Option<PathBuf>,
    script: Option<PathBuf>,
    prefix: String,
    index: Option<String>,
    env: Vec<(String, String)>,
    timeout: Duration,
    server_name: Option<String>,
    limits: Limits,
}

const OPTIONS: &[Opt] = &[
    Opt::value(
        "root",
        "DIR",
        "Run the first executable file along the URL path under DIR; the rest \
         of the path is PATH_INFO.",
    ),
    Opt::value(
        "script",
        "FILE",
        "Run FILE for every request; the path after the prefix is PATH_INFO \
         (as git http-backend is mounted).",
    ),
    Opt::value(
        "prefix",
        "/PATH",
        "Serve only URL paths under /PATH, which becomes the start of \
         SCRIPT_NAME (default: the whole site).",
    ),
    Opt::value(
        "index",
        "NAME",
        "With --root, the script to run for a path that ends at a directory \
         (default: none, 404).",
    ),
    Opt::value(
        "env",
        "NAME=VALUE",
        "Set NAME to VALUE in every script's environment. Repeatable.",
    ),
    Opt::value(
        "timeout",
        "SECS",
        "Answer 504 and kill the script when its header has not come within \
         SECS (default 60); after the header, the body may take as long as \
         it needs, but the script may not go quiet for SECS.",
    ),
    Opt::value(
        "max-body",
        "BYTES",
        "Answer 413 to a request body over BYTES (default 1073741824).",
    ),
    Opt::value(
        "server-name",
        "NAME",
        "SERVER_NAME for scripts (default: the Host of the request, else the \
         local address).",
    ),
    Opt::value(
        "idle-timeout",
        "SECS",
        "Close a kept-alive connection idle for SECS (default 15).",
    ),
    Opt::value(
        "send-timeout",
        "SECS",
        "Close the connection when the client takes no bytes for SECS \
         (default 60).",
    ),
];

struct Cgi {
    opts: Options,
}

impl Engine for Cgi {
    const NAME: &'static str = "jawas-cgi";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const USAGE: &'static [&'static str] = &["--root DIR", "--script FILE"];
    const ABOUT: &'static str = "\
CGI/1.1 (RFC 3875) over HTTP/1.1 on the connection on fds 0 and 1, keep-alive
across requests. Each request runs a program: with --root DIR, the first
executable file along the URL path (paths never leave DIR, names starting with
'.' are hidden); with --script FILE, always FILE. The request body goes to its
stdin, its stdout is the response (a CGI header block, or a whole HTTP
response for programs named nph-*), its stderr goes to the engine's stderr.";
    const OPTIONS: &'static [Opt] = OPTIONS;

    fn init(args: &Args) -> Result<Self, Error> {
        Ok(Cgi {
            opts: options(args)?,
        })
    }

    fn serve(&mut self, conn: Connection) -> Result<(), Error> {
        let opts = &self.opts;
        let mut conn = Conn::from_connection(conn, opts.limits.clone());
        jawas_engine::status(jawas_http::serve(&mut conn, |conn, req| {
            match handle(opts, conn, &req) {
                Ok(Outcome::Continue) => Ok(true),
                Ok(Outcome::Close) => Ok(false),
                Err(e) => {
                    conn.log.line(&format!("jawas-cgi: {e}"));
                    Err(e)
                }
            }
        }))
    }
}

fn main() {
    jawas_engine::run::<Cgi>()
}

/// Every option checked, all problems reported at once.
fn options(args: &Args) -> Result<Options, Error> {
    let extra = match args.positionals().first() {
        Some(a) => Err(Error::usage(format!("unexpected argument '{a}'"))),
        None => Ok(()),
    };
    let secs = join(
        args.parse("timeout", parse_secs),
        join(
            args.parse("idle-timeout", parse_secs),
            args.parse("send-timeout", parse_secs),
        ),
    );
    let rest = join(
        args.parse_all("env", parse_env),
        join(args.parse("max-body", parse_bytes), extra),
    );
    let ((program, prefix), (secs, rest)) = join(
        join(program(args), parse_prefix(args.value("prefix"))),
        join(secs, rest),
    )?;
    let (timeout, (idle, send)) = secs;
    let (env, (max_body, ())) = rest;
    let defaults = Limits::default();
    let timeout = timeout.unwrap_or(Duration::from_secs(60));
    let (root, script) = program;
    Ok(Options {
        root,
        script,
        prefix,
        index: args.value("index").map(String::from),
        env,
        timeout,
        server_name: args.value("server-name").map(String::from),
        limits: Limits {
            max_body: max_body.unwrap_or(1 << 30),
            idle: idle.unwrap_or(defaults.idle),
            send: send.unwrap_or(defaults.send),
            // A request may take as long as its script may.
            request: defaults.request.max(timeout),
            ..defaults
        },
    })
}

/// `--root DIR` (a directory) or `--script FILE` (an executable file), one
/// of the two, canonical.
fn program(args: &Args) -> Result<(Option<PathBuf>, Option<PathBuf>), Error> {
    let canonical = |opt: &str, p: &str| {
        std::fs::canonicalize(p)
            .map_err(|e| Error::config(format!("--{opt} '{p}': {}", os_text(&e))))
    };
    match (args.value("root"), args.value("script")) {
        (Some(_), Some(_)) => Err(Error::usage("give --root or --script, not both")),
        (None, None) => Err(Error::usage("--root DIR or --script FILE is required")),
        (Some(r), None) => {
            let c = canonical("root", r)?;
            if !c.is_dir() {
                return Err(Error::config(format!("--root '{r}': not a directory")));
            }
            Ok((Some(c), None))
        }
        (None, Some(s)) => {
            let c = canonical("script", s)?;
            if !is_executable(&c) {
                return Err(Error::config(format!(
                    "--script '{s}': not an executable file"
                )));
            }
            Ok((None, Some(c)))
        }
    }
}

/// `--prefix /PATH`: a URL path (trailing slashes dropped), or nothing.
fn parse_prefix(v: Option<&str>) -> Result<String, Error> {
    let prefix = v.unwrap_or("").trim_end_matches('/');
    if !prefix.is_empty() && !prefix.starts_with('/') {
        return Err(Error::usage(format!(
            "--prefix '{}': a URL path starting with /, such as /app",
            v.unwrap_or("")
        )));
    }
    Ok(prefix.to_string())
}

/// `--env NAME=VALUE`: NAME not empty; neither holds a NUL (which no
/// environment can carry).
fn parse_env(v: &str) -> Result<(String, String), String> {
    let (k, val) = v.split_once('=').ok_or("expected NAME=VALUE")?;
    if k.is_empty() {
        return Err("expected NAME=VALUE with a NAME".into());
    }
    if v.contains('\0') {
        return Err("a NUL byte cannot be in the environment".into());
    }
    Ok((k.to_string(), val.to_string()))
}

/// A whole number of bytes: `--max-body 1048576`.
fn parse_bytes(v: &str) -> Result<u64, String> {
    v.parse()
        .map_err(|_| "not a whole number of bytes".to_string())
}

/// An I/O error's text without the "(os error N)" Rust appends.
fn os_text(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

enum Outcome {
    Continue,
    Close,
}

/// Where a request goes.
struct Target {
    script: PathBuf,
    /// The URL path of the script (SCRIPT_NAME).
    script_name: String,
    path_info: String,
}

/// Finds the script for a URL path: the first executable file along it
/// (the rest is PATH_INFO), or the one `--script`.
fn locate(opts: &Options, path: &str) -> Result<Target, u16> {
    let rest = match path.strip_prefix(opts.prefix.as_str()) {
        Some(r) if opts.prefix.is_empty() || r.is_empty() || r.starts_with('/') => r,
        _ => return Err(404),
    };
    if let Some(script) = &opts.script {
        // The same rules as for --root: decoded once, no NUL, dot segments
        // resolved without climbing, dotfiles hidden. PATH_TRANSLATED is
        // built from PATH_INFO, so it cannot leave the document root.
        let segs = match segments(if rest.is_empty() { "/" } else { rest }, false) {
            Ok(s) => s,
            Err(PathError::Bad(_)) => return Err(400),
            Err(PathError::Hidden) => return Err(404),
        };
        let mut path_info = String::new();
        if !rest.is_empty() {
            path_info = format!("/{}", segs.join("/"));
            if rest.ends_with('/') && !segs.is_empty() {
                path_info.push('/');
            }
        }
        return Ok(Target {
            script: script.clone(),
            script_name: opts.prefix.clone(),
            path_info,
        });
    }
    let root = opts.root.as_ref().expect("root or script");
    let rest = if rest.is_empty() { "/" } else { rest };
    let segs = match segments(rest, false) {
        Ok(s) => s,
        Err(PathError::Bad(_)) => return Err(400),
        Err(PathError::Hidden) => return Err(404),
    };
    let mut fs_path = root.clone();
    for (i, seg) in segs.iter().enumerate() {
        fs_path.push(seg);
        let meta = std::fs::symlink_metadata(&fs_path).map_err(|_| 404u16)?;
        if meta.file_type().is_symlink() {
            // Scripts and directories must be real entries under the root.
            let real = std::fs::canonicalize(&fs_path).map_err(|_| 404u16)?;
            if !real.starts_with(root) {
                return Err(404);
            }
        }
        let meta = std::fs::metadata(&fs_path).map_err(|_| 404u16)?;
        if meta.is_file() {
            if meta.permissions().mode() & 0o111 == 0 {
                return Err(403);
            }
            let script_name = format!("{}/{}", opts.prefix, segs[..=i].join("/"));
            let path_info = if i + 1 < segs.len() {
                format!("/{}", segs[i + 1..].join("/"))
            } else {
                String::new()
            };
            return Ok(Target {
                script: fs_path,
                script_name,
                path_info,
            });
        }
        if !meta.is_dir() {
            return Err(404);
        }
    }
    // A directory: its index script.
    let index = opts.index.as_ref().ok_or(404u16)?;
    fs_path.push(index);
    if !is_executable(&fs_path) {
        return Err(if fs_path.exists() { 403 } else { 404 });
    }
    let dir = if segs.is_empty() {
        String::new()
    } else {
        format!("/{}", segs.join("/"))
    };
    Ok(Target {
        script: fs_path,
        script_name: format!("{}{dir}/{index}", opts.prefix),
        path_info: String::new(),
    })
}

fn handle(opts: &Options, conn: &mut Conn, req: &Request) -> io::Result<Outcome> {
    let mut req = req.clone();
    let mut body_read = false;
    for _ in 0..=MAX_LOCAL_REDIRECTS {
        let target = match locate(opts, req.path()) {
            Ok(t) => t,
            Err(status) => {
                if !body_read && conn.discard_body(&req).is_err() {
                    return Ok(Outcome::Close);
                }
                return finish(conn, &req, Response::error(status));
            }
        };
        let mut script = match start(opts, conn, &req, &target, body_read) {
            Ok(s) => s,
            Err(Failure::Http(e)) => {
                conn.send_error(&e);
                return Ok(Outcome::Close);
            }
            Err(Failure::Script(status, why)) => {
                conn.log
                    .line(&format!("jawas-cgi: {}: {why}", target.script.display()));
                return finish(conn, &req, Response::error(status));
            }
        };
        body_read = true;
        let nph = target
            .script
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("nph-"));
        if nph {
            // Non-parsed headers: the script speaks HTTP itself.
            let mut out = script.output.take().expect("output");
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match out.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => conn.write_all(&buf[..n])?,
                    Err(_) => break,
                }
            }
            script.reap(conn);
            return Ok(Outcome::Close);
        }
        let mut out = script.output.take().expect("output");
        let head = match read_script_head(&mut out) {
            Ok(h) => {
                // The head came in time; the body may take as long as it
                // needs, as long as the script never goes quiet for the
                // whole timeout (a long download, git http-backend).
                out.idle_after(opts.timeout);
                script.deadline = None;
                h
            }
            Err(why) => {
                let timed_out = why.contains("timed out");
                script.kill();
                script.reap(conn);
                conn.log
                    .line(&format!("jawas-cgi: {}: {why}", target.script.display()));
                return finish(
                    conn,
                    &req,
                    Response::error(if timed_out { 504 } else { 500 }),
                );
            }
        };
        // A local redirect: a path with no other headers but Location.
        if let Some(loc) = head.location.as_deref() {
            if loc.starts_with('/') && head.status.is_none() && head.headers.is_empty() {
                script.kill();
                script.reap(conn);
                req.method = "GET".into();
                req.target = loc.to_string();
                req.framing = Framing::None;
                continue;
            }
        }
        let mut resp =
            Response::new(
                head.status
                    .unwrap_or(if head.location.is_some() { 302 } else { 200 }),
            );
        if let Some(loc) = head.location {
            resp.headers.push(("Location".into(), loc.into_bytes()));
        }
        resp.headers.extend(head.headers);
        let length = resp
            .get_header("Content-Length")
            .map(str::trim)
            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|v| v.parse::<u64>().ok());
        resp.headers
            .retain(|(k, _)| !k.eq_ignore_ascii_case("Content-Length"));
        if resp.get_header("Content-Type").is_none() && head.location_only_redirect {
            resp.headers
                .push(("Content-Type".into(), b"text/plain".to_vec()));
        }
        resp.body = match length {
            Some(n) => Body::Sized(Box::new(out), n),
            None => Body::Stream(Box::new(out)),
        };
        let keep = conn.send(Some(&req), resp);
        if keep.is_err() {
            // The client is gone or stopped reading (the send timeout):
            // nobody will read the rest of the script's output.
            script.kill();
        }
        script.reap(conn);
        return match keep {
            Ok(true) => Ok(Outcome::Continue),
            Ok(false) => Ok(Outcome::Close),
            Err(e) => Err(e),
        };
    }
    conn.log.line("jawas-cgi: too many local redirects");
    finish(conn, &req, Response::error(500))
}

fn finish(conn: &mut Conn, req: &Request, resp: Response) -> io::Result<Outcome> {
    Ok(if conn.send(Some(req), resp)? {
        Outcome::Continue
    } else {
        Outcome::Close
    })
}

enum Failure {
    /// Reading the request failed: answer it and close.
    Http(HttpError),
    /// The script could not be run: this status, this reason for the log.
    Script(u16, String),
}

/// A running script.
struct Script {
    child: Child,
    output: Option<DeadlineReader>,
    /// When the script is killed if it has not ended; `None` once its head
    /// came in time (then `reap` gives it `timeout` from the end of its
    /// output, and it is killed at once if the client goes away).
    deadline: Option<Instant>,
    timeout: Duration,
    started: Instant,
    path: PathBuf,
}

impl Script {
    fn kill(&mut self) {
        // The script leads its own process group: take its children too.
        // SAFETY: kill(2) takes plain integers and touches no memory; the
        // child is not yet reaped, so its group id is still ours to signal.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
    }

    /// Waits for the script (killing it at the deadline) and logs an
    /// abnormal end. Sleeps on a pidfd where the kernel has them, so the
    /// usual case (the script exits as its output ends) costs no polling.
    fn reap(mut self, conn: &Conn) {
        // SAFETY: pidfd_open on our own child; the fd is closed below.
        let pidfd =
            unsafe { libc::syscall(libc::SYS_pidfd_open, self.child.id() as libc::pid_t, 0) }
                as i32;
        let deadline = self
            .deadline
            .unwrap_or_else(|| Instant::now() + self.timeout);
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    if !status.success() {
                        conn.log.line(&format!(
                            "jawas-cgi: {} ended with {status} after {:.3}s",
                            self.path.display(),
                            self.started.elapsed().as_secs_f64()
                        ));
                    }
                    break;
                }
                Ok(None) if Instant::now() >= deadline => {
                    conn.log.line(&format!(
                        "jawas-cgi: {} killed at the timeout",
                        self.path.display()
                    ));
                    self.kill();
                    let _ = self.child.wait();
                    break;
                }
                Ok(None) if pidfd >= 0 => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    let mut pfd = libc::pollfd {
                        fd: pidfd,
                        events: libc::POLLIN,
                        revents: 0,
                    };
                    // SAFETY: poll on one pollfd we own.
                    unsafe {
                        libc::poll(&mut pfd, 1, left.as_millis().min(i32::MAX as u128) as i32)
                    };
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(2)),
                Err(_) => break,
            }
        }
        if pidfd >= 0 {
            // SAFETY: closing the pidfd we opened.
            unsafe { libc::close(pidfd) };
        }
    }
}

/// Starts the script with the CGI environment, and feeds it the request
/// body: streamed for Content-Length, spooled to an unlinked temporary file
/// for chunked bodies (so CONTENT_LENGTH can be given, as CGI programs
/// expect).
fn start(
    opts: &Options,
    conn: &mut Conn,
    req: &Request,
    target: &Target,
    body_read: bool,
) -> Result<Script, Failure> {
    let mut spooled: Option<(File, u64)> = None;
    if !body_read && req.framing == Framing::Chunked {
        let mut tmp = tempfile()
            .map_err(|e| Failure::Script(500, format!("unable to spool the body: {e}")))?;
        let n = conn
            .read_body(req, &mut |b| tmp.write_all(b))
            .map_err(Failure::Http)?;
        tmp.flush().ok();
        use std::io::Seek;
        tmp.seek(io::SeekFrom::Start(0)).ok();
        spooled = Some((tmp, n));
    }
    let content_length = match (&spooled, req.framing) {
        (Some((_, n)), _) => Some(*n),
        (None, Framing::Length(n)) if !body_read => Some(n),
        _ => None,
    };
    let env = cgi_env(opts, conn, req, target, content_length);
    let mut cmd = Command::new(&target.script);
    cmd.env_clear()
        .envs(env)
        .current_dir(target.script.parent().unwrap_or(Path::new("/")))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0);
    match &spooled {
        Some((f, _)) => {
            cmd.stdin(
                f.try_clone()
                    .map_err(|e| Failure::Script(500, e.to_string()))?,
            );
        }
        None if content_length.is_some() => {
            cmd.stdin(Stdio::piped());
        }
        None => {
            cmd.stdin(Stdio::null());
        }
    }
    let mut child = cmd.spawn().map_err(|e| {
        let status = if e.kind() == io::ErrorKind::PermissionDenied {
            403
        } else {
            500
        };
        Failure::Script(status, format!("unable to start: {e}"))
    })?;
    let deadline = Instant::now() + opts.timeout;
    let stdout = child.stdout.take().expect("piped");
    let streaming = spooled.is_none() && content_length.is_some();
    let output = if !streaming {
        DeadlineReader::new(stdout, deadline)
    } else {
        // While the body streams in, read the script's output on a thread, so
        // a script that writes before it has read its whole body cannot
        // deadlock with us.
        DeadlineReader::drained(stdout, deadline)
    };
    let mut script = Script {
        child,
        output: Some(output),
        deadline: Some(deadline),
        timeout: opts.timeout,
        started: Instant::now(),
        path: target.script.clone(),
    };
    if let (None, Some(_)) = (&spooled, content_length) {
        let mut stdin = script.child.stdin.take().expect("piped");
        let mut script_gone = false;
        let r = conn.read_body(req, &mut |b| {
            if !script_gone && stdin.write_all(b).is_err() {
                // The script stopped reading: keep draining the client so
                // the connection stays usable.
                script_gone = true;
            }
            Ok(())
        });
        drop(stdin);
        if let Err(e) = r {
            script.kill();
            let _ = script.child.wait();
            return Err(Failure::Http(e));
        }
    }
    Ok(script)
}

/// An unlinked temporary file (O_TMPFILE where the kernel has it).
fn tempfile() -> io::Result<File> {
    let dir = std::env::var_os("TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_TMPFILE)
        .mode(0o600)
        .open(&dir)
    {
        Ok(f) => Ok(f),
        Err(_) => {
            let p = dir.join(format!(
                "jawas-cgi-{}-{}",
                std::process::id(),
                Instant::now().elapsed().as_nanos()
            ));
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&p)?;
            let _ = std::fs::remove_file(&p);
            Ok(f)
        }
    }
}

/// The RFC 3875 meta-variables, plus REQUEST_URI, SCRIPT_FILENAME,
/// DOCUMENT_ROOT and the HTTP_* headers (never HTTP_PROXY: httpoxy).
fn cgi_env(
    opts: &Options,
    conn: &Conn,
    req: &Request,
    t: &Target,
    content_length: Option<u64>,
) -> Vec<(OsString, OsString)> {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    // Values are bytes: request headers reach the script byte for byte.
    let mut env: Vec<(String, Vec<u8>)> = Vec::with_capacity(32 + req.headers.len());
    // The service's own environment first (jawasd's `env` and `pass_env`,
    // as Apache's SetEnv): jawasd lets nothing else through. The
    // connection's UCSPI variables and anything the request defines below
    // are not inherited.
    env.extend(std::env::vars_os().filter_map(|(k, v)| {
        let k = k.into_string().ok().filter(|k| inherited(k))?;
        Some((k, v.into_vec()))
    }));
    let mut set = |k: &str, v: String| env.push((k.to_string(), v.into_bytes()));
    set("GATEWAY_INTERFACE", "CGI/1.1".into());
    set(
        "SERVER_SOFTWARE",
        concat!("jawas-cgi/", env!("CARGO_PKG_VERSION")).into(),
    );
    set("SERVER_PROTOCOL", req.version().into());
    set("REQUEST_METHOD", req.method.clone());
    set("REQUEST_URI", req.target.clone());
    set("QUERY_STRING", req.query().unwrap_or("").into());
    set("SCRIPT_NAME", t.script_name.clone());
    set("SCRIPT_FILENAME", t.script.display().to_string());
    set("PATH_INFO", t.path_info.clone());
    let doc_root = opts
        .root
        .clone()
        .unwrap_or_else(|| t.script.parent().unwrap_or(Path::new("/")).to_path_buf());
    set("DOCUMENT_ROOT", doc_root.display().to_string());
    if !t.path_info.is_empty() {
        set(
            "PATH_TRANSLATED",
            format!("{}{}", doc_root.display(), t.path_info),
        );
    }
    let peer = conn.peer();
    let server_name = opts
        .server_name
        .clone()
        .or_else(|| req.host_name().map(str::to_string))
        .or_else(|| peer.local_ip.map(|ip| ip.to_string()))
        .unwrap_or_else(|| "localhost".into());
    set("SERVER_NAME", server_name);
    set("SERVER_PORT", peer.local_port.unwrap_or(80).to_string());
    if let Some(ip) = peer.remote_ip {
        let ip = ip.to_string();
        set("REMOTE_ADDR", ip.clone());
        // No name lookups: REMOTE_HOST is the address, as RFC 3875 allows.
        set("REMOTE_HOST", ip);
    }
    if let Some(p) = peer.remote_port {
        set("REMOTE_PORT", p.to_string());
    }
    if let Some(n) = content_length {
        set("CONTENT_LENGTH", n.to_string());
    }
    if let Some(ct) = req.header("Content-Type") {
        set("CONTENT_TYPE", ct.into());
    }
    if let Some(auth) = req.header("Authorization") {
        if let Some((scheme, _)) = auth.split_once(' ') {
            set("AUTH_TYPE", scheme.into());
        }
    }
    if std::env::var_os("HTTPS").is_some() {
        set("HTTPS", "on".into());
    }
    for (k, v) in &req.headers {
        // X_Real_IP would become HTTP_X_REAL_IP, the variable of the
        // trusted X-Real-IP a proxy sets: names with `_` are dropped, as
        // Apache and nginx do.
        if k.contains('_') {
            continue;
        }
        let name = format!("HTTP_{}", k.to_ascii_uppercase().replace('-', "_"));
        // httpoxy: a client's Proxy header must never become HTTP_PROXY.
        // Length and type are given as CONTENT_*; credentials are not passed.
        // Transfer-Encoding is ours to undo: the script sees a plain body.
        if matches!(
            name.as_str(),
            "HTTP_PROXY"
                | "HTTP_CONTENT_LENGTH"
                | "HTTP_CONTENT_TYPE"
                | "HTTP_AUTHORIZATION"
                | "HTTP_TRANSFER_ENCODING"
        ) || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            continue;
        }
        match env.iter_mut().find(|(ek, _)| *ek == name) {
            Some((_, ev)) => {
                ev.extend_from_slice(b", ");
                ev.extend_from_slice(v);
            }
            None => env.push((name, v.clone())),
        }
    }
    env.push((
        "PATH".into(),
        std::env::var_os("PATH")
            .map(|p| p.as_bytes().to_vec())
            .unwrap_or_else(|| b"/usr/local/bin:/usr/bin:/bin".to_vec()),
    ));
    for (k, v) in &opts.env {
        env.retain(|(ek, _)| ek != k);
        env.push((k.clone(), v.clone().into_bytes()));
    }
    env.into_iter()
        .map(|(k, v)| (OsString::from(k), OsString::from_vec(v)))
        .collect()
}

/// Whether a variable of jawas-cgi's own environment reaches scripts:
/// not the UCSPI ones (tcp-environ(5), xinetd's REMOTE_HOST), which
/// describe the connection in another vocabulary, not the CGI
/// meta-variables and HTTP_* names, which only the request may set.
fn inherited(name: &str) -> bool {
    const CGI: &[&str] = &[
        "AUTH_TYPE",
        "CONTENT_LENGTH",
        "CONTENT_TYPE",
        "DOCUMENT_ROOT",
        "GATEWAY_INTERFACE",
        "HTTPS",
        "PATH",
        "PATH_INFO",
        "PATH_TRANSLATED",
        "PROTO",
        "QUERY_STRING",
        "REMOTE_ADDR",
        "REMOTE_HOST",
        "REMOTE_IDENT",
        "REMOTE_PORT",
        "REMOTE_USER",
        "REQUEST_METHOD",
        "REQUEST_URI",
        "SCRIPT_FILENAME",
        "SCRIPT_NAME",
        "SERVER_NAME",
        "SERVER_PORT",
        "SERVER_PROTOCOL",
        "SERVER_SOFTWARE",
    ];
    !(CGI.contains(&name)
        || name.starts_with("TCP")
        || name.starts_with("SSL")
        || name.starts_with("HTTP_"))
}

/// The script's header block.
struct ScriptHead {
    status: Option<u16>,
    location: Option<String>,
    /// Values byte for byte as the script wrote them (obs-text included).
    headers: Vec<(String, Vec<u8>)>,
    location_only_redirect: bool,
}

/// Reads and checks the CGI header (lines ending in LF or CRLF, up to an
/// empty line). Errors name what was wrong, for the log.
fn read_script_head(out: &mut DeadlineReader) -> Result<ScriptHead, String> {
    let mut raw = Vec::new();
    let end = loop {
        if let Some(p) = find_blank_line(&raw) {
            break p;
        }
        if raw.len() > MAX_SCRIPT_HEAD {
            return Err("header block too large".into());
        }
        let mut buf = [0u8; 8192];
        match out.read(&mut buf) {
            Ok(0) if raw.is_empty() => {
                return Err("no output (premature end of script headers)".into())
            }
            Ok(0) => return Err("premature end of script headers".into()),
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                return Err("timed out before its header".into())
            }
            Err(e) => return Err(format!("reading output: {e}")),
        }
    };
    let (head, used) = end;
    let rest = raw[used..].to_vec();
    out.unread(rest);
    let mut h = ScriptHead {
        status: None,
        location: None,
        headers: Vec::new(),
        location_only_redirect: false,
    };
    for line in raw[..head].split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let shown = String::from_utf8_lossy(line);
        // A bare CR (or any control but HTAB) would reach the client as a
        // line break some parsers honour: response splitting.
        if line.iter().any(|&c| (c < 0x20 && c != b'\t') || c == 0x7f) {
            return Err(format!(
                "control character in header line '{}'",
                clean(&shown)
            ));
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or_else(|| format!("malformed header line '{}'", clean(&shown)))?;
        let (k, v) = (line[..colon].trim_ascii(), line[colon + 1..].trim_ascii());
        let k = match std::str::from_utf8(k) {
            Ok(k) if !k.is_empty() && k.bytes().all(|b| b.is_ascii_graphic()) => k,
            _ => {
                let k = String::from_utf8_lossy(k);
                return Err(format!("malformed header name '{}'", clean(&k)));
            }
        };
        if k.eq_ignore_ascii_case("Status") {
            let text = String::from_utf8_lossy(v);
            let code: u16 = text
                .split_whitespace()
                .next()
                .and_then(|c| c.parse().ok())
                // A script answers with a final status: 1xx (101
                // included) would leave the client waiting for another.
                .filter(|c| (200..600).contains(c))
                .ok_or_else(|| format!("bad Status '{}'", clean(&text)))?;
            h.status = Some(code);
        } else if k.eq_ignore_ascii_case("Location") {
            let loc = std::str::from_utf8(v)
                .map_err(|_| format!("Location is not text '{}'", clean(&shown)))?;
            h.location = Some(loc.to_string());
        } else {
            h.headers.push((k.to_string(), v.to_vec()));
        }
    }
    let has_type = h
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("Content-Type"));
    match (&h.location, has_type) {
        (Some(_), false) => h.location_only_redirect = true,
        (None, false) if h.status.is_some_and(|s| s == 204 || s == 304) => {}
        (None, false) => return Err("no Content-Type (and no Location) in the header".into()),
        _ => {}
    }
    Ok(h)
}

/// End of the header block: (length of the head, bytes consumed).
fn find_blank_line(b: &[u8]) -> Option<(usize, usize)> {
    for i in 0..b.len() {
        if b[i] == b'\n' {
            if b.get(i + 1) == Some(&b'\n') {
                return Some((i, i + 2));
            }
            if b.get(i + 1) == Some(&b'\r') && b.get(i + 2) == Some(&b'\n') {
                return Some((i, i + 3));
            }
        }
    }
    None
}

fn clean(s: &str) -> String {
    s.chars()
        .take(80)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Result<ScriptHead, String> {
        read_script_head(&mut DeadlineReader::drained(
            io::Cursor::new(text.as_bytes().to_vec()),
            Instant::now() + Duration::from_secs(1),
        ))
    }

    /// What parsing `--env` gives: (NAME, VALUE) or the message.
    type EnvParsed = Result<(&'static str, &'static str), &'static str>;

    #[test]
    fn option_values() {
        let env: &[(&str, EnvParsed)] = &[
            (
                "GIT_PROJECT_ROOT=/srv/git",
                Ok(("GIT_PROJECT_ROOT", "/srv/git")),
            ),
            ("A=b=c", Ok(("A", "b=c"))),
            ("EMPTY=", Ok(("EMPTY", ""))),
            ("NOVALUE", Err("expected NAME=VALUE")),
            ("=x", Err("expected NAME=VALUE with a NAME")),
            ("A=\0", Err("a NUL byte cannot be in the environment")),
        ];
        for (v, want) in env {
            let got = parse_env(v);
            let got = got
                .as_ref()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .map_err(String::as_str);
            assert_eq!(got, *want, "--env {v:?}");
        }
        let prefix: &[(Option<&str>, Option<&str>)] = &[
            (None, Some("")),
            (Some("/"), Some("")),
            (Some("/git/"), Some("/git")),
            (Some("/a/b"), Some("/a/b")),
            (Some("app"), None),
        ];
        for (v, want) in prefix {
            let got = parse_prefix(*v).ok();
            assert_eq!(got.as_deref(), *want, "--prefix {v:?}");
        }
        let bytes: &[(&str, Option<u64>)] = &[
            ("0", Some(0)),
            ("100000000", Some(100_000_000)),
            ("1k", None),
            ("-1", None),
            ("", None),
        ];
        for (v, want) in bytes {
            assert_eq!(parse_bytes(v).ok(), *want, "--max-body {v:?}");
        }
    }

    #[test]
    fn script_head_cases() {
        let h = head("Content-Type: text/plain\r\n\r\nbody").unwrap();
        assert_eq!((h.status, h.headers.len()), (None, 1));
        let h = head("Status: 404 Not Found\nContent-Type: text/html\n\n").unwrap();
        assert_eq!(h.status, Some(404));
        let h = head("Location: http://example.com/\n\n").unwrap();
        assert_eq!(h.location.as_deref(), Some("http://example.com/"));
        assert!(h.location_only_redirect);
        let h = head("Location: /other\r\n\r\n").unwrap();
        assert_eq!(h.location.as_deref(), Some("/other"));
        for (bad, why) in [
            ("", "no output"),
            ("Content-Type: text/plain\n", "premature end"),
            ("just text\n\n", "malformed header line"),
            ("X-Only: 1\n\n", "no Content-Type"),
            ("Status: abc\nContent-Type: a/b\n\n", "bad Status"),
            (
                "Content-Type: a/b\nX-A: a\rSet-Cookie: x=1\n\n",
                "control character",
            ),
            ("Content-Type: a/b\r\r\n\r\n", "control character"),
            ("Content-Type: a/b\nX-A: \0\n\n", "control character"),
            (
                "Content-Type: a/b\nBad Name: x\n\n",
                "malformed header name",
            ),
        ] {
            let e = head(bad).err().unwrap_or_default();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }

    #[test]
    fn inherited_variables() {
        for (name, want) in [
            ("GIT_PROJECT_ROOT", true),
            ("LANG", true),
            ("JAWAS_SERVICE", true),
            ("TCPREMOTEIP", false),
            ("TCP6LOCALPORT", false),
            ("PROTO", false),
            ("REMOTE_HOST", false),
            ("CONTENT_LENGTH", false),
            ("HTTP_HOST", false),
            ("PATH", false),
        ] {
            assert_eq!(inherited(name), want, "{name}");
        }
    }
}
