//! A per-scrape snapshot of metric families, and its two text encodings.
//!
//! Collectors fill a [`MetricSet`] (a fresh one every scrape, so no label set
//! ever goes stale). The set is then encoded either as OpenMetrics text through
//! `prometheus-client`'s collector API, or as the classic Prometheus text
//! format 0.0.4 for clients that do not ask for OpenMetrics (curl, `promtool
//! check metrics`). prometheus-client only speaks OpenMetrics, and its counters
//! are written as `# TYPE foo counter` + `foo_total`, which the classic parser
//! reads as two different families; the small classic writer below avoids that.
//!
//! Naming rule: counter families are named *without* the `_total` suffix; both
//! encoders append it.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;

use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

/// The kind of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    /// Monotonic counter; the family name excludes `_total`.
    Counter,
    Histogram,
}

/// One sample's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Number(f64),
    /// `buckets` are `(upper bound, count in this bucket)`, not cumulative;
    /// the last bound must be `+Inf`.
    Histogram {
        sum: f64,
        count: u64,
        buckets: Vec<(f64, u64)>,
    },
}

/// Label pairs in the order they are written.
pub type Labels = Vec<(Cow<'static, str>, String)>;

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: String,
    pub help: String,
    pub kind: Kind,
    pub samples: Vec<Sample>,
}

/// An ordered collection of metric families built for one scrape.
#[derive(Debug, Default, Clone)]
pub struct MetricSet {
    families: Vec<Family>,
    index: HashMap<String, usize>,
}

