//! The client side of HTTP/1.1, for engines that talk to an upstream server
//! (a reverse proxy): reading and parsing a response head, deciding how its
//! body is delimited, pull-style body readers, and hop-by-hop filtering.
//!
//! Owns no I/O of its own: everything reads from a `BufRead` the caller
//! made (a socket with its own timeouts, say). Invariants: a body reader
//! never reads past the end of its body (so the connection can carry the
//! next response), and a body that ends early is an error, never a short
//! success. Header values are bytes, forwarded unchanged.

use std::io::{self, BufRead, Read};

use crate::conn::chunk_size;
use crate::HttpError;

/// A parsed response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    pub status: u16,
    pub reason: Vec<u8>,
    /// Names as sent, values byte for byte.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl ResponseHead {
    /// The first value of a field as text (`None` when absent or not UTF-8).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// Every value of a list-valued field, split at commas and trimmed.
    pub fn header_list<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        list(&self.headers, name)
    }
}

fn list<'a>(headers: &'a [(String, Vec<u8>)], name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .iter()
        .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
        .filter_map(|(_, v)| std::str::from_utf8(v).ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// Parses a response head at the start of `buf`: the head and its length,
/// or `None` when more bytes are needed.
pub fn parse_response_head(
    buf: &[u8],
    max_headers: usize,
) -> Result<Option<(ResponseHead, usize)>, HttpError> {
    let mut headers = vec![httparse::EMPTY_HEADER; max_headers];
    let mut resp = httparse::Response::new(&mut headers);
    let n = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(HttpError::BadResponse("response head too large"))
        }
        Err(_) => return Err(HttpError::BadResponse("malformed response head")),
    };
    let head = ResponseHead {
        minor: resp.version.unwrap_or(1),
        status: resp.code.unwrap_or(0),
        reason: resp.reason.unwrap_or("").as_bytes().to_vec(),
        headers: resp
            .headers
            .iter()
            .map(|h| (h.name.to_string(), h.value.to_vec()))
            .collect(),
    };
    Ok(Some((head, n)))
}

/// Reads one response head from `r` (at most `max_head` bytes), leaving
/// the body unread in `r`.
pub fn read_response_head(
    r: &mut impl BufRead,
    max_head: usize,
    max_headers: usize,
) -> Result<ResponseHead, HttpError> {
    let mut buf = Vec::with_capacity(1024);
    loop {
        let before = buf.len();
        let room = (max_head + 1).saturating_sub(before) as u64;
        let n = r.by_ref().take(room).read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Err(HttpError::Io(io::ErrorKind::UnexpectedEof.into()));
        }
        if buf.len() > max_head {
            return Err(HttpError::BadResponse("response head too large"));
        }
        let line = &buf[before..];
        if before > 0 && (line == b"\r\n" || line == b"\n") {
            break;
        }
    }
    match parse_response_head(&buf, max_headers)? {
        Some((head, _)) => Ok(head),
        None => Err(HttpError::BadResponse("malformed response head")),
    }
}

/// How a response body is delimited (RFC 9112 section 6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// No body at all.
    None,
    Length(u64),
    Chunked,
    /// Everything until the server closes the connection.
    UntilClose,
}

/// The body of `head`, the answer to a request with `method`: none for
/// HEAD, 1xx, 204, 304 and a 2xx to CONNECT; chunked when chunked is the
/// last transfer coding (Transfer-Encoding wins over Content-Length);
/// until close for other codings or no length; conflicting or invalid
/// Content-Length is an error (the response cannot be trusted).
pub fn response_body_kind(method: &str, head: &ResponseHead) -> Result<BodyKind, HttpError> {
    let s = head.status;
    if method.eq_ignore_ascii_case("HEAD")
        || (100..200).contains(&s)
        || s == 204
        || s == 304
        || (method.eq_ignore_ascii_case("CONNECT") && (200..300).contains(&s))
    {
        return Ok(BodyKind::None);
    }
    if head
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("Transfer-Encoding"))
    {
        let last = head.header_list("Transfer-Encoding").last();
        return Ok(match last {
            Some(c) if c.eq_ignore_ascii_case("chunked") => BodyKind::Chunked,
            _ => BodyKind::UntilClose,
        });
    }
    let mut length = None;
    for (k, v) in &head.headers {
        if !k.eq_ignore_ascii_case("Content-Length") {
            continue;
        }
        // A list of identical values ("5, 5") is allowed (RFC 9110 8.6).
        for item in v.split(|&b| b == b',') {
            let item = item.trim_ascii();
            if item.is_empty() || !item.iter().all(u8::is_ascii_digit) {
                return Err(HttpError::BadResponse("invalid Content-Length"));
            }
            let n: u64 = std::str::from_utf8(item)
                .ok()
                .and_then(|t| t.parse().ok())
                .ok_or(HttpError::BadResponse("invalid Content-Length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(HttpError::BadResponse("conflicting Content-Length"));
            }
            length = Some(n);
        }
    }
    Ok(length.map_or(BodyKind::UntilClose, BodyKind::Length))
}

