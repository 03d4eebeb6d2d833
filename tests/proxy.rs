//! PROXY protocol in jawasd (`proxy_protocol = true`): version 1 and 2
//! headers (TCP4, TCP6, LOCAL, UNKNOWN, TLVs), a header split into 1-byte
//! writes, truncated and garbage headers, an untrusted sender, the
//! deadline, the pending cap; the engine sees the header's addresses and
//! `only_from`/`per_source` act on them; the first application byte is
//! never swallowed. Real peers: HAProxy with `send-proxy-v2` and curl's
//! `--haproxy-protocol`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Ipv6Addr, SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jawas_tests::{connect, free_port, read_all, wait_for_port, Jawasd, TempDir};

const SECS: Duration = Duration::from_secs(10);

fn start(extra: &str) -> Jawasd {
    Jawasd::start(&format!(
        "[services.probe]\nlisten = \"127.0.0.1:0\"\nengine = \"{{bin}}/jawas-test-probe\"\n\
         proxy_protocol = true\nproxy_from = [\"127.0.0.0/8\"]\n{extra}"
    ))
}

/// Sends `bytes` then `info\n` on one connection: the probe's facts, or
/// an empty map when the connection was refused.
fn ask(addr: SocketAddr, bytes: &[u8]) -> HashMap<String, String> {
    let mut s = connect(addr);
    let mut all = bytes.to_vec();
    all.extend_from_slice(b"info\n");
    let _ = s.write_all(&all);
    facts(&read_all(&mut s))
}

fn facts(reply: &[u8]) -> HashMap<String, String> {
    String::from_utf8_lossy(reply)
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn v2(cmd: u8, fam: u8, body: &[u8]) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.push(0x20 | cmd);
    h.push(fam);
    h.extend_from_slice(&(body.len() as u16).to_be_bytes());
    h.extend_from_slice(body);
    h
}

fn v2_tcp4(tlv: bool) -> Vec<u8> {
    let mut body = vec![192, 0, 2, 7, 10, 0, 0, 1, 0xdc, 0x04, 0x01, 0xbb];
    if tlv {
        body.extend_from_slice(&[0x02, 0, 11]);
        body.extend_from_slice(b"example.org");
    }
    v2(1, 0x11, &body)
}

#[test]
fn the_engine_sees_the_addresses_of_every_kind_of_header() {
    let d = start("");
    let addr = d.addr("probe");
    let mut v6 = Vec::new();
    v6.extend_from_slice(&"2001:db8::7".parse::<Ipv6Addr>().unwrap().octets());
    v6.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
    v6.extend_from_slice(&[0, 80, 0x1f, 0x90]);
    let table: Vec<(&str, Vec<u8>, [&str; 4])> = vec![
        (
            "v1 TCP4",
            b"PROXY TCP4 192.0.2.7 10.0.0.1 56324 443\r\n".to_vec(),
            ["192.0.2.7", "56324", "10.0.0.1", "443"],
        ),
        (
            "v1 TCP6",
            b"PROXY TCP6 2001:db8::7 2001:db8::1 80 8080\r\n".to_vec(),
            ["2001:db8::7", "80", "2001:db8::1", "8080"],
        ),
        (
            "v2 TCP4",
            v2_tcp4(false),
            ["192.0.2.7", "56324", "10.0.0.1", "443"],
        ),
        (
            "v2 TCP4 with a TLV",
            v2_tcp4(true),
            ["192.0.2.7", "56324", "10.0.0.1", "443"],
        ),
        (
            "v2 TCP6",
            v2(1, 0x21, &v6),
            ["2001:db8::7", "80", "2001:db8::1", "8080"],
        ),
    ];
    for (what, header, [rip, rport, lip, lport]) in table {
        let f = ask(addr, &header);
        assert_eq!(
            f.get("TCPREMOTEIP").map(String::as_str),
            Some(rip),
            "{what}: {f:?}\n{}",
            d.log()
        );
        assert_eq!(f["TCPREMOTEPORT"], rport, "{what}");
        assert_eq!(f["TCPLOCALIP"], lip, "{what}");
        assert_eq!(f["TCPLOCALPORT"], lport, "{what}");
        let proto = if rip.contains(':') { "TCP6" } else { "TCP" };
        assert_eq!(f["PROTO"], proto, "{what}");
    }
    // LOCAL and UNKNOWN: the balancer speaks for itself; the socket's own
    // addresses stand.
    for (what, header) in [
        ("v2 LOCAL", v2(0, 0x00, &[])),
        ("v1 UNKNOWN", b"PROXY UNKNOWN\r\n".to_vec()),
    ] {
        let f = ask(addr, &header);
        assert_eq!(
            f.get("TCPREMOTEIP").map(String::as_str),
            Some("127.0.0.1"),
            "{what}: {f:?}"
        );
        assert_eq!(f["TCPLOCALPORT"], addr.port().to_string(), "{what}");
    }
}

