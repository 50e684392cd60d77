//! Google AI Studio's Gemini API (`gemini/`): `POST /v1beta/models/{model}:generateContent`,
//! `:streamGenerateContent?alt=sse` and `:batchEmbedContents`, with the key in
//! `x-goog-api-key`. The body translation is shared with Vertex AI ([`super::gemini_format`]).

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

use super::gemini_format::{self, to_vec, GeminiStream};
use super::{join_url, json_post, parse_json, ChatStream, ProviderApi};
use crate::deployment::Deployment;
use crate::error::GatewayError;
use crate::openai::{ChatCompletion, ChatRequest};
use crate::secret::Secret;

pub const DEFAULT_BASE: &str = "https://generativelanguage.googleapis.com";
const API_VERSION: &str = "/v1beta";

pub struct Gemini;

impl ProviderApi for Gemini {
    fn supported_chat_params(&self) -> Option<&'static [&'static str]> {
        Some(gemini_format::SUPPORTED_PARAMS)
    }

    fn chat_request(
        &self,
        req: &ChatRequest,
        d: &Deployment,
    ) -> Result<http::Request<Bytes>, GatewayError> {
        let (body, method) = gemini_format::chat_body(req)?;
        post(d, method, body)
    }

    fn chat_response(
        &self,
        body: &[u8],
        _req: &ChatRequest,
        _d: &Deployment,
    ) -> Result<ChatCompletion, GatewayError> {
        gemini_format::chat_completion(body)
    }

    fn chat_stream(&self, _req: &ChatRequest, _d: &Deployment) -> ChatStream {
        Box::new(GeminiStream::new())
    }

    fn error(&self, status: u16, body: &[u8]) -> GatewayError {
        gemini_format::google_error(status, body)
    }

    fn embeddings_request(
        &self,
        req: &Value,
        d: &Deployment,
    ) -> Result<http::Request<Bytes>, GatewayError> {
        let body = to_vec(&batch_embed_body(req, &model_name(d))?)?;
        post(d, "batchEmbedContents", body)
    }

    fn embeddings_response(&self, body: &[u8], _d: &Deployment) -> Result<Value, GatewayError> {
        let batch: BatchEmbedResponse = parse_json(body)?;
        let vectors = batch.embeddings.into_iter().map(|e| e.values);
        Ok(embedding_list(vectors))
    }
}

/// `{base}/v1beta/models/{model}:{method}`, the key in `x-goog-api-key` (never in the URL,
/// where it would end up in logs).
fn post(d: &Deployment, method: &str, body: Vec<u8>) -> Result<http::Request<Bytes>, GatewayError> {
    let base = d.params.api_base.as_deref().unwrap_or(DEFAULT_BASE);
    // An api_base that already names the API version is taken as is.
    let base = base.trim_end_matches('/');
    let root = base.strip_suffix(API_VERSION).unwrap_or(base);
    let path = format!("{API_VERSION}/models/{}:{method}", model_name(d));
    let mut headers = Vec::new();
    if let Some(key) = d.params.api_key.as_ref().map(Secret::expose) {
        headers.push(("x-goog-api-key", key));
    }
    json_post(&join_url(root, &path), &headers, body)
}

/// The upstream model without the `models/` prefix Google's own names carry.
fn model_name(d: &Deployment) -> String {
    let m = d.upstream_model.as_str();
    m.strip_prefix("models/").unwrap_or(m).to_string()
}

/// `batchEmbedContents` takes one request per input text.
fn batch_embed_body(req: &Value, model: &str) -> Result<Value, GatewayError> {
    let dimensions = req.get("dimensions").filter(|v| !v.is_null());
    let task_type = req.get("task_type").filter(|v| !v.is_null());
    let requests: Vec<Value> = embedding_texts(req)?
        .into_iter()
        .map(|text| {
            let mut r = json!({
                "model": format!("models/{model}"),
                "content": { "parts": [{ "text": text }] },
            });
            if let Some(d) = dimensions {
                r["outputDimensionality"] = d.clone();
            }
            if let Some(t) = task_type {
                r["taskType"] = t.clone();
            }
            r
        })
        .collect();
    Ok(json!({ "requests": requests }))
}

/// The input texts; Gemini embeds text, not token ids.
pub fn embedding_texts(req: &Value) -> Result<Vec<&str>, GatewayError> {
    let texts = match req.get("input") {
        Some(Value::String(s)) => Some(vec![s.as_str()]),
        Some(Value::Array(items)) => items.iter().map(Value::as_str).collect(),
        _ => None,
    };
    texts.ok_or_else(|| {
        GatewayError::invalid_request(
            "gemini embeds text: 'input' must be a string or an array of strings",
        )
        .with_param("input")
    })
}

