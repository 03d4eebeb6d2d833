//! jawas-static through the real jawasd, with curl and a raw Rust client:
//! every rule of the static engine and the HTTP layer, including bad
//! requests, traversal attempts and slow clients.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jawas_tests::{bin, read_all, Jawasd, TempDir};

const T: Duration = Duration::from_secs(10);

/// A site in a fresh temp dir, served by jawas-static with `extra` args.
fn site(extra: &str) -> Jawasd {
    let dir = TempDir::new();
    let root = dir.path().join("www");
    std::fs::create_dir_all(root.join("docs")).unwrap();
    std::fs::create_dir_all(root.join("empty")).unwrap();
    std::fs::create_dir_all(root.join(".git")).unwrap();
    std::fs::write(root.join("index.html"), "<h1>home</h1>\n").unwrap();
    std::fs::write(root.join("docs/index.html"), "<h1>docs</h1>\n").unwrap();
    std::fs::write(root.join("hello.txt"), "hello, world\n").unwrap();
    let page = format!(
        "<!DOCTYPE html>\n<title>page</title>\n{}",
        "<p>A paragraph of an ordinary page.</p>\n".repeat(40)
    );
    std::fs::write(root.join("page.html"), page).unwrap();
    std::fs::write(root.join(".git/config"), "secret\n").unwrap();
    std::fs::write(root.join(".env"), "SECRET=1\n").unwrap();
    std::fs::write(root.join("style.css"), "body { color: red }\n".repeat(50)).unwrap();
    std::fs::write(root.join("style.css.gz"), b"\x1f\x8bpretend-gzip").unwrap();
    std::fs::write(root.join("data.foo"), "foo data\n").unwrap();
    std::fs::write(root.join("missing.html"), "<p>custom not found</p>\n").unwrap();
    std::fs::write(root.join("empty/<b>&weird name.txt"), "x").unwrap();
    std::fs::write(root.join("empty/javascript:alert(1)"), "x").unwrap();
    let fifo =
        std::ffi::CString::new(root.join("fifo").into_os_string().into_encoded_bytes()).unwrap();
    // SAFETY: mkfifo with a NUL-terminated path we own.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let big: Vec<u8> = (0..5_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    std::fs::write(root.join("big.bin"), &big).unwrap();
    std::fs::write(dir.path().join("outside.txt"), "outside the root\n").unwrap();
    std::os::unix::fs::symlink(dir.path().join("outside.txt"), root.join("escape.txt")).unwrap();
    std::os::unix::fs::symlink("hello.txt", root.join("inside-link.txt")).unwrap();
    std::os::unix::fs::symlink(root.join("hello.txt"), root.join("absolute-link.txt")).unwrap();
    std::os::unix::fs::symlink(root.join("docs"), root.join("absolute-dir")).unwrap();
    let config = format!(
        r#"
[services.web]
listen = ["127.0.0.1:0", "[::1]:0"]
engine = "jawas-static"
args = ["--root", "{{dir}}/www", "--mime", "foo=text/x-foo", "--cache-control", "*.css=max-age=60", "--not-found", "missing.html" {extra}]
capture_stderr = true
"#
    );
    Jawasd::builder(&config).dir(dir).start()
}

/// curl with `args` against `url`: (headers text, body bytes).
fn curl(args: &[&str], url: &str) -> (String, Vec<u8>) {
    // With -I curl prints the head itself; otherwise ask for it with -D -.
    let dump: &[&str] = if args.contains(&"-I") {
        &[]
    } else {
        &["-D", "-"]
    };
    let out = Command::new("curl")
        .args(["-s", "-S", "--max-time", "10"])
        .args(dump)
        .args(args)
        .arg(url)
        .output()
        .expect("curl runs (CI installs it)");
    let all = out.stdout;
    let mut split = 0;
    // The last header block ends at the last \r\n\r\n before the body.
    let mut i = 0;
    while let Some(p) = find(&all[i..], b"\r\n\r\n") {
        let end = i + p + 4;
        split = end;
        if !all[end..].starts_with(b"HTTP/") {
            break;
        }
        i = end;
    }
    (
        String::from_utf8_lossy(&all[..split]).to_string(),
        all[split..].to_vec(),
    )
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

fn status(headers: &str) -> u16 {
    headers
        .lines()
        .rev()
        .find(|l| l.starts_with("HTTP/"))
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn header<'a>(headers: &'a str, name: &str) -> Option<&'a str> {
    headers
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
        .next_back()
}

fn url(d: &Jawasd, path: &str) -> String {
    format!("http://{}{}", d.addr("web"), path)
}

/// Sends raw bytes, half-closes, returns everything the server sent.
fn raw(addr: SocketAddr, data: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    s.write_all(data).unwrap();
    let _ = s.shutdown(Shutdown::Write);
    String::from_utf8_lossy(&read_all(&mut s)).to_string()
}

