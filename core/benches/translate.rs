//! What translation costs per provider, on the host (criterion):
//!
//! - `request/<provider>`: parse a typical OpenAI chat request (JSON bytes) and build the
//!   provider's upstream request from it;
//! - `response/<provider>`: read a typical full answer in the provider's format (the unit
//!   tests' fixtures) and write it out as OpenAI JSON;
//! - `stream/<provider>`: feed a 100-chunk stream, in the provider's real wire bytes (built
//!   here), frame by frame through the provider's stream translator.
//!
//! Run: `cargo bench -p tollgate-core --bench translate -- --warm-up-time 1 --measurement-time 3`
//! (figures in docs/benchmarks.md). `cargo test` does not run benches.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use serde_json::json;
use tollgate_core::config::Deployment;
use tollgate_core::openai::{ChatChunk, ChatRequest};
use tollgate_core::providers::ProviderApi;
use tollgate_core::Config;

/// Words in each streamed answer: one wire event per word, as real streams roughly send.
const STREAM_CHUNKS: usize = 100;

struct Case {
    name: &'static str,
    deployment: Deployment,
    api: &'static dyn ProviderApi,
    /// The typical request as OpenAI JSON bytes, and parsed with `stream: true`.
    request: Vec<u8>,
    stream_request: ChatRequest,
    /// A typical full answer in the provider's format.
    response: Vec<u8>,
    /// One element per wire frame of a 100-chunk answer.
    stream: Vec<Vec<u8>>,
}

fn deployment(params: &str) -> Deployment {
    let yaml = format!("model_list:\n  - model_name: bench\n    litellm_params: {params}\n");
    let config = Config::from_yaml(&yaml, &|_| None).expect("bench config loads");
    (*config.deployments[0]).clone()
}

fn fixture(path: &str) -> Vec<u8> {
    let full = format!(
        "{}/src/providers/fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// A chat request as clients typically send it: a system prompt, a few turns, one tool (for
/// providers that take tools), sampling settings.
fn openai_request(stream: bool, tools: bool) -> Vec<u8> {
    let mut request = json!({
        "model": "bench",
        "stream": stream,
        "temperature": 0.7,
        "max_tokens": 512,
        "stop": ["\n\nUser:"],
        "messages": [
            {"role": "system", "content": "You are a helpful assistant. Answer briefly and cite sources when you can."},
            {"role": "user", "content": "What is the capital of France, and how many people live there?"},
            {"role": "assistant", "content": "Paris is the capital of France; about 2.1 million people live in the city itself."},
            {"role": "user", "content": [
                {"type": "text", "text": "And what is the weather like there today? Please check."}
            ]}
        ],
        "tools": [{"type": "function", "function": {
            "name": "get_weather",
            "description": "Current weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
        }}]
    });
    if !tools {
        request.as_object_mut().unwrap().remove("tools");
    }
    serde_json::to_vec(&request).unwrap()
}

fn word(i: usize) -> String {
    format!("word{i} ")
}

fn sse(data: serde_json::Value) -> Vec<u8> {
    format!("data: {data}\n\n").into_bytes()
}

fn sse_event(event: &str, data: serde_json::Value) -> Vec<u8> {
    format!("event: {event}\ndata: {data}\n\n").into_bytes()
}

fn openai_stream() -> Vec<Vec<u8>> {
    let chunk = |delta: serde_json::Value, finish: serde_json::Value| {
        sse(
            json!({"id": "chatcmpl-9Rvd5", "object": "chat.completion.chunk", "created": 1716301539,
            "model": "gpt-4o-2024-05-13", "system_fingerprint": "fp_5f4bad809a",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]}),
        )
    };
    let mut frames = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        json!(null),
    )];
    frames.extend((0..STREAM_CHUNKS).map(|i| chunk(json!({"content": word(i)}), json!(null))));
    frames.push(chunk(json!({}), json!("stop")));
    frames.push(sse(
        json!({"id": "chatcmpl-9Rvd5", "object": "chat.completion.chunk", "created": 1716301539,
        "model": "gpt-4o-2024-05-13", "choices": [],
        "usage": {"prompt_tokens": 60, "completion_tokens": 100, "total_tokens": 160}}),
    ));
    frames.push(b"data: [DONE]\n\n".to_vec());
    frames
}

