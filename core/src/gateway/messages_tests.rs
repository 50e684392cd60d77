//! `/v1/messages` through the whole pipeline, with a scripted upstream: the Anthropic
//! passthrough leaves the body alone, other providers get OpenAI's form, answers and errors
//! come back in Anthropic's shape, and retries and fallbacks work as for chat.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{json, Value};

use super::tests::{body_of, gateway_on, run, FixedClock, ScriptedClient, OPENAI_OK};
use super::*;

type Answer = (u16, Vec<&'static str>);

const CONFIG: &str = r#"
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o-2024-08-06, api_key: sk-up, api_base: "http://up.test/v1"}
  - model_name: claude
    litellm_params: {model: anthropic/claude-3-5-sonnet-20240620, api_key: sk-ant, api_base: "http://ant.test"}
  - model_name: flaky
    litellm_params: {model: openai/flaky, api_key: sk-up, api_base: "http://flaky.test/v1"}
router_settings:
  num_retries: 1
  fallbacks: [{flaky: [gpt-4o]}]
general_settings:
  master_key: sk-master
"#;

fn gateway(answers: Vec<Answer>) -> (Gateway, Arc<ScriptedClient>) {
    let upstream = ScriptedClient::new(
        answers
            .into_iter()
            .map(|(status, parts)| Ok((status, vec![], parts.into_iter().map(Ok).collect())))
            .collect(),
    );
    let gw = gateway_on(CONFIG, upstream.clone(), Arc::new(FixedClock));
    (gw, upstream)
}

/// As the Anthropic SDK sends it: the key in `x-api-key`.
fn messages(body: &Value) -> http::Request<Bytes> {
    http::Request::post("/v1/messages")
        .header("x-api-key", "sk-master")
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "prompt-caching-2024-07-31")
        .body(Bytes::from(body.to_string()))
        .unwrap()
}

fn hello(model: &str) -> Value {
    json!({"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": "hello"}]})
}

fn sent_body(upstream: &ScriptedClient, i: usize) -> Value {
    serde_json::from_slice(upstream.seen.lock().unwrap()[i].body()).unwrap()
}

const ANTHROPIC_OK: &str = r#"{"id":"msg_01","type":"message","role":"assistant","model":"claude-3-5-sonnet-20240620","content":[{"type":"text","text":"hi there"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":2}}"#;

#[test]
fn anthropic_deployment_gets_the_body_unchanged() {
    run(async {
        let (gw, upstream) = gateway(vec![(200, vec![ANTHROPIC_OK])]);
        let body = json!({
            "model": "claude", "max_tokens": 64, "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hello"}]}],
            "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 2}],
            "metadata": {"user_id": "u-1", "tags": ["gateway-only"]},
            "num_retries": 3, "top_k": 5, "service_tier": "auto"
        });
        let (status, text) = body_of(gw.handle(messages(&body)).await).await;
        assert_eq!(status, 200, "{text}");
        let mut expected = body.clone();
        expected["model"] = json!("claude-3-5-sonnet-20240620");
        expected["metadata"] = json!({"user_id": "u-1"});
        expected.as_object_mut().unwrap().remove("num_retries");
        assert_eq!(sent_body(&upstream, 0), expected);
        let seen = upstream.seen.lock().unwrap();
        assert_eq!(seen[0].uri(), "http://ant.test/v1/messages");
        assert_eq!(seen[0].headers()["x-api-key"], "sk-ant");
        assert_eq!(seen[0].headers()["anthropic-version"], "2023-06-01");
        assert_eq!(
            seen[0].headers()["anthropic-beta"],
            "prompt-caching-2024-07-31"
        );
        // The answer is the upstream's, with the requested model name.
        let mut want: Value = serde_json::from_str(ANTHROPIC_OK).unwrap();
        want["model"] = json!("claude");
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), want);
    });
}

#[test]
fn anthropic_stream_comes_back_unchanged_but_for_the_model() {
    run(async {
        let stream = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-3-5-sonnet-20240620\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\nevent: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\nevent: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}\n\nevent: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\nevent: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":1}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
        let (gw, upstream) = gateway(vec![(200, vec![&stream[..100], &stream[100..]])]);
        let mut body = hello("claude");
        body["stream"] = json!(true);
        let resp = gw.handle(messages(&body)).await;
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        let (status, text) = body_of(resp).await;
        assert_eq!(status, 200);
        assert_eq!(sent_body(&upstream, 0)["stream"], true);
        assert_eq!(
            text,
            stream.replace("claude-3-5-sonnet-20240620", "claude"),
            "only the model differs"
        );
    });
}

