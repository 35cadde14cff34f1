//! Remediation windows: when a rule must not act (a nightly backup, a
//! maintenance slot). A rule's `quiet` entries are parsed once, at config
//! load, into [`QuietWindows`]; the policy asks it, with the `now` it was
//! given, whether one of them covers that instant. Civil time (weekday,
//! time of day) comes from `jiff` in the rule's `timezone`, so daylight
//! saving time and the tz database are the crate's, not hand-written.
//!
//! Syntax of one entry: `[DAYS ]HH:MM-HH:MM`.
//! - `DAYS`: comma-separated days or day ranges, `Mon`…`Sun`
//!   (case-insensitive), e.g. `Mon-Fri`, `Sat,Sun`, `Mon,Wed-Fri`, `Fri-Mon`
//!   (a range may wrap past Sunday). Absent: every day.
//! - `HH:MM-HH:MM`: start inclusive, end exclusive; `24:00` is allowed as the
//!   end. An end earlier than the start crosses midnight: the window starts
//!   on the listed day and ends on the next (`Fri 22:00-06:00` covers Friday
//!   night into Saturday morning). Start equal to end is refused.

use jiff::Timestamp;
use jiff::tz::TimeZone;

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const DAY: u32 = 24 * 3600;

/// One parsed `quiet` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// The entry as written (journal, notifications, status).
    pub text: String,
    /// Days the window starts on, Monday first.
    days: [bool; 7],
    /// Start and end in seconds since midnight; `end <= start` crosses midnight.
    start: u32,
    end: u32,
}

/// A rule's windows with the time zone they are read in.
#[derive(Debug, Clone)]
pub struct QuietWindows {
    pub windows: Vec<Window>,
    tz: TimeZone,
    /// `local`, `UTC` or the IANA name, as configured.
    pub timezone: String,
}

/// What is wrong with a `quiet` entry or the rule's `timezone`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuietError {
    #[error("unknown day {0:?} (expected Mon, Tue, Wed, Thu, Fri, Sat or Sun)")]
    Day(String),
    #[error("time {0:?}: expected HH:MM (00:00 to 23:59, or 24:00 as an end)")]
    Clock(String),
    #[error("{0:?}: expected [DAYS ]HH:MM-HH:MM")]
    Span(String),
    #[error("{0:?}: start and end are the same time")]
    Empty(String),
    #[error("unknown time zone {name:?}: {why}")]
    TimeZone { name: String, why: String },
}

/// Where a [`QuietError`] is: an entry (its index) or the time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuietPlace {
    Entry(usize),
    TimeZone,
}

fn day_index(s: &str) -> Result<usize, QuietError> {
    let l = s.trim().to_ascii_lowercase();
    DAY_NAMES
        .iter()
        .position(|d| *d == l)
        .ok_or_else(|| QuietError::Day(s.trim().to_string()))
}

fn parse_days(s: &str) -> Result<[bool; 7], QuietError> {
    let mut days = [false; 7];
    for part in s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (day_index(a)?, day_index(b)?);
                let mut d = a;
                loop {
                    days[d] = true;
                    if d == b {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => days[day_index(part)?] = true,
        }
    }
    Ok(days)
}

/// `HH:MM` as seconds since midnight; `24:00` only when `end`.
fn parse_clock(s: &str, end: bool) -> Result<u32, QuietError> {
    let bad = || QuietError::Clock(s.to_string());
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if m > 59 || h > 24 || (h == 24 && (m != 0 || !end)) {
        return Err(bad());
    }
    Ok(h * 3600 + m * 60)
}

impl Window {
    /// Parses one entry (see the module documentation).
    pub fn parse(entry: &str) -> Result<Window, QuietError> {
        let text = entry.trim();
        let (days, span) = match text.rsplit_once(char::is_whitespace) {
            Some((d, s)) => (parse_days(d.trim())?, s),
            None => ([true; 7], text),
        };
        let (a, b) = span
            .split_once('-')
            .filter(|_| span.contains(':'))
            .ok_or_else(|| QuietError::Span(span.to_string()))?;
        let (start, end) = (parse_clock(a, false)?, parse_clock(b, true)?);
        if start == end {
            return Err(QuietError::Empty(span.to_string()));
        }
        Ok(Window {
            text: text.to_string(),
            days,
            start,
            end,
        })
    }

    /// True when the window covers a moment on `weekday` (Monday = 0) at
    /// `secs` seconds after midnight.
    pub(crate) fn covers(&self, weekday: usize, secs: u32) -> bool {
        if self.start < self.end {
            return self.days[weekday] && (self.start..self.end).contains(&secs);
        }
        // Crosses midnight: the evening part on a listed day, the morning
        // part on the day after one.
        (self.days[weekday] && secs >= self.start) || (self.days[(weekday + 6) % 7] && secs < self.end)
    }
}

