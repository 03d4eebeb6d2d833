//! xinetd configuration files: read them, and say what they mean in jawasd.
//!
//! Owns the xinetd.conf(5) syntax (`defaults {}`, `service NAME {}`,
//! `include`, `includedir`, `=`, `+=`, `-=`) and the translation of each
//! service into the TOML of a native jawasd service. The translation is the
//! single path for both `jawasd --xinetd FILE` (the TOML is parsed at once by
//! `config`) and `jawasd import-xinetd FILE` (the TOML is printed, with a
//! comment wherever the meaning changed).
//!
//! As xinetd does, an unknown attribute is a warning with file and line, and
//! a service that cannot be honoured is left out (an error naming the
//! attribute) while the others run. It does not bind, spawn or log.
//!
//! Invariant: every line of generated TOML that carries a value remembers the
//! xinetd file and line it came from, so an error found later by `config`
//! still points at the user's file.

#![forbid(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Where an attribute was written.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Origin {
    pub file: PathBuf,
    pub line: usize,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file.display())
        } else {
            write!(f, "{}:{}", self.file.display(), self.line)
        }
    }
}

/// A finding about the xinetd configuration.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    pub origin: Origin,
    pub severity: Severity,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The service still runs; the meaning is noted.
    Warning,
    /// The service (or the whole file) is left out.
    Error,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sev = match self.severity {
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        write!(
            f,
            "{}: {sev}: {}",
            self.origin,
            crate::config::one_line(&self.message)
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Set,
    Add,
    Remove,
}

#[derive(Debug, Clone)]
struct Attr {
    name: String,
    op: Op,
    values: Vec<String>,
    origin: Origin,
}

#[derive(Debug, Clone)]
struct Block {
    /// "defaults" or the service name.
    name: String,
    is_defaults: bool,
    attrs: Vec<Attr>,
    origin: Origin,
}

/// The whole parsed file tree.
#[derive(Debug, Default)]
struct Parsed {
    blocks: Vec<Block>,
    findings: Vec<Finding>,
}

/// Every attribute Debian's xinetd 2.3.15 parses.
const KNOWN: &[&str] = &[
    "id",
    "type",
    "flags",
    "disable",
    "socket_type",
    "protocol",
    "wait",
    "user",
    "group",
    "instances",
    "nice",
    "server",
    "server_args",
    "libwrap",
    "only_from",
    "no_access",
    "access_times",
    "log_type",
    "log_on_success",
    "log_on_failure",
    "rpc_version",
    "rpc_number",
    "env",
    "passenv",
    "port",
    "redirect",
    "bind",
    "interface",
    "banner",
    "banner_success",
    "banner_fail",
    "per_source",
    "cps",
    "max_load",
    "groups",
    "mdns",
    "umask",
    "enabled",
    "disabled",
    "rlimit_as",
    "rlimit_files",
    "rlimit_cpu",
    "rlimit_data",
    "rlimit_rss",
    "rlimit_stack",
    "deny_time",
    "v6only",
];

/// Attributes whose `=` in a service adds to the defaults' values.
const CUMULATIVE: &[&str] = &[
    "log_on_success",
    "log_on_failure",
    "only_from",
    "no_access",
    "passenv",
    "env",
];

/// Reads `path` and everything it includes.
fn parse_tree(path: &Path) -> Parsed {
    let mut parsed = Parsed::default();
    let mut seen = BTreeSet::new();
    parse_file(path, &mut parsed, &mut seen, 0);
    parsed
}

fn parse_file(path: &Path, out: &mut Parsed, seen: &mut BTreeSet<PathBuf>, depth: usize) {
    let here = Origin {
        file: path.to_path_buf(),
        line: 0,
    };
    if depth > 16 || !seen.insert(path.to_path_buf()) {
        out.findings.push(Finding {
            origin: here,
            severity: Severity::Error,
            message: "included more than once (include loop?); skipped".into(),
        });
        return;
    }
    let text = match crate::config::read_regular_capped(path, crate::config::limits::FILE) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(m) => {
            out.findings.push(Finding {
                origin: here,
                severity: Severity::Error,
                message: format!("unable to read: {m}"),
            });
            return;
        }
    };
    let base = path.parent().unwrap_or(Path::new("/"));
    let mut current: Option<Block> = None;
    let mut pending: Option<(String, bool, Origin)> = None;
    for (i, raw) in text.lines().enumerate() {
        let origin = Origin {
            file: path.to_path_buf(),
            line: i + 1,
        };
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let finding = |sev, message: String| Finding {
            origin: origin.clone(),
            severity: sev,
            message,
        };
        if let Some(block) = current.as_mut() {
            if line == "}" {
                out.blocks.push(current.take().expect("in a block"));
                continue;
            }
            match parse_attr(line, &origin) {
                Ok(a) => block.attrs.push(a),
                Err(m) => out.findings.push(finding(Severity::Error, m)),
            }
            continue;
        }
        if line == "{" {
            match pending.take() {
                Some((name, is_defaults, o)) => {
                    current = Some(Block {
                        name,
                        is_defaults,
                        attrs: Vec::new(),
                        origin: o,
                    })
                }
                None => out.findings.push(finding(
                    Severity::Error,
                    "'{' without a service or defaults line".into(),
                )),
            }
            continue;
        }
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or("");
        let rest: Vec<&str> = words.collect();
        match first {
            "defaults" | "service" => {
                let is_defaults = first == "defaults";
                let (name, inline_brace) = match (is_defaults, rest.as_slice()) {
                    (true, []) => ("defaults".to_string(), false),
                    (true, ["{"]) => ("defaults".to_string(), true),
                    (false, [n]) => (n.to_string(), false),
                    (false, [n, "{"]) => (n.to_string(), true),
                    _ => {
                        out.findings.push(finding(
                            Severity::Error,
                            format!(
                                "expected '{first}{}'",
                                if is_defaults { "" } else { " NAME" }
                            ),
                        ));
                        continue;
                    }
                };
                if inline_brace {
                    current = Some(Block {
                        name,
                        is_defaults,
                        attrs: Vec::new(),
                        origin,
                    });
                } else {
                    pending = Some((name, is_defaults, origin));
                }
            }
            "include" | "includedir" => {
                let Some(target) = rest.first() else {
                    out.findings
                        .push(finding(Severity::Error, format!("{first} needs a path")));
                    continue;
                };
                let target = base.join(target);
                if first == "include" {
                    parse_file(&target, out, seen, depth + 1);
                } else {
                    match std::fs::read_dir(&target) {
                        Ok(entries) => {
                            let mut names: Vec<PathBuf> = entries
                                .flatten()
                                .filter(|e| {
                                    let n = e.file_name().to_string_lossy().into_owned();
                                    // xinetd's rule: skip names with a dot or a trailing ~.
                                    !n.contains('.') && !n.ends_with('~') && e.path().is_file()
                                })
                                .map(|e| e.path())
                                .collect();
                            names.sort();
                            for n in names {
                                parse_file(&n, out, seen, depth + 1);
                            }
                        }
                        Err(e) => out.findings.push(finding(
                            Severity::Error,
                            format!("includedir {}: {}", target.display(), crate::errno_text(&e)),
                        )),
                    }
                }
            }
            _ => out.findings.push(finding(
                Severity::Error,
                format!(
                    "unexpected '{}' outside a service or defaults block",
                    crate::escape(first.as_bytes(), 40)
                ),
            )),
        }
    }
    if let Some(b) = current {
        out.findings.push(Finding {
            origin: b.origin.clone(),
            severity: Severity::Error,
            message: format!("'{}' block is not closed with '}}'; left out", b.name),
        });
    }
}

