//! Zygote mode (`spawn = "zygote"`) through the real jawasd: an engine on
//! the jawas-engine runtime (jawas-test-probe, and jawas-static) runs
//! `init` once and every connection gets a fork of it. Each connection has
//! its own pid, session and exact exec-mode environment; a crash loses one
//! connection; a killed zygote is replaced while its children finish and
//! are counted; limits and log lines are those of exec mode; SIGHUP swaps
//! the zygote under a looping client without a refused connection;
//! SIGTERM stops it all; no descriptor leaks; the Python example works.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use jawas_tests::{connect, exchange, read_all, Jawasd};

const SECS: Duration = Duration::from_secs(10);

fn config(extra: &str) -> String {
    format!(
        "[services.probe]\nlisten = \"127.0.0.1:0\"\nengine = \"{{bin}}/jawas-test-probe\"\n\
         spawn = \"zygote\"\nenv = {{ FROM_CONFIG = \"yes\" }}\n{extra}"
    )
}

/// jawasd with the probe service, once its zygote is ready.
fn start(extra: &str) -> Jawasd {
    let d = Jawasd::start(&config(extra));
    assert!(
        d.wait_log("zygote ready svc=probe", SECS),
        "no ready zygote; log:\n{}",
        d.log()
    );
    d
}

/// The facts line of one `info` connection, as a map.
fn info(addr: SocketAddr) -> HashMap<String, String> {
    let reply = String::from_utf8(exchange(addr, b"info\n")).unwrap();
    let facts: HashMap<String, String> = reply
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert!(facts.contains_key("pid"), "no facts in {reply:?}");
    facts
}

/// The pid in the last `zygote ready svc=probe pid=N` line.
fn zygote_pid(d: &Jawasd) -> i32 {
    let log = d.log();
    let line = log
        .lines()
        .rfind(|l| l.contains("zygote ready svc=probe"))
        .expect("a ready line");
    line.rsplit("pid=").next().unwrap().trim().parse().unwrap()
}

fn alive(pid: i32) -> bool {
    // A zombie is not alive for these tests.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s[s.rfind(')').unwrap() + 2..].starts_with('Z'))
        .unwrap_or(false)
}

#[test]
fn every_connection_is_a_fresh_fork_with_the_exec_environment() {
    let d = start("");
    let zygote = zygote_pid(&d);
    let mut pids = HashSet::new();
    for _ in 0..50 {
        let s = connect(d.addr("probe"));
        let local_port = s.local_addr().unwrap().port().to_string();
        drop(s);
        let f = info(d.addr("probe"));
        let pid = &f["pid"];
        assert!(pids.insert(pid.clone()), "pid {pid} served twice");
        assert_eq!(f["init_pid"], zygote.to_string(), "init ran in the zygote");
        assert_eq!(&f["pgid"], pid, "own process group");
        assert_eq!(&f["sid"], pid, "own session");
        assert_eq!(f["PROTO"], "TCP");
        assert_eq!(f["TCPREMOTEIP"], "127.0.0.1");
        assert_ne!(f["TCPREMOTEPORT"], local_port, "a new connection's port");
        assert_eq!(
            f["TCPLOCALPORT"],
            d.addr("probe").port().to_string(),
            "{f:?}"
        );
        assert_eq!(f["JAWAS_SERVICE"], "probe");
        assert_eq!(f["JAWAS_ZYGOTE"], "-", "the zygote variable leaked");
        assert_eq!(f["FROM_CONFIG"], "yes");
        assert!(f["fd0"].starts_with("socket:"), "{f:?}");
        assert_eq!(f["fd0"], f["fd1"]);
        assert_eq!(f["sigblk"], "0000000000000000", "no blocked signals");
    }
    // Each connection's port really is its own.
    let mut s = connect(d.addr("probe"));
    let port = s.local_addr().unwrap().port().to_string();
    s.write_all(b"info\n").unwrap();
    let reply = String::from_utf8(read_all(&mut s)).unwrap();
    assert!(reply.contains(&format!("TCPREMOTEPORT={port} ")), "{reply}");
    assert!(d.wait_log_count("done svc=probe", 51, SECS), "{}", d.log());
}

