//! jawasd: a super-server in the inetd tradition.
//!
//! This file is the thin front: command line, logger, and the one place
//! where errors become exit codes and one-line messages. Exit codes follow
//! s6: 0 done, 100 usage or configuration error (permanent), 111 temporary
//! system failure (such as a port in use).

mod acl;
mod config;
mod server;
mod spawn;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use crate::config::{Config, Env};

#[derive(Parser, Debug)]
#[command(
    name = "jawasd",
    version,
    about = "Super-server: one engine process per connection"
)]
struct Cli {
    /// The TOML configuration file.
    #[arg(short = 'c', long, value_name = "FILE")]
    config: PathBuf,
    /// Check the configuration and exit: 0 when valid, 100 with every error otherwise.
    #[arg(long)]
    check: bool,
    /// error, warn, info (default), debug or trace; RUST_LOG overrides per module.
    #[arg(long, value_name = "LEVEL")]
    log_level: Option<log::LevelFilter>,
}

const EXIT_CONFIG: u8 = 100;
const EXIT_TEMPORARY: u8 = 111;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_CONFIG } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    spawn::close_inherited_fds();
    spawn::ensure_std_fds();
    init_logger(cli.log_level);

    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.to_path_buf()));
    let path_var = std::env::var_os("PATH");
    let env = Env {
        exe_dir: exe_dir.as_deref(),
        path_var: path_var.as_deref(),
    };
    let config = match Config::load(&cli.config, &env) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if cli.check {
        println!(
            "{}: ok ({} service{})",
            cli.config.display(),
            config.services.len(),
            if config.services.len() == 1 { "" } else { "s" }
        );
        return ExitCode::SUCCESS;
    }

    if let Err(e) = spawn::prepare_signals(&server::HANDLED_SIGNALS) {
        eprintln!("jawasd: error: unable to block signals: {}", errno_text(&e));
        return ExitCode::from(EXIT_TEMPORARY);
    }
    let mut server = match server::Server::new(config, exe_dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("jawasd: error: {e}");
            return ExitCode::from(EXIT_TEMPORARY);
        }
    };
    server.log_ready();
    match server.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jawasd: error: event loop failed: {}", errno_text(&e));
            ExitCode::from(EXIT_TEMPORARY)
        }
    }
}

/// One line per event on stderr: time, level, message.
fn init_logger(level: Option<log::LevelFilter>) {
    let mut builder = env_logger::Builder::new();
    builder.filter_level(level.unwrap_or(log::LevelFilter::Info));
    if level.is_none() {
        if let Ok(spec) = std::env::var("RUST_LOG") {
            builder.parse_filters(&spec);
        }
    }
    // The ready line is for supervisors and tests: it is written at every level.
    builder.filter(Some(server::READY_TARGET), log::LevelFilter::Info);
    builder.format(|buf, record| {
        writeln!(
            buf,
            "{} jawasd {} {}",
            buf.timestamp_millis(),
            record.level().as_str().to_ascii_lowercase(),
            record.args()
        )
    });
    builder.init();
}

/// An OS error as a short lowercase phrase: "permission denied".
pub fn errno_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).desc().to_ascii_lowercase(),
        None => e.to_string(),
    }
}

/// Makes untrusted bytes safe for one log line: printable ASCII stays,
/// everything else becomes `\xNN`, and the result is cut at `max` bytes.
pub fn escape(bytes: &[u8], max: usize) -> String {
    let mut out = String::with_capacity(bytes.len().min(max));
    for &b in bytes {
        if out.len() >= max {
            out.push_str("...");
            break;
        }
        match b {
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            b'\t' => out.push_str("\\t"),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn escape_cases() {
        let cases: [(&[u8], usize, &str); 4] = [
            (b"plain text", 100, "plain text"),
            (b"bell\x07 and \x1b[31m", 100, "bell\\x07 and \\x1b[31m"),
            (b"back\\slash\ttab", 100, "back\\\\slash\\ttab"),
            (b"0123456789", 4, "0123..."),
        ];
        for (input, max, want) in cases {
            assert_eq!(super::escape(input, max), want);
        }
    }
}
