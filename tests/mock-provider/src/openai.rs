//! OpenAI wire format: chat completions, legacy completions, embeddings,
//! models, and OpenAI's error shape.

use bytes::Bytes;
use hyper::header::AUTHORIZATION;
use hyper::HeaderMap;
use serde_json::Value;

use crate::http::{self, next_id, Resp};
use crate::json::{arr, Obj};
use crate::logic::{
    content_text, echo_text, embedding, embedding_base64, finalize_text, prompt_tokens,
    split_words_keep_spaces, sse_data, stop_list, unix_now, word_count, EventStream, Finish, Reply,
    Scenario, SSE_DONE, TOOL_ARGS, TOOL_ARG_FRAGMENTS,
};

pub const TOOL_CALL_ID: &str = "call_mock_1";
const FINGERPRINT: &str = "fp_mock";

// ---------------------------------------------------------------------- errors

/// An error in OpenAI's shape: `{"error":{"message","type","param","code"}}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
    pub typ: &'static str,
    pub param: Option<String>,
    pub code: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>, typ: &'static str) -> Self {
        ApiError {
            status,
            message: message.into(),
            typ,
            param: None,
            code: None,
        }
    }

    pub fn invalid(
        message: impl Into<String>,
        param: Option<&str>,
        code: Option<&'static str>,
    ) -> Self {
        ApiError {
            status: 400,
            message: message.into(),
            typ: "invalid_request_error",
            param: param.map(str::to_owned),
            code,
        }
    }

    pub fn body(&self) -> Vec<u8> {
        Obj::new()
            .obj(
                "error",
                Obj::new()
                    .str("message", &self.message)
                    .str("type", self.typ)
                    .opt_str("param", self.param.as_deref())
                    .opt_str("code", self.code),
            )
            .finish()
    }

    pub fn response(&self) -> Resp {
        http::json(self.status, self.body())
    }
}

/// `authorization: Bearer <non-empty>`.
pub fn check_auth(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Err(ApiError::new(
            401,
            "You didn't provide an API key. You need to provide your API key in an \
             Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            "invalid_request_error",
        ));
    };
    let text = value.to_str().unwrap_or("");
    let key = text
        .strip_prefix("Bearer ")
        .or_else(|| text.strip_prefix("bearer "))
        .map(str::trim)
        .unwrap_or("");
    if key.is_empty() {
        let mut e = ApiError::new(
            401,
            "Incorrect API key provided. Expected 'Authorization: Bearer <key>'.",
            "invalid_request_error",
        );
        e.code = Some("invalid_api_key");
        return Err(e);
    }
    Ok(())
}

/// OpenAI's (and Azure OpenAI's) answer to a prompt longer than the context window.
pub fn context_overflow() -> ApiError {
    ApiError::invalid(
        "This model's maximum context length is 128000 tokens. However, your messages resulted in 131072 tokens. Please reduce the length of the messages.",
        Some("messages"),
        Some("context_length_exceeded"),
    )
}

/// The error a `...-error-NNN` model answers with.
pub fn simulated_error(status: u16, model: &str) -> ApiError {
    let (typ, code, what) = match status {
        400 => ("invalid_request_error", None, "Invalid request"),
        401 => (
            "authentication_error",
            Some("invalid_api_key"),
            "Incorrect API key provided",
        ),
        403 => (
            "permission_error",
            None,
            "You are not allowed to use this model",
        ),
        404 => (
            "not_found_error",
            Some("model_not_found"),
            "The model does not exist",
        ),
        413 => ("invalid_request_error", None, "Request too large"),
        429 => (
            "rate_limit_error",
            Some("rate_limit_exceeded"),
            "Rate limit reached",
        ),
        500..=599 => (
            "api_error",
            None,
            "The server had an error while processing your request",
        ),
        _ => ("invalid_request_error", None, "Request failed"),
    };
    let mut e = ApiError::new(
        status,
        format!("{what} (mock-provider simulated error {status} for model '{model}')"),
        typ,
    );
    e.code = code;
    e
}

pub fn not_json(err: &serde_json::Error) -> ApiError {
    ApiError::invalid(
        format!(
            "We could not parse the JSON body of your request. (HINT: This likely means you \
             aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, \
             but what was sent was not valid JSON.) ({err})"
        ),
        None,
        None,
    )
}

