//! From a request path to a relative file path that cannot leave the root
//! (shared by every engine that maps URLs to files: static, CGI).
//!
//! Percent-decodes exactly once, refuses NUL and bad escapes, resolves `.`
//! and `..` lexically without ever climbing above the root, and hides
//! dotfiles unless asked. The result is a list of segments; symlinks are
//! checked by the engine when it opens the file, not here.

#[derive(Debug, PartialEq, Eq)]
pub enum PathError {
    /// Not a path we can parse: 400.
    Bad(&'static str),
    /// A hidden or forbidden name: 404 (we do not admit it exists).
    Hidden,
}

/// Decodes `%XX` once. A `%` not followed by two hex digits is an error.
pub fn percent_decode(s: &str) -> Result<Vec<u8>, PathError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |c: u8| (c as char).to_digit(16);
            match (
                b.get(i + 1).and_then(|c| hex(*c)),
                b.get(i + 2).and_then(|c| hex(*c)),
            ) {
                (Some(h), Some(l)) => out.push((h * 16 + l) as u8),
                _ => return Err(PathError::Bad("bad percent escape")),
            }
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// The segments of a request path below the root.
pub fn segments(path: &str, show_dotfiles: bool) -> Result<Vec<String>, PathError> {
    if !path.starts_with('/') {
        return Err(PathError::Bad("path does not start with /"));
    }
    let decoded = percent_decode(path)?;
    if decoded.contains(&0) {
        return Err(PathError::Bad("NUL in path"));
    }
    let decoded = String::from_utf8(decoded).map_err(|_| PathError::Bad("path is not UTF-8"))?;
    let mut out: Vec<String> = Vec::new();
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if out.pop().is_none() {
                    return Err(PathError::Bad("path climbs above the root"));
                }
            }
            s if s.contains('\\') => return Err(PathError::Bad("backslash in path")),
            s if s.starts_with('.') && !show_dotfiles => return Err(PathError::Hidden),
            s => out.push(s.to_string()),
        }
    }
    Ok(out)
}

/// Escapes a path for use in a URL (Location headers, listing links).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~!$&'()*+,;=:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Escapes text for HTML.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_cases() {
        let ok: &[(&str, &[&str])] = &[
            ("/", &[]),
            ("/a/b.txt", &["a", "b.txt"]),
            ("/a//b/./c", &["a", "b", "c"]),
            ("/a/../b", &["b"]),
            ("/a%20b", &["a b"]),
            ("/%2e%2e", &[]), // decodes to "..", which is then refused below
            ("/caf%C3%A9", &["café"]),
            ("/a/%252e", &["a", "%2e"]), // decoded once only
        ];
        for (input, want) in ok {
            match segments(input, false) {
                Ok(got) => assert_eq!(got, *want, "{input}"),
                Err(e) => assert_eq!(*input, "/%2e%2e", "{input}: {e:?}"),
            }
        }
        let bad: &[(&str, PathError)] = &[
            ("/..", PathError::Bad("path climbs above the root")),
            ("/a/../..", PathError::Bad("path climbs above the root")),
            (
                "/%2e%2e/etc/passwd",
                PathError::Bad("path climbs above the root"),
            ),
            ("/a%00b", PathError::Bad("NUL in path")),
            ("/a%zz", PathError::Bad("bad percent escape")),
            ("/a%2", PathError::Bad("bad percent escape")),
            ("relative", PathError::Bad("path does not start with /")),
            ("/.git/config", PathError::Hidden),
            ("/a/.htpasswd", PathError::Hidden),
            ("/a%5c..%5cb", PathError::Bad("backslash in path")),
            ("/%ff", PathError::Bad("path is not UTF-8")),
        ];
        for (input, want) in bad {
            assert_eq!(segments(input, false).unwrap_err(), *want, "{input}");
        }
        assert_eq!(
            segments("/.well-known/x", true).unwrap(),
            vec![".well-known", "x"]
        );
    }

    #[test]
    fn escaping() {
        assert_eq!(percent_encode("/a b/ü?#"), "/a%20b/%C3%BC%3F%23");
        assert_eq!(
            html_escape("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
    }
}
