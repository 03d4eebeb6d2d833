//! Routes: which of a listener's services a request belongs to, by its
//! `Host` and its path, as jawasd decides for the first request of a
//! connection and as an engine decides for each later one (so a keep-alive
//! connection that moves to another route is handed back to jawasd).
//!
//! One pure table shared by both sides, so they can never disagree. Owns
//! host patterns (exact, `*.suffix`, any), path prefixes matched on whole
//! segments, request target normalisation, the `JAWAS_ROUTES` spelling of
//! a table, and the hand-back message (the socket sent back by
//! SCM_RIGHTS).
//!
//! Invariants: matching works on the decoded, dot-segment-resolved path
//! (as nginx matches locations), so `/static/../admin` and `/%61dmin` are
//! routed as `/admin`; a prefix matches whole segments only (`/us` never
//! catches `/users`); an exact host beats a wildcard, a longer wildcard a
//! shorter one, and a wildcard the default; the longest prefix wins. The
//! engine always receives the request's bytes untouched.

use std::io;
use std::os::fd::RawFd;

/// The hosts a route answers for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// No `host` given: the default, any host.
    Any,
    /// One name, lower case, without port or trailing dot.
    Exact(String),
    /// `*.example.org`, kept as `.example.org`: any name ending in it
    /// with at least one more label in front.
    Suffix(String),
}

impl HostPattern {
    /// Parses a pattern as written in the config. The error says why it
    /// could never match a request.
    pub fn parse(text: &str) -> Result<HostPattern, String> {
        let lower = text.to_ascii_lowercase();
        let lower = lower.strip_suffix('.').unwrap_or(&lower);
        if lower.is_empty() {
            return Err("an empty host never matches; leave `host` out for the default".into());
        }
        if lower.contains(':') && !lower.starts_with('[') {
            return Err(format!(
                "'{text}' has a port: hosts are matched without the port (write the name alone)"
            ));
        }
        if let Some(rest) = lower.strip_prefix("*.") {
            if !valid_name(rest) {
                return Err(format!(
                    "'{text}': a wildcard is `*.` followed by a host name"
                ));
            }
            return Ok(HostPattern::Suffix(format!(".{rest}")));
        }
        if lower.contains('*') {
            return Err(format!(
                "'{text}': `*` may only stand first, as in `*.example.org`"
            ));
        }
        if let Some(ip) = canonical_ip6(lower) {
            return Ok(HostPattern::Exact(ip));
        }
        if !valid_name(lower) {
            return Err(format!(
                "'{text}' is not a host name (letters, digits, '-', '.', or an [IPv6] literal)"
            ));
        }
        Ok(HostPattern::Exact(lower.to_string()))
    }

    fn text(&self) -> String {
        match self {
            HostPattern::Any => String::new(),
            HostPattern::Exact(h) => h.clone(),
            HostPattern::Suffix(s) => format!("*{s}"),
        }
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// `[addr]` in its canonical spelling (`[0::1]` is `[::1]`), so literals
/// compare as addresses.
fn canonical_ip6(s: &str) -> Option<String> {
    let ip: std::net::Ipv6Addr = s.strip_prefix('[')?.strip_suffix(']')?.parse().ok()?;
    Some(format!("[{ip}]"))
}

/// A path prefix, as segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefix {
    segments: Vec<Vec<u8>>,
}

impl Prefix {
    /// Parses a prefix as written in the config: starts with `/`, plain
    /// characters, no `.` or `..` segments (they could never be seen after
    /// normalisation).
    pub fn parse(text: &str) -> Result<Prefix, String> {
        if !text.starts_with('/') {
            return Err(format!("'{text}': a path prefix starts with '/'"));
        }
        if let Some(c) = text
            .chars()
            .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#' | '%'))
        {
            return Err(format!(
                "'{text}': {c:?} cannot appear in a path prefix (write the path decoded, without query)"
            ));
        }
        let mut segments = Vec::new();
        for s in text.split('/').filter(|s| !s.is_empty()) {
            if s == "." || s == ".." {
                return Err(format!("'{text}': '{s}' segments never reach a route"));
            }
            segments.push(s.as_bytes().to_vec());
        }
        Ok(Prefix { segments })
    }

