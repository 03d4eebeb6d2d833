//! The RFC 6455 opening handshake as a decision on one request: refuse it
//! (with the status and headers to answer), or accept it (with the 101
//! headers). Owns the origin policy and subprotocol choice. Pure: no I/O,
//! so every rule is unit-tested here.

use jawas_http::{Request, Response};
use tungstenite::handshake::derive_accept_key;

/// Which `Origin` values may open a socket.
#[derive(Debug, Clone, Default)]
pub struct OriginPolicy {
    /// `--origin` entries; scheme-less ones match http and https.
    pub allowed: Vec<String>,
    /// `--same-origin`: the origin's host[:port] must equal the Host field.
    pub same_origin: bool,
}

impl OriginPolicy {
    /// Whether any restriction is configured (otherwise every origin,
    /// and no origin, is accepted).
    fn restricts(&self) -> bool {
        self.same_origin || !self.allowed.is_empty()
    }

    /// `origin` is the Origin field, `host` the Host field. With a
    /// restriction, a missing Origin is refused: the engine cannot tell
    /// where the page came from.
    pub fn allows(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        if !self.restricts() {
            return true;
        }
        let Some(origin) = origin else { return false };
        let (scheme, authority) = match origin.split_once("://") {
            Some((s, a)) => (s.to_ascii_lowercase(), a.trim_end_matches('/')),
            None => return false,
        };
        let web = scheme == "http" || scheme == "https";
        if self.same_origin && web && host.is_some_and(|h| h.eq_ignore_ascii_case(authority)) {
            return true;
        }
        self.allowed
            .iter()
            .any(|entry| match entry.split_once("://") {
                Some(_) => entry.trim_end_matches('/').eq_ignore_ascii_case(origin),
                None => web && entry.eq_ignore_ascii_case(authority),
            })
    }
}

/// What to answer an upgrade request.
pub enum Decision {
    /// Answer this and end the connection.
    Refuse(Response),
    /// Answer 101 with these headers, then speak WebSocket.
    Accept(Response),
}

/// Whether `req` asks for a WebSocket at all (`Upgrade: websocket`).
pub fn is_upgrade(req: &Request) -> bool {
    req.header_list("Upgrade")
        .any(|u| u.eq_ignore_ascii_case("websocket"))
}

/// Decides on `req` under `origins`, choosing a subprotocol among
/// `protocols` (the server's list; the client's order decides).
pub fn decide(req: &Request, origins: &OriginPolicy, protocols: &[String]) -> Decision {
    if !is_upgrade(req) {
        return Decision::Refuse(Response::error(426).header("Upgrade", "websocket"));
    }
    if !origins.allows(req.header("Origin"), req.header("Host")) {
        return Decision::Refuse(Response::error(403));
    }
    let connection = req
        .header_list("Connection")
        .any(|c| c.eq_ignore_ascii_case("upgrade"));
    if req.method != "GET" || req.minor == 0 || !connection {
        return Decision::Refuse(Response::error(400));
    }
    if req.header("Sec-WebSocket-Version") != Some("13") {
        return Decision::Refuse(Response::error(426).header("Sec-WebSocket-Version", "13"));
    }
    let Some(key) = req.header("Sec-WebSocket-Key").filter(|k| valid_key(k)) else {
        return Decision::Refuse(Response::error(400));
    };
    let mut resp = Response::new(101)
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Accept", derive_accept_key(key.as_bytes()));
    if let Some(p) = choose_protocol(req.header_list("Sec-WebSocket-Protocol"), protocols) {
        resp = resp.header("Sec-WebSocket-Protocol", p);
    }
    Decision::Accept(resp)
}

/// The first protocol the client offers that the server supports.
fn choose_protocol<'a>(offered: impl Iterator<Item = &'a str>, ours: &[String]) -> Option<&'a str> {
    offered.into_iter().find(|o| ours.iter().any(|p| p == o))
}

/// A key is 16 bytes in base64: 24 characters ending in `==`.
fn valid_key(k: &str) -> bool {
    let b = k.as_bytes();
    b.len() == 24
        && b.ends_with(b"==")
        && b[..22]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allowed: &[&str], same_origin: bool) -> OriginPolicy {
        OriginPolicy {
            allowed: allowed.iter().map(|s| s.to_string()).collect(),
            same_origin,
        }
    }

    #[test]
    fn origins() {
        let host = Some("example.com:8080");
        let cases: &[(&[&str], bool, Option<&str>, bool)] = &[
            (&[], false, None, true),
            (&[], false, Some("https://evil.test"), true),
            (&["example.com"], false, Some("https://example.com"), true),
            (&["example.com"], false, Some("http://EXAMPLE.com"), true),
            (&["example.com"], false, Some("ftp://example.com"), false),
            (
                &["example.com"],
                false,
                Some("https://example.com:1"),
                false,
            ),
            (&["example.com"], false, None, false),
            (&["https://a.test"], false, Some("https://a.test"), true),
            (&["https://a.test"], false, Some("http://a.test"), false),
            (&[], true, Some("http://example.com:8080"), true),
            (&[], true, Some("http://example.com"), false),
            (&[], true, Some("null"), false),
            (&["b.test"], true, Some("https://b.test"), true),
        ];
        for (allowed, same, origin, want) in cases {
            let got = policy(allowed, *same).allows(*origin, host);
            assert_eq!(got, *want, "{allowed:?} same={same} origin={origin:?}");
        }
    }

    #[test]
    fn protocols() {
        let ours = vec!["chat".to_string(), "v2".to_string()];
        let cases: &[(&[&str], Option<&str>)] = &[
            (&[], None),
            (&["x"], None),
            (&["v2", "chat"], Some("v2")),
            (&["x", "chat"], Some("chat")),
        ];
        for (offered, want) in cases {
            assert_eq!(choose_protocol(offered.iter().copied(), &ours), *want);
        }
    }

    #[test]
    fn keys() {
        let cases = [
            ("dGhlIHNhbXBsZSBub25jZQ==", true),
            ("dGhlIHNhbXBsZSBub25jZQ=", false),
            ("", false),
            ("dGhlIHNhbXBsZSBub25j!Q==", false),
        ];
        for (k, want) in cases {
            assert_eq!(valid_key(k), want, "{k}");
        }
    }
}
