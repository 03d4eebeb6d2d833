//! The control socket through the real jawasd and the real `jawasd ctl`:
//! status and the live connection table against known traffic, `kill ID`
//! ending the right connection, `reload` answering with file:line errors,
//! `drain` closing one service's listeners, the event stream in order, a
//! control client that never reads costing the accept loop nothing, and
//! the socket's permissions enforced for another user.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use jawas_tests::{bin, connect, exchange, Jawasd};
use serde_json::Value;

const SECS: Duration = Duration::from_secs(10);

/// Two services that hold their connections (echo, discard) and one
/// that refuses everyone but 10.9.9.9.
const CONFIG: &str = "[server]\ncontrol = \"ctl.sock\"\n\
    [services.echo]\nlisten = \"127.0.0.1:0\"\nengine = \"{bin}/jawas-builtin\"\nargs = [\"echo\"]\n\
    [services.sink]\nlisten = \"127.0.0.1:0\"\nengine = \"{bin}/jawas-builtin\"\nargs = [\"discard\"]\n\
    [services.closed]\nlisten = \"127.0.0.1:0\"\nengine = \"{bin}/jawas-builtin\"\nargs = [\"echo\"]\n\
    only_from = [\"10.9.9.9\"]\n";

fn socket(d: &Jawasd) -> PathBuf {
    d.dir().join("ctl.sock")
}

/// Runs `jawasd ctl -c CONFIG ARGS...`.
fn ctl(d: &Jawasd, args: &[&str]) -> Output {
    Command::new(bin("jawasd"))
        .arg("ctl")
        .arg("-c")
        .arg(d.dir().join("jawasd.toml"))
        .args(args)
        .output()
        .expect("run jawasd ctl")
}

/// `jawasd ctl --json ARGS`, which must succeed, parsed.
fn ctl_json(d: &Jawasd, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = ctl(d, &all);
    assert!(
        out.status.success(),
        "ctl {args:?}: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON answer")
}

fn service<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {status}"))
}

