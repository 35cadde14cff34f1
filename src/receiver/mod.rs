//! The Alertmanager webhook receiver and remediation engine: HTTP endpoints
//! (webhook, approvals, holds, status), built on the payload parser, the
//! credentials check, the incident journal, the safety state and the engine.
//!
//! Request order on the webhook: method → authentication → size limit →
//! content type → parse → alert-count bound → route and resolve targets →
//! journal (fsync) → 200; actions run after the reply. Status codes: 4xx
//! when the request itself is wrong (Alertmanager does not retry those),
//! 5xx only when the alerts could not be journaled (it retries those).

pub mod auth;
pub mod config;
pub mod engine;
pub mod identity;
pub mod incidents;
pub mod journal;
pub mod metrics;
pub mod payload;
pub mod state;

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};

pub use auth::check_listen;
pub use engine::Receiver;

use crate::server::{Body, method_not_allowed, response};

/// Paths the receiver's own path must not take.
pub const RESERVED_PATHS: &[&str] = &["/", "/metrics", "/-/healthy", "/-/ready", STATUS_PATH];
const STATUS_PATH: &str = "/api/v1/status";
const ACTIONS_PREFIX: &str = "/api/v1/actions/";
const HOLDS_PREFIX: &str = "/api/v1/holds/";

fn json(status: StatusCode, value: serde_json::Value) -> Response<Body> {
    let mut body = serde_json::to_vec(&value).expect("json value serializes");
    body.push(b'\n');
    response(status, "application/json", body)
}

fn error(status: StatusCode, message: impl std::fmt::Display) -> Response<Body> {
    json(
        status,
        serde_json::json!({"status": "error", "error": message.to_string()}),
    )
}

/// Percent-decodes one path segment; `None` when malformed or not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Percent-encodes everything but unreserved characters (for CLI URLs).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Receiver {
    /// True for the paths this receiver answers.
    pub fn owns(&self, path: &str) -> bool {
        path == self.cfg.path
            || path == STATUS_PATH
            || path.starts_with(ACTIONS_PREFIX)
            || path.starts_with(HOLDS_PREFIX)
    }

    fn authorized(&self, req: &Request<Incoming>) -> bool {
        self.auth.check(req.headers().get(AUTHORIZATION).map(|v| v.as_bytes()))
    }

    fn unauthorized() -> Response<Body> {
        let mut r = error(StatusCode::UNAUTHORIZED, "missing or wrong credentials");
        r.headers_mut().insert(
            WWW_AUTHENTICATE,
            "Bearer realm=\"hostmedic\"".parse().expect("valid header"),
        );
        r
    }

    /// Answers one request to a path [`Receiver::owns`].
    pub async fn handle(self: &Arc<Self>, req: Request<Incoming>) -> Response<Body> {
        let path = req.uri().path().to_string();
        if path == self.cfg.path {
            let r = self.webhook(req).await;
            self.metrics.request(r.status().as_u16());
            if r.status().is_client_error() || r.status().is_server_error() {
                tracing::info!(status = r.status().as_u16(), path = %path, "webhook request rejected");
            }
            return r;
        }
        if path == STATUS_PATH {
            if !matches!(*req.method(), Method::GET | Method::HEAD) {
                return method_not_allowed("GET, HEAD");
            }
            if !self.authorized(&req) {
                return Self::unauthorized();
            }
            return json(StatusCode::OK, self.status_json().await);
        }
        if let Some(rest) = path.strip_prefix(ACTIONS_PREFIX) {
            let Some(id) = rest.strip_suffix("/approve") else {
                return error(StatusCode::NOT_FOUND, "expected /api/v1/actions/<id>/approve");
            };
            if *req.method() != Method::POST {
                return method_not_allowed("POST");
            }
            if !self.authorized(&req) {
                return Self::unauthorized();
            }
            let by = approver(&req);
            return match self.approve(id, &by).await {
                Ok(target) => json(
                    StatusCode::OK,
                    serde_json::json!({"status": "approved", "id": id, "target": target}),
                ),
                Err(e @ engine::ControlError::NotFound(_)) => error(StatusCode::NOT_FOUND, e),
                Err(e @ engine::ControlError::Conflict(_)) => error(StatusCode::CONFLICT, e),
                Err(e @ engine::ControlError::Journal(_)) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
            };
        }
        if let Some(rest) = path.strip_prefix(HOLDS_PREFIX) {
            let Some(target) = rest.strip_suffix("/clear").and_then(percent_decode) else {
                return error(StatusCode::NOT_FOUND, "expected /api/v1/holds/<target>/clear");
            };
            if *req.method() != Method::POST {
                return method_not_allowed("POST");
            }
            if !self.authorized(&req) {
                return Self::unauthorized();
            }
            let by = approver(&req);
            return match self.clear_hold(&target, &by).await {
                Ok(()) => json(
                    StatusCode::OK,
                    serde_json::json!({"status": "cleared", "target": target}),
                ),
                Err(e @ engine::ControlError::Journal(_)) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
                Err(e) => error(StatusCode::NOT_FOUND, e),
            };
        }
        error(StatusCode::NOT_FOUND, "not found")
    }

    async fn webhook(self: &Arc<Self>, req: Request<Incoming>) -> Response<Body> {
        if *req.method() != Method::POST {
            return method_not_allowed("POST");
        }
        if !self.authorized(&req) {
            return Self::unauthorized();
        }
        let max = self.cfg.max_body_bytes;
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max as u64) {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body larger than receiver.max_body_bytes ({max})"),
            );
        }
        let ct = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let media = ct.split(';').next().unwrap_or("").trim();
        if !media.eq_ignore_ascii_case("application/json") {
            return error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "content type must be application/json, got {:?}",
                    ct.chars().take(80).collect::<String>()
                ),
            );
        }
        let body: Bytes = match Limited::new(req.into_body(), max).collect().await {
            Ok(c) => c.to_bytes(),
            Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
                return error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("body larger than receiver.max_body_bytes ({max})"),
                );
            }
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("reading the body: {e}")),
        };
        let payload = match payload::parse(&body, self.cfg.max_alerts_per_request) {
            Ok(p) => p,
            Err(e @ payload::PayloadError::TooManyAlerts { .. }) => return error(StatusCode::PAYLOAD_TOO_LARGE, e),
            Err(e) => return error(StatusCode::BAD_REQUEST, e),
        };
        match self.accept(payload).await {
            Ok(acc) => json(
                StatusCode::OK,
                serde_json::json!({"status": "accepted", "summary": acc}),
            ),
            Err(e @ engine::AcceptError::Refused(_)) => error(StatusCode::UNPROCESSABLE_ENTITY, e),
            Err(e @ engine::AcceptError::Journal(_)) => {
                tracing::error!(error = %e, "webhook not journaled; answering 500 so Alertmanager retries");
                error(StatusCode::INTERNAL_SERVER_ERROR, e)
            }
        }
    }
}

