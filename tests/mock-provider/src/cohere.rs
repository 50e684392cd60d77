//! Cohere v2 wire format: `POST /v2/chat` (JSON or SSE events), `POST /v2/embed`, and
//! Cohere's error shape `{"id", "message"}`.
//!
//! The reply logic is OpenAI's ([`openai::chat_reply`]) run on the request with Cohere's
//! names mapped back (`stop_sequences` → `stop`, `tool_choice` `NONE`/`REQUIRED`), so every
//! model-name scenario behaves as it does for the other formats.

use bytes::Bytes;
use hyper::header::AUTHORIZATION;
use hyper::http::request::Parts;
use hyper::HeaderMap;
use serde_json::{json, Value};

use crate::http::{self, next_id, Resp};
use crate::json::{arr, Obj};
use crate::logic::{
    content_text, embedding, prompt_tokens, scenario, split_words_keep_spaces, sse_event,
    EventStream, Finish, Reply, Scenario, TOOL_ARGS, TOOL_ARG_FRAGMENTS,
};
use crate::openai;

/// Top-level fields v2 chat accepts; others are refused, as the real API refuses them.
const CHAT_FIELDS: &[&str] = &[
    "model",
    "messages",
    "tools",
    "documents",
    "citation_options",
    "response_format",
    "safety_mode",
    "max_tokens",
    "stop_sequences",
    "temperature",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "k",
    "p",
    "return_prompt",
    "logprobs",
    "tool_choice",
    "strict_tools",
    "stream",
    "thinking",
    "priority",
];

const INPUT_TYPES: &[&str] = &[
    "search_document",
    "search_query",
    "classification",
    "clustering",
    "image",
];

// ---------------------------------------------------------------------- errors

/// `{"id": "...", "message": "..."}` with a status.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(400, format!("invalid request: {}", message.into()))
    }

    pub fn body(&self) -> Vec<u8> {
        Obj::new()
            .str("id", &request_id())
            .str("message", &self.message)
            .finish()
    }

    pub fn response(&self) -> Resp {
        http::json(self.status, self.body())
    }
}

fn request_id() -> String {
    format!("00000000-0000-4000-8000-{:012x}", next_id())
}

/// `authorization: Bearer <non-empty>`.
pub fn check_auth(headers: &HeaderMap) -> Result<(), ApiError> {
    let key = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .unwrap_or("");
    if key.is_empty() {
        return Err(ApiError::new(401, "no api key supplied"));
    }
    Ok(())
}

/// Cohere's answer to a prompt longer than the context window.
pub fn context_overflow() -> ApiError {
    ApiError::new(
        400,
        "too many tokens: total number of tokens in the prompt cannot exceed 4081 - received 5211. Try using a shorter prompt, or enabling prompt truncating. See https://docs.cohere.com/reference/chat for more details.",
    )
}

pub fn simulated_error(status: u16, model: &str) -> ApiError {
    let what = match status {
        400 => "invalid request",
        401 => "invalid api token",
        404 => "model not found",
        429 => "You are using a Trial key, which is limited to 10 API calls / minute",
        498 => "invalid token",
        500..=599 => "internal server error",
        _ => "request failed",
    };
    ApiError::new(
        status,
        format!("{what} (mock-provider simulated error {status} for model '{model}')"),
    )
}

pub fn not_json(err: &serde_json::Error) -> ApiError {
    ApiError::invalid(format!("invalid json: {err}"))
}

// ------------------------------------------------------------------ validation