fn type_desc(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn missing(param: &str) -> ApiError {
    ApiError::invalid(
        format!("Missing required parameter: '{param}'."),
        Some(param),
        Some("missing_required_parameter"),
    )
}

fn present(v: &Value, key: &str) -> Option<Value> {
    v.get(key).filter(|x| !x.is_null()).cloned()
}

// ------------------------------------------------------------------ validation

fn require_model(v: &Value) -> Result<(), ApiError> {
    match v.get("model") {
        Some(Value::String(s)) if !s.is_empty() => Ok(()),
        _ => Err(ApiError::invalid(
            "you must provide a model parameter",
            None,
            None,
        )),
    }
}

fn check_stream_flags(v: &Value) -> Result<bool, ApiError> {
    let stream = match v.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(ApiError::invalid(
                format!(
                    "Invalid type for 'stream': expected a boolean, but got {} instead.",
                    type_desc(other)
                ),
                Some("stream"),
                Some("invalid_type"),
            ))
        }
    };
    if !stream && present(v, "stream_options").is_some() {
        return Err(ApiError::invalid(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            Some("stream_options"),
            None,
        ));
    }
    Ok(stream)
}

const ROLES: &str = "'system', 'assistant', 'user', 'function', 'tool', and 'developer'";

pub fn validate_chat(v: &Value) -> Result<(), ApiError> {
    require_model(v)?;
    let msgs = match v.get("messages") {
        None | Some(Value::Null) => return Err(missing("messages")),
        Some(Value::Array(a)) => a,
        Some(other) => {
            return Err(ApiError::invalid(
                format!(
                "Invalid type for 'messages': expected an array of objects, but got {} instead.",
                type_desc(other)
            ),
                Some("messages"),
                Some("invalid_type"),
            ))
        }
    };
    if msgs.is_empty() {
        return Err(ApiError::invalid(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            Some("messages"),
            Some("empty_array"),
        ));
    }
    // Tool-call bookkeeping, as the real API enforces it.
    let mut pending: Vec<String> = Vec::new();
    let mut after_tool_calls = false;
    for (i, m) in msgs.iter().enumerate() {
        if !m.is_object() {
            return Err(ApiError::invalid(
                format!(
                    "Invalid type for 'messages[{i}]': expected an object, but got {} instead.",
                    type_desc(m)
                ),
                Some(&format!("messages[{i}]")),
                Some("invalid_type"),
            ));
        }
        let role = match m.get("role") {
            Some(Value::String(r)) => r.as_str(),
            _ => return Err(missing(&format!("messages[{i}].role"))),
        };
        if role != "tool" && !pending.is_empty() {
            return Err(unanswered_tool_calls(i, &pending));
        }
        match role {
            "system" | "developer" | "user" => {
                after_tool_calls = false;
                validate_content(i, m, role)?;
            }
            "assistant" => {
                let calls = m.get("tool_calls").and_then(Value::as_array);
                if present(m, "content").is_none()
                    && calls.is_none_or(|c| c.is_empty())
                    && present(m, "function_call").is_none()
                {
                    return Err(missing(&format!("messages[{i}].content")));
                }
                if present(m, "content").is_some() {
                    validate_content(i, m, role)?;
                }
                after_tool_calls = false;
                if let Some(calls) = calls.filter(|c| !c.is_empty()) {
                    for (j, c) in calls.iter().enumerate() {
                        let id = c.get("id").and_then(Value::as_str);
                        let name = c.pointer("/function/name").and_then(Value::as_str);
                        match (id, name) {
                            (Some(id), Some(_)) => pending.push(id.to_owned()),
                            (None, _) => {
                                return Err(missing(&format!("messages[{i}].tool_calls[{j}].id")))
                            }
                            (_, None) => {
                                return Err(missing(&format!(
                                    "messages[{i}].tool_calls[{j}].function.name"
                                )))
                            }
                        }
                        if c.pointer("/function/arguments")
                            .and_then(Value::as_str)
                            .is_none()
                        {
                            return Err(missing(&format!(
                                "messages[{i}].tool_calls[{j}].function.arguments"
                            )));
                        }
                    }
                    after_tool_calls = true;
                }
            }
            "tool" => {
                if !after_tool_calls {
                    return Err(ApiError::invalid(
                        "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.",
                        Some(&format!("messages.[{i}].role")),
                        None,
                    ));
                }
                let Some(id) = m.get("tool_call_id").and_then(Value::as_str) else {
                    return Err(missing(&format!("messages[{i}].tool_call_id")));
                };
                match pending.iter().position(|p| p == id) {
                    Some(pos) => {
                        pending.remove(pos);
                    }
                    None => {
                        return Err(ApiError::invalid(
                            format!("Invalid parameter: 'tool_call_id' of '{id}' not found in 'tool_calls' of previous message."),
                            Some(&format!("messages.[{i}].tool_call_id")),
                            None,
                        ))
                    }
                }
                validate_content(i, m, role)?;
            }
            "function" => after_tool_calls = false,
            other => {
                return Err(ApiError::invalid(
                    format!("Invalid value: '{other}'. Supported values are: {ROLES}."),
                    Some(&format!("messages[{i}].role")),
                    Some("invalid_value"),
                ))
            }
        }
    }
    if !pending.is_empty() {
        return Err(unanswered_tool_calls(msgs.len(), &pending));
    }
    if let Some(tools) = present(v, "tools") {
        let Some(tools) = tools.as_array().cloned() else {
            return Err(ApiError::invalid(
                "Invalid type for 'tools': expected an array.",
                Some("tools"),
                Some("invalid_type"),
            ));
        };
        for (i, t) in tools.iter().enumerate() {
            if t.pointer("/function/name")
                .and_then(Value::as_str)
                .is_none()
            {
                return Err(missing(&format!("tools[{i}].function.name")));
            }
        }
    }
    if let Some(Value::String(tc)) = v.get("tool_choice") {
        if !matches!(tc.as_str(), "none" | "auto" | "required") {
            return Err(ApiError::invalid(
                format!(
                    "Invalid value: '{tc}'. Supported values are: 'none', 'auto', and 'required'."
                ),
                Some("tool_choice"),
                Some("invalid_value"),
            ));
        }
    }
    check_stream_flags(v)?;
    Ok(())
}

