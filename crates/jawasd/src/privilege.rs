//! Least privilege: a jawasd started as root keeps only the capabilities
//! its configuration needs (switching engines to their users, binding low
//! ports, chroot, signalling engines of other users, raising their limits
//! and priority) and drops every other one once its sockets are bound.
//!
//! Owns the capability sets of the jawasd process (capget/capset). The
//! bounding set is left alone: an engine that runs as root (a service
//! without `user`) still gets root's capabilities at its exec, as under
//! inetd; what is cut is what jawasd itself, parsing configs and talking
//! to clients' sockets, could do if it were subverted.
//!
//! Invariants: capabilities only ever shrink; a reload whose
//! configuration needs one that was dropped is refused, naming it, rather
//! than failing at the first connection.

use std::io;

use crate::config::Config;

/// Capability numbers (linux/capability.h) and names.
const CAPS: &[(u32, &str)] = &[
    (1, "CAP_DAC_OVERRIDE"),
    (2, "CAP_DAC_READ_SEARCH"),
    (5, "CAP_KILL"),
    (6, "CAP_SETGID"),
    (7, "CAP_SETUID"),
    (10, "CAP_NET_BIND_SERVICE"),
    (18, "CAP_SYS_CHROOT"),
    (23, "CAP_SYS_NICE"),
    (24, "CAP_SYS_RESOURCE"),
];

const VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct Header {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct Data {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// The capabilities `config` needs, as a bit set (two 32-bit words).
pub fn needed(config: &Config) -> u64 {
    let mut set = bit(1) | bit(2); // reading configs, engines and workdirs of others
    for svc in &config.services {
        if svc.creds.is_some() {
            set |= bit(5) | bit(6) | bit(7);
        }
        if svc.listen.iter().any(|a| a.port() != 0 && a.port() < 1024) {
            set |= bit(10);
        }
        if svc.chroot.is_some() {
            set |= bit(18);
        }
        if svc.nice.is_some_and(|n| n < 0) {
            set |= bit(23);
        }
        if !svc.rlimits.is_empty() {
            set |= bit(24);
        }
    }
    set
}

fn bit(n: u32) -> u64 {
    1u64 << n
}

/// Names of the capabilities in `set`.
pub fn names(set: u64) -> Vec<&'static str> {
    CAPS.iter()
        .filter(|(n, _)| set & bit(*n) != 0)
        .map(|(_, name)| *name)
        .collect()
}

fn get() -> io::Result<u64> {
    let mut hdr = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget writes two `Data` structs (version 3) into the array
    // we own and reads the header we own.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut hdr, data.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(u64::from(data[0].permitted) | (u64::from(data[1].permitted) << 32))
}

/// Keeps only `set` (of what jawasd holds) as permitted and effective;
/// nothing is inheritable. Returns what it now holds.
fn keep(set: u64) -> io::Result<u64> {
    let held = get()? & set;
    let lo = held as u32;
    let hi = (held >> 32) as u32;
    let mut hdr = Header {
        version: VERSION_3,
        pid: 0,
    };
    let data = [
        Data {
            effective: lo,
            permitted: lo,
            inheritable: 0,
        },
        Data {
            effective: hi,
            permitted: hi,
            inheritable: 0,
        },
    ];
    // SAFETY: capset reads the header and two `Data` structs we own.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut hdr, data.as_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(held)
}

/// At start, once every socket is bound: drop what `config` does not
/// need. Does nothing for a jawasd that is not root.
pub fn drop_unneeded(config: &Config) {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return;
    }
    match keep(needed(config)) {
        Ok(held) => log::info!("capabilities kept: {}", names(held).join(",")),
        Err(e) => log::warn!("unable to drop capabilities: {e}; jawasd keeps all of root's"),
    }
}

/// Before a reload is applied: the capabilities its configuration needs
/// that jawasd no longer holds, by name (empty when all is well).
pub fn missing(config: &Config) -> Vec<&'static str> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Vec::new();
    }
    match get() {
        Ok(held) => names(needed(config) & !held),
        Err(_) => Vec::new(),
    }
}
