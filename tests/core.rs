//! System tests of jawasd itself: the real binary, real sockets on loopback,
//! real engines (shell, coreutils, jawas-builtin).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use jawas_tests::{
    bin, children_of, connect, connect_from, exchange, read_all, script, Jawasd, TempDir,
};

const T: Duration = Duration::from_secs(10);

/// An engine that echoes until EOF.
const CAT: &str = r#"
[services.echo]
listen = ["127.0.0.1:0", "[::1]:0"]
engine = "cat"
"#;

#[test]
fn echo_round_trip_ipv4_and_ipv6() {
    let d = Jawasd::start(CAT);
    let addrs = d.addrs("echo");
    assert_eq!(addrs.len(), 2, "one IPv4 and one IPv6 listener");
    for addr in addrs {
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(exchange(addr, &big), big, "echo over {addr}");
    }
    assert!(d.wait_log_count("done svc=echo", 2, T), "{}", d.log());
}

#[test]
fn engine_sees_ucspi_environment_and_nothing_else() {
    // Each probe is the engine itself (exec'd by jawasd), not a child of a
    // shell, so what it reports is exactly what jawasd set up.
    let d = Jawasd::builder(
        r#"
[services.env]
listen = ["127.0.0.1:0", "[::1]:0"]
engine = "env"
pass_env = ["JAWAS_TEST_PASSED"]
env = { GREETING = "hello world" }

[services.fds]
listen = "127.0.0.1:0"
engine = "ls"
args = ["-l", "/proc/self/fd"]

[services.signals]
listen = "127.0.0.1:0"
engine = "grep"
args = ["-E", "^Sig(Blk|Ign)", "/proc/self/status"]

[services.group]
listen = "127.0.0.1:0"
engine = "cut"
args = ["-d", " ", "-f", "1,5,6", "/proc/self/stat"]
"#,
    )
    .env("JAWAS_TEST_PASSED", "yes")
    .env("JAWAS_TEST_SECRET", "must-not-leak")
    .start();
    let v4 = d.addrs("env")[0];
    let mut s = connect(v4);
    let local_port = s.local_addr().unwrap().port();
    s.shutdown(Shutdown::Write).unwrap();
    let out = String::from_utf8(read_all(&mut s)).unwrap();
    let has = |line: &str| out.lines().any(|l| l == line);
    for want in [
        "PROTO=TCP".to_string(),
        "TCPREMOTEIP=127.0.0.1".to_string(),
        format!("TCPREMOTEPORT={local_port}"),
        "TCPLOCALIP=127.0.0.1".to_string(),
        format!("TCPLOCALPORT={}", v4.port()),
        "JAWAS_SERVICE=env".to_string(),
        "JAWAS_TEST_PASSED=yes".to_string(),
        "GREETING=hello world".to_string(),
    ] {
        assert!(has(&want), "missing {want:?} in:\n{out}");
    }
    assert!(
        !out.contains("must-not-leak"),
        "jawasd's environment leaked:\n{out}"
    );

    // Only the connection (0 and 1) and stderr (2, here the test's pipe);
    // ls's own directory handle is the one other entry.
    let fds = String::from_utf8(exchange(d.addr("fds"), b"")).unwrap();
    let entries: Vec<&str> = fds.lines().filter(|l| l.contains(" -> ")).collect();
    assert_eq!(entries.len(), 4, "{fds}");
    assert_eq!(
        entries.iter().filter(|l| l.contains("socket:")).count(),
        2,
        "{fds}"
    );
    for leak in ["anon_inode", "eventfd", "eventpoll", "signalfd"] {
        assert!(
            !fds.contains(leak),
            "engine inherited a {leak} descriptor:\n{fds}"
        );
    }

    // Empty signal mask, nothing ignored.
    let sigs = String::from_utf8(exchange(d.addr("signals"), b"")).unwrap();
    assert!(sigs.contains("SigBlk:\t0000000000000000"), "{sigs}");
    assert!(sigs.contains("SigIgn:\t0000000000000000"), "{sigs}");

    // Its own process group and session: pgrp == sid == pid.
    let stat = String::from_utf8(exchange(d.addr("group"), b"")).unwrap();
    let ids: Vec<&str> = stat.split_whitespace().collect();
    assert_eq!(ids.len(), 3, "{stat}");
    assert!(ids[0] == ids[1] && ids[1] == ids[2], "pid pgrp sid: {stat}");

    let v6 = d.addrs("env")[1];
    let out6 = String::from_utf8(exchange(v6, b"")).unwrap();
    for want in [
        "PROTO=TCP6",
        "TCPREMOTEIP=::1",
        "TCP6REMOTEIP=::1",
        "TCPLOCALIP=::1",
    ] {
        assert!(
            out6.lines().any(|l| l == want),
            "missing {want} in:\n{out6}"
        );
    }
}