#[test]
fn a_child_crash_loses_one_connection_and_is_logged_like_exec() {
    let d = start("");
    assert_eq!(exchange(d.addr("probe"), b"crash\n"), b"");
    assert!(d.wait_log("signal=SIGABRT", SECS), "{}", d.log());
    exchange(d.addr("probe"), b"exit 3\n");
    assert!(d.wait_log("exit=3", SECS), "{}", d.log());
    assert!(d.log().contains("done svc=probe pid="), "{}", d.log());
    // The zygote is untouched and still serving.
    let f = info(d.addr("probe"));
    assert_eq!(f["init_pid"], zygote_pid(&d).to_string());
    assert!(!d.log().contains("zygote died"), "{}", d.log());
}

#[test]
fn limits_apply_before_the_hand_over() {
    let d = start("instances = 2\n");
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = connect(d.addr("probe"));
        s.write_all(b"hold\n").unwrap();
        let mut line = String::new();
        BufReader::new(s.try_clone().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("held "), "{line:?}");
        held.push(s);
    }
    assert_eq!(exchange(d.addr("probe"), b"info\n"), b"", "third refused");
    assert!(
        d.wait_log("refuse svc=probe", SECS),
        "refusal logged as in exec mode: {}",
        d.log()
    );
    drop(held);
    assert!(d.wait_log_count("done svc=probe", 2, SECS), "{}", d.log());
    assert!(info(d.addr("probe")).contains_key("pid"));
}

#[test]
fn a_killed_zygote_is_replaced_and_its_children_still_counted() {
    let d = start("");
    let old = zygote_pid(&d);
    // A child of the old zygote, in the middle of its connection.
    let mut s = connect(d.addr("probe"));
    s.write_all(b"hold\n").unwrap();
    let mut line = String::new();
    let mut reader = BufReader::new(s.try_clone().unwrap());
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("held "), "{line:?}");
    // SAFETY: kill has no memory effects.
    unsafe { libc::kill(old, libc::SIGKILL) };
    assert!(d.wait_log("zygote died svc=probe", SECS), "{}", d.log());
    // Meanwhile connections are served by exec: init ran in the engine.
    let f = info(d.addr("probe"));
    assert!(f["pid"] == f["init_pid"] || f["init_pid"] != old.to_string());
    assert!(
        d.wait_log_count("zygote ready svc=probe", 2, SECS),
        "restarted; log:\n{}",
        d.log()
    );
    let new = zygote_pid(&d);
    assert_ne!(new, old);
    assert_eq!(info(d.addr("probe"))["init_pid"], new.to_string());
    // The orphaned child ends when its client leaves, and is counted.
    let before = d.log().matches("done svc=probe").count();
    drop(reader);
    drop(s);
    assert!(
        d.wait_log_count("done svc=probe", before + 1, SECS),
        "the old zygote's child was reaped; log:\n{}",
        d.log()
    );
}

#[test]
fn sighup_swaps_the_zygote_under_a_looping_client() {
    let mut d = start("");
    let addr = d.addr("probe");
    let first = zygote_pid(&d);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let client = std::thread::spawn(move || {
        let (mut ok, mut failed) = (0, Vec::new());
        let deadline = Instant::now() + Duration::from_secs(30);
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
            let reply = exchange(addr, b"info\n");
            if reply.starts_with(b"pid=") {
                ok += 1;
            } else {
                failed.push(String::from_utf8_lossy(&reply).into_owned());
            }
        }
        (ok, failed)
    });
    std::thread::sleep(Duration::from_millis(300));
    for n in 2..4 {
        assert!(d.reload(&config("")), "reload taken");
        assert!(
            d.wait_log_count("zygote ready svc=probe", n, SECS),
            "{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed) = client.join().unwrap();
    assert!(failed.is_empty(), "{} failed: {failed:?}", failed.len());
    assert!(ok > 20, "only {ok} connections");
    assert_ne!(zygote_pid(&d), first);
    assert!(
        d.wait_log(&format!("zygote done svc=probe pid={first}"), SECS),
        "the retired zygote exits; log:\n{}",
        d.log()
    );
    assert!(!alive(first));
}

#[test]
fn sigterm_stops_the_zygote_and_its_children() {
    let mut d = start("");
    let zygote = zygote_pid(&d);
    let mut s = connect(d.addr("probe"));
    s.write_all(b"hold\n").unwrap();
    let mut line = String::new();
    BufReader::new(s.try_clone().unwrap())
        .read_line(&mut line)
        .unwrap();
    let child: i32 = line
        .strip_prefix("held ")
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("{line:?}"));
    assert!(alive(child));
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait_exit(SECS), Some(0), "{}", d.log());
    assert!(!alive(zygote), "zygote left running");
    assert!(!alive(child), "child left running");
    // The held client sees its connection end.
    s.set_read_timeout(Some(SECS)).unwrap();
    let _ = read_all(&mut s);
}

