//! Address rules: the CIDR blocks of `only_from` and `no_access`.
//!
//! Owns parsing a rule (`10.0.0.0/8`, `::1`, `192.0.2.7`) and deciding whether a
//! client address may connect. It does no name lookups: rules are addresses, so
//! a check costs a few integer compares and never blocks the accept loop.
//!
//! Invariant: a `Cidr` is stored with its host bits cleared, so matching is a
//! masked compare.

#![forbid(unsafe_code)]

use std::fmt;
use std::net::IpAddr;

/// One address block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `ADDR` or `ADDR/PREFIX`, IPv4 or IPv6.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (addr_text, prefix_text) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr_text
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| {
                format!("'{text}' is not an address or CIDR block (e.g. 10.0.0.0/8, ::1)")
            })?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix_text {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("'{text}': prefix length must be 0 to {max}")),
            },
        };
        Ok(Cidr {
            addr: mask(addr, prefix),
            prefix,
        })
    }

    /// Whether `ip` lies in this block. An IPv4-mapped IPv6 client is
    /// compared as the IPv4 address it is.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                mask(ip, self.prefix) == self.addr
            }
            _ => false,
        }
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let m = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix)
            };
            IpAddr::V4((bits & m).into())
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let m = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - prefix)
            };
            IpAddr::V6((bits & m).into())
        }
    }
}

/// The access rules of one service.
#[derive(Clone, Debug, Default)]
pub struct Acl {
    /// `None`: everyone; `Some([])`: nobody.
    pub only_from: Option<Vec<Cidr>>,
    pub no_access: Vec<Cidr>,
}

impl Acl {
    /// Decides whether `ip` may connect. With no `only_from`, everyone not in
    /// `no_access` may. When both lists match, the more specific block (the
    /// longer prefix) wins, as in xinetd; a tie refuses.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let best = |list: &[Cidr]| {
            list.iter()
                .filter(|c| c.contains(ip))
                .map(|c| c.prefix())
                .max()
        };
        let deny = best(&self.no_access);
        let Some(only_from) = &self.only_from else {
            return deny.is_none();
        };
        match (best(only_from), deny) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(allow), Some(deny)) => allow > deny,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_cases() {
        let ok = [
            ("10.0.0.0/8", "10.0.0.0/8"),
            ("10.1.2.3/8", "10.0.0.0/8"),
            ("192.0.2.7", "192.0.2.7/32"),
            ("::1", "::1/128"),
            ("[::1]", "::1/128"),
            ("2001:db8::/32", "2001:db8::/32"),
            ("0.0.0.0/0", "0.0.0.0/0"),
        ];
        for (input, want) in ok {
            assert_eq!(Cidr::parse(input).unwrap().to_string(), want, "{input}");
        }
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "example.com",
            "10.0.0/8",
            "1.2.3.4/x",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn allows_cases() {
        let acl = |only: &[&str], deny: &[&str]| Acl {
            only_from: (!only.is_empty())
                .then(|| only.iter().map(|s| Cidr::parse(s).unwrap()).collect()),
            no_access: deny.iter().map(|s| Cidr::parse(s).unwrap()).collect(),
        };
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let cases = [
            (acl(&[], &[]), "192.0.2.1", true),
            (acl(&["127.0.0.0/8"], &[]), "127.0.0.1", true),
            (acl(&["127.0.0.0/8"], &[]), "192.0.2.1", false),
            (acl(&["127.0.0.0/8"], &[]), "::1", false),
            (acl(&["::1"], &[]), "::1", true),
            (acl(&["127.0.0.0/8"], &[]), "::ffff:127.0.0.1", true),
            (acl(&[], &["127.0.0.1"]), "127.0.0.1", false),
            (acl(&[], &["127.0.0.1"]), "127.0.0.2", true),
            (acl(&["127.0.0.0/8"], &["127.0.0.2"]), "127.0.0.2", false),
            (acl(&["127.0.0.2"], &["127.0.0.0/8"]), "127.0.0.2", true),
            (acl(&["127.0.0.2"], &["127.0.0.0/8"]), "127.0.0.3", false),
            (acl(&["127.0.0.1"], &["127.0.0.1"]), "127.0.0.1", false),
            (
                Acl {
                    only_from: Some(vec![]),
                    no_access: vec![],
                },
                "127.0.0.1",
                false,
            ),
        ];
        for (i, (acl, addr, want)) in cases.iter().enumerate() {
            assert_eq!(acl.allows(ip(addr)), *want, "case {i}: {addr} with {acl:?}");
        }
    }
}