#[test]
fn killing_one_engine_leaves_its_neighbours_alone() {
    let d = Jawasd::builder(CAT).arg("--log-level").arg("debug").start();
    let addr = d.addr("echo");
    let mut conns: Vec<TcpStream> = (0..3).map(|_| connect(addr)).collect();
    for c in &mut conns {
        c.write_all(b"ping\n").unwrap();
        let mut buf = [0u8; 5];
        c.read_exact(&mut buf).unwrap();
    }
    // Find the engine serving the middle connection from the accept line.
    let port = conns[1].local_addr().unwrap().port();
    let needle = format!("remote=127.0.0.1:{port}");
    let log = d.log();
    let line = log
        .lines()
        .find(|l| l.contains("accept svc=echo") && l.contains(&needle))
        .unwrap_or_else(|| panic!("no accept line for {needle}:\n{log}"));
    let pid: i32 = line
        .split("pid=")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // SAFETY: kill has no memory effects.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert!(
        d.wait_log(&format!("pid={pid} {needle} signal=SIGKILL"), T),
        "{}",
        d.log()
    );

    let mut buf = [0u8; 16];
    assert_eq!(
        conns[1].read(&mut buf).unwrap_or(0),
        0,
        "the killed engine's connection is closed"
    );
    for i in [0, 2] {
        conns[i].write_all(b"still here\n").unwrap();
        let mut got = [0u8; 11];
        conns[i].read_exact(&mut got).unwrap();
        assert_eq!(&got, b"still here\n", "neighbour {i} carries on");
    }
    assert_eq!(exchange(addr, b"new"), b"new", "and new clients are served");
}

fn hammer(addr: SocketAddr, total: usize, threads: usize, payload: &'static [u8]) {
    let per = total / threads;
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            std::thread::spawn(move || {
                for _ in 0..per {
                    assert_eq!(exchange(addr, payload), payload);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn no_zombie_after_500_connections() {
    let d = Jawasd::start(CAT);
    hammer(d.addr("echo"), 500, 10, b"x");
    assert!(d.wait_log_count("done svc=echo", 500, T), "{}", d.log());
    // Every engine has been reaped: no child left, zombie or not.
    let deadline = Instant::now() + T;
    while !d.children().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(d.children(), vec![], "children left behind");
}

#[test]
fn open_descriptors_stay_flat_over_10000_connections() {
    let d = Jawasd::builder(
        r#"
[services.plain]
listen = "127.0.0.1:0"
engine = "cat"

[services.captured]
listen = "127.0.0.1:0"
engine = "/bin/sh"
args = ["-c", "cat; echo bye >&2"]
capture_stderr = true
"#,
    )
    .arg("--log-level")
    .arg("warn")
    .start();
    // Warm up so lazily created descriptors are counted in the baseline.
    exchange(d.addr("plain"), b"w");
    exchange(d.addr("captured"), b"w");
    std::thread::sleep(Duration::from_millis(200));
    let before = d.open_fds();
    let (plain, captured) = (d.addr("plain"), d.addr("captured"));
    let a = std::thread::spawn(move || hammer(plain, 8000, 4, b"p"));
    let b = std::thread::spawn(move || hammer(captured, 2000, 2, b"c"));
    a.join().unwrap();
    b.join().unwrap();
    let deadline = Instant::now() + T;
    while (!d.children().is_empty() || d.open_fds() > before) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        d.open_fds(),
        before,
        "descriptors leaked after 10,000 connections"
    );
    assert!(d.children().is_empty());
}

/// Holds a connection open until dropped; returns once the engine is up.
fn hold(addr: SocketAddr) -> TcpStream {
    let mut s = connect(addr);
    s.write_all(b"up\n").unwrap();
    let mut buf = [0u8; 3];
    s.read_exact(&mut buf).expect("engine answered");
    s
}

/// True when the server closed the connection without serving it: the
/// banner (if any) then EOF, and no echo of what we sent.
fn refused(s: &mut TcpStream, banner: &[u8]) -> bool {
    let _ = s.write_all(b"anyone?\n");
    let got = read_all(s);
    got == banner
}

#[test]
fn instances_limit_refuses_with_banner_and_recovers() {
    let d = Jawasd::start(
        r#"
[services.echo]
listen = "127.0.0.1:0"
engine = "cat"
instances = 2
limit_banner = "busy\r\n"
"#,
    );
    let addr = d.addr("echo");
    let a = hold(addr);
    let b = hold(addr);
    let mut c = connect(addr);
    assert!(
        refused(&mut c, b"busy\r\n"),
        "third connection over instances=2"
    );
    assert!(
        d.wait_log("refuse svc=echo", T) && d.log().contains("reason=instances"),
        "{}",
        d.log()
    );
    drop(a);
    assert!(d.wait_log("done svc=echo", T));
    let _c = hold(addr);
    drop(b);
}

#[test]
fn a_connection_over_a_limit_waits_for_a_running_engine_to_end() {
    let d = Jawasd::start(
        r#"
[services.echo]
listen = "127.0.0.1:0"
engine = "cat"
instances = 1
limit_wait = "5s"
"#,
    );
    let addr = d.addr("echo");
    let first = hold(addr);
    let mut second = connect(addr);
    second.write_all(b"hi\n").unwrap();
    // No engine yet: the second connection waits.
    second
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 3];
    let early = second.read(&mut buf);
    assert!(
        early
            .as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock),
        "answered while the first engine ran: {early:?}"
    );
    // The first engine ends: the waiting connection gets its own.
    drop(first);
    second.set_read_timeout(Some(T)).unwrap();
    second.read_exact(&mut buf).expect("served after the wait");
    assert_eq!(&buf, b"hi\n");
    assert!(!d.log().contains("refuse svc=echo"), "{}", d.log());
}

#[test]
fn a_wait_for_room_ends_in_a_refusal_with_the_reason_and_banner() {
    let d = Jawasd::start(
        r#"
[services.echo]
listen = "127.0.0.1:0"
engine = "cat"
instances = 1
limit_wait = "400ms"
limit_banner = "busy\r\n"
"#,
    );
    let addr = d.addr("echo");
    let _first = hold(addr);
    let started = Instant::now();
    let mut second = connect(addr);
    assert!(
        refused(&mut second, b"busy\r\n"),
        "refused once the wait is over"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "refused after {:?}, before limit_wait",
        started.elapsed()
    );
    assert!(d.wait_log("reason=instances", T), "{}", d.log());
}

#[test]
fn one_client_address_may_fill_only_a_quarter_of_the_waiting_room() {
    // max_pending = 4: one address may have one connection waiting.
    let d = Jawasd::start(
        r#"
[server]
max_pending = 4

[services.echo]
listen = "127.0.0.1:0"
engine = "cat"
instances = 1
limit_wait = "5s"
"#,
    );
    let addr = d.addr("echo");
    let _first = hold(addr);
    // Accepted in the order they connect: this one waits first.
    let _waits = connect_from("127.0.0.1", addr).unwrap();
    // The same address again: refused at once, not after 5 s.
    let started = Instant::now();
    let mut over = connect_from("127.0.0.1", addr).unwrap();
    assert!(
        refused(&mut over, b""),
        "a second waiting connection from 127.0.0.1"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "refused only after {:?}",
        started.elapsed()
    );
    // Another address still waits (and is refused only when its wait ends,
    // so it is not read here).
    let mut other = connect_from("127.0.0.2", addr).unwrap();
    other
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 1];
    let e = other.read(&mut buf).unwrap_err();
    assert!(
        matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "127.0.0.2 waits: {e}"
    );
}

