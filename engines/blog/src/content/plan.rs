//! The list of files a site consists of, and each one's key: the hash
//! of every input of its bytes, so the store re-renders only what an
//! edit touched.
//!
//! Owns `Job` (what a planned file is) and the keys. Invariant: every
//! value a file's bytes depend on is hashed into its key: this binary's
//! version, site.toml, the templates, and per file its sources' URLs
//! and content hashes (a post's metadata and body derive from its
//! content) and its neighbours' titles and URLs. No Markdown is
//! rendered here.

use std::time::SystemTime;

use super::hash::Fnv;
use super::theme_assets_hash;
use crate::site::{Entry, Group, Planned, Site};

/// What a planned file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Job {
    /// The front page list, page N (1-based).
    Index(usize),
    Post(usize),
    Page(usize),
    TagIndex,
    /// Tag (index into `tags`), page N.
    Tag(usize, usize),
    Author(usize, usize),
    Rss,
    Atom,
    /// A tag's RSS feed, as Ghost has at `/tag/SLUG/rss/`.
    TagRss(usize),
    /// An author's RSS feed (`/author/SLUG/rss/`).
    AuthorRss(usize),
    Sitemap,
    Robots,
    NotFound,
    Style,
    Highlight,
    SearchIndex,
}

/// How many posts the feeds carry.
pub const FEED_POSTS: usize = 20;

const HTML: &str = "text/html; charset=utf-8";
const RSS: &str = "application/rss+xml; charset=utf-8";

/// Number of list pages for `n` posts: at least one, so an empty site
/// still has a front page.
pub fn page_count(n: usize, per: usize) -> usize {
    n.div_ceil(per.max(1)).max(1)
}

/// URL path of page `page` of a list under `prefix` (`/`, `/tag/rust/`).
pub fn list_url(prefix: &str, page: usize) -> String {
    if page <= 1 {
        prefix.to_string()
    } else {
        format!("{prefix}page/{page}/")
    }
}

fn list_out(prefix: &str, page: usize) -> String {
    let url = list_url(prefix, page);
    format!(
        "{}index.html",
        crate::site::decode_path(url.trim_start_matches('/'))
    )
}

pub fn tag_prefix(g: &Group) -> String {
    format!("/tag/{}/", super::words::encode_path(&g.slug))
}

pub fn author_prefix(g: &Group) -> String {
    format!("/author/{}/", super::words::encode_path(&g.slug))
}

/// Every planned file and its job, in a stable order.
pub fn jobs(site: &Site) -> Vec<(String, Job)> {
    let per = site.config.posts_per_page;
    let mut jobs = Vec::new();
    for page in 1..=page_count(site.posts.len(), per) {
        jobs.push((list_out("/", page), Job::Index(page)));
    }
    for (i, p) in site.posts.iter().enumerate() {
        jobs.push((p.out.clone(), Job::Post(i)));
    }
    for (i, p) in site.pages.iter().enumerate() {
        jobs.push((p.out.clone(), Job::Page(i)));
    }
    jobs.push(("tag/index.html".into(), Job::TagIndex));
    for (i, g) in site.tags.iter().enumerate() {
        for page in 1..=page_count(g.posts.len(), per) {
            jobs.push((list_out(&tag_prefix(g), page), Job::Tag(i, page)));
        }
        jobs.push((format!("tag/{}/rss/index.xml", g.slug), Job::TagRss(i)));
    }
    for (i, g) in site.authors.iter().enumerate() {
        for page in 1..=page_count(g.posts.len(), per) {
            jobs.push((list_out(&author_prefix(g), page), Job::Author(i, page)));
        }
        jobs.push((
            format!("author/{}/rss/index.xml", g.slug),
            Job::AuthorRss(i),
        ));
    }
    jobs.extend([
        ("rss/index.xml".to_string(), Job::Rss),
        ("atom.xml".into(), Job::Atom),
        ("sitemap.xml".into(), Job::Sitemap),
        ("robots.txt".into(), Job::Robots),
        ("404.html".into(), Job::NotFound),
        ("search.idx".into(), Job::SearchIndex),
        ("theme/style.css".into(), Job::Style),
        ("theme/highlight.css".into(), Job::Highlight),
    ]);
    jobs
}

/// The posts shown on page `page` of a list.
pub fn page_slice(posts: &[usize], per: usize, page: usize) -> &[usize] {
    let start = (page - 1) * per;
    &posts[start.min(posts.len())..(start + per).min(posts.len())]
}

