//! Embeddings through InvokeModel, whose body is the model's own: Amazon Titan Text
//! Embeddings (`{"inputText"}`, one text per call) and Cohere Embed on Bedrock
//! (`{"texts": [...], "input_type"}`, a batch per call). Answers become OpenAI's list.

use serde_json::{json, Value};

use super::converse::base_model;
use crate::error::{ErrorKind, GatewayError};
use crate::providers::parse_json;

/// LiteLLM's `input_type` for Cohere when the client names none.
const COHERE_DEFAULT_INPUT_TYPE: &str = "search_document";

enum Family {
    Titan,
    Cohere,
}

fn family(model: &str) -> Option<Family> {
    let base = base_model(model);
    if base.starts_with("amazon.titan-embed") {
        Some(Family::Titan)
    } else if base.starts_with("cohere.embed") {
        Some(Family::Cohere)
    } else {
        None
    }
}

fn unsupported_model(model: &str) -> GatewayError {
    GatewayError::invalid_request(format!(
        "bedrock embeddings are translated for amazon.titan-embed-* and cohere.embed-* models, not {model:?}"
    ))
    .with_param("model")
}

/// The InvokeModel body for an OpenAI embeddings request.
pub fn request_body(req: &Value, model: &str) -> Result<Value, GatewayError> {
    let inputs = texts(req.get("input"))?;
    match family(model).ok_or_else(|| unsupported_model(model))? {
        Family::Titan => {
            // One call per input would break the one-request-per-attempt contract.
            let [text] = inputs.as_slice() else {
                return Err(GatewayError::invalid_request(format!(
                    "{model} embeds one input per request (got {}); send the inputs one at a time",
                    inputs.len()
                ))
                .with_param("input"));
            };
            let mut body = json!({ "inputText": text });
            // Titan v2 takes dimensions (256, 512, 1024); v1 refuses it upstream.
            if let Some(dims) = req.get("dimensions").filter(|v| !v.is_null()) {
                body["dimensions"] = dims.clone();
            }
            Ok(body)
        }
        Family::Cohere => {
            let input_type = req
                .get("input_type")
                .and_then(Value::as_str)
                .unwrap_or(COHERE_DEFAULT_INPUT_TYPE);
            Ok(json!({ "texts": inputs, "input_type": input_type }))
        }
    }
}

/// `input` as texts: a string or a list of strings (token arrays mean nothing to Bedrock).
fn texts(input: Option<&Value>) -> Result<Vec<&str>, GatewayError> {
    let bad = || {
        GatewayError::invalid_request(
            "bedrock embeds text: 'input' must be a string or a list of strings",
        )
        .with_param("input")
    };
    match input {
        Some(Value::String(s)) => Ok(vec![s.as_str()]),
        Some(Value::Array(items)) if !items.is_empty() => {
            items.iter().map(|v| v.as_str().ok_or_else(bad)).collect()
        }
        _ => Err(bad()),
    }
}

/// The model's answer as OpenAI's `{"object": "list", "data": [...], "usage"}`.
pub fn response(body: &[u8], model: &str) -> Result<Value, GatewayError> {
    let v: Value = parse_json(body)?;
    let (vectors, prompt_tokens) = match family(model).ok_or_else(|| unsupported_model(model))? {
        Family::Titan => {
            let vector = v.get("embedding").filter(|e| e.is_array()).cloned();
            let tokens = v
                .get("inputTextTokenCount")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            (vector.into_iter().collect::<Vec<_>>(), tokens)
        }
        Family::Cohere => (cohere_vectors(&v), cohere_token_estimate(&v)),
    };
    if vectors.is_empty() {
        return Err(GatewayError::new(
            ErrorKind::BadGateway,
            "the provider returned no embeddings",
        ));
    }
    let data: Vec<Value> = vectors
        .into_iter()
        .enumerate()
        .map(|(i, e)| json!({ "object": "embedding", "index": i, "embedding": e }))
        .collect();
    Ok(json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": { "prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens },
    }))
}

