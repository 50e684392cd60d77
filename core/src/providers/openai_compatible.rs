//! OpenAI's own API and every service that speaks it, driven by one table of base URLs,
//! key variables and quirks. Requests pass through nearly untouched (only `model` changes),
//! which keeps new OpenAI parameters working without a Tollgate release.

use bytes::Bytes;
use serde_json::Value;

use super::openai_stream::{OpenAiFormatChunk, OpenAiFormatStream};
use super::{join_url, json_post, unsupported, ProviderApi};
use crate::deployment::Deployment;
use crate::error::GatewayError;
use crate::openai::{ChatChunk, ChatRequest, StreamOptions, Usage};

pub use crate::deployment::compatible_table::{find, CompatibleProvider, COMPATIBLE};

// The table's rows, tested through the provider that reads them.
#[cfg(test)]
mod table_tests;

fn provider(d: &Deployment) -> &'static CompatibleProvider {
    match d.provider {
        super::ProviderId::OpenAiCompatible(c) => c,
        // The text-completion and mock modules reuse this one with OpenAI's own settings.
        _ => &COMPATIBLE[0],
    }
}

fn base_url(d: &Deployment) -> &str {
    d.params
        .api_base
        .as_deref()
        .unwrap_or(provider(d).default_base)
}

/// A POST to `path` under the deployment's base URL, with bearer auth when a key is set.
pub fn post(
    d: &Deployment,
    path: &str,
    body: Vec<u8>,
) -> Result<http::Request<Bytes>, GatewayError> {
    let url = join_url(base_url(d), path);
    let auth = d.params.bearer();
    let org = d.params.extra.get("organization").and_then(Value::as_str);
    let mut headers: Vec<(&str, &str)> = Vec::with_capacity(2);
    if let Some(a) = auth.as_deref() {
        headers.push(("authorization", a));
    }
    if let Some(o) = org {
        headers.push(("openai-organization", o));
    }
    json_post(&url, &headers, body)
}

/// A JSON body with `model` replaced by the upstream name.
pub fn with_model(req: &Value, d: &Deployment) -> Result<Vec<u8>, GatewayError> {
    let mut v = req.clone();
    if let Some(o) = v.as_object_mut() {
        o.insert("model".into(), Value::String(d.upstream_model.clone()));
    }
    serde_json::to_vec(&v).map_err(|e| GatewayError::invalid_request(e.to_string()))
}

pub struct OpenAiCompatible;

impl ProviderApi for OpenAiCompatible {
    fn chat_request(
        &self,
        req: &ChatRequest,
        d: &Deployment,
    ) -> Result<http::Request<Bytes>, GatewayError> {
        let c = provider(d);
        let body = if c.max_tokens_only {
            chat_body(&with_max_tokens_only(req), d, c.stream_usage)?
        } else {
            chat_body(req, d, c.stream_usage)?
        };
        post(d, "/chat/completions", body)
    }

    fn refused_chat_params(&self, d: &Deployment) -> &'static [&'static str] {
        provider(d).refuses
    }

    fn image_request(
        &self,
        req: &Value,
        d: &Deployment,
    ) -> Result<http::Request<Bytes>, GatewayError> {
        if !provider(d).images {
            return Err(unsupported(d, "image generation"));
        }
        post(d, "/images/generations", with_model(req, d)?)
    }

    fn embeddings_request(
        &self,
        req: &Value,
        d: &Deployment,
    ) -> Result<http::Request<Bytes>, GatewayError> {
        post(d, "/embeddings", with_model(req, d)?)
    }

    fn completion_request(
        &self,
        req: &Value,
        d: &Deployment,
    ) -> Result<http::Request<Bytes>, GatewayError> {
        post(d, "/completions", with_model(req, d)?)
    }
}

/// The chat request as OpenAI's wire format with `model` replaced by the upstream name. With
/// `stream_usage`, streams ask for usage so spend can be counted even when the client did not.
pub fn chat_body(
    req: &ChatRequest,
    d: &Deployment,
    stream_usage: bool,
) -> Result<Vec<u8>, GatewayError> {
    let mut upstream = req.clone();
    upstream.model = d.upstream_model.clone();
    if !stream_usage {
        // A service that does not take stream_options refuses the client's too.
        upstream.stream_options = None;
    } else if upstream.is_stream() {
        let opts = upstream
            .stream_options
            .get_or_insert_with(StreamOptions::default);
        opts.include_usage = Some(true);
    }
    serde_json::to_vec(&upstream).map_err(|e| GatewayError::invalid_request(e.to_string()))
}

/// `max_completion_tokens` sent as `max_tokens`, for services that only know the older name
/// (a `max_tokens` the client also sent wins).
fn with_max_tokens_only(req: &ChatRequest) -> ChatRequest {
    let mut req = req.clone();
    if let Some(n) = req.max_completion_tokens.take() {
        req.max_tokens.get_or_insert(n);
    }
    req
}

