//! jawasd as a drop-in xinetd: its configuration files, its semantics, side
//! by side with the real xinetd, and real inetd-mode programs with their
//! real clients (git daemon, tftpd-hpa, rsync).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use jawas_tests::{bin, exchange, free_port, read_all, wait_for_port, Jawasd, TempDir};

const T: Duration = Duration::from_secs(10);

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/xinetd")
}

/// `jawasd --check --xinetd FILE`: (exit code, stdout+stderr).
fn check(conf: &Path) -> (i32, String) {
    let out = Command::new(bin("jawasd"))
        .arg("--check")
        .arg("--xinetd")
        .arg(conf)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

fn which(cmd: &str) -> String {
    // Daemons live in sbin, which a user's PATH may lack.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "PATH=\"$PATH:/usr/local/sbin:/usr/sbin:/sbin\" command -v {cmd}"
        ))
        .output()
        .unwrap();
    let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        !p.is_empty(),
        "{cmd} is not installed: tests/deps.sh installs it (Debian packages xinetd, tftpd-hpa, tftp-hpa)"
    );
    p
}

#[test]
fn debian_service_files_as_shipped_are_clean() {
    let dir = TempDir::new();
    let conf = dir.path().join("xinetd.conf");
    std::fs::write(
        &conf,
        format!(
            "# Debian's /etc/xinetd.conf\ndefaults\n{{\n}}\n\nincludedir {}\n",
            fixtures().join("debian").display()
        ),
    )
    .unwrap();
    let (code, text) = check(&conf);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("ok (0 services)"),
        "every shipped service is disabled: {text}"
    );
}

#[test]
fn debian_service_files_enabled_translate_with_named_findings() {
    let dir = TempDir::new();
    let d = dir.path().join("xinetd.d");
    std::fs::create_dir(&d).unwrap();
    for entry in std::fs::read_dir(fixtures().join("debian"))
        .unwrap()
        .flatten()
    {
        let text = std::fs::read_to_string(entry.path()).unwrap();
        std::fs::write(
            d.join(entry.file_name()),
            text.replace("= yes", "= no")
                .replace("wait\t\t= no", "wait\t\t= yes"),
        )
        .unwrap();
    }
    // Files with a dot or a trailing ~ are skipped, as xinetd does.
    std::fs::write(d.join("echo.dpkg-old"), "this is not a config {").unwrap();
    std::fs::write(d.join("echo~"), "neither is this").unwrap();
    let conf = dir.path().join("xinetd.conf");
    std::fs::write(&conf, "defaults\n{\n}\nincludedir xinetd.d\n").unwrap();
    let (code, text) = check(&conf);
    assert_eq!(code, 100, "duplicates are findings: {text}");
    for want in [
        "xinetd.d/echo-udp:4: error: service id 'echo-dgram' is used twice",
        "xinetd.d/servers:6: error: internal service 'servers' is not provided by jawas-builtin",
        "xinetd.d/services:6: error: internal service 'services' is not provided by jawas-builtin",
    ] {
        assert!(text.contains(want), "want {want:?} in:\n{text}");
    }
    assert!(
        !text.contains("dpkg-old") && !text.contains("echo~"),
        "{text}"
    );
    assert!(text.contains("10 service(s) would run"), "{text}");
}

#[test]
fn every_attribute_is_honoured_or_refused_by_name() {
    let dir = TempDir::new();
    std::fs::write(dir.path().join("banner"), "hello from the banner\r\n").unwrap();
    let conf = dir.path().join("xinetd.conf");
    let text = std::fs::read_to_string(fixtures().join("all-attributes.conf"))
        .unwrap()
        .replace("{dir}", &dir.path().display().to_string());
    std::fs::write(&conf, text).unwrap();
    let (code, text) = check(&conf);
    let cases: &[&str] = &[
        "xinetd.conf:12: warning: unknown attribute 'instancse' (did you mean 'instances'?); ignored",
        "warning: libwrap: jawasd does not consult tcp_wrappers",
        "warning: mdns = yes: jawasd does not register services with mDNS",
        "warning: log_on_success: USERID needs ident (RFC 1413) lookups",
        "error: rpc_version: RPC services are not supported by jawasd; left out",
        "error: flags INTERCEPT: not supported by jawasd; left out",
        "error: no_access: '.example.com': domain patterns need a reverse lookup",
        "error: socket_type = raw: only stream and dgram are supported",
    ];
    for want in cases {
        assert!(text.contains(want), "want {want:?} in:\n{text}");
    }
    assert_eq!(code, 100);
    assert!(text.contains("2 service(s) would run"), "{text}");
}

