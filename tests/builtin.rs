//! jawas-builtin and the example engines: over pipes (no server), through
//! jawasd over TCP and UDP, and the demo configuration in etc/.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

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
    for port in ["7007", "7013", "7019", "7020", "7021", "8080", "8081"] {
        text = text.replace(&format!(":{port}\""), ":0\"");
    }
    let copy = repo().join(format!("etc/.test-demo-{}.toml", std::process::id()));
    std::fs::write(&copy, &text).unwrap();
    let mut child = Command::new(bin("jawasd"))
        .arg("--config")
        .arg(&copy)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
    let _ = std::fs::remove_file(&copy);
    let addr = |svc: &str| -> SocketAddr {
        let part = line
            .split_whitespace()
            .find(|w| w.starts_with(&format!("{svc}=")))
            .unwrap_or_else(|| panic!("{line}"));
        part.split_once('=')
            .unwrap()
            .1
            .split(',')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(exchange(addr("echo"), b"demo"), b"demo");
    assert!(String::from_utf8(exchange(addr("hello-sh"), b"quit\n"))
        .unwrap()
        .contains("hello 127.0.0.1"));
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(child.wait().unwrap().code(), Some(0));
}
