//! `jawasd ctl`: the command-line client of the control socket.
//!
//! Owns finding the socket (`--socket PATH`, or `[server] control` of the
//! configuration `-c FILE` names), sending one request, and printing the
//! answer for people (tables, `key=value` event lines) or as the raw JSON
//! lines (`--json`). Exit codes: 0 done, 1 jawasd answered with an error
//! (no such connection, a reload refused), 100 usage or configuration
//! error, 111 the socket could not be reached.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{json, Value};

/// How long a request may take (a reload runs the engines' checks).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(clap::Args, Debug)]
pub struct CtlArgs {
    /// The configuration whose `[server] control` names the socket.
    #[arg(short = 'c', long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// The control socket itself.
    #[arg(long, value_name = "PATH", conflicts_with = "config", global = true)]
    socket: Option<PathBuf>,
    /// Print jawasd's JSON answer (and events) as they come, one per line.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: CtlCommand,
}

#[derive(clap::Subcommand, Debug)]
enum CtlCommand {
    /// Uptime, configuration, and per service its listeners and counters.
    Status,
    /// The live connections: id, service, pid, client, local address, age.
    Connections {
        /// Only this service's.
        service: Option<String>,
    },
    /// End one connection: signal its engine's process group.
    Kill {
        /// The connection's id (see `connections`).
        id: u64,
        /// TERM (default), KILL, INT, HUP, QUIT, USR1 or USR2.
        #[arg(long, default_value = "TERM")]
        signal: String,
    },
    /// Load the configuration again (as SIGHUP) and say whether it was applied.
    Reload,
    /// Stop accepting on one service (its listeners close until the next reload).
    Drain { service: String },
    /// Follow connection events (accept, refuse, spawn, exit, reload) live.
    Events,
}

pub fn run(args: &CtlArgs) -> ExitCode {
    let path = match socket_path(args) {
        Ok(p) => p,
        Err(m) => {
            eprintln!("jawasd ctl: error: {m}");
            return ExitCode::from(crate::EXIT_CONFIG);
        }
    };
    let request = match &args.command {
        CtlCommand::Status => json!({"cmd": "status"}),
        CtlCommand::Connections { service } => json!({"cmd": "connections", "service": service}),
        CtlCommand::Kill { id, signal } => json!({"cmd": "kill", "id": id, "signal": signal}),
        CtlCommand::Reload => json!({"cmd": "reload"}),
        CtlCommand::Drain { service } => json!({"cmd": "drain", "service": service}),
        CtlCommand::Events => json!({"cmd": "events"}),
    };
    let fail = |what: &str, e: std::io::Error| {
        eprintln!(
            "jawasd ctl: error: {what} {}: {}",
            path.display(),
            crate::errno_text(&e)
        );
        ExitCode::from(crate::EXIT_TEMPORARY)
    };
    let mut stream = match UnixStream::connect(&path) {
        Ok(s) => s,
        Err(e) => return fail("unable to connect to the control socket", e),
    };
    let events = matches!(args.command, CtlCommand::Events);
    let timeout = (!events).then_some(ANSWER_TIMEOUT);
    if let Err(e) = stream
        .set_read_timeout(timeout)
        .and_then(|()| writeln!(stream, "{request}"))
    {
        return fail("unable to write to", e);
    }
    let mut lines = BufReader::new(&stream).lines();
    let first = match lines.next() {
        Some(Ok(l)) => l,
        Some(Err(e)) => return fail("no answer from", e),
        None => {
            eprintln!(
                "jawasd ctl: error: {} closed without answering",
                path.display()
            );
            return ExitCode::from(crate::EXIT_TEMPORARY);
        }
    };
    let answer: Value = match serde_json::from_str(&first) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("jawasd ctl: error: jawasd answered with something not JSON: {e}");
            return ExitCode::from(1);
        }
    };
    if args.json {
        println!("{first}");
    }
    if answer["ok"] != Value::Bool(true) {
        if !args.json {
            eprintln!(
                "jawasd ctl: error: {}",
                answer["error"].as_str().unwrap_or("failed")
            );
            for e in answer["errors"].as_array().into_iter().flatten() {
                eprintln!("{}", e.as_str().unwrap_or_default());
            }
        }
        return ExitCode::from(1);
    }
    if events {
        return follow(lines, args.json);
    }
    if !args.json {
        print!("{}", human(&args.command, &answer));
    }
    ExitCode::SUCCESS
}

/// Prints events until jawasd closes the stream (or ctl is interrupted).
fn follow(lines: impl Iterator<Item = std::io::Result<String>>, json: bool) -> ExitCode {
    let mut out = std::io::stdout().lock();
    for line in lines {
        let Ok(line) = line else { break };
        let text = if json {
            line
        } else {
            match serde_json::from_str::<Value>(&line) {
                Ok(v) => event_line(&v),
                Err(_) => line,
            }
        };
        // Flushed per event: a pipe reader sees each as it happens.
        if writeln!(out, "{text}").and_then(|()| out.flush()).is_err() {
            return ExitCode::SUCCESS;
        }
    }
    ExitCode::SUCCESS
}

