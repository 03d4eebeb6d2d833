//! jawas-proxy (the engine; tests/proxy.rs is jawasd's PROXY-protocol
//! listener) through the real jawasd, with upstreams that are small
//! servers in this test (to count connections, stall, or die mid-body) or
//! real Jawas engines. TCP mode: 100 MB both ways checked byte for byte,
//! half-close each way (exec and zygote), the idle timeout, failover and
//! round-robin, PROXY v1/v2 headers read by jawasd's own parser. HTTP
//! mode: GET/HEAD/POST with Content-Length and chunked bodies both ways,
//! forwarding fields and hop-by-hop removal, byte-for-byte fields,
//! keep-alive reuse (upstream connections counted), an upstream connection
//! closed while idle or under a request (GET resent, POST not), failover,
//! a Unix socket upstream, a PROXY header, Location and prefix rewriting,
//! a 1 GB response with the engine's peak memory read from /proc,
//! server-sent events arriving as written, a WebSocket (Python
//! `websockets`) through the tunnel, 502, 504, a stalled body, an
//! upstream dying mid-body (a reset for HTTP/1.0), failure reasons kept
//! off a socket on stderr, zygote mode, `--check`, and git clone and push
//! through the proxy to jawas-cgi running git http-backend.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use jawas_tests::{connect, exchange, free_port, read_all, run_engine, Jawasd, TempDir};

const SECS: Duration = Duration::from_secs(10);

/// A TOML list of strings.
fn toml_list(args: &[&str]) -> String {
    let quoted: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

/// jawasd with one service `px` running jawas-proxy with `args`, plus
/// `extra` config (more services).
fn proxy_with(args: &[&str], extra: &str) -> Jawasd {
    Jawasd::start(&format!(
        "[services.px]\nlisten = \"127.0.0.1:0\"\nengine = \"jawas-proxy\"\nargs = {}\n\
         capture_stderr = true\n{extra}",
        toml_list(args)
    ))
}

fn proxy(args: &[&str]) -> Jawasd {
    proxy_with(args, "")
}

/// A server in this process: every accepted connection is handled by `f`
/// on its own thread; `conns` counts them.
struct Upstream {
    addr: SocketAddr,
    conns: Arc<AtomicUsize>,
}

impl Upstream {
    fn to(&self) -> String {
        self.addr.to_string()
    }
    fn count(&self) -> usize {
        self.conns.load(Ordering::SeqCst)
    }
}

fn upstream(f: impl Fn(TcpStream) + Send + Sync + 'static) -> Upstream {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let conns = Arc::new(AtomicUsize::new(0));
    let (f, counter) = (Arc::new(f), conns.clone());
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { break };
            counter.fetch_add(1, Ordering::SeqCst);
            let f = f.clone();
            std::thread::spawn(move || f(s));
        }
    });
    Upstream { addr, conns }
}

/// A port nothing listens on.
fn closed_port() -> String {
    format!("127.0.0.1:{}", free_port())
}

// ---------------------------------------------------------------------
// Byte streams for the TCP relay: a pseudo-random block of a prime length
// repeated, so a lost, doubled or reordered piece shows at its offset.

const BLOCK: usize = 1_000_003;

fn block(seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..BLOCK)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Writes `n` bytes of stream `seed`, then half-closes.
fn send_stream(s: &mut TcpStream, seed: u64, n: usize) {
    let b = block(seed);
    let mut sent = 0;
    while sent < n {
        let at = sent % BLOCK;
        let len = (BLOCK - at).min(n - sent).min(256 * 1024);
        s.write_all(&b[at..at + len]).unwrap();
        sent += len;
    }
    s.shutdown(Shutdown::Write).unwrap();
}

/// Reads to EOF, checking every byte against stream `seed`: the count,
/// or where the first difference is.
fn check_stream(s: &mut TcpStream, seed: u64) -> Result<usize, String> {
    let b = block(seed);
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0;
    loop {
        let n = s
            .read(&mut buf)
            .map_err(|e| format!("read at {got}: {e}"))?;
        if n == 0 {
            return Ok(got);
        }
        let mut i = 0;
        while i < n {
            let at = (got + i) % BLOCK;
            let len = (BLOCK - at).min(n - i);
            if buf[i..i + len] != b[at..at + len] {
                return Err(format!("bytes differ near offset {}", got + i));
            }
            i += len;
        }
        got += n;
    }
}

#[test]
fn tcp_relays_100_mb_each_way_intact() {
    const N: usize = 100 << 20;
    let (tx, rx) = mpsc::channel();
    let up = upstream(move |mut s| {
        let mut w = s.try_clone().unwrap();
        let writer = std::thread::spawn(move || send_stream(&mut w, 2, N));
        let got = check_stream(&mut s, 1);
        writer.join().unwrap();
        tx.send(got).unwrap();
    });
    let d = proxy(&["tcp", "--to", &up.to()]);
    let mut c = connect(d.addr("px"));
    c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut w = c.try_clone().unwrap();
    let writer = std::thread::spawn(move || send_stream(&mut w, 1, N));
    assert_eq!(check_stream(&mut c, 2), Ok(N), "upstream to client");
    writer.join().unwrap();
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(60)).unwrap(),
        Ok(N),
        "client to upstream"
    );
}

