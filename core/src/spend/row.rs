//! One spend-log row per request, with LiteLLM's `SpendLogs` field names, so tools that read
//! LiteLLM's `/spend/logs` read ours.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::calendar::iso8601;
use crate::ledger::{EndReason, Endpoint, Entry};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[allow(non_snake_case)] // LiteLLM's column names.
pub struct SpendRow {
    pub request_id: String,
    pub call_type: String,
    /// The key's token (SHA-256 hex); empty for the master key.
    pub api_key: String,
    pub key_alias: Option<String>,
    /// Dollars.
    pub spend: f64,
    pub total_tokens: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub startTime: String,
    pub endTime: String,
    pub completionStartTime: Option<String>,
    /// The model the upstream answered with (else the deployment's).
    pub model: String,
    pub model_id: Option<String>,
    pub model_group: Option<String>,
    pub custom_llm_provider: Option<String>,
    pub api_base: String,
    pub user: String,
    pub team_id: Option<String>,
    pub end_user: Option<String>,
    pub metadata: Map<String, Value>,
    pub request_tags: Vec<String>,
    pub cache_hit: String,
    pub status: String,
    pub request_duration_ms: u64,
    /// Usage as the provider reported it (`exact`) or as the gateway estimated it for a cut
    /// stream (`estimated`).
    pub usage_quality: String,
    /// True when no price was known for the model (the row's spend is 0).
    pub unpriced: bool,
    /// Only with `general_settings.store_prompts_in_spend_logs`.
    pub messages: Option<Value>,
    pub response: Option<Value>,
    /// Epoch ms of `startTime`, for filtering without parsing text.
    pub start_ms: u64,
}

/// LiteLLM's `call_type` for an endpoint.
pub fn call_type(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::ChatCompletions => "acompletion",
        Endpoint::Completions => "atext_completion",
        Endpoint::Embeddings => "aembedding",
        Endpoint::ImageGenerations => "aimage_generation",
        Endpoint::Messages => "anthropic_messages",
    }
}

impl SpendRow {
    pub fn from_entry(entry: &Entry, spend_nanos: i64, unpriced: bool) -> SpendRow {
        let who = entry.attribution.as_deref();
        let usage = entry.usage.clone().unwrap_or_default();
        let d = entry.deployment.as_deref();
        let mut metadata = who.and_then(|w| w.metadata.clone()).unwrap_or_default();
        if let Some(e) = &entry.error {
            metadata.insert(
                "error_information".into(),
                serde_json::json!({"error_code": e.status().as_u16().to_string(), "error_message": e.message, "error_class": e.kind.type_str()}),
            );
        }
        SpendRow {
            request_id: entry.call_id.clone(),
            call_type: call_type(entry.endpoint).into(),
            api_key: who.and_then(|w| w.key_token.clone()).unwrap_or_default(),
            key_alias: who.and_then(|w| w.key_alias.clone()),
            spend: crate::budget::plan::nanos_to_usd(spend_nanos),
            total_tokens: usage.prompt_tokens + usage.completion_tokens,
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            startTime: iso8601(entry.started_ms),
            endTime: iso8601(entry.ended_ms),
            completionStartTime: entry.first_token_ms.map(iso8601),
            model: entry
                .response_model
                .clone()
                .or_else(|| d.map(|d| d.upstream_model.clone()))
                .or_else(|| entry.requested_model.clone())
                .unwrap_or_default(),
            model_id: d.map(|d| d.id.clone()),
            model_group: entry
                .model_group
                .clone()
                .or_else(|| entry.requested_model.clone()),
            custom_llm_provider: d.map(|d| d.provider.prefix().to_string()),
            api_base: d
                .and_then(|d| d.params.api_base.as_deref())
                .map(safe_url)
                .unwrap_or_default(),
            user: who.and_then(|w| w.user_id.clone()).unwrap_or_default(),
            team_id: who.and_then(|w| w.team_id.clone()),
            end_user: who.and_then(|w| w.end_user.clone()),
            metadata,
            request_tags: who.map(|w| w.tags.clone()).unwrap_or_default(),
            cache_hit: entry.cache_hit.to_string(),
            status: if entry.end == EndReason::Completed {
                "success"
            } else {
                "failure"
            }
            .into(),
            request_duration_ms: entry.ended_ms.saturating_sub(entry.started_ms),
            usage_quality: match entry.usage_quality {
                crate::ledger::UsageQuality::Exact => "exact",
                crate::ledger::UsageQuality::Estimated => "estimated",
            }
            .into(),
            unpriced,
            messages: None,
            response: None,
            start_ms: entry.started_ms,
        }
    }
}

/// A URL without credentials: no userinfo, no query (Azure keys travel in either).
fn safe_url(url: &str) -> String {
    let url = crate::secret::redact_url_userinfo(url).unwrap_or_else(|| url.to_string());
    match url.split_once(['?', '#']) {
        Some((base, _)) => base.to_string(),
        None => url,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn api_base_loses_its_credentials() {
        assert_eq!(
            super::safe_url("https://user:pw@host.test/v1?api-key=sk-1"),
            "https://<redacted>@host.test/v1"
        );
    }
}