#[test]
fn get_head_types_and_headers() {
    let d = site("");
    let (h, body) = curl(&[], &url(&d, "/hello.txt"));
    assert_eq!(status(&h), 200, "{h}");
    assert_eq!(body, b"hello, world\n");
    assert_eq!(
        header(&h, "Content-Type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(header(&h, "Content-Length"), Some("13"));
    assert_eq!(header(&h, "Accept-Ranges"), Some("bytes"));
    assert!(header(&h, "Date").is_some_and(|v| v.ends_with(" GMT")));
    assert!(
        header(&h, "ETag").is_some_and(|v| v.starts_with('"') && v.ends_with('"')),
        "strong ETag: {h}"
    );
    assert!(header(&h, "Last-Modified").is_some());
    let (h, body) = curl(&["-I"], &url(&d, "/hello.txt"));
    assert_eq!((status(&h), body.len()), (200, 0), "HEAD has no body: {h}");
    assert_eq!(header(&h, "Content-Length"), Some("13"));
    let (h, _) = curl(&[], &url(&d, "/data.foo"));
    assert_eq!(
        header(&h, "Content-Type"),
        Some("text/x-foo"),
        "extra MIME type"
    );
    let (h, _) = curl(&[], &url(&d, "/style.css"));
    assert_eq!(header(&h, "Cache-Control"), Some("max-age=60"));
    let (h, _) = curl(
        &["-g"],
        &format!("http://[::1]:{}/", d.addrs("web")[1].port()),
    );
    assert_eq!(status(&h), 200, "IPv6: {h}");
    // The access log line reaches jawasd's log (captured stderr), not the client.
    assert!(
        d.wait_log("\"GET /hello.txt HTTP/1.1\" 200 13", T),
        "{}",
        d.log()
    );
}

#[test]
fn methods_options_and_errors() {
    let d = site("");
    let (h, _) = curl(&["-X", "DELETE"], &url(&d, "/hello.txt"));
    assert_eq!(status(&h), 405);
    assert_eq!(header(&h, "Allow"), Some("GET, HEAD, OPTIONS"));
    let (h, _) = curl(&["-X", "OPTIONS"], &url(&d, "/hello.txt"));
    assert_eq!(status(&h), 204);
    assert_eq!(header(&h, "Allow"), Some("GET, HEAD, OPTIONS"));
    // A POST body is read and dropped, so the next request on the
    // connection is still understood.
    let addr = d.addr("web");
    let out = raw(
        addr,
        b"POST /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nabcdeGET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(out.starts_with("HTTP/1.1 405"), "{out}");
    assert!(
        out.contains("HTTP/1.1 200 OK") && out.ends_with("hello, world\n"),
        "{out}"
    );
    let (h, body) = curl(&[], &url(&d, "/nope.html"));
    assert_eq!(status(&h), 404);
    assert_eq!(body, b"<p>custom not found</p>\n", "custom 404 page");
}

#[test]
fn bad_requests_get_small_correct_answers() {
    let d = site("");
    let addr = d.addr("web");
    let cases: &[(Vec<u8>, &str)] = &[
        (b"garbage\r\n\r\n".to_vec(), "HTTP/1.1 400"),
        (b"GET / HTTP/1.1\r\n\r\n".to_vec(), "HTTP/1.1 400"), // no Host
        (
            format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(9000)).into_bytes(),
            "HTTP/1.1 414",
        ),
        (
            format!(
                "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
                "b".repeat(20000)
            )
            .into_bytes(),
            "HTTP/1.1 431",
        ),
        (
            format!(
                "GET / HTTP/1.1\r\nHost: x\r\n{}\r\n",
                (0..150)
                    .map(|i| format!("X-{i}: y\r\n"))
                    .collect::<String>()
            )
            .into_bytes(),
            "HTTP/1.1 431",
        ),
        (
            b"GET / HTTP/2.0\r\nHost: x\r\n\r\n".to_vec(),
            "HTTP/1.1 505",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n".to_vec(),
            "HTTP/1.1 400",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n".to_vec(),
            "HTTP/1.1 501",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcde"
                .to_vec(),
            "HTTP/1.1 400",
        ),
        // A body larger than the limit is never read: the answer closes.
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n".to_vec(),
            "HTTP/1.1 405",
        ),
        // The unread body is drained after the answer; bad framing there
        // closes the connection.
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
            "HTTP/1.1 405",
        ),
        (
            b"GET /a%zz HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            "HTTP/1.1 400",
        ),
        (
            b"GET /a%00b HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            "HTTP/1.1 400",
        ),
    ];
    for (req, want) in cases {
        let out = raw(addr, req);
        assert!(
            out.starts_with(want),
            "{:?}...: want {want}, got {out:?}",
            String::from_utf8_lossy(&req[..req.len().min(60)])
        );
        let cl: usize = header(&out, "Content-Length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(usize::MAX);
        let body = &out[out.find("\r\n\r\n").unwrap() + 4..];
        assert_eq!(body.len(), cl, "correctly framed error: {out:?}");
    }
}

#[test]
fn traversal_dotfiles_and_symlinks_never_leave_the_root() {
    let d = site("");
    let addr = d.addr("web");
    for path in [
        "/../outside.txt",
        "/docs/../../outside.txt",
        "/%2e%2e/outside.txt",
        "/%2E%2E%2Foutside.txt",
        "/docs/%2e%2e/%2e%2e/outside.txt",
        "/..%2f..%2foutside.txt",
        "/escape.txt",
        "/.git/config",
        "/.env",
        "/%2egit/config",
    ] {
        let out = raw(addr, format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes());
        assert!(
            out.starts_with("HTTP/1.1 400") || out.starts_with("HTTP/1.1 404"),
            "{path}: {out}"
        );
        assert!(
            !out.contains("outside the root") && !out.contains("secret") && !out.contains("SECRET"),
            "{path} leaked: {out}"
        );
    }
    let (h, body) = curl(&[], &url(&d, "/inside-link.txt"));
    assert_eq!(
        (status(&h), body.as_slice()),
        (200, b"hello, world\n".as_slice()),
        "a symlink inside the root is fine"
    );
}

#[test]
fn directories_redirect_index_and_listing() {
    let d = site("");
    let (h, _) = curl(&[], &url(&d, "/docs?x=1"));
    assert_eq!(status(&h), 301);
    assert_eq!(header(&h, "Location"), Some("/docs/?x=1"));
    let (h, body) = curl(&["-L"], &url(&d, "/docs"));
    assert_eq!(
        (status(&h), body.as_slice()),
        (200, b"<h1>docs</h1>\n".as_slice())
    );
    let (h, _) = curl(&[], &url(&d, "/empty/"));
    assert_eq!(status(&h), 404, "no index and listing off");
    let l = site(", \"--listing\"");
    let (h, body) = curl(&[], &url(&l, "/empty/"));
    assert_eq!(status(&h), 200);
    let html = String::from_utf8(body).unwrap();
    assert!(
        html.contains("&lt;b&gt;&amp;weird name.txt"),
        "escaped name: {html}"
    );
    assert!(
        html.contains("href=\"./%3Cb%3E&amp;weird%20name.txt\""),
        "encoded link: {html}"
    );
    assert!(
        html.contains("href=\"./javascript:alert(1)\""),
        "a name with a colon stays a relative link: {html}"
    );
    let (_, root_listing) = curl(&[], &url(&l, "/"));
    assert!(
        !String::from_utf8_lossy(&root_listing).contains(".git"),
        "dotfiles hidden in listings"
    );
}

#[test]
fn conditional_requests() {
    let d = site("");
    let u = url(&d, "/hello.txt");
    let (h, _) = curl(&[], &u);
    let etag = header(&h, "ETag").unwrap().to_string();
    let modified = header(&h, "Last-Modified").unwrap().to_string();
    let inm = format!("If-None-Match: {etag}");
    let (h, body) = curl(&["-H", &inm], &u);
    assert_eq!((status(&h), body.len()), (304, 0), "{h}");
    assert_eq!(header(&h, "ETag"), Some(etag.as_str()));
    let (h, _) = curl(&["-H", &format!("If-Modified-Since: {modified}")], &u);
    assert_eq!(status(&h), 304);
    let (h, _) = curl(
        &["-H", "If-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT"],
        &u,
    );
    assert_eq!(status(&h), 200);
    let (h, _) = curl(&["-H", "If-Match: \"nope\""], &u);
    assert_eq!(status(&h), 412);
    let (h, _) = curl(&["-H", &format!("If-Match: {etag}")], &u);
    assert_eq!(status(&h), 200);
    let (h, _) = curl(
        &["-H", "If-Unmodified-Since: Sat, 01 Jan 2000 00:00:00 GMT"],
        &u,
    );
    assert_eq!(status(&h), 412);
    // If-None-Match takes precedence over If-Modified-Since.
    let (h, _) = curl(
        &[
            "-H",
            "If-None-Match: \"other\"",
            "-H",
            &format!("If-Modified-Since: {modified}"),
        ],
        &u,
    );
    assert_eq!(status(&h), 200);
}

#[test]
fn ranges_single_multiple_unsatisfiable_and_if_range() {
    let d = site("");
    let u = url(&d, "/hello.txt");
    let (h, body) = curl(&["-r", "0-4"], &u);
    assert_eq!((status(&h), body.as_slice()), (206, b"hello".as_slice()));
    assert_eq!(header(&h, "Content-Range"), Some("bytes 0-4/13"));
    let (h, body) = curl(&["-r", "-6"], &u);
    assert_eq!((status(&h), body.as_slice()), (206, b"world\n".as_slice()));
    let (h, body) = curl(&["-r", "0-1,7-11"], &u);
    assert_eq!(status(&h), 206);
    let ct = header(&h, "Content-Type").unwrap();
    let boundary = ct
        .strip_prefix("multipart/byteranges; boundary=")
        .expect(ct);
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains(&format!("--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Range: bytes 0-1/13\r\n\r\nhe\r\n")), "{text}");
    assert!(
        text.contains("Content-Range: bytes 7-11/13\r\n\r\nworld\r\n"),
        "{text}"
    );
    assert!(text.ends_with(&format!("--{boundary}--\r\n")), "{text}");
    let (h, _) = curl(&["-r", "100-200"], &u);
    assert_eq!(status(&h), 416);
    assert_eq!(header(&h, "Content-Range"), Some("bytes */13"));
    let (h, body) = curl(&["-r", "0-4", "-H", "If-Range: \"stale\""], &u);
    assert_eq!(
        (status(&h), body.len()),
        (200, 13),
        "If-Range mismatch sends the whole file"
    );
    let (h0, _) = curl(&[], &u);
    let etag = header(&h0, "ETag").unwrap();
    let (h, _) = curl(&["-r", "0-4", "-H", &format!("If-Range: {etag}")], &u);
    assert_eq!(status(&h), 206);
}

