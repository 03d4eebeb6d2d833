//! The pure parts of RFC 9110 a server of representations needs (the
//! static engine, a blog, a caching proxy): entity tags and their
//! comparison, conditional request evaluation in the standard's order,
//! Range parsing, Accept-Encoding, and MIME types by extension.
//!
//! No I/O: every function decides from a request and a few facts about
//! the representation, so each is tested by tables.

use crate::{parse_http_date, Request};

/// A file's validators.
#[derive(Debug, Clone)]
pub struct Validators {
    /// Strong entity tag, with quotes.
    pub etag: String,
    /// Last modification, Unix seconds.
    pub modified: i64,
}

/// Splits an If-Match / If-None-Match value into tags; `*` is kept as is.
fn tags(value: &str) -> Vec<&str> {
    value
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect()
}

fn strong_eq(a: &str, b: &str) -> bool {
    !a.starts_with("W/") && !b.starts_with("W/") && a == b
}

fn weak_eq(a: &str, b: &str) -> bool {
    a.trim_start_matches("W/") == b.trim_start_matches("W/")
}

/// What conditional headers decide.
#[derive(Debug, PartialEq, Eq)]
pub enum Condition {
    /// Go on (and honour Range when `range_ok`).
    Proceed {
        range_ok: bool,
    },
    NotModified,
    PreconditionFailed,
}

/// RFC 9110 section 13.2.2: If-Match, then If-Unmodified-Since, then
/// If-None-Match, then If-Modified-Since, then If-Range.
pub fn evaluate(req: &Request, v: &Validators) -> Condition {
    let get_or_head = req.method == "GET" || req.method == "HEAD";
    if let Some(im) = req.header("If-Match") {
        let t = tags(im);
        if !(t.contains(&"*") || t.iter().any(|x| strong_eq(x, &v.etag))) {
            return Condition::PreconditionFailed;
        }
    } else if let Some(ius) = req.header("If-Unmodified-Since").and_then(parse_http_date) {
        if v.modified > ius {
            return Condition::PreconditionFailed;
        }
    }
    if let Some(inm) = req.header("If-None-Match") {
        let t = tags(inm);
        if t.contains(&"*") || t.iter().any(|x| weak_eq(x, &v.etag)) {
            return if get_or_head {
                Condition::NotModified
            } else {
                Condition::PreconditionFailed
            };
        }
    } else if get_or_head {
        if let Some(ims) = req.header("If-Modified-Since").and_then(parse_http_date) {
            if v.modified <= ims {
                return Condition::NotModified;
            }
        }
    }
    let range_ok = match req.header("If-Range") {
        None => true,
        Some(ir) => {
            let ir = ir.trim();
            if ir.starts_with('"') || ir.starts_with("W/") {
                strong_eq(ir, &v.etag)
            } else {
                // A date validator must match exactly (and ours is strong
                // only when the file is not brand new; we accept equality).
                parse_http_date(ir) == Some(v.modified)
            }
        }
    };
    Condition::Proceed { range_ok }
}

/// The outcome of a Range header against a file of `len` bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Ranges {
    /// No usable Range: send the whole file.
    Whole,
    /// Inclusive byte ranges, in the order asked.
    Some(Vec<(u64, u64)>),
    /// 416.
    Unsatisfiable,
}

/// Parses `bytes=0-99,200-,-50`. Anything malformed is ignored (whole
/// file), as RFC 9110 allows; more than 16 ranges also falls back to the
/// whole file, which protects against range amplification.
pub fn parse_range(header: &str, len: u64) -> Ranges {
    // The unit is case-insensitive (RFC 9110 section 14.1).
    let header = header.trim();
    let Some(spec) = header
        .get(..6)
        .filter(|unit| unit.eq_ignore_ascii_case("bytes="))
        .map(|_| &header[6..])
    else {
        return Ranges::Whole;
    };
    let mut out = Vec::new();
    let mut any = false;
    for part in spec.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        any = true;
        let Some((a, b)) = part.split_once('-') else {
            return Ranges::Whole;
        };
        let (a, b) = (a.trim(), b.trim());
        let range = if a.is_empty() {
            let Ok(n) = b.parse::<u64>() else {
                return Ranges::Whole;
            };
            if n == 0 || len == 0 {
                continue;
            }
            (len.saturating_sub(n), len - 1)
        } else {
            let Ok(start) = a.parse::<u64>() else {
                return Ranges::Whole;
            };
            let end = if b.is_empty() {
                u64::MAX
            } else {
                match b.parse::<u64>() {
                    Ok(e) if e >= start => e,
                    _ => return Ranges::Whole,
                }
            };
            if start >= len {
                continue;
            }
            (start, end.min(len - 1))
        };
        out.push(range);
    }
    if !any || out.len() > 16 {
        return Ranges::Whole;
    }
    if out.is_empty() {
        return Ranges::Unsatisfiable;
    }
    Ranges::Some(coalesce(out))
}