#[test]
fn per_source_limit_counts_each_client_address() {
    let d = Jawasd::start(
        r#"
[services.echo]
listen = "127.0.0.1:0"
engine = "cat"
per_source = 1
"#,
    );
    let addr = d.addr("echo");
    let _one = hold(addr);
    let mut again = connect_from("127.0.0.1", addr).unwrap();
    assert!(refused(&mut again, b""), "second connection from 127.0.0.1");
    // Another source address on loopback is another client.
    let mut other = connect_from("127.0.0.2", addr).unwrap();
    other.write_all(b"hi\n").unwrap();
    let mut buf = [0u8; 3];
    other.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hi\n");
    assert!(d.wait_log("reason=per_source", T), "{}", d.log());
}

#[test]
fn global_max_connections_spans_services() {
    let d = Jawasd::start(
        r#"
[server]
max_connections = 2

[services.a]
listen = "127.0.0.1:0"
engine = "cat"

[services.b]
listen = "127.0.0.1:0"
engine = "cat"
"#,
    );
    let _a = hold(d.addr("a"));
    let _b = hold(d.addr("b"));
    let mut c = connect(d.addr("b"));
    assert!(refused(&mut c, b""));
    assert!(d.wait_log("reason=max_connections", T), "{}", d.log());
}

#[test]
fn rate_limit_refuses_excess_without_disabling_the_service() {
    let d = Jawasd::start(
        r#"
[services.echo]
listen = "127.0.0.1:0"
engine = "cat"
rate = 2
rate_burst = 2
"#,
    );
    let addr = d.addr("echo");
    let mut served = 0;
    let mut refused_count = 0;
    for _ in 0..6 {
        if exchange(addr, b"r") == b"r" {
            served += 1;
        } else {
            refused_count += 1;
        }
    }
    assert!(
        served >= 2 && refused_count >= 1,
        "served {served}, refused {refused_count}"
    );
    assert!(d.wait_log("reason=rate", T), "{}", d.log());
    // Unlike xinetd's cps, the service is not switched off: a token refills
    // within half a second at 2/s.
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(exchange(addr, b"again"), b"again");
}

#[test]
fn access_rules_ipv4_and_ipv6() {
    let d = Jawasd::start(
        r#"
[services.only]
listen = ["127.0.0.1:0", "[::1]:0"]
engine = "cat"
only_from = ["127.0.0.2/32", "::1"]

[services.deny]
listen = "127.0.0.1:0"
engine = "cat"
only_from = "127.0.0.0/8"
no_access = ["127.0.0.3"]
"#,
    );
    let only = d.addrs("only");
    let mut s = connect_from("127.0.0.1", only[0]).unwrap();
    assert!(refused(&mut s, b""), "127.0.0.1 is not in only_from");
    let mut s = connect_from("127.0.0.2", only[0]).unwrap();
    s.write_all(b"ok").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_all(&mut s), b"ok");
    assert_eq!(exchange(only[1], b"v6"), b"v6", "::1 is allowed");

    let deny = d.addr("deny");
    let mut s = connect_from("127.0.0.3", deny).unwrap();
    assert!(refused(&mut s, b""), "127.0.0.3 is in no_access");
    let mut s = connect_from("127.0.0.4", deny).unwrap();
    s.write_all(b"ok").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_all(&mut s), b"ok");
    assert!(d.wait_log("reason=access", T), "{}", d.log());
}