#[test]
fn broken_files_give_file_and_line() {
    let cases: &[(&str, &str)] = &[
        ("service x\n{\n socket_type = stream\n", "xinetd.conf:1: error: 'x' block is not closed with '}'"),
        ("service x\n{\n socket_type stream\n}\n", "xinetd.conf:3: error: expected 'attribute = value'"),
        ("bogus line\n", "xinetd.conf:1: error: unexpected 'bogus' outside a service or defaults block"),
        ("include nowhere.conf\n", "nowhere.conf: error: unable to read: no such file or directory"),
        (
            "service x\n{\n type = UNLISTED\n socket_type = stream\n wait = no\n port = 9\n server = relative/path\n}\n",
            "xinetd.conf:7: error: server = relative/path: xinetd wants an absolute path",
        ),
        (
            "service x\n{\n type = UNLISTED\n socket_type = stream\n wait = maybe\n port = 9\n server = /bin/cat\n}\n",
            "xinetd.conf:5: error: wait = maybe: expected yes or no",
        ),
        (
            "service x\n{\n type = UNLISTED\n socket_type = stream\n wait = no\n port = 9\n server = /bin/cat\n user = no-such-user-xyz\n}\n",
            "xinetd.conf:8: error: services.x.user: no such user 'no-such-user-xyz' (service left out)",
        ),
        (
            "service x\n{\n type = UNLISTED\n socket_type = stream\n wait = no\n server = /bin/cat\n}\n",
            "xinetd.conf:1: error: an UNLISTED service needs a port",
        ),
        (
            "service x\n{\n type = UNLISTED\n socket_type = stream\n wait = no\n port = 9\n server = /bin/cat\n access_times = 8-17\n}\n",
            "xinetd.conf:8: error: access_times: '8-17' is not HH:MM-HH:MM",
        ),
    ];
    for (conf, want) in cases {
        let dir = TempDir::new();
        let path = dir.path().join("xinetd.conf");
        std::fs::write(&path, conf).unwrap();
        let (code, text) = check(&path);
        assert_eq!(code, 100, "{conf}\n{text}");
        assert!(
            text.contains(want),
            "for:\n{conf}\nwant {want:?}\ngot:\n{text}"
        );
    }
}

