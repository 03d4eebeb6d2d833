//! Connection event lines, in jawasd's format and in xinetd's, and where a
//! service writes them.
//!
//! One small function per event (start, refuse, exit), each returning the
//! line, so both formats sit side by side and are unit-tested; the loop
//! never formats text itself. A service's `log_on_success`/`log_on_failure`
//! list picks the fields (`None`: all of them; an empty list: no success
//! line at all, as in xinetd).
//!
//! The sink writes to jawasd's log, a service's file, or syslog with the
//! service's own facility: the facility travels in each message's priority,
//! so one service's `log_syslog` never changes where jawasd's own log goes.

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use crate::admission::Refusal;
use crate::config::Service;
use crate::reaper::ExitStatus;

/// Which fields a line carries.
#[derive(Clone, Copy)]
pub struct Fields<'a>(pub Option<&'a [String]>);

impl Fields<'_> {
    fn want(&self, field: &str) -> bool {
        self.0.is_none_or(|list| list.iter().any(|f| f == field))
    }

    fn none(&self) -> bool {
        self.0.is_some_and(|list| list.is_empty())
    }
}

/// An event's line format.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Native,
    Xinetd,
}

pub fn show(addr: Option<SocketAddr>) -> String {
    addr.map(|a| a.to_string()).unwrap_or_else(|| "-".into())
}

fn ip(addr: SocketAddr) -> std::net::IpAddr {
    addr.ip().to_canonical()
}

/// An engine started. jawasd's own line is a debug line (`accept`); xinetd
/// writes START.
pub fn start(
    format: Format,
    fields: Fields<'_>,
    service: &str,
    pid: libc::pid_t,
    remote: Option<SocketAddr>,
) -> Option<String> {
    match format {
        Format::Native => None,
        Format::Xinetd if fields.none() => None,
        Format::Xinetd => {
            let mut line = format!("START: {service}");
            if fields.want("PID") {
                line.push_str(&format!(" pid={pid}"));
            }
            if let (true, Some(r)) = (fields.want("HOST"), remote) {
                line.push_str(&format!(" from={}", ip(r)));
            }
            Some(line)
        }
    }
}

/// jawasd's debug line for an accepted connection.
pub fn accept(service: &str, pid: libc::pid_t, remote: Option<SocketAddr>) -> String {
    format!("accept svc={service} pid={pid} remote={}", show(remote))
}

/// A connection refused. Always written (xinetd's ATTEMPT is implied even
/// with an empty `log_on_failure`).
pub fn refuse(
    format: Format,
    fields: Fields<'_>,
    service: &str,
    remote: Option<SocketAddr>,
    why: Refusal,
) -> String {
    let host = fields.want("HOST");
    match format {
        // xinetd's own line, which log watchers such as fail2ban's
        // xinetd-fail filter parse.
        Format::Xinetd => {
            let from = remote
                .filter(|_| host)
                .map(|r| format!(" from={}", ip(r)))
                .unwrap_or_default();
            format!("FAIL: {service} {}{from}", why.xinetd_reason())
        }
        Format::Native => {
            let mut line = format!("refuse svc={service}");
            if host {
                line.push_str(&format!(" remote={}", show(remote)));
            }
            line.push_str(&format!(" reason={}", why.as_str()));
            line
        }
    }
}

/// An engine ended.
pub fn exit(
    format: Format,
    fields: Fields<'_>,
    service: &str,
    pid: libc::pid_t,
    remote: Option<SocketAddr>,
    status: ExitStatus,
    took: Duration,
) -> Option<String> {
    if fields.none() {
        return None;
    }
    let mut line;
    match format {
        Format::Xinetd => {
            line = format!("EXIT: {service}");
            if fields.want("EXIT") {
                match status {
                    ExitStatus::Exited(code) => line.push_str(&format!(" status={code}")),
                    ExitStatus::Signaled(sig) => line.push_str(&format!(" signal={sig}")),
                    ExitStatus::Unknown => line.push_str(" status=?"),
                }
            }
            if fields.want("PID") {
                line.push_str(&format!(" pid={pid}"));
            }
            if fields.want("DURATION") {
                line.push_str(&format!(" duration={}(sec)", took.as_secs()));
            }
        }
        Format::Native => {
            line = format!("done svc={service}");
            if fields.want("PID") {
                line.push_str(&format!(" pid={pid}"));
            }
            if fields.want("HOST") {
                line.push_str(&format!(" remote={}", show(remote)));
            }
            if fields.want("EXIT") {
                line.push(' ');
                line.push_str(&status.describe());
            }
            if fields.want("DURATION") {
                line.push_str(&format!(" duration={:.3}s", took.as_secs_f64()));
            }
        }
    }
    Some(line)
}