pub fn validate_chat(v: &Value) -> Result<(), ApiError> {
    let obj = v
        .as_object()
        .ok_or_else(|| ApiError::invalid("body must be a JSON object"))?;
    if let Some(k) = obj.keys().find(|k| !CHAT_FIELDS.contains(&k.as_str())) {
        return Err(ApiError::invalid(format!(
            "unknown field: parameter {k} is not a valid field"
        )));
    }
    match v.get("model") {
        Some(Value::String(s)) if !s.is_empty() => {}
        _ => return Err(ApiError::invalid("model is required")),
    }
    let msgs = v
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| ApiError::invalid("messages must be a non-empty list"))?;
    for (i, m) in msgs.iter().enumerate() {
        match m.get("role").and_then(Value::as_str) {
            Some("system" | "user" | "assistant") => {}
            Some("tool") if m.get("tool_call_id").is_some_and(Value::is_string) => {}
            Some("tool") => {
                return Err(ApiError::invalid(format!(
                    "messages[{i}]: tool_call_id is required"
                )))
            }
            _ => {
                return Err(ApiError::invalid(format!(
                    "messages[{i}]: role must be one of system, user, assistant, tool"
                )))
            }
        }
    }
    match v.get("tool_choice") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s == "REQUIRED" || s == "NONE" => {}
        Some(_) => {
            return Err(ApiError::invalid(
                "tool_choice must be one of REQUIRED, NONE",
            ))
        }
    }
    if v.get("tool_choice").is_some() && !v.get("tools").is_some_and(Value::is_array) {
        return Err(ApiError::invalid("tool_choice requires tools"));
    }
    if v.get("stream").is_some_and(|s| !s.is_boolean()) {
        return Err(ApiError::invalid("stream must be a boolean"));
    }
    Ok(())
}

pub fn validate_embed(v: &Value) -> Result<(), ApiError> {
    match v.get("model") {
        Some(Value::String(s)) if !s.is_empty() => {}
        _ => return Err(ApiError::invalid("model is required")),
    }
    if !v
        .get("texts")
        .and_then(Value::as_array)
        .is_some_and(|t| !t.is_empty() && t.iter().all(Value::is_string))
    {
        return Err(ApiError::invalid(
            "texts must be a non-empty list of strings",
        ));
    }
    match v.get("input_type").and_then(Value::as_str) {
        Some(t) if INPUT_TYPES.contains(&t) => Ok(()),
        Some(t) => Err(ApiError::invalid(format!(
            "input_type {t:?} is not supported"
        ))),
        None => Err(ApiError::invalid(
            "input_type is required for embed models v3 and higher",
        )),
    }
}

// ---------------------------------------------------------------------- replies

/// The request with Cohere's names mapped to OpenAI's, for the shared reply logic.
fn as_openai(v: &Value) -> Value {
    let mut o = json!({
        "messages": v.get("messages").cloned().unwrap_or(json!([])),
        "stop": v.get("stop_sequences").cloned().unwrap_or(Value::Null),
        "max_tokens": v.get("max_tokens").cloned().unwrap_or(Value::Null),
    });
    if let Some(tools) = v.get("tools") {
        o["tools"] = tools.clone();
    }
    if v.get("tool_choice").and_then(Value::as_str) == Some("NONE") {
        o["tool_choice"] = json!("none");
    }
    // Tool results may be documents; their data is the text. Parts without text (images)
    // add nothing, so an image beside the text does not change the reply.
    if let Some(Value::Array(msgs)) = o.get_mut("messages") {
        for m in msgs.iter_mut() {
            if let Some(Value::Array(parts)) = m.get("content") {
                let text: Vec<String> = parts
                    .iter()
                    .map(|p| match p.pointer("/document/data") {
                        Some(Value::String(s)) => s.clone(),
                        Some(other) => other.to_string(),
                        None => content_text(&Value::Array(vec![p.clone()])),
                    })
                    .filter(|t| !t.is_empty())
                    .collect();
                m["content"] = json!(text.join(" "));
            }
        }
    }
    o
}

fn finish_str(f: &Finish) -> &'static str {
    match f {
        Finish::Stop => "COMPLETE",
        Finish::StopSequence(_) => "STOP_SEQUENCE",
        Finish::Length => "MAX_TOKENS",
        Finish::ToolCalls => "TOOL_CALL",
    }
}

fn tool_call_id(name: &str) -> String {
    format!("{name}_mock_1")
}

fn tool_plan(name: &str) -> String {
    format!("I will call {name}.")
}

fn usage(p: u64, c: u64) -> Obj {
    let counts = || Obj::new().num("input_tokens", p).num("output_tokens", c);
    Obj::new()
        .obj("billed_units", counts())
        .obj("tokens", counts())
}