#[test]
fn import_prints_toml_that_jawasd_accepts() {
    let dir = TempDir::new();
    let conf = dir.path().join("xinetd.conf");
    std::fs::write(
        &conf,
        "defaults\n{\n instances = 30\n only_from = 127.0.0.0\n}\nservice echo\n{\n type = INTERNAL UNLISTED\n socket_type = stream\n wait = no\n port = 7007\n bind = 127.0.0.1\n cps = 50 10\n}\nservice env\n{\n type = UNLISTED\n socket_type = stream\n wait = no\n port = 7008\n server = /usr/bin/env\n server_args = -i\n only_from += 10.1.{2,3}\n}\n",
    )
    .unwrap();
    let out = Command::new(bin("jawasd"))
        .arg("import-xinetd")
        .arg(&conf)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let toml = String::from_utf8(out.stdout).unwrap();
    for want in [
        "[services.echo]",
        "listen = [\"127.0.0.1:7007\"]",
        "engine = \"jawas-builtin\"",
        "rate = 50",
        "# jawasd: over the cps rate, connections are refused and logged; the service is never switched off",
        "only_from = [\"127.0.0.0/8\", \"10.1.2.0/24\", \"10.1.3.0/24\"]",
        "stderr = \"socket\"",
    ] {
        assert!(toml.contains(want), "want {want:?} in:\n{toml}");
    }
    let native = dir.path().join("native.toml");
    std::fs::write(&native, &toml).unwrap();
    let out = Command::new(bin("jawasd"))
        .arg("--check")
        .arg("--config")
        .arg(&native)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs the real xinetd on `conf` in the foreground; killed when dropped.
struct Xinetd(Child);

impl Xinetd {
    fn start(dir: &Path, conf: &str, probe: SocketAddr) -> Xinetd {
        let path = dir.join("real-xinetd.conf");
        std::fs::write(&path, conf).unwrap();
        let child = Command::new(which("xinetd"))
            .args(["-dontfork", "-f"])
            .arg(&path)
            .args(["-pidfile"])
            .arg(dir.join("xinetd.pid"))
            .args(["-filelog"])
            .arg(dir.join("xinetd.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("xinetd runs");
        assert!(wait_for_port(probe, T), "xinetd did not listen on {probe}");
        Xinetd(child)
    }
}

impl Drop for Xinetd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The same service set, for xinetd and jawasd, on the given ports.
fn internal_services(base: &[u16; 5], banner: &Path, log: &Path) -> String {
    let [echo, daytime, chargen, time, limited] = base;
    format!(
        r#"
defaults
{{
	instances = 50
	log_type = FILE {log}
	log_on_failure = HOST
}}
service echo
{{
	type = INTERNAL UNLISTED
	id = echo-stream
	socket_type = stream
	wait = no
	port = {echo}
	bind = 127.0.0.1
}}
service echo
{{
	type = INTERNAL UNLISTED
	id = echo-dgram
	socket_type = dgram
	protocol = udp
	wait = yes
	port = {echo}
	bind = 127.0.0.1
}}
service daytime
{{
	type = INTERNAL UNLISTED
	socket_type = stream
	wait = no
	port = {daytime}
	bind = 127.0.0.1
}}
service chargen
{{
	type = INTERNAL UNLISTED
	socket_type = stream
	wait = no
	port = {chargen}
	bind = 127.0.0.1
}}
service time
{{
	type = INTERNAL UNLISTED
	id = time-dgram
	socket_type = dgram
	protocol = udp
	wait = yes
	port = {time}
	bind = 127.0.0.1
}}
service discard
{{
	type = INTERNAL UNLISTED
	socket_type = stream
	wait = no
	port = {limited}
	bind = 127.0.0.1
	only_from = 127.0.0.2
	banner_fail = {banner}
}}
"#,
        banner = banner.display(),
        log = log.display()
    )
}

fn ports() -> [u16; 5] {
    let mut p = [0u16; 5];
    for slot in p.iter_mut() {
        *slot = free_port();
    }
    p
}

fn udp_ask(port: u16, msg: &[u8]) -> Vec<u8> {
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.set_read_timeout(Some(T)).unwrap();
    u.send_to(msg, ("127.0.0.1", port)).unwrap();
    let mut buf = [0u8; 2048];
    let (n, _) = u.recv_from(&mut buf).expect("a datagram back");
    buf[..n].to_vec()
}

fn first_bytes(port: u16, n: usize) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    let mut buf = vec![0u8; n];
    s.read_exact(&mut buf).unwrap();
    buf
}

#[test]
fn same_config_same_bytes_as_real_xinetd() {
    let dir = TempDir::new();
    let banner = dir.path().join("fail-banner");
    std::fs::write(&banner, "go away\r\n").unwrap();
    let xp = ports();
    let jp = ports();
    let (xlog, jlog) = (
        dir.path().join("x-services.log"),
        dir.path().join("j-services.log"),
    );
    let _x = Xinetd::start(
        dir.path(),
        &internal_services(&xp, &banner, &xlog),
        SocketAddr::from(([127, 0, 0, 1], xp[0])),
    );
    let _j = Jawasd::builder(&internal_services(&jp, &banner, &jlog))
        .xinetd()
        .start();
    let tcp = |port: u16, data: &[u8]| exchange(SocketAddr::from(([127, 0, 0, 1], port)), data);

    // echo, TCP and UDP.
    let payload: Vec<u8> = (0..50_000u32).map(|i| (i % 256) as u8).collect();
    assert_eq!(tcp(xp[0], &payload), payload);
    assert_eq!(tcp(jp[0], &payload), payload);
    assert_eq!(udp_ask(xp[0], b"datagram"), udp_ask(jp[0], b"datagram"));
    // daytime: same format; the clock may tick between the two.
    let (xd, jd) = (tcp(xp[1], b""), tcp(jp[1], b""));
    let shape = |b: &[u8]| -> String {
        String::from_utf8_lossy(b)
            .chars()
            .map(|c| if c.is_ascii_digit() { '9' } else { c })
            .collect()
    };
    assert_eq!(
        shape(&xd),
        shape(&jd),
        "{:?} vs {:?}",
        String::from_utf8_lossy(&xd),
        String::from_utf8_lossy(&jd)
    );
    // chargen: the same first lines.
    assert_eq!(first_bytes(xp[2], 74 * 3), first_bytes(jp[2], 74 * 3));
    // time over UDP: four bytes, within a few seconds of each other.
    let (xt, jt) = (udp_ask(xp[3], b""), udp_ask(jp[3], b""));
    assert_eq!((xt.len(), jt.len()), (4, 4));
    let diff = u32::from_be_bytes(xt.try_into().unwrap())
        .abs_diff(u32::from_be_bytes(jt.try_into().unwrap()));
    assert!(diff <= 2, "time differs by {diff}s");
    // A refused client gets banner_fail and nothing else, from both.
    let refused = |port: u16| {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(T)).unwrap();
        let _ = s.write_all(b"let me in\n");
        read_all(&mut s)
    };
    assert_eq!(refused(xp[4]), b"go away\r\n");
    assert_eq!(refused(jp[4]), b"go away\r\n");
    // And both log the refusal the same way, as log watchers expect.
    let want = "FAIL: discard address from=127.0.0.1";
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let deadline = std::time::Instant::now() + T;
    while !(read(&xlog).contains(want) && read(&jlog).contains(want))
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(read(&xlog).contains(want), "xinetd: {}", read(&xlog));
    assert!(read(&jlog).contains(want), "jawasd: {}", read(&jlog));
}

#[test]
fn git_daemon_inetd_serves_a_clone() {
    let dir = TempDir::new();
    let git = which("git");
    let repo = dir.path().join("repo.git");
    let work = dir.path().join("work");
    let run = |args: &[&str], cwd: &Path| {
        let out = Command::new(&git)
            .args(args)
            .current_dir(cwd)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    std::fs::create_dir(&work).unwrap();
    run(&["init", "-q", "-b", "main"], &work);
    std::fs::write(
        work.join("README"),
        "served by git daemon --inetd under jawasd\n",
    )
    .unwrap();
    run(&["add", "README"], &work);
    run(
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "commit",
            "-q",
            "-m",
            "first",
        ],
        &work,
    );
    run(
        &[
            "clone",
            "-q",
            "--bare",
            work.to_str().unwrap(),
            repo.to_str().unwrap(),
        ],
        dir.path(),
    );
    let port = free_port();
    let conf = format!(
        "service git\n{{\n type = UNLISTED\n socket_type = stream\n wait = no\n port = {port}\n bind = 127.0.0.1\n server = {git}\n server_args = git daemon --inetd --export-all --base-path={base} {base}\n flags = NAMEINARGS\n user = root\n}}\n",
        base = dir.path().display()
    );
    let d = Jawasd::builder(&conf).xinetd().start();
    assert_eq!(d.addr("git").port(), port);
    let clone = dir.path().join("clone");
    let out = Command::new(&git)
        .args(["clone", "-q", &format!("git://127.0.0.1:{port}/repo.git")])
        .arg(&clone)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git clone: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        d.log()
    );
    assert_eq!(
        std::fs::read_to_string(clone.join("README")).unwrap(),
        "served by git daemon --inetd under jawasd\n"
    );
    assert!(d.wait_log("EXIT: git status=0", T), "{}", d.log());
}

