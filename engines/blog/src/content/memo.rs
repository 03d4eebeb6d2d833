//! The memo: parsed front matter and rendered bodies kept on disk
//! between builds, one file per source identity (path, device, inode,
//! size, mtime), so a rebuild after one edit parses and renders one
//! source.
//!
//! Owns the file format: line 1 is the head (content hash and `Meta`),
//! line 2, once the body has been rendered, is the `Rendered` body;
//! each line is `CHECKSUM JSON` and a line whose checksum does not match
//! is treated as missing (re-parsed, never trusted). Files are written
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
const FORMAT: u32 = 1;

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

/// Reads the memo of `identity`: its head, and its body if rendered.
pub fn read(dir: &Path, identity: u128) -> Option<(Head, Option<Rendered>)> {
    let text = std::fs::read_to_string(entry(dir, identity)).ok()?;
    let mut lines = text.lines();
    let head: Head = decode(lines.next()?)?;
    if head.format != FORMAT || head.version != env!("CARGO_PKG_VERSION") {
        return None;
    }
    let body = lines.next().and_then(decode::<Rendered>);
    Some((head, body))
}

/// Writes the memo of `identity` (write, then rename over). Failure is
/// not an error for the caller: the memo is only a saving.
pub fn write(dir: &Path, identity: u128, head: &Head, body: Option<&Rendered>) {
    let Some(mut text) = encode(head) else { return };
    text.push('\n');
    if let Some(b) = body.and_then(encode) {
        text.push_str(&b);
        text.push('\n');
    }
    let path = entry(dir, identity);
    let tmp = dir.join(format!(".{identity:032x}.{}", std::process::id()));
    if std::fs::write(&tmp, text).is_ok() && std::fs::rename(&tmp, &path).is_err() {
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
            Ok(id) => name.len() == 32 && !keep.contains(&id),
            // Leftover temporary files of a builder that died.
            Err(_) => name.starts_with('.'),
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
            ..Rendered::default()
        };
        write(&dir, 7, &Head::new(42, meta()), Some(&body));
        let (head, got) = read(&dir, 7).unwrap();
        assert_eq!(head.content_hash(), Some(42));
        assert_eq!(got.as_ref(), Some(&body));
        // Each kind of damage is a miss, never a wrong answer.
        let path = entry(&dir, 7);
        let good = std::fs::read_to_string(&path).unwrap();
        let cases = [
            good.replacen("<p>x</p>", "<p>y</p>", 1),
            good.replacen("\"T\"", "\"U\"", 1),
            good[..good.len() / 2].to_string(),
            String::new(),
            "garbage\n".into(),
        ];
        for (i, bad) in cases.iter().enumerate() {
            std::fs::write(&path, bad).unwrap();
            let got = read(&dir, 7);
            let trusted_body = got
                .as_ref()
                .and_then(|(_, b)| b.as_ref())
                .map(|b| b.html.clone());
            assert!(
                trusted_body.is_none() || trusted_body.as_deref() == Some("<p>x</p>"),
                "case {i}"
            );
            if i == 1 || i >= 3 {
                assert!(got.is_none(), "case {i}");
            }
        }
        write(&dir, 8, &Head::new(1, meta()), None);
        prune(&dir, &HashSet::from([8]));
        assert!(read(&dir, 7).is_none());
        assert!(read(&dir, 8).is_some());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
