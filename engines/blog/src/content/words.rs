//! Small text helpers shared by the content modules: URL slugs, the
//! line a key is written on, did-you-mean suggestions, HTML escaping and
//! percent-encoding of URL paths.
//!
//! Owns no state; every function is pure.

/// A tag's or heading's URL slug: lower-cased, letters and digits kept
/// (any script), every other run of characters one `-`, no `-` at
/// either end. `"Rust & C++"` → `"rust-c"`.
pub fn slugify(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut dash = false;
    for c in s.chars() {
        if c.is_alphanumeric() {
            if dash && !out.is_empty() {
                out.push('-');
            }
            dash = false;
            out.extend(c.to_lowercase());
        } else if c == '_' && !out.is_empty() {
            // Keep underscores Ghost slugs may carry? No: hyphenate them.
            dash = true;
        } else {
            dash = true;
        }
    }
    out
}

/// Whether `s` can be used as it is as a slug in a URL path segment.
pub fn is_valid_slug(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '~'))
}

/// The 1-based line of `text` (whose first line is line `first`) where
/// `key` is set (`key = `, `key:`) or opens a table (`[key]`,
/// `[key.x]`, `[[key]]`); `first` when not found, so a finding still
/// points into the right block.
pub fn key_line(text: &str, key: &str, first: usize) -> usize {
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix(key) {
            let rest = rest.trim_start_matches([' ', '\t']);
            if rest.starts_with('=') || rest.starts_with(':') {
                return first + i;
            }
        }
        let t = t.trim_start_matches('[');
        if let Some(rest) = t.strip_prefix(key) {
            if line.trim_start().starts_with('[')
                && (rest.starts_with(']') || rest.starts_with('.'))
            {
                return first + i;
            }
        }
    }
    first
}

fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest of `known` to `word`, if close enough to be a typo.
pub fn did_you_mean<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    // A transposition costs 2 in plain Levenshtein; allow it from four
    // letters up.
    let n = word.chars().count();
    let limit = if n < 4 { 1 } else { (n / 3).clamp(2, 3) };
    known
        .iter()
        .map(|k| (distance(&word.to_lowercase(), k), *k))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, k)| k)
}

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Percent-encodes the bytes of a URL path that may not appear in one
/// as they are (non-ASCII, spaces, quotes); `/` and unreserved
/// characters stay.
pub fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~!$&'()*+,;=:@%".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        let cases = [
            ("Rust", "rust"),
            ("Rust & C++", "rust-c"),
            ("  Hello,  World!  ", "hello-world"),
            ("snake_case tag", "snake-case-tag"),
            ("Émile Zola", "émile-zola"),
            ("---", ""),
            ("v1.2", "v1-2"),
        ];
        for (input, want) in cases {
            assert_eq!(slugify(input), want, "{input:?}");
        }
        assert!(is_valid_slug("hello-world_2.0"));
        for bad in ["", "a/b", "a b", "..", "a?b"] {
            assert!(!is_valid_slug(bad), "{bad:?}");
        }
    }

    #[test]
    fn key_lines() {
        let text = "title = \"x\"\n  date: 2024\n[authors.jane]\nname = \"J\"\n[[navigation]]\n";
        let cases = [
            ("title", 1),
            ("date", 2),
            ("authors", 3),
            ("name", 4),
            ("navigation", 5),
            ("missing", 1),
        ];
        for (key, want) in cases {
            assert_eq!(key_line(text, key, 1), want, "{key}");
        }
        assert_eq!(key_line(text, "date", 10), 11);
        assert_eq!(key_line("titles = 1\ntitle = 2\n", "title", 1), 2);
    }

    #[test]
    fn suggestions() {
        let known = ["title", "base_url", "posts_per_page", "permalink"];
        let cases = [
            ("titel", Some("title")),
            ("baseurl", Some("base_url")),
            ("post_per_page", Some("posts_per_page")),
            ("zzz", None),
        ];
        for (word, want) in cases {
            assert_eq!(did_you_mean(word, &known), want, "{word}");
        }
    }

    #[test]
    fn escaping() {
        assert_eq!(
            escape_html("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(encode_path("/tag/émile zola/"), "/tag/%C3%A9mile%20zola/");
    }
}