/// Where a chunked body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Expecting a chunk-size line.
    Size,
    /// Inside chunk data, this many bytes left.
    Data(u64),
    /// After chunk data: expecting its CRLF.
    DataEnd,
    /// After the last chunk: trailer lines up to an empty one.
    Trailers,
    Done,
}

/// A body as a `Read`, pulled from `inner` as the caller reads: exactly
/// the body's bytes (chunked framing removed), then EOF.
pub struct BodyReader<R> {
    inner: R,
    kind: BodyKind,
    /// Bytes left of a Content-Length body.
    left: u64,
    chunk: Chunk,
}

/// Longest chunk-size or trailer line accepted.
const MAX_LINE: u64 = 4096;

fn bad(why: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

impl<R: BufRead> BodyReader<R> {
    pub fn new(kind: BodyKind, inner: R) -> BodyReader<R> {
        BodyReader {
            inner,
            kind,
            left: if let BodyKind::Length(n) = kind { n } else { 0 },
            chunk: Chunk::Size,
        }
    }

    /// The whole body has been read (never true for `UntilClose` before
    /// EOF).
    pub fn is_done(&self) -> bool {
        match self.kind {
            BodyKind::None => true,
            BodyKind::Length(_) => self.left == 0,
            BodyKind::Chunked => self.chunk == Chunk::Done,
            BodyKind::UntilClose => false,
        }
    }

    /// The reader underneath, positioned after the body once `is_done`.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// One line (CRLF or LF), without its end.
    fn line(&mut self) -> io::Result<Vec<u8>> {
        let mut line = Vec::new();
        self.inner
            .by_ref()
            .take(MAX_LINE + 2)
            .read_until(b'\n', &mut line)?;
        if line.last() != Some(&b'\n') {
            return Err(if line.len() as u64 > MAX_LINE {
                bad("chunk line too long")
            } else {
                io::ErrorKind::UnexpectedEof.into()
            });
        }
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Ok(line)
    }

    fn read_chunked(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.chunk {
                Chunk::Done => return Ok(0),
                Chunk::Size => {
                    let size = chunk_size(&self.line()?).ok_or_else(|| bad("bad chunk size"))?;
                    self.chunk = if size == 0 {
                        Chunk::Trailers
                    } else {
                        Chunk::Data(size)
                    };
                }
                Chunk::Data(left) => {
                    let want = buf.len().min(left.min(usize::MAX as u64) as usize);
                    let n = self.inner.read(&mut buf[..want])?;
                    if n == 0 {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                    let left = left - n as u64;
                    self.chunk = if left == 0 {
                        Chunk::DataEnd
                    } else {
                        Chunk::Data(left)
                    };
                    return Ok(n);
                }
                Chunk::DataEnd => {
                    if !self.line()?.is_empty() {
                        return Err(bad("chunk data longer than its size"));
                    }
                    self.chunk = Chunk::Size;
                }
                Chunk::Trailers => {
                    if self.line()?.is_empty() {
                        self.chunk = Chunk::Done;
                    }
                }
            }
        }
    }
}

impl<R: BufRead> Read for BodyReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        match self.kind {
            BodyKind::None => Ok(0),
            BodyKind::UntilClose => self.inner.read(buf),
            BodyKind::Length(_) => {
                if self.left == 0 {
                    return Ok(0);
                }
                let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
                let n = self.inner.read(&mut buf[..want])?;
                if n == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                self.left -= n as u64;
                Ok(n)
            }
            BodyKind::Chunked => self.read_chunked(buf),
        }
    }
}

/// The hop-by-hop fields of RFC 9110 section 7.6.1 (and the obsolete
/// Proxy-Connection), which a proxy must not forward.
const HOP_BY_HOP: &[&str] = &[
    "Connection",
    "Proxy-Connection",
    "Keep-Alive",
    "TE",
    "Transfer-Encoding",
    "Upgrade",
];

