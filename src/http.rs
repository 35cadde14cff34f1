//! HTTP response helpers shared by the server (`/metrics`, health, landing
//! page) and the receiver's endpoints, plus the percent coding of path
//! segments (`/api/v1/holds/<target>/clear`, the CLI builds those URLs).
//! A leaf: it imports nothing of the crate, so the receiver can answer
//! requests without depending on the server that routes to it.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{ALLOW, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

pub type Body = Full<Bytes>;

pub const OPENMETRICS_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
pub const CLASSIC_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
pub const TEXT_TYPE: &str = "text/plain; charset=utf-8";
pub const HTML_TYPE: &str = "text/html; charset=utf-8";
pub const JSON_TYPE: &str = "application/json";

/// Builds a response with a body and content type.
pub fn response(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, content_type)
        .body(Full::new(body.into()))
        .expect("static response parts are valid")
}

/// A plain-text response.
pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    response(status, TEXT_TYPE, body)
}

/// A JSON response (one line, newline-terminated).
pub fn json(status: StatusCode, value: impl serde::Serialize) -> Response<Body> {
    let mut body = serde_json::to_vec(&value).expect("json value serializes");
    body.push(b'\n');
    response(status, JSON_TYPE, body)
}

/// A JSON error document: `{"status": "error", "error": message}`.
pub fn error(status: StatusCode, message: impl std::fmt::Display) -> Response<Body> {
    json(
        status,
        serde_json::json!({"status": "error", "error": message.to_string()}),
    )
}

/// 405 with the `Allow` header listing what the path accepts.
pub fn method_not_allowed(allow: &str) -> Response<Body> {
    let mut r = text(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method not allowed; allowed: {allow}\n"),
    );
    r.headers_mut()
        .insert(ALLOW, allow.parse().expect("valid header value"));
    r
}

/// Everything but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`).
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Percent-encodes everything but unreserved characters (for CLI URLs).
pub fn percent_encode(s: &str) -> String {
    utf8_percent_encode(s, PATH_SEGMENT).to_string()
}

/// Percent-decodes one path segment; `None` when a `%` is not followed by
/// two hex digits or the result is not UTF-8 (the crate would pass a
/// malformed escape through unchanged; a target name must not).
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let well_formed = b
        .iter()
        .enumerate()
        .filter(|(_, c)| **c == b'%')
        .all(|(i, _)| b.get(i + 1..i + 3).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)));
    if !well_formed {
        return None;
    }
    percent_encoding::percent_decode(b)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
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
        assert_eq!(percent_encode("a b/ü~"), "a%20b%2F%C3%BC~");
    }
}
