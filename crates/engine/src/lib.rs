//! jawas-engine: the runtime every Jawas engine shares, from the command
//! line to the exit code.
//!
//! An engine is a program started once per connection with the connection
//! on fds 0 and 1 (see `docs/engine-protocol.md`). This crate owns what
//! every such program does the same way: parsing its options from one
//! table that also writes `--help`; `--version`; `--check` (validate the
//! arguments, then exit 0 or 100 without serving); exit codes (`exit`);
//! turning errors into `NAME: error: ...` lines on stderr ([`report`]);
//! the typed client and local address from the UCSPI environment
//! ([`Peer`]); ignoring SIGPIPE and the SIGTERM flag ([`stopping`]).
//!
//! Invariants: nothing but the engine's own `serve` touches fds 0 and 1
//! (help and version go to stdout only when asked for, before any
//! connection is served; everything diagnostic goes to stderr); `init` and
//! `serve` are separate steps, so a future zygote can run `init` once and
//! fork per connection before `serve`.
//!
//! # Writing an engine
//!
//! ```no_run
//! use jawas_engine::{Args, Connection, Engine, Error, Opt};
//! use std::io::Write;
//!
//! struct Hello {
//!     greeting: String,
//! }
//!
//! impl Engine for Hello {
//!     const NAME: &'static str = "jawas-hello";
//!     const VERSION: &'static str = env!("CARGO_PKG_VERSION");
//!     const USAGE: &'static [&'static str] = &[""];
//!     const ABOUT: &'static str = "Greets the client by address and hangs up.";
//!     const OPTIONS: &'static [Opt] =
//!         &[Opt::value("greeting", "TEXT", "Say TEXT (default: hello).").short('g')];
//!
//!     // Parse and load everything serving needs; touch no connection.
//!     // An error here is a usage or configuration error, reported as
//!     // `jawas-hello: error: ...` with exit 100 (also under --check).
//!     fn init(args: &Args) -> Result<Self, Error> {
//!         if let Some(extra) = args.positionals().first() {
//!             return Err(Error::usage(format!("unexpected argument '{extra}'")));
//!         }
//!         let greeting = args.value("greeting").unwrap_or("hello").to_string();
//!         Ok(Hello { greeting })
//!     }
//!
//!     fn serve(&mut self, conn: Connection) -> Result<(), Error> {
//!         let who = conn.peer.remote_display().to_string();
//!         let (_input, mut output) = conn.into_files();
//!         writeln!(output, "{} {who}", self.greeting).map_err(|e| Error::io("write", &e))
//!     }
//! }
//!
//! fn main() {
//!     jawas_engine::run::<Hello>()
//! }
//! ```
//!
//! That engine answers `--help` (usage, `ABOUT`, every option of `OPTIONS`
//! and the common ones, described), `--version` (`jawas-hello 0.1.0`),
//! `--check` (runs `init` and [`Engine::check`], prints `jawas-hello: ok`
//! or the errors, exits 0 or 100), and a mistyped `--greting` with
//! `jawas-hello: error: unknown option --greting (did you mean
//! --greeting?)` and exit 100, all without further code. The same example,
//! and the command-line convention, are in `docs/engine-protocol.md`.
//!
//! # Adopting it in an existing engine
//!
//! - Replace the hand-written argument loop with an `OPTIONS` table and
//!   an `init` reading [`Args`]: [`Args::value`] (last wins),
//!   [`Args::values`] (repeatable), [`Args::flag`], [`Args::last_of`]
//!   (`--listing`/`--no-listing`), [`Args::parse`] and [`Args::parse_all`]
//!   with a converter such as [`parse_secs`] (errors name the option and
//!   value). [`join`] combines results so `--check` reports every problem,
//!   not only the first.
//! - Put every check that needs no connection in `init` (or `check`, for
//!   checks a serving process can skip): that is what `--check` runs, and
//!   what jawasd relies on to report a bad service at load time.
//! - `serve` gets a [`Connection`]: [`Connection::into_fds`] hands fds 0
//!   and 1 to a layer that wants to own them (jawas-http's
//!   `Conn::from_connection` does, as jawas-static and jawas-cgi use it), and
//!   [`Connection::peer`] is the typed [`Peer`] to use instead of reading
//!   the environment again.
//! - A library layer that loops on blocking reads (jawas-http) should use
//!   this crate's [`stopping`] rather than a flag of its own: `run`
//!   installs the handler that sets this one.
//! - `serve` returns `Ok(())` (exit 0) or an [`Error`]: [`Error::io`] maps
//!   a reset to a silent exit 1 and other I/O errors to exit 111 with a
//!   message; [`status`] turns an existing exit code (such as the one
//!   `jawas_http::serve` returns) into a `Result`.
//! - Long-running loops poll [`stopping`] after a read or write returns
//!   `Interrupted`: SIGTERM is a flag, not a death.