#[test]
fn tcp_half_close_passes_each_way() {
    // The client's end reaches the upstream, whose answer still comes back.
    let up = upstream(|mut s| {
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        let _ = s.write_all(format!("got {} bytes", got.len()).as_bytes());
    });
    for spawn in ["", "spawn = \"zygote\"\n"] {
        let d = proxy_with(&["tcp", "--to", &up.to()], spawn);
        assert_eq!(exchange(d.addr("px"), b"hello"), b"got 5 bytes", "{spawn}");
    }

    // The upstream's end reaches the client, who may still send.
    let (tx, rx) = mpsc::channel();
    let up = upstream(move |mut s| {
        s.write_all(b"banner").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
        tx.send(got).unwrap();
    });
    let d = proxy(&["tcp", "--to", &up.to()]);
    let mut c = connect(d.addr("px"));
    let mut banner = Vec::new();
    c.read_to_end(&mut banner).unwrap();
    assert_eq!(banner, b"banner", "the client saw the upstream's end");
    c.write_all(b"after the end").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    assert_eq!(rx.recv_timeout(SECS).unwrap(), b"after the end");
}

#[test]
fn tcp_idle_connections_are_closed() {
    let up = upstream(|mut s| {
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
    });
    let d = proxy(&["tcp", "--to", &up.to(), "--idle-timeout", "0.5"]);
    let mut c = connect(d.addr("px"));
    let started = Instant::now();
    c.write_all(b"one byte, then silence").unwrap();
    assert_eq!(read_all(&mut c), b"");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert!(d.wait_log("idle timeout", SECS), "{}", d.log());
}

fn named(name: &'static str) -> Upstream {
    upstream(move |mut s| {
        let _ = s.write_all(name.as_bytes());
    })
}

#[test]
fn tcp_fails_over_and_balances() {
    let a = named("a");
    let refused = closed_port();
    let d = proxy(&["tcp", "--to", &refused, "--to", &a.to()]);
    assert_eq!(
        exchange(d.addr("px"), b""),
        b"a",
        "the refusing one skipped"
    );

    // No upstream at all: closed without a byte, both reasons logged.
    let other = closed_port();
    let d = proxy(&["tcp", "--to", &refused, "--to", &other]);
    assert_eq!(exchange(d.addr("px"), b"x"), b"");
    assert!(
        d.wait_log("no upstream answered", SECS),
        "log:\n{}",
        d.log()
    );
    let log = d.log();
    assert!(
        log.contains(&refused) && log.contains(&other) && log.contains("refused"),
        "{log}"
    );

    // Round-robin: connections alternate; order: always the first.
    let b = named("b");
    for (balance, want) in [("round-robin", "abab"), ("order", "aaaa")] {
        // The round-robin counter goes to the test's directory.
        let d = proxy_with(
            &[
                "tcp",
                "--balance",
                balance,
                "--to",
                &a.to(),
                "--to",
                &b.to(),
            ],
            "env = { XDG_RUNTIME_DIR = \"{dir}\" }\n",
        );
        let got: String = (0..4)
            .map(|_| String::from_utf8(exchange(d.addr("px"), b"")).unwrap())
            .collect();
        if balance == "order" {
            assert_eq!(got, want, "{balance}");
        } else {
            assert!(got == "abab" || got == "baba", "{balance}: {got}");
        }
    }
}

#[test]
fn tcp_sends_a_proxy_header_the_upstream_parses() {
    // The upstream is jawasd's PROXY-protocol stage in front of the probe
    // engine, which reports the client address it was given.
    let probe_port = free_port();
    for version in ["v1", "v2"] {
        let probe = format!(
            "[services.probe]\nlisten = \"127.0.0.1:{probe_port}\"\n\
             engine = \"{{bin}}/jawas-test-probe\"\nproxy_protocol = true\n\
             proxy_from = [\"127.0.0.0/8\"]\n"
        );
        let d = proxy_with(
            &[
                "tcp",
                "--send-proxy",
                version,
                "--to",
                &format!("127.0.0.1:{probe_port}"),
            ],
            &probe,
        );
        let mut c = connect(d.addr("px"));
        let me = c.local_addr().unwrap();
        c.write_all(b"info\n").unwrap();
        let facts = String::from_utf8(read_all(&mut c)).unwrap();
        assert!(
            facts.contains("TCPREMOTEIP=127.0.0.1 ")
                && facts.contains(&format!("TCPREMOTEPORT={} ", me.port()))
                && facts.contains(&format!("TCPLOCALPORT={} ", d.addr("px").port())),
            "{version}: the probe should see the client {me}, not the proxy: {facts}"
        );
    }
}

// ---------------------------------------------------------------------
// HTTP: a small upstream application.

/// A request as the upstream received it.
struct Got {
    method: String,
    target: String,
    /// The head as received (request line and fields), lossily as text.
    head: String,
    body: Vec<u8>,
}

