//! Cohere's v2 API: chat (`POST /v2/chat`) and embeddings (`POST /v2/embed`).
//!
//! Both `cohere/` and `cohere_chat/` deployments speak v2 chat, as current LiteLLM does for
//! chat models. v2 is close to OpenAI's shape (messages with roles, OpenAI-style function
//! tools), so the translation is mostly renaming: `top_p` is `p`, `top_k` is `k`, `stop` is
//! `stop_sequences`, and `tool_choice` only knows `REQUIRED` and `NONE`. Answers come back
//! as content blocks plus a `tool_plan` (the model's note before calling tools), which is
//! reported as message text, the way Anthropic's text before a tool call is.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::function_tools::function_tools;
use super::json_lines::{json_payload, LineBuffer};
use super::openai_compatible::fallback_message;
use super::tool_arguments;
use super::{
    from_upstream, join_url, json_post, parse_json, single_choice, stream_cut, ChatStream,
    ProviderApi, StreamTranslator,
};
use crate::deployment::Deployment;
use crate::error::{ErrorKind, GatewayError};
use crate::openai::{
    AssistantMessage, ChatChunk, ChatCompletion, ChatMessage, ChatRequest, ContentPart, Delta,
    FunctionCall, FunctionCallDelta, MessageContent, Role, ToolCall, ToolCallDelta, Usage,
};

pub const DEFAULT_BASE: &str = "https://api.cohere.com";
const CHAT_PATH: &str = "/v2/chat";
const EMBED_PATH: &str = "/v2/embed";
/// LiteLLM's `input_type` when the request names none (Cohere requires one for v3+ models).
const DEFAULT_INPUT_TYPE: &str = "search_document";

/// OpenAI parameters v2 chat can express; `top_k` and the penalties arrive in `extra`.
const SUPPORTED_PARAMS: &[&str] = &[
    "stream",
    "stream_options",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "top_k",
    "stop",
    "n",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "tools",
    "tool_choice",
    "response_format",
];

pub struct Cohere;

impl ProviderApi for Cohere {
    fn supported_chat_params(&self) -> Option<&'static [&'static str]> {
        Some(SUPPORTED_PARAMS)
    }

    fn chat_request(
        &self,
        req: &ChatRequest,
        d: &Deployment,
    ) -> Result<http::Request<Bytes>, GatewayError> {
        post(d, CHAT_PATH, &request_body(req, d)?)
    }

    fn chat_response(
        &self,
        body: &[u8],
        _req: &ChatRequest,
        _d: &Deployment,
    ) -> Result<ChatCompletion, GatewayError> {
        let response: ChatResponse = parse_json(body)?;
        completion(response)
    }

    fn chat_stream(&self, _req: &ChatRequest, _d: &Deployment) -> ChatStream {
        Box::<CohereStream>::default()
    }

    fn error(&self, status: u16, body: &[u8]) -> GatewayError {
        cohere_error(status, body)
    }

    fn embeddings_request(
        &self,
        req: &Value,
        d: &Deployment,
    ) -> Result<http::Request<Bytes>, GatewayError> {
        post(d, EMBED_PATH, &embed_body(req, d)?)
    }

    fn embeddings_response(&self, body: &[u8], _d: &Deployment) -> Result<Value, GatewayError> {
        let response: EmbedResponse = parse_json(body)?;
        Ok(embedding_list(response))
    }
}

/// A JSON POST under the deployment's base URL, with the key as a bearer token.
fn post(d: &Deployment, path: &str, body: &Value) -> Result<http::Request<Bytes>, GatewayError> {
    let base = d.params.api_base.as_deref().unwrap_or(DEFAULT_BASE);
    let auth = d.params.bearer();
    let mut headers = vec![("accept", "application/json")];
    if let Some(a) = auth.as_deref() {
        headers.push(("authorization", a));
    }
    let body =
        serde_json::to_vec(body).map_err(|e| GatewayError::invalid_request(e.to_string()))?;
    json_post(&join_url(base, path), &headers, body)
}