#[test]
fn tftpd_hpa_udp_wait_service_sends_a_file() {
    let dir = TempDir::new();
    let root = dir.path().join("tftp");
    std::fs::create_dir(&root).unwrap();
    let content: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(root.join("boot.img"), &content).unwrap();
    let port = free_port();
    let conf = format!(
        "service tftp\n{{\n type = UNLISTED\n socket_type = dgram\n protocol = udp\n wait = yes\n port = {port}\n bind = 127.0.0.1\n server = {tftpd}\n server_args = -t 1 -s {root}\n user = root\n}}\n",
        tftpd = which("in.tftpd"),
        root = root.display()
    );
    let d = Jawasd::builder(&conf).xinetd().start();
    // Two fetches: the second proves the socket is watched again after the
    // first in.tftpd exits.
    for round in 0..2 {
        let dest = dir.path().join(format!("got-{round}"));
        let out = Command::new(which("tftp"))
            .arg("127.0.0.1")
            .arg(port.to_string())
            .args(["-m", "binary", "-c", "get", "boot.img"])
            .arg(&dest)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tftp: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            d.log()
        );
        assert_eq!(std::fs::read(&dest).unwrap(), content, "round {round}");
        assert!(
            d.wait_log_count("EXIT: tftp status=0", round + 1, T),
            "{}",
            d.log()
        );
    }
}

