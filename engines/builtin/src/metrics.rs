//! `jawas-builtin metrics SOCKET`: jawasd's counters over HTTP, asked from
//! its control socket for each request, as Prometheus text (`/metrics`)
//! or a small HTML status page for people (`/`).
//!
//! Owns the HTTP exchange (one request, then the connection closes), the
//! rendering, and nothing else: every number comes from one `status`
//! answer, so the page and the metrics agree with `jawasd ctl status`.
//! Being an engine, the port, access rules and limits of a normal service
//! apply to it. Failure paths: a request that is not HTTP gets 400 (exit
//! 1); an unreachable control socket gets 503 (exit 111).

use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use jawas_engine::Error;
use serde_json::Value;

/// Longest request head read.
const MAX_HEAD: usize = 8192;
/// How long jawasd may take to answer `status`.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves one HTTP request on `input`/`output`.
pub fn serve(
    socket: &Path,
    input: &mut (impl Read + AsRawFd),
    output: &mut impl Write,
) -> Result<(), Error> {
    let fd = input.as_raw_fd();
    let mut timed = Deadline {
        inner: input,
        fd,
        until: Instant::now() + HEAD_TIMEOUT,
    };
    let head = match read_head(&mut timed) {
        Ok(h) => h,
        Err(why) => {
            let _ = respond(output, 400, "text/plain", why.as_bytes(), true);
            return Err(Error::peer(why));
        }
    };
    let mut words = head.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let with_body = method != "HEAD";
    if method != "GET" && method != "HEAD" {
        return send(output, 405, "text/plain", b"only GET and HEAD\n", true);
    }
    let path = target.split('?').next().unwrap_or("");
    if path != "/metrics" && path != "/" {
        return send(output, 404, "text/plain", b"/metrics or /\n", with_body);
    }
    let status = match ask(socket) {
        Ok(s) => s,
        Err(why) => {
            let body = format!("jawasd's control socket {}: {why}\n", socket.display());
            let _ = respond(output, 503, "text/plain", body.as_bytes(), with_body);
            return Err(Error::system(body.trim_end().to_string()));
        }
    };
    if path == "/metrics" {
        let body = prometheus(&status);
        send(
            output,
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            body.as_bytes(),
            with_body,
        )
    } else {
        let body = html(&status);
        send(
            output,
            200,
            "text/html; charset=utf-8",
            body.as_bytes(),
            with_body,
        )
    }
}

fn send(
    output: &mut impl Write,
    code: u16,
    kind: &str,
    body: &[u8],
    with_body: bool,
) -> Result<(), Error> {
    respond(output, code, kind, body, with_body).map_err(|e| Error::io("connection", &e))
}

/// How long a client may take to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// A reader that waits (poll) at most until `until`, and gives up at once
/// when the engine is told to stop (SIGTERM: `jawasd ctl kill`, shutdown).
struct Deadline<'a, R> {
    inner: &'a mut R,
    fd: RawFd,
    until: Instant,
}

impl<R: Read> Read for Deadline<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let left = self.until.saturating_duration_since(Instant::now());
            if jawas_engine::stopping() || left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            let mut pfd = libc::pollfd {
                fd: self.fd,
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = left.min(Duration::from_secs(1)).as_millis().max(1) as libc::c_int;
            // SAFETY: poll on one pollfd we own, for at most `ms`.
            if unsafe { libc::poll(&mut pfd, 1, ms) } > 0 {
                return self.inner.read(buf);
            }
        }
    }
}

/// Reads up to the blank line ending the request head; the request line.
fn read_head(input: &mut impl Read) -> Result<String, String> {
    let mut r = BufReader::new(input.take(MAX_HEAD as u64));
    let mut first = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) => return Err("the request ended before its head did".into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                return Err("no complete request head in time".into())
            }
            Err(_) => return Err("the request is not HTTP text".into()),
        }
        if first.is_empty() {
            if line.trim().is_empty() {
                continue;
            }
            first = line.trim_end().to_string();
            if !first.ends_with("HTTP/1.1") && !first.ends_with("HTTP/1.0") {
                return Err("not an HTTP/1 request line".into());
            }
        } else if line == "\r\n" || line == "\n" {
            return Ok(first);
        }
    }
}