#[test]
fn a_header_in_one_byte_writes_is_read_whole_and_no_byte_after_it_is_lost() {
    let d = start("");
    for header in [
        b"PROXY TCP4 192.0.2.7 10.0.0.1 56324 443\r\n".to_vec(),
        v2_tcp4(true),
    ] {
        let mut s = connect(d.addr("probe"));
        s.set_nodelay(true).unwrap();
        for b in &header {
            s.write_all(&[*b]).unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
        // The application's first bytes, in the same write as nothing else.
        s.write_all(b"info\n").unwrap();
        let f = facts(&read_all(&mut s));
        assert_eq!(
            f.get("TCPREMOTEIP").map(String::as_str),
            Some("192.0.2.7"),
            "{f:?}\n{}",
            d.log()
        );
    }
    // Header and request in one segment: the request is intact.
    let f = ask(d.addr("probe"), b"PROXY TCP4 192.0.2.9 10.0.0.1 1 2\r\n");
    assert_eq!(f["TCPREMOTEIP"], "192.0.2.9");
}

#[test]
fn bad_headers_and_strangers_are_refused_without_an_engine() {
    let d = start("");
    let addr = d.addr("probe");
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("no header", b"GET / HTTP/1.1\r\n\r\n".to_vec()),
        ("garbage", vec![0xff; 40]),
        (
            "v1 bad port",
            b"PROXY TCP4 192.0.2.7 10.0.0.1 99999 1\r\n".to_vec(),
        ),
        (
            "v1 no CRLF",
            b"PROXY TCP4 192.0.2.7 10.0.0.1 1 2\n".to_vec(),
        ),
        ("v2 bad command", v2(7, 0x11, &[0; 12])),
        ("v2 short addresses", v2(1, 0x11, &[0; 4])),
    ];
    for (what, header) in &bad {
        let mut s = connect(addr);
        let _ = s.write_all(header);
        assert_eq!(read_all(&mut s), b"", "{what}: refused");
    }
    // Truncated: the peer closes mid-header.
    let mut s = connect(addr);
    s.write_all(b"PROXY TCP4 192.0").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(read_all(&mut s), b"");
    assert!(
        d.wait_log_count("reason=proxy_header", bad.len() + 1, SECS),
        "{}",
        d.log()
    );
    assert!(d.log().contains("no PROXY header"), "{}", d.log());
    assert!(
        !d.log().contains("done svc=probe"),
        "no engine ran: {}",
        d.log()
    );
    // A sender outside proxy_from.
    let strict = Jawasd::start(
        "[services.probe]\nlisten = \"127.0.0.1:0\"\nengine = \"{bin}/jawas-test-probe\"\n\
         proxy_protocol = true\nproxy_from = [\"192.0.2.0/24\"]\n",
    );
    assert!(ask(
        strict.addr("probe"),
        b"PROXY TCP4 192.0.2.7 10.0.0.1 1 2\r\n"
    )
    .is_empty());
    assert!(
        strict.wait_log("reason=proxy_from", SECS) && strict.log().contains("not in proxy_from"),
        "{}",
        strict.log()
    );
}

