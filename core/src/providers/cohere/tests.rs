use super::*;
use crate::config::Config;
use crate::providers::split_test::{
    assert_split_invariant, content_of, finishes, run, tool_arguments,
};
use crate::providers::test_support::{self, chat};

const STREAM_TEXT: &str = include_str!("../fixtures/cohere/stream_text.txt");
const STREAM_TOOL_CALL: &str = include_str!("../fixtures/cohere/stream_tool_call.txt");

fn deployment_with(params: &str) -> Deployment {
    test_support::deployment(
        "c",
        &format!("{{model: cohere_chat/command-r-plus-08-2024, api_key: k{params}}}"),
    )
}

fn deployment() -> Deployment {
    deployment_with("")
}

fn simple(extra: Value) -> ChatRequest {
    test_support::simple("c", extra)
}

fn body(req: &ChatRequest) -> Value {
    let r = Cohere.chat_request(req, &deployment()).unwrap();
    serde_json::from_slice(r.body()).unwrap()
}

fn stream() -> Box<dyn StreamTranslator<Chunk = ChatChunk>> {
    Cohere.chat_stream(&simple(json!({})), &deployment())
}

// ------------------------------------------------------------------------------- request

#[test]
fn request_goes_to_v2_chat_with_bearer_key() {
    let r = Cohere
        .chat_request(&simple(json!({})), &deployment())
        .unwrap();
    assert_eq!(r.uri(), "https://api.cohere.com/v2/chat");
    assert_eq!(r.headers()["authorization"], "Bearer k");
    let r = Cohere
        .chat_request(
            &simple(json!({})),
            &deployment_with(", api_base: 'http://h:1/'"),
        )
        .unwrap();
    assert_eq!(r.uri(), "http://h:1/v2/chat");
}

#[test]
fn full_request_translates_as_the_fixture_says() {
    let req =
        chat(serde_json::from_str(include_str!("../fixtures/cohere/request_openai.json")).unwrap());
    let want: Value =
        serde_json::from_str(include_str!("../fixtures/cohere/request_cohere.json")).unwrap();
    assert_eq!(body(&req), want);
}

#[test]
fn plain_request_sends_no_optional_fields() {
    let b = body(&simple(json!({})));
    assert_eq!(
        b,
        json!({"model": "command-r-plus-08-2024", "messages": [{"role": "user", "content": "hi"}]})
    );
}

#[test]
fn named_tool_choice_offers_only_that_tool() {
    let tools = json!([
        {"type": "function", "function": {"name": "a", "parameters": {"type": "object"}}},
        {"type": "function", "function": {"name": "b"}}
    ]);
    let b = body(&simple(
        json!({"tools": tools, "tool_choice": {"type": "function", "function": {"name": "b"}}}),
    ));
    assert_eq!(
        b["tools"],
        json!([{"type": "function", "function": {"name": "b"}}])
    );
    assert_eq!(b["tool_choice"], "REQUIRED");
    assert_eq!(
        body(&simple(json!({"tools": tools, "tool_choice": "none"})))["tool_choice"],
        "NONE"
    );
    assert!(
        body(&simple(json!({"tools": tools, "tool_choice": "auto"})))
            .get("tool_choice")
            .is_none()
    );
    let e = Cohere
        .chat_request(
            &simple(json!({"tools": tools, "tool_choice": {"type": "function", "function": {"name": "zz"}}})),
            &deployment(),
        )
        .unwrap_err();
    assert_eq!(e.param.as_deref(), Some("tool_choice"));
}

#[test]
fn json_modes() {
    assert_eq!(
        body(&simple(json!({"response_format": {"type": "json_object"}})))["response_format"],
        json!({"type": "json_object"})
    );
    let schema = json!({"type": "object", "properties": {"city": {"type": "string"}}});
    let b = body(&simple(
        json!({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}}),
    ));
    assert_eq!(
        b["response_format"],
        json!({"type": "json_object", "json_schema": schema})
    );
    assert!(body(&simple(json!({"response_format": {"type": "text"}})))
        .get("response_format")
        .is_none());
}

