//! jawas-http: the HTTP/1.1 layer shared by Jawas engines.
//!
//! An engine serves one connection over stdin/stdout (a socket from jawasd,
//! tcpserver, xinetd or systemd `Accept=yes`, or two pipes in tests). This
//! crate owns everything between those bytes and a request handler: reading
//! request heads and bodies within limits and deadlines, keep-alive and
//! pipelining, writing responses (Date, framing, HEAD, Connection), error
//! responses, the client address from the UCSPI environment, the access
//! log, and handing the connection to a handler after an upgrade. It also
//! holds what engines share beyond the connection: RFC 9110's conditional
//! and range rules (`rules`), the client side for a proxy (`client`) and a
//! deadline reader for local producers (`pipe`). It does not decide what
//! to answer: that is the engine's handler.
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
mod output;
pub mod path;
pub mod pipe;
mod request;
mod response;
pub mod rules;

pub use conn::{Conn, Limits};
pub use date::{format_http_date, parse_http_date};
pub use handoff::{Duplex, Upgraded};
pub use log::AccessLog;
pub use request::{split_host, Framing, Request};
pub use response::{reason, Body, Response, Segment};

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

/// The client, from the UCSPI environment (TCPREMOTEIP/TCPREMOTEPORT), as
/// set by jawasd and tcpserver; xinetd's REMOTE_HOST as a fallback.
#[derive(Debug, Clone, Default)]
pub struct Peer {
    pub ip: Option<String>,
    pub port: Option<String>,
    pub local_ip: Option<String>,
    pub local_port: Option<String>,
}

impl Peer {
    pub fn from_env() -> Peer {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Peer {
            ip: var("TCPREMOTEIP").or_else(|| var("REMOTE_HOST")),
            port: var("TCPREMOTEPORT"),
            local_ip: var("TCPLOCALIP"),
            local_port: var("TCPLOCALPORT"),
        }
    }
}

/// Parses a positive number of seconds, for options such as `--timeout 2.5`.
pub fn parse_secs(v: &str) -> Result<std::time::Duration, String> {
    v.parse::<f64>()
        .ok()
        .filter(|n| *n > 0.0 && n.is_finite())
        .map(std::time::Duration::from_secs_f64)
        .ok_or(format!("'{v}' is not a number of seconds"))
}

/// The start every engine shares: parse the command line with `parse`
/// (an `Err("")` asks for help), print `usage` and exit 100 on a usage
/// error, and ignore SIGPIPE so a client that went away is an error return,
/// not a silent death.
pub fn engine_start<O>(
    name: &str,
    usage: &str,
    parse: impl FnOnce(&[String]) -> Result<O, String>,
) -> O {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match parse(&args) {
        Ok(o) => o,
        Err(m) if m.is_empty() => {
            println!("{usage}");
            std::process::exit(exit::OK);
        }
        Err(m) => {
            eprintln!("{name}: {m}\n{name}: {usage}");
            std::process::exit(exit::USAGE);
        }
    };
    // SAFETY: setting dispositions before any thread exists; the SIGTERM
    // handler only stores to an atomic. Without SA_RESTART a blocking read
    // returns EINTR, so the request loop sees the flag, writes out its
    // buffered log lines and exits.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigterm as *const () as libc::sighandler_t;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGTERM, &sa, std::ptr::null_mut());
    }
    opts
}

static STOPPING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_sigterm(_: libc::c_int) {
    STOPPING.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// SIGTERM arrived: finish up and exit.
pub fn stopping() -> bool {
    STOPPING.load(std::sync::atomic::Ordering::Relaxed)
}

/// Answers requests until the connection ends: reads each request (an
/// unreadable one is answered and ends the connection), hands it to
/// `handler`, which answers it and says whether the connection may carry
/// another. Returns the engine's exit code.
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
            Err(HttpError::Io(_)) if stopping() => return exit::OK,
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

/// Exit codes for engines (the s6 convention): 0 done, 1 the peer broke
/// the protocol or went away, 100 usage error, 111 system failure.
pub mod exit {
    pub const OK: i32 = 0;
    pub const PEER: i32 = 1;
    pub const USAGE: i32 = 100;
    pub const SYSTEM: i32 = 111;
}
