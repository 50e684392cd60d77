//! Ollama's API: `POST /api/chat`, `POST /api/generate` (JSON, or NDJSON streams: one object
//! per line, the last with `done: true` and the counts), `POST /api/embed`, and Ollama's error
//! shape `{"error": "..."}`. Like the real server, a request without `stream` streams.
//!
//! Chat replies come from OpenAI's logic ([`openai::chat_reply`]) with Ollama's names mapped
//! back (`options.num_predict` → `max_tokens`, `options.stop` → `stop`). Generate replies to
//! the last `### User:` section of the prompt (LiteLLM's flattening), else the whole prompt.

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::{json, Value};

use crate::http::{self, Resp};
use crate::json::{arr, Obj};
use crate::logic::{
    finalize_text, prompt_tokens, scenario, split_words_keep_spaces, stop_list, word_count,
    EventStream, Finish, Reply, Scenario, TOOL_ARGS,
};
use crate::openai;

// ---------------------------------------------------------------------- errors

/// `{"error": "..."}` with a status.
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

    pub fn body(&self) -> Vec<u8> {
        Obj::new().str("error", &self.message).finish()
    }

    pub fn response(&self) -> Resp {
        http::json(self.status, self.body())
    }
}

/// Ollama's refusal of an input longer than the context (its server's wording, which it
/// uses where it does not truncate).
pub fn context_overflow() -> ApiError {
    ApiError::new(400, "input length exceeds the context length")
}

pub fn simulated_error(status: u16, model: &str) -> ApiError {
    let message = match status {
        404 => format!("model \"{model}\" not found, try pulling it first"),
        _ => format!("mock-provider simulated error {status} for model '{model}'"),
    };
    ApiError::new(status, message)
}

pub fn not_json(err: &serde_json::Error) -> ApiError {
    ApiError::new(400, format!("invalid character in request body: {err}"))
}

// ------------------------------------------------------------------ validation

fn require_model(v: &Value) -> Result<(), ApiError> {
    match v.get("model") {
        Some(Value::String(s)) if !s.is_empty() => Ok(()),
        _ => Err(ApiError::new(400, "model is required")),
    }
}

pub fn validate_chat(v: &Value) -> Result<(), ApiError> {
    require_model(v)?;
    let msgs = v
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::new(400, "messages are required"))?;
    for m in msgs {
        match m.get("role").and_then(Value::as_str) {
            Some("system" | "user" | "assistant" | "tool") => {}
            other => {
                return Err(ApiError::new(
                    400,
                    format!("invalid role: {}", other.unwrap_or("")),
                ))
            }
        }
        if m.get("content").is_some_and(|c| !c.is_string()) {
            return Err(ApiError::new(
                400,
                "json: cannot unmarshal array into Go struct field Message.messages.content of type string",
            ));
        }
        let object_args = m
            .get("tool_calls")
            .and_then(Value::as_array)
            .is_none_or(|calls| {
                calls.iter().all(|c| {
                    c.pointer("/function/arguments")
                        .is_some_and(Value::is_object)
                })
            });
        if !object_args {
            return Err(ApiError::new(
                400,
                "json: cannot unmarshal string into Go struct field ToolCallFunction.messages.tool_calls.function.arguments of type map[string]interface {}",
            ));
        }
    }
    check_options(v)
}

pub fn validate_generate(v: &Value) -> Result<(), ApiError> {
    require_model(v)?;
    if v.get("prompt").is_some_and(|p| !p.is_string()) {
        return Err(ApiError::new(400, "prompt must be a string"));
    }
    check_options(v)
}

fn check_options(v: &Value) -> Result<(), ApiError> {
    match v.get("options") {
        None | Some(Value::Object(_)) => Ok(()),
        Some(_) => Err(ApiError::new(400, "options must be an object")),
    }
}

pub fn validate_embed(v: &Value) -> Result<(), ApiError> {
    require_model(v)?;
    match v.get("input") {
        Some(Value::String(_)) => Ok(()),
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => Ok(()),
        _ => Err(ApiError::new(400, "invalid input type")),
    }
}

