//! Google's error body, `{"error": {"code", "message", "status"}}`, → an OpenAI-style error.
//! The statuses follow LiteLLM's mapping: the HTTP status decides the OpenAI type, an
//! invalid API key (which Google answers with a 400) is an authentication error, and an
//! over-long prompt is `context_length_exceeded` so routers can fall back on it.

use serde_json::Value;

use crate::error::{ErrorKind, GatewayError};
use crate::providers::openai_compatible::fallback_message;

/// Reads an error response; Vertex's streaming endpoints wrap it in a one-element array.
pub fn google_error(status: u16, body: &[u8]) -> GatewayError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let error = match &parsed {
        Some(Value::Array(items)) => items.first().and_then(|i| i.get("error")),
        Some(v) => v.get("error"),
        None => None,
    };
    match error {
        Some(e) => error_from_value(status, e),
        None => GatewayError::upstream(status, fallback_message(status, body)),
    }
}

/// The `error` object of a response or of a stream frame. `status` is the HTTP status, or
/// 0 inside a stream, where only the error's own `code` tells.
pub fn error_from_value(status: u16, error: &Value) -> GatewayError {
    let message = match error {
        Value::String(s) => s.as_str(),
        _ => error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("upstream error"),
    };
    let google_status = error.get("status").and_then(Value::as_str);
    let code = error.get("code").and_then(Value::as_u64).map(|c| c as u16);
    let http_status = match status {
        400..=599 => status,
        _ => code
            .filter(|c| (400..=599).contains(c))
            .or_else(|| google_status.map(status_for))
            .unwrap_or(500),
    };
    if is_context_window(message) {
        return GatewayError::upstream(400, message).with_code("context_length_exceeded");
    }
    if is_bad_api_key(message, error) {
        return GatewayError::new(ErrorKind::Authentication, message)
            .with_status(401)
            .with_code(google_status.unwrap_or("UNAUTHENTICATED"));
    }
    let mut e = GatewayError::upstream(http_status, message);
    e.code = google_status.map(str::to_string);
    e
}

/// Gemini words an over-long prompt as "The input token count (N) exceeds the maximum
/// number of tokens allowed (M)."
fn is_context_window(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("exceeds the maximum number of tokens")
        || (m.contains("input token count") && m.contains("exceed"))
}

/// Google answers a wrong key with 400 INVALID_ARGUMENT and reason API_KEY_INVALID.
fn is_bad_api_key(message: &str, error: &Value) -> bool {
    let reason_says_so = error
        .get("details")
        .and_then(Value::as_array)
        .is_some_and(|d| {
            d.iter()
                .any(|x| x.get("reason").and_then(Value::as_str) == Some("API_KEY_INVALID"))
        });
    reason_says_so || message.contains("API key not valid")
}

/// The HTTP status a google.rpc status stands for (errors inside a stream carry no status).
fn status_for(google_status: &str) -> u16 {
    match google_status {
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => 400,
        "UNAUTHENTICATED" => 401,
        "PERMISSION_DENIED" => 403,
        "NOT_FOUND" => 404,
        "ALREADY_EXISTS" | "ABORTED" => 409,
        "RESOURCE_EXHAUSTED" => 429,
        "UNAVAILABLE" => 503,
        "DEADLINE_EXCEEDED" => 504,
        _ => 500,
    }
}
