//! `/v1/images/generations` bodies: the fields OpenAI types strictly are checked here, with
//! OpenAI's wording and the offending `param`, so a bad request fails before any provider is
//! tried (and is never retried or fallen back from).

use serde_json::Value;

use crate::error::GatewayError;

/// OpenAI's limit on `n` (dall-e-3 takes only 1; the provider says so itself).
const MAX_IMAGES: u64 = 10;
const RESPONSE_FORMATS: &[&str] = &["url", "b64_json"];
const STYLES: &[&str] = &["vivid", "natural"];
/// dall-e-3's `standard`/`hd`, gpt-image-1's `low`/`medium`/`high`, and `auto`.
const QUALITIES: &[&str] = &["standard", "hd", "low", "medium", "high", "auto"];

/// Checks an image generation request (already known to be a JSON object with a model).
pub fn image_request(value: &Value) -> Result<(), GatewayError> {
    match value.get("prompt") {
        Some(Value::String(s)) if !s.trim().is_empty() => {}
        None | Some(Value::Null) => return Err(missing("prompt")),
        Some(Value::String(_)) => {
            return Err(GatewayError::invalid_request("'prompt' must not be empty.")
                .with_param("prompt")
                .with_code("empty_string"))
        }
        Some(other) => return Err(wrong_type("prompt", "a string", other)),
    }
    if let Some(n) = present(value, "n") {
        match n.as_u64() {
            Some(k) if (1..=MAX_IMAGES).contains(&k) => {}
            Some(_) => {
                return Err(GatewayError::invalid_request(format!(
                    "Invalid value for 'n': {n}. It must be between 1 and {MAX_IMAGES}."
                ))
                .with_param("n")
                .with_code("integer_out_of_range"))
            }
            None if n.is_number() => {
                return Err(GatewayError::invalid_request(format!(
                    "Invalid value for 'n': {n}. It must be an integer between 1 and {MAX_IMAGES}."
                ))
                .with_param("n")
                .with_code("integer_out_of_range"))
            }
            None => return Err(wrong_type("n", "an integer", n)),
        }
    }
    one_of(value, "response_format", RESPONSE_FORMATS)?;
    one_of(value, "style", STYLES)?;
    one_of(value, "quality", QUALITIES)?;
    if let Some(size) = present(value, "size") {
        let Some(s) = size.as_str() else {
            return Err(wrong_type("size", "a string", size));
        };
        if s != "auto" && parse_size(s).is_none() {
            return Err(GatewayError::invalid_request(format!(
                "Invalid value for 'size': '{s}'. Expected 'WIDTHxHEIGHT' (e.g. '1024x1024') or 'auto'."
            ))
            .with_param("size")
            .with_code("invalid_value"));
        }
    }
    if let Some(user) = present(value, "user") {
        if !user.is_string() {
            return Err(wrong_type("user", "a string", user));
        }
    }
    match present(value, "stream") {
        None | Some(Value::Bool(false)) => Ok(()),
        Some(Value::Bool(true)) => Err(GatewayError::invalid_request(
            "Streaming image generation is not supported by this gateway; send 'stream': false.",
        )
        .with_param("stream")
        .with_code("unsupported_value")),
        Some(other) => Err(wrong_type("stream", "a boolean", other)),
    }
}

/// `"1024x1792"` → (1024, 1792).
pub fn parse_size(s: &str) -> Option<(u32, u32)> {
    let (w, h) = s.split_once('x')?;
    let dim = |d: &str| d.parse::<u32>().ok().filter(|v| *v > 0);
    Some((dim(w)?, dim(h)?))
}

fn present<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    value.get(key).filter(|v| !v.is_null())
}

fn one_of(value: &Value, key: &str, allowed: &[&str]) -> Result<(), GatewayError> {
    let Some(v) = present(value, key) else {
        return Ok(());
    };
    let Some(s) = v.as_str() else {
        return Err(wrong_type(key, "a string", v));
    };
    if allowed.contains(&s) {
        return Ok(());
    }
    let list: Vec<String> = allowed.iter().map(|a| format!("'{a}'")).collect();
    Err(GatewayError::invalid_request(format!(
        "Invalid value: '{s}'. Supported values are: {}.",
        list.join(", ")
    ))
    .with_param(key)
    .with_code("invalid_value"))
}

fn missing(param: &str) -> GatewayError {
    GatewayError::invalid_request(format!("Missing required parameter: '{param}'."))
        .with_param(param)
        .with_code("missing_required_parameter")
}

fn wrong_type(param: &str, expected: &str, got: &Value) -> GatewayError {
    let got = match got {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    GatewayError::invalid_request(format!(
        "Invalid type for '{param}': expected {expected}, but got {got} instead."
    ))
    .with_param(param)
    .with_code("invalid_type")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn param_of(v: Value) -> Option<String> {
        image_request(&v).unwrap_err().param
    }

    #[test]
    fn a_plain_request_passes() {
        image_request(&json!({"model": "m", "prompt": "a cat"})).unwrap();
        image_request(&json!({
            "model": "m", "prompt": "a cat", "n": 2, "size": "1792x1024",
            "response_format": "b64_json", "quality": "hd", "style": "natural", "user": "u",
            "stream": false, "negative_prompt": "dogs"
        }))
        .unwrap();
        image_request(&json!({"model": "m", "prompt": "x", "size": "auto", "n": null})).unwrap();
    }

    #[test]
    fn prompt_is_required_and_a_non_empty_string() {
        let e = image_request(&json!({"model": "m"})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("prompt"));
        assert_eq!(e.status().as_u16(), 400);
        assert_eq!(param_of(json!({"prompt": " "})).as_deref(), Some("prompt"));
        assert_eq!(param_of(json!({"prompt": 3})).as_deref(), Some("prompt"));
    }

    #[test]
    fn each_typed_field_names_itself() {
        let base = |k: &str, v: Value| {
            let mut o = json!({"model": "m", "prompt": "p"});
            o[k] = v;
            o
        };
        for (k, v) in [
            ("n", json!("2")),
            ("n", json!(0)),
            ("n", json!(11)),
            ("n", json!(1.5)),
            ("size", json!(1024)),
            ("size", json!("big")),
            ("size", json!("0x10")),
            ("response_format", json!("png")),
            ("response_format", json!(true)),
            ("quality", json!("ultra")),
            ("style", json!("cartoon")),
            ("user", json!(1)),
            ("stream", json!(true)),
            ("stream", json!("yes")),
        ] {
            let e = image_request(&base(k, v.clone())).unwrap_err();
            assert_eq!(e.param.as_deref(), Some(k), "{k}={v}");
            assert_eq!(e.status().as_u16(), 400);
        }
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("1024x1792"), Some((1024, 1792)));
        assert_eq!(parse_size("1024"), None);
        assert_eq!(parse_size("ax1"), None);
    }
}
