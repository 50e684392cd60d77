//! The built-in `mock/` provider, LiteLLM's `mock_response`: answers in-process in OpenAI's
//! wire format, so the quick-start config works offline with no provider key, and the rest of
//! the pipeline (stream translation, usage, errors) runs exactly as for a real provider.

use bytes::Bytes;
use serde_json::{json, Value};

use super::{json_post, ProviderApi};
use crate::deployment::Deployment;
use crate::error::GatewayError;
use crate::openai::ChatRequest;
use crate::ports::{BodyStream, TransportError};

const DEFAULT_REPLY: &str = "This is a mock response from Tollgate.";
const EMBEDDING_DIMENSIONS: usize = 8;

pub struct Mock;

/// The canned reply: the request's own `mock_response`, else the deployment's, else a default.
fn reply_for(request_value: Option<&Value>, d: &Deployment) -> Value {
    request_value
        .cloned()
        .or_else(|| d.params.mock_response.clone())
        .unwrap_or_else(|| Value::String(DEFAULT_REPLY.into()))
}

fn local_post(
    path: &str,
    mut body: Value,
    reply: Value,
) -> Result<http::Request<Bytes>, GatewayError> {
    if let Some(o) = body.as_object_mut() {
        o.insert("mock_response".into(), reply);
    }
    json_post(
        &format!("mock://local{path}"),
        &[],
        serde_json::to_vec(&body).unwrap_or_default(),
    )
}

impl ProviderApi for Mock {
    fn chat_request(
        &self,
        req: &ChatRequest,
        d: &Deployment,
    ) -> Result<http::Request<Bytes>, GatewayError> {
        let body =
            serde_json::to_value(req).map_err(|e| GatewayError::invalid_request(e.to_string()))?;
        let reply = reply_for(req.extra.get("mock_response"), d);
        local_post("/chat/completions", body, reply)
    }

    fn embeddings_request(
        &self,
        req: &Value,
        d: &Deployment,
    ) -> Result<http::Request<Bytes>, GatewayError> {
        local_post("/embeddings", req.clone(), reply_for(None, d))
    }

    fn completion_request(
        &self,
        req: &Value,
        d: &Deployment,
    ) -> Result<http::Request<Bytes>, GatewayError> {
        local_post(
            "/completions",
            req.clone(),
            reply_for(req.get("mock_response"), d),
        )
    }

    fn answer_locally(&self, req: &http::Request<Bytes>) -> Option<http::Response<BodyStream>> {
        let body: Value = serde_json::from_slice(req.body()).unwrap_or(Value::Null);
        let reply = match &body["mock_response"] {
            Value::String(s) => s.clone(),
            Value::Null => DEFAULT_REPLY.to_string(),
            other => other.to_string(),
        };
        if let Some(status) = error_status(&reply) {
            let err = json!({"error": {"message": format!("mock_response asked for {reply}"), "type": "mock_error", "param": null, "code": status.to_string()}});
            return Some(full(status, err.to_string()));
        }
        let stream = body["stream"].as_bool().unwrap_or(false);
        let answer = match req.uri().path() {
            "/chat/completions" if stream => {
                return Some(streamed(chat_stream_frames(&body, &reply)))
            }
            "/chat/completions" => chat_completion(&body, &reply),
            "/completions" if stream => return Some(streamed(text_stream_frames(&body, &reply))),
            "/completions" => text_completion(&body, &reply),
            "/embeddings" => embeddings(&body),
            _ => return None,
        };
        Some(full(200, answer.to_string()))
    }
}

/// LiteLLM lets `mock_response` name an exception to raise; these are the ones clients use.
fn error_status(reply: &str) -> Option<u16> {
    Some(match reply {
        "litellm.RateLimitError" => 429,
        "litellm.InternalServerError" => 500,
        "litellm.BadRequestError" => 400,
        "litellm.AuthenticationError" => 401,
        "litellm.NotFoundError" => 404,
        "litellm.ServiceUnavailableError" => 503,
        "litellm.Timeout" => 408,
        _ => return None,
    })
}

fn full(status: u16, body: String) -> http::Response<BodyStream> {
    let stream: BodyStream = Box::pin(futures_util::stream::iter([Ok::<_, TransportError>(
        Bytes::from(body),
    )]));
    let mut resp = http::Response::new(stream);
    *resp.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    resp
}

fn streamed(frames: Vec<String>) -> http::Response<BodyStream> {
    let items: Vec<Result<Bytes, TransportError>> =
        frames.into_iter().map(|f| Ok(Bytes::from(f))).collect();
    let stream: BodyStream = Box::pin(futures_util::stream::iter(items));
    http::Response::new(stream)
}

/// A rough token count (about four characters a token), enough for a mock's usage figures.
fn estimate_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4).max(1)
}