impl QuietWindows {
    /// Parses the entries and the time zone (`local`: the host's, from `TZ`
    /// or `/etc/localtime`, UTC when neither is there; `UTC`; or an IANA
    /// name from the system tz database). Errors say which entry or the
    /// time zone is wrong.
    pub fn parse(entries: &[String], timezone: &str) -> Result<QuietWindows, (QuietPlace, QuietError)> {
        let tz = match timezone {
            "local" => TimeZone::system(),
            "UTC" | "utc" => TimeZone::UTC,
            name => TimeZone::get(name).map_err(|e| {
                let why = e.to_string();
                (
                    QuietPlace::TimeZone,
                    QuietError::TimeZone {
                        name: name.to_string(),
                        why,
                    },
                )
            })?,
        };
        let windows = entries
            .iter()
            .enumerate()
            .map(|(i, e)| Window::parse(e).map_err(|m| (QuietPlace::Entry(i), m)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(QuietWindows {
            windows,
            tz,
            timezone: timezone.to_string(),
        })
    }

    /// The first window covering the instant `now` (Unix seconds), if any.
    /// Pure: the caller passes the time.
    pub fn covering(&self, now: f64) -> Option<&Window> {
        let ts = Timestamp::from_millisecond((now * 1000.0) as i64).ok()?;
        let dt = ts.to_zoned(self.tz.clone()).datetime();
        let weekday = dt.weekday().to_monday_zero_offset() as usize;
        let secs = dt.hour() as u32 * 3600 + dt.minute() as u32 * 60 + dt.second() as u32;
        debug_assert!(secs < DAY);
        self.windows.iter().find(|w| w.covers(weekday, secs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> f64 {
        crate::time::parse_rfc3339(s).unwrap()
    }

    fn windows(entries: &[&str], tz: &str) -> QuietWindows {
        let e: Vec<String> = entries.iter().map(|s| s.to_string()).collect();
        QuietWindows::parse(&e, tz).unwrap()
    }

    #[test]
    fn entries_parse_and_bad_ones_name_the_problem() {
        let w = Window::parse("Mon-Fri 02:00-03:30").unwrap();
        assert_eq!(w.days, [true, true, true, true, true, false, false]);
        assert_eq!((w.start, w.end), (7200, 12600));
        assert_eq!(
            Window::parse("fri-mon 22:00-06:00").unwrap().days,
            [true, false, false, false, true, true, true]
        );
        assert_eq!(Window::parse("Sat,Sun 00:00-24:00").unwrap().end, DAY);
        assert_eq!(Window::parse("12:00-13:00").unwrap().days, [true; 7]);
        for (bad, why) in [
            ("Mon-Fri", "expected [DAYS ]HH:MM-HH:MM"),
            ("Mo 02:00-03:00", "unknown day"),
            ("02:00-02:00", "same time"),
            ("24:00-01:00", "expected HH:MM"),
            ("2:00-03:00", "expected HH:MM"),
            ("02:60-03:00", "expected HH:MM"),
            ("Mon 02:00-24:01", "expected HH:MM"),
            ("", "expected [DAYS ]HH:MM-HH:MM"),
        ] {
            let e = Window::parse(bad).unwrap_err();
            assert!(e.to_string().contains(why), "{bad}: {e}");
        }
        let e = QuietWindows::parse(&["02:00-03:00".into()], "Mars/Olympus").unwrap_err();
        assert_eq!(e.0, QuietPlace::TimeZone);
        assert!(
            matches!(&e.1, QuietError::TimeZone { name, .. } if name == "Mars/Olympus"),
            "{e:?}"
        );
        let e = QuietWindows::parse(&["02:00-03:00".into(), "x".into()], "UTC").unwrap_err();
        assert_eq!(e, (QuietPlace::Entry(1), QuietError::Span("x".into())));
    }

    #[test]
    fn covering_follows_days_midnight_and_time_zones() {
        // 2026-12-04 is a Friday.
        let w = windows(&["Mon-Fri 02:00-03:30", "Fri 22:00-06:00"], "UTC");
        assert_eq!(
            w.covering(at("2026-12-04T02:00:00Z")).unwrap().text,
            "Mon-Fri 02:00-03:30"
        );
        assert!(w.covering(at("2026-12-04T03:30:00Z")).is_none(), "end is exclusive");
        assert!(w.covering(at("2026-12-04T01:59:59Z")).is_none());
        assert!(
            w.covering(at("2026-12-05T02:30:00Z")).is_some(),
            "Saturday morning: Friday night's window"
        );
        assert!(w.covering(at("2026-12-06T02:30:00Z")).is_none(), "Sunday: neither");
        assert!(w.covering(at("2026-12-04T23:00:00Z")).is_some());
        assert!(w.covering(at("2026-12-03T23:00:00Z")).is_none(), "Thursday night");
        // The same civil window in Berlin (UTC+1 in December, UTC+2 in July).
        let b = windows(&["02:00-03:30"], "Europe/Berlin");
        assert!(b.covering(at("2026-12-04T01:00:00Z")).is_some());
        assert!(b.covering(at("2026-12-04T02:00:00Z")).is_some());
        assert!(b.covering(at("2026-12-04T02:30:00Z")).is_none());
        assert!(b.covering(at("2026-07-04T00:30:00Z")).is_some(), "summer time");
        assert!(b.covering(at("2026-07-04T01:30:00Z")).is_none());
        let all = windows(&["Mon-Sun 00:00-24:00"], "local");
        assert!(all.covering(at("2026-12-04T12:00:00Z")).is_some());
    }
}