    /// `/a/b`, or `/` for the root.
    pub fn text(&self) -> String {
        if self.segments.is_empty() {
            return "/".into();
        }
        let mut out = String::new();
        for s in &self.segments {
            out.push('/');
            out.push_str(&String::from_utf8_lossy(s));
        }
        out
    }

    /// The prefix as an engine mounted there builds links with: `/a/b`, or
    /// empty for the root (CGI's SCRIPT_NAME convention).
    pub fn mount(&self) -> String {
        if self.segments.is_empty() {
            String::new()
        } else {
            self.text()
        }
    }

    fn matches(&self, path: &[Vec<u8>]) -> bool {
        path.len() >= self.segments.len() && path[..self.segments.len()] == self.segments[..]
    }
}

/// One route: hosts and a prefix. (Which service it leads to is jawasd's
/// business, by the route's index.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub host: HostPattern,
    pub prefix: Prefix,
}

impl Route {
    /// The route's name in `JAWAS_ROUTE` and `JAWAS_ROUTES`: host pattern
    /// and prefix run together (`blog.example.org/`, `*.example.org/api`,
    /// `/static`).
    pub fn token(&self) -> String {
        format!("{}{}", self.host.text(), self.prefix.text())
    }

    fn parse_token(token: &str) -> Option<Route> {
        let slash = token.find('/')?;
        let (host, path) = token.split_at(slash);
        let host = if host.is_empty() {
            HostPattern::Any
        } else {
            HostPattern::parse(host).ok()?
        };
        Some(Route {
            host,
            prefix: Prefix::parse(path).ok()?,
        })
    }
}

/// Why a request matched no route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Miss {
    /// The target or host could not be read (400).
    Bad(&'static str),
    /// No route for this host, and no default (421).
    UnknownHost,
    /// The host has routes, none for this path (404).
    NoPrefix,
}

/// A listener's routes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    routes: Vec<Route>,
}