fn respond(
    output: &mut impl Write,
    code: u16,
    kind: &str,
    body: &[u8],
    with_body: bool,
) -> io::Result<()> {
    let reason = match code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    let mut out = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if with_body {
        out.extend_from_slice(body);
    }
    output.write_all(&out)?;
    output.flush()
}

/// jawasd's `status` answer.
fn ask(socket: &Path) -> Result<Value, String> {
    let text = |e: io::Error| e.to_string().to_lowercase();
    let mut s = UnixStream::connect(socket).map_err(text)?;
    s.set_read_timeout(Some(ANSWER_TIMEOUT)).map_err(text)?;
    s.write_all(b"status\n").map_err(text)?;
    let mut line = String::new();
    BufReader::new(&s).read_line(&mut line).map_err(text)?;
    let v: Value = serde_json::from_str(&line).map_err(|e| format!("not JSON: {e}"))?;
    if v["ok"] != Value::Bool(true) {
        return Err(v["error"].as_str().unwrap_or("refused").to_string());
    }
    Ok(v)
}

/// A label value, escaped as the text format wants.
fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn num(v: &Value) -> String {
    match v {
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => u8::from(*b).to_string(),
        _ => "0".into(),
    }
}

/// A metric family: its HELP and TYPE lines, then one sample per service.
struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: &str) {
        let labels: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", label(v)))
            .collect();
        if labels.is_empty() {
            let _ = writeln!(self.out, "{name} {value}");
        } else {
            let _ = writeln!(self.out, "{name}{{{}}} {value}", labels.join(","));
        }
    }

    /// One sample per service from the field `key` of each.
    fn per_service(&mut self, services: &[Value], name: &str, kind: &str, help: &str, key: &str) {
        self.head(name, kind, help);
        for s in services {
            let svc = s["name"].as_str().unwrap_or("");
            self.sample(name, &[("service", svc)], &num(&s[key]));
        }
    }
}