pub fn chat_json(id: &str, reply: &Reply, finish: &Finish, p: u64) -> Vec<u8> {
    let message = match reply {
        Reply::Text(t) => Obj::new().str("role", "assistant").raw(
            "content",
            &arr([Obj::new().str("type", "text").str("text", t).finish()]),
        ),
        Reply::Tool(name) => Obj::new()
            .str("role", "assistant")
            .str("tool_plan", &tool_plan(name))
            .raw("tool_calls", &arr([tool_call_json(name, TOOL_ARGS)])),
    };
    Obj::new()
        .str("id", id)
        .obj("message", message)
        .str("finish_reason", finish_str(finish))
        .obj("usage", usage(p, reply.completion_tokens()))
        .finish()
}

fn tool_call_json(name: &str, arguments: &str) -> Vec<u8> {
    Obj::new()
        .str("id", &tool_call_id(name))
        .str("type", "function")
        .obj(
            "function",
            Obj::new().str("name", name).str("arguments", arguments),
        )
        .finish()
}

/// `{"message": {...}}` under `delta`, with the event's `type` (and `index`) first.
fn event(typ: &str, index: Option<u64>, message: Option<Obj>) -> Bytes {
    let mut o = Obj::new().str("type", typ);
    if let Some(i) = index {
        o = o.num("index", i);
    }
    if let Some(m) = message {
        o = o.obj("delta", Obj::new().obj("message", m));
    }
    sse_event(typ, &o.finish())
}

pub fn stream_events(id: &str, reply: &Reply, finish: &Finish, p: u64) -> EventStream {
    let mut s = EventStream::default();
    let start = Obj::new().str("id", id).str("type", "message-start").obj(
        "delta",
        Obj::new().obj(
            "message",
            Obj::new()
                .str("role", "assistant")
                .raw("content", b"[]")
                .str("tool_plan", "")
                .raw("tool_calls", b"[]")
                .raw("citations", b"[]"),
        ),
    );
    s.push(sse_event("message-start", &start.finish()));
    match reply {
        Reply::Text(t) => {
            let content = |o: Obj| Obj::new().obj("content", o);
            s.push(event(
                "content-start",
                Some(0),
                Some(content(Obj::new().str("type", "text").str("text", ""))),
            ));
            for piece in split_words_keep_spaces(t) {
                s.push_content(event(
                    "content-delta",
                    Some(0),
                    Some(content(Obj::new().str("text", piece))),
                ));
            }
            s.push(event("content-end", Some(0), None));
        }
        Reply::Tool(name) => {
            s.push(event(
                "tool-plan-delta",
                None,
                Some(Obj::new().str("tool_plan", &tool_plan(name))),
            ));
            let call = Obj::new()
                .str("id", &tool_call_id(name))
                .str("type", "function")
                .obj(
                    "function",
                    Obj::new().str("name", name).str("arguments", ""),
                );
            s.push(event(
                "tool-call-start",
                Some(0),
                Some(Obj::new().obj("tool_calls", call)),
            ));
            for frag in TOOL_ARG_FRAGMENTS {
                let delta = Obj::new().obj("function", Obj::new().str("arguments", frag));
                s.push_content(event(
                    "tool-call-delta",
                    Some(0),
                    Some(Obj::new().obj("tool_calls", delta)),
                ));
            }
            s.push(event("tool-call-end", Some(0), None));
        }
    }
    let end = Obj::new().str("type", "message-end").obj(
        "delta",
        Obj::new()
            .str("finish_reason", finish_str(finish))
            .obj("usage", usage(p, reply.completion_tokens())),
    );
    s.push(sse_event("message-end", &end.finish()));
    s
}

pub fn chat(v: &Value, sc: &Scenario) -> Resp {
    let o = as_openai(v);
    let (reply, finish) = openai::chat_reply(&o, sc);
    let msgs = o["messages"].as_array().cloned().unwrap_or_default();
    let p = prompt_tokens(msgs.iter().filter_map(|m| m.get("content")));
    let id = request_id();
    if v.get("stream").and_then(Value::as_bool) == Some(true) {
        let mut s = stream_events(&id, &reply, &finish, p);
        if sc.cut_stream {
            s.cut_after_two_content_events();
        }
        return http::sse(s.events, sc);
    }
    http::json(200, chat_json(&id, &reply, &finish, p))
}

