//! Alertmanager's webhook payload (version 4), parsed strictly enough to say
//! what is wrong and loosely enough to accept fields newer Alertmanagers add.
//!
//! Parsing never panics on any input (a fuzz target and a randomized test
//! check that); every error names the JSON path that is wrong.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Hard limits applied to every alert, so a payload cannot carry unbounded
/// strings into the journal.
pub const MAX_LABELS: usize = 64;
pub const MAX_LABEL_VALUE: usize = 1024;
pub const MAX_ANNOTATION_VALUE: usize = 8192;

/// `firing` or `resolved`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Firing,
    Resolved,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Resolved => "resolved",
        }
    }
}

/// The whole webhook body. Unknown fields are ignored (newer Alertmanagers).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Payload {
    #[serde(default)]
    pub version: String,
    #[serde(default, rename = "groupKey")]
    pub group_key: String,
    #[serde(default, rename = "truncatedAlerts")]
    pub truncated_alerts: u64,
    pub status: Status,
    #[serde(default)]
    pub receiver: String,
    #[serde(default, rename = "groupLabels")]
    pub group_labels: BTreeMap<String, String>,
    #[serde(default, rename = "commonLabels")]
    pub common_labels: BTreeMap<String, String>,
    #[serde(default, rename = "commonAnnotations")]
    pub common_annotations: BTreeMap<String, String>,
    #[serde(default, rename = "externalURL")]
    pub external_url: String,
    pub alerts: Vec<PayloadAlert>,
}

/// One alert of the payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PayloadAlert {
    pub status: Status,
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(rename = "startsAt")]
    pub starts_at: String,
    #[serde(default, rename = "endsAt")]
    pub ends_at: String,
    #[serde(default, rename = "generatorURL")]
    pub generator_url: String,
    pub fingerprint: String,
}

impl PayloadAlert {
    pub fn alertname(&self) -> &str {
        self.labels.get("alertname").map(String::as_str).unwrap_or("")
    }

    /// The key that identifies one firing (or resolution) of one alert:
    /// Alertmanager retries and HA peers deliver the same key again.
    pub fn dedup_key(&self) -> String {
        format!("{}|{}|{}", self.fingerprint, self.starts_at, self.status.as_str())
    }
}

/// Why a body was rejected; each maps to one 4xx status.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("invalid JSON at `{path}`: {message}")]
    Json { path: String, message: String },
    #[error("`alerts` holds {count} alerts; at most {max} are accepted per request")]
    TooManyAlerts { count: usize, max: usize },
    #[error("`{path}`: {message}")]
    Invalid { path: String, message: String },
}

/// Parses and validates a webhook body. `max_alerts` bounds `alerts[]`.
pub fn parse(body: &[u8], max_alerts: usize) -> Result<Payload, PayloadError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let payload: Payload = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        PayloadError::Json {
            path: if path == "." { "(document)".into() } else { path },
            message: inner.to_string(),
        }
    })?;
    if payload.alerts.len() > max_alerts {
        return Err(PayloadError::TooManyAlerts {
            count: payload.alerts.len(),
            max: max_alerts,
        });
    }
    if !payload.version.is_empty() && payload.version != "4" {
        return Err(PayloadError::Invalid {
            path: "version".into(),
            message: format!(
                "unsupported webhook payload version {:?} (expected \"4\")",
                payload.version
            ),
        });
    }
    for (i, a) in payload.alerts.iter().enumerate() {
        validate_alert(a).map_err(|(field, message)| PayloadError::Invalid {
            path: format!("alerts[{i}].{field}"),
            message,
        })?;
    }
    Ok(payload)
}

/// Checks one alert; the error is `(field path inside the alert, message)`.
pub fn validate_alert(a: &PayloadAlert) -> Result<(), (String, String)> {
    if a.labels.is_empty() {
        return Err(("labels".into(), "an alert needs at least one label".into()));
    }
    if a.labels.len() > MAX_LABELS {
        return Err(("labels".into(), format!("more than {MAX_LABELS} labels")));
    }
    for (k, v) in &a.labels {
        if !valid_label_name(k) {
            return Err((
                format!("labels.{}", printable(k)),
                "not a valid Prometheus label name".into(),
            ));
        }
        if v.len() > MAX_LABEL_VALUE {
            return Err((
                format!("labels.{k}"),
                format!("value longer than {MAX_LABEL_VALUE} bytes"),
            ));
        }
    }
    for (k, v) in &a.annotations {
        if !valid_label_name(k) {
            return Err((
                format!("annotations.{}", printable(k)),
                "not a valid annotation name".into(),
            ));
        }
        if v.len() > MAX_ANNOTATION_VALUE {
            return Err((
                format!("annotations.{k}"),
                format!("value longer than {MAX_ANNOTATION_VALUE} bytes"),
            ));
        }
    }
    if !valid_fingerprint(&a.fingerprint) {
        return Err(("fingerprint".into(), "must be 1 to 64 hexadecimal digits".into()));
    }
    if !valid_timestamp(&a.starts_at) {
        return Err(("startsAt".into(), "must be an RFC 3339 timestamp".into()));
    }
    if !a.ends_at.is_empty() && !valid_timestamp(&a.ends_at) {
        return Err(("endsAt".into(), "must be an RFC 3339 timestamp".into()));
    }
    if a.generator_url.len() > MAX_ANNOTATION_VALUE {
        return Err(("generatorURL".into(), "too long".into()));
    }
    Ok(())
}

