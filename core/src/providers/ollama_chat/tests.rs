use super::*;
use crate::openai::ChatChunk;
use crate::providers::split_test::{
    assert_split_invariant, content_of, finishes, run, tool_arguments,
};
use crate::providers::test_support::{self, chat};
use crate::providers::StreamTranslator;

const STREAM: &str = include_str!("../fixtures/ollama/chat_stream.ndjson");
const STREAM_TOOLS: &str = include_str!("../fixtures/ollama/chat_stream_tool_calls.ndjson");

fn deployment_with(params: &str) -> Deployment {
    test_support::deployment("local", &format!("{{model: ollama_chat/llama3.2{params}}}"))
}

fn deployment() -> Deployment {
    deployment_with("")
}

fn simple(extra: Value) -> ChatRequest {
    test_support::simple("local", extra)
}

fn body(req: &ChatRequest) -> Value {
    let r = OllamaChat.chat_request(req, &deployment()).unwrap();
    serde_json::from_slice(r.body()).unwrap()
}

fn stream() -> Box<dyn StreamTranslator<Chunk = ChatChunk>> {
    OllamaChat.chat_stream(&simple(json!({})), &deployment())
}

#[test]
fn request_goes_to_local_api_chat_without_auth() {
    let r = OllamaChat
        .chat_request(&simple(json!({})), &deployment())
        .unwrap();
    assert_eq!(r.uri(), "http://localhost:11434/api/chat");
    assert!(r.headers().get("authorization").is_none());
    let d = deployment_with(", api_base: 'http://gpu:11434', api_key: k");
    let r = OllamaChat.chat_request(&simple(json!({})), &d).unwrap();
    assert_eq!(r.uri(), "http://gpu:11434/api/chat");
    assert_eq!(r.headers()["authorization"], "Bearer k");
}

#[test]
fn full_request_translates_as_the_fixture_says() {
    let req = chat(
        serde_json::from_str(include_str!("../fixtures/ollama/chat_request_openai.json")).unwrap(),
    );
    let want: Value =
        serde_json::from_str(include_str!("../fixtures/ollama/chat_request_ollama.json")).unwrap();
    assert_eq!(body(&req), want);
}

#[test]
fn stream_is_always_explicit() {
    assert_eq!(body(&simple(json!({})))["stream"], false);
    assert_eq!(body(&simple(json!({"stream": true})))["stream"], true);
    let b = body(&simple(json!({})));
    assert!(b.get("options").is_none() && b.get("format").is_none() && b.get("tools").is_none());
}

#[test]
fn json_schema_becomes_the_format_and_tool_choice_none_drops_tools() {
    let schema = json!({"type": "object", "properties": {"age": {"type": "integer"}}});
    let b = body(&simple(
        json!({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}}),
    ));
    assert_eq!(b["format"], schema);
    let tools = json!([{"type": "function", "function": {"name": "f"}}]);
    assert!(
        body(&simple(json!({"tools": tools, "tool_choice": "none"})))
            .get("tools")
            .is_none()
    );
    assert_eq!(
        body(&simple(json!({"tools": tools})))["tools"][0]["function"]["name"],
        "f"
    );
}

