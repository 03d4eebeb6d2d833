//! A parsed request head, and the rules that derive its framing and
//! keep-alive from the headers (RFC 9112 sections 6 and 9).

use std::time::Instant;

use crate::HttpError;

/// For an absolute-form target (`scheme://authority/path?query`), what
/// follows `://`; `None` for any other form. The scheme must start the
/// target (RFC 3986 section 3.1: a letter, then letters, digits, `+-.`).
fn absolute_form_rest(t: &str) -> Option<&str> {
    let (scheme, rest) = t.split_once("://")?;
    let mut chars = scheme.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    (first_ok && rest_ok).then_some(rest)
}

/// The body framing of a request (RFC 9112 section 6.3). A
/// Transfer-Encoding field, even an empty one, makes Content-Length
/// irrelevant; both together is a smuggling attempt and refused, as is a
/// final coding other than chunked (the length cannot be known). Every
/// refusal closes the connection (`Conn::send_error` does).
fn framing(r: &Request) -> Result<Framing, HttpError> {
    let has_te = r
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("Transfer-Encoding"));
    let lengths: Vec<String> = r
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("Content-Length"))
        .map(|(_, v)| String::from_utf8_lossy(v).trim().to_string())
        .collect();
    if has_te {
        if !lengths.is_empty() {
            return Err(HttpError::BadRequest(
                "both Transfer-Encoding and Content-Length",
            ));
        }
        if r.minor == 0 {
            return Err(HttpError::BadRequest(
                "Transfer-Encoding in an HTTP/1.0 request",
            ));
        }
        let te: Vec<String> = r
            .header_list("Transfer-Encoding")
            .map(|s| s.to_ascii_lowercase())
            .collect();
        if te.last().map(String::as_str) != Some("chunked") {
            return Err(HttpError::BadRequest(
                "Transfer-Encoding does not end in chunked",
            ));
        }
        if te.len() > 1 {
            return Err(if te.iter().all(|t| t == "chunked") {
                HttpError::BadRequest("chunked applied twice")
            } else {
                HttpError::NotImplemented
            });
        }
        return Ok(Framing::Chunked);
    }
    let Some(first) = lengths.first() else {
        return Ok(Framing::None);
    };
    if lengths.iter().any(|l| l != first) {
        return Err(HttpError::BadRequest("conflicting Content-Length headers"));
    }
    if first.is_empty() || !first.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HttpError::BadRequest("invalid Content-Length"));
    }
    let n: u64 = first.parse().map_err(|_| HttpError::PayloadTooLarge)?;
    Ok(if n > 0 {
        Framing::Length(n)
    } else {
        Framing::None
    })
}

/// Splits a Host value (`uri-host [":" port]`, RFC 9112 section 3.2) into
/// host and port; `None` when it is not a valid Host. The host of an IPv6
/// literal keeps its brackets (`[::1]`), as SERVER_NAME wants it.
pub fn split_host(v: &str) -> Option<(&str, Option<&str>)> {
    let (host, port) = if let Some(inner) = v.strip_prefix('[') {
        let close = inner.find(']')?;
        inner[..close].parse::<std::net::Ipv6Addr>().ok()?;
        let after = &inner[close + 1..];
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (&v[..close + 2], port)
    } else {
        let (h, p) = match v.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (v, None),
        };
        let reg_name = |c: u8| c.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=%".contains(&c);
        if !h.bytes().all(reg_name) {
            return None;
        }
        (h, p)
    };
    if port.is_some_and(|p| !p.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    Some((host, port))
}

/// How the request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    None,
    Length(u64),
    Chunked,
}

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The request target as sent (`/a%20b?x=1`, `*`, or absolute-form).
    pub target: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    /// Header names as sent; values byte for byte as sent (obs-text
    /// included), so a proxy can forward them unchanged.
    pub headers: Vec<(String, Vec<u8>)>,
    pub framing: Framing,
    /// The client wants the connection kept open after this response.
    pub keep_alive: bool,
    pub expect_continue: bool,
    /// When the first byte of this request arrived (for the access log).
    pub started: Instant,
}

