use super::*;
use crate::openai::ChatChunk;
use crate::providers::split_test::{assert_split_invariant, content_of, finishes, run};
use crate::providers::test_support::{self, chat};
use crate::providers::text_completion::TextChunk;
use crate::providers::StreamTranslator;

const STREAM: &str = include_str!("../fixtures/ollama/generate_stream.ndjson");

fn deployment() -> Deployment {
    test_support::deployment("local", "{model: ollama/llama3.2}")
}

fn body_of(r: http::Request<Bytes>) -> Value {
    serde_json::from_slice(r.body()).unwrap()
}

#[test]
fn chat_is_flattened_into_one_prompt() {
    let req = chat(json!({"model": "local", "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "user", "content": [{"type": "text", "text": " there"},
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}}]},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "Why is the sky blue?"}
    ], "max_tokens": 50, "stream": true}));
    let r = OllamaGenerate.chat_request(&req, &deployment()).unwrap();
    assert_eq!(r.uri(), "http://localhost:11434/api/generate");
    assert_eq!(
        body_of(r),
        json!({
            "model": "llama3.2",
            "prompt": "### User:\nHi there\n\n### Assistant:\nHello.\n\n### User:\nWhy is the sky blue?\n\n",
            "system": "Be brief.",
            "images": ["/9j/4AAQ"],
            "options": {"num_predict": 50},
            "stream": true
        })
    );
}

#[test]
fn tools_need_ollama_chat() {
    let req = chat(
        json!({"model": "local", "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "function", "function": {"name": "f"}}]}),
    );
    let e = OllamaGenerate
        .chat_request(&req, &deployment())
        .unwrap_err();
    assert_eq!(e.param.as_deref(), Some("tools"));
    assert!(e.message.contains("ollama_chat/"));
}

#[test]
fn chat_response_from_generate() {
    let c = OllamaGenerate
        .chat_response(
            include_bytes!("../fixtures/ollama/generate_response.json"),
            &chat(json!({"model": "local", "messages": []})),
            &deployment(),
        )
        .unwrap();
    assert_eq!(
        c.choices[0].message.content.as_deref(),
        Some("The sky is blue because it is the color of the sky.")
    );
    assert_eq!(c.choices[0].finish_reason.as_deref(), Some("stop"));
    assert_eq!(c.usage.unwrap().total_tokens, 26 + 290);
    assert_eq!(c.created, 1691176965);
}

fn chat_stream() -> Box<dyn StreamTranslator<Chunk = ChatChunk>> {
    OllamaGenerate.chat_stream(
        &chat(json!({"model": "local", "messages": []})),
        &deployment(),
    )
}

#[test]
fn chat_stream_from_generate_at_every_split() {
    let (chunks, usage) = assert_split_invariant(chat_stream, STREAM);
    assert_eq!(content_of(&chunks), "The sky is blue");
    assert_eq!(finishes(&chunks), ["length"]);
    assert_eq!(usage.unwrap().completion_tokens, 259);
}

#[test]
fn completion_request_maps_prompt_and_options() {
    let req = json!({"model": "local", "prompt": ["Say hi"], "max_tokens": 5, "temperature": 0,
        "stop": "\n", "suffix": "END", "stream": true, "stream_options": {"include_usage": true}, "top_k": 3});
    let b = body_of(
        OllamaGenerate
            .completion_request(&req, &deployment())
            .unwrap(),
    );
    assert_eq!(
        b,
        json!({"model": "llama3.2", "prompt": "Say hi", "suffix": "END", "stream": true,
               "options": {"num_predict": 5, "temperature": 0, "stop": ["\n"], "top_k": 3}})
    );
    let e = OllamaGenerate
        .completion_request(
            &json!({"model": "local", "prompt": ["a", "b"]}),
            &deployment(),
        )
        .unwrap_err();
    assert_eq!(e.param.as_deref(), Some("prompt"));
    let b = body_of(
        OllamaGenerate
            .completion_request(&json!({"prompt": "x"}), &deployment())
            .unwrap(),
    );
    assert_eq!(b["stream"], false);
}

#[test]
fn completion_response_is_a_text_completion() {
    let v = OllamaGenerate
        .completion_response(
            include_bytes!("../fixtures/ollama/generate_response.json"),
            &deployment(),
        )
        .unwrap();
    assert_eq!(v["object"], "text_completion");
    assert!(v["id"].as_str().unwrap().starts_with("cmpl-"));
    assert_eq!(
        v["choices"][0]["text"],
        "The sky is blue because it is the color of the sky."
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["usage"]["prompt_tokens"], 26);
    assert_eq!(v["created"], 1691176965);
}

fn text_stream() -> Box<dyn StreamTranslator<Chunk = TextChunk>> {
    OllamaGenerate.completion_stream(&deployment())
}

#[test]
fn completion_stream_at_every_split() {
    let (chunks, usage) = assert_split_invariant(text_stream, STREAM);
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["text"].as_str())
        .collect();
    assert_eq!(text, "The sky is blue");
    assert_eq!(chunks.len(), 4);
    assert_eq!(chunks[3]["choices"][0]["finish_reason"], "length");
    assert!(chunks[0]["choices"][0]["finish_reason"].is_null());
    assert_eq!(chunks[0]["object"], "text_completion");
    assert_eq!(usage.unwrap().prompt_tokens, 26);
    let cut = &STREAM[..STREAM.find("\"done\":true").unwrap()];
    let r = run(text_stream(), cut.as_bytes(), 0);
    assert_eq!(
        r.result.unwrap_err().code.as_deref(),
        Some("stream_interrupted")
    );
}

#[test]
fn rfc3339_times_with_offsets() {
    use crate::providers::ollama_common::unix_seconds;
    assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), 0);
    assert_eq!(unix_seconds("2023-08-04T19:22:45.499127Z"), 1691176965);
    assert_eq!(
        unix_seconds("2023-08-04T08:52:19.385406455-07:00"),
        1691164339
    );
    assert_eq!(unix_seconds("2024-02-29T12:00:00+01:00"), 1709204400);
    assert_eq!(unix_seconds("garbage"), 0);
    assert_eq!(unix_seconds(""), 0);
}

#[test]
fn prefixes_resolve_to_the_ollama_modules() {
    use crate::providers::ProviderId;
    for (model, prefix) in [
        ("ollama/llama3", "ollama"),
        ("ollama_chat/llama3", "ollama_chat"),
    ] {
        let (p, m) = ProviderId::parse(model).unwrap();
        assert_eq!((p.prefix(), m), (prefix, "llama3"));
        assert!(p.api().is_ok());
        assert_eq!(p.default_base(), Some("http://localhost:11434"));
    }
    for model in ["cohere/command-r", "cohere_chat/command-r"] {
        let (p, _) = ProviderId::parse(model).unwrap();
        assert!(p.api().is_ok());
        assert_eq!(p.default_base(), Some("https://api.cohere.com"));
    }
}
