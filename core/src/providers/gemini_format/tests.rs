//! Fixture tests for the Gemini wire format, from the examples in Google's Gemini API
//! reference (generateContent, streamGenerateContent with `alt=sse`, errors).

use serde_json::{json, Value};

use super::*;
use crate::openai::{ChatChunk, ChatRequest, Usage};
use crate::providers::split_test::{self, content_of, finishes, run};
use crate::providers::test_support::{self, chat};
use crate::providers::StreamTranslator;

const STREAM_TEXT: &str = include_str!("../fixtures/gemini/stream_text.txt");
const STREAM_FUNCTION_CALL: &str = include_str!("../fixtures/gemini/stream_function_call.txt");

/// A request with one user message plus `extra` fields.
fn simple(extra: Value) -> ChatRequest {
    test_support::simple("g", extra)
}

fn body(req: &ChatRequest) -> Value {
    request_body(req).unwrap()
}

fn refused(req: &ChatRequest) -> GatewayError {
    request_body(req).unwrap_err()
}

// -------------------------------------------------------------------- request

#[test]
fn full_request_translates_as_the_fixture_says() {
    let req =
        chat(serde_json::from_str(include_str!("../fixtures/gemini/request_openai.json")).unwrap());
    let want: Value =
        serde_json::from_str(include_str!("../fixtures/gemini/request_gemini.json")).unwrap();
    assert_eq!(body(&req), want);
}

#[test]
fn plain_request_has_only_contents() {
    assert_eq!(
        body(&simple(json!({}))),
        json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})
    );
}

#[test]
fn system_only_prompt_becomes_the_user_turn() {
    let b = body(&chat(
        json!({"model": "g", "messages": [{"role": "system", "content": "Tell a joke"}]}),
    ));
    assert!(b.get("systemInstruction").is_none());
    assert_eq!(
        b["contents"],
        json!([{"role": "user", "parts": [{"text": "Tell a joke"}]}])
    );
    let e = refused(&chat(
        json!({"model": "g", "messages": [{"role": "user", "content": ""}]}),
    ));
    assert_eq!(e.param.as_deref(), Some("messages"));
}

#[test]
fn assistant_turns_are_model_turns_and_neighbours_merge() {
    let req = chat(json!({"model": "g", "messages": [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "assistant", "content": "c"},
        {"role": "user", "content": "d"}
    ]}));
    assert_eq!(
        body(&req)["contents"],
        json!([
            {"role": "user", "parts": [{"text": "a"}]},
            {"role": "model", "parts": [{"text": "b"}, {"text": "c"}]},
            {"role": "user", "parts": [{"text": "d"}]}
        ])
    );
}

