//! jawasd: a super-server in the inetd tradition.
//!
//! This file is the thin front: command line, logger, and the one place
//! where errors become exit codes and one-line messages. Exit codes follow
//! s6: 0 done, 100 usage or configuration error (permanent), 111 temporary
//! system failure (such as a port in use).

mod acl;
mod activation;
mod admission;
mod capture;
mod clock;
mod config;
mod control;
mod ctl;
mod engine_check;
mod events;
mod fdpass;
mod journal;
mod launcher;
mod listeners;
mod logsink;
mod man;
mod notify;
mod privilege;
mod proxy;
mod reaper;
mod registry;
mod server;
mod sessions;
mod spawn;
mod stats;
mod syslog;
mod timefmt;
mod xinetd;
mod zygote;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, Env};

#[derive(Parser, Debug)]
#[command(
    name = "jawasd",
    version,
    about = "Super-server: one engine process per connection",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    /// The TOML configuration file.
    #[arg(
        short = 'c',
        long,
        value_name = "FILE",
        required_unless_present = "xinetd"
    )]
    config: Option<PathBuf>,
    /// Run straight from an xinetd configuration file instead (xinetd's `-f FILE`).
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    xinetd: Option<PathBuf>,
    /// Check the configuration and exit: 0 when valid, 100 with every finding otherwise.
    #[arg(long)]
    check: bool,
    /// Timestamps of the log in UTC (default) or local time; RFC 3339 either way.
    #[arg(long, value_name = "ZONE", value_parser = ["utc", "local"])]
    log_time: Option<String>,
    /// `text` (default): TIME jawasd LEVEL MESSAGE; `json`: one JSON object per line.
    #[arg(long, value_name = "FORMAT", value_parser = ["text", "json"])]
    log_format: Option<String>,
    /// error, warn, info (default), debug or trace; RUST_LOG overrides per module.
    #[arg(long, value_name = "LEVEL")]
    log_level: Option<log::LevelFilter>,
    /// Write jawasd's pid to FILE at start and remove it at exit.
    #[arg(long, value_name = "FILE")]
    pidfile: Option<PathBuf>,
    /// Append the log to FILE instead of stderr (xinetd's `-filelog`).
    #[arg(long, value_name = "FILE")]
    log_file: Option<PathBuf>,
    /// Send the log to syslog(3) with this facility (xinetd's `-syslog`).
    #[arg(long, value_name = "FACILITY")]
    syslog: Option<String>,
    /// With --xinetd: keep running even when no service is left (xinetd's `-stayalive`).
    #[arg(long)]
    stayalive: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the native TOML equivalent of an xinetd configuration.
    ImportXinetd {
        /// The xinetd configuration (e.g. /etc/xinetd.conf).
        file: PathBuf,
    },
    /// Print a manual page (roff): jawasd(8), or jawasd.toml(5).
    Man {
        /// `jawasd` (the default) or `jawasd.toml`.
        #[arg(default_value = "jawasd")]
        page: String,
    },
    /// Print a shell completion script: bash, zsh, fish, elvish or powershell.
    Completions { shell: clap_complete::Shell },
    /// Ask a running jawasd through its control socket (`[server] control`).
    Ctl(ctl::CtlArgs),
}

