//! jawas-blog: a blog from a directory of Markdown posts, one process per
//! connection, every page sent from an on-disk cache.
//!
//! Owns the command line: the engine (`--site DIR`, served through the
//! engine runtime, jawas-engine, and jawas-http) and the subcommands
//! `build`, `check`, `new` and `import-ghost`, recognised by the first
//! argument before the runtime sees argv. What a site is made of is the
//! content side's (`site`); the cache is `store`'s; HTTP answers are
//! `serve`'s; `build` output is `build`'s. Exit codes as every engine's:
//! 0 done, 1 peer broke protocol (or, for `check`, findings), 100 usage or
//! configuration error, 111 temporary system failure.

mod build;
mod ghost;
mod serve;
mod site;
mod store;

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use jawas_engine::{exit, join, parse_secs, Args, Connection, Engine, Error, Opt};
use jawas_http::{options, Conn, Limits};

const OPTIONS: &[Opt] = &[
    Opt::value("site", "DIR", "Serve the site in DIR (required)."),
    Opt::value(
        "cache",
        "DIR",
        "Keep the rendered site in DIR (default DIR/.jawas-cache under the \
         site; a read-only site directory needs this).",
    ),
    Opt::flag("drafts", "Show posts with draft = true."),
    Opt::value(
        "period",
        "SECS",
        "Look at the sources for changes at most once per SECS across every \
         process sharing the cache (default 1).",
    ),
    options::IDLE_TIMEOUT,
    options::REQUEST_TIMEOUT,
    options::SEND_TIMEOUT,
    options::NO_ACCESS_LOG,
];

/// The engine: the store and what answers requests from it, opened by
/// `init` in every connection's process.
struct Blog {
    server: serve::Server,
    limits: Limits,
    access_log: bool,
}

impl Engine for Blog {
    const NAME: &'static str = "jawas-blog";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const USAGE: &'static [&'static str] = &["--site DIR"];
    const ABOUT: &'static str = "\
Serves the blog in DIR (site.toml, posts/, pages/, static/, templates/) over
HTTP/1.1 on the connection on fds 0 and 1: the index and its pages, posts,
pages, tags, authors, feeds (/rss/ and /atom.xml), sitemap, search
(/search?q=), static files, aliases (301) and a themed 404. Pages come from
a cache on disk, rebuilt by the first request that finds the sources
changed (looked at once per period) and only for what changed.

Subcommands, given first (each has its own --help):
  jawas-blog build --site DIR --out OUT    write the whole site as files
  jawas-blog check --site DIR              print each problem in the sources
                                           as FILE:LINE: message (exit 1)
  jawas-blog new --site DIR TITLE          write a post skeleton, print its
                                           path
  jawas-blog import-ghost EXPORT.json --site DIR
                                           a Ghost export as a site";
    const OPTIONS: &'static [Opt] = OPTIONS;

    fn init(args: &Args) -> Result<Self, Error> {
        let extra = match args.positionals().first() {
            Some(a) => Err(Error::usage(format!("unexpected argument '{a}'"))),
            None => Ok(()),
        };
        let period = args.parse("period", parse_secs);
        let (store, ((period, limits), ())) = join(
            open_store(args, Duration::from_secs(1)),
            join(join(period, options::limits(args)), extra),
        )?;
        let store = match period {
            Some(p) => store.with_period(p),
            None => store,
        };
        Ok(Blog {
            server: serve::Server::new(store),
            limits,
            access_log: options::access_log(args),
        })
    }

    /// `--check` also reads site.toml: a site whose settings cannot be
    /// read or parsed would answer every request with 500. (Posts are
    /// `jawas-blog check`'s job: reading them all takes too long here.)
    fn check(&self) -> Result<(), Error> {
        let dir = self.server.site_dir();
        let (_, findings) = site::content::config::Config::load(dir);
        findings
            .into_iter()
            .map(|f| Error::config(f.to_string()))
            .reduce(Error::and)
            .map_or(Ok(()), Err)
    }

    fn serve(&mut self, conn: Connection) -> Result<(), Error> {
        let server = &self.server;
        let mut conn = Conn::from_connection(conn, self.limits.clone());
        if !self.access_log {
            conn.log = jawas_http::AccessLog::Off;
        }
        jawas_engine::status(jawas_http::serve(&mut conn, |conn, req| {
            let resp = server.respond(&req, &conn.log);
            conn.send(Some(&req), resp)
        }))
    }
}

/// `--site DIR` (required, a directory) and the cache (`--cache DIR` or
/// the default under the site), opened.
fn open_store(args: &Args, period: Duration) -> Result<store::Store, Error> {
    let site = site_dir(args.value("site"))?;
    let (cache, given) = match args.value("cache") {
        Some(c) => (PathBuf::from(c), true),
        None => (site.join(".jawas-cache"), false),
    };
    let store = store::Store::open(&site, &cache, args.flag("drafts")).map_err(|why| {
        if given {
            Error::config(format!("--cache: {why}"))
        } else {
            Error::config(format!(
                "{why} (the default cache is inside the site directory; \
                 for a read-only site give --cache DIR somewhere writable)"
            ))
        }
    })?;
    Ok(store.with_period(period))
}

/// `--site DIR`: required, an existing directory; made absolute.
fn site_dir(site: Option<&str>) -> Result<PathBuf, Error> {
    let site = site.ok_or_else(|| Error::usage("--site DIR is required"))?;
    let path = std::fs::canonicalize(site)
        .map_err(|e| Error::config(format!("--site '{site}': {}", os_text(&e))))?;
    if !path.is_dir() {
        return Err(Error::config(format!("--site '{site}': not a directory")));
    }
    Ok(path)
}

/// An I/O error's text without the "(os error N)" Rust appends.
fn os_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

fn main() {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let sub = args.first().and_then(|a| a.to_str()).unwrap_or("");
    let code = match sub {
        "build" => subcommand::<build::Build>(&args[1..]),
        "check" => subcommand::<Check>(&args[1..]),
        "new" => subcommand::<New>(&args[1..]),
        "import-ghost" => ghost::main(&args[1..]),
        _ => jawas_engine::run::<Blog>(),
    };
    std::process::exit(code)
}

/// A subcommand: its own options table (and so its own `--help`), run
/// once, with the same error reporting as the engine.
pub trait Subcommand {
    const NAME: &'static str;
    const USAGE: &'static [&'static str];
    const ABOUT: &'static str;
    const OPTIONS: &'static [Opt];
    /// The exit code.
    fn run(args: &Args) -> Result<i32, Error>;
}

