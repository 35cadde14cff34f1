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

crate::spelled!(Status);

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
    /// When the request arrived (Unix seconds; set by the webhook handler,
    /// never read from the body). `None`: the planning time stands in.
    #[serde(skip)]
    pub received: Option<f64>,
}

/// One alert of the payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PayloadAlert {
    pub status: Status,
    #[serde(deserialize_with = "unique_map")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "unique_map")]
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

/// A JSON object as a map that refuses a key given twice. serde's own map
/// impl lets the last value win, so an alert with `unit` twice would be
/// journaled with one value while the other was what Alertmanager grouped
/// on; like a duplicate top-level field, it is an error (400).
fn unique_map<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    struct Unique;
    impl<'de> serde::de::Visitor<'de> for Unique {
        type Value = BTreeMap<String, String>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object of strings")
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((k, v)) = m.next_entry::<String, String>()? {
                if out.contains_key(&k) {
                    return Err(serde::de::Error::custom(format_args!(
                        "duplicate key `{}`",
                        printable(&k)
                    )));
                }
                out.insert(k, v);
            }
            Ok(out)
        }
    }
    d.deserialize_map(Unique)
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
    check_version(&payload.version)?;
    for (i, a) in payload.alerts.iter().enumerate() {
        validate_alert(a).map_err(|(field, message)| PayloadError::Invalid {
            path: format!("alerts[{i}].{field}"),
            message,
        })?;
    }
    Ok(payload)
}

/// Only Alertmanager's webhook format version 4 is understood; a body
/// without `version` is not an Alertmanager notification (or one from a
/// format this receiver does not know), so it is refused rather than guessed.
fn check_version(version: &str) -> Result<(), PayloadError> {
    let message = match version {
        "4" => return Ok(()),
        "" => "missing: Alertmanager's webhook payload carries \"version\": \"4\"".to_string(),
        v => format!(
            "unsupported webhook payload version {:?} (expected \"4\")",
            printable(v)
        ),
    };
    Err(PayloadError::Invalid {
        path: "version".into(),
        message,
    })
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
    crate::time::parse_rfc3339(s).is_some()
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
    fn a_label_or_annotation_given_twice_is_refused_naming_it() {
        let twice = REAL.replace(
            r#""unit":"crashy.service""#,
            r#""unit":"crashy.service","unit":"other.service""#,
        );
        let e = parse(twice.as_bytes(), 10).unwrap_err();
        assert!(matches!(e, PayloadError::Json { .. }), "{e:?}");
        let e = e.to_string();
        assert!(
            e.contains("alerts[0].labels") && e.contains("duplicate key `unit`"),
            "{e}"
        );
        let twice = REAL.replace(
            r#""summary":"always-true probe alert""#,
            r#""summary":"a","summary":"b""#,
        );
        let e = parse(twice.as_bytes(), 10).unwrap_err().to_string();
        assert!(
            e.contains("alerts[0].annotations") && e.contains("duplicate key `summary`"),
            "{e}"
        );
        // The same key in two alerts is fine.
        assert!(parse(REAL.as_bytes(), 10).is_ok());
    }

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
    fn a_body_without_version_4_is_refused_naming_version() {
        let missing = REAL.replace(r#""version":"4","#, "");
        assert_ne!(missing, REAL);
        let e = parse(missing.as_bytes(), 10).unwrap_err();
        assert!(matches!(e, PayloadError::Invalid { .. }), "{e:?}");
        let e = e.to_string();
        assert!(e.contains("`version`") && e.contains("missing"), "{e}");
        let empty = REAL.replace(r#""version":"4""#, r#""version":"""#);
        assert!(parse(empty.as_bytes(), 10).unwrap_err().to_string().contains("missing"));
        let five = REAL.replace(r#""version":"4""#, r#""version":"5""#);
        let e = parse(five.as_bytes(), 10).unwrap_err().to_string();
        assert!(e.contains("unsupported") && e.contains("\"5\""), "{e}");
    }
}
