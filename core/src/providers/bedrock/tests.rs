//! Bedrock glue: endpoints, credentials, signing, config, errors, and the Converse request
//! and response fixtures (built from AWS's documented examples).

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;

use serde_json::{json, Value};

use super::*;
use crate::config::Config;
use crate::openai::ChatRequest;
use crate::ports::{BodyStream, HttpClient, TransportError};
use crate::providers::test_support::{self, chat, FakeClock};

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

fn load(params: &str, env: &[(&str, &str)]) -> Result<Config, crate::config::ConfigError> {
    let yaml =
        format!("model_list:\n  - model_name: claude\n    litellm_params: {{model: {params}}}\n");
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_yaml(&yaml, &|k| env.get(k).cloned())
}

fn deployment(params: &str) -> Deployment {
    let cfg = load(params, &[]).unwrap();
    (*cfg.deployments[0]).clone()
}

/// A SigV4 deployment of Claude 3 Haiku in us-east-1.
fn signed() -> Deployment {
    deployment(&format!(
        "bedrock/anthropic.claude-3-haiku-20240307-v1:0, aws_access_key_id: AKIDEXAMPLE, aws_secret_access_key: '{SECRET}', aws_region_name: us-east-1"
    ))
}

fn simple(extra: Value) -> ChatRequest {
    test_support::simple("claude", extra)
}

fn body(req: &ChatRequest) -> Value {
    let r = Bedrock.chat_request(req, &signed()).unwrap();
    serde_json::from_slice(r.body()).unwrap()
}

fn refused(req: &ChatRequest) -> GatewayError {
    Bedrock.chat_request(req, &signed()).unwrap_err()
}

struct NoHttp;

#[async_trait::async_trait]
impl HttpClient for NoHttp {
    async fn send(
        &self,
        _request: http::Request<Bytes>,
        _timeout_ms: u64,
    ) -> Result<http::Response<BodyStream>, TransportError> {
        Err(TransportError::Connect("no network in tests".into()))
    }
}

fn authorize(request: http::Request<Bytes>, d: &Deployment) -> http::Request<Bytes> {
    let ctx = SendContext {
        clock: &FakeClock(AtomicU64::new(1_440_938_160_000)),
        http: &NoHttp,
    };
    futures_executor::block_on(Bedrock.authorize(request, d, &ctx)).unwrap()
}

// ------------------------------------------------------------------------ endpoints

#[test]
fn converse_url_encodes_the_model_id() {
    let r = Bedrock.chat_request(&simple(json!({})), &signed()).unwrap();
    assert_eq!(
        r.uri(),
        "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
    );
    assert_eq!(r.headers()["accept"], "application/json");
    assert_eq!(r.headers()["content-type"], "application/json");
    let r = Bedrock
        .chat_request(&simple(json!({"stream": true})), &signed())
        .unwrap();
    assert!(r.uri().path().ends_with("%3A0/converse-stream"));
    assert_eq!(r.headers()["accept"], "application/vnd.amazon.eventstream");
}

#[test]
fn litellm_model_forms_resolve() {
    let keys = "aws_access_key_id: A, aws_secret_access_key: S, aws_region_name: eu-west-1";
    for (model, path) in [
        (
            "bedrock/converse/meta.llama3-1-8b-instruct-v1:0",
            "/model/meta.llama3-1-8b-instruct-v1%3A0/converse",
        ),
        (
            "bedrock/us.anthropic.claude-3-5-sonnet-20241022-v2:0",
            "/model/us.anthropic.claude-3-5-sonnet-20241022-v2%3A0/converse",
        ),
        (
            "bedrock/arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.meta.llama3-2-1b-instruct-v1:0",
            "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.meta.llama3-2-1b-instruct-v1%3A0/converse",
        ),
    ] {
        let d = deployment(&format!("{model}, {keys}"));
        let r = Bedrock.chat_request(&simple(json!({})), &d).unwrap();
        assert_eq!(r.uri().host(), Some("bedrock-runtime.eu-west-1.amazonaws.com"));
        assert_eq!(r.uri().path(), path, "{model}");
    }
}

