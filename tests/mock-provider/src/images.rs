//! OpenAI image generation (`POST /v1/images/generations`, and Azure's deployment path):
//! every image is the same 1×1 PNG, as base64 (`b64_json`, the default) or as a `url`.

use serde_json::Value;

use crate::http::{self, Resp};
use crate::json::{arr, Obj};
use crate::logic::unix_now;
use crate::openai::ApiError;

/// A valid 1×1 RGBA PNG.
pub const PNG_BASE64: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4n8bwHwAGMgJlMwnCZQAAAABJRU5ErkJggg==";
/// Where `response_format: url` images "live" (nothing is served there).
pub const IMAGE_URL: &str = "https://mock-provider.invalid/images/mock.png";

fn invalid_value(param: &str, got: &Value, allowed: &str) -> ApiError {
    ApiError::invalid(
        format!("Invalid value: {got}. Supported values are: {allowed}."),
        Some(param),
        Some("invalid_value"),
    )
}

/// OpenAI's checks: a model, a non-empty string prompt, `n` 1..=10, a known
/// `response_format`, `size` as `WxH` or `auto`.
pub fn validate(v: &Value) -> Result<(), ApiError> {
    match v.get("model") {
        Some(Value::String(s)) if !s.is_empty() => {}
        _ => {
            return Err(ApiError::invalid(
                "you must provide a model parameter",
                None,
                None,
            ))
        }
    }
    match v.get("prompt") {
        Some(Value::String(s)) if !s.trim().is_empty() => {}
        None | Some(Value::Null) => {
            return Err(ApiError::invalid(
                "Missing required parameter: 'prompt'.",
                Some("prompt"),
                Some("missing_required_parameter"),
            ))
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "Invalid type for 'prompt': expected a non-empty string.",
                Some("prompt"),
                Some("invalid_type"),
            ))
        }
    }
    match v.get("n") {
        None | Some(Value::Null) => {}
        Some(n) if n.as_u64().is_some_and(|k| (1..=10).contains(&k)) => {}
        Some(n) => return Err(invalid_value("n", n, "integers from 1 to 10")),
    }
    match v.get("response_format") {
        None | Some(Value::Null) => {}
        Some(Value::String(f)) if f == "url" || f == "b64_json" => {}
        Some(f) => return Err(invalid_value("response_format", f, "'url' and 'b64_json'")),
    }
    match v.get("size") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s == "auto" || is_size(s) => {}
        Some(s) => return Err(invalid_value("size", s, "'WIDTHxHEIGHT' or 'auto'")),
    }
    Ok(())
}

fn is_size(s: &str) -> bool {
    s.split_once('x').is_some_and(|(w, h)| {
        !w.is_empty()
            && !h.is_empty()
            && w.bytes().all(|b| b.is_ascii_digit())
            && h.bytes().all(|b| b.is_ascii_digit())
    })
}

/// `{"created", "data": [...]}`: `n` images with the prompt echoed as `revised_prompt`.
pub fn generate(v: &Value) -> Resp {
    let n = v.get("n").and_then(Value::as_u64).unwrap_or(1);
    let url = v.get("response_format").and_then(Value::as_str) == Some("url");
    let prompt = v.get("prompt").and_then(Value::as_str).unwrap_or("");
    let data = arr((0..n).map(|_| {
        let o = if url {
            Obj::new().str("url", IMAGE_URL)
        } else {
            Obj::new().str("b64_json", PNG_BASE64)
        };
        o.str("revised_prompt", prompt).finish()
    }));
    let body = Obj::new()
        .num("created", unix_now())
        .raw("data", &data)
        .finish();
    http::json(200, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use serde_json::json;

    async fn body(r: Resp) -> Value {
        let b = r.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&b).unwrap()
    }

    #[test]
    fn validation_names_the_param() {
        validate(&json!({"model": "m", "prompt": "p", "n": 2, "size": "1024x1024"})).unwrap();
        let p = |v: Value| validate(&v).unwrap_err().param;
        assert_eq!(p(json!({"model": "m"})).as_deref(), Some("prompt"));
        assert_eq!(
            p(json!({"model": "m", "prompt": "p", "n": 0})).as_deref(),
            Some("n")
        );
        assert_eq!(
            p(json!({"model": "m", "prompt": "p", "response_format": "gif"})).as_deref(),
            Some("response_format")
        );
        assert_eq!(
            p(json!({"model": "m", "prompt": "p", "size": "big"})).as_deref(),
            Some("size")
        );
        assert!(validate(&json!({"prompt": "p"})).is_err());
    }

    #[tokio::test]
    async fn answers_base64_or_url() {
        let v = body(generate(&json!({"model": "m", "prompt": "fox", "n": 2}))).await;
        assert_eq!(v["data"].as_array().unwrap().len(), 2);
        assert_eq!(v["data"][0]["b64_json"], PNG_BASE64);
        assert_eq!(v["data"][0]["revised_prompt"], "fox");
        assert!(v["created"].as_u64().unwrap() > 0);
        let v = body(generate(
            &json!({"model": "m", "prompt": "fox", "response_format": "url"}),
        ))
        .await;
        assert_eq!(v["data"][0]["url"], IMAGE_URL);
        assert!(v["data"][0].get("b64_json").is_none());
    }

    #[test]
    fn the_png_is_a_png() {
        assert!(PNG_BASE64.starts_with("iVBORw0KGgo"));
    }
}