#[test]
fn a_forced_tool_is_the_only_one_offered() {
    let tools = json!([
        {"type": "function", "function": {"name": "get_weather"}},
        {"type": "function", "function": {"name": "other"}}
    ]);
    let forced = |name: &str| json!({"type": "function", "function": {"name": name}});
    let b = body(&simple(
        json!({"tools": tools, "tool_choice": forced("other")}),
    ));
    let names: Vec<&str> = b["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["other"]);
    // "required" cannot be expressed: every tool stays on offer.
    let b = body(&simple(json!({"tools": tools, "tool_choice": "required"})));
    assert_eq!(b["tools"].as_array().unwrap().len(), 2);
    let e = OllamaChat
        .chat_request(
            &simple(json!({"tools": tools, "tool_choice": forced("missing")})),
            &deployment(),
        )
        .unwrap_err();
    assert_eq!(e.param.as_deref(), Some("tool_choice"));
}

#[test]
fn bad_requests_are_400s() {
    let refused = |req: ChatRequest| OllamaChat.chat_request(&req, &deployment()).unwrap_err();
    let e = refused(chat(
        json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]}),
    ));
    assert_eq!(e.param.as_deref(), Some("messages[0].content[0].image_url"));
    let e = refused(chat(
        json!({"model": "m", "messages": [{"role": "assistant", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{no"}}]}]}),
    ));
    assert_eq!(
        e.param.as_deref(),
        Some("messages[0].tool_calls[0].function.arguments")
    );
    assert_eq!(refused(simple(json!({"n": 3}))).param.as_deref(), Some("n"));
    assert_eq!(
        refused(simple(json!({"response_format": {"type": "xml"}})))
            .param
            .as_deref(),
        Some("response_format")
    );
}

#[test]
fn text_response_with_counts_and_time() {
    let c = OllamaChat
        .chat_response(
            include_bytes!("../fixtures/ollama/chat_response.json"),
            &simple(json!({})),
            &deployment(),
        )
        .unwrap();
    assert_eq!(
        c.choices[0].message.content.as_deref(),
        Some("Hello! How are you today?")
    );
    assert_eq!(c.choices[0].finish_reason.as_deref(), Some("stop"));
    let u = c.usage.unwrap();
    assert_eq!(
        (u.prompt_tokens, u.completion_tokens, u.total_tokens),
        (26, 298, 324)
    );
    assert_eq!(c.created, 1702390423);
}

#[test]
fn tool_call_arguments_become_json_text_with_ids() {
    let c = OllamaChat
        .chat_response(
            include_bytes!("../fixtures/ollama/chat_response_tool_calls.json"),
            &simple(json!({})),
            &deployment(),
        )
        .unwrap();
    let m = &c.choices[0].message;
    assert!(m.content.is_none());
    let call = &m.tool_calls.as_ref().unwrap()[0];
    assert!(
        call.id.starts_with("call_") && call.id.len() == 29,
        "{}",
        call.id
    );
    assert_eq!(call.function.name, "get_current_weather");
    let args: Value = serde_json::from_str(&call.function.arguments).unwrap();
    assert_eq!(args, json!({"format": "celsius", "location": "Paris, FR"}));
    assert_eq!(c.choices[0].finish_reason.as_deref(), Some("tool_calls"));
}

#[test]
fn done_reasons_map_to_finish_reasons() {
    for (reason, want) in [
        ("stop", "stop"),
        ("length", "length"),
        ("unload", "stop"),
        ("new", "stop"),
    ] {
        let b = json!({"created_at": "x", "message": {"content": "a"}, "done": true, "done_reason": reason});
        let c = OllamaChat
            .chat_response(b.to_string().as_bytes(), &simple(json!({})), &deployment())
            .unwrap();
        assert_eq!(
            c.choices[0].finish_reason.as_deref(),
            Some(want),
            "{reason}"
        );
        assert_eq!(c.created, 0, "an unreadable time is left to the gateway");
    }
}

#[test]
fn bad_bodies_are_502s_and_error_bodies_errors() {
    for b in [&b"<html>"[..], br#"{"message": {"content": 5}}"#] {
        let e = OllamaChat
            .chat_response(b, &simple(json!({})), &deployment())
            .unwrap_err();
        assert_eq!(e.status().as_u16(), 502);
    }
    let e = OllamaChat
        .chat_response(
            br#"{"error": "something broke"}"#,
            &simple(json!({})),
            &deployment(),
        )
        .unwrap_err();
    assert_eq!(e.message, "something broke");
}

#[test]
fn text_stream_at_every_split() {
    let (chunks, usage) = assert_split_invariant(stream, STREAM);
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    assert_eq!(content_of(&chunks), "The sky is blue. Ça va 👋");
    assert_eq!(finishes(&chunks), ["stop"]);
    let u = usage.unwrap();
    assert_eq!((u.prompt_tokens, u.completion_tokens), (26, 282));
}

#[test]
fn tool_call_stream_at_every_split() {
    let (chunks, usage) = assert_split_invariant(stream, STREAM_TOOLS);
    let reasoning: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["reasoning_content"].as_str())
        .collect();
    assert_eq!(reasoning, "The user wants the weather.");
    let calls = chunks
        .iter()
        .find_map(|c| c["choices"][0]["delta"]["tool_calls"].as_array())
        .unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1]["index"], 1);
    assert_eq!(calls[1]["function"]["name"], "get_time");
    assert_ne!(calls[0]["id"], calls[1]["id"]);
    let args: Value = serde_json::from_str(&tool_arguments(&chunks, 0)).unwrap();
    assert_eq!(args, json!({"format": "celsius", "location": "Paris, FR"}));
    assert_eq!(finishes(&chunks), ["tool_calls"]);
    assert_eq!(usage.unwrap().total_tokens, 224);
}

#[test]
fn cut_stream_is_an_error() {
    let cut = &STREAM[..STREAM.find("\"done\":true").unwrap()];
    let r = run(stream(), cut.as_bytes(), 0);
    assert_eq!(
        r.result.unwrap_err().code.as_deref(),
        Some("stream_interrupted")
    );
    assert_eq!(content_of(&r.chunks), "The sky is blue. Ça va 👋");
    let whole_lines = &STREAM[..STREAM.rfind("{\"model\"").unwrap()];
    assert!(run(stream(), whole_lines.as_bytes(), 0).result.is_err());
}

#[test]
fn error_lines_and_garbage_fail_the_stream() {
    let s = format!(
        "{}\n{{\"error\":\"model requires more system memory\"}}\n",
        STREAM.lines().next().unwrap()
    );
    let e = run(stream(), s.as_bytes(), 0).result.unwrap_err();
    assert_eq!(e.message, "model requires more system memory");
    let e = run(
        stream(),
        b"{\"error\":\"model \\\"x\\\" not found, try pulling it first\"}\n",
        0,
    )
    .result
    .unwrap_err();
    assert_eq!(
        (e.status().as_u16(), e.code.as_deref()),
        (404, Some("model_not_found"))
    );
    for garbage in ["not json\n", "{\"message\": {\"content\": 1}}\n", "[1,2]\n"] {
        let e = run(stream(), garbage.as_bytes(), 0).result.unwrap_err();
        assert_eq!(e.status().as_u16(), 502, "{garbage}");
    }
}

#[test]
fn embeddings_request_and_response() {
    let d = deployment();
    let r = OllamaChat
        .embeddings_request(
            &json!({"model": "local", "input": ["a", "b"], "dimensions": 3}),
            &d,
        )
        .unwrap();
    assert_eq!(r.uri(), "http://localhost:11434/api/embed");
    let b: Value = serde_json::from_slice(r.body()).unwrap();
    assert_eq!(
        b,
        json!({"model": "llama3.2", "input": ["a", "b"], "dimensions": 3})
    );
    assert!(OllamaChat
        .embeddings_request(&json!({"input": [[1, 2]]}), &d)
        .is_err());
    let v = OllamaChat
        .embeddings_response(include_bytes!("../fixtures/ollama/embed_response.json"), &d)
        .unwrap();
    assert_eq!(v["data"][1]["embedding"][1], 0.06042469);
    assert_eq!(v["usage"], json!({"prompt_tokens": 8, "total_tokens": 8}));
}

#[test]
fn not_found_error_is_a_404_with_a_code() {
    let e = OllamaChat.error(
        404,
        include_bytes!("../fixtures/ollama/error_not_found.json"),
    );
    assert_eq!(e.status().as_u16(), 404);
    assert_eq!(e.code.as_deref(), Some("model_not_found"));
    assert_eq!(
        e.message,
        "model \"llama3.3\" not found, try pulling it first"
    );
    let e = OllamaChat.error(500, b"");
    assert_eq!(e.status().as_u16(), 500);
}