#[test]
fn bad_requests_are_400s_naming_the_field() {
    let refused = |req: ChatRequest| Cohere.chat_request(&req, &deployment()).unwrap_err();
    assert_eq!(refused(simple(json!({"n": 2}))).param.as_deref(), Some("n"));
    assert_eq!(
        refused(simple(json!({"top_k": "x"}))).param.as_deref(),
        Some("top_k")
    );
    let e = refused(chat(json!({"model": "c", "messages": [
        {"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]})));
    assert_eq!(e.param.as_deref(), Some("messages[0].content[0].type"));
    let e = refused(chat(
        json!({"model": "c", "messages": [{"role": "tool", "content": "x"}]}),
    ));
    assert_eq!(e.param.as_deref(), Some("messages[0].tool_call_id"));
    assert_eq!(e.status().as_u16(), 400);
}

#[test]
fn supported_params_cover_what_is_translated() {
    let p = Cohere.supported_chat_params().unwrap();
    for k in [
        "tools",
        "tool_choice",
        "top_k",
        "seed",
        "response_format",
        "frequency_penalty",
    ] {
        assert!(p.contains(&k), "{k}");
    }
    assert!(!p.contains(&"logprobs"));
}

// ------------------------------------------------------------------------------ response

fn response(fixture: &str) -> ChatCompletion {
    Cohere
        .chat_response(fixture.as_bytes(), &simple(json!({})), &deployment())
        .unwrap()
}

#[test]
fn text_response_with_billed_usage() {
    let c = response(include_str!("../fixtures/cohere/response_text.json"));
    assert_eq!(c.id, "c14c80c3-18eb-4519-9460-6c92edd8cfb4");
    let choice = &c.choices[0];
    assert!(choice
        .message
        .content
        .as_deref()
        .unwrap()
        .starts_with("LLMs stand for"));
    assert_eq!(choice.finish_reason.as_deref(), Some("stop"));
    let u = c.usage.unwrap();
    assert_eq!(
        (u.prompt_tokens, u.completion_tokens, u.total_tokens),
        (17, 12, 29)
    );
}

#[test]
fn tool_call_response_keeps_the_plan_as_text() {
    let c = response(include_str!("../fixtures/cohere/response_tool_call.json"));
    let m = &c.choices[0].message;
    assert_eq!(
        m.content.as_deref(),
        Some("I will search for the weather in Toronto.")
    );
    let calls = m.tool_calls.as_ref().unwrap();
    assert_eq!(calls[0].id, "get_weather_1byjy32y4hvq");
    assert_eq!(calls[0].function.name, "get_weather");
    assert_eq!(calls[0].function.arguments, r#"{"location":"Toronto"}"#);
    assert_eq!(c.choices[0].finish_reason.as_deref(), Some("tool_calls"));
    assert_eq!(c.usage.unwrap().prompt_tokens, 37);
}

#[test]
fn finish_reasons_map_and_errors_fail() {
    for (reason, want) in [
        ("COMPLETE", "stop"),
        ("STOP_SEQUENCE", "stop"),
        ("MAX_TOKENS", "length"),
        ("TOOL_CALL", "tool_calls"),
        ("SOMETHING_NEW", "stop"),
    ] {
        let b = json!({"id": "x", "finish_reason": reason, "message": {"content": []}});
        let c = response(&b.to_string());
        assert_eq!(
            c.choices[0].finish_reason.as_deref(),
            Some(want),
            "{reason}"
        );
        // No usage reported: zeros rather than a missing object.
        assert_eq!(c.usage.unwrap().total_tokens, 0);
    }
    let b = json!({"id": "x", "finish_reason": "ERROR", "message": {"content": [{"type": "text", "text": "par"}]}});
    let e = Cohere
        .chat_response(b.to_string().as_bytes(), &simple(json!({})), &deployment())
        .unwrap_err();
    assert_eq!(e.status().as_u16(), 502);
}

#[test]
fn tokens_stand_in_when_billed_units_are_missing() {
    let b = json!({"id": "x", "finish_reason": "COMPLETE", "message": {"content": [{"type": "text", "text": "a"}]},
                   "usage": {"tokens": {"input_tokens": 5.0, "output_tokens": 2.0}}});
    let u = response(&b.to_string()).usage.unwrap();
    assert_eq!((u.prompt_tokens, u.completion_tokens), (5, 2));
}

#[test]
fn unreadable_response_is_a_502() {
    for body in [&b"<html>"[..], br#"{"message": {"content": "no list"}}"#] {
        let e = Cohere
            .chat_response(body, &simple(json!({})), &deployment())
            .unwrap_err();
        assert_eq!(e.status().as_u16(), 502);
    }
}

// -------------------------------------------------------------------------------- stream

#[test]
fn text_stream_at_every_split() {
    let (chunks, usage) = assert_split_invariant(stream, STREAM_TEXT);
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    assert_eq!(chunks[0]["id"], "29f14a5a-11de-4cae-9800-25e4747408ea");
    assert_eq!(content_of(&chunks), "Hello! Ça va? 👋");
    assert_eq!(finishes(&chunks), ["stop"]);
    let u = usage.unwrap();
    assert_eq!((u.prompt_tokens, u.completion_tokens), (3, 9));
}

#[test]
fn tool_call_stream_at_every_split() {
    let (chunks, usage) = assert_split_invariant(stream, STREAM_TOOL_CALL);
    assert_eq!(content_of(&chunks), "I will search for the weather.");
    let first = chunks
        .iter()
        .find_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0))
        .unwrap();
    assert_eq!(
        *first,
        json!({"index": 0, "id": "get_weather_nsz5zm3w56q3", "type": "function",
               "function": {"name": "get_weather", "arguments": ""}})
    );
    let args: Value = serde_json::from_str(&tool_arguments(&chunks, 0)).unwrap();
    assert_eq!(args, json!({"location": "Madrid"}));
    assert_eq!(tool_arguments(&chunks, 1), r#"{"location": "Brasilia"}"#);
    assert_eq!(finishes(&chunks), ["tool_calls"]);
    assert_eq!(usage.unwrap().completion_tokens, 28);
}

#[test]
fn bare_json_lines_are_read_too() {
    // Some proxies forward the events without SSE framing, one JSON object per line.
    let bare: String = STREAM_TEXT
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|l| format!("{l}\n"))
        .collect();
    let (chunks, _) = assert_split_invariant(stream, &bare);
    assert_eq!(content_of(&chunks), "Hello! Ça va? 👋");
}

#[test]
fn cut_stream_is_an_error() {
    let cut = &STREAM_TEXT[..STREAM_TEXT.find("event: message-end").unwrap()];
    let r = run(stream(), cut.as_bytes(), 0);
    assert_eq!(
        r.result.unwrap_err().code.as_deref(),
        Some("stream_interrupted")
    );
    assert_eq!(content_of(&r.chunks), "Hello! Ça va? 👋");
    assert!(r.usage.is_none());
    assert!(run(stream(), b"", 0).result.is_err());
    // Cut in the middle of an event's data line.
    let mid = &STREAM_TEXT[..STREAM_TEXT.find("\"finish_reason\"").unwrap()];
    let r = run(stream(), mid.as_bytes(), 0);
    assert_eq!(
        r.result.unwrap_err().code.as_deref(),
        Some("stream_interrupted")
    );
}

#[test]
fn error_finish_and_error_objects_fail_the_stream() {
    let head = &STREAM_TEXT[..STREAM_TEXT.find("event: message-end").unwrap()];
    let errored = format!(
        "{head}data: {{\"type\":\"message-end\",\"delta\":{{\"finish_reason\":\"ERROR\"}}}}\n\n"
    );
    assert_eq!(
        run(stream(), errored.as_bytes(), 0)
            .result
            .unwrap_err()
            .status()
            .as_u16(),
        502
    );
    let object = format!(
        "{head}data: {{\"message\":\"too many tokens: total number of tokens exceeds\"}}\n\n"
    );
    let e = run(stream(), object.as_bytes(), 0).result.unwrap_err();
    assert_eq!(e.code.as_deref(), Some("context_length_exceeded"));
}

#[test]
fn malformed_events_are_502s_not_panics() {
    for data in [
        "{not json",
        r#"{"type": "tool-call-start", "delta": {}}"#,
        r#"{"type": "content-delta", "delta": {"message": {"content": 5}}}"#,
        r#"{"type": "message-end", "delta": {"usage": "lots"}}"#,
    ] {
        let s = format!("data: {data}\n\n");
        let r = run(stream(), s.as_bytes(), 0);
        assert_eq!(r.result.unwrap_err().status().as_u16(), 502, "{data}");
    }
}

#[test]
fn unknown_events_and_orphan_deltas_are_ignored() {
    let s = concat!(
        "data: {\"type\":\"message-start\",\"id\":\"m\"}\n\n",
        "data: {\"type\":\"citation-start\",\"index\":0,\"delta\":{}}\n\n",
        "data: {\"type\":\"tool-call-delta\",\"index\":7,\"delta\":{\"message\":{\"tool_calls\":{\"function\":{\"arguments\":\"x\"}}}}}\n\n",
        "data: {\"type\":\"some-future-event\"}\n\n",
        "data: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"COMPLETE\"}}\n\n",
    );
    let r = run(stream(), s.as_bytes(), 0);
    r.result.unwrap();
    assert_eq!(r.chunks.len(), 2);
    assert_eq!(finishes(&r.chunks), ["stop"]);
}

// ---------------------------------------------------------------------------- embeddings

#[test]
fn embeddings_request_and_response() {
    let d = deployment_with(", model_info: {}");
    let r = Cohere
        .embeddings_request(&json!({"model": "c", "input": ["hello", "goodbye"]}), &d)
        .unwrap();
    assert_eq!(r.uri(), "https://api.cohere.com/v2/embed");
    let b: Value = serde_json::from_slice(r.body()).unwrap();
    assert_eq!(
        b,
        json!({"model": "command-r-plus-08-2024", "texts": ["hello", "goodbye"],
               "input_type": "search_document", "embedding_types": ["float"]})
    );
    let r = Cohere
        .embeddings_request(
            &json!({"model": "c", "input": "q", "input_type": "search_query", "dimensions": 256}),
            &d,
        )
        .unwrap();
    let b: Value = serde_json::from_slice(r.body()).unwrap();
    assert_eq!(
        (b["input_type"].as_str(), b["output_dimension"].as_u64()),
        (Some("search_query"), Some(256))
    );
    let e = Cohere
        .embeddings_request(&json!({"model": "c", "input": [[1, 2]]}), &d)
        .unwrap_err();
    assert_eq!(e.param.as_deref(), Some("input"));

    let v = Cohere
        .embeddings_response(include_bytes!("../fixtures/cohere/embed_response.json"), &d)
        .unwrap();
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"][1]["index"], 1);
    assert_eq!(v["data"][0]["embedding"][0], 0.016296387);
    assert_eq!(v["usage"], json!({"prompt_tokens": 2, "total_tokens": 2}));
    assert_eq!(
        Cohere
            .embeddings_response(b"{}", &d)
            .unwrap_err()
            .status()
            .as_u16(),
        502
    );
}

// -------------------------------------------------------------------------------- errors

#[test]
fn upstream_errors_keep_status_and_message() {
    let e = Cohere.error(401, include_bytes!("../fixtures/cohere/error_401.json"));
    assert_eq!(
        (e.status().as_u16(), e.kind.type_str()),
        (401, "authentication_error")
    );
    assert_eq!(e.message, "invalid api token");
    let e = Cohere.error(429, include_bytes!("../fixtures/cohere/error_429.json"));
    assert_eq!(e.status().as_u16(), 429);
    assert!(e.message.starts_with("You are using a Trial key"));
    assert_eq!(
        Cohere
            .error(498, br#"{"message": "invalid token"}"#)
            .status()
            .as_u16(),
        401
    );
    let e = Cohere.error(502, b"<html>bad gateway</html>");
    assert!(e.message.contains("bad gateway"));
}

#[test]
fn too_many_tokens_is_a_context_window_error() {
    let e = Cohere.error(
        400,
        include_bytes!("../fixtures/cohere/error_too_many_tokens.json"),
    );
    assert_eq!(e.status().as_u16(), 400);
    assert_eq!(e.code.as_deref(), Some("context_length_exceeded"));
}

#[test]
fn co_api_key_is_read_when_cohere_api_key_is_not() {
    let yaml = "model_list:\n  - model_name: c\n    litellm_params: {model: cohere/command-r}\n";
    let cfg = Config::from_yaml(yaml, &|n| (n == "CO_API_KEY").then(|| "co".to_string())).unwrap();
    assert_eq!(
        cfg.deployments[0]
            .params
            .api_key
            .as_ref()
            .map(|k| k.expose()),
        Some("co")
    );
    assert_eq!(cfg.deployments[0].provider.prefix(), "cohere");
}