impl Request {
    /// The first value of a header, by case-insensitive name, as text;
    /// `None` also when that value is not UTF-8 (see `header_bytes`).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_bytes(name)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The first value of a header, byte for byte.
    pub fn header_bytes(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// Every value of a header, split at commas (for list-valued headers);
    /// values that are not UTF-8 are skipped.
    pub fn header_list<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .filter_map(|(_, v)| std::str::from_utf8(v).ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }

    /// The path part of the target (before `?`), for origin-form and
    /// absolute-form targets. Only a scheme at the very start of the target
    /// makes it absolute-form: a `://` later on (in the query, or in a
    /// segment such as `/a://b`) is an ordinary character of the path.
    pub fn path(&self) -> &str {
        let t = self.target.as_str();
        let t = match absolute_form_rest(t) {
            Some(rest) => rest.find(['/', '?']).map(|j| &rest[j..]).unwrap_or("/"),
            None => t,
        };
        let p = t.split_once('?').map(|(p, _)| p).unwrap_or(t);
        if p.is_empty() {
            "/"
        } else {
            p
        }
    }

    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, q)| q)
    }

    /// The host named by the request, without the port (`[::1]` keeps
    /// its brackets), when the Host field is present and not empty.
    pub fn host_name(&self) -> Option<&str> {
        self.header("Host")
            .and_then(split_host)
            .map(|(h, _)| h)
            .filter(|h| !h.is_empty())
    }

    pub fn is_head(&self) -> bool {
        self.method == "HEAD"
    }

    pub fn version(&self) -> &'static str {
        if self.minor == 0 {
            "HTTP/1.0"
        } else {
            "HTTP/1.1"
        }
    }

    /// Builds a request from a parsed head, applying the framing rules.
    pub(crate) fn from_parsed(
        req: &httparse::Request<'_, '_>,
        started: Instant,
    ) -> Result<Request, HttpError> {
        let method = req
            .method
            .ok_or(HttpError::BadRequest("no method"))?
            .to_string();
        let target = req
            .path
            .ok_or(HttpError::BadRequest("no request target"))?
            .to_string();
        let minor = req.version.ok_or(HttpError::BadRequest("no version"))?;
        let headers: Vec<(String, Vec<u8>)> = req
            .headers
            .iter()
            .map(|h| (h.name.to_string(), h.value.to_vec()))
            .collect();
        let mut r = Request {
            method,
            target,
            minor,
            headers,
            framing: Framing::None,
            keep_alive: false,
            expect_continue: false,
            started,
        };
        let hosts = r
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("Host"))
            .count();
        if r.minor == 1 && hosts == 0 {
            return Err(HttpError::BadRequest("HTTP/1.1 request without Host"));
        }
        if hosts > 1 {
            return Err(HttpError::BadRequest("more than one Host field"));
        }
        let host = r.header_bytes("Host");
        if host.is_some_and(|h| std::str::from_utf8(h).ok().and_then(split_host).is_none()) {
            return Err(HttpError::BadRequest("invalid Host"));
        }
        r.framing = framing(&r)?;
        let conn: Vec<String> = r
            .header_list("Connection")
            .map(|s| s.to_ascii_lowercase())
            .collect();
        r.keep_alive = if r.minor == 0 {
            conn.iter().any(|c| c == "keep-alive")
        } else {
            !conn.iter().any(|c| c == "close")
        };
        r.expect_continue = r.minor == 1
            && r.header("Expect")
                .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
            && r.framing != Framing::None;
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses a whole request head, as `Conn` does.
    pub(crate) fn parse(head: &str) -> Result<Request, HttpError> {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(head.as_bytes()) {
            Ok(httparse::Status::Complete(_)) => Request::from_parsed(&req, Instant::now()),
            other => panic!("{head:?} does not parse: {other:?}"),
        }
    }

    fn target(t: &str) -> Request {
        parse(&format!("GET {t} HTTP/1.1\r\nHost: x\r\n\r\n")).unwrap()
    }

    #[test]
    fn path_and_query_cases() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("/index.html", "/index.html", None),
            ("/a?b=1", "/a", Some("b=1")),
            // A URL in the query is query, not a target.
            (
                "/index.html?next=http://x/dir/private.txt",
                "/index.html",
                Some("next=http://x/dir/private.txt"),
            ),
            ("/a://b/dir/private.txt", "/a://b/dir/private.txt", None),
            ("http://host/dir/f.txt?q", "/dir/f.txt", Some("q")),
            ("HTTPS://host", "/", None),
            ("http://host?x=1", "/", Some("x=1")),
            ("*", "*", None),
            ("1http://host/x", "1http://host/x", None),
        ];
        for (t, path, query) in cases {
            let r = target(t);
            assert_eq!((r.path(), r.query()), (*path, *query), "{t}");
        }
    }

    #[test]
    fn framing_cases() {
        use HttpError::*;
        type Want = Result<Framing, &'static str>;
        let cases: &[(&str, Want)] = &[
            ("", Ok(Framing::None)),
            ("Content-Length: 5\r\n", Ok(Framing::Length(5))),
            ("Content-Length: 0\r\n", Ok(Framing::None)),
            ("Transfer-Encoding: chunked\r\n", Ok(Framing::Chunked)),
            ("Transfer-Encoding: Chunked\r\n", Ok(Framing::Chunked)),
            ("Transfer-Encoding: gzip, chunked\r\n", Err("501")),
            (
                "Transfer-Encoding: chunked, chunked\r\n",
                Err("chunked applied twice"),
            ),
            (
                "Transfer-Encoding: gzip\r\n",
                Err("does not end in chunked"),
            ),
            (
                "Transfer-Encoding: chunked, gzip\r\n",
                Err("does not end in chunked"),
            ),
            ("Transfer-Encoding:\r\n", Err("does not end in chunked")),
            (
                "Transfer-Encoding:\r\nContent-Length: 5\r\n",
                Err("both Transfer-Encoding and Content-Length"),
            ),
            (
                "Transfer-Encoding: gzip\r\nContent-Length: 5\r\n",
                Err("both Transfer-Encoding and Content-Length"),
            ),
            (
                "Content-Length: 5\r\nContent-Length: 6\r\n",
                Err("conflicting Content-Length"),
            ),
            ("Content-Length: +5\r\n", Err("invalid Content-Length")),
            ("Content-Length: 99999999999999999999999\r\n", Err("413")),
        ];
        for (headers, want) in cases {
            let got = parse(&format!("POST / HTTP/1.1\r\nHost: x\r\n{headers}\r\n"));
            match (got, want) {
                (Ok(r), Ok(f)) => assert_eq!(r.framing, *f, "{headers:?}"),
                (Err(NotImplemented), Err("501")) | (Err(PayloadTooLarge), Err("413")) => {}
                (Err(BadRequest(why)), Err(w)) if why.contains(w) => {}
                (got, want) => panic!("{headers:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn host_cases() {
        let ok: &[(&str, Option<&str>)] = &[
            ("example.com", Some("example.com")),
            ("example.com:8080", Some("example.com")),
            ("127.0.0.1:80", Some("127.0.0.1")),
            ("[::1]", Some("[::1]")),
            ("[::1]:8080", Some("[::1]")),
            ("", None),
            ("xn--caf-dma.example", Some("xn--caf-dma.example")),
        ];
        for (h, name) in ok {
            let r = parse(&format!("GET / HTTP/1.1\r\nHost: {h}\r\n\r\n")).unwrap();
            assert_eq!(r.host_name(), *name, "{h}");
        }
        for bad in [
            "a b",
            "x/y",
            "x:80a",
            "[::1",
            "[::1]x",
            "[nothex]",
            "x@y",
            "ex\u{e4}mple",
        ] {
            let got = parse(&format!("GET / HTTP/1.1\r\nHost: {bad}\r\n\r\n"));
            assert!(
                matches!(got, Err(HttpError::BadRequest("invalid Host"))),
                "{bad}: {got:?}"
            );
        }
        let two = parse("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n");
        assert!(matches!(
            two,
            Err(HttpError::BadRequest("more than one Host field"))
        ));
        assert!(parse("GET / HTTP/1.0\r\n\r\n").is_ok(), "1.0 needs no Host");
    }
}
