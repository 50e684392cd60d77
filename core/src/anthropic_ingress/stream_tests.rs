//! The converter fed real OpenAI SSE through the OpenAI translator, split at every byte.

use super::*;
use crate::ports::TransportError;
use crate::providers::openai_compatible::OpenAiChatStream;
use futures_util::StreamExt;

fn source() -> Box<dyn EventSource> {
    Box::new(TranslatedEvents::new(
        Box::<OpenAiChatStream>::default(),
        ChunkToEvents::new("msg_fallback".into(), "my-group".into()),
    ))
}

/// Feeds `bytes` in two pieces; returns the framed output and the result.
fn run(bytes: &[u8], split: usize) -> (String, Result<(), GatewayError>) {
    let mut s = source();
    let mut out = BytesMut::new();
    let r = s
        .feed(&bytes[..split], &mut out)
        .and_then(|_| s.feed(&bytes[split..], &mut out))
        .and_then(|_| s.finish(&mut out));
    (String::from_utf8(out.to_vec()).unwrap(), r)
}

/// Every split gives the same events as the whole stream; returns them as (name, data).
fn events_at_every_split(stream: &str) -> Vec<(String, Value)> {
    let bytes = stream.as_bytes();
    let (whole, r) = run(bytes, 0);
    r.expect("the whole stream converts");
    for split in 1..=bytes.len() {
        let (s, r) = run(bytes, split);
        assert!(r.is_ok(), "split {split}: {r:?}");
        assert_eq!(s, whole, "split {split}");
    }
    parse(&whole)
}

fn parse(framed: &str) -> Vec<(String, Value)> {
    framed
        .split("\n\n")
        .filter(|f| !f.is_empty())
        .map(|f| {
            let (ev, data) = f.split_once('\n').expect("event and data lines");
            let name = ev.strip_prefix("event: ").expect("event line").to_string();
            let data: Value =
                serde_json::from_str(data.strip_prefix("data: ").expect("data line")).unwrap();
            assert_eq!(data["type"], name.as_str(), "event name matches its type");
            (name, data)
        })
        .collect()
}

fn names(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(n, _)| n.as_str()).collect()
}

fn chunk(delta: &str, finish: &str) -> String {
    format!(
        "data: {{\"id\":\"chatcmpl-7\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish}}}]}}\n\n"
    )
}

const USAGE: &str = "data: {\"id\":\"chatcmpl-7\",\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":7,\"total_tokens\":18}}\n\ndata: [DONE]\n\n";

