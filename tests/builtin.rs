//! jawas-builtin and the example engines: over pipes (no server), through
//! jawasd over TCP and UDP, and the demo configuration in etc/; the
//! command-line convention of every engine (`--help`, `--version`,
//! `--check`) and SIGTERM, on the real jawas-builtin binary.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jawas_tests::{bin, exchange, Jawasd};

const T: Duration = Duration::from_secs(10);

/// Runs `jawas-builtin ARGS` with `input` on a pipe: (exit code, stdout).
fn pipe(args: &[&str], input: &[u8]) -> (i32, Vec<u8>) {
    let mut child = Command::new(bin("jawas-builtin"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    (out.status.code().unwrap_or(-1), out.stdout)
}

#[test]
fn builtin_services_over_pipes() {
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    assert_eq!(pipe(&["echo"], &big), (0, big.clone()));
    assert_eq!(pipe(&["discard"], &big), (0, Vec::new()));
    let (code, day) = pipe(&["daytime"], b"");
    assert_eq!(code, 0);
    let day = String::from_utf8(day).unwrap();
    assert!(
        day.ends_with("\r\n") && day.split(' ').count() == 5,
        "{day:?}"
    );
    let (code, time) = pipe(&["time"], b"");
    assert_eq!(code, 0);
    let secs = u32::from_be_bytes(time.try_into().expect("4 bytes"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        (i64::from(secs) - 2_208_988_800 - now as i64).abs() <= 2,
        "time {secs}"
    );
    for (args, code) in [
        (&["nonsense"][..], 100),
        (&[][..], 100),
        (&["relay", "not-an-address"][..], 100),
    ] {
        assert_eq!(pipe(args, b"").0, code, "{args:?}");
    }
}

/// Runs `jawas-builtin ARGS` with stdin a pipe held open (so reading it
/// would hang) and no more than 10 s: (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let mut child = Command::new(bin("jawas-builtin"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take();
    let code = wait_code(&mut child, T);
    drop(stdin);
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
    (code.expect("exited normally"), out, err)
}

/// Waits at most `limit` for `child`: its exit code, or `None` if a signal
/// ended it. Panics (after killing it) if it is still running.
fn wait_code(child: &mut std::process::Child, limit: Duration) -> Option<i32> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn help_describes_every_option() {
    for flag in ["--help", "-h"] {
        let (code, out, err) = run(&[flag]);
        assert_eq!((code, err.as_str()), (0, ""), "{flag}");
        assert!(
            out.starts_with(
                "usage: jawas-builtin [OPTION]... echo|discard|chargen|daytime|time\n\
                 \x20      jawas-builtin [OPTION]... relay ADDRESS:PORT\n"
            ),
            "{out}"
        );
        jawas_tests::assert_help_lists(
            &out,
            &[
                ("--linger SECS", "without a datagram"),
                ("--connect-timeout SECS", "connecting to the target"),
                ("--check", "Check the arguments"),
                ("-h, --help", "Print this help"),
                ("-V, --version", "name and version"),
            ],
        );
        for service in ["echo", "discard", "chargen", "daytime", "time", "relay"] {
            assert!(out.contains(&format!("\n  {service} ")), "{service}: {out}");
        }
    }
}

#[test]
fn version_is_name_and_version() {
    let want = format!("jawas-builtin {}\n", env!("CARGO_PKG_VERSION"));
    for flag in ["--version", "-V"] {
        assert_eq!(run(&[flag]), (0, want.clone(), String::new()), "{flag}");
    }
}

#[test]
fn check_accepts_good_arguments_without_serving() {
    for args in [
        &["--check", "echo"][..],
        &["discard", "--check"],
        &["--check", "--linger", "0.25", "chargen"],
        &["--check", "--linger=2", "daytime"],
        &["--check", "time"],
        &["--check", "relay", "127.0.0.1:9"],
        &["--check", "--connect-timeout", "3", "relay", "[::1]:9"],
    ] {
        // stdin is an open pipe and stdout is read: checking must neither
        // wait for the one nor write to the other.
        let (code, out, err) = run(args);
        assert_eq!(
            (code, out.as_str(), err.as_str()),
            (0, "", "jawas-builtin: ok\n"),
            "{args:?}"
        );
    }
}

#[test]
fn bad_arguments_are_named_with_exit_100_under_check_and_when_serving() {
    let services = "echo, discard, chargen, daytime, time or relay ADDRESS:PORT";
    let table: &[(&[&str], String)] = &[
        (&[], format!("no service given: {services}")),
        (
            &["ehco"],
            format!("unknown service 'ehco' (did you mean echo?): {services}"),
        ),
        (&["gopher"], format!("unknown service 'gopher': {services}")),
        (
            &["echo", "extra"],
            "unexpected argument 'extra' after echo".into(),
        ),
        (
            &["relay"],
            "relay needs a target: relay ADDRESS:PORT".into(),
        ),
        (
            &["relay", "example.com:80"],
            "relay: 'example.com:80' is not ADDRESS:PORT (an IP address and a port, \
             such as 192.0.2.1:80 or [::1]:80)"
                .into(),
        ),
        (
            &["--lingre", "1", "echo"],
            "unknown option --lingre (did you mean --linger?)".into(),
        ),
        (
            &["--connect-timout=1", "relay", "127.0.0.1:9"],
            "unknown option --connect-timout (did you mean --connect-timeout?)".into(),
        ),
        (
            &["--frobnicate", "echo"],
            "unknown option --frobnicate".into(),
        ),
        (&["-x", "echo"], "unknown option -x".into()),
        (
            &["echo", "--linger"],
            "--linger needs a value (SECS)".into(),
        ),
        (
            &["--linger", "--connect-timeout", "1", "echo"],
            "--linger needs a value (SECS) but got the option --connect-timeout".into(),
        ),
        (
            &["--linger", "0", "echo"],
            "--linger '0': not a positive number of seconds".into(),
        ),
        (
            &["--connect-timeout", "soon", "relay", "127.0.0.1:9"],
            "--connect-timeout 'soon': not a positive number of seconds".into(),
        ),
        (
            &["--check=yes", "echo"],
            "--check takes no value (got 'yes')".into(),
        ),
        // Every problem at once, not only the first.
        (
            &["--linger", "0", "--connect-timeout", "-1", "ehco"],
            format!(
                "unknown service 'ehco' (did you mean echo?): {services}\n\
                 jawas-builtin: error: --linger '0': not a positive number of seconds\n\
                 jawas-builtin: error: --connect-timeout '-1': not a positive number of seconds"
            ),
        ),
    ];
    for (args, message) in table {
        let want = format!("jawas-builtin: error: {message}\n");
        let checked: Vec<&str> = std::iter::once("--check")
            .chain(args.iter().copied())
            .collect();
        for args in [&checked[..], args] {
            assert_eq!(run(args), (100, String::new(), want.clone()), "{args:?}");
        }
    }
}

#[test]
fn sigterm_ends_a_service_cleanly() {
    // echo waiting for input, and chargen blocked writing to a reader that
    // has stopped reading: both end with exit 0 on SIGTERM, not by it.
    for service in ["echo", "chargen"] {
        let mut child = Command::new(bin("jawas-builtin"))
            .arg(service)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        stdin.write_all(b"x").unwrap();
        // Once output comes, the engine is past start-up, in its loop.
        let mut first = [0u8; 1];
        stdout.read_exact(&mut first).unwrap();
        if service == "chargen" {
            // Let it fill the pipe and block in write.
            std::thread::sleep(Duration::from_millis(200));
        }
        // SAFETY: kill sends a signal to our own child, still unreaped.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        assert_eq!(wait_code(&mut child, T), Some(0), "{service}");
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert_eq!(err, "", "{service}");
    }
}

#[test]
fn relay_dies_promptly_on_sigterm() {
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = target.local_addr().unwrap().to_string();
    let mut child = Command::new(bin("jawas-builtin"))
        .args(["relay", &addr])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut upstream, _) = target.accept().unwrap();
    upstream.write_all(b"hi").unwrap();
    let mut got = [0u8; 2];
    child.stdout.take().unwrap().read_exact(&mut got).unwrap();
    assert_eq!(&got, b"hi");
    // SAFETY: kill sends a signal to our own child, still unreaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(wait_code(&mut child, T), None, "killed by SIGTERM");
}

#[test]
fn a_udp_socket_on_fd_0_is_served_as_datagrams_with_linger() {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.set_read_timeout(Some(T)).unwrap();
    client
        .send_to(b"queued", sock.local_addr().unwrap())
        .unwrap();
    let started = Instant::now();
    let mut child = Command::new(bin("jawas-builtin"))
        .args(["--linger", "0.3", "echo"])
        .stdin(Stdio::from(OwnedFd::from(sock)))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 64];
    let (n, _) = client.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"queued");
    assert_eq!(wait_code(&mut child, T), Some(0));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_millis(950),
        "--linger 0.3 exited after {took:?} (default is 1 s)"
    );
}

