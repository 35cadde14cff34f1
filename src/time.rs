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