fn parse_attr(line: &str, origin: &Origin) -> Result<Attr, String> {
    let (name, op, rest) = if let Some(i) = line.find("+=") {
        (&line[..i], Op::Add, &line[i + 2..])
    } else if let Some(i) = line.find("-=") {
        (&line[..i], Op::Remove, &line[i + 2..])
    } else if let Some(i) = line.find('=') {
        (&line[..i], Op::Set, &line[i + 1..])
    } else {
        return Err(format!(
            "expected 'attribute = value', found '{}'",
            crate::escape(line.as_bytes(), 60)
        ));
    };
    let name = name.trim();
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(format!(
            "bad attribute name '{}'",
            crate::escape(name.as_bytes(), 40)
        ));
    }
    Ok(Attr {
        name: name.to_string(),
        op,
        values: rest.split_whitespace().map(String::from).collect(),
        origin: origin.clone(),
    })
}

/// A service's attributes after defaults and `+=`/`-=`.
struct Resolved {
    values: BTreeMap<String, (Vec<String>, Origin)>,
}

impl Resolved {
    fn get(&self, k: &str) -> Option<&(Vec<String>, Origin)> {
        self.values.get(k)
    }
    fn one(&self, k: &str) -> Option<(&str, &Origin)> {
        self.values
            .get(k)
            .and_then(|(v, o)| v.first().map(|s| (s.as_str(), o)))
    }
}

fn apply(
    values: &mut BTreeMap<String, (Vec<String>, Origin)>,
    a: &Attr,
    from_defaults: &BTreeSet<String>,
) {
    let entry = values
        .entry(a.name.clone())
        .or_insert_with(|| (Vec::new(), a.origin.clone()));
    match a.op {
        Op::Set if CUMULATIVE.contains(&a.name.as_str()) && from_defaults.contains(&a.name) => {
            // xinetd: in a service, `=` on these adds to what defaults set.
            entry.0.extend(a.values.iter().cloned());
        }
        Op::Set => entry.0 = a.values.clone(),
        Op::Add => entry.0.extend(a.values.iter().cloned()),
        Op::Remove => {
            // A set: `-=` with thousands of values must not cost their square.
            let gone: BTreeSet<&String> = a.values.iter().collect();
            entry.0.retain(|v| !gone.contains(v));
        }
    }
    entry.1 = a.origin.clone();
}

/// Keeps the first of each repeated value of the cumulative attributes:
/// they are sets (addresses, log fields, variables), and repeated `+=`
/// lines, copied into every service, would otherwise multiply.
fn dedup_cumulative(values: &mut BTreeMap<String, (Vec<String>, Origin)>) {
    for name in CUMULATIVE {
        if let Some((list, _)) = values.get_mut(*name) {
            let mut seen = BTreeSet::new();
            list.retain(|v| seen.insert(v.clone()));
        }
    }
}

/// The result of translating a file tree.
pub struct Translation {
    /// The native configuration, as TOML.
    pub toml: String,
    /// For each TOML line (1-based index - 1), where it came from.
    pub origins: Vec<Option<Origin>>,
    pub findings: Vec<Finding>,
}

impl Translation {
    /// Maps a line of the generated TOML back to the xinetd file.
    pub fn origin_of(&self, toml_line: usize) -> Option<&Origin> {
        self.origins
            .get(toml_line.checked_sub(1)?)
            .and_then(|o| o.as_ref())
    }
}

/// TOML text under construction, with the origin of each line.
struct Out {
    text: String,
    origins: Vec<Option<Origin>>,
}

impl Out {
    fn line(&mut self, s: &str, origin: Option<&Origin>) {
        self.text.push_str(s);
        self.text.push('\n');
        self.origins.push(origin.cloned());
    }
    fn comment(&mut self, s: &str) {
        for l in s.lines() {
            self.line(&format!("# {l}"), None);
        }
    }
}