#[test]
fn other_providers_get_openai_form_and_answer_in_anthropic_form() {
    run(async {
        let (gw, upstream) = gateway(vec![(200, vec![OPENAI_OK])]);
        let mut body = hello("gpt-4o");
        body["system"] = json!("Be brief.");
        body["stop_sequences"] = json!(["END"]);
        body["top_k"] = json!(3);
        let (status, text) = body_of(gw.handle(messages(&body)).await).await;
        assert_eq!(status, 200, "{text}");
        let sent = sent_body(&upstream, 0);
        assert_eq!(
            upstream.seen.lock().unwrap()[0].uri(),
            "http://up.test/v1/chat/completions"
        );
        assert_eq!(sent["model"], "gpt-4o-2024-08-06");
        assert_eq!(
            sent["messages"][0],
            json!({"role": "system", "content": "Be brief."})
        );
        assert_eq!(
            sent["messages"][1],
            json!({"role": "user", "content": "hello"})
        );
        assert_eq!(sent["max_tokens"], 64);
        assert_eq!(sent["stop"], json!(["END"]));
        assert!(sent.get("top_k").is_none(), "OpenAI has no top_k");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["type"], "message");
        assert_eq!(v["model"], "gpt-4o");
        assert_eq!(v["id"], "msg_up");
        assert_eq!(v["content"], json!([{"type": "text", "text": "hi there"}]));
        assert_eq!(v["stop_reason"], "end_turn");
        assert_eq!(v["usage"]["input_tokens"], 3);
        assert_eq!(v["usage"]["output_tokens"], 2);
    });
}

