//! The memo: parsed front matter and rendered bodies kept on disk
//! between builds, one file per source identity (path, device, inode,
//! size, mtime), so a rebuild after one edit parses and renders one
//! source.
//!
//! Owns the file format, one file per source named by its identity:
//! line 1 the head (content hash and `Meta`: all a load reads), line 2
//! the summary (all a list page reads), line 3 the rest of the
//! `Rendered` body. Each line is `CHECKSUM JSON`, and a line
//! whose checksum does not match is treated as missing (re-parsed,
//! never trusted). Files are written
//! to a temporary name and renamed, so a reader sees a whole file or
//! none.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::front::Meta;
use super::hash::{self, Fnv};
use super::markdown::Rendered;

/// Bumped when the memo's meaning changes; a mismatch is a miss.
const FORMAT: u32 = 2;

#[derive(Serialize, Deserialize)]
pub struct Head {
    format: u32,
    version: String,
    /// Hash of the source's bytes, as hex.
    pub content: String,
    pub meta: Meta,
}

impl Head {
    pub fn new(content: u128, meta: Meta) -> Head {
        Head {
            format: FORMAT,
            version: env!("CARGO_PKG_VERSION").into(),
            content: format!("{content:032x}"),
            meta,
        }
    }

    pub fn content_hash(&self) -> Option<u128> {
        u128::from_str_radix(&self.content, 16).ok()
    }
}

/// The identity of a source file: equal identities, equal contents
/// (as far as a stat can tell; an edit changes mtime or size).
pub fn identity(path: &Path) -> std::io::Result<u128> {
    let md = std::fs::metadata(path)?;
    Ok(Fnv::new()
        .str(&path.to_string_lossy())
        .u64(md.dev())
        .u64(md.ino())
        .u64(md.size())
        .i64(md.mtime())
        .i64(md.mtime_nsec())
        .finish())
}

fn entry(dir: &Path, identity: u128) -> PathBuf {
    dir.join(format!("{identity:032x}"))
}

fn encode<T: Serialize>(value: &T) -> Option<String> {
    let json = serde_json::to_string(value).ok()?;
    Some(format!("{:032x} {json}", hash::of(json.as_bytes())))
}

fn decode<T: for<'de> Deserialize<'de>>(line: &str) -> Option<T> {
    let (sum, json) = line.split_once(' ')?;
    if u128::from_str_radix(sum, 16).ok()? != hash::of(json.as_bytes()) {
        return None;
    }
    serde_json::from_str(json).ok()
}

fn lines(dir: &Path, identity: u128, n: usize) -> Option<Vec<String>> {
    use std::io::BufRead;
    let file = std::fs::File::open(entry(dir, identity)).ok()?;
    let mut reader = std::io::BufReader::new(file);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        line.truncate(line.trim_end_matches('\n').len());
        out.push(line);
    }
    Some(out)
}

/// Reads the head of `identity`'s memo (its first line only).
pub fn read_head(dir: &Path, identity: u128) -> Option<Head> {
    let lines = lines(dir, identity, 1)?;
    let head: Head = decode(&lines[0])?;
    (head.format == FORMAT && head.version == env!("CARGO_PKG_VERSION")).then_some(head)
}

/// The second line: what lists need, so they read no further.
#[derive(Serialize, Deserialize)]
struct SummaryLine {
    content: String,
    summary: String,
    words: usize,
}

/// The summary and word count, as a `Rendered` with only those set.
fn summary_line(line: &str, content: u128) -> Option<Rendered> {
    let s: SummaryLine = decode(line)?;
    (s.content == format!("{content:032x}")).then(|| Rendered {
        summary: s.summary,
        words: s.words,
        ..Rendered::default()
    })
}

/// The summary (and word count) of the body rendered from the source
/// with hash `content` (the first two lines only).
pub fn read_summary(dir: &Path, identity: u128, content: u128) -> Option<Rendered> {
    if let Some(r) = SUMMARIES.with(|c| c.borrow().get(&(identity, content)).cloned()) {
        return Some(r);
    }
    let lines = lines(dir, identity, 2)?;
    let head: Head = decode(&lines[0])?;
    if head.format != FORMAT || head.version != env!("CARGO_PKG_VERSION") {
        return None;
    }
    let r = summary_line(&lines[1], content)?;
    SUMMARIES.with(|c| {
        let mut c = c.borrow_mut();
        // Bounded: a build of any size keeps at most this many, then
        // reads the rest from disk as before.
        if c.len() < SUMMARY_CACHE {
            c.insert((identity, content), r.clone());
        }
    });
    Some(r)
}

/// Summaries already read by this process, by (identity, content hash):
/// a build shows each post in many lists (index pages, tags, authors,
/// feeds), and each read was a file opened again.
const SUMMARY_CACHE: usize = 20_000;

