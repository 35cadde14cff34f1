//! Wall-clock time as the crate exchanges it: Unix seconds as `f64` (journal,
//! state, status) and the one RFC 3339 parser every module uses (webhook
//! payloads, `incidents --since`, Docker Engine timestamps). A leaf: it
//! imports nothing of the crate.

use std::time::{Duration, SystemTime};

/// Now as Unix seconds.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// `ts` (Unix seconds, clamped at the epoch) as `SystemTime`.
pub fn system_time(ts: f64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs_f64(ts.max(0.0))
}

/// `ts` (Unix seconds) as RFC 3339 in UTC, to the second
/// (`2026-11-22T07:07:46Z`).
pub fn rfc3339_seconds(ts: f64) -> String {
    humantime::format_rfc3339_seconds(system_time(ts)).to_string()
}

/// The zone times are shown to people in: `TZ` when set, else the system's
/// (`/etc/localtime`), else UTC.
pub fn zone() -> jiff::tz::TimeZone {
    jiff::tz::TimeZone::system()
}

/// `ts` (Unix seconds) in `tz` as `2026-12-07 09:30:00 UTC`: date, time to
/// the second and the zone's abbreviation, so no time is read without its zone.
pub fn display_in(ts: f64, tz: &jiff::tz::TimeZone) -> String {
    match jiff::Timestamp::from_second(ts.floor() as i64) {
        Ok(t) => t.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M:%S %Z").to_string(),
        Err(_) => format!("{} UTC", rfc3339_seconds(ts).replace('T', " ").trim_end_matches('Z')),
    }
}

/// [`display_in`] the [`zone`] of this process.
pub fn display(ts: f64) -> String {
    display_in(ts, &zone())
}

/// RFC 3339 as Alertmanager and the Docker Engine write it
/// (`2026-11-22T07:07:46.877Z`, up to nanoseconds, also with a numeric
/// offset). Go's zero time `0001-01-01T00:00:00Z` is valid.
/// Returns Unix seconds (negative for Go's zero time).
pub fn parse_rfc3339(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    if b.len() < 20 || b.len() > 40 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        if t.bytes().all(|c| c.is_ascii_digit()) {
            t.parse().ok()
        } else {
            None
        }
    };
    let (y, mo, d, h, mi, sec) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac = 0.0;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start || i - start > 9 {
            return None;
        }
        frac = format!("0.{}", &s[start..i]).parse().ok()?;
    }
    let offset = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        b'+' | b'-' if i + 6 == b.len() && b[i + 3] == b':' => {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if b[i] == b'-' { -o } else { o }
        }
        _ => return None,
    };
    // Days from civil (Howard Hinnant's algorithm).
    let (yy, mm) = if mo <= 2 { (y - 1, mo + 9) } else { (y, mo - 3) };
    let era = if yy >= 0 { yy } else { yy - 399 } / 400;
    let yoe = yy - era * 400;
    let doy = (153 * mm + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some((days * 86400 + h * 3600 + mi * 60 + sec - offset) as f64 + frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_zone() {
        let utc = jiff::tz::TimeZone::UTC;
        assert_eq!(display_in(1_796_636_400.0, &utc), "2026-12-07 09:40:00 UTC");
        let berlin = jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
        assert_eq!(display_in(1_796_636_400.0, &berlin), "2026-12-07 10:40:00 CET");
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(parse_rfc3339("1970-01-01T01:00:00+01:00"), Some(0.0));
        assert_eq!(parse_rfc3339("2026-11-22T07:07:46.5Z"), Some(1795331266.5));
        assert!(parse_rfc3339("0001-01-01T00:00:00Z").is_some());
        for bad in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-11-22T07:07:46",
            "2026-11-22T07:07:46.Z",
        ] {
            assert!(parse_rfc3339(bad).is_none(), "{bad}");
        }
    }
}