#[test]
fn other_providers_stream_as_anthropic_events() {
    run(async {
        let (gw, upstream) = gateway(vec![(
            200,
            vec![
                "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"hi\"},\"finish_reason\":null}]}\n\n",
                "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"total_tokens\":4}}\n\ndata: [DONE]\n\n",
            ],
        )]);
        let mut body = hello("gpt-4o");
        body["stream"] = json!(true);
        let (status, text) = body_of(gw.handle(messages(&body)).await).await;
        assert_eq!(status, 200);
        let sent = sent_body(&upstream, 0);
        assert_eq!(sent["stream"], true);
        assert_eq!(sent["stream_options"]["include_usage"], true);
        let names: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("event: "))
            .collect();
        assert_eq!(
            names,
            [
                "message_start",
                "ping",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert!(text.contains("\"model\":\"gpt-4o\""));
        assert!(text.contains("\"output_tokens\":1"));
    });
}

fn error_of(text: &str) -> (String, String) {
    let v: Value = serde_json::from_str(text).unwrap();
    assert_eq!(v["type"], "error", "{text}");
    (
        v["error"]["type"].as_str().unwrap().to_string(),
        v["error"]["message"].as_str().unwrap().to_string(),
    )
}

#[test]
fn errors_come_back_in_anthropic_shape_with_their_status() {
    run(async {
        let (gw, _) = gateway(vec![]);
        let no_key = http::Request::post("/messages")
            .body(Bytes::from(hello("gpt-4o").to_string()))
            .unwrap();
        let (status, text) = body_of(gw.handle(no_key).await).await;
        assert_eq!(
            (status, error_of(&text).0.as_str()),
            (401, "authentication_error")
        );

        // As on the chat route (and LiteLLM's): an unknown model is a 400.
        let (status, text) = body_of(gw.handle(messages(&hello("nope"))).await).await;
        assert_eq!(
            (status, error_of(&text).0.as_str()),
            (400, "invalid_request_error")
        );

        let mut no_max = hello("gpt-4o");
        no_max.as_object_mut().unwrap().remove("max_tokens");
        let (status, text) = body_of(gw.handle(messages(&no_max)).await).await;
        let (ty, msg) = error_of(&text);
        assert_eq!((status, ty.as_str()), (400, "invalid_request_error"));
        assert!(msg.contains("max_tokens"), "{msg}");

        let bad_json = http::Request::post("/v1/messages")
            .header("x-api-key", "sk-master")
            .body(Bytes::from_static(b"{not json"))
            .unwrap();
        let (status, text) = body_of(gw.handle(bad_json).await).await;
        assert_eq!(
            (status, error_of(&text).0.as_str()),
            (400, "invalid_request_error")
        );

        let get = http::Request::get("/v1/messages")
            .header("x-api-key", "sk-master")
            .body(Bytes::new())
            .unwrap();
        let (status, text) = body_of(gw.handle(get).await).await;
        assert_eq!(
            (status, error_of(&text).0.as_str()),
            (405, "invalid_request_error")
        );

        // Anthropic-only features on another provider: a 400 naming them, no upstream call.
        let mut server_tool = hello("gpt-4o");
        server_tool["tools"] = json!([{"type": "web_search_20250305", "name": "web_search"}]);
        let (status, text) = body_of(gw.handle(messages(&server_tool)).await).await;
        assert_eq!(status, 400, "{text}");
        assert!(error_of(&text).1.contains("server tools"));
    });
}

#[test]
fn upstream_errors_keep_status_and_anthropic_types() {
    run(async {
        let overloaded =
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        let (gw, _) = gateway(vec![(529, vec![overloaded]), (529, vec![overloaded])]);
        let (status, text) = body_of(gw.handle(messages(&hello("claude"))).await).await;
        assert_eq!(status, 529);
        assert_eq!(
            error_of(&text),
            ("overloaded_error".into(), "Overloaded".into())
        );

        let limited = r#"{"error":{"message":"slow down","type":"rate_limit_error","param":null,"code":null}}"#;
        let (gw, _) = gateway(vec![(429, vec![limited]), (429, vec![limited])]);
        let (status, text) = body_of(gw.handle(messages(&hello("gpt-4o"))).await).await;
        assert_eq!(status, 429);
        assert_eq!(error_of(&text).0, "rate_limit_error");
    });
}

#[test]
fn retries_and_fallbacks_apply_as_for_chat() {
    run(async {
        let broken =
            r#"{"error":{"message":"down","type":"server_error","param":null,"code":null}}"#;
        // flaky fails, is retried once, then its fallback group answers.
        let (gw, upstream) = gateway(vec![
            (500, vec![broken]),
            (500, vec![broken]),
            (200, vec![OPENAI_OK]),
        ]);
        let resp = gw.handle(messages(&hello("flaky"))).await;
        assert_eq!(resp.headers()["x-litellm-attempted-fallbacks"], "1");
        let (status, text) = body_of(resp).await;
        assert_eq!(status, 200, "{text}");
        let seen = upstream.seen.lock().unwrap();
        let hosts: Vec<_> = seen
            .iter()
            .map(|r| r.uri().host().unwrap().to_string())
            .collect();
        assert_eq!(hosts, ["flaky.test", "flaky.test", "up.test"]);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["type"], "message");
        assert_eq!(v["model"], "gpt-4o");
    });
}

#[test]
fn tool_round_trip_through_openai() {
    run(async {
        let called = r#"{"id":"c2","choices":[{"index":0,"finish_reason":"tool_calls","message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]}}],"usage":{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13}}"#;
        let (gw, upstream) = gateway(vec![(200, vec![called]), (200, vec![OPENAI_OK])]);
        let tools = json!([{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
        let mut first = hello("gpt-4o");
        first["tools"] = tools.clone();
        first["tool_choice"] = json!({"type": "any"});
        let (_, text) = body_of(gw.handle(messages(&first)).await).await;
        let answer: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(answer["stop_reason"], "tool_use");
        let tool_use = &answer["content"][0];
        assert_eq!(tool_use["input"], json!({"city": "Paris"}));
        assert_eq!(sent_body(&upstream, 0)["tool_choice"], "required");

        let second = json!({"model": "gpt-4o", "max_tokens": 64, "tools": tools, "messages": [
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": answer["content"]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use["id"], "content": "sunny"}]}
        ]});
        let (status, _) = body_of(gw.handle(messages(&second)).await).await;
        assert_eq!(status, 200);
        let sent = sent_body(&upstream, 1);
        assert_eq!(sent["messages"][1]["tool_calls"][0]["id"], "call_1");
        assert_eq!(
            sent["messages"][2],
            json!({"role": "tool", "content": "sunny", "tool_call_id": "call_1"})
        );
    });
}
