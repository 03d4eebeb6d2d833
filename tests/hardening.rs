//! System tests for jawasd's behaviour under faults: engines that cannot
//! start or keep failing, processes engines leave behind, descriptors
//! running out mid-spawn, reloads that change a listener's address, and
//! per-source rates.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use jawas_tests::{connect, exchange, read_all, script, Jawasd, TempDir};

const T: Duration = Duration::from_secs(10);

fn alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    after.split(' ').nth(1)?.parse().ok()
}

/// Makes `n` connections from 10 threads, each reading until the server
/// closes (or a second passes).
fn hammer(addr: std::net::SocketAddr, n: usize) {
    let threads: Vec<_> = (0..10)
        .map(|_| {
            std::thread::spawn(move || {
                for _ in 0..n.div_ceil(10) {
                    let Ok(mut s) =
                        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1))
                    else {
                        continue;
                    };
                    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
                    let _ = s.read_to_end(&mut Vec::new());
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}

#[test]
fn widening_a_listener_on_the_same_port_reloads() {
    // The kernel picks the port, so no other test's socket holds it.
    let mut d = Jawasd::start("[services.echo]\nlisten = \"127.0.0.1:0\"\nengine = \"cat\"\n");
    let narrow = d.addr("echo");
    let port = narrow.port();
    let config =
        |host: &str| format!("[services.echo]\nlisten = \"{host}:{port}\"\nengine = \"cat\"\n");
    assert_eq!(exchange(narrow, b"before"), b"before");
    assert!(d.reload(&config("0.0.0.0")), "widen: {}", d.log());
    assert_eq!(d.addr("echo").to_string(), format!("0.0.0.0:{port}"));
    assert_eq!(exchange(narrow, b"after"), b"after", "{}", d.log());
    assert!(d.reload(&config("127.0.0.1")), "narrow again: {}", d.log());
    assert_eq!(exchange(narrow, b"again"), b"again");
}

#[test]
fn orphans_an_engine_leaves_are_reaped_and_stopped_at_shutdown() {
    let dir = TempDir::new();
    // The engine starts a process in a session of its own (escaping its
    // process group), tells the client its pid, and exits.
    script(
        dir.path(),
        "leaver.sh",
        "setsid sleep 300 </dev/null >/dev/null 2>&1 &\necho $!",
    );
    let mut d = Jawasd::builder(
        "[services.leave]\nlisten = \"127.0.0.1:0\"\nengine = \"{dir}/leaver.sh\"\n",
    )
    .dir(dir)
    .start();
    let mut s = connect(d.addr("leave"));
    let text = String::from_utf8(read_all(&mut s)).unwrap();
    let orphan: i32 = text.trim().parse().expect("the orphan's pid");
    assert!(d.wait_log("done svc=leave", T), "{}", d.log());
    // Its parent, the engine, is gone: it comes back to jawasd, not init.
    let deadline = Instant::now() + T;
    while parent_of(orphan) != Some(d.pid()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(parent_of(orphan), Some(d.pid()), "adopted by jawasd");
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait_exit(T), Some(0), "{}", d.log());
    assert!(!alive(orphan), "the orphan was stopped and reaped");
}

#[test]
fn an_engine_that_cannot_start_pauses_its_service_and_names_the_cause() {
    let dir = TempDir::new();
    script(dir.path(), "gone.sh", "echo never");
    std::fs::write(
        dir.path().join("interp.sh"),
        "#!/nonexistent/bin/interp\necho never\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        dir.path().join("interp.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let d = Jawasd::builder(
        r#"
[services.gone]
listen = "127.0.0.1:0"
engine = "{dir}/gone.sh"

[services.interp]
listen = "127.0.0.1:0"
engine = "{dir}/interp.sh"

[services.fine]
listen = "127.0.0.1:0"
engine = "cat"
"#,
    )
    .dir(dir)
    .start();
    std::fs::remove_file(d.dir().join("gone.sh")).unwrap();
    let started = Instant::now();
    let gone = d.addr("gone");
    let clients = std::thread::spawn(move || hammer(gone, 100));
    hammer(d.addr("interp"), 20);
    // Other services go on.
    assert_eq!(exchange(d.addr("fine"), b"still here"), b"still here");
    clients.join().unwrap();
    let secs = started.elapsed().as_secs_f64().ceil() as usize;
    assert!(d.wait_log("spawn-failed svc=interp", T), "{}", d.log());
    let log = d.log();
    let lines = log.matches("spawn-failed svc=gone").count();
    assert!(
        lines >= 1 && lines <= secs + 2,
        "{lines} spawn-failed lines in about {secs}s: {log}"
    );
    assert!(log.contains("does not exist"), "{log}");
    assert!(
        log.contains("the interpreter /nonexistent/bin/interp named on the #! line"),
        "{log}"
    );
}

#[test]
fn engines_failing_at_once_earn_one_warning_quoting_their_stderr() {
    let dir = TempDir::new();
    script(
        dir.path(),
        "picky.sh",
        "echo 'picky: error: unknown option --cache-controll' >&2\nexit 100",
    );
    let d = Jawasd::builder(
        "[services.picky]\nlisten = \"127.0.0.1:0\"\nengine = \"{dir}/picky.sh\"\nstderr = \"capture\"\n",
    )
    .dir(dir)
    .start();
    hammer(d.addr("picky"), 30);
    assert!(d.wait_log("engines keep failing", T), "{}", d.log());
    assert!(d.wait_log_count("done svc=picky", 30, T), "{}", d.log());
    let log = d.log();
    let warning = log
        .lines()
        .find(|l| l.contains("engines keep failing"))
        .unwrap();
    assert!(warning.contains("svc=picky"), "{warning}");
    assert!(
        warning.contains("unknown option --cache-controll"),
        "{warning}"
    );
    assert_eq!(
        log.matches("engines keep failing").count(),
        1,
        "at most once a minute: {log}"
    );
}

#[test]
fn no_descriptor_for_a_capture_pipe_still_serves_the_client() {
    let d = Jawasd::builder(
        "[services.echo]\nlisten = \"127.0.0.1:0\"\nengine = \"cat\"\nstderr = \"capture\"\n",
    )
    .nofile(64)
    .start();
    let addr = d.addr("echo");
    assert_eq!(exchange(addr, b"fits"), b"fits");
    assert!(d.wait_log("done svc=echo", T), "{}", d.log());
    // Room for the accepted socket, none for the pipe.
    let held = d.open_fds() as u64;
    let lim = libc::rlimit {
        rlim_cur: held + 1,
        rlim_max: 64,
    };
    // SAFETY: prlimit on jawasd's pid with a struct we own.
    let rc = unsafe { libc::prlimit(d.pid(), libc::RLIMIT_NOFILE, &lim, std::ptr::null_mut()) };
    assert_eq!(rc, 0);
    let mut s = connect(addr);
    s.write_all(b"squeezed").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_all(&mut s), b"squeezed", "{}", d.log());
    assert!(d.wait_log("accept paused", T), "{}", d.log());
}

#[test]
fn the_demo_config_starts_on_a_host_without_ipv6() {
    // A network namespace of our own with IPv6 switched off stands for
    // such a host (user namespaces make this possible without root).
    let probe = std::process::Command::new("unshare")
        .args(["-rn", "true"])
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!("skipped: unshare -rn (util-linux) cannot create a network namespace here");
        return;
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let jawasd = jawas_tests::bin("jawasd");
    let script = format!(
        "echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6; \
         echo 1 > /proc/sys/net/ipv6/conf/lo/disable_ipv6; \
         exec timeout -s TERM 3 {} --config etc/jawasd.toml",
        jawasd.display()
    );
    let out = std::process::Command::new("unshare")
        .args(["-rn", "sh", "-c", &script])
        .current_dir(&root)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains(" ready "), "{log}");
    assert!(log.contains("web=127.0.0.1:8080"), "{log}");
    assert!(
        log.contains("listen=[::1]:8080: skipped, this host has no IPv6"),
        "{log}"
    );
    assert!(log.contains("exit engines=0"), "stopped cleanly: {log}");
}

#[test]
fn a_flooding_source_does_not_lock_out_other_clients() {
    // The service's own rate would let the flood through; the per-source
    // bucket stops it at its burst, and another address is still served.
    let d = Jawasd::start(
        r#"
[services.echo]
listen = "127.0.0.1:0"
engine = "cat"
rate = 1000
per_source_rate = 0.01
per_source_rate_burst = 3
"#,
    );
    let addr = d.addr("echo");
    let flood = |from: &str| {
        let mut served = 0;
        for _ in 0..20 {
            let mut s = jawas_tests::connect_from(from, addr).unwrap();
            // A refused connection may be closed before we write.
            let _ = s.write_all(b"x");
            let _ = s.shutdown(Shutdown::Write);
            let mut got = Vec::new();
            let _ = s.read_to_end(&mut got);
            if got == b"x" {
                served += 1;
            }
        }
        served
    };
    assert_eq!(flood("127.0.0.2"), 3, "{}", d.log());
    assert!(d.log().contains("reason=per_source_rate"), "{}", d.log());
    assert_eq!(flood("127.0.0.3"), 3, "another client has its own bucket");
}

#[test]
fn a_reload_that_cannot_bind_names_the_file_and_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap();
    let mut d = Jawasd::start("[services.echo]\nlisten = \"127.0.0.1:0\"\nengine = \"cat\"\n");
    let before = d.addr("echo");
    let config =
        format!("[services.echo]\nlisten = \"127.0.0.1:0\"\nengine = \"cat\"\n\n[services.more]\nengine = \"cat\"\nlisten = \"{busy}\"\n");
    assert!(!d.reload(&config), "{}", d.log());
    let log = d.log();
    assert!(
        log.contains(&format!(
            "jawasd.toml:7: service more: unable to bind {busy}: address already in use"
        )),
        "{log}"
    );
    assert_eq!(exchange(before, b"still"), b"still");
}

#[test]
fn bundled_engines_check_their_arguments_at_check_time() {
    let dir = TempDir::new();
    std::fs::create_dir(dir.path().join("www")).unwrap();
    let path = dir.path().join("j.toml");
    std::fs::write(
        &path,
        r#"[services.web]
listen = "127.0.0.1:0"
engine = "jawas-static"
workdir = "."
args = ["--root", "www", "--cache-controll", "*.css=max-age=60"]

[services.cgi]
listen = "127.0.0.1:0"
engine = "jawas-cgi"
args = ["--root", "/nonexistent/cgi-bin"]

[services.echo]
listen = "127.0.0.1:0"
engine = "jawas-builtin"
args = ["ecko"]

[services.fine]
listen = "127.0.0.1:0"
engine = "jawas-static"
workdir = "."
args = ["--root", "www"]
"#,
    )
    .unwrap();
    let out = std::process::Command::new(jawas_tests::bin("jawasd"))
        .arg("--check")
        .arg("--config")
        .arg(&path)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(100), "{err}");
    for want in [
        "j.toml:5: services.web.args: engine check: jawas-static: error: unknown option --cache-controll (did you mean --cache-control?)",
        "j.toml:10: services.cgi.args: engine check: jawas-cgi: error:",
        "j.toml:15: services.echo.args: engine check: jawas-builtin: error: unknown service 'ecko' (did you mean echo?)",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    assert!(!err.contains("services.fine"), "{err}");
}

#[test]
fn an_engine_flooding_its_captured_stderr_does_not_stall_the_loop() {
    let d = Jawasd::start(
        r#"
[services.flood]
listen = "127.0.0.1:0"
engine = "sh"
args = ["-c", "exec yes flood >&2"]
stderr = "capture"

[services.echo]
listen = "127.0.0.1:0"
engine = "cat"
"#,
    );
    let _flood = connect(d.addr("flood"));
    assert!(d.wait_log("engine svc=flood", T), "{}", d.log().len());
    // While the flood goes on, another service still answers at once.
    for _ in 0..3 {
        let started = Instant::now();
        assert_eq!(exchange(d.addr("echo"), b"still here"), b"still here");
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}

#[test]
fn an_orphan_left_after_an_idle_sweep_is_still_stopped_at_shutdown() {
    let dir = TempDir::new();
    script(
        dir.path(),
        "leaver.sh",
        "setsid sh -c 'trap \"\" TERM; exec sleep 300' </dev/null >/dev/null 2>&1 &\necho $!",
    );
    let mut d = Jawasd::builder(
        "[server]\nshutdown_grace = \"1s\"\n[services.leave]\nlisten = \"127.0.0.1:0\"\nengine = \"{dir}/leaver.sh\"\n[services.echo]\nlisten = \"127.0.0.1:0\"\nengine = \"cat\"\n",
    )
    .dir(dir)
    .start();
    // One engine, then the 5 s sweep that finds jawasd without children.
    assert_eq!(exchange(d.addr("echo"), b"x"), b"x");
    std::thread::sleep(Duration::from_millis(5600));
    let mut s = connect(d.addr("leave"));
    let orphan: i32 = String::from_utf8(read_all(&mut s))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(d.wait_log("done svc=leave", T), "{}", d.log());
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait_exit(T), Some(0), "{}", d.log());
    assert!(!alive(orphan), "the orphan (ignoring SIGTERM) was killed");
}

#[test]
fn a_udp_engine_answers_only_the_sender_it_was_started_for() {
    // Datagrams from a refused address that queued before the socket was
    // connected to the admitted sender must not be answered.
    let d = Jawasd::start(
        r#"
[services.echo]
listen = "127.0.0.1:0"
protocol = "udp"
engine = "jawas-builtin"
args = ["echo"]
only_from = ["127.0.0.1/32"]
"#,
    );
    let addr = d.addr("echo");
    let allowed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let refused = std::net::UdpSocket::bind("127.0.0.2:0").unwrap();
    allowed.send_to(b"hello", addr).unwrap();
    for _ in 0..5 {
        refused.send_to(b"sneak", addr).unwrap();
    }
    allowed
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 64];
    let (n, _) = allowed.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello");
    refused
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    assert!(
        refused.recv_from(&mut buf).is_err(),
        "a refused sender got an answer: {}",
        d.log()
    );
}

