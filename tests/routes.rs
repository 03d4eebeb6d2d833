//! Routes: one listener, many services, chosen by Host and path prefix;
//! keep-alive connections that cross routes are handed back to jawasd and
//! reach the right engine with every answer correct and in order. Real
//! clients: curl, a raw TcpStream, and headless Chromium loading a page,
//! its CSS and a WebSocket through one port.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use jawas_tests::browser::chromium_text;
use jawas_tests::{script, Jawasd, TempDir};

/// An engine in Python that answers one request with its route variables
/// and the request head exactly as it read it, then closes.
const ENV_ENGINE: &str = r#"#!/usr/bin/env python3
import os
head = b""
while b"\r\n\r\n" not in head:
    chunk = os.read(0, 4096)
    if not chunk:
        break
    head += chunk
keys = ["JAWAS_SERVICE", "JAWAS_ROUTER", "JAWAS_ROUTE", "JAWAS_ROUTE_PREFIX", "TCPREMOTEIP",
        "JAWAS_HANDBACK_FD"]
body = "".join("%s=%s\n" % (k, os.environ.get(k, "-")) for k in keys)
body += "head=" + head.decode("latin-1").replace("\r\n", "|") + "\n"
b = body.encode()
os.write(1, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(b) + b)
"#;

/// A front router and the services behind it, in one temp dir: `site`
/// (jawas-static in zygote mode), `assets` (jawas-static, another root),
/// `cgi` (jawas-cgi with an echo script), `env` (the Python engine above)
/// and `ws` (jawas-ws echoing). `front_keys` go into the router's table.
fn start(front_keys: &str) -> Jawasd {
    let dir = TempDir::new();
    let www = dir.path().join("www");
    std::fs::create_dir_all(www.join("users")).unwrap();
    std::fs::write(www.join("index.html"), PAGE).unwrap();
    std::fs::write(www.join("users/index.html"), "users page\n").unwrap();
    let assets = dir.path().join("assets-root/assets");
    std::fs::create_dir_all(&assets).unwrap();
    std::fs::write(assets.join("app.css"), "#out { color: rgb(1, 2, 3); }\n").unwrap();
    let cgi = dir.path().join("cgi/cgi-bin");
    std::fs::create_dir_all(&cgi).unwrap();
    script(
        &cgi,
        "echo.sh",
        "printf 'Content-Type: text/plain\\r\\n\\r\\n'\nprintf 'posted:'\nhead -c \"${CONTENT_LENGTH:-0}\"\n",
    );
    let env = dir.path().join("env.py");
    std::fs::write(&env, ENV_ENGINE).unwrap();
    std::fs::set_permissions(&env, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let config = format!(
        r#"
[server]
control = "{{dir}}/control.sock"

[services.front]
listen = "127.0.0.1:0"
{front_keys}
routes = [
  {{ path = "/", service = "site" }},
  {{ path = "/assets", service = "assets" }},
  {{ path = "/cgi-bin", service = "cgi" }},
  {{ path = "/env", service = "env" }},
  {{ path = "/us", service = "env" }},
  {{ path = "/echo", service = "ws" }},
  {{ host = "*.wild.test", path = "/", service = "env" }},
  {{ host = "exact.wild.test", path = "/", service = "assets" }},
]

[services.site]
engine = "{{bin}}/jawas-static"
args = ["--root", "{{dir}}/www"]
spawn = "zygote"

[services.assets]
engine = "{{bin}}/jawas-static"
args = ["--root", "{{dir}}/assets-root"]

[services.cgi]
engine = "{{bin}}/jawas-cgi"
args = ["--root", "{{dir}}/cgi"]

[services.env]
engine = "{{dir}}/env.py"

[services.ws]
engine = "{{bin}}/jawas-ws"
args = ["--", "cat"]
"#
    );
    Jawasd::builder(&config).dir(dir).start()
}

const PAGE: &str = r#"<!DOCTYPE html><html><head><meta charset="utf-8"><title>routes</title>
<link rel="stylesheet" href="/assets/app.css"></head><body>
<div id="out">pending</div>
<script>
const out = document.getElementById('out');
const ws = new WebSocket('ws://' + location.host + '/echo');
ws.onopen = () => ws.send('through one port');
ws.onmessage = (e) => {
  out.textContent = 'css:' + getComputedStyle(out).color + ' ws:' + e.data;
  ws.close(1000);
};
ws.onerror = () => { out.textContent = 'error'; };
</script></body></html>
"#;

/// curl: (status, body).
fn curl(args: &[&str], url: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-S", "--max-time", "20", "-w", "\n%{http_code}"])
        .args(args)
        .arg(url)
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.parse().unwrap_or(0), body.to_string())
}