impl Table {
    pub fn new(routes: Vec<Route>) -> Table {
        Table { routes }
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The table as `JAWAS_ROUTES` spells it: tokens separated by spaces.
    pub fn to_env(&self) -> String {
        let tokens: Vec<String> = self.routes.iter().map(Route::token).collect();
        tokens.join(" ")
    }

    /// Reads `JAWAS_ROUTES`; `None` if any token is malformed.
    pub fn from_env(text: &str) -> Option<Table> {
        let routes = text
            .split_ascii_whitespace()
            .map(Route::parse_token)
            .collect::<Option<Vec<_>>>()?;
        Some(Table { routes })
    }

    /// The route of a request: its `Host` field (if any) and its target
    /// as sent. Returns the route's index.
    pub fn find(&self, host: Option<&[u8]>, target: &[u8]) -> Result<usize, Miss> {
        let (target_host, path) = split_target(target)?;
        let norm = |h: &[u8]| normalize_host(h).ok_or(Miss::Bad("malformed Host"));
        let host = match (target_host, host) {
            // RFC 9112 section 3.2.2 lets the target's authority win; the
            // engines read Host, so a request where they differ could be
            // routed by one and served as the other: refused.
            (Some(t), Some(h)) => {
                let t = norm(t)?;
                if t != norm(h)? {
                    return Err(Miss::Bad("Host differs from the target's authority"));
                }
                Some(t)
            }
            (Some(h), None) | (None, Some(h)) => Some(norm(h)?),
            (None, None) => None,
        };
        let path = normalize_path(path)?;
        let group = self.host_group(host.as_deref()).ok_or(Miss::UnknownHost)?;
        self.routes
            .iter()
            .enumerate()
            .filter(|(_, r)| r.host == *group && r.prefix.matches(&path))
            .max_by_key(|(_, r)| r.prefix.segments.len())
            .map(|(i, _)| i)
            .ok_or(Miss::NoPrefix)
    }

    /// The host pattern whose routes serve `host`: exact, else the longest
    /// matching wildcard, else the default.
    fn host_group(&self, host: Option<&str>) -> Option<&HostPattern> {
        let patterns = self.routes.iter().map(|r| &r.host);
        if let Some(h) = host {
            if let Some(p) = patterns
                .clone()
                .find(|p| matches!(p, HostPattern::Exact(e) if e == h))
            {
                return Some(p);
            }
            let wildcard = patterns
                .clone()
                .filter_map(|p| match p {
                    HostPattern::Suffix(s) if h.len() > s.len() && h.ends_with(s.as_str()) => {
                        Some((s.len(), p))
                    }
                    _ => None,
                })
                .max_by_key(|(len, _)| *len);
            if let Some((_, p)) = wildcard {
                return Some(p);
            }
        }
        self.routes
            .iter()
            .map(|r| &r.host)
            .find(|p| **p == HostPattern::Any)
    }
}

/// Splits a request target into the authority it names (absolute and
/// authority form) and its path.
fn split_target(target: &[u8]) -> Result<(Option<&[u8]>, &[u8]), Miss> {
    if target == b"*" {
        return Ok((None, b"/"));
    }
    if target.starts_with(b"/") {
        return Ok((None, target));
    }
    let lower = target.to_ascii_lowercase();
    for scheme in [&b"http://"[..], b"https://", b"ws://", b"wss://"] {
        if lower.starts_with(scheme) {
            let rest = &target[scheme.len()..];
            let end = rest
                .iter()
                .position(|&b| matches!(b, b'/' | b'?' | b'#'))
                .unwrap_or(rest.len());
            let path = &rest[end..];
            let path = if path.starts_with(b"/") { path } else { b"/" };
            return Ok((Some(&rest[..end]), path));
        }
    }
    // CONNECT's authority form: the host is the whole target.
    if !target.is_empty() && !target.contains(&b'/') {
        return Ok((Some(target), b"/"));
    }
    Err(Miss::Bad("malformed request target"))
}

/// The value of the first `Host` field of a parsed head.
pub fn host_field<'h>(headers: &[httparse::Header<'h>]) -> Option<&'h [u8]> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("host"))
        .map(|h| h.value)
}

/// The host of a Host field or authority: lower case, without port, user
/// info or trailing dot. `None` if it is not a host.
pub fn normalize_host(raw: &[u8]) -> Option<String> {
    let raw = std::str::from_utf8(raw).ok()?.trim();
    let raw = raw.rsplit('@').next()?;
    let host = if raw.starts_with('[') {
        let end = raw.find(']')?;
        let port = &raw[end + 1..];
        if !(port.is_empty() || port.strip_prefix(':').is_some_and(all_digits)) {
            return None;
        }
        &raw[..=end]
    } else {
        match raw.rsplit_once(':') {
            Some((h, port)) if all_digits(port) => h,
            Some(_) => return None,
            None => raw,
        }
    };
    let host = host.to_ascii_lowercase();
    if let Some(ip) = canonical_ip6(&host) {
        return Some(ip);
    }
    let host = host.strip_suffix('.').unwrap_or(&host).to_string();
    valid_name(&host).then_some(host)
}

