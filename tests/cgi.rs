//! jawas-cgi through the real jawasd with curl, raw clients and git:
//! meta-variables, body streaming, chunked uploads, every response form,
//! failures and timeouts, keep-alive, and git's own http-backend.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use jawas_tests::{read_all, script, Jawasd, TempDir};

const T: Duration = Duration::from_secs(10);

/// A cgi-bin with the scripts the tests use, served under jawasd.
fn server(extra: &str) -> Jawasd {
    let dir = TempDir::new();
    let bin = dir.path().join("www/cgi-bin");
    std::fs::create_dir_all(&bin).unwrap();
    script(
        &bin,
        "env.sh",
        "printf 'Content-Type: text/plain\\r\\n\\r\\n'; env | sort",
    );
    script(
        &bin,
        "count.sh",
        // Reads the whole body, then reports its size, a checksum, and how
        // much memory jawas-cgi (the parent) ever used.
        "n=$(wc -c | tr -d ' '); printf 'Content-Type: text/plain\\r\\n\\r\\n'; echo \"len=$n cl=$CONTENT_LENGTH\"; grep VmHWM /proc/$PPID/status",
    );
    script(
        &bin,
        "sum.sh",
        "printf 'Content-Type: text/plain\\r\\n\\r\\n'; cksum",
    );
    script(&bin, "status.sh", "printf 'Status: 418 I am a teapot\\r\\nContent-Type: text/plain\\r\\nX-Extra: yes\\r\\n\\r\\nshort and stout\\n'");
    script(
        &bin,
        "local.sh",
        "printf 'Location: /cgi-bin/env.sh/from-redirect\\r\\n\\r\\n'",
    );
    script(
        &bin,
        "away.sh",
        "printf 'Location: http://example.com/elsewhere\\r\\n\\r\\n'",
    );
    script(&bin, "nph-raw.sh", "printf 'HTTP/1.1 200 OK\\r\\nContent-Type: text/plain\\r\\nConnection: close\\r\\n\\r\\nraw from the script\\n'");
    script(
        &bin,
        "sized.sh",
        "printf 'Content-Type: text/plain\\r\\nContent-Length: 6\\r\\n\\r\\nsized\\n'",
    );
    script(&bin, "crash.sh", "echo 'about to fail' >&2; exit 3");
    script(
        &bin,
        "malformed.sh",
        "printf 'this is not a header\\n\\nbody'",
    );
    script(
        &bin,
        "slow.sh",
        "sleep 5; printf 'Content-Type: text/plain\\r\\n\\r\\nlate\\n'",
    );
    script(
        &bin,
        "big.sh",
        "printf 'Content-Type: application/octet-stream\\r\\n\\r\\n'; head -c 3000000 /dev/zero",
    );
    script(
        &bin,
        "trickle.sh",
        // A body that takes longer than --timeout (1 s) but never goes
        // quiet for that long.
        "printf 'Content-Type: text/plain\\r\\n\\r\\n'; for i in 1 2 3 4 5 6; do echo line $i; sleep 0.4; done",
    );
    script(
        &bin,
        "interim.sh",
        "printf 'Status: 100 Continue\\r\\n\\r\\n'",
    );
    std::fs::write(bin.join("not-exec.sh"), "#!/bin/sh\necho no\n").unwrap();
    let config = format!(
        "[services.cgi]\nlisten = \"127.0.0.1:0\"\nengine = \"jawas-cgi\"\nargs = [\"--root\", \"{{dir}}/www\", \"--timeout\", \"1\" {extra}]\ncapture_stderr = true\n"
    );
    Jawasd::builder(&config).dir(dir).start()
}

fn curl(args: &[&str], url: &str) -> (u16, String, Vec<u8>) {
    let out = Command::new("curl")
        .args([
            "-s",
            "-S",
            "--max-time",
            "20",
            "-D",
            "/dev/stderr",
            "-o",
            "-",
        ])
        .args(args)
        .arg(url)
        .output()
        .expect("curl");
    let head = String::from_utf8_lossy(&out.stderr).to_string();
    let status = head
        .lines()
        .rfind(|l| l.starts_with("HTTP/"))
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head, out.stdout)
}

fn u(d: &Jawasd, path: &str) -> String {
    format!("http://{}{path}", d.addr("cgi"))
}