impl Got {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// Reads one request (head and body, Content-Length or chunked); `None`
/// at the end of the connection.
fn read_request(r: &mut BufReader<TcpStream>) -> Option<Got> {
    let mut raw = Vec::new();
    loop {
        let before = raw.len();
        if r.read_until(b'\n', &mut raw).ok()? == 0 {
            return None;
        }
        if &raw[before..] == b"\r\n" {
            break;
        }
    }
    let head = String::from_utf8_lossy(&raw).into_owned();
    let mut first = head.split(' ');
    let (method, target) = (first.next()?.to_string(), first.next()?.to_string());
    let mut got = Got {
        method,
        target,
        head,
        body: Vec::new(),
    };
    if let Some(n) = got.header("Content-Length") {
        got.body = vec![0; n.parse().ok()?];
        r.read_exact(&mut got.body).ok()?;
    } else if got.header("Transfer-Encoding").as_deref() == Some("chunked") {
        loop {
            let mut line = String::new();
            r.read_line(&mut line).ok()?;
            let size = usize::from_str_radix(line.trim(), 16).ok()?;
            if size == 0 {
                r.read_line(&mut line).ok()?;
                break;
            }
            let mut piece = vec![0; size + 2];
            r.read_exact(&mut piece).ok()?;
            got.body.extend_from_slice(&piece[..size]);
        }
    }
    Some(got)
}

fn sized(status: &str, extra: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// The test application, by path:
/// - `/echo`: the request head it received, as the body;
/// - `/body`: the request body back (`?chunked`: in two chunks);
/// - `/big?N`: N bytes;
/// - `/headers`: hop-by-hop, repeated and non-UTF-8 fields;
/// - `/redirect`: 302 to `http://HOST/login` (HOST as received);
/// - `/close`: answers with `Connection: close` and closes.
fn app(s: TcpStream) {
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    while let Some(req) = read_request(&mut r) {
        let path = req.target.split('?').next().unwrap_or("");
        let query = req.target.split_once('?').map(|(_, q)| q).unwrap_or("");
        let head_only = req.method == "HEAD";
        let out = match path {
            "/echo" | "/app/echo" => sized("200 OK", "", req.head.as_bytes()),
            "/body" if query == "chunked" => {
                let (a, b) = req.body.split_at(req.body.len() / 2);
                let mut out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
                for piece in [a, b] {
                    out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                    out.extend_from_slice(piece);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"0\r\n\r\n");
                out
            }
            "/body" => sized("200 OK", "", &req.body),
            "/big" => {
                let n: u64 = query.parse().unwrap();
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n");
                if w.write_all(head.as_bytes()).is_err() {
                    return;
                }
                let piece = vec![b'x'; 1 << 20];
                let mut left = n;
                while left > 0 && !head_only {
                    let k = left.min(piece.len() as u64) as usize;
                    if w.write_all(&piece[..k]).is_err() {
                        return;
                    }
                    left -= k as u64;
                }
                continue;
            }
            "/headers" => b"HTTP/1.1 200 OK\r\nConnection: X-Hop\r\nX-Hop: secret\r\n\
                Keep-Alive: timeout=5\r\nSet-Cookie: a=1\r\nX-Raw: caf\xe9 \xff\r\n\
                Set-Cookie: b=2\r\nDate: Thu, 01 Jan 2015 00:00:00 GMT\r\nServer: app\r\n\
                Content-Length: 2\r\n\r\nok"
                .to_vec(),
            "/redirect" => {
                let host = req.header("Host").unwrap_or_default();
                sized(
                    "302 Found",
                    &format!("Location: http://{host}/login\r\n"),
                    b"",
                )
            }
            "/close" => {
                let _ = w.write_all(&sized("200 OK", "Connection: close\r\n", b"closing"));
                return;
            }
            _ => sized("404 Not Found", "", b"no such path"),
        };
        let out = if head_only {
            let end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            out[..end].to_vec()
        } else {
            out
        };
        if w.write_all(&out).is_err() {
            return;
        }
    }
}

/// A response read to the end of the connection: status line and fields
/// (as text), the body with chunked framing removed, and whether the
/// body was complete (its length or its last chunk arrived).
struct Resp {
    head: String,
    body: Vec<u8>,
    complete: bool,
}

impl Resp {
    fn status(&self) -> u16 {
        self.head[9..12].parse().unwrap()
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

fn parse_response(raw: &[u8], head_request: bool) -> Resp {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {:?}", String::from_utf8_lossy(raw)))
        + 4;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut rest = &raw[end..];
    let mut r = Resp {
        head,
        body: Vec::new(),
        complete: false,
    };
    if head_request {
        r.complete = rest.is_empty();
        return r;
    }
    if r.header("Transfer-Encoding") == Some("chunked") {
        loop {
            let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
                return r;
            };
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap(), 16).unwrap();
            rest = &rest[eol + 2..];
            if size == 0 {
                r.complete = rest.starts_with(b"\r\n");
                return r;
            }
            if rest.len() < size + 2 {
                r.body.extend_from_slice(rest);
                return r;
            }
            r.body.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
    }
    r.body = rest.to_vec();
    r.complete = match r.header("Content-Length") {
        Some(n) => n.parse::<usize>().unwrap() == r.body.len(),
        None => true,
    };
    r
}

/// Sends `request` (raw bytes) and reads the answer to EOF.
fn ask(addr: SocketAddr, request: &[u8]) -> Resp {
    let mut c = connect(addr);
    c.write_all(request).unwrap();
    parse_response(&read_all(&mut c), request.starts_with(b"HEAD "))
}

fn get(addr: SocketAddr, path: &str, fields: &str) -> Resp {
    ask(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: front.example\r\n{fields}Connection: close\r\n\r\n")
            .as_bytes(),
    )
}

#[test]
fn http_passes_requests_with_forwarding_fields_and_without_hop_by_hop() {
    let up = upstream(app);
    for spawn in ["", "spawn = \"zygote\"\n"] {
        let d = proxy_with(&["http", "--to", &up.to()], spawn);
        let addr = d.addr("px");
        let r = get(
            addr,
            "/echo?q=1",
            "X-Forwarded-For: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\nConnection: X-Secret\r\n\
             X-Secret: 1\r\nCookie: a=1\r\nCookie: b=2\r\nTE: trailers\r\n",
        );
        assert_eq!(r.status(), 200, "{spawn}");
        let seen = String::from_utf8(r.body).unwrap();
        let want = "GET /echo?q=1 HTTP/1.1\r\nHost: front.example\r\nCookie: a=1\r\n\
            Cookie: b=2\r\nX-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\n\
            X-Forwarded-Host: front.example\r\n\
            Forwarded: for=127.0.0.1;host=front.example;proto=http\r\n\r\n";
        assert_eq!(seen, want, "{spawn}");
    }
    // Trusted: the chain is extended; --host replaces Host.
    let d = proxy(&[
        "http",
        "--to",
        &up.to(),
        "--trust-forwarded",
        "--host",
        "app.internal",
    ]);
    let r = get(d.addr("px"), "/echo", "X-Forwarded-For: 10.1.1.1\r\n");
    let seen = String::from_utf8(r.body).unwrap();
    assert!(
        seen.contains("Host: app.internal\r\n")
            && seen.contains("X-Forwarded-For: 10.1.1.1, 127.0.0.1\r\n")
            && seen.contains("X-Forwarded-Host: front.example\r\n"),
        "{seen}"
    );
}

#[test]
fn http_fails_over_reaches_unix_sockets_and_sends_a_proxy_header() {
    // A refused upstream is skipped.
    let up = upstream(app);
    let d = proxy(&["http", "--to", &closed_port(), "--to", &up.to()]);
    assert_eq!(get(d.addr("px"), "/echo", "").status(), 200);

    // A Unix socket upstream.
    let dir = TempDir::new();
    let sock = dir.path().join("app.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { break };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let _ = s.write_all(&sized("200 OK", "", b"over a unix socket"));
        }
    });
    let d = proxy(&["http", "--to", sock.to_str().unwrap()]);
    assert_eq!(get(d.addr("px"), "/", "").body, b"over a unix socket");

    // --send-proxy in http mode: the header starts the upstream connection.
    let up = upstream(|s| {
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        if read_request(&mut r).is_some() {
            let _ = w.write_all(&sized("200 OK", "", line.as_bytes()));
        }
    });
    let d = proxy(&["http", "--to", &up.to(), "--send-proxy", "v1"]);
    let mut c = connect(d.addr("px"));
    let me = c.local_addr().unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        .unwrap();
    let r = parse_response(&read_all(&mut c), false);
    assert_eq!(
        String::from_utf8(r.body).unwrap(),
        format!(
            "PROXY TCP4 127.0.0.1 127.0.0.1 {} {}\r\n",
            me.port(),
            d.addr("px").port()
        )
    );
}

#[test]
fn http_bodies_both_ways_in_both_framings_and_head() {
    let up = upstream(app);
    let d = proxy(&["http", "--to", &up.to()]);
    let addr = d.addr("px");
    let body: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    for (label, framing, query) in [
        ("length/length", "length", ""),
        ("length/chunked", "length", "?chunked"),
        ("chunked/length", "chunked", ""),
        ("chunked/chunked", "chunked", "?chunked"),
    ] {
        let mut req =
            format!("POST /body{query} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n").into_bytes();
        if framing == "length" {
            req.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
            req.extend_from_slice(&body);
        } else {
            req.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
            for piece in body.chunks(70_000) {
                req.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                req.extend_from_slice(piece);
                req.extend_from_slice(b"\r\n");
            }
            req.extend_from_slice(b"0\r\n\r\n");
        }
        let r = ask(addr, &req);
        assert_eq!(r.status(), 200, "{label}");
        assert!(r.complete, "{label}: {}", r.head);
        assert!(
            r.body == body,
            "{label}: body differs ({} bytes)",
            r.body.len()
        );
    }
    // Expect: 100-continue: the proxy answers it, then passes the body.
    let mut c = connect(addr);
    c.write_all(
        b"POST /body HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\
          Expect: 100-continue\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut interim = [0u8; 25];
    c.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    c.write_all(b"ping").unwrap();
    let r = parse_response(&read_all(&mut c), false);
    assert_eq!((r.status(), r.body.as_slice()), (200, b"ping".as_slice()));

    // HEAD: the upstream's length, no body.
    let r = ask(
        addr,
        b"HEAD /big?12345 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(
        (r.status(), r.header("Content-Length")),
        (200, Some("12345"))
    );
    assert!(r.complete, "no body after HEAD");
    // curl, a real client, agrees.
    let out = Command::new("curl")
        .args(["-sS", "--data-binary", "@-", &format!("http://{addr}/body")])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(b"from curl")?;
            c.wait_with_output()
        })
        .expect("curl (Debian package curl)");
    assert_eq!(out.stdout, b"from curl");
}

