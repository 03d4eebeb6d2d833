//! Tests of a whole `Site`: small fixture sites written to a temporary
//! directory, loaded, planned and rendered as the store would.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::date::Date;
use crate::site::{check, new_post, search, search_page, LoadOptions, Memo, Planned, Site};

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn fixture(name: &str, files: &[(&str, &str)]) -> Dir {
    let dir = std::env::temp_dir().join(format!("jawas-blog-site-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for (path, text) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    Dir(dir)
}

const SITE: &str = "title = \"Test <Blog>\"\nauthor = \"Jane Doe\"\nbase_url = \"https://blog.example\"\ndescription = \"Notes\"\nposts_per_page = 2\n";

fn post(title: &str, date: &str, extra: &str, body: &str) -> String {
    format!(
        "+++\ntitle = {}\ndate = {date}\n{extra}\n+++\n{body}",
        toml::Value::String(title.into())
    )
}

fn at(date: &str) -> LoadOptions {
    LoadOptions {
        drafts: false,
        now: Date::parse(date).unwrap().to_system(),
    }
}

fn load(dir: &Path, opts: &LoadOptions) -> Site {
    Site::load(dir, opts, &mut Memo::none()).unwrap_or_else(|f| panic!("{f:?}"))
}

fn paths(site: &Site) -> Vec<String> {
    site.plan().into_iter().map(|p| p.path).collect()
}

fn get(site: &Site, path: &str) -> String {
    let planned = site
        .plan()
        .into_iter()
        .find(|p| p.path == path)
        .unwrap_or_else(|| panic!("{path} not planned"));
    String::from_utf8(site.render(&planned).unwrap()).unwrap()
}

fn key(plan: &[Planned], path: &str) -> u128 {
    plan.iter()
        .find(|p| p.path == path)
        .unwrap_or_else(|| panic!("{path}"))
        .key
}

fn five_posts() -> Vec<(String, String)> {
    let mut files = vec![("site.toml".to_string(), SITE.to_string())];
    for i in 1..=5 {
        let tags = if i % 2 == 0 {
            "tags = [\"Rust\", \"Even Posts\"]"
        } else {
            "tags = [\"rust\"]"
        };
        files.push((
            format!("posts/p{i}.md"),
            post(
                &format!("Post {i}"),
                &format!("2024-05-0{i}"),
                tags,
                &format!("Body of post {i}.\n\nSecond paragraph.\n"),
            ),
        ));
    }
    files
}

fn write(name: &str, files: &[(String, String)]) -> Dir {
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    fixture(name, &refs)
}

#[test]
fn plan_lists_every_file() {
    let dir = write("plan", &five_posts());
    let site = load(&dir.0, &at("2030-01-01"));
    let mut got = paths(&site);
    got.sort();
    let mut want: Vec<&str> = vec![
        "index.html",
        "page/2/index.html",
        "page/3/index.html",
        "p1/index.html",
        "p2/index.html",
        "p3/index.html",
        "p4/index.html",
        "p5/index.html",
        "tag/index.html",
        "tag/rust/index.html",
        "tag/rust/page/2/index.html",
        "tag/rust/page/3/index.html",
        "tag/even-posts/index.html",
        "tag/rust/rss/index.xml",
        "tag/even-posts/rss/index.xml",
        "author/jane-doe/rss/index.xml",
        "author/jane-doe/index.html",
        "author/jane-doe/page/2/index.html",
        "author/jane-doe/page/3/index.html",
        "rss/index.xml",
        "atom.xml",
        "sitemap.xml",
        "robots.txt",
        "404.html",
        "search.idx",
        "theme/style.css",
        "theme/highlight.css",
    ];
    want.sort();
    assert_eq!(got, want);
    // Each planned file renders, with its content type.
    for p in site.plan() {
        let bytes = site
            .render(&p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.path));
        assert!(!bytes.is_empty(), "{}", p.path);
    }
}

#[test]
fn pagination_edges() {
    // (posts, per page, list pages)
    let cases = [
        (0, 2, 1),
        (1, 2, 1),
        (2, 2, 1),
        (3, 2, 2),
        (4, 2, 2),
        (5, 1, 5),
    ];
    for (n, per, pages) in cases {
        let mut files = vec![(
            "site.toml".to_string(),
            SITE.replace("posts_per_page = 2", &format!("posts_per_page = {per}")),
        )];
        for i in 0..n {
            files.push((
                format!("posts/p{i}.md"),
                post(&format!("P{i}"), &format!("2024-01-1{i}"), "", "x\n"),
            ));
        }
        let dir = write(&format!("pages{n}-{per}"), &files);
        let site = load(&dir.0, &at("2030-01-01"));
        let lists: Vec<String> = paths(&site)
            .into_iter()
            .filter(|p| p == "index.html" || p.starts_with("page/"))
            .collect();
        assert_eq!(lists.len(), pages, "{n} posts, {per} per page: {lists:?}");
        let last = if pages == 1 {
            "index.html".to_string()
        } else {
            format!("page/{pages}/index.html")
        };
        let html = get(&site, &last);
        assert!(
            !html.contains("rel=\"next\""),
            "{n}/{per}: last page links on"
        );
        if pages > 1 {
            assert!(
                html.contains(&format!(
                    "<link rel=\"prev\" href=\"{}\">",
                    if pages == 2 {
                        "/".to_string()
                    } else {
                        format!("/page/{}/", pages - 1)
                    }
                )),
                "{html}"
            );
            assert!(get(&site, "index.html").contains("<link rel=\"next\" href=\"/page/2/\">"));
        }
    }
}

#[test]
fn drafts_and_future_posts() {
    let files = [
        ("site.toml", SITE),
        (
            "posts/now.md",
            "+++\ntitle = \"Now\"\ndate = 2024-01-01\n+++\nx\n",
        ),
        (
            "posts/draft.md",
            "+++\ntitle = \"Draft\"\ndate = 2024-01-02\ndraft = true\n+++\nx\n",
        ),
        (
            "posts/later.md",
            "+++\ntitle = \"Later\"\ndate = 2024-06-01T12:00:00Z\n+++\nx\n",
        ),
        (
            "posts/much-later.md",
            "---\ntitle: Much later\ndate: 2025-01-01\n---\nx\n",
        ),
    ];
    let dir = fixture("drafts", &files);
    let site = load(&dir.0, &at("2024-03-01"));
    let p = paths(&site);
    assert!(p.contains(&"now/index.html".to_string()));
    assert!(
        !p.iter()
            .any(|p| p.starts_with("draft/") || p.starts_with("later/")),
        "{p:?}"
    );
    assert_eq!(
        site.next_change(),
        Some(Date::parse("2024-06-01T12:00:00Z").unwrap().to_system())
    );
    assert!(!get(&site, "index.html").contains("Later"));
    // The moment its date passes, the post is in.
    let site = load(&dir.0, &at("2024-06-01T12:00:00Z"));
    assert!(paths(&site).contains(&"later/index.html".to_string()));
    assert!(get(&site, "index.html").contains("Later"));
    assert_eq!(
        site.next_change(),
        Some(Date::parse("2025-01-01").unwrap().to_system())
    );
    // --drafts shows drafts, marked.
    let opts = LoadOptions {
        drafts: true,
        ..at("2024-03-01")
    };
    let site = load(&dir.0, &opts);
    assert!(get(&site, "draft/index.html").contains("Draft: shown because"));
}

#[test]
fn front_matter_is_escaped_and_bodies_are_not() {
    let files = [
        ("site.toml", SITE),
        (
            "posts/x.md",
            "+++\ntitle = \"<script>alert(1)</script> & co\"\ndate = 2024-01-01\ntags = [\"<b>tag</b>\"]\nsummary = \"<i>sum</i>\"\nfeature_image = \"/a.png\\\" onerror=\\\"x\"\n+++\nRaw <span class=\"mine\">html</span> stays.\n",
        ),
        ("posts/h.md", "+++\ntitle = \"H\"\ndate = 2024-01-02\nformat = \"html\"\n+++\n<p>Kept <em>as is</em></p>\n"),
    ];
    let dir = fixture("escape", &files);
    let site = load(&dir.0, &at("2030-01-01"));
    for path in [
        "x/index.html",
        "index.html",
        "tag/b-tag-b/index.html",
        "rss/index.xml",
        "atom.xml",
        "tag/index.html",
        "sitemap.xml",
    ] {
        let html = get(&site, path);
        assert!(!html.contains("<script>alert"), "{path}: {html}");
        assert!(!html.contains("<b>tag</b>"), "{path}");
        assert!(!html.contains("<i>sum</i>"), "{path}");
        assert!(!html.contains("onerror=\""), "{path}");
        if path != "tag/index.html" && path != "sitemap.xml" {
            assert!(
                html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; co"),
                "{path}: {html}"
            );
        }
    }
    assert!(get(&site, "tag/index.html").contains(">&lt;b&gt;tag&lt;/b&gt;</a>"));
    let page = get(&site, "x/index.html");
    assert!(
        page.contains("Raw <span class=\"mine\">html</span> stays."),
        "{page}"
    );
    assert!(get(&site, "h/index.html").contains("<p>Kept <em>as is</em></p>"));
    assert!(get(&site, "index.html").contains("&lt;i&gt;sum&lt;/i&gt;"));
}

#[test]
fn post_page_parts() {
    let dir = write("parts", &five_posts());
    let site = load(&dir.0, &at("2030-01-01"));
    let html = get(&site, "p3/index.html");
    let wants = [
        "<link rel=\"canonical\" href=\"https://blog.example/p3/\">",
        "<link rel=\"alternate\" type=\"application/rss+xml\"",
        "<link rel=\"alternate\" type=\"application/atom+xml\"",
        "<time datetime=\"2024-05-03T00:00:00Z\">3 May 2024</time>",
        "href=\"/tag/rust/\" rel=\"tag\">rust</a>",
        "rel=\"prev\" href=\"/p2/\"",
        "rel=\"next\" href=\"/p4/\"",
        "<a class=\"skip-link\" href=\"#main\">",
        "<main id=\"main\"",
        "<form class=\"site-search\" role=\"search\" action=\"/search\" method=\"get\">",
        "href=\"/author/jane-doe/\" rel=\"author\">Jane Doe</a>",
        "<title>Post 3 · Test &lt;Blog&gt;</title>",
        "<span class=\"reading\">1 min read</span>",
    ];
    for w in wants {
        assert!(html.contains(w), "missing {w:?} in\n{html}");
    }
    assert!(get(&site, "index.html").contains("<span class=\"reading\">1 min read</span>"));
    let newest = get(&site, "p5/index.html");
    assert!(
        !newest.contains("rel=\"next\""),
        "the newest post has no newer one"
    );
}

#[test]
fn permalinks_and_aliases() {
    let files = [
        ("site.toml", "title = \"T\"\nbase_url = \"https://e.org\"\npermalink = \"/{year}/{month}/{day}/{slug}.html\"\n"),
        ("posts/hello.md", "+++\ntitle = \"Hello\"\ndate = 2024-05-01T23:30:00-05:00\naliases = [\"/old/hello/\", \"/hello.php\"]\n+++\nx\n"),
        ("pages/about.md", "+++\ntitle = \"About\"\naliases = [\"/me/\"]\n+++\nMe.\n"),
    ];
    let dir = fixture("permalink", &files);
    let site = load(&dir.0, &at("2030-01-01"));
    let p = paths(&site);
    assert!(p.contains(&"2024/05/01/hello.html".to_string()), "{p:?}");
    assert!(p.contains(&"about/index.html".to_string()), "{p:?}");
    let mut aliases = site.aliases();
    aliases.sort();
    assert_eq!(
        aliases,
        [
            (
                "/hello.php".to_string(),
                "/2024/05/01/hello.html".to_string()
            ),
            ("/me/".to_string(), "/about/".to_string()),
            (
                "/old/hello/".to_string(),
                "/2024/05/01/hello.html".to_string()
            ),
        ]
    );
    // Pages are in the sitemap, not in lists or feeds.
    assert!(get(&site, "sitemap.xml").contains("about"));
    assert!(!get(&site, "index.html").contains("About</a></h2>"));
    assert!(!get(&site, "rss/index.xml").contains("About"));
}

#[test]
fn feeds_and_sitemap() {
    let mut files = five_posts();
    files.push((
        "posts/link.md".into(),
        post(
            "Links",
            "2024-05-06",
            "",
            "See [p1](/p1/) and ![i](/img/a.png).\n",
        ),
    ));
    let dir = write("feeds", &files);
    let site = load(&dir.0, &at("2030-01-01"));
    let rss = get(&site, "rss/index.xml");
    for w in [
        "<atom:link href=\"https://blog.example/rss/\" rel=\"self\"",
        "<guid isPermaLink=\"true\">https://blog.example/link/</guid>",
        "<pubDate>Mon, 06 May 2024 00:00:00 +0000</pubDate>",
        "href=&quot;https://blog.example/p1/&quot;",
        "src=&quot;https://blog.example/img/a.png&quot;",
    ] {
        assert!(rss.contains(w), "missing {w:?} in {rss}");
    }
    let tag_rss = get(&site, "tag/even-posts/rss/index.xml");
    for w in [
        "<title>Even Posts · Test &lt;Blog&gt;</title>",
        "<link>https://blog.example/tag/even-posts/</link>",
        "<atom:link href=\"https://blog.example/tag/even-posts/rss/\" rel=\"self\"",
        "<guid isPermaLink=\"true\">https://blog.example/p4/</guid>",
    ] {
        assert!(tag_rss.contains(w), "missing {w:?} in {tag_rss}");
    }
    assert!(!tag_rss.contains("/p3/</guid>"), "{tag_rss}");
    assert!(get(&site, "tag/even-posts/index.html").contains("href=\"/tag/even-posts/rss/\">"));
    let atom = get(&site, "atom.xml");
    for w in [
        "<id>https://blog.example/link/</id>",
        "<updated>2024-05-06T00:00:00Z</updated>",
        "<content type=\"html\">&lt;p&gt;See",
        "<author><name>Jane Doe</name>",
    ] {
        assert!(atom.contains(w), "missing {w:?} in {atom}");
    }
    let sm = get(&site, "sitemap.xml");
    assert!(
        sm.contains("<loc>https://blog.example/p1/</loc><lastmod>2024-05-01T00:00:00Z</lastmod>"),
        "{sm}"
    );
    assert_eq!(
        get(&site, "robots.txt"),
        "User-agent: *\nAllow: /\nDisallow: /search\n\nSitemap: https://blog.example/sitemap.xml\n"
    );
}

#[test]
fn keys_change_with_their_inputs_only() {
    let files = five_posts();
    let dir = write("keys", &files);
    let opts = at("2030-01-01");
    let before = load(&dir.0, &opts).plan();
    // Same sources, same keys.
    assert_eq!(
        before.iter().map(|p| p.key).collect::<Vec<_>>(),
        load(&dir.0, &opts)
            .plan()
            .iter()
            .map(|p| p.key)
            .collect::<Vec<_>>()
    );
    // Edit the body of p1 (the oldest): its page, the lists it is on,
    // feeds and search change; far posts do not.
    std::fs::write(
        dir.0.join("posts/p1.md"),
        post("Post 1", "2024-05-01", "tags = [\"rust\"]", "New body.\n"),
    )
    .unwrap();
    let after = load(&dir.0, &opts).plan();
    for (path, changed) in [
        ("p1/index.html", true),
        ("page/3/index.html", true),
        ("tag/rust/page/3/index.html", true),
        ("search.idx", true),
        ("rss/index.xml", true),
        ("sitemap.xml", true),
        ("p2/index.html", false), // its neighbour's title and URL are unchanged
        ("p5/index.html", false),
        ("index.html", false),
        ("tag/even-posts/index.html", false),
        ("theme/style.css", false),
        ("404.html", false),
    ] {
        assert_eq!(key(&before, path) != key(&after, path), changed, "{path}");
    }
    // A retitled post changes its neighbours' pages.
    std::fs::write(
        dir.0.join("posts/p1.md"),
        post("Post One", "2024-05-01", "tags = [\"rust\"]", "New body.\n"),
    )
    .unwrap();
    let retitled = load(&dir.0, &opts).plan();
    assert_ne!(
        key(&after, "p2/index.html"),
        key(&retitled, "p2/index.html")
    );
    assert_eq!(
        key(&after, "p3/index.html"),
        key(&retitled, "p3/index.html")
    );
    // site.toml and templates are inputs of everything.
    std::fs::write(dir.0.join("site.toml"), SITE.replace("Notes", "Other")).unwrap();
    let resettled = load(&dir.0, &opts).plan();
    assert!(retitled.iter().zip(&resettled).all(|(a, b)| a.key != b.key));
    std::fs::create_dir_all(dir.0.join("templates")).unwrap();
    std::fs::write(dir.0.join("templates/404.html"), "gone").unwrap();
    let themed = load(&dir.0, &opts);
    assert_ne!(
        key(&resettled, "p5/index.html"),
        key(&themed.plan(), "p5/index.html")
    );
    assert_eq!(get(&themed, "404.html"), "gone");
}

#[test]
fn memo_saves_work_and_survives_corruption() {
    let dir = write("memo", &five_posts());
    let memo_dir = dir.0.join(".cache/memo");
    let opts = at("2030-01-01");
    let mut memo = Memo::open(&memo_dir).unwrap();
    let site = Site::load(&dir.0, &opts, &mut memo).unwrap();
    let first = get(&site, "p2/index.html");
    let heads = |dir: &Path| {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .filter(|e| !e.file_name().to_string_lossy().contains('.'))
            .count()
    };
    assert_eq!(heads(&memo_dir), 5);
    // Damage every memo file: output is unchanged.
    for e in std::fs::read_dir(&memo_dir).unwrap().flatten() {
        let text = std::fs::read_to_string(e.path()).unwrap();
        std::fs::write(
            e.path(),
            text.replace("Body of post", "Evil body of post")
                .replace("Post 2", "Evil"),
        )
        .unwrap();
    }
    let site = Site::load(&dir.0, &opts, &mut Memo::open(&memo_dir).unwrap()).unwrap();
    assert_eq!(get(&site, "p2/index.html"), first);
    assert!(!get(&site, "index.html").contains("Evil"));
    // A warm memo answers without reading sources: a memo entry whose
    // checksum is right is trusted, so swap one in and watch it used.
    let site = Site::load(&dir.0, &opts, &mut Memo::open(&memo_dir).unwrap()).unwrap();
    assert!(get(&site, "p2/index.html") == first);
    // Deleted posts' memo files are pruned.
    std::fs::remove_file(dir.0.join("posts/p1.md")).unwrap();
    Site::load(&dir.0, &opts, &mut Memo::open(&memo_dir).unwrap()).unwrap();
    assert_eq!(heads(&memo_dir), 4);
}

#[test]
fn load_findings() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[
                ("site.toml", SITE),
                ("posts/a.md", "+++\ntitle = \"A\"\ndate = 2024-01-01\n+++\n"),
                (
                    "posts/b.md",
                    "+++\ntitle = \"B\"\ndate = 2024-01-01\nslug = \"a\"\n+++\n",
                ),
            ],
            "posts/b.md: duplicate slug",
        ),
        (
            &[
                ("site.toml", SITE),
                (
                    "posts/a.md",
                    "+++\ntitle = \"A\"\ndate = 2024-01-01\nauthors = [\"bob\"]\n+++\n",
                ),
            ],
            "posts/a.md:4: author `bob` is not in site.toml",
        ),
        (
            &[
                ("site.toml", SITE),
                (
                    "posts/tag.md",
                    "+++\ntitle = \"A\"\ndate = 2024-01-01\n+++\n",
                ),
            ],
            "posts/tag.md: its URL /tag/ is one the site itself uses",
        ),
        (
            &[("posts/a.md", "+++\ntitle = \"A\"\ndate = 2024-01-01\n+++\n")],
            "site.toml: cannot read the site settings",
        ),
        (
            &[
                ("site.toml", SITE),
                ("pages/a.md", "+++\ndate = 2024-01-01\n+++\n"),
            ],
            "pages/a.md:2: `title` is missing",
        ),
    ];
    for (i, (files, want)) in cases.iter().enumerate() {
        let dir = fixture(&format!("findings{i}"), files);
        let findings = match Site::load(&dir.0, &at("2030-01-01"), &mut Memo::none()) {
            Ok(_) => panic!("case {i} loaded"),
            Err(f) => f,
        };
        let text: Vec<String> = findings
            .iter()
            .map(|f| f.to_string().replace(&format!("{}/", dir.0.display()), ""))
            .collect();
        assert!(
            text.iter().any(|t| t.starts_with(want)),
            "case {i}: {text:?}"
        );
    }
}