/// `TIME EVENT key=value ...` for one event object.
fn event_line(v: &Value) -> String {
    let mut line = format!(
        "{} {}",
        v["time"].as_str().unwrap_or("-"),
        v["event"].as_str().unwrap_or("?")
    );
    if let Value::Object(m) = v {
        for (k, val) in m {
            if k == "time" || k == "event" {
                continue;
            }
            let text = match val {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            line.push_str(&format!(" {k}={text}"));
        }
    }
    line
}

/// The socket: `--socket`, or `[server] control` in the `-c` file
/// (relative to the file's directory, as jawasd reads it).
fn socket_path(args: &CtlArgs) -> Result<PathBuf, String> {
    if let Some(p) = &args.socket {
        return Ok(p.clone());
    }
    let Some(config) = &args.config else {
        return Err(
            "give the configuration (-c FILE) or the control socket (--socket PATH)".into(),
        );
    };
    let text = std::fs::read_to_string(config).map_err(|e| {
        format!(
            "unable to read {}: {}",
            config.display(),
            crate::errno_text(&e)
        )
    })?;
    let table: toml::Table = toml::from_str(&text)
        .map_err(|e| format!("{}: not valid TOML: {}", config.display(), e.message()))?;
    let control = table
        .get("server")
        .and_then(|s| s.get("control"))
        .and_then(|c| c.as_str())
        .ok_or_else(|| {
            format!(
                "{}: no control socket configured (set control = \"/run/jawasd.sock\" in [server])",
                config.display()
            )
        })?;
    let p = Path::new(control);
    Ok(if p.is_absolute() {
        p.to_path_buf()
    } else {
        config.parent().unwrap_or(Path::new(".")).join(p)
    })
}

/// An answer for people.
fn human(cmd: &CtlCommand, a: &Value) -> String {
    match cmd {
        CtlCommand::Status => status_text(a),
        CtlCommand::Connections { .. } => connections_text(a),
        CtlCommand::Kill { signal, .. } => format!(
            "sent SIG{} to connection {} (pid {})\n",
            signal.to_ascii_uppercase().trim_start_matches("SIG"),
            a["id"],
            a["pid"]
        ),
        CtlCommand::Reload => "reload: applied\n".into(),
        CtlCommand::Drain { service } => {
            let closed: Vec<&str> = a["closed"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str())
                .collect();
            format!("drained {service}: closed {}\n", closed.join(", "))
        }
        CtlCommand::Events => String::new(),
    }
}

fn status_text(a: &Value) -> String {
    let p = &a["process"];
    let mut out = format!(
        "jawasd {} pid {}, up {:.0}s (since {}), config {} loaded {}\n\
         engines {}, pending {}, waiting {}, control clients {}; cpu {:.2}s, fds {}/{}, rss {:.1} MB\n\n",
        a["version"].as_str().unwrap_or("?"),
        a["pid"],
        a["uptime"].as_f64().unwrap_or(0.0),
        a["started"].as_str().unwrap_or("?"),
        a["config"].as_str().unwrap_or("?"),
        a["loaded"].as_str().unwrap_or("?"),
        a["engines"],
        a["pending"],
        a["waiting"],
        a["control_clients"],
        p["cpu_seconds"].as_f64().unwrap_or(0.0),
        p["fds"],
        p["max_fds"],
        p["rss_bytes"].as_f64().unwrap_or(0.0) / 1e6,
    );
    let mut rows = vec![[
        "SERVICE",
        "RUNNING",
        "ACCEPTED",
        "REFUSED",
        "FAILED",
        "SPAWN_FAILED",
        "RATE/S",
        "LISTEN",
    ]
    .map(String::from)
    .to_vec()];
    for s in a["services"].as_array().into_iter().flatten() {
        let listen: Vec<&str> = s["listen"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str())
            .collect();
        let mut listen = listen.join(",");
        if s["drained"] == Value::Bool(true) {
            listen = "(drained)".into();
        }
        let reasons: Vec<String> = s["refused_by"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k}:{v}"))
            .collect();
        let refused = if reasons.is_empty() {
            s["refused"].to_string()
        } else {
            format!("{} ({})", s["refused"], reasons.join(" "))
        };
        rows.push(vec![
            s["name"].as_str().unwrap_or("?").to_string(),
            s["running"].to_string(),
            s["accepted"].to_string(),
            refused,
            s["failed"].to_string(),
            s["spawn_failed"].to_string(),
            format!("{:.1}", s["rate"].as_f64().unwrap_or(0.0)),
            listen,
        ]);
    }
    out.push_str(&table(&rows));
    out
}

fn connections_text(a: &Value) -> String {
    let mut rows = vec![[
        "ID", "SERVICE", "PID", "REMOTE", "LOCAL", "KIND", "AGE", "STARTED",
    ]
    .map(String::from)
    .to_vec()];
    let text = |v: &Value| v.as_str().unwrap_or("-").to_string();
    for c in a["connections"].as_array().into_iter().flatten() {
        rows.push(vec![
            c["id"].to_string(),
            text(&c["service"]),
            c["pid"].to_string(),
            text(&c["remote"]),
            text(&c["local"]),
            text(&c["kind"]),
            format!("{:.1}s", c["age"].as_f64().unwrap_or(0.0)),
            text(&c["started"]),
        ]);
    }
    table(&rows)
}

/// Left-aligned columns, two spaces apart.
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(String::len)
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let cells: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_lines() {
        let cases = [
            (
                json!({"time": "T", "event": "exit", "id": 3, "status": "exit=0"}),
                "T exit id=3 status=exit=0",
            ),
            (json!({"event": "reload", "ok": true}), "- reload ok=true"),
        ];
        for (v, want) in cases {
            assert_eq!(event_line(&v), want);
        }
    }

    #[test]
    fn tables_align() {
        let rows = vec![
            vec!["A".to_string(), "BB".to_string()],
            vec!["long".to_string(), "x".to_string()],
        ];
        assert_eq!(table(&rows), "A     BB\nlong  x\n");
    }
}
