//! The one polling schedule of every verification (`Resolved::verify`):
//! look again soon after acting, when the effect usually shows (a stopped
//! unit, a killed process), then back off so a slow effect (a container's
//! health check, a unit that takes its time to start) is not hammered; the
//! last look is at the deadline itself, never after it. Also the one
//! stability rule: "up and unchanged for [`STABLE_FOR`]" (a crash loop
//! flickering through `active`/`running` does not count).

use std::time::Duration;

use tokio::time::Instant;

/// The first pause after a look.
pub const FIRST: Duration = Duration::from_millis(100);
/// The longest pause between two looks: a look is one local call (a D-Bus
/// property read, a Docker inspect, a procfs read), and an effect that takes
/// a second or two (a container's first health check) should be seen
/// within half a second of it, not a second.
pub const MAX: Duration = Duration::from_millis(500);
/// How long a restarted unit or container must stay up, unchanged (same
/// restart count / start time), to count as verified.
pub const STABLE_FOR: Duration = Duration::from_secs(1);

/// The pause after the `n`-th look (0-based): 100 ms, then ×1.5 per look,
/// at most [`MAX`] (100, 150, 225, 337.5, then 500 ms).
pub fn pause(n: u32) -> Duration {
    FIRST.mul_f64(1.5f64.powi(n.min(16) as i32)).min(MAX)
}

/// Looks until a deadline, pausing per [`pause`].
#[derive(Debug)]
pub struct Poll {
    until: Instant,
    looks: u32,
}

impl Poll {
    pub fn until(until: Instant) -> Poll {
        Poll { until, looks: 0 }
    }

    /// Pauses before the next look; `false` (at once) when the deadline has
    /// passed: no look is left. The pause ends at `by` when that comes
    /// sooner (a stability window still open closing), and never after the
    /// deadline.
    pub async fn next(&mut self, by: Option<Instant>) -> bool {
        match self.next_at(Instant::now(), by) {
            Some(at) => {
                tokio::time::sleep_until(at).await;
                true
            }
            None => false,
        }
    }

    /// When the next look is due, seen at `now` (`None`: no look left).
    fn next_at(&mut self, now: Instant, by: Option<Instant>) -> Option<Instant> {
        if now >= self.until {
            return None;
        }
        let mut at = (now + pause(self.looks)).min(self.until);
        // A window already closed constrains nothing (a container up long
        // enough but not healthy yet is looked at on the normal schedule).
        if let Some(by) = by.filter(|b| *b > now) {
            at = at.min(by);
        }
        self.looks += 1;
        Some(at)
    }
}

/// The stability rule: something (a unit, a container) is up with a
/// `mark` (its restart count, start time …) that must not change for
/// [`STABLE_FOR`].
#[derive(Debug, Default)]
pub struct Stable<M> {
    since: Option<(M, Instant)>,
}

impl<M: PartialEq> Stable<M> {
    /// One look: up with `mark`, or not up (`None`). True once the same
    /// mark has been seen up for [`STABLE_FOR`] without a look in between
    /// that saw it down or changed.
    pub fn look(&mut self, mark: Option<M>) -> bool {
        self.look_at(mark, Instant::now())
    }

    fn look_at(&mut self, mark: Option<M>, now: Instant) -> bool {
        match (mark, self.since.take()) {
            (Some(m), Some((seen, at))) if m == seen => {
                let stable = now.duration_since(at) >= STABLE_FOR;
                self.since = Some((seen, at));
                stable
            }
            (Some(m), _) => {
                self.since = Some((m, now));
                false
            }
            (None, _) => false,
        }
    }

    /// When the window of the mark seen up closes (for [`Poll::next`]).
    pub fn due(&self) -> Option<Instant> {
        self.since.as_ref().map(|(_, at)| *at + STABLE_FOR)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_starts_fast_and_backs_off_to_a_second() {
        let ms: Vec<u128> = (0..8).map(|n| pause(n).as_millis()).collect();
        assert_eq!(ms, [100, 150, 225, 337, 500, 500, 500, 500]);
        assert_eq!(pause(u32::MAX), MAX);
    }

    fn ms(d: Duration) -> u128 {
        d.as_millis()
    }

    #[test]
    fn last_look_is_at_the_deadline_and_none_after() {
        let start = Instant::now();
        let until = start + Duration::from_millis(1200);
        let mut p = Poll::until(until);
        let (mut now, mut at) = (start, Vec::new());
        while let Some(next) = p.next_at(now, None) {
            at.push(ms(next - start));
            now = next;
        }
        // 100, +150, +225, +337.5, then +500 would pass 1200: clamped to it.
        assert_eq!(at, [100, 250, 475, 812, 1200]);
        assert_eq!(p.next_at(until + Duration::from_secs(5), None), None);
    }

    #[test]
    fn a_stability_window_shortens_the_pause() {
        let now = Instant::now();
        let mut p = Poll::until(now + Duration::from_secs(30));
        p.looks = 6; // the next pause would be MAX
        let by = now + Duration::from_millis(200);
        assert_eq!(p.next_at(now, Some(by)), Some(by));
        // A window already closed: the normal pause, no busy looking.
        assert_eq!(p.next_at(now, Some(now - Duration::from_millis(5))), Some(now + MAX));
        assert_eq!(p.next_at(now, Some(now)), Some(now + MAX));
        // A window beyond the pause does not lengthen it.
        assert_eq!(p.next_at(now, Some(now + Duration::from_secs(9))), Some(now + MAX));
    }

    #[test]
    fn stable_needs_the_same_mark_up_for_the_whole_window() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut s = Stable::default();
        assert!(!s.look_at(Some(3), at(0)), "first sight starts the window");
        assert_eq!(s.due(), Some(at(1000)));
        assert!(!s.look_at(Some(3), at(600)));
        assert!(s.look_at(Some(3), at(1000)), "up and unchanged for STABLE_FOR");
        // A restart in between (new mark) or a look that saw it down
        // starts over.
        assert!(!s.look_at(Some(4), at(1100)));
        assert_eq!(s.due(), Some(at(2100)));
        assert!(!s.look_at(None, at(2200)));
        assert_eq!(s.due(), None);
        assert!(!s.look_at(Some(4), at(2300)));
        assert!(!s.look_at(Some(4), at(3299)));
        assert!(s.look_at(Some(4), at(3300)));
    }
}