#[test]
fn search_over_the_index_and_its_page() {
    let mut files = five_posts();
    files.push((
        "posts/epoll.md".into(),
        post(
            "Event loops",
            "2024-06-01",
            "tags = [\"linux\"]",
            "Using epoll from Rust.\n",
        ),
    ));
    let dir = write("search", &files);
    let site = load(&dir.0, &at("2030-01-01"));
    let idx = get(&site, "search.idx");
    assert_eq!(idx.lines().count(), 6);
    let hits = search(&mut idx.as_bytes(), "epoll", 10);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].url, "/epoll/");
    assert_eq!(search(&mut idx.as_bytes(), "post", 3).len(), 3);
    let page = String::from_utf8(search_page(&dir.0, "<epoll>", &hits).unwrap()).unwrap();
    assert!(
        page.contains("&lt;epoll&gt;") && !page.contains("<epoll>"),
        "{page}"
    );
    assert!(page.contains("href=\"/epoll/\">Event loops</a>"), "{page}");
    assert!(
        page.contains("Using <mark>epoll</mark> from Rust."),
        "{page}"
    );
    let empty = String::from_utf8(search_page(&dir.0, "", &[]).unwrap()).unwrap();
    assert!(empty.contains("<form class=\"search-page-form\"") && !empty.contains("Nothing found"));
    let none = String::from_utf8(search_page(&dir.0, "zzz", &[]).unwrap()).unwrap();
    assert!(none.contains("Nothing found for “zzz”"), "{none}");
}