#[test]
fn a_silent_peer_leaves_at_the_deadline_and_pending_connections_are_capped() {
    let d = start("proxy_timeout = \"1s\"\n[server]\nmax_pending = 2\n");
    let addr = d.addr("probe");
    let started = Instant::now();
    let mut silent1 = connect(addr);
    silent1.write_all(b"PROXY TCP4 ").unwrap();
    let mut silent2 = connect(addr);
    std::thread::sleep(Duration::from_millis(100));
    // A third waits for nothing: refused at once.
    let mut third = connect(addr);
    assert_eq!(read_all(&mut third), b"");
    assert!(d.wait_log("reason=max_pending", SECS), "{}", d.log());
    assert_eq!(read_all(&mut silent1), b"");
    assert_eq!(read_all(&mut silent2), b"");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert!(
        d.wait_log_count("reason=proxy_timeout", 2, SECS),
        "{}",
        d.log()
    );
    // Room again.
    assert_eq!(
        ask(addr, b"PROXY TCP4 192.0.2.7 10.0.0.1 1 2\r\n")["TCPREMOTEIP"],
        "192.0.2.7"
    );
}

#[test]
fn access_rules_and_per_source_limits_act_on_the_header_address() {
    let d = start("only_from = [\"192.0.2.0/24\"]\nper_source = 1\n");
    let addr = d.addr("probe");
    assert_eq!(
        ask(addr, b"PROXY TCP4 192.0.2.7 10.0.0.1 1 2\r\n")["TCPREMOTEIP"],
        "192.0.2.7"
    );
    // The socket's own address (127.0.0.1) would pass proxy_from but the
    // header's is outside only_from.
    assert!(ask(addr, b"PROXY TCP4 198.51.100.1 10.0.0.1 1 2\r\n").is_empty());
    assert!(d.wait_log("reason=access", SECS), "{}", d.log());
    // per_source counts the header's client (once the first engine is
    // reaped): one held from 192.0.2.7 ...
    assert!(d.wait_log("done svc=probe", SECS), "{}", d.log());
    let mut held = connect(addr);
    held.write_all(b"PROXY TCP4 192.0.2.7 10.0.0.1 1 2\r\nhold\n")
        .unwrap();
    let mut buf = [0u8; 5];
    held.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"held ");
    // ... refuses a second from it, but not one from 192.0.2.8.
    assert!(ask(addr, b"PROXY TCP4 192.0.2.7 10.0.0.1 3 2\r\n").is_empty());
    assert!(d.wait_log("reason=per_source", SECS), "{}", d.log());
    assert_eq!(
        ask(addr, b"PROXY TCP4 192.0.2.8 10.0.0.1 3 2\r\n")["TCPREMOTEIP"],
        "192.0.2.8"
    );
}

#[test]
fn haproxy_send_proxy_v2_gives_the_engine_the_client_haproxy_saw() {
    let Some(haproxy) = ["/usr/sbin/haproxy", "/usr/local/sbin/haproxy"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    else {
        panic!("haproxy not found: apt-get install haproxy");
    };
    let d = start("");
    let dir = TempDir::new();
    let front = free_port();
    let conf = dir.path().join("haproxy.cfg");
    std::fs::write(
        &conf,
        format!(
            "global\n    maxconn 100\ndefaults\n    mode tcp\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n\
             frontend front\n    bind 127.0.0.1:{front}\n    default_backend jawas\n\
             backend jawas\n    server j1 {} send-proxy-v2\n",
            d.addr("probe")
        ),
    )
    .unwrap();
    let mut child = Command::new(haproxy)
        .args(["-db", "-f"])
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let front_addr: SocketAddr = format!("127.0.0.1:{front}").parse().unwrap();
    assert!(wait_for_port(front_addr, SECS), "haproxy did not listen");
    let mut s = TcpStream::connect(front_addr).unwrap();
    s.set_read_timeout(Some(SECS)).unwrap();
    let client_port = s.local_addr().unwrap().port();
    s.write_all(b"info\n").unwrap();
    let f = facts(&read_all(&mut s));
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        f.get("TCPREMOTEIP").map(String::as_str),
        Some("127.0.0.1"),
        "{f:?}\n{}",
        d.log()
    );
    assert_eq!(
        f["TCPREMOTEPORT"],
        client_port.to_string(),
        "the client's port, not HAProxy's"
    );
    assert_eq!(
        f["TCPLOCALPORT"],
        front.to_string(),
        "the port the client connected to"
    );
}

