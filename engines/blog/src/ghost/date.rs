//! Ghost's dates, in the forms its exports have used, turned into the
//! RFC 3339 strings a post's front matter takes.
//!
//! Ghost 4 and 5 write `2024-05-01T10:00:00.000Z`; its migration docs
//! show `2024-05-01 10:00:00` (UTC); Ghost 1 and hand-made exports use
//! milliseconds since the epoch. Invariant: the output is always
//! `YYYY-MM-DDTHH:MM:SSZ` or with the input's own `+HH:MM` offset, and
//! `Stamp::secs` orders stamps by the instant they name.

use serde_json::Value;

/// One instant, as written and as seconds since the epoch (for ordering).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub rfc3339: String,
    pub secs: i64,
}

/// Parses a Ghost date value; `Err` says what is wrong with it.
pub fn parse(v: &Value) -> Result<Option<Stamp>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => {
            let ms = n
                .as_i64()
                .or_else(|| n.as_f64().map(|f| f as i64))
                .ok_or("not a time in milliseconds")?;
            Ok(Some(from_secs(ms.div_euclid(1000))))
        }
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => parse_text(s.trim()).map(Some).ok_or_else(|| {
            format!("'{s}' is not a date (expected 2024-05-01T10:00:00.000Z or milliseconds)")
        }),
        _ => Err("expected a date string or milliseconds".into()),
    }
}

fn from_secs(secs: i64) -> Stamp {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    Stamp {
        rfc3339: format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            rem / 3600,
            rem / 60 % 60,
            rem % 60
        ),
        secs,
    }
}

/// `YYYY-MM-DD`, then optionally `T` or space and `HH:MM[:SS[.frac]]`,
/// then optionally `Z` or `±HH:MM`.
fn parse_text(s: &str) -> Option<Stamp> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') || !(1..=12).contains(&mo) {
        return None;
    }
    if d < 1 || d > days_in_month(y, mo) {
        return None;
    }
    let (mut h, mut mi, mut sec, mut i) = (0, 0, 0, 10);
    if matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        h = num(11..13)?;
        mi = num(14..16)?;
        if b.get(13) != Some(&b':') || h > 23 || mi > 59 {
            return None;
        }
        i = 16;
        if b.get(16) == Some(&b':') {
            sec = num(17..19)?;
            if sec > 60 {
                return None;
            }
            i = 19;
            if b.get(19) == Some(&b'.') {
                i = 20;
                while b.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
            }
        }
    }
    let offset = match &s[i..] {
        "" | "Z" | "z" => 0,
        tz => {
            let sign = match tz.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let digits: String = tz[1..].chars().filter(|c| *c != ':').collect();
            if digits.len() != 4 || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let (oh, om): (i64, i64) = (digits[..2].parse().ok()?, digits[2..].parse().ok()?);
            sign * (oh * 3600 + om * 60)
        }
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset;
    let mut stamp = from_secs(secs);
    if offset != 0 {
        // Keep the writer's own offset: the wall-clock time they chose.
        let body = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{sec:02}");
        let (sign, o) = if offset < 0 {
            ('-', -offset)
        } else {
            ('+', offset)
        };
        stamp.rfc3339 = format!("{body}{sign}{:02}:{:02}", o / 3600, o / 60 % 60);
    }
    Some(stamp)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the era-based
/// computation: 400-year eras of 146097 days).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of `days_from_civil`.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn forms_ghost_has_written() {
        let cases: &[(Value, Option<&str>)] = &[
            (
                json!("2024-05-01T10:00:00.000Z"),
                Some("2024-05-01T10:00:00Z"),
            ),
            (json!("2024-05-01 10:00:00"), Some("2024-05-01T10:00:00Z")),
            (json!("2024-05-01T10:00"), Some("2024-05-01T10:00:00Z")),
            (json!("2024-05-01"), Some("2024-05-01T00:00:00Z")),
            (
                json!("2024-02-29T23:59:59+02:00"),
                Some("2024-02-29T23:59:59+02:00"),
            ),
            (json!(1_283_780_649_000_i64), Some("2010-09-06T13:44:09Z")),
            (json!(0), Some("1970-01-01T00:00:00Z")),
            (json!(null), None),
            (json!(""), None),
        ];
        for (v, want) in cases {
            let got = parse(v).unwrap().map(|s| s.rfc3339);
            assert_eq!(got.as_deref(), *want, "{v}");
        }
    }

    #[test]
    fn offsets_order_by_instant() {
        let a = parse(&json!("2024-05-01T10:00:00+02:00")).unwrap().unwrap();
        let b = parse(&json!("2024-05-01T08:00:00Z")).unwrap().unwrap();
        assert_eq!(a.secs, b.secs);
    }

    #[test]
    fn nonsense_is_an_error() {
        for v in [
            json!("yesterday"),
            json!("2023-02-29"),
            json!("2024-13-01"),
            json!("2024-05-01T25:00"),
            json!("2024-05-01T10:00:00 UTC"),
            json!(true),
        ] {
            assert!(parse(&v).is_err(), "{v}");
        }
    }
}