#[test]
fn http_response_fields_pass_byte_for_byte_without_hop_by_hop() {
    let up = upstream(app);
    let d = proxy(&["http", "--to", &up.to()]);
    let mut c = connect(d.addr("px"));
    c.write_all(b"GET /headers HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        .unwrap();
    let raw = read_all(&mut c);
    let text = String::from_utf8_lossy(&raw);
    let raw_field = b"\r\nX-Raw: caf\xe9 \xff\r\n";
    assert!(
        raw.windows(raw_field.len()).any(|w| w == raw_field),
        "non-UTF-8 value unchanged: {text}"
    );
    let cookies: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("Set-Cookie"))
        .collect();
    assert_eq!(cookies, ["Set-Cookie: a=1", "Set-Cookie: b=2"]);
    assert!(
        !text.contains("X-Hop") && !text.contains("Keep-Alive"),
        "{text}"
    );
    assert_eq!(text.matches("\r\nDate: ").count(), 1, "{text}");
    assert!(
        text.contains("\r\nDate: Thu, 01 Jan 2015 00:00:00 GMT\r\n"),
        "{text}"
    );
    assert!(
        text.contains("\r\nServer: app\r\n") && !text.contains("jawas"),
        "{text}"
    );
    assert!(text.ends_with("\r\n\r\nok"), "{text}");
}

