//! Parse & validate: turn a request body into a typed request, or a 400 that says exactly
//! what is wrong and where (`param`).

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::GatewayError;
use crate::openai::ChatRequest;

/// Parameters that steer LiteLLM itself, never a provider: stripped before translation.
const GATEWAY_ONLY_PARAMS: &[&str] = &[
    "mock_response",
    "drop_params",
    "fallbacks",
    "context_window_fallbacks",
    "content_policy_fallbacks",
    "num_retries",
    "metadata",
    "litellm_metadata",
    "caching",
    "cache",
    "tags",
    "api_key",
    "api_base",
    "api_version",
    "timeout",
    "stream_timeout",
    "max_retries",
    "mock_testing_fallbacks",
];

/// The body as a JSON object.
pub fn json_object(body: &[u8]) -> Result<Value, GatewayError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(GatewayError::invalid_request(
            "The request body is empty; expected a JSON object.",
        ));
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        GatewayError::invalid_request(format!("The request body is not valid JSON: {e}"))
    })?;
    if !v.is_object() {
        return Err(GatewayError::invalid_request(
            "The request body must be a JSON object.",
        ));
    }
    Ok(v)
}

/// Types `value`, naming the offending field in `param` when it does not fit.
pub fn typed<T: DeserializeOwned>(value: Value) -> Result<T, GatewayError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        type_error(path, e.into_inner().to_string())
    })
}

/// Types a raw body in one pass (no intermediate `Value`: this is the hot path).
pub fn typed_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, GatewayError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(GatewayError::invalid_request(
            "The request body is empty; expected a JSON object.",
        ));
    }
    let not_json = |e: serde_json::Error| {
        GatewayError::invalid_request(format!("The request body is not valid JSON: {e}"))
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let typed = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            not_json(inner)
        } else if path == "." && inner.to_string().starts_with("invalid type") {
            GatewayError::invalid_request("The request body must be a JSON object.")
        } else {
            type_error(path, inner.to_string())
        }
    })?;
    de.end().map_err(not_json)?;
    Ok(typed)
}

fn type_error(path: String, inner: String) -> GatewayError {
    let param = if path == "." || path.is_empty() {
        missing_field(&inner).unwrap_or_default()
    } else {
        path
    };
    if param == "model" {
        return GatewayError::invalid_request("You must provide a model parameter.")
            .with_param("model");
    }
    let mut err = GatewayError::invalid_request(if param.is_empty() {
        format!("Invalid request: {inner}")
    } else {
        format!("Invalid value for '{param}': {inner}")
    });
    if !param.is_empty() {
        err = err.with_param(param);
    }
    err
}

fn missing_field(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("missing field `")?;
    Some(rest[..rest.find('`')?].to_string())
}

/// The `model` field, required on every model endpoint.
pub fn model_name(value: &Value) -> Result<String, GatewayError> {
    match value.get("model") {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        Some(Value::String(_)) | None | Some(Value::Null) => Err(GatewayError::invalid_request(
            "You must provide a model parameter.",
        )
        .with_param("model")),
        Some(_) => Err(GatewayError::invalid_request(
            "Invalid value for 'model': expected a string.",
        )
        .with_param("model")),
    }
}

/// A chat request body, typed and checked.
pub fn chat_request(body: &[u8]) -> Result<ChatRequest, GatewayError> {
    let req: ChatRequest = typed_body(body)?;
    if req.model.trim().is_empty() {
        return Err(
            GatewayError::invalid_request("You must provide a model parameter.")
                .with_param("model"),
        );
    }
    if req.messages.is_empty() {
        return Err(
            GatewayError::invalid_request("'messages' must contain at least one message.")
                .with_param("messages"),
        );
    }
    Ok(req)
}

/// The operator's per-deployment defaults, under the client's own values.
pub fn apply_defaults(
    req: ChatRequest,
    defaults: &Map<String, Value>,
) -> Result<ChatRequest, GatewayError> {
    if defaults.is_empty() {
        return Ok(req);
    }
    let mut v =
        serde_json::to_value(req).map_err(|e| GatewayError::invalid_request(e.to_string()))?;
    if let Some(o) = v.as_object_mut() {
        for (k, d) in defaults {
            if o.get(k).is_none_or(Value::is_null) {
                o.insert(k.clone(), d.clone());
            }
        }
    }
    typed(v)
}

/// Removes the gateway-only parameters from `extra`.
pub fn strip_gateway_params(extra: &mut Map<String, Value>) {
    for k in GATEWAY_ONLY_PARAMS {
        extra.remove(*k);
    }
}

/// Refuses (or, with `drop_params`, removes) parameters the provider cannot express.
pub fn enforce_supported_params(
    req: ChatRequest,
    supported: &[&str],
    drop: bool,
    provider: &str,
) -> Result<ChatRequest, GatewayError> {
    enforce_params(req, drop, provider, |k| {
        !matches!(k, "model" | "messages" | "stream") && !supported.contains(&k)
    })
}

/// Refuses (or, with `drop_params`, removes) the parameters a provider is known to refuse.
pub fn enforce_refused_params(
    req: ChatRequest,
    refused: &[&str],
    drop: bool,
    provider: &str,
) -> Result<ChatRequest, GatewayError> {
    enforce_params(req, drop, provider, |k| refused.contains(&k))
}