// ---------------------------------------------------------------------- replies

/// Ollama streams unless `stream` is `false`.
fn is_stream(v: &Value) -> bool {
    v.get("stream").and_then(Value::as_bool) != Some(false)
}

fn option<'a>(v: &'a Value, k: &str) -> Option<&'a Value> {
    v.get("options").and_then(|o| o.get(k))
}

/// The chat request with Ollama's names mapped to OpenAI's, for the shared reply logic.
fn as_openai(v: &Value) -> Value {
    let mut o = json!({
        "messages": v.get("messages").cloned().unwrap_or(json!([])),
        "stop": option(v, "stop").cloned().unwrap_or(Value::Null),
        "max_tokens": option(v, "num_predict").cloned().unwrap_or(Value::Null),
    });
    if let Some(tools) = v.get("tools") {
        o["tools"] = tools.clone();
    }
    o
}

fn done_reason(f: &Finish) -> &'static str {
    match f {
        Finish::Length => "length",
        _ => "stop",
    }
}

/// Now as RFC 3339 with nanoseconds, as Ollama writes `created_at`.
pub fn created_at() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(now.as_secs(), now.subsec_nanos())
}

fn rfc3339(secs: u64, nanos: u32) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The counters of a final line.
fn with_counts(o: Obj, p: u64, c: u64) -> Obj {
    o.num("total_duration", 1_000_000 + c * 10_000)
        .num("load_duration", 1000)
        .num("prompt_eval_count", p)
        .num("prompt_eval_duration", 1000)
        .num("eval_count", c)
        .num("eval_duration", c * 10_000)
}

/// One NDJSON line.
fn line(o: Obj) -> Bytes {
    let json = o.finish();
    let mut b = BytesMut::with_capacity(json.len() + 1);
    b.put_slice(&json);
    b.put_u8(b'\n');
    b.freeze()
}

fn head(model: &str, created: &str) -> Obj {
    Obj::new().str("model", model).str("created_at", created)
}

fn tool_calls_json(name: &str) -> Vec<u8> {
    let call = Obj::new()
        .obj(
            "function",
            Obj::new()
                .str("name", name)
                .raw("arguments", TOOL_ARGS.as_bytes()),
        )
        .finish();
    arr([call])
}

fn message(content: &str, tool: Option<&str>) -> Obj {
    let m = Obj::new().str("role", "assistant").str("content", content);
    match tool {
        Some(name) => m.raw("tool_calls", &tool_calls_json(name)),
        None => m,
    }
}

pub fn chat_response_json(model: &str, reply: &Reply, finish: &Finish, p: u64) -> Vec<u8> {
    let created = created_at();
    let msg = match reply {
        Reply::Text(t) => message(t, None),
        Reply::Tool(name) => message("", Some(name)),
    };
    let o = head(model, &created)
        .obj("message", msg)
        .str("done_reason", done_reason(finish))
        .val("done", &true);
    with_counts(o, p, reply.completion_tokens()).finish()
}

pub fn chat_stream_lines(model: &str, reply: &Reply, finish: &Finish, p: u64) -> EventStream {
    let created = created_at();
    let mut s = EventStream::default();
    let partial = |m: Obj| line(head(model, &created).obj("message", m).val("done", &false));
    match reply {
        Reply::Text(t) => {
            for piece in split_words_keep_spaces(t) {
                s.push_content(partial(message(piece, None)));
            }
        }
        // Ollama sends tool calls whole, in one line.
        Reply::Tool(name) => s.push_content(partial(message("", Some(name)))),
    }
    let last = head(model, &created)
        .obj("message", message("", None))
        .str("done_reason", done_reason(finish))
        .val("done", &true);
    s.push(line(with_counts(last, p, reply.completion_tokens())));
    s
}

