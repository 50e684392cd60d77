//! `GET /health`: every deployment probed with a minimal request, in parallel, each bounded by
//! a timeout; answered in the product brief's shape plus LiteLLM's counts. Probe errors are
//! reported with the deployment's key scrubbed out.

use futures_util::future::join_all;
use http::StatusCode;
use serde_json::{json, Value};

use super::{json_response, read_all, Gateway, GatewayResponse, VERSION};
use crate::deployment::Deployment;
use crate::error::GatewayError;
use crate::providers::mock::Mock;
use crate::providers::{ProviderApi, ProviderId};

/// A probe slower than this counts as unhealthy.
const PROBE_TIMEOUT_MS: u64 = 10_000;

/// What a probe asks, by the deployment's kind (LiteLLM's `model_info.mode`).
enum ProbeKind {
    Chat,
    Embedding,
    Completion,
}

fn probe_kind(d: &Deployment) -> ProbeKind {
    match d.model_info.get("mode").and_then(Value::as_str) {
        Some("embedding") => ProbeKind::Embedding,
        Some("completion") => ProbeKind::Completion,
        _ if d.provider == ProviderId::TextCompletionOpenAi => ProbeKind::Completion,
        _ => ProbeKind::Chat,
    }
}

impl Gateway {
    pub(crate) async fn health(&self) -> GatewayResponse {
        let probes = self.config.deployments.iter().map(|d| self.probe(d));
        let results = join_all(probes).await;
        let (mut healthy, mut unhealthy) = (Vec::new(), Vec::new());
        for (d, (latency_ms, outcome)) in self.config.deployments.iter().zip(results) {
            let mut entry =
                json!({"model": d.model_name, "model_id": d.id, "latency_ms": latency_ms});
            if let Some(base) = super::respond::shown_api_base(d) {
                entry["api_base"] = json!(base);
            }
            match outcome {
                Ok(()) => {
                    entry["status"] = json!("healthy");
                    healthy.push(entry);
                }
                Err(e) => {
                    entry["status"] = json!("unhealthy");
                    entry["error"] = json!(scrub(&e.message, d));
                    unhealthy.push(entry);
                }
            }
        }
        let body = json!({
            "status": if unhealthy.is_empty() { "healthy" } else { "unhealthy" },
            "healthy_count": healthy.len(),
            "unhealthy_count": unhealthy.len(),
            "healthy_endpoints": healthy,
            "unhealthy_endpoints": unhealthy,
            "version": VERSION,
            "uptime": uptime(self.clock.now_ms().saturating_sub(self.started_ms)),
        });
        json_response(StatusCode::OK, &body)
    }

    /// One minimal request to `d`; its latency and whether it succeeded.
    async fn probe(&self, d: &Deployment) -> (u64, Result<(), GatewayError>) {
        let started = self.clock.now_ms();
        let outcome = self.probe_once(d).await;
        (self.clock.now_ms().saturating_sub(started), outcome)
    }

    async fn probe_once(&self, d: &Deployment) -> Result<(), GatewayError> {
        let api: &dyn ProviderApi = if d.provider == ProviderId::Mock {
            &Mock
        } else {
            d.provider.api()?
        };
        let model = json!(d.model_name);
        let request = match probe_kind(d) {
            ProbeKind::Embedding => {
                api.embeddings_request(&json!({"model": model, "input": "ping"}), d)?
            }
            ProbeKind::Completion => api.completion_request(
                &json!({"model": model, "prompt": "ping", "max_tokens": 1}),
                d,
            )?,
            ProbeKind::Chat => {
                let req = serde_json::from_value(json!({
                    "model": model, "max_tokens": 1, "messages": [{"role": "user", "content": "ping"}]
                }))
                .map_err(|e| GatewayError::invalid_request(e.to_string()))?;
                api.chat_request(&req, d)?
            }
        };
        let timeout = d.timeout_ms.min(PROBE_TIMEOUT_MS);
        let body = self.call_within(api, request, d, timeout).await?;
        read_all(body, 64 * 1024).await.map(|_| ())
    }
}

/// Removes the deployment's key from a message (some providers echo part of it).
fn scrub(message: &str, d: &Deployment) -> String {
    match d
        .params
        .api_key
        .as_ref()
        .map(|k| k.expose())
        .filter(|k| k.len() >= 4)
    {
        Some(key) => message.replace(key, "***"),
        None => message.to_string(),
    }
}

/// `2h 15m 30s`, as in the product brief.
fn uptime(ms: u64) -> String {
    let s = ms / 1000;
    format!("{}h {}m {}s", s / 3600, (s % 3600) / 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_reads_like_the_brief() {
        assert_eq!(uptime(8_130_000), "2h 15m 30s");
        assert_eq!(uptime(999), "0h 0m 0s");
    }

    #[test]
    fn keys_are_scrubbed_from_probe_errors() {
        let cfg = crate::config::Config::from_yaml(
            "model_list:\n  - model_name: m\n    litellm_params: {model: openai/x, api_key: sk-secret-123}\n",
            &|_| None,
        )
        .unwrap();
        let d = &cfg.deployments[0];
        assert_eq!(scrub("bad key sk-secret-123 given", d), "bad key *** given");
    }
}
