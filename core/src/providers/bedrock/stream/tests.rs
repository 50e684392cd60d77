//! ConverseStream fixtures, framed as Bedrock sends them and fed split at every byte.

use serde_json::{json, Value};

use super::*;
use crate::providers::bedrock::eventstream::encode;
use crate::providers::split_test::{self, content_of, finishes, run, tool_arguments};

const STREAM_TEXT: &str = include_str!("../../fixtures/bedrock/stream_text.json");
const STREAM_TOOL_USE: &str = include_str!("../../fixtures/bedrock/stream_tool_use.json");
const STREAM_REASONING: &str = include_str!("../../fixtures/bedrock/stream_reasoning.json");

fn event(kind: &str, payload: &Value) -> Vec<u8> {
    encode(
        &[
            (":event-type", kind),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload.to_string().as_bytes(),
    )
}

/// A fixture (`[[event-type, payload], ...]`) as the event-stream bytes Bedrock sends.
fn framed(fixture: &str) -> Vec<u8> {
    let events: Vec<(String, Value)> = serde_json::from_str(fixture).unwrap();
    events.iter().flat_map(|(k, p)| event(k, p)).collect()
}

fn exception(kind: &str, message: &str) -> Vec<u8> {
    encode(
        &[
            (":exception-type", kind),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        json!({ "message": message }).to_string().as_bytes(),
    )
}

fn stream(json_mode: bool) -> Box<dyn StreamTranslator<Chunk = ChatChunk>> {
    Box::new(ConverseStream::new(json_mode))
}

/// Feeds `bytes` in two pieces split at `split`; the chunks as JSON and the result.
fn run_stream(
    bytes: &[u8],
    split: usize,
    json_mode: bool,
) -> (Vec<Value>, Result<(), GatewayError>, Option<Usage>) {
    let r = run(stream(json_mode), bytes, split);
    (r.chunks, r.result, r.usage)
}

/// Every split point gives the same chunks as the whole stream in one piece.
fn assert_split_invariant(bytes: &[u8], json_mode: bool) -> (Vec<Value>, Option<Usage>) {
    split_test::assert_split_invariant(|| stream(json_mode), bytes)
}

#[test]
fn text_stream_at_every_split() {
    let (chunks, usage) = assert_split_invariant(&framed(STREAM_TEXT), false);
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    assert_eq!(content_of(&chunks), "Hello! Ça va? 👋");
    assert_eq!(finishes(&chunks), ["stop"]);
    let u = usage.unwrap();
    assert_eq!(
        (u.prompt_tokens, u.completion_tokens, u.total_tokens),
        (25, 15, 40)
    );
}

#[test]
fn tool_use_stream_at_every_split() {
    let (chunks, usage) = assert_split_invariant(&framed(STREAM_TOOL_USE), false);
    assert_eq!(
        content_of(&chunks),
        "Okay, let's check the weather for San Francisco, CA:"
    );
    let first_call = chunks
        .iter()
        .find_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0))
        .unwrap();
    // Block 1 is the first tool call: OpenAI index 0.
    assert_eq!(
        *first_call,
        json!({"index": 0, "id": "tooluse_Ci9VWkMUTQOs5T-bpwUmBg", "type": "function",
               "function": {"name": "get_weather", "arguments": ""}})
    );
    let args: Value = serde_json::from_str(&tool_arguments(&chunks, 0)).unwrap();
    assert_eq!(
        args,
        json!({"location": "San Francisco, CA", "unit": "fahrenheit"})
    );
    assert_eq!(tool_arguments(&chunks, 1), r#"{"tz": "PST"}"#);
    assert_eq!(finishes(&chunks), ["tool_calls"]);
    let u = usage.unwrap();
    assert_eq!((u.prompt_tokens, u.completion_tokens), (572, 89));
    assert_eq!(u.prompt_tokens_details.unwrap().cached_tokens, 100);
}

#[test]
fn reasoning_stream_reports_reasoning_content() {
    let (chunks, _) = assert_split_invariant(&framed(STREAM_REASONING), false);
    let reasoning: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["reasoning_content"].as_str())
        .collect();
    assert_eq!(reasoning, "1071 = 2 × 462 + 147");
    assert!(chunks.iter().any(|c| {
        c["choices"][0]["delta"]["thinking_blocks"][0]["signature"] == "EqQBCgIYAhIM"
    }));
    assert_eq!(content_of(&chunks), "The GCD is 21.");
}