#[test]
fn text_stream_gives_the_documented_sequence() {
    let stream = [
        chunk(r#"{"role":"assistant","content":""}"#, "null"),
        chunk(r#"{"content":"Hello"}"#, "null"),
        chunk(r#"{"content":" wörld"}"#, "null"),
        chunk("{}", "\"stop\""),
    ]
    .concat()
        + USAGE;
    let ev = events_at_every_split(&stream);
    assert_eq!(
        names(&ev),
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let start = &ev[0].1["message"];
    assert_eq!(start["id"], "msg_7");
    assert_eq!(start["model"], "my-group");
    assert_eq!(start["role"], "assistant");
    assert_eq!(start["content"], json!([]));
    assert_eq!(
        ev[2].1["content_block"],
        json!({"type": "text", "text": ""})
    );
    assert_eq!(
        ev[4].1["delta"],
        json!({"type": "text_delta", "text": " wörld"})
    );
    assert_eq!(ev[6].1["delta"]["stop_reason"], "end_turn");
    assert_eq!(ev[6].1["usage"]["output_tokens"], 7);
    assert_eq!(ev[6].1["usage"]["input_tokens"], 11);
}

#[test]
fn text_and_two_tool_calls_interleaved_keep_their_indices() {
    let stream = [
        chunk(r#"{"role":"assistant","content":"Let me "}"#, "null"),
        chunk(r#"{"content":"check."}"#, "null"),
        chunk(
            r#"{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"get_weather","arguments":""}}]}"#,
            "null",
        ),
        chunk(r#"{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]}"#, "null"),
        chunk(
            r#"{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"get_time","arguments":"{}"}}]}"#,
            "null",
        ),
        // A late fragment of the first call.
        chunk(r#"{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]}"#, "null"),
        chunk("{}", "\"tool_calls\""),
    ]
    .concat()
        + USAGE;
    let ev = events_at_every_split(&stream);
    let summary: Vec<(String, Value)> = ev
        .iter()
        .map(|(n, d)| (n.clone(), d.get("index").cloned().unwrap_or(Value::Null)))
        .collect();
    let expect = [
        ("message_start", Value::Null),
        ("ping", Value::Null),
        ("content_block_start", json!(0)),
        ("content_block_delta", json!(0)),
        ("content_block_delta", json!(0)),
        ("content_block_stop", json!(0)),
        ("content_block_start", json!(1)),
        ("content_block_delta", json!(1)),
        ("content_block_stop", json!(1)),
        ("content_block_start", json!(2)),
        ("content_block_delta", json!(2)),
        ("content_block_delta", json!(1)),
        ("content_block_stop", json!(2)),
        ("message_delta", Value::Null),
        ("message_stop", Value::Null),
    ];
    let expect: Vec<(String, Value)> = expect
        .into_iter()
        .map(|(n, i)| (n.to_string(), i))
        .collect();
    assert_eq!(summary, expect);
    assert_eq!(
        ev[6].1["content_block"],
        json!({"type": "tool_use", "id": "call_a", "name": "get_weather", "input": {}})
    );
    assert_eq!(ev[9].1["content_block"]["id"], "call_b");
    // Each call's fragments concatenate to its arguments.
    let args = |index: u64| -> String {
        ev.iter()
            .filter(|(n, d)| n == "content_block_delta" && d["index"] == index)
            .map(|(_, d)| d["delta"]["partial_json"].as_str().unwrap())
            .collect()
    };
    assert_eq!(args(1), r#"{"city":"Paris"}"#);
    assert_eq!(args(2), "{}");
    assert_eq!(ev[13].1["delta"]["stop_reason"], "tool_use");
}

#[test]
fn reasoning_becomes_a_thinking_block_before_the_text() {
    let stream = [
        chunk(
            r#"{"role":"assistant","reasoning_content":"Let me think"}"#,
            "null",
        ),
        chunk(
            r#"{"thinking_blocks":[{"type":"thinking","thinking":"","signature":"sig-1"}]}"#,
            "null",
        ),
        chunk(r#"{"content":"42"}"#, "null"),
        chunk("{}", "\"length\""),
    ]
    .concat()
        + USAGE;
    let ev = events_at_every_split(&stream);
    assert_eq!(
        ev[2].1["content_block"],
        json!({"type": "thinking", "thinking": "", "signature": ""})
    );
    assert_eq!(
        ev[3].1["delta"],
        json!({"type": "thinking_delta", "thinking": "Let me think"})
    );
    assert_eq!(
        ev[4].1["delta"],
        json!({"type": "signature_delta", "signature": "sig-1"})
    );
    assert_eq!(
        (ev[5].0.as_str(), &ev[5].1["index"]),
        ("content_block_stop", &json!(0))
    );
    assert_eq!(ev[6].1["content_block"]["type"], "text");
    assert_eq!(ev[6].1["index"], 1);
    let delta = ev.iter().find(|(n, _)| n == "message_delta").unwrap();
    assert_eq!(delta.1["delta"]["stop_reason"], "max_tokens");
}

#[test]
fn an_empty_answer_still_starts_and_stops() {
    let stream = chunk("{}", "\"stop\"") + USAGE;
    let ev = events_at_every_split(&stream);
    assert_eq!(
        names(&ev),
        ["message_start", "ping", "message_delta", "message_stop"]
    );
}

fn collect(parts: Vec<Result<String, TransportError>>) -> String {
    let upstream: BodyStream = Box::pin(futures_util::stream::iter(
        parts.into_iter().map(|p| p.map(Bytes::from)),
    ));
    let out = AnthropicSse::new(upstream, source());
    let frames: Vec<Bytes> = futures_executor::block_on(out.collect());
    frames
        .iter()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect()
}

#[test]
fn broken_upstream_ends_with_an_error_event_and_no_message_stop() {
    let s = collect(vec![
        Ok(chunk(r#"{"content":"Hi"}"#, "null")),
        Err(TransportError::Body("reset".into())),
    ]);
    assert!(s.contains("\"text\":\"Hi\""));
    let last = parse(&s).pop().unwrap();
    assert_eq!(last.0, "error");
    assert_eq!(last.1["error"]["type"], "api_error");
    assert!(!s.contains("message_stop"));
    // An upstream that just stops (no [DONE]) is cut too.
    let s = collect(vec![Ok(chunk(r#"{"content":"Hi"}"#, "null"))]);
    assert!(s.ends_with("}\n\n") && s.contains("event: error"), "{s}");
}

#[test]
fn a_clean_stream_through_the_output_stage() {
    let s = collect(vec![
        Ok(chunk(r#"{"content":"Hi"}"#, "null")),
        Ok(chunk("{}", "\"stop\"") + USAGE),
    ]);
    assert_eq!(parse(&s).last().unwrap().0, "message_stop");
}