#[test]
fn endpoint_overrides() {
    let keys = "aws_access_key_id: A, aws_secret_access_key: S";
    let d = deployment(&format!(
        "bedrock/m, {keys}, api_base: 'http://127.0.0.1:9/'"
    ));
    let r = Bedrock.chat_request(&simple(json!({})), &d).unwrap();
    assert_eq!(r.uri(), "http://127.0.0.1:9/model/m/converse");
    let d = deployment(&format!(
        "bedrock/m, {keys}, api_base: 'http://a', aws_bedrock_runtime_endpoint: 'https://vpce.example'"
    ));
    let r = Bedrock.chat_request(&simple(json!({})), &d).unwrap();
    assert_eq!(r.uri(), "https://vpce.example/model/m/converse");
    // No region anywhere: LiteLLM's default.
    let d = deployment(&format!("bedrock/m, {keys}"));
    let r = Bedrock.chat_request(&simple(json!({})), &d).unwrap();
    assert_eq!(
        r.uri().host(),
        Some("bedrock-runtime.us-west-2.amazonaws.com")
    );
}

// ---------------------------------------------------------------------- credentials

#[test]
fn requests_are_signed_at_send_time_over_the_encoded_path() {
    let d = signed();
    let r = Bedrock.chat_request(&simple(json!({})), &d).unwrap();
    assert!(r.headers().get("authorization").is_none());
    let r = authorize(r, &d);
    let auth = r.headers()["authorization"].to_str().unwrap();
    assert!(auth.starts_with(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/bedrock/aws4_request, SignedHeaders=accept;content-type;host;x-amz-date, Signature="
    ));
    assert_eq!(r.headers()["x-amz-date"], "20150830T123600Z");
    assert!(r.headers().get("x-amz-security-token").is_none());
    // The secret never leaves as such.
    assert!(!format!("{:?}", r.headers()).contains(SECRET));
}

#[test]
fn session_tokens_and_bearer_keys() {
    let d = deployment(
        "bedrock/m, aws_access_key_id: A, aws_secret_access_key: S, aws_session_token: T",
    );
    let r = authorize(Bedrock.chat_request(&simple(json!({})), &d).unwrap(), &d);
    assert_eq!(r.headers()["x-amz-security-token"], "T");
    // A Bedrock API key is a bearer token and replaces signing.
    let d = deployment("bedrock/m, api_key: brk-key, aws_region_name: us-east-1");
    let r = authorize(Bedrock.chat_request(&simple(json!({})), &d).unwrap(), &d);
    assert_eq!(r.headers()["authorization"], "Bearer brk-key");
    assert!(r.headers().get("x-amz-date").is_none());
}

#[test]
fn credentials_come_from_the_environment_at_load() {
    let env = [
        ("AWS_ACCESS_KEY_ID", "ENVKEY"),
        ("AWS_SECRET_ACCESS_KEY", "envsecret"),
        ("AWS_SESSION_TOKEN", "envtoken"),
        ("AWS_REGION", "ap-south-1"),
        ("AWS_DEFAULT_REGION", "eu-central-1"),
    ];
    let cfg = load("bedrock/m", &env).unwrap();
    let d = &cfg.deployments[0];
    assert_eq!(d.params.extra["aws_access_key_id"], "ENVKEY");
    let token = d.params.aws_session_token.as_ref().map(|t| t.expose());
    assert_eq!(token, Some("envtoken"));
    assert_eq!(d.params.extra["aws_region_name"], "ap-south-1");
    let r = authorize(Bedrock.chat_request(&simple(json!({})), d).unwrap(), d);
    let auth = r.headers()["authorization"].to_str().unwrap();
    assert!(auth.contains("Credential=ENVKEY/20150830/ap-south-1/bedrock/aws4_request"));
    // Configured keys win, and the environment's session token is not mixed into them.
    let cfg = load(
        "bedrock/m, aws_access_key_id: CFG, aws_secret_access_key: s, aws_region_name: us-east-2",
        &env,
    )
    .unwrap();
    let p = &cfg.deployments[0].params;
    assert_eq!(p.extra["aws_access_key_id"], "CFG");
    assert!(p.aws_session_token.is_none());
    assert_eq!(p.extra["aws_region_name"], "us-east-2");
    // AWS_BEARER_TOKEN_BEDROCK is the api_key LiteLLM reads.
    let cfg = load("bedrock/m", &[("AWS_BEARER_TOKEN_BEDROCK", "brk")]).unwrap();
    assert_eq!(
        cfg.deployments[0]
            .params
            .api_key
            .as_ref()
            .map(|k| k.expose()),
        Some("brk")
    );
}

