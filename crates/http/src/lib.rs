//! jawas-http: the HTTP/1.1 layer shared by Jawas engines.
//!
//! An engine serves one connection over stdin/stdout (a socket from jawasd,
//! tcpserver, xinetd or systemd `Accept=yes`, or two pipes in tests). This
//! crate owns everything between those bytes and a request handler: reading
//! request heads and bodies within limits and deadlines, keep-alive and
//! pipelining, writing responses (Date, framing, HEAD, Connection), error
//! responses, the access log, and handing the connection to a handler
//! after an upgrade. It also
//! holds what engines share beyond the connection: RFC 9110's conditional
//! and range rules (`rules`), the client side for a proxy (`client`) and a
//! deadline reader for local producers (`pipe`). It does not decide what
//! to answer: that is the engine's handler. Start-up, options, exit codes,
//! the typed client address (`Peer`) and the SIGTERM flag belong to the
//! engine runtime, jawas-engine, which this layer builds on.
//!
//! Invariants: a response is always complete and correctly framed, or the
//! connection is closed; nothing but HTTP is ever written to fd 1 (the log
//! never goes to the connection, even when fd 2 is the socket, as under
//! xinetd).

pub mod client;
mod conn;
mod date;
mod handoff;
mod log;
pub mod options;
mod output;
pub mod path;
pub mod pipe;
mod request;
mod response;
pub mod route;
pub mod rules;

pub use conn::{Conn, Limits};
pub use date::{civil_from_days, format_http_date, parse_http_date};
pub use handoff::{Duplex, Upgraded};
pub use log::AccessLog;
pub use request::{split_host, Framing, Request};
pub use response::{reason, Body, Response, Segment};

/// The engine runtime this layer is built on, re-exported because its
/// types are part of this crate's interface (`Conn::from_connection`
/// takes its `Connection`, `Conn::peer` is its `Peer`): an engine written
/// on jawas-http needs no second dependency to implement `Engine`.
pub use jawas_engine;
pub use jawas_engine::Peer;

use jawas_engine::exit;

use std::fmt;
use std::io;

/// Why a request could not be read. Each maps to one response (or, for a
/// broken connection, to none).
#[derive(Debug)]
pub enum HttpError {
    /// Malformed request line, header or body framing (400).
    BadRequest(&'static str),
    /// Request target longer than the limit (414).
    UriTooLong,
    /// Head larger than the limit, or too many headers (431).
    HeadersTooLarge,
    /// Body larger than the limit (413).
    PayloadTooLarge,
    /// The client was too slow (408).
    Timeout,
    /// A Transfer-Encoding we do not implement (501).
    NotImplemented,
    /// An HTTP major version other than 1 (505).
    VersionNotSupported,
    /// An upstream's response could not be read (client side): a proxy
    /// answers 502.
    BadResponse(&'static str),
    /// The connection failed or closed mid-request: nothing can be sent.
    Io(io::Error),
}

impl HttpError {
    /// The status to answer with, or `None` when the connection is gone.
    pub fn status(&self) -> Option<u16> {
        Some(match self {
            HttpError::BadRequest(_) => 400,
            HttpError::UriTooLong => 414,
            HttpError::HeadersTooLarge => 431,
            HttpError::PayloadTooLarge => 413,
            HttpError::Timeout => 408,
            HttpError::NotImplemented => 501,
            HttpError::VersionNotSupported => 505,
            HttpError::BadResponse(_) => 502,
            HttpError::Io(_) => return None,
        })
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::BadRequest(why) => write!(f, "bad request: {why}"),
            HttpError::UriTooLong => write!(f, "request target too long"),
            HttpError::HeadersTooLarge => write!(f, "request head too large"),
            HttpError::PayloadTooLarge => write!(f, "request body too large"),
            HttpError::Timeout => write!(f, "client too slow"),
            HttpError::NotImplemented => write!(f, "transfer coding not implemented"),
            HttpError::VersionNotSupported => write!(f, "HTTP version not supported"),
            HttpError::BadResponse(why) => write!(f, "bad response: {why}"),
            HttpError::Io(e) => write!(f, "connection: {e}"),
        }
    }
}

impl std::error::Error for HttpError {}

impl From<io::Error> for HttpError {
    fn from(e: io::Error) -> Self {
        HttpError::Io(e)
    }
}

/// Answers requests until the connection ends: reads each request (an
/// unreadable one is answered and ends the connection), hands it to
/// `handler`, which answers it and says whether the connection may carry
/// another. Returns the engine's exit code (`jawas_engine::exit`), which
/// `jawas_engine::status` turns into what `Engine::serve` returns.
pub fn serve(
    conn: &mut Conn,
    handler: impl FnMut(&mut Conn, Request) -> std::io::Result<bool>,
) -> i32 {
    let code = serve_requests(conn, handler);
    conn.log.flush();
    code
}

fn serve_requests(
    conn: &mut Conn,
    mut handler: impl FnMut(&mut Conn, Request) -> std::io::Result<bool>,
) -> i32 {
    loop {
        let req = match conn.next_request() {
            Ok(Some(r)) => r,
            Ok(None) => return exit::OK,
            Err(HttpError::Io(_)) if jawas_engine::stopping() => return exit::OK,
            Err(HttpError::Io(_)) => return exit::PEER,
            Err(e) => {
                conn.send_error(&e);
                return exit::PEER;
            }
        };
        let result = handler(conn, req);
        if conn.is_handed_off() {
            // The handler took the connection: whatever it left there is
            // not HTTP.
            return if result.is_ok() { exit::OK } else { exit::PEER };
        }
        match result {
            Ok(true) => {}
            Ok(false) => return exit::OK,
            Err(_) => return exit::PEER,
        }
    }
}