#[test]
fn meta_variables() {
    let d = server("");
    let (st, _, body) = curl(
        &[
            "-H",
            "Proxy: http://evil.example/",
            "-H",
            "X-Custom: one",
            "-H",
            "Authorization: Basic Zm9vOmJhcg==",
            "-d",
            "a=b",
        ],
        &u(&d, "/cgi-bin/env.sh/extra/info?q=1&r=2"),
    );
    assert_eq!(st, 200);
    let env = String::from_utf8(body).unwrap();
    let port = d.addr("cgi").port();
    for want in [
        "GATEWAY_INTERFACE=CGI/1.1".to_string(),
        "REQUEST_METHOD=POST".into(),
        "SCRIPT_NAME=/cgi-bin/env.sh".into(),
        "PATH_INFO=/extra/info".into(),
        "QUERY_STRING=q=1&r=2".into(),
        "REQUEST_URI=/cgi-bin/env.sh/extra/info?q=1&r=2".into(),
        "CONTENT_LENGTH=3".into(),
        "CONTENT_TYPE=application/x-www-form-urlencoded".into(),
        "REMOTE_ADDR=127.0.0.1".into(),
        "REMOTE_HOST=127.0.0.1".into(),
        "SERVER_NAME=127.0.0.1".into(),
        format!("SERVER_PORT={port}"),
        "SERVER_PROTOCOL=HTTP/1.1".into(),
        "AUTH_TYPE=Basic".into(),
        "HTTP_X_CUSTOM=one".into(),
        format!("HTTP_HOST=127.0.0.1:{port}"),
    ] {
        assert!(env.lines().any(|l| l == want), "missing {want} in:\n{env}");
    }
    for prefix in [
        "REMOTE_PORT=",
        "SERVER_SOFTWARE=jawas-cgi/",
        "SCRIPT_FILENAME=/",
        "DOCUMENT_ROOT=/",
        "PATH_TRANSLATED=/",
    ] {
        assert!(
            env.lines().any(|l| l.starts_with(prefix)),
            "missing {prefix} in:\n{env}"
        );
    }
    assert!(!env.contains("HTTP_PROXY"), "httpoxy: {env}");
    assert!(
        !env.contains("HTTP_AUTHORIZATION"),
        "credentials passed: {env}"
    );
}

#[test]
fn large_upload_streams_without_buffering() {
    let d = server(", \"--max-body\", \"100000000\"");
    let dir = TempDir::new();
    let file = dir.path().join("upload.bin");
    let data: Vec<u8> = (0..40_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, &data).unwrap();
    let (st, _, body) = curl(
        &["--data-binary", &format!("@{}", file.display())],
        &u(&d, "/cgi-bin/count.sh"),
    );
    assert_eq!(st, 200);
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains("len=40000000 cl=40000000"), "{text}");
    let hwm_kb: u64 = text
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        hwm_kb < 20_000,
        "jawas-cgi held {hwm_kb} kB for a 40 MB upload"
    );
}

#[test]
fn chunked_upload_is_decoded_with_content_length() {
    let d = server("");
    let dir = TempDir::new();
    let file = dir.path().join("chunked.bin");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 97) as u8).collect();
    std::fs::write(&file, &data).unwrap();
    let (st, _, body) = curl(
        &[
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            &format!("@{}", file.display()),
        ],
        &u(&d, "/cgi-bin/count.sh"),
    );
    assert_eq!(st, 200);
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains("len=3000000 cl=3000000"), "{text}");
    // The bytes themselves arrive intact.
    let local = Command::new("cksum").arg(&file).output().unwrap();
    let want = String::from_utf8_lossy(&local.stdout)
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let (_, _, body) = curl(
        &[
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            &format!("@{}", file.display()),
        ],
        &u(&d, "/cgi-bin/sum.sh"),
    );
    let got = String::from_utf8_lossy(&body)
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(got, want);
}

