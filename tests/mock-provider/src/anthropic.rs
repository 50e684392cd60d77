//! Anthropic Messages API wire format and error shape.

use bytes::Bytes;
use hyper::HeaderMap;
use serde_json::Value;

use crate::http::{self, next_id, Resp};
use crate::json::{arr, Obj};
use crate::logic::{
    content_text, echo_text, finalize_text, has_tool_result, prompt_tokens,
    split_words_keep_spaces, sse_event, stop_list, tool_result_text, EventStream, Finish, Reply,
    Scenario, TOOL_ARG_FRAGMENTS,
};

pub const TOOL_USE_ID: &str = "toolu_mock_1";

/// Top-level request fields the real API accepts; anything else is rejected
/// with "Extra inputs are not permitted", as the real API does.
const ALLOWED_FIELDS: &[&str] = &[
    "model",
    "messages",
    "max_tokens",
    "metadata",
    "stop_sequences",
    "stream",
    "system",
    "temperature",
    "top_k",
    "top_p",
    "tools",
    "tool_choice",
    "thinking",
    "service_tier",
    "container",
    "mcp_servers",
    "context_management",
];

const BLOCK_TYPES: &[&str] = &[
    "text",
    "image",
    "document",
    "tool_use",
    "tool_result",
    "thinking",
    "redacted_thinking",
    "search_result",
    "server_tool_use",
    "web_search_tool_result",
    "container_upload",
];

// ---------------------------------------------------------------------- errors

/// `{"type":"error","error":{"type":...,"message":...}}`
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub typ: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, typ: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            typ,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(400, "invalid_request_error", message)
    }

    pub fn body(&self) -> Vec<u8> {
        Obj::new()
            .str("type", "error")
            .obj(
                "error",
                Obj::new()
                    .str("type", self.typ)
                    .str("message", &self.message),
            )
            .finish()
    }

    pub fn response(&self) -> Resp {
        http::json(self.status, self.body())
    }
}

/// `x-api-key` non-empty and `anthropic-version` present.
/// Like the real API (and the current official SDK, which sends it), an
/// `authorization: Bearer <key>` header is accepted in place of `x-api-key`.
pub fn check_headers(headers: &HeaderMap) -> Result<(), ApiError> {
    let key = headers
        .get("x-api-key")
        .map(|v| v.as_bytes())
        .unwrap_or(b"");
    let bearer = headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .unwrap_or(b"");
    let blank = |k: &[u8]| k.iter().all(u8::is_ascii_whitespace);
    if blank(key) && blank(bearer) {
        return Err(ApiError::new(
            401,
            "authentication_error",
            "x-api-key header is required",
        ));
    }
    if headers.get("anthropic-version").is_none() {
        return Err(ApiError::invalid("anthropic-version: header is required"));
    }
    Ok(())
}

/// Anthropic's answer to a prompt longer than the context window.
pub fn context_overflow() -> ApiError {
    ApiError::new(
        400,
        "invalid_request_error",
        "prompt is too long: 215033 tokens > 200000 maximum",
    )
}

pub fn simulated_error(status: u16, model: &str) -> ApiError {
    let (typ, what) = match status {
        400 => ("invalid_request_error", "Invalid request"),
        401 => ("authentication_error", "invalid x-api-key"),
        403 => (
            "permission_error",
            "Your API key does not have permission to use the specified resource",
        ),
        404 => (
            "not_found_error",
            "The requested resource could not be found",
        ),
        413 => (
            "request_too_large",
            "Request exceeds the maximum allowed number of bytes",
        ),
        429 => (
            "rate_limit_error",
            "Number of request tokens has exceeded your per-minute rate limit",
        ),
        529 => ("overloaded_error", "Overloaded"),
        500..=599 => ("api_error", "Internal server error"),
        _ => ("invalid_request_error", "Request failed"),
    };
    ApiError::new(
        status,
        typ,
        format!("{what} (mock-provider simulated error {status} for model '{model}')"),
    )
}

pub fn not_json(err: &serde_json::Error) -> ApiError {
    ApiError::invalid(format!(
        "There was an issue with your request body: invalid JSON ({err})"
    ))
}

// ------------------------------------------------------------------ validation

