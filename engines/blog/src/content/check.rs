//! `jawas-blog check` and `jawas-blog new`: the writer's tools.
//!
//! `check` loads the whole site (drafts and future posts included, so
//! they are checked before they go out) and reports bad front matter,
//! duplicate slugs, internal links nothing answers and images missing
//! from `static/`, each with file and line. `new_post` writes a post
//! skeleton and never overwrites.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::date::Date;
use super::render::body;
use super::words::slugify;
use crate::site::{decode_path, Finding, LoadOptions, Memo, Site};

pub fn check(site_dir: &Path) -> Vec<Finding> {
    let opts = LoadOptions {
        drafts: true,
        // Far enough ahead that every scheduled post is checked too.
        now: SystemTime::now() + Duration::from_secs(100 * 365 * 86400),
    };
    let site = match Site::load(site_dir, &opts, &mut Memo::none()) {
        Ok(s) => s,
        Err(findings) => return findings,
    };
    let answered = answered_paths(&site);
    let mut findings = Vec::new();
    for e in site.posts.iter().chain(&site.pages) {
        let rendered = match body(&site, e) {
            Ok(r) => r,
            Err(err) => {
                findings.push(Finding {
                    file: e.file.clone(),
                    line: 0,
                    message: format!("cannot read: {err}"),
                });
                continue;
            }
        };
        let at = |line: usize| e.meta.body_line + line - 1;
        for (url, line) in &rendered.links {
            if !answers(&answered, url) {
                findings.push(Finding {
                    file: e.file.clone(),
                    line: at(*line),
                    message: format!(
                        "broken link {url}: no post, page, tag, static file or alias answers it"
                    ),
                });
            }
        }
        let images = rendered.images.iter().cloned();
        let feature = e
            .meta
            .feature_image
            .iter()
            .filter(|u| u.starts_with('/') && !u.starts_with("//"));
        let feature = feature.map(|u| (u.clone(), 0));
        for (url, line) in images.chain(feature) {
            if !answers(&answered, &url) {
                findings.push(Finding {
                    file: e.file.clone(),
                    line: if line == 0 { 0 } else { at(line) },
                    message: format!("missing image {url}: no such file in static/"),
                });
            }
        }
    }
    findings
}

/// Every URL path the site answers with 200 or 301.
fn answered_paths(site: &Site) -> HashSet<String> {
    let mut out = HashSet::new();
    for (path, _) in &site.jobs {
        out.insert(format!("/{path}"));
        if let Some(dir) = path.strip_suffix("index.html") {
            out.insert(format!("/{dir}"));
        }
    }
    for (alias, _) in site.aliases() {
        out.insert(decode_path(&alias));
    }
    out.insert("/search".into());
    let root = site.static_dir();
    let mut stack = vec![root.clone()];
    let mut budget = 100_000; // bounded walk, whatever is under static/
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            budget -= 1;
            if budget == 0 {
                return out;
            }
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(rel) = p.strip_prefix(&root) {
                out.insert(format!("/{}", rel.to_string_lossy()));
            }
        }
    }
    out
}

/// Whether a link is answered: its path (no query or fragment,
/// %-decoded), or that path with a `/` added (a 301, as Ghost does).
fn answers(answered: &HashSet<String>, url: &str) -> bool {
    let path = url.split(['#', '?']).next().unwrap_or(url);
    let path = decode_path(path);
    // `/page/1/` of any list is a 301 to the list itself.
    let path = match path.strip_suffix("page/1/") {
        Some(list) if answered.contains(list) => list.to_string(),
        _ => path,
    };
    answered.contains(&path) || answered.contains(&format!("{path}/"))
}

/// Writes `posts/SLUG.md` for a new post titled `title`, a draft dated
/// `now`; refuses to overwrite a file that exists.
pub fn new_post(site_dir: &Path, title: &str, now: SystemTime) -> std::io::Result<PathBuf> {
    let mut slug = slugify(title);
    if slug.is_empty() {
        slug = "post".into();
    }
    let dir = site_dir.join("posts");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{slug}.md"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                std::io::Error::new(
                    e.kind(),
                    format!(
                        "{} already exists; pick another title or edit it",
                        path.display()
                    ),
                )
            } else {
                e
            }
        })?;
    let title_toml = toml::Value::String(title.to_string()).to_string();
    write!(
        f,
        "+++\ntitle = {title_toml}\ndate = {}\ndraft = true\ntags = []\n+++\n\nThe first paragraph is the summary on the front page.\n\n<!-- more -->\n\nThe rest of the post.\n",
        Date::from_system(now).rfc3339()
    )?;
    Ok(path)
}