/// Who approved/cleared, for the journal: the `X-Hostmedic-Actor` header
/// (the CLI sends `cli:<user>`), else `api`. Never a credential.
fn approver(req: &Request<Incoming>) -> String {
    req.headers()
        .get("x-hostmedic-actor")
        .and_then(|v| v.to_str().ok())
        .map(|s| {
            s.chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '-' | '_' | '.' | '@'))
                .take(64)
                .collect::<String>()
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "api".into())
}

/// One fuzz/randomized-test iteration over untrusted bytes: the payload
/// parser, label/timestamp validators, matcher parser and target grammars
/// must not panic, and what the parser accepts must hold its promises.
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
            assert!(payload::parse_timestamp(&a.starts_at).is_some());
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
        let _ = payload::parse_timestamp(s);
        let _ = payload::valid_label_name(s);
        let _ = config::Matcher::parse(s);
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

    #[test]
    fn percent_round_trip() {
        for s in ["systemd:system:crashy.service", "exec:/bin/x a b", "docker:web", "ü/%"] {
            assert_eq!(percent_decode(&percent_encode(s)).as_deref(), Some(s));
        }
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%4"), None);
    }

    /// The fuzz target's checks on stable Rust: seeded random mutations of a
    /// real Alertmanager payload and of interesting strings (bit flips,
    /// byte insertions/deletions, splices of JSON tokens and hostile values).
    #[test]
    fn randomized_payload_and_validator_inputs_never_panic() {
        let seeds: Vec<Vec<u8>> = vec![
            include_bytes!("../../fuzz/seeds/real.json").to_vec(),
            include_bytes!("../../fuzz/seeds/matcher.txt").to_vec(),
            include_bytes!("../../fuzz/seeds/unit.txt").to_vec(),
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