/// Waits until `running` of each service is as given.
fn wait_running(d: &Jawasd, want: &[(&str, u64)]) -> Value {
    let deadline = Instant::now() + SECS;
    loop {
        let s = ctl_json(d, &["status"]);
        if want
            .iter()
            .all(|(name, n)| service(&s, name)["running"] == *n)
        {
            return s;
        }
        assert!(Instant::now() < deadline, "running never {want:?}: {s}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An echo connection proven served (its engine runs).
fn echo_conn(addr: SocketAddr) -> TcpStream {
    let mut c = connect(addr);
    c.write_all(b"hi\n").unwrap();
    let mut buf = [0u8; 3];
    c.read_exact(&mut buf).unwrap();
    c
}

#[test]
fn status_and_connections_show_exactly_the_held_connections() {
    let d = Jawasd::start(CONFIG);
    let (echo, sink) = (d.addr("echo"), d.addr("sink"));
    let _done = exchange(echo, b"one\n");
    let held = [echo_conn(echo), echo_conn(echo), connect(sink)];
    let status = wait_running(&d, &[("echo", 2), ("sink", 1)]);
    assert_eq!(service(&status, "echo")["accepted"], 3);
    assert_eq!(service(&status, "echo")["listen"][0], echo.to_string());
    assert_eq!(service(&status, "sink")["accepted"], 1);
    assert_eq!(status["engines"], 3);
    assert_eq!(status["pid"], d.pid());
    assert!(status["config"].as_str().unwrap().ends_with("jawasd.toml"));

    let table = ctl_json(&d, &["connections"]);
    let list = table["connections"].as_array().unwrap();
    let got: HashSet<(String, String, String)> = list
        .iter()
        .map(|c| {
            (
                c["service"].as_str().unwrap().to_string(),
                c["remote"].as_str().unwrap().to_string(),
                c["local"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: HashSet<(String, String, String)> = held
        .iter()
        .zip(["echo", "echo", "sink"])
        .map(|(c, svc)| {
            (
                svc.to_string(),
                c.local_addr().unwrap().to_string(),
                c.peer_addr().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(got, want, "{table}");
    for c in list {
        assert!(c["pid"].as_i64().unwrap() > 1);
        assert_eq!(c["kind"], "stream");
        assert!(c["started"].as_str().unwrap().ends_with('Z'));
    }
    let only_sink = ctl_json(&d, &["connections", "sink"]);
    assert_eq!(only_sink["connections"].as_array().unwrap().len(), 1);

    // The same for people: a table with a header and one row each.
    let out = ctl(&d, &["connections"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("ID  SERVICE"), "{text}");
    assert_eq!(text.lines().count(), 4, "{text}");
    let out = ctl(&d, &["status"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("echo ") && l.contains(&echo.to_string())),
        "{text}"
    );

    drop(held);
    wait_running(&d, &[("echo", 0), ("sink", 0)]);
    let out = ctl(&d, &["connections", "nosuch"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no service 'nosuch'"));
}

#[test]
fn kill_ends_the_named_connection_only() {
    let d = Jawasd::start(CONFIG);
    let echo = d.addr("echo");
    let mut a = echo_conn(echo);
    let mut b = echo_conn(echo);
    wait_running(&d, &[("echo", 2)]);
    let table = ctl_json(&d, &["connections", "echo"]);
    let a_port = a.local_addr().unwrap().to_string();
    let id = table["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["remote"] == a_port.as_str())
        .expect("a's row")["id"]
        .to_string();
    let out = ctl(&d, &["kill", &id]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("connection {id}")));
    // a ends (EOF or reset); b still echoes.
    let mut buf = [0u8; 8];
    assert!(matches!(a.read(&mut buf), Ok(0) | Err(_)), "a still open");
    b.write_all(b"ok\n").unwrap();
    b.read_exact(&mut buf[..3]).unwrap();
    assert_eq!(&buf[..3], b"ok\n");
    wait_running(&d, &[("echo", 1)]);
    // Another signal on request: b's engine dies of it.
    let id = ctl_json(&d, &["connections"])["connections"][0]["id"].to_string();
    let out = ctl(&d, &["kill", &id, "--signal", "KILL"]);
    assert!(out.status.success(), "{out:?}");
    let status = wait_running(&d, &[("echo", 0)]);
    assert_eq!(service(&status, "echo")["exits"]["signal=SIGKILL"], 1);
    assert_eq!(service(&status, "echo")["failed"], 1);
    let out = ctl(&d, &["kill", "999999"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no connection 999999"));
}

#[test]
fn reload_answers_with_the_errors_and_their_lines() {
    let d = Jawasd::start(CONFIG);
    let path = d.dir().join("jawasd.toml");
    let good = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        format!("{good}[services.bad]\nlisten = \"127.0.0.1:0\"\nengine = \"/nonexistent/engine\"\nrate = -3\n"),
    )
    .unwrap();
    let out = ctl(&d, &["reload"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("reload failed"), "{err}");
    assert!(
        err.lines()
            .any(|l| l.starts_with(&format!("{}:", path.display())) && l.contains("rate")),
        "no file:line error: {err}"
    );
    // The same errors as the SIGHUP path logs.
    assert!(d.wait_log("reload failed:", SECS));
    // jawasd still serves the old configuration.
    assert_eq!(exchange(d.addr("echo"), b"x\n"), b"x\n");

    std::fs::write(&path, &good).unwrap();
    let out = ctl(&d, &["reload"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "reload: applied\n");
}

#[test]
fn drain_closes_one_services_listeners() {
    let d = Jawasd::start(CONFIG);
    let (echo, sink) = (d.addr("echo"), d.addr("sink"));
    let held = echo_conn(echo);
    let out = ctl(&d, &["drain", "echo"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("drained echo: closed {echo}\n")
    );
    let refused = TcpStream::connect_timeout(&echo, Duration::from_secs(2));
    assert!(refused.is_err(), "echo still accepts");
    // Its running connection and the other services carry on.
    drop(held);
    let _ = exchange(sink, b"x");
    let status = ctl_json(&d, &["status"]);
    assert_eq!(service(&status, "echo")["drained"], true);
    assert_eq!(service(&status, "sink")["drained"], false);
    assert_eq!(service(&status, "sink")["accepted"], 1);
}

/// A `jawasd ctl events --json` running in the background.
struct Follower {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<Value>,
}

impl Follower {
    fn start(d: &Jawasd) -> Follower {
        let mut child = Command::new(bin("jawasd"))
            .args(["ctl", "--json", "--socket"])
            .arg(socket(d))
            .arg("events")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(serde_json::from_str(&line).unwrap()).is_err() {
                    break;
                }
            }
        });
        let f = Follower { child, lines: rx };
        let first = f.next();
        assert_eq!(first["events"], true, "{first}");
        f
    }

    fn next(&self) -> Value {
        self.lines.recv_timeout(SECS).expect("an event in time")
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn events_follow_a_scripted_sequence_in_order() {
    let d = Jawasd::start(CONFIG);
    let f = Follower::start(&d);
    let (echo, closed) = (d.addr("echo"), d.addr("closed"));
    let c = echo_conn(echo);
    let port = c.local_addr().unwrap().to_string();
    drop(c);
    // Each step waits for the events of the one before: the engine's exit
    // comes when it sees EOF, not when the client closes.
    let mut got: Vec<Value> = (0..3).map(|_| f.next()).collect();
    let _ = exchange(closed, b"x");
    got.extend((0..2).map(|_| f.next()));
    let kinds: Vec<&str> = got.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["accept", "spawn", "exit", "accept", "refuse"],
        "{got:?}"
    );
    assert_eq!(got[0]["service"], "echo");
    assert_eq!(got[0]["remote"], port.as_str());
    assert_eq!(got[1]["remote"], port.as_str());
    assert_eq!(got[2]["id"], got[1]["id"]);
    assert_eq!(got[2]["pid"], got[1]["pid"]);
    assert_eq!(got[2]["status"], "exit=0");
    assert!(got[2]["duration"].as_f64().unwrap() >= 0.0);
    assert_eq!(got[4]["service"], "closed");
    assert_eq!(got[4]["reason"], "access");
    assert!(got
        .iter()
        .all(|e| e["time"].as_str().unwrap().ends_with('Z')));
    // A reload is an event too.
    d.signal(libc::SIGHUP);
    let r = f.next();
    assert_eq!((&r["event"], &r["ok"]), (&"reload".into(), &true.into()));
}

/// Time to serve `n` echo connections one after another, the slowest one.
fn slowest_of(addr: SocketAddr, n: usize) -> Duration {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            assert_eq!(exchange(addr, b"ping\n"), b"ping\n");
            t.elapsed()
        })
        .max()
        .unwrap()
}

#[test]
fn a_control_client_that_never_reads_does_not_slow_accepting() {
    let d = Jawasd::start(CONFIG);
    let echo = d.addr("echo");
    let before = slowest_of(echo, 30);
    // Subscribes, then floods requests and never reads an answer.
    let mut stuck = UnixStream::connect(socket(&d)).unwrap();
    stuck
        .set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    stuck.write_all(b"events\n").unwrap();
    let flood = "status\n".repeat(2000);
    let t = Instant::now();
    while t.elapsed() < SECS {
        if stuck.write_all(flood.as_bytes()).is_err() {
            break; // Dropped (or its input queue is full): either way stuck.
        }
        if d.log().contains("control client dropped") {
            break;
        }
    }
    let during = slowest_of(echo, 30);
    assert!(
        d.wait_log("control client dropped: output buffer full", SECS),
        "stuck client kept; log:\n{}",
        d.log()
    );
    assert!(
        during < before * 5 + Duration::from_millis(200),
        "accepting slowed: slowest {during:?} against {before:?} before"
    );
    // The control socket serves the next client as usual.
    let status = ctl_json(&d, &["status"]);
    assert_eq!(service(&status, "echo")["accepted"], 60);
    assert_eq!(status["control_clients"], 1);
}

/// Runs `jawasd ctl --socket PATH status` as the user nobody.
fn ctl_as_nobody(path: &Path, command: &str) -> Output {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(bin("jawasd"))
        .args(["ctl", "--socket"])
        .arg(path)
        .arg(command)
        .output()
        .expect("setpriv (util-linux)")
}

#[test]
fn socket_permissions_are_enforced() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to act as another user");
        return;
    }
    for (extra, mode, nobody_ok) in [
        ("", 0o600, false),
        ("control_mode = \"0666\"\n", 0o666, true),
    ] {
        let config = CONFIG.replace(
            "control = \"ctl.sock\"\n",
            &format!("control = \"ctl.sock\"\n{extra}"),
        );
        let d = Jawasd::start(&config);
        // nobody may reach the directory; the socket's own bits decide.
        std::fs::set_permissions(d.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let meta = std::fs::metadata(socket(&d)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, mode);
        let out = ctl_as_nobody(&socket(&d), "status");
        let err = String::from_utf8_lossy(&out.stderr);
        if nobody_ok {
            assert!(out.status.success(), "{err}");
            // Another user may look, never change anything.
            let out = ctl_as_nobody(&socket(&d), "reload");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{err}");
            assert!(err.contains("need root or jawasd's own user"), "{err}");
        } else {
            assert_eq!(out.status.code(), Some(111), "{err}");
            assert!(err.contains("permission denied"), "{err}");
        }
    }
}

#[test]
fn ctl_says_what_is_missing() {
    let d = Jawasd::start(&CONFIG.replace("control = \"ctl.sock\"\n", ""));
    let out = ctl(&d, &["status"]);
    assert_eq!(out.status.code(), Some(100));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no control socket configured"));
    let out = Command::new(bin("jawasd"))
        .args(["ctl", "--socket", "/nonexistent/ctl.sock", "status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(111));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/ctl.sock"));
}

/// `curl -sS URL`: (HTTP code, content type, body).
fn curl(url: &str) -> (String, String, String) {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            "-w",
            "\n%{http_code} %{content_type}",
            url,
        ])
        .output()
        .expect("curl (tests/deps.sh installs it)");
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, tail) = text.rsplit_once('\n').unwrap();
    let (code, kind) = tail.split_once(' ').unwrap();
    (code.to_string(), kind.to_string(), body.to_string())
}

/// The value of the sample `name{labels}` in Prometheus text.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
        .parse()
        .unwrap()
}

#[test]
fn metrics_match_the_traffic_and_pass_promtool() {
    let config = format!(
        "{CONFIG}[services.metrics]\nlisten = \"127.0.0.1:0\"\nengine = \"{{bin}}/jawas-builtin\"\n\
         args = [\"metrics\", \"{{dir}}/ctl.sock\"]\n"
    );
    let d = Jawasd::start(&config);
    let (echo, sink, closed, web) = (
        d.addr("echo"),
        d.addr("sink"),
        d.addr("closed"),
        d.addr("metrics"),
    );
    for _ in 0..3 {
        assert_eq!(exchange(echo, b"x"), b"x");
    }
    for _ in 0..2 {
        let _ = exchange(closed, b"x");
    }
    let _held = connect(sink);
    wait_running(&d, &[("sink", 1), ("echo", 0)]);

    let (code, kind, body) = curl(&format!("http://{web}/metrics"));
    assert_eq!(code, "200", "{body}");
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    let s = |series: &str| sample(&body, series);
    assert_eq!(
        s("jawasd_connections_accepted_total{service=\"echo\"}"),
        3.0
    );
    assert_eq!(
        s("jawasd_connections_refused_total{service=\"closed\",reason=\"access\"}"),
        2.0
    );
    assert_eq!(s("jawasd_engines_running{service=\"sink\"}"), 1.0);
    // The scrape itself is a connection of the metrics service.
    assert_eq!(s("jawasd_engines_running{service=\"metrics\"}"), 1.0);
    assert_eq!(
        s("jawasd_engine_exits_total{service=\"echo\",status=\"exit=0\"}"),
        3.0
    );
    assert_eq!(
        s("jawasd_connection_duration_seconds_count{service=\"echo\"}"),
        3.0
    );
    assert_eq!(
        s("jawasd_connection_duration_seconds_bucket{service=\"echo\",le=\"+Inf\"}"),
        3.0
    );
    assert_eq!(s("jawasd_listeners{service=\"echo\"}"), 1.0);
    assert!(s("process_open_fds") > 3.0);
    assert!(s("process_resident_memory_bytes") > 1e5);
    let start = s("process_start_time_seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(start <= now && start > now - 60.0, "{start} vs {now}");

    // promtool (Debian package prometheus) parses and lints it.
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is missing: apt-get install prometheus (tests/deps.sh installs it)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}\n{body}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // The page for people, and a browser's view of it.
    let (code, kind, page) = curl(&format!("http://{web}/"));
    assert_eq!(
        (code.as_str(), kind.as_str()),
        ("200", "text/html; charset=utf-8")
    );
    assert!(page.contains("<title>jawasd status</title>"), "{page}");
    assert!(page.contains(&echo.to_string()), "{page}");
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("jawasd-status.png");
    let _ = std::fs::remove_file(&shot);
    let profile = d.dir().join("chromium");
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=1100,520",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("http://{web}/"))
        .output()
        .expect("chromium is missing: apt-get install chromium (tests/deps.sh installs it)");
    let png = std::fs::read(&shot)
        .unwrap_or_else(|_| panic!("no screenshot: {}", String::from_utf8_lossy(&out.stderr)));
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    eprintln!("status page screenshot: {}", shot.display());

    let (code, _, _) = curl(&format!("http://{web}/nothing-here"));
    assert_eq!(code, "404");
}

#[test]
fn the_socket_lives_as_long_as_jawasd_and_moves_with_a_reload() {
    let mut d = Jawasd::start(CONFIG);
    assert!(socket(&d).exists());
    // A reload may move it: the new one is served, the old one is gone.
    let moved = CONFIG.replace("ctl.sock", "moved.sock");
    assert!(d.reload(&moved));
    let new = d.dir().join("moved.sock");
    assert!(new.exists() && !socket(&d).exists());
    let out = Command::new(bin("jawasd"))
        .args(["ctl", "--socket"])
        .arg(&new)
        .arg("status")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait_exit(SECS), Some(0));
    assert!(!new.exists(), "the socket outlived jawasd");

    // A socket that cannot be created is a start-up error naming it.
    let dir = jawas_tests::TempDir::new();
    let path = dir.path().join("jawasd.toml");
    let bins = jawas_tests::bin_dir().display().to_string();
    let bad = CONFIG
        .replace("ctl.sock", "/nonexistent/dir/c.sock")
        .replace("{bin}", &bins);
    std::fs::write(&path, bad).unwrap();
    let out = Command::new(bin("jawasd"))
        .arg("-c")
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(111), "{err}");
    assert!(
        err.contains("server.control: unable to create the control socket /nonexistent/dir/c.sock: no such file or directory"),
        "{err}"
    );
}

#[test]
fn the_socket_is_never_chmodded_through_a_symlink_nor_taken_from_a_live_jawasd() {
    let config = CONFIG.replace("[server]\n", "[server]\ncontrol_mode = \"0666\"\n");
    let mut d = Jawasd::start(&config);
    // Someone with write access to the directory puts a symlink in its
    // place; a reload must not apply the mode to what it points to.
    let target = d.dir().join("target.txt");
    std::fs::write(&target, "x").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::remove_file(socket(&d)).unwrap();
    std::os::unix::fs::symlink(&target, socket(&d)).unwrap();
    d.signal(libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(500));
    let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", d.log());
    // A second jawasd with the same socket is refused while the first
    // answers on it.
    std::fs::remove_file(socket(&d)).unwrap();
    assert!(d.reload(&config), "{}", d.log());
    assert!(ctl(&d, &["status"]).status.success());
    let other = d.dir().join("other.toml");
    let bins = jawas_tests::bin_dir().display().to_string();
    std::fs::write(
        &other,
        config
            .replace("ctl.sock", &socket(&d).display().to_string())
            .replace("{bin}", &bins),
    )
    .unwrap();
    let out = Command::new(bin("jawasd"))
        .arg("-c")
        .arg(&other)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(111), "{err}");
    assert!(err.contains("another process answers on it"), "{err}");
    assert!(
        ctl(&d, &["status"]).status.success(),
        "the first lost its socket"
    );
}

#[test]
fn a_subscriber_that_falls_behind_gets_every_event_once_it_reads() {
    let d = Jawasd::start(CONFIG);
    let echo = d.addr("echo");
    let mut sub = UnixStream::connect(socket(&d)).unwrap();
    sub.write_all(b"events\n").unwrap();
    sub.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut lines = BufReader::new(sub).lines();
    // Subscribed once answered; events before that are not this client's.
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["events"], true);
    // Not read while 250 connections make 750 events: more than the
    // kernel's socket buffer holds, less than jawasd keeps for a client.
    let n = 250;
    for _ in 0..n {
        assert_eq!(exchange(echo, b"x"), b"x");
    }
    wait_running(&d, &[("echo", 0)]);
    let mut got = 0;
    let mut last = String::new();
    while got < 3 * n {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("closed after {got} events"))
            .unwrap_or_else(|e| panic!("stalled after {got} events: {e}; the last: {last}"));
        let v: Value = serde_json::from_str(&line).unwrap();
        last = line;
        assert!(["accept", "spawn", "exit"].contains(&v["event"].as_str().unwrap()));
        got += 1;
    }
    assert!(!d.log().contains("control client dropped"), "{}", d.log());
}
