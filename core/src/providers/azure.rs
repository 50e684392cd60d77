//! Azure OpenAI (`azure/<deployment>`): OpenAI's wire format, sent to a deployment of the
//! operator's own resource.
//!
//! Requests, answers and streams are OpenAI's, so this module only builds URLs and
//! credentials and reads Azure's error dialect; the bodies come from
//! [`openai_compatible`](super::openai_compatible). Two URL styles are understood:
//!
//! - classic: `{api_base}/openai/deployments/{deployment}/{operation}?api-version={version}`;
//! - the v1 ("AI Foundry") style, when `api_base` ends in `/openai/v1`:
//!   `{api_base}/{operation}`, no version, the deployment named by the body's `model`.
//!
//! The API version is `litellm_params.api_version`, else `AZURE_API_VERSION`, else
//! [`DEFAULT_API_VERSION`]. The key goes in an `api-key` header; an `azure_ad_token` (Entra
//! ID) goes in `Authorization: Bearer` instead and wins when both are configured, since it is
//! the more specific setting.

use bytes::Bytes;
use serde_json::Value;

use super::openai_compatible::{chat_body, openai_error, with_model};
use super::{json_post, ProviderApi};
use crate::config::raw::LitellmParams;
use crate::config::redact::ApiBase;
use crate::deployment::Deployment;
use crate::error::{ErrorKind, GatewayError};
use crate::openai::ChatRequest;
use crate::secret::Secret;

/// The newest generally available data-plane version: it takes `stream_options`, tools,
/// `response_format` with `json_schema`, and `max_completion_tokens`.
pub const DEFAULT_API_VERSION: &str = "2024-10-21";

pub struct Azure;

impl ProviderApi for Azure {
    fn chat_request(
        &self,
        req: &ChatRequest,
        d: &Deployment,
    ) -> Result<http::Request<Bytes>, GatewayError> {
        post(
            d,
            "chat/completions",
            chat_body(req, d, takes_stream_options(d))?,
        )
    }

    fn error(&self, status: u16, body: &[u8]) -> GatewayError {
        azure_error(status, body)
    }

    fn embeddings_request(
        &self,
        req: &Value,
        d: &Deployment,
    ) -> Result<http::Request<Bytes>, GatewayError> {
        post(d, "embeddings", with_model(req, d)?)
    }

    fn completion_request(
        &self,
        req: &Value,
        d: &Deployment,
    ) -> Result<http::Request<Bytes>, GatewayError> {
        post(d, "completions", with_model(req, d)?)
    }

    fn image_request(
        &self,
        req: &Value,
        d: &Deployment,
    ) -> Result<http::Request<Bytes>, GatewayError> {
        post(d, "images/generations", with_model(req, d)?)
    }
}

/// Fills what the config left unset from `AZURE_API_BASE`, `AZURE_API_VERSION` and
/// `AZURE_AD_TOKEN`, as LiteLLM does (the token only when no key is configured).
pub fn fill_from_env(params: &mut LitellmParams, lookup: &dyn Fn(&str) -> Option<String>) {
    if params.api_base.is_none() {
        params.api_base = lookup("AZURE_API_BASE").map(ApiBase::from);
    }
    if params.api_version.is_none() {
        params.api_version = lookup("AZURE_API_VERSION");
    }
    if params.api_key.is_none() && params.azure_ad_token.is_none() {
        params.azure_ad_token = lookup("AZURE_AD_TOKEN").map(Secret::from);
    }
}

/// The model Azure's deployment runs, for pricing: deployment names are the operator's own
/// (`my-gpt4`), so LiteLLM reads `base_model` from `model_info` or `litellm_params`.
pub fn base_model(d: &Deployment) -> Option<&str> {
    d.model_info
        .get("base_model")
        .or_else(|| d.params.extra.get("base_model"))
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
}

/// The API version requests carry.
pub fn api_version(d: &Deployment) -> &str {
    d.params
        .api_version
        .as_deref()
        .filter(|v| !v.is_empty())
        .unwrap_or(DEFAULT_API_VERSION)
}

/// Whether streams may ask for usage: `stream_options` arrived in 2024-07-01-preview, and
/// older pinned versions refuse it as an unrecognised argument. Versions are dates, so they
/// compare as text.
fn takes_stream_options(d: &Deployment) -> bool {
    let base = d.params.api_base.as_deref().unwrap_or("");
    base.trim_end_matches('/').ends_with("/openai/v1") || api_version(d) >= "2024-07-01"
}

/// The full URL of `operation` (`chat/completions`, `embeddings`, `completions`,
/// `images/generations`).
fn url(d: &Deployment, operation: &str) -> Result<String, GatewayError> {
    let base = d
        .params
        .api_base
        .as_deref()
        .map(|b| b.trim_end_matches('/'))
        .filter(|b| !b.is_empty())
        .ok_or_else(|| {
            GatewayError::invalid_request(format!(
                "azure deployment {:?} has no api_base: set litellm_params.api_base (https://<resource>.openai.azure.com) or AZURE_API_BASE",
                d.model_name
            ))
            .with_param("api_base")
            .with_code("missing_api_base")
        })?;
    if base.ends_with("/openai/v1") {
        return Ok(format!("{base}/{operation}"));
    }
    // A base given with its `/openai` segment is tolerated; the segment is not doubled.
    let resource = base.strip_suffix("/openai").unwrap_or(base);
    Ok(format!(
        "{resource}/openai/deployments/{}/{operation}?api-version={}",
        d.upstream_model,
        api_version(d)
    ))
}

fn post(
    d: &Deployment,
    operation: &str,
    body: Vec<u8>,
) -> Result<http::Request<Bytes>, GatewayError> {
    let url = url(d, operation)?;
    let token = d
        .params
        .azure_ad_token
        .as_ref()
        .map(Secret::expose)
        .filter(|t| !t.is_empty());
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut headers: Vec<(&str, &str)> = Vec::with_capacity(1);
    match (
        bearer.as_deref(),
        d.params.api_key.as_ref().map(Secret::expose),
    ) {
        (Some(b), _) => headers.push(("authorization", b)),
        (None, Some(key)) => headers.push(("api-key", key)),
        (None, None) => {}
    }
    json_post(&url, &headers, body)
}

/// OpenAI's error shape, plus Azure's content filter: a prompt or answer blocked by Azure's
/// content management policy becomes `content_policy_violation` (LiteLLM's
/// ContentPolicyViolationError, status 400) so `content_policy_fallbacks` can act on it.
pub fn azure_error(status: u16, body: &[u8]) -> GatewayError {
    let mut e = openai_error(status, body);
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let err = parsed.as_ref().and_then(|v| v.get("error"));
    if err.is_some_and(is_content_filter) {
        e.kind = ErrorKind::InvalidRequest;
        e.status = Some(400);
        e.code = Some("content_policy_violation".into());
    }
    e
}

fn is_content_filter(err: &Value) -> bool {
    let code = err.get("code").and_then(Value::as_str);
    let inner = err
        .get("innererror")
        .and_then(|i| i.get("code"))
        .and_then(Value::as_str);
    code == Some("content_filter")
        || code == Some("content_policy_violation")
        || inner == Some("ResponsibleAIPolicyViolation")
}

#[cfg(test)]
mod tests;