#[test]
fn tool_result_without_a_matching_call_is_a_400() {
    let req = chat(json!({"model": "g", "messages": [
        {"role": "user", "content": "hi"},
        {"role": "tool", "tool_call_id": "call_9", "content": "x"}
    ]}));
    assert_eq!(
        refused(&req).param.as_deref(),
        Some("messages[1].tool_call_id")
    );
    // Ids may repeat across turns: the latest call with the id names the function.
    let req = chat(json!({"model": "g", "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "tool_calls": [{"id": "call_0", "type": "function", "function": {"name": "old", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_0", "content": "1"},
        {"role": "assistant", "tool_calls": [{"id": "call_0", "type": "function", "function": {"name": "new", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_0", "content": "2"}
    ]}));
    assert_eq!(
        body(&req)["contents"][4]["parts"][0]["functionResponse"]["name"],
        "new"
    );
}

#[test]
fn bad_tool_arguments_name_the_call() {
    let req = chat(json!({"model": "g", "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}]}
    ]}));
    assert_eq!(
        refused(&req).param.as_deref(),
        Some("messages[1].tool_calls[0].function.arguments")
    );
}

#[test]
fn media_parts() {
    let part = |p: Value| -> Result<Value, GatewayError> {
        request_body(&chat(
            json!({"model": "g", "messages": [{"role": "user", "content": [p]}]}),
        ))
        .map(|b| b["contents"][0]["parts"][0].clone())
    };
    assert_eq!(
        part(json!({"type": "image_url", "image_url": "gs://bucket/clip.mp4"})).unwrap(),
        json!({"fileData": {"mimeType": "video/mp4", "fileUri": "gs://bucket/clip.mp4"}})
    );
    // Without a known extension an image URL is taken as JPEG.
    assert_eq!(
        part(json!({"type": "image_url", "image_url": {"url": "https://x/img"}})).unwrap()
            ["fileData"]["mimeType"],
        "image/jpeg"
    );
    assert_eq!(
        part(json!({"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE"}}))
            .unwrap(),
        json!({"inlineData": {"mimeType": "application/pdf", "data": "JVBE"}})
    );
    assert_eq!(
        part(json!({"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}}))
            .unwrap(),
        json!({"inlineData": {"mimeType": "audio/wav", "data": "UklG"}})
    );
    let e = part(json!({"type": "file", "file": {"file_id": "https://x/doc"}})).unwrap_err();
    assert_eq!(e.param.as_deref(), Some("messages[0].content[0].file"));
    let e = part(json!({"type": "image_url", "image_url": "data:image/png,abc"})).unwrap_err();
    assert_eq!(e.param.as_deref(), Some("messages[0].content[0].image_url"));
    let e = part(json!({"type": "image_url", "image_url": "ftp://x/a.png"})).unwrap_err();
    assert_eq!(e.status().as_u16(), 400);
    let e = part(json!({"type": "video", "video": {}})).unwrap_err();
    assert_eq!(e.param.as_deref(), Some("messages[0].content[0].type"));
}

#[test]
fn tool_choice_mappings() {
    let tools = json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}}}}]);
    let config =
        |c: Value| body(&simple(json!({"tools": tools, "tool_choice": c})))["toolConfig"].clone();
    assert_eq!(
        config(json!("auto")),
        json!({"functionCallingConfig": {"mode": "AUTO"}})
    );
    assert_eq!(
        config(json!("none")),
        json!({"functionCallingConfig": {"mode": "NONE"}})
    );
    assert_eq!(
        config(json!("required")),
        json!({"functionCallingConfig": {"mode": "ANY"}})
    );
    let e = refused(&simple(json!({"tools": tools, "tool_choice": "sometimes"})));
    assert_eq!(e.param.as_deref(), Some("tool_choice"));
    // Without tools, no toolConfig is sent.
    assert!(body(&simple(json!({"tool_choice": "none"})))
        .get("toolConfig")
        .is_none());
}

#[test]
fn json_object_and_thinking() {
    let b = body(&simple(
        json!({"response_format": {"type": "json_object"}, "reasoning_effort": "low"}),
    ));
    assert_eq!(
        b["generationConfig"]["responseMimeType"],
        "application/json"
    );
    assert!(b["generationConfig"].get("responseSchema").is_none());
    assert_eq!(
        b["generationConfig"]["thinkingConfig"],
        json!({"thinkingBudget": 1024, "includeThoughts": true})
    );
    let b = body(&simple(
        json!({"thinking": {"type": "enabled", "budget_tokens": 500}}),
    ));
    assert_eq!(
        b["generationConfig"]["thinkingConfig"]["thinkingBudget"],
        500
    );
    let b = body(&simple(json!({"reasoning_effort": "none"})));
    assert_eq!(
        b["generationConfig"]["thinkingConfig"],
        json!({"thinkingBudget": 0, "includeThoughts": false})
    );
    for bad in [
        json!({"reasoning_effort": "max"}),
        json!({"top_k": -1}),
        json!({"seed": "x"}),
        json!({"response_format": {"type": "xml"}}),
        json!({"thinking": {"type": "enabled"}}),
    ] {
        assert_eq!(
            refused(&simple(bad.clone())).status().as_u16(),
            400,
            "{bad}"
        );
    }
}