#[test]
fn http_keeps_one_upstream_connection_per_client_connection() {
    let up = upstream(app);
    let d = proxy(&["http", "--to", &up.to()]);
    let url = |p: &str| format!("http://{}{p}", d.addr("px"));
    let out = Command::new("curl")
        .args(["-sS", &url("/echo"), &url("/body"), &url("/echo")])
        .output()
        .expect("curl (Debian package curl)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(up.count(), 1, "three requests, one upstream connection");
    // An upstream that closes between requests: opened again.
    let out = Command::new("curl")
        .args(["-sS", &url("/close"), &url("/echo")])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("closing") && text.contains("GET /echo"),
        "{text}"
    );
    assert_eq!(up.count(), 3);
}

#[test]
fn http_retries_only_idempotent_requests_on_a_connection_closed_under_it() {
    // The first upstream connection answers one request, then closes when
    // the second arrives (as a server closing an idle connection at that
    // very moment would); later connections answer normally.
    let first = Arc::new(AtomicUsize::new(0));
    let up = upstream(move |s| {
        let nth = first.fetch_add(1, Ordering::SeqCst);
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        let mut served = 0;
        while let Some(req) = read_request(&mut r) {
            if nth == 0 && served == 1 {
                return;
            }
            let body = format!("{} on connection {nth}", req.method);
            let _ = w.write_all(&sized("200 OK", "", body.as_bytes()));
            served += 1;
        }
    });
    let d = proxy(&["http", "--to", &up.to()]);
    let mut c = connect(d.addr("px"));
    let mut r = BufReader::new(c.try_clone().unwrap());
    let mut exchange_one = |req: &str| -> (u16, String) {
        c.write_all(req.as_bytes()).unwrap();
        let mut head = String::new();
        loop {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            head.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        let resp = Resp {
            head,
            body: Vec::new(),
            complete: false,
        };
        let n: usize = resp.header("Content-Length").unwrap().parse().unwrap();
        let mut body = vec![0; n];
        r.read_exact(&mut body).unwrap();
        (resp.status(), String::from_utf8(body).unwrap())
    };
    let get = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    assert_eq!(exchange_one(get), (200, "GET on connection 0".into()));
    assert_eq!(
        exchange_one(get),
        (200, "GET on connection 1".into()),
        "GET resent"
    );
    // The same trap for a POST: not resent, 502.
    let first = Arc::new(AtomicUsize::new(0));
    let up = upstream(move |s| {
        let nth = first.fetch_add(1, Ordering::SeqCst);
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        let mut served = 0;
        while read_request(&mut r).is_some() {
            if nth == 0 && served == 1 {
                return;
            }
            let _ = w.write_all(&sized("200 OK", "", b"ok"));
            served += 1;
        }
    });
    let d = proxy(&["http", "--to", &up.to()]);
    let url = format!("http://{}/", d.addr("px"));
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} ",
            &url,
            "-o",
            "/dev/null",
            "-d",
            "x",
            &url,
        ])
        .output()
        .expect("curl (Debian package curl)");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200 502 ");
    assert_eq!(up.count(), 1, "the POST was not sent again");
}