fn to_labels(labels: &[(&'static str, &str)]) -> Labels {
    labels
        .iter()
        .map(|(k, v)| (Cow::Borrowed(*k), (*v).to_string()))
        .collect()
}

impl MetricSet {
    pub fn new() -> Self {
        Self::default()
    }

    fn family(&mut self, name: &str, help: &str, kind: Kind) -> &mut Family {
        let idx = match self.index.get(name) {
            Some(&i) => i,
            None => {
                self.families.push(Family {
                    name: name.to_string(),
                    help: help.to_string(),
                    kind,
                    samples: Vec::new(),
                });
                self.index.insert(name.to_string(), self.families.len() - 1);
                self.families.len() - 1
            }
        };
        let fam = &mut self.families[idx];
        debug_assert_eq!(fam.kind, kind, "metric {name} registered with two kinds");
        fam
    }

    /// Declares a family with no samples yet, so its HELP/TYPE appear in the
    /// declared order even when samples are added later (or not at all: empty
    /// families are not encoded).
    pub fn declare(&mut self, name: &str, help: &str, kind: Kind) {
        self.family(name, help, kind);
    }

    pub fn gauge(&mut self, name: &str, help: &str, labels: &[(&'static str, &str)], value: f64) {
        self.push(name, help, Kind::Gauge, to_labels(labels), Value::Number(value));
    }

    /// Adds a counter sample; `name` excludes the `_total` suffix.
    pub fn counter(&mut self, name: &str, help: &str, labels: &[(&'static str, &str)], value: f64) {
        debug_assert!(!name.ends_with("_total"), "counter {name}: drop the _total suffix");
        self.push(name, help, Kind::Counter, to_labels(labels), Value::Number(value));
    }

    /// Adds a histogram sample (`buckets` per-bucket counts, last bound +Inf).
    pub fn histogram(
        &mut self,
        name: &str,
        help: &str,
        labels: &[(&'static str, &str)],
        sum: f64,
        count: u64,
        buckets: Vec<(f64, u64)>,
    ) {
        let value = Value::Histogram { sum, count, buckets };
        self.push(name, help, Kind::Histogram, to_labels(labels), value);
    }

    /// Adds a sample whose labels are already owned.
    pub fn push(&mut self, name: &str, help: &str, kind: Kind, labels: Labels, value: Value) {
        self.family(name, help, kind).samples.push(Sample { labels, value });
    }

    /// Moves every family of `other` into `self` (samples of a family that
    /// exists in both are appended).
    pub fn extend(&mut self, other: MetricSet) {
        for fam in other.families {
            let Family {
                name,
                help,
                kind,
                samples,
            } = fam;
            self.family(&name, &help, kind).samples.extend(samples);
        }
    }

    pub fn families(&self) -> &[Family] {
        &self.families
    }

    /// Finds a family by name (tests and the landing page use this).
    pub fn get(&self, name: &str) -> Option<&Family> {
        self.index.get(name).map(|&i| &self.families[i])
    }

    /// Value of the first sample of `name` whose labels include all `want`.
    pub fn value(&self, name: &str, want: &[(&str, &str)]) -> Option<f64> {
        let fam = self.get(name)?;
        fam.samples.iter().find_map(|s| {
            let all = want
                .iter()
                .all(|(k, v)| s.labels.iter().any(|(lk, lv)| lk == k && lv == v));
            match (&s.value, all) {
                (Value::Number(n), true) => Some(*n),
                _ => None,
            }
        })
    }

    /// Encodes as OpenMetrics text 1.0 (ends with `# EOF`).
    pub fn encode_openmetrics(self) -> String {
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(OpenMetricsSnapshot(self)));
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }

    /// Encodes as the classic Prometheus text format 0.0.4.
    pub fn encode_classic(&self) -> String {
        let mut out = String::with_capacity(self.families.len() * 256);
        for fam in self.families.iter().filter(|f| !f.samples.is_empty()) {
            let ty = match fam.kind {
                Kind::Gauge => "gauge",
                Kind::Counter => "counter",
                Kind::Histogram => "histogram",
            };
            let name = match fam.kind {
                Kind::Counter => format!("{}_total", fam.name),
                _ => fam.name.clone(),
            };
            let help = fam.help.replace('\\', "\\\\").replace('\n', "\\n");
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {ty}");
            for s in &fam.samples {
                match &s.value {
                    Value::Number(v) => write_line(&mut out, &name, &s.labels, None, *v),
                    Value::Histogram { sum, count, buckets } => {
                        let mut cumulative = 0u64;
                        for (le, c) in buckets {
                            cumulative += c;
                            let le = fmt_float(*le);
                            let bucket = format!("{}_bucket", fam.name);
                            write_line(&mut out, &bucket, &s.labels, Some(&le), cumulative as f64);
                        }
                        write_line(&mut out, &format!("{}_sum", fam.name), &s.labels, None, *sum);
                        let cname = format!("{}_count", fam.name);
                        write_line(&mut out, &cname, &s.labels, None, *count as f64);
                    }
                }
            }
        }
        out
    }
}

fn fmt_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

fn write_line(out: &mut String, name: &str, labels: &Labels, le: Option<&str>, v: f64) {
    out.push_str(name);
    if !labels.is_empty() || le.is_some() {
        out.push('{');
        let mut first = true;
        let extra = le.map(|le| (Cow::Borrowed("le"), le.to_string()));
        for (k, val) in labels.iter().chain(extra.iter()) {
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(k);
            out.push_str("=\"");
            for ch in val.chars() {
                match ch {
                    '\\' => out.push_str("\\\\"),
                    '"' => out.push_str("\\\""),
                    '\n' => out.push_str("\\n"),
                    c => out.push(c),
                }
            }
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    out.push_str(&fmt_float(v));
    out.push('\n');
}

/// Adapter that lets prometheus-client encode one snapshot.
#[derive(Debug)]
struct OpenMetricsSnapshot(MetricSet);

impl prometheus_client::collector::Collector for OpenMetricsSnapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for fam in self.0.families.iter().filter(|f| !f.samples.is_empty()) {
            let ty = match fam.kind {
                Kind::Gauge => MetricType::Gauge,
                Kind::Counter => MetricType::Counter,
                Kind::Histogram => MetricType::Histogram,
            };
            let mut metric = encoder.encode_descriptor(&fam.name, &fam.help, None, ty)?;
            for s in &fam.samples {
                let labels: Vec<(&str, &str)> = s.labels.iter().map(|(k, v)| (k.as_ref(), v.as_str())).collect();
                if labels.is_empty() {
                    encode_value(&mut metric, &s.value, fam.kind)?;
                } else {
                    encode_value(&mut metric.encode_family(&labels)?, &s.value, fam.kind)?;
                }
            }
        }
        Ok(())
    }
}

fn encode_value(
    m: &mut prometheus_client::encoding::MetricEncoder,
    value: &Value,
    kind: Kind,
) -> Result<(), std::fmt::Error> {
    match (value, kind) {
        (Value::Number(v), Kind::Counter) => m.encode_counter::<NoLabelSet, f64, f64>(v, None),
        (Value::Number(v), _) => m.encode_gauge(v),
        (Value::Histogram { sum, count, buckets }, _) => m.encode_histogram::<NoLabelSet>(*sum, *count, buckets, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> MetricSet {
        let mut m = MetricSet::new();
        m.gauge("hm_temp_celsius", "Temp.", &[("chip", "k10\"temp")], 41.5);
        m.counter("hm_restarts", "Restarts.", &[("unit", "a.service")], 3.0);
        m.histogram(
            "hm_dur_seconds",
            "Dur.",
            &[],
            0.5,
            2,
            vec![(0.1, 1), (1.0, 1), (f64::INFINITY, 0)],
        );
        m.declare("hm_empty", "Never filled.", Kind::Gauge);
        m
    }

    #[test]
    fn classic_format_has_total_suffix_and_cumulative_buckets() {
        let text = sample().encode_classic();
        assert!(text.contains("# TYPE hm_restarts_total counter\nhm_restarts_total{unit=\"a.service\"} 3\n"));
        assert!(text.contains("hm_temp_celsius{chip=\"k10\\\"temp\"} 41.5"));
        assert!(text.contains("hm_dur_seconds_bucket{le=\"1\"} 2"));
        assert!(text.contains("hm_dur_seconds_bucket{le=\"+Inf\"} 2"));
        assert!(!text.contains("hm_empty"));
    }

    #[test]
    fn openmetrics_ends_with_eof_and_types_counter() {
        let text = sample().encode_openmetrics();
        assert!(text.contains("# TYPE hm_restarts counter"), "{text}");
        assert!(text.contains("hm_restarts_total{unit=\"a.service\"} 3"), "{text}");
        assert!(text.ends_with("# EOF\n"));
        assert!(!text.contains("hm_empty"));
    }

    #[test]
    fn value_lookup_matches_label_subset() {
        let m = sample();
        assert_eq!(m.value("hm_restarts", &[("unit", "a.service")]), Some(3.0));
        assert_eq!(m.value("hm_restarts", &[("unit", "b.service")]), None);
    }
}
