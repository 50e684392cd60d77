//! Fixtures from Anthropic's Messages API documentation examples.

use super::*;

fn chat(body: Value) -> ChatRequest {
    check_required(&body).expect("valid");
    to_chat(&body).expect("translates")
}

fn as_json(req: &ChatRequest) -> Value {
    serde_json::to_value(req).unwrap()
}

fn refused(body: Value) -> GatewayError {
    check_required(&body)
        .and_then(|_| to_chat(&body).map(|_| ()))
        .unwrap_err()
}

#[test]
fn basic_text_request() {
    let v = as_json(&chat(json!({
        "model": "claude-sonnet-4-5", "max_tokens": 1024,
        "messages": [{"role": "user", "content": "Hello, world"}]
    })));
    assert_eq!(v["model"], "claude-sonnet-4-5");
    assert_eq!(v["max_tokens"], 1024);
    assert_eq!(
        v["messages"],
        json!([{"role": "user", "content": "Hello, world"}])
    );
    assert!(v.get("stream").is_none());
}

#[test]
fn system_as_string_and_as_blocks() {
    let v = as_json(&chat(json!({
        "model": "m", "max_tokens": 10, "system": "Be brief.",
        "messages": [{"role": "user", "content": "hi"}]
    })));
    assert_eq!(
        v["messages"][0],
        json!({"role": "system", "content": "Be brief."})
    );
    let v = as_json(&chat(json!({
        "model": "m", "max_tokens": 10,
        "system": [{"type": "text", "text": "You are Claude."},
                   {"type": "text", "text": "Long context", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "hi"}]
    })));
    assert_eq!(
        v["messages"][0]["content"],
        json!([{"type": "text", "text": "You are Claude."},
               {"type": "text", "text": "Long context", "cache_control": {"type": "ephemeral"}}])
    );
    assert_eq!(
        refused(
            json!({"model": "m", "max_tokens": 1, "system": [{"type": "image"}],
                       "messages": [{"role": "user", "content": "x"}]})
        )
        .param
        .as_deref(),
        Some("system")
    );
}