// ------------------------------------------------------------------------------- request

fn request_body(req: &ChatRequest, d: &Deployment) -> Result<Value, GatewayError> {
    single_choice(req, "cohere")?;
    let mut body = Map::new();
    body.insert("model".into(), json!(d.upstream_model));
    body.insert("messages".into(), Value::Array(messages(&req.messages)?));
    if let Some(max) = req.max_output_tokens() {
        body.insert("max_tokens".into(), json!(max));
    }
    if let Some(t) = req.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.top_p {
        body.insert("p".into(), json!(p));
    }
    copy_number(req, "top_k", "k", &mut body)?;
    copy_number(req, "seed", "seed", &mut body)?;
    copy_number(req, "frequency_penalty", "frequency_penalty", &mut body)?;
    copy_number(req, "presence_penalty", "presence_penalty", &mut body)?;
    if let Some(stop) = req.stop.clone() {
        body.insert("stop_sequences".into(), json!(stop.into_vec()));
    }
    add_tools(req, &mut body)?;
    if let Some(format) = response_format(req)? {
        body.insert("response_format".into(), format);
    }
    if req.is_stream() {
        body.insert("stream".into(), Value::Bool(true));
    }
    Ok(Value::Object(body))
}

/// Copies a numeric OpenAI parameter kept in `extra` under Cohere's name.
fn copy_number(
    req: &ChatRequest,
    openai: &str,
    cohere: &str,
    body: &mut Map<String, Value>,
) -> Result<(), GatewayError> {
    let Some(v) = req.extra.get(openai).filter(|v| !v.is_null()) else {
        return Ok(());
    };
    if !v.is_number() {
        return Err(
            GatewayError::invalid_request(format!("'{openai}' must be a number"))
                .with_param(openai),
        );
    }
    body.insert(cohere.into(), v.clone());
    Ok(())
}

fn messages(messages: &[ChatMessage]) -> Result<Vec<Value>, GatewayError> {
    let mut out = Vec::with_capacity(messages.len());
    for (i, m) in messages.iter().enumerate() {
        let message = match m.role {
            Role::System | Role::Developer => {
                json!({ "role": "system", "content": text_only(m.content.as_ref()) })
            }
            Role::User => {
                json!({ "role": "user", "content": user_content(m.content.as_ref(), i)? })
            }
            Role::Assistant => assistant_message(m),
            Role::Tool => tool_message(m, i)?,
            Role::Function => {
                return Err(GatewayError::invalid_request(
                    "cohere does not take legacy 'function' messages; use 'tool' messages",
                )
                .with_param(format!("messages[{i}].role")))
            }
        };
        out.push(message);
    }
    Ok(out)
}

fn text_only(content: Option<&MessageContent>) -> String {
    content.map(MessageContent::joined_text).unwrap_or_default()
}