fn unanswered_tool_calls(i: usize, pending: &[String]) -> ApiError {
    ApiError::invalid(
        format!(
            "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: {}",
            pending.join(", ")
        ),
        Some(&format!("messages.[{i}].role")),
        None,
    )
}

fn validate_content(i: usize, m: &Value, role: &str) -> Result<(), ApiError> {
    match m.get("content") {
        None | Some(Value::Null) if role == "assistant" => Ok(()),
        None => Err(missing(&format!("messages[{i}].content"))),
        Some(Value::String(_)) => Ok(()),
        Some(Value::Array(parts)) => {
            for (j, p) in parts.iter().enumerate() {
                let typ = p.get("type").and_then(Value::as_str).unwrap_or("");
                let ok = match typ {
                    "text" => p.get("text").is_some_and(Value::is_string),
                    "image_url" => role == "user" && p.pointer("/image_url/url").is_some_and(Value::is_string),
                    "input_audio" | "file" => role == "user",
                    "refusal" => role == "assistant",
                    _ => false,
                };
                if !ok {
                    return Err(ApiError::invalid(
                        format!("Invalid content part for role '{role}': type '{typ}' is missing required fields or is not supported."),
                        Some(&format!("messages[{i}].content[{j}]")),
                        Some("invalid_value"),
                    ));
                }
            }
            Ok(())
        }
        Some(other) => Err(ApiError::invalid(
            format!(
                "Invalid type for 'messages[{i}].content': expected one of a string or array of objects, but got {} instead.",
                type_desc(other)
            ),
            Some(&format!("messages[{i}].content")),
            Some("invalid_type"),
        )),
    }
}

pub fn validate_completions(v: &Value) -> Result<(), ApiError> {
    require_model(v)?;
    match v.get("prompt") {
        None | Some(Value::Null) => return Err(missing("prompt")),
        Some(Value::String(_)) | Some(Value::Array(_)) => {}
        Some(other) => {
            return Err(ApiError::invalid(
                format!(
                    "Invalid type for 'prompt': expected a string or an array, but got {} instead.",
                    type_desc(other)
                ),
                Some("prompt"),
                Some("invalid_type"),
            ))
        }
    }
    check_stream_flags(v)?;
    Ok(())
}