fn all_digits(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

/// The path's segments after percent-decoding, with `.` and `..` resolved
/// and empty segments dropped. The query is cut off first.
pub fn normalize_path(path: &[u8]) -> Result<Vec<Vec<u8>>, Miss> {
    // A fragment is never part of a request target (RFC 9112 section
    // 3.2); engines would not cut there, so neither may the router.
    if path.contains(&b'#') {
        return Err(Miss::Bad("'#' in the request target"));
    }
    let end = path.iter().position(|&b| b == b'?').unwrap_or(path.len());
    let decoded = percent_decode(&path[..end]).ok_or(Miss::Bad("malformed percent-encoding"))?;
    let mut out: Vec<Vec<u8>> = Vec::new();
    for seg in decoded.split(|&b| b == b'/') {
        match seg {
            b"" | b"." => {}
            b".." => {
                if out.pop().is_none() {
                    return Err(Miss::Bad("path climbs above the root"));
                }
            }
            s => out.push(s.to_vec()),
        }
    }
    Ok(out)
}

fn percent_decode(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            let v = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
            if v == 0 {
                return None;
            }
            out.push(v);
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Some(out)
}

/// What a routed engine knows about its connection, from the environment
/// jawasd gave it.
#[derive(Debug, Clone)]
pub struct Routed {
    table: Table,
    /// Its own route's index; `None` when it is the fallback service.
    own: Option<usize>,
    /// The hand-back socket (close-on-exec from the moment it is read).
    handback: RawFd,
}

/// `JAWAS_ROUTE` of a connection given to the fallback service.
pub const FALLBACK: &str = "fallback";

impl Routed {
    /// Reads `JAWAS_ROUTE`, `JAWAS_ROUTES` and `JAWAS_HANDBACK_FD`; `None`
    /// when the connection is not routed (or the variables are not
    /// jawasd's). Marks the hand-back descriptor close-on-exec, so that
    /// programs the engine runs (CGI scripts) never inherit it.
    pub fn from_env() -> Option<Routed> {
        let own = std::env::var("JAWAS_ROUTE").ok()?;
        let table = Table::from_env(&std::env::var("JAWAS_ROUTES").ok()?)?;
        let handback: RawFd = std::env::var("JAWAS_HANDBACK_FD").ok()?.parse().ok()?;
        // SAFETY: F_GETFD/F_SETFD on a descriptor number; an invalid one
        // fails with EBADF and changes nothing.
        let flags = unsafe { libc::fcntl(handback, libc::F_GETFD) };
        if handback < 3 || flags < 0 {
            return None;
        }
        // SAFETY: as above.
        unsafe { libc::fcntl(handback, libc::F_SETFD, flags | libc::FD_CLOEXEC) };
        let own = if own == FALLBACK {
            None
        } else {
            Some(table.routes.iter().position(|r| r.token() == own)?)
        };
        Some(Routed {
            table,
            own,
            handback,
        })
    }

    /// Whether a request with this host and target is this engine's to
    /// serve; a request that is not (another route, or none: jawasd answers
    /// those) goes back to jawasd.
    pub fn is_own(&self, host: Option<&[u8]>, target: &[u8]) -> bool {
        match self.table.find(host, target) {
            Ok(i) => Some(i) == self.own,
            // jawasd answers it (400): what the router cannot read, an
            // engine must not read its own way.
            Err(Miss::Bad(_)) => false,
            Err(_) => self.own.is_none(),
        }
    }

    /// Sends the connection back to jawasd (one byte, the socket attached).
    /// The caller then stops using it and exits without shutting it down.
    pub fn hand_back(&self, socket: RawFd) -> io::Result<()> {
        send_fd(self.handback, socket)
    }
}

/// Sends one byte with `fd` attached (SCM_RIGHTS) on the Unix socket
/// `channel`.
pub fn send_fd(channel: RawFd, fd: RawFd) -> io::Result<()> {
    jawas_engine::fdpass::send_with_fds(channel, b"H", &[fd], libc::MSG_NOSIGNAL)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(tokens: &str) -> Table {
        Table::from_env(tokens).expect("valid tokens")
    }

    #[test]
    fn longest_prefix_on_whole_segments() {
        let t = table("/ /us /static /static/img");
        let cases: &[(&str, usize)] = &[
            ("/", 0),
            ("/users", 0),
            ("/us", 1),
            ("/us/", 1),
            ("/us/x?y=1", 1),
            ("/us?q", 1),
            ("/static", 2),
            ("/static/app.css", 2),
            ("/static/img/a.png", 3),
            ("/static/imgs", 2),
            ("/static/../us/a", 1),
            ("/%75s/a", 1),
            ("//static///img//a", 3),
            ("/static/./img", 3),
            ("*", 0),
        ];
        for (target, want) in cases {
            assert_eq!(t.find(None, target.as_bytes()), Ok(*want), "{target}");
        }
    }

    #[test]
    fn hosts_exact_then_wildcard_then_default() {
        let t = table(
            "/ blog.example.org/ *.example.org/ *.a.example.org/ [::1]/ blog.example.org/static",
        );
        let cases: &[(Option<&str>, &str, Result<usize, Miss>)] = &[
            (Some("other.net"), "/", Ok(0)),
            (None, "/", Ok(0)),
            (Some("blog.example.org"), "/", Ok(1)),
            (Some("BLOG.Example.org.:8080"), "/x", Ok(1)),
            (Some("blog.example.org"), "/static/x", Ok(5)),
            (Some("shop.example.org"), "/", Ok(2)),
            (Some("x.y.example.org"), "/", Ok(2)),
            (Some("x.a.example.org"), "/", Ok(3)),
            (Some("example.org"), "/", Ok(0)),
            (Some("[::1]:8080"), "/", Ok(4)),
            (Some("[0:0::1]"), "/", Ok(4)),
            (Some("bad host"), "/", Err(Miss::Bad("malformed Host"))),
            (Some("h:port"), "/", Err(Miss::Bad("malformed Host"))),
            // An absolute-form target's authority must agree with Host.
            (
                Some("blog.example.org"),
                "http://BLOG.example.org:80/static",
                Ok(5),
            ),
            (None, "http://blog.example.org/static", Ok(5)),
            (
                Some("other.net"),
                "http://blog.example.org/static",
                Err(Miss::Bad("Host differs from the target's authority")),
            ),
        ];
        for (host, target, want) in cases {
            assert_eq!(
                t.find(host.map(str::as_bytes), target.as_bytes()),
                *want,
                "{host:?} {target}"
            );
        }
    }

    #[test]
    fn misses() {
        let t = table("a.example/ a.example/api b.example/only");
        assert_eq!(t.find(Some(b"c.example"), b"/"), Err(Miss::UnknownHost));
        assert_eq!(t.find(None, b"/"), Err(Miss::UnknownHost));
        assert_eq!(t.find(Some(b"b.example"), b"/"), Err(Miss::NoPrefix));
        assert_eq!(t.find(Some(b"b.example"), b"/onlyx"), Err(Miss::NoPrefix));
        assert_eq!(t.find(Some(b"a.example"), b"/api/v1"), Ok(1));
        assert!(matches!(
            t.find(Some(b"a.example"), b"/../x"),
            Err(Miss::Bad(_))
        ));
        assert!(matches!(
            t.find(Some(b"a.example"), b"/%zz"),
            Err(Miss::Bad(_))
        ));
        assert!(matches!(
            t.find(Some(b"a.example"), b"/a%00"),
            Err(Miss::Bad(_))
        ));
        assert!(matches!(
            t.find(Some(b"a.example"), b"a/b"),
            Err(Miss::Bad(_))
        ));
        for (host, target) in [
            (&b"a.example"[..], &b"/x#/../api"[..]),
            (b"a.example", b"/%+f"),
            (b"a..example", b"/"),
        ] {
            assert!(matches!(t.find(Some(host), target), Err(Miss::Bad(_))));
        }
    }

    #[test]
    fn patterns_that_never_match_are_refused() {
        for bad in [
            "",
            "*",
            "*.",
            "a.*.org",
            "foo*",
            "example.org:80",
            "a b",
            "a..b",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            HostPattern::parse("Example.ORG."),
            Ok(HostPattern::Exact("example.org".into()))
        );
        assert_eq!(
            HostPattern::parse("*.Example.org"),
            Ok(HostPattern::Suffix(".example.org".into()))
        );
        for bad in ["static", "/a?b", "/a/../b", "/a b", "/%41"] {
            assert!(Prefix::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Prefix::parse("/blog/").unwrap().text(), "/blog");
        assert_eq!(Prefix::parse("/").unwrap().mount(), "");
        assert_eq!(Prefix::parse("/blog").unwrap().mount(), "/blog");
    }

    #[test]
    fn env_spelling_round_trips() {
        let text = "/ blog.example.org/ *.example.org/api [::1]/x";
        let t = table(text);
        assert_eq!(t.to_env(), text);
        assert_eq!(Table::from_env("/ nope"), None);
        assert_eq!(Table::from_env("a:1/"), None);
    }
}