/// A plain string stays a string; parts become v2 text and `image_url` parts.
fn user_content(content: Option<&MessageContent>, i: usize) -> Result<Value, GatewayError> {
    let parts = match content {
        None => return Ok(json!("")),
        Some(MessageContent::Text(s)) => return Ok(json!(s)),
        Some(MessageContent::Parts(parts)) => parts,
    };
    parts
        .iter()
        .enumerate()
        .map(|(j, p)| content_part(p, &format!("messages[{i}].content[{j}]")))
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

fn content_part(p: &ContentPart, path: &str) -> Result<Value, GatewayError> {
    match p.kind.as_str() {
        "text" => Ok(json!({ "type": "text", "text": p.text.as_deref().unwrap_or("") })),
        "image_url" => {
            let url = p.image_url.as_ref().map(|u| u.url()).ok_or_else(|| {
                GatewayError::invalid_request("an image_url part needs an image_url.url")
                    .with_param(format!("{path}.image_url"))
            })?;
            Ok(json!({ "type": "image_url", "image_url": { "url": url } }))
        }
        other => Err(GatewayError::invalid_request(format!(
            "cohere does not support {other:?} content parts"
        ))
        .with_param(format!("{path}.type"))),
    }
}

/// Assistant text that came with tool calls was the tool plan; it goes back as one.
fn assistant_message(m: &ChatMessage) -> Value {
    let text = text_only(m.content.as_ref());
    let calls: Vec<Value> = m
        .tool_calls
        .iter()
        .flatten()
        .map(|c| {
            json!({
                "id": c.id,
                "type": "function",
                "function": { "name": c.function.name, "arguments": c.function.arguments },
            })
        })
        .collect();
    if calls.is_empty() {
        return json!({ "role": "assistant", "content": text });
    }
    let mut message = json!({ "role": "assistant", "tool_calls": calls });
    if !text.is_empty() {
        message["tool_plan"] = json!(text);
    }
    message
}

fn tool_message(m: &ChatMessage, i: usize) -> Result<Value, GatewayError> {
    let id = m.tool_call_id.as_deref().ok_or_else(|| {
        GatewayError::invalid_request("a tool message needs the tool_call_id it answers")
            .with_param(format!("messages[{i}].tool_call_id"))
    })?;
    Ok(json!({ "role": "tool", "tool_call_id": id, "content": text_only(m.content.as_ref()) }))
}

/// `tools` pass in OpenAI's shape (v2 takes it). v2's `tool_choice` forces "some tool"
/// (`REQUIRED`) or none; forcing one named tool is expressed by offering only that tool.
fn add_tools(req: &ChatRequest, body: &mut Map<String, Value>) -> Result<(), GatewayError> {
    let mut tools: Vec<Value> = Vec::new();
    for tool in function_tools(req, "cohere")? {
        let f = &tool.function;
        let mut function = json!({ "name": f.name });
        if let Some(desc) = &f.description {
            function["description"] = json!(desc);
        }
        if let Some(params) = &f.parameters {
            function["parameters"] = params.clone();
        }
        tools.push(json!({ "type": "function", "function": function }));
    }
    let choice = match req.tool_choice.as_ref().filter(|c| !c.is_null()) {
        None => None,
        Some(Value::String(s)) if s == "auto" => None,
        Some(Value::String(s)) if s == "required" => Some("REQUIRED"),
        Some(Value::String(s)) if s == "none" => Some("NONE"),
        Some(Value::Object(o)) if o.get("type").and_then(Value::as_str) == Some("function") => {
            let name = o
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .ok_or_else(bad_tool_choice)?;
            tools.retain(|t| t["function"]["name"] == name);
            if tools.is_empty() {
                return Err(GatewayError::invalid_request(format!(
                    "'tool_choice' names {name:?}, which is not in 'tools'"
                ))
                .with_param("tool_choice"));
            }
            Some("REQUIRED")
        }
        Some(_) => return Err(bad_tool_choice()),
    };
    if tools.is_empty() {
        return Ok(());
    }
    body.insert("tools".into(), Value::Array(tools));
    if let Some(c) = choice {
        body.insert("tool_choice".into(), json!(c));
    }
    Ok(())
}

fn bad_tool_choice() -> GatewayError {
    GatewayError::invalid_request(
        "'tool_choice' must be \"auto\", \"required\", \"none\" or {\"type\": \"function\", \"function\": {\"name\": ...}}",
    )
    .with_param("tool_choice")
}

/// JSON mode: v2 takes `{"type": "json_object"}`, with an optional `json_schema`.
fn response_format(req: &ChatRequest) -> Result<Option<Value>, GatewayError> {
    let Some(rf) = req.response_format.as_ref().filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    match rf.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(json!({ "type": "json_object" }))),
        Some("json_schema") => {
            let mut format = json!({ "type": "json_object" });
            if let Some(schema) = rf.get("json_schema").and_then(|s| s.get("schema")) {
                format["json_schema"] = schema.clone();
            }
            Ok(Some(format))
        }
        _ => Err(GatewayError::invalid_request(
            "'response_format.type' must be \"text\", \"json_object\" or \"json_schema\"",
        )
        .with_param("response_format")),
    }
}