#[test]
fn missing_credentials_are_config_errors_naming_the_field() {
    let e = load("bedrock/m", &[]).unwrap_err();
    assert_eq!(e.path, "model_list[0].litellm_params.aws_access_key_id");
    assert!(e.message.contains("AWS_ACCESS_KEY_ID"));
    let e = load(
        "bedrock/m, aws_access_key_id: A",
        &[("AWS_SECRET_ACCESS_KEY", "hidden-value")],
    )
    .unwrap_err();
    assert_eq!(e.path, "model_list[0].litellm_params.aws_secret_access_key");
    assert!(!e.to_string().contains("hidden-value"));
    let e = load("bedrock/m, aws_role_name: r", &[]).unwrap_err();
    assert_eq!(e.path, "model_list[0].litellm_params.aws_role_name");
    let e = load(
        "bedrock/m, aws_access_key_id: 5, aws_secret_access_key: s",
        &[],
    )
    .unwrap_err();
    assert_eq!(e.path, "model_list[0].litellm_params.aws_access_key_id");
}

#[test]
fn a_deployment_without_keys_is_a_401_at_send_time() {
    let mut d = signed();
    d.params.aws_secret_access_key = None;
    let r = Bedrock.chat_request(&simple(json!({})), &d).unwrap();
    let ctx = SendContext {
        clock: &FakeClock(AtomicU64::new(0)),
        http: &NoHttp,
    };
    let e = futures_executor::block_on(Bedrock.authorize(r, &d, &ctx)).unwrap_err();
    assert_eq!(e.status().as_u16(), 401);
    assert!(e.message.contains("aws_secret_access_key"));
}

// -------------------------------------------------------------------------- request

#[test]
fn full_request_translates_as_the_fixture_says() {
    let req = chat(
        serde_json::from_str(include_str!("../fixtures/bedrock/request_openai.json")).unwrap(),
    );
    let want: Value =
        serde_json::from_str(include_str!("../fixtures/bedrock/request_converse.json")).unwrap();
    assert_eq!(body(&req), want);
}

#[test]
fn minimal_request_sends_only_messages() {
    assert_eq!(
        body(&simple(json!({}))),
        json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}]})
    );
}

#[test]
fn http_images_are_refused_as_bedrock_needs_bytes() {
    let req = chat(
        json!({"model": "c", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
        ]}]}),
    );
    let e = refused(&req);
    assert_eq!(e.status().as_u16(), 400);
    assert_eq!(e.param.as_deref(), Some("messages[0].content[0].image_url"));
    assert!(e.message.contains("data URL"));
    let svg = chat(
        json!({"model": "c", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": "data:image/svg+xml;base64,PHN2Zz4="}
        ]}]}),
    );
    assert!(refused(&svg).message.contains("png, jpeg, gif or webp"));
}