#[test]
fn check_reports_links_and_images_with_lines() {
    let files = [
        ("site.toml", SITE),
        (
            "posts/a.md",
            "+++\ntitle = \"A\"\ndate = 2024-01-01\ntags = [\"x\"]\n+++\nGood: [b](/b/), [b2](/b), [tag](/tag/x/), [img](/img/ok.png#f), [alias](/old/), [ext](https://x.org/), [p1](/page/1/), [t1](/tag/x/page/1/).\n\nBad: [nope](/nope/).\n\n![missing](/img/missing.png)\n\n<img src=\"/img/gone.jpg\">\n",
        ),
        ("posts/b.md", "---\ntitle: B\ndate: 2024-01-02\naliases: [/old/]\ndraft: true\n---\nFine.\n"),
        ("static/img/ok.png", "png"),
    ];
    let dir = fixture("check", &files);
    let got: Vec<String> = check(&dir.0)
        .iter()
        .map(|f| f.to_string().replace(&format!("{}/", dir.0.display()), ""))
        .collect();
    assert_eq!(
        got,
        [
            "posts/a.md:8: broken link /nope/: no post, page, tag, static file or alias answers it",
            "posts/a.md:10: missing image /img/missing.png: no such file in static/",
            "posts/a.md:12: missing image /img/gone.jpg: no such file in static/",
        ]
    );
    std::fs::write(dir.0.join("posts/c.md"), "+++\ntitle = \"C\"\n+++\n").unwrap();
    let got = check(&dir.0);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].line, 2);
}

