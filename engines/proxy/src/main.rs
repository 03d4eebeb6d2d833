//! jawas-proxy: forwards each client connection to another server, as a
//! TCP relay (`tcp`: splice(2) both ways, half-close, PROXY header) or as
//! an HTTP/1.1 reverse proxy (`http`: keep-alive, forwarding fields,
//! streamed bodies, Upgrade tunnels). One process per client connection,
//! holding that client's upstream connection for its life.
//!
//! This file owns the command line: the options table, the mode, and
//! turning options into each mode's `Config`. `upstream` connects,
//! `relay` moves bytes, `tcp` and `http` are the modes, `rewrite` is what
//! the HTTP proxy changes in messages, `proxy_header` encodes PROXY v1/v2.

mod http;
mod proxy_header;
mod relay;
mod rewrite;
mod tcp;
mod upstream;

use std::time::Duration;

use jawas_engine::{join, parse_secs, Args, Connection, Engine, Error, Opt};
use jawas_http::Limits;

use upstream::{Balance, Target, Upstreams};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const TCP_IDLE: Duration = Duration::from_secs(600);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);
const BODY_TIMEOUT: Duration = Duration::from_secs(60);

enum Proxy {
    Tcp(tcp::Config),
    Http(Box<http::Config>),
}

/// Options only `http` mode reads.
const HTTP_ONLY: &[&str] = &[
    "host",
    "strip-prefix",
    "trust-forwarded",
    "response-timeout",
    "body-timeout",
    "request-timeout",
    "send-timeout",
    "max-body",
    "no-access-log",
];

impl Engine for Proxy {
    const NAME: &'static str = "jawas-proxy";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const USAGE: &'static [&'static str] = &[
        "tcp --to HOST:PORT [--to HOST:PORT]...",
        "http --to HOST:PORT|SOCKET [--to ...]...",
    ];
    const ABOUT: &'static str = "\
Forwards the connection to an upstream server. In tcp mode the bytes are
relayed both ways unchanged (splice(2), zero copy), each side's end of
input is passed on as a half-close, and the connection ends when both sides
are done. In http mode requests are read, passed upstream with
X-Forwarded-For/-Proto/-Host and Forwarded added and hop-by-hop fields
removed, and responses streamed back; one upstream connection serves the
whole client connection. When an upstream refuses, the next --to is tried.
An upstream is HOST:PORT, [IPv6]:PORT, or (http) a Unix socket path.";
    const OPTIONS: &'static [Opt] = &[
        Opt::value(
            "to",
            "HOST:PORT",
            "An upstream (repeatable; tried in order when one refuses). A value with a '/' \
             is a Unix socket path.",
        ),
        Opt::value(
            "balance",
            "order|round-robin",
            "Which upstream a connection tries first: always the first (order, the \
             default) or the next one per connection (round-robin).",
        ),
        Opt::value(
            "connect-timeout",
            "SECS",
            "Give up on an upstream address that has not accepted after SECS (default 5).",
        ),
        Opt::value(
            "idle-timeout",
            "SECS",
            "Close a relay (tcp mode, or an upgraded connection in http mode) when no byte \
             has moved either way for SECS (default 600).",
        ),
        Opt::value(
            "send-proxy",
            "v1|v2",
            "Start each upstream connection with a PROXY protocol header naming the client \
             (HAProxy's send-proxy / send-proxy-v2).",
        ),
        Opt::value(
            "host",
            "NAME",
            "http: send Host: NAME upstream instead of the client's Host.",
        ),
        Opt::value(
            "strip-prefix",
            "PREFIX[=REPL]",
            "http: serve only paths under PREFIX (others get 404) and send them upstream \
             without it, or with REPL in its place; Location headers get PREFIX back.",
        ),
        Opt::flag(
            "trust-forwarded",
            "http: keep the client's X-Forwarded-* and Forwarded fields and append to them \
             (for a proxy in front); by default they are dropped and replaced.",
        ),
        Opt::value(
            "response-timeout",
            "SECS",
            "http: answer 504 when the upstream has not sent a response head SECS after \
             the request (default 60).",
        ),
        Opt::value(
            "body-timeout",
            "SECS",
            "http: cut off a response whose body pauses longer than SECS, and give up on \
             an upstream that takes no request bytes for SECS (default 60).",
        ),
        jawas_http::options::REQUEST_TIMEOUT,
        jawas_http::options::SEND_TIMEOUT,
        jawas_http::options::NO_ACCESS_LOG,
        Opt::value(
            "max-body",
            "BYTES",
            "http: refuse request bodies over BYTES with 413 (default: no limit).",
        ),
    ];

    fn init(args: &Args) -> Result<Self, Error> {
        let mode = mode(args)?;
        // Both halves are parsed before either fails, so --check names
        // every problem.
        let specific = match mode {
            Mode::Tcp => tcp_only(args).map(|()| None),
            Mode::Http => http_config(args).map(Some),
        };
        let ((targets, (balance, (connect_timeout, (send_proxy, idle)))), http) = join(
            join(
                args.parse_all("to", Target::parse),
                join(
                    args.parse("balance", Balance::parse),
                    join(
                        args.parse("connect-timeout", parse_secs),
                        join(
                            args.parse("send-proxy", proxy_header::Version::parse),
                            args.parse("idle-timeout", parse_secs),
                        ),
                    ),
                ),
            ),
            specific,
        )?;
        if targets.is_empty() {
            return Err(Error::usage("no upstream given (--to HOST:PORT)"));
        }
        let upstreams = Upstreams {
            targets,
            balance: balance.unwrap_or(Balance::Order),
            connect_timeout: connect_timeout.unwrap_or(CONNECT_TIMEOUT),
        };
        let idle = Some(idle.unwrap_or(TCP_IDLE));
        Ok(match http {
            None => Proxy::Tcp(tcp::Config {
                upstreams,
                send_proxy,
                idle,
            }),
            Some(finish) => Proxy::Http(Box::new(finish(upstreams, send_proxy, idle))),
        })
    }

    fn serve(&mut self, conn: Connection) -> Result<(), Error> {
        match self {
            Proxy::Tcp(cfg) => tcp::serve(cfg, conn),
            Proxy::Http(cfg) => http::serve(cfg, conn),
        }
    }
}