#[test]
fn sighup_adds_removes_and_keeps_services_without_refusing_anyone() {
    let mut d = Jawasd::start(
        r#"
[services.kept]
listen = "127.0.0.1:0"
engine = "cat"

[services.removed]
listen = "127.0.0.1:0"
engine = "cat"
"#,
    );
    let kept = d.addr("kept");
    let removed = d.addr("removed");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let client = std::thread::spawn(move || {
        let (mut ok, mut failed) = (0, 0);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !stop2.load(std::sync::atomic::Ordering::SeqCst) && Instant::now() < deadline {
            match TcpStream::connect(kept) {
                Ok(mut s) => {
                    s.set_read_timeout(Some(T)).unwrap();
                    let _ = s.write_all(b"k");
                    let _ = s.shutdown(Shutdown::Write);
                    if read_all(&mut s) == b"k" {
                        ok += 1
                    } else {
                        failed += 1
                    }
                }
                Err(_) => failed += 1,
            }
        }
        (ok, failed)
    });
    std::thread::sleep(Duration::from_millis(200));
    let new_config = format!(
        r#"
[services.kept]
listen = "{kept}"
engine = "cat"

[services.added]
listen = "127.0.0.1:0"
engine = "cat"
"#
    );
    for _ in 0..3 {
        assert!(d.reload(&new_config), "reload accepted: {}", d.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (ok, failed) = client.join().unwrap();
    assert!(ok > 10, "the client loop ran ({ok} ok)");
    assert_eq!(
        failed, 0,
        "connections refused or broken during reload ({ok} ok)"
    );
    assert_eq!(d.addr("kept"), kept, "kept service keeps its socket");
    assert!(!d.has_service("removed"));
    assert!(
        TcpStream::connect(removed).is_err(),
        "removed service's port is closed"
    );
    assert_eq!(exchange(d.addr("added"), b"new"), b"new");
}

#[test]
fn bad_reload_keeps_the_old_config() {
    let mut d = Jawasd::start(CAT);
    let addr = d.addr("echo");
    let before = d.log().matches(" ready ").count();
    assert!(
        !d.reload("[services.echo]\nlisten = \"127.0.0.1:0\"\nengine = \"cat\"\ninstancs = 4\n")
    );
    assert!(
        d.log().contains(
            "jawasd.toml:4: services.echo.instancs: unknown key; did you mean 'instances'?"
        ),
        "{}",
        d.log()
    );
    // A config that parses but cannot bind (a port held elsewhere) is refused too.
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = squatter.local_addr().unwrap();
    assert!(!d.reload(&format!(
        "[services.echo]\nlisten = \"{busy}\"\nengine = \"cat\"\n"
    )));
    assert!(
        d.log().contains(&format!("unable to bind {busy}")),
        "{}",
        d.log()
    );
    assert_eq!(d.log().matches(" ready ").count(), before);
    assert_eq!(exchange(addr, b"still"), b"still");
}

fn check(config: &str) -> (i32, String) {
    let dir = TempDir::new();
    let path = dir.path().join("site.toml");
    std::fs::write(&path, config).unwrap();
    let out = Command::new(bin("jawasd"))
        .arg("--check")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    (
        out.status.code().unwrap_or(-1),
        text.replace(&path.display().to_string(), "FILE"),
    )
}

#[test]
fn config_errors_name_file_line_and_key() {
    let cases: &[(&str, i32, &[&str])] = &[
        ("[services.e]\nlisten = \"127.0.0.1:7\"\nengine = \"cat\"\n", 0, &["FILE: ok (1 service)"]),
        (
            "[defaults]\nper_sorce = 3\n\n[services.e]\nlisten = \"127.0.0.1:7\"\nengine = \"cat\"\ninstances = -1\nonly_from = [\"10.0.0.0/33\"]\n",
            100,
            &[
                "FILE:2: defaults.per_sorce: unknown key; did you mean 'per_source'?",
                "FILE:7: services.e.instances: must be a whole number from 1 to 4294967295",
                "FILE:8: services.e.only_from: '10.0.0.0/33': prefix length must be 0 to 32",
            ],
        ),
        (
            "[services.e]\nlisten = \"localhost:7\"\nengine = \"./missing-engine\"\n",
            100,
            &[
                "FILE:2: services.e.listen: 'localhost:7' is not ADDRESS:PORT",
                "FILE:3: services.e.engine: ",
                "missing-engine: no such file or directory",
            ],
        ),
        ("[services.e]\nlisten = 7\nengine = \"cat\"\n", 100, &["FILE:2: services.e.listen: expected a string or a list of strings, found integer"]),
        ("[services.e\n", 100, &["FILE:1: TOML syntax"]),
    ];
    for (config, code, wants) in cases {
        let (got_code, text) = check(config);
        assert_eq!(got_code, *code, "exit code for:\n{config}\n{text}");
        for w in *wants {
            assert!(text.contains(w), "want {w:?} for:\n{config}\ngot:\n{text}");
        }
    }
    // The same errors stop a real start, with the same exit code.
    let dir = TempDir::new();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[services.e]\nlisten = \"127.0.0.1:0\"\nengine = \"no-such-engine\"\n",
    )
    .unwrap();
    let out = Command::new(bin("jawasd"))
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(100));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains(":3: services.e.engine: 'no-such-engine' not found"));
}