fn subcommand<S: Subcommand>(args: &[OsString]) -> i32 {
    let spec = jawas_engine::Spec {
        name: S::NAME,
        version: env!("CARGO_PKG_VERSION"),
        usage: S::USAGE,
        about: S::ABOUT,
        options: S::OPTIONS,
    };
    let (mode, parsed) = match jawas_engine::parse_args(&spec, args.iter().cloned()) {
        Ok(p) => p,
        Err(e) => return jawas_engine::report(S::NAME, &e),
    };
    let print = |text: &str| {
        use std::io::Write;
        match std::io::stdout().write_all(text.as_bytes()) {
            Ok(()) => exit::OK,
            Err(_) => exit::SYSTEM,
        }
    };
    match mode {
        jawas_engine::Mode::Help => print(&jawas_engine::help_text(&spec)),
        jawas_engine::Mode::Version => print(&format!("jawas-blog {}\n", spec.version)),
        jawas_engine::Mode::Check => jawas_engine::report(
            S::NAME,
            &Error::usage("--check is for the engine, not a subcommand"),
        ),
        jawas_engine::Mode::Serve => match S::run(&parsed) {
            Ok(code) => code,
            Err(e) => jawas_engine::report(S::NAME, &e),
        },
    }
}

/// `jawas-blog check --site DIR`.
struct Check;

impl Subcommand for Check {
    const NAME: &'static str = "jawas-blog check";
    const USAGE: &'static [&'static str] = &["--site DIR"];
    const ABOUT: &'static str = "\
Reads every source of the site in DIR and prints each problem found as
FILE:LINE: message on stdout. Exits 0 when there is none, 1 when there are.";
    const OPTIONS: &'static [Opt] = &[Opt::value("site", "DIR", "The site (required).")];

    fn run(args: &Args) -> Result<i32, Error> {
        no_positionals(args)?;
        let site = site_dir(args.value("site"))?;
        let findings = site::check(&site);
        let mut out = String::new();
        for f in &findings {
            out.push_str(&format!("{f}\n"));
        }
        use std::io::Write;
        let _ = std::io::stdout().write_all(out.as_bytes());
        Ok(if findings.is_empty() { exit::OK } else { 1 })
    }
}

/// `jawas-blog new --site DIR TITLE`.
struct New;

impl Subcommand for New {
    const NAME: &'static str = "jawas-blog new";
    const USAGE: &'static [&'static str] = &["--site DIR TITLE"];
    const ABOUT: &'static str = "\
Writes a skeleton post titled TITLE (a draft dated now) to DIR/posts/ and
prints its path. An existing file is never overwritten.";
    const OPTIONS: &'static [Opt] = &[Opt::value("site", "DIR", "The site (required).")];

    fn run(args: &Args) -> Result<i32, Error> {
        let title = match args.positionals() {
            [t] if !t.trim().is_empty() => t.clone(),
            [] => return Err(Error::usage("the post's TITLE is required")),
            [_] => return Err(Error::usage("TITLE is empty")),
            [_, extra, ..] => return Err(Error::usage(format!("unexpected argument '{extra}'"))),
        };
        let site = site_dir(args.value("site"))?;
        let path = site::new_post(&site, &title, std::time::SystemTime::now()).map_err(|e| {
            Error::config(format!("{}: {}", site.join("posts").display(), os_text(&e)))
        })?;
        println!("{}", path.display());
        Ok(exit::OK)
    }
}

fn no_positionals(args: &Args) -> Result<(), Error> {
    match args.positionals().first() {
        Some(a) => Err(Error::usage(format!("unexpected argument '{a}'"))),
        None => Ok(()),
    }
}

/// Used by `build`: the store of `--site` with `--cache` or its default.
pub fn store_for(args: &Args) -> Result<store::Store, Error> {
    open_store(args, Duration::from_secs(1))
}