/// When a source last changed, as its front matter says.
pub fn modified(e: &Entry) -> SystemTime {
    e.meta
        .updated
        .or(e.meta.date)
        .map_or(SystemTime::UNIX_EPOCH, |d| d.to_system())
}

fn sig(h: &mut Fnv, e: &Entry) {
    h.str(&e.url).u128(e.content).str(&e.file.to_string_lossy());
}

fn newest<'a>(entries: impl Iterator<Item = &'a Entry>) -> SystemTime {
    entries
        .map(modified)
        .max()
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

pub fn plan(site: &Site) -> Vec<Planned> {
    let every: Vec<usize> = (0..site.posts.len()).collect();
    let newest_of_site = newest(site.posts.iter().chain(&site.pages));
    site.jobs
        .iter()
        .map(|(path, job)| {
            let mut h = Fnv::new();
            h.str(env!("CARGO_PKG_VERSION"))
                .u128(site.config.hash)
                .u128(site.templates.hash)
                .str(path)
                .str(&format!("{job:?}"));
            let (modified, content_type) = inputs(site, *job, &mut h, &every, newest_of_site);
            Planned {
                path: path.clone(),
                key: h.finish(),
                modified,
                content_type,
            }
        })
        .collect()
}

/// Hashes into `h` what the file of `job` shows beyond the inputs of
/// every file; gives its modification time and content type.
fn inputs(
    site: &Site,
    job: Job,
    h: &mut Fnv,
    every: &[usize],
    newest_of_site: SystemTime,
) -> (SystemTime, &'static str) {
    let per = site.config.posts_per_page;
    let mut list = |name: &str, posts: &[usize], page: usize| {
        h.str(name).u64(page_count(posts.len(), per) as u64);
        let shown = page_slice(posts, per, page);
        for &i in shown {
            sig(h, &site.posts[i]);
        }
        (newest(shown.iter().map(|&i| &site.posts[i])), HTML)
    };
    match job {
        Job::Index(page) => list("", every, page),
        Job::Tag(t, page) => list(&site.tags[t].name, &site.tags[t].posts, page),
        Job::Author(a, page) => list(&site.authors[a].name, &site.authors[a].posts, page),
        Job::Post(i) => {
            let e = &site.posts[i];
            sig(h, e);
            // Neighbours: newer (i-1) and older (i+1).
            for n in [i.checked_sub(1), i.checked_add(1)] {
                match n.and_then(|n| site.posts.get(n)) {
                    Some(p) => h.str(&p.meta.title).str(&p.url),
                    None => h.str(""),
                };
            }
            (modified(e), HTML)
        }
        Job::Page(i) => {
            sig(h, &site.pages[i]);
            (modified(&site.pages[i]), HTML)
        }
        Job::TagIndex => {
            for g in &site.tags {
                h.str(&g.slug).str(&g.name).u64(g.posts.len() as u64);
            }
            (newest_of_site, HTML)
        }
        Job::Rss | Job::Atom => {
            for e in site.posts.iter().take(FEED_POSTS) {
                sig(h, e);
            }
            let ct = if job == Job::Rss {
                RSS
            } else {
                "application/atom+xml; charset=utf-8"
            };
            (newest(site.posts.iter().take(FEED_POSTS)), ct)
        }
        Job::TagRss(g) | Job::AuthorRss(g) => {
            let g = if matches!(job, Job::TagRss(_)) {
                &site.tags[g]
            } else {
                &site.authors[g]
            };
            h.str(&g.name);
            let shown = &g.posts[..g.posts.len().min(FEED_POSTS)];
            for &i in shown {
                sig(h, &site.posts[i]);
            }
            (newest(shown.iter().map(|&i| &site.posts[i])), RSS)
        }
        Job::Sitemap => {
            for e in site.posts.iter().chain(&site.pages) {
                sig(h, e);
            }
            for g in &site.tags {
                h.str(&g.slug);
            }
            (newest_of_site, "application/xml; charset=utf-8")
        }
        Job::SearchIndex => {
            for e in &site.posts {
                sig(h, e);
            }
            (newest_of_site, "text/plain; charset=utf-8")
        }
        Job::Robots => (newest_of_site, "text/plain; charset=utf-8"),
        Job::NotFound => (newest_of_site, HTML),
        Job::Style | Job::Highlight => {
            h.u128(theme_assets_hash());
            (newest_of_site, "text/css; charset=utf-8")
        }
    }
}
