//! Gemini on Google Cloud Vertex AI (`vertex_ai/`, and LiteLLM's `vertex_ai_beta/` alias).
//!
//! The body is Gemini's ([`super::gemini_format`]); what differs is the URL, which names
//! the project and region, and the credentials: a service-account key exchanged for an
//! OAuth access token just before sending ([`super::google_auth`]). Settings come from
//! `litellm_params`, under LiteLLM's names: `vertex_project` (else the key's `project_id`),
//! `vertex_location` (default `us-central1`; `global` has no regional host) and
//! `vertex_credentials`. An `api_key` is taken as a ready access token instead, and
//! `api_base` replaces the host (scheme and authority).

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

use super::gemini::{embedding_list, embedding_texts};
use super::gemini_format::{self, to_vec, GeminiStream};
use super::google_auth::{ServiceAccount, TokenCache, CLOUD_PLATFORM_SCOPE};
use super::{json_post, parse_json, ChatStream, ProviderApi, SendContext};
use crate::deployment::Deployment;
use crate::error::{ErrorKind, GatewayError};
use crate::openai::{ChatCompletion, ChatRequest};
use crate::secret::Secret;

/// The global endpoint; regional ones are `https://{location}-aiplatform.googleapis.com`.
pub const DEFAULT_BASE: &str = "https://aiplatform.googleapis.com";
const DEFAULT_LOCATION: &str = "us-central1";

/// Access tokens for every Vertex deployment of this instance.
static TOKENS: TokenCache = TokenCache::new();

pub struct VertexAi;

#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
impl ProviderApi for VertexAi {
    fn supported_chat_params(&self) -> Option<&'static [&'static str]> {
        Some(gemini_format::SUPPORTED_PARAMS)
    }

    fn chat_request(
        &self,
        req: &ChatRequest,
        d: &Deployment,
    ) -> Result<http::Request<Bytes>, GatewayError> {
        let (body, method) = gemini_format::chat_body(req)?;
        json_post(&model_url(d, method)?, &[], body)
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
        json_post(&model_url(d, "predict")?, &[], to_vec(&predict_body(req)?)?)
    }

    fn embeddings_response(&self, body: &[u8], _d: &Deployment) -> Result<Value, GatewayError> {
        let answer: PredictResponse = parse_json(body)?;
        let tokens: u64 = answer
            .predictions
            .iter()
            .map(|p| p.embeddings.statistics.token_count)
            .sum();
        let mut list = embedding_list(answer.predictions.into_iter().map(|p| p.embeddings.values));
        // Vertex counts the tokens of each input.
        list["usage"] = json!({ "prompt_tokens": tokens, "total_tokens": tokens });
        Ok(list)
    }

    async fn authorize(
        &self,
        mut request: http::Request<Bytes>,
        d: &Deployment,
        ctx: &SendContext<'_>,
    ) -> Result<http::Request<Bytes>, GatewayError> {
        let token = match d.params.api_key.as_ref().map(Secret::expose) {
            Some(token) => token.to_string(),
            None => {
                let account = service_account(d)?;
                TOKENS
                    .access_token(&account, CLOUD_PLATFORM_SCOPE, ctx)
                    .await?
            }
        };
        let value = http::HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            GatewayError::new(
                ErrorKind::Authentication,
                "the Vertex AI access token is not valid header text",
            )
        })?;
        request
            .headers_mut()
            .insert(http::header::AUTHORIZATION, value);
        Ok(request)
    }
}

/// `{host}/v1/projects/{project}/locations/{location}/publishers/google/models/{model}:{method}`.
fn model_url(d: &Deployment, method: &str) -> Result<String, GatewayError> {
    let location = setting(d, "vertex_location").unwrap_or(DEFAULT_LOCATION);
    let project = project(d)?;
    let host = match d.params.api_base.as_deref() {
        Some(base) => base.trim_end_matches('/').to_string(),
        None if location == "global" => DEFAULT_BASE.to_string(),
        None => format!("https://{location}-aiplatform.googleapis.com"),
    };
    Ok(format!(
        "{host}/v1/projects/{project}/locations/{location}/publishers/google/models/{}:{method}",
        d.upstream_model
    ))
}