#[test]
fn rsync_daemon_inetd_serves_a_module() {
    let dir = TempDir::new();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("hello.txt"), "rsync over jawasd\n").unwrap();
    let rsyncd = dir.path().join("rsyncd.conf");
    std::fs::write(
        &rsyncd,
        format!(
            "use chroot = no\n[mod]\npath = {}\nread only = yes\n",
            data.display()
        ),
    )
    .unwrap();
    let port = free_port();
    let conf = format!(
        "service rsync\n{{\n type = UNLISTED\n socket_type = stream\n wait = no\n port = {port}\n bind = 127.0.0.1\n server = {rsync}\n server_args = --daemon --config={cfg}\n user = root\n}}\n",
        rsync = which("rsync"),
        cfg = rsyncd.display()
    );
    let d = Jawasd::builder(&conf).xinetd().start();
    let dest = dir.path().join("out.txt");
    let out = Command::new(which("rsync"))
        .arg(format!("rsync://127.0.0.1:{port}/mod/hello.txt"))
        .arg(&dest)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rsync: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        d.log()
    );
    assert_eq!(
        std::fs::read_to_string(&dest).unwrap(),
        "rsync over jawasd\n"
    );
}

fn svc(name: &str, port: u16, body: &str) -> String {
    format!("service {name}\n{{\n type = UNLISTED\n port = {port}\n bind = 127.0.0.1\n{body}\n}}\n")
}

#[test]
fn udp_without_wait_runs_one_engine_per_sender() {
    let dir = TempDir::new();
    let engine = jawas_tests::script(
        dir.path(),
        "udp-engine",
        "exec python3 -c '\nimport os, select, socket\ns = socket.socket(fileno=0)\nwhile select.select([s], [], [], 1.0)[0]:\n    s.send(b\"%d:\" % os.getpid() + s.recv(2048))\n'",
    );
    let port = free_port();
    let conf = svc(
        "answer",
        port,
        &format!(
            " socket_type = dgram\n protocol = udp\n wait = no\n server = {}\n user = root",
            engine.display()
        ),
    );
    let d = Jawasd::builder(&conf).xinetd().start();
    let ask = |sock: &UdpSocket, msg: &[u8]| -> (String, String) {
        sock.send_to(msg, ("127.0.0.1", port)).unwrap();
        let mut buf = [0u8; 2048];
        let (n, from) = sock.recv_from(&mut buf).expect("reply");
        assert_eq!(from.port(), port, "the reply comes from the service's port");
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        let (pid, body) = text.split_once(':').unwrap();
        (pid.to_string(), body.to_string())
    };
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    a.set_read_timeout(Some(T)).unwrap();
    let b = UdpSocket::bind("127.0.0.2:0").unwrap();
    b.set_read_timeout(Some(T)).unwrap();
    let (pid_a1, body) = ask(&a, b"one");
    assert_eq!(body, "one");
    let (pid_a2, _) = ask(&a, b"two");
    let (pid_b, _) = ask(&b, b"three");
    assert_eq!(pid_a1, pid_a2, "one sender, one engine");
    assert_ne!(pid_a1, pid_b, "another sender, another engine");
    assert!(d.wait_log_count("EXIT: answer", 2, T), "{}", d.log());
}

