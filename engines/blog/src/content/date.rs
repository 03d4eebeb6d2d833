//! Dates as writers give them in front matter, and the few formats the
//! site prints (RFC 3339 for `<time>`, Atom and the sitemap, RFC 2822 for
//! RSS, a human one for pages).
//!
//! Owns `Date`: an instant (seconds since the epoch) with the UTC offset
//! it was written in, so a post dated `2024-05-01T23:30:00-05:00` shows
//! and files under May 1st. Civil-date arithmetic is the classic
//! days-from-civil algorithm, a dozen lines, not worth a dependency.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Date {
    /// Seconds since 1970-01-01T00:00:00Z.
    pub unix: i64,
    /// Minutes east of UTC the date was written in.
    pub offset_min: i32,
}

/// Local calendar fields of a `Date` in its own offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// 0 = Monday.
    pub weekday: u32,
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn num(s: &str, len: usize) -> Option<u32> {
    if s.len() == len && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

impl Date {
    /// Parses RFC 3339 (`2024-05-01T10:00:00+02:00`, `Z`, fractions
    /// ignored), `2024-05-01`, `2024-05-01 10:00` and `2024-05-01
    /// 10:00:00`; UTC when no offset is given.
    pub fn parse(s: &str) -> Result<Date, String> {
        let bad = || {
            format!("bad date {s:?}: expected YYYY-MM-DD, YYYY-MM-DD HH:MM[:SS] or RFC 3339 (2024-05-01T10:00:00+02:00)")
        };
        let s = s.trim();
        if s.len() < 10 || !s.is_char_boundary(10) {
            return Err(bad());
        }
        let (ymd, rest) = s.split_at(10);
        let mut parts = ymd.split('-');
        let (y, m, d) = match (parts.next(), parts.next(), parts.next()) {
            (Some(y), Some(m), Some(d)) => (num(y, 4), num(m, 2), num(d, 2)),
            _ => return Err(bad()),
        };
        let (Some(y), Some(m), Some(d)) = (y, m, d) else {
            return Err(bad());
        };
        let y = i64::from(y);
        if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
            return Err(format!("bad date {s:?}: no such day"));
        }
        let (mut hh, mut mm, mut ss, mut offset) = (0, 0, 0, 0i32);
        if !rest.is_empty() {
            let rest = rest.strip_prefix(['T', 't', ' ']).ok_or_else(bad)?;
            // Split the time from the offset (Z, +HH:MM, -HH:MM).
            let (time, zone) = match rest.find(['Z', 'z', '+', '-']) {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            // Jekyll writes `2024-05-01 10:00:00 +0200`: a space before
            // the offset is allowed.
            let time = time.strip_suffix(' ').unwrap_or(time);
            let time = time.split('.').next().unwrap_or(time); // fractions
            let mut t = time.split(':');
            hh = t.next().and_then(|v| num(v, 2)).ok_or_else(bad)?;
            mm = t.next().and_then(|v| num(v, 2)).ok_or_else(bad)?;
            ss = match t.next() {
                Some(v) => num(v, 2).ok_or_else(bad)?,
                None => 0,
            };
            if t.next().is_some() || hh > 23 || mm > 59 || ss > 60 {
                return Err(bad());
            }
            if !zone.is_empty() && !zone.eq_ignore_ascii_case("z") {
                let sign = if zone.starts_with('-') { -1 } else { 1 };
                let z = &zone[1..];
                let (zh, zm) = z
                    .split_once(':')
                    .unwrap_or((z.get(..2).unwrap_or(z), z.get(2..).unwrap_or("")));
                let zh = num(zh, 2).ok_or_else(bad)?;
                let zm = num(zm, 2).ok_or_else(bad)?;
                if zh > 23 || zm > 59 {
                    return Err(bad());
                }
                offset = sign * (zh * 60 + zm) as i32;
            }
        }
        let local = days_from_civil(y, m, d) * 86400
            + i64::from(hh) * 3600
            + i64::from(mm) * 60
            + i64::from(ss);
        Ok(Date {
            unix: local - i64::from(offset) * 60,
            offset_min: offset,
        })
    }

    pub fn from_system(t: SystemTime) -> Date {
        let unix = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_secs() as i64,
            Err(e) => -(e.duration().as_secs() as i64),
        };
        Date {
            unix,
            offset_min: 0,
        }
    }

    pub fn to_system(self) -> SystemTime {
        if self.unix >= 0 {
            UNIX_EPOCH + Duration::from_secs(self.unix as u64)
        } else {
            UNIX_EPOCH - Duration::from_secs(self.unix.unsigned_abs())
        }
    }

    pub fn civil(self) -> Civil {
        let local = self.unix + i64::from(self.offset_min) * 60;
        let days = local.div_euclid(86400);
        let secs = local.rem_euclid(86400) as u32;
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: secs / 3600,
            minute: secs / 60 % 60,
            second: secs % 60,
            weekday: (days + 3).rem_euclid(7) as u32,
        }
    }

    fn offset_text(self, colon: bool) -> String {
        let o = self.offset_min;
        let sign = if o < 0 { '-' } else { '+' };
        let (h, m) = (o.abs() / 60, o.abs() % 60);
        if colon {
            format!("{sign}{h:02}:{m:02}")
        } else {
            format!("{sign}{h:02}{m:02}")
        }
    }

    /// `2024-05-01T10:00:00+02:00` (`Z` for UTC).
    pub fn rfc3339(self) -> String {
        let c = self.civil();
        let zone = if self.offset_min == 0 {
            "Z".to_string()
        } else {
            self.offset_text(true)
        };
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{zone}",
            c.year, c.month, c.day, c.hour, c.minute, c.second
        )
    }

    /// `Wed, 01 May 2024 10:00:00 +0200`.
    pub fn rfc2822(self) -> String {
        let c = self.civil();
        format!(
            "{}, {:02} {} {:04} {:02}:{:02}:{:02} {}",
            DAYS[c.weekday as usize],
            c.day,
            &MONTHS[c.month as usize - 1][..3],
            c.year,
            c.hour,
            c.minute,
            c.second,
            self.offset_text(false)
        )
    }

    /// `1 May 2024`, for readers.
    pub fn human(self) -> String {
        let c = self.civil();
        format!("{} {} {}", c.day, MONTHS[c.month as usize - 1], c.year)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_format() {
        // input, rfc3339, rfc2822, human
        let cases = [
            (
                "2024-05-01",
                "2024-05-01T00:00:00Z",
                "Wed, 01 May 2024 00:00:00 +0000",
                "1 May 2024",
            ),
            (
                "2024-05-01 10:30",
                "2024-05-01T10:30:00Z",
                "Wed, 01 May 2024 10:30:00 +0000",
                "1 May 2024",
            ),
            (
                "2024-05-01 10:30:15",
                "2024-05-01T10:30:15Z",
                "Wed, 01 May 2024 10:30:15 +0000",
                "1 May 2024",
            ),
            (
                "2024-02-29T23:30:00-05:00",
                "2024-02-29T23:30:00-05:00",
                "Thu, 29 Feb 2024 23:30:00 -0500",
                "29 February 2024",
            ),
            (
                "1999-12-31T23:59:59.123Z",
                "1999-12-31T23:59:59Z",
                "Fri, 31 Dec 1999 23:59:59 +0000",
                "31 December 1999",
            ),
            (
                "2000-03-01t01:02:03+05:30",
                "2000-03-01T01:02:03+05:30",
                "Wed, 01 Mar 2000 01:02:03 +0530",
                "1 March 2000",
            ),
        ];
        for (input, r3339, r2822, human) in cases {
            let d = Date::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(d.rfc3339(), r3339, "{input}");
            assert_eq!(d.rfc2822(), r2822, "{input}");
            assert_eq!(d.human(), human, "{input}");
        }
        assert_eq!(Date::parse("1970-01-01T00:00:00Z").unwrap().unix, 0);
        assert_eq!(
            Date::parse("2024-05-01T02:00:00+02:00").unwrap().unix,
            Date::parse("2024-05-01").unwrap().unix
        );
    }

    #[test]
    fn rejects_bad_dates() {
        for bad in [
            "",
            "2024",
            "2024-13-01",
            "2023-02-29",
            "2024-05-01X",
            "2024-05-01 25:00",
            "24-05-01",
            "2024-05-01T10",
            "2024-05-01T10:00+2",
            "é024-05-01",
            "2024-05-01 10:00:00:00",
        ] {
            assert!(Date::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn system_time_round_trip() {
        let d = Date::parse("2030-01-02T03:04:05Z").unwrap();
        assert_eq!(Date::from_system(d.to_system()), d);
    }
}
