//! Server-side search over `search.idx`: one JSON object per line per
//! post (`u` URL, `t` title, `d` date as Unix seconds, `g` tags, `x`
//! plain text), read as a stream so memory stays bounded by the longest
//! post, whatever the number of posts.
//!
//! Owns the index format and the scoring: every query word must occur
//! (in the title, a tag or the text); title matches score above tag
//! matches above text matches; ties go to the newer post.

use std::io::BufRead;

use serde::{Deserialize, Serialize};

use super::date::Date;
use super::words::escape_html;
use crate::site::Hit;

#[derive(Serialize, Deserialize)]
struct Line {
    u: String,
    t: String,
    d: i64,
    g: Vec<String>,
    x: String,
}

/// Appends one post's line to the index.
pub fn write_line(
    out: &mut Vec<u8>,
    url: &str,
    title: &str,
    date: i64,
    tags: &[String],
    text: &str,
) {
    let line = Line {
        u: url.into(),
        t: title.into(),
        d: date,
        g: tags.to_vec(),
        x: text.into(),
    };
    if serde_json::to_writer(&mut *out, &line).is_ok() {
        out.push(b'\n');
    }
}

/// The words of a query: lower-cased, punctuation at their ends
/// dropped, at most 16.
fn words(query: &str) -> Vec<String> {
    query
        .split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .take(16)
        .collect()
}

fn score(line: &Line, words: &[String], text_lower: &str) -> Option<u64> {
    let title = line.t.to_lowercase();
    let tags: Vec<String> = line.g.iter().map(|t| t.to_lowercase()).collect();
    let mut total = 0;
    for w in words {
        let mut s = 0;
        if title.contains(w.as_str()) {
            s += 100;
        }
        if tags.iter().any(|t| t == w) {
            s += 50;
        } else if tags.iter().any(|t| t.contains(w.as_str())) {
            s += 25;
        }
        s += text_lower.matches(w.as_str()).take(10).count() as u64;
        if s == 0 {
            return None;
        }
        total += s;
    }
    Some(total)
}

/// About 200 bytes of text around the first match of the first word.
fn snippet(text: &str, lower: &str, word: &str) -> String {
    // Offsets in `lower` are offsets in `text` only when lower-casing
    // kept every length; otherwise show the lower-cased text.
    let src = if lower.len() == text.len() {
        text
    } else {
        lower
    };
    let at = lower.find(word).unwrap_or(0);
    let mut start = at.saturating_sub(60);
    while !src.is_char_boundary(start) {
        start -= 1;
    }
    if start > 0 {
        start = src[start..at.max(start)]
            .find(' ')
            .map_or(start, |i| start + i + 1);
    }
    let mut end = (at + 140).min(src.len());
    while !src.is_char_boundary(end) {
        end += 1;
    }
    if end < src.len() {
        end = src[..end].rfind(' ').filter(|&i| i > at).unwrap_or(end);
    }
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    out.push_str(src[start..end].trim());
    if end < src.len() {
        out.push('…');
    }
    out
}

/// `text` as HTML, escaped, with each occurrence of a query word in
/// `<mark>`, for the results page.
pub fn mark(text: &str, query: &str) -> String {
    let words = words(query);
    let lower = text.to_lowercase();
    // Marking needs offsets in `lower` to be offsets in `text`.
    if lower.len() != text.len() || words.is_empty() {
        return escape_html(text);
    }
    let mut marked = vec![false; text.len()];
    for w in &words {
        for (at, _) in lower.match_indices(w.as_str()) {
            if text.is_char_boundary(at) && text.is_char_boundary(at + w.len()) {
                marked[at..at + w.len()].iter_mut().for_each(|m| *m = true);
            }
        }
    }
    let mut out = String::with_capacity(text.len() + 32);
    let mut start = 0;
    while start < text.len() {
        let on = marked[start];
        let end = (start..text.len())
            .find(|&i| marked[i] != on && text.is_char_boundary(i))
            .unwrap_or(text.len());
        let part = escape_html(&text[start..end]);
        if on {
            out.push_str(&format!("<mark>{part}</mark>"));
        } else {
            out.push_str(&part);
        }
        start = end;
    }
    out
}

