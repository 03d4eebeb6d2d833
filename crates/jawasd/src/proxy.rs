//! The PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1 and
//! 2): parsing the bytes a load balancer sends before the client's own.
//!
//! Pure: bytes in, a verdict out; the loop peeks at a pending connection,
//! asks `parse`, and reads exactly `Header::len` bytes when it is complete,
//! so no application byte is consumed.
//!
//! Invariants: `parse` never looks past the header (at most 107 bytes for
//! version 1, 16 + the declared length for version 2, itself capped at
//! `MAX_V2`); an incomplete prefix of a valid header is `Incomplete`, never
//! an error, so a header split across many small writes is read whole.

#![forbid(unsafe_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The version 2 signature.
const SIG_V2: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// Longest version 1 line, CRLF included.
pub const MAX_V1: usize = 107;
/// Longest version 2 header accepted (16 bytes + TLVs); longer headers are
/// refused rather than buffered.
pub const MAX_V2: usize = 16 + 2048;
/// How much to peek at to see any accepted header whole.
pub const MAX_HEADER: usize = MAX_V2;

/// A complete header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Its length: the bytes to consume before the client's own.
    pub len: usize,
    /// The client's and the proxy-side addresses, `None` for v2 LOCAL and
    /// v1 UNKNOWN (and for v2 families other than TCP over IPv4/IPv6):
    /// then the socket's own addresses stand.
    pub addrs: Option<(SocketAddr, SocketAddr)>,
}

/// What a peeked prefix is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Complete(Header),
    /// A valid beginning: wait for more bytes.
    Incomplete,
    /// Not a PROXY header, or a malformed one: why.
    Invalid(&'static str),
}

/// Parses the header at the start of `buf`.
pub fn parse(buf: &[u8]) -> Parsed {
    if buf.is_empty() {
        return Parsed::Incomplete;
    }
    if buf[0] == b'\r' {
        return parse_v2(buf);
    }
    if buf[0] == b'P' {
        return parse_v1(buf);
    }
    Parsed::Invalid("no PROXY header")
}

fn parse_v1(buf: &[u8]) -> Parsed {
    let prefix = b"PROXY ";
    let n = buf.len().min(prefix.len());
    if buf[..n] != prefix[..n] {
        return Parsed::Invalid("no PROXY header");
    }
    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
        return if buf.len() >= MAX_V1 {
            Parsed::Invalid("PROXY v1 line longer than 107 bytes")
        } else if buf.contains(&b'\n') {
            Parsed::Invalid("PROXY v1 line without CRLF")
        } else {
            Parsed::Incomplete
        };
    };
    if end + 2 > MAX_V1 {
        return Parsed::Invalid("PROXY v1 line longer than 107 bytes");
    }
    let Ok(line) = std::str::from_utf8(&buf[prefix.len()..end]) else {
        return Parsed::Invalid("PROXY v1 line is not text");
    };
    let len = end + 2;
    let words: Vec<&str> = line.split(' ').collect();
    match words.as_slice() {
        ["UNKNOWN", ..] => Parsed::Complete(Header { len, addrs: None }),
        [family @ ("TCP4" | "TCP6"), src, dst, sport, dport] => {
            let v6 = *family == "TCP6";
            let ip = |s: &str| -> Option<IpAddr> {
                let ip: IpAddr = s.parse().ok()?;
                (ip.is_ipv6() == v6).then_some(ip)
            };
            let port = |s: &str| -> Option<u16> {
                // Decimal, no sign, no leading zeros (the spec's rule).
                if s.is_empty() || (s.len() > 1 && s.starts_with('0')) {
                    return None;
                }
                s.bytes()
                    .all(|b| b.is_ascii_digit())
                    .then(|| s.parse().ok())?
            };
            match (ip(src), ip(dst), port(sport), port(dport)) {
                (Some(s), Some(d), Some(sp), Some(dp)) => Parsed::Complete(Header {
                    len,
                    addrs: Some((SocketAddr::new(s, sp), SocketAddr::new(d, dp))),
                }),
                _ => Parsed::Invalid("PROXY v1 addresses or ports malformed"),
            }
        }
        _ => Parsed::Invalid("PROXY v1 line malformed"),
    }
}