// ------------------------------------------------------------------------------ response

#[derive(Deserialize)]
struct ChatResponse {
    #[serde(default)]
    id: String,
    #[serde(default)]
    message: ResponseMessage,
    #[serde(default)]
    finish_reason: Option<String>,
    #[serde(default)]
    usage: Option<CohereUsage>,
}

#[derive(Deserialize, Default)]
struct ResponseMessage {
    #[serde(default)]
    content: Vec<ContentBlock>,
    #[serde(default)]
    tool_plan: Option<String>,
    #[serde(default)]
    tool_calls: Vec<ResponseToolCall>,
}

/// Text, or a reasoning model's thinking; other block types are skipped.
#[derive(Deserialize)]
struct ContentBlock {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    thinking: Option<String>,
}

#[derive(Deserialize)]
struct ResponseToolCall {
    #[serde(default)]
    id: String,
    function: ResponseFunction,
}

#[derive(Deserialize)]
struct ResponseFunction {
    #[serde(default)]
    name: String,
    /// JSON text; some versions send the object itself.
    #[serde(default)]
    arguments: Value,
}

/// Cohere's counts: `billed_units` (what is charged) and `tokens` (what the model saw,
/// including Cohere's own prompt scaffolding). Counts may arrive as floats.
#[derive(Deserialize, Default, Clone, Copy, Debug, PartialEq)]
struct CohereUsage {
    #[serde(default)]
    billed_units: Option<TokenCounts>,
    #[serde(default)]
    tokens: Option<TokenCounts>,
}

#[derive(Deserialize, Default, Clone, Copy, Debug, PartialEq)]
struct TokenCounts {
    #[serde(default)]
    input_tokens: Option<f64>,
    #[serde(default)]
    output_tokens: Option<f64>,
}

impl CohereUsage {
    /// Billed units first: spend is counted in what Cohere charges for.
    fn to_openai(self) -> Usage {
        let counts = self.billed_units.or(self.tokens).unwrap_or_default();
        let whole = |n: Option<f64>| n.filter(|n| n.is_finite() && *n > 0.0).unwrap_or(0.0) as u64;
        Usage::new(whole(counts.input_tokens), whole(counts.output_tokens))
    }
}

/// Cohere's finish reasons; `ERROR` and `TIMEOUT` are failures, not finishes.
fn finish_reason(reason: Option<&str>) -> Result<&'static str, GatewayError> {
    match reason {
        Some("MAX_TOKENS") => Ok("length"),
        Some("TOOL_CALL") => Ok("tool_calls"),
        Some("ERROR") => Err(GatewayError::new(
            ErrorKind::BadGateway,
            "cohere stopped generating because of an error on its side",
        )),
        Some("TIMEOUT") => Err(GatewayError::new(
            ErrorKind::Timeout,
            "cohere stopped generating because it timed out",
        )),
        // COMPLETE, STOP_SEQUENCE and anything new.
        _ => Ok("stop"),
    }
}

fn completion(r: ChatResponse) -> Result<ChatCompletion, GatewayError> {
    let finish = finish_reason(r.finish_reason.as_deref())?;
    let mut text = String::new();
    let mut reasoning = String::new();
    for block in r.message.content {
        text.push_str(block.text.as_deref().unwrap_or(""));
        reasoning.push_str(block.thinking.as_deref().unwrap_or(""));
    }
    let tool_calls: Vec<ToolCall> = r
        .message
        .tool_calls
        .into_iter()
        .map(|c| ToolCall {
            id: c.id,
            kind: "function".into(),
            function: FunctionCall {
                name: c.function.name,
                arguments: tool_arguments::text(&c.function.arguments),
            },
        })
        .collect();
    if text.is_empty() {
        text = r.message.tool_plan.unwrap_or_default();
    }
    let message = AssistantMessage::answer(text, tool_calls, reasoning);
    Ok(ChatCompletion {
        id: r.id,
        ..ChatCompletion::with_choice(message, finish, r.usage.unwrap_or_default().to_openai())
    })
}