#[test]
fn response_forms() {
    let d = server("");
    let (st, head, body) = curl(&[], &u(&d, "/cgi-bin/status.sh"));
    assert_eq!(
        (st, body.as_slice()),
        (418, b"short and stout\n".as_slice())
    );
    assert!(head.contains("X-Extra: yes"), "{head}");
    let (st, _, body) = curl(&[], &u(&d, "/cgi-bin/local.sh"));
    assert_eq!(st, 200, "a local redirect is served in place");
    assert!(String::from_utf8_lossy(&body).contains("PATH_INFO=/from-redirect"));
    assert!(String::from_utf8_lossy(&body).contains("REQUEST_METHOD=GET"));
    let (st, head, _) = curl(&[], &u(&d, "/cgi-bin/away.sh"));
    assert_eq!(st, 302);
    assert!(
        head.contains("Location: http://example.com/elsewhere"),
        "{head}"
    );
    let (st, _, body) = curl(&[], &u(&d, "/cgi-bin/nph-raw.sh"));
    assert_eq!(
        (st, body.as_slice()),
        (200, b"raw from the script\n".as_slice())
    );
    let (st, head, body) = curl(&[], &u(&d, "/cgi-bin/sized.sh"));
    assert_eq!((st, body.as_slice()), (200, b"sized\n".as_slice()));
    assert!(head.contains("Content-Length: 6"), "{head}");
    let (st, head, body) = curl(&[], &u(&d, "/cgi-bin/big.sh"));
    assert_eq!((st, body.len()), (200, 3_000_000));
    assert!(
        head.contains("Transfer-Encoding: chunked"),
        "no length: chunked on HTTP/1.1: {head}"
    );
    let (st, head, body) = curl(&["--http1.0"], &u(&d, "/cgi-bin/env.sh"));
    assert_eq!(st, 200);
    assert!(
        !head.contains("chunked") && !body.is_empty(),
        "HTTP/1.0: close-delimited: {head}"
    );
}

#[test]
fn failures_answer_and_the_engine_survives() {
    let d = server("");
    let mut s = TcpStream::connect(d.addr("cgi")).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    let get = |p: &str| format!("GET {p} HTTP/1.1\r\nHost: x\r\n\r\n");
    let all: String = [
        "/cgi-bin/missing.sh",
        "/cgi-bin/not-exec.sh",
        "/cgi-bin/crash.sh",
        "/cgi-bin/malformed.sh",
        "/cgi-bin/slow.sh",
        "/cgi-bin/../../etc/passwd",
    ]
    .iter()
    .map(|p| get(p))
    .collect::<String>()
        + "GET /cgi-bin/env.sh HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    s.write_all(all.as_bytes()).unwrap();
    let out = String::from_utf8_lossy(&read_all(&mut s)).to_string();
    let statuses: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("HTTP/1.1 "))
        .map(|l| &l[9..12])
        .collect();
    assert_eq!(
        statuses,
        ["404", "403", "500", "500", "504", "400", "200"],
        "{out}"
    );
    assert!(
        out.contains("GATEWAY_INTERFACE=CGI/1.1"),
        "the last request was served on the same connection"
    );
    for want in [
        "about to fail",
        "crash.sh: no output (premature end of script headers)",
        "malformed.sh: malformed header line",
        "slow.sh: timed out before its header",
    ] {
        assert!(d.wait_log(want, T), "want {want:?} in the log: {}", d.log());
    }
}

#[test]
fn keep_alive_across_cgi_requests() {
    let d = server("");
    let urls: Vec<String> = (0..4).map(|_| u(&d, "/cgi-bin/status.sh")).collect();
    let out = Command::new("curl")
        .arg("-sv")
        .args(&urls)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.matches("Re-using existing connection").count()
            + err.matches("Reusing existing").count(),
        3,
        "{err}"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .matches("short and stout")
            .count(),
        4
    );
    // Pipelined, with a body in between.
    let mut s = TcpStream::connect(d.addr("cgi")).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    s.write_all(b"POST /cgi-bin/count.sh HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /cgi-bin/sized.sh HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let _ = s.shutdown(Shutdown::Write);
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(
        out.contains("len=5 cl=5") && out.ends_with("sized\n"),
        "{out}"
    );
}

