//! Tool call arguments between OpenAI's JSON text and the JSON values other APIs carry.

use serde_json::{json, Value};

use crate::error::GatewayError;

/// The arguments text of an OpenAI tool call as JSON (empty text is `{}`); `param` names the
/// field for the error.
pub fn parse(arguments: &str, param: &str) -> Result<Value, GatewayError> {
    let text = arguments.trim();
    if text.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_str(text).map_err(|e| {
        GatewayError::invalid_request(format!("tool call arguments are not valid JSON: {e}"))
            .with_param(param)
    })
}

/// As [`parse`], for APIs that take only an object (`provider` names it in the error).
pub fn parse_object(arguments: &str, provider: &str, param: &str) -> Result<Value, GatewayError> {
    let input = parse(arguments, param)?;
    if !input.is_object() {
        return Err(GatewayError::invalid_request(format!(
            "{provider} needs tool call arguments to be a JSON object"
        ))
        .with_param(param));
    }
    Ok(input)
}

/// Arguments given as a JSON value, as the text OpenAI clients expect.
pub fn text(arguments: &Value) -> String {
    match arguments {
        Value::String(s) => s.clone(),
        Value::Null => "{}".into(),
        other => other.to_string(),
    }
}