/// Reads `{"error": {"message", "type", "param", "code"}}`, keeping the upstream status.
pub fn openai_error(status: u16, body: &[u8]) -> GatewayError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let err = parsed.as_ref().and_then(|v| v.get("error"));
    let message = match err {
        Some(Value::Object(o)) => o
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("upstream error")
            .to_string(),
        Some(Value::String(s)) => s.clone(),
        _ => fallback_message(status, body),
    };
    let mut e = GatewayError::upstream(status, message);
    if let Some(Value::Object(o)) = err {
        e.param = o.get("param").and_then(Value::as_str).map(str::to_string);
        e.code = match o.get("code") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
    }
    e
}

/// The raw body, shortened, when an upstream error is not JSON.
pub fn fallback_message(status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text: String = text.chars().take(500).collect();
    if text.trim().is_empty() {
        format!("the provider answered with status {status}")
    } else {
        format!(
            "the provider answered with status {status}: {}",
            text.trim()
        )
    }
}

/// OpenAI chat SSE → OpenAI chat chunks.
pub type OpenAiChatStream = OpenAiFormatStream<ChatChunk>;

impl OpenAiFormatChunk for ChatChunk {
    fn is_error(&self) -> bool {
        self.extra.contains_key("error")
    }

    fn take_usage(&mut self) -> Option<Usage> {
        self.usage.take()
    }

    fn has_finish_reason(&self) -> bool {
        self.choices.iter().any(|c| c.finish_reason.is_some())
    }

    fn has_choices(&self) -> bool {
        !self.choices.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::test_support::chat;
    use crate::providers::StreamTranslator;

    fn deployment(yaml_params: &str) -> Deployment {
        crate::providers::test_support::deployment("g", yaml_params)
    }

    #[test]
    fn request_goes_to_default_base_with_upstream_model() {
        let d = deployment("{model: groq/llama3-8b, api_key: k}");
        let req = chat(
            serde_json::json!({"model": "g", "messages": [{"role": "user", "content": "hi"}], "seed": 1}),
        );
        let r = OpenAiCompatible.chat_request(&req, &d).unwrap();
        assert_eq!(r.uri(), "https://api.groq.com/openai/v1/chat/completions");
        assert_eq!(r.headers()["authorization"], "Bearer k");
        let body: Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(body["model"], "llama3-8b");
        assert_eq!(body["seed"], 1);
    }

    #[test]
    fn api_base_replaces_the_default_and_streams_ask_for_usage() {
        let d = deployment("{model: openai/gpt-4o, api_base: 'http://127.0.0.1:9/v1'}");
        let req = chat(
            serde_json::json!({"model": "g", "messages": [{"role": "user", "content": "hi"}], "stream": true}),
        );
        let r = OpenAiCompatible.chat_request(&req, &d).unwrap();
        assert_eq!(r.uri(), "http://127.0.0.1:9/v1/chat/completions");
        assert!(r.headers().get("authorization").is_none());
        let body: Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(body["stream_options"]["include_usage"], true);
    }

    #[test]
    fn mistral_is_not_sent_stream_options() {
        let d = deployment("{model: mistral/mistral-small, api_key: k}");
        let req = chat(
            serde_json::json!({"model": "g", "messages": [{"role": "user", "content": "hi"}], "stream": true}),
        );
        let body: Value =
            serde_json::from_slice(OpenAiCompatible.chat_request(&req, &d).unwrap().body())
                .unwrap();
        assert!(body.get("stream_options").is_none());
    }

    const STREAM: &str = concat!(
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}\n\n",
        "data: [DONE]\n\n",
    );

    #[test]
    fn stream_translates_identically_at_every_split() {
        for split in 0..STREAM.len() {
            let mut t = OpenAiChatStream::default();
            let mut out = Vec::new();
            t.feed(&STREAM.as_bytes()[..split], &mut out).unwrap();
            t.feed(&STREAM.as_bytes()[split..], &mut out).unwrap();
            t.finish(&mut out).unwrap();
            let text: String = out
                .iter()
                .filter_map(|c| c.choices[0].delta.content.clone())
                .collect();
            assert_eq!(text, "Hello", "split {split}");
            assert_eq!(out.len(), 4, "usage-only chunk is lifted out");
            assert_eq!(t.usage().unwrap().total_tokens, 7);
        }
    }

    #[test]
    fn stream_without_end_is_an_error() {
        let mut t = OpenAiChatStream::default();
        let mut out = Vec::new();
        let cut = &STREAM[..STREAM.find("\"lo\"").unwrap()];
        t.feed(cut.as_bytes(), &mut out).unwrap();
        assert!(t.finish(&mut out).is_err());
    }

    #[test]
    fn error_event_mid_stream_is_an_error() {
        let mut t = OpenAiChatStream::default();
        let err = t
            .feed(
                b"data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}\n\n",
                &mut Vec::new(),
            )
            .unwrap_err();
        assert!(err.message.contains("overloaded"));
    }

    #[test]
    fn upstream_error_keeps_status_and_fields() {
        let e = openai_error(429, br#"{"error":{"message":"Rate limit","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#);
        assert_eq!(e.status().as_u16(), 429);
        assert_eq!(e.message, "Rate limit");
        assert_eq!(e.code.as_deref(), Some("rate_limit_exceeded"));
        let e = openai_error(502, b"<html>bad gateway</html>");
        assert!(e.message.contains("bad gateway"));
    }
}
