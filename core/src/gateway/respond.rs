//! LiteLLM's response headers, and the model objects `/v1/models` lists. The response types
//! and builders are in `crate::response`.

use serde_json::{json, Value};

use crate::deployment::Deployment;
pub use crate::response::{
    error_response, full_json, json_response, sse_response, GatewayResponse, ResponseBody,
};

/// Milliseconds spent on providers (calls and backoff), for the overhead header.
#[derive(Clone, Copy)]
pub(super) struct UpstreamTime(pub u64);

/// LiteLLM's correlation headers, on every answer (errors included). For a stream the
/// duration is the time to its first byte; the overhead is the time not spent waiting on
/// providers (or backing off from them): Tollgate's own.
pub(super) fn stamp_common_headers(
    resp: &mut GatewayResponse,
    call_id: &str,
    started_ms: u64,
    now_ms: u64,
) {
    let elapsed = now_ms.saturating_sub(started_ms);
    set_header(resp, "x-litellm-call-id", call_id);
    set_header(resp, "x-litellm-response-duration-ms", &elapsed.to_string());
    let upstream = resp.extensions().get::<UpstreamTime>().map_or(0, |t| t.0);
    set_header(
        resp,
        "x-litellm-overhead-duration-ms",
        &elapsed.saturating_sub(upstream).to_string(),
    );
}

/// `x-litellm-model-id`, `-model-group`, `-model-api-base` and `-attempted-retries`: which
/// deployment answered, after how many retries.
/// The api base is the configured or default URL, never a key.
pub(super) fn with_deployment_headers(
    mut resp: GatewayResponse,
    d: &Deployment,
    group: &str,
    retries: u32,
) -> GatewayResponse {
    set_header(&mut resp, "x-litellm-model-id", &d.id);
    set_header(
        &mut resp,
        "x-litellm-attempted-retries",
        &retries.to_string(),
    );
    set_header(&mut resp, "x-litellm-model-group", group);
    if let Some(base) = shown_api_base(d) {
        set_header(&mut resp, "x-litellm-model-api-base", &base);
    }
    resp
}

/// The deployment's api base as it may be shown (headers, `/health`): the configured or
/// default URL without credentials an operator put in it (`user:pw@`, or a query string such
/// as `?key=`).
pub(super) fn shown_api_base(d: &Deployment) -> Option<String> {
    let base = d.params.api_base.as_deref().or(d.provider.default_base())?;
    let base = crate::secret::redact_url_userinfo(base).unwrap_or_else(|| base.to_string());
    Some(match base.split_once('?') {
        Some((path, _)) => path.to_string(),
        None => base,
    })
}

/// Sets a header, skipping values that are not valid header text (a group name never fails
/// a request).
pub(super) fn set_header(resp: &mut GatewayResponse, name: &'static str, value: &str) {
    if let Ok(v) = http::HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, v);
    }
}

pub(super) fn model_object(name: &str) -> Value {
    json!({"id": name, "object": "model", "created": 1_677_610_602u64, "owned_by": "openai"})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_an_api_base_are_never_shown() {
        let yaml = "model_list:
  - model_name: g
    litellm_params: {model: openai/m, api_key: k, api_base: \"https://bob:hunter2@llm.example/v1?key=abc\"}
";
        let cfg = crate::Config::from_yaml(yaml, &|_| None).unwrap();
        let shown = shown_api_base(&cfg.deployments[0]).unwrap();
        assert!(!shown.contains("hunter2") && !shown.contains("bob") && !shown.contains("abc"));
        assert!(shown.contains("llm.example/v1"), "{shown}");
    }
}
