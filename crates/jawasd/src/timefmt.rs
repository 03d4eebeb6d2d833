//! Wall-clock times as RFC 3339 text with milliseconds: the one timestamp
//! format of jawasd's log, the service event files and the control socket.
//!
//! Owns the conversion only (no clock state). UTC is computed here from the
//! day count (no libc, so it cannot fail); local time asks localtime_r for
//! the offset in force at that instant.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jawas_http::civil_from_days;

/// Which clock face a timestamp shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Zone {
    Utc,
    Local,
}

/// The zone jawasd's timestamps use, set once at start (`--log-time`).
static ZONE: std::sync::OnceLock<Zone> = std::sync::OnceLock::new();

pub fn set_zone(zone: Zone) {
    let _ = ZONE.set(zone);
}

/// The zone set at start; UTC when none was.
pub fn zone() -> Zone {
    ZONE.get().copied().unwrap_or(Zone::Utc)
}

/// `t` as `2026-11-25T02:23:01.123Z` (UTC) or `...+01:00` (local).
pub fn rfc3339(t: SystemTime, zone: Zone) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = since.as_secs() as i64;
    let millis = since.subsec_millis();
    let offset = match zone {
        Zone::Utc => 0,
        Zone::Local => local_offset(secs),
    };
    let local = secs + offset;
    let (y, mo, d) = civil_from_days(local.div_euclid(86_400));
    let s = local.rem_euclid(86_400);
    let (h, mi, se) = (s / 3600, s / 60 % 60, s % 60);
    let mut out = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{se:02}.{millis:03}");
    if zone == Zone::Utc {
        out.push('Z');
    } else {
        let sign = if offset < 0 { '-' } else { '+' };
        let o = offset.abs();
        out.push_str(&format!("{sign}{:02}:{:02}", o / 3600, o / 60 % 60));
    }
    out
}

/// Now, in `zone`.
pub fn now(zone: Zone) -> String {
    rfc3339(SystemTime::now(), zone)
}

/// `t` as syslog's RFC 3164 header wants it, in local time:
/// `Nov  5 02:23:01` (the day padded to two places with a space).
pub fn rfc3164(t: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = t
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs() as i64;
    let local = secs + local_offset(secs);
    let (_, mo, d) = civil_from_days(local.div_euclid(86_400));
    let s = local.rem_euclid(86_400);
    format!(
        "{} {d:>2} {:02}:{:02}:{:02}",
        MONTHS[(mo - 1) as usize],
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// Seconds east of UTC in the local zone at `secs` after the epoch.
fn local_offset(secs: i64) -> i64 {
    let t = secs as libc::time_t;
    let mut tm = std::mem::MaybeUninit::<libc::tm>::zeroed();
    // SAFETY: localtime_r reads `t` and fills the `tm` we own (the
    // thread-safe variant; nix has no wrapper). When it fails the zeroed
    // tm stands, whose offset is 0 (UTC).
    let tm = unsafe {
        libc::localtime_r(&t, tm.as_mut_ptr());
        tm.assume_init()
    };
    tm.tm_gmtoff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_cases() {
        let cases = [
            (0, 0, "1970-01-01T00:00:00.000Z"),
            (951_782_400, 5, "2000-02-29T00:00:00.005Z"),
            (1_764_037_381, 123, "2025-11-25T02:23:01.123Z"),
            (4_107_542_399, 999, "2100-02-28T23:59:59.999Z"),
            (1_709_251_199, 0, "2024-02-29T23:59:59.000Z"),
        ];
        for (secs, ms, want) in cases {
            let t = UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(ms);
            assert_eq!(rfc3339(t, Zone::Utc), want, "{secs}");
        }
    }

    #[test]
    fn syslog_stamp_shape() {
        let s = rfc3164(UNIX_EPOCH + Duration::from_secs(86_400 * 45));
        assert_eq!(s.len(), "Feb 14 00:00:00".len(), "{s}");
        let months = "JanFebMarAprMayJunJulAugSepOctNovDec";
        assert!(months.contains(&s[..3]), "{s}");
    }

    #[test]
    fn local_has_an_offset() {
        let s = rfc3339(UNIX_EPOCH + Duration::from_secs(86_400), Zone::Local);
        assert_eq!(s.len(), "1970-01-02T00:00:00.000+00:00".len(), "{s}");
        assert!(s.contains('T') && (s.contains('+') || s[19..].contains('-')));
    }
}