// ---------------------------------------------------------------------------- embeddings

fn embed_body(req: &Value, d: &Deployment) -> Result<Value, GatewayError> {
    let texts = match req.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                GatewayError::invalid_request(
                    "cohere embeds text only; token arrays are not supported",
                )
                .with_param("input")
            })?,
        _ => return Err(GatewayError::invalid_request("'input' must be text").with_param("input")),
    };
    let input_type = req
        .get("input_type")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_INPUT_TYPE);
    let mut body = json!({
        "model": d.upstream_model,
        "texts": texts,
        "input_type": input_type,
        "embedding_types": ["float"],
    });
    if let Some(dims) = req.get("dimensions").filter(|v| v.is_u64()) {
        body["output_dimension"] = dims.clone();
    }
    if let Some(truncate) = req.get("truncate").filter(|v| v.is_string()) {
        body["truncate"] = truncate.clone();
    }
    Ok(body)
}

#[derive(Deserialize)]
struct EmbedResponse {
    embeddings: Embeddings,
    #[serde(default)]
    meta: Option<EmbedMeta>,
}

/// v2 answers by type; v1-style proxies answer with a bare list of vectors.
#[derive(Deserialize)]
#[serde(untagged)]
enum Embeddings {
    ByType {
        #[serde(default)]
        float: Vec<Vec<f64>>,
    },
    List(Vec<Vec<f64>>),
}

#[derive(Deserialize)]
struct EmbedMeta {
    #[serde(default)]
    billed_units: Option<TokenCounts>,
}

fn embedding_list(r: EmbedResponse) -> Value {
    let vectors = match r.embeddings {
        Embeddings::ByType { float } => float,
        Embeddings::List(list) => list,
    };
    let data: Vec<Value> = vectors
        .into_iter()
        .enumerate()
        .map(|(i, v)| json!({ "object": "embedding", "index": i, "embedding": v }))
        .collect();
    let prompt = r
        .meta
        .and_then(|m| m.billed_units)
        .and_then(|b| b.input_tokens)
        .filter(|n| n.is_finite() && *n > 0.0)
        .unwrap_or(0.0) as u64;
    json!({
        "object": "list",
        "data": data,
        "model": "",
        "usage": { "prompt_tokens": prompt, "total_tokens": prompt },
    })
}

// -------------------------------------------------------------------------------- errors

/// Reads `{"message": ...}` (v2 also sends an `id`), keeping the upstream status.
pub fn cohere_error(status: u16, body: &[u8]) -> GatewayError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let message = parsed
        .as_ref()
        .and_then(|v| v.get("message").or_else(|| v.get("error")))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| fallback_message(status, body));
    // 498 is Cohere's "invalid token": an authentication failure to an OpenAI client.
    let status = if status == 498 { 401 } else { status };
    let mut e = GatewayError::upstream(status, message);
    if is_context_window(&e.message) {
        e.code = Some("context_length_exceeded".into());
    }
    e
}

/// Cohere reports an over-long prompt as a plain 400; a router needs to tell it apart.
fn is_context_window(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("too many tokens")
        || m.contains("context length")
        || m.contains("context window")
        || m.contains("maximum context")
}

// -------------------------------------------------------------------------------- stream