fn git(args: &[&str], cwd: &Path) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn git_clone_fetch_and_push_over_http_backend() {
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
    git(
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@e",
            "commit",
            "-q",
            "-m",
            "one",
        ],
        &seed,
    );
    git(&["push", "-q", bare.to_str().unwrap(), "main"], &seed);
    let backend = [
        "/usr/lib/git-core/git-http-backend",
        "/usr/libexec/git-core/git-http-backend",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
    .expect("git-http-backend (Debian package git)");
    let d = Jawasd::builder(&format!(
        "[services.git]\nlisten = \"127.0.0.1:0\"\nengine = \"jawas-cgi\"\nargs = [\"--script\", \"{backend}\", \"--prefix\", \"/git\", \"--env\", \"GIT_PROJECT_ROOT={}\", \"--env\", \"GIT_HTTP_EXPORT_ALL=1\"]\ncapture_stderr = true\n",
        repos.display()
    ))
    .start();
    let url = format!("http://{}/git/project.git", d.addr("git"));
    let clone = dir.path().join("clone");
    git(&["clone", "-q", &url, clone.to_str().unwrap()], dir.path());
    assert_eq!(
        std::fs::read_to_string(clone.join("README")).unwrap(),
        "first\n"
    );
    // Push a commit big enough that git sends it chunked (over http.postBuffer).
    let big: String = (0..300_000)
        .map(|i| {
            format!(
                "line {i} of a file git cannot compress away {}\n",
                (i as u64) * 7919 % 104_729
            )
        })
        .collect();
    std::fs::write(clone.join("big.txt"), big).unwrap();
    git(&["add", "big.txt"], &clone);
    git(
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@e",
            "commit",
            "-q",
            "-m",
            "two",
        ],
        &clone,
    );
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
    // Fetch it back from the seed.
    git(&["fetch", "-q", &url, "main"], &seed);
    assert_eq!(
        git(&["log", "--format=%s", "FETCH_HEAD"], &seed).trim(),
        "two\none"
    );
}

#[test]
fn the_query_never_names_the_script() {
    let d = server("");
    let (st, _, _) = curl(&[], &u(&d, "/nothing?x=http://h/cgi-bin/env.sh"));
    assert_eq!(st, 404);
    let (st, _, body) = curl(&[], &u(&d, "/cgi-bin/env.sh?x=http://h/cgi-bin/status.sh"));
    assert_eq!(st, 200);
    assert!(String::from_utf8_lossy(&body).contains("QUERY_STRING=x=http://h/cgi-bin/status.sh"));
}

/// jawas-cgi --script env.sh under the prefix /app.
fn script_server() -> Jawasd {
    let dir = TempDir::new();
    let www = dir.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    script(
        &www,
        "env.sh",
        "printf 'Content-Type: text/plain\\r\\n\\r\\n'; env | sort",
    );
    let config = "[services.cgi]\nlisten = \"127.0.0.1:0\"\nengine = \"jawas-cgi\"\nargs = [\"--script\", \"{dir}/www/env.sh\", \"--prefix\", \"/app\"]\ncapture_stderr = true\n";
    Jawasd::builder(config).dir(dir).start()
}

/// One request on a fresh connection: everything the server sent.
fn raw_get(d: &Jawasd, target: &str, headers: &str) -> String {
    let mut s = TcpStream::connect(d.addr("cgi")).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n"
    )
    .unwrap();
    String::from_utf8_lossy(&read_all(&mut s)).to_string()
}

#[test]
fn script_mode_path_info_follows_the_root_rules() {
    let d = script_server();
    for (target, want) in [
        ("/app/%2e%2e/%2e%2e/etc/passwd", "HTTP/1.1 400"),
        ("/app/a%00b", "HTTP/1.1 400"),
        ("/app/a%zz", "HTTP/1.1 400"),
        ("/app/.git/config", "HTTP/1.1 404"),
    ] {
        let out = raw_get(&d, target, "");
        assert!(out.starts_with(want), "{target}: {out}");
        assert!(!out.contains("PATH_TRANSLATED"), "{target}: {out}");
    }
    let out = raw_get(&d, "/app/a/./b/%2e%2e/c%20d/", "");
    assert!(out.contains("\nPATH_INFO=/a/c d/\n"), "{out}");
    let root = out
        .lines()
        .find_map(|l| l.strip_prefix("DOCUMENT_ROOT="))
        .unwrap()
        .to_string();
    assert!(
        out.contains(&format!("\nPATH_TRANSLATED={root}/a/c d/\n")),
        "{out}"
    );
    let out = raw_get(&d, "/app", "");
    assert!(out.contains("\nPATH_INFO=\n"), "{out}");
}

#[test]
fn header_names_with_underscores_are_dropped() {
    let d = server("");
    let (st, _, body) = curl(
        &["-H", "X_Real_IP: 6.6.6.6", "-H", "X-Real-IP: 10.0.0.1"],
        &u(&d, "/cgi-bin/env.sh"),
    );
    assert_eq!(st, 200);
    let env = String::from_utf8(body).unwrap();
    assert!(env.contains("\nHTTP_X_REAL_IP=10.0.0.1\n"), "{env}");
    assert!(!env.contains("6.6.6.6"), "{env}");
}