#[test]
fn pdf_files_become_documents() {
    let req = chat(
        json!({"model": "c", "messages": [{"role": "user", "content": [
            {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE"}},
            {"type": "text", "text": "summarise"}
        ]}]}),
    );
    assert_eq!(
        body(&req)["messages"][0]["content"][0],
        json!({"document": {"format": "pdf", "name": "document 0-0", "source": {"bytes": "JVBE"}}})
    );
}

#[test]
fn tool_choices_map_and_none_needs_drop_params() {
    let tools = json!([{"type": "function", "function": {"name": "f"}}]);
    let choice = |c: Value| body(&simple(json!({"tools": tools, "tool_choice": c})));
    assert_eq!(
        choice(json!("auto"))["toolConfig"]["toolChoice"],
        json!({"auto": {}})
    );
    let named = choice(json!({"type": "function", "function": {"name": "f"}}));
    assert_eq!(
        named["toolConfig"]["toolChoice"],
        json!({"tool": {"name": "f"}})
    );
    assert_eq!(
        named["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"],
        json!({"type": "object", "properties": {}})
    );
    let e = refused(&simple(json!({"tools": tools, "tool_choice": "none"})));
    assert_eq!(e.param.as_deref(), Some("tool_choice"));
    let mut d = signed();
    d.drop_params = true;
    let r = Bedrock
        .chat_request(&simple(json!({"tools": tools, "tool_choice": "none"})), &d)
        .unwrap();
    let b: Value = serde_json::from_slice(r.body()).unwrap();
    assert!(b["toolConfig"].get("toolChoice").is_none());
}

#[test]
fn tool_history_without_tools_gets_a_placeholder_tool() {
    let req = chat(json!({"model": "c", "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "f", "arguments": ""}}]},
        {"role": "tool", "tool_call_id": "t1", "content": ""}
    ]}));
    let b = body(&req);
    assert_eq!(
        b["toolConfig"]["tools"][0]["toolSpec"]["name"],
        "dummy_tool"
    );
    assert_eq!(
        b["messages"][1]["content"][0]["toolUse"],
        json!({"toolUseId": "t1", "name": "f", "input": {}})
    );
    assert_eq!(
        b["messages"][2]["content"][0]["toolResult"],
        json!({"toolUseId": "t1", "content": [{"text": ""}]})
    );
}

#[test]
fn json_mode_forces_the_json_tool() {
    let b = body(&simple(json!({"response_format": {"type": "json_object"}})));
    assert_eq!(
        b["toolConfig"],
        json!({"tools": [{"toolSpec": {"name": "json_tool_call", "inputSchema": {"json": {"type": "object"}}}}],
               "toolChoice": {"tool": {"name": "json_tool_call"}}})
    );
}

#[test]
fn thinking_and_top_k_go_to_additional_fields() {
    let b = body(&simple(json!({"reasoning_effort": "low", "top_k": 5})));
    assert_eq!(
        b["additionalModelRequestFields"],
        json!({"top_k": 5, "thinking": {"type": "enabled", "budget_tokens": 1024}})
    );
    // maxTokens leaves room for the answer on top of the thinking budget.
    assert_eq!(b["inferenceConfig"]["maxTokens"], 1024 + 4096);
    // Nova takes topK inside its own inferenceConfig; other families have none.
    let keys = "aws_access_key_id: A, aws_secret_access_key: S";
    let nova = deployment(&format!("bedrock/us.amazon.nova-pro-v1:0, {keys}"));
    let r = Bedrock
        .chat_request(&simple(json!({"top_k": 5})), &nova)
        .unwrap();
    let b: Value = serde_json::from_slice(r.body()).unwrap();
    assert_eq!(
        b["additionalModelRequestFields"],
        json!({"inferenceConfig": {"topK": 5}})
    );
    let llama = deployment(&format!("bedrock/meta.llama3-8b-instruct-v1:0, {keys}"));
    let r = Bedrock
        .chat_request(&simple(json!({"top_k": 5})), &llama)
        .unwrap();
    let b: Value = serde_json::from_slice(r.body()).unwrap();
    assert!(b.get("additionalModelRequestFields").is_none());
}