/// One v2 stream event, by its `type`. Citations and block ends carry nothing to translate.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
enum StreamEvent {
    MessageStart {
        #[serde(default)]
        id: String,
    },
    ContentStart {
        #[serde(default)]
        delta: EventDelta,
    },
    ContentDelta {
        #[serde(default)]
        delta: EventDelta,
    },
    ToolPlanDelta {
        #[serde(default)]
        delta: EventDelta,
    },
    ToolCallStart {
        index: u64,
        delta: EventDelta,
    },
    ToolCallDelta {
        index: u64,
        delta: EventDelta,
    },
    MessageEnd {
        #[serde(default)]
        delta: EndDelta,
    },
    #[serde(other)]
    Ignored,
}

#[derive(Deserialize, Default)]
struct EventDelta {
    #[serde(default)]
    message: DeltaMessage,
}

#[derive(Deserialize, Default)]
struct DeltaMessage {
    #[serde(default)]
    content: Option<ContentBlock>,
    #[serde(default)]
    tool_plan: Option<String>,
    #[serde(default)]
    tool_calls: Option<DeltaToolCall>,
}

#[derive(Deserialize)]
struct DeltaToolCall {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<DeltaFunction>,
}

#[derive(Deserialize)]
struct DeltaFunction {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

#[derive(Deserialize, Default)]
struct EndDelta {
    #[serde(default)]
    finish_reason: Option<String>,
    #[serde(default)]
    usage: Option<CohereUsage>,
    #[serde(default)]
    error: Option<String>,
}

/// Cohere v2 stream → OpenAI chunks, one per request.
#[derive(Default)]
pub struct CohereStream {
    lines: LineBuffer,
    pending: Vec<String>,
    id: String,
    usage: Option<CohereUsage>,
    /// Cohere tool-call index → OpenAI tool-call index (the ordinal among calls).
    tool_calls: BTreeMap<u64, u32>,
    finished: bool,
}

impl CohereStream {
    fn take_lines(&mut self, out: &mut Vec<ChatChunk>, at_end: bool) -> Result<(), GatewayError> {
        for line in std::mem::take(&mut self.pending) {
            let Some(payload) = json_payload(&line) else {
                continue;
            };
            let value: Value = match parse_json(payload.as_bytes()) {
                Ok(v) => v,
                // A line the body ended in the middle of: the stream was cut, not garbled.
                Err(_) if at_end && !self.finished => return Err(stream_cut()),
                Err(e) => return Err(e),
            };
            if value.get("type").is_none() {
                // An error object instead of an event: the status was 200 when the stream began.
                return Err(stream_error(&value));
            }
            let event: StreamEvent = from_upstream(value)?;
            self.handle(event, out)?;
        }
        Ok(())
    }

    fn handle(&mut self, event: StreamEvent, out: &mut Vec<ChatChunk>) -> Result<(), GatewayError> {
        match event {
            StreamEvent::MessageStart { id } => {
                self.id = id;
                let delta = Delta::start();
                self.emit(out, delta, None);
            }
            StreamEvent::ContentStart { delta } | StreamEvent::ContentDelta { delta } => {
                if let Some(block) = delta.message.content {
                    self.emit_text(out, block.text.unwrap_or_default());
                    self.emit_reasoning(out, block.thinking.unwrap_or_default());
                }
            }
            StreamEvent::ToolPlanDelta { delta } => {
                self.emit_text(out, delta.message.tool_plan.unwrap_or_default())
            }
            StreamEvent::ToolCallStart { index, delta } => self.start_tool_call(index, delta, out),
            StreamEvent::ToolCallDelta { index, delta } => self.tool_call_delta(index, delta, out),
            StreamEvent::MessageEnd { delta } => {
                if let Some(error) = delta.error.filter(|e| !e.is_empty()) {
                    return Err(GatewayError::new(ErrorKind::BadGateway, error));
                }
                self.usage = delta.usage.or(self.usage);
                let finish = finish_reason(delta.finish_reason.as_deref())?;
                self.emit(out, Delta::default(), Some(finish));
                self.finished = true;
            }
            StreamEvent::Ignored => {}
        }
        Ok(())
    }