/// `embeddings` is a list of vectors, or (when `embedding_types` was asked) an object of
/// lists by type, of which floats are what OpenAI clients read.
fn cohere_vectors(v: &Value) -> Vec<Value> {
    let list = match v.get("embeddings") {
        Some(Value::Array(list)) => Some(list),
        Some(Value::Object(by_type)) => by_type.get("float").and_then(Value::as_array),
        _ => None,
    };
    list.map(|l| l.iter().filter(|e| e.is_array()).cloned().collect())
        .unwrap_or_default()
}

/// Cohere on Bedrock reports its token count only in a response header, which this hook does
/// not see; spend tracking gets an estimate (about four characters a token) instead of zero.
fn cohere_token_estimate(v: &Value) -> u64 {
    let chars: usize = v
        .get("texts")
        .and_then(Value::as_array)
        .map(|t| t.iter().filter_map(Value::as_str).map(str::len).sum())
        .unwrap_or(0);
    chars.div_ceil(4) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titan_takes_one_input() {
        let body = request_body(
            &json!({"input": "hello", "dimensions": 256}),
            "amazon.titan-embed-text-v2:0",
        )
        .unwrap();
        assert_eq!(body, json!({"inputText": "hello", "dimensions": 256}));
        let body = request_body(&json!({"input": ["one"]}), "amazon.titan-embed-text-v1").unwrap();
        assert_eq!(body, json!({"inputText": "one"}));
        let e =
            request_body(&json!({"input": ["a", "b"]}), "amazon.titan-embed-text-v1").unwrap_err();
        assert_eq!(e.status().as_u16(), 400);
        assert_eq!(e.param.as_deref(), Some("input"));
        assert!(e.message.contains("one input per request (got 2)"));
    }

    #[test]
    fn cohere_takes_a_batch() {
        let body = request_body(&json!({"input": ["a", "b"]}), "cohere.embed-english-v3").unwrap();
        assert_eq!(
            body,
            json!({"texts": ["a", "b"], "input_type": "search_document"})
        );
        let body = request_body(
            &json!({"input": "q", "input_type": "search_query"}),
            "us.cohere.embed-v4:0",
        )
        .unwrap();
        assert_eq!(body["input_type"], "search_query");
    }

    #[test]
    fn other_models_and_token_inputs_are_400s() {
        let e = request_body(&json!({"input": "x"}), "anthropic.claude-v2").unwrap_err();
        assert_eq!(e.param.as_deref(), Some("model"));
        let e = request_body(&json!({"input": [[1, 2]]}), "cohere.embed-english-v3").unwrap_err();
        assert_eq!(e.param.as_deref(), Some("input"));
    }

    /// The response documented in the Titan Text Embeddings model parameters page.
    #[test]
    fn titan_response_becomes_a_list() {
        let body = br#"{"embedding": [0.1, -0.2, 0.3], "inputTextTokenCount": 7, "embeddingsByType": {"float": [0.1, -0.2, 0.3]}}"#;
        let v = response(body, "amazon.titan-embed-text-v2:0").unwrap();
        assert_eq!(v["object"], "list");
        assert_eq!(
            v["data"][0],
            json!({"object": "embedding", "index": 0, "embedding": [0.1, -0.2, 0.3]})
        );
        assert_eq!(v["usage"], json!({"prompt_tokens": 7, "total_tokens": 7}));
    }

    #[test]
    fn cohere_response_in_both_shapes() {
        let body = br#"{"id": "x", "response_type": "embeddings_floats", "texts": ["hello", "world!!!"], "embeddings": [[1.0], [2.0]]}"#;
        let v = response(body, "cohere.embed-english-v3").unwrap();
        assert_eq!(
            v["data"][1],
            json!({"object": "embedding", "index": 1, "embedding": [2.0]})
        );
        assert_eq!(v["usage"]["prompt_tokens"], 4);
        let body = br#"{"response_type": "embeddings_by_type", "embeddings": {"float": [[3.0]]}}"#;
        assert_eq!(
            response(body, "cohere.embed-english-v3").unwrap()["data"][0]["embedding"],
            json!([3.0])
        );
    }

    #[test]
    fn unreadable_responses_are_502s() {
        for body in [&b"<html>"[..], br#"{"embedding": "nope"}"#, b"{}"] {
            let e = response(body, "amazon.titan-embed-text-v1").unwrap_err();
            assert_eq!(e.status().as_u16(), 502);
        }
    }
}