fn enforce_params(
    req: ChatRequest,
    drop: bool,
    provider: &str,
    is_unsupported: impl Fn(&str) -> bool,
) -> Result<ChatRequest, GatewayError> {
    let mut v =
        serde_json::to_value(req).map_err(|e| GatewayError::invalid_request(e.to_string()))?;
    let obj = v
        .as_object_mut()
        .expect("a request serialises to an object");
    let unsupported: Vec<String> = obj
        .iter()
        .filter(|(k, val)| !val.is_null() && is_unsupported(k.as_str()))
        .map(|(k, _)| k.clone())
        .collect();
    if unsupported.is_empty() {
        return typed(v);
    }
    if !drop {
        return Err(GatewayError::invalid_request(format!(
            "{provider} does not support parameters: {}. To drop them instead, set `drop_params: true` in litellm_settings, in the deployment's litellm_params, or in the request.",
            unsupported.join(", ")
        ))
        .with_param(unsupported[0].clone())
        .with_code("unsupported_params"));
    }
    for k in &unsupported {
        obj.remove(k);
    }
    typed(v)
}

/// `input` of an embeddings request: a string, or a non-empty array of strings or token arrays.
pub fn embeddings_input(value: &Value) -> Result<(), GatewayError> {
    let bad = || {
        GatewayError::invalid_request(
            "'input' must be a string or a non-empty array of strings or token arrays.",
        )
        .with_param("input")
    };
    match value.get("input") {
        Some(Value::String(_)) => Ok(()),
        Some(Value::Array(items)) if !items.is_empty() => {
            if items
                .iter()
                .all(|i| i.is_string() || i.is_number() || i.is_array())
            {
                Ok(())
            } else {
                Err(bad())
            }
        }
        None | Some(Value::Null) => {
            Err(GatewayError::invalid_request("You must provide 'input'.").with_param("input"))
        }
        Some(_) => Err(bad()),
    }
}

/// `prompt` of a legacy completion: a string, or an array of strings or tokens.
pub fn completion_prompt(value: &Value) -> Result<(), GatewayError> {
    match value.get("prompt") {
        Some(Value::String(_)) | Some(Value::Array(_)) => Ok(()),
        None | Some(Value::Null) => {
            Err(GatewayError::invalid_request("You must provide 'prompt'.").with_param("prompt"))
        }
        Some(_) => Err(
            GatewayError::invalid_request("'prompt' must be a string or an array.")
                .with_param("prompt"),
        ),
    }
}

mod images;
pub use images::{image_request, parse_size};

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn invalid_json_and_non_objects_are_400() {
        assert!(json_object(b"{")
            .unwrap_err()
            .message
            .contains("not valid JSON"));
        assert!(json_object(b"[1]").is_err());
        assert!(json_object(b"  ").unwrap_err().message.contains("empty"));
    }

    fn chat(v: Value) -> Result<ChatRequest, GatewayError> {
        chat_request(v.to_string().as_bytes())
    }

    #[test]
    fn malformed_chat_bodies_are_400() {
        assert!(chat_request(b"{")
            .unwrap_err()
            .message
            .contains("not valid JSON"));
        assert!(
            chat_request(br#"{"model":"m","messages":[{"role":"user","content":"x"}]} x"#)
                .unwrap_err()
                .message
                .contains("not valid JSON")
        );
        assert!(chat_request(b"[1]")
            .unwrap_err()
            .message
            .contains("JSON object"));
        assert!(chat_request(b"").unwrap_err().message.contains("empty"));
    }

    #[test]
    fn missing_messages_names_the_param() {
        let e = chat(json!({"model": "m"})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("messages"));
        let e = chat(json!({"model": "m", "messages": "hi"})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("messages"));
        let e = chat(json!({"model": "m", "messages": []})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("messages"));
        let e = chat(json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("temperature"));
        let e = chat(json!({"messages": []})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("model"));
    }

    #[test]
    fn defaults_never_override_the_client() {
        let req = chat(json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 0.1})).unwrap();
        let mut d = Map::new();
        d.insert("temperature".into(), json!(0.9));
        d.insert("max_tokens".into(), json!(100));
        let r = apply_defaults(req, &d).unwrap();
        assert_eq!(r.temperature, Some(0.1));
        assert_eq!(r.max_tokens, Some(100));
    }

    #[test]
    fn unsupported_params_are_refused_or_dropped() {
        let req = || {
            chat(json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "logit_bias": {"1": 2}, "temperature": 1})).unwrap()
        };
        let e = enforce_supported_params(req(), &["temperature"], false, "anthropic").unwrap_err();
        assert_eq!(e.param.as_deref(), Some("logit_bias"));
        assert!(e.message.contains("drop_params"));
        let r = enforce_supported_params(req(), &["temperature"], true, "anthropic").unwrap();
        assert!(!r.extra.contains_key("logit_bias"));
        assert_eq!(r.temperature, Some(1.0));
    }

    #[test]
    fn refused_params_are_refused_or_dropped() {
        let req = || {
            chat(json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 2, "logprobs": true, "temperature": 1})).unwrap()
        };
        let e =
            enforce_refused_params(req(), &["logprobs", "seed"], false, "sambanova").unwrap_err();
        assert_eq!(e.param.as_deref(), Some("logprobs"));
        assert_eq!(e.code.as_deref(), Some("unsupported_params"));
        assert!(e.message.starts_with("sambanova does not support"));
        let r = enforce_refused_params(req(), &["n", "logprobs"], true, "sambanova").unwrap();
        assert_eq!((r.n, r.extra.get("logprobs")), (None, None));
        assert_eq!(r.temperature, Some(1.0));
        let r = enforce_refused_params(req(), &["seed"], false, "x").unwrap();
        assert_eq!(r.n, Some(2), "params not on the list pass");
    }

    #[test]
    fn embeddings_input_shapes() {
        assert!(embeddings_input(&json!({"input": "a"})).is_ok());
        assert!(embeddings_input(&json!({"input": [[1, 2]]})).is_ok());
        assert!(embeddings_input(&json!({"input": []})).is_err());
        assert!(embeddings_input(&json!({"input": {"a": 1}})).is_err());
        assert!(embeddings_input(&json!({})).is_err());
    }
}