pub fn chat(v: &Value, model: &str, sc: &Scenario) -> Resp {
    let o = as_openai(v);
    let (reply, finish) = openai::chat_reply(&o, sc);
    let msgs = o["messages"].as_array().cloned().unwrap_or_default();
    let p = prompt_tokens(msgs.iter().filter_map(|m| m.get("content")));
    if is_stream(v) {
        let mut s = chat_stream_lines(model, &reply, &finish, p);
        if sc.cut_stream {
            s.cut_after_two_content_events();
        }
        return http::ndjson(s.events, sc);
    }
    http::json(200, chat_response_json(model, &reply, &finish, p))
}

/// What a generate prompt asks: its last `### User:` section, else all of it.
fn prompt_question(prompt: &str) -> &str {
    let last = prompt.rsplit("### User:").next().unwrap_or(prompt);
    let end = last.find("### ").unwrap_or(last.len());
    last[..end].trim()
}

pub fn generate(v: &Value, model: &str, sc: &Scenario) -> Resp {
    let prompt = v.get("prompt").and_then(Value::as_str).unwrap_or("");
    let (text, finish) = if sc.echo_max_tokens {
        (
            crate::logic::echo_text("max_tokens", option(v, "num_predict")),
            Finish::Stop,
        )
    } else {
        let stops = stop_list(option(v, "stop"));
        let max = option(v, "num_predict").and_then(Value::as_u64);
        finalize_text(
            crate::logic::reply_to(prompt_question(prompt), sc),
            &stops,
            max,
        )
    };
    let system = v.get("system").and_then(Value::as_str).unwrap_or("");
    let p = (word_count(prompt) + word_count(system)).max(1);
    let c = word_count(&text);
    let created = created_at();
    let last = |response: &str| {
        let o = head(model, &created)
            .str("response", response)
            .val("done", &true)
            .str("done_reason", done_reason(&finish))
            .raw("context", b"[1,2,3]");
        with_counts(o, p, c)
    };
    if !is_stream(v) {
        return http::json(200, last(&text).finish());
    }
    let mut s = EventStream::default();
    for piece in split_words_keep_spaces(&text) {
        let o = head(model, &created)
            .str("response", piece)
            .val("done", &false);
        s.push_content(line(o));
    }
    s.push(line(last("")));
    if sc.cut_stream {
        s.cut_after_two_content_events();
    }
    http::ndjson(s.events, sc)
}

pub fn embed(v: &Value, model: &str) -> Resp {
    let inputs: Vec<&str> = match v.get("input") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let vectors = arr(inputs.iter().map(|t| {
        serde_json::to_vec(&crate::logic::embedding(t)[..]).unwrap_or_else(|_| b"[]".to_vec())
    }));
    let tokens = inputs.iter().map(|t| word_count(t)).sum::<u64>().max(1);
    let body = Obj::new()
        .str("model", model)
        .raw("embeddings", &vectors)
        .num("total_duration", 14_143_917)
        .num("load_duration", 1_019_500)
        .num("prompt_eval_count", tokens)
        .finish();
    http::json(200, body)
}

// ----------------------------------------------------------------------- route

/// Which Ollama endpoint a request came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Chat,
    Generate,
    Embed,
}