#[test]
fn port_in_use_is_a_clear_startup_error() {
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = squatter.local_addr().unwrap();
    let dir = TempDir::new();
    let path = dir.path().join("j.toml");
    std::fs::write(
        &path,
        format!("[services.e]\nlisten = \"{busy}\"\nengine = \"cat\"\n"),
    )
    .unwrap();
    let out = Command::new(bin("jawasd"))
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(111));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "j.toml:2: service e: unable to bind {busy}: address already in use"
        )),
        "{err}"
    );
}

#[test]
fn tiny_rlimit_nofile_backs_off_and_recovers() {
    let d = Jawasd::builder(CAT).nofile(32).start();
    let addr = d.addr("echo");
    assert_eq!(exchange(addr, b"fits"), b"fits");
    // At rest first: a running engine's pidfd would free a slot on exit.
    assert!(d.wait_log("done svc=echo", T), "{}", d.log());
    // Squeeze the limit to what jawasd already holds: accept now fails
    // with EMFILE. jawasd must pause, not spin, and not lose the listener.
    let held = d.open_fds() as u64;
    let lim = libc::rlimit {
        rlim_cur: held,
        rlim_max: 32,
    };
    // SAFETY: prlimit on jawasd's pid with a struct we own.
    let rc = unsafe { libc::prlimit(d.pid(), libc::RLIMIT_NOFILE, &lim, std::ptr::null_mut()) };
    assert_eq!(rc, 0);
    let ticks_before = d.cpu_ticks();
    let mut waiting = connect(addr);
    waiting.write_all(b"queued").unwrap();
    waiting
        .shutdown(Shutdown::Write)
        .unwrap_or_else(|e| panic!("{e}: {}", d.log()));
    assert!(d.wait_log("accept paused", T), "{}", d.log());
    std::thread::sleep(Duration::from_secs(1));
    let spent = d.cpu_ticks() - ticks_before;
    assert!(spent < 30, "jawasd spun at EMFILE: {spent} ticks in 1 s");
    // Room again: the queued client is served.
    let lim = libc::rlimit {
        rlim_cur: 32,
        rlim_max: 32,
    };
    // SAFETY: prlimit on jawasd's pid with a struct we own.
    let rc = unsafe { libc::prlimit(d.pid(), libc::RLIMIT_NOFILE, &lim, std::ptr::null_mut()) };
    assert_eq!(rc, 0);
    assert_eq!(read_all(&mut waiting), b"queued", "{}", d.log());
    assert_eq!(exchange(addr, b"after"), b"after");
}

#[test]
fn failed_spawn_closes_only_that_connection() {
    let dir = TempDir::new();
    let engine = script(dir.path(), "engine.sh", "exec cat");
    let d = Jawasd::builder("[services.e]\nlisten = \"127.0.0.1:0\"\nengine = \"./engine.sh\"\n")
        .dir(dir)
        .start();
    let addr = d.addr("e");
    assert_eq!(exchange(addr, b"1"), b"1");
    std::fs::remove_file(&engine).unwrap();
    assert_eq!(exchange(addr, b"2"), b"", "no engine: closed at once");
    assert!(d.wait_log("spawn-failed svc=e", T), "{}", d.log());
    assert!(
        d.log()
            .contains("step=execve error=\"no such file or directory\""),
        "{}",
        d.log()
    );
    script(d.dir(), "engine.sh", "exec cat");
    assert_eq!(
        exchange(addr, b"3"),
        b"3",
        "a new binary goes live on the next connection"
    );
}

#[test]
fn captured_stderr_is_prefixed_and_escaped() {
    let d = Jawasd::start(
        r#"
[services.talk]
listen = "127.0.0.1:0"
engine = "/bin/sh"
args = ["-c", "printf 'first line\\nbell\\007 here\\n' >&2; echo out"]
capture_stderr = true
"#,
    );
    assert_eq!(exchange(d.addr("talk"), b""), b"out\n");
    assert!(d.wait_log("bell\\x07 here", T), "{}", d.log());
    let log = d.log();
    let line = log.lines().find(|l| l.contains("first line")).unwrap();
    assert!(line.contains("engine svc=talk pid="), "{line}");
}