#[test]
fn bad_requests_name_the_parameter() {
    assert_eq!(
        refused(&simple(json!({"n": 2}))).param.as_deref(),
        Some("n")
    );
    assert_eq!(
        refused(&simple(json!({"top_k": "x"}))).param.as_deref(),
        Some("top_k")
    );
    let only_system = chat(json!({"model": "c", "messages": [{"role": "system", "content": "x"}]}));
    assert_eq!(refused(&only_system).param.as_deref(), Some("messages"));
    let bad_args = chat(json!({"model": "c", "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "tool_calls": [{"id": "t", "type": "function", "function": {"name": "f", "arguments": "[1]"}}]}
    ]}));
    assert_eq!(
        refused(&bad_args).param.as_deref(),
        Some("messages[1].tool_calls[0].function.arguments")
    );
}

// ------------------------------------------------------------------------- response

fn response(fixture: &str, req: &ChatRequest) -> ChatCompletion {
    Bedrock
        .chat_response(fixture.as_bytes(), req, &signed())
        .unwrap()
}

#[test]
fn text_response() {
    let c = response(
        include_str!("../fixtures/bedrock/response_text.json"),
        &simple(json!({})),
    );
    let m = &c.choices[0].message;
    assert!(m
        .content
        .as_deref()
        .unwrap()
        .starts_with("Here is a list of 3 pop songs"));
    assert_eq!(c.choices[0].finish_reason.as_deref(), Some("stop"));
    let u = c.usage.unwrap();
    assert_eq!(
        (u.prompt_tokens, u.completion_tokens, u.total_tokens),
        (125, 60, 185)
    );
    assert!(u.prompt_tokens_details.is_none());
}