fn setting<'a>(d: &'a Deployment, key: &str) -> Option<&'a str> {
    d.params
        .extra
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// `vertex_project`, else the project the service account belongs to (as LiteLLM does).
fn project(d: &Deployment) -> Result<String, GatewayError> {
    if let Some(p) = setting(d, "vertex_project") {
        return Ok(p.to_string());
    }
    let from_key = d
        .params
        .vertex_credentials
        .as_ref()
        .and_then(|c| ServiceAccount::from_credentials(c).ok())
        .and_then(|a| a.project_id);
    from_key.ok_or_else(|| {
        GatewayError::invalid_request(format!(
            "model {:?} (vertex_ai) needs vertex_project in litellm_params",
            d.model_name
        ))
        .with_param("vertex_project")
    })
}

fn service_account(d: &Deployment) -> Result<ServiceAccount, GatewayError> {
    let credentials = d.params.vertex_credentials.as_ref().ok_or_else(|| {
        GatewayError::new(
            ErrorKind::Authentication,
            format!(
                "model {:?} (vertex_ai) needs vertex_credentials (a service-account key) or api_key (an access token)",
                d.model_name
            ),
        )
        .with_param("vertex_credentials")
    })?;
    ServiceAccount::from_credentials(credentials)
}

/// Vertex's text-embedding models take `instances: [{content}]` on `:predict`.
fn predict_body(req: &Value) -> Result<Value, GatewayError> {
    let task_type = req.get("task_type").filter(|v| !v.is_null());
    let instances: Vec<Value> = embedding_texts(req)?
        .into_iter()
        .map(|text| {
            let mut instance = json!({ "content": text });
            if let Some(t) = task_type {
                instance["task_type"] = t.clone();
            }
            instance
        })
        .collect();
    let mut body = json!({ "instances": instances });
    if let Some(d) = req.get("dimensions").filter(|v| !v.is_null()) {
        body["parameters"] = json!({ "outputDimensionality": d });
    }
    Ok(body)
}

#[derive(Deserialize)]
struct PredictResponse {
    #[serde(default)]
    predictions: Vec<Prediction>,
}

#[derive(Deserialize)]
struct Prediction {
    embeddings: PredictedEmbedding,
}

#[derive(Deserialize)]
struct PredictedEmbedding {
    #[serde(default)]
    values: Vec<f64>,
    #[serde(default)]
    statistics: Statistics,
}

#[derive(Default, Deserialize)]
struct Statistics {
    #[serde(default)]
    token_count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::google_auth::tests::{TokenEndpoint, TEST_ACCOUNT, TOKEN_OK};
    use crate::providers::test_support;
    use crate::providers::test_support::FakeClock;
    use std::sync::atomic::AtomicU64;

    fn deployment_with(params: &str) -> Deployment {
        test_support::deployment("v", &format!("{{model: vertex_ai/gemini-1.5-pro{params}}}"))
    }

    fn with_credentials(extra: &str) -> Deployment {
        let mut d = deployment_with(extra);
        d.params.vertex_credentials = Some(Secret::from(TEST_ACCOUNT));
        d
    }