fn prompt_tokens(body: &Value) -> u64 {
    let text = match (&body["messages"], &body["prompt"]) {
        (Value::Array(msgs), _) => msgs
            .iter()
            .map(|m| m["content"].to_string())
            .collect::<String>(),
        (_, p) => p.to_string(),
    };
    estimate_tokens(&text)
}

fn usage(body: &Value, reply: &str) -> Value {
    let (p, c) = (prompt_tokens(body), estimate_tokens(reply));
    json!({"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c})
}

fn chat_completion(body: &Value, reply: &str) -> Value {
    json!({
        "object": "chat.completion", "created": 0, "model": body["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop", "logprobs": null}],
        "usage": usage(body, reply),
    })
}

/// Splits the reply into word-sized pieces that concatenate back to it exactly.
fn pieces(reply: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, ch) in reply.char_indices() {
        if ch == ' ' && i > start {
            out.push(&reply[start..i]);
            start = i;
        }
    }
    if start < reply.len() {
        out.push(&reply[start..]);
    }
    out
}

fn chat_stream_frames(body: &Value, reply: &str) -> Vec<String> {
    let chunk = |delta: Value, finish: Value| {
        format!(
            "data: {}\n\n",
            json!({"object": "chat.completion.chunk", "created": 0, "model": body["model"],
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        )
    };
    let mut frames = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    frames.extend(
        pieces(reply)
            .into_iter()
            .map(|p| chunk(json!({"content": p}), Value::Null)),
    );
    frames.push(chunk(json!({}), json!("stop")));
    frames.push(format!(
        "data: {}\n\n",
        json!({"object": "chat.completion.chunk", "created": 0, "model": body["model"], "choices": [], "usage": usage(body, reply)})
    ));
    frames.push("data: [DONE]\n\n".into());
    frames
}

fn text_completion(body: &Value, reply: &str) -> Value {
    json!({
        "object": "text_completion", "created": 0, "model": body["model"],
        "choices": [{"text": reply, "index": 0, "logprobs": null, "finish_reason": "stop"}],
        "usage": usage(body, reply),
    })
}

fn text_stream_frames(body: &Value, reply: &str) -> Vec<String> {
    let chunk = |text: &str, finish: Value| {
        format!(
            "data: {}\n\n",
            json!({"object": "text_completion", "created": 0, "model": body["model"],
                   "choices": [{"text": text, "index": 0, "logprobs": null, "finish_reason": finish}]})
        )
    };
    let mut frames: Vec<String> = pieces(reply)
        .into_iter()
        .map(|p| chunk(p, Value::Null))
        .collect();
    frames.push(chunk("", json!("stop")));
    frames.push(format!(
        "data: {}\n\n",
        json!({"object": "text_completion", "created": 0, "model": body["model"], "choices": [], "usage": usage(body, reply)})
    ));
    frames.push("data: [DONE]\n\n".into());
    frames
}

/// Deterministic vectors derived from each input's bytes, so equal inputs embed equally.
fn embeddings(body: &Value) -> Value {
    let inputs: Vec<String> = match &body["input"] {
        Value::Array(items) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            })
            .collect(),
        Value::String(s) => vec![s.clone()],
        other => vec![other.to_string()],
    };
    let dims = body["dimensions"]
        .as_u64()
        .map(|d| d as usize)
        .unwrap_or(EMBEDDING_DIMENSIONS)
        .clamp(1, 4096);
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(
            |(i, text)| json!({"object": "embedding", "index": i, "embedding": vector(text, dims)}),
        )
        .collect();
    let tokens: u64 = inputs.iter().map(|t| estimate_tokens(t)).sum();
    json!({"object": "list", "data": data, "model": body["model"], "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})
}

fn vector(text: &str, dims: usize) -> Vec<f32> {
    // FNV-1a seeded per dimension: cheap, stable across hosts and versions.
    (0..dims)
        .map(|dim| {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ dim as u64;
            for b in text.bytes() {
                h ^= b as u64;
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            // f32 keeps the JSON short (no 0.5820000000000001).
            ((h % 2000) as f32 / 1000.0) - 1.0
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_concatenate_to_the_reply() {
        let r = "hello from  the mock";
        assert_eq!(pieces(r).concat(), r);
        assert_eq!(pieces(r).len(), 5);
        assert!(pieces("").is_empty());
    }

    #[test]
    fn vectors_are_deterministic_and_distinct() {
        assert_eq!(vector("a", 8), vector("a", 8));
        assert_ne!(vector("a", 8), vector("b", 8));
        assert!(vector("a", 8).iter().all(|x| (-1.0..=1.0).contains(x)));
    }

    #[test]
    fn named_exception_becomes_its_status() {
        assert_eq!(error_status("litellm.RateLimitError"), Some(429));
        assert_eq!(error_status("hello"), None);
    }
}