#[test]
fn http_reopens_an_upstream_connection_closed_while_idle() {
    // Each upstream connection answers one request (saying nothing of
    // closing) and closes: a POST a second later must go out on a new one,
    // not fail on the dead one (a POST is never sent twice, so the close
    // must be noticed before it is sent).
    let up = upstream(|s| {
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        if let Some(req) = read_request(&mut r) {
            let _ = w.write_all(&sized("200 OK", "", req.method.as_bytes()));
        }
    });
    let d = proxy(&["http", "--to", &up.to()]);
    let mut c = connect(d.addr("px"));
    c.write_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    let mut buf = [0u8; 256];
    let n = c.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).ends_with("GET"));
    std::thread::sleep(Duration::from_millis(1300));
    c.write_all(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx")
        .unwrap();
    let r = parse_response(&read_all(&mut c), false);
    assert_eq!((r.status(), r.body.as_slice()), (200, b"POST".as_slice()));
}

#[test]
fn http_rewrites_location_and_strips_a_prefix() {
    let up = upstream(app);
    let d = proxy(&["http", "--to", &up.to(), "--strip-prefix", "/app"]);
    let addr = d.addr("px");
    let r = get(addr, "/app/redirect", "");
    assert_eq!(r.status(), 302);
    assert_eq!(r.header("Location"), Some("/app/login"));
    let r = get(addr, "/app/echo?x", "");
    assert!(
        String::from_utf8_lossy(&r.body).starts_with("GET /echo?x HTTP/1.1"),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(get(addr, "/elsewhere", "").status(), 404);
    let d = proxy(&["http", "--to", &up.to(), "--strip-prefix", "/app=/app"]);
    let r = get(d.addr("px"), "/app/echo", "");
    assert!(String::from_utf8_lossy(&r.body).starts_with("GET /app/echo "));
}

/// The peak resident memory of `pid`, in kB.
fn vm_hwm(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn http_streams_a_1_gb_response_in_bounded_memory() {
    const N: u64 = 1 << 30;
    let up = upstream(app);
    let d = proxy(&["http", "--to", &up.to()]);
    let mut c = connect(d.addr("px"));
    c.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    c.write_all(
        format!("GET /big?{N} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    let mut peak = None;
    loop {
        let n = c.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        total += n as u64;
        if peak.is_none() && total > N / 2 {
            let engines: Vec<i32> = d.children().iter().map(|(pid, _)| *pid).collect();
            assert_eq!(engines.len(), 1, "one engine: {engines:?}");
            peak = Some(vm_hwm(engines[0]));
        }
    }
    let head_len = {
        // The head is a few hundred bytes; the rest is the body.
        total - N
    };
    assert!(head_len < 1024, "{total} bytes for a {N}-byte body");
    let peak = peak.unwrap();
    assert!(
        peak < 8 * 1024,
        "engine peak memory {peak} kB half way through 1 GB"
    );
}

#[test]
fn http_server_sent_events_arrive_as_written() {
    // Each event is written only after the client has seen the one
    // before: a proxy that buffered would stall this test.
    let (seen_tx, seen_rx) = mpsc::channel::<()>();
    let seen_rx = std::sync::Mutex::new(seen_rx);
    let up = upstream(move |s| {
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        if read_request(&mut r).is_none() {
            return;
        }
        let _ = w.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
        );
        let seen = seen_rx.lock().unwrap();
        for i in 0..3 {
            let event = format!("data: event {i}\n\n");
            let _ = w.write_all(format!("{:x}\r\n{event}\r\n", event.len()).as_bytes());
            if seen.recv_timeout(SECS).is_err() {
                return;
            }
        }
        let _ = w.write_all(b"0\r\n\r\n");
    });
    let d = proxy(&["http", "--to", &up.to()]);
    let mut c = connect(d.addr("px"));
    c.write_all(b"GET /events HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut r = BufReader::new(c);
    let started = Instant::now();
    for i in 0..3 {
        let mut line = String::new();
        while !line.starts_with("data:") {
            line.clear();
            assert!(
                r.read_line(&mut line).unwrap() > 0,
                "ended before event {i}"
            );
        }
        assert_eq!(line, format!("data: event {i}\n"));
        seen_tx.send(()).unwrap();
    }
    assert!(started.elapsed() < SECS);
}

#[test]
fn http_upstream_failures_are_502_and_504_and_never_truncated_successes() {
    // Nobody listening: 502, reason logged.
    let d = proxy(&["http", "--to", &closed_port()]);
    assert_eq!(get(d.addr("px"), "/", "").status(), 502);
    assert!(
        d.wait_log("502", SECS) && d.log().contains("refused"),
        "{}",
        d.log()
    );

    // No answer in time: 504.
    let up = upstream(|s| {
        let mut r = BufReader::new(s);
        let _ = read_request(&mut r);
        std::thread::sleep(Duration::from_secs(4));
    });
    let d = proxy(&["http", "--to", &up.to(), "--response-timeout", "1"]);
    let started = Instant::now();
    assert_eq!(get(d.addr("px"), "/", "").status(), 504);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(d.wait_log("no response within", SECS), "{}", d.log());

    // A body that stalls past --body-timeout is cut off.
    let up = upstream(|mut s| {
        let mut r = BufReader::new(s.try_clone().unwrap());
        let _ = read_request(&mut r);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\nstart");
        std::thread::sleep(Duration::from_secs(5));
    });
    let d = proxy(&["http", "--to", &up.to(), "--body-timeout", "0.5"]);
    let started = Instant::now();
    let r = get(d.addr("px"), "/", "");
    assert!(!r.complete && r.body == b"start", "{}", r.head);
    assert!(started.elapsed() < Duration::from_secs(4));
    assert!(d.wait_log("timed out", SECS), "{}", d.log());

    // Dying within a small body (read whole before answering): 502.
    let up = upstream(|mut s| {
        let mut r = BufReader::new(s.try_clone().unwrap());
        let _ = read_request(&mut r);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly ten b");
    });
    let d = proxy(&["http", "--to", &up.to()]);
    assert_eq!(get(d.addr("px"), "/", "").status(), 502);
    assert!(d.wait_log("cut off", SECS), "{}", d.log());

    // Dying mid-body, with a large length and chunked: the client's
    // response is visibly incomplete.
    for chunked in [false, true] {
        let up = upstream(move |mut s| {
            let mut r = BufReader::new(s.try_clone().unwrap());
            let _ = read_request(&mut r);
            let out: &[u8] = if chunked {
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3\r\nwor"
            } else {
                b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\nonly ten b"
            };
            let _ = s.write_all(out);
        });
        let d = proxy(&["http", "--to", &up.to()]);
        let r = get(d.addr("px"), "/", "");
        assert_eq!(r.status(), 200);
        assert!(
            !r.complete,
            "chunked={chunked}: passed as complete: {}",
            r.head
        );
        assert!(
            d.wait_log("cut off", SECS),
            "chunked={chunked}: {}",
            d.log()
        );
        // To an HTTP/1.0 client, whose body ends with the connection,
        // the end is a reset, never a clean close.
        let mut c = connect(d.addr("px"));
        c.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        let mut buf = [0u8; 4096];
        let end = loop {
            match c.read(&mut buf) {
                Ok(0) => break "a clean close",
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break "a reset",
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(end, "a reset", "chunked={chunked}");
        // curl calls it a failed transfer too.
        let out = Command::new("curl")
            .args(["-s", &format!("http://{}/", d.addr("px"))])
            .output()
            .unwrap();
        assert!(!out.status.success(), "chunked={chunked}: curl saw success");
    }
}

#[test]
fn http_failure_reasons_never_reach_a_socket_on_stderr() {
    // stderr = "socket" (as under inetd): the reason goes to syslog, the
    // client gets only the 502.
    let d = Jawasd::start(&format!(
        "[services.px]\nlisten = \"127.0.0.1:0\"\nengine = \"jawas-proxy\"\n\
         args = [\"http\", \"--to\", \"{}\"]\nstderr = \"socket\"\n",
        closed_port()
    ));
    let mut c = connect(d.addr("px"));
    c.write_all(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        .unwrap();
    let raw = read_all(&mut c);
    let text = String::from_utf8_lossy(&raw);
    let r = parse_response(&raw, false);
    assert!(r.status() == 502 && r.complete, "{text}");
    assert!(!text.contains("jawas-proxy"), "{text}");
}

/// Whether Python's `websockets` is importable; a test needing it fails
/// with the command that installs it otherwise.
fn python_client(url: &str, body: &str) -> String {
    let prelude = "import sys\ntry:\n    from websockets.sync.client import connect\n\
                   except ImportError:\n    print('MISSING websockets')\n    sys.exit(3)\n\
                   URL = sys.argv[1]\n";
    let out = Command::new("python3")
        .arg("-c")
        .arg(format!("{prelude}{body}\n"))
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

#[test]
fn http_websocket_passes_through_the_tunnel() {
    let ws_port = free_port();
    let d = proxy_with(
        &["http", "--to", &format!("127.0.0.1:{ws_port}")],
        &format!(
            "[services.ws]\nlisten = \"127.0.0.1:{ws_port}\"\nengine = \"jawas-ws\"\n\
             args = [\"--\", \"cat\"]\n"
        ),
    );
    let out = python_client(
        &format!("ws://{}/chat", d.addr("px")),
        "with connect(URL) as ws:
    for m in ['hello', 'wörld', 'x' * 100000]:
        ws.send(m)
        got = ws.recv(timeout=10)
        print(got if len(got) < 100 else len(got))",
    );
    assert_eq!(out, "hello\nwörld\n100000\n");
}

fn git(args: &[&str], cwd: &Path) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("git (Debian package git)");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn commit(dir: &Path, msg: &str) {
    git(
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@e",
            "commit",
            "-q",
            "-m",
            msg,
        ],
        dir,
    );
}

#[test]
fn git_clone_and_push_through_the_proxy_to_git_http_backend() {
    let dir = TempDir::new();
    let repos = dir.path().join("repos");
    std::fs::create_dir(&repos).unwrap();
    let bare = repos.join("project.git");
    git(
        &["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()],
        dir.path(),
    );
    git(&["config", "http.receivepack", "true"], &bare);
    let seed = dir.path().join("seed");
    std::fs::create_dir(&seed).unwrap();
    git(&["init", "-q", "-b", "main"], &seed);
    std::fs::write(seed.join("README"), "first\n").unwrap();
    git(&["add", "README"], &seed);
    commit(&seed, "one");
    git(&["push", "-q", bare.to_str().unwrap(), "main"], &seed);
    let backend = [
        "/usr/lib/git-core/git-http-backend",
        "/usr/libexec/git-core/git-http-backend",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
    .expect("git-http-backend (Debian package git)");
    let cgi_port = free_port();
    let d = proxy_with(
        &[
            "http",
            "--to",
            &format!("127.0.0.1:{cgi_port}"),
            "--strip-prefix",
            "/code=/git",
        ],
        &format!(
            "[services.git]\nlisten = \"127.0.0.1:{cgi_port}\"\nengine = \"jawas-cgi\"\n\
             args = [\"--script\", \"{backend}\", \"--prefix\", \"/git\", \"--env\", \
             \"GIT_PROJECT_ROOT={}\", \"--env\", \"GIT_HTTP_EXPORT_ALL=1\"]\n",
            repos.display()
        ),
    );
    let url = format!("http://{}/code/project.git", d.addr("px"));
    let clone = dir.path().join("clone");
    git(&["clone", "-q", &url, clone.to_str().unwrap()], dir.path());
    assert_eq!(
        std::fs::read_to_string(clone.join("README")).unwrap(),
        "first\n"
    );
    // Big enough that git sends it chunked (over http.postBuffer).
    let big: String = (0..300_000)
        .map(|i| {
            format!(
                "line {i} of a file git cannot compress {}\n",
                (i as u64) * 7919 % 104_729
            )
        })
        .collect();
    std::fs::write(clone.join("big.txt"), big).unwrap();
    git(&["add", "big.txt"], &clone);
    commit(&clone, "two");
    git(
        &[
            "-c",
            "http.postBuffer=65536",
            "push",
            "-q",
            "origin",
            "main",
        ],
        &clone,
    );
    assert_eq!(
        git(&["log", "--format=%s", "main"], &bare).trim(),
        "two\none"
    );
}

#[test]
fn command_line_is_checked() {
    let dir = TempDir::new();
    let cases: &[(&[&str], i32, &str)] = &[
        (&["--check", "tcp", "--to", "127.0.0.1:1"], 0, "ok"),
        (
            &[
                "--check",
                "http",
                "--to",
                "/run/app.sock",
                "--strip-prefix",
                "/a",
            ],
            0,
            "ok",
        ),
        (&["--check", "tcp"], 100, "no upstream"),
        (&["--check", "--to", "h:1"], 100, "no mode"),
        (
            &["--check", "udp", "--to", "h:1"],
            100,
            "unknown mode 'udp'",
        ),
        (&["--check", "tcp", "--to", "h"], 100, "--to 'h'"),
        (
            &["--check", "tcp", "--to", "h:1", "--host", "x"],
            100,
            "--host is for http",
        ),
        (
            &["--check", "tcp", "--to", "h:1", "--no-access-log"],
            100,
            "--no-access-log is for http",
        ),
        (
            &["--check", "tcp", "--to", "/a.sock"],
            100,
            "HOST:PORT only",
        ),
        (
            &["--check", "http", "--to", "h:1", "--strip-prefix", "x"],
            100,
            "--strip-prefix 'x'",
        ),
        (
            &["--check", "http", "--to", "h:1", "--send-proxy", "v3"],
            100,
            "--send-proxy 'v3'",
        ),
        (
            &["--check", "tcp", "--to", "h:1", "--balance", "random"],
            100,
            "--balance",
        ),
    ];
    for (args, code, says) in cases {
        let (got, _, err, _) = run_engine("jawas-proxy", dir.path(), args);
        assert_eq!(got, *code, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    // Every problem is named, not only the first.
    let (got, _, err, _) = run_engine(
        "jawas-proxy",
        dir.path(),
        &[
            "--check",
            "http",
            "--to",
            "h",
            "--strip-prefix",
            "x",
            "--body-timeout",
            "0",
        ],
    );
    assert_eq!(got, 100);
    for says in ["--to 'h'", "--strip-prefix 'x'", "--body-timeout '0'"] {
        assert!(err.contains(says), "{says}: {err}");
    }
}