#[test]
fn curl_haproxy_protocol_v1_reaches_an_http_engine_intact() {
    let d = Jawasd::start(
        "[services.web]\nlisten = \"127.0.0.1:0\"\nengine = \"jawas-static\"\nargs = [\"--root\", \"{dir}\"]\n\
         proxy_protocol = true\nproxy_from = [\"127.0.0.1\"]\n",
    );
    std::fs::write(d.dir().join("index.html"), "behind a balancer\n").unwrap();
    let out = Command::new("curl")
        .args(["-s", "--haproxy-protocol", "-w", " %{http_code}"])
        .arg(format!("http://{}/", d.addr("web")))
        .output()
        .expect("curl runs (apt-get install curl)");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "behind a balancer\n 200"
    );
    // Without the header: refused.
    let out = Command::new("curl")
        .args(["-s", "-w", "%{http_code}"])
        .arg(format!("http://{}/", d.addr("web")))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "000");
}

#[test]
fn proxy_settings_are_checked_with_file_and_line() {
    let dir = TempDir::new();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[services.a]\nlisten = \"127.0.0.1:0\"\nengine = \"/bin/cat\"\nproxy_protocol = true\n\
         [services.b]\nlisten = \"127.0.0.1:0\"\nengine = \"/bin/cat\"\nproxy_from = [\"10.0.0.0/8\"]\n\
         [services.c]\nlisten = \"127.0.0.1:0\"\nengine = \"/bin/cat\"\nprotocol = \"udp\"\n\
         proxy_protocol = true\nproxy_from = [\"10.0.0.0/33\"]\n",
    )
    .unwrap();
    let out = Command::new(jawas_tests::bin("jawasd"))
        .args(["--config", path.to_str().unwrap(), "--check"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(100), "{err}");
    for want in [
        "bad.toml:4: services.a.proxy_protocol: needs proxy_from",
        "bad.toml:8: services.b.proxy_from: needs proxy_protocol = true",
        "bad.toml:13: services.c.proxy_protocol: a PROXY header comes first on a TCP connection",
        "bad.toml:14: services.c.proxy_from: '10.0.0.0/33': prefix length must be 0 to 32",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
}

#[test]
fn nginx_stream_proxy_protocol_gives_the_engine_the_client_nginx_saw() {
    let module = "/usr/lib/nginx/modules/ngx_stream_module.so";
    assert!(
        std::path::Path::new(module).exists(),
        "{module} not found: apt-get install nginx-light libnginx-mod-stream"
    );
    let d = start("");
    let dir = TempDir::new();
    let front = free_port();
    let conf = dir.path().join("nginx.conf");
    let p = dir.path().display();
    std::fs::write(
        &conf,
        format!(
            "load_module {module};\nworker_processes 1;\ndaemon off;\npid {p}/nginx.pid;\n\
             error_log {p}/error.log;\nevents {{ worker_connections 64; }}\n\
             stream {{\n    upstream jawas {{ server {}; }}\n    server {{\n        listen 127.0.0.1:{front};\n\
                     proxy_pass jawas;\n        proxy_protocol on;\n    }}\n}}\n",
            d.addr("probe")
        ),
    )
    .unwrap();
    let nginx = ["/usr/sbin/nginx", "/usr/local/sbin/nginx"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("nginx not found: apt-get install nginx-light libnginx-mod-stream");
    let mut child = Command::new(nginx)
        .args(["-e", &format!("{p}/error.log"), "-c"])
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let front_addr: SocketAddr = format!("127.0.0.1:{front}").parse().unwrap();
    let up = wait_for_port(front_addr, SECS);
    let f = if up {
        let mut s = TcpStream::connect(front_addr).unwrap();
        s.set_read_timeout(Some(SECS)).unwrap();
        let client_port = s.local_addr().unwrap().port();
        s.write_all(b"info\n").unwrap();
        Some((client_port, facts(&read_all(&mut s))))
    } else {
        None
    };
    let _ = child.kill();
    let _ = child.wait();
    let (client_port, f) = f.unwrap_or_else(|| {
        panic!(
            "nginx did not listen: {}",
            std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
        )
    });
    assert_eq!(
        f.get("TCPREMOTEIP").map(String::as_str),
        Some("127.0.0.1"),
        "{f:?}\n{}",
        d.log()
    );
    assert_eq!(f["TCPREMOTEPORT"], client_port.to_string());
    assert_eq!(f["TCPLOCALPORT"], front.to_string());
}