pub fn search(index: &mut dyn BufRead, query: &str, limit: usize) -> Vec<Hit> {
    let words = words(query);
    if words.is_empty() || limit == 0 {
        return Vec::new();
    }
    let mut best: Vec<(u64, i64, Hit)> = Vec::new();
    let mut buf = String::new();
    loop {
        buf.clear();
        match index.read_line(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let Ok(line) = serde_json::from_str::<Line>(buf.trim_end()) else {
            continue;
        };
        let lower = line.x.to_lowercase();
        let Some(s) = score(&line, &words, &lower) else {
            continue;
        };
        let hit = Hit {
            snippet: snippet(&line.x, &lower, &words[0]),
            url: line.u,
            title: line.t,
            date: Date {
                unix: line.d,
                offset_min: 0,
            }
            .to_system(),
        };
        best.push((s, line.d, hit));
        if best.len() >= limit * 2 + 16 {
            keep_best(&mut best, limit);
        }
    }
    keep_best(&mut best, limit);
    best.into_iter().map(|(_, _, h)| h).collect()
}

fn keep_best(best: &mut Vec<(u64, i64, Hit)>, limit: usize) {
    best.sort_by_key(|b| std::cmp::Reverse((b.0, b.1)));
    best.truncate(limit);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> Vec<u8> {
        let mut out = Vec::new();
        let posts: &[(&str, &str, i64, &[&str], &str)] = &[
            (
                "/rust-intro/",
                "Intro to Rust",
                300,
                &["rust"],
                "Ownership and borrowing explained.",
            ),
            (
                "/web/",
                "Web servers",
                200,
                &["web", "rust"],
                "A server written in Rust with epoll.",
            ),
            (
                "/cooking/",
                "Bread",
                100,
                &["food"],
                "Flour, water, salt. Rust never appears here? It does: rust.",
            ),
            (
                "/old/",
                "Old news",
                50,
                &[],
                "Nothing of interest. Ünïcode Straße.",
            ),
        ];
        for (u, t, d, g, x) in posts {
            let g: Vec<String> = g.iter().map(|s| s.to_string()).collect();
            write_line(&mut out, u, t, *d, &g, x);
        }
        out.extend_from_slice(b"not json\n");
        out
    }

    fn urls(query: &str, limit: usize) -> Vec<String> {
        let data = index();
        search(&mut &data[..], query, limit)
            .into_iter()
            .map(|h| h.url)
            .collect()
    }

    #[test]
    fn ranking_and_all_words() {
        let cases: &[(&str, usize, &[&str])] = &[
            ("rust", 10, &["/rust-intro/", "/web/", "/cooking/"]),
            ("RUST epoll", 10, &["/web/"]),
            ("rust", 1, &["/rust-intro/"]),
            ("food", 10, &["/cooking/"]),
            ("nothing-matches-this", 10, &[]),
            ("", 10, &[]),
            ("  ?! ", 10, &[]),
            ("straße", 10, &["/old/"]),
            ("rust", 0, &[]),
        ];
        for (q, limit, want) in cases {
            assert_eq!(urls(q, *limit), *want, "{q:?}");
        }
    }

    #[test]
    fn marks() {
        let cases = [
            (
                "Rust and rust",
                "rust",
                "<mark>Rust</mark> and <mark>rust</mark>",
            ),
            (
                "a <b> & epoll",
                "epoll <b>",
                "a &lt;<mark>b</mark>&gt; &amp; <mark>epoll</mark>",
            ),
            ("nothing", "zzz", "nothing"),
            ("x", "", "x"),
            ("İ needle", "needle", "İ needle"),
            ("ééé needle", "éé", "<mark>éé</mark>é needle"),
        ];
        for (text, query, want) in cases {
            assert_eq!(mark(text, query), want, "{text:?} {query:?}");
        }
    }

    #[test]
    fn snippets() {
        let long = format!("{} needle {}", "word ".repeat(40), "tail ".repeat(60));
        let s = snippet(&long, &long.to_lowercase(), "needle");
        assert!(
            s.starts_with('…') && s.ends_with('…') && s.contains("needle"),
            "{s}"
        );
        assert!(s.len() < 240, "{s}");
        let short = "Just a needle.";
        assert_eq!(
            snippet(short, &short.to_lowercase(), "needle"),
            "Just a needle."
        );
        // Lower-casing that changes byte lengths, or keeps the total but
        // moves boundaries (İ grows, K, the Kelvin sign, shrinks).
        for odd in [
            "İİİ needle ééé",
            "İİ\u{212a} needle",
            "\u{212a}İİ needle",
            "ǅ needle",
        ] {
            assert!(
                snippet(odd, &odd.to_lowercase(), "needle").contains("needle"),
                "{odd}"
            );
        }
    }
}