/// The Prometheus text exposition format (version 0.0.4).
pub fn prometheus(status: &Value) -> String {
    let mut out = String::new();
    let empty = Vec::new();
    let services = status["services"].as_array().unwrap_or(&empty);
    let mut f = Family { out: &mut out };
    f.per_service(
        services,
        "jawasd_connections_accepted_total",
        "counter",
        "Connections given an engine.",
        "accepted",
    );
    f.head(
        "jawasd_connections_refused_total",
        "counter",
        "Connections refused, by the rule that refused them.",
    );
    for s in services {
        let svc = s["name"].as_str().unwrap_or("");
        for (reason, n) in s["refused_by"].as_object().into_iter().flatten() {
            f.sample(
                "jawasd_connections_refused_total",
                &[("service", svc), ("reason", reason)],
                &num(n),
            );
        }
    }
    f.per_service(
        services,
        "jawasd_spawn_failures_total",
        "counter",
        "Engines that could not be started.",
        "spawn_failed",
    );
    f.per_service(
        services,
        "jawasd_engines_failed_total",
        "counter",
        "Engines that ended with a non-zero status or a signal.",
        "failed",
    );
    f.head(
        "jawasd_engine_exits_total",
        "counter",
        "Engines ended, by exit status (exit=N) or signal (signal=NAME).",
    );
    for s in services {
        let svc = s["name"].as_str().unwrap_or("");
        for (st, n) in s["exits"].as_object().into_iter().flatten() {
            f.sample(
                "jawasd_engine_exits_total",
                &[("service", svc), ("status", st)],
                &num(n),
            );
        }
    }
    f.per_service(
        services,
        "jawasd_engines_running",
        "gauge",
        "Engines running now.",
        "running",
    );
    f.per_service(
        services,
        "jawasd_connections_per_second",
        "gauge",
        "Accepted connections per second over the last 10 seconds.",
        "rate",
    );
    f.head(
        "jawasd_listeners",
        "gauge",
        "Sockets the service listens on (0 once drained).",
    );
    for s in services {
        let svc = s["name"].as_str().unwrap_or("");
        let n = s["listen"].as_array().map_or(0, Vec::len);
        f.sample("jawasd_listeners", &[("service", svc)], &n.to_string());
    }
    let name = "jawasd_connection_duration_seconds";
    f.head(
        name,
        "histogram",
        "How long engines ran, from start to exit.",
    );
    for s in services {
        let svc = s["name"].as_str().unwrap_or("");
        let d = &s["duration"];
        for b in d["buckets"].as_array().into_iter().flatten() {
            let le = b[0].as_str().unwrap_or("+Inf");
            f.sample(
                &format!("{name}_bucket"),
                &[("service", svc), ("le", le)],
                &num(&b[1]),
            );
        }
        f.sample(&format!("{name}_sum"), &[("service", svc)], &num(&d["sum"]));
        f.sample(
            &format!("{name}_count"),
            &[("service", svc)],
            &num(&d["count"]),
        );
    }
    let p = &status["process"];
    let one = |f: &mut Family<'_>, name: &str, kind: &str, help: &str, v: &Value| {
        f.head(name, kind, help);
        f.sample(name, &[], &num(v));
    };
    one(
        &mut f,
        "jawasd_pending_connections",
        "gauge",
        "Connections waiting for their PROXY header or, at a router, their request head.",
        &status["pending"],
    );
    one(
        &mut f,
        "jawasd_waiting_connections",
        "gauge",
        "Connections over a count limit waiting for a running engine to end (limit_wait).",
        &status["waiting"],
    );
    one(
        &mut f,
        "jawasd_config_loaded_timestamp_seconds",
        "gauge",
        "When the running configuration was loaded (Unix time).",
        &status["loaded_unix"],
    );
    one(
        &mut f,
        "process_cpu_seconds_total",
        "counter",
        "jawasd's CPU time, user and system.",
        &p["cpu_seconds"],
    );
    one(
        &mut f,
        "process_open_fds",
        "gauge",
        "jawasd's open file descriptors.",
        &p["fds"],
    );
    one(
        &mut f,
        "process_max_fds",
        "gauge",
        "jawasd's limit on open file descriptors.",
        &p["max_fds"],
    );
    one(
        &mut f,
        "process_resident_memory_bytes",
        "gauge",
        "jawasd's resident memory.",
        &p["rss_bytes"],
    );
    one(
        &mut f,
        "process_start_time_seconds",
        "gauge",
        "When jawasd started (Unix time).",
        &status["started_unix"],
    );
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The status page for people.
pub fn html(status: &Value) -> String {
    let str_of = |v: &Value| esc(v.as_str().unwrap_or("-"));
    let p = &status["process"];
    let mut rows = String::new();
    for s in status["services"].as_array().into_iter().flatten() {
        let listen: Vec<String> = s["listen"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| esc(a.as_str().unwrap_or("")))
            .collect();
        let listen = if s["drained"] == Value::Bool(true) {
            "<em>drained</em>".to_string()
        } else {
            listen.join("<br>")
        };
        let reasons: Vec<String> = s["refused_by"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{} {}", esc(k), num(v)))
            .collect();
        let _ = writeln!(
            rows,
            "<tr><th scope=row>{}</th><td>{listen}</td><td class=n>{}</td><td class=n>{}</td>\
             <td class=n>{}<small>{}</small></td><td class=n>{}</td><td class=n>{}</td><td class=n>{:.1}</td></tr>",
            str_of(&s["name"]),
            num(&s["running"]),
            num(&s["accepted"]),
            num(&s["refused"]),
            if reasons.is_empty() { String::new() } else { format!(" ({})", reasons.join(", ")) },
            num(&s["failed"]),
            num(&s["spawn_failed"]),
            s["rate"].as_f64().unwrap_or(0.0),
        );
    }
    format!(
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>\
<meta name=viewport content=\"width=device-width, initial-scale=1\">\
<meta http-equiv=refresh content=5><title>jawasd status</title><style>\
body{{font:15px/1.4 system-ui,sans-serif;margin:2em auto;max-width:60em;padding:0 1em;color:#222}}\
h1{{font-size:1.4em;margin-bottom:.2em}}p.meta{{color:#555;margin-top:0}}\
dl{{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}}dt{{color:#555}}dd{{margin:0}}\
table{{border-collapse:collapse;width:100%;margin-top:1em}}th,td{{padding:.4em .6em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}}\
thead th{{background:#f3f3f3}}td.n,th.n{{text-align:right;font-variant-numeric:tabular-nums}}small{{color:#666}}\
</style></head><body>\n<h1>jawasd</h1>\n<p class=meta>version {} &middot; pid {} &middot; refreshed every 5 s</p>\n\
<dl><dt>Started</dt><dd>{} (up {:.0} s)</dd><dt>Configuration</dt><dd>{} (loaded {})</dd>\
<dt>Engines running</dt><dd>{}</dd><dt>Process</dt><dd>CPU {:.2} s, {} of {} fds, {:.1} MB resident</dd></dl>\n\
<table><thead><tr><th>Service</th><th>Listening on</th><th class=n>Running</th><th class=n>Accepted</th>\
<th class=n>Refused</th><th class=n>Failed</th><th class=n>Spawn failures</th><th class=n>Per second</th></tr></thead>\n<tbody>\n{rows}</tbody></table>\n</body></html>\n",
        str_of(&status["version"]),
        num(&status["pid"]),
        str_of(&status["started"]),
        status["uptime"].as_f64().unwrap_or(0.0),
        str_of(&status["config"]),
        str_of(&status["loaded"]),
        num(&status["engines"]),
        p["cpu_seconds"].as_f64().unwrap_or(0.0),
        num(&p["fds"]),
        num(&p["max_fds"]),
        p["rss_bytes"].as_f64().unwrap_or(0.0) / 1e6,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn status() -> Value {
        json!({
            "ok": true, "version": "0.1.0", "pid": 42, "pending": 0, "waiting": 3,
            "started": "T", "started_unix": 1.5, "loaded": "T", "loaded_unix": 2.5,
            "uptime": 3.0, "config": "/etc/<j>.toml", "engines": 1,
            "process": {"cpu_seconds": 0.25, "fds": 9, "max_fds": 1024, "rss_bytes": 4096},
            "services": [{
                "name": "we\"b", "listen": ["127.0.0.1:80"], "drained": false, "running": 1,
                "accepted": 5, "refused": 2, "refused_by": {"access": 2}, "spawn_failed": 0,
                "failed": 1, "exits": {"exit=0": 3, "exit=1": 1}, "rate": 0.5,
                "duration": {"buckets": [["0.005", 1], ["+Inf", 4]], "sum": 0.75, "count": 4},
            }],
        })
    }

    #[test]
    fn prometheus_samples() {
        let text = prometheus(&status());
        for want in [
            "jawasd_connections_accepted_total{service=\"we\\\"b\"} 5\n",
            "jawasd_connections_refused_total{service=\"we\\\"b\",reason=\"access\"} 2\n",
            "jawasd_engine_exits_total{service=\"we\\\"b\",status=\"exit=1\"} 1\n",
            "jawasd_connection_duration_seconds_bucket{service=\"we\\\"b\",le=\"+Inf\"} 4\n",
            "jawasd_connection_duration_seconds_count{service=\"we\\\"b\"} 4\n",
            "# TYPE jawasd_connection_duration_seconds histogram\n",
            "process_open_fds 9\n",
            "jawasd_waiting_connections 3\n",
            "process_start_time_seconds 1.5\n",
        ] {
            assert!(text.contains(want), "{want} not in\n{text}");
        }
    }

    #[test]
    fn html_escapes() {
        let page = html(&status());
        assert!(page.contains("/etc/&lt;j&gt;.toml"));
        assert!(page.contains("we&quot;b"));
    }

    #[test]
    fn requests() {
        let socket = Path::new("/nonexistent/ctl.sock");
        let cases: [(&[u8], &str); 4] = [
            (b"POST /metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 405 "),
            (b"GET /other HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 404 "),
            (b"hello\r\n\r\n", "HTTP/1.1 400 "),
            (b"GET /metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 503 "),
        ];
        for (i, (req, want)) in cases.into_iter().enumerate() {
            // A file as the client: it has a descriptor, as a socket does.
            let path =
                std::env::temp_dir().join(format!("jawas-metrics-req-{}-{i}", std::process::id()));
            std::fs::write(&path, req).unwrap();
            let mut input = std::fs::File::open(&path).unwrap();
            let _ = std::fs::remove_file(&path);
            let mut out = Vec::new();
            let _ = serve(socket, &mut input, &mut out);
            let text = String::from_utf8(out).unwrap();
            assert!(text.starts_with(want), "{text}");
        }
    }
}
