//! The PROXY protocol header (HAProxy's `send-proxy` and `send-proxy-v2`)
//! that tells an upstream who the client really is.
//!
//! Pure encoding: from the client's and the local address to the bytes
//! sent first on the upstream connection. Invariant: an address pair that
//! is not fully known is sent as v1 `UNKNOWN` or v2 `LOCAL`, never as made
//! up addresses.

use std::net::{IpAddr, SocketAddr};

/// Which header to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

impl Version {
    /// `--send-proxy v1|v2`.
    pub fn parse(v: &str) -> Result<Version, String> {
        match v {
            "v1" | "1" => Ok(Version::V1),
            "v2" | "2" => Ok(Version::V2),
            _ => Err("expected v1 or v2".into()),
        }
    }
}

/// The v2 signature (12 bytes).
const SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// Both addresses in one family: IPv4 when both are, otherwise IPv6 (an
/// IPv4 one mapped), as a header carries a single family.
fn same_family(src: SocketAddr, dst: SocketAddr) -> (SocketAddr, SocketAddr) {
    let v6 = |a: SocketAddr| match a.ip() {
        IpAddr::V4(v4) => SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), a.port()),
        IpAddr::V6(_) => a,
    };
    if src.is_ipv4() && dst.is_ipv4() {
        (src, dst)
    } else {
        (v6(src), v6(dst))
    }
}

/// The header for a client at `src` that connected to `dst`.
pub fn encode(version: Version, addrs: Option<(SocketAddr, SocketAddr)>) -> Vec<u8> {
    let addrs = addrs.map(|(s, d)| same_family(s, d));
    match version {
        Version::V1 => v1(addrs),
        Version::V2 => v2(addrs),
    }
}

fn v1(addrs: Option<(SocketAddr, SocketAddr)>) -> Vec<u8> {
    let Some((s, d)) = addrs else {
        return b"PROXY UNKNOWN\r\n".to_vec();
    };
    let fam = if s.is_ipv4() { "TCP4" } else { "TCP6" };
    format!(
        "PROXY {fam} {} {} {} {}\r\n",
        s.ip(),
        d.ip(),
        s.port(),
        d.port()
    )
    .into_bytes()
}

fn v2(addrs: Option<(SocketAddr, SocketAddr)>) -> Vec<u8> {
    let mut out = SIGNATURE.to_vec();
    let Some((s, d)) = addrs else {
        // LOCAL command, UNSPEC family, no addresses: the receiver uses
        // the connection's own addresses.
        out.extend_from_slice(&[0x20, 0x00, 0, 0]);
        return out;
    };
    let octets = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    let mut body = octets(s.ip());
    body.extend_from_slice(&octets(d.ip()));
    body.extend_from_slice(&s.port().to_be_bytes());
    body.extend_from_slice(&d.port().to_be_bytes());
    // PROXY command (version 2); TCP over IPv4 (0x11) or IPv6 (0x21).
    let fam = if s.is_ipv4() { 0x11 } else { 0x21 };
    out.extend_from_slice(&[0x21, fam]);
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    fn six(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn v1_cases() {
        let cases: &[(Option<(&str, &str)>, &str)] = &[
            (
                Some(("192.0.2.1:5000", "10.0.0.1:80")),
                "PROXY TCP4 192.0.2.1 10.0.0.1 5000 80\r\n",
            ),
            (
                Some(("[2001:db8::1]:5000", "[::1]:443")),
                "PROXY TCP6 2001:db8::1 ::1 5000 443\r\n",
            ),
            // Mixed families: the IPv4 side is mapped.
            (
                Some(("192.0.2.1:1", "[::1]:2")),
                "PROXY TCP6 ::ffff:192.0.2.1 ::1 1 2\r\n",
            ),
            (None, "PROXY UNKNOWN\r\n"),
        ];
        for (addrs, want) in cases {
            let got = encode(Version::V1, addrs.map(|(s, d)| (sa(s), sa(d))));
            assert_eq!(String::from_utf8(got).unwrap(), *want, "{addrs:?}");
        }
    }

    #[test]
    fn v2_cases() {
        let sig = SIGNATURE.to_vec();
        let mut v4 = sig.clone();
        v4.extend_from_slice(&[0x21, 0x11, 0, 12, 192, 0, 2, 1, 10, 0, 0, 1]);
        v4.extend_from_slice(&[0x13, 0x88, 0, 80]);
        let mut v6 = sig.clone();
        v6.extend_from_slice(&[0x21, 0x21, 0, 36]);
        v6.extend_from_slice(&six("2001:db8::1").octets());
        v6.extend_from_slice(&six("::1").octets());
        v6.extend_from_slice(&[0x13, 0x88, 0x01, 0xbb]);
        let mut local = sig.clone();
        local.extend_from_slice(&[0x20, 0x00, 0, 0]);
        type Case<'a> = (Option<(&'a str, &'a str)>, Vec<u8>);
        let cases: Vec<Case> = vec![
            (Some(("192.0.2.1:5000", "10.0.0.1:80")), v4),
            (Some(("[2001:db8::1]:5000", "[::1]:443")), v6),
            (None, local),
        ];
        for (addrs, want) in cases {
            let got = encode(Version::V2, addrs.map(|(s, d)| (sa(s), sa(d))));
            assert_eq!(got, want, "{addrs:?}");
        }
    }

    #[test]
    fn version_names() {
        let cases = [
            ("v1", Ok(Version::V1)),
            ("2", Ok(Version::V2)),
            ("v3", Err(())),
            ("", Err(())),
        ];
        for (v, want) in cases {
            assert_eq!(Version::parse(v).map_err(|_| ()), want, "{v:?}");
        }
    }
}
