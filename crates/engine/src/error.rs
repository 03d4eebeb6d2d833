//! The one error type of the engine runtime: an exit code and the lines to
//! print, so every failure of every engine ends the same way (`report`).
//!
//! Invariant: `code` is one of the `exit` codes other than `OK`; every line
//! is a single line (no newline inside), printed as `NAME: error: LINE`.

use std::fmt;
use std::io;

use crate::exit;

/// Why an engine could not start, check or finish serving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    code: i32,
    lines: Vec<String>,
}

impl Error {
    /// A bad command line: unknown option, missing value, wrong arguments (100).
    pub fn usage(msg: impl Into<String>) -> Error {
        Error::new(exit::USAGE, msg)
    }

    /// A configuration that cannot work: a missing root, an unreadable
    /// file named by an option (100, as for usage: fixing it needs a person).
    pub fn config(msg: impl Into<String>) -> Error {
        Error::new(exit::USAGE, msg)
    }

    /// A temporary system failure (111).
    pub fn system(msg: impl Into<String>) -> Error {
        Error::new(exit::SYSTEM, msg)
    }

    /// The peer broke the protocol (1), with a reason worth logging.
    pub fn peer(msg: impl Into<String>) -> Error {
        Error::new(exit::PEER, msg)
    }

    /// The peer went away (1). Nothing is printed: a client hanging up is
    /// normal enough that a log line per connection would only be noise.
    pub fn peer_gone() -> Error {
        Error {
            code: exit::PEER,
            lines: Vec::new(),
        }
    }

    /// An I/O error while serving, with what was being done: a reset or
    /// broken pipe is the peer going away (`peer_gone`), anything else a
    /// system failure naming `context`.
    pub fn io(context: &str, e: &io::Error) -> Error {
        match e.kind() {
            io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted => Error::peer_gone(),
            _ => Error::system(format!("{context}: {e}")),
        }
    }

    /// An exit code whose cause was already reported, or needs no report
    /// (for example the status `jawas_http::serve` returns). `OK` is not an
    /// error: see [`status`](crate::status) to turn a code into a `Result`.
    pub fn exit_code(code: i32) -> Error {
        Error {
            code,
            lines: Vec::new(),
        }
    }

    fn new(code: i32, msg: impl Into<String>) -> Error {
        let msg: String = msg.into();
        Error {
            code,
            // Keep the one-line promise even for messages built from
            // multi-line sources (an io::Error from a helper, say).
            lines: vec![msg.replace(['\n', '\r'], " ")],
        }
    }

    /// Adds `other`'s lines after these, so `--check` can report every
    /// problem at once. The more serious code wins: a configuration error
    /// (100) outranks a temporary one (111), which outranks the peer (1).
    pub fn and(mut self, other: Error) -> Error {
        let rank = |c: i32| match c {
            exit::USAGE => 3,
            exit::SYSTEM => 2,
            _ => 1,
        };
        if rank(other.code) > rank(self.code) {
            self.code = other.code;
        }
        self.lines.extend(other.lines);
        self
    }