/// Ollama takes no key; one sent (by a proxy setup) is ignored.
pub async fn handle(endpoint: Endpoint, parsed: Result<Value, serde_json::Error>) -> Resp {
    let v = match parsed {
        Ok(v) if v.is_object() => v,
        Ok(_) => return ApiError::new(400, "request body must be a JSON object").response(),
        Err(e) => return not_json(&e).response(),
    };
    let checked = match endpoint {
        Endpoint::Chat => validate_chat(&v),
        Endpoint::Generate => validate_generate(&v),
        Endpoint::Embed => validate_embed(&v),
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
    match endpoint {
        Endpoint::Chat => chat(&v, model, &sc),
        Endpoint::Generate => generate(&v, model, &sc),
        Endpoint::Embed => embed(&v, model),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &EventStream) -> Vec<Value> {
        s.events
            .iter()
            .map(|b| {
                let t = std::str::from_utf8(b).unwrap();
                assert!(
                    t.ends_with('\n') && !t[..t.len() - 1].contains('\n'),
                    "{t:?}"
                );
                serde_json::from_str(t).unwrap()
            })
            .collect()
    }

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339(1691176965, 499127000),
            "2023-08-04T19:22:45.499127000Z"
        );
        assert_eq!(rfc3339(1709208000, 5), "2024-02-29T12:00:00.000000005Z");
        assert!(created_at().ends_with('Z'));
    }

    #[test]
    fn chat_reply_maps_options() {
        let v = json!({"model": "m", "options": {"num_predict": 2, "stop": ["zz"]},
                       "messages": [{"role": "user", "content": "a b c"}]});
        validate_chat(&v).unwrap();
        let (reply, finish) = openai::chat_reply(&as_openai(&v), &Scenario::default());
        assert_eq!(
            (reply, done_reason(&finish)),
            (Reply::Text("mock reply".into()), "length")
        );
        let (reply, _) = openai::chat_reply(&as_openai(&v), &scenario("m-max-tokens-echo"));
        assert_eq!(reply, Reply::Text("max_tokens=2".into()));
    }

    #[test]
    fn validation_follows_the_server() {
        assert!(validate_chat(&json!({"messages": []})).is_err());
        let parts = json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]});
        assert!(validate_chat(&parts).is_err(), "content must be a string");
        let text_args = json!({"model": "m", "messages": [{"role": "assistant", "content": "",
            "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]}]});
        assert!(
            validate_chat(&text_args).is_err(),
            "arguments must be an object"
        );
        assert!(validate_generate(&json!({"model": "m", "prompt": 5})).is_err());
        assert!(validate_embed(&json!({"model": "m", "input": [1]})).is_err());
        validate_embed(&json!({"model": "m", "input": ["a"]})).unwrap();
        let e = simulated_error(404, "llama9");
        assert_eq!(e.status, 404);
        let body: Value = serde_json::from_slice(&e.body()).unwrap();
        assert_eq!(
            body["error"],
            "model \"llama9\" not found, try pulling it first"
        );
    }

    #[test]
    fn chat_stream_lines_end_with_done() {
        let s = chat_stream_lines(
            "m",
            &Reply::Text("mock reply to: hi".into()),
            &Finish::Stop,
            2,
        );
        let ls = lines(&s);
        let text: String = ls
            .iter()
            .filter_map(|l| l["message"]["content"].as_str())
            .collect();
        assert_eq!(text, "mock reply to: hi");
        assert!(ls[..ls.len() - 1].iter().all(|l| l["done"] == false));
        let last = ls.last().unwrap();
        assert_eq!(
            (last["done"].as_bool(), last["done_reason"].as_str()),
            (Some(true), Some("stop"))
        );
        assert_eq!(
            (
                last["prompt_eval_count"].as_u64(),
                last["eval_count"].as_u64()
            ),
            (Some(2), Some(4))
        );
        let s = chat_stream_lines("m", &Reply::Tool("f".into()), &Finish::ToolCalls, 2);
        let ls = lines(&s);
        assert_eq!(
            ls[0]["message"]["tool_calls"][0]["function"]["arguments"],
            json!({"city": "Paris"})
        );
        assert_eq!(s.content_idx.len(), 1);
    }

    #[test]
    fn chat_json_and_generate_question() {
        let v: Value = serde_json::from_slice(&chat_response_json(
            "m",
            &Reply::Text("a".into()),
            &Finish::Stop,
            1,
        ))
        .unwrap();
        assert_eq!(v["message"]["content"], "a");
        assert_eq!(v["done"], true);
        assert_eq!(
            prompt_question("### User:\nhi\n\n### Assistant:\nyo\n\n### User:\nwhy?\n\n"),
            "why?"
        );
        assert_eq!(prompt_question("plain prompt"), "plain prompt");
    }
}