#[test]
fn penalties_logprobs_and_safety_settings_pass_through() {
    let safety = json!([{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]);
    let b = body(&simple(json!({
        "presence_penalty": 0.5, "frequency_penalty": -0.5, "logprobs": true, "top_logprobs": 3,
        "safety_settings": safety
    })));
    let c = &b["generationConfig"];
    assert_eq!(c["presencePenalty"], 0.5);
    assert_eq!(c["frequencyPenalty"], -0.5);
    assert_eq!(c["responseLogprobs"], true);
    assert_eq!(c["logprobs"], 3);
    assert_eq!(b["safetySettings"], safety);
}

#[test]
fn supported_params_cover_what_is_translated() {
    for k in [
        "tools",
        "tool_choice",
        "top_k",
        "n",
        "response_format",
        "reasoning_effort",
    ] {
        assert!(SUPPORTED_PARAMS.contains(&k), "{k}");
    }
    assert!(!SUPPORTED_PARAMS.contains(&"logit_bias"));
}

// ------------------------------------------------------------------- response

fn response(fixture: &str) -> ChatCompletion {
    chat_completion(fixture.as_bytes()).unwrap()
}

#[test]
fn text_response() {
    let c = response(include_str!("../fixtures/gemini/response_text.json"));
    assert_eq!(c.model, "gemini-2.0-flash");
    assert!(c.id.is_empty(), "the gateway assigns the id");
    let choice = &c.choices[0];
    assert_eq!(
        choice.message.content.as_deref(),
        Some("AI learns patterns from data to make predictions.")
    );
    assert_eq!(choice.finish_reason.as_deref(), Some("stop"));
    assert!(choice.message.tool_calls.is_none());
    assert_eq!(c.usage.unwrap(), Usage::new(8, 10));
}

#[test]
fn function_call_response_with_thoughts_and_cache() {
    let c = response(include_str!(
        "../fixtures/gemini/response_function_call.json"
    ));
    let m = &c.choices[0].message;
    assert_eq!(m.content.as_deref(), Some("Let me check both."));
    assert_eq!(
        m.extra["reasoning_content"],
        "The user wants the weather in two cities."
    );
    let calls = m.tool_calls.as_ref().unwrap();
    assert_eq!(calls[0].id, "call_0__thought__CiQBcsjafA==");
    assert_eq!(calls[1].id, "call_1");
    assert_eq!(calls[0].function.name, "get_weather");
    let args: Value = serde_json::from_str(&calls[0].function.arguments).unwrap();
    assert_eq!(args, json!({"location": "Paris", "unit": "celsius"}));
    assert_eq!(c.choices[0].finish_reason.as_deref(), Some("tool_calls"));
    let u = c.usage.unwrap();
    assert_eq!(
        (u.prompt_tokens, u.completion_tokens, u.total_tokens),
        (120, 75, 195)
    );
    assert_eq!(u.prompt_tokens_details.unwrap().cached_tokens, 64);
    assert_eq!(u.completion_tokens_details.unwrap().reasoning_tokens, 45);
}

#[test]
fn blocked_prompt_is_a_content_filter_answer() {
    let c = response(include_str!("../fixtures/gemini/response_blocked.json"));
    assert_eq!(c.choices.len(), 1);
    assert!(c.choices[0].message.content.is_none());
    assert_eq!(
        c.choices[0].finish_reason.as_deref(),
        Some("content_filter")
    );
    assert_eq!(c.usage.unwrap().prompt_tokens, 9);
}

#[test]
fn finish_reasons_map() {
    for (reason, want) in [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("OTHER", "stop"),
        ("SOMETHING_NEW", "stop"),
    ] {
        let body = json!({"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": reason}]});
        let c = response(&body.to_string());
        assert_eq!(
            c.choices[0].finish_reason.as_deref(),
            Some(want),
            "{reason}"
        );
    }
}

#[test]
fn several_candidates_are_several_choices() {
    let body = json!({"candidates": [
        {"content": {"parts": [{"text": "a"}]}, "finishReason": "STOP"},
        {"content": {"parts": [{"functionCall": {"name": "f"}}]}, "finishReason": "STOP", "index": 1}
    ]});
    let c = response(&body.to_string());
    assert_eq!(c.choices[1].index, 1);
    let call = &c.choices[1].message.tool_calls.as_ref().unwrap()[0];
    assert_eq!(
        (call.id.as_str(), call.function.arguments.as_str()),
        ("call_0", "{}")
    );
    assert_eq!(c.choices[1].finish_reason.as_deref(), Some("tool_calls"));
}