#[test]
fn json_mode_stream_streams_content() {
    let stream: Vec<u8> = [
        event("messageStart", &json!({"role": "assistant"})),
        event("contentBlockStart", &json!({"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": "t", "name": "json_tool_call"}}})),
        event("contentBlockDelta", &json!({"contentBlockIndex": 0, "delta": {"toolUse": {"input": "{\"city\": "}}})),
        event("contentBlockDelta", &json!({"contentBlockIndex": 0, "delta": {"toolUse": {"input": "\"Paris\"}"}}})),
        event("messageStop", &json!({"stopReason": "tool_use"})),
        event("metadata", &json!({"usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2}})),
    ]
    .concat();
    let (chunks, _) = assert_split_invariant(&stream, true);
    assert_eq!(content_of(&chunks), r#"{"city": "Paris"}"#);
    assert!(chunks
        .iter()
        .all(|c| c["choices"][0]["delta"].get("tool_calls").is_none()));
    assert_eq!(finishes(&chunks), ["stop"]);
}

#[test]
fn cut_streams_are_errors() {
    let whole = framed(STREAM_TEXT);
    // Cut inside a frame, and cut cleanly between frames before messageStop / metadata.
    let events: Vec<(String, Value)> = serde_json::from_str(STREAM_TEXT).unwrap();
    let before_metadata: Vec<u8> = events[..events.len() - 1]
        .iter()
        .flat_map(|(k, p)| event(k, p))
        .collect();
    for cut in [&whole[..whole.len() - 3], &before_metadata[..], &b""[..]] {
        let (_, res, _) = run_stream(cut, 0, false);
        assert_eq!(res.unwrap_err().code.as_deref(), Some("stream_interrupted"));
    }
}

#[test]
fn exceptions_become_errors_with_their_status() {
    let events: Vec<(String, Value)> = serde_json::from_str(STREAM_TEXT).unwrap();
    let head: Vec<u8> = events[..2].iter().flat_map(|(k, p)| event(k, p)).collect();
    for (kind, status, code) in [
        ("throttlingException", 429, "ThrottlingException"),
        ("validationException", 400, "ValidationException"),
        (
            "modelStreamErrorException",
            424,
            "ModelStreamErrorException",
        ),
        (
            "serviceUnavailableException",
            503,
            "ServiceUnavailableException",
        ),
        ("internalServerException", 500, "InternalServerException"),
    ] {
        let stream = [head.clone(), exception(kind, "boom")].concat();
        let (chunks, res, _) = run_stream(&stream, 0, false);
        let e = res.unwrap_err();
        assert_eq!(e.status().as_u16(), status, "{kind}");
        assert_eq!(e.code.as_deref(), Some(code));
        assert_eq!(e.message, "boom");
        assert_eq!(content_of(&chunks), "Hello");
    }
    let stream = exception(
        "validationException",
        "Input is too long for requested model.",
    );
    let (_, res, _) = run_stream(&stream, 0, false);
    assert_eq!(
        res.unwrap_err().code.as_deref(),
        Some("context_length_exceeded")
    );
    let protocol = encode(
        &[
            (":message-type", "error"),
            (":error-code", "InternalFailure"),
            (":error-message", "nope"),
        ],
        b"",
    );
    let (_, res, _) = run_stream(&protocol, 0, false);
    assert_eq!(res.unwrap_err().message, "nope");
}

#[test]
fn bad_upstream_data_is_a_502_not_a_panic() {
    let mut corrupt = framed(STREAM_TEXT);
    corrupt[20] ^= 0xff;
    let not_json = event("contentBlockDelta", &json!("x"));
    let mut garbage = encode(&[(":event-type", "contentBlockDelta")], b"{not json");
    garbage.extend(not_json);
    for bytes in [corrupt, garbage, b"HTTP/1.1 500 oops\r\n\r\n".to_vec()] {
        let (_, res, _) = run_stream(&bytes, 0, false);
        assert_eq!(res.unwrap_err().status().as_u16(), 502);
    }
}

#[test]
fn unknown_events_and_orphan_deltas_are_tolerated() {
    let stream: Vec<u8> = [
        event("messageStart", &json!({"role": "assistant"})),
        event("someFutureEvent", &json!({"x": 1})),
        event(
            "contentBlockDelta",
            &json!({"contentBlockIndex": 7, "delta": {"toolUse": {"input": "lost"}}}),
        ),
        event(
            "contentBlockDelta",
            &json!({"contentBlockIndex": 0, "delta": {"citation": {}}}),
        ),
        event("messageStop", &json!({"stopReason": "end_turn"})),
        event(
            "metadata",
            &json!({"usage": {"inputTokens": 3, "outputTokens": 4, "totalTokens": 7}}),
        ),
    ]
    .concat();
    let (chunks, res, usage) = run_stream(&stream, 0, false);
    res.unwrap();
    assert_eq!(chunks.len(), 2);
    assert_eq!(usage.unwrap().total_tokens, 7);
}
