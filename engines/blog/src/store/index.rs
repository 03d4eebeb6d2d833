//! A generation file: one immutable file naming every output file of a
//! generation with its record, hashed into buckets, so a reader finds one
//! path with three small preads and never reads the whole file, and a
//! builder writes a generation with one write and removes one with one
//! unlink, however many posts there are.
//!
//! Layout (text, so a person can read it with `less`):
//! - a first line of exactly `HEAD` bytes: `jawas-blog gen 1 BUCKETS TABLE`,
//!   space-padded;
//! - meta lines: `fingerprint F`, `next_change SECS`, `alias FROM<TAB>TO`;
//! - at offset TABLE, BUCKETS + 1 offsets of `DIGITS` digits and a newline
//!   each: bucket `i` spans offsets `i` to `i + 1`;
//! - the records, `PATH<TAB>RECORD` lines grouped by bucket (FNV-1a of the
//!   path modulo BUCKETS).
//!
//! Invariants: no path, alias or record holds a tab or a newline (the
//! writer refuses them); a reader treats every inconsistency (bad magic,
//! an offset past the end, a short read) as damage, never as "missing".

use std::fs::File;
use std::os::unix::fs::FileExt;

use super::Record;

const MAGIC: &str = "jawas-blog gen 1 ";
const HEAD: usize = 64;
const DIGITS: usize = 12;
/// A bucket larger than this is damage (a real one holds a few lines).
const MAX_BUCKET: u64 = 1 << 20;

/// Everything a generation says.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Contents {
    pub meta: Meta,
    pub files: Vec<(String, Record)>,
}

/// A generation's header: what a scan compares and what aliases say.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// The sources' fingerprint when it was built.
    pub fingerprint: String,
    /// When a future post becomes visible (Unix seconds).
    pub next_change: Option<i64>,
    /// Old URL path, target URL path.
    pub aliases: Vec<(String, String)>,
}

fn clean(s: &str) -> bool {
    !s.contains(['\t', '\n'])
}

fn bucket(path: &str, buckets: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in path.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h % buckets
}

/// The file's bytes; `Err` names what cannot be written.
pub fn encode(c: &Contents) -> Result<Vec<u8>, String> {
    let mut meta = format!("fingerprint {}\n", c.meta.fingerprint);
    if let Some(t) = c.meta.next_change {
        meta.push_str(&format!("next_change {t}\n"));
    }
    for (from, to) in &c.meta.aliases {
        if !clean(from) || !clean(to) {
            return Err(format!("alias {from:?} -> {to:?} has a tab or newline"));
        }
        meta.push_str(&format!("alias {from}\t{to}\n"));
    }
    let buckets = (c.files.len() as u64).max(1).next_power_of_two();
    let mut groups: Vec<String> = vec![String::new(); buckets as usize];
    for (path, record) in &c.files {
        let line = record.encode();
        if !clean(path) || !clean(&line) {
            return Err(format!("{path:?} has a tab or newline"));
        }
        let g = &mut groups[bucket(path, buckets) as usize];
        g.push_str(path);
        g.push('\t');
        g.push_str(&line);
        g.push('\n');
    }
    let table = HEAD + meta.len();
    let mut offset = (table + (buckets as usize + 1) * (DIGITS + 1)) as u64;
    let mut out = format!("{MAGIC}{buckets} {table}");
    if out.len() >= HEAD {
        return Err("header too long".into());
    }
    out.push_str(&" ".repeat(HEAD - 1 - out.len()));
    out.push('\n');
    out.push_str(&meta);
    for g in &groups {
        out.push_str(&format!("{offset:0DIGITS$}\n"));
        offset += g.len() as u64;
    }
    out.push_str(&format!("{offset:0DIGITS$}\n"));
    for g in &groups {
        out.push_str(g);
    }
    Ok(out.into_bytes())
}