#[test]
fn unreadable_or_error_bodies_are_errors_not_panics() {
    for bad in [
        "<html>",
        r#"{"candidates": "nope"}"#,
        r#"{"candidates": [{"content": {"parts": [{"text": 5}]}}]}"#,
    ] {
        assert_eq!(
            chat_completion(bad.as_bytes())
                .unwrap_err()
                .status()
                .as_u16(),
            502,
            "{bad}"
        );
    }
    let e = chat_completion(include_bytes!("../fixtures/gemini/error_503.json")).unwrap_err();
    assert_eq!(e.status().as_u16(), 503);
}

// --------------------------------------------------------------------- stream

fn new_stream() -> Box<dyn StreamTranslator<Chunk = ChatChunk>> {
    Box::new(GeminiStream::new())
}

/// Feeds `bytes` in two pieces split at `split`; the chunks as JSON, the result, the usage.
fn run_stream(bytes: &[u8], split: usize) -> (Vec<Value>, Result<(), GatewayError>, Option<Usage>) {
    let r = run(new_stream(), bytes, split);
    (r.chunks, r.result, r.usage)
}

/// Every split point gives the same chunks as the whole stream; with LF and with the CRLF
/// framing Google sends.
fn assert_split_invariant(stream: &str) -> (Vec<Value>, Option<Usage>) {
    let lf = split_test::assert_split_invariant(new_stream, stream);
    let crlf = split_test::assert_split_invariant(new_stream, stream.replace('\n', "\r\n"));
    assert_eq!(crlf, lf, "CRLF framing");
    lf
}

#[test]
fn text_stream_at_every_split() {
    let (chunks, usage) = assert_split_invariant(STREAM_TEXT);
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": "Hello"})
    );
    assert_eq!(content_of(&chunks), "Hello! Ça va? 👋");
    assert_eq!(finishes(&chunks), ["stop"]);
    // One id and model for the whole stream: left for the gateway to stamp.
    assert!(chunks.iter().all(|c| c["id"] == "" && c["model"] == ""));
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
    assert_eq!(usage.unwrap(), Usage::new(5, 7));
}

#[test]
fn function_call_stream_at_every_split() {
    let (chunks, usage) = assert_split_invariant(STREAM_FUNCTION_CALL);
    assert_eq!(
        chunks[0]["choices"][0]["delta"]["reasoning_content"],
        "Checking the weather first."
    );
    let calls: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].as_array())
        .flatten()
        .collect();
    assert_eq!(
        *calls[0],
        json!({"index": 0, "id": "call_0__thought__c2ln", "type": "function",
               "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris\"}"}})
    );
    assert_eq!(calls[1]["index"], 1);
    assert_eq!(calls[1]["id"], "call_1");
    assert_eq!(content_of(&chunks), "");
    assert_eq!(finishes(&chunks), ["tool_calls"]);
    let u = usage.unwrap();
    assert_eq!((u.prompt_tokens, u.completion_tokens), (40, 30));
    assert_eq!(u.prompt_tokens_details.unwrap().cached_tokens, 32);
    assert_eq!(u.completion_tokens_details.unwrap().reasoning_tokens, 12);
}

#[test]
fn stream_without_a_finish_reason_is_cut() {
    let cut = &STREAM_TEXT[..STREAM_TEXT.rfind("data:").unwrap()];
    let (chunks, res, usage) = run_stream(cut.as_bytes(), 0);
    assert_eq!(res.unwrap_err().code.as_deref(), Some("stream_interrupted"));
    assert_eq!(content_of(&chunks), "Hello! Ça va? ");
    assert_eq!(usage.unwrap().completion_tokens, 4);
    let (_, res, usage) = run_stream(b"", 0);
    assert!(res.is_err());
    assert!(usage.is_none());
}

#[test]
fn blocked_prompt_stream_finishes_with_content_filter() {
    let frame = format!(
        "data: {}\r\n\r\n",
        include_str!("../fixtures/gemini/response_blocked.json").replace('\n', "")
    );
    let (chunks, res, _) = run_stream(frame.as_bytes(), 0);
    res.unwrap();
    assert_eq!(finishes(&chunks), ["content_filter"]);
}