pub fn validate(v: &Value) -> Result<(), ApiError> {
    let Some(obj) = v.as_object() else {
        return Err(ApiError::invalid("Input should be a valid dictionary"));
    };
    for k in obj.keys() {
        if !ALLOWED_FIELDS.contains(&k.as_str()) {
            return Err(ApiError::invalid(format!(
                "{k}: Extra inputs are not permitted"
            )));
        }
    }
    match v.get("model") {
        Some(Value::String(s)) if !s.is_empty() => {}
        None => return Err(ApiError::invalid("model: Field required")),
        _ => return Err(ApiError::invalid("model: Input should be a valid string")),
    }
    match v.get("max_tokens") {
        None => return Err(ApiError::invalid("max_tokens: Field required")),
        Some(m) => match m.as_i64() {
            None => {
                return Err(ApiError::invalid(
                    "max_tokens: Input should be a valid integer",
                ))
            }
            Some(n) if n < 1 => {
                return Err(ApiError::invalid(
                    "max_tokens: Input should be greater than or equal to 1",
                ))
            }
            _ => {}
        },
    }
    if let Some(t) = v.get("temperature") {
        match t.as_f64() {
            None => {
                return Err(ApiError::invalid(
                    "temperature: Input should be a valid number",
                ))
            }
            Some(x) if !(0.0..=1.0).contains(&x) => {
                return Err(ApiError::invalid(if x < 0.0 {
                    "temperature: Input should be greater than or equal to 0"
                } else {
                    "temperature: Input should be less than or equal to 1"
                }))
            }
            _ => {}
        }
    }
    if let Some(s) = v.get("stop_sequences") {
        if !s.as_array().is_some_and(|a| a.iter().all(Value::is_string)) {
            return Err(ApiError::invalid(
                "stop_sequences: Input should be a valid list of strings",
            ));
        }
    }
    if let Some(s) = v.get("stream") {
        if !s.is_boolean() {
            return Err(ApiError::invalid("stream: Input should be a valid boolean"));
        }
    }
    match v.get("system") {
        None | Some(Value::String(_)) => {}
        Some(Value::Array(blocks)) => {
            for (i, b) in blocks.iter().enumerate() {
                if b.get("type").and_then(Value::as_str) != Some("text")
                    || !b.get("text").is_some_and(Value::is_string)
                {
                    return Err(ApiError::invalid(format!(
                        "system.{i}: Input should be a valid text block"
                    )));
                }
            }
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "system: Input should be a valid string or list of text blocks",
            ))
        }
    }
    if let Some(tools) = v.get("tools") {
        let Some(tools) = tools.as_array() else {
            return Err(ApiError::invalid("tools: Input should be a valid list"));
        };
        for (i, t) in tools.iter().enumerate() {
            let custom = t
                .get("type")
                .and_then(Value::as_str)
                .is_none_or(|ty| ty == "custom");
            if !t.get("name").is_some_and(Value::is_string) {
                return Err(ApiError::invalid(format!("tools.{i}.name: Field required")));
            }
            if custom && !t.get("input_schema").is_some_and(Value::is_object) {
                return Err(ApiError::invalid(format!(
                    "tools.{i}.custom.input_schema: Field required"
                )));
            }
        }
    }
    if let Some(tc) = v.get("tool_choice") {
        match tc.get("type").and_then(Value::as_str) {
            Some("auto" | "any" | "none") => {}
            Some("tool") if tc.get("name").is_some_and(Value::is_string) => {}
            _ => {
                return Err(ApiError::invalid(
                    "tool_choice: Input tag does not match any of the expected tags: 'auto', 'any', 'tool', 'none'",
                ))
            }
        }
    }
    validate_messages(v.get("messages"))
}

