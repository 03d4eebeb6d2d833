//! The seam between the content side of jawas-blog (sources, Markdown,
//! templates: `Site`) and the store side (the on-disk cache, the HTTP
//! handler, `build`): the store asks a `Site` what files the site is made
//! of (`plan`) and for the bytes of those whose key changed (`render`).
//!
//! Invariants: equal `Planned::key`s mean equal bytes from `render` (the
//! key hashes every input of the file: its sources' identities and
//! contents, neighbouring posts' titles and URLs, site.toml, the
//! templates, this binary's version); `plan` and `render` never touch
//! the cache outside the memo directory; a `Site` holds only metadata in
//! memory (bodies are rendered one file at a time), so memory stays
//! bounded by the number of posts times a small constant.
//!
//! The content side's work lives in `content/` (sources, Markdown,
//! plan, render, search, check) and `theme/` (built-in templates and
//! stylesheet). Change a signature here only together with the store
//! side.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use content::config::{Author, Config};
use content::date::Date;
use content::front::{self, Meta};
use content::markdown::Rendered;
use content::memo::Head;
use content::plan::Job;
use content::words::{did_you_mean, encode_path, slugify};
use theme::Templates;

// Declared here, not in main.rs, so the seam with the store side stays
// this one file.
#[path = "content/mod.rs"]
pub mod content;
#[path = "theme/mod.rs"]
pub mod theme;

/// How a site is read.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Show posts with `draft = true` (`--drafts`).
    pub drafts: bool,
    /// The time posts are compared with: a post dated after `now` is
    /// hidden (and named by `Site::next_change`).
    pub now: SystemTime,
}

/// A problem in the sources, with the place it was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub file: PathBuf,
    /// 1-based; 0 when the finding is about the whole file.
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
        }
    }
}

/// Parsed sources kept between builds in the cache's `memo/` directory,
/// which the content side owns: a source whose identity (device, inode,
/// size, mtime) is unchanged is not parsed or rendered again. Only one
/// builder runs at a time (the store holds a lock), so the memo needs no
/// locking of its own.
pub struct Memo {
    dir: Option<PathBuf>,
}

impl Memo {
    /// A memo kept under `dir` (created when missing). A corrupt memo
    /// entry is treated as missing, never trusted.
    pub fn open(dir: &Path) -> std::io::Result<Memo> {
        std::fs::create_dir_all(dir)?;
        Ok(Memo {
            dir: Some(dir.to_path_buf()),
        })
    }

    /// A memo that remembers nothing (`build`, `check`, tests).
    pub fn none() -> Memo {
        Memo { dir: None }
    }
}

/// One file the site consists of.
#[derive(Clone, Debug)]
pub struct Planned {
    /// Its path in the output tree, relative, no leading slash, always a
    /// file name: `index.html`, `page/2/index.html`, `hello-world/index.html`,
    /// `2024/05/01/hello-world.html`, `tag/rust/index.html`, `tag/index.html`,
    /// `rss/index.xml` (RSS 2.0, Ghost's `/rss/`), `atom.xml`, `sitemap.xml`,
    /// `robots.txt`, `404.html`, `search.idx` (read by `search`), and
    /// theme assets such as `theme/style.css`.
    pub path: String,
    /// Hash of every input: equal keys, equal bytes.
    pub key: u128,
    /// Last-Modified of the file: a post's `updated` (or `date`); for a
    /// list, the newest shown post's.
    pub modified: SystemTime,
    /// Its Content-Type.
    pub content_type: &'static str,
}

/// A site read from its directory: site.toml, every post's and page's
/// metadata, the templates.
pub struct Site {
    root: PathBuf,
    memo_dir: Option<PathBuf>,
    config: Config,
    templates: Templates,
    /// Visible posts, newest first.
    posts: Vec<Entry>,
    /// Visible pages, by slug.
    pages: Vec<Entry>,
    /// Tags of visible posts, by slug; each with its posts (indices
    /// into `posts`, newest first).
    tags: Vec<Group>,
    /// Authors of visible posts, by slug.
    authors: Vec<Group>,
    next_change: Option<SystemTime>,
    /// The planned files, in plan order, and where each is.
    jobs: Vec<(String, Job)>,
    by_path: HashMap<String, usize>,
    /// Summaries rendered in this process when there is no memo, so a
    /// build renders each body for its list pages once. Summaries are
    /// short, so this stays small.
    summaries: Mutex<HashMap<u128, Arc<Rendered>>>,
}

/// One post or page.
pub(crate) struct Entry {
    file: PathBuf,
    identity: u128,
    content: u128,
    meta: Meta,
    /// URL path, percent-encoded: `/hello/`.
    url: String,
    /// Output path: `hello/index.html`.
    out: String,
    /// Author slugs, resolved (the site author when none is named).
    authors: Vec<String>,
}