#[test]
fn tool_use_response_with_cache_reads() {
    let c = response(
        include_str!("../fixtures/bedrock/response_tool_use.json"),
        &simple(json!({})),
    );
    let m = &c.choices[0].message;
    assert_eq!(
        m.content.as_deref(),
        Some("I'll look up the most popular song on WZPZ.")
    );
    let calls = m.tool_calls.as_ref().unwrap();
    assert_eq!(calls[0].id, "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q");
    assert_eq!(calls[0].function.name, "top_song");
    assert_eq!(calls[0].function.arguments, r#"{"sign":"WZPZ"}"#);
    assert_eq!(c.choices[0].finish_reason.as_deref(), Some("tool_calls"));
    let u = c.usage.unwrap();
    // LiteLLM: cache reads count as prompt tokens and are reported as cached.
    assert_eq!(
        (u.prompt_tokens, u.completion_tokens, u.total_tokens),
        (1375, 52, 1427)
    );
    assert_eq!(u.prompt_tokens_details.unwrap().cached_tokens, 1000);
}

#[test]
fn reasoning_response() {
    let c = response(
        include_str!("../fixtures/bedrock/response_reasoning.json"),
        &simple(json!({})),
    );
    let m = &c.choices[0].message;
    assert_eq!(m.content.as_deref(), Some("The GCD is 21."));
    assert_eq!(m.extra["reasoning_content"], "1071 = 2 × 462 + 147");
    assert_eq!(m.extra["thinking_blocks"][0]["signature"], "EqQBCgIYAhIM");
    assert_eq!(m.extra["thinking_blocks"][1]["type"], "redacted_thinking");
}

#[test]
fn json_mode_response_becomes_content() {
    let body = json!({"output": {"message": {"role": "assistant", "content": [
        {"toolUse": {"toolUseId": "t", "name": "json_tool_call", "input": {"city": "Paris"}}}
    ]}}, "stopReason": "tool_use", "usage": {"inputTokens": 1, "outputTokens": 2, "totalTokens": 3}});
    let req = simple(json!({"response_format": {"type": "json_object"}}));
    let c = response(&body.to_string(), &req);
    assert_eq!(
        c.choices[0].message.content.as_deref(),
        Some(r#"{"city":"Paris"}"#)
    );
    assert!(c.choices[0].message.tool_calls.is_none());
    assert_eq!(c.choices[0].finish_reason.as_deref(), Some("stop"));
}

#[test]
fn stop_reasons_map_to_finish_reasons() {
    for (stop, want) in [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
        ("something_new", "stop"),
    ] {
        let body = json!({"output": {"message": {"role": "assistant", "content": []}}, "stopReason": stop});
        let c = response(&body.to_string(), &simple(json!({})));
        assert_eq!(c.choices[0].finish_reason.as_deref(), Some(want), "{stop}");
    }
}

#[test]
fn unreadable_responses_are_502s() {
    for body in [
        &b"<html>"[..],
        br#"{"output": {"message": {"content": "x"}}}"#,
    ] {
        let e = Bedrock
            .chat_response(body, &simple(json!({})), &signed())
            .unwrap_err();
        assert_eq!(e.status().as_u16(), 502);
    }
}

// --------------------------------------------------------------------------- errors

#[test]
fn upstream_errors_keep_status_and_name_the_exception() {
    for (status, body, code) in [
        (
            400,
            include_str!("../fixtures/bedrock/error_validation.json"),
            "ValidationException",
        ),
        (
            403,
            include_str!("../fixtures/bedrock/error_access_denied.json"),
            "AccessDeniedException",
        ),
        (
            429,
            include_str!("../fixtures/bedrock/error_throttling.json"),
            "ThrottlingException",
        ),
    ] {
        let e = Bedrock.error(status, body.as_bytes());
        assert_eq!(e.status().as_u16(), status);
        assert_eq!(e.code.as_deref(), Some(code));
        let want: Value = serde_json::from_str(body).unwrap();
        assert_eq!(e.message, want["message"]);
    }
    assert_eq!(
        Bedrock.error(429, b"{}").kind.type_str(),
        "rate_limit_error"
    );
    assert_eq!(
        Bedrock.error(503, br#"{"message":"x"}"#).kind.type_str(),
        "api_error"
    );
    let e = Bedrock.error(408, br#"{"message":"Model has timed out"}"#);
    assert_eq!(
        (e.status().as_u16(), e.code.as_deref()),
        (408, Some("ModelTimeoutException"))
    );
    // A body that names its type wins over the status guess.
    let e = Bedrock.error(
        400,
        br#"{"__type": "com.amazon.coral.service#ServiceQuotaExceededException", "message": "q"}"#,
    );
    assert_eq!(e.code.as_deref(), Some("ServiceQuotaExceededException"));
}

#[test]
fn too_long_inputs_are_context_window_errors() {
    let e = Bedrock.error(
        400,
        include_str!("../fixtures/bedrock/error_too_long.json").as_bytes(),
    );
    assert_eq!(e.code.as_deref(), Some("context_length_exceeded"));
    for m in [
        "prompt is too long: 210000 tokens > 200000 maximum",
        "The input token count exceeds the maximum number of tokens allowed",
        "Too many input tokens. Max input tokens: 8192",
    ] {
        let e = Bedrock.error(400, json!({"message": m}).to_string().as_bytes());
        assert_eq!(e.code.as_deref(), Some("context_length_exceeded"), "{m}");
    }
    let e = Bedrock.error(
        400,
        br#"{"message":"max_tokens exceeds the maximum allowed for this model"}"#,
    );
    assert_eq!(e.code.as_deref(), Some("ValidationException"));
}

#[test]
fn non_json_error_keeps_the_body() {
    let e = Bedrock.error(502, b"<html>bad gateway</html>");
    assert_eq!(e.status().as_u16(), 502);
    assert!(e.message.contains("bad gateway"));
}

#[test]
fn embeddings_go_to_invoke() {
    let keys = "aws_access_key_id: A, aws_secret_access_key: S, aws_region_name: us-east-1";
    let d = deployment(&format!("bedrock/amazon.titan-embed-text-v2:0, {keys}"));
    let r = Bedrock
        .embeddings_request(&json!({"model": "e", "input": "hi"}), &d)
        .unwrap();
    assert_eq!(
        r.uri(),
        "https://bedrock-runtime.us-east-1.amazonaws.com/model/amazon.titan-embed-text-v2%3A0/invoke"
    );
    let v = Bedrock
        .embeddings_response(br#"{"embedding": [0.5], "inputTextTokenCount": 1}"#, &d)
        .unwrap();
    assert_eq!(v["data"][0]["embedding"], json!([0.5]));
}