fn validate_messages(msgs: Option<&Value>) -> Result<(), ApiError> {
    let msgs = match msgs {
        None => return Err(ApiError::invalid("messages: Field required")),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(ApiError::invalid("messages: Input should be a valid list")),
    };
    if msgs.is_empty() {
        return Err(ApiError::invalid(
            "messages: at least one message is required",
        ));
    }
    let last = msgs.len() - 1;
    // tool_use ids of the previous assistant message, to pair with tool_result blocks.
    let mut open_tool_uses: Vec<&str> = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str);
        match role {
            Some("user") | Some("assistant") => {}
            Some("system") => {
                return Err(ApiError::invalid(
                    "messages: Unexpected role \"system\". The Messages API accepts a top-level `system` parameter, not \"system\" as an input message role.",
                ))
            }
            Some(_) => return Err(ApiError::invalid(format!("messages.{i}.role: Input should be 'user' or 'assistant'"))),
            None => return Err(ApiError::invalid(format!("messages.{i}.role: Field required"))),
        }
        let role = role.unwrap_or("user");
        let content = m.get("content");
        let empty = match content {
            None => {
                return Err(ApiError::invalid(format!(
                    "messages.{i}.content: Field required"
                )))
            }
            Some(Value::String(s)) => s.is_empty(),
            Some(Value::Array(a)) => a.is_empty(),
            Some(_) => {
                return Err(ApiError::invalid(format!(
                    "messages.{i}.content: Input should be a valid list"
                )))
            }
        };
        if empty && !(i == last && role == "assistant") {
            return Err(ApiError::invalid(format!(
                "messages.{i}: all messages must have non-empty content except for the optional final assistant message"
            )));
        }
        let mut tool_results: Vec<&str> = Vec::new();
        let mut tool_uses: Vec<&str> = Vec::new();
        if let Some(Value::Array(blocks)) = content {
            for (j, b) in blocks.iter().enumerate() {
                validate_block(i, j, role, b)?;
                match b.get("type").and_then(Value::as_str) {
                    Some("tool_result") => tool_results
                        .push(b.get("tool_use_id").and_then(Value::as_str).unwrap_or("")),
                    Some("tool_use") => {
                        tool_uses.push(b.get("id").and_then(Value::as_str).unwrap_or(""))
                    }
                    _ => {}
                }
            }
        }
        for id in &tool_results {
            if !open_tool_uses.contains(id) {
                return Err(ApiError::invalid(format!(
                    "messages.{i}.content: unexpected `tool_use_id` found in `tool_result` blocks: {id}. Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
                )));
            }
        }
        let unanswered: Vec<&str> = open_tool_uses
            .iter()
            .filter(|id| !tool_results.contains(id))
            .copied()
            .collect();
        if !unanswered.is_empty() {
            return Err(ApiError::invalid(format!(
                "messages.{}: `tool_use` ids were found without `tool_result` blocks immediately after: {}. Each `tool_use` block must have a corresponding `tool_result` block in the next message.",
                i - 1,
                unanswered.join(", ")
            )));
        }
        open_tool_uses = tool_uses;
    }
    Ok(())
}