#[test]
fn new_post_writes_a_draft_and_never_overwrites() {
    let dir = fixture("new", &[("site.toml", SITE)]);
    let now = Date::parse("2024-05-01T10:00:00Z").unwrap().to_system();
    let path = new_post(&dir.0, "Hello, \"World\"!", now).unwrap();
    assert!(path.ends_with("posts/hello-world.md"));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("+++\ntitle = 'Hello, \"World\"!'\ndate = 2024-05-01T10:00:00Z\ndraft = true\ntags = []\n+++\n"), "{text}");
    let err = new_post(&dir.0, "Hello World", now).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    // The skeleton loads, as a draft.
    let site = load(
        &dir.0,
        &LoadOptions {
            drafts: true,
            now: now + Duration::from_secs(1),
        },
    );
    assert!(paths(&site).contains(&"hello-world/index.html".to_string()));
    let site = load(&dir.0, &at("2030-01-01"));
    assert!(!paths(&site).contains(&"hello-world/index.html".to_string()));
    let _ = SystemTime::now();
}

#[test]
fn a_rebuild_after_one_edit_renders_one_body() {
    let dir = write("rebuild", &five_posts());
    let memo_dir = dir.0.join(".memo");
    let opts = at("2030-01-01");
    let build = |before: &[Planned]| {
        let site = Site::load(&dir.0, &opts, &mut Memo::open(&memo_dir).unwrap()).unwrap();
        let plan = site.plan();
        let mut rendered = Vec::new();
        for p in &plan {
            if !before.iter().any(|b| b.path == p.path && b.key == p.key) {
                site.render(p).unwrap();
                rendered.push(p.path.clone());
            }
        }
        (plan, rendered)
    };
    let memo_files = || {
        let mut v: Vec<(String, SystemTime)> = std::fs::read_dir(&memo_dir)
            .unwrap()
            .flatten()
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.metadata().unwrap().modified().unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let (plan, all) = build(&[]);
    assert_eq!(all.len(), plan.len());
    let before = memo_files();
    assert_eq!(before.len(), 5);
    // Nothing changed: nothing is rendered, no memo file is written.
    let (plan, none) = build(&plan);
    assert!(none.is_empty(), "{none:?}");
    assert_eq!(memo_files(), before);
    // One body edited: one memo file replaced, the others untouched.
    std::thread::sleep(Duration::from_millis(10));
    std::fs::write(
        dir.0.join("posts/p3.md"),
        post("Post 3", "2024-05-03", "tags = [\"rust\"]", "Changed.\n"),
    )
    .unwrap();
    let (_, some) = build(&plan);
    assert!(some.contains(&"p3/index.html".to_string()), "{some:?}");
    assert!(
        !some
            .iter()
            .any(|p| p == "p1/index.html" || p == "p5/index.html"),
        "{some:?}"
    );
    let after = memo_files();
    let kept: Vec<_> = after.iter().filter(|f| before.contains(f)).collect();
    assert_eq!((after.len(), kept.len()), (5, 4), "{before:?}\n{after:?}");
}

#[test]
fn the_example_site_is_clean() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../etc/blog");
    assert_eq!(check(&dir), [], "etc/blog");
    let site = Site::load(&dir, &at("2030-01-01"), &mut Memo::none()).unwrap();
    for p in site.plan() {
        site.render(&p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.path));
    }
    // The draft stays out of the public site.
    assert!(!paths(&site).iter().any(|p| p.contains("draft")));
}
