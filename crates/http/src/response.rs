//! Responses: status, headers and a body whose length is known up front
//! (bytes, or byte ranges of one file sent with sendfile) or not (a stream,
//! sent chunked on HTTP/1.1). Framing headers are added by `Conn::send`,
//! never by handlers, so they cannot disagree with the body.

use std::fs::File;
use std::io::Read;

/// A piece of a body.
pub enum Segment {
    Bytes(Vec<u8>),
    /// A byte range of the response's file.
    File {
        offset: u64,
        len: u64,
    },
}

pub enum Body {
    Empty,
    Bytes(Vec<u8>),
    /// Pieces of bytes and ranges of `file` (a whole file, one range, or
    /// multipart/byteranges).
    Segments(File, Vec<Segment>),
    /// A body of unknown length, read to its end.
    Stream(Box<dyn Read>),
    /// A body read from a stream that promised this length.
    Sized(Box<dyn Read>, u64),
}

impl Body {
    /// The length when known.
    pub fn len(&self) -> Option<u64> {
        match self {
            Body::Empty => Some(0),
            Body::Bytes(b) => Some(b.len() as u64),
            Body::Segments(_, segs) => Some(
                segs.iter()
                    .map(|s| match s {
                        Segment::Bytes(b) => b.len() as u64,
                        Segment::File { len, .. } => *len,
                    })
                    .sum(),
            ),
            Body::Stream(_) => None,
            Body::Sized(_, n) => Some(*n),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }
}

pub struct Response {
    pub status: u16,
    /// Names and values; values are bytes so a proxy can pass on what an
    /// upstream sent unchanged.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Body,
    /// Close the connection after this response whatever the client asked.
    pub close: bool,
}

impl Response {
    pub fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Body::Empty,
            close: false,
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<Vec<u8>>) -> Response {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    pub fn bytes(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        self.headers
            .push(("Content-Type".into(), content_type.into()));
        self.body = Body::Bytes(body.into());
        self
    }

    /// A small, complete error page for `status`.
    pub fn error(status: u16) -> Response {
        let text = reason(status);
        let body = format!(
            "<!DOCTYPE html>\n<html><head><title>{status} {text}</title></head><body><h1>{status} {text}</h1></body></html>\n"
        );
        Response::new(status).bytes("text/html; charset=utf-8", body)
    }

    /// The first value of a header, as text (`None` when not UTF-8).
    pub fn get_header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }
}

/// The reason phrase of a status code.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}