#[test]
fn ipv6_host_gives_a_bracketed_server_name() {
    let d = server("");
    let out = raw_get(&d, "/cgi-bin/env.sh", "");
    assert!(out.contains("\nSERVER_NAME=x\n"), "{out}");
    let mut s = TcpStream::connect(d.addr("cgi")).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    s.write_all(b"GET /cgi-bin/env.sh HTTP/1.1\r\nHost: [::1]:8080\r\nConnection: close\r\n\r\n")
        .unwrap();
    let out = String::from_utf8_lossy(&read_all(&mut s)).to_string();
    assert!(out.contains("\nSERVER_NAME=[::1]\n"), "{out}");
    let mut s = TcpStream::connect(d.addr("cgi")).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    s.write_all(b"GET /cgi-bin/env.sh HTTP/1.1\r\nHost: [::1]\r\nConnection: close\r\n\r\n")
        .unwrap();
    let out = String::from_utf8_lossy(&read_all(&mut s)).to_string();
    assert!(out.contains("\nSERVER_NAME=[::1]\n"), "{out}");
}

#[test]
fn a_bare_cr_in_a_script_header_never_reaches_the_client() {
    let d = server("");
    let dir = d.dir().join("www/cgi-bin");
    script(
        &dir,
        "split.sh",
        "printf 'Content-Type: text/plain\\r\\nX-A: a\\rSet-Cookie: evil=1\\r\\n\\r\\nbody\\n'",
    );
    let out = raw_get(&d, "/cgi-bin/split.sh", "");
    assert!(out.starts_with("HTTP/1.1 500 "), "{out:?}");
    assert!(!out.contains("evil"), "{out:?}");
    assert!(
        d.wait_log("control character in header line", T),
        "{}",
        d.log()
    );
}

#[test]
fn the_service_env_and_pass_env_reach_scripts() {
    let dir = TempDir::new();
    let www = dir.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    script(
        &www,
        "env.sh",
        "printf 'Content-Type: text/plain\\r\\n\\r\\n'; env | sort",
    );
    let config = r#"
[services.cgi]
listen = "127.0.0.1:0"
engine = "jawas-cgi"
args = ["--script", "{dir}/www/env.sh"]
env = { GIT_PROJECT_ROOT = "/srv/git", CONTENT_LENGTH = "99", HTTP_X_FORGED = "1" }
pass_env = ["JAWAS_TEST_PASSED"]
capture_stderr = true
"#;
    let d = Jawasd::builder(config)
        .env("JAWAS_TEST_PASSED", "through")
        .env("JAWAS_TEST_NOT_PASSED", "no")
        .dir(dir)
        .start();
    let out = raw_get(&d, "/", "");
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.contains("\nGIT_PROJECT_ROOT=/srv/git\n"), "{out}");
    assert!(out.contains("\nJAWAS_TEST_PASSED=through\n"), "{out}");
    assert!(!out.contains("JAWAS_TEST_NOT_PASSED"), "{out}");
    // The request defines these, never the service.
    assert!(!out.contains("CONTENT_LENGTH=99"), "{out}");
    assert!(!out.contains("HTTP_X_FORGED"), "{out}");
    assert!(!out.contains("TCPREMOTEIP"), "{out}");
}