/// BUCKETS and TABLE from the first line.
fn head(file: &File) -> Result<(u64, u64), String> {
    let mut buf = [0u8; HEAD];
    file.read_exact_at(&mut buf, 0)
        .map_err(|e| format!("header: {e}"))?;
    let text = std::str::from_utf8(&buf).map_err(|_| "header is not text")?;
    let rest = text.strip_prefix(MAGIC).ok_or("not a generation file")?;
    let mut words = rest.split_whitespace();
    let mut number = || -> Result<u64, String> {
        words
            .next()
            .and_then(|w| w.parse().ok())
            .ok_or_else(|| "bad header".to_string())
    };
    let (buckets, table) = (number()?, number()?);
    if buckets == 0 || table < HEAD as u64 {
        return Err("bad header".into());
    }
    Ok((buckets, table))
}

/// The header of a generation file.
pub fn read_meta(file: &File) -> Result<Meta, String> {
    let (_, table) = head(file)?;
    // A damaged header must not make us allocate what it claims.
    let len = file.metadata().map_err(|e| format!("meta: {e}"))?.len();
    if table > len {
        return Err("bad header".into());
    }
    let mut buf = vec![0u8; table as usize - HEAD];
    file.read_exact_at(&mut buf, HEAD as u64)
        .map_err(|e| format!("meta: {e}"))?;
    parse_meta(&buf)
}

fn parse_meta(buf: &[u8]) -> Result<Meta, String> {
    let text = std::str::from_utf8(buf).map_err(|_| "meta is not text")?;
    let mut meta = Meta::default();
    for line in text.lines() {
        match line.split_once(' ') {
            Some(("fingerprint", v)) => meta.fingerprint = v.to_string(),
            Some(("next_change", v)) => {
                meta.next_change = Some(v.parse().map_err(|_| "bad next_change")?)
            }
            Some(("alias", v)) => {
                let (a, b) = v.split_once('\t').ok_or("bad alias")?;
                meta.aliases.push((a.to_string(), b.to_string()));
            }
            _ => return Err(format!("bad meta line {line:?}")),
        }
    }
    Ok(meta)
}

/// The record of `path`: `Ok(None)` when the generation has no such file.
pub fn find(file: &File, path: &str) -> Result<Option<Record>, String> {
    let (buckets, table) = head(file)?;
    let i = bucket(path, buckets);
    let mut pair = [0u8; 2 * (DIGITS + 1)];
    let at = i
        .checked_mul((DIGITS + 1) as u64)
        .and_then(|x| x.checked_add(table))
        .ok_or("bad header")?;
    file.read_exact_at(&mut pair, at)
        .map_err(|e| format!("table: {e}"))?;
    let offset = |b: &[u8]| -> Option<u64> { std::str::from_utf8(&b[..DIGITS]).ok()?.parse().ok() };
    let (Some(start), Some(end)) = (offset(&pair[..DIGITS + 1]), offset(&pair[DIGITS + 1..]))
    else {
        return Err("bad bucket table".into());
    };
    if end < start || end - start > MAX_BUCKET {
        return Err("bad bucket table".into());
    }
    let mut buf = vec![0u8; (end - start) as usize];
    file.read_exact_at(&mut buf, start)
        .map_err(|e| format!("records: {e}"))?;
    for line in buf.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let line = std::str::from_utf8(line).map_err(|_| "record is not text")?;
        let (p, record) = line.split_once('\t').ok_or("bad record line")?;
        if p == path {
            return Record::decode(record)
                .map(Some)
                .ok_or_else(|| format!("bad record for {path}"));
        }
    }
    Ok(None)
}