/// OpenAI's embedding list. Google reports no token counts for embeddings; LiteLLM counts the
/// input text itself, but [`ProviderApi::embeddings_response`] sees only the response, so the
/// usage is reported as zero tokens here.
pub fn embedding_list(vectors: impl Iterator<Item = Vec<f64>>) -> Value {
    let data: Vec<Value> = vectors
        .enumerate()
        .map(|(i, v)| json!({ "object": "embedding", "index": i, "embedding": v }))
        .collect();
    json!({
        "object": "list",
        "data": data,
        "model": "",
        "usage": { "prompt_tokens": 0, "total_tokens": 0 },
    })
}

#[derive(Deserialize)]
struct BatchEmbedResponse {
    #[serde(default)]
    embeddings: Vec<Embedding>,
}

#[derive(Deserialize)]
struct Embedding {
    #[serde(default)]
    values: Vec<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::providers::test_support::{self, chat};

    fn deployment_with(params: &str) -> Deployment {
        test_support::deployment(
            "g",
            &format!("{{model: gemini/gemini-2.0-flash, api_key: gk{params}}}"),
        )
    }

    #[test]
    fn chat_goes_to_generate_content_with_the_key_header() {
        let req = chat(json!({"model": "g", "messages": [{"role": "user", "content": "hi"}]}));
        let r = Gemini.chat_request(&req, &deployment_with("")).unwrap();
        assert_eq!(
            r.uri(),
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent"
        );
        assert_eq!(r.headers()["x-goog-api-key"], "gk");
        assert!(
            !r.uri().to_string().contains("gk"),
            "the key stays out of the URL"
        );
        let body: Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(
            body,
            json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})
        );
    }

    #[test]
    fn streams_ask_for_sse_and_api_base_replaces_the_host() {
        let req = chat(
            json!({"model": "g", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
        );
        for base in ["http://mock:1", "http://mock:1/", "http://mock:1/v1beta"] {
            let d = deployment_with(&format!(", api_base: '{base}'"));
            let r = Gemini.chat_request(&req, &d).unwrap();
            assert_eq!(
                r.uri(),
                "http://mock:1/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
                "{base}"
            );
        }
    }

    #[test]
    fn key_comes_from_gemini_api_key() {
        let yaml = "model_list:\n  - model_name: g\n    litellm_params: {model: gemini/models/gemini-pro}\n";
        let cfg = Config::from_yaml(yaml, &|k| (k == "GEMINI_API_KEY").then(|| "env-key".into()))
            .unwrap();
        let d = &cfg.deployments[0];
        let req = chat(json!({"model": "g", "messages": [{"role": "user", "content": "hi"}]}));
        let r = Gemini.chat_request(&req, d).unwrap();
        assert_eq!(r.headers()["x-goog-api-key"], "env-key");
        assert!(r
            .uri()
            .path()
            .ends_with("/models/gemini-pro:generateContent"));
    }

    #[test]
    fn embeddings_batch_one_request_per_text() {
        let d = deployment_with("");
        let req = json!({"model": "g", "input": ["a", "b"], "dimensions": 8, "task_type": "RETRIEVAL_QUERY"});
        let r = Gemini.embeddings_request(&req, &d).unwrap();
        assert_eq!(
            r.uri(),
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:batchEmbedContents"
        );
        let body: Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(
            body["requests"][1],
            json!({"model": "models/gemini-2.0-flash", "content": {"parts": [{"text": "b"}]},
                   "outputDimensionality": 8, "taskType": "RETRIEVAL_QUERY"})
        );
        let tokens = json!({"model": "g", "input": [[1, 2]]});
        let e = Gemini.embeddings_request(&tokens, &d).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("input"));
    }

    #[test]
    fn embeddings_response_is_an_openai_list() {
        let body = include_str!("fixtures/gemini/embeddings_response.json");
        let v = Gemini
            .embeddings_response(body.as_bytes(), &deployment_with(""))
            .unwrap();
        assert_eq!(v["object"], "list");
        assert_eq!(v["data"][1]["index"], 1);
        assert_eq!(
            v["data"][0]["embedding"],
            json!([0.013168523, -0.008711934, -0.046782676])
        );
        assert_eq!(v["usage"]["prompt_tokens"], 0);
        let e = Gemini
            .embeddings_response(b"{\"embeddings\": 5}", &deployment_with(""))
            .unwrap_err();
        assert_eq!(e.status().as_u16(), 502);
    }
}
