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
    // jiff reads RFC 9557, a superset: a bracketed zone annotation is not
    // RFC 3339, and is refused here.
    if s.contains('[') {
        return None;
    }
    // RFC 3339 offsets stay within ±23:59 (jiff allows ±25:59).
    if let Some(h) = s.len().checked_sub(6).and_then(|i| s.get(i..i + 3))
        && h.starts_with(['+', '-'])
        && h[1..].parse::<u8>().is_ok_and(|h| h > 23)
    {
        return None;
    }
    let t: jiff::Timestamp = s.parse().ok()?;
    Some(t.as_second() as f64 + f64::from(t.subsec_nanosecond()) / 1e9)
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
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00-02:30"), Some(9000.0));
        assert_eq!(parse_rfc3339("1970-01-01t00:00:01z"), Some(1.0));
        let nanos = parse_rfc3339("2026-11-22T07:07:46.877123456Z").unwrap();
        assert!((nanos - 1_795_331_266.877_123).abs() < 1e-5, "{nanos}");
        assert_eq!(
            parse_rfc3339("0001-01-01T00:00:00Z"),
            Some(-62135596800.0),
            "Go's zero time"
        );
        for bad in [
            "2026-11-22T07:07:46.1234567890Z",
            "2026-11-22T07:07:46Z[Europe/Berlin]",
            "2026-11-22T25:07:46Z",
            "2026-02-30T07:07:46Z",
            "2026-11-22T07:07:46+25:00",
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