/// Empties this process's summaries (tests damage memo files on disk).
#[cfg(test)]
pub fn forget() {
    SUMMARIES.with(|c| c.borrow_mut().clear());
}

thread_local! {
    static SUMMARIES: std::cell::RefCell<std::collections::HashMap<(u128, u128), Rendered>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// The whole rendered body from the source with hash `content`.
pub fn read_body(dir: &Path, identity: u128, content: u128) -> Option<Rendered> {
    let lines = lines(dir, identity, 3)?;
    let head: Head = decode(&lines[0])?;
    if head.format != FORMAT || head.version != env!("CARGO_PKG_VERSION") {
        return None;
    }
    let first = summary_line(&lines[1], content)?;
    let rest: Rendered = decode(&lines[2])?;
    Some(Rendered {
        summary: first.summary,
        ..rest
    })
}

/// Writes the memo of `identity`: head and rendered body, in one file
/// (one file created per source: creating files is what costs most on
/// a cold build), written then renamed over. Failure is not an error
/// for the caller: the memo is only a saving.
pub fn write(dir: &Path, identity: u128, head: &Head, body: &Rendered) {
    let second = SummaryLine {
        content: head.content.clone(),
        summary: body.summary.clone(),
        words: body.words,
    };
    let rest = Rendered {
        summary: String::new(),
        ..body.clone()
    };
    let (Some(a), Some(b), Some(c)) = (encode(head), encode(&second), encode(&rest)) else {
        return;
    };
    let path = entry(dir, identity);
    let tmp = dir.join(format!(".tmp.{}.{identity:032x}", std::process::id()));
    if std::fs::write(&tmp, format!("{a}\n{b}\n{c}\n")).is_ok()
        && std::fs::rename(&tmp, &path).is_err()
    {
        let _ = std::fs::remove_file(&tmp);
    }
}

/// Removes memo files of sources that no longer exist as they were.
pub fn prune(dir: &Path, keep: &HashSet<u128>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let stale = match u128::from_str_radix(&name, 16) {
            Ok(id) => !keep.contains(&id),
            // Leftover temporary files of a builder that died.
            Err(_) => name.starts_with(".tmp."),
        };
        if stale {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::site::content::front::Format;

    fn meta() -> Meta {
        Meta {
            title: "T".into(),
            date: None,
            updated: None,
            tags: vec!["a".into()],
            draft: false,
            slug: "t".into(),
            summary: None,
            aliases: vec![],
            authors: vec![],
            feature_image: None,
            format: Format::Markdown,
            extra: Default::default(),
            body_line: 4,
            authors_line: 2,
            aliases_line: 2,
        }
    }

    #[test]
    fn round_trip_and_corruption() {
        let dir = std::env::temp_dir().join(format!("jawas-blog-memo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let body = Rendered {
            html: "<p>x</p>".into(),
            summary: "<p>s</p>".into(),
            ..Rendered::default()
        };
        write(&dir, 7, &Head::new(42, meta()), &body);
        assert_eq!(read_head(&dir, 7).unwrap().content_hash(), Some(42));
        assert_eq!(read_body(&dir, 7, 42).as_ref(), Some(&body));
        assert_eq!(
            read_summary(&dir, 7, 42).map(|r| r.summary).as_deref(),
            Some("<p>s</p>")
        );
        // A body from other contents is not this source's body.
        assert!(read_body(&dir, 7, 43).is_none());
        assert!(read_summary(&dir, 7, 43).is_none());
        // Each kind of damage is a miss, never a wrong answer.
        let path = entry(&dir, 7);
        let good = std::fs::read_to_string(&path).unwrap();
        let cases = [
            ("\"T\"", "\"U\""),
            ("<p>x</p>", "<p>y</p>"),
            ("<p>s</p>", "<p>t</p>"),
        ];
        for (i, (from, to)) in cases.iter().enumerate() {
            for bad in [
                good.replacen(from, to, 1),
                good[..good.len() / 2].to_string(),
                String::new(),
            ] {
                std::fs::write(&path, &bad).unwrap();
                // A summary already read stays right (it was checked when
                // read); what is read from disk again must be checked again.
                forget();
                assert!(read_body(&dir, 7, 42).is_none(), "case {i}: {bad}");
                if i == 0 {
                    assert!(read_head(&dir, 7).is_none(), "case {i}: {bad}");
                }
                if i != 1 {
                    assert!(read_summary(&dir, 7, 42).is_none(), "case {i}: {bad}");
                }
            }
        }
        write(&dir, 8, &Head::new(1, meta()), &body);
        prune(&dir, &HashSet::from([8]));
        assert!(read_head(&dir, 7).is_none());
        assert!(read_body(&dir, 7, 42).is_none());
        assert!(read_head(&dir, 8).is_some());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