/// `jawasd man [PAGE]`.
fn print_man(page: &str) -> ExitCode {
    use clap::CommandFactory;
    let text = match page {
        "jawasd" | "jawasd.8" => {
            let mut buf = Vec::new();
            let cmd = Cli::command().name("jawasd");
            if clap_mangen::Man::new(cmd)
                .section("8")
                .render(&mut buf)
                .is_err()
            {
                return ExitCode::from(EXIT_TEMPORARY);
            }
            String::from_utf8_lossy(&buf).into_owned()
        }
        "jawasd.toml" | "jawasd.toml.5" => man::config_page(env!("CARGO_PKG_VERSION")),
        other => {
            eprintln!("jawasd: error: no manual page '{other}' (jawasd, jawasd.toml)");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match std::io::stdout().write_all(text.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(EXIT_TEMPORARY),
    }
}

pub const EXIT_CONFIG: u8 = 100;
pub const EXIT_TEMPORARY: u8 = 111;

/// The services database xinetd consults for listed services.
const SERVICES_DB: &str = "/etc/services";

/// Rewrites xinetd's single-dash options into ours, so init scripts and
/// units written for xinetd keep working: `-f FILE`, `-dontfork`,
/// `-stayalive`, `-pidfile FILE`, `-filelog FILE`, `-syslog FACILITY`, `-d`.
fn xinetd_args(args: Vec<String>) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    for a in args {
        match a.as_str() {
            "-f" => out.push("--xinetd".into()),
            "-dontfork" => {} // jawasd always runs in the foreground.
            "-stayalive" => out.push("--stayalive".into()),
            "-pidfile" => out.push("--pidfile".into()),
            "-filelog" => out.push("--log-file".into()),
            "-syslog" => out.push("--syslog".into()),
            "-d" => out.extend(["--log-level".into(), "debug".into()]),
            _ => out.push(a),
        }
    }
    out
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse_from(xinetd_args(std::env::args().collect())) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_CONFIG } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match &cli.command {
        Some(Command::ImportXinetd { file }) => return import_xinetd(file),
        Some(Command::Man { page }) => return print_man(page),
        Some(Command::Ctl(args)) => return ctl::run(args),
        Some(Command::Completions { shell }) => {
            use clap::CommandFactory;
            let mut cmd = Cli::command();
            clap_complete::generate(*shell, &mut cmd, "jawasd", &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        None => {}
    }
    // Sockets systemd passes (socket activation) are adopted first; every
    // other inherited descriptor is closed.
    let passed = activation::adopt();
    spawn::close_inherited_fds(3 + passed);
    let notifier = notify::Notifier::from_env();
    spawn::ensure_std_fds();
    spawn::raise_nofile();
    if let Err(m) = init_logger(&cli) {
        eprintln!("jawasd: error: {m}");
        return ExitCode::from(EXIT_CONFIG);
    }

    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.to_path_buf()));
    let path_var = std::env::var_os("PATH");
    let env = Env {
        exe_dir: exe_dir.as_deref(),
        path_var: path_var.as_deref(),
    };
    let loader: server::Loader = match (&cli.config, &cli.xinetd) {
        (Some(path), _) => {
            let path = path.clone();
            Box::new(move |env: &Env<'_>| Config::load(&path, env).map_err(|e| e.to_string()))
        }
        (None, Some(path)) => {
            let path = path.clone();
            let stayalive = cli.stayalive;
            Box::new(move |env: &Env<'_>| {
                let (config, findings) = load_xinetd(&path, env);
                for f in shown(&path, &findings) {
                    log::warn!("{f}");
                }
                match config {
                    Some(c) if !c.services.is_empty() || stayalive => Ok(c),
                    Some(_) => Err(format!(
                        "{}: no service left to run (use -stayalive to run anyway)",
                        path.display()
                    )),
                    None => Err(format!("{}: unusable configuration", path.display())),
                }
            })
        }
        (None, None) => unreachable!("clap requires one of them"),
    };

    if cli.check {
        return check(&cli, &env);
    }
    let config = match loader(&env) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };

    if let Err(e) = spawn::prepare_signals(&server::HANDLED_SIGNALS) {
        eprintln!("jawasd: error: unable to block signals: {}", errno_text(&e));
        return ExitCode::from(EXIT_TEMPORARY);
    }
    let mut server = match server::Server::new(config, exe_dir.clone(), loader, notifier) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("jawasd: error: {e}");
            return ExitCode::from(EXIT_TEMPORARY);
        }
    };
    if let Some(p) = &cli.pidfile {
        if let Err(e) = std::fs::write(p, format!("{}\n", std::process::id())) {
            eprintln!(
                "jawasd: error: unable to write {}: {}",
                p.display(),
                errno_text(&e)
            );
            return ExitCode::from(EXIT_TEMPORARY);
        }
    }
    server.log_ready();
    // Before the first connection is accepted (the loop has not run).
    server.drop_privileges();
    server.notify_ready();
    server::upgrade::tell_parent_ready();
    for addr in activation::unclaimed() {
        log::warn!("socket activation: no service listens on {addr}; that socket is left unused");
    }
    let result = server.run();
    if let Some(p) = &cli.pidfile {
        let _ = std::fs::remove_file(p);
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jawasd: error: event loop failed: {}", errno_text(&e));
            ExitCode::from(EXIT_TEMPORARY)
        }
    }
}