#[test]
fn precompressed_siblings_with_vary_and_their_own_validators() {
    let d = site("");
    let u = url(&d, "/style.css");
    let (plain, body) = curl(&[], &u);
    assert_eq!(header(&plain, "Content-Encoding"), None);
    assert_eq!(body.len(), 1000);
    assert_eq!(header(&plain, "Vary"), Some("Accept-Encoding"));
    let (gz, body) = curl(&["-H", "Accept-Encoding: gzip"], &u);
    assert_eq!(header(&gz, "Content-Encoding"), Some("gzip"));
    assert_eq!(body, b"\x1f\x8bpretend-gzip");
    assert_eq!(header(&gz, "Vary"), Some("Accept-Encoding"));
    assert_ne!(
        header(&gz, "ETag"),
        header(&plain, "ETag"),
        "the variant has its own ETag"
    );
    let (h, _) = curl(&["-H", "Accept-Encoding: gzip;q=0, br"], &u);
    assert_eq!(
        header(&h, "Content-Encoding"),
        None,
        "no br sibling, gzip refused"
    );
}

#[test]
fn keep_alive_pipelining_and_versions() {
    let d = site("");
    let addr = d.addr("web");
    // Three pipelined requests in one write, answered in order.
    let out = raw(
        addr,
        b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\nHEAD /index.html HTTP/1.1\r\nHost: x\r\n\r\nGET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let a = out.find("hello, world").unwrap();
    let b = out[a..].find("HTTP/1.1 200").unwrap() + a;
    let c = out[b + 10..].find("HTTP/1.1 200").unwrap() + b + 10;
    assert!(a < b && b < c, "{out}");
    assert_eq!(
        out.matches("<h1>home</h1>").count(),
        1,
        "HEAD sent no body: {out}"
    );
    assert!(out.ends_with("<h1>home</h1>\n"));
    // HTTP/1.0 closes by default, stays with keep-alive.
    let out = raw(
        addr,
        b"GET /hello.txt HTTP/1.0\r\n\r\nGET /hello.txt HTTP/1.0\r\n\r\n",
    );
    assert_eq!(out.matches("HTTP/1.1 200").count(), 1, "{out}");
    assert!(out.contains("Connection: close"));
    let out = raw(
        addr,
        b"GET /hello.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /hello.txt HTTP/1.0\r\n\r\n",
    );
    assert_eq!(out.matches("HTTP/1.1 200").count(), 2, "{out}");
    assert!(out.contains("Connection: keep-alive"));
    // Many requests on one connection with curl.
    let urls: Vec<String> = (0..5).map(|_| url(&d, "/hello.txt")).collect();
    let out = Command::new("curl")
        .arg("-sv")
        .args(&urls)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.matches("Re-using existing connection").count()
            + err.matches("Reusing existing").count(),
        4,
        "{err}"
    );
}