/// A tag or an author, with its posts.
pub(crate) struct Group {
    slug: String,
    name: String,
    posts: Vec<usize>,
}

impl Site {
    /// Reads `dir` (site.toml, posts/, pages/, templates/), parsing only
    /// sources the memo does not already hold. Every finding in the
    /// sources is returned, not only the first.
    pub fn load(dir: &Path, opts: &LoadOptions, memo: &mut Memo) -> Result<Site, Vec<Finding>> {
        let (config, mut findings) = Config::load(dir);
        let (templates, f) = Templates::load(dir);
        findings.extend(f);
        let mut reader = Reader {
            memo_dir: memo.dir.clone(),
            seen: HashSet::new(),
            findings: Vec::new(),
        };
        let posts = reader.read_dir(&dir.join("posts"), true);
        let pages = reader.read_dir(&dir.join("pages"), false);
        findings.append(&mut reader.findings);
        if let Some(d) = &memo.dir {
            content::memo::prune(d, &reader.seen);
        }
        let mut site = Site {
            root: dir.to_path_buf(),
            memo_dir: memo.dir.clone(),
            config,
            templates,
            posts: Vec::new(),
            pages: Vec::new(),
            tags: Vec::new(),
            authors: Vec::new(),
            next_change: None,
            jobs: Vec::new(),
            by_path: HashMap::new(),
            summaries: Mutex::new(HashMap::new()),
        };
        site.place(posts, pages, opts, &mut findings);
        if !findings.is_empty() {
            findings.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
            return Err(findings);
        }
        site.group();
        site.jobs = content::plan::jobs(&site);
        site.by_path = site
            .jobs
            .iter()
            .enumerate()
            .map(|(i, (p, _))| (p.clone(), i))
            .collect();
        Ok(site)
    }

    /// Gives every source its URL, checks URLs are unique and authors
    /// known, and keeps the visible ones.
    fn place(
        &mut self,
        posts: Vec<Entry>,
        pages: Vec<Entry>,
        opts: &LoadOptions,
        findings: &mut Vec<Finding>,
    ) {
        let now = Date::from_system(opts.now);
        let mut urls: HashMap<String, PathBuf> = HashMap::new();
        let mut claim = |e: &Entry, findings: &mut Vec<Finding>| {
            let first = e.out.split('/').next().unwrap_or("");
            if RESERVED.contains(&first) || e.out.starts_with("index.html") {
                findings.push(Finding {
                    file: e.file.clone(),
                    line: 0,
                    message: format!(
                        "its URL {} is one the site itself uses; give it another slug",
                        e.url
                    ),
                });
            } else if let Some(other) = urls.insert(e.out.clone(), e.file.clone()) {
                findings.push(Finding {
                    file: e.file.clone(),
                    line: 0,
                    message: format!(
                        "duplicate slug: {} also has the URL {}",
                        other.display(),
                        e.url
                    ),
                });
            }
        };
        for mut e in posts {
            e.url = post_url(&self.config.permalink, &e.meta);
            e.out = out_path(&e.url);
            claim(&e, findings);
            self.check_template(&e, findings);
            e.authors = self.resolve_authors(&e, findings);
            let date = e.meta.date.unwrap_or(now);
            if e.meta.draft && !opts.drafts {
                continue;
            }
            if date > now {
                let t = date.to_system();
                self.next_change = Some(self.next_change.map_or(t, |n| n.min(t)));
                continue;
            }
            self.posts.push(e);
        }
        for mut e in pages {
            e.url = format!("/{}/", encode_path(&e.meta.slug));
            e.out = format!("{}/index.html", e.meta.slug);
            claim(&e, findings);
            self.check_template(&e, findings);
            e.authors = self.resolve_authors(&e, findings);
            if !e.meta.draft || opts.drafts {
                self.pages.push(e);
            }
        }
        self.check_aliases(&urls, findings);
        let key = |e: &Entry| (std::cmp::Reverse(e.meta.date), e.meta.slug.clone());
        self.posts.sort_by_key(key);
        self.pages.sort_by(|a, b| a.meta.slug.cmp(&b.meta.slug));
    }

    /// An alias must not hide a URL the site answers, nor be claimed by
    /// two sources.
    fn check_aliases(&self, urls: &HashMap<String, PathBuf>, findings: &mut Vec<Finding>) {
        let mut seen: HashMap<String, &Path> = HashMap::new();
        for e in self.posts.iter().chain(&self.pages) {
            for a in &e.meta.aliases {
                let out = out_path(a);
                let message = if urls.contains_key(&out)
                    || RESERVED.contains(&out.split('/').next().unwrap_or(""))
                {
                    format!("alias {a} is a URL the site already answers")
                } else if let Some(other) = seen.insert(out, &e.file) {
                    format!("alias {a} is also an alias of {}", other.display())
                } else {
                    continue;
                };
                findings.push(Finding {
                    file: e.file.clone(),
                    line: e.meta.aliases_line,
                    message,
                });
            }
        }
    }

