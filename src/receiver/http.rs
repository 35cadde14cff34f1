//! The http stage: the receiver's endpoints. On the webhook, in order:
//! method → authentication → size limit → content type → parse →
//! alert-count bound, then [`Receiver::accept`]. Status codes: 4xx when the
//! request itself is wrong (Alertmanager does not retry those), 5xx only when
//! the alerts could not be journaled (it retries those). Also the status
//! document, approvals and hold clearing.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};

use super::config::STATUS_PATH;
use super::engine::{AcceptError, ControlError, Receiver};
use super::payload;
use crate::http::{Body, error, json, method_not_allowed, percent_decode};

const ACTIONS_PREFIX: &str = "/api/v1/actions/";
const HOLDS_PREFIX: &str = "/api/v1/holds/";

impl Receiver {
    /// True for the paths this receiver answers.
    pub fn owns(&self, path: &str) -> bool {
        path == self.settings().cfg.path
            || path == STATUS_PATH
            || path.starts_with(ACTIONS_PREFIX)
            || path.starts_with(HOLDS_PREFIX)
    }

    /// Whether `req` carries credentials the receiver accepts: the web
    /// layer's verified basic-auth user when `receiver.web_users` admits it,
    /// else the receiver's own credentials (any, when it has none).
    pub fn authorized<B>(&self, req: &Request<B>) -> bool {
        let settings = self.settings();
        let web_user = req.extensions().get::<crate::web::WebUser>();
        web_user.is_some_and(|u| settings.cfg.accepts_web_user(&u.0))
            || settings
                .auth
                .check(req.headers().get(AUTHORIZATION).map(|v| v.as_bytes()))
    }

    /// The one rule for who may read the receiver's state (the alerts
    /// firing, targets, holds, pending approvals and their ids): asked by
    /// `/api/v1/status` and by the landing page, so neither shows what the
    /// other protects. Anyone with `receiver.status_public`, else whoever
    /// [`Receiver::authorized`] admits (everyone when there are no
    /// credentials).
    pub fn may_read_status<B>(&self, req: &Request<B>) -> bool {
        self.settings().cfg.status_public || self.authorized(req)
    }

    /// The method check (405 with `Allow: allow`), then the credentials
    /// check (401), that every receiver endpoint starts with: the answer
    /// when the request fails one.
    fn refusal(&self, req: &Request<Incoming>, methods: &[Method], allow: &str) -> Option<Response<Body>> {
        if !methods.contains(req.method()) {
            return Some(method_not_allowed(allow));
        }
        if !self.authorized(req) {
            return Some(Self::unauthorized());
        }
        None
    }

    /// 401 with the `WWW-Authenticate` challenge.
    pub fn unauthorized() -> Response<Body> {
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
        if path == self.settings().cfg.path {
            let r = self.webhook(req).await;
            // A refusal (4xx) is logged by the server with its reason and peer.
            self.metrics.request(r.status().as_u16());
            return r;
        }
        if path == STATUS_PATH {
            if !matches!(*req.method(), Method::GET | Method::HEAD) {
                return method_not_allowed("GET, HEAD");
            }
            if !self.may_read_status(&req) {
                return Self::unauthorized();
            }
            return json(StatusCode::OK, self.status().await);
        }
        if let Some(rest) = path.strip_prefix(ACTIONS_PREFIX) {
            let Some(id) = rest.strip_suffix("/approve") else {
                return error(StatusCode::NOT_FOUND, "expected /api/v1/actions/<id>/approve");
            };
            if let Some(r) = self.refusal(&req, &[Method::POST], "POST") {
                return r;
            }
            let by = approver(&req);
            return match self.approve(id, &by).await {
                Ok(target) => json(
                    StatusCode::OK,
                    serde_json::json!({"status": "approved", "id": id, "target": target}),
                ),
                Err(e @ ControlError::NotFound(_)) => error(StatusCode::NOT_FOUND, e),
                Err(e @ ControlError::Conflict(_)) => error(StatusCode::CONFLICT, e),
                Err(e @ ControlError::Journal(_)) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
            };
        }
        if let Some(rest) = path.strip_prefix(HOLDS_PREFIX) {
            let Some(target) = rest.strip_suffix("/clear").and_then(percent_decode) else {
                return error(StatusCode::NOT_FOUND, "expected /api/v1/holds/<target>/clear");
            };
            if let Some(r) = self.refusal(&req, &[Method::POST], "POST") {
                return r;
            }
            let by = approver(&req);
            return match self.clear_hold(&target, &by).await {
                Ok(()) => json(
                    StatusCode::OK,
                    serde_json::json!({"status": "cleared", "target": target}),
                ),
                Err(e @ ControlError::Journal(_)) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
                Err(e) => error(StatusCode::NOT_FOUND, e),
            };
        }
        error(StatusCode::NOT_FOUND, "not found")
    }

    async fn webhook(self: &Arc<Self>, req: Request<Incoming>) -> Response<Body> {
        let received = crate::time::now();
        if let Some(r) = self.refusal(&req, &[Method::POST], "POST") {
            return r;
        }
        let max = self.settings().cfg.max_body_bytes;
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
        let payload = match payload::parse(&body, self.settings().cfg.max_alerts_per_request) {
            Ok(p) => payload::Payload {
                received: Some(received),
                ..p
            },
            Err(e @ payload::PayloadError::TooManyAlerts { .. }) => return error(StatusCode::PAYLOAD_TOO_LARGE, e),
            Err(e) => return error(StatusCode::BAD_REQUEST, e),
        };
        match self.accept(payload).await {
            Ok(acc) => json(
                StatusCode::OK,
                serde_json::json!({"status": "accepted", "summary": acc}),
            ),
            Err(e @ AcceptError::Refused(_)) => error(StatusCode::UNPROCESSABLE_ENTITY, e),
            Err(e @ AcceptError::Journal(_)) => {
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