#[test]
fn a_listening_socket_on_fd_0_is_a_configuration_error() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let out = Command::new(bin("jawas-builtin"))
        .arg("echo")
        .stdin(Stdio::from(OwnedFd::from(listener)))
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(100));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "jawas-builtin: error: fd 0 is a listening socket: serve jawas-builtin with wait = false\n"
    );
}

#[test]
fn chargen_stops_quietly_when_the_reader_goes() {
    let mut child = Command::new(bin("jawas-builtin"))
        .arg("chargen")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut buf = vec![0u8; 74 * 200];
    out.read_exact(&mut buf).unwrap();
    for (i, line) in buf.chunks(74).enumerate() {
        assert_eq!(&line[72..], b"\r\n", "line {i}");
        assert_eq!(
            line[0],
            b' ' + ((i + 1) % 95) as u8,
            "line {i} starts one further along"
        );
    }
    drop(out);
    assert_eq!(
        child.wait().unwrap().code(),
        Some(0),
        "a reader going away is chargen's normal end"
    );
}

#[test]
fn builtin_services_through_jawasd_tcp_and_udp() {
    let d = Jawasd::start(
        r#"
[services.echo]
listen = ["127.0.0.1:0", "[::1]:0"]
engine = "jawas-builtin"
args = ["echo"]

[services.echo-udp]
listen = "127.0.0.1:0"
protocol = "udp"
wait = true
engine = "jawas-builtin"
args = ["echo"]

[services.daytime-udp]
listen = "127.0.0.1:0"
protocol = "udp"
wait = true
engine = "jawas-builtin"
args = ["daytime"]

[services.chargen]
listen = "127.0.0.1:0"
engine = "jawas-builtin"
args = ["chargen"]
"#,
    );
    for addr in d.addrs("echo") {
        assert_eq!(exchange(addr, b"over tcp"), b"over tcp", "{addr}");
    }
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.set_read_timeout(Some(T)).unwrap();
    let mut buf = [0u8; 1024];
    for msg in [&b"first"[..], b"second", b"third"] {
        u.send_to(msg, d.addr("echo-udp")).unwrap();
        let (n, from) = u.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], msg);
        assert_eq!(from, d.addr("echo-udp"));
    }
    u.send_to(b"", d.addr("daytime-udp")).unwrap();
    let (n, _) = u.recv_from(&mut buf).unwrap();
    assert!(buf[..n].ends_with(b"\r\n"));
    let mut s = TcpStream::connect(d.addr("chargen")).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    let mut lines = [0u8; 74 * 3];
    s.read_exact(&mut lines).unwrap();
    assert!(lines.starts_with(b"!\"#$%&'()*+,-./0123456789"));
    drop(s);
    assert!(d.wait_log("done svc=chargen", T), "{}", d.log());
    assert!(
        d.log().contains("done svc=chargen") && d.log().contains("exit=0"),
        "{}",
        d.log()
    );
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