#[test]
fn stream_wait_service_gets_the_listening_socket() {
    let dir = TempDir::new();
    let engine = jawas_tests::script(
        dir.path(),
        "accepting",
        "exec python3 -c '\nimport os, select, socket\ns = socket.socket(fileno=0)\nwhile select.select([s], [], [], 0.5)[0]:\n    c, _ = s.accept()\n    c.sendall(b\"%d\" % os.getpid())\n    c.close()\n'",
    );
    let port = free_port();
    let conf = svc(
        "acceptor",
        port,
        &format!(
            " socket_type = stream\n wait = yes\n server = {}\n user = root",
            engine.display()
        ),
    );
    let d = Jawasd::builder(&conf).xinetd().start();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let first = exchange(addr, b"");
    let second = exchange(addr, b"");
    assert!(!first.is_empty());
    assert_eq!(
        first, second,
        "the same engine accepted both (jawasd stayed out of the way)"
    );
    assert!(d.wait_log("EXIT: acceptor", T), "{}", d.log());
    // Watched again after the engine exits: a new engine takes the next one.
    let third = exchange(addr, b"");
    assert!(!third.is_empty());
    assert_ne!(third, first);
}

#[test]
fn imported_program_sees_xinetd_fds_and_environment() {
    let port = free_port();
    let dir = TempDir::new();
    let engine = jawas_tests::script(
        dir.path(),
        "show",
        "env; ls -l /proc/$$/fd; echo to-stderr >&2",
    );
    let conf = svc(
        "env",
        port,
        &format!(
            " socket_type = stream\n wait = no\n server = {}\n env = EXTRA=yes\n user = root",
            engine.display()
        ),
    );
    let d = Jawasd::builder(&conf)
        .xinetd()
        .env("FROM_JAWASD", "inherited")
        .start();
    let out = String::from_utf8(exchange(d.addr("env"), b"")).unwrap();
    for want in [
        "REMOTE_HOST=127.0.0.1",
        "EXTRA=yes",
        "FROM_JAWASD=inherited",
        "TCPREMOTEIP=127.0.0.1",
        "to-stderr",
    ] {
        assert!(out.contains(want), "want {want} in:\n{out}");
    }
    let sockets = out.lines().filter(|l| l.contains(" -> socket:")).count();
    assert_eq!(sockets, 3, "fds 0, 1 and 2 are the socket:\n{out}");
}

#[test]
fn sensor_denies_a_client_everywhere_for_deny_time() {
    let (sensor, echo) = (free_port(), free_port());
    let conf = svc(
        "sensor",
        sensor,
        " socket_type = stream\n wait = no\n flags = SENSOR\n server = /bin/cat\n deny_time = 10",
    ) + &svc(
        "echo",
        echo,
        " type = INTERNAL UNLISTED\n socket_type = stream\n wait = no",
    );
    let d = Jawasd::builder(&conf).xinetd().start();
    let echo_addr = SocketAddr::from(([127, 0, 0, 1], echo));
    assert_eq!(exchange(echo_addr, b"before"), b"before");
    let _ = exchange(SocketAddr::from(([127, 0, 0, 1], sensor)), b"probe");
    assert_eq!(
        exchange(echo_addr, b"after"),
        b"",
        "denied after touching the sensor"
    );
    assert!(
        d.wait_log("FAIL: echo sensor from=127.0.0.1", T),
        "{}",
        d.log()
    );
    // Another address is not affected.
    let mut other = jawas_tests::connect_from("127.0.0.9", echo_addr).unwrap();
    other.write_all(b"other").unwrap();
    other.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(read_all(&mut other), b"other");
}