#[test]
fn unread_bodies_are_drained_or_the_connection_closes() {
    let d = site("");
    // The client waits for 100 Continue: jawas-static never reads the body,
    // so it answers at once, sends no 100, and closes.
    let mut s = TcpStream::connect(d.addr("web")).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    s.write_all(
        b"POST /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n",
    )
    .unwrap();
    let out = String::from_utf8_lossy(&read_all(&mut s)).to_string();
    assert!(out.starts_with("HTTP/1.1 405 "), "{out}");
    assert!(
        out.contains("Connection: close\r\n") && !out.contains(" 100 "),
        "{out}"
    );
    // Bodies of both framings, pipelined: drained after each answer, never
    // parsed as a request ("GET /hello.txt" inside the body is data).
    let mut s = TcpStream::connect(d.addr("web")).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    let body = "GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n";
    s.write_all(
        format!(
            "POST /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    s.write_all(b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /page.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let out = String::from_utf8_lossy(&read_all(&mut s)).to_string();
    assert_eq!(out.matches("HTTP/1.1 405").count(), 2, "{out}");
    assert_eq!(out.matches("HTTP/1.1 ").count(), 3, "{out}");
    assert!(
        out.contains("<title>page</title>") && !out.contains("hello, world"),
        "{out}"
    );
}

#[test]
fn slow_and_idle_clients_are_cut_off() {
    let d = site(", \"--request-timeout\", \"1\", \"--idle-timeout\", \"1\"");
    // Half a request, then silence: 408 after the request timeout.
    let mut s = TcpStream::connect(d.addr("web")).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    s.write_all(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let started = Instant::now();
    let out = String::from_utf8_lossy(&read_all(&mut s)).to_string();
    assert!(out.starts_with("HTTP/1.1 408"), "{out}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // A kept-alive connection left idle is closed (no response sent).
    let mut s = TcpStream::connect(d.addr("web")).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    s.write_all(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let started = Instant::now();
    let out = String::from_utf8_lossy(&read_all(&mut s)).to_string();
    assert_eq!(out.matches("HTTP/1.1 200").count(), 1, "{out}");
    assert!(
        started.elapsed() >= Duration::from_millis(900)
            && started.elapsed() < Duration::from_secs(5)
    );
}

#[test]
fn large_file_streams_intact() {
    let d = site("");
    let (h, body) = curl(&[], &url(&d, "/big.bin"));
    assert_eq!(status(&h), 200);
    let want: Vec<u8> = (0..5_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    assert!(body == want, "5 MB body differs (got {} bytes)", body.len());
    let (h, body) = curl(&["-r", "4999990-"], &url(&d, "/big.bin"));
    assert_eq!(status(&h), 206);
    assert_eq!(body, &want[4_999_990..]);
}

fn pipe(root: &Path, input: &[u8], extra: &[&str]) -> String {
    let mut child = Command::new(bin("jawas-static"))
        .arg("--root")
        .arg(root)
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn runs_from_a_pipe_and_refuses_bad_usage() {
    let dir = TempDir::new();
    std::fs::write(dir.path().join("index.html"), "piped\n").unwrap();
    let out = pipe(dir.path(), b"GET / HTTP/1.0\r\n\r\n", &[]);
    assert!(
        out.starts_with("HTTP/1.1 200 OK\r\n") && out.ends_with("\r\n\r\npiped\n"),
        "{out}"
    );
    let out = pipe(
        dir.path(),
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /index.html HTTP/1.1\r\nHost: a\r\n\r\n",
        &[],
    );
    assert_eq!(out.matches("piped\n").count(), 2, "{out}");
    for args in [&["--bogus"][..], &[][..], &["--root", "/no/such/dir"][..]] {
        let st = Command::new(bin("jawas-static"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(st.status.code(), Some(100), "{args:?}");
        assert!(
            String::from_utf8_lossy(&st.stderr).contains("jawas-static:"),
            "{args:?}"
        );
    }
}

#[test]
fn log_never_reaches_the_client_when_stderr_is_the_socket() {
    let dir = TempDir::new();
    std::fs::create_dir(dir.path().join("www")).unwrap();
    std::fs::write(dir.path().join("www/index.html"), "only this\n").unwrap();
    let d = Jawasd::builder(
        "[services.web]\nlisten = \"127.0.0.1:0\"\nengine = \"jawas-static\"\nargs = [\"--root\", \"{dir}/www\"]\nstderr = \"socket\"\n",
    )
    .dir(dir)
    .start();
    let out = raw(d.addr("web"), b"GET / HTTP/1.0\r\n\r\n");
    assert!(
        out.ends_with("\r\n\r\nonly this\n"),
        "nothing after the body: {out:?}"
    );
    assert!(
        !out.contains("\"GET / HTTP/1.0\""),
        "log line leaked into the connection: {out:?}"
    );
}

/// Waits for a port, then fetches `/` with curl.
fn fetch_when_up(port: u16) -> (String, Vec<u8>) {
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    assert!(
        jawas_tests::wait_for_port(addr, T),
        "nothing listening on {addr}"
    );
    curl(&[], &format!("http://{addr}/"))
}

#[test]
fn runs_unchanged_under_tcpserver_and_real_xinetd() {
    let dir = TempDir::new();
    let root = dir.path().join("www");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("index.html"), "anywhere\n").unwrap();
    let which = |cmd: &str| -> String {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {cmd}"))
            .output()
            .unwrap();
        let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(
            !p.is_empty(),
            "{cmd} is not installed (tests/deps.sh installs it)"
        );
        p
    };
    // tcpserver (ucspi-tcp): the same UCSPI contract jawasd gives.
    let port = jawas_tests::free_port();
    let mut tcpserver = Command::new(which("tcpserver"))
        .args(["-H", "-R", "127.0.0.1", &port.to_string()])
        .arg(bin("jawas-static"))
        .arg("--root")
        .arg(&root)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (h, body) = fetch_when_up(port);
    assert_eq!(
        (status(&h), body.as_slice()),
        (200, b"anywhere\n".as_slice()),
        "{h}"
    );
    let _ = tcpserver.kill();
    let _ = tcpserver.wait();
    // Real xinetd: the socket is fds 0, 1 and 2; no log line may reach it.
    let port = jawas_tests::free_port();
    let conf = dir.path().join("xinetd.conf");
    std::fs::write(
        &conf,
        format!(
            "service web\n{{\n type = UNLISTED\n socket_type = stream\n wait = no\n user = root\n port = {port}\n bind = 127.0.0.1\n server = {}\n server_args = --root {}\n}}\n",
            bin("jawas-static").display(),
            root.display()
        ),
    )
    .unwrap();
    let mut xinetd = Command::new(which("xinetd"))
        .args(["-dontfork", "-f"])
        .arg(&conf)
        .arg("-pidfile")
        .arg(dir.path().join("x.pid"))
        .arg("-filelog")
        .arg(dir.path().join("x.log"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (h, body) = fetch_when_up(port);
    let _ = xinetd.kill();
    let _ = xinetd.wait();
    assert_eq!(
        (status(&h), body.as_slice()),
        (200, b"anywhere\n".as_slice()),
        "{h}"
    );
}

#[test]
fn redbot_reports_no_problems() {
    let d = site(", \"--cache-control\", \"*=max-age=60\"");
    // A page, a large file (REDbot also makes a ranged request) and a file
    // with a precompressed sibling.
    // On PATH, or beside the python3 that pip installed it for.
    let scripts = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let beside = Path::new(&scripts).join("redbot");
    let redbot = if beside.exists() {
        beside
    } else {
        "redbot".into()
    };
    for path in ["/page.html", "/big.bin", "/style.css"] {
        let out = Command::new(&redbot)
            .args(["-o", "html"])
            .arg(url(&d, path))
            .output()
            .expect("redbot runs (tests/deps.sh installs it with pip)");
        let html = String::from_utf8_lossy(&out.stdout);
        let count = |class: &str| html.matches(&format!("class='{class} note'")).count();
        assert!(
            count("good") > 0,
            "{path}: REDbot said nothing good; output:\n{html}"
        );
        assert_eq!(
            (count("bad"), count("warning")),
            (0, 0),
            "{path}: REDbot found problems:\n{html}"
        );
    }
}

#[test]
fn buffered_access_log_is_written_out_on_sigterm() {
    let mut d = site("");
    let mut s = TcpStream::connect(d.addr("web")).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    for i in 0..3 {
        s.write_all(format!("GET /hello.txt?n={i} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).ends_with("hello, world\n"));
    }
    // The connection stays open; jawasd's SIGTERM reaches the engine, which
    // writes out its buffered lines before exiting.
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait_exit(T), Some(0), "{}", d.log());
    let log = d.log();
    for i in 0..3 {
        assert!(
            log.contains(&format!("\"GET /hello.txt?n={i} HTTP/1.1\" 200 13")),
            "line {i} lost:\n{log}"
        );
    }
    assert!(log.contains("svc=web") && log.contains("exit=0"), "{log}");
}

#[test]
fn only_an_absolute_form_target_names_another_path() {
    let d = site("");
    let addr = d.addr("web");
    let out = raw(
        addr,
        b"GET /index.html?next=http://x/hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(
        out.ends_with("<h1>home</h1>\n"),
        "query chose the file: {out}"
    );
    let out = raw(
        addr,
        b"GET /a://b/hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(out.starts_with("HTTP/1.1 404"), "{out}");
    let out = raw(
        addr,
        b"GET http://x/hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(out.ends_with("hello, world\n"), "absolute-form: {out}");
}

#[test]
fn overlapping_ranges_never_repeat_the_file() {
    let d = site("");
    let ranges = vec!["0-"; 16].join(",");
    let (h, body) = curl(
        &["-H", &format!("Range: bytes={ranges}")],
        &url(&d, "/hello.txt"),
    );
    assert_eq!(status(&h), 206, "{h}");
    assert_eq!(body, b"hello, world\n", "one copy: {h}");
    let (h, body) = curl(&["-H", "Range: bytes=0-3,2-5"], &url(&d, "/hello.txt"));
    assert_eq!(
        (status(&h), header(&h, "Content-Range"), body.as_slice()),
        (206, Some("bytes 0-5/13"), b"hello,".as_slice())
    );
}

#[test]
fn a_fifo_under_the_root_is_not_found_at_once() {
    let d = site("");
    let t0 = Instant::now();
    let (h, _) = curl(&[], &url(&d, "/fifo"));
    assert_eq!(status(&h), 404, "{h}");
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    // The engine is still there for the next request.
    let (h, _) = curl(&[], &url(&d, "/hello.txt"));
    assert_eq!(status(&h), 200);
}

#[test]
fn framing_host_and_version_rules() {
    let d = site("");
    let addr = d.addr("web");
    let get = "GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    // Refused, and the connection closed: the request after it is never read.
    for (req, want) in [
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\nContent-Length: 5\r\n\r\nabcde", "400"),
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\nContent-Length: 5\r\n\r\nabcde", "400"),
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", "400"),
        // jawas-static does not read bodies: the layer drains them after
        // the answer, and a bad chunk size there closes the connection.
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n 5\r\nabcde\r\n0\r\n\r\n", "405"),
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nabcde\r\n0\r\n\r\n", "405"),
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\u{a0}\r\nabcde\r\n0\r\n\r\n", "405"),
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", "400"),
        ("GET / FOO HTTP/1.1\r\nHost: x\r\n\r\n", "400"),
        ("GET / HTTP/1.10\r\nHost: x\r\n\r\n", "400"),
        ("GET / HTTP/3.0\r\nHost: x\r\n\r\n", "505"),
    ] {
        let out = raw(addr, format!("{req}{get}").as_bytes());
        assert!(
            out.starts_with(&format!("HTTP/1.1 {want} ")),
            "{req:?}: want {want}, got {out:?}"
        );
        assert!(
            want == "405" || out.contains("Connection: close\r\n"),
            "{req:?}: {out:?}"
        );
        assert_eq!(out.matches("HTTP/1.1 ").count(), 1, "{req:?}: {out:?}");
    }
    // Accepted: leading zeros in a chunk size, HTTP/1.2 as 1.1, IPv6 Host;
    // answers to HTTP/1.0 say HTTP/1.1.
    for (req, n) in [
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0005\r\nabcde\r\n000\r\n\r\n", 2),
        ("GET /hello.txt HTTP/1.2\r\nHost: x\r\n\r\n", 2),
        ("GET /hello.txt HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", 2),
        ("GET /hello.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 2),
    ] {
        let out = raw(addr, format!("{req}{get}").as_bytes());
        assert_eq!(out.matches("HTTP/1.1 ").count(), n, "{req:?}: {out:?}");
        assert!(!out.contains("HTTP/1.0") && !out.contains(" 400 "), "{req:?}: {out:?}");
    }
}

#[test]
fn a_file_with_a_slash_is_not_found_and_absolute_links_inside_are_followed() {
    let d = site("");
    for path in [
        "/hello.txt/",
        "/hello.txt%2f",
        "/hello.txt/.",
        "/docs/index.html/",
    ] {
        let (h, _) = curl(&["--path-as-is"], &url(&d, path));
        assert_eq!(status(&h), 404, "{path}: {h}");
    }
    let (h, body) = curl(&[], &url(&d, "/absolute-link.txt"));
    assert_eq!(
        (status(&h), body.as_slice()),
        (200, b"hello, world\n".as_slice()),
        "{h}"
    );
    let (h, body) = curl(&[], &url(&d, "/absolute-dir/"));
    assert_eq!(
        (status(&h), body.as_slice()),
        (200, b"<h1>docs</h1>\n".as_slice()),
        "{h}"
    );
    let (h, _) = curl(&[], &url(&d, "/escape.txt"));
    assert_eq!(status(&h), 404, "an absolute link out of the root: {h}");
}

/// What a client sent that the engine must leave alone under `--check`,
/// `--help`, `--version` and a usage error.
/// Runs `jawas-static ARGS` in `cwd` (see `run_engine`).
fn run_in(cwd: &Path, args: &[&str]) -> (i32, String, String, bool) {
    jawas_tests::run_engine("jawas-static", cwd, args)
}

fn run(args: &[&str]) -> (i32, String, String, bool) {
    run_in(Path::new("/"), args)
}

#[test]
fn help_describes_every_option() {
    for flag in ["--help", "-h"] {
        let (code, out, err, untouched) = run(&[flag]);
        assert_eq!((code, err.as_str(), untouched), (0, "", true), "{flag}");
        assert!(
            out.starts_with("usage: jawas-static [OPTION]... --root DIR\n"),
            "{out}"
        );
        jawas_tests::assert_help_lists(
            &out,
            &[
                ("--root DIR", "Serve the files under DIR"),
                ("--index NAMES", "index file names"),
                ("--listing", "List a directory"),
                ("--no-listing", "404"),
                ("--mime EXT=TYPE", "Content-Type TYPE"),
                ("--cache-control PATTERN=VALUE", "Cache-Control: VALUE"),
                ("--not-found FILE", "404 answers"),
                ("--follow-symlinks", "leave the root"),
                ("--show-dotfiles", "starting with '.'"),
                ("--idle-timeout SECS", "idle"),
                ("--request-timeout SECS", "408"),
                ("--send-timeout SECS", "takes no"),
                ("--no-access-log", "no access log"),
                ("--check", "Check the arguments"),
                ("-h, --help", "Print this help"),
                ("-V, --version", "name and version"),
            ],
        );
    }
}

#[test]
fn version_is_name_and_version() {
    let want = format!("jawas-static {}\n", env!("CARGO_PKG_VERSION"));
    for flag in ["--version", "-V"] {
        let (code, out, err, untouched) = run(&[flag]);
        assert_eq!(
            (code, out, err, untouched),
            (0, want.clone(), String::new(), true)
        );
    }
}

/// A root with a 404 page, a file and a subdirectory, for `--check`.
fn check_site() -> TempDir {
    let dir = TempDir::new();
    let fifo = std::ffi::CString::new(
        dir.path()
            .join("fifo")
            .into_os_string()
            .into_encoded_bytes(),
    )
    .unwrap();
    // SAFETY: mkfifo with a NUL-terminated path we own.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    std::fs::create_dir_all(dir.path().join("www/sub")).unwrap();
    std::fs::write(dir.path().join("www/missing.html"), "gone\n").unwrap();
    std::fs::write(dir.path().join("file.txt"), "not a dir\n").unwrap();
    dir
}

#[test]
fn check_accepts_every_argument_form_in_use_without_serving() {
    let dir = check_site();
    let www = dir.path().join("www");
    let www = www.to_str().unwrap();
    let page = format!("{www}/missing.html");
    let table: &[&[&str]] = &[
        &["--check", "--root", www],
        &["--root", www, "--check"],
        &["--check", "--root", "www"],
        &["--check", "--root=www"],
        // tests/static.rs's site() and etc/jawasd.toml.
        &[
            "--check",
            "--root",
            www,
            "--mime",
            "foo=text/x-foo",
            "--cache-control",
            "*.css=max-age=60",
            "--not-found",
            "missing.html",
            "--listing",
            "--request-timeout",
            "1",
            "--idle-timeout",
            "1",
            "--send-timeout",
            "1",
        ],
        &[
            "--check",
            "--root",
            "www",
            "--cache-control",
            "*.css=max-age=3600",
        ],
        &[
            "--check",
            "--root",
            www,
            "--no-access-log",
            "--index",
            "index.html,index.htm",
            "--listing",
            "--no-listing",
            "--mime",
            ".md=text/markdown",
            "--mime=svg=image/svg+xml",
            "--cache-control=/static/*=max-age=31536000, immutable",
            "--not-found",
            &page,
            "--follow-symlinks",
            "--show-dotfiles",
            "--idle-timeout=2.5",
        ],
    ];
    for args in table {
        let got = run_in(dir.path(), args);
        assert_eq!(
            got,
            (0, String::new(), "jawas-static: ok\n".into(), true),
            "{args:?}"
        );
    }
    // The demo configuration's own arguments, from where it runs them.
    let etc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../etc");
    let got = run_in(
        &etc,
        &[
            "--check",
            "--root",
            "www",
            "--cache-control",
            "*.css=max-age=3600",
        ],
    );
    assert_eq!(got.0, 0, "etc/jawasd.toml's web service: {got:?}");
}

#[test]
fn bad_arguments_are_named_with_exit_100_under_check_and_when_serving() {
    let dir = check_site();
    let d = dir.path().to_str().unwrap().to_string();
    let www = format!("{d}/www");
    let file = format!("{d}/file.txt");
    let table: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["--cache-controll", "*.css=max-age=60", "--root", &www],
            "unknown option --cache-controll (did you mean --cache-control?)".into(),
        ),
        (
            vec!["--root", &www, "--no-acces-log"],
            "unknown option --no-acces-log (did you mean --no-access-log?)".into(),
        ),
        (vec![], "--root DIR is required".into()),
        (
            vec!["--root", "/no/such/dir"],
            "--root '/no/such/dir': No such file or directory".into(),
        ),
        (
            vec!["--root", &file],
            format!("--root '{file}': not a directory"),
        ),
        (vec!["--root"], "--root needs a value (DIR)".into()),
        (
            vec!["--root", "--listing"],
            "--root needs a value (DIR) but got the option --listing".into(),
        ),
        (
            vec!["--root", &www, "--listing=yes"],
            "--listing takes no value (got 'yes')".into(),
        ),
        (
            vec!["--root", &www, "--mime", "foo"],
            "--mime 'foo': expected EXT=TYPE".into(),
        ),
        (
            vec!["--root", &www, "--mime", "foo="],
            "--mime 'foo=': TYPE is empty".into(),
        ),
        (
            vec!["--root", &www, "--cache-control", "max-age"],
            "--cache-control 'max-age': expected PATTERN=VALUE".into(),
        ),
        (
            vec!["--root", &www, "--cache-control", "*.css=a\rb"],
            // The message stays one line: the CR is shown as a space.
            "--cache-control '*.css=a b': VALUE has a control character".into(),
        ),
        (
            vec!["--root", &www, "--idle-timeout", "soon"],
            "--idle-timeout 'soon': not a positive number of seconds".into(),
        ),
        (
            vec!["--root", &www, "--send-timeout", "0"],
            "--send-timeout '0': not a positive number of seconds".into(),
        ),
        (
            vec!["--root", &www, "extra"],
            "unexpected argument 'extra'".into(),
        ),
        // Every problem at once, not only the first.
        (
            vec![
                "--root",
                "/no/such/dir",
                "--request-timeout",
                "-1",
                "--mime",
                "x",
            ],
            "--root '/no/such/dir': No such file or directory\n\
             jawas-static: error: --request-timeout '-1': not a positive number of seconds\n\
             jawas-static: error: --mime 'x': expected EXT=TYPE"
                .into(),
        ),
    ];
    for (args, message) in &table {
        let want = format!("jawas-static: error: {message}\n");
        let checked: Vec<&str> = std::iter::once("--check")
            .chain(args.iter().copied())
            .collect();
        for args in [&checked[..], &args[..]] {
            assert_eq!(
                run(args),
                (100, String::new(), want.clone(), true),
                "{args:?}"
            );
        }
    }
}

#[test]
fn check_insists_on_a_readable_not_found_page_serving_falls_back() {
    let dir = check_site();
    let www = dir.path().join("www");
    let www = www.to_str().unwrap();
    for (page, why) in [
        (
            "nope.html",
            format!("{www}/nope.html: No such file or directory"),
        ),
        ("sub", format!("{www}/sub is not a regular file")),
        // A FIFO with no writer: refused at once, never waited on.
        ("../fifo", format!("{www}/../fifo is not a regular file")),
        (
            "/no/such.html",
            "/no/such.html: No such file or directory".into(),
        ),
    ] {
        let got = run(&["--check", "--root", www, "--not-found", page]);
        let want = format!("jawas-static: error: --not-found '{page}': {why}\n");
        assert_eq!(got, (100, String::new(), want, true), "{page}");
        // Serving, a missing page is the built-in 404, not a failure, and
        // a FIFO is not waited on.
        let (stdin_r, mut stdin_w) = std::io::pipe().unwrap();
        stdin_w.write_all(b"GET /absent HTTP/1.0\r\n\r\n").unwrap();
        drop(stdin_w);
        let mut child = Command::new(bin("jawas-static"))
            .args(["--root", www, "--not-found", page])
            .stdin(stdin_r)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + T;
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("--not-found {page}: still serving after {T:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert!(
            out.starts_with("HTTP/1.1 404 Not Found\r\n"),
            "{page}: {out}"
        );
    }
}

#[test]
fn access_log_names_the_client_as_before_ipv4_ipv6_or_a_dash() {
    let d = site("");
    let addrs = d.addrs("web");
    for (addr, tag) in [(addrs[0], "v4"), (addrs[1], "v6")] {
        let (h, _) = curl(&[], &format!("http://{addr}/hello.txt?{tag}"));
        assert_eq!(status(&h), 200, "{addr}");
    }
    for (tag, client) in [("v4", "127.0.0.1"), ("v6", "::1")] {
        let request = format!("\"GET /hello.txt?{tag} HTTP/1.1\" 200");
        assert!(d.wait_log(&request, T), "{request}: {}", d.log());
        let log = d.log();
        let line = log.lines().find(|l| l.contains(&request)).unwrap();
        assert!(
            line.contains(&format!(" {client} - - ["))
                || line.starts_with(&format!("{client} - - [")),
            "{line}"
        );
    }
    // From a pipe: whatever form the environment gives, the compact form;
    // nothing usable, a dash.
    let dir = TempDir::new();
    std::fs::write(dir.path().join("index.html"), "x\n").unwrap();
    for (ip, logged) in [
        (Some("2001:0db8:0000::0001"), "2001:db8::1 - - ["),
        (Some("192.0.2.9"), "192.0.2.9 - - ["),
        (Some("not-an-address"), "- - - ["),
        (None, "- - - ["),
    ] {
        let mut cmd = Command::new(bin("jawas-static"));
        cmd.arg("--root")
            .arg(dir.path())
            .env_remove("TCPREMOTEIP")
            .env_remove("REMOTE_HOST")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(ip) = ip {
            cmd.env("TCPREMOTEIP", ip);
        }
        let mut child = cmd.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"GET / HTTP/1.0\r\n\r\n")
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with(logged), "{ip:?}: {err}");
    }
}