/// Quotes a string for TOML.
fn q(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn list(items: &[String]) -> String {
    format!(
        "[{}]",
        items.iter().map(|s| q(s)).collect::<Vec<_>>().join(", ")
    )
}

/// Most TOML one translation may produce; services past it are left out.
const MAX_TRANSLATION: usize = 4 << 20;
/// Most default values copied into services, all services together.
const MAX_COPIED_VALUES: usize = 1 << 20;
/// Longest banner file.
const MAX_BANNER: usize = 64 << 10;

fn over_translation() -> String {
    format!(
        "the translation would exceed {} MiB of TOML (defaults are copied into every service); left out",
        MAX_TRANSLATION >> 20
    )
}

/// Internal services jawas-builtin provides.
const BUILTIN: &[&str] = &["echo", "discard", "chargen", "daytime", "time"];

/// Translates the xinetd file at `path` into native TOML.
pub fn translate(path: &Path, services_db: &Path) -> Translation {
    let parsed = parse_tree(path);
    let mut findings = parsed.findings;
    let mut out = Out {
        text: String::new(),
        origins: Vec::new(),
    };
    out.comment(&format!(
        "Translated from the xinetd configuration {} by jawasd import-xinetd.\nComments marked 'jawasd:' say where a meaning changed; see docs/xinetd-migration.md.",
        path.display()
    ));
    out.line("", None);

    // Defaults: every `defaults` block, in order.
    let mut defaults: BTreeMap<String, (Vec<String>, Origin)> = BTreeMap::new();
    for b in parsed.blocks.iter().filter(|b| b.is_defaults) {
        for a in &b.attrs {
            if !KNOWN.contains(&a.name.as_str()) {
                findings.push(unknown(a));
                continue;
            }
            // In defaults, = accumulates for the cumulative attributes.
            let all: BTreeSet<String> = CUMULATIVE.iter().map(|s| s.to_string()).collect();
            apply(&mut defaults, a, &all);
        }
    }
    dedup_cumulative(&mut defaults);
    let enabled: Option<BTreeSet<String>> = defaults
        .get("enabled")
        .map(|(v, _)| v.iter().cloned().collect());
    let disabled: BTreeSet<String> = defaults
        .get("disabled")
        .map(|(v, _)| v.iter().cloned().collect())
        .unwrap_or_default();

    let from_defaults: BTreeSet<String> = defaults.keys().cloned().collect();
    let mut ids = BTreeSet::new();
    let mut overflowed = false;
    // Every service starts from a copy of the defaults: bound that work,
    // which a megabyte of defaults and thousands of services make quadratic.
    let copied: usize = defaults.values().map(|(v, _)| v.len()).sum();
    let blocks = parsed.blocks.iter().filter(|b| !b.is_defaults).count();
    if copied.saturating_mul(blocks) > MAX_COPIED_VALUES {
        let origin = parsed
            .blocks
            .iter()
            .find(|b| b.is_defaults)
            .map(|b| b.origin.clone())
            .unwrap_or(Origin {
                file: path.to_path_buf(),
                line: 0,
            });
        findings.push(err(&origin, format!("defaults: {copied} values copied into {blocks} services is over the {MAX_COPIED_VALUES} this translation allows; every service is left out (set long lists in the services that need them)")));
        overflowed = true;
    }
    for b in parsed.blocks.iter().filter(|b| !b.is_defaults) {
        if overflowed {
            findings.push(err(&b.origin, over_translation()));
            continue;
        }
        let mut values = BTreeMap::new();
        for (k, v) in &defaults {
            if !["enabled", "disabled"].contains(&k.as_str()) {
                values.insert(k.clone(), v.clone());
            }
        }
        for a in &b.attrs {
            if !KNOWN.contains(&a.name.as_str()) {
                findings.push(unknown(a));
                continue;
            }
            if ["enabled", "disabled", "include", "includedir"].contains(&a.name.as_str()) {
                findings.push(Finding {
                    origin: a.origin.clone(),
                    severity: Severity::Warning,
                    message: format!(
                        "'{}' belongs in the defaults block; ignored here, as xinetd does",
                        a.name
                    ),
                });
                continue;
            }
            apply(&mut values, a, &from_defaults);
        }
        dedup_cumulative(&mut values);
        let r = Resolved { values };
        let id = r
            .one("id")
            .map(|(s, _)| s.to_string())
            .unwrap_or_else(|| b.name.clone());
        if r.one("disable").is_some_and(|(v, _)| v == "yes")
            || disabled.contains(&id)
            || disabled.contains(&b.name)
            || enabled
                .as_ref()
                .is_some_and(|e| !e.contains(&id) && !e.contains(&b.name))
        {
            out.comment(&format!(
                "service {} (id {id}) is disabled in the xinetd configuration",
                b.name
            ));
            out.line("", None);
            continue;
        }
        if !ids.insert(id.clone()) {
            findings.push(Finding {
                origin: b.origin.clone(),
                severity: Severity::Error,
                message: format!("service id '{id}' is used twice; this one is left out (give it a distinct 'id')"),
            });
            continue;
        }
        let mut svc = Out {
            text: String::new(),
            origins: Vec::new(),
        };
        // Once one service did not fit, none after it is translated (above):
        // each would cost as much only to be refused.
        let translated = {
            service(
                &b.name,
                &id,
                &r,
                &b.origin,
                services_db,
                &mut svc,
                &mut findings,
            )
            .and_then(|()| {
                // Defaults are copied into every service: a large defaults block
                // and many services could expand a small file without bound.
                if out.text.len() + svc.text.len() > MAX_TRANSLATION {
                    overflowed = true;
                    Err(err(&b.origin, over_translation()))
                } else {
                    Ok(())
                }
            })
        };
        match translated {
            Ok(()) => {
                out.text.push_str(&svc.text);
                out.origins.extend(svc.origins);
                out.line("", None);
            }
            Err(f) => {
                findings.push(f);
                out.comment(&format!(
                    "service {} (id {id}) is left out: see the errors jawasd reported",
                    b.name
                ));
                out.line("", None);
            }
        }
    }
    findings.sort();
    findings.dedup();
    Translation {
        toml: out.text,
        origins: out.origins,
        findings,
    }
}

fn unknown(a: &Attr) -> Finding {
    let mut message = format!(
        "unknown attribute '{}'; ignored",
        crate::escape(a.name.as_bytes(), 40)
    );
    if let Some(near) = crate::config::did_you_mean(&a.name, KNOWN) {
        message = format!(
            "unknown attribute '{}' (did you mean '{near}'?); ignored",
            crate::escape(a.name.as_bytes(), 40)
        );
    }
    Finding {
        origin: a.origin.clone(),
        severity: Severity::Warning,
        message,
    }
}

fn err(origin: &Origin, message: String) -> Finding {
    Finding {
        origin: origin.clone(),
        severity: Severity::Error,
        message,
    }
}

fn warn(findings: &mut Vec<Finding>, origin: &Origin, message: String) {
    findings.push(Finding {
        origin: origin.clone(),
        severity: Severity::Warning,
        message,
    });
}

/// Translates one service into `out`, or says why it is left out.
#[allow(clippy::too_many_arguments)]
fn service(
    name: &str,
    id: &str,
    r: &Resolved,
    block_origin: &Origin,
    services_db: &Path,
    out: &mut Out,
    findings: &mut Vec<Finding>,
) -> Result<(), Finding> {
    let table = if id == name {
        name.to_string()
    } else {
        id.to_string()
    };
    let table_name: String = table
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    // Quoted: a '.' in a bare TOML key would nest tables.
    let table_key = if table_name.contains('.') {
        q(&table_name)
    } else {
        table_name.clone()
    };
    out.line(&format!("[services.{table_key}]"), Some(block_origin));
    if table_name != name {
        out.comment(&format!("xinetd service '{name}', id '{id}'"));
    }
    let types: Vec<String> = r.get("type").map(|(v, _)| v.clone()).unwrap_or_default();
    let flags: Vec<String> = r.get("flags").map(|(v, _)| v.clone()).unwrap_or_default();
    let flags_origin = r
        .get("flags")
        .map(|(_, o)| o.clone())
        .unwrap_or_else(|| block_origin.clone());
    let internal = types.iter().any(|t| t == "INTERNAL");
    let unlisted = types.iter().any(|t| t == "UNLISTED");
    for t in &types {
        match t.as_str() {
            "INTERNAL" | "UNLISTED" => {}
            "RPC" => {
                return Err(err(
                    &r.get("type").unwrap().1,
                    "type RPC: RPC services are not supported by jawasd; left out".into(),
                ))
            }
            "TCPMUX" | "TCPMUXPLUS" => {
                return Err(err(
                    &r.get("type").unwrap().1,
                    format!("type {t}: tcpmux services are not supported by jawasd; left out"),
                ))
            }
            other => {
                return Err(err(
                    &r.get("type").unwrap().1,
                    format!(
                        "type: unknown value '{}'",
                        crate::escape(other.as_bytes(), 20)
                    ),
                ))
            }
        }
    }

    // socket_type and protocol.
    let socket_type = r.one("socket_type").map(|(s, _)| s.to_string());
    let protocol = match (socket_type.as_deref(), r.one("protocol")) {
        (Some("stream"), None | Some(("tcp", _))) => "tcp",
        (Some("dgram"), None | Some(("udp", _))) => "udp",
        (Some(st @ ("stream" | "dgram")), Some((p, o))) => {
            return Err(err(
                o,
                format!("protocol = {p} does not go with socket_type = {st}; left out"),
            ))
        }
        (Some(other), _) => {
            let o = &r.get("socket_type").unwrap().1;
            return Err(err(o, format!("socket_type = {other}: only stream and dgram are supported by jawasd; left out")));
        }
        (None, _) => return Err(err(block_origin, "missing socket_type; left out".into())),
    };
    let wait = match r.one("wait") {
        Some(("yes", _)) => true,
        Some(("no", _)) => false,
        Some((v, o)) => return Err(err(o, format!("wait = {v}: expected yes or no; left out"))),
        None => {
            return Err(err(
                block_origin,
                "missing wait (yes or no); left out".into(),
            ))
        }
    };

    // Port: explicit, or from the services database.
    let port: u16 = match r.one("port") {
        Some((p, o)) => p
            .parse()
            .map_err(|_| err(o, format!("port = {p}: not a port number; left out")))?,
        None if unlisted => {
            return Err(err(
                block_origin,
                "an UNLISTED service needs a port; left out".into(),
            ))
        }
        None => match lookup_service(services_db, name, protocol) {
            Some(p) => p,
            None => {
                return Err(err(
                    block_origin,
                    format!(
                        "'{name}/{protocol}' is not in {} and no port is given; left out",
                        services_db.display()
                    ),
                ))
            }
        },
    };
    if let (Some((p, o)), false) = (r.one("port"), unlisted) {
        if let Some(listed) = lookup_service(services_db, name, protocol) {
            if listed.to_string() != p {
                return Err(err(o, format!("port = {p} differs from {name}/{protocol} = {listed} in {}; left out (xinetd refuses this too)", services_db.display())));
            }
        }
    }

    // Listen addresses: bind/interface, flags IPv4/IPv6, v6only.
    let bind = r.one("bind").or_else(|| r.one("interface"));
    let v6flag = flags.iter().any(|f| f == "IPv6");
    let v6only = r.one("v6only").map(|(v, _)| v == "yes");
    let mut listen = Vec::new();
    match bind {
        Some((addr, o)) => {
            let ip =
                resolve_one(addr).map_err(|m| err(o, format!("bind = {addr}: {m}; left out")))?;
            listen.push(sock(ip, port));
        }
        None if v6flag => {
            listen.push(format!("[::]:{port}"));
            if v6only != Some(true) {
                listen.push(format!("0.0.0.0:{port}"));
                out.comment("jawasd: xinetd's IPv6 socket is dual-stack; jawasd listens on [::] (IPv6 only) and 0.0.0.0 instead, same effect");
            }
        }
        None => {
            listen.push(format!("0.0.0.0:{port}"));
        }
    }
    let listen_origin = r
        .get("bind")
        .or_else(|| r.get("interface"))
        .or_else(|| r.get("port"))
        .map(|(_, o)| o.clone());
    out.line(
        &format!("listen = {}", list(&listen)),
        listen_origin.as_ref().or(Some(block_origin)),
    );
    if protocol == "udp" {
        out.line("protocol = \"udp\"", r.get("socket_type").map(|(_, o)| o));
    }
    if wait {
        out.line("wait = true", r.get("wait").map(|(_, o)| o));
    }

    // The program.
    let mut args: Vec<String> = r
        .get("server_args")
        .map(|(v, _)| v.clone())
        .unwrap_or_default();
    if let Some((redirect, o)) = r.get("redirect") {
        if protocol != "tcp" {
            return Err(err(
                o,
                "redirect works for tcp services only; left out".into(),
            ));
        }
        let (host, rport) = match redirect.as_slice() {
            [h, p] => (h, p),
            _ => return Err(err(o, "redirect = HOST PORT expected; left out".into())),
        };
        let ip = resolve_one(host).map_err(|m| err(o, format!("redirect: {m}; left out")))?;
        let rport: u16 = rport
            .parse()
            .map_err(|_| err(o, format!("redirect: bad port '{rport}'; left out")))?;
        out.line("engine = \"jawas-proxy\"", Some(o));
        out.line(
            &format!(
                "args = {}",
                list(&["tcp".into(), "--to".into(), sock(ip, rport)])
            ),
            Some(o),
        );
        out.comment("jawasd: redirect runs jawas-proxy tcp (splice relay, half-close passed on), one process per connection");
    } else if internal {
        if !BUILTIN.contains(&name) {
            return Err(err(
                r.get("type").map(|(_, o)| o).unwrap_or(block_origin),
                format!("internal service '{name}' is not provided by jawas-builtin (only {}); left out", BUILTIN.join(", ")),
            ));
        }
        out.line("engine = \"jawas-builtin\"", r.get("type").map(|(_, o)| o));
        out.line(
            &format!("args = {}", list(&[name.to_string()])),
            r.get("type").map(|(_, o)| o),
        );
        if protocol == "udp" && !wait {
            out.line("wait = true", None);
            out.comment("jawasd: internal UDP services run as one jawas-builtin per burst of datagrams (wait = yes)");
        }
    } else {
        let Some((server, so)) = r.one("server") else {
            return Err(err(
                block_origin,
                "missing server (the program to run); left out".into(),
            ));
        };
        if !server.starts_with('/') {
            return Err(err(
                so,
                format!("server = {server}: xinetd wants an absolute path; left out"),
            ));
        }
        out.line(&format!("engine = {}", q(server)), Some(so));
        if flags.iter().any(|f| f == "NAMEINARGS") {
            if args.is_empty() {
                return Err(err(
                    &flags_origin,
                    "NAMEINARGS needs server_args to start with argv[0]; left out".into(),
                ));
            }
            let argv0 = args.remove(0);
            out.line(&format!("argv0 = {}", q(&argv0)), Some(&flags_origin));
        }
        if !args.is_empty() {
            out.line(
                &format!("args = {}", list(&args)),
                r.get("server_args").map(|(_, o)| o),
            );
        }
        // xinetd gives the program the socket on fd 2 as well.
        out.line("stderr = \"socket\"", None);
    }

    for f in &flags {
        match f.as_str() {
            "IPv4" | "IPv6" | "NAMEINARGS" => {}
            "NODELAY" if protocol == "tcp" => out.line("nodelay = true", Some(&flags_origin)),
            "KEEPALIVE" if protocol == "tcp" => out.line("keepalive = true", Some(&flags_origin)),
            "NODELAY" | "KEEPALIVE" => {}
            "REUSE" => {}   // jawasd always sets SO_REUSEADDR.
            "NORETRY" => {} // jawasd never retries a failed spawn.
            "NOLIBWRAP" => {}
            "SENSOR" => {
                out.line("sensor = true", Some(&flags_origin));
            }
            "INTERCEPT" | "IDONLY" | "LABELED" => {
                return Err(err(
                    &flags_origin,
                    format!("flags {f}: not supported by jawasd; left out"),
                ));
            }
            other => warn(
                findings,
                &flags_origin,
                format!(
                    "flags: unknown flag '{}'; ignored",
                    crate::escape(other.as_bytes(), 20)
                ),
            ),
        }
    }

    // Credentials.
    if let Some((u, o)) = r.one("user") {
        if !internal {
            out.line(&format!("user = {}", q(u)), Some(o));
        }
    }
    if let Some((g, o)) = r.one("group") {
        if !internal {
            out.line(&format!("group = {}", q(g)), Some(o));
        }
    }
    if let Some((g, o)) = r.one("groups") {
        match g {
            "yes" => {}
            "no" => out.line("groups = false", Some(o)),
            other => {
                return Err(err(
                    o,
                    format!("groups = {other}: expected yes or no; left out"),
                ))
            }
        }
    }

    // Limits.
    for (key, native) in [("instances", "instances"), ("per_source", "per_source")] {
        if let Some((v, o)) = r.one(key) {
            if v != "UNLIMITED" {
                let n: u32 = v.parse().map_err(|_| {
                    err(
                        o,
                        format!("{key} = {v}: expected a number or UNLIMITED; left out"),
                    )
                })?;
                if n == 0 {
                    out.line("only_from = []", Some(o));
                    out.comment(&format!("jawasd: {key} = 0 serves nobody"));
                } else {
                    out.line(&format!("{native} = {n}"), Some(o));
                }
            }
        }
    }
    if let Some((v, o)) = r.get("cps") {
        let rate: f64 = v
            .first()
            .and_then(|s| s.parse().ok())
            .filter(|n: &f64| n.is_finite() && *n > 0.0)
            .ok_or_else(|| err(o, "cps = RATE WAIT expected; left out".into()))?;
        // `{:?}` keeps 1e300 a TOML float instead of 301 digits of integer;
        // the range is config's to check.
        out.line(&format!("rate = {rate:?}"), Some(o));
        out.comment("jawasd: over the cps rate, connections are refused and logged; the service is never switched off (xinetd's wait time is not used)");
    }
    if let Some((v, o)) = r.one("max_load") {
        let l: f64 = v
            .parse()
            .ok()
            .filter(|l: &f64| l.is_finite())
            .ok_or_else(|| err(o, format!("max_load = {v}: expected a number; left out")))?;
        out.line(&format!("max_load = {l:?}"), Some(o));
    }
    if let Some((v, o)) = r.one("nice") {
        let n: i32 = v
            .parse()
            .map_err(|_| err(o, format!("nice = {v}: expected a number; left out")))?;
        out.line(&format!("nice = {}", n.clamp(-20, 19)), Some(o));
    }
    if let Some((v, o)) = r.one("umask") {
        if u32::from_str_radix(v, 8).is_err() {
            return Err(err(
                o,
                format!("umask = {v}: expected octal digits; left out"),
            ));
        }
        out.line(&format!("umask = {}", q(v)), Some(o));
    }
    for (key, native) in [
        ("rlimit_as", "rlimit_as"),
        ("rlimit_files", "rlimit_nofile"),
        ("rlimit_cpu", "rlimit_cpu"),
        ("rlimit_data", "rlimit_data"),
        ("rlimit_rss", "rlimit_rss"),
        ("rlimit_stack", "rlimit_stack"),
    ] {
        if let Some((v, o)) = r.one(key) {
            if v == "UNLIMITED" {
                continue;
            }
            let Some(n) = crate::config::parse_size(v) else {
                return Err(err(
                    o,
                    format!(
                        "{key} = {v}: expected a number (K or M suffix) or UNLIMITED; left out"
                    ),
                ));
            };
            // Files and CPU seconds are plain numbers in TOML ("10K" files
            // is 10240); sizes keep the user's spelling. config checks ranges.
            let value = if key == "rlimit_files" || key == "rlimit_cpu" {
                n.to_string()
            } else {
                q(v)
            };
            out.line(&format!("{native} = {value}"), Some(o));
        }
    }

    // Access control.
    for key in ["only_from", "no_access"] {
        if let Some((v, o)) = r.get(key) {
            let mut blocks = Vec::new();
            let mut seen = BTreeSet::new();
            for item in v {
                // Each form once: defaults' lists are added to every
                // service, and `+=` repeats pile up.
                if !seen.insert(item) {
                    continue;
                }
                match xinetd_address(item) {
                    Ok(list) => blocks.extend(list),
                    Err(m) => return Err(err(o, format!("{key}: {m}; left out"))),
                }
            }
            out.line(&format!("{key} = {}", list(&blocks)), Some(o));
        }
    }
    if let Some((v, o)) = r.get("access_times") {
        for t in v {
            if crate::config::parse_time_range(t).is_none() {
                return Err(err(
                    o,
                    format!("access_times: '{t}' is not HH:MM-HH:MM; left out"),
                ));
            }
        }
        out.line(&format!("access_times = {}", list(v)), Some(o));
    }
    if let Some((v, o)) = r.one("deny_time") {
        let native = match v {
            "FOREVER" => "\"forever\"".to_string(),
            "NEVER" => "\"0s\"".to_string(),
            n => match n.parse::<u64>() {
                Ok(m) => q(&format!("{m}m")),
                Err(_) => {
                    return Err(err(
                        o,
                        format!("deny_time = {v}: expected minutes, FOREVER or NEVER; left out"),
                    ))
                }
            },
        };
        out.line(&format!("deny_time = {native}"), Some(o));
    }

    // Environment: xinetd passes its whole environment unless passenv is given.
    match r.get("passenv") {
        Some((v, o)) => out.line(&format!("pass_env = {}", list(v)), Some(o)),
        None => out.line("pass_env = [\"*\"]", None),
    }
    if let Some((v, o)) = r.get("env") {
        // A map: a name given twice keeps its last value, as xinetd's
        // environment does, and TOML refuses duplicate keys.
        let mut pairs = BTreeMap::new();
        for item in v {
            let Some((k, val)) = item.split_once('=') else {
                return Err(err(o, format!("env: '{item}' is not NAME=VALUE; left out")));
            };
            pairs.insert(k, val);
        }
        let pairs: Vec<String> = pairs
            .into_iter()
            .map(|(k, val)| format!("{} = {}", q(k), q(val)))
            .collect();
        out.line(&format!("env = {{ {} }}", pairs.join(", ")), Some(o));
    }
    out.line("remote_host_env = true", None);
    out.line("log_format = \"xinetd\"", None);

    // Banners: read now, as the files are small and xinetd reads them per connection.
    for (key, native) in [
        ("banner", "banner"),
        ("banner_success", "banner_success"),
        ("banner_fail", "limit_banner"),
    ] {
        if let Some((f, o)) = r.one(key) {
            match crate::config::read_regular_capped(Path::new(f), MAX_BANNER) {
                Ok(bytes) => out.line(
                    &format!("{native} = {}", q(&String::from_utf8_lossy(&bytes))),
                    Some(o),
                ),
                Err(m) => warn(findings, o, format!("{key} = {f}: {m}; no banner")),
            }
        }
    }

    // Logging.
    for key in ["log_on_success", "log_on_failure"] {
        if let Some((v, o)) = r.get(key) {
            let mut fields = Vec::new();
            for f in v {
                match f.as_str() {
                    "PID" | "HOST" | "EXIT" | "DURATION" | "ATTEMPT" | "TRAFFIC" => fields.push(f.clone()),
                    "USERID" => warn(findings, o, format!("{key}: USERID needs ident (RFC 1413) lookups, which jawasd never makes; not logged")),
                    other => return Err(err(o, format!("{key}: unknown field '{other}'; left out"))),
                }
            }
            out.line(&format!("{key} = {}", list(&fields)), Some(o));
        }
    }
    if let Some((v, o)) = r.get("log_type") {
        match v.first().map(|s| s.as_str()) {
            Some("FILE") => match v.get(1) {
                Some(f) => {
                    out.line(&format!("log_file = {}", q(f)), Some(o));
                    if v.len() > 2 {
                        warn(findings, o, "log_type FILE: the soft and hard size limits are not enforced by jawasd (rotate the file with logrotate)".into());
                    }
                }
                None => return Err(err(o, "log_type = FILE needs a file name; left out".into())),
            },
            Some("SYSLOG") => {
                let facility = v.get(1).map(|s| s.as_str()).unwrap_or("daemon");
                let level = v.get(2).map(|s| s.as_str()).unwrap_or("info");
                out.line(
                    &format!("log_syslog = {}", q(&format!("{facility}.{level}"))),
                    Some(o),
                );
            }
            _ => {
                return Err(err(
                    o,
                    "log_type: expected SYSLOG facility [level] or FILE path; left out".into(),
                ))
            }
        }
    }

    // Refused or noted attributes.
    for key in ["rpc_version", "rpc_number"] {
        if let Some((_, o)) = r.get(key) {
            return Err(err(
                o,
                format!("{key}: RPC services are not supported by jawasd; left out"),
            ));
        }
    }
    if let Some((v, o)) = r.one("mdns") {
        if v == "yes" {
            warn(findings, o, "mdns = yes: jawasd does not register services with mDNS; the service runs unannounced".into());
        }
    }
    if let Some((_, o)) = r.get("libwrap") {
        warn(findings, o, "libwrap: jawasd does not consult tcp_wrappers (/etc/hosts.allow, /etc/hosts.deny); use only_from/no_access".into());
    }
    Ok(())
}

fn sock(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// An address, or a host name looked up now (never on the accept path).
fn resolve_one(host: &str) -> Result<IpAddr, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ip);
    }
    use std::net::ToSocketAddrs;
    (host, 0)
        .to_socket_addrs()
        .map_err(|e| format!("unable to resolve '{host}': {e}"))?
        .next()
        .map(|a| a.ip())
        .ok_or_else(|| format!("'{host}' has no address"))
}