#[test]
fn banners_access_times_cps_and_file_log() {
    let dir = TempDir::new();
    std::fs::write(dir.path().join("b1"), "banner one\n").unwrap();
    std::fs::write(dir.path().join("b2"), "welcome\n").unwrap();
    let (open, closed, limited) = (free_port(), free_port(), free_port());
    let log = dir.path().join("services.log");
    let minute_now = {
        let out = Command::new("date").arg("+%H %M").output().unwrap();
        let t = String::from_utf8_lossy(&out.stdout).to_string();
        let mut it = t.split_whitespace().map(|v| v.parse::<u32>().unwrap());
        it.next().unwrap() * 60 + it.next().unwrap()
    };
    // A window that excludes now (two hours ahead, one hour long).
    let start = (minute_now + 120) % 1440;
    let end = (start + 60) % 1440;
    let window = format!(
        "{:02}:{:02}-{:02}:{:02}",
        start / 60,
        start % 60,
        end / 60,
        end % 60
    );
    let conf = format!(
        "defaults\n{{\n log_type = FILE {log}\n log_on_success = HOST EXIT\n log_on_failure = HOST\n}}\n",
        log = log.display()
    ) + &svc(
        "echo",
        open,
        &format!(" type = INTERNAL UNLISTED\n socket_type = stream\n wait = no\n banner = {d}/b1\n banner_success = {d}/b2", d = dir.path().display()),
    ) + &svc(
        "daytime",
        closed,
        &format!(" type = INTERNAL UNLISTED\n socket_type = stream\n wait = no\n access_times = {window}"),
    ) + &svc("discard", limited, " type = INTERNAL UNLISTED\n socket_type = stream\n wait = no\n cps = 1 30");
    let d = Jawasd::builder(&conf).xinetd().start();
    let at = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
    assert_eq!(exchange(at(open), b"x"), b"banner one\nwelcome\nx");
    assert_eq!(exchange(at(closed), b""), b"", "outside access_times");
    // cps: the second connection within the second is refused, but the
    // service is not switched off for 30 s as xinetd would.
    let _ = exchange(at(limited), b"");
    let _ = exchange(at(limited), b"");
    std::thread::sleep(Duration::from_millis(1200));
    let mut s = TcpStream::connect(at(limited)).expect("listener still open after cps");
    s.write_all(b"discarded").unwrap();
    drop(s);
    let deadline = std::time::Instant::now() + T;
    let mut text = String::new();
    while std::time::Instant::now() < deadline {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("FAIL: daytime")
            && text.contains("FAIL: discard")
            && text.matches("EXIT: ").count() >= 2
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(text.contains("START: echo from=127.0.0.1"), "{text}");
    assert!(text.contains("EXIT: echo status=0"), "{text}");
    assert!(
        !text.contains(" pid="),
        "log_on_success without PID: {text}"
    );
    // xinetd's own FAIL lines, with its reason words, for log watchers.
    assert!(text.contains("FAIL: daytime time from=127.0.0.1"), "{text}");
    assert!(text.contains("FAIL: discard cps from=127.0.0.1"), "{text}");
    assert!(
        !d.log().contains("EXIT: echo"),
        "service events went to the file, not stderr"
    );
}

#[test]
fn redirect_relays_to_another_server() {
    let target = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target_addr = target.local_addr().unwrap();
    std::thread::spawn(move || {
        if let Ok((mut c, _)) = target.accept() {
            let mut buf = Vec::new();
            let _ = c.read_to_end(&mut buf);
            let _ = c.write_all(&[b"relayed: ".as_slice(), &buf].concat());
        }
    });
    let port = free_port();
    let conf = svc(
        "relay",
        port,
        &format!(
            " socket_type = stream\n wait = no\n redirect = 127.0.0.1 {}",
            target_addr.port()
        ),
    );
    let _d = Jawasd::builder(&conf).xinetd().start();
    assert_eq!(
        exchange(SocketAddr::from(([127, 0, 0, 1], port)), b"hello"),
        b"relayed: hello"
    );
}

#[test]
fn xinetd_command_line_pidfile_filelog_stayalive_and_signals() {
    let dir = TempDir::new();
    let conf = dir.path().join("xinetd.conf");
    std::fs::write(
        &conf,
        "service echo\n{\n disable = yes\n type = INTERNAL\n socket_type = stream\n wait = no\n}\n",
    )
    .unwrap();
    // Without -stayalive, no service means no server, as in xinetd.
    let out = Command::new(bin("jawasd"))
        .arg("-f")
        .arg(&conf)
        .arg("-dontfork")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(100),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("no service left to run"));

    let pidfile = dir.path().join("jawasd.pid");
    let logfile = dir.path().join("jawasd.log");
    let mut child = Command::new(bin("jawasd"))
        .arg("-f")
        .arg(&conf)
        .args(["-dontfork", "-stayalive", "-pidfile"])
        .arg(&pidfile)
        .arg("-filelog")
        .arg(&logfile)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + T;
    while !std::fs::read_to_string(&logfile)
        .unwrap_or_default()
        .contains(" ready ")
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(pid, child.id() as i32);
    // SAFETY: kill has no memory effects.
    unsafe { libc::kill(pid, libc::SIGUSR1) };
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGQUIT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let log = std::fs::read_to_string(&logfile).unwrap();
    assert!(log.contains(" ready "), "{log}");
    assert!(log.contains("stop signal=SIGQUIT"), "{log}");
    assert!(!pidfile.exists(), "pidfile removed at exit");
}