pub fn validate_embeddings(v: &Value) -> Result<(), ApiError> {
    require_model(v)?;
    let bad_input = || {
        ApiError::invalid(
            "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
            None,
            None,
        )
    };
    match v.get("input") {
        None | Some(Value::Null) => return Err(missing("input")),
        Some(Value::String(s)) if s.is_empty() => return Err(bad_input()),
        Some(Value::String(_)) => {}
        Some(Value::Array(a)) if a.is_empty() => return Err(bad_input()),
        Some(Value::Array(a)) => {
            if a.iter().any(|x| {
                x.as_str() == Some("") || !(x.is_string() || x.is_number() || x.is_array())
            }) {
                return Err(bad_input());
            }
        }
        Some(_) => return Err(bad_input()),
    }
    match v.get("encoding_format") {
        None | Some(Value::Null) => {}
        Some(Value::String(f)) if f == "float" || f == "base64" => {}
        Some(other) => {
            return Err(ApiError::invalid(
                format!("Invalid value: {other}. Supported values are: 'float' and 'base64'."),
                Some("encoding_format"),
                Some("invalid_value"),
            ))
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------- replies

fn finish_str(f: &Finish) -> &'static str {
    match f {
        Finish::Stop | Finish::StopSequence(_) => "stop",
        Finish::Length => "length",
        Finish::ToolCalls => "tool_calls",
    }
}

fn max_tokens(v: &Value) -> Option<u64> {
    present(v, "max_completion_tokens")
        .or_else(|| present(v, "max_tokens"))
        .and_then(|x| x.as_u64())
}

fn echo_max_tokens(v: &Value) -> String {
    if present(v, "max_tokens").is_none() && present(v, "max_completion_tokens").is_some() {
        echo_text("max_completion_tokens", v.get("max_completion_tokens"))
    } else {
        echo_text("max_tokens", v.get("max_tokens"))
    }
}

/// Which tool to call, if the request makes the mock call one.
fn tool_to_call(v: &Value) -> Option<String> {
    let tools = v.get("tools")?.as_array().filter(|t| !t.is_empty())?;
    match v.get("tool_choice") {
        Some(Value::String(s)) if s == "none" => return None,
        Some(choice @ Value::Object(_)) => {
            if let Some(name) = choice.pointer("/function/name").and_then(Value::as_str) {
                return Some(name.to_owned());
            }
        }
        _ => {}
    }
    Some(
        tools[0]
            .pointer("/function/name")
            .and_then(Value::as_str)
            .unwrap_or("tool")
            .to_owned(),
    )
}

/// What the mock answers to a (validated) chat request.
pub fn chat_reply(v: &Value, sc: &Scenario) -> (Reply, Finish) {
    if sc.echo_max_tokens {
        return (Reply::Text(echo_max_tokens(v)), Finish::Stop);
    }
    let empty = Vec::new();
    let msgs = v
        .get("messages")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    let stops = stop_list(v.get("stop"));
    let max = max_tokens(v);
    let text_reply = |t: String| {
        let (t, f) = finalize_text(t, &stops, max);
        (Reply::Text(t), f)
    };
    let role = |m: &Value| m.get("role").and_then(Value::as_str).map(str::to_owned);
    if let Some(last) = msgs.last() {
        if role(last).as_deref() == Some("tool") {
            let result = last.get("content").map(content_text).unwrap_or_default();
            return text_reply(format!("tool said: {result}"));
        }
    }
    if let Some(name) = tool_to_call(v) {
        return (Reply::Tool(name), Finish::ToolCalls);
    }
    let user = msgs
        .iter()
        .rev()
        .find(|m| role(m).as_deref() == Some("user"))
        .and_then(|m| m.get("content"))
        .map(content_text)
        .unwrap_or_default();
    text_reply(crate::logic::reply_to(&user, sc))
}

fn usage_json(p: u64, c: u64) -> Vec<u8> {
    Obj::new()
        .num("prompt_tokens", p)
        .num("completion_tokens", c)
        .num("total_tokens", p + c)
        .obj(
            "prompt_tokens_details",
            Obj::new().num("cached_tokens", 0).num("audio_tokens", 0),
        )
        .obj(
            "completion_tokens_details",
            Obj::new()
                .num("reasoning_tokens", 0)
                .num("audio_tokens", 0)
                .num("accepted_prediction_tokens", 0)
                .num("rejected_prediction_tokens", 0),
        )
        .finish()
}

fn tool_call_json(name: &str) -> Vec<u8> {
    Obj::new()
        .str("id", TOOL_CALL_ID)
        .str("type", "function")
        .obj(
            "function",
            Obj::new().str("name", name).str("arguments", TOOL_ARGS),
        )
        .finish()
}

fn include_usage(v: &Value) -> bool {
    v.pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        == Some(true)
}

fn is_stream(v: &Value) -> bool {
    v.get("stream").and_then(Value::as_bool) == Some(true)
}

pub fn chat_completion_json(
    id: &str,
    created: u64,
    model: &str,
    reply: &Reply,
    finish: &Finish,
    p: u64,
) -> Vec<u8> {
    let message = match reply {
        Reply::Text(t) => Obj::new()
            .str("role", "assistant")
            .str("content", t)
            .null("refusal")
            .raw("annotations", b"[]"),
        Reply::Tool(name) => Obj::new()
            .str("role", "assistant")
            .null("content")
            .raw("tool_calls", &arr([tool_call_json(name)]))
            .null("refusal")
            .raw("annotations", b"[]"),
    };
    let choice = Obj::new()
        .num("index", 0)
        .obj("message", message)
        .null("logprobs")
        .str("finish_reason", finish_str(finish))
        .finish();
    Obj::new()
        .str("id", id)
        .str("object", "chat.completion")
        .num("created", created)
        .str("model", model)
        .raw("choices", &arr([choice]))
        .raw("usage", &usage_json(p, reply.completion_tokens()))
        .str("service_tier", "default")
        .str("system_fingerprint", FINGERPRINT)
        .finish()
}

struct Chunks<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    include_usage: bool,
}

impl Chunks<'_> {
    fn head(&self) -> Obj {
        Obj::new()
            .str("id", self.id)
            .str("object", self.object)
            .num("created", self.created)
            .str("model", self.model)
            .str("service_tier", "default")
            .str("system_fingerprint", FINGERPRINT)
    }

    fn tail(&self, o: Obj) -> Bytes {
        let o = if self.include_usage {
            o.null("usage")
        } else {
            o
        };
        sse_data(&o.finish())
    }

    fn chat(&self, delta: Obj, finish: Option<&str>) -> Bytes {
        let choice = Obj::new()
            .num("index", 0)
            .obj("delta", delta)
            .null("logprobs")
            .opt_str("finish_reason", finish)
            .finish();
        self.tail(self.head().raw("choices", &arr([choice])))
    }

    /// Legacy completions chunk (field order as the real API: choices before model).
    fn text(&self, index: u64, text: &str, finish: Option<&str>) -> Bytes {
        let choice = Obj::new()
            .str("text", text)
            .num("index", index)
            .null("logprobs")
            .opt_str("finish_reason", finish)
            .finish();
        let o = Obj::new()
            .str("id", self.id)
            .str("object", self.object)
            .num("created", self.created)
            .raw("choices", &arr([choice]))
            .str("model", self.model)
            .str("system_fingerprint", FINGERPRINT);
        self.tail(o)
    }

    fn usage(&self, usage: &[u8]) -> Bytes {
        sse_data(
            &self
                .head()
                .raw("choices", b"[]")
                .raw("usage", usage)
                .finish(),
        )
    }
}