#[test]
fn a_body_over_the_limit_is_413_and_closes() {
    let d = server(", \"--max-body\", \"10\"");
    let mut s = TcpStream::connect(d.addr("cgi")).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    s.write_all(b"POST /cgi-bin/sum.sh HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello worldGET /cgi-bin/env.sh HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let out = String::from_utf8_lossy(&read_all(&mut s)).to_string();
    assert!(out.starts_with("HTTP/1.1 413 "), "{out}");
    assert!(out.contains("Connection: close\r\n"), "{out}");
    assert_eq!(out.matches("HTTP/1.1 ").count(), 1, "{out}");
}

#[test]
fn header_bytes_pass_unchanged_both_ways() {
    let d = server("");
    script(
        &d.dir().join("www/cgi-bin"),
        "latin1.sh",
        "printf 'Content-Type: text/plain\\r\\nContent-Disposition: attachment; filename=\"caf\\351.txt\"\\r\\n\\r\\n'; printf '%s' \"$HTTP_X_RAW\"",
    );
    let mut s = TcpStream::connect(d.addr("cgi")).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    s.write_all(b"GET /cgi-bin/latin1.sh HTTP/1.1\r\nHost: x\r\nX-Raw: na\xefve\r\nConnection: close\r\n\r\n")
        .unwrap();
    let out = read_all(&mut s);
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 200 "), "{text}");
    let has = |needle: &[u8]| out.windows(needle.len()).any(|w| w == needle);
    assert!(
        has(b"filename=\"caf\xe9.txt\"\r\n"),
        "script header re-encoded: {text}"
    );
    assert!(
        has(b"\r\nna\xefve\r\n"),
        "request header re-encoded: {text}"
    );
}

#[test]
fn a_client_that_stops_reading_ends_the_script_and_the_engine() {
    let dir = TempDir::new();
    let bin = dir.path().join("www/cgi-bin");
    std::fs::create_dir_all(&bin).unwrap();
    script(
        &bin,
        "flood.sh",
        "printf 'Content-Type: application/octet-stream\\r\\n\\r\\n'; head -c 50000000 /dev/zero",
    );
    let config = "[services.cgi]\nlisten = \"127.0.0.1:0\"\nengine = \"jawas-cgi\"\nargs = [\"--root\", \"{dir}/www\", \"--timeout\", \"60\", \"--send-timeout\", \"1\"]\ncapture_stderr = true\n";
    let d = Jawasd::builder(config).dir(dir).start();
    let mut s = TcpStream::connect(d.addr("cgi")).unwrap();
    s.write_all(b"GET /cgi-bin/flood.sh HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let started = std::time::Instant::now();
    while d.children().is_empty() && started.elapsed() < T {
        std::thread::sleep(Duration::from_millis(20));
    }
    while !d.children().is_empty() && started.elapsed() < T {
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(6),
        "engine still there after {took:?}"
    );
    assert!(d.wait_log("client stopped reading", T), "{}", d.log());
    drop(s);
}

/// What a client sent that the engine must leave alone under `--check`,
/// `--help`, `--version` and a usage error.
/// Runs `jawas-cgi ARGS` (see `run_engine`).
fn run(args: &[&str]) -> (i32, String, String, bool) {
    jawas_tests::run_engine("jawas-cgi", Path::new("."), args)
}

#[test]
fn help_describes_every_option() {
    for flag in ["--help", "-h"] {
        let (code, out, err, untouched) = run(&[flag]);
        assert_eq!((code, err.as_str(), untouched), (0, "", true), "{flag}");
        assert!(
            out.starts_with(
                "usage: jawas-cgi [OPTION]... --root DIR\n\
                 \x20      jawas-cgi [OPTION]... --script FILE\n"
            ),
            "{out}"
        );
        jawas_tests::assert_help_lists(
            &out,
            &[
                ("--root DIR", "first executable file"),
                ("--script FILE", "for every request"),
                ("--prefix /PATH", "URL paths under /PATH"),
                ("--index NAME", "the script to run"),
                ("--env NAME=VALUE", "Set NAME to VALUE"),
                ("--timeout SECS", "504"),
                ("--max-body BYTES", "413"),
                ("--server-name NAME", "SERVER_NAME"),
                ("--idle-timeout SECS", "idle"),
                ("--send-timeout SECS", "takes no"),
                ("--check", "Check the arguments"),
                ("-h, --help", "Print this help"),
                ("-V, --version", "name and version"),
            ],
        );
    }
}

#[test]
fn version_is_name_and_version() {
    let want = format!("jawas-cgi {}\n", env!("CARGO_PKG_VERSION"));
    for flag in ["--version", "-V"] {
        let (code, out, err, untouched) = run(&[flag]);
        assert_eq!(
            (code, out, err, untouched),
            (0, want.clone(), String::new(), true)
        );
    }
}

#[test]
fn check_accepts_every_argument_form_in_use_without_serving() {
    let dir = TempDir::new();
    let www = dir.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    let env_sh = script(&www, "env.sh", "env");
    let (www, env_sh) = (www.to_str().unwrap(), env_sh.to_str().unwrap());
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../engines/examples");
    let root_eq = format!("--root={www}");
    let table: &[&[&str]] = &[
        &["--check", "--root", www],
        &["--root", www, "--check"],
        &[
            "--check",
            "--root",
            www,
            "--timeout",
            "1",
            "--max-body",
            "100000000",
        ],
        &[
            "--check",
            "--root",
            www,
            "--timeout",
            "60",
            "--send-timeout",
            "1",
        ],
        &["--check", "--script", env_sh, "--prefix", "/app"],
        // The git http-backend service of the tests and docs/cgi.md.
        &[
            "--check",
            "--script",
            env_sh,
            "--prefix",
            "/git",
            "--env",
            "GIT_PROJECT_ROOT=/srv/git",
            "--env",
            "GIT_HTTP_EXPORT_ALL=1",
        ],
        &["--check", &root_eq],
        &[
            "--check",
            "--root",
            www,
            "--prefix=/cgi/",
            "--index",
            "env.sh",
            "--env=EMPTY=",
            "--server-name",
            "example.org",
            "--idle-timeout",
            "2.5",
        ],
        // etc/jawasd.toml's cgi service.
        &["--check", "--root", examples.to_str().unwrap()],
    ];
    for args in table {
        let got = run(args);
        assert_eq!(
            got,
            (0, String::new(), "jawas-cgi: ok\n".into(), true),
            "{args:?}"
        );
    }
}

#[test]
fn bad_arguments_are_named_with_exit_100_under_check_and_when_serving() {
    let dir = TempDir::new();
    let d = dir.path().to_str().unwrap().to_string();
    let plain = format!("{d}/plain.sh");
    std::fs::write(&plain, "#!/bin/sh\n").unwrap();
    let exe = script(dir.path(), "ok.sh", "env");
    let exe = exe.to_str().unwrap();
    let table: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["--script", "/no/such/script"],
            "--script '/no/such/script': No such file or directory".into(),
        ),
        (
            vec!["--script", &plain],
            format!("--script '{plain}': not an executable file"),
        ),
        (
            vec!["--script", &d],
            format!("--script '{d}': not an executable file"),
        ),
        (
            vec!["--root", "/no/such/dir"],
            "--root '/no/such/dir': No such file or directory".into(),
        ),
        (
            vec!["--root", exe],
            format!("--root '{exe}': not a directory"),
        ),
        (vec![], "--root DIR or --script FILE is required".into()),
        (
            vec!["--root", &d, "--script", exe],
            "give --root or --script, not both".into(),
        ),
        (
            vec!["--root", &d, "--timout", "5"],
            "unknown option --timout (did you mean --timeout?)".into(),
        ),
        (
            vec!["--root", &d, "--timeout", "soon"],
            "--timeout 'soon': not a positive number of seconds".into(),
        ),
        (
            vec!["--root", &d, "--max-body", "1k"],
            "--max-body '1k': not a whole number of bytes".into(),
        ),
        (
            vec!["--root", &d, "--env", "NOVALUE"],
            "--env 'NOVALUE': expected NAME=VALUE".into(),
        ),
        (
            vec!["--root", &d, "--prefix", "app"],
            "--prefix 'app': a URL path starting with /, such as /app".into(),
        ),
        (vec!["--script"], "--script needs a value (FILE)".into()),
        (
            vec!["--root", &d, "extra"],
            "unexpected argument 'extra'".into(),
        ),
        // Every problem at once, not only the first.
        (
            vec![
                "--script",
                "/no/such/script",
                "--send-timeout",
                "0",
                "--env",
                "=x",
            ],
            "--script '/no/such/script': No such file or directory\n\
             jawas-cgi: error: --send-timeout '0': not a positive number of seconds\n\
             jawas-cgi: error: --env '=x': expected NAME=VALUE with a NAME"
                .into(),
        ),
    ];
    for (args, message) in &table {
        let want = format!("jawas-cgi: error: {message}\n");
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
fn the_timeout_bounds_the_header_not_a_long_body() {
    let d = server("");
    let (status, _, body) = curl(&[], &u(&d, "/cgi-bin/trickle.sh"));
    assert_eq!(status, 200);
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains("line 6"), "the whole body arrived: {body}");
}

#[test]
fn an_interim_status_from_a_script_is_an_error() {
    let d = server("");
    let (status, _, _) = curl(&[], &u(&d, "/cgi-bin/interim.sh"));
    assert_eq!(status, 500, "{}", d.log());
    assert!(d.wait_log("bad Status '100 Continue'", T), "{}", d.log());
}