pub fn embed(v: &Value) -> Resp {
    let texts: Vec<&str> = v
        .get("texts")
        .and_then(Value::as_array)
        .map(|t| t.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let vectors = arr(texts
        .iter()
        .map(|t| serde_json::to_vec(&embedding(t)[..]).unwrap_or_else(|_| b"[]".to_vec())));
    let tokens = texts
        .iter()
        .map(|t| t.split_whitespace().count() as u64)
        .sum::<u64>()
        .max(1);
    let body = Obj::new()
        .str("id", &request_id())
        .obj("embeddings", Obj::new().raw("float", &vectors))
        .val("texts", &texts)
        .obj(
            "meta",
            Obj::new()
                .obj("api_version", Obj::new().str("version", "2"))
                .obj("billed_units", Obj::new().num("input_tokens", tokens)),
        )
        .str("response_type", "embeddings_by_type")
        .finish();
    http::json(200, body)
}

// ----------------------------------------------------------------------- route

/// `POST /v2/chat` (`embed` false) or `POST /v2/embed`.
pub async fn handle(
    embed_route: bool,
    parts: &Parts,
    parsed: Result<Value, serde_json::Error>,
) -> Resp {
    if let Err(e) = check_auth(&parts.headers) {
        return e.response();
    }
    let v = match parsed {
        Ok(v) => v,
        Err(e) => return not_json(&e).response(),
    };
    let checked = if embed_route {
        validate_embed(&v)
    } else {
        validate_chat(&v)
    };
    if let Err(e) = checked {
        return e.response();
    }
    let model = v.get("model").and_then(Value::as_str).unwrap_or("");
    let sc = scenario(model);
    crate::apply_delay(sc.slow_ms).await;
    if let Some(status) = sc.error_status {
        return simulated_error(status, model).response();
    }
    if sc.context_overflow {
        return context_overflow().response();
    }
    if embed_route {
        embed(&v)
    } else {
        chat(&v, &sc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_sse(s: &EventStream) -> Vec<(String, Value)> {
        s.events
            .iter()
            .map(|e| {
                let t = std::str::from_utf8(e).unwrap();
                let (head, data) = t.split_once("\ndata: ").unwrap();
                let name = head.strip_prefix("event: ").unwrap().to_string();
                (name, serde_json::from_str(data.trim_end()).unwrap())
            })
            .collect()
    }

    #[test]
    fn reply_uses_shared_logic_with_cohere_names() {
        let v = json!({"model": "command-r", "stop_sequences": ["END"], "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "say END now"}]});
        validate_chat(&v).unwrap();
        let (reply, finish) = openai::chat_reply(&as_openai(&v), &Scenario::default());
        assert_eq!(reply, Reply::Text("mock reply to: say ".into()));
        assert_eq!(finish_str(&finish), "STOP_SEQUENCE");
        let v =
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]});
        let (reply, _) = openai::chat_reply(&as_openai(&v), &scenario("m-max-tokens-echo"));
        assert_eq!(reply, Reply::Text("max_tokens=5".into()));
    }

    #[test]
    fn image_parts_do_not_change_the_reply_text() {
        let v = json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "describe"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]});
        validate_chat(&v).unwrap();
        let (reply, _) = openai::chat_reply(&as_openai(&v), &Scenario::default());
        assert_eq!(reply, Reply::Text("mock reply to: describe".into()));
    }

    #[test]
    fn tools_none_and_tool_results() {
        let tools = json!([{"type": "function", "function": {"name": "get_weather"}}]);
        let mut v =
            json!({"model": "m", "tools": tools, "messages": [{"role": "user", "content": "w?"}]});
        let (reply, finish) = openai::chat_reply(&as_openai(&v), &Scenario::default());
        assert_eq!(
            (reply, finish),
            (Reply::Tool("get_weather".into()), Finish::ToolCalls)
        );
        v["tool_choice"] = json!("NONE");
        validate_chat(&v).unwrap();
        let (reply, _) = openai::chat_reply(&as_openai(&v), &Scenario::default());
        assert_eq!(reply, Reply::Text("mock reply to: w?".into()));
        let v = json!({"model": "m", "messages": [
            {"role": "user", "content": "w?"},
            {"role": "assistant", "tool_calls": [{"id": "get_weather_mock_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "get_weather_mock_1", "content": [{"type": "document", "document": {"data": "22C"}}]}]});
        validate_chat(&v).unwrap();
        let (reply, _) = openai::chat_reply(&as_openai(&v), &Scenario::default());
        assert_eq!(reply, Reply::Text("tool said: 22C".into()));
    }

    #[test]
    fn validation_follows_the_api() {
        let ok = json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
        validate_chat(&ok).unwrap();
        let mut bad = ok.clone();
        bad["top_p"] = json!(0.5);
        assert!(validate_chat(&bad).unwrap_err().message.contains("top_p"));
        let mut bad = ok.clone();
        bad["tool_choice"] = json!("auto");
        assert_eq!(validate_chat(&bad).unwrap_err().status, 400);
        assert!(validate_chat(&json!({"model": "m", "messages": []})).is_err());
        assert!(validate_chat(
            &json!({"model": "m", "messages": [{"role": "tool", "content": "x"}]})
        )
        .is_err());
        assert!(validate_embed(&json!({"model": "m", "texts": ["a"]})).is_err());
        validate_embed(&json!({"model": "m", "texts": ["a"], "input_type": "search_query"}))
            .unwrap();
        let mut h = HeaderMap::new();
        assert_eq!(check_auth(&h).unwrap_err().status, 401);
        h.insert(AUTHORIZATION, "Bearer k".parse().unwrap());
        check_auth(&h).unwrap();
        let body: Value = serde_json::from_slice(&simulated_error(429, "m").body()).unwrap();
        assert!(body["id"].is_string() && body["message"].as_str().unwrap().contains("429"));
    }

    #[test]
    fn chat_json_shape() {
        let v: Value = serde_json::from_slice(&chat_json(
            "i",
            &Reply::Text("a b".into()),
            &Finish::Stop,
            3,
        ))
        .unwrap();
        assert_eq!(
            v["message"]["content"][0],
            json!({"type": "text", "text": "a b"})
        );
        assert_eq!(v["finish_reason"], "COMPLETE");
        assert_eq!(
            v["usage"]["billed_units"],
            json!({"input_tokens": 3, "output_tokens": 2})
        );
        let v: Value = serde_json::from_slice(&chat_json(
            "i",
            &Reply::Tool("f".into()),
            &Finish::ToolCalls,
            1,
        ))
        .unwrap();
        assert_eq!(
            v["message"]["tool_calls"][0]["function"]["arguments"],
            TOOL_ARGS
        );
        assert_eq!(v["message"]["tool_plan"], "I will call f.");
        assert_eq!(v["finish_reason"], "TOOL_CALL");
    }

    #[test]
    fn text_stream_events() {
        let s = stream_events(
            "i",
            &Reply::Text("mock reply to: hi".into()),
            &Finish::Stop,
            2,
        );
        let ev = parse_sse(&s);
        assert!(ev.iter().all(|(name, data)| data["type"] == name.as_str()));
        assert_eq!(ev[0].1["id"], "i");
        let text: String = ev
            .iter()
            .filter(|(n, _)| n == "content-delta")
            .filter_map(|(_, d)| d["delta"]["message"]["content"]["text"].as_str())
            .collect();
        assert_eq!(text, "mock reply to: hi");
        let (last, end) = ev.last().unwrap();
        assert_eq!(last, "message-end");
        assert_eq!(end["delta"]["finish_reason"], "COMPLETE");
        assert_eq!(end["delta"]["usage"]["tokens"]["output_tokens"], 4);
        assert_eq!(s.content_idx.len(), 4);
    }

    #[test]
    fn tool_stream_events() {
        let s = stream_events("i", &Reply::Tool("f".into()), &Finish::ToolCalls, 2);
        let ev = parse_sse(&s);
        let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "message-start",
                "tool-plan-delta",
                "tool-call-start",
                "tool-call-delta",
                "tool-call-delta",
                "tool-call-delta",
                "tool-call-end",
                "message-end"
            ]
        );
        let args: String = ev
            .iter()
            .filter_map(|(_, d)| {
                d["delta"]["message"]["tool_calls"]["function"]["arguments"].as_str()
            })
            .collect();
        assert_eq!(args, TOOL_ARGS);
        assert_eq!(ev[2].1["delta"]["message"]["tool_calls"]["id"], "f_mock_1");
    }

    #[test]
    fn embed_shape() {
        let r =
            embed(&json!({"model": "e", "texts": ["a b", "c"], "input_type": "search_document"}));
        assert_eq!(r.status(), 200);
    }
}