/// One xinetd address form as CIDR blocks: `1.2.3.4`, `1.2.3.0` (trailing
/// zeros are wildcards), `1.2.{3,4}`, `1.2.3.0/24`, IPv6, or a host name
/// (looked up now, every address it has).
pub fn xinetd_address(item: &str) -> Result<Vec<String>, String> {
    if item.contains('/') {
        return crate::acl::Cidr::parse(item).map(|c| vec![c.to_string()]);
    }
    if let Some(open) = item.find('{') {
        let close = item
            .rfind('}')
            .filter(|c| *c == item.len() - 1)
            .ok_or(format!("'{item}': unclosed '{{'"))?;
        let prefix = item[..open].trim_end_matches('.');
        let mut out = Vec::new();
        for part in item[open + 1..close].split(',') {
            let part = part.trim();
            let addr = if prefix.is_empty() {
                part.to_string()
            } else {
                format!("{prefix}.{part}")
            };
            let octets: Vec<&str> = addr.split('.').collect();
            if octets.len() > 4 || octets.iter().any(|o| o.parse::<u8>().is_err()) {
                return Err(format!("'{item}' is not a factorized IPv4 address"));
            }
            let bits = octets.len() * 8;
            let mut full = octets.clone();
            while full.len() < 4 {
                full.push("0");
            }
            out.push(format!("{}/{bits}", full.join(".")));
        }
        return Ok(out);
    }
    if let Ok(ip) = item.parse::<IpAddr>() {
        return Ok(vec![match ip {
            IpAddr::V4(a) => {
                let o = a.octets();
                // Rightmost zero octets are wildcards; 0.0.0.0 matches all.
                let zeros = o.iter().rev().take_while(|b| **b == 0).count();
                format!("{a}/{}", 32 - 8 * zeros)
            }
            IpAddr::V6(a) => format!("{a}/128"),
        }]);
    }
    if item.starts_with('.') {
        return Err(format!("'{item}': domain patterns need a reverse lookup per connection, which jawasd never makes"));
    }
    use std::net::ToSocketAddrs;
    let addrs: BTreeSet<String> = (item, 0)
        .to_socket_addrs()
        .map_err(|e| format!("unable to resolve host '{item}': {e}"))?
        .map(|a| match a.ip() {
            IpAddr::V4(v) => format!("{v}/32"),
            IpAddr::V6(v) => format!("{v}/128"),
        })
        .collect();
    if addrs.is_empty() {
        return Err(format!("host '{item}' has no address"));
    }
    Ok(addrs.into_iter().collect())
}

