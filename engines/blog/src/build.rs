//! `jawas-blog build`: the whole site written as files, for a static host,
//! from the same objects the engine serves (so the same bytes).
//!
//! Owns the export: the current generation's files, then `static/` (a
//! generated file wins over a static one of the same name, as when
//! serving), then a `_redirects` file (Netlify's format) and an HTML page
//! per alias that refreshes to its target. Invariant: every file written
//! for the plan has its record's length; the cache's lock is held
//! throughout, so no server switches or removes the generation being read.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use jawas_engine::{exit, Args, Error, Opt};
use jawas_http::path::html_escape;

use crate::store::{BuildError, Store};
use crate::Subcommand;

pub struct Build;

impl Subcommand for Build {
    const NAME: &'static str = "jawas-blog build";
    const USAGE: &'static [&'static str] = &["--site DIR --out DIR"];
    const ABOUT: &'static str = "\
Writes the site in DIR as files under --out DIR: every page, feed and asset
exactly as the engine serves it, the files of static/, a _redirects file
(Netlify's format) and a page refreshing to its target for every alias.
Existing files in the output directory are replaced, others left alone.";
    const OPTIONS: &'static [Opt] = &[
        Opt::value("site", "DIR", "The site (required)."),
        Opt::value("out", "DIR", "Write the files under DIR (required)."),
        Opt::flag("drafts", "Include posts with draft = true."),
        Opt::value(
            "cache",
            "DIR",
            "The cache to build in (default DIR/.jawas-cache under the site).",
        ),
    ];

    fn run(args: &Args) -> Result<i32, Error> {
        if let Some(a) = args.positionals().first() {
            return Err(Error::usage(format!("unexpected argument '{a}'")));
        }
        let out = args
            .value("out")
            .ok_or_else(|| Error::usage("--out DIR is required"))?;
        let store = crate::store_for(args)?;
        std::fs::create_dir_all(out).map_err(|e| Error::config(format!("--out '{out}': {e}")))?;
        let out =
            std::fs::canonicalize(out).map_err(|e| Error::config(format!("--out '{out}': {e}")))?;
        if out.starts_with(store.site_dir().join("static")) || out == store.site_dir() {
            return Err(Error::config(format!(
                "--out '{}': inside the site's sources",
                out.display()
            )));
        }
        let written = store
            .rebuild_then(|s| export(s, &out))
            .map_err(build_error)?
            .map_err(Error::system)?;
        println!("{written} files written to {}", out.display());
        Ok(exit::OK)
    }
}

/// One error line per finding (exit 100: the sources need a person), or
/// the failure to write the cache (111).
fn build_error(e: BuildError) -> Error {
    match e {
        BuildError::Findings(list) => {
            let lines = list.iter().map(|f| Error::config(f.to_string()));
            match Error::collect(lines) {
                Err(e) => e,
                Ok(()) => Error::config("the site could not be loaded"),
            }
        }
        BuildError::Io(why) => Error::system(why),
    }
}

/// Writes everything under `out`; the number of files written.
fn export(store: &Store, out: &Path) -> Result<usize, String> {
    let gen = store.current().ok_or("the cache has no generation")?;
    let mut written = HashSet::new();
    for (record, path) in store.manifest_records(&gen) {
        let dest = out.join(&path);
        make_parent(&dest)?;
        let n = std::fs::copy(store.object_path(&record), &dest)
            .map_err(|e| format!("{}: {e}", dest.display()))?;
        if n != record.len {
            return Err(format!(
                "{path}: {n} bytes in the cache, its record says {}",
                record.len
            ));
        }
        written.insert(PathBuf::from(path));
    }
    copy_static(
        &store.site_dir().join("static"),
        out,
        Path::new(""),
        &mut written,
    )?;
    let mut redirects = String::new();
    for (from, to) in store.aliases() {
        redirects.push_str(&format!("{from} {to} 301\n"));
        let Some(rel) = alias_file(&from) else {
            continue;
        };
        if written.contains(&rel) {
            continue;
        }
        let dest = out.join(&rel);
        make_parent(&dest)?;
        write(&dest, refresh_page(&to).as_bytes())?;
        written.insert(rel);
    }
    write(&out.join("_redirects"), redirects.as_bytes())?;
    Ok(written.len() + 1)
}

/// The file an alias URL path is written to: `/old/` as `old/index.html`,
/// `/old.html` as itself; `None` for a path that would leave the output.
fn alias_file(from: &str) -> Option<PathBuf> {
    let trimmed = from.trim_start_matches('/');
    let segs: Vec<&str> = trimmed.split('/').filter(|s| !s.is_empty()).collect();
    if segs.iter().any(|s| s.starts_with('.') || s.contains('\\')) {
        return None;
    }
    let mut rel: PathBuf = segs.iter().collect();
    let last = segs.last().copied().unwrap_or("");
    if from.ends_with('/') || !last.contains('.') {
        rel.push("index.html");
    }
    Some(rel)
}

/// A page sending the reader on to `to` (a static host cannot answer 301
/// without `_redirects`).
fn refresh_page(to: &str) -> String {
    let to = html_escape(to);
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Moved</title>\
         <link rel=\"canonical\" href=\"{to}\">\
         <meta http-equiv=\"refresh\" content=\"0; url={to}\"></head>\
         <body><p>This page has moved to <a href=\"{to}\">{to}</a>.</p></body></html>\n"
    )
}

/// Copies `static/REL` into `out/REL`, recursively, skipping dotfiles and
/// files already written from the plan.
fn copy_static(
    from: &Path,
    out: &Path,
    rel: &Path,
    written: &mut HashSet<PathBuf>,
) -> Result<(), String> {
    let Ok(entries) = std::fs::read_dir(from.join(rel)) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let name = e.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let rel = rel.join(&name);
        let Ok(meta) = std::fs::metadata(e.path()) else {
            continue;
        };
        if meta.is_dir() {
            copy_static(from, out, &rel, written)?;
        } else if meta.is_file() && !written.contains(&rel) {
            let dest = out.join(&rel);
            make_parent(&dest)?;
            std::fs::copy(e.path(), &dest).map_err(|e| format!("{}: {e}", dest.display()))?;
            written.insert(rel);
        }
    }
    Ok(())
}

fn make_parent(path: &Path) -> Result<(), String> {
    match path.parent() {
        Some(p) => std::fs::create_dir_all(p).map_err(|e| format!("{}: {e}", p.display())),
        None => Ok(()),
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_files() {
        for (from, want) in [
            ("/old/", Some("old/index.html")),
            ("/old", Some("old/index.html")),
            ("/2019/01/02/post.html", Some("2019/01/02/post.html")),
            ("/", Some("index.html")),
            ("/a/../../etc/", None),
            ("/.git/config", None),
        ] {
            assert_eq!(alias_file(from), want.map(PathBuf::from), "{from}");
        }
    }
}
