use super::*;
use crate::config::Config;
use crate::providers::split_test::{assert_split_invariant, content_of, finishes};
use crate::providers::test_support::chat;
use crate::providers::StreamTranslator;
use serde_json::json;

fn config(params: &str, env: &dyn Fn(&str) -> Option<String>) -> Deployment {
    let yaml = format!(
        "model_list:\n  - model_name: g\n    litellm_params: {{model: azure/my-gpt4o{params}}}\n"
    );
    let cfg = Config::from_yaml(&yaml, env).unwrap();
    (*cfg.deployments[0]).clone()
}

fn deployment(params: &str) -> Deployment {
    config(params, &|_| None)
}

fn simple(stream: bool) -> ChatRequest {
    chat(json!({"model": "g", "messages": [{"role": "user", "content": "hi"}], "stream": stream}))
}

const BASE: &str = ", api_base: 'https://res.openai.azure.com/', api_key: k";

#[test]
fn chat_goes_to_the_deployment_with_version_and_api_key() {
    let d = deployment(&format!("{BASE}, api_version: '2024-08-01-preview'"));
    let r = Azure.chat_request(&simple(true), &d).unwrap();
    assert_eq!(
        r.uri(),
        "https://res.openai.azure.com/openai/deployments/my-gpt4o/chat/completions?api-version=2024-08-01-preview"
    );
    assert_eq!(r.headers()["api-key"], "k");
    assert!(r.headers().get("authorization").is_none());
    let b: Value = serde_json::from_slice(r.body()).unwrap();
    assert_eq!(b["model"], "my-gpt4o");
    assert_eq!(b["stream_options"]["include_usage"], true);
}

#[test]
fn version_falls_back_to_env_then_default() {
    let d = deployment(BASE);
    assert_eq!(api_version(&d), DEFAULT_API_VERSION);
    let d = config(BASE, &|n| {
        (n == "AZURE_API_VERSION").then(|| "2025-01-01-preview".into())
    });
    let r = Azure.chat_request(&simple(false), &d).unwrap();
    assert!(r
        .uri()
        .to_string()
        .ends_with("?api-version=2025-01-01-preview"));
}

#[test]
fn base_and_key_come_from_env_too() {
    let env = |n: &str| match n {
        "AZURE_API_BASE" => Some("https://env.openai.azure.com".to_string()),
        "AZURE_API_KEY" => Some("envkey".to_string()),
        _ => None,
    };
    let d = config("", &env);
    let r = Azure.chat_request(&simple(false), &d).unwrap();
    assert!(r
        .uri()
        .to_string()
        .starts_with("https://env.openai.azure.com/openai/deployments/my-gpt4o/"));
    assert_eq!(r.headers()["api-key"], "envkey");
}

#[test]
fn missing_api_base_is_a_clear_error() {
    let e = Azure
        .chat_request(&simple(false), &deployment(", api_key: k"))
        .unwrap_err();
    assert_eq!(e.status().as_u16(), 400);
    assert_eq!(e.param.as_deref(), Some("api_base"));
    assert!(e.message.contains("AZURE_API_BASE"));
}

#[test]
fn ad_token_is_a_bearer_and_wins_over_the_key() {
    let d = deployment(&format!("{BASE}, azure_ad_token: tok"));
    let r = Azure.chat_request(&simple(false), &d).unwrap();
    assert_eq!(r.headers()["authorization"], "Bearer tok");
    assert!(r.headers().get("api-key").is_none());
    // From the environment only when no key is configured.
    let d = config(", api_base: 'https://r.openai.azure.com'", &|n| {
        (n == "AZURE_AD_TOKEN").then(|| "envtok".into())
    });
    let r = Azure.chat_request(&simple(false), &d).unwrap();
    assert_eq!(r.headers()["authorization"], "Bearer envtok");
}

#[test]
fn v1_base_and_a_base_with_openai_segment() {
    let d = deployment(", api_base: 'https://res.openai.azure.com/openai/v1/', api_key: k");
    let r = Azure.chat_request(&simple(false), &d).unwrap();
    assert_eq!(
        r.uri(),
        "https://res.openai.azure.com/openai/v1/chat/completions"
    );
    let d = deployment(", api_base: 'https://res.openai.azure.com/openai', api_key: k");
    let r = Azure.chat_request(&simple(false), &d).unwrap();
    assert!(r
        .uri()
        .to_string()
        .starts_with("https://res.openai.azure.com/openai/deployments/my-gpt4o/chat"));
}