mod connection;
mod error;
pub mod exit;
pub mod fdpass;
mod man;
mod options;
mod peer;
mod signals;
pub mod zygote;

use std::ffi::OsString;

pub use connection::{Connection, Kind};
pub use error::{join, report, status, Error};
pub use man::man_page;
pub use options::{help_text, parse_args, parse_secs, suggest, Args, Mode, Opt, Spec, COMMON};
pub use peer::Peer;
pub use signals::{die_on_sigterm, install as install_signals, stopping};

/// An engine: a description for the command line, a start-up step and a
/// per-connection step.
pub trait Engine: Sized {
    /// The program name used in messages and `--version`: `jawas-static`.
    const NAME: &'static str;
    /// Usually `env!("CARGO_PKG_VERSION")`.
    const VERSION: &'static str;
    /// Synopsis lines, each printed as `usage: NAME [OPTION]... LINE`:
    /// required options and positional arguments.
    const USAGE: &'static [&'static str];
    /// What the engine does and what its arguments mean, for `--help`;
    /// paragraphs wrapped at 79 columns.
    const ABOUT: &'static str;
    /// The engine's own options (the common ones are added by the runtime).
    const OPTIONS: &'static [Opt];

    /// Builds the engine from its arguments: validates them, opens and
    /// loads what serving needs. Must not touch fds 0 and 1. Errors are
    /// configuration errors (100) unless they say otherwise.
    fn init(args: &Args) -> Result<Self, Error>;

    /// Further checks for `--check` only (by default none: `init`
    /// succeeding is the check). Must finish quickly.
    fn check(&self) -> Result<(), Error> {
        Ok(())
    }

    /// Serves one connection. `Ok` is exit 0.
    fn serve(&mut self, conn: Connection) -> Result<(), Error>;
}

/// The result of [`start`]: an engine ready to serve, or the exit code of
/// a run that is already over (help, version, check or an error).
#[derive(Debug)]
pub enum Start<E> {
    Serve(E),
    Exit(i32),
}

/// The engine's description, from its trait constants.
pub fn spec<E: Engine>() -> Spec {
    Spec {
        name: E::NAME,
        version: E::VERSION,
        usage: E::USAGE,
        about: E::ABOUT,
        options: E::OPTIONS,
    }
}

/// Everything before serving: parses `args` (without the program name);
/// answers `--help` and `--version` on stdout, `--check` and errors on
/// stderr; otherwise runs `init`. This is the part a zygote would run once.
pub fn start<E: Engine>(args: impl IntoIterator<Item = OsString>) -> Start<E> {
    let spec = spec::<E>();
    let mut args = args.into_iter().peekable();
    // For packaging (install.sh, the Debian package): the manual page,
    // from the same table as --help.
    if args.peek().is_some_and(|a| a == "--man-page") {
        return Start::Exit(print(&man_page(&spec)));
    }
    debug_assert!(
        spec.conflicts().is_empty(),
        "{}: options defined twice: {:?}",
        E::NAME,
        spec.conflicts()
    );
    let (mode, args) = match parse_args(&spec, args) {
        Ok(parsed) => parsed,
        Err(e) => return Start::Exit(report(E::NAME, &e)),
    };
    match mode {
        Mode::Help => Start::Exit(print(&help_text(&spec))),
        Mode::Version => Start::Exit(print(&format!("{} {}\n", E::NAME, E::VERSION))),
        Mode::Check => Start::Exit(check::<E>(&args)),
        Mode::Serve => match E::init(&args) {
            Ok(engine) => Start::Serve(engine),
            Err(e) => Start::Exit(report(E::NAME, &e)),
        },
    }
}

