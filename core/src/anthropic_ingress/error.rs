//! Errors in Anthropic's shape, `{"type": "error", "error": {"type", "message"}}`, with the
//! status the same failure has on the OpenAI routes. Anthropic's SDKs pick their exception
//! class from the status and show `error.message`.

use bytes::{BufMut, Bytes, BytesMut};
use http::header;
use serde_json::{json, Value};

use crate::error::{ErrorKind, GatewayError};
use crate::response::{json_response, GatewayResponse};

/// Anthropic's `error.type` for a failure. An upstream Anthropic error keeps its own type
/// (carried in `code`); the rest is derived from the kind.
pub fn error_type(e: &GatewayError) -> &'static str {
    const KNOWN: &[&str] = &[
        "invalid_request_error",
        "authentication_error",
        "permission_error",
        "not_found_error",
        "request_too_large",
        "rate_limit_error",
        "api_error",
        "overloaded_error",
    ];
    if let Some(known) = e
        .code
        .as_deref()
        .and_then(|c| KNOWN.iter().find(|k| **k == c))
    {
        return known;
    }
    match e.kind {
        ErrorKind::InvalidRequest
        | ErrorKind::Unprocessable
        | ErrorKind::BudgetExceeded
        | ErrorKind::ExpiredKey => "invalid_request_error",
        ErrorKind::Authentication
        | ErrorKind::KeyModelAccessDenied
        | ErrorKind::TeamModelAccessDenied => "authentication_error",
        ErrorKind::PermissionDenied => "permission_error",
        ErrorKind::NotFound => "not_found_error",
        ErrorKind::RateLimit => "rate_limit_error",
        // 503 and Anthropic's own 529.
        ErrorKind::Unavailable => "overloaded_error",
        ErrorKind::Timeout | ErrorKind::Api | ErrorKind::NotImplemented | ErrorKind::BadGateway => {
            "api_error"
        }
    }
}

/// The error body.
pub fn error_json(e: &GatewayError) -> Value {
    json!({"type": "error", "error": {"type": error_type(e), "message": e.message}})
}

/// The error as an HTTP response, `retry-after` kept.
pub fn error_response(e: &GatewayError) -> GatewayResponse {
    let mut resp = json_response(e.status(), &error_json(e));
    if let Some(v) = e
        .retry_after
        .as_deref()
        .and_then(|v| http::HeaderValue::from_str(v).ok())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// The error as the `error` event a stream ends with.
pub fn error_event(e: &GatewayError) -> Bytes {
    let mut out = BytesMut::new();
    put_event(&mut out, "error", &error_json(e));
    out.freeze()
}

/// Frames one event: `event: <name>\ndata: <json>\n\n`.
pub(crate) fn put_event(out: &mut BytesMut, name: &str, data: &Value) {
    out.put_slice(b"event: ");
    out.put_slice(name.as_bytes());
    out.put_slice(b"\ndata: ");
    // A Value always serialises.
    let _ = serde_json::to_writer(out.writer(), data);
    out.put_slice(b"\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_anthropic_types_with_the_same_status() {
        let cases = [
            (
                GatewayError::invalid_request("x"),
                "invalid_request_error",
                400,
            ),
            (
                GatewayError::new(ErrorKind::Authentication, "x"),
                "authentication_error",
                401,
            ),
            (
                GatewayError::new(ErrorKind::NotFound, "x"),
                "not_found_error",
                404,
            ),
            (GatewayError::upstream(429, "x"), "rate_limit_error", 429),
            (GatewayError::upstream(500, "x"), "api_error", 500),
            (GatewayError::upstream(503, "x"), "overloaded_error", 503),
            (GatewayError::upstream(529, "x"), "overloaded_error", 529),
            (GatewayError::new(ErrorKind::Timeout, "x"), "api_error", 408),
        ];
        for (e, ty, status) in cases {
            let resp = error_response(&e);
            assert_eq!(resp.status().as_u16(), status, "{e}");
            assert_eq!(error_json(&e)["error"]["type"], ty, "{e}");
            assert_eq!(error_json(&e)["type"], "error");
        }
    }

    #[test]
    fn upstream_anthropic_type_is_kept() {
        let mut e = GatewayError::upstream(400, "too long");
        e.code = Some("request_too_large".into());
        assert_eq!(error_type(&e), "request_too_large");
        e.code = Some("context_length_exceeded".into());
        assert_eq!(error_type(&e), "invalid_request_error");
    }

    #[test]
    fn retry_after_survives_and_events_are_framed() {
        let mut e = GatewayError::upstream(429, "slow");
        e.retry_after = Some("3".into());
        assert_eq!(error_response(&e).headers()["retry-after"], "3");
        let ev = String::from_utf8(error_event(&e).to_vec()).unwrap();
        assert!(ev.starts_with("event: error\ndata: {"), "{ev}");
        assert!(ev.ends_with("}\n\n"));
    }
}