/// Merges overlapping and adjacent ranges (RFC 9110 section 14.2 allows
/// it), so a response never carries a byte twice: sixteen `0-` ranges are
/// one range, not sixteen copies of the file. Ranges that do not touch
/// keep the order the client asked for.
fn coalesce(mut rs: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    let mut sorted = rs.clone();
    sorted.sort_unstable();
    let touching = sorted
        .windows(2)
        .any(|w| w[1].0 <= w[0].1.saturating_add(1));
    if !touching {
        return rs;
    }
    rs.clear();
    for (a, b) in sorted {
        match rs.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => rs.push((a, b)),
        }
    }
    rs
}

/// Whether the client accepts `coding` (q > 0), by Accept-Encoding.
pub fn accepts_encoding(req: &Request, coding: &str) -> bool {
    let mut star = None;
    for item in req.header_list("Accept-Encoding") {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim();
        let q = parts
            .find_map(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .map(|v| v.trim().parse::<f32>().unwrap_or(0.0))
            })
            .unwrap_or(1.0);
        if name.eq_ignore_ascii_case(coding) {
            return q > 0.0;
        }
        if name == "*" {
            star = Some(q > 0.0);
        }
    }
    star.unwrap_or(false)
}

/// The media type for a file name, with charset for text.
pub fn mime_for(name: &str, extra: &[(String, String)]) -> String {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    if let Some((_, t)) = extra.iter().find(|(e, _)| e.eq_ignore_ascii_case(&ext)) {
        return t.clone();
    }
    let t = match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" | "map" => "application/json",
        "txt" | "text" | "log" => "text/plain; charset=utf-8",
        "md" => "text/markdown; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "xml" => "application/xml",
        "rss" => "application/rss+xml",
        "atom" => "application/atom+xml",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "ico" => "image/vnd.microsoft.icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "pdf" => "application/pdf",
        "wasm" => "application/wasm",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "tar" => "application/x-tar",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mp3" => "audio/mpeg",
        "ogg" => "audio/ogg",
        "wav" => "audio/wav",
        _ => "application/octet-stream",
    };
    t.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Framing;

    fn req(method: &str, headers: &[(&str, &str)]) -> Request {
        Request {
            method: method.into(),
            target: "/f".into(),
            minor: 1,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect(),
            framing: Framing::None,
            keep_alive: true,
            expect_continue: false,
            started: std::time::Instant::now(),
        }
    }

    #[test]
    fn conditional_precedence() {
        let v = Validators {
            etag: "\"abc\"".into(),
            modified: 784_111_777,
        };
        let before = "Sat, 05 Nov 1994 08:49:37 GMT";
        let at = "Sun, 06 Nov 1994 08:49:37 GMT";
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], Condition);
        let cases: &[Case] = &[
            ("GET", &[], Condition::Proceed { range_ok: true }),
            (
                "GET",
                &[("If-None-Match", "\"abc\"")],
                Condition::NotModified,
            ),
            (
                "GET",
                &[("If-None-Match", "W/\"abc\"")],
                Condition::NotModified,
            ),
            (
                "GET",
                &[("If-None-Match", "\"x\", \"abc\"")],
                Condition::NotModified,
            ),
            ("GET", &[("If-None-Match", "*")], Condition::NotModified),
            (
                "GET",
                &[("If-None-Match", "\"other\"")],
                Condition::Proceed { range_ok: true },
            ),
            (
                "DELETE",
                &[("If-None-Match", "\"abc\"")],
                Condition::PreconditionFailed,
            ),
            (
                "GET",
                &[("If-Match", "\"other\"")],
                Condition::PreconditionFailed,
            ),
            (
                "GET",
                &[("If-Match", "W/\"abc\"")],
                Condition::PreconditionFailed,
            ),
            (
                "GET",
                &[("If-Match", "\"abc\"")],
                Condition::Proceed { range_ok: true },
            ),
            (
                "GET",
                &[("If-Unmodified-Since", before)],
                Condition::PreconditionFailed,
            ),
            (
                "GET",
                &[("If-Unmodified-Since", at)],
                Condition::Proceed { range_ok: true },
            ),
            // If-Match present: If-Unmodified-Since is not evaluated.
            (
                "GET",
                &[("If-Match", "\"abc\""), ("If-Unmodified-Since", before)],
                Condition::Proceed { range_ok: true },
            ),
            ("GET", &[("If-Modified-Since", at)], Condition::NotModified),
            (
                "GET",
                &[("If-Modified-Since", before)],
                Condition::Proceed { range_ok: true },
            ),
            // If-None-Match present: If-Modified-Since is ignored.
            (
                "GET",
                &[("If-None-Match", "\"other\""), ("If-Modified-Since", at)],
                Condition::Proceed { range_ok: true },
            ),
            (
                "GET",
                &[("If-Modified-Since", "garbage")],
                Condition::Proceed { range_ok: true },
            ),
            (
                "GET",
                &[("If-Range", "\"abc\"")],
                Condition::Proceed { range_ok: true },
            ),
            (
                "GET",
                &[("If-Range", "\"old\"")],
                Condition::Proceed { range_ok: false },
            ),
            (
                "GET",
                &[("If-Range", "W/\"abc\"")],
                Condition::Proceed { range_ok: false },
            ),
            (
                "GET",
                &[("If-Range", at)],
                Condition::Proceed { range_ok: true },
            ),
            (
                "GET",
                &[("If-Range", before)],
                Condition::Proceed { range_ok: false },
            ),
        ];
        for (method, headers, want) in cases {
            assert_eq!(
                evaluate(&req(method, headers), &v),
                *want,
                "{method} {headers:?}"
            );
        }
    }

    #[test]
    fn accept_encoding_cases() {
        for (h, coding, want) in [
            ("gzip, br", "br", true),
            ("gzip;q=0", "gzip", false),
            ("br;q=0.5", "br", true),
            ("*", "gzip", true),
            ("*;q=0, gzip", "br", false),
            ("identity", "gzip", false),
        ] {
            assert_eq!(
                accepts_encoding(&req("GET", &[("Accept-Encoding", h)]), coding),
                want,
                "{h} / {coding}"
            );
        }
    }

    #[test]
    fn range_cases() {
        let cases: &[(&str, u64, Ranges)] = &[
            ("bytes=0-99", 1000, Ranges::Some(vec![(0, 99)])),
            ("Bytes=0-99", 1000, Ranges::Some(vec![(0, 99)])),
            ("BYTES=0-0", 1000, Ranges::Some(vec![(0, 0)])),
            ("bytes=900-", 1000, Ranges::Some(vec![(900, 999)])),
            ("bytes=-100", 1000, Ranges::Some(vec![(900, 999)])),
            ("bytes=-5000", 1000, Ranges::Some(vec![(0, 999)])),
            ("bytes=0-0,-1", 1000, Ranges::Some(vec![(0, 0), (999, 999)])),
            ("bytes=500-5000", 1000, Ranges::Some(vec![(500, 999)])),
            ("bytes=1000-", 1000, Ranges::Unsatisfiable),
            ("bytes=2000-3000", 1000, Ranges::Unsatisfiable),
            ("bytes=-0", 1000, Ranges::Unsatisfiable),
            ("bytes=5-3", 1000, Ranges::Whole),
            ("items=0-5", 1000, Ranges::Whole),
            ("bytes=abc", 1000, Ranges::Whole),
            ("bytes=", 1000, Ranges::Whole),
            ("bytes=0-", 0, Ranges::Unsatisfiable),
            ("bytes=0-,0-,0-", 1000, Ranges::Some(vec![(0, 999)])),
            ("bytes=0-9,5-20", 1000, Ranges::Some(vec![(0, 20)])),
            ("bytes=0-9,10-19", 1000, Ranges::Some(vec![(0, 19)])),
            ("bytes=-10,0-", 1000, Ranges::Some(vec![(0, 999)])),
            (
                "bytes=50-59,0-9,5-6",
                1000,
                Ranges::Some(vec![(0, 9), (50, 59)]),
            ),
            (
                "bytes=50-59,0-9",
                1000,
                Ranges::Some(vec![(50, 59), (0, 9)]),
            ),
        ];
        for (h, len, want) in cases {
            assert_eq!(parse_range(h, *len), *want, "{h} of {len}");
        }
        let many = format!(
            "bytes={}",
            (0..20)
                .map(|i| format!("{i}-{i}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert_eq!(parse_range(&many, 1000), Ranges::Whole);
    }

    #[test]
    fn mime_cases() {
        assert_eq!(mime_for("index.HTML", &[]), "text/html; charset=utf-8");
        assert_eq!(mime_for("a.png", &[]), "image/png");
        assert_eq!(mime_for("noext", &[]), "application/octet-stream");
        assert_eq!(
            mime_for("x.foo", &[("foo".into(), "text/x-foo".into())]),
            "text/x-foo"
        );
    }
}
