//! jawas-ws through the real jawasd, with Python's `websockets` package
//! as the client (a real, independent WebSocket implementation): echo in
//! line and binary mode, PROGRAM's environment, refusals before the
//! upgrade (426, 403), subprotocols, the message size limit (1009), close
//! codes from PROGRAM's exit status, and PROGRAM's whole process group
//! gone after the client leaves; `--dir` routing and its refusals,
//! `--static` pages (curl), `--pty`; the same programs and clients under
//! websocketd (Debian package websocketd) to compare; and a page in
//! headless Chromium (Debian package chromium) talking to its socket.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use jawas_tests::browser::{chromium_text, require};
use jawas_tests::{exchange, script, Jawasd, TempDir};

/// Imports the client once per script; a missing package fails the test
/// with the command that installs it.
const PRELUDE: &str = "import sys, os
try:
    from websockets.sync.client import connect
    from websockets.exceptions import ConnectionClosed, InvalidStatus
except ImportError:
    print('MISSING websockets')
    sys.exit(3)
URL = sys.argv[1]
def drain(ws):
    # Every message until the close, then the close code.
    try:
        while True:
            print(repr(ws.recv(timeout=10)))
    except ConnectionClosed as e:
        print('CLOSE', e.rcvd.code if e.rcvd else None)
";