    fn chat(stream: bool) -> ChatRequest {
        serde_json::from_value(
            json!({"model": "v", "stream": stream, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .unwrap()
    }

    fn run<F: std::future::Future>(f: F) -> F::Output {
        futures_executor::block_on(f)
    }

    #[test]
    fn urls_name_project_and_region() {
        let d = deployment_with(", vertex_project: p1, vertex_location: europe-west4");
        let r = VertexAi.chat_request(&chat(false), &d).unwrap();
        assert_eq!(
            r.uri(),
            "https://europe-west4-aiplatform.googleapis.com/v1/projects/p1/locations/europe-west4/publishers/google/models/gemini-1.5-pro:generateContent"
        );
        let d = deployment_with(", vertex_project: p1, vertex_location: global");
        let r = VertexAi.chat_request(&chat(true), &d).unwrap();
        assert_eq!(
            r.uri(),
            "https://aiplatform.googleapis.com/v1/projects/p1/locations/global/publishers/google/models/gemini-1.5-pro:streamGenerateContent?alt=sse"
        );
        // The project defaults to the key's, the region to us-central1; api_base is the host.
        let d = with_credentials(", api_base: 'http://127.0.0.1:9/'");
        let r = VertexAi.chat_request(&chat(false), &d).unwrap();
        assert_eq!(
            r.uri(),
            "http://127.0.0.1:9/v1/projects/tollgate-test-project/locations/us-central1/publishers/google/models/gemini-1.5-pro:generateContent"
        );
        let e = VertexAi
            .chat_request(&chat(false), &deployment_with(""))
            .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("vertex_project"));
    }

    #[test]
    fn vertex_ai_beta_is_an_alias() {
        let d =
            test_support::deployment("v", "{model: vertex_ai_beta/gemini-pro, vertex_project: p}");
        assert_eq!(d.provider.prefix(), "vertex_ai");
        assert!(d.provider.api().is_ok());
    }

    #[test]
    fn authorize_exchanges_the_key_for_a_bearer_token() {
        run(async {
            let d = with_credentials(", vertex_project: p1");
            let http = TokenEndpoint::new(200, TOKEN_OK);
            let clock = FakeClock(AtomicU64::new(1_700_000_000_000));
            let ctx = SendContext {
                clock: &clock,
                http: &http,
            };
            let built = VertexAi.chat_request(&chat(false), &d).unwrap();
            let sent = VertexAi.authorize(built, &d, &ctx).await.unwrap();
            assert_eq!(sent.headers()["authorization"], "Bearer ya29.test-token");
            assert!(
                http.calls() <= 1,
                "fetched at most once (the cache is shared)"
            );
        });
    }

    #[test]
    fn api_key_is_a_ready_token_and_missing_credentials_are_401() {
        run(async {
            let http = TokenEndpoint::new(500, "");
            let clock = FakeClock(AtomicU64::new(0));
            let ctx = SendContext {
                clock: &clock,
                http: &http,
            };
            let d = deployment_with(", vertex_project: p1, api_key: ya29.given");
            let built = VertexAi.chat_request(&chat(false), &d).unwrap();
            let sent = VertexAi.authorize(built, &d, &ctx).await.unwrap();
            assert_eq!(sent.headers()["authorization"], "Bearer ya29.given");
            let d = deployment_with(", vertex_project: p1");
            let built = VertexAi.chat_request(&chat(false), &d).unwrap();
            let e = VertexAi.authorize(built, &d, &ctx).await.unwrap_err();
            assert_eq!(e.status().as_u16(), 401);
            assert_eq!(http.calls(), 0);
        });
    }

    #[test]
    fn embeddings_use_predict_and_report_vertex_token_counts() {
        let d = deployment_with(", vertex_project: p1");
        let req = json!({"model": "v", "input": ["a b", "c"], "dimensions": 3});
        let r = VertexAi.embeddings_request(&req, &d).unwrap();
        assert!(r.uri().path().ends_with("/models/gemini-1.5-pro:predict"));
        let body: Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(
            body,
            json!({"instances": [{"content": "a b"}, {"content": "c"}],
                   "parameters": {"outputDimensionality": 3}})
        );
        let answer = include_str!("fixtures/gemini/vertex_predict_response.json");
        let v = VertexAi.embeddings_response(answer.as_bytes(), &d).unwrap();
        assert_eq!(v["data"][1]["embedding"], json!([0.25, -0.5]));
        assert_eq!(v["usage"], json!({"prompt_tokens": 3, "total_tokens": 3}));
    }
}