/// Where a service's connection events are written.
pub enum Sink {
    /// jawasd's own log.
    Main,
    File(std::fs::File),
    /// syslog with this priority (facility | level).
    Syslog(libc::c_int),
}

impl Sink {
    /// Opens a service's event log; failures fall back to the main log.
    pub fn open(svc: &Service) -> Sink {
        if let Some(path) = &svc.log_file {
            match crate::logsink::open(path) {
                Ok(f) => return Sink::File(f),
                Err(e) => log::warn!(
                    "svc={} log_file {}: {}; logging to stderr",
                    svc.name,
                    path.display(),
                    crate::errno_text(&e)
                ),
            }
        }
        if let Some((facility, level)) = svc.log_syslog {
            return Sink::Syslog(facility | level);
        }
        Sink::Main
    }

    pub fn write(&mut self, level: log::Level, line: &str) {
        match self {
            Sink::Main => log::log!(level, "{line}"),
            Sink::File(f) => {
                // The same timestamp as jawasd's own log.
                let now = crate::timefmt::now(crate::timefmt::zone());
                // One write: a line up to PIPE_BUF reaches a pipe whole or
                // not at all (the file is non-blocking: a stalled reader
                // loses lines, never holds up the loop).
                let _ = f.write_all(format!("{now} {line}\n").as_bytes());
            }
            Sink::Syslog(priority) => syslog(*priority, line),
        }
    }
}

/// Sends one line to syslog with `priority` (facility | level), never
/// blocking (see `crate::syslog`).
pub fn syslog(priority: libc::c_int, line: &str) {
    crate::syslog::send_line(priority, line);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn lines_in_both_formats() {
        let remote: Option<SocketAddr> = Some("[::ffff:192.0.2.7]:51514".parse().unwrap());
        let all = Fields(None);
        let host_only = list(&["HOST"]);
        let empty: Vec<String> = Vec::new();
        let took = Duration::from_millis(1500);
        let cases: Vec<(Option<String>, Option<&str>)> = vec![
            (
                start(Format::Xinetd, all, "echo", 42, remote),
                Some("START: echo pid=42 from=192.0.2.7"),
            ),
            (start(Format::Native, all, "echo", 42, remote), None),
            (
                start(Format::Xinetd, Fields(Some(&empty)), "echo", 42, remote),
                None,
            ),
            (
                Some(refuse(Format::Xinetd, all, "echo", remote, Refusal::Access)),
                Some("FAIL: echo address from=192.0.2.7"),
            ),
            (
                Some(refuse(
                    Format::Native,
                    all,
                    "web",
                    remote,
                    Refusal::SourceRate,
                )),
                Some("refuse svc=web remote=[::ffff:192.0.2.7]:51514 reason=per_source_rate"),
            ),
            (
                Some(refuse(
                    Format::Native,
                    Fields(Some(&empty)),
                    "web",
                    remote,
                    Refusal::Rate,
                )),
                Some("refuse svc=web reason=rate"),
            ),
            (
                exit(
                    Format::Xinetd,
                    all,
                    "echo",
                    42,
                    remote,
                    ExitStatus::Exited(0),
                    took,
                ),
                Some("EXIT: echo status=0 pid=42 duration=1(sec)"),
            ),
            (
                exit(
                    Format::Xinetd,
                    all,
                    "echo",
                    42,
                    remote,
                    ExitStatus::Signaled(9),
                    took,
                ),
                Some("EXIT: echo signal=9 pid=42 duration=1(sec)"),
            ),
            (
                exit(
                    Format::Native,
                    all,
                    "web",
                    7,
                    None,
                    ExitStatus::Exited(1),
                    took,
                ),
                Some("done svc=web pid=7 remote=- exit=1 duration=1.500s"),
            ),
            (
                exit(
                    Format::Native,
                    Fields(Some(&host_only)),
                    "web",
                    7,
                    remote,
                    ExitStatus::Exited(1),
                    took,
                ),
                Some("done svc=web remote=[::ffff:192.0.2.7]:51514"),
            ),
            (
                exit(
                    Format::Native,
                    Fields(Some(&empty)),
                    "web",
                    7,
                    remote,
                    ExitStatus::Exited(1),
                    took,
                ),
                None,
            ),
            (
                Some(accept("web", 7, None)),
                Some("accept svc=web pid=7 remote=-"),
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got.as_deref(), want);
        }
    }
}
