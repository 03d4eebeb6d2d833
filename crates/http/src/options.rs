//! The command-line options every HTTP engine shares (jawas-static,
//! jawas-blog): the three timeouts of `Limits` and `--no-access-log`,
//! described once for `--help` and parsed once.
//!
//! An engine lists the `Opt`s in its own table (options tables are
//! constant slices) and calls `limits` and `access_log` from its `init`.

use jawas_engine::{join, parse_secs, Args, Error, Opt};

use crate::Limits;

pub const IDLE_TIMEOUT: Opt = Opt::value(
    "idle-timeout",
    "SECS",
    "Close a kept-alive connection idle for SECS (default 15).",
);
pub const REQUEST_TIMEOUT: Opt = Opt::value(
    "request-timeout",
    "SECS",
    "Answer 408 to a request not complete within SECS (default 30).",
);
pub const SEND_TIMEOUT: Opt = Opt::value(
    "send-timeout",
    "SECS",
    "Close the connection when the client takes no bytes for SECS \
     (default 60).",
);
pub const NO_ACCESS_LOG: Opt = Opt::flag("no-access-log", "Write no access log lines.");

/// `Limits` from `--idle-timeout`, `--request-timeout` and
/// `--send-timeout` (each defaulting as `Limits::default`); every bad
/// value is reported, not only the first.
pub fn limits(args: &Args) -> Result<Limits, Error> {
    let (idle, (request, send)) = join(
        args.parse("idle-timeout", parse_secs),
        join(
            args.parse("request-timeout", parse_secs),
            args.parse("send-timeout", parse_secs),
        ),
    )?;
    let defaults = Limits::default();
    Ok(Limits {
        idle: idle.unwrap_or(defaults.idle),
        request: request.unwrap_or(defaults.request),
        send: send.unwrap_or(defaults.send),
        ..defaults
    })
}

/// Whether to write access log lines (`--no-access-log` absent).
pub fn access_log(args: &Args) -> bool {
    !args.flag("no-access-log")
}