#[test]
fn error_frame_is_an_error() {
    let stream = format!(
        "{}data: {{\"error\": {{\"code\": 503, \"message\": \"The model is overloaded.\", \"status\": \"UNAVAILABLE\"}}}}\n\n",
        &STREAM_TEXT[..STREAM_TEXT.rfind("data:").unwrap()]
    );
    let (_, res, _) = run_stream(stream.as_bytes(), 0);
    let e = res.unwrap_err();
    assert_eq!(e.status().as_u16(), 503);
    assert_eq!(e.code.as_deref(), Some("UNAVAILABLE"));
}

#[test]
fn malformed_frames_are_502s_not_panics() {
    for data in [
        "{not json",
        r#"{"candidates": 5}"#,
        r#"{"usageMetadata": {"promptTokenCount": "x"}}"#,
    ] {
        let (_, res, _) = run_stream(format!("data: {data}\n\n").as_bytes(), 0);
        assert_eq!(res.unwrap_err().status().as_u16(), 502, "{data}");
    }
}

#[test]
fn candidates_stream_under_their_own_index() {
    let frame = |v: Value| format!("data: {v}\n\n");
    let stream = [
        frame(json!({"candidates": [{"content": {"parts": [{"text": "a"}]}, "index": 0},
                                    {"content": {"parts": [{"functionCall": {"name": "f", "args": {}}}]}, "index": 1}]})),
        frame(json!({"candidates": [{"finishReason": "STOP", "index": 0},
                                    {"finishReason": "STOP", "index": 1}]})),
    ]
    .concat();
    let (chunks, res, _) = run_stream(stream.as_bytes(), 0);
    res.unwrap();
    let by_index = |i: u64| -> Vec<&Value> {
        chunks
            .iter()
            .filter(|c| c["choices"][0]["index"] == i)
            .collect()
    };
    assert_eq!(by_index(0)[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(by_index(1)[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(
        by_index(0).last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
    assert_eq!(
        by_index(1).last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );
}

// --------------------------------------------------------------------- errors

#[test]
fn google_errors_map_to_openai_statuses() {
    for (status, fixture, kind, code) in [
        (
            400,
            include_str!("../fixtures/gemini/error_400.json"),
            "invalid_request_error",
            "INVALID_ARGUMENT",
        ),
        (
            403,
            include_str!("../fixtures/gemini/error_403.json"),
            "permission_error",
            "PERMISSION_DENIED",
        ),
        (
            404,
            include_str!("../fixtures/gemini/error_404.json"),
            "invalid_request_error",
            "NOT_FOUND",
        ),
        (
            429,
            include_str!("../fixtures/gemini/error_429.json"),
            "rate_limit_error",
            "RESOURCE_EXHAUSTED",
        ),
        (
            500,
            include_str!("../fixtures/gemini/error_500.json"),
            "api_error",
            "INTERNAL",
        ),
        (
            503,
            include_str!("../fixtures/gemini/error_503.json"),
            "api_error",
            "UNAVAILABLE",
        ),
    ] {
        let e = google_error(status, fixture.as_bytes());
        assert_eq!(e.status().as_u16(), status, "{fixture}");
        assert_eq!(e.kind.type_str(), kind, "{fixture}");
        assert_eq!(e.code.as_deref(), Some(code));
        let want: Value = serde_json::from_str(fixture).unwrap();
        assert_eq!(e.message, want["error"]["message"]);
    }
}

#[test]
fn invalid_api_key_is_an_authentication_error() {
    let e = google_error(
        400,
        include_bytes!("../fixtures/gemini/error_400_api_key.json"),
    );
    assert_eq!(e.status().as_u16(), 401);
    assert_eq!(e.kind.type_str(), "authentication_error");
}

#[test]
fn token_limit_is_a_context_window_error() {
    let e = google_error(
        400,
        include_bytes!("../fixtures/gemini/error_context_length.json"),
    );
    assert_eq!(e.status().as_u16(), 400);
    assert_eq!(e.code.as_deref(), Some("context_length_exceeded"));
}

#[test]
fn vertex_array_errors_and_non_json_bodies() {
    let wrapped = format!("[{}]", include_str!("../fixtures/gemini/error_429.json"));
    let e = google_error(429, wrapped.as_bytes());
    assert_eq!(e.code.as_deref(), Some("RESOURCE_EXHAUSTED"));
    let e = google_error(502, b"<html>bad gateway</html>");
    assert_eq!(e.status().as_u16(), 502);
    assert!(e.message.contains("bad gateway"));
}
