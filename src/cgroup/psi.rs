//! Pressure stall information (PSI): the parser of a `*.pressure` file,
//! shared by the cgroup readers (`<cgroup>/{cpu,memory,io}.pressure`) and the
//! host pressure collector (`/proc/pressure/*`).

/// One PSI line: the share of wall time some (or all) tasks were stalled.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PressureLine {
    /// Averages over 10 s, 60 s and 300 s, in percent (0–100).
    pub avg10: f64,
    pub avg60: f64,
    pub avg300: f64,
    /// Total stall time since boot (or since the cgroup was created), µs.
    pub total_usec: u64,
}

/// One `*.pressure` file: `some` always, `full` where the kernel has it
/// (memory and io; cpu too since 5.13, where it is 0 at the host level).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Pressure {
    pub some: Option<PressureLine>,
    pub full: Option<PressureLine>,
}

impl Pressure {
    /// `("some", line)` and `("full", line)` for the lines present.
    pub fn kinds(&self) -> impl Iterator<Item = (&'static str, PressureLine)> + '_ {
        [("some", self.some), ("full", self.full)]
            .into_iter()
            .filter_map(|(k, l)| Some((k, l?)))
    }
}

/// Parses a PSI file (`/proc/pressure/cpu`, `<cgroup>/io.pressure`, …):
/// lines `some|full avg10=… avg60=… avg300=… total=…`. `None` when no line
/// parses; a line missing a field is skipped.
pub fn parse_pressure(text: &str) -> Option<Pressure> {
    let mut p = Pressure::default();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let kind = words.next();
        let mut l = PressureLine::default();
        let mut seen = 0u8;
        for w in words {
            let Some((k, v)) = w.split_once('=') else { continue };
            let ok = match k {
                "avg10" => v.parse().map(|v| l.avg10 = v).is_ok(),
                "avg60" => v.parse().map(|v| l.avg60 = v).is_ok(),
                "avg300" => v.parse().map(|v| l.avg300 = v).is_ok(),
                "total" => v.parse().map(|v| l.total_usec = v).is_ok(),
                _ => false,
            };
            seen += u8::from(ok);
        }
        if seen != 4 {
            continue;
        }
        match kind {
            Some("some") => p.some = Some(l),
            Some("full") => p.full = Some(l),
            _ => {}
        }
    }
    (p.some.is_some() || p.full.is_some()).then_some(p)
}

/// The PSI resources, in file order: `cpu`, `memory`, `io`.
pub const PRESSURE_RESOURCES: [&str; 3] = ["cpu", "memory", "io"];

/// The PSI file of each of [`PRESSURE_RESOURCES`].
pub(super) const PRESSURE_FILES: [&str; 3] = ["cpu.pressure", "memory.pressure", "io.pressure"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pressure_lines() {
        let p = parse_pressure(
            "some avg10=2.72 avg60=3.26 avg300=8.98 total=3111662556\nfull avg10=0.00 avg60=0.10 avg300=0.00 total=7\n",
        )
        .unwrap();
        assert_eq!(
            p.some,
            Some(PressureLine {
                avg10: 2.72,
                avg60: 3.26,
                avg300: 8.98,
                total_usec: 3111662556
            })
        );
        assert_eq!(p.full.unwrap().total_usec, 7);
        assert_eq!(p.kinds().count(), 2);
        // Old kernels: cpu has no full line.
        let p = parse_pressure("some avg10=0.00 avg60=0.00 avg300=0.00 total=5\n").unwrap();
        assert!(p.full.is_none());
        assert_eq!(p.kinds().map(|(k, _)| k).collect::<Vec<_>>(), ["some"]);
        assert!(parse_pressure("").is_none());
        assert!(parse_pressure("some avg10=x avg60=0 avg300=0 total=1\n").is_none());
    }
}