fn anthropic_stream() -> Vec<Vec<u8>> {
    let mut frames = vec![
        sse_event(
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_01", "type": "message",
            "role": "assistant", "content": [], "model": "claude-3-5-sonnet-20240620", "stop_reason": null,
            "stop_sequence": null, "usage": {"input_tokens": 60, "output_tokens": 1}}}),
        ),
        sse_event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "text", "text": ""}}),
        ),
    ];
    frames.extend((0..STREAM_CHUNKS).map(|i| {
        sse_event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": word(i)}}),
        )
    }));
    frames.push(sse_event(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    frames.push(sse_event("message_delta", json!({"type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 100}})));
    frames.push(sse_event("message_stop", json!({"type": "message_stop"})));
    frames
}

/// Gemini and Vertex: one `GenerateContentResponse` per frame, CRLF-separated, no `[DONE]`.
fn gemini_stream() -> Vec<Vec<u8>> {
    (0..STREAM_CHUNKS)
        .map(|i| {
            let mut candidate = json!({"content": {"parts": [{"text": word(i)}], "role": "model"}, "index": 0});
            if i + 1 == STREAM_CHUNKS {
                candidate["finishReason"] = json!("STOP");
            }
            let frame = json!({"candidates": [candidate],
                "usageMetadata": {"promptTokenCount": 60, "candidatesTokenCount": i + 1, "totalTokenCount": 61 + i},
                "modelVersion": "gemini-1.5-flash", "responseId": "r1"});
            format!("data: {frame}\r\n\r\n").into_bytes()
        })
        .collect()
}

/// Bedrock: binary event-stream frames (prelude, headers, JSON payload, CRC-32s).
fn bedrock_stream() -> Vec<Vec<u8>> {
    let event = |kind: &str, payload: serde_json::Value| {
        event_frame(
            &[
                (":event-type", kind),
                (":content-type", "application/json"),
                (":message-type", "event"),
            ],
            payload.to_string().as_bytes(),
        )
    };
    // Bedrock pads payloads (`p`) so their sizes do not reveal the text.
    let pad = "abcdefghijklmnopqrstuvwxyzABCDEF";
    let mut frames = vec![event(
        "messageStart",
        json!({"role": "assistant", "p": pad}),
    )];
    frames.extend((0..STREAM_CHUNKS).map(|i| {
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": word(i)}, "p": pad}),
        )
    }));
    frames.push(event(
        "contentBlockStop",
        json!({"contentBlockIndex": 0, "p": pad}),
    ));
    frames.push(event(
        "messageStop",
        json!({"stopReason": "end_turn", "p": pad}),
    ));
    frames.push(event(
        "metadata",
        json!({"metrics": {"latencyMs": 425}, "p": pad,
        "usage": {"inputTokens": 60, "outputTokens": 100, "totalTokens": 160}}),
    ));
    frames
}

/// One `application/vnd.amazon.eventstream` message with string headers.
fn event_frame(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for (name, value) in headers {
        h.push(name.len() as u8);
        h.extend_from_slice(name.as_bytes());
        h.push(7); // string
        h.extend_from_slice(&(value.len() as u16).to_be_bytes());
        h.extend_from_slice(value.as_bytes());
    }
    let total = 12 + h.len() + payload.len() + 4;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(h.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32fast::hash(&out).to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    out.extend_from_slice(&crc32fast::hash(&out).to_be_bytes());
    out
}

fn cohere_stream() -> Vec<Vec<u8>> {
    let mut frames = vec![
        sse_event(
            "message-start",
            json!({"id": "29f14a5a", "type": "message-start", "delta": {"message":
            {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}}}),
        ),
        sse_event(
            "content-start",
            json!({"type": "content-start", "index": 0,
            "delta": {"message": {"content": {"type": "text", "text": ""}}}}),
        ),
    ];
    frames.extend((0..STREAM_CHUNKS).map(|i| {
        sse_event(
            "content-delta",
            json!({"type": "content-delta", "index": 0,
            "delta": {"message": {"content": {"text": word(i)}}}}),
        )
    }));
    frames.push(sse_event(
        "content-end",
        json!({"type": "content-end", "index": 0}),
    ));
    frames.push(sse_event(
        "message-end",
        json!({"type": "message-end", "delta": {"finish_reason": "COMPLETE",
        "usage": {"billed_units": {"input_tokens": 60, "output_tokens": 100},
                  "tokens": {"input_tokens": 69, "output_tokens": 100}}}}),
    ));
    frames
}

/// Ollama: NDJSON, the last line `done: true` with the counts. `chat` picks `/api/chat`'s
/// `message` lines, else `/api/generate`'s `response` ones.
fn ollama_stream(chat: bool) -> Vec<Vec<u8>> {
    let line = |text: String, done: bool| {
        let mut v = json!({"model": "llama3.2", "created_at": "2024-08-04T08:52:19.385406455-07:00", "done": done});
        if chat {
            v["message"] = json!({"role": "assistant", "content": text});
        } else {
            v["response"] = json!(text);
        }
        if done {
            v["done_reason"] = json!("stop");
            v["prompt_eval_count"] = json!(60);
            v["eval_count"] = json!(100);
            v["total_duration"] = json!(4883583458u64);
        }
        format!("{v}\n").into_bytes()
    };
    let mut frames: Vec<_> = (0..STREAM_CHUNKS).map(|i| line(word(i), false)).collect();
    frames.push(line(String::new(), true));
    frames
}

fn openai_response() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": "chatcmpl-9Rvd5", "object": "chat.completion", "created": 1716301539,
        "model": "gpt-4o-2024-05-13", "system_fingerprint": "fp_5f4bad809a",
        "choices": [{"index": 0, "logprobs": null, "finish_reason": "stop",
            "message": {"role": "assistant", "content": "Paris is the capital of France. Today it is sunny, 21 °C, with a light breeze from the west."}}],
        "usage": {"prompt_tokens": 60, "completion_tokens": 24, "total_tokens": 84}
    }))
    .unwrap()
}

fn cases() -> Vec<Case> {
    let case = |name, params: &str, response: Vec<u8>, stream: Vec<Vec<u8>>| {
        let deployment = deployment(params);
        let api = deployment.provider.api().expect("translated provider");
        // Ollama's generate API has no tools (it refuses them).
        let tools = name != "ollama";
        Case {
            name,
            deployment,
            api,
            request: openai_request(false, tools),
            stream_request: serde_json::from_slice(&openai_request(true, tools)).unwrap(),
            response,
            stream,
        }
    };
    vec![
        case("openai", "{model: openai/gpt-4o, api_key: k}", openai_response(), openai_stream()),
        case(
            "azure",
            "{model: azure/gpt-4o, api_base: 'https://r.openai.azure.com', api_key: k}",
            openai_response(),
            openai_stream(),
        ),
        case(
            "anthropic",
            "{model: anthropic/claude-3-5-sonnet-20240620, api_key: k}",
            fixture("anthropic/response_text.json"),
            anthropic_stream(),
        ),
        case(
            "gemini",
            "{model: gemini/gemini-1.5-flash, api_key: k}",
            fixture("gemini/response_text.json"),
            gemini_stream(),
        ),
        case(
            "vertex_ai",
            "{model: vertex_ai/gemini-1.5-pro, vertex_project: p, api_key: token}",
            fixture("gemini/response_text.json"),
            gemini_stream(),
        ),
        case(
            "bedrock",
            "{model: bedrock/anthropic.claude-3-haiku-20240307-v1:0, aws_access_key_id: AKID, aws_secret_access_key: s, aws_region_name: us-east-1}",
            fixture("bedrock/response_text.json"),
            bedrock_stream(),
        ),
        case(
            "cohere",
            "{model: cohere/command-r, api_key: k}",
            fixture("cohere/response_text.json"),
            cohere_stream(),
        ),
        case(
            "ollama_chat",
            "{model: ollama_chat/llama3.2}",
            fixture("ollama/chat_response.json"),
            ollama_stream(true),
        ),
        case(
            "ollama",
            "{model: ollama/llama3.2}",
            fixture("ollama/generate_response.json"),
            ollama_stream(false),
        ),
    ]
}

/// Runs one stream through a fresh translator; returns the chunks it produced.
fn translate_stream(c: &Case) -> usize {
    let mut translator = c.api.chat_stream(&c.stream_request, &c.deployment);
    let mut out: Vec<ChatChunk> = Vec::with_capacity(STREAM_CHUNKS + 4);
    for frame in &c.stream {
        translator.feed(frame, &mut out).expect("frame translates");
    }
    translator.finish(&mut out).expect("stream ends cleanly");
    out.len()
}

fn bench(cr: &mut Criterion) {
    let cases = cases();
    let parsed: Vec<ChatRequest> = cases
        .iter()
        .map(|c| serde_json::from_slice(&c.request).unwrap())
        .collect();

    // Every case must really translate, or the figures mean nothing.
    for (c, req) in cases.iter().zip(&parsed) {
        c.api
            .chat_request(req, &c.deployment)
            .unwrap_or_else(|e| panic!("{}: {e:?}", c.name));
        c.api
            .chat_response(&c.response, req, &c.deployment)
            .unwrap_or_else(|e| panic!("{}: {e:?}", c.name));
        let chunks = translate_stream(c);
        assert!(chunks >= STREAM_CHUNKS, "{}: only {chunks} chunks", c.name);
    }

    let mut g = cr.benchmark_group("request");
    for c in &cases {
        g.bench_function(c.name, |b| {
            b.iter(|| {
                let req: ChatRequest = serde_json::from_slice(black_box(&c.request)).unwrap();
                c.api.chat_request(&req, &c.deployment).unwrap()
            })
        });
    }
    g.finish();

    let mut g = cr.benchmark_group("response");
    for (c, req) in cases.iter().zip(&parsed) {
        g.bench_function(c.name, |b| {
            b.iter(|| {
                let answer = c
                    .api
                    .chat_response(black_box(&c.response), req, &c.deployment)
                    .unwrap();
                serde_json::to_vec(&answer).unwrap()
            })
        });
    }
    g.finish();

    let mut g = cr.benchmark_group("stream");
    g.throughput(Throughput::Elements(STREAM_CHUNKS as u64));
    for c in &cases {
        g.bench_function(c.name, |b| b.iter(|| translate_stream(black_box(c))));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