/// `--check`: `init`, then `check`; `NAME: ok` or the errors on stderr.
fn check<E: Engine>(args: &Args) -> i32 {
    match E::init(args).and_then(|e| e.check()) {
        Ok(()) => {
            // Not eprintln!, which panics when stderr is closed.
            let line = format!("{}: ok\n", E::NAME);
            let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
            exit::OK
        }
        Err(e) => report(E::NAME, &e),
    }
}

/// Writes help or version text to stdout; a closed stdout is a failure.
fn print(text: &str) -> i32 {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => exit::OK,
        Err(_) => exit::SYSTEM,
    }
}

/// The whole life of an engine process: [`start`] with the process's
/// arguments, then (SIGPIPE ignored, the SIGTERM flag installed) `serve`
/// the connection on fds 0 and 1, and exit with the resulting code. Under
/// jawasd's `spawn = "zygote"` (`JAWAS_ZYGOTE=1`), `init` runs once and
/// each connection is served by a fork ([`zygote`]).
pub fn run<E: Engine>() -> ! {
    let code = match start::<E>(std::env::args_os().skip(1)) {
        Start::Exit(code) => code,
        Start::Serve(mut engine) if zygote::active() => zygote::serve_forever(&mut engine),
        Start::Serve(mut engine) => serve_stdio(&mut engine),
    };
    std::process::exit(code)
}

fn serve_stdio<E: Engine>(engine: &mut E) -> i32 {
    if let Err(e) = signals::install() {
        return report(E::NAME, &Error::system(format!("signal set-up: {e}")));
    }
    match engine.serve(Connection::stdio()) {
        Ok(()) => exit::OK,
        Err(e) => report(E::NAME, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs `--name`; `check` refuses the name "bad".
    #[derive(Debug)]
    struct Probe(String);

    impl Engine for Probe {
        const NAME: &'static str = "jawas-probe";
        const VERSION: &'static str = "1.2.3";
        const USAGE: &'static [&'static str] = &["--name NAME"];
        const ABOUT: &'static str = "A probe.";
        const OPTIONS: &'static [Opt] = &[Opt::value("name", "NAME", "Be NAME.")];

        fn init(args: &Args) -> Result<Self, Error> {
            let name = args
                .value("name")
                .ok_or(Error::usage("--name is required"))?;
            Ok(Probe(name.to_string()))
        }

        fn check(&self) -> Result<(), Error> {
            match self.0.as_str() {
                "bad" => Err(Error::config("bad name").and(Error::config("really"))),
                _ => Ok(()),
            }
        }

        fn serve(&mut self, _: Connection) -> Result<(), Error> {
            unreachable!("start never serves")
        }
    }

    fn start_with(args: &[&str]) -> Result<String, i32> {
        match start::<Probe>(args.iter().map(OsString::from)) {
            Start::Serve(p) => Ok(p.0),
            Start::Exit(code) => Err(code),
        }
    }

    #[test]
    fn start_answers_each_mode_with_its_exit_code() {
        let table: &[(&[&str], Result<&str, i32>)] = &[
            (&["--name", "x"], Ok("x")),
            // `check` is for --check only: serving does not run it.
            (&["--name", "bad"], Ok("bad")),
            (&[], Err(exit::USAGE)),
            (&["--nme", "x"], Err(exit::USAGE)),
            (&["--check", "--name", "x"], Err(exit::OK)),
            (&["--check", "--name", "bad"], Err(exit::USAGE)),
            (&["--check"], Err(exit::USAGE)),
            (&["--check", "--nmae", "x"], Err(exit::USAGE)),
            (&["--help"], Err(exit::OK)),
            (&["--version"], Err(exit::OK)),
        ];
        for (args, want) in table {
            let got = start_with(args);
            assert_eq!(got.as_deref().map_err(|c| *c), *want, "{args:?}");
        }
    }
}
