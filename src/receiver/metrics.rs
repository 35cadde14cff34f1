//! The receiver's self metrics (docs/metrics.md, "receiver / remediation"):
//! counters kept in memory and written into each scrape's `MetricSet`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::timeline::{Stage, Timeline};
use crate::metrics::MetricSet;

/// Upper bounds of the action-duration histogram, in seconds.
const BUCKETS: [f64; 12] = [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0];

/// Upper bounds of the remediation-latency histogram, in seconds: 10 ms
/// (the receiver's own stages) to 2 minutes (a `for:` window in front of
/// the total), finest around the few seconds of the alert pipeline's floor.
const LATENCY_BUCKETS: [f64; 17] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.5, 10.0, 30.0, 60.0, 120.0,
];

#[derive(Debug, Clone)]
struct Histogram {
    bounds: &'static [f64],
    sum: f64,
    count: u64,
    /// Per bound, plus the last one for +Inf (not cumulative).
    buckets: Vec<u64>,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            sum: 0.0,
            count: 0,
            buckets: vec![0; bounds.len() + 1],
        }
    }

    fn observe(&mut self, v: f64) {
        self.sum += v;
        self.count += 1;
        let i = self.bounds.iter().position(|&b| v <= b).unwrap_or(self.bounds.len());
        self.buckets[i] += 1;
    }

    fn write(&self, out: &mut MetricSet, name: &str, help: &str, labels: &[(&'static str, &str)]) {
        let mut buckets: Vec<(f64, u64)> = self.bounds.iter().copied().zip(self.buckets.iter().copied()).collect();
        buckets.push((f64::INFINITY, self.buckets[self.bounds.len()]));
        out.histogram(name, help, labels, self.sum, self.count, buckets);
    }
}

/// How many 401 times [`Metrics`] keeps.
const UNAUTHORIZED_KEPT: usize = 256;

#[derive(Debug, Default)]
struct Inner {
    alerts: BTreeMap<&'static str, u64>,
    requests: BTreeMap<u16, u64>,
    /// Unix times of the latest webhook requests refused 401 (at most
    /// [`UNAUTHORIZED_KEPT`]), for the pipeline-silence message.
    unauthorized: std::collections::VecDeque<f64>,
    actions: BTreeMap<(String, String), u64>,
    skipped: BTreeMap<&'static str, u64>,
    durations: BTreeMap<String, Histogram>,
    latency: BTreeMap<Stage, Histogram>,
}

#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        f(&mut crate::sync::lock(&self.inner))
    }

    pub fn alert(&self, status: &'static str) {
        self.with(|m| *m.alerts.entry(status).or_default() += 1);
    }

    pub fn request(&self, code: u16) {
        self.with(|m| {
            *m.requests.entry(code).or_default() += 1;
            if code == 401 {
                if m.unauthorized.len() == UNAUTHORIZED_KEPT {
                    m.unauthorized.pop_front();
                }
                m.unauthorized.push_back(crate::time::now());
            }
        });
    }

    /// The webhook requests refused 401 at or after `since`: how many (of
    /// the latest [`UNAUTHORIZED_KEPT`]) and when the last came.
    pub fn unauthorized_since(&self, since: f64) -> Option<(usize, f64)> {
        self.with(|m| {
            let n = m.unauthorized.iter().filter(|t| **t >= since).count();
            m.unauthorized.back().filter(|_| n > 0).map(|last| (n, *last))
        })
    }

    pub fn action(&self, action: &str, result: &str) {
        self.with(|m| *m.actions.entry((action.to_string(), result.to_string())).or_default() += 1);
    }

    pub fn skipped(&self, reason: &'static str) {
        self.with(|m| *m.skipped.entry(reason).or_default() += 1);
    }

    pub fn duration(&self, action: &str, seconds: f64) {
        self.with(|m| {
            m.durations
                .entry(action.to_string())
                .or_insert_with(|| Histogram::new(&BUCKETS))
                .observe(seconds)
        });
    }

    /// Observes every known stage of a finished run's timeline.
    pub fn latency(&self, timeline: &Timeline) {
        let stages = timeline.stages();
        self.with(|m| {
            for (stage, seconds) in stages {
                m.latency
                    .entry(stage)
                    .or_insert_with(|| Histogram::new(&LATENCY_BUCKETS))
                    .observe(seconds);
            }
        });
    }

    /// Writes every family; `holds` are the current holds as (rule, target).
    pub fn write(&self, out: &mut MetricSet, holds: &[(String, String)]) {
        self.with(|m| {
            for (status, v) in &m.alerts {
                out.counter(
                    "hostmedic_alerts_received",
                    "Alerts received from Alertmanager, by alert status.",
                    &[("status", status)],
                    *v as f64,
                );
            }
            for (code, v) in &m.requests {
                out.counter(
                    "hostmedic_webhook_requests",
                    "Webhook requests answered, by HTTP status code.",
                    &[("code", &code.to_string())],
                    *v as f64,
                );
            }
            for ((action, result), v) in &m.actions {
                out.counter(
                    "hostmedic_actions",
                    "Remediation actions and verifications, by action and result.",
                    &[("action", action), ("result", result)],
                    *v as f64,
                );
            }
            for (reason, v) in &m.skipped {
                out.counter(
                    "hostmedic_actions_skipped",
                    "Remediations not run, by reason.",
                    &[("reason", reason)],
                    *v as f64,
                );
            }
            for (action, h) in &m.durations {
                h.write(
                    out,
                    "hostmedic_action_duration_seconds",
                    "Time one remediation action took.",
                    &[("action", action)],
                );
            }
            for (stage, h) in &m.latency {
                h.write(
                    out,
                    "hostmedic_remediation_latency_seconds",
                    "Seconds of each stage from an alert's startsAt to its remediation verified (docs/metrics.md).",
                    &[("stage", stage.as_str())],
                );
            }
        });
        out.gauge(
            "hostmedic_remediation_holds_active",
            "Targets held after their remediation budget was spent.",
            &[],
            holds.len() as f64,
        );
        for (rule, target) in holds {
            out.gauge(
                "hostmedic_remediation_hold",
                "A target held after its budget was spent (1 while held).",
                &[("rule", rule), ("target", target)],
                1.0,
            );
        }
    }
}