#[test]
fn example_engines_in_shell_and_python_through_jawasd() {
    let examples = repo().join("engines/examples");
    let d = Jawasd::start(&format!(
        r#"
[services.sh]
listen = "127.0.0.1:0"
engine = "{ex}/hello.sh"
capture_stderr = true

[services.py]
listen = "127.0.0.1:0"
engine = "{ex}/hello.py"
capture_stderr = true
"#,
        ex = examples.display()
    ));
    let sh = String::from_utf8(exchange(d.addr("sh"), b"make me loud\nquit\n")).unwrap();
    assert!(sh.starts_with("hello 127.0.0.1:"), "{sh}");
    assert!(sh.contains("this is sh"), "{sh}");
    assert!(
        sh.contains("MAKE ME LOUD\r\n") && sh.ends_with("bye\r\n"),
        "{sh}"
    );
    let py = String::from_utf8(exchange(
        d.addr("py"),
        b"SET colour blue\nGET colour\nENV\nQUIT\n",
    ))
    .unwrap();
    assert!(py.contains("OK\r\nblue\r\n"), "{py}");
    assert!(
        py.contains("JAWAS_SERVICE=py\r\n") && py.contains("TCPREMOTEIP=127.0.0.1\r\n"),
        "{py}"
    );
    assert!(
        d.wait_log("engine svc=py", T) && d.log().contains("client 127.0.0.1 connected"),
        "{}",
        d.log()
    );
}

