//! Robustness checks over untrusted bytes, shared by the cargo-fuzz target
//! (`fuzz/fuzz_targets/webhook_payload.rs`) and a randomized test on stable.

use super::{config, payload};

/// One fuzz/randomized-test iteration over untrusted bytes: the payload
/// parser, label/timestamp validators, matcher and quiet-window parsers and
/// target grammars must not panic, and what the parser accepts must hold its promises.
/// Called by `fuzz/fuzz_targets/webhook_payload.rs` and a stable test.
#[doc(hidden)]
pub fn fuzz_check(data: &[u8]) {
    use crate::actions::target;
    let safe_unit = |v: &str| {
        !v.contains('/')
            && !v.contains("..")
            && !v.chars().any(|c| c.is_whitespace() || ";$`|&<>(){}'\"!*?".contains(c))
    };
    if let Ok(p) = payload::parse(data, 1000) {
        assert!(p.alerts.len() <= 1000);
        for a in &p.alerts {
            assert!(payload::valid_fingerprint(&a.fingerprint));
            assert!(crate::time::parse_rfc3339(&a.starts_at).is_some());
            assert!(a.labels.keys().all(|k| payload::valid_label_name(k)));
            for v in a.labels.values() {
                if target::validate_unit_name(v).is_ok() {
                    assert!(safe_unit(v), "unit name {v:?} accepted");
                }
                let _ = target::validate_container(v);
                let _ = target::validate_pid(v);
            }
        }
        // What is journaled parses back the same.
        let text = serde_json::to_vec(&p).expect("payload serializes");
        let again = payload::parse(&text, 1000).expect("round trip");
        assert_eq!(again.alerts, p.alerts);
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = crate::time::parse_rfc3339(s);
        let _ = payload::valid_label_name(s);
        let _ = config::Matcher::parse(s);
        if let Ok(w) = super::quiet::Window::parse(s) {
            for day in 0..7 {
                for secs in [0, 1, 43_200, 86_399] {
                    let _ = w.covers(day, secs);
                }
            }
        }
        if target::validate_unit_name(s).is_ok() {
            assert!(safe_unit(s), "unit name {s:?} accepted");
        }
        let _ = target::validate_container(s);
        let _ = target::validate_pid(s);
        let _ = target::parse_start_time(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fuzz target's checks on stable Rust: seeded random mutations of a
    /// real Alertmanager payload and of interesting strings (bit flips,
    /// byte insertions/deletions, splices of JSON tokens and hostile values).
    #[test]
    fn randomized_payload_and_validator_inputs_never_panic() {
        let seeds: Vec<Vec<u8>> = vec![
            include_bytes!("../../fuzz/seeds/real.json").to_vec(),
            include_bytes!("../../fuzz/seeds/matcher.txt").to_vec(),
            include_bytes!("../../fuzz/seeds/unit.txt").to_vec(),
            include_bytes!("../../fuzz/seeds/quiet.txt").to_vec(),
        ];
        let tokens: &[&[u8]] = &[
            b"\"",
            b"{",
            b"}",
            b"[",
            b"]",
            b",",
            b":",
            b"null",
            b"1e999",
            b"-0",
            b"\"\\u0000\"",
            b"\"../x\"",
            b"\"a b.service\"",
            b"\";reboot\"",
            b"\"$(id)\"",
            b"\"firing\"",
            b"\"resolved\"",
            b"\"alerts\"",
            b"\"labels\"",
            b"\"fingerprint\"",
            b"\"startsAt\"",
            b"\"2026-02-30T25:61:61Z\"",
            b"\xff\xfe",
            b"\\",
            b"\"\\ud800\"",
            b"9999999999999999999999",
            b"\"x.service\\x2f\"",
            b"\"@.service\"",
        ];
        let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let iterations = std::env::var("HOSTMEDIC_FUZZ_ITERATIONS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(5_000u32);
        for _ in 0..iterations {
            let mut d = seeds[(next() % seeds.len() as u64) as usize].clone();
            for _ in 0..1 + next() % 4 {
                let at = if d.is_empty() {
                    0
                } else {
                    (next() % d.len() as u64) as usize
                };
                match next() % 5 {
                    0 if !d.is_empty() => d[at] ^= 1 << (next() % 8),
                    1 => d.insert(at, next() as u8),
                    2 if !d.is_empty() => {
                        let end = (at + 1 + (next() % 16) as usize).min(d.len());
                        d.drain(at..end);
                    }
                    _ => {
                        let t = tokens[(next() % tokens.len() as u64) as usize];
                        d.splice(at..at, t.iter().copied());
                    }
                }
            }
            fuzz_check(&d);
        }
    }
}