    fn start_tool_call(&mut self, index: u64, delta: EventDelta, out: &mut Vec<ChatChunk>) {
        let ordinal = self.tool_calls.len() as u32;
        let ordinal = *self.tool_calls.entry(index).or_insert(ordinal);
        let call = delta.message.tool_calls;
        let function = call.as_ref().and_then(|c| c.function.as_ref());
        let call = ToolCallDelta {
            index: ordinal,
            id: call.as_ref().and_then(|c| c.id.clone()),
            kind: Some("function".into()),
            function: Some(FunctionCallDelta {
                name: function.and_then(|f| f.name.clone()),
                arguments: Some(
                    function
                        .and_then(|f| f.arguments.clone())
                        .unwrap_or_default(),
                ),
            }),
        };
        self.emit_tool_call(out, call);
    }

    fn tool_call_delta(&mut self, index: u64, delta: EventDelta, out: &mut Vec<ChatChunk>) {
        // Arguments for a call that never started cannot be attributed to one.
        let Some(&ordinal) = self.tool_calls.get(&index) else {
            return;
        };
        let arguments = delta
            .message
            .tool_calls
            .and_then(|c| c.function)
            .and_then(|f| f.arguments)
            .unwrap_or_default();
        if arguments.is_empty() {
            return;
        }
        let call = ToolCallDelta {
            index: ordinal,
            function: Some(FunctionCallDelta {
                name: None,
                arguments: Some(arguments),
            }),
            ..Default::default()
        };
        self.emit_tool_call(out, call);
    }

    fn emit_text(&mut self, out: &mut Vec<ChatChunk>, text: String) {
        if !text.is_empty() {
            let delta = Delta::text(text);
            self.emit(out, delta, None);
        }
    }

    fn emit_reasoning(&mut self, out: &mut Vec<ChatChunk>, text: String) {
        if !text.is_empty() {
            let mut delta = Delta::default();
            delta
                .extra
                .insert("reasoning_content".into(), Value::String(text));
            self.emit(out, delta, None);
        }
    }

    fn emit_tool_call(&mut self, out: &mut Vec<ChatChunk>, call: ToolCallDelta) {
        let delta = Delta::tool_calls(vec![call]);
        self.emit(out, delta, None);
    }

    fn emit(&mut self, out: &mut Vec<ChatChunk>, delta: Delta, finish: Option<&str>) {
        let mut chunk = ChatChunk::with_delta(delta, finish.map(str::to_string));
        chunk.id.clone_from(&self.id);
        out.push(chunk);
    }
}

/// An error object met mid-stream: `{"message": ...}`, with no status of its own.
fn stream_error(value: &Value) -> GatewayError {
    let message = value
        .get("message")
        .or_else(|| value.get("error"))
        .and_then(Value::as_str)
        .unwrap_or("the provider sent an unexpected stream event");
    let mut e = GatewayError::new(ErrorKind::BadGateway, message);
    if is_context_window(message) {
        e.code = Some("context_length_exceeded".into());
    }
    e
}

impl StreamTranslator for CohereStream {
    type Chunk = ChatChunk;

    fn feed(&mut self, bytes: &[u8], out: &mut Vec<ChatChunk>) -> Result<(), GatewayError> {
        self.lines.feed(bytes, &mut self.pending);
        self.take_lines(out, false)
    }

    fn finish(&mut self, out: &mut Vec<ChatChunk>) -> Result<(), GatewayError> {
        self.lines.finish(&mut self.pending);
        self.take_lines(out, true)?;
        if self.finished {
            Ok(())
        } else {
            Err(stream_cut())
        }
    }

    fn usage(&self) -> Option<Usage> {
        self.usage.map(CohereUsage::to_openai)
    }
}

#[cfg(test)]
mod tests;