/// `--check`: every finding, then 0 only if there was none.
fn check(cli: &Cli, env: &Env<'_>) -> ExitCode {
    let (path, services, findings) = match (&cli.config, &cli.xinetd) {
        (Some(path), _) => match Config::load(path, env) {
            Ok(c) => (path, c.services.len(), Vec::new()),
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(EXIT_CONFIG);
            }
        },
        (None, Some(path)) => {
            let (config, findings) = load_xinetd(path, env);
            (
                path,
                config.map(|c| c.services.len()).unwrap_or(0),
                findings,
            )
        }
        (None, None) => unreachable!("clap requires one of them"),
    };
    for f in shown(path, &findings) {
        eprintln!("{f}");
    }
    if !findings.is_empty() {
        eprintln!(
            "{}: {} finding(s), {services} service(s) would run",
            path.display(),
            findings.len()
        );
        return ExitCode::from(EXIT_CONFIG);
    }
    println!(
        "{}: ok ({services} service{})",
        path.display(),
        if services == 1 { "" } else { "s" }
    );
    ExitCode::SUCCESS
}

/// The findings worth printing: the first `REPORTED_ERRORS`, then a count
/// of the rest, so a file with thousands of errors neither floods the log
/// nor holds up a reload while it is written out.
fn shown<'a>(
    path: &Path,
    findings: &'a [String],
) -> impl Iterator<Item = std::borrow::Cow<'a, str>> {
    let limit = config::limits::REPORTED_ERRORS;
    let more = findings.len().saturating_sub(limit);
    let rest = (more > 0).then(|| format!("{}: and {more} more findings", path.display()));
    findings
        .iter()
        .take(limit)
        .map(|f| std::borrow::Cow::Borrowed(f.as_str()))
        .chain(rest.map(std::borrow::Cow::Owned))
}

/// Reads an xinetd configuration: its findings (with the user's files and
/// lines), and the services that can run.
fn load_xinetd(path: &Path, env: &Env<'_>) -> (Option<Config>, Vec<String>) {
    let t = xinetd::translate(path, Path::new(SERVICES_DB));
    let mut findings: Vec<String> = t.findings.iter().map(|f| f.to_string()).collect();
    let at = |line: usize| -> String {
        t.origin_of(line)
            .map(|o| o.to_string())
            .unwrap_or_else(|| path.display().to_string())
    };
    match Config::parse_lenient(&t.toml, path, env) {
        Ok((mut config, dropped)) => {
            // Point at the user's xinetd file, not the translation.
            for svc in &mut config.services {
                svc.listen_at = svc.listen_lines.iter().map(|l| at(*l)).collect();
            }
            for e in dropped {
                findings.push(format!(
                    "{}: error: {} (service left out)",
                    at(e.line),
                    e.message
                ));
            }
            (Some(config), findings)
        }
        Err(errors) => {
            for e in errors.errors {
                findings.push(format!("{}: error: {}", at(e.line), e.message));
            }
            (None, findings)
        }
    }
}

/// `jawasd import-xinetd FILE`: the TOML on stdout, findings on stderr.
fn import_xinetd(path: &Path) -> ExitCode {
    let t = xinetd::translate(path, Path::new(SERVICES_DB));
    for f in &t.findings {
        eprintln!("{f}");
    }
    print!("{}", t.toml);
    if t.findings
        .iter()
        .any(|f| f.severity == xinetd::Severity::Error)
    {
        ExitCode::from(EXIT_CONFIG)
    } else {
        ExitCode::SUCCESS
    }
}