/// Prometheus label-name grammar: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn valid_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    s.len() <= 128 && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Alertmanager fingerprints are 16 hex digits; accept 1..=64.
pub fn valid_fingerprint(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// RFC 3339 as Alertmanager writes it (`2026-11-22T07:07:46.877Z`, also with
/// a numeric offset). Go's zero time `0001-01-01T00:00:00Z` is valid.
pub fn valid_timestamp(s: &str) -> bool {
    parse_timestamp(s).is_some()
}

/// Parses an RFC 3339 timestamp into Unix seconds (may be negative for Go's
/// zero time).
pub fn parse_timestamp(s: &str) -> Option<f64> {
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

fn printable(s: &str) -> String {
    s.chars().take(64).flat_map(char::escape_default).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL: &str = r#"{"receiver":"webhook","status":"firing","alerts":[{"status":"firing",
     "labels":{"alertname":"AlwaysFiring","severity":"critical","unit":"crashy.service"},
     "annotations":{"summary":"always-true probe alert"},
     "startsAt":"2026-11-22T07:07:46.877Z","endsAt":"0001-01-01T00:00:00Z",
     "generatorURL":"http://vm:19090/graph?g0.expr=vector%281%29&g0.tab=1",
     "fingerprint":"f6b67d4a16972f5a"}],
     "groupLabels":{"alertname":"AlwaysFiring"},"commonLabels":{},
     "commonAnnotations":{},"externalURL":"http://vm:19093","version":"4",
     "groupKey":"{}:{alertname=\"AlwaysFiring\"}","truncatedAlerts":0, "someFutureField": [1,2]}"#;

    #[test]
    fn parses_a_real_alertmanager_payload_with_extra_fields() {
        let p = parse(REAL.as_bytes(), 10).unwrap();
        assert_eq!(p.alerts.len(), 1);
        assert_eq!(p.alerts[0].alertname(), "AlwaysFiring");
        assert_eq!(p.alerts[0].labels["unit"], "crashy.service");
        assert_eq!(p.status, Status::Firing);
    }

    #[test]
    fn errors_name_the_path() {
        let bad = REAL.replace("\"fingerprint\":\"f6b67d4a16972f5a\"", "\"fingerprint\":42");
        let e = parse(bad.as_bytes(), 10).unwrap_err().to_string();
        assert!(e.contains("alerts[0].fingerprint"), "{e}");
        let bad = REAL.replace("\"status\":\"firing\",\n", "\"status\":\"burning\",\n");
        let e = parse(bad.as_bytes(), 10).unwrap_err().to_string();
        assert!(e.contains("alerts[0].status"), "{e}");
        let e = parse(&REAL.as_bytes()[..100], 10).unwrap_err().to_string();
        assert!(e.contains("EOF"), "{e}");
        let e = parse(REAL.as_bytes(), 0).unwrap_err().to_string();
        assert!(e.contains("at most 0"), "{e}");
        let bad = REAL.replace("\"severity\"", "\"sev-erity\"");
        let e = parse(bad.as_bytes(), 10).unwrap_err().to_string();
        assert!(e.contains("alerts[0].labels.sev-erity"), "{e}");
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(parse_timestamp("1970-01-01T01:00:00+01:00"), Some(0.0));
        assert_eq!(parse_timestamp("2026-11-22T07:07:46.5Z"), Some(1795331266.5));
        assert!(parse_timestamp("0001-01-01T00:00:00Z").is_some());
        for bad in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-11-22T07:07:46",
            "2026-11-22T07:07:46.Z",
        ] {
            assert!(parse_timestamp(bad).is_none(), "{bad}");
        }
    }
}