fn parse_v2(buf: &[u8]) -> Parsed {
    let n = buf.len().min(SIG_V2.len());
    if buf[..n] != SIG_V2[..n] {
        return Parsed::Invalid("no PROXY header");
    }
    if buf.len() < 16 {
        return Parsed::Incomplete;
    }
    let (ver_cmd, fam) = (buf[12], buf[13]);
    let declared = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    let len = 16 + declared;
    if ver_cmd >> 4 != 2 {
        return Parsed::Invalid("PROXY v2 header with a version other than 2");
    }
    if len > MAX_V2 {
        return Parsed::Invalid("PROXY v2 header longer than 2064 bytes");
    }
    let local = match ver_cmd & 0x0f {
        0 => true,
        1 => false,
        _ => return Parsed::Invalid("PROXY v2 header with an unknown command"),
    };
    let need = match fam {
        0x11 => 12, // TCP over IPv4
        0x21 => 36, // TCP over IPv6
        _ => 0,     // UNSPEC, UDP, Unix: no address we use
    };
    if declared < need {
        return Parsed::Invalid("PROXY v2 address block shorter than its family");
    }
    if buf.len() < len {
        return Parsed::Incomplete;
    }
    // TLVs after the addresses are skipped: `len` covers them.
    let a = &buf[16..];
    let addrs = match (local, fam) {
        (true, _) => None,
        (false, 0x11) => {
            let ip = |i: usize| IpAddr::V4(Ipv4Addr::new(a[i], a[i + 1], a[i + 2], a[i + 3]));
            let port = |i: usize| u16::from_be_bytes([a[i], a[i + 1]]);
            Some((
                SocketAddr::new(ip(0), port(8)),
                SocketAddr::new(ip(4), port(10)),
            ))
        }
        (false, 0x21) => {
            let ip = |i: usize| {
                let mut o = [0u8; 16];
                o.copy_from_slice(&a[i..i + 16]);
                IpAddr::V6(Ipv6Addr::from(o))
            };
            let port = |i: usize| u16::from_be_bytes([a[i], a[i + 1]]);
            Some((
                SocketAddr::new(ip(0), port(32)),
                SocketAddr::new(ip(16), port(34)),
            ))
        }
        (false, _) => None,
    };
    Parsed::Complete(Header { len, addrs })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(cmd: u8, fam: u8, body: &[u8]) -> Vec<u8> {
        let mut h = SIG_V2.to_vec();
        h.push(0x20 | cmd);
        h.push(fam);
        h.extend_from_slice(&(body.len() as u16).to_be_bytes());
        h.extend_from_slice(body);
        h
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn version_1_lines() {
        let table: &[(&[u8], Parsed)] = &[
            (
                b"PROXY TCP4 192.0.2.7 10.0.0.1 56324 443\r\nGET /",
                Parsed::Complete(Header {
                    len: 41,
                    addrs: Some((sa("192.0.2.7:56324"), sa("10.0.0.1:443"))),
                }),
            ),
            (
                b"PROXY TCP6 2001:db8::7 ::1 1 65535\r\n",
                Parsed::Complete(Header {
                    len: 36,
                    addrs: Some((sa("[2001:db8::7]:1"), sa("[::1]:65535"))),
                }),
            ),
            (
                b"PROXY UNKNOWN\r\n",
                Parsed::Complete(Header {
                    len: 15,
                    addrs: None,
                }),
            ),
            (
                b"PROXY UNKNOWN ffff::1 ::1 1 2\r\n",
                Parsed::Complete(Header {
                    len: 31,
                    addrs: None,
                }),
            ),
            (b"", Parsed::Incomplete),
            (b"P", Parsed::Incomplete),
            (b"PROXY TCP4 192.0.2.7 10.0", Parsed::Incomplete),
            (b"PROXY TCP4 192.0.2.7 10.0.0.1 1 2\r", Parsed::Incomplete),
            (b"GET / HTTP/1.1\r\n", Parsed::Invalid("no PROXY header")),
            (b"PROXZ", Parsed::Invalid("no PROXY header")),
            (
                b"PROXY TCP4 192.0.2.7 10.0.0.1 1 2\n",
                Parsed::Invalid("PROXY v1 line without CRLF"),
            ),
            (
                b"PROXY TCP4 2001:db8::7 10.0.0.1 1 2\r\n",
                Parsed::Invalid("PROXY v1 addresses or ports malformed"),
            ),
            (
                b"PROXY TCP4 192.0.2.7 10.0.0.1 01 2\r\n",
                Parsed::Invalid("PROXY v1 addresses or ports malformed"),
            ),
            (
                b"PROXY TCP4 192.0.2.7 10.0.0.1 65536 2\r\n",
                Parsed::Invalid("PROXY v1 addresses or ports malformed"),
            ),
            (
                b"PROXY TCP4 192.0.2.7 10.0.0.1 +1 2\r\n",
                Parsed::Invalid("PROXY v1 addresses or ports malformed"),
            ),
            (
                b"PROXY TCP4 192.0.2.7  10.0.0.1 1 2\r\n",
                Parsed::Invalid("PROXY v1 line malformed"),
            ),
            (
                b"PROXY UDP4 192.0.2.7 10.0.0.1 1 2\r\n",
                Parsed::Invalid("PROXY v1 line malformed"),
            ),
        ];
        for (input, want) in table {
            assert_eq!(parse(input), *want, "{:?}", String::from_utf8_lossy(input));
        }
        let long = [b"PROXY TCP4 ".as_slice(), &[b'1'; 100]].concat();
        assert_eq!(
            parse(&long),
            Parsed::Invalid("PROXY v1 line longer than 107 bytes")
        );
    }

    #[test]
    fn version_2_headers() {
        let v4 = [192, 0, 2, 7, 10, 0, 0, 1, 0xdc, 0x04, 0x01, 0xbb];
        let mut v6 = Vec::new();
        v6.extend_from_slice(&"2001:db8::7".parse::<Ipv6Addr>().unwrap().octets());
        v6.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        v6.extend_from_slice(&[0, 80, 0x1f, 0x90]);
        // A TLV (PP2_TYPE_AUTHORITY "example.org") after the addresses.
        let mut with_tlv = v4.to_vec();
        with_tlv.extend_from_slice(&[0x02, 0, 11]);
        with_tlv.extend_from_slice(b"example.org");
        let tcp4 = Some((sa("192.0.2.7:56324"), sa("10.0.0.1:443")));
        let table: Vec<(Vec<u8>, Parsed)> = vec![
            (
                v2(1, 0x11, &v4),
                Parsed::Complete(Header {
                    len: 28,
                    addrs: tcp4,
                }),
            ),
            (
                v2(1, 0x21, &v6),
                Parsed::Complete(Header {
                    len: 52,
                    addrs: Some((sa("[2001:db8::7]:80"), sa("[::1]:8080"))),
                }),
            ),
            (
                v2(1, 0x11, &with_tlv),
                Parsed::Complete(Header {
                    len: 42,
                    addrs: tcp4,
                }),
            ),
            // LOCAL (a health check from the balancer): the socket's own.
            (
                v2(0, 0x00, &[]),
                Parsed::Complete(Header {
                    len: 16,
                    addrs: None,
                }),
            ),
            (
                v2(0, 0x11, &v4),
                Parsed::Complete(Header {
                    len: 28,
                    addrs: None,
                }),
            ),
            // Families we do not use keep the socket's addresses.
            (
                v2(1, 0x12, &v4),
                Parsed::Complete(Header {
                    len: 28,
                    addrs: None,
                }),
            ),
            (v2(1, 0x11, &v4)[..5].to_vec(), Parsed::Incomplete),
            (v2(1, 0x11, &v4)[..16].to_vec(), Parsed::Incomplete),
            (v2(1, 0x11, &v4)[..27].to_vec(), Parsed::Incomplete),
            (
                v2(1, 0x11, &v4[..8]),
                Parsed::Invalid("PROXY v2 address block shorter than its family"),
            ),
            (
                v2(2, 0x11, &v4),
                Parsed::Invalid("PROXY v2 header with an unknown command"),
            ),
            (
                {
                    let mut h = v2(1, 0x11, &v4);
                    h[12] = 0x11;
                    h
                },
                Parsed::Invalid("PROXY v2 header with a version other than 2"),
            ),
            (
                {
                    let mut h = v2(1, 0x11, &v4);
                    h[14] = 0xff;
                    h
                },
                Parsed::Invalid("PROXY v2 header longer than 2064 bytes"),
            ),
            (
                b"\r\n\r\n\0\r\nQUIZ\n".to_vec(),
                Parsed::Invalid("no PROXY header"),
            ),
        ];
        for (input, want) in &table {
            assert_eq!(parse(input), *want, "{input:?}");
        }
    }

    #[test]
    fn every_prefix_of_a_valid_header_is_incomplete() {
        let headers = [
            b"PROXY TCP4 192.0.2.7 10.0.0.1 56324 443\r\n".to_vec(),
            v2(1, 0x11, &[192, 0, 2, 7, 10, 0, 0, 1, 0, 1, 0, 2]),
        ];
        for h in headers {
            for i in 0..h.len() {
                assert_eq!(parse(&h[..i]), Parsed::Incomplete, "{:?}", &h[..i]);
            }
            assert!(matches!(parse(&h), Parsed::Complete(_)));
        }
    }
}