    /// A `template` named in front matter must exist.
    fn check_template(&self, e: &Entry, findings: &mut Vec<Finding>) {
        let name = content::render::template_of(e, "post.html");
        if !self.templates.has(name) {
            findings.push(Finding {
                file: e.file.clone(),
                line: 0,
                message: format!("template {name:?} is neither built in nor in templates/"),
            });
        }
    }

    fn resolve_authors(&self, e: &Entry, findings: &mut Vec<Finding>) -> Vec<String> {
        if e.meta.authors.is_empty() {
            return vec![self.config.default_author().slug];
        }
        for a in &e.meta.authors {
            if !self.config.authors.contains_key(a) {
                let known: Vec<&str> = self.config.authors.keys().map(String::as_str).collect();
                let hint = did_you_mean(a, &known)
                    .map(|k| format!("; did you mean `{k}`?"))
                    .unwrap_or_default();
                findings.push(Finding {
                    file: e.file.clone(),
                    line: e.meta.authors_line,
                    message: format!(
                        "author `{a}` is not in site.toml (add [authors.{a}] with a name){hint}"
                    ),
                });
            }
        }
        e.meta.authors.clone()
    }

    /// Collects tags and authors of the visible posts.
    fn group(&mut self) {
        let mut tags: BTreeMap<String, Group> = BTreeMap::new();
        let mut authors: BTreeMap<String, Group> = BTreeMap::new();
        for (i, p) in self.posts.iter().enumerate() {
            let mut seen = HashSet::new();
            for t in &p.meta.tags {
                let slug = slugify(t);
                if slug.is_empty() || !seen.insert(slug.clone()) {
                    continue;
                }
                let g = tags.entry(slug.clone()).or_insert_with(|| Group {
                    slug,
                    name: t.clone(),
                    posts: Vec::new(),
                });
                g.posts.push(i);
            }
            for a in &p.authors {
                let name = self.author(a).name;
                authors
                    .entry(a.clone())
                    .or_insert_with(|| Group {
                        slug: a.clone(),
                        name,
                        posts: Vec::new(),
                    })
                    .posts
                    .push(i);
            }
        }
        self.tags = tags.into_values().collect();
        self.authors = authors.into_values().collect();
    }

    fn author(&self, slug: &str) -> Author {
        self.config
            .authors
            .get(slug)
            .cloned()
            .unwrap_or_else(|| self.config.default_author())
    }

    /// Every file of the site, with its key.
    pub fn plan(&self) -> Vec<Planned> {
        content::plan::plan(self)
    }

    /// The bytes of one planned file.
    pub fn render(&self, planned: &Planned) -> std::io::Result<Vec<u8>> {
        let Some(&i) = self.by_path.get(&planned.path) else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{} is not a file of this site", planned.path),
            ));
        };
        content::render::render(self, &self.jobs[i].1)
    }

    /// Old URL paths answered with 301, each with its target URL path
    /// (from `aliases` in front matter): `("/old/", "/new-slug/")`.
    pub fn aliases(&self) -> Vec<(String, String)> {
        self.posts
            .iter()
            .chain(&self.pages)
            .flat_map(|e| e.meta.aliases.iter().map(|a| (a.clone(), e.url.clone())))
            .collect()
    }

    /// When the plan changes with no source changing: the earliest date
    /// of a post still in the future.
    pub fn next_change(&self) -> Option<SystemTime> {
        self.next_change
    }

    /// The directory whose files are served as they are, at the site's
    /// root URL (`static/logo.png` at `/logo.png`).
    pub fn static_dir(&self) -> PathBuf {
        self.root.join("static")
    }
}

/// First path segments the site's own files use.
const RESERVED: &[&str] = &[
    "page",
    "tag",
    "author",
    "rss",
    "theme",
    "search",
    "atom.xml",
    "sitemap.xml",
    "robots.txt",
    "404.html",
    "search.idx",
];

/// A post's URL path from the permalink pattern, with the date as the
/// writer wrote it (in its own offset).
fn post_url(pattern: &str, meta: &Meta) -> String {
    let c = meta.date.map(|d| d.civil());
    let (y, m, d) = c.map_or((1970, 1, 1), |c| (c.year, c.month, c.day));
    pattern
        .replace("{year}", &format!("{y:04}"))
        .replace("{month}", &format!("{m:02}"))
        .replace("{day}", &format!("{d:02}"))
        .replace("{slug}", &encode_path(&meta.slug))
}

/// The output file of a URL path: `/a/` is `a/index.html`, `/a.html`
/// is `a.html`. Percent-escapes are decoded: files carry real names.
fn out_path(url: &str) -> String {
    let path = decode_path(url.trim_start_matches('/'));
    if path.is_empty() || path.ends_with('/') {
        format!("{path}index.html")
    } else {
        path
    }
}

