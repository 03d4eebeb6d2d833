//! jawas-blog through the real jawasd, with curl, Python's feedparser and
//! xml.etree as clients: the URLs a reader and a feed reader use, the
//! redirects, validators, search, drafts and future posts, `build`,
//! `check` and `new`, and the cache (edits seen after the period, 20
//! concurrent first requests, damage rebuilt, a read-only site).
//!
//! Each test copies `tests/fixtures/blog` into its own temp dir.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use jawas_tests::{bin, run_engine, Jawasd, TempDir};

/// The period the tests serve with: short, so edits show quickly.
const PERIOD: f64 = 0.2;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/blog")
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

/// A temp dir holding a copy of the fixture site at `DIR/site`.
fn site_dir() -> TempDir {
    let dir = TempDir::new();
    copy_tree(&fixture(), &dir.path().join("site"));
    dir
}

/// jawasd serving `DIR/site` with `extra` arguments to jawas-blog.
fn serve(dir: TempDir, extra: &[&str]) -> Jawasd {
    let mut args = vec![
        "--site".to_string(),
        "{dir}/site".to_string(),
        "--period".to_string(),
        PERIOD.to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let list: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
    let config = format!(
        "[services.blog]\nlisten = \"127.0.0.1:0\"\nengine = \"jawas-blog\"\n\
         args = [{}]\ncapture_stderr = true\n",
        list.join(", ")
    );
    Jawasd::builder(&config).dir(dir).start()
}

fn blog(extra: &[&str]) -> Jawasd {
    serve(site_dir(), extra)
}

struct Got {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Got {
    fn header(&self, name: &str) -> Option<&str> {
        self.head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }
}

/// curl `path` on the blog with extra `args`; no redirects followed.
fn get(d: &Jawasd, path: &str, args: &[&str]) -> Got {
    let url = format!("http://{}{}", d.addr("blog"), path);
    // With -I curl prints the head itself; otherwise ask for it with -D -.
    let dump: &[&str] = if args.contains(&"-I") {
        &[]
    } else {
        &["-D", "-"]
    };
    let out = Command::new("curl")
        .args(["-s", "-S", "--max-time", "20"])
        .args(dump)
        .args(args)
        .arg(&url)
        .output()
        .expect("curl runs (CI installs it)");
    assert!(out.status.success(), "curl {url}: {:?}", out);
    let all = out.stdout;
    let split = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .unwrap_or(all.len());
    let head = String::from_utf8_lossy(&all[..split]).to_string();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Got {
        status,
        head,
        body: all[split..].to_vec(),
    }
}

fn python(script: &str, input: &[u8]) -> String {
    use std::io::Write;
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn wait_period() {
    std::thread::sleep(Duration::from_secs_f64(PERIOD * 2.0));
}

#[test]
fn help_check_and_usage_errors() {
    let dir = site_dir();
    let (code, out, _, unread) = run_engine("jawas-blog", dir.path(), &["--help"]);
    assert_eq!(code, 0);
    assert!(unread);
    for sub in ["build", "check", "new", "import-ghost"] {
        assert!(
            out.contains(&format!("jawas-blog {sub} ")),
            "{sub} in:\n{out}"
        );
    }
    jawas_tests::assert_help_lists(
        &out,
        &[
            ("--site DIR", "Serve the site"),
            ("--cache DIR", "Keep the rendered site"),
            ("--drafts", "draft"),
            ("--period SECS", "once per SECS"),
        ],
    );
    for (sub, option, says) in [
        ("build", "--out DIR", "Write the files"),
        ("check", "--site DIR", "The site"),
        ("new", "--site DIR", "The site"),
    ] {
        let (code, out, err, _) = run_engine("jawas-blog", dir.path(), &[sub, "--help"]);
        assert_eq!(code, 0, "{sub}: {err}");
        jawas_tests::assert_help_lists(&out, &[(option, says)]);
    }
    let site = dir.path().join("site");
    let site = site.to_str().unwrap();
    let table: &[(&[&str], i32, &str)] = &[
        (&["--check", "--site", site], 0, "ok"),
        (&["--check"], 100, "--site DIR is required"),
        (
            &["--check", "--site", "/nonexistent"],
            100,
            "--site '/nonexistent'",
        ),
        (
            &["--check", "--site", site, "--period", "0"],
            100,
            "--period",
        ),
        (
            &["--check", "--site", site, "--sitee", "x"],
            100,
            "did you mean",
        ),
    ];
    for (args, want, says) in table {
        let (code, _, err, unread) = run_engine("jawas-blog", dir.path(), args);
        assert_eq!(code, *want, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(unread, "{args:?} read the connection");
    }
}

#[test]
fn pages_feeds_static_and_404() {
    let d = blog(&[]);
    let index = get(&d, "/", &[]);
    assert_eq!(index.status, 200, "{}", index.head);
    assert_eq!(
        index.header("Content-Type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(index.header("Cache-Control"), Some("no-cache"));
    assert!(index.text().contains("Third Post"), "{}", index.text());
    let post = get(&d, "/hello-world/", &[]);
    assert_eq!(post.status, 200);
    assert!(post.text().contains("Hello World"));
    for (path, ty) in [
        ("/page/2/", "text/html"),
        ("/about/", "text/html"),
        ("/tag/", "text/html"),
        ("/tag/rust/", "text/html"),
        ("/tag/web-dev/", "text/html"),
        ("/author/ana/", "text/html"),
        ("/rss/", "xml"),
        ("/tag/rust/rss/", "xml"),
        ("/atom.xml", "xml"),
        ("/sitemap.xml", "xml"),
        ("/robots.txt", "text/plain"),
        ("/images/dot.png", "image/png"),
    ] {
        let got = get(&d, path, &[]);
        assert_eq!(got.status, 200, "{path}: {}", got.head);
        let ct = got.header("Content-Type").unwrap_or("");
        assert!(ct.contains(ty), "{path}: {ct}");
        assert!(got.header("ETag").is_some(), "{path}");
        assert!(got.header("Last-Modified").is_some(), "{path}");
    }
    let png = get(&d, "/images/dot.png", &[]);
    assert_eq!(
        png.body,
        std::fs::read(fixture().join("static/images/dot.png")).unwrap()
    );
    assert!(get(&d, "/robots.txt", &[])
        .text()
        .contains("https://blog.example.org/sitemap.xml"));
    // The themed 404: status 404, the site's own page.
    for path in [
        "/no-such-post/",
        "/nope",
        "/.hidden",
        "/.jawas-cache/lock",
        "/secret/",
    ] {
        let got = get(&d, path, &[]);
        assert_eq!(got.status, 404, "{path}");
        assert!(
            got.text().contains("Fixture Blog"),
            "{path}: {}",
            got.text()
        );
    }
    // HEAD: the same head, no body.
    let head = get(&d, "/hello-world/", &["-I"]);
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("Content-Length"),
        Some(post.body.len().to_string().as_str())
    );
    assert!(head.body.is_empty());
    let post_req = get(&d, "/", &["-X", "POST", "-d", "x=1"]);
    assert_eq!(post_req.status, 405);
    assert_eq!(post_req.header("Allow"), Some("GET, HEAD"));
    let bad = get(&d, "/%zz", &[]);
    assert_eq!(bad.status, 400);
}

#[test]
fn redirects() {
    let d = blog(&[]);
    for (path, to) in [
        ("/old-hello/", "/hello-world/"),
        ("/old-hello", "/hello-world/"),
        ("/page/1/", "/"),
        ("/hello-world", "/hello-world/"),
        ("/rss", "/rss/"),
        ("/tag/rust", "/tag/rust/"),
        ("/hello-world?ref=x", "/hello-world/?ref=x"),
    ] {
        let got = get(&d, path, &[]);
        assert_eq!(got.status, 301, "{path}: {}", got.head);
        assert_eq!(got.header("Location"), Some(to), "{path}");
    }
}

#[test]
fn validators_and_ranges() {
    let d = blog(&[]);
    let first = get(&d, "/hello-world/", &[]);
    let etag = first.header("ETag").unwrap().to_string();
    let modified = first.header("Last-Modified").unwrap().to_string();
    let again = get(
        &d,
        "/hello-world/",
        &["-H", &format!("If-None-Match: {etag}")],
    );
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    let since = get(
        &d,
        "/hello-world/",
        &["-H", &format!("If-Modified-Since: {modified}")],
    );
    assert_eq!(since.status, 304);
    let other = get(&d, "/hello-world/", &["-H", "If-None-Match: \"other\""]);
    assert_eq!(other.status, 200);
    let part = get(&d, "/hello-world/", &["-r", "0-9"]);
    assert_eq!(part.status, 206);
    assert_eq!(part.body, first.body[..10]);
    let beyond = get(&d, "/hello-world/", &["-r", "999999-"]);
    assert_eq!(beyond.status, 416);
    // Theme assets may be cached a while; pages are always revalidated.
    let css = find_in_body(&first.text(), "/theme/", ".css").expect("a theme stylesheet");
    let got = get(&d, &css, &[]);
    assert_eq!(got.status, 200, "{css}");
    assert_eq!(got.header("Content-Type"), Some("text/css; charset=utf-8"));
    assert!(got.header("Cache-Control").unwrap().contains("max-age"));
}

/// The first `START...END` substring of `text` (a URL in a page).
fn find_in_body(text: &str, start: &str, end: &str) -> Option<String> {
    let i = text.find(start)?;
    let j = text[i..].find(end)? + i + end.len();
    Some(text[i..j].to_string())
}

#[test]
fn feeds_parse_and_sitemap_is_xml() {
    let d = blog(&[]);
    let check_feed = r#"
import sys, feedparser
f = feedparser.parse(sys.stdin.buffer.read())
assert not f.bozo, f.bozo_exception
assert len(f.entries) == 3, len(f.entries)
for e in f.entries:
    assert e.get("id"), e
    assert e.get("link", "").startswith("https://blog.example.org/"), e.get("link")
    assert e.get("updated_parsed") or e.get("published_parsed"), e
print(f.version, sorted(e.title for e in f.entries))
"#;
    for path in ["/rss/", "/atom.xml"] {
        let feed = get(&d, path, &[]);
        assert_eq!(feed.status, 200);
        let out = python(check_feed, &feed.body);
        assert!(
            out.contains("['Hello World', 'Second Post', 'Third Post']"),
            "{path}: {out}"
        );
    }
    let sitemap = get(&d, "/sitemap.xml", &[]);
    let urls = python(
        r#"
import sys, xml.etree.ElementTree as ET
root = ET.fromstring(sys.stdin.buffer.read())
ns = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
print(" ".join(u.find(ns + "loc").text for u in root.iter(ns + "url")))
"#,
        &sitemap.body,
    );
    for want in [
        "https://blog.example.org/hello-world/",
        "https://blog.example.org/about/",
    ] {
        assert!(urls.split(' ').any(|u| u == want), "{want} in {urls}");
    }
    assert!(!urls.contains("secret"), "{urls}");
}

#[test]
fn search_finds_titles_and_text() {
    let d = blog(&[]);
    let hit = get(&d, "/search?q=gardening", &[]);
    assert_eq!(hit.status, 200);
    assert!(hit.text().contains("Third Post"), "{}", hit.text());
    assert!(!hit.text().contains("Second Post"), "{}", hit.text());
    let miss = get(&d, "/search?q=zzzqqq", &[]);
    assert_eq!(miss.status, 200);
    assert!(!miss.text().contains("Third Post"));
    // The query is shown escaped, never as markup.
    let evil = get(&d, "/search?q=%3Cscript%3Ex", &[]);
    assert_eq!(evil.status, 200);
    assert!(!evil.text().contains("<script>x"), "{}", evil.text());
    let secret = get(&d, "/search?q=ready", &[]);
    assert!(!secret.text().contains("Secret Draft"));
}

#[test]
fn drafts_hidden_unless_asked_for() {
    let d = blog(&[]);
    assert_eq!(get(&d, "/secret/", &[]).status, 404);
    assert!(!get(&d, "/", &[]).text().contains("Secret Draft"));
    let d = blog(&["--drafts"]);
    assert_eq!(get(&d, "/secret/", &[]).status, 200);
}

fn write_post(site: &Path, name: &str, title: &str, date: &str, body: &str) {
    let text = format!("+++\ntitle = \"{title}\"\ndate = {date}\n+++\n\n{body}\n");
    // Written to a temporary name and renamed, as editors do, so the
    // server never reads half a post.
    let tmp = site.join(format!("posts/.{name}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, site.join(format!("posts/{name}"))).unwrap();
}

fn rfc3339(t: std::time::SystemTime) -> String {
    let out = Command::new("date")
        .args(["-u", "-d"])
        .arg(format!(
            "@{}",
            t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
        ))
        .arg("+%Y-%m-%dT%H:%M:%SZ")
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn a_future_post_appears_when_its_time_comes() {
    let dir = site_dir();
    let site = dir.path().join("site");
    // Whole seconds, as the date in the post says.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let at = std::time::UNIX_EPOCH + Duration::from_secs(now + 3);
    write_post(&site, "later.md", "Later Post", &rfc3339(at), "Soon.");
    let d = serve(dir, &[]);
    assert_eq!(get(&d, "/later-post/", &[]).status, 404);
    assert_eq!(get(&d, "/later/", &[]).status, 404);
    assert!(!get(&d, "/", &[]).text().contains("Later Post"));
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let got = get(&d, "/later/", &[]);
        if got.status == 200 {
            assert!(std::time::SystemTime::now() >= at);
            assert!(get(&d, "/", &[]).text().contains("Later Post"));
            break;
        }
        assert!(Instant::now() < deadline, "never appeared:\n{}", d.log());
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn an_edit_shows_after_the_period() {
    let dir = site_dir();
    let site = dir.path().join("site");
    let d = serve(dir, &[]);
    let before = get(&d, "/hello-world/", &[]);
    assert!(before.text().contains("Hello World"));
    let modified = before.header("Last-Modified").unwrap().to_string();
    // A second later at least, so a date in whole seconds can tell.
    std::thread::sleep(Duration::from_millis(1100));
    write_post(
        &site,
        "hello-world.md",
        "Hello Again",
        "2024-05-01T12:00:00Z",
        "Edited.",
    );
    wait_period();
    let got = get(&d, "/hello-world/", &[]);
    assert!(got.text().contains("Hello Again"), "{}", got.text());
    // The post's dates did not change, its bytes did: a client revalidating
    // by date alone gets the new page, not a 304.
    let since = get(
        &d,
        "/hello-world/",
        &["-H", &format!("If-Modified-Since: {modified}")],
    );
    assert_eq!(since.status, 200, "{}", since.head);
    assert!(since.text().contains("Hello Again"));
    // Two posts per page: the oldest post is on the second.
    assert!(get(&d, "/page/2/", &[]).text().contains("Hello Again"));
    // A new post, and one removed.
    write_post(&site, "fourth.md", "Fourth Post", "2024-09-01", "New.");
    std::fs::remove_file(site.join("posts/third-post.md")).unwrap();
    wait_period();
    assert_eq!(get(&d, "/fourth/", &[]).status, 200);
    assert_eq!(get(&d, "/third-post/", &[]).status, 404);
}

#[test]
fn twenty_concurrent_first_requests_after_an_edit() {
    let dir = site_dir();
    let site = dir.path().join("site");
    let d = serve(dir, &[]);
    let old = get(&d, "/hello-world/", &[]).body;
    write_post(
        &site,
        "hello-world.md",
        "Hello Concurrent",
        "2024-05-01T12:00:00Z",
        &"A longer body. ".repeat(500),
    );
    wait_period();
    let bodies: Vec<Vec<u8>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|_| s.spawn(|| get(&d, "/hello-world/", &[])))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                let got = h.join().unwrap();
                assert_eq!(got.status, 200, "{}", got.head);
                got.body
            })
            .collect()
    });
    wait_period();
    let new = get(&d, "/hello-world/", &[]).body;
    assert_ne!(old, new);
    assert!(String::from_utf8_lossy(&new).contains("Hello Concurrent"));
    let fresh = bodies.iter().filter(|b| **b == new).count();
    for b in &bodies {
        assert!(
            *b == old || *b == new,
            "a torn page:\n{}",
            String::from_utf8_lossy(b)
        );
    }
    assert!(fresh > 0, "no request saw the edit");
}

/// The object in the cache whose bytes are `body`.
fn object_of(cache: &Path, body: &[u8]) -> PathBuf {
    std::fs::read_dir(cache.join("objects"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| std::fs::read(p).is_ok_and(|b| b == body))
        .expect("the page's object")
}

#[test]
fn a_damaged_cache_is_rebuilt_never_served() {
    let dir = site_dir();
    let cache = dir.path().join("site/.jawas-cache");
    let d = serve(dir, &[]);
    let good = get(&d, "/hello-world/", &[]).body;
    let index = get(&d, "/", &[]).body;
    let damage: &[(&str, &dyn Fn())] = &[
        ("a truncated object", &|| {
            let obj = object_of(&cache, &good);
            let f = std::fs::OpenOptions::new().write(true).open(obj).unwrap();
            f.set_len(10).unwrap();
        }),
        ("a missing object", &|| {
            std::fs::remove_file(object_of(&cache, &good)).unwrap();
        }),
        ("no current", &|| {
            std::fs::remove_file(cache.join("current")).unwrap()
        }),
        ("garbage in current", &|| {
            std::fs::remove_file(cache.join("current")).unwrap();
            std::fs::write(cache.join("current"), "garbage").unwrap();
        }),
        ("current pointing nowhere", &|| {
            std::fs::remove_file(cache.join("current")).unwrap();
            std::os::unix::fs::symlink("gen-999", cache.join("current")).unwrap();
        }),
        ("a truncated generation", &|| {
            let gen = std::fs::read_link(cache.join("current")).unwrap();
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(cache.join(gen))
                .unwrap();
            f.set_len(100).unwrap();
        }),
        ("garbage in the generation", &|| {
            let gen = std::fs::read_link(cache.join("current")).unwrap();
            std::fs::write(cache.join(gen), "garbage ".repeat(100)).unwrap();
        }),
        ("no objects at all", &|| {
            std::fs::remove_dir_all(cache.join("objects")).unwrap();
            std::fs::create_dir(cache.join("objects")).unwrap();
        }),
    ];
    for (what, harm) in damage {
        harm();
        let got = get(&d, "/hello-world/", &[]);
        assert_eq!(got.status, 200, "{what}: {}", got.head);
        assert_eq!(got.body, good, "{what}");
        assert_eq!(get(&d, "/", &[]).body, index, "{what}");
    }
    // The whole cache gone: rebuilt on the next request.
    std::fs::remove_dir_all(&cache).unwrap();
    std::fs::create_dir(&cache).unwrap();
    assert_eq!(get(&d, "/hello-world/", &[]).body, good);
}

fn listing(dir: &Path, out: &mut Vec<(PathBuf, u64, i64)>) {
    use std::os::unix::fs::MetadataExt;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let m = std::fs::symlink_metadata(e.path()).unwrap();
        out.push((
            e.path(),
            m.len(),
            m.mtime_nsec() + m.mtime() * 1_000_000_000,
        ));
        if m.is_dir() {
            listing(&e.path(), out);
        }
    }
}

#[test]
fn a_read_only_site_with_the_cache_elsewhere() {
    let dir = site_dir();
    let site = dir.path().join("site");
    let cache = dir.path().join("cache");
    let mut before = Vec::new();
    listing(&site, &mut before);
    let _ = Command::new("chmod")
        .arg("-R")
        .arg("a-w")
        .arg(&site)
        .status();
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        // The default cache cannot be made: the error says what to do.
        let (code, _, err, _) = run_engine(
            "jawas-blog",
            dir.path(),
            &["--check", "--site", site.to_str().unwrap()],
        );
        assert_eq!(code, 100, "{err}");
        assert!(err.contains("--cache"), "{err}");
    }
    let d = serve(dir, &["--cache", cache.to_str().unwrap()]);
    assert_eq!(get(&d, "/hello-world/", &[]).status, 200);
    assert_eq!(get(&d, "/images/dot.png", &[]).status, 200);
    assert!(cache.join("current").exists());
    let mut after = Vec::new();
    listing(&site, &mut after);
    assert_eq!(before, after, "something was written inside the site");
    let _ = Command::new("chmod")
        .arg("-R")
        .arg("u+w")
        .arg(&site)
        .status();
}

/// Runs `jawas-blog ARGS` to completion: (code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin("jawas-blog"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn build_writes_what_is_served() {
    let dir = site_dir();
    let site = dir.path().join("site");
    let out = dir.path().join("out");
    let (code, said, err) = run(&[
        "build",
        "--site",
        site.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(said.contains("files written"), "{said}");
    let redirects = std::fs::read_to_string(out.join("_redirects")).unwrap();
    assert!(
        redirects.contains("/old-hello/ /hello-world/ 301"),
        "{redirects}"
    );
    let refresh = std::fs::read_to_string(out.join("old-hello/index.html")).unwrap();
    assert!(refresh.contains("url=/hello-world/"), "{refresh}");
    assert!(!out.join(".hidden").exists());
    let d = serve(dir, &[]);
    let mut files = Vec::new();
    listing(&out, &mut files);
    let mut compared = 0;
    for (path, _, _) in files {
        if path.is_dir() {
            continue;
        }
        let rel = path
            .strip_prefix(&out)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        if rel == "_redirects" || rel.starts_with("old-hello/") {
            continue;
        }
        let url = match rel.rsplit_once('/') {
            Some((dir, "index.html" | "index.xml")) => format!("/{dir}/"),
            _ if rel == "index.html" => "/".to_string(),
            _ => format!("/{rel}"),
        };
        let got = get(&d, &url, &[]);
        assert_eq!(got.status, 200, "{url}");
        assert_eq!(
            got.body,
            std::fs::read(&path).unwrap(),
            "{url} differs from {rel}"
        );
        compared += 1;
    }
    assert!(compared >= 10, "only {compared} files");
    let (code, _, err) = run(&["build", "--site", site.to_str().unwrap()]);
    assert_eq!(code, 100, "{err}");
    assert!(err.contains("--out DIR is required"), "{err}");
    // Sources with problems: one line per finding, exit 100.
    std::fs::write(site.join("posts/a.md"), "+++\n+++\n").unwrap();
    std::fs::write(site.join("posts/b.md"), "+++\ntitle = 1\n+++\n").unwrap();
    let (code, _, err) = run(&[
        "build",
        "--site",
        site.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 100, "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("jawas-blog build: error: ") && l.contains("a.md:"))
            && lines.iter().any(|l| l.contains("b.md:")),
        "{err}"
    );
}

#[test]
fn check_reports_findings_with_file_and_line() {
    let dir = site_dir();
    let site = dir.path().join("site");
    let (code, out, err) = run(&["check", "--site", site.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.is_empty(), "{out}");
    std::fs::write(
        site.join("posts/broken.md"),
        "+++\ndate = 2024-01-01\ntitel = \"typo\"\n+++\n\nNo title.\n",
    )
    .unwrap();
    let (code, out, _) = run(&["check", "--site", site.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    let line = out
        .lines()
        .find(|l| l.contains("broken.md:"))
        .unwrap_or_else(|| panic!("no finding for broken.md in:\n{out}"));
    let after = line.split("broken.md:").nth(1).unwrap();
    let number: String = after.chars().take_while(|c| c.is_ascii_digit()).collect();
    assert!(!number.is_empty() && number != "0", "{line}");
    let (code, _, err) = run(&["check"]);
    assert_eq!(code, 100, "{err}");
    let (code, out, _) = run(&["check", "--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("FILE:LINE"), "{out}");
}

#[test]
fn new_writes_a_draft_skeleton() {
    let dir = site_dir();
    let site = dir.path().join("site");
    let (code, out, err) = run(&["new", "--site", site.to_str().unwrap(), "My \"First\" Post"]);
    assert_eq!(code, 0, "{err}");
    let path = PathBuf::from(out.trim());
    assert_eq!(path, site.join("posts/my-first-post.md"));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(r#"My "First" Post"#), "{text}");
    assert!(text.contains("draft = true"), "{text}");
    // The skeleton is a valid post.
    let (code, found, _) = run(&["check", "--site", site.to_str().unwrap()]);
    assert_eq!(code, 0, "{found}");
    // Never overwritten.
    let (code, _, err) = run(&["new", "--site", site.to_str().unwrap(), "My First Post"]);
    assert_eq!(code, 100, "{err}");
    assert!(err.contains("my-first-post.md"), "{err}");
    let (code, _, _) = run(&["new", "--site", site.to_str().unwrap()]);
    assert_eq!(code, 100);
}

#[test]
fn broken_sources_keep_the_last_good_site() {
    let dir = site_dir();
    let site = dir.path().join("site");
    let d = serve(dir, &[]);
    let good = get(&d, "/hello-world/", &[]).body;
    // No title: the site cannot be built.
    std::fs::write(
        site.join("posts/hello-world.md"),
        "+++\ndate = 2024-05-01\n+++\n\nNo title.\n",
    )
    .unwrap();
    wait_period();
    let got = get(&d, "/hello-world/", &[]);
    assert_eq!(got.status, 200);
    assert_eq!(got.body, good, "the last good page is still served");
    assert!(
        d.wait_log("hello-world.md:", Duration::from_secs(10)),
        "the finding is logged with its file:\n{}",
        d.log()
    );
    // Logged once, not once per period, while the sources stay the same.
    wait_period();
    wait_period();
    get(&d, "/", &[]);
    assert_eq!(d.log().matches("hello-world.md:").count(), 1, "{}", d.log());
    write_post(
        &site,
        "hello-world.md",
        "Hello Fixed",
        "2024-05-01T12:00:00Z",
        "Fixed.",
    );
    wait_period();
    assert!(get(&d, "/hello-world/", &[]).text().contains("Hello Fixed"));
}

#[test]
fn a_broken_site_with_no_cache_is_a_500() {
    let dir = site_dir();
    std::fs::write(dir.path().join("site/posts/broken.md"), "+++\n+++\n").unwrap();
    let d = serve(dir, &[]);
    assert_eq!(get(&d, "/", &[]).status, 500);
    assert!(
        d.wait_log("broken.md", Duration::from_secs(10)),
        "{}",
        d.log()
    );
}

#[test]
fn a_preview_with_drafts_shares_the_cache_with_the_public_site() {
    let dir = site_dir();
    let site = dir.path().join("site");
    let config = format!(
        "[services.blog]\nlisten = \"127.0.0.1:0\"\nengine = \"jawas-blog\"\n\
         args = [\"--site\", \"{{dir}}/site\", \"--cache\", \"{{dir}}/cache\", \"--period\", \"{PERIOD}\"]\n\
         capture_stderr = true\n\
         [services.preview]\nlisten = \"127.0.0.1:0\"\nengine = \"jawas-blog\"\n\
         args = [\"--site\", \"{{dir}}/site\", \"--cache\", \"{{dir}}/cache\", \"--period\", \"{PERIOD}\", \"--drafts\"]\n\
         capture_stderr = true\n"
    );
    let d = Jawasd::builder(&config).dir(dir).start();
    let preview = |path: &str| {
        let out = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "20",
            ])
            .arg(format!("http://{}{}", d.addr("preview"), path))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    for round in 0..3 {
        assert_eq!(get(&d, "/secret/", &[]).status, 404, "round {round}");
        assert_eq!(preview("/secret/"), "200", "round {round}");
        for path in ["/", "/hello-world/", "/second-post/", "/rss/"] {
            assert_eq!(get(&d, path, &[]).status, 200, "{path} round {round}");
            assert_eq!(preview(path), "200", "{path} round {round}");
        }
        write_post(
            &site,
            "second-post.md",
            &format!("Second Post, edit {round}"),
            "2024-06-01",
            "Edited.",
        );
        wait_period();
    }
    assert!(get(&d, "/second-post/", &[]).text().contains("edit 2"));
    assert!(d.log().matches("damaged").count() == 0, "{}", d.log());
}

#[test]
fn the_example_site_serves_every_url_of_its_sitemap() {
    let site = Path::new(env!("CARGO_MANIFEST_DIR")).join("../etc/blog");
    let site = site.canonicalize().unwrap();
    let config = format!(
        "[services.blog]\nlisten = \"127.0.0.1:0\"\nengine = \"jawas-blog\"\n\
         args = [\"--site\", {:?}, \"--cache\", \"{{dir}}/cache\"]\ncapture_stderr = true\n",
        site.to_str().unwrap()
    );
    let d = Jawasd::start(&config);
    let sitemap = get(&d, "/sitemap.xml", &[]);
    assert_eq!(sitemap.status, 200);
    let locs = python(
        r#"
import sys, xml.etree.ElementTree as ET
from urllib.parse import urlsplit
root = ET.fromstring(sys.stdin.buffer.read())
ns = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
print(" ".join(urlsplit(u.find(ns + "loc").text).path for u in root.iter(ns + "url")))
"#,
        &sitemap.body,
    );
    let paths: Vec<&str> = locs.split(' ').collect();
    assert!(paths.len() >= 5, "{locs}");
    for path in paths {
        let got = get(&d, path, &[]);
        assert_eq!(got.status, 200, "{path}");
    }
    for path in ["/rss/", "/atom.xml", "/robots.txt", "/search?q=ghost"] {
        assert_eq!(get(&d, path, &[]).status, 200, "{path}");
    }
    assert_eq!(get(&d, "/no-such-page/", &[]).status, 404);
    assert!(
        d.dir().join("cache/current").exists(),
        "the cache is where --cache says"
    );
}

#[test]
fn a_new_binary_rebuilds_at_the_next_scan() {
    let dir = site_dir();
    let exe = dir.path().join("jawas-blog");
    std::fs::copy(bin("jawas-blog"), &exe).unwrap();
    let config = format!(
        "[services.blog]\nlisten = \"127.0.0.1:0\"\nengine = {:?}\n\
         args = [\"--site\", \"{{dir}}/site\", \"--period\", \"{PERIOD}\"]\ncapture_stderr = true\n",
        exe.to_str().unwrap()
    );
    let d = Jawasd::builder(&config).dir(dir).start();
    let cache = d.dir().join("site/.jawas-cache");
    assert_eq!(get(&d, "/", &[]).status, 200);
    let first = std::fs::read_link(cache.join("current")).unwrap();
    wait_period();
    assert_eq!(get(&d, "/", &[]).status, 200);
    assert_eq!(std::fs::read_link(cache.join("current")).unwrap(), first);
    // A new build of the program (here: the same bytes, a new file).
    let tmp = d.dir().join("jawas-blog.new");
    std::fs::copy(&exe, &tmp).unwrap();
    std::fs::rename(&tmp, &exe).unwrap();
    wait_period();
    assert_eq!(get(&d, "/", &[]).status, 200);
    assert_ne!(std::fs::read_link(cache.join("current")).unwrap(), first);
}

#[test]
fn hostile_paths_get_clean_answers() {
    let d = blog(&[]);
    let long = format!("/{}", "a".repeat(4000));
    let cases: &[(&str, u16)] = &[
        ("/..%2f..%2fetc/passwd", 400),
        ("/%2e%2e/%2e%2e/etc/passwd", 400),
        ("/a%00b", 400),
        ("/a%5cb", 400),
        ("/%ff%fe/", 400),
        ("//hello-world/", 200),
        ("/hello-world/./", 200),
        ("/.jawas-cache/current", 404),
        ("/static/images/dot.png", 404),
        ("/images/", 404),
        ("/images/dot.png/", 404),
        ("/search?q=%", 200),
        ("/search?q=%ff%fe", 200),
        (&long, 404),
    ];
    for (path, want) in cases {
        let got = get(&d, path, &["--path-as-is"]);
        assert_eq!(got.status, *want, "{path}: {}", got.head);
    }
    assert!(!d.log().contains("panicked"), "{}", d.log());
    assert!(!d.log().contains("exit=101"), "{}", d.log());
}

/// `--check` reads site.toml: a site without one, or with one that is not
/// TOML, would answer every request with 500, so it is refused up front
/// (and by jawasd at load, which runs the engine's --check).
#[test]
fn check_refuses_a_site_without_usable_settings() {
    let dir = jawas_tests::TempDir::new();
    let site = dir.path().join("bare");
    std::fs::create_dir(&site).unwrap();
    let cache = dir.path().join("cache");
    let args = |s: &std::path::Path| {
        vec![
            "--site".to_string(),
            s.display().to_string(),
            "--cache".to_string(),
            cache.display().to_string(),
            "--check".to_string(),
        ]
    };
    let a = args(&site);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let (code, _, err, _) = run_engine("jawas-blog", dir.path(), &a);
    assert_eq!(code, 100, "{err}");
    assert!(
        err.contains("site.toml: cannot read the site settings"),
        "{err}"
    );
    std::fs::write(site.join("site.toml"), "title = \"x\n").unwrap();
    let (code, _, err, _) = run_engine("jawas-blog", dir.path(), &a);
    assert_eq!(code, 100, "{err}");
    assert!(err.contains("site.toml:1: not valid TOML"), "{err}");
}