fn url(d: &Jawasd, path: &str) -> String {
    format!("http://{}{path}", d.addr("front"))
}

/// Reads one response (Content-Length or chunked) from `r`: status code,
/// head, body.
fn read_response(r: &mut BufReader<TcpStream>) -> (u16, String, Vec<u8>) {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        let n = r.read_line(&mut line).expect("read head");
        assert!(n > 0, "connection closed inside a response head: {head:?}");
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let status = head[9..12].parse().expect("status code");
    let field = |name: &str| {
        head.lines()
            .find(|l| l.to_ascii_lowercase().starts_with(&format!("{name}:")))
            .map(|l| l[name.len() + 1..].trim().to_string())
    };
    let mut body = Vec::new();
    if let Some(len) = field("content-length") {
        body.resize(len.parse().unwrap(), 0);
        r.read_exact(&mut body).expect("read body");
    } else if field("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).unwrap();
            let n = usize::from_str_radix(size.trim(), 16).expect("chunk size");
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).unwrap();
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    (status, head, body)
}

fn connect(addr: SocketAddr) -> (TcpStream, BufReader<TcpStream>) {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let r = BufReader::new(s.try_clone().unwrap());
    (s, r)
}

#[test]
fn hosts_and_prefixes_pick_the_service() {
    let d = start("");
    let (code, body) = curl(&[], &url(&d, "/"));
    assert_eq!(code, 200);
    assert!(body.contains("<title>routes</title>"), "{body}");
    // Whole segments: /users is the site's, /us and /us/x the env engine's.
    assert_eq!(curl(&[], &url(&d, "/users/")), (200, "users page\n".into()));
    let (code, body) = curl(&[], &url(&d, "/us/x?q=1"));
    assert_eq!(code, 200);
    assert!(body.contains("JAWAS_ROUTE=/us\n"), "{body}");
    assert!(body.contains("JAWAS_ROUTE_PREFIX=/us\n"), "{body}");
    assert!(body.contains("JAWAS_SERVICE=env\n"), "{body}");
    assert!(body.contains("JAWAS_ROUTER=front\n"), "{body}");
    assert!(body.contains("JAWAS_HANDBACK_FD=3\n"), "{body}");
    // A client that says this is its last request gets no hand-back
    // socket: none can be needed.
    for close in [&["-H", "Connection: close"][..], &["--http1.0"]] {
        let (_, body) = curl(close, &url(&d, "/us"));
        assert!(body.contains("JAWAS_ROUTE=/us\n"), "{body}");
        assert!(body.contains("JAWAS_HANDBACK_FD=-\n"), "{close:?}: {body}");
    }
    // The engine read the request exactly as the client sent it.
    assert!(
        body.contains("head=GET /us/x?q=1 HTTP/1.1|Host: 127.0.0.1:"),
        "{body}"
    );
    // Matching is on the decoded, resolved path, as nginx's locations.
    let (_, body) = curl(&["--path-as-is"], &url(&d, "/assets/../env/%61"));
    assert!(body.contains("JAWAS_ROUTE=/env\n"), "{body}");
    assert!(
        body.contains("head=GET /assets/../env/%61 HTTP/1.1"),
        "{body}"
    );
    // Hosts: an exact name beats a wildcard, which beats the default.
    let (_, body) = curl(&["-H", "Host: a.wild.test"], &url(&d, "/x"));
    assert!(body.contains("JAWAS_ROUTE=*.wild.test/\n"), "{body}");
    assert!(body.contains("JAWAS_ROUTE_PREFIX=\n"), "{body}");
    let (code, body) = curl(
        &["-H", "Host: EXACT.wild.test."],
        &url(&d, "/assets/app.css"),
    );
    assert_eq!(
        (code, body.as_str()),
        (200, "#out { color: rgb(1, 2, 3); }\n")
    );
    // Bad requests never reach an engine.
    let (code, _) = curl(&["-H", "Host: bad host"], &url(&d, "/"));
    assert_eq!(code, 400);
    // Too long, too many fields: the statuses an engine (or nginx) gives.
    let long = format!("/{}", "a".repeat(20_000));
    assert_eq!(curl(&[], &url(&d, &long)).0, 414);
    let mut many: Vec<String> = Vec::new();
    for i in 0..150 {
        many.extend(["-H".into(), format!("X-F{i}: v")]);
    }
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_eq!(curl(&many, &url(&d, "/")).0, 431);
    assert!(
        d.wait_log("route svc=front", Duration::from_secs(5)),
        "{}",
        d.log()
    );
    // The router's counters: what it routed, what it answered itself.
    let out = Command::new(jawas_tests::bin("jawasd"))
        .args(["ctl", "--json", "--socket"])
        .arg(d.dir().join("control.sock"))
        .arg("status")
        .output()
        .unwrap();
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let front = status["services"]
        .as_array()
        .and_then(|l| l.iter().find(|s| s["name"] == "front"))
        .unwrap_or_else(|| panic!("no front in {status}"));
    // Eight requests routed, one answered 400 by jawasd.
    assert_eq!(front["accepted"], 8, "{front}");
    assert_eq!(front["refused_by"]["route_bad_request"], 3, "{front}");
}