/// Decodes %XX escapes (as `encode_path` wrote them).
pub(crate) fn decode_path(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads the sources of one directory.
struct Reader {
    memo_dir: Option<PathBuf>,
    seen: HashSet<u128>,
    findings: Vec<Finding>,
}

impl Reader {
    fn read_dir(&mut self, dir: &Path, posts: bool) -> Vec<Entry> {
        let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .flatten()
                .map(|e| e.path())
                // Not hidden files (editors' locks and swap files).
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| !n.to_string_lossy().starts_with('.'))
                })
                .filter(|p| p.extension().is_some_and(|e| e == "md") && p.is_file())
                .collect(),
            Err(_) => Vec::new(),
        };
        files.sort();
        files
            .into_iter()
            .filter_map(|f| self.read(f, posts))
            .collect()
    }

    fn read(&mut self, file: PathBuf, posts: bool) -> Option<Entry> {
        let fail = |e: std::io::Error, file: &PathBuf| Finding {
            file: file.clone(),
            line: 0,
            message: format!("cannot read: {e}"),
        };
        let identity = match content::memo::identity(&file) {
            Ok(i) => i,
            // Removed since the directory was listed: as if never there.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                self.findings.push(fail(e, &file));
                return None;
            }
        };
        if let Some(dir) = &self.memo_dir {
            if let Some(head) = content::memo::read_head(dir, identity) {
                if let Some(content) = head.content_hash() {
                    self.seen.insert(identity);
                    return Some(Entry::new(file, identity, content, head.meta));
                }
            }
        }
        let bytes = match std::fs::read(&file) {
            Ok(b) => b,
            Err(e) => {
                self.findings.push(fail(e, &file));
                return None;
            }
        };
        let text = String::from_utf8_lossy(&bytes);
        match front::parse(&file, &text, posts) {
            Ok((meta, split)) => {
                let content = content::hash::of(&bytes);
                if let Some(dir) = &self.memo_dir {
                    // Render now, while the source is in hand: the memo
                    // file is then created once, whole.
                    let body = content::markdown::render(split.body, meta.format);
                    content::memo::write(dir, identity, &Head::new(content, meta.clone()), &body);
                    self.seen.insert(identity);
                }
                Some(Entry::new(file, identity, content, meta))
            }
            Err(f) => {
                self.findings.extend(f);
                None
            }
        }
    }
}

impl Entry {
    fn new(file: PathBuf, identity: u128, content: u128, meta: Meta) -> Entry {
        Entry {
            file,
            identity,
            content,
            meta,
            url: String::new(),
            out: String::new(),
            authors: Vec::new(),
        }
    }
}

/// One search result.
#[derive(Clone, Debug)]
pub struct Hit {
    pub url: String,
    pub title: String,
    pub date: SystemTime,
    pub snippet: String,
}

/// Searches the index file (`search.idx` from `plan`), reading it as a
/// stream so memory stays bounded: at most `limit` hits, best first.
pub fn search(index: &mut dyn std::io::BufRead, query: &str, limit: usize) -> Vec<Hit> {
    content::search::search(index, query, limit)
}

/// The search page for `query` and its hits, themed like every other page:
/// needs only site.toml and the templates, not the posts. An empty query
/// shows the form alone.
pub fn search_page(site_dir: &Path, query: &str, hits: &[Hit]) -> std::io::Result<Vec<u8>> {
    let (config, _) = Config::load(site_dir);
    let (templates, _) = Templates::load(site_dir);
    let hits: Vec<minijinja::Value> = hits
        .iter()
        .map(|h| {
            let d = Date::from_system(h.date);
            minijinja::context! {
                url => h.url.clone(),
                title => h.title.clone(),
                date => d.rfc3339(),
                date_human => d.human(),
                snippet => h.snippet.clone(),
                snippet_html => minijinja::Value::from_safe_string(content::search::mark(&h.snippet, query)),
            }
        })
        .collect();
    let query = query.trim();
    let ctx = minijinja::context! {
        query => query,
        hits,
        ..content::render::base_context(&config, "/search"),
    };
    templates.render("search.html", ctx).map(String::into_bytes)
}

/// Problems in the site at `site_dir`, each with file and line: bad
/// front matter and settings, duplicate slugs, broken internal links,
/// missing images. Empty when all is well.
pub fn check(site_dir: &Path) -> Vec<Finding> {
    content::check::check(site_dir)
}

/// Writes `posts/SLUG.md` for a new draft titled `title`, dated `now`;
/// refuses to overwrite.
pub fn new_post(site_dir: &Path, title: &str, now: SystemTime) -> std::io::Result<PathBuf> {
    content::check::new_post(site_dir, title, now)
}