pub fn chat_stream_events(
    id: &str,
    created: u64,
    model: &str,
    reply: &Reply,
    finish: &Finish,
    p: u64,
    include_usage: bool,
) -> EventStream {
    let c = Chunks {
        id,
        object: "chat.completion.chunk",
        created,
        model,
        include_usage,
    };
    let mut s = EventStream::default();
    match reply {
        Reply::Text(t) => {
            s.push(
                c.chat(
                    Obj::new()
                        .str("role", "assistant")
                        .str("content", "")
                        .null("refusal"),
                    None,
                ),
            );
            for piece in split_words_keep_spaces(t) {
                s.push_content(c.chat(Obj::new().str("content", piece), None));
            }
        }
        Reply::Tool(name) => {
            let first_call = Obj::new()
                .num("index", 0)
                .str("id", TOOL_CALL_ID)
                .str("type", "function")
                .obj(
                    "function",
                    Obj::new().str("name", name).str("arguments", ""),
                )
                .finish();
            s.push(
                c.chat(
                    Obj::new()
                        .str("role", "assistant")
                        .null("content")
                        .raw("tool_calls", &arr([first_call]))
                        .null("refusal"),
                    None,
                ),
            );
            for frag in TOOL_ARG_FRAGMENTS {
                let call = Obj::new()
                    .num("index", 0)
                    .obj("function", Obj::new().str("arguments", frag))
                    .finish();
                s.push_content(c.chat(Obj::new().raw("tool_calls", &arr([call])), None));
            }
        }
    }
    s.push(c.chat(Obj::new(), Some(finish_str(finish))));
    if include_usage {
        s.push(c.usage(&usage_json(p, reply.completion_tokens())));
    }
    s.push(Bytes::from_static(SSE_DONE));
    s
}

pub fn chat(v: &Value, model: &str, sc: &Scenario) -> Resp {
    let empty = Vec::new();
    let msgs = v
        .get("messages")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    let p = prompt_tokens(msgs.iter().filter_map(|m| m.get("content")));
    let (reply, finish) = chat_reply(v, sc);
    let id = format!("chatcmpl-mock{}", next_id());
    let created = unix_now();
    if is_stream(v) {
        let mut s = chat_stream_events(&id, created, model, &reply, &finish, p, include_usage(v));
        if sc.cut_stream {
            s.cut_after_two_content_events();
        }
        http::sse(s.events, sc)
    } else {
        http::json(
            200,
            chat_completion_json(&id, created, model, &reply, &finish, p),
        )
    }
}

/// Prompt texts of a legacy completion: a string, strings, or token arrays
/// (rendered as their JSON text).
fn prompt_texts(p: Option<&Value>) -> Vec<String> {
    let texts = input_texts(p);
    if texts.is_empty() {
        vec![String::new()]
    } else {
        texts
    }
}