/// Runs `body` (Python, after PRELUDE) against `url`; its stdout.
fn client(url: &str, body: &str) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(format!("{PRELUDE}{body}\n"))
        .arg(url)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        !stdout.contains("MISSING websockets"),
        "the tests need Python's websockets package: python3 -m pip install websockets"
    );
    assert!(
        out.status.success(),
        "client failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// jawasd with one jawas-ws service given `args`; `{dir}` in them is the
/// test's directory (scripts are written there first by `prepare`).
fn server(args: &[&str], prepare: impl FnOnce(&TempDir)) -> Jawasd {
    let dir = TempDir::new();
    prepare(&dir);
    let list: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
    let config = format!(
        "[services.ws]\nlisten = \"127.0.0.1:0\"\nengine = \"jawas-ws\"\nargs = [{}]\ncapture_stderr = true\n",
        list.join(", ")
    );
    Jawasd::builder(&config).dir(dir).start()
}

fn url(addr: SocketAddr, path: &str) -> String {
    format!("ws://{addr}{path}")
}

#[test]
fn each_text_message_is_a_line_and_each_line_a_message() {
    let d = server(&["--", "cat"], |_| {});
    let out = client(
        &url(d.addr("ws"), "/"),
        "with connect(URL) as ws:
    for m in ['hello', 'wörld', '']:
        ws.send(m)
        print(repr(ws.recv(timeout=10)))",
    );
    assert_eq!(out, "'hello'\n'wörld'\n''\n");
}

#[test]
fn binary_mode_passes_bytes_both_ways() {
    let d = server(&["--binary", "--", "cat"], |_| {});
    let out = client(
        &url(d.addr("ws"), "/"),
        "with connect(URL) as ws:
    ws.send(bytes([0, 10, 255, 13]))
    print(repr(ws.recv(timeout=10)))",
    );
    assert_eq!(out, "b'\\x00\\n\\xff\\r'\n");
}

#[test]
fn program_sees_a_cgi_style_environment() {
    let vars = [
        "REMOTE_ADDR",
        "SERVER_NAME",
        "SERVER_PROTOCOL",
        "REQUEST_METHOD",
        "REQUEST_URI",
        "PATH_INFO",
        "QUERY_STRING",
        "SCRIPT_NAME",
        "HTTP_ORIGIN",
        "HTTP_SEC_WEBSOCKET_PROTOCOL",
        "REMOTE_USER",
        "FROM_JAWASD",
    ];
    let body: String = vars
        .iter()
        .map(|v| format!("echo \"{v}=${v}\"\n"))
        .collect();
    let d = server(&["--protocol", "chat", "--", "{dir}/env.sh"], |dir| {
        script(
            dir.path(),
            "env.sh",
            &format!("{body}echo \"PORT_SET=${{REMOTE_PORT:+yes}}${{SERVER_PORT:+yes}}\""),
        );
    });
    let out = client(
        &url(d.addr("ws"), "/a%20b/c?x=1&y=2"),
        "with connect(URL, origin='http://page.test', subprotocols=['chat']) as ws:
    drain(ws)",
    );
    for want in [
        "'REMOTE_ADDR=127.0.0.1'",
        "'SERVER_NAME=127.0.0.1'",
        "'SERVER_PROTOCOL=HTTP/1.1'",
        "'REQUEST_METHOD=GET'",
        "'REQUEST_URI=/a%20b/c?x=1&y=2'",
        "'PATH_INFO=/a b/c'",
        "'QUERY_STRING=x=1&y=2'",
        "'SCRIPT_NAME=/'",
        "'HTTP_ORIGIN=http://page.test'",
        "'HTTP_SEC_WEBSOCKET_PROTOCOL=chat'",
        "'REMOTE_USER='",
        "'PORT_SET=yesyes'",
        "CLOSE 1000",
    ] {
        assert!(out.lines().any(|l| l == want), "{want} not in:\n{out}");
    }
}

#[test]
fn service_env_from_jawasd_reaches_the_program() {
    let dir = TempDir::new();
    script(dir.path(), "env.sh", "echo \"GREETING=$GREETING\"");
    let config = "[services.ws]\nlisten = \"127.0.0.1:0\"\nengine = \"jawas-ws\"\nargs = [\"--\", \"{dir}/env.sh\"]\nenv = { GREETING = \"hi\" }\ncapture_stderr = true\n";
    let d = Jawasd::builder(config).dir(dir).start();
    let out = client(
        &url(d.addr("ws"), "/"),
        "with connect(URL) as ws:\n    drain(ws)",
    );
    assert_eq!(out, "'GREETING=hi'\nCLOSE 1000\n");
}

#[test]
fn a_plain_get_gets_426_naming_websocket() {
    let d = server(&["--", "cat"], |_| {});
    let reply = exchange(
        d.addr("ws"),
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 426 "), "{reply}");
    assert!(
        reply
            .to_ascii_lowercase()
            .contains("\r\nupgrade: websocket\r\n"),
        "{reply}"
    );
}

#[test]
fn a_refused_origin_gets_403_before_the_upgrade() {
    let d = server(&["--origin", "good.test", "--", "cat"], |_| {});
    let out = client(
        &url(d.addr("ws"), "/"),
        "for origin in ['https://evil.test', 'http://good.test', 'https://good.test']:
    try:
        with connect(URL, origin=origin) as ws:
            ws.send('x')
            print(origin, repr(ws.recv(timeout=10)))
    except InvalidStatus as e:
        print(origin, e.response.status_code)",
    );
    assert_eq!(
        out,
        "https://evil.test 403\nhttp://good.test 'x'\nhttps://good.test 'x'\n"
    );
}

#[test]
fn same_origin_accepts_only_the_host_asked() {
    let d = server(&["--same-origin", "--", "cat"], |_| {});
    let addr = d.addr("ws");
    let out = client(
        &url(addr, "/"),
        &format!(
            "for origin in ['http://{addr}', 'http://other.test']:
    try:
        with connect(URL, origin=origin) as ws:
            print('open')
    except InvalidStatus as e:
        print(e.response.status_code)"
        ),
    );
    assert_eq!(out, "open\n403\n");
}

#[test]
fn the_first_offered_known_subprotocol_is_chosen() {
    let d = server(
        &["--protocol", "chat", "--protocol", "v2", "--", "cat"],
        |_| {},
    );
    let out = client(
        &url(d.addr("ws"), "/"),
        "for offer in [['x', 'v2', 'chat'], ['chat']]:
    with connect(URL, subprotocols=offer) as ws:
        print(ws.subprotocol)",
    );
    assert_eq!(out, "v2\nchat\n");
}

#[test]
fn an_oversized_message_is_closed_with_1009() {
    let d = server(&["--max-message", "100", "--", "cat"], |_| {});
    let out = client(
        &url(d.addr("ws"), "/"),
        "with connect(URL) as ws:
    ws.send('a' * 100)
    print(len(ws.recv(timeout=10)))
    ws.send('a' * 101)
    drain(ws)",
    );
    assert_eq!(out, "100\nCLOSE 1009\n");
}

#[test]
fn program_exit_closes_with_1000_or_1011() {
    let d = server(
        &["--", "sh", "-c", "read x; echo \"got $x\"; exit $x"],
        |_| {},
    );
    for (status, code) in [("0", "1000"), ("3", "1011")] {
        let out = client(
            &url(d.addr("ws"), "/"),
            &format!("with connect(URL) as ws:\n    ws.send('{status}')\n    drain(ws)"),
        );
        assert_eq!(out, format!("'got {status}'\nCLOSE {code}\n"));
    }
}

/// Whether any process is left in group `pgid`.
fn group_alive(pgid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks that the group exists.
    unsafe { libc::kill(-pgid, 0) == 0 }
}

#[test]
fn when_the_client_leaves_the_programs_group_is_gone() {
    // The program and a child both ignore SIGTERM and stdin's end: only
    // the final SIGKILL to the group ends them.
    let body = "trap '' TERM; sleep 600 & echo $$; while :; do sleep 0.1; done";
    let d = server(&["--", "sh", "-c", body], |_| {});
    let endings = [
        ("a close handshake", "ws.close()"),
        ("a vanished client", "os._exit(0)"),
    ];
    for (how, end) in endings {
        let out = client(
            &url(d.addr("ws"), "/"),
            &format!("ws = connect(URL)\nprint(ws.recv(timeout=10), flush=True)\n{end}"),
        );
        let pgid: i32 = out.trim().parse().expect("the program's pid");
        let deadline = Instant::now() + Duration::from_secs(10);
        while group_alive(pgid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            !group_alive(pgid),
            "after {how}, group {pgid} still has processes"
        );
    }
}

/// The close code in the first frame the server sends after the 101, for
/// raw bytes `frame` sent right after the handshake.
/// (The frame goes in the same write as the handshake, so it is already
/// buffered when the connection is handed off.)
fn close_code_after(addr: SocketAddr, frame: &[u8]) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = jawas_tests::connect(addr);
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut out = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        .to_vec();
    out.extend_from_slice(frame);
    s.write_all(&out).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
        // The head and a close frame's first four bytes are enough.
        let head = got.windows(4).position(|w| w == b"\r\n\r\n");
        if head.is_some_and(|i| got.len() >= i + 8) {
            break;
        }
    }
    let head_end = got.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    assert!(
        got.starts_with(b"HTTP/1.1 101 "),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    match &got[head_end..] {
        [0x88, len, hi, lo, ..] if *len >= 2 => Some(u16::from_be_bytes([*hi, *lo])),
        _ => None,
    }
}

/// A masked client frame with opcode `op` and a short payload.
fn masked(op: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [1u8, 2, 3, 4];
    let mut f = vec![0x80 | op];
    match u16::try_from(payload.len()) {
        Ok(n) if n < 126 => f.push(0x80 | n as u8),
        Ok(n) => {
            f.push(0x80 | 126);
            f.extend_from_slice(&n.to_be_bytes());
        }
        Err(_) => panic!("test frames are shorter than 64 KiB"),
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

#[test]
fn protocol_errors_reach_the_client_as_close_codes() {
    let d = server(&["--", "cat"], |_| {});
    let cases: [(&str, Vec<u8>, u16); 3] = [
        ("an unmasked frame", vec![0x81, 0x02, b'h', b'i'], 1002),
        ("an unknown opcode", masked(0x3, b"x"), 1002),
        ("text that is not UTF-8", masked(0x1, &[0xff, 0xfe]), 1007),
    ];
    for (what, frame, want) in cases {
        assert_eq!(close_code_after(d.addr("ws"), &frame), Some(want), "{what}");
    }
}

#[test]
fn stopping_jawasd_closes_with_1001_and_stops_the_program() {
    let mut d = server(&["--", "sh", "-c", "echo $$; exec sleep 600"], |_| {});
    let addr = d.addr("ws");
    let mut py = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "{PRELUDE}with connect(URL) as ws:\n    print(ws.recv(timeout=10), flush=True)\n    drain(ws)\n"
        ))
        .arg(url(addr, "/"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut stdout = std::io::BufReader::new(py.stdout.take().expect("piped"));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    let pgid: i32 = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("pid: {line:?}"));
    d.signal(libc::SIGTERM);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert_eq!(rest, "CLOSE 1001\n");
    assert!(py.wait().unwrap().success());
    assert_eq!(d.wait_exit(Duration::from_secs(10)), Some(0), "{}", d.log());
    assert!(!group_alive(pgid), "group {pgid} outlived the engine");
}

#[test]
fn help_names_every_option() {
    let dir = TempDir::new();
    let (code, out, _, _) = jawas_tests::run_engine("jawas-ws", dir.path(), &["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("jawas-ws [OPTION]... --dir DIR\n"), "{out}");
    jawas_tests::assert_help_lists(
        &out,
        &[
            ("--dir DIR", "URL path"),
            ("--static DIR", "not upgrades"),
            ("--pty", "pseudo-terminal"),
            ("--binary", "binary"),
            ("--max-message BYTES", "longer than BYTES"),
        ],
    );
}

#[test]
fn bad_arguments_are_usage_errors() {
    let dir = TempDir::new();
    let cases: &[(&[&str], i32, &str)] = &[
        (&["--check", "--", "cat"], 0, "jawas-ws: ok"),
        (&["--check"], 100, "no PROGRAM given"),
        (
            &["--check", "--max-message", "0", "--", "cat"],
            100,
            "--max-message",
        ),
        (
            &["--check", "--max-message", "lots", "--", "cat"],
            100,
            "'lots'",
        ),
        (&["--check", "--dir", "."], 0, "jawas-ws: ok"),
        (
            &["--check", "--dir", ".", "--", "cat"],
            100,
            "exclude each other",
        ),
        (
            &["--check", "--dir", "/nonexistent"],
            100,
            "--dir '/nonexistent'",
        ),
        (&["--check", "--dir", "/etc/passwd"], 100, "not a directory"),
        (
            &["--check", "--static", "/nonexistent", "--", "cat"],
            100,
            "--static '/nonexistent'",
        ),
    ];
    for (args, code, needle) in cases {
        let (got, _, err, _) = jawas_tests::run_engine("jawas-ws", dir.path(), args);
        assert_eq!(got, *code, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn a_program_that_cannot_start_closes_with_1011_and_says_why() {
    let d = server(&["--", "/nonexistent/program"], |_| {});
    let out = client(
        &url(d.addr("ws"), "/"),
        "with connect(URL) as ws:\n    drain(ws)",
    );
    assert_eq!(out, "CLOSE 1011\n");
    assert!(
        d.wait_log("cannot start /nonexistent/program", Duration::from_secs(10)),
        "{}",
        d.log()
    );
}

#[test]
fn a_program_that_never_reads_does_not_keep_the_engine_from_stopping() {
    // More than the stdin pipe and the engine's queue hold, so the engine
    // is holding the client back when jawasd stops it.
    let mut d = server(&["--", "sh", "-c", "echo $$; exec sleep 600"], |_| {});
    let mut py = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "{PRELUDE}with connect(URL) as ws:
    print(ws.recv(timeout=10), flush=True)
    for _ in range(40):
        ws.send('x' * 4096)
    print('sent', flush=True)
    drain(ws)
"
        ))
        .arg(url(d.addr("ws"), "/"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut stdout = std::io::BufReader::new(py.stdout.take().expect("piped"));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    let pgid: i32 = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("pid: {line:?}"));
    line.clear();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert_eq!(line, "sent\n");
    d.signal(libc::SIGTERM);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert_eq!(rest, "CLOSE 1001\n");
    assert!(py.wait().unwrap().success());
    assert_eq!(d.wait_exit(Duration::from_secs(10)), Some(0), "{}", d.log());
    assert!(!group_alive(pgid), "group {pgid} outlived the engine");
}

#[test]
fn ping_keeps_an_answering_client_and_drops_a_silent_one() {
    use std::io::{Read, Write};
    let d = server(
        &["--ping", "0.3", "--", "sh", "-c", "echo $$; exec cat"],
        |_| {},
    );
    // Python's client answers pings by itself: idle for five ping periods,
    // the connection still works.
    let out = client(
        &url(d.addr("ws"), "/"),
        "import time
with connect(URL) as ws:
    ws.recv(timeout=10)
    time.sleep(1.5)
    ws.send('still here')
    print(ws.recv(timeout=10))",
    );
    assert_eq!(out, "still here\n");
    // A raw client that never answers gets a ping, then the connection ends.
    let mut s = jawas_tests::connect(d.addr("ws"));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .unwrap();
    let started = Instant::now();
    let mut got = Vec::new();
    s.read_to_end(&mut got)
        .expect("the engine ends the connection");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let head_end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let mut frames = &got[head_end..];
    let mut opcodes = Vec::new();
    let mut pid = String::new();
    while let [b0, len, rest @ ..] = frames {
        let len = usize::from(*len & 0x7f);
        if b0 & 0x0f == 1 {
            pid = String::from_utf8_lossy(&rest[..len]).into_owned();
        }
        opcodes.push(b0 & 0x0f);
        frames = &rest[len..];
    }
    assert_eq!(opcodes.first(), Some(&1), "{opcodes:?}");
    assert!(opcodes.contains(&9), "no ping in {opcodes:?}");
    let pgid: i32 = pid.trim().parse().expect("the program's pid");
    let deadline = Instant::now() + Duration::from_secs(10);
    while group_alive(pgid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!group_alive(pgid), "group {pgid} outlived a silent client");
}

#[test]
fn idle_timeout_closes_a_quiet_connection_with_1000() {
    let d = server(
        &[
            "--idle-timeout",
            "0.5",
            "--",
            "sh",
            "-c",
            "echo $$; exec cat",
        ],
        |_| {},
    );
    // Messages every 0.3 s keep it open past 0.5 s; then silence closes it.
    let out = client(
        &url(d.addr("ws"), "/"),
        "import time
with connect(URL) as ws:
    print(ws.recv(timeout=10))
    for m in ['a', 'b']:
        time.sleep(0.3)
        ws.send(m)
        print(ws.recv(timeout=10))
    drain(ws)",
    );
    let mut lines = out.lines();
    let pgid: i32 = lines.next().unwrap().parse().expect("the program's pid");
    assert_eq!(lines.collect::<Vec<_>>(), ["a", "b", "CLOSE 1000"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while group_alive(pgid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !group_alive(pgid),
        "group {pgid} outlived the idle connection"
    );
}

/// The status line of the answer to an upgrade request for `path`, sent
/// byte for byte as given (no client tidies the path first).
fn upgrade_status(addr: SocketAddr, path: &str) -> String {
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    let reply = exchange(addr, req.as_bytes());
    let reply = String::from_utf8_lossy(&reply);
    reply.lines().next().unwrap_or("").to_string()
}

/// A `--dir` tree: `chat` and `sub/deep` print where they were asked for,
/// then echo; beside them the files that must not run.
fn dir_server() -> Jawasd {
    server(&["--dir", "{dir}/ws"], |dir| {
        let ws = dir.path().join("ws");
        std::fs::create_dir_all(ws.join("sub")).unwrap();
        let body = "echo \"$SCRIPT_NAME|$PATH_INFO|$QUERY_STRING\"; exec cat";
        script(&ws, "chat", body);
        script(&ws.join("sub"), "deep", body);
        script(&ws, ".hidden", body);
        script(dir.path(), "outside", body);
        std::os::unix::fs::symlink(dir.path().join("outside"), ws.join("out")).unwrap();
        std::os::unix::fs::symlink(dir.path(), ws.join("up")).unwrap();
        std::os::unix::fs::symlink(ws.join("chat"), ws.join("alias")).unwrap();
        std::fs::write(ws.join("plain"), "#!/bin/sh\necho no\n").unwrap();
    })
}

#[test]
fn dir_runs_the_program_the_path_names() {
    let d = dir_server();
    let cases = [
        ("/chat", "/chat||"),
        ("/chat/room/1?x=2", "/chat|/room/1|x=2"),
        ("/sub/deep/a%20b", "/sub/deep|/a b|"),
        ("/alias/x", "/alias|/x|"),
    ];
    for (path, want) in cases {
        let out = client(
            &url(d.addr("ws"), path),
            "with connect(URL) as ws:
    print(ws.recv(timeout=10))
    ws.send('ping')
    print(ws.recv(timeout=10))",
        );
        assert_eq!(out, format!("{want}\nping\n"), "{path}");
    }
}

#[test]
fn dir_refuses_what_is_not_an_executable_inside_it() {
    let d = dir_server();
    let cases = [
        ("/", "404"),
        ("/sub", "404"),
        ("/sub/", "404"),
        ("/missing", "404"),
        ("/.hidden", "404"),
        ("/sub/%2ehidden", "404"),
        ("/out", "404"),
        ("/up/outside", "404"),
        ("/../outside", "400"),
        ("/sub/../../outside", "400"),
        ("/%2e%2e/outside", "400"),
        ("/plain", "403"),
    ];
    for (path, want) in cases {
        let status = upgrade_status(d.addr("ws"), path);
        assert!(
            status.starts_with(&format!("HTTP/1.1 {want} ")),
            "{path}: {status}"
        );
    }
    // The control: the same request for a program there is upgraded.
    assert!(upgrade_status(d.addr("ws"), "/chat").starts_with("HTTP/1.1 101 "));
}

/// curl's `-s -i` output for `args` (the URL among them).
fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-s", "-i", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl runs (Debian package curl)");
    String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n")
}

/// `--static` beside `cat`: a page, a script, a dotfile, a link out.
fn static_server() -> Jawasd {
    server(&["--static", "{dir}/www", "--", "cat"], |dir| {
        let www = dir.path().join("www");
        std::fs::create_dir_all(www.join("sub")).unwrap();
        std::fs::write(www.join("index.html"), "<p>page</p>\n").unwrap();
        std::fs::write(www.join("app.js"), "let x = 1;\n").unwrap();
        std::fs::write(www.join("sub/index.html"), "sub\n").unwrap();
        std::fs::write(www.join(".secret"), "no\n").unwrap();
        std::fs::write(dir.path().join("outside.txt"), "no\n").unwrap();
        std::os::unix::fs::symlink(dir.path().join("outside.txt"), www.join("out.txt")).unwrap();
    })
}

#[test]
fn static_serves_the_page_beside_the_socket() {
    let d = static_server();
    let base = format!("http://{}", d.addr("ws"));
    let page = curl(&[&format!("{base}/")]);
    assert!(page.starts_with("HTTP/1.1 200 "), "{page}");
    assert!(
        page.contains("\ncontent-type: text/html") || page.contains("\nContent-Type: text/html"),
        "{page}"
    );
    assert!(page.ends_with("\n\n<p>page</p>\n"), "{page}");
    let js = curl(&[&format!("{base}/app.js")]);
    assert!(
        js.to_ascii_lowercase()
            .contains("\ncontent-type: text/javascript"),
        "{js}"
    );
    let etag = page
        .lines()
        .find_map(|l| l.strip_prefix("ETag: ").or(l.strip_prefix("etag: ")))
        .expect("an ETag")
        .to_string();
    let again = curl(&["-H", &format!("If-None-Match: {etag}"), &format!("{base}/")]);
    assert!(again.starts_with("HTTP/1.1 304 "), "{again}");
    let head = curl(&["-I", &format!("{base}/app.js")]);
    assert!(
        head.starts_with("HTTP/1.1 200 ") && head.ends_with("\n\n"),
        "{head}"
    );
    // Two requests on one connection: static answers keep it open.
    let both = Command::new("curl")
        .args([
            "-s",
            "-v",
            "-o",
            "/dev/null",
            "-o",
            "/dev/null",
            "--max-time",
            "10",
        ])
        .arg(format!("{base}/app.js"))
        .arg(format!("{base}/sub/"))
        .output()
        .expect("curl runs");
    let log = String::from_utf8_lossy(&both.stderr);
    assert!(
        log.contains("Re-using existing connection") || log.contains("Reusing existing connection"),
        "{log}"
    );
    // And the socket on the same port.
    let out = client(
        &url(d.addr("ws"), "/"),
        "with connect(URL) as ws:\n    ws.send('hi')\n    print(ws.recv(timeout=10))",
    );
    assert_eq!(out, "hi\n");
}

#[test]
fn static_refuses_what_is_not_a_file_inside_it() {
    let d = static_server();
    let base = format!("http://{}", d.addr("ws"));
    let cases: &[(&[&str], &str, &str)] = &[
        (&[], "/.secret", "404"),
        (&[], "/out.txt", "404"),
        (&[], "/missing", "404"),
        (&[], "/sub", "301"),
        (&["--path-as-is"], "/../outside.txt", "400"),
        (&["-X", "POST"], "/", "405"),
    ];
    for (opts, path, want) in cases {
        let mut args = opts.to_vec();
        let u = format!("{base}{path}");
        args.push(&u);
        let got = curl(&args);
        assert!(
            got.starts_with(&format!("HTTP/1.1 {want} ")),
            "{path}: {got}"
        );
        if *want == "301" {
            assert!(
                got.contains("\nLocation: /sub/\n") || got.contains("\nlocation: /sub/\n"),
                "{got}"
            );
        }
    }
    // Without --static, the same request gets 426 (checked above); with it,
    // an upgrade still goes to the program, not to a file.
    assert!(upgrade_status(d.addr("ws"), "/app.js").starts_with("HTTP/1.1 101 "));
}

/// websocketd on a loopback port with `args`, stopped when dropped.
struct Websocketd {
    child: std::process::Child,
    addr: SocketAddr,
}

impl Websocketd {
    fn start(args: &[String]) -> Websocketd {
        let port = jawas_tests::free_port();
        let child = Command::new(require("websocketd", "websocketd"))
            .args(["--address", "127.0.0.1", "--port", &port.to_string()])
            .arg("--loglevel=fatal")
            .args(args)
            .spawn()
            .expect("websocketd starts");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        assert!(
            jawas_tests::wait_for_port(addr, Duration::from_secs(10)),
            "websocketd does not listen on {addr}"
        );
        Websocketd { child, addr }
    }
}

impl Drop for Websocketd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// jawas-ws (under jawasd) and websocketd, each given `args` (without
/// the `--`), with `{dir}` one directory for both, made by `prepare`.
fn both(args: &[&str], prepare: impl FnOnce(&Path)) -> (Jawasd, Websocketd) {
    let d = server(args, |dir| prepare(dir.path()));
    let wargs: Vec<String> = args
        .iter()
        .filter(|a| **a != "--")
        .map(|a| a.replace("{dir}", &d.dir().to_string_lossy()))
        .collect();
    let w = Websocketd::start(&wargs);
    (d, w)
}

/// Runs the client `body` against both servers at `path`: (jawas-ws's
/// output, websocketd's), each with its port replaced by PORT.
fn same_client(d: &Jawasd, w: &Websocketd, path: &str, body: &str) -> (String, String) {
    let ours = d.addr("ws");
    let a = client(&url(ours, path), body).replace(&ours.port().to_string(), "PORT");
    let b = client(&url(w.addr, path), body).replace(&w.addr.port().to_string(), "PORT");
    (a, b)
}

#[test]
fn websocketd_and_jawas_ws_echo_the_same() {
    let (d, w) = both(&["--", "cat"], |_| {});
    let body = "ws = connect(URL)
for m in ['hello', 'wörld', '', 'a b', 'x' * 5000]:
    ws.send(m)
    print(repr(ws.recv(timeout=10))[:40])
ws.close()";
    let (a, b) = same_client(&d, &w, "/", body);
    assert_eq!(a, b);
    assert_eq!(a.lines().count(), 5, "{a}");
    let (d, w) = both(&["--binary", "--", "cat"], |_| {});
    let body = "ws = connect(URL)
ws.send(bytes([0, 10, 255, 13]))
print(repr(ws.recv(timeout=10)))
ws.close()";
    let (a, b) = same_client(&d, &w, "/", body);
    assert_eq!(a, b);
    assert_eq!(a, "b'\\x00\\n\\xff\\r'\n");
}

/// Prints the CGI variables (not the inherited environment, which is
/// the server's own: websocketd passes PATH only, jawasd its service env).
const CGI_ENV: &str = "env | grep -E '^(HTTP_|REMOTE_|SERVER_|SCRIPT_NAME|PATH_INFO|PATH_TRANSLATED|QUERY_STRING|REQUEST_|GATEWAY_|AUTH_TYPE|CONTENT_|UNIQUE_ID)' | LC_ALL=C sort";

/// Variables whose values differ between servers on purpose: the ports
/// (two listeners), the per-connection id, the client's random key and
/// the server's name.
fn masked_env(out: &str) -> String {
    out.lines()
        .map(|l| match l.split_once('=') {
            Some((
                k
                @ ("'REMOTE_PORT" | "'UNIQUE_ID" | "'SERVER_SOFTWARE" | "'HTTP_SEC_WEBSOCKET_KEY"),
                _,
            )) => {
                format!("{k}=...")
            }
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn websocketd_and_jawas_ws_give_the_same_environment() {
    let (d, w) = both(&["--", "{dir}/env.sh"], |dir| {
        script(dir, "env.sh", CGI_ENV);
    });
    let body = "ws = connect(URL, origin='http://page.test', subprotocols=['chat'],
    additional_headers={'X-Twice': 'a', 'Cookie': 'k=v'})
drain(ws)";
    let (a, b) = same_client(&d, &w, "/a%20b/c?x=1&y=%20", body);
    let (a, b) = (masked_env(&a), masked_env(&b));
    // jawas-ws adds HTTP_HOST, as CGI servers do; websocketd has none (Go
    // takes Host out of the header list).
    let host = "'HTTP_HOST=127.0.0.1:PORT'\n";
    assert!(a.contains(host), "{a}");
    let a = a.replace(host, "");
    // The close is the deliberate difference (docs/websocket.md).
    assert!(a.ends_with("CLOSE 1000"), "{a}");
    assert!(b.ends_with("CLOSE None"), "{b}");
    let strip = |s: &str| s.rsplit_once('\n').map(|(v, _)| v.to_string()).unwrap();
    assert_eq!(strip(&a), strip(&b));
    for want in ["'SCRIPT_NAME=/'", "'PATH_INFO=/a b/c'", "'HTTP_X_TWICE=a'"] {
        assert!(a.lines().any(|l| l == want), "{want} not in {a}");
    }
}

#[test]
fn websocketd_and_jawas_ws_route_dir_the_same() {
    let prepare = |dir: &Path| {
        let ws = dir.join("ws");
        std::fs::create_dir_all(ws.join("sub")).unwrap();
        script(
            &ws,
            "env",
            "echo \"$SCRIPT_NAME|$PATH_INFO|$PATH_TRANSLATED\"",
        );
        script(&ws.join("sub"), "deep", "echo \"$SCRIPT_NAME|$PATH_INFO\"");
    };
    let (d, w) = both(&["--dir", "{dir}/ws"], prepare);
    let body = "try:
    with connect(URL) as ws:
        print(ws.recv(timeout=10))
except InvalidStatus as e:
    print(e.response.status_code)";
    for path in [
        "/env",
        "/env/a/b%20c",
        "/sub/deep/x?q=1",
        "/sub",
        "/missing",
    ] {
        let (a, b) = same_client(&d, &w, path, body);
        assert_eq!(a, b, "{path}");
    }
}

#[test]
fn websocketd_and_jawas_ws_refuse_the_same_origins() {
    let (d, w) = both(&["--origin", "good.test", "--", "cat"], |_| {});
    let body = "for origin in ['https://evil.test', 'http://good.test', 'https://good.test']:
    try:
        with connect(URL, origin=origin) as ws:
            ws.send('x')
            print(origin, repr(ws.recv(timeout=10)))
    except InvalidStatus as e:
        print(origin, e.response.status_code)";
    let (a, b) = same_client(&d, &w, "/", body);
    assert_eq!(a, b);
    assert!(a.contains("evil.test 403"), "{a}");
}

/// A page whose script opens the socket on its own host, sends two
/// messages, and writes what came back and the close code into the DOM.
const PAGE: &str = r#"<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>echo</title></head><body>
<div id="out">pending</div>
<script>
const out = document.getElementById('out');
const got = [];
const ws = new WebSocket('ws://' + location.host + '/echo');
ws.onopen = () => { ws.send('hello'); ws.send('w\u00f6rld'); };
ws.onmessage = (e) => { got.push(e.data); if (got.length === 2) ws.close(1000); };
ws.onclose = (e) => { out.textContent = 'got:' + got.join(',') + ' close:' + e.code; };
ws.onerror = () => { out.textContent = 'error'; };
</script></body></html>
"#;

#[test]
fn a_chromium_page_talks_to_its_socket() {
    let d = server(&["--static", "{dir}/www", "--dir", "{dir}/ws"], |dir| {
        let www = dir.path().join("www");
        std::fs::create_dir_all(&www).unwrap();
        std::fs::write(www.join("index.html"), PAGE).unwrap();
        let ws = dir.path().join("ws");
        std::fs::create_dir_all(&ws).unwrap();
        script(&ws, "echo", "exec cat");
    });
    let want = "got:hello,wörld close:1000";
    assert_eq!(chromium_text(&format!("http://{}/", d.addr("ws"))), want);
    // The same page and program under websocketd, for comparison.
    let dir = d.dir().to_string_lossy().into_owned();
    let w = Websocketd::start(&[format!("--staticdir={dir}/www"), format!("--dir={dir}/ws")]);
    assert_eq!(chromium_text(&format!("http://{}/", w.addr)), want);
}

#[test]
fn messages_queued_for_a_slow_program_reach_it_after_the_client_closes() {
    // 40 messages of 8000 bytes overflow the pipe (64 KiB) and the
    // engine's queue: the client's close is read while some still wait,
    // and they must still be written before stdin closes.
    let dir = TempDir::new();
    let got = dir.path().join("got");
    // Not `exec`: the shell keeps stdout open, so the output goes on.
    script(dir.path(), "slow.sh", &format!("sleep 0.3; cat > {got:?}"));
    let config = "[services.ws]\nlisten = \"127.0.0.1:0\"\nengine = \"jawas-ws\"\nargs = [\"--\", \"{dir}/slow.sh\"]\ncapture_stderr = true\n";
    let d = Jawasd::builder(config).dir(dir).start();
    let body = "with connect(URL) as ws:
    for i in range(40):
        ws.send(str(i % 10) * 8000)
print('sent')";
    assert_eq!(client(&url(d.addr("ws"), "/"), body), "sent\n");
    let want: String = (0..40)
        .map(|i| format!("{}\n", (i % 10).to_string().repeat(8000)))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&got).unwrap_or_default();
        if text == want {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the program got {} of {} bytes",
            text.len(),
            want.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_client_that_shuts_down_its_side_after_closing_is_still_read() {
    // The client sends more than the program takes at once (the pipe
    // holds 15 of these, the engine's queue 16), its close, and shuts down
    // its sending side (FIN) while the engine is not reading it: the
    // frames still waiting in the socket are messages, not a vanished
    // client. (Small enough that they all fit in the socket's buffer, so
    // the FIN arrives while the program still sleeps.)
    use std::io::{Read, Write};
    let dir = TempDir::new();
    let got = dir.path().join("got");
    // Not `exec`: the shell keeps stdout open, so the output goes on.
    script(dir.path(), "slow.sh", &format!("sleep 0.3; cat > {got:?}"));
    let config = "[services.ws]\nlisten = \"127.0.0.1:0\"\nengine = \"jawas-ws\"\nargs = [\"--\", \"{dir}/slow.sh\"]\ncapture_stderr = true\n";
    let d = Jawasd::builder(config).dir(dir).start();
    let mut s = jawas_tests::connect(d.addr("ws"));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut out = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        .to_vec();
    for i in 0..40 {
        out.extend(masked(0x1, (i % 10).to_string().repeat(4100).as_bytes()));
    }
    out.extend(masked(0x8, &1000u16.to_be_bytes()));
    s.write_all(&out).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    let head_end = reply.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(
        &reply[head_end..],
        &[0x88, 2, 0x03, 0xe8],
        "the close answered"
    );
    let want: String = (0..40)
        .map(|i| format!("{}\n", (i % 10).to_string().repeat(4100)))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(&got).unwrap_or_default() != want {
        assert!(Instant::now() < deadline, "the program did not get all 40");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_client_gone_while_held_back_is_noticed() {
    // The program never reads: the engine holds the client back. The
    // client sends what fits in the buffers and ends: its FIN (after all
    // its data) or RST must stop the program, not wait for it for ever.
    for end in ["os._exit(0)", "ws.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0)); os._exit(0)"] {
        let d = server(&["--", "sh", "-c", "echo $$; exec sleep 600"], |_| {});
        let out = client(
            &url(d.addr("ws"), "/"),
            &format!(
                "import socket, struct, time
ws = connect(URL)
print(ws.recv(timeout=10), flush=True)
for _ in range(40):
    ws.send('x' * 4100)
time.sleep(0.5)
{end}"
            ),
        );
        let pgid: i32 = out.trim().parse().expect("the program's pid");
        let deadline = Instant::now() + Duration::from_secs(10);
        while group_alive(pgid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(!group_alive(pgid), "after {end}, group {pgid} still runs");
    }
}

#[test]
fn pty_makes_a_buffering_program_answer_each_line() {
    // Python buffers stdout in blocks on a pipe, by lines on a terminal.
    let upper = "import sys\nfor line in sys.stdin:\n    print(line.strip().upper())";
    let body = "with connect(URL) as ws:
    print(ws.recv(timeout=10))
    ws.send('abc')
    try:
        print(ws.recv(timeout=2))
    except TimeoutError:
        print('no answer yet')";
    let tty =
        "if [ -t 0 ] && [ -t 1 ]; then echo tty; else echo pipes; fi; exec python3 -c \"$UPPER\"";
    for (args, want) in [
        (&["--pty"][..], "tty\nABC\n"),
        (&[][..], "pipes\nno answer yet\n"),
    ] {
        let dir = TempDir::new();
        script(dir.path(), "upper.sh", tty);
        let mut list: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
        list.extend(["\"--\"".to_string(), "\"{dir}/upper.sh\"".to_string()]);
        let config = format!(
            "[services.ws]\nlisten = \"127.0.0.1:0\"\nengine = \"jawas-ws\"\nargs = [{}]\nenv = {{ UPPER = {upper:?} }}\ncapture_stderr = true\n",
            list.join(", ")
        );
        let d = Jawasd::builder(&config).dir(dir).start();
        assert_eq!(client(&url(d.addr("ws"), "/"), body), want, "{args:?}");
    }
}

#[test]
fn pty_program_and_its_session_end_with_the_client() {
    let d = server(
        &["--pty", "--", "sh", "-c", "echo $$; sleep 600 & exec cat"],
        |_| {},
    );
    let out = client(
        &url(d.addr("ws"), "/"),
        "ws = connect(URL)
print(ws.recv(timeout=10), flush=True)
ws.send('x' * 5000)
assert ws.recv(timeout=10) == 'x' * 5000
ws.close()",
    );
    let pgid: i32 = out.trim().parse().expect("the program's pid");
    let deadline = Instant::now() + Duration::from_secs(10);
    while group_alive(pgid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!group_alive(pgid), "group {pgid} still has processes");
}
