//! The room options (`--room`, `--room-path`, `--room-*`) as a
//! `RoomConfig`: each checked here, so a bad value is a usage error naming
//! the option before any connection. Owns only that reading.

use std::path::PathBuf;
use std::time::Duration;

use jawas_engine::{Args, Error};
use tungstenite::protocol::frame::coding::CloseCode;

use super::broker::Target;
use super::{default_host_id, valid_name, RoomConfig};

/// The room options as a `RoomConfig`; `None` without --room or --room-path.
pub fn parse(args: &Args) -> Result<Option<RoomConfig>, Error> {
    let Some((fixed, path_prefix)) = which_room(args)? else {
        return Ok(None);
    };
    let (bot, broker) = bot_and_broker(args)?;
    let (queue, slow_code) = slow_clients(args)?;
    Ok(Some(RoomConfig {
        fixed,
        path_prefix,
        dir: match args.value("room-dir") {
            Some(d) => PathBuf::from(d),
            None => std::env::temp_dir().join(format!("jawas-ws-rooms-{}", nix::unistd::getuid())),
        },
        echo: args.flag("room-echo"),
        events: args.flag("room-events"),
        bot,
        linger: match args.value("room-linger") {
            Some("keep") => None,
            Some(_) => args.parse("room-linger", jawas_engine::parse_secs)?,
            None => Some(Duration::ZERO),
        },
        max_members: args.parse("room-max", count)?,
        max_rooms: args.parse("room-max-rooms", count)?,
        rate: args.parse("room-rate", |v| match v.parse::<f64>() {
            Ok(n) if n > 0.0 && n.is_finite() => Ok(n),
            _ => Err(format!("'{v}' is not a positive number of messages")),
        })?,
        queue,
        slow_code,
        lost_close: args.flag("room-lost-close"),
        broker,
        host_id: host_id(args)?,
    }))
}

fn count(v: &str) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("'{v}' is not a positive whole number")),
    }
}

/// `--room NAME` and `--room-path PREFIX`: exactly one is set.
type Which = (Option<String>, Option<String>);

/// `--room NAME` or `--room-path PREFIX` (one of them, well formed).
fn which_room(args: &Args) -> Result<Option<Which>, Error> {
    let fixed = args.value("room").map(str::to_string);
    let path_prefix = args.value("room-path").map(str::to_string);
    match (&fixed, &path_prefix) {
        (None, None) => Ok(None),
        (Some(_), Some(_)) => Err(Error::usage("--room and --room-path exclude each other")),
        (Some(n), None) if !valid_name(n) => Err(Error::usage(format!(
            "--room '{n}': a room name is 1 to 64 letters, digits, '-' or '_'"
        ))),
        (None, Some(p)) if !p.starts_with('/') => Err(Error::usage(format!(
            "--room-path '{p}': must start with '/'"
        ))),
        _ => Ok(Some((fixed, path_prefix))),
    }
}

/// `--room-bot` (its real path) and `--room-broker`, which go together
/// only with Redis (the bot's lease).
fn bot_and_broker(args: &Args) -> Result<(Vec<String>, Option<String>), Error> {
    let bot = match args.value("room-bot") {
        Some(b) => {
            let real = std::fs::canonicalize(b)
                .map_err(|e| Error::config(format!("--room-bot '{b}': {e}")))?;
            vec![real.to_string_lossy().into_owned()]
        }
        None => Vec::new(),
    };
    let broker = args.value("room-broker").map(str::to_string);
    if let Some(url) = &broker {
        let target = Target::parse(url).map_err(|e| Error::usage(format!("--room-broker {e}")))?;
        if target.nats && !bot.is_empty() {
            return Err(Error::usage(
                "--room-bot with a NATS broker: not supported (one bot per room across hosts \
                 needs a lease, which plain NATS cannot hold; Redis can)",
            ));
        }
    }
    Ok((bot, broker))
}

/// `--room-queue` and `--room-cut`: how much may wait for a slow client,
/// and the close code it is cut with.
fn slow_clients(args: &Args) -> Result<(usize, CloseCode), Error> {
    let queue = args.parse("room-queue", count)?.unwrap_or(1 << 20);
    if queue < 4096 {
        return Err(Error::usage(format!(
            "--room-queue {queue}: at least 4096 bytes"
        )));
    }
    let code = match args.value("room-cut") {
        None | Some("1013") => CloseCode::Again,
        Some("1008") => CloseCode::Policy,
        Some(c) => return Err(Error::usage(format!("--room-cut '{c}': 1008 or 1013"))),
    };
    Ok((queue, code))
}

fn host_id(args: &Args) -> Result<String, Error> {
    let id = args
        .value("room-host-id")
        .map(str::to_string)
        .unwrap_or_else(default_host_id);
    if !valid_name(&id) || id.len() > 32 {
        return Err(Error::usage(format!(
            "--room-host-id '{id}': 1 to 32 letters, digits, '-' or '_'"
        )));
    }
    Ok(id)
}