/// Texts of an `input`/`prompt` field: a string, strings, or one token array (rendered as its
/// JSON text); empty when absent.
fn input_texts(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) if !a.is_empty() && a.iter().all(Value::is_number) => {
            vec![Value::Array(a.clone()).to_string()]
        }
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| x.to_string())
            })
            .collect(),
        _ => Vec::new(),
    }
}

pub fn completions(v: &Value, model: &str, sc: &Scenario) -> Resp {
    let prompts = prompt_texts(v.get("prompt"));
    let p = (prompts.iter().map(|s| word_count(s)).sum::<u64>()).max(1);
    let stops = stop_list(v.get("stop"));
    let max = present(v, "max_tokens").and_then(|x| x.as_u64());
    let replies: Vec<(String, Finish)> = prompts
        .iter()
        .map(|prompt| {
            if sc.echo_max_tokens {
                (echo_text("max_tokens", v.get("max_tokens")), Finish::Stop)
            } else {
                finalize_text(crate::logic::reply_to(prompt, sc), &stops, max)
            }
        })
        .collect();
    let c_tokens: u64 = replies.iter().map(|(t, _)| word_count(t)).sum();
    let usage = Obj::new()
        .num("prompt_tokens", p)
        .num("completion_tokens", c_tokens)
        .num("total_tokens", p + c_tokens)
        .finish();
    let id = format!("cmpl-mock{}", next_id());
    let created = unix_now();
    if is_stream(v) {
        let c = Chunks {
            id: &id,
            object: "text_completion",
            created,
            model,
            include_usage: include_usage(v),
        };
        let mut s = EventStream::default();
        for (i, (text, finish)) in replies.iter().enumerate() {
            for piece in split_words_keep_spaces(text) {
                s.push_content(c.text(i as u64, piece, None));
            }
            s.push(c.text(i as u64, "", Some(finish_str(finish))));
        }
        if c.include_usage {
            let o = Obj::new()
                .str("id", &id)
                .str("object", "text_completion")
                .num("created", created)
                .raw("choices", b"[]")
                .str("model", model)
                .str("system_fingerprint", FINGERPRINT)
                .raw("usage", &usage);
            s.push(sse_data(&o.finish()));
        }
        s.push(Bytes::from_static(SSE_DONE));
        if sc.cut_stream {
            s.cut_after_two_content_events();
        }
        return http::sse(s.events, sc);
    }
    let choices = arr(replies.iter().enumerate().map(|(i, (text, finish))| {
        Obj::new()
            .str("text", text)
            .num("index", i as u64)
            .null("logprobs")
            .str("finish_reason", finish_str(finish))
            .finish()
    }));
    let body = Obj::new()
        .str("id", &id)
        .str("object", "text_completion")
        .num("created", created)
        .str("model", model)
        .str("system_fingerprint", FINGERPRINT)
        .raw("choices", &choices)
        .raw("usage", &usage)
        .finish();
    http::json(200, body)
}

pub fn embeddings(v: &Value, model: &str) -> Resp {
    let inputs = input_texts(v.get("input"));
    let base64 = v.get("encoding_format").and_then(Value::as_str) == Some("base64");
    let data = arr(inputs.iter().enumerate().map(|(i, text)| {
        let e = embedding(text);
        let o = Obj::new().str("object", "embedding").num("index", i as u64);
        let o = if base64 {
            o.str("embedding", &embedding_base64(&e))
        } else {
            o.val("embedding", &e[..])
        };
        o.finish()
    }));
    let tokens = inputs.iter().map(|s| word_count(s)).sum::<u64>().max(1);
    let body = Obj::new()
        .str("object", "list")
        .raw("data", &data)
        .str("model", model)
        .obj(
            "usage",
            Obj::new()
                .num("prompt_tokens", tokens)
                .num("total_tokens", tokens),
        )
        .finish();
    http::json(200, body)
}

const MODELS: [(&str, u64); 5] = [
    ("gpt-4o", 1715367049),
    ("gpt-4o-mini", 1721172741),
    ("gpt-3.5-turbo-instruct", 1692901427),
    ("text-embedding-3-small", 1705948997),
    ("text-embedding-3-large", 1705953180),
];

