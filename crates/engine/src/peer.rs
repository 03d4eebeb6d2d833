//! The two ends of the connection, typed, from the UCSPI environment that
//! jawasd and tcpserver set (tcp-environ(5)), with xinetd's REMOTE_HOST as
//! a fallback for the client's address.
//!
//! Invariant: a value that does not parse is treated as absent, never as a
//! panic or an error: the environment is not the engine's to validate, and
//! an access log or CGI variable saying "unknown" beats refusing to serve.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// The client (remote) and the address it connected to (local).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Peer {
    /// The client's address. An IPv4-mapped IPv6 address is given as IPv4.
    pub remote_ip: Option<IpAddr>,
    /// The client's port (absent under xinetd, which passes only REMOTE_HOST).
    pub remote_port: Option<u16>,
    /// The local address the client connected to.
    pub local_ip: Option<IpAddr>,
    /// The local port.
    pub local_port: Option<u16>,
}

impl Peer {
    /// Reads TCPREMOTEIP, TCPREMOTEPORT, TCPLOCALIP, TCPLOCALPORT (and
    /// REMOTE_HOST when TCPREMOTEIP is absent or unparsable) from the
    /// process environment.
    pub fn from_env() -> Peer {
        Peer::from_vars(|k| std::env::var(k).ok())
    }

    /// The same from any lookup, so it can be tested without touching the
    /// process environment.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Peer {
        let ip = |k: &str| var(k).as_deref().and_then(parse_ip);
        let port = |k: &str| var(k).as_deref().and_then(parse_port);
        Peer {
            remote_ip: ip("TCPREMOTEIP").or_else(|| ip("REMOTE_HOST")),
            remote_port: port("TCPREMOTEPORT"),
            local_ip: ip("TCPLOCALIP"),
            local_port: port("TCPLOCALPORT"),
        }
    }

    /// The client's socket address, when both its address and port are known.
    pub fn remote(&self) -> Option<SocketAddr> {
        Some(SocketAddr::new(self.remote_ip?, self.remote_port?))
    }

    /// The local socket address, when both parts are known.
    pub fn local(&self) -> Option<SocketAddr> {
        Some(SocketAddr::new(self.local_ip?, self.local_port?))
    }

    /// The client as a log shows it: `IP:PORT`, `[IPv6]:PORT`, the bare
    /// address when the port is unknown, `-` when nothing is.
    pub fn remote_display(&self) -> impl fmt::Display + '_ {
        EndDisplay(self.remote_ip, self.remote_port)
    }
}

struct EndDisplay(Option<IpAddr>, Option<u16>);

impl fmt::Display for EndDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0, self.1) {
            (Some(ip), Some(port)) => write!(f, "{}", SocketAddr::new(ip, port)),
            (Some(ip), None) => write!(f, "{ip}"),
            (None, _) => f.write_str("-"),
        }
    }
}

/// An address as UCSPI writes it: dotted IPv4 or IPv6 in any valid form
/// (written back compact by `Display`), brackets tolerated; an IPv4-mapped
/// IPv6 address becomes IPv4, as jawasd itself reports it.
fn parse_ip(v: &str) -> Option<IpAddr> {
    let v = v.trim();
    let v = v
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(v);
    v.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

/// A decimal port, 0 to 65535, nothing else (no sign, no spaces inside).
fn parse_port(v: &str) -> Option<u16> {
    let v = v.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(vars: &[(&str, &str)]) -> Peer {
        Peer::from_vars(|k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn remote_from_ucspi_variables() {
        // (variables, remote address as displayed)
        let table: &[(&[(&str, &str)], &str)] = &[
            (
                &[("TCPREMOTEIP", "192.0.2.7"), ("TCPREMOTEPORT", "5123")],
                "192.0.2.7:5123",
            ),
            (
                &[("TCPREMOTEIP", "::1"), ("TCPREMOTEPORT", "80")],
                "[::1]:80",
            ),
            // Long IPv6 forms come back compact.
            (
                &[
                    ("TCPREMOTEIP", "2001:0db8:0000:0000:0000:0000:0000:0001"),
                    ("TCPREMOTEPORT", "1"),
                ],
                "[2001:db8::1]:1",
            ),
            // IPv4-mapped is IPv4.
            (
                &[("TCPREMOTEIP", "::ffff:10.0.0.1"), ("TCPREMOTEPORT", "9")],
                "10.0.0.1:9",
            ),
            (&[("TCPREMOTEIP", "[::1]")], "::1"),
            // xinetd: REMOTE_HOST only, no port.
            (&[("REMOTE_HOST", "203.0.113.5")], "203.0.113.5"),
            // TCPREMOTEIP wins over REMOTE_HOST; a bad one falls back.
            (
                &[("TCPREMOTEIP", "192.0.2.1"), ("REMOTE_HOST", "192.0.2.2")],
                "192.0.2.1",
            ),
            (
                &[("TCPREMOTEIP", "garbage"), ("REMOTE_HOST", "192.0.2.2")],
                "192.0.2.2",
            ),
            // Bad values are ignored, never a panic.
            (&[], "-"),
            (&[("TCPREMOTEIP", "")], "-"),
            (&[("TCPREMOTEIP", "host.example")], "-"),
            (&[("TCPREMOTEIP", "300.1.1.1")], "-"),
            (&[("TCPREMOTEIP", "fe80::1%eth0")], "-"),
            (
                &[("TCPREMOTEIP", "1.2.3.4"), ("TCPREMOTEPORT", "")],
                "1.2.3.4",
            ),
            (
                &[("TCPREMOTEIP", "1.2.3.4"), ("TCPREMOTEPORT", "65536")],
                "1.2.3.4",
            ),
            (
                &[("TCPREMOTEIP", "1.2.3.4"), ("TCPREMOTEPORT", "-1")],
                "1.2.3.4",
            ),
            (
                &[("TCPREMOTEIP", "1.2.3.4"), ("TCPREMOTEPORT", "+80")],
                "1.2.3.4",
            ),
            (
                &[("TCPREMOTEIP", "1.2.3.4"), ("TCPREMOTEPORT", "8 0")],
                "1.2.3.4",
            ),
            (
                &[
                    ("TCPREMOTEIP", "1.2.3.4"),
                    ("TCPREMOTEPORT", "99999999999999999999"),
                ],
                "1.2.3.4",
            ),
            (&[("TCPREMOTEPORT", "80")], "-"),
        ];
        for (vars, want) in table {
            let p = peer(vars);
            assert_eq!(p.remote_display().to_string(), *want, "{vars:?}");
        }
    }

    #[test]
    fn local_and_socket_addresses() {
        let p = peer(&[
            ("TCPREMOTEIP", "127.0.0.1"),
            ("TCPREMOTEPORT", "40000"),
            ("TCPLOCALIP", "::1"),
            ("TCPLOCALPORT", "7"),
        ]);
        assert_eq!(p.remote(), Some("127.0.0.1:40000".parse().unwrap()));
        assert_eq!(p.local(), Some("[::1]:7".parse().unwrap()));
        assert_eq!(p.local_ip.unwrap().to_string(), "::1");
        let half = peer(&[("TCPLOCALIP", "127.0.0.1"), ("TCPLOCALPORT", "x")]);
        assert_eq!((half.local(), half.local_port), (None, None));
        assert_eq!(half.local_ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(peer(&[]), Peer::default());
    }
}
