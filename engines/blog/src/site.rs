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
//! STATUS: this is the agreed interface with placeholder bodies; the
//! content side replaces the bodies, keeping the signatures (add methods
//! freely; change a signature only together with the store side).

use std::path::{Path, PathBuf};

// The content modules hang under this file, not main.rs, so the seam
// with the store side stays this one file.
#[path = "content/mod.rs"]
pub mod content;
#[path = "theme/mod.rs"]
pub mod theme;
use std::time::SystemTime;

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
}

impl Site {
    /// Reads `dir` (site.toml, posts/, pages/, templates/), parsing only
    /// sources the memo does not already hold. Every finding in the
    /// sources is returned, not only the first.
    pub fn load(dir: &Path, _opts: &LoadOptions, _memo: &mut Memo) -> Result<Site, Vec<Finding>> {
        Ok(Site {
            root: dir.to_path_buf(),
        })
    }

    /// Every file of the site, with its key.
    pub fn plan(&self) -> Vec<Planned> {
        vec![Planned {
            path: "index.html".into(),
            key: 1,
            modified: SystemTime::UNIX_EPOCH,
            content_type: "text/html; charset=utf-8",
        }]
    }

    /// The bytes of one planned file.
    pub fn render(&self, planned: &Planned) -> std::io::Result<Vec<u8>> {
        Ok(format!("<!doctype html><title>{}</title>", planned.path).into_bytes())
    }

    /// Old URL paths answered with 301, each with its target URL path
    /// (from `aliases` in front matter): `("/old/", "/new-slug/")`.
    pub fn aliases(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    /// When the plan changes with no source changing: the earliest date
    /// of a post still in the future.
    pub fn next_change(&self) -> Option<SystemTime> {
        None
    }

    /// The directory whose files are served as they are, at the site's
    /// root URL (`static/logo.png` at `/logo.png`).
    pub fn static_dir(&self) -> PathBuf {
        self.root.join("static")
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
pub fn search(_index: &mut dyn std::io::BufRead, _query: &str, _limit: usize) -> Vec<Hit> {
    Vec::new()
}

/// The search page for `query` and its hits, themed like every other page:
/// needs only site.toml and the templates, not the posts.
pub fn search_page(_site_dir: &Path, query: &str, _hits: &[Hit]) -> std::io::Result<Vec<u8>> {
    Ok(format!("<!doctype html><title>search</title><p>{}", query.len()).into_bytes())
}