/// One line per event on stderr (or a file, or syslog): time, level, message.
fn init_logger(cli: &Cli) -> Result<(), String> {
    timefmt::set_zone(match cli.log_time.as_deref() {
        Some("local") => timefmt::Zone::Local,
        _ => timefmt::Zone::Utc,
    });
    let level = cli.log_level;
    let mut builder = env_logger::Builder::new();
    builder.filter_level(level.unwrap_or(log::LevelFilter::Info));
    if level.is_none() {
        if let Ok(spec) = std::env::var("RUST_LOG") {
            builder.parse_filters(&spec);
        }
    }
    // Plain text: no colour codes to emit or strip on every line.
    builder.write_style(env_logger::WriteStyle::Never);
    // The ready line is for supervisors and tests: it is written at every level.
    builder.filter(Some(server::READY_TARGET), log::LevelFilter::Info);
    if let Some(facility) = &cli.syslog {
        let (facility, _) = config::parse_syslog(&format!("{facility}.info")).ok_or_else(|| {
            format!("--syslog {facility}: not a syslog facility such as daemon or local0")
        })?;
        // As xinetd does: a log that would vanish is a start-up error, not
        // a silent loss of every line.
        syslog::init(facility)?;
        builder.format(|buf, record| {
            writeln!(
                buf,
                "{} {}",
                record.level().as_str().to_ascii_lowercase(),
                record.args()
            )
        });
        builder.target(env_logger::Target::Pipe(Box::new(Syslog::default())));
        builder.init();
        return Ok(());
    }
    let json = cli.log_format.as_deref() == Some("json");
    if cli.log_file.is_none() && !json && journal::stderr_is_journal() {
        let path = std::env::var_os("JAWASD_JOURNAL_SOCKET")
            .map_or_else(|| PathBuf::from(journal::SOCKET), PathBuf::from);
        // Without the socket, stderr (which is the journal too) stands.
        if let Ok(j) = journal::Journal::connect(&path) {
            builder.format(|buf, record| {
                writeln!(
                    buf,
                    "{} {}",
                    record.level().as_str().to_ascii_lowercase(),
                    record.args()
                )
            });
            builder.target(env_logger::Target::Pipe(Box::new(j)));
            builder.init();
            return Ok(());
        }
    }
    match &cli.log_file {
        Some(path) => logsink::to_file(path.clone()).map_err(|e| {
            format!(
                "unable to open log file {}: {}",
                path.display(),
                errno_text(&e)
            )
        })?,
        None => logsink::to_stderr(),
    }
    builder.target(env_logger::Target::Pipe(Box::new(logsink::Writer)));
    if json {
        builder.format(|buf, record| {
            let line = serde_json::json!({
                "time": timefmt::now(timefmt::zone()),
                "level": record.level().as_str().to_ascii_lowercase(),
                "msg": record.args().to_string(),
            });
            writeln!(buf, "{line}")
        });
    } else {
        builder.format(|buf, record| {
            writeln!(
                buf,
                "{} jawasd {} {}",
                timefmt::now(timefmt::zone()),
                record.level().as_str().to_ascii_lowercase(),
                record.args()
            )
        });
    }
    builder.init();
    Ok(())
}

/// A log target that hands each complete line to syslog (`crate::syslog`).
#[derive(Default)]
struct Syslog {
    line: Vec<u8>,
}

impl Write for Syslog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.line.extend_from_slice(buf);
        while let Some(pos) = self.line.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.line.drain(..=pos).collect();
            let text = &line[..line.len() - 1];
            let priority = if text.starts_with(b"error") {
                libc::LOG_ERR
            } else if text.starts_with(b"warn") {
                libc::LOG_WARNING
            } else {
                libc::LOG_INFO
            };
            events::syslog(priority, &String::from_utf8_lossy(text));
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
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
    fn shown_caps_findings() {
        let path = std::path::Path::new("/etc/x.conf");
        for (n, lines, last) in [
            (0, 0, None),
            (3, 3, Some("f2")),
            (100, 100, Some("f99")),
            (101, 101, Some("/etc/x.conf: and 1 more findings")),
            (5000, 101, Some("/etc/x.conf: and 4900 more findings")),
        ] {
            let findings: Vec<String> = (0..n).map(|i| format!("f{i}")).collect();
            let got: Vec<String> = super::shown(path, &findings)
                .map(|c| c.into_owned())
                .collect();
            assert_eq!(got.len(), lines, "{n}");
            assert_eq!(got.last().map(String::as_str), last, "{n}");
        }
    }

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