fn validate_block(i: usize, j: usize, role: &str, b: &Value) -> Result<(), ApiError> {
    let at = format!("messages.{i}.content.{j}");
    let typ = b.get("type").and_then(Value::as_str).unwrap_or("");
    if !BLOCK_TYPES.contains(&typ) {
        return Err(ApiError::invalid(format!(
            "{at}: Input tag '{typ}' found using 'type' does not match any of the expected tags: {}",
            BLOCK_TYPES.iter().map(|t| format!("'{t}'")).collect::<Vec<_>>().join(", ")
        )));
    }
    match typ {
        "text" => match b.get("text") {
            Some(Value::String(s)) if s.is_empty() => Err(ApiError::invalid(
                "messages: text content blocks must be non-empty",
            )),
            Some(Value::String(_)) => Ok(()),
            _ => Err(ApiError::invalid(format!("{at}.text: Field required"))),
        },
        "image" => {
            let src = b.get("source");
            match src.and_then(|s| s.get("type")).and_then(Value::as_str) {
                Some("base64") => {
                    let media = src.and_then(|s| s.get("media_type")).and_then(Value::as_str).unwrap_or("");
                    if !["image/jpeg", "image/png", "image/gif", "image/webp"].contains(&media) {
                        return Err(ApiError::invalid(format!(
                            "{at}.image.source.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"
                        )));
                    }
                    if !src.and_then(|s| s.get("data")).is_some_and(Value::is_string) {
                        return Err(ApiError::invalid(format!("{at}.image.source.base64.data: Field required")));
                    }
                    Ok(())
                }
                Some("url") if src.and_then(|s| s.get("url")).is_some_and(Value::is_string) => Ok(()),
                Some("file") if src.and_then(|s| s.get("file_id")).is_some_and(Value::is_string) => Ok(()),
                _ => Err(ApiError::invalid(format!("{at}.image.source: Input tag does not match any of the expected tags: 'base64', 'url', 'file'"))),
            }
        }
        "tool_use" if role != "assistant" => Err(ApiError::invalid(format!(
            "{at}: tool_use blocks are only allowed in assistant messages"
        ))),
        "tool_use" => {
            if !b.get("id").is_some_and(Value::is_string)
                || !b.get("name").is_some_and(Value::is_string)
            {
                return Err(ApiError::invalid(format!(
                    "{at}.tool_use: id and name are required"
                )));
            }
            if !b.get("input").is_some_and(Value::is_object) {
                return Err(ApiError::invalid(format!(
                    "{at}.tool_use.input: Input should be a valid dictionary"
                )));
            }
            Ok(())
        }
        "tool_result" if role != "user" => Err(ApiError::invalid(format!(
            "{at}: tool_result blocks are only allowed in user messages"
        ))),
        "tool_result" => {
            if !b.get("tool_use_id").is_some_and(Value::is_string) {
                return Err(ApiError::invalid(format!(
                    "{at}.tool_result.tool_use_id: Field required"
                )));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------- replies

fn stop_reason(f: &Finish) -> &'static str {
    match f {
        Finish::Stop => "end_turn",
        Finish::StopSequence(_) => "stop_sequence",
        Finish::Length => "max_tokens",
        Finish::ToolCalls => "tool_use",
    }
}

fn stop_sequence(f: &Finish) -> Option<&str> {
    match f {
        Finish::StopSequence(s) => Some(s),
        _ => None,
    }
}

fn tool_to_call(v: &Value) -> Option<String> {
    let tools = v.get("tools")?.as_array().filter(|t| !t.is_empty())?;
    let choice = v.get("tool_choice");
    match choice.and_then(|c| c.get("type")).and_then(Value::as_str) {
        Some("none") => return None,
        Some("tool") => {
            if let Some(name) = choice.and_then(|c| c.get("name")).and_then(Value::as_str) {
                return Some(name.to_owned());
            }
        }
        _ => {}
    }
    Some(
        tools[0]
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("tool")
            .to_owned(),
    )
}

pub fn reply(v: &Value, sc: &Scenario) -> (Reply, Finish) {
    if sc.echo_max_tokens {
        return (
            Reply::Text(echo_text("max_tokens", v.get("max_tokens"))),
            Finish::Stop,
        );
    }
    let empty = Vec::new();
    let msgs = v
        .get("messages")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    let stops = stop_list(v.get("stop_sequences"));
    let max = v.get("max_tokens").and_then(Value::as_u64);
    let text_reply = |t: String| {
        let (t, f) = finalize_text(t, &stops, max);
        (Reply::Text(t), f)
    };
    let is_user = |m: &Value| m.get("role").and_then(Value::as_str) == Some("user");
    if let Some(last) = msgs.last() {
        let content = last.get("content").unwrap_or(&Value::Null);
        if is_user(last) && has_tool_result(content) {
            return text_reply(format!("tool said: {}", tool_result_text(content)));
        }
    }
    if let Some(name) = tool_to_call(v) {
        return (Reply::Tool(name), Finish::ToolCalls);
    }
    let user = msgs
        .iter()
        .rev()
        .find(|m| is_user(m))
        .and_then(|m| m.get("content"))
        .map(content_text)
        .unwrap_or_default();
    text_reply(crate::logic::reply_to(&user, sc))
}

pub fn input_tokens(v: &Value) -> u64 {
    let empty = Vec::new();
    let msgs = v
        .get("messages")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    prompt_tokens(
        v.get("system")
            .into_iter()
            .chain(msgs.iter().filter_map(|m| m.get("content"))),
    )
}

fn usage(input: u64, output: u64) -> Obj {
    Obj::new()
        .num("input_tokens", input)
        .num("cache_creation_input_tokens", 0)
        .num("cache_read_input_tokens", 0)
        .num("output_tokens", output)
}

fn tool_input() -> &'static [u8] {
    b"{\"city\":\"Paris\"}"
}

pub fn message_json(id: &str, model: &str, reply: &Reply, finish: &Finish, input: u64) -> Vec<u8> {
    let content = match reply {
        Reply::Text(t) if t.is_empty() => b"[]".to_vec(),
        Reply::Text(t) => arr([Obj::new().str("type", "text").str("text", t).finish()]),
        Reply::Tool(name) => arr([Obj::new()
            .str("type", "tool_use")
            .str("id", TOOL_USE_ID)
            .str("name", name)
            .raw("input", tool_input())
            .finish()]),
    };
    Obj::new()
        .str("id", id)
        .str("type", "message")
        .str("role", "assistant")
        .str("model", model)
        .raw("content", &content)
        .str("stop_reason", stop_reason(finish))
        .opt_str("stop_sequence", stop_sequence(finish))
        .obj("usage", usage(input, reply.completion_tokens()))
        .finish()
}

pub fn stream_events(
    id: &str,
    model: &str,
    reply: &Reply,
    finish: &Finish,
    input: u64,
) -> EventStream {
    let mut s = EventStream::default();
    let message = Obj::new()
        .str("id", id)
        .str("type", "message")
        .str("role", "assistant")
        .str("model", model)
        .raw("content", b"[]")
        .null("stop_reason")
        .null("stop_sequence")
        .obj("usage", usage(input, 1));
    s.push(sse_event(
        "message_start",
        &Obj::new()
            .str("type", "message_start")
            .obj("message", message)
            .finish(),
    ));
    let block = match reply {
        Reply::Text(_) => Obj::new().str("type", "text").str("text", ""),
        Reply::Tool(name) => Obj::new()
            .str("type", "tool_use")
            .str("id", TOOL_USE_ID)
            .str("name", name)
            .raw("input", b"{}"),
    };
    s.push(sse_event(
        "content_block_start",
        &Obj::new()
            .str("type", "content_block_start")
            .num("index", 0)
            .obj("content_block", block)
            .finish(),
    ));
    s.push(sse_event("ping", b"{\"type\":\"ping\"}"));
    let delta = |d: Obj| -> Bytes {
        sse_event(
            "content_block_delta",
            &Obj::new()
                .str("type", "content_block_delta")
                .num("index", 0)
                .obj("delta", d)
                .finish(),
        )
    };
    match reply {
        Reply::Text(t) => {
            for piece in split_words_keep_spaces(t) {
                s.push_content(delta(
                    Obj::new().str("type", "text_delta").str("text", piece),
                ));
            }
        }
        Reply::Tool(_) => {
            for frag in TOOL_ARG_FRAGMENTS {
                s.push_content(delta(
                    Obj::new()
                        .str("type", "input_json_delta")
                        .str("partial_json", frag),
                ));
            }
        }
    }
    s.push(sse_event(
        "content_block_stop",
        &Obj::new()
            .str("type", "content_block_stop")
            .num("index", 0)
            .finish(),
    ));
    s.push(sse_event(
        "message_delta",
        &Obj::new()
            .str("type", "message_delta")
            .obj(
                "delta",
                Obj::new()
                    .str("stop_reason", stop_reason(finish))
                    .opt_str("stop_sequence", stop_sequence(finish)),
            )
            .obj(
                "usage",
                Obj::new().num("output_tokens", reply.completion_tokens()),
            )
            .finish(),
    ));
    s.push(sse_event("message_stop", b"{\"type\":\"message_stop\"}"));
    s
}

pub fn messages(v: &Value, model: &str, sc: &Scenario) -> Resp {
    let input = input_tokens(v);
    let (reply, finish) = reply(v, sc);
    let id = format!("msg_mock{:016}", next_id());
    if v.get("stream").and_then(Value::as_bool) == Some(true) {
        let mut s = stream_events(&id, model, &reply, &finish, input);
        if sc.cut_stream {
            s.cut_after_two_content_events();
        }
        http::sse(s.events, sc)
    } else {
        http::json(200, message_json(&id, model, &reply, &finish, input))
    }
}

pub fn count_tokens(v: &Value) -> Resp {
    http::json(
        200,
        Obj::new().num("input_tokens", input_tokens(v)).finish(),
    )
}

const MODELS: [(&str, &str, &str); 3] = [
    (
        "claude-3-5-sonnet-20240620",
        "Claude Sonnet 3.5 (Old)",
        "2024-06-20T00:00:00Z",
    ),
    (
        "claude-3-5-haiku-20241022",
        "Claude Haiku 3.5",
        "2024-10-22T00:00:00Z",
    ),
    (
        "claude-sonnet-4-20250514",
        "Claude Sonnet 4",
        "2025-05-22T00:00:00Z",
    ),
];

pub fn models() -> Resp {
    let data = arr(MODELS.iter().map(|(id, name, created)| {
        Obj::new()
            .str("type", "model")
            .str("id", id)
            .str("display_name", name)
            .str("created_at", created)
            .finish()
    }));
    let body = Obj::new()
        .raw("data", &data)
        .val("has_more", &false)
        .str("first_id", MODELS[0].0)
        .str("last_id", MODELS[MODELS.len() - 1].0)
        .finish();
    http::json(200, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Value {
        json!({"model": "claude-3-5-sonnet-20240620", "max_tokens": 100,
               "messages": [{"role": "user", "content": "hello world"}]})
    }

    #[test]
    fn default_reply_and_tokens() {
        let mut v = base();
        v["system"] = json!("you are terse");
        assert!(validate(&v).is_ok());
        let (r, f) = reply(&v, &Scenario::default());
        assert_eq!(r, Reply::Text("mock reply to: hello world".into()));
        assert_eq!(stop_reason(&f), "end_turn");
        assert_eq!(input_tokens(&v), 5);
    }

    #[test]
    fn validation_like_the_real_api() {
        let mut v = base();
        v.as_object_mut().unwrap().remove("max_tokens");
        assert_eq!(
            validate(&v).unwrap_err().message,
            "max_tokens: Field required"
        );
        let mut v = base();
        v["messages"] = json!([]);
        assert!(validate(&v).is_err());
        let mut v = base();
        v["messages"] =
            json!([{"role": "system", "content": "x"}, {"role": "user", "content": "y"}]);
        assert!(validate(&v).unwrap_err().message.contains("system"));
        let mut v = base();
        v["stop"] = json!(["END"]);
        assert_eq!(
            validate(&v).unwrap_err().message,
            "stop: Extra inputs are not permitted"
        );
        let mut v = base();
        v["temperature"] = json!(1.5);
        assert!(validate(&v).is_err());
        let mut v = base();
        v["messages"] = json!([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]);
        assert!(validate(&v).is_err());
        let mut v = base();
        v["messages"] = json!([{"role": "user", "content": [{"type": "text", "text": ""}]}]);
        assert!(validate(&v).is_err());
        let mut v = base();
        v["messages"] = json!([{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_x", "content": "r"}]}]);
        assert!(validate(&v).unwrap_err().message.contains("tool_use_id"));
    }

    #[test]
    fn tool_flow() {
        let mut v = base();
        v["tools"] = json!([{"name": "get_weather", "input_schema": {"type": "object"}}]);
        assert!(validate(&v).is_ok());
        let (r, f) = reply(&v, &Scenario::default());
        assert_eq!(r, Reply::Tool("get_weather".into()));
        assert_eq!(stop_reason(&f), "tool_use");
        v["tool_choice"] = json!({"type": "none"});
        assert!(matches!(reply(&v, &Scenario::default()).0, Reply::Text(_)));
        v["messages"] = json!([
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": TOOL_USE_ID, "name": "get_weather",
                                               "input": {"city": "Paris"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": TOOL_USE_ID, "content": "22C"}]}
        ]);
        v["tool_choice"] = json!({"type": "auto"});
        assert!(validate(&v).is_ok(), "{:?}", validate(&v));
        assert_eq!(
            reply(&v, &Scenario::default()).0,
            Reply::Text("tool said: 22C".into())
        );
        // A tool_use left unanswered is rejected.
        v["messages"][2] = json!({"role": "user", "content": "never mind"});
        assert!(validate(&v)
            .unwrap_err()
            .message
            .contains("without `tool_result`"));
    }

    fn parse(s: &EventStream) -> Vec<(String, Value)> {
        s.events
            .iter()
            .map(|e| {
                let t = std::str::from_utf8(e).unwrap();
                let (ev, rest) = t
                    .strip_prefix("event: ")
                    .unwrap()
                    .split_once("\ndata: ")
                    .unwrap();
                let data = rest.strip_suffix("\n\n").unwrap();
                let v: Value = serde_json::from_str(data).unwrap();
                assert_eq!(v["type"], ev, "event name matches data.type");
                (ev.to_owned(), v)
            })
            .collect()
    }

    #[test]
    fn text_stream_events() {
        let s = stream_events(
            "msg_1",
            "claude",
            &Reply::Text("mock reply to: hi".into()),
            &Finish::Stop,
            3,
        );
        let ev = parse(&s);
        let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names[..3], ["message_start", "content_block_start", "ping"]);
        assert_eq!(
            names[names.len() - 3..],
            ["content_block_stop", "message_delta", "message_stop"]
        );
        let text: String = ev
            .iter()
            .filter_map(|(_, v)| v["delta"]["text"].as_str())
            .collect();
        assert_eq!(text, "mock reply to: hi");
        assert_eq!(ev[0].1["message"]["usage"]["input_tokens"], 3);
        let md = &ev[ev.len() - 2].1;
        assert_eq!(md["delta"]["stop_reason"], "end_turn");
        assert_eq!(md["usage"]["output_tokens"], 4);
        assert_eq!(s.content_idx.len(), 4);
    }

    #[test]
    fn tool_stream_events() {
        let s = stream_events(
            "msg_1",
            "claude",
            &Reply::Tool("get_weather".into()),
            &Finish::ToolCalls,
            3,
        );
        let ev = parse(&s);
        assert_eq!(ev[1].1["content_block"]["type"], "tool_use");
        assert_eq!(ev[1].1["content_block"]["id"], TOOL_USE_ID);
        let json: String = ev
            .iter()
            .filter_map(|(_, v)| v["delta"]["partial_json"].as_str())
            .collect();
        assert_eq!(
            serde_json::from_str::<Value>(&json).unwrap(),
            json!({"city": "Paris"})
        );
        assert_eq!(s.content_idx.len(), 3);
        assert_eq!(ev[ev.len() - 2].1["delta"]["stop_reason"], "tool_use");
    }

    #[test]
    fn message_and_error_shapes() {
        let m: Value = serde_json::from_slice(&message_json(
            "msg_1",
            "claude",
            &Reply::Text("a".into()),
            &Finish::StopSequence("END".into()),
            2,
        ))
        .unwrap();
        assert_eq!(m["content"][0], json!({"type": "text", "text": "a"}));
        assert_eq!(m["stop_reason"], "stop_sequence");
        assert_eq!(m["stop_sequence"], "END");
        assert_eq!(m["usage"]["input_tokens"], 2);
        let m: Value = serde_json::from_slice(&message_json(
            "msg_1",
            "claude",
            &Reply::Tool("f".into()),
            &Finish::ToolCalls,
            2,
        ))
        .unwrap();
        assert_eq!(m["content"][0]["input"], json!({"city": "Paris"}));
        let e: Value =
            serde_json::from_slice(&simulated_error(529, "claude-error-529").body()).unwrap();
        assert_eq!(e["type"], "error");
        assert_eq!(e["error"]["type"], "overloaded_error");
        let mut h = HeaderMap::new();
        assert_eq!(check_headers(&h).unwrap_err().status, 401);
        h.insert("x-api-key", "k".parse().unwrap());
        assert_eq!(check_headers(&h).unwrap_err().status, 400);
        h.insert("anthropic-version", "2023-06-01".parse().unwrap());
        assert!(check_headers(&h).is_ok());
        h.remove("x-api-key");
        assert_eq!(check_headers(&h).unwrap_err().status, 401);
        h.insert("authorization", "Bearer ".parse().unwrap());
        assert_eq!(check_headers(&h).unwrap_err().status, 401);
        h.insert("authorization", "Bearer sk-ant".parse().unwrap());
        assert!(check_headers(&h).is_ok());
    }
}