/// Port of `name/proto` in an /etc/services-format file (names and aliases).
fn lookup_service(db: &Path, name: &str, proto: &str) -> Option<u16> {
    let text = std::fs::read_to_string(db).ok()?;
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let (Some(svc), Some(pp)) = (words.next(), words.next()) else {
            continue;
        };
        let Some((port, p)) = pp.split_once('/') else {
            continue;
        };
        if p != proto {
            continue;
        }
        if svc == name || words.any(|alias| alias == name) {
            return port.parse().ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_forms() {
        let cases: &[(&str, &[&str])] = &[
            ("192.0.2.7", &["192.0.2.7/32"]),
            ("192.0.2.0", &["192.0.2.0/24"]),
            ("10.0.0.0", &["10.0.0.0/8"]),
            ("0.0.0.0", &["0.0.0.0/0"]),
            ("10.1.{2,3}", &["10.1.2.0/24", "10.1.3.0/24"]),
            ("10.1.2.{5,6}", &["10.1.2.5/32", "10.1.2.6/32"]),
            ("10.0.0.0/8", &["10.0.0.0/8"]),
            ("::1", &["::1/128"]),
            ("2001:db8::/32", &["2001:db8::/32"]),
            ("localhost", &["127.0.0.1/32"]),
        ];
        for (input, want) in cases {
            let got = xinetd_address(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            for w in *want {
                assert!(got.iter().any(|g| g == w), "{input}: want {w} in {got:?}");
            }
        }
        for bad in ["10.1.{2,300}", ".example.com", "10.0.0.0/40", "1.2.{3"] {
            assert!(xinetd_address(bad).is_err(), "{bad} should be refused");
        }
    }

    /// Translates `text` (written to a temp file) with an empty services db.
    fn translate_text(name: &str, text: &str) -> Translation {
        let dir =
            std::env::temp_dir().join(format!("jawas-xinetd-unit-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("xinetd.conf");
        std::fs::write(&path, text).unwrap();
        let t = translate(&path, Path::new("/nonexistent"));
        let _ = std::fs::remove_dir_all(&dir);
        t
    }

    fn svc(i: usize) -> String {
        format!("service s{i}\n{{\n type = UNLISTED\n socket_type = stream\n wait = no\n port = {}\n server = /bin/cat\n}}\n", 1000 + i)
    }

    /// Found by config-fuzz: repeated `+=` lines in defaults, copied into
    /// thousands of services, made a 1 MB file 38 MB of TOML.
    #[test]
    fn repeated_values_are_copied_once() {
        let mut text = String::from("defaults\n{\n");
        text.push_str(&" log_on_success += PID HOST\n only_from += 10.0.0.0\n".repeat(1000));
        text.push_str("}\n");
        text.push_str(&svc(1));
        let t = translate_text("dedup", &text);
        assert!(
            t.toml.contains("only_from = [\"10.0.0.0/8\"]\n"),
            "{}",
            t.toml
        );
        assert!(
            t.toml.contains("log_on_success = [\"PID\", \"HOST\"]\n"),
            "{}",
            t.toml
        );
    }

    /// Found by config-fuzz: a large defaults block times thousands of
    /// services took minutes; now refused at once, by name.
    #[test]
    fn defaults_times_services_is_bounded() {
        let addrs: Vec<String> = (0..20_000)
            .map(|i| format!("10.{}.{}.1", i / 256 % 256, i % 256))
            .collect();
        let mut text = format!("defaults\n{{\n only_from = {}\n}}\n", addrs.join(" "));
        for i in 0..100 {
            text.push_str(&svc(i));
        }
        let started = std::time::Instant::now();
        let t = translate_text("copies", &text);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        let first = t
            .findings
            .first()
            .map(|f| f.to_string())
            .unwrap_or_default();
        assert!(
            first.contains(
                ":1: error: defaults: 20000 values copied into 100 services is over the 1048576"
            ),
            "{first}"
        );
        assert_eq!(t.findings.len(), 101);
        assert!(!t.toml.contains("[services."));
        // Under the copy limit but over the TOML limit: the first services
        // are kept, the rest refused without being translated.
        let mut text = format!("defaults\n{{\n only_from = {}\n}}\n", addrs.join(" "));
        for i in 0..50 {
            text.push_str(&svc(i));
        }
        let t = translate_text("toml", &text);
        let kept = t.toml.matches("[services.").count();
        assert!(kept > 0 && kept < 50, "{kept}");
        assert!(t.toml.len() <= MAX_TRANSLATION);
        assert_eq!(
            t.findings
                .iter()
                .filter(|f| f.message.contains("would exceed 4 MiB"))
                .count(),
            50 - kept
        );
    }

    #[test]
    fn endless_files_are_errors_not_hangs() {
        let big =
            std::env::temp_dir().join(format!("jawas-xinetd-unit-{}-banner", std::process::id()));
        std::fs::write(&big, vec![b'x'; MAX_BANNER + 1]).unwrap();
        let text = format!("include /dev/zero\ninclude /proc/self/environ\nservice s\n{{\n type = UNLISTED\n socket_type = stream\n wait = no\n port = 7\n server = /bin/cat\n banner = /dev/zero\n banner_success = {}\n}}\n", big.display());
        let t = translate_text("zero", &text);
        let _ = std::fs::remove_file(&big);
        let findings: Vec<String> = t.findings.iter().map(|f| f.to_string()).collect();
        let wants = [
            "/dev/zero: error: unable to read: not a regular file".to_string(),
            "/proc/self/environ: error: unable to read: not a regular file".to_string(),
        ];
        for w in wants {
            assert!(findings.contains(&w), "{w}: {findings:?}");
        }
        for w in [
            ":10: warning: banner = /dev/zero: not a regular file; no banner",
            ":11: warning: banner_success = ",
            ": larger than 65536 bytes; no banner",
        ] {
            assert!(findings.iter().any(|f| f.contains(w)), "{w}: {findings:?}");
        }
        assert!(t.toml.contains("[services.s]"));
    }

    #[test]
    fn toml_quoting() {
        assert_eq!(q("a\"b\\c\r\n"), "\"a\\\"b\\\\c\\r\\n\"");
        assert_eq!(q("bell\x07"), "\"bell\\u0007\"");
    }
}