#[test]
fn process_settings_reach_the_engine() {
    let d = Jawasd::start(
        r#"
[services.s]
listen = "127.0.0.1:0"
engine = "/bin/sh"
args = ["-c", "echo nofile=$(ulimit -n) umask=$(umask) cwd=$(pwd) nice=$(cut -d' ' -f19 /proc/$$/stat) cpu=$(ulimit -t)"]
workdir = "/tmp"
umask = "027"
nice = 5
rlimit_nofile = 64
rlimit_cpu = 30
"#,
    );
    let out = String::from_utf8(exchange(d.addr("s"), b"")).unwrap();
    assert_eq!(out.trim(), "nofile=64 umask=0027 cwd=/tmp nice=5 cpu=30");
}

#[test]
fn user_and_group_switch_or_are_refused_by_name() {
    let config = r#"
[services.who]
listen = "127.0.0.1:0"
engine = "/bin/sh"
args = ["-c", "echo $(id -u) $(id -g)"]
user = "nobody"
"#;
    // SAFETY: geteuid only reads our credentials.
    if unsafe { libc::geteuid() } == 0 {
        let d = Jawasd::start(config);
        let out = String::from_utf8(exchange(d.addr("who"), b"")).unwrap();
        let nobody = Command::new("id").args(["-u", "nobody"]).output().unwrap();
        let uid = String::from_utf8_lossy(&nobody.stdout).trim().to_string();
        assert!(
            out.starts_with(&format!("{uid} ")),
            "engine ran as {out}, want uid {uid}"
        );
    } else {
        let (code, text) = check(config);
        assert_eq!(code, 100);
        assert!(
            text.contains("cannot change to another user or group"),
            "{text}"
        );
    }
}

#[test]
fn sigterm_stops_engines_within_the_grace() {
    let mut d = Jawasd::start(
        r#"
[server]
shutdown_grace = "500ms"

[services.polite]
listen = "127.0.0.1:0"
engine = "cat"

[services.stubborn]
listen = "127.0.0.1:0"
engine = "/bin/sh"
args = ["-c", "trap '' TERM; echo up; while :; do sleep 1; done"]
"#,
    );
    let _polite = hold(d.addr("polite"));
    let mut stubborn = connect(d.addr("stubborn"));
    let mut buf = [0u8; 3];
    stubborn.read_exact(&mut buf).unwrap();
    let pid = d.pid();
    let started = Instant::now();
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait_exit(T), Some(0), "{}", d.log());
    assert!(started.elapsed() < Duration::from_secs(5));
    let log = d.log();
    assert!(
        log.contains("svc=polite") && log.contains("signal=SIGTERM"),
        "{log}"
    );
    assert!(
        log.contains("svc=stubborn") && log.contains("signal=SIGKILL"),
        "{log}"
    );
    assert!(children_of(pid).is_empty());
}

#[test]
fn max_load_refuses_only_over_the_threshold() {
    let d = Jawasd::start(
        r#"
[services.never]
listen = "127.0.0.1:0"
engine = "cat"
max_load = 0

[services.always]
listen = "127.0.0.1:0"
engine = "cat"
max_load = 100000
"#,
    );
    assert_eq!(
        exchange(d.addr("never"), b"x"),
        b"",
        "load is never below 0"
    );
    assert!(d.wait_log("reason=max_load", T), "{}", d.log());
    assert_eq!(exchange(d.addr("always"), b"y"), b"y");
}

#[test]
fn chroot_confines_the_engine() {
    let dir = TempDir::new();
    let jail = dir.path().join("jail");
    std::fs::create_dir_all(jail.join("bin")).unwrap();
    // A static probe, so the jail needs no libraries.
    let src = dir.path().join("probe.c");
    std::fs::write(
        &src,
        "#include <stdio.h>\n#include <unistd.h>\nint main(void){char cwd[256];\
         printf(\"cwd=%s self=%d host=%d\\n\", getcwd(cwd, sizeof cwd) ? cwd : \"?\", \
         access(\"/bin/probe\", X_OK) == 0, access(\"/etc/passwd\", F_OK) == 0);return 0;}\n",
    )
    .unwrap();
    let cc = Command::new("cc")
        .args(["-O2", "-static", "-o"])
        .arg(jail.join("bin/probe"))
        .arg(&src)
        .output()
        .expect("a C compiler (cc)");
    assert!(
        cc.status.success(),
        "{}",
        String::from_utf8_lossy(&cc.stderr)
    );
    let d = Jawasd::builder(
        "[services.jailed]\nlisten = \"127.0.0.1:0\"\nengine = \"/bin/probe\"\nchroot = \"jail\"\n",
    )
    .dir(dir)
    .start();
    let out = String::from_utf8(exchange(d.addr("jailed"), b"")).unwrap();
    // SAFETY: geteuid only reads our credentials.
    if unsafe { libc::geteuid() } == 0 {
        assert_eq!(
            out.trim(),
            "cwd=/ self=1 host=0",
            "the engine sees only the jail"
        );
    } else {
        assert_eq!(out, "", "without privilege the spawn fails");
        assert!(d.wait_log("step=chroot", T), "{}", d.log());
    }
    // An engine given relative to a chroot is a config error, by name.
    let (code, text) =
        check("[services.j]\nlisten = \"127.0.0.1:1\"\nengine = \"probe\"\nchroot = \"/tmp\"\n");
    assert_eq!(code, 100);
    assert!(text.contains("services.j.engine: with chroot, give the engine as an absolute path inside the new root"), "{text}");
}