#[test]
fn images_base64_and_url() {
    let v = as_json(&chat(json!({
        "model": "m", "max_tokens": 10,
        "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}},
            {"type": "image", "source": {"type": "url", "url": "https://upload.wikimedia.org/a.jpg"}},
            {"type": "text", "text": "Describe these."}
        ]}]
    })));
    let parts = &v["messages"][0]["content"];
    assert_eq!(
        parts[0],
        json!({"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}})
    );
    assert_eq!(
        parts[1]["image_url"]["url"],
        "https://upload.wikimedia.org/a.jpg"
    );
    assert_eq!(parts[2]["text"], "Describe these.");
    let e = refused(
        json!({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png"}}]}]}),
    );
    assert!(
        e.message.contains("messages.0.content.0.source.data"),
        "{e}"
    );
    assert_eq!(e.status().as_u16(), 400);
}

#[test]
fn documents_become_files_or_text() {
    let v = as_json(&chat(json!({
        "model": "m", "max_tokens": 10,
        "messages": [{"role": "user", "content": [
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBER"}},
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain"}}
        ]}]
    })));
    let parts = &v["messages"][0]["content"];
    assert_eq!(
        parts[0]["file"]["file_data"],
        "data:application/pdf;base64,JVBER"
    );
    assert_eq!(parts[1], json!({"type": "text", "text": "plain"}));
}

/// The weather example from Anthropic's tool-use guide, second request.
#[test]
fn tool_use_and_tool_result_round_trip() {
    let v = as_json(&chat(json!({
        "model": "m", "max_tokens": 1024,
        "tools": [{"name": "get_weather", "description": "Get the current weather in a given location",
                   "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}],
        "messages": [
            {"role": "user", "content": "What is the weather like in San Francisco?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "I'll check."},
                {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"location": "San Francisco, CA"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "15 degrees"},
                {"type": "text", "text": "And tomorrow?"}
            ]}
        ]
    })));
    assert_eq!(
        v["tools"][0],
        json!({"type": "function", "function": {"name": "get_weather",
            "description": "Get the current weather in a given location",
            "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}})
    );
    let m = &v["messages"];
    assert_eq!(m[1]["role"], "assistant");
    assert_eq!(m[1]["content"], "I'll check.");
    assert_eq!(m[1]["tool_calls"][0]["id"], "toolu_01A");
    assert_eq!(m[1]["tool_calls"][0]["function"]["name"], "get_weather");
    assert_eq!(
        m[1]["tool_calls"][0]["function"]["arguments"],
        r#"{"location":"San Francisco, CA"}"#
    );
    // The tool answer comes right after the call; the turn's text after it.
    assert_eq!(
        m[2],
        json!({"role": "tool", "content": "15 degrees", "tool_call_id": "toolu_01A"})
    );
    assert_eq!(m[3]["role"], "user");
    assert_eq!(m[3]["content"], "And tomorrow?");
    assert_eq!(m.as_array().unwrap().len(), 4);
}

#[test]
fn tool_result_blocks_keep_text_and_move_images_to_the_user_turn() {
    let v = as_json(&chat(json!({
        "model": "m", "max_tokens": 10,
        "messages": [
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "shot", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "is_error": false, "content": [
                {"type": "text", "text": "a"}, {"type": "text", "text": "b"},
                {"type": "image", "source": {"type": "url", "url": "http://x/y.png"}}
            ]}]}
        ]
    })));
    let m = &v["messages"];
    assert_eq!(m[0]["content"], Value::Null);
    assert_eq!(m[1]["content"], "a\nb");
    assert_eq!(m[2]["content"][0]["image_url"]["url"], "http://x/y.png");
}

#[test]
fn tool_choice_variants() {
    let with = |choice: Value| {
        as_json(&chat(json!({
            "model": "m", "max_tokens": 1, "tool_choice": choice,
            "tools": [{"name": "f", "input_schema": {"type": "object"}}],
            "messages": [{"role": "user", "content": "x"}]
        })))
    };
    assert_eq!(with(json!({"type": "auto"}))["tool_choice"], "auto");
    assert_eq!(with(json!({"type": "any"}))["tool_choice"], "required");
    assert_eq!(with(json!({"type": "none"}))["tool_choice"], "none");
    let forced = with(json!({"type": "tool", "name": "f", "disable_parallel_tool_use": true}));
    assert_eq!(
        forced["tool_choice"],
        json!({"type": "function", "function": {"name": "f"}})
    );
    assert_eq!(forced["parallel_tool_calls"], false);
    assert!(with(json!({"type": "auto"}))
        .get("parallel_tool_calls")
        .is_none());
    let e = refused(
        json!({"model": "m", "max_tokens": 1, "tool_choice": {"type": "sometimes"},
                           "messages": [{"role": "user", "content": "x"}]}),
    );
    assert_eq!(e.param.as_deref(), Some("tool_choice"));
    let e = refused(
        json!({"model": "m", "max_tokens": 1, "tool_choice": {"type": "tool"},
                           "messages": [{"role": "user", "content": "x"}]}),
    );
    assert!(e.message.contains("tool_choice.name"));
}

#[test]
fn sampling_stop_metadata_and_stream() {
    let v = as_json(&chat(json!({
        "model": "m", "max_tokens": 5, "temperature": 0.2, "top_p": 0.9, "top_k": 40,
        "stop_sequences": ["END", "STOP"], "metadata": {"user_id": "u-1"}, "stream": true,
        "messages": [{"role": "user", "content": "x"}]
    })));
    assert_eq!(v["temperature"], 0.2);
    assert_eq!(v["top_p"], 0.9);
    assert_eq!(v["top_k"], 40);
    assert_eq!(v["stop"], json!(["END", "STOP"]));
    assert_eq!(v["user"], "u-1");
    assert_eq!(v["stream"], true);
    assert_eq!(v["stream_options"], json!({"include_usage": true}));
}

#[test]
fn thinking_goes_as_is_or_as_reasoning_effort() {
    let req = chat(json!({
        "model": "m", "max_tokens": 5000, "thinking": {"type": "enabled", "budget_tokens": 2048},
        "top_k": 3, "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
        "metadata": {"user_id": "u-1"},
        "messages": [{"role": "user", "content": "x"}]
    }));
    // OpenAI's wire format: effort, no top_k.
    let mut openai = req.clone();
    fit_to_provider(&mut openai, None);
    let v = as_json(&openai);
    assert_eq!(v["reasoning_effort"], "medium");
    assert!(v.get("thinking").is_none() && v.get("top_k").is_none());
    assert_eq!(v["parallel_tool_calls"], false);
    // A provider that takes thinking and top_k itself (Gemini, Bedrock).
    let mut gemini = req.clone();
    fit_to_provider(
        &mut gemini,
        Some(&["thinking", "top_k", "reasoning_effort"]),
    );
    let v = as_json(&gemini);
    assert_eq!(v["thinking"]["budget_tokens"], 2048);
    assert_eq!(v["top_k"], 3);
    assert!(v.get("reasoning_effort").is_none() && v.get("parallel_tool_calls").is_none());
    // One that takes neither.
    let mut plain = req;
    fit_to_provider(&mut plain, Some(&["temperature"]));
    let v = as_json(&plain);
    assert!(v.get("thinking").is_none() && v.get("reasoning_effort").is_none());
    assert!(v.get("user").is_none());
    assert_eq!(as_json(&openai)["user"], "u-1");
    assert_eq!(effort_for(&json!({"budget_tokens": 1024})), "low");
    assert_eq!(effort_for(&json!({"budget_tokens": 16000})), "high");
    let off = chat(
        json!({"model": "m", "max_tokens": 5, "thinking": {"type": "disabled"},
                          "messages": [{"role": "user", "content": "x"}]}),
    );
    assert!(!off.extra.contains_key("thinking"));
}

#[test]
fn assistant_thinking_blocks_are_kept() {
    let v = as_json(&chat(json!({"model": "m", "max_tokens": 5, "messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "hmm", "signature": "sig"},
                                          {"type": "text", "text": "ok"}]},
        {"role": "user", "content": "y"}
    ]})));
    assert_eq!(v["messages"][1]["thinking_blocks"][0]["signature"], "sig");
    assert_eq!(v["messages"][1]["content"], "ok");
}

#[test]
fn required_fields_and_bad_shapes_are_400s() {
    let msgs = json!([{"role": "user", "content": "x"}]);
    let cases = [
        (json!({"model": "m", "messages": msgs}), "max_tokens"),
        (
            json!({"model": "m", "max_tokens": 0, "messages": msgs}),
            "max_tokens",
        ),
        (
            json!({"model": "m", "max_tokens": 1, "messages": []}),
            "messages",
        ),
        (json!({"model": "m", "max_tokens": 1}), "messages"),
        (
            json!({"model": "m", "max_tokens": 1, "messages": [{"role": "system", "content": "x"}]}),
            "messages",
        ),
        (
            json!({"model": "m", "max_tokens": 1, "messages": [{"role": "user"}]}),
            "messages",
        ),
        (
            json!({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [{"type": "web_search_tool_result"}]}]}),
            "messages",
        ),
        (
            json!({"model": "m", "max_tokens": 1, "messages": msgs, "tools": [{"type": "web_search_20250305", "name": "web_search"}]}),
            "tools",
        ),
        (
            json!({"model": "m", "max_tokens": 1, "messages": msgs, "temperature": "hot"}),
            "temperature",
        ),
        (
            json!({"model": "m", "max_tokens": 1, "messages": msgs, "stop_sequences": [1]}),
            "stop_sequences",
        ),
        (
            json!({"model": "m", "max_tokens": 1, "messages": msgs, "thinking": true}),
            "thinking",
        ),
        (json!({"max_tokens": 1, "messages": msgs}), "model"),
    ];
    for (body, param) in cases {
        let e = refused(body.clone());
        assert_eq!(e.status().as_u16(), 400, "{body}");
        assert_eq!(e.param.as_deref(), Some(param), "{body}: {e}");
    }
}

#[test]
fn gateway_fields_reach_the_pipeline() {
    let req = chat(
        json!({"model": "m", "max_tokens": 5, "mock_response": "canned",
                          "messages": [{"role": "user", "content": "x"}]}),
    );
    assert_eq!(req.extra["mock_response"], "canned");
}