#[test]
fn no_descriptor_leak_after_ten_thousand_connections() {
    let d = Jawasd::start(
        "[services.web]\nlisten = \"127.0.0.1:0\"\nengine = \"jawas-static\"\n\
         args = [\"--root\", \"{dir}\", \"--no-access-log\"]\nspawn = \"zygote\"\n",
    );
    assert!(d.wait_log("zygote ready svc=web", SECS), "{}", d.log());
    std::fs::write(d.dir().join("index.html"), "hello\n").unwrap();
    let zygote: i32 = {
        let log = d.log();
        let l = log
            .lines()
            .find(|l| l.contains("zygote ready svc=web"))
            .unwrap();
        l.rsplit("pid=").next().unwrap().trim().parse().unwrap()
    };
    let fds = |pid: i32| {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .count()
    };
    let get = || exchange(d.addr("web"), b"GET / HTTP/1.0\r\n\r\n");
    assert!(get().ends_with(b"hello\n"));
    std::thread::sleep(Duration::from_millis(200));
    let (jawasd_before, zygote_before) = (d.open_fds(), fds(zygote));
    for i in 0..10_000 {
        let reply = get();
        assert!(
            reply.starts_with(b"HTTP/1.1 200") && reply.ends_with(b"hello\n"),
            "request {i}: {}",
            String::from_utf8_lossy(&reply)
        );
    }
    // Then clients at once, so that spares are taken while others end: every
    // child's exit is reported (a lost report leaves a session running).
    std::thread::scope(|s| {
        for t in 0..8 {
            let get = &get;
            s.spawn(move || {
                for i in 0..500 {
                    let reply = get();
                    assert!(reply.ends_with(b"hello\n"), "client {t} request {i}");
                }
            });
        }
    });
    let want = 1 + 10_000 + 8 * 500;
    let done = || d.log().matches("info done svc=web").count();
    let deadline = Instant::now() + SECS;
    while done() < want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(done(), want, "every exit reported");
    // Every child reaped and reported before counting again.
    let deadline = Instant::now() + SECS;
    while !d.children().iter().all(|(pid, _)| *pid == zygote) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(d.open_fds(), jawasd_before, "jawasd's descriptors");
    assert_eq!(fds(zygote), zygote_before, "the zygote's descriptors");
    assert!(
        !d.log().contains("zygote died"),
        "the zygote served them all: {}",
        d.log()
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn zygote_mode_is_refused_where_it_cannot_work() {
    let d = jawas_tests::TempDir::new();
    let path = d.path().join("bad.toml");
    std::fs::write(
        &path,
        "[services.u]\nlisten = \"127.0.0.1:0\"\nprotocol = \"udp\"\nengine = \"/bin/cat\"\nspawn = \"zygote\"\n\
         [services.v]\nlisten = \"127.0.0.1:0\"\nengine = \"/bin/cat\"\nspawn = \"fork\"\n\
         [services.w]\nlisten = \"127.0.0.1:0\"\nengine = \"/bin/cat\"\nzygote_fallback = \"refuse\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(jawas_tests::bin("jawasd"))
        .args(["--config", path.to_str().unwrap(), "--check"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(100), "{err}");
    assert!(
        err.contains("bad.toml:5: services.u.spawn")
            && err.contains("cannot be used with protocol"),
        "{err}"
    );
    assert!(
        err.contains("services.v.spawn: 'fork' is not exec or zygote"),
        "{err}"
    );
    assert!(
        err.contains("services.w.zygote_fallback: needs spawn = \"zygote\""),
        "{err}"
    );
}

#[test]
fn the_python_example_preloads_once_and_forks_per_connection() {
    let ex = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../engines/examples");
    let d = Jawasd::start(&format!(
        "[services.py]\nlisten = \"127.0.0.1:0\"\nengine = \"{}/zygote.py\"\nspawn = \"zygote\"\ncapture_stderr = true\n",
        ex.display()
    ));
    assert!(d.wait_log("zygote ready svc=py", SECS), "{}", d.log());
    let mut zygotes = HashSet::new();
    let mut pids = HashSet::new();
    for i in 0..20 {
        let reply =
            String::from_utf8(exchange(d.addr("py"), format!("line {i}\n").as_bytes())).unwrap();
        let facts: HashMap<&str, &str> = reply
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .collect();
        assert!(reply.ends_with(&format!("LINE {i}\n")), "{reply:?}");
        assert_eq!(facts["peer"], "127.0.0.1");
        assert_ne!(facts["pid"], facts["zygote"], "served by a fork");
        pids.insert(facts["pid"].to_string());
        zygotes.insert(facts["zygote"].to_string());
    }
    assert_eq!(pids.len(), 20, "a fresh process per connection");
    assert_eq!(zygotes.len(), 1, "one start-up for all");
    assert!(d.wait_log_count("done svc=py", 20, SECS), "{}", d.log());
    assert!(!d.log().contains("exit=1"), "{}", d.log());
}

#[test]
fn builtin_and_cgi_run_as_zygotes_and_a_service_may_refuse_without_one() {
    let ex = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../engines/examples");
    let d = Jawasd::start(&format!(
        "[services.echo]\nlisten = \"127.0.0.1:0\"\nengine = \"jawas-builtin\"\nargs = [\"echo\"]\nspawn = \"zygote\"\n\
         [services.cgi]\nlisten = \"127.0.0.1:0\"\nengine = \"jawas-cgi\"\nargs = [\"--root\", \"{}\"]\nspawn = \"zygote\"\n\
         [services.strict]\nlisten = \"127.0.0.1:0\"\nengine = \"{{bin}}/jawas-test-probe\"\nspawn = \"zygote\"\n\
         zygote_fallback = \"refuse\"\n",
        ex.display()
    ));
    for svc in ["echo", "cgi", "strict"] {
        assert!(
            d.wait_log(&format!("zygote ready svc={svc}"), SECS),
            "{}",
            d.log()
        );
    }
    assert_eq!(exchange(d.addr("echo"), b"ping\n"), b"ping\n");
    let reply = exchange(
        d.addr("cgi"),
        b"GET /cgi-bin/hello.sh HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(d.wait_log_count("done svc=echo", 1, SECS) && d.wait_log("done svc=cgi", SECS));
    // Without its zygote, the strict service refuses instead of exec'ing.
    let log = d.log();
    let line = log
        .lines()
        .find(|l| l.contains("zygote ready svc=strict"))
        .unwrap();
    let zygote: i32 = line.rsplit("pid=").next().unwrap().trim().parse().unwrap();
    // SAFETY: kill has no memory effects.
    unsafe { libc::kill(zygote, libc::SIGKILL) };
    assert!(d.wait_log("zygote died svc=strict", SECS), "{}", d.log());
    assert_eq!(exchange(d.addr("strict"), b"info\n"), b"");
    assert!(
        d.wait_log("refuse svc=strict", SECS) && d.log().contains("reason=zygote_fallback"),
        "{}",
        d.log()
    );
    assert!(
        d.wait_log_count("zygote ready svc=strict", 2, SECS),
        "{}",
        d.log()
    );
    assert!(info(d.addr("strict")).contains_key("pid"));
}

#[test]
fn an_engine_that_never_says_ready_is_served_by_exec_and_named() {
    // cat knows nothing of the protocol: as a zygote it would only echo
    // the control socket, so it never says READY.
    let d = Jawasd::start(
        "[services.cat]\nlisten = \"127.0.0.1:0\"\nengine = \"/bin/cat\"\nspawn = \"zygote\"\n",
    );
    assert_eq!(
        exchange(d.addr("cat"), b"still served\n"),
        b"still served\n"
    );
    assert!(
        d.wait_log("no READY within 10s", Duration::from_secs(20)),
        "{}",
        d.log()
    );
    assert!(d
        .log()
        .contains("does the engine support spawn = \"zygote\""));
    assert!(d.wait_log("zygote died svc=cat", SECS), "{}", d.log());
    assert_eq!(exchange(d.addr("cat"), b"and again\n"), b"and again\n");
}

#[test]
fn each_childs_stderr_is_logged_with_its_pid() {
    let d = start("");
    // Connections at once, so children's writes interleave on the stderr
    // capture they share.
    let said: Vec<(String, i32)> = std::thread::scope(|s| {
        let calls: Vec<_> = (0..8)
            .map(|i| {
                let addr = d.addr("probe");
                s.spawn(move || {
                    let word = format!("word{i}");
                    let reply = exchange(addr, format!("say {word}\n").as_bytes());
                    let reply = String::from_utf8(reply).unwrap();
                    let pid = reply.trim().strip_prefix("said ").unwrap_or_else(|| {
                        panic!("no answer to say: {reply:?}");
                    });
                    (word, pid.parse().unwrap())
                })
            })
            .collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    for (word, pid) in said {
        // The whole line, and the partial one the child's exit ended.
        for text in [word.clone(), format!("{word}-tail")] {
            let want = format!("engine svc=probe pid={pid}: {text}\n");
            assert!(
                d.wait_log(&want, SECS),
                "no {want:?} in the log:\n{}",
                d.log()
            );
        }
    }
}

#[test]
fn a_stuck_zygote_is_killed_at_the_hand_over_and_started_again() {
    let d = start("zygote_fallback = \"refuse\"\n");
    let old = zygote_pid(&d);
    // The whole group: the zygote and the spares it forked ahead, which
    // wait on the control socket themselves (a stopped zygote alone still
    // has its spares answer, until they are used up).
    // SAFETY: kill has no memory effects.
    unsafe { libc::kill(-old, libc::SIGSTOP) };
    // This connection waits for a zygote that cannot answer: refused.
    assert_eq!(exchange(d.addr("probe"), b"info\n"), b"");
    assert!(
        d.wait_log("hand-over failed: the zygote did not answer in time", SECS),
        "{}",
        d.log()
    );
    // The connection it held is lost, and logged as a failed start.
    assert!(
        d.wait_log(
            "step=zygote error=\"the zygote did not answer in time\"",
            SECS
        ),
        "{}",
        d.log()
    );
    assert!(
        d.wait_log(&format!("zygote died svc=probe pid={old}"), SECS)
            && d.log().contains("refusing connections meanwhile"),
        "{}",
        d.log()
    );
    assert!(
        d.wait_log_count("zygote ready svc=probe", 2, SECS),
        "started again; log:\n{}",
        d.log()
    );
    assert_ne!(zygote_pid(&d), old);
    assert!(info(d.addr("probe")).contains_key("pid"));
}

/// A zygote that lies. For its i-th connection it reads word i of its
/// `LIE` file (read again each time): a pid to answer with, `self` (its
/// own pid), or `exit:N` (reports `EXIT N`, another service's engine, then
/// answers with its own pid). It serves nothing.
const LYING_ZYGOTE: &str = r#"#!/usr/bin/env python3
import array, os, socket
ctl = socket.socket(fileno=0)
ctl.send(b"READY")
i = 0
while True:
    fds = array.array("i")
    try:
        msg, anc, _, _ = ctl.recvmsg(65536, socket.CMSG_SPACE(16))
    except OSError:
        break
    if not msg:
        break
    for level, kind, data in anc:
        fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
    ino = os.fstat(fds[0]).st_ino
    for fd in fds:
        os.close(fd)
    lie = open(os.environ["LIE"]).read().split()[i]
    i += 1
    if lie.startswith("exit:"):
        ctl.send(f"EXIT {lie[5:]} exit 0".encode())
        lie = "self"
    pid = os.getpid() if lie == "self" else int(lie)
    ctl.send(f"PID {pid} {ino}".encode())
"#;

#[test]
fn a_zygote_naming_a_pid_not_its_child_gets_no_signal_sent_there() {
    // The process the zygote names: the test's own, a group leader, as
    // many daemons are.
    let mut victim = std::process::Command::new("sleep")
        .arg("60")
        .process_group(0)
        .spawn()
        .expect("sleep");
    let dir = jawas_tests::TempDir::new();
    let script = dir.path().join("liar.py");
    std::fs::write(&script, LYING_ZYGOTE).unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let lie = dir.path().join("lie");
    std::fs::write(&lie, format!("{} self", victim.id())).unwrap();
    let config = format!(
        "[services.liar]\nlisten = \"127.0.0.1:0\"\nengine = \"{}\"\nspawn = \"zygote\"\n\
         env = {{ LIE = \"{}\" }}\n[services.echo]\nlisten = \"127.0.0.1:0\"\nengine = \"cat\"\n\
         [services.probe]\nlisten = \"127.0.0.1:0\"\nengine = \"{{bin}}/jawas-test-probe\"\n\
         spawn = \"zygote\"\n[server]\nshutdown_grace = \"1s\"\n",
        script.display(),
        lie.display()
    );
    let mut d = Jawasd::builder(&config).dir(dir).start();
    assert!(d.wait_log("zygote ready svc=liar", SECS), "{}", d.log());
    // The first answer names the test's process: jawasd cannot tell at the
    // hand-over, so it is a session, which a stop must not signal. The
    // second names the zygote itself: refused at once (and, read after
    // the first, a sign that the first has been taken).
    drop(connect(d.addr("liar")));
    drop(connect(d.addr("liar")));
    assert!(
        d.wait_log("the zygote's own pid; taken as a failed start", SECS),
        "{}",
        d.log()
    );
    assert!(d.wait_log("spawn-failed svc=liar", SECS), "{}", d.log());
    // The third reports the end of another service's engine, still running.
    let mut echo = connect(d.addr("echo"));
    echo.write_all(b"up\n").unwrap();
    let mut buf = [0u8; 3];
    echo.read_exact(&mut buf).unwrap();
    let cat = d
        .children()
        .into_iter()
        .map(|(pid, _)| pid)
        .find(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "cat")
        })
        .expect("the echo engine");
    std::fs::write(&lie, format!("{} self exit:{cat}", victim.id())).unwrap();
    drop(connect(d.addr("liar")));
    assert!(
        d.wait_log_count("the zygote's own pid; taken as a failed start", 2, SECS),
        "{}",
        d.log()
    );
    echo.write_all(b"on\n").unwrap();
    echo.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"on\n");
    assert!(
        !d.log().contains("done svc=echo"),
        "ended by a zygote's word:\n{}",
        d.log()
    );
    // The fourth names another service's zygote: refused, and that zygote
    // keeps serving.
    assert!(d.wait_log("zygote ready svc=probe", SECS), "{}", d.log());
    let probe = zygote_pid(&d);
    std::fs::write(&lie, format!("{} self exit:{cat} {probe}", victim.id())).unwrap();
    drop(connect(d.addr("liar")));
    assert!(
        d.wait_log("another zygote's pid; taken as a failed start", SECS),
        "{}",
        d.log()
    );
    assert_eq!(info(d.addr("probe"))["init_pid"], probe.to_string());
    d.signal(libc::SIGTERM);
    // Nothing will ever end that session but jawasd seeing its zygote go:
    // the stop does not hang on it.
    assert_eq!(d.wait_exit(SECS), Some(0), "{}", d.log());
    assert!(d.log().contains("that session ends unseen"), "{}", d.log());
    assert!(
        d.log()
            .contains(&format!("not signalling pid={} svc=liar", victim.id())),
        "{}",
        d.log()
    );
    assert!(
        victim.try_wait().unwrap().is_none(),
        "jawasd signalled a process that was not its engine"
    );
    let _ = victim.kill();
    let _ = victim.wait();
}