/// Absurd numbers are config errors (exit 100) naming file, line, key and
/// the maximum; never a panic (exit 101), which used to kill even a running
/// jawasd on reload.
#[test]
fn absurd_values_are_config_errors_not_panics() {
    let svc = "[services.e]\nlisten = \"127.0.0.1:0\"\nengine = \"cat\"\n";
    let cases: &[(&str, &str)] = &[
        ("[server]\nshutdown_grace = 1e20\n", "FILE:2: server.shutdown_grace: too long; at most \"1h\" (3600 seconds)"),
        ("[server]\nshutdown_grace = \"99999999999999999999999s\"\n", "FILE:2: server.shutdown_grace: too long; at most \"1h\""),
        ("[server]\nshutdown_grace = nan\n", "FILE:2: server.shutdown_grace: must be a finite number"),
        ("[defaults]\ndeny_time = \"160000000000000000m\"\n", "FILE:2: services.e.deny_time: too long; at most \"365d\""),
        ("[defaults]\nsensor = true\ndeny_time = 1e19\n", "FILE:3: services.e.deny_time: too long; at most \"365d\""),
        ("[defaults]\nrate = inf\n", "FILE:2: services.e.rate: must be a finite number"),
        ("[defaults]\nper_source_rate = 1e9\n", "FILE:2: services.e.per_source_rate: must be from 0.001 to 1000000 connections per second"),
        ("[defaults]\nrlimit_cpu = \"99999999999d\"\n", "FILE:2: services.e.rlimit_cpu: too long; at most \"365d\""),
        ("[defaults]\nrlimit_as = \"9999999999999T\"\n", "FILE:2: services.e.rlimit_as: too large; at most 1125899906842624"),
        ("[defaults]\nmax_load = -inf\n", "FILE:2: services.e.max_load: must be a finite number"),
    ];
    for (head, want) in cases {
        let (code, text) = check(&format!("{head}{svc}"));
        assert_eq!(code, 100, "exit code for:\n{head}\n{text}");
        assert!(
            text.contains(want),
            "want {want:?} for:\n{head}\ngot:\n{text}"
        );
        assert!(!text.contains("panicked"), "{text}");
    }
    // The largest values pass.
    let (code, text) = check(&format!("[server]\nshutdown_grace = \"1h\"\n[defaults]\nsensor = true\ndeny_time = \"365d\"\nrate = 1000000\nper_source_rate = 0.001\n{svc}"));
    assert_eq!((code, text.trim()), (0, "FILE: ok (1 service)"));
}

#[test]
fn absurd_reload_keeps_the_daemon_and_the_old_config() {
    let mut d = Jawasd::start(CAT);
    let addr = d.addr("echo");
    for bad in [
        "[server]\nshutdown_grace = 1e20\n",
        "[services.x]\nlisten = \"127.0.0.1:0\"\nengine = \"cat\"\nsensor = true\ndeny_time = \"160000000000000000m\"\n",
    ] {
        assert!(!d.reload(&format!("{bad}{CAT}")), "{}", d.log());
        assert_eq!(exchange(addr, b"alive"), b"alive", "{}", d.log());
    }
    assert!(
        d.log().contains("server.shutdown_grace: too long"),
        "{}",
        d.log()
    );
    assert!(
        d.log().contains("services.x.deny_time: too long"),
        "{}",
        d.log()
    );
    assert!(!d.log().contains("panicked"), "{}", d.log());
}

/// 20,000 errors in 1.5 MB: reported in well under a second (it took 6.9 s
/// when every error recounted the lines), the first 100 shown.
#[test]
fn twenty_thousand_errors_check_quickly() {
    let mut config = String::from(CAT);
    for i in 0..20_000 {
        config.push_str(&format!("unknown_key_{i:05} = \"{}\"\n", "v".repeat(56)));
    }
    assert!(config.len() > 1_500_000);
    let started = Instant::now();
    let (code, text) = check(&config);
    let took = started.elapsed();
    assert_eq!(code, 100);
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert!(
        text.starts_with("FILE:5: services.echo.unknown_key_00000: unknown key"),
        "{}",
        &text[..200]
    );
    assert_eq!(text.lines().count(), 101, "{}", &text[text.len() - 300..]);
    assert!(text.trim_end().ends_with("FILE: and 19900 more errors"));
}

/// A fake bundled engine: named `jawas-static`, it answers `--check` as the
/// engines do (exit 100, `NAME: error:` lines), so jawasd's side of the
/// contract is tested whatever the real engines implement.
fn fake_static(dir: &std::path::Path) -> std::path::PathBuf {
    script(
        dir,
        "jawas-static",
        r#"[ "$1" = --check ] || exec cat
shift
for a in "$@"; do
  case "$a" in
    --cache-controll) echo "jawas-static: error: unknown option '--cache-controll'" >&2; exit 100 ;;
    --hang) exec sleep 30 ;;
    --crash) kill -SEGV $$ ;;
    --old) echo "jawas-static: unknown option '--check'" >&2; exit 100 ;;
  esac