/// A whole generation file, for builders and `build`.
pub fn decode(bytes: &[u8]) -> Result<Contents, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not text")?;
    let first = text.get(..HEAD).ok_or("too short")?;
    let rest = first.strip_prefix(MAGIC).ok_or("not a generation file")?;
    let mut words = rest.split_whitespace();
    let buckets: usize = words
        .next()
        .and_then(|w| w.parse().ok())
        .ok_or("bad header")?;
    let table: usize = words
        .next()
        .and_then(|w| w.parse().ok())
        .ok_or("bad header")?;
    let meta = parse_meta(text.get(HEAD..table).ok_or("bad header")?.as_bytes())?;
    let records = buckets
        .checked_add(1)
        .and_then(|b| b.checked_mul(DIGITS + 1))
        .and_then(|x| x.checked_add(table))
        .ok_or("bad header")?;
    // The last offset of the table is the file's length: anything else is
    // a truncated or extended file.
    let end: usize = text
        .get(records - DIGITS - 1..records - 1)
        .and_then(|d| d.parse().ok())
        .ok_or("bad bucket table")?;
    if end != text.len() {
        return Err("truncated".into());
    }
    let mut files = Vec::new();
    for line in text.get(records..).ok_or("truncated")?.lines() {
        let (p, record) = line.split_once('\t').ok_or("bad record line")?;
        let record = Record::decode(record).ok_or_else(|| format!("bad record for {p}"))?;
        files.push((p.to_string(), record));
    }
    Ok(Contents { meta, files })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: u128, len: u64) -> Record {
        Record {
            key,
            len,
            modified: 1_700_000_000,
            content_type: "text/html; charset=utf-8".into(),
        }
    }

    fn temp(bytes: &[u8]) -> File {
        let path = std::env::temp_dir().join(format!(
            "jawas-blog-index-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::write(&path, bytes).unwrap();
        let f = File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        f
    }

    #[test]
    fn every_path_is_found_and_no_other() {
        for n in [0usize, 1, 2, 3, 17, 1000] {
            let files: Vec<(String, Record)> = (0..n)
                .map(|i| (format!("post-{i}/index.html"), record(i as u128, i as u64)))
                .collect();
            let c = Contents {
                meta: Meta {
                    fingerprint: "abc".into(),
                    next_change: Some(42),
                    aliases: vec![("/old/".into(), "/new/".into())],
                },
                files,
            };
            let bytes = encode(&c).unwrap();
            let f = temp(&bytes);
            for (path, r) in &c.files {
                assert_eq!(find(&f, path).unwrap().as_ref(), Some(r), "{n}: {path}");
            }
            assert_eq!(find(&f, "nope/index.html").unwrap(), None);
            assert_eq!(read_meta(&f).unwrap(), c.meta);
            let mut back = decode(&bytes).unwrap();
            back.files.sort_by_key(|(_, r)| r.key);
            assert_eq!(back, c);
        }
    }

    #[test]
    fn damage_is_an_error_not_a_miss() {
        let c = Contents {
            meta: Meta::default(),
            files: (0..50)
                .map(|i| (format!("p{i}.html"), record(i, 1)))
                .collect(),
        };
        let bytes = encode(&c).unwrap();
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", Vec::new()),
            ("garbage", b"garbage".repeat(20)),
            ("truncated in the table", bytes[..HEAD + 40].to_vec()),
            (
                "truncated in the records",
                bytes[..bytes.len() - 30].to_vec(),
            ),
            ("huge numbers in the header", {
                let mut head = format!("{MAGIC}{} {}", u64::MAX, u64::MAX / 2).into_bytes();
                head.resize(HEAD - 1, b' ');
                head.push(b'\n');
                head.extend_from_slice(&bytes[HEAD..]);
                head
            }),
        ];
        for (what, damaged) in cases {
            let f = temp(&damaged);
            let any_error = c.files.iter().any(|(p, _)| find(&f, p).is_err());
            assert!(any_error, "{what}");
            assert!(
                read_meta(&f).is_err() || what.starts_with("truncated"),
                "{what}"
            );
            assert!(decode(&damaged).is_err(), "{what}");
        }
        let tabbed = Contents {
            meta: Meta::default(),
            files: vec![("a\tb".into(), record(1, 1))],
        };
        assert!(encode(&tabbed).is_err());
    }
}