    /// Collects several results' errors into one, or `Ok` if there were none.
    pub fn collect(errors: impl IntoIterator<Item = Error>) -> Result<(), Error> {
        match errors.into_iter().reduce(Error::and) {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }

    /// The exit code this error ends the process with.
    pub fn code(&self) -> i32 {
        self.code
    }

    /// The messages, one per line, without the `NAME: error: ` prefix.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// The text `report` prints: one `NAME: error: ...` line per message.
    pub fn render(&self, name: &str) -> String {
        self.lines
            .iter()
            .map(|l| format!("{name}: error: {l}\n"))
            .collect()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lines.is_empty() {
            return write!(f, "exit {}", self.code);
        }
        write!(f, "{}", self.lines.join("; "))
    }
}

impl std::error::Error for Error {}

/// The one place an error ends an engine: its lines on stderr (never on
/// fd 1, which may be the connection), and the exit code to use.
pub fn report(name: &str, e: &Error) -> i32 {
    let text = e.render(name);
    if !text.is_empty() {
        // One write, so lines from concurrent engines sharing jawasd's
        // stderr do not interleave mid-line.
        let _ = io::Write::write_all(&mut io::stderr().lock(), text.as_bytes());
    }
    e.code
}

/// Both values, or the errors of both: `join(a, join(b, c))` lets `init`
/// validate every option and report every problem at once under `--check`,
/// rather than stopping at the first.
pub fn join<A, B>(a: Result<A, Error>, b: Result<B, Error>) -> Result<(A, B), Error> {
    match (a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (Err(e), Ok(_)) | (Ok(_), Err(e)) => Err(e),
        (Err(e), Err(f)) => Err(e.and(f)),
    }
}

/// Turns an exit code into a `Result`: `OK` is `Ok(())`, anything else an
/// already-reported [`Error::exit_code`].
pub fn status(code: i32) -> Result<(), Error> {
    if code == exit::OK {
        Ok(())
    } else {
        Err(Error::exit_code(code))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_map_to_peer_or_system() {
        let cases = [
            (io::ErrorKind::BrokenPipe, exit::PEER, 0),
            (io::ErrorKind::ConnectionReset, exit::PEER, 0),
            (io::ErrorKind::ConnectionAborted, exit::PEER, 0),
            (io::ErrorKind::PermissionDenied, exit::SYSTEM, 1),
            (io::ErrorKind::OutOfMemory, exit::SYSTEM, 1),
        ];
        for (kind, code, lines) in cases {
            let e = Error::io("write", &io::Error::from(kind));
            assert_eq!((e.code(), e.lines().len()), (code, lines), "{kind:?}");
        }
    }

    #[test]
    fn render_prefixes_every_line_and_keeps_one_line_each() {
        let e = Error::usage("first\nhalf").and(Error::system("second"));
        assert_eq!(
            e.render("jawas-x"),
            "jawas-x: error: first half\njawas-x: error: second\n"
        );
        assert_eq!(
            e.code(),
            exit::USAGE,
            "a config error outranks a system one"
        );
        assert_eq!(Error::peer_gone().render("jawas-x"), "");
    }

    #[test]
    fn combining_keeps_the_most_serious_code() {
        let table = [
            (exit::PEER, exit::SYSTEM, exit::SYSTEM),
            (exit::SYSTEM, exit::USAGE, exit::USAGE),
            (exit::USAGE, exit::SYSTEM, exit::USAGE),
            (exit::PEER, exit::PEER, exit::PEER),
        ];
        for (a, b, want) in table {
            let e = Error::exit_code(a).and(Error::exit_code(b));
            assert_eq!(e.code(), want, "{a} and {b}");
        }
        assert_eq!(Error::collect([]), Ok(()));
        assert_eq!(
            Error::collect([Error::usage("a"), Error::usage("b")])
                .unwrap_err()
                .lines(),
            ["a", "b"]
        );
    }

    #[test]
    fn join_keeps_both_values_or_every_error() {
        let ok: Result<u8, Error> = Ok(1);
        let bad = |m: &str| -> Result<u8, Error> { Err(Error::usage(m)) };
        assert_eq!(join(ok.clone(), ok.clone()), Ok((1, 1)));
        assert_eq!(join(bad("a"), ok.clone()).unwrap_err().lines(), ["a"]);
        assert_eq!(join(ok.clone(), bad("b")).unwrap_err().lines(), ["b"]);
        assert_eq!(
            join(bad("a"), join(bad("b"), bad("c")))
                .unwrap_err()
                .lines(),
            ["a", "b", "c"]
        );
    }

    #[test]
    fn status_codes() {
        assert_eq!(status(0), Ok(()));
        assert_eq!(status(1).unwrap_err().code(), 1);
        assert_eq!(status(111).unwrap_err().code(), 111);
    }
}