done
[ -n "$WANT_ENV" ] && [ "$WANT_ENV" != "$(pwd)" ] && { echo "jawas-static: error: cwd $(pwd)" >&2; exit 100; }
exit 0"#,
    )
}

#[test]
fn engine_check_failures_name_the_service_file_and_line() {
    let dir = TempDir::new();
    let engine = fake_static(dir.path());
    let svc = |name: &str, port: u16, args: &str| {
        format!(
            "[services.{name}]\nlisten = \"127.0.0.1:{port}\"\nengine = \"{}\"\nargs = {args}\n",
            engine.display()
        )
    };
    // A typo is an error at the args line.
    let config = svc("ok", 1, "[\"--root\", \".\"]")
        + &svc("web", 2, "[\"--root\", \".\", \"--cache-controll\"]");
    let (code, text) = check(&config);
    assert_eq!(code, 100, "{text}");
    assert_eq!(
        text.trim(),
        "FILE:8: services.web.args: engine check: jawas-static: error: unknown option '--cache-controll'"
    );
    // An engine without --check, a crash: no error (a crash is a warning).
    for args in ["[\"--old\"]", "[\"--crash\"]"] {
        let (code, text) = check(&svc("web", 2, args));
        assert_eq!(code, 0, "{args}: {text}");
    }
    let (_, text) = check(&svc("web", 2, "[\"--crash\"]"));
    assert!(
        text.contains(
            "services.web: jawas-static --check was killed by signal 11; arguments not checked"
        ),
        "{text}"
    );
    // The service's env and workdir reach the check.
    let (code, text) = check(&format!(
        "{}workdir = \"/tmp\"\nenv = {{ WANT_ENV = \"/tmp\" }}\n",
        svc("web", 2, "[]")
    ));
    assert_eq!(code, 0, "{text}");
    // JAWASD_SKIP_ENGINE_CHECK skips the stage.
    let path = dir.path().join("skip.toml");
    std::fs::write(&path, svc("web", 2, "[\"--cache-controll\"]")).unwrap();
    let out = Command::new(bin("jawasd"))
        .args(["--check", "--config"])
        .arg(&path)
        .env("JAWASD_SKIP_ENGINE_CHECK", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    // Start-up refuses the typo too.
    let out = Command::new(bin("jawasd"))
        .arg("--config")
        .arg(dir.path().join("skip.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(100));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("skip.toml:4: services.web.args: engine check: jawas-static: error: unknown option '--cache-controll'"));
}

#[test]
fn engine_check_hang_is_killed_and_only_warned() {
    let dir = TempDir::new();
    let engine = fake_static(dir.path());
    let started = Instant::now();
    let (code, text) = check(&format!(
        "[services.web]\nlisten = \"127.0.0.1:1\"\nengine = \"{}\"\nargs = [\"--hang\"]\n",
        engine.display()
    ));
    let took = started.elapsed();
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("jawas-static --check took longer than 5s"),
        "{text}"
    );
    assert!(took < Duration::from_secs(8), "{took:?}");
}

#[test]
fn engine_check_at_reload_keeps_the_old_config() {
    let dir = TempDir::new();
    let engine = fake_static(dir.path());
    let good = format!(
        "[services.echo]\nlisten = \"127.0.0.1:0\"\nengine = \"{}\"\n",
        engine.display()
    );
    let mut d = Jawasd::start(&good);
    let addr = d.addr("echo");
    assert_eq!(exchange(addr, b"hi"), b"hi");
    assert!(!d.reload(&format!("{good}args = [\"--cache-controll\"]\n")));
    assert!(
        d.log().contains("jawasd.toml:4: services.echo.args: engine check: jawas-static: error: unknown option '--cache-controll'"),
        "{}",
        d.log()
    );
    assert_eq!(exchange(addr, b"still"), b"still");
}

/// A short run of the config fuzzer (tests/fuzz): mutated configurations
/// never panic jawasd --check nor take over 5 s.
#[test]
fn config_fuzz_smoke() {
    let dir = TempDir::new();
    let out = Command::new(bin("config-fuzz"))
        .args([
            "--runs",
            "200",
            "--seconds",
            "15",
            "--seed",
            "42",
            "--quiet",
        ])
        .arg("--jawasd")
        .arg(bin("jawasd"))
        .arg("--findings")
        .arg(dir.path())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains(" 0 findings"), "{text}");
}

/// The same 20,000-error file at SIGHUP: refused quickly (it froze the
/// loop for 6.6 s), the old config still serving.
#[test]
fn reload_with_twenty_thousand_errors_is_quick() {
    let mut d = Jawasd::start(CAT);
    let addr = d.addr("echo");
    let mut config = String::from(CAT);
    for i in 0..20_000 {
        config.push_str(&format!("unknown_key_{i:05} = \"{}\"\n", "v".repeat(56)));
    }
    let started = Instant::now();
    assert!(!d.reload(&config));
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert!(d.log().contains("and 19900 more errors"), "{}", d.log());
    assert_eq!(exchange(addr, b"still"), b"still");
}