pub fn models() -> Resp {
    let data = arr(MODELS.iter().map(|(id, created)| {
        Obj::new()
            .str("id", id)
            .str("object", "model")
            .num("created", *created)
            .str("owned_by", "system")
            .finish()
    }));
    http::json(
        200,
        Obj::new().str("object", "list").raw("data", &data).finish(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(r: &(Reply, Finish)) -> String {
        match &r.0 {
            Reply::Text(t) => t.clone(),
            Reply::Tool(n) => format!("tool:{n}"),
        }
    }

    #[test]
    fn default_reply_uses_last_user_message() {
        let v = json!({"model": "gpt-4o", "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [{"type": "text", "text": "hello"}, {"type": "text", "text": "there"}]}
        ]});
        assert!(validate_chat(&v).is_ok());
        let r = chat_reply(&v, &Scenario::default());
        assert_eq!(body(&r), "mock reply to: hello there");
        assert_eq!(r.1, Finish::Stop);
    }

    #[tokio::test]
    async fn drip_streams_hundreds_of_paced_events() {
        use http_body_util::BodyExt;
        let v = json!({"model": "gpt-drip-1", "stream": true,
                       "messages": [{"role": "user", "content": "hi"}]});
        let sc = crate::logic::scenario("gpt-drip-1");
        let mut resp = chat(&v, "gpt-drip-1", &sc);
        let mut events = Vec::new();
        while let Some(frame) = resp.body_mut().frame().await {
            events.push(frame.unwrap().into_data().unwrap());
        }
        let content = events
            .iter()
            .filter(|e| e.windows(9).any(|w| w == b"\"content\""))
            .count();
        assert!(
            content > crate::logic::DRIP_WORDS,
            "{content} content events"
        );
        assert_eq!(events.last().unwrap().as_ref(), SSE_DONE);
    }

    #[test]
    fn tools_and_tool_results() {
        let tools = json!([{"type": "function", "function": {"name": "get_weather", "parameters": {}}},
                           {"type": "function", "function": {"name": "other"}}]);
        let mut v = json!({"model": "m", "tools": tools, "messages": [{"role": "user", "content": "weather?"}]});
        assert_eq!(
            body(&chat_reply(&v, &Scenario::default())),
            "tool:get_weather"
        );
        v["tool_choice"] = json!("none");
        assert_eq!(
            body(&chat_reply(&v, &Scenario::default())),
            "mock reply to: weather?"
        );
        v["tool_choice"] = json!({"type": "function", "function": {"name": "other"}});
        assert_eq!(body(&chat_reply(&v, &Scenario::default())), "tool:other");
        v["tool_choice"] = json!("auto");
        v["messages"] = json!([
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_mock_1", "type": "function",
              "function": {"name": "get_weather", "arguments": TOOL_ARGS}}]},
            {"role": "tool", "tool_call_id": "call_mock_1", "content": "22C and sunny"}
        ]);
        assert!(validate_chat(&v).is_ok());
        let r = chat_reply(&v, &Scenario::default());
        assert_eq!(body(&r), "tool said: 22C and sunny");
    }

    #[test]
    fn validation_errors() {
        let e = validate_chat(&json!({"model": "m"})).unwrap_err();
        assert_eq!((e.status, e.param.as_deref()), (400, Some("messages")));
        let e = validate_chat(&json!({"model": "m", "messages": "hi"})).unwrap_err();
        assert_eq!(e.code, Some("invalid_type"));
        assert!(validate_chat(&json!({"model": "m", "messages": []})).is_err());
        assert!(validate_chat(&json!({"messages": [{"role": "user", "content": "x"}]})).is_err());
        assert!(validate_chat(
            &json!({"model": "m", "messages": [{"role": "bot", "content": "x"}]})
        )
        .is_err());
        // A tool message without a preceding tool call.
        assert!(validate_chat(&json!({"model": "m", "messages": [
            {"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "a", "content": "y"}]})).is_err());
        // stream_options without stream.
        let e = validate_chat(
            &json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "stream_options": {"include_usage": true}}),
        )
        .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("stream_options"));
        let body: Value = serde_json::from_slice(&e.body()).unwrap();
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert!(body["error"]["code"].is_null());
        assert!(validate_embeddings(&json!({"model": "m", "input": ""})).is_err());
        assert!(validate_embeddings(
            &json!({"model": "m", "input": ["a"], "encoding_format": "hex"})
        )
        .is_err());
        assert!(validate_completions(&json!({"model": "m"})).is_err());
    }

    #[test]
    fn stop_and_max_tokens_apply() {
        let v = json!({"model": "m", "stop": ["END"], "max_tokens": 50,
                       "messages": [{"role": "user", "content": "say END now"}]});
        let r = chat_reply(&v, &Scenario::default());
        assert_eq!(body(&r), "mock reply to: say ");
        assert_eq!(finish_str(&r.1), "stop");
        let v = json!({"model": "m", "max_tokens": 2, "messages": [{"role": "user", "content": "a b c"}]});
        let r = chat_reply(&v, &Scenario::default());
        assert_eq!(
            (body(&r).as_str(), finish_str(&r.1)),
            ("mock reply", "length")
        );
        let sc = crate::logic::scenario("gpt-max-tokens-echo");
        assert_eq!(body(&chat_reply(&v, &sc)), "max_tokens=2");
    }

    #[test]
    fn completion_json_shape() {
        let out = chat_completion_json(
            "id1",
            7,
            "gpt-4o",
            &Reply::Text("a b".into()),
            &Finish::Stop,
            3,
        );
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["choices"][0]["message"]["content"], "a b");
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        assert_eq!(v["usage"]["prompt_tokens"], 3);
        assert_eq!(v["usage"]["completion_tokens"], 2);
        assert_eq!(v["usage"]["total_tokens"], 5);
        let out = chat_completion_json(
            "id1",
            7,
            "m",
            &Reply::Tool("f".into()),
            &Finish::ToolCalls,
            1,
        );
        let v: Value = serde_json::from_slice(&out).unwrap();
        let call = &v["choices"][0]["message"]["tool_calls"][0];
        assert_eq!(call["id"], TOOL_CALL_ID);
        assert_eq!(call["function"]["arguments"], TOOL_ARGS);
        assert!(v["choices"][0]["message"]["content"].is_null());
    }

    fn parse_stream(s: &EventStream) -> Vec<Value> {
        s.events
            .iter()
            .map(|e| {
                let t = std::str::from_utf8(e).unwrap();
                assert!(t.starts_with("data: ") && t.ends_with("\n\n"), "{t:?}");
                let data = &t[6..t.len() - 2];
                if data == "[DONE]" {
                    json!("DONE")
                } else {
                    serde_json::from_str(data).unwrap()
                }
            })
            .collect()
    }

    #[test]
    fn stream_text_with_usage() {
        let reply = Reply::Text("mock reply to: hi".into());
        let s = chat_stream_events("c1", 1, "gpt-4o", &reply, &Finish::Stop, 2, true);
        let ev = parse_stream(&s);
        assert_eq!(ev.last().unwrap(), &json!("DONE"));
        let chunks = &ev[..ev.len() - 1];
        let text: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(text, "mock reply to: hi");
        assert!(chunks.iter().all(|c| c["id"] == "c1"));
        let usage_chunk = chunks.last().unwrap();
        assert_eq!(usage_chunk["choices"], json!([]));
        assert_eq!(usage_chunk["usage"]["total_tokens"], 6);
        assert!(chunks[..chunks.len() - 1]
            .iter()
            .all(|c| c["usage"].is_null() && c.get("usage").is_some()));
        assert_eq!(
            chunks[chunks.len() - 2]["choices"][0]["finish_reason"],
            "stop"
        );
        assert_eq!(s.content_idx.len(), 4);

        let s = chat_stream_events("c1", 1, "gpt-4o", &reply, &Finish::Stop, 2, false);
        assert!(parse_stream(&s).iter().all(|c| c.get("usage").is_none()));
    }

    #[test]
    fn stream_tool_call_fragments() {
        let s = chat_stream_events(
            "c1",
            1,
            "m",
            &Reply::Tool("get_weather".into()),
            &Finish::ToolCalls,
            2,
            false,
        );
        let ev = parse_stream(&s);
        assert_eq!(
            ev[0]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"],
            "get_weather"
        );
        let args: String = ev
            .iter()
            .filter_map(|c| {
                c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str()
            })
            .collect();
        assert_eq!(args, TOOL_ARGS);
        assert_eq!(s.content_idx.len(), 3);
        assert_eq!(
            ev[ev.len() - 2]["choices"][0]["finish_reason"],
            "tool_calls"
        );
    }

    #[test]
    fn error_shape() {
        let e = simulated_error(429, "gpt-error-429");
        let v: Value = serde_json::from_slice(&e.body()).unwrap();
        assert_eq!(v["error"]["type"], "rate_limit_error");
        assert_eq!(v["error"]["code"], "rate_limit_exceeded");
        assert!(v["error"]["param"].is_null());
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("gpt-error-429"));
        assert_eq!(simulated_error(500, "m").typ, "api_error");
        let mut h = HeaderMap::new();
        assert_eq!(check_auth(&h).unwrap_err().status, 401);
        h.insert(AUTHORIZATION, "Bearer ".parse().unwrap());
        assert_eq!(check_auth(&h).unwrap_err().code, Some("invalid_api_key"));
        h.insert(AUTHORIZATION, "Bearer sk-1".parse().unwrap());
        assert!(check_auth(&h).is_ok());
    }
}