#[test]
fn embeddings_and_completions_use_their_operations() {
    let d = deployment(BASE);
    let r = Azure
        .embeddings_request(&json!({"model": "g", "input": "x"}), &d)
        .unwrap();
    assert!(r
        .uri()
        .path()
        .ends_with("/openai/deployments/my-gpt4o/embeddings"));
    let r = Azure
        .completion_request(&json!({"model": "g", "prompt": "x"}), &d)
        .unwrap();
    assert!(r
        .uri()
        .path()
        .ends_with("/openai/deployments/my-gpt4o/completions"));
    let b: Value = serde_json::from_slice(r.body()).unwrap();
    assert_eq!(b["model"], "my-gpt4o");
}

#[test]
fn base_model_is_read_from_model_info_or_params() {
    let yaml = "model_list:\n  - model_name: g\n    litellm_params: {model: azure/d1, api_base: 'https://r'}\n    model_info: {base_model: azure/gpt-4o-2024-08-06}\n  - model_name: h\n    litellm_params: {model: azure/d2, api_base: 'https://r', base_model: gpt-4o-mini}\n";
    let cfg = Config::from_yaml(yaml, &|_| None).unwrap();
    assert_eq!(
        base_model(&cfg.deployments[0]),
        Some("azure/gpt-4o-2024-08-06")
    );
    assert_eq!(base_model(&cfg.deployments[1]), Some("gpt-4o-mini"));
    assert_eq!(base_model(&deployment(BASE)), None);
}

#[test]
fn content_filter_error_is_a_content_policy_violation() {
    let e = Azure.error(
        400,
        include_bytes!("../fixtures/azure/error_content_filter.json"),
    );
    assert_eq!(e.status().as_u16(), 400);
    assert_eq!(e.code.as_deref(), Some("content_policy_violation"));
    assert_eq!(e.kind.type_str(), "invalid_request_error");
    assert!(e.message.contains("content management policy"));
    // The router's content-policy fallbacks key on this code.
    let fb = crate::router::retry::RetryPolicy::default();
    assert_eq!(fb.retries_for(&e), 0);
}

#[test]
fn other_errors_keep_status_and_code() {
    let e = Azure.error(401, include_bytes!("../fixtures/azure/error_401.json"));
    assert_eq!(
        (e.status().as_u16(), e.kind.type_str()),
        (401, "authentication_error")
    );
    let e = Azure.error(404, include_bytes!("../fixtures/azure/error_404.json"));
    assert_eq!(
        (e.status().as_u16(), e.code.as_deref()),
        (404, Some("DeploymentNotFound"))
    );
    let e = Azure.error(
        400,
        include_bytes!("../fixtures/azure/error_context_length.json"),
    );
    assert_eq!(e.code.as_deref(), Some("context_length_exceeded"));
}

#[test]
fn content_filter_finish_reason_is_kept() {
    let c = Azure
        .chat_response(
            include_bytes!("../fixtures/azure/response_content_filter.json"),
            &simple(false),
            &deployment(BASE),
        )
        .unwrap();
    assert_eq!(
        c.choices[0].finish_reason.as_deref(),
        Some("content_filter")
    );
    assert!(c.choices[0].message.content.is_none());
}

#[test]
fn stream_with_prompt_filter_results_at_every_split() {
    let d = deployment(BASE);
    let new = || -> Box<dyn StreamTranslator<Chunk = crate::openai::ChatChunk>> {
        Azure.chat_stream(&simple(true), &d)
    };
    let (chunks, usage) =
        assert_split_invariant(new, include_str!("../fixtures/azure/stream_text.txt"));
    assert_eq!(content_of(&chunks), "Hello there, Ça va?");
    assert_eq!(finishes(&chunks), ["stop"]);
    // The leading prompt_filter_results event has no choices and is not forwarded.
    assert_eq!(chunks.len(), 4);
    assert_eq!(usage.unwrap().total_tokens, 13);
}

#[test]
fn old_pinned_versions_are_not_sent_stream_options() {
    let body = |params: &str| -> Value {
        let r = Azure
            .chat_request(&simple(true), &deployment(params))
            .unwrap();
        serde_json::from_slice(r.body()).unwrap()
    };
    assert!(body(&format!("{BASE}, api_version: '2024-02-01'"))
        .get("stream_options")
        .is_none());
    assert_eq!(
        body(&format!("{BASE}, api_version: '2024-08-01-preview'"))["stream_options"]
            ["include_usage"],
        true
    );
    assert_eq!(
        body(", api_base: 'https://r.openai.azure.com/openai/v1', api_key: k")["stream_options"]
            ["include_usage"],
        true
    );
}

#[test]
fn the_prefix_resolves_to_this_module() {
    let (p, m) = crate::providers::ProviderId::parse("azure/my-gpt4o").unwrap();
    assert_eq!((p.prefix(), m), ("azure", "my-gpt4o"));
    assert!(p.api().is_ok());
    assert_eq!(p.default_base(), None);
    assert_eq!(p.api_key_env(), Some("AZURE_API_KEY"));
}