#[derive(Clone, Copy)]
enum Mode {
    Tcp,
    Http,
}

/// The one positional argument.
fn mode(args: &Args) -> Result<Mode, Error> {
    match args.positionals() {
        [m] if m == "tcp" => Ok(Mode::Tcp),
        [m] if m == "http" => Ok(Mode::Http),
        [] => Err(Error::usage("no mode given: tcp or http")),
        [m] => Err(Error::usage(format!("unknown mode '{m}': tcp or http"))),
        [_, extra, ..] => Err(Error::usage(format!("unexpected argument '{extra}'"))),
    }
}

/// In tcp mode: no http option, no Unix socket.
fn tcp_only(args: &Args) -> Result<(), Error> {
    let mut problems = Vec::new();
    for opt in HTTP_ONLY {
        if args.iter().any(|(n, _)| n == *opt) {
            problems.push(Error::usage(format!("--{opt} is for http mode only")));
        }
    }
    for v in args.values("to") {
        if let Ok(Target::Unix(p)) = Target::parse(v) {
            problems.push(Error::usage(format!(
                "--to '{}': tcp mode relays to HOST:PORT only",
                p.display()
            )));
        }
    }
    Error::collect(problems)
}

/// What http mode reads besides the common options (every bad value
/// reported), as the step that completes its `Config` with them.
type HttpFinish =
    Box<dyn FnOnce(Upstreams, Option<proxy_header::Version>, Option<Duration>) -> http::Config>;

fn http_config(args: &Args) -> Result<HttpFinish, Error> {
    let host = args.value("host").map(str::to_string);
    let host_ok = match &host {
        Some(h) if jawas_http::split_host(h).is_none() => Err(Error::usage(format!(
            "--host '{h}': not a valid host[:port]"
        ))),
        _ => Ok(()),
    };
    let max_body = args.parse("max-body", |v| {
        v.parse::<u64>()
            .map_err(|_| "not a number of bytes".to_string())
    });
    let (prefix, (shared, (max_body, (response_timeout, (body_timeout, ()))))) = join(
        args.parse("strip-prefix", rewrite::Prefix::parse),
        join(
            jawas_http::options::limits(args),
            join(
                max_body,
                join(
                    args.parse("response-timeout", parse_secs),
                    join(args.parse("body-timeout", parse_secs), host_ok),
                ),
            ),
        ),
    )?;
    let limits = Limits {
        request: shared.request,
        send: shared.send,
        max_body: max_body.unwrap_or(u64::MAX),
        ..Limits::default()
    };
    let trust_forwarded = args.flag("trust-forwarded");
    let access_log = jawas_http::options::access_log(args);
    Ok(Box::new(move |upstreams, send_proxy, idle| http::Config {
        upstreams,
        send_proxy,
        host,
        prefix,
        trust_forwarded,
        response_timeout: response_timeout.unwrap_or(RESPONSE_TIMEOUT),
        body_timeout: body_timeout.unwrap_or(BODY_TIMEOUT),
        idle,
        limits,
        access_log,
    }))
}

fn main() {
    jawas_engine::run::<Proxy>()
}
