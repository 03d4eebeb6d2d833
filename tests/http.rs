//! The HTTP layer's connection-level promises, through the real jawasd:
//! handing a connection over after a 101 (a WebSocket echo engine answering
//! a real WebSocket client), and the write deadline (a client that stops
//! reading cannot hold an engine; the log tells the bytes really sent).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use jawas_tests::{Jawasd, TempDir};
use tungstenite::protocol::Role;
use tungstenite::{Message, WebSocket};

const T: Duration = Duration::from_secs(10);

fn ws_server() -> Jawasd {
    Jawasd::start(
        "[services.ws]\nlisten = \"127.0.0.1:0\"\nengine = \"jawas-test-ws-echo\"\ncapture_stderr = true\n",
    )
}

/// A masked client text frame (RFC 6455 section 5.2), payload < 126 bytes.
fn client_text_frame(text: &str) -> Vec<u8> {
    let mask = [0x12u8, 0x34, 0x56, 0x78];
    let mut f = vec![0x81, 0x80 | text.len() as u8];
    f.extend_from_slice(&mask);
    f.extend(text.bytes().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

#[test]
fn a_websocket_takes_over_the_connection_after_101() {
    let d = ws_server();
    let mut s = TcpStream::connect(d.addr("ws")).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    // The handshake and a first frame in one write: the frame is already in
    // the layer's buffer when the handler takes the connection.
    let mut out = b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        .to_vec();
    out.extend(client_text_frame("early"));
    s.write_all(&out).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "head: {head:?}");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\nConnection: Upgrade\r\n"), "{head}");
    assert!(head.contains("\r\nUpgrade: websocket\r\n"), "{head}");
    // RFC 6455's own example key and answer.
    assert!(
        head.contains("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
        "{head}"
    );
    assert!(
        !head.contains("Content-Length") && !head.contains("chunked"),
        "{head}"
    );
    let mut ws = WebSocket::from_raw_socket(s, Role::Client, None);
    assert_eq!(ws.read().unwrap(), Message::text("early"));
    for i in 0..20 {
        let m = Message::text(format!("message {i} {}", "x".repeat(i * 100)));
        ws.send(m.clone()).unwrap();
        assert_eq!(ws.read().unwrap(), m);
    }
    let bin = Message::binary((0..=255u8).collect::<Vec<u8>>());
    ws.send(bin.clone()).unwrap();
    assert_eq!(ws.read().unwrap(), bin);
    ws.close(None).unwrap();
    loop {
        match ws.read() {
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("close: {e}"),
        }
    }
    assert!(d.wait_log("\"GET /echo HTTP/1.1\" 101 0", T), "{}", d.log());
}

#[test]
fn a_real_websocket_client_and_a_plain_request() {
    let d = ws_server();
    let stream = TcpStream::connect(d.addr("ws")).unwrap();
    stream.set_read_timeout(Some(T)).unwrap();
    let (mut ws, resp) =
        tungstenite::client(format!("ws://{}/", d.addr("ws")), stream).expect("handshake");
    assert_eq!(resp.status(), 101);
    ws.send(Message::text("hello")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("hello"));
    ws.close(None).unwrap();
    // Without an upgrade, the handler answers over plain HTTP.
    let mut s = TcpStream::connect(d.addr("ws")).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let out = String::from_utf8_lossy(&jawas_tests::read_all(&mut s)).to_string();
    assert!(
        out.starts_with("HTTP/1.1 426 Upgrade Required\r\n"),
        "{out}"
    );
}

#[test]
fn a_client_that_stops_reading_cannot_hold_the_engine() {
    let dir = TempDir::new();
    let root = dir.path().join("www");
    std::fs::create_dir_all(&root).unwrap();
    let big = 20_000_000usize;
    std::fs::write(root.join("big.bin"), vec![7u8; big]).unwrap();
    let d = Jawasd::builder(
        "[services.web]\nlisten = \"127.0.0.1:0\"\nengine = \"jawas-static\"\nargs = [\"--root\", \"{dir}/www\", \"--send-timeout\", \"1\"]\ncapture_stderr = true\n",
    )
    .dir(dir)
    .start();
    let mut s = TcpStream::connect(d.addr("web")).unwrap();
    s.write_all(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let started = Instant::now();
    // Wait for the engine to start, then for it to be gone: never read.
    while d.children().is_empty() && started.elapsed() < T {
        std::thread::sleep(Duration::from_millis(20));
    }
    while !d.children().is_empty() && started.elapsed() < T {
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = started.elapsed();
    assert!(d.children().is_empty(), "engine still there after {took:?}");
    assert!(
        took < Duration::from_secs(5),
        "engine gone only after {took:?}"
    );
    let needle = "\"GET /big.bin HTTP/1.1\" 200 ";
    assert!(d.wait_log(needle, T), "{}", d.log());
    let log = d.log();
    let sent: u64 = log
        .split(needle)
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no byte count: {log}"));
    assert!(
        sent > 0 && sent < big as u64 / 2,
        "logged {sent} bytes sent: {log}"
    );
    drop(s);
}