#[test]
fn demo_config_checks_and_serves() {
    let demo = repo().join("etc/jawasd.toml");
    let out = Command::new(bin("jawasd"))
        .arg("--check")
        .arg("--config")
        .arg(&demo)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The same services on free ports, from a copy beside the original so
    // relative engine paths resolve the same way.
    let text = std::fs::read_to_string(&demo).unwrap();
    let mut text = text;
    for port in [
        "7007", "7013", "7019", "7020", "7021", "8080", "8081", "8082", "8083", "8086", "8090",
        "8091",
    ] {
        text = text.replace(&format!(":{port}\""), ":0\"");
    }
    // Its own control socket, not the one a running demo uses.
    let sock = format!(".test-demo-{}.sock", std::process::id());
    let text = text.replace("\"jawasd.sock\"", &format!("\"{sock}\""));
    assert!(text.contains(&sock), "the demo has a control socket");
    let copy = repo().join(format!("etc/.test-demo-{}.toml", std::process::id()));
    std::fs::write(&copy, &text).unwrap();
    let mut child = Command::new(bin("jawasd"))
        .arg("--config")
        .arg(&copy)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Stopped however the test ends, so no jawasd outlives it.
    struct Stop(i32);
    impl Drop for Stop {
        fn drop(&mut self) {
            // SAFETY: kill has no memory effects.
            unsafe { libc::kill(self.0, libc::SIGKILL) };
        }
    }
    let _stop = Stop(child.id() as i32);
    let mut stderr = child.stderr.take().unwrap();
    let addrs = jawas_tests::ready_addrs(&mut stderr);
    let _ = std::fs::remove_file(&copy);
    let addr = |svc: &str| -> SocketAddr {
        *addrs
            .get(svc)
            .unwrap_or_else(|| panic!("no {svc} in the ready line: {addrs:?}"))
    };
    assert_eq!(exchange(addr("echo"), b"demo"), b"demo");
    // The front door routes to the blog, and the metrics engine reads the
    // control socket.
    let page = exchange(addr("front"), b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n");
    assert!(String::from_utf8_lossy(&page).contains("Field Notes"));
    let chat = exchange(
        addr("front"),
        b"GET / HTTP/1.0\r\nHost: chat.localhost\r\n\r\n",
    );
    assert!(String::from_utf8_lossy(&chat).starts_with("HTTP/1.1 200"));
    let metrics = exchange(addr("metrics"), b"GET /metrics HTTP/1.0\r\n\r\n");
    assert!(String::from_utf8_lossy(&metrics).contains("jawasd_connections_accepted_total"));
    assert!(String::from_utf8(exchange(addr("hello-sh"), b"quit\n"))
        .unwrap()
        .contains("hello 127.0.0.1"));
    // SAFETY: kill has no memory effects.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(child.wait().unwrap().code(), Some(0));
}
