//! What the HTTP proxy changes in the messages it passes on, as pure
//! functions: the path prefix, the request head sent upstream (Host, the
//! X-Forwarded-* and Forwarded fields, hop-by-hop removal, framing), and
//! the response fields sent back (hop-by-hop removal, Location).
//!
//! Invariant: every field not named here passes byte for byte and in its
//! order; repeated fields stay repeated, never joined.

use std::net::IpAddr;

use jawas_http::client::remove_hop_by_hop;

/// `--strip-prefix PREFIX[=REPLACEMENT]`: the client-facing path prefix
/// and what the upstream sees instead (empty: the prefix is removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefix {
    pub outer: String,
    pub inner: String,
}

impl Prefix {
    pub fn parse(v: &str) -> Result<Prefix, String> {
        let (outer, inner) = v.split_once('=').unwrap_or((v, ""));
        let clean = |p: &str, what: &str| -> Result<String, String> {
            if !p.is_empty() && !p.starts_with('/') {
                return Err(format!("{what} must start with '/'"));
            }
            Ok(p.trim_end_matches('/').to_string())
        };
        let outer = clean(outer, "PREFIX")?;
        if outer.is_empty() {
            return Err("PREFIX must be a path such as /app".into());
        }
        Ok(Prefix {
            outer,
            inner: clean(inner, "REPLACEMENT")?,
        })
    }

    /// The upstream target for a client target, or `None` when the target
    /// is not under the prefix (`/app` covers `/app`, `/app/...` and
    /// `/app?...`, not `/apple`).
    pub fn strip(&self, target: &str) -> Option<String> {
        let rest = swap(target, &self.outer, &self.inner)?;
        Some(if rest.starts_with('/') {
            rest
        } else {
            format!("/{rest}")
        })
    }

    /// A path the upstream wrote (a Location) as the client must see it;
    /// `None` when it is not under the upstream's side of the prefix.
    pub fn restore(&self, path: &str) -> Option<String> {
        if self.inner.is_empty() {
            return path
                .starts_with('/')
                .then(|| format!("{}{path}", self.outer));
        }
        swap(path, &self.inner, &self.outer)
    }
}

/// `target` with its leading `from` (at a segment end) replaced by `to`.
fn swap(target: &str, from: &str, to: &str) -> Option<String> {
    let rest = target.strip_prefix(from)?;
    if !(rest.is_empty() || rest.starts_with('/') || rest.starts_with('?')) {
        return None;
    }
    Some(format!("{to}{rest}"))
}

/// What the request head sent upstream is made from besides the request.
pub struct Context<'a> {
    /// `--host`: the Host to send instead of the client's.
    pub host: Option<&'a str>,
    /// The upstream's authority, the Host for a client that sent none.
    pub upstream: &'a str,
    pub client_ip: Option<IpAddr>,
    /// `--trust-forwarded`: keep and extend the inbound forwarding fields.
    pub trust_forwarded: bool,
}

/// How the request body goes upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    None,
    Length(u64),
    Chunked,
}

const FORWARDING: &[&str] = &[
    "X-Forwarded-For",
    "X-Forwarded-Proto",
    "X-Forwarded-Host",
    "Forwarded",
];

/// Fields the proxy sets itself, whatever the client sent.
const OURS: &[&str] = &["Host", "Content-Length", "Expect"];

fn is(name: &str, set: &[&str]) -> bool {
    set.iter().any(|s| s.eq_ignore_ascii_case(name))
}