/// Absurd numbers in an xinetd file leave only their service out, with the
/// user's file and line; never a panic (exit 101), never the whole file
/// lost to TOML the translation could not write.
#[test]
fn absurd_values_leave_only_their_service_out() {
    let good = "service good\n{\n type = UNLISTED\n socket_type = stream\n wait = no\n port = 9\n server = /bin/cat\n}\n";
    let bad = |attr: &str| {
        format!("service bad\n{{\n type = UNLISTED\n socket_type = stream\n wait = no\n port = 10\n server = /bin/cat\n flags = SENSOR\n {attr}\n}}\n")
    };
    let cases: &[(&str, &str)] = &[
        ("deny_time = 160000000000000000", "xinetd.conf:17: error: services.bad.deny_time: too long; at most \"365d\" (31536000 seconds) (service left out)"),
        ("deny_time = 600000", "xinetd.conf:17: error: services.bad.deny_time: too long"),
        ("cps = 1e300 10", "xinetd.conf:17: error: services.bad.rate: must be from 0.001 to 1000000 connections per second"),
        ("cps = inf 10", "xinetd.conf:17: error: cps = RATE WAIT expected; left out"),
        ("max_load = NaN", "xinetd.conf:17: error: max_load = NaN: expected a number; left out"),
        ("max_load = 1e300", "xinetd.conf:17: error: services.bad.max_load: must be from 0 to 1000000"),
        ("rlimit_files = 2G", "xinetd.conf:17: error: services.bad.rlimit_nofile: must be a whole number from 1 to 1073741824"),
        ("rlimit_cpu = 99999999999999", "xinetd.conf:17: error: services.bad.rlimit_cpu: too long; at most \"365d\""),
        ("rlimit_as = 99999999999999999999", "xinetd.conf:17: error: rlimit_as = 99999999999999999999: expected a number"),
        ("env = A=1 A=2", ""),
        ("rlimit_files = 10K", ""),
    ];
    for (attr, want) in cases {
        let dir = TempDir::new();
        let path = dir.path().join("xinetd.conf");
        std::fs::write(&path, format!("{good}{}", bad(attr))).unwrap();
        let (code, text) = check(&path);
        assert!(!text.contains("panicked"), "{attr}: {text}");
        if want.is_empty() {
            assert_eq!(code, 0, "{attr}: {text}");
            continue;
        }
        assert_eq!(code, 100, "{attr}: {text}");
        assert!(text.contains(want), "{attr}: want {want:?} got:\n{text}");
        assert!(text.contains("1 service(s) would run"), "{attr}: {text}");
    }
}