/// Removes the hop-by-hop fields from `headers`: the fixed set, and every
/// field named in a Connection field.
pub fn remove_hop_by_hop(headers: &mut Vec<(String, Vec<u8>)>) {
    let named: Vec<String> = list(headers, "Connection")
        .map(|n| n.to_ascii_lowercase())
        .collect();
    headers.retain(|(k, _)| {
        !HOP_BY_HOP.iter().any(|h| h.eq_ignore_ascii_case(k))
            && !named.iter().any(|n| n.eq_ignore_ascii_case(k))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> ResponseHead {
        parse_response_head(text.as_bytes(), 32).unwrap().unwrap().0
    }

    #[test]
    fn response_head_cases() {
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Raw: café\r\n\r\nhello");
        assert_eq!(
            (h.minor, h.status, h.reason.as_slice()),
            (1, 200, b"OK".as_slice())
        );
        assert_eq!(h.header("content-length"), Some("5"));
        assert_eq!(h.headers[1].1, "café".as_bytes());
        let raw = b"HTTP/1.0 404 Not \xe9 Found\r\nX-Latin: \xe9\r\n\r\n";
        let (h, n) = parse_response_head(raw, 32).unwrap().unwrap();
        assert_eq!((h.minor, h.status, n), (0, 404, raw.len()));
        assert_eq!(h.headers[0].1, b"\xe9", "obs-text kept byte for byte");
        assert_eq!(h.header("X-Latin"), None, "not UTF-8: no &str");
        assert!(parse_response_head(b"HTTP/1.1 200 OK\r\nA: b\r\n", 32)
            .unwrap()
            .is_none());
        for bad in [
            "HTTP/1.1 abc OK\r\n\r\n",
            "SMTP 200\r\n\r\n",
            "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
        ] {
            assert!(parse_response_head(bad.as_bytes(), 32).is_err(), "{bad:?}");
        }
        let many: String = (0..40).map(|i| format!("X-{i}: y\r\n")).collect();
        assert!(matches!(
            parse_response_head(format!("HTTP/1.1 200 OK\r\n{many}\r\n").as_bytes(), 32),
            Err(HttpError::BadResponse("response head too large"))
        ));
    }

    #[test]
    fn read_response_head_leaves_the_body() {
        let mut r =
            io::Cursor::new(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloNEXT".to_vec());
        let h = read_response_head(&mut r, 1024, 32).unwrap();
        assert_eq!(h.status, 200);
        let mut body = String::new();
        BodyReader::new(response_body_kind("GET", &h).unwrap(), &mut r)
            .read_to_string(&mut body)
            .unwrap();
        assert_eq!(body, "hello");
        let mut rest = String::new();
        r.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "NEXT");
        let mut r = io::Cursor::new(format!(
            "HTTP/1.1 200 OK\r\nX: {}\r\n\r\n",
            "a".repeat(2000)
        ));
        assert!(matches!(
            read_response_head(&mut r, 1024, 32),
            Err(HttpError::BadResponse("response head too large"))
        ));
        let mut r = io::Cursor::new(b"HTTP/1.1 200 OK\r\n".to_vec());
        assert!(matches!(
            read_response_head(&mut r, 1024, 32),
            Err(HttpError::Io(_))
        ));
    }

    #[test]
    fn body_kind_cases() {
        type Case<'a> = (&'a str, &'a str, Result<BodyKind, ()>);
        let cases: &[Case] = &[
            (
                "GET",
                "200 OK\r\nContent-Length: 5",
                Ok(BodyKind::Length(5)),
            ),
            (
                "GET",
                "200 OK\r\nContent-Length: 5, 5",
                Ok(BodyKind::Length(5)),
            ),
            (
                "GET",
                "200 OK\r\nContent-Length: 5\r\nContent-Length: 6",
                Err(()),
            ),
            ("GET", "200 OK\r\nContent-Length: -1", Err(())),
            ("GET", "200 OK\r\nContent-Length: ", Err(())),
            (
                "GET",
                "200 OK\r\nTransfer-Encoding: chunked",
                Ok(BodyKind::Chunked),
            ),
            (
                "GET",
                "200 OK\r\nTransfer-Encoding: gzip, Chunked\r\nContent-Length: 5",
                Ok(BodyKind::Chunked),
            ),
            (
                "GET",
                "200 OK\r\nTransfer-Encoding: gzip",
                Ok(BodyKind::UntilClose),
            ),
            ("GET", "200 OK", Ok(BodyKind::UntilClose)),
            ("HEAD", "200 OK\r\nContent-Length: 5", Ok(BodyKind::None)),
            (
                "GET",
                "204 No Content\r\nContent-Length: 5",
                Ok(BodyKind::None),
            ),
            (
                "GET",
                "304 Not Modified\r\nContent-Length: 5",
                Ok(BodyKind::None),
            ),
            ("GET", "100 Continue", Ok(BodyKind::None)),
            ("GET", "101 Switching Protocols", Ok(BodyKind::None)),
            ("CONNECT", "200 OK", Ok(BodyKind::None)),
            (
                "CONNECT",
                "407 Auth\r\nContent-Length: 3",
                Ok(BodyKind::Length(3)),
            ),
        ];
        for (method, h, want) in cases {
            let got = response_body_kind(method, &head(&format!("HTTP/1.1 {h}\r\n\r\n")));
            assert_eq!(got.map_err(|_| ()), *want, "{method} {h:?}");
        }
    }

    fn read_body(kind: BodyKind, input: &[u8]) -> (io::Result<Vec<u8>>, Vec<u8>) {
        let mut r = BodyReader::new(kind, io::Cursor::new(input.to_vec()));
        let mut out = Vec::new();
        // Small reads, to cross chunk boundaries.
        let mut buf = [0u8; 3];
        let result = loop {
            match r.read(&mut buf) {
                Ok(0) => break Ok(out),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) => break Err(e),
            }
        };
        let mut cur = r.into_inner();
        let mut rest = Vec::new();
        cur.read_to_end(&mut rest).unwrap();
        (result, rest)
    }

    #[test]
    fn body_reader_cases() {
        type Case<'a> = (BodyKind, &'a [u8], Option<&'a [u8]>, &'a [u8]);
        let cases: &[Case] = &[
            (BodyKind::Length(5), b"helloNEXT", Some(b"hello"), b"NEXT"),
            (BodyKind::Length(5), b"hel", None, b""),
            (BodyKind::None, b"NEXT", Some(b""), b"NEXT"),
            (BodyKind::UntilClose, b"all of it", Some(b"all of it"), b""),
            (
                BodyKind::Chunked,
                b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\nNEXT",
                Some(b"hello world"),
                b"NEXT",
            ),
            (
                BodyKind::Chunked,
                b"0005\nhello\n0\nTrailer: x\n\nNEXT",
                Some(b"hello"),
                b"NEXT",
            ),
            (BodyKind::Chunked, b"0\r\n\r\n", Some(b""), b""),
            (
                BodyKind::Chunked,
                b" 5\r\nhello\r\n0\r\n\r\n",
                None,
                b"hello\r\n0\r\n\r\n",
            ),
            (
                BodyKind::Chunked,
                b"5\r\nhelloXX\r\n0\r\n\r\n",
                None,
                b"0\r\n\r\n",
            ),
            (BodyKind::Chunked, b"5\r\nhel", None, b""),
            (BodyKind::Chunked, b"5\r\nhello\r\n", None, b""),
            (BodyKind::Chunked, b"zz\r\n", None, b""),
        ];
        for (kind, input, want, rest) in cases {
            let (got, left) = read_body(*kind, input);
            let label = String::from_utf8_lossy(input);
            match (got, want) {
                (Ok(body), Some(w)) => assert_eq!(body, *w, "{kind:?} {label:?}"),
                (Err(_), None) => {}
                (got, want) => panic!("{kind:?} {label:?}: got {got:?}, want {want:?}"),
            }
            if want.is_some() {
                assert_eq!(left, *rest, "{kind:?} {label:?}: left after the body");
            }
        }
    }

    #[test]
    fn hop_by_hop_cases() {
        let fields = |names: &[&str]| -> Vec<(String, Vec<u8>)> {
            names
                .iter()
                .map(|n| {
                    let (k, v) = n.split_once(": ").unwrap();
                    (k.to_string(), v.as_bytes().to_vec())
                })
                .collect()
        };
        let cases: &[(&[&str], &[&str])] = &[
            (
                &[
                    "Content-Type: a/b",
                    "Connection: keep-alive",
                    "Keep-Alive: timeout=5",
                ],
                &["Content-Type: a/b"],
            ),
            (
                &[
                    "Connection: X-Secret, close",
                    "X-Secret: 1",
                    "x-secret: 2",
                    "X-Kept: 3",
                ],
                &["X-Kept: 3"],
            ),
            (
                &[
                    "TE: trailers",
                    "Transfer-Encoding: chunked",
                    "Upgrade: h2c",
                    "Proxy-Connection: x",
                    "Trailer: X",
                ],
                &["Trailer: X"],
            ),
            (
                &[
                    "connection: Set-Cookie",
                    "Set-Cookie: a=1",
                    "Set-Cookie: b=2",
                ],
                &[],
            ),
            (&["Date: x", "Server: y"], &["Date: x", "Server: y"]),
        ];
        for (input, want) in cases {
            let mut h = fields(input);
            remove_hop_by_hop(&mut h);
            assert_eq!(h, fields(want), "{input:?}");
        }
    }
}