/// A local time range that does not hold the present minute.
fn closed_hours() -> String {
    // SAFETY: time and localtime_r with out-parameters we own.
    let minute = unsafe {
        let t = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&t, &mut tm);
        (tm.tm_hour * 60 + tm.tm_min) as u32
    };
    let at = |m: u32| format!("{:02}:{:02}", (m / 60) % 24, m % 60);
    format!("{}-{}", at((minute + 5) % 1440), at((minute + 6) % 1440))
}

#[test]
fn a_tcp_wait_service_goes_through_admission() {
    let d = Jawasd::start(&format!(
        "[services.w]\nlisten = \"127.0.0.1:0\"\nwait = true\nengine = \"cat\"\naccess_times = \"{}\"\n",
        closed_hours()
    ));
    let _client = connect(d.addr("w"));
    assert!(
        d.wait_log("refuse svc=w remote=- reason=access_times", T),
        "{}",
        d.log()
    );
    assert!(
        !d.log().contains("done svc=w"),
        "no engine ran: {}",
        d.log()
    );
}

#[test]
fn a_reload_serves_every_queued_connection_before_closing_a_listener() {
    let d = Jawasd::start(
        "[services.old]\nlisten = \"127.0.0.1:0\"\nengine = \"cat\"\n[services.keep]\nlisten = \"127.0.0.1:0\"\nengine = \"cat\"\n",
    );
    let addr = d.addr("old");
    // With jawasd stopped, 100 clients queue in the old listener's backlog.
    d.signal(libc::SIGSTOP);
    let mut clients: Vec<std::net::TcpStream> = (0..100).map(|_| connect(addr)).collect();
    for c in &mut clients {
        c.write_all(b"queued").unwrap();
        c.shutdown(Shutdown::Write).unwrap();
    }
    std::fs::write(
        d.dir().join("jawasd.toml"),
        "[services.keep]\nlisten = \"127.0.0.1:0\"\nengine = \"cat\"\n",
    )
    .unwrap();
    d.signal(libc::SIGHUP);
    d.signal(libc::SIGCONT);
    let mut served = 0;
    for c in &mut clients {
        let mut got = Vec::new();
        let _ = c.read_to_end(&mut got);
        if got == b"queued" {
            served += 1;
        }
    }
    assert_eq!(served, 100, "{}", d.log());
    assert!(d.wait_log("close svc=old", T), "{}", d.log());
}