/// A `Forwarded` node or host value, quoted when it is not a token
/// (RFC 7239 section 4: IPv6 addresses and host:port need quotes).
fn forwarded_value(v: &str) -> String {
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if !v.is_empty() && v.chars().all(token) {
        v.to_string()
    } else {
        format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// The request head for the upstream: request line, Host, the client's
/// end-to-end fields in order, forwarding fields, `upgrade` (the protocol
/// of an Upgrade passed through), then framing.
pub fn request_head(
    method: &str,
    target: &str,
    headers: &[(String, Vec<u8>)],
    framing: BodyFraming,
    upgrade: Option<&[u8]>,
    ctx: &Context<'_>,
) -> Vec<u8> {
    let client_host = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("Host"))
        .map(|(_, v)| v.as_slice());
    let mut fields = headers.to_vec();
    remove_hop_by_hop(&mut fields);
    let mut out = Vec::with_capacity(512);
    let mut line = |k: &str, v: &[u8]| {
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    };
    let host = match (ctx.host, client_host) {
        (Some(h), _) => h.as_bytes(),
        (None, Some(h)) => h,
        (None, None) => ctx.upstream.as_bytes(),
    };
    line("Host", host);
    let mut prior_xff: Vec<&[u8]> = Vec::new();
    let mut prior_fwd: Vec<&[u8]> = Vec::new();
    for (k, v) in &fields {
        if is(k, OURS) {
            continue;
        }
        if is(k, FORWARDING) {
            if !ctx.trust_forwarded {
                continue;
            }
            // Trusted: the chains are extended below; Proto and Host
            // stay as the proxy in front said.
            if k.eq_ignore_ascii_case("X-Forwarded-For") {
                prior_xff.push(v);
                continue;
            }
            if k.eq_ignore_ascii_case("Forwarded") {
                prior_fwd.push(v);
                continue;
            }
        }
        line(k, v);
    }
    let ip = ctx.client_ip.map(|ip| ip.to_string());
    let join = |prior: &[&[u8]], last: &str| {
        let mut v = prior.join(&b", "[..]);
        if !v.is_empty() {
            v.extend_from_slice(b", ");
        }
        v.extend_from_slice(last.as_bytes());
        v
    };
    let node = ip.clone().unwrap_or_else(|| "unknown".into());
    line("X-Forwarded-For", &join(&prior_xff, &node));
    let trusted_has = |name: &str| {
        ctx.trust_forwarded && fields.iter().any(|(k, _)| k.eq_ignore_ascii_case(name))
    };
    if !trusted_has("X-Forwarded-Proto") {
        line("X-Forwarded-Proto", b"http");
    }
    if let (Some(h), false) = (client_host, trusted_has("X-Forwarded-Host")) {
        line("X-Forwarded-Host", h);
    }
    let for_node = match ctx.client_ip {
        Some(IpAddr::V6(v6)) => forwarded_value(&format!("[{v6}]")),
        Some(v4) => v4.to_string(),
        None => "unknown".into(),
    };
    let mut fwd = format!("for={for_node}");
    if let Some(h) = client_host.and_then(|h| std::str::from_utf8(h).ok()) {
        fwd.push_str(&format!(";host={}", forwarded_value(h)));
    }
    fwd.push_str(";proto=http");
    line("Forwarded", &join(&prior_fwd, &fwd));
    if let Some(proto) = upgrade {
        line("Connection", b"Upgrade");
        line("Upgrade", proto);
    }
    match framing {
        BodyFraming::None => {}
        BodyFraming::Length(n) => line("Content-Length", n.to_string().as_bytes()),
        BodyFraming::Chunked => line("Transfer-Encoding", b"chunked"),
    }
    let mut head = Vec::with_capacity(out.len() + target.len() + 32);
    head.extend_from_slice(method.as_bytes());
    head.push(b' ');
    head.extend_from_slice(target.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\n");
    head.extend_from_slice(&out);
    head.extend_from_slice(b"\r\n");
    head
}

/// The response fields for the client: hop-by-hop ones removed, Location
/// pointed back at the client-facing side (see `location`).
pub fn response_fields(
    mut headers: Vec<(String, Vec<u8>)>,
    prefix: Option<&Prefix>,
    sent_host: &[u8],
) -> Vec<(String, Vec<u8>)> {
    remove_hop_by_hop(&mut headers);
    for (k, v) in headers.iter_mut() {
        if k.eq_ignore_ascii_case("Location") {
            if let Some(new) = location(v, prefix, sent_host) {
                *v = new;
            }
        }
    }
    headers
}

/// A Location the client can follow: an absolute URL naming the host the
/// upstream was asked for becomes a path (the client's own scheme and host
/// apply), and a path under the upstream's side of the prefix gets the
/// client-facing prefix back. `None`: leave it as it is.
pub fn location(value: &[u8], prefix: Option<&Prefix>, sent_host: &[u8]) -> Option<Vec<u8>> {
    let v = std::str::from_utf8(value).ok()?;
    let mut path = v;
    let mut changed = false;
    for scheme in ["http://", "https://"] {
        let Some(rest) = v.strip_prefix(scheme) else {
            continue;
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        if !rest.as_bytes()[..end].eq_ignore_ascii_case(sent_host) {
            return None;
        }
        path = &rest[end..];
        changed = true;
        if path.is_empty() {
            path = "/";
        }
    }
    if !path.starts_with('/') || path.starts_with("//") {
        return None;
    }
    let out = match prefix.and_then(|p| p.restore(path)) {
        Some(p) => p,
        None if changed => path.to_string(),
        None => return None,
    };
    Some(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_cases() {
        let p = |v: &str| Prefix::parse(v).unwrap();
        let strip: &[(&str, &str, Option<&str>)] = &[
            ("/app", "/app/x?y", Some("/x?y")),
            ("/app", "/app", Some("/")),
            ("/app/", "/app?q", Some("/?q")),
            ("/app", "/apple", None),
            ("/app", "/other", None),
            ("/app=/v2", "/app/x", Some("/v2/x")),
            ("/app=/v2", "/app", Some("/v2")),
        ];
        for (spec, target, want) in strip {
            assert_eq!(p(spec).strip(target).as_deref(), *want, "{spec} {target}");
        }
        let restore: &[(&str, &str, Option<&str>)] = &[
            ("/app", "/login", Some("/app/login")),
            ("/app=/v2", "/v2/login", Some("/app/login")),
            ("/app=/v2", "/login", None),
        ];
        for (spec, path, want) in restore {
            assert_eq!(p(spec).restore(path).as_deref(), *want, "{spec} {path}");
        }
        for bad in ["", "/", "app", "/app=v2"] {
            assert!(Prefix::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn location_cases() {
        let app = Prefix::parse("/app").unwrap();
        type Case<'a> = (&'a str, Option<&'a Prefix>, Option<&'a str>);
        let cases: &[Case] = &[
            ("/login", Some(&app), Some("/app/login")),
            ("/login", None, None),
            ("http://front:8080/login", Some(&app), Some("/app/login")),
            ("http://front:8080/login", None, Some("/login")),
            ("https://FRONT:8080", None, Some("/")),
            ("http://elsewhere/login", Some(&app), None),
            ("//front:8080/x", Some(&app), None),
            ("relative/path", Some(&app), None),
        ];
        for (v, prefix, want) in cases {
            let got = location(v.as_bytes(), *prefix, b"front:8080");
            assert_eq!(got.as_deref(), want.map(str::as_bytes), "{v} {prefix:?}");
        }
    }

    fn fields(list: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn request_head_cases() {
        let ctx = |trust| Context {
            host: None,
            upstream: "127.0.0.1:3000",
            client_ip: Some("192.0.2.7".parse().unwrap()),
            trust_forwarded: trust,
        };
        let input = fields(&[
            ("Host", "front"),
            ("Accept", "a"),
            ("Connection", "keep-alive, X-Drop"),
            ("X-Drop", "1"),
            ("Cookie", "a=1"),
            ("Cookie", "b=2"),
            ("X-Forwarded-For", "10.0.0.1"),
            ("Forwarded", "for=10.0.0.1"),
            ("X-Forwarded-Proto", "https"),
            ("Content-Length", "3"),
            ("Expect", "100-continue"),
            ("TE", "trailers"),
        ]);
        let untrusted = "GET /x HTTP/1.1\r\nHost: front\r\nAccept: a\r\nCookie: a=1\r\n\
            Cookie: b=2\r\nX-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: http\r\n\
            X-Forwarded-Host: front\r\nForwarded: for=192.0.2.7;host=front;proto=http\r\n\
            Content-Length: 3\r\n\r\n";
        let trusted = "GET /x HTTP/1.1\r\nHost: front\r\nAccept: a\r\nCookie: a=1\r\n\
            Cookie: b=2\r\nX-Forwarded-Proto: https\r\nX-Forwarded-For: 10.0.0.1, 192.0.2.7\r\n\
            X-Forwarded-Host: front\r\n\
            Forwarded: for=10.0.0.1, for=192.0.2.7;host=front;proto=http\r\n\
            Content-Length: 3\r\n\r\n";
        for (trust, want) in [(false, untrusted), (true, trusted)] {
            let got = request_head(
                "GET",
                "/x",
                &input,
                BodyFraming::Length(3),
                None,
                &ctx(trust),
            );
            assert_eq!(String::from_utf8(got).unwrap(), want, "trust={trust}");
        }
        let v6 = Context {
            host: Some("app.local"),
            upstream: "[::1]:3000",
            client_ip: Some("2001:db8::2".parse().unwrap()),
            trust_forwarded: false,
        };
        let got = request_head(
            "POST",
            "/",
            &fields(&[("Transfer-Encoding", "chunked"), ("Upgrade", "x")]),
            BodyFraming::Chunked,
            Some(b"websocket"),
            &v6,
        );
        assert_eq!(
            String::from_utf8(got).unwrap(),
            "POST / HTTP/1.1\r\nHost: app.local\r\nX-Forwarded-For: 2001:db8::2\r\n\
             X-Forwarded-Proto: http\r\nForwarded: for=\"[2001:db8::2]\";proto=http\r\n\
             Connection: Upgrade\r\nUpgrade: websocket\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
    }

    #[test]
    fn response_fields_drop_hop_by_hop_and_keep_order() {
        let got = response_fields(
            fields(&[
                ("Set-Cookie", "a=1"),
                ("Connection", "close"),
                ("Keep-Alive", "timeout=5"),
                ("Set-Cookie", "b=2"),
                ("Location", "http://front/x"),
            ]),
            None,
            b"front",
        );
        assert_eq!(
            got,
            fields(&[
                ("Set-Cookie", "a=1"),
                ("Set-Cookie", "b=2"),
                ("Location", "/x")
            ])
        );
    }
}