#[test]
fn unmatched_requests_get_404_421_or_the_fallback() {
    let dir = TempDir::new();
    let env = dir.path().join("env.py");
    std::fs::write(&env, ENV_ENGINE).unwrap();
    std::fs::set_permissions(&env, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let d = Jawasd::builder(
        r#"
[services.strict]
listen = "127.0.0.1:0"
routes = [{ host = "a.test", path = "/app", service = "env" }]
route_timeout = "1s"

[services.lenient]
listen = "127.0.0.1:0"
routes = [{ host = "a.test", path = "/app", service = "env" }]
route_fallback = "env"

[services.env]
engine = "{dir}/env.py"
"#,
    )
    .dir(dir)
    .start();
    let strict = format!("http://{}", d.addr("strict"));
    let (code, body) = curl(&["-H", "Host: b.test"], &format!("{strict}/app"));
    assert_eq!((code, body.as_str()), (421, "421 Misdirected Request\n"));
    let (code, body) = curl(&["-H", "Host: a.test"], &format!("{strict}/apps"));
    assert_eq!((code, body.as_str()), (404, "404 Not Found\n"));
    let (code, body) = curl(&["-H", "Host: a.test"], &format!("{strict}/app/x"));
    assert_eq!(code, 200);
    assert!(body.contains("JAWAS_ROUTE=a.test/app\n"), "{body}");
    let lenient = format!("http://{}", d.addr("lenient"));
    let (code, body) = curl(&["-H", "Host: b.test"], &format!("{lenient}/other"));
    assert_eq!(code, 200);
    assert!(body.contains("JAWAS_ROUTE=fallback\n"), "{body}");
    // A silent client is answered 408 at route_timeout.
    let (_, mut r) = connect(d.addr("strict"));
    let (code, _, _) = read_response(&mut r);
    assert_eq!(code, 408);
    // Refusals are logged with their reason.
    assert!(d.wait_log("refuse svc=strict", Duration::from_secs(5)));
    assert!(d.log().contains("route_timeout"), "{}", d.log());
    assert!(d.log().contains("route_host"), "{}", d.log());
    assert!(d.log().contains("route_none"), "{}", d.log());
}

#[test]
fn a_keep_alive_connection_crosses_routes_in_order() {
    let d = start("");
    let (mut s, mut r) = connect(d.addr("front"));
    // Route 1 (a zygote's child), route 2 with a POST body, route 1
    // again, route 3 (an engine that is not jawas-http's and closes).
    s.write_all(b"GET /users/ HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (code, _, body) = read_response(&mut r);
    assert_eq!((code, body.as_slice()), (200, &b"users page\n"[..]));
    s.write_all(
        b"POST /cgi-bin/echo.sh HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello route",
    )
    .unwrap();
    let (code, head, body) = read_response(&mut r);
    assert_eq!(code, 200, "{head}");
    assert_eq!(String::from_utf8_lossy(&body), "posted:hello route");
    s.write_all(b"GET /assets/app.css HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (code, _, body) = read_response(&mut r);
    assert_eq!(
        (code, String::from_utf8_lossy(&body).as_ref()),
        (200, "#out { color: rgb(1, 2, 3); }\n")
    );
    s.write_all(b"GET /users/ HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (code, _, body) = read_response(&mut r);
    assert_eq!((code, body.as_slice()), (200, &b"users page\n"[..]));
    // A head bigger than the engine's first read buffer (cookies) is
    // still seen whole before it is handed on.
    let cookie = "c".repeat(9000);
    s.write_all(
        format!("GET /env HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nX-Last: yes\r\n\r\n")
            .as_bytes(),
    )
    .unwrap();
    let (code, _, body) = read_response(&mut r);
    let body = String::from_utf8_lossy(&body);
    assert_eq!(code, 200);
    assert!(
        body.contains(&format!(
            "head=GET /env HTTP/1.1|Host: x|Cookie: {cookie}|X-Last: yes||"
        )),
        "{body}"
    );
    assert!(body.contains("TCPREMOTEIP=127.0.0.1\n"), "{body}");
    // Five answers from four engines, on one connection.
    for svc in ["site", "cgi", "assets", "env"] {
        assert!(
            d.wait_log(&format!("done svc={svc}"), Duration::from_secs(5)),
            "{svc}: {}",
            d.log()
        );
    }
    // curl sees one connection for three routes.
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-o",
            "/dev/null",
            "-o",
            "/dev/null",
        ])
        .args(["-w", "%{num_connects} %{http_code}\n"])
        .args([
            url(&d, "/"),
            url(&d, "/cgi-bin/echo.sh"),
            url(&d, "/assets/app.css"),
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "1 200\n0 200\n0 200\n",
        "connections per request"
    );
}

#[test]
fn a_pipelined_request_for_another_route_closes_after_the_first_answer() {
    let d = start("");
    let (mut s, mut r) = connect(d.addr("front"));
    s.write_all(
        b"GET /users/ HTTP/1.1\r\nHost: x\r\n\r\nGET /assets/app.css HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .unwrap();
    let (code, _, body) = read_response(&mut r);
    assert_eq!((code, body.as_slice()), (200, &b"users page\n"[..]));
    // Its bytes were read already: the connection ends cleanly, and the
    // client sends the request again on a new one.
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
}

#[test]
fn the_proxy_header_address_survives_a_hand_back() {
    // The router behind a load balancer that sends PROXY headers.
    let d = start("proxy_protocol = true\nproxy_from = [\"127.0.0.0/8\"]");
    let (mut s, mut r) = connect(d.addr("front"));
    s.write_all(
        b"PROXY TCP4 192.0.2.7 127.0.0.1 5555 80\r\nGET /users/ HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .unwrap();
    let (code, _, body) = read_response(&mut r);
    assert_eq!((code, body.as_slice()), (200, &b"users page\n"[..]));
    s.write_all(b"GET /env HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (_, _, body) = read_response(&mut r);
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains("TCPREMOTEIP=192.0.2.7\n"), "{body}");
    assert!(body.contains("head=GET /env HTTP/1.1|"), "{body}");
}

#[test]
fn a_page_its_css_and_a_websocket_through_one_port_in_chromium() {
    let d = start("");
    assert_eq!(
        chromium_text(&url(&d, "/")),
        "css:rgb(1, 2, 3) ws:through one port"
    );
    assert!(
        d.wait_log("done svc=ws", Duration::from_secs(5)),
        "{}",
        d.log()
    );
}

fn check(config: &str) -> String {
    let dir = TempDir::new();
    let path = dir.path().join("jawasd.toml");
    std::fs::write(&path, config).unwrap();
    let out = Command::new(jawas_tests::bin("jawasd"))
        .arg("--check")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success(), "--check accepted:\n{config}");
    String::from_utf8_lossy(&out.stderr).replace(&path.display().to_string(), "FILE")
}

#[test]
fn route_mistakes_are_named_with_file_and_line() {
    let err = check(
        r#"[services.front]
listen = "127.0.0.1:0"
routes = [
  { path = "/", service = "web" },
  { path = "/", service = "web" },
  { path = "/a", service = "wbe" },
  { host = "*.example.*", path = "/", service = "web" },
  { host = "example.org:80", service = "web" },
  { path = "/x", service = "udp" },
  { path = "no-slash", service = "web" },
]
route_fallback = "nobody"

[services.web]
engine = "jawas-builtin"
args = ["echo"]

[services.udp]
listen = "127.0.0.1:0"
protocol = "udp"
engine = "jawas-builtin"
args = ["echo"]

[services.orphan]
engine = "jawas-builtin"
args = ["echo"]
"#,
    );
    for want in [
        "FILE:5: services.front.routes[1]: '/' is already routed at line 4",
        "FILE:6: services.front.routes[2]: no service named 'wbe'; did you mean 'web'?",
        "FILE:7: services.front.routes[3].host: '*.example.*'",
        "FILE:8: services.front.routes[4].host: 'example.org:80' has a port",
        "FILE:9: services.front.routes[5]: 'udp' is a udp or wait service",
        "FILE:10: services.front.routes[6].path: 'no-slash': a path prefix starts with '/'",
        "FILE:12: services.front.route_fallback: no service named 'nobody'",
        "FILE:24: services.orphan: missing key 'listen'",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    let err = check(
        "[services.front]\nlisten = \"127.0.0.1:0\"\nengine = \"jawas-builtin\"\nroutes = [{ path = \"/\", service = \"front\" }]\n",
    );
    assert!(
        err.contains("FILE:3: services.front: a service with routes starts no engine itself"),
        "{err}"
    );
}

#[test]
fn an_engine_cannot_hand_back_a_connection_of_its_own() {
    let dir = TempDir::new();
    // Hands back a connection it opened itself instead of its client's.
    script(
        dir.path(),
        "forger",
        "exec python3 -c '\nimport os, socket, time\nhb = socket.socket(fileno=int(os.environ[\"JAWAS_HANDBACK_FD\"]))\nother = socket.create_connection((\"127.0.0.1\", int(os.environ[\"TCPLOCALPORT\"])))\nsocket.send_fds(hb, [b\"H\"], [other.fileno()])\ntime.sleep(1)\n'",
    );
    let d = Jawasd::builder(
        "[services.front]\nlisten = \"127.0.0.1:0\"\nroutes = [{ path = \"/\", service = \"forger\" }]\n\n[services.forger]\nengine = \"{dir}/forger\"\n",
    )
    .dir(dir)
    .start();
    let (mut s, mut r) = connect(d.addr("front"));
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(
        d.wait_log(
            "a hand-back carried something other than this client's TCP connection; dropped",
            Duration::from_secs(10)
        ),
        "{}",
        d.log()
    );
    let mut rest = Vec::new();
    let _ = r.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
}

/// Sends `first` and reads its answer, then `second` on the same
/// connection: the status of the second answer (0 if the connection
/// closed without one).
fn two_requests(addr: SocketAddr, first: &str, second: &str) -> u16 {
    let (mut s, mut r) = connect(addr);
    s.write_all(first.as_bytes()).unwrap();
    // The first answer whole (its status checked by the caller's second),
    // without panicking here, so the caller can show jawasd's log.
    let answered =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read_response(&mut r).0));
    if !matches!(answered, Ok(200)) {
        return 1;
    }
    s.write_all(second.as_bytes()).unwrap();
    let mut line = String::new();
    if r.read_line(&mut line).unwrap_or(0) == 0 {
        return 0;
    }
    line[9..12].parse().unwrap()
}

#[test]
fn router_and_engines_never_disagree_on_a_request() {
    let d = start("");
    let addr = d.addr("front");
    let first = "GET /users/ HTTP/1.1\r\nHost: x\r\n\r\n";
    // A fragment in the target: routers cut there, file engines did not.
    for target in ["/x#/../env", "http://x#/../env"] {
        let (mut s, mut r) = connect(addr);
        s.write_all(format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .unwrap();
        assert_eq!(read_response(&mut r).0, 400, "{target}");
        let req = format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(
            two_requests(addr, first, &req),
            400,
            "{target} on keep-alive"
        );
    }
    // A Host jawasd cannot read is its to answer, on a later request too.
    let bad_host = "GET /env HTTP/1.1\r\nHost: a..b\r\n\r\n";
    assert_eq!(two_requests(addr, first, bad_host), 400);
    // The target's authority and Host must agree.
    let mismatch = "GET http://exact.wild.test/ HTTP/1.1\r\nHost: x.wild.test\r\n\r\n";
    assert_eq!(two_requests(addr, first, mismatch), 400);
    // More fields than a small peek would take: still routed.
    let fields: String = (0..70).map(|i| format!("X-H{i}: v\r\n")).collect();
    let many = format!("GET /env HTTP/1.1\r\nHost: x\r\n{fields}\r\n");
    assert_eq!(two_requests(addr, first, &many), 200);
}

#[test]
fn a_hand_back_is_not_refused_by_the_limits_of_the_engine_it_leaves() {
    let d = start("");
    let cfg = std::fs::read_to_string(d.dir().join("jawasd.toml")).unwrap();
    let mut d2 = d;
    // One engine at a time: the one handing back must be gone before the
    // next starts.
    assert!(d2.reload(&cfg.replace("[server]\n", "[server]\nmax_connections = 1\n")));
    let first = "GET /users/ HTTP/1.1\r\nHost: x\r\n\r\n";
    let second = "GET /assets/app.css HTTP/1.1\r\nHost: x\r\n\r\n";
    for i in 1..=3 {
        let code = two_requests(d2.addr("front"), first, second);
        assert_eq!(code, 200, "{}", d2.log());
        // The next client may come once this one's engine is gone.
        assert!(d2.wait_log_count("done svc=assets", i, Duration::from_secs(5)));
    }
}

#[test]
fn a_client_gone_mid_head_frees_its_slot_at_once() {
    let d = start("");
    let cfg = std::fs::read_to_string(d.dir().join("jawasd.toml")).unwrap();
    let mut d = d;
    assert!(d.reload(&cfg.replace("[server]\n", "[server]\nmax_pending = 1\n")));
    let (mut s, _r) = connect(d.addr("front"));
    s.write_all(b"GET /users/ HTTP/1.1\r\nHo").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    s.shutdown(std::net::Shutdown::Write).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    // The only pending slot is free again: a new client is routed.
    let (code, _) = curl(&[], &url(&d, "/users/"));
    assert_eq!(code, 200, "{}", d.log());
}

#[test]
fn descriptors_an_engine_piles_on_a_hand_back_are_closed() {
    let dir = TempDir::new();
    // Hands back six descriptors, none of them its client.
    script(
        dir.path(),
        "piler",
        "exec python3 -c '\nimport os, socket, time\nhb = socket.socket(fileno=int(os.environ[\"JAWAS_HANDBACK_FD\"]))\nnull = [os.open(\"/dev/null\", os.O_RDONLY) for _ in range(6)]\nsocket.send_fds(hb, [b\"H\"], null)\n'",
    );
    let d = Jawasd::builder(
        "[services.front]\nlisten = \"127.0.0.1:0\"\nroute_timeout = \"1s\"\nroutes = [{ path = \"/\", service = \"piler\" }]\n\n[services.piler]\nengine = \"{dir}/piler\"\n",
    )
    .dir(dir)
    .start();
    let before = d.open_fds();
    for _ in 0..10 {
        let (mut s, _r) = connect(d.addr("front"));
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        d.wait_log_count(
            "something other than this client's TCP connection",
            10,
            Duration::from_secs(10)
        ),
        "{}",
        d.log()
    );
    let after = d.open_fds();
    assert!(
        after <= before + 2,
        "{before} descriptors before, {after} after"
    );
}

#[test]
fn jawas_proxy_under_a_prefix_takes_part_in_hand_backs() {
    let dir = TempDir::new();
    std::fs::create_dir_all(dir.path().join("www/users")).unwrap();
    std::fs::write(dir.path().join("www/users/index.html"), "users page\n").unwrap();
    std::fs::create_dir_all(dir.path().join("upstream")).unwrap();
    std::fs::write(dir.path().join("upstream/x.txt"), "from the app\n").unwrap();
    // The "app" is jawas-static on a listener of its own; the front door
    // routes /app to jawas-proxy, which strips the prefix.
    let port = jawas_tests::free_port();
    let d = Jawasd::builder(&format!(
        r#"
[services.front]
listen = "127.0.0.1:0"
routes = [
  {{ path = "/", service = "site" }},
  {{ path = "/app", service = "app" }},
]

[services.site]
engine = "{{bin}}/jawas-static"
args = ["--root", "{{dir}}/www"]

[services.app]
engine = "{{bin}}/jawas-proxy"
args = ["http", "--to", "127.0.0.1:{port}", "--strip-prefix", "/app"]

[services.upstream]
listen = "127.0.0.1:{port}"
engine = "{{bin}}/jawas-static"
args = ["--root", "{{dir}}/upstream"]
"#
    ))
    .dir(dir)
    .start();
    let (mut s, mut r) = connect(d.addr("front"));
    for (path, want) in [
        ("/app/x.txt", "from the app\n"),
        ("/users/", "users page\n"),
        ("/app/x.txt", "from the app\n"),
    ] {
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .unwrap();
        let (code, head, body) = read_response(&mut r);
        assert_eq!(
            (code, String::from_utf8_lossy(&body).as_ref()),
            (200, want),
            "{path} {head}"
        );
    }
    // The first app engine and the site engine handed back and ended; the
    // second app engine still holds the connection.
    assert!(
        d.wait_log("done svc=site", Duration::from_secs(5)),
        "{}",
        d.log()
    );
    assert_eq!(d.log().matches("done svc=app").count(), 1, "{}", d.log());
}

#[test]
fn a_route_table_too_big_for_the_environment_is_refused() {
    let routes: Vec<String> = (0..2000)
        .map(|i| format!("  {{ host = \"host-number-{i}.example.org\", service = \"web\" }},"))
        .collect();
    let err = check(&format!(
        "[services.front]\nlisten = \"127.0.0.1:0\"\nroutes = [\n{}\n]\n\n[services.web]\nengine = \"jawas-builtin\"\nargs = [\"echo\"]\n",
        routes.join("\n")
    ));
    assert!(
        err.contains("FILE:3: services.front.routes: the routes take"),
        "{err}"
    );
    assert!(err.contains("at most 32768 per router"), "{err}");
}

#[test]
fn the_demo_config_routes() {
    // etc/jawasd.toml's front door must pass --check as it ships.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(jawas_tests::bin("jawasd"))
        .arg("--check")
        .arg("--config")
        .arg(root.join("etc/jawasd.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(root.join("etc/jawasd.toml")).unwrap();
    assert!(text.contains("routes = ["), "the demo shows routes");
}
