//! [`Clock`]: the moment the page is rendered and the zone its times are
//! shown in, and the one way the page writes a time (absolute, zone named,
//! with its age). Its own file so every section formats times alike.

/// The moment the page is rendered and the zone its times are shown in.
#[derive(Debug, Clone)]
pub struct Clock {
    /// Unix seconds.
    pub now: f64,
    pub tz: jiff::tz::TimeZone,
}

impl Clock {
    /// Now, in the zone of `TZ` (else `/etc/localtime`, else UTC).
    pub fn system() -> Clock {
        Clock {
            now: crate::time::now(),
            tz: jiff::tz::TimeZone::try_system().unwrap_or(jiff::tz::TimeZone::UTC),
        }
    }

    /// `ts` as `2026-12-07 09:52:07 UTC`.
    pub(super) fn time(&self, ts: f64) -> String {
        match jiff::Timestamp::from_millisecond((ts * 1000.0).round() as i64) {
            Ok(t) => t.to_zoned(self.tz.clone()).strftime("%Y-%m-%d %H:%M:%S %Z").to_string(),
            Err(_) => crate::time::rfc3339_seconds(ts),
        }
    }

    /// How long ago `ts` was: `12 s ago`, `3 min ago`, `5 h ago`, `2 d ago`
    /// (`in 3 min` ahead of this clock).
    pub(super) fn ago(&self, ts: f64) -> String {
        let d = self.now - ts;
        let a = d.abs().round() as u64;
        let span = match a {
            0..60 => format!("{a} s"),
            60..3600 => format!("{} min", a / 60),
            3600..172_800 => format!("{} h", a / 3600),
            _ => format!("{} d", a / 86_400),
        };
        if d < -1.0 {
            format!("in {span}")
        } else {
            format!("{span} ago")
        }
    }

    /// `ts` absolute with its age: `2026-12-07 09:52:07 UTC (12 s ago)`.
    pub(super) fn at(&self, ts: f64) -> String {
        format!("{} ({})", self.time(ts), self.ago(ts))
    }

    /// [`Clock::at`] of an RFC 3339 text (Alertmanager's `startsAt`); the
    /// text as it came when it does not parse.
    pub(super) fn at_text(&self, rfc3339: &str) -> String {
        crate::time::parse_rfc3339(rfc3339).map_or_else(|| rfc3339.to_string(), |t| self.at(t))
    }
}
