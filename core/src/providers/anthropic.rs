//! Anthropic Messages API (`POST /v1/messages`).
//!
//! OpenAI chat requests are rebuilt as Anthropic ones (system prompt lifted out, roles made
//! to alternate, tool calls and results turned into content blocks), and Anthropic's answers,
//! streamed or not, are turned back into OpenAI's shape. Where OpenAI and Anthropic differ
//! in meaning, the choices follow LiteLLM's so clients see what they would behind LiteLLM:
//! JSON mode is a forced tool (`json_tool_call`) whose input comes back as the message text,
//! thinking is reported as `reasoning_content`, and cache reads and writes count as prompt
//! tokens.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::function_tools::function_tools;
use super::openai_compatible::fallback_message;
use super::tool_choice::ToolChoice;
use super::turns::Turns;
use super::{claude_answer, tool_arguments};
use super::{
    from_upstream, join_url, json_post, parse_json, single_choice, stream_cut, ChatStream,
    ProviderApi, StreamTranslator,
};
use crate::deployment::Deployment;
use crate::error::GatewayError;
use crate::openai::{
    ChatChunk, ChatCompletion, ChatMessage, ChatRequest, ContentPart, Delta, FunctionCallDelta,
    FunctionDefinition, MessageContent, Role, ToolCallDelta, Usage,
};
use crate::secret::Secret;
use crate::sse::{SseDecoder, SseEvent};

pub const DEFAULT_BASE: &str = "https://api.anthropic.com";
const MESSAGES_PATH: &str = "/v1/messages";
const DEFAULT_VERSION: &str = "2023-06-01";
/// Anthropic requires `max_tokens`; LiteLLM's default when the client sets none.
const DEFAULT_MAX_TOKENS: u64 = 4096;
/// The forced tool that carries JSON-mode answers (LiteLLM's `RESPONSE_FORMAT_TOOL_NAME`).
pub(crate) const JSON_TOOL: &str = "json_tool_call";

/// OpenAI parameters Anthropic can express. `thinking` is Anthropic's own, passed through as
/// LiteLLM does; `top_k` and `thinking` arrive in `extra`.
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
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "user",
    "reasoning_effort",
    "thinking",
];

pub struct Anthropic;

impl ProviderApi for Anthropic {
    fn supported_chat_params(&self) -> Option<&'static [&'static str]> {
        Some(SUPPORTED_PARAMS)
    }

    fn chat_request(
        &self,
        req: &ChatRequest,
        d: &Deployment,
    ) -> Result<http::Request<Bytes>, GatewayError> {
        let body = serde_json::to_vec(&request_body(req, d)?)
            .map_err(|e| GatewayError::invalid_request(e.to_string()))?;
        messages_request(body, d, None)
    }

    fn chat_response(
        &self,
        body: &[u8],
        req: &ChatRequest,
        _d: &Deployment,
    ) -> Result<ChatCompletion, GatewayError> {
        let value: Value = parse_json(body)?;
        if value.get("type").and_then(Value::as_str) == Some("error") {
            return Err(error_from_value(500, &value));
        }
        let msg: MessageResponse = from_upstream(value)?;
        Ok(completion(msg, json_mode(req)))
    }

    fn chat_stream(&self, req: &ChatRequest, _d: &Deployment) -> ChatStream {
        Box::new(AnthropicStream::new(json_mode(req)))
    }

    fn error(&self, status: u16, body: &[u8]) -> GatewayError {
        anthropic_error(status, body)
    }
}

// ------------------------------------------------------------------------------- request

/// A POST of `body` to the deployment's `/v1/messages`, with its key, its API version and
/// the client's `anthropic-beta` features (for bodies that arrive in Anthropic's format).
pub(crate) fn messages_request(
    body: Vec<u8>,
    d: &Deployment,
    beta: Option<&str>,
) -> Result<http::Request<Bytes>, GatewayError> {
    let base = d.params.api_base.as_deref().unwrap_or(DEFAULT_BASE);
    let version = d
        .params
        .extra
        .get("anthropic_version")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_VERSION);
    let mut headers = vec![("anthropic-version", version)];
    if let Some(key) = d.params.api_key.as_ref().map(Secret::expose) {
        headers.push(("x-api-key", key));
    }
    if let Some(beta) = beta {
        headers.push(("anthropic-beta", beta));
    }
    json_post(&join_url(base, MESSAGES_PATH), &headers, body)
}

/// The whole Anthropic request body for `req`.
fn request_body(req: &ChatRequest, d: &Deployment) -> Result<Value, GatewayError> {
    single_choice(req, "anthropic")?;
    let (system, messages) = translate_messages(&req.messages)?;
    let thinking = thinking(req)?;
    let budget = thinking_budget(thinking.as_ref());

    let mut body = Map::new();
    body.insert("model".into(), json!(d.upstream_model));
    if let Some(system) = system {
        body.insert("system".into(), system);
    }
    body.insert("messages".into(), Value::Array(messages));
    // With thinking on, max_tokens must exceed the thinking budget, so the default leaves
    // room for the answer on top of it.
    let max_tokens = req
        .max_output_tokens()
        .unwrap_or(DEFAULT_MAX_TOKENS + budget.unwrap_or(0));
    body.insert("max_tokens".into(), json!(max_tokens));
    if let Some(t) = req.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.top_p {
        body.insert("top_p".into(), json!(p));
    }
    if let Some(k) = top_k(req)? {
        body.insert("top_k".into(), k.clone());
    }
    if let Some(stop) = req.stop.clone() {
        body.insert("stop_sequences".into(), json!(stop.into_vec()));
    }
    // Anthropic refuses identifying data in user_id; LiteLLM drops e-mail addresses too.
    if let Some(user) = req.user.as_deref().filter(|u| !u.contains('@')) {
        body.insert("metadata".into(), json!({ "user_id": user }));
    }
    add_tools(req, budget.is_some(), &mut body)?;
    if let Some(t) = thinking {
        body.insert("thinking".into(), t);
    }
    if req.is_stream() {
        body.insert("stream".into(), Value::Bool(true));
    }
    Ok(Value::Object(body))
}

/// The `system` prompt and the alternating user/assistant turns.
fn translate_messages(
    messages: &[ChatMessage],
) -> Result<(Option<Value>, Vec<Value>), GatewayError> {
    let mut system = SystemPrompt::default();
    let mut turns = Turns::default();
    for (i, m) in messages.iter().enumerate() {
        let (role, mut blocks) = match m.role {
            Role::System | Role::Developer => {
                system.push(m, i)?;
                continue;
            }
            Role::User => ("user", content_blocks(m.content.as_ref(), i)?),
            Role::Assistant => ("assistant", assistant_blocks(m, i)?),
            // Anthropic has no tool role: results travel in the next user turn.
            Role::Tool => ("user", vec![tool_result_block(m, i)?]),
            Role::Function => {
                return Err(GatewayError::invalid_request(
                    "anthropic does not take legacy 'function' messages; use 'tool' messages",
                )
                .with_param(format!("messages[{i}].role")))
            }
        };
        apply_cache_control(&mut blocks, &m.extra);
        // Anthropic requires user and assistant turns to alternate: neighbours merge.
        turns.push(role, blocks);
    }
    if turns.is_empty() {
        return Err(GatewayError::invalid_request(
            "anthropic needs at least one user or assistant message besides the system prompt",
        )
        .with_param("messages"));
    }
    Ok((system.into_value(), turns.into_messages()))
}

/// System and developer messages, in order.
#[derive(Default)]
struct SystemPrompt {
    blocks: Vec<Value>,
    /// Every piece was a plain string, so a plain string can be sent.
    plain: bool,
    texts: Vec<String>,
}

impl SystemPrompt {
    fn push(&mut self, m: &ChatMessage, i: usize) -> Result<(), GatewayError> {
        let first = self.blocks.is_empty();
        match &m.content {
            Some(MessageContent::Text(s)) => {
                if s.is_empty() {
                    return Ok(());
                }
                self.plain = (first || self.plain) && !m.extra.contains_key("cache_control");
                self.texts.push(s.clone());
                let mut block = vec![text_block(s)];
                apply_cache_control(&mut block, &m.extra);
                self.blocks.extend(block);
            }
            Some(MessageContent::Parts(parts)) => {
                for (j, p) in parts.iter().enumerate() {
                    if p.kind != "text" {
                        return Err(GatewayError::invalid_request(
                            "anthropic system prompts hold only text",
                        )
                        .with_param(format!("messages[{i}].content[{j}].type")));
                    }
                    if let Some(b) = text_part(p) {
                        self.blocks.push(b);
                    }
                }
                self.plain = false;
            }
            None => {}
        }
        Ok(())
    }

    fn into_value(self) -> Option<Value> {
        if self.blocks.is_empty() {
            None
        } else if self.plain {
            Some(Value::String(self.texts.join("\n")))
        } else {
            Some(Value::Array(self.blocks))
        }
    }
}

fn text_block(text: &str) -> Value {
    json!({ "type": "text", "text": text })
}

/// A text part as a block, with its `cache_control`; empty text is refused upstream.
fn text_part(p: &ContentPart) -> Option<Value> {
    let text = p.text.as_deref().filter(|t| !t.is_empty())?;
    let mut block = text_block(text);
    copy_cache_control(&mut block, &p.extra);
    Some(block)
}

/// LiteLLM passes prompt-caching markers through; so do we.
fn copy_cache_control(block: &mut Value, extra: &Map<String, Value>) {
    if let (Some(cc), Some(o)) = (extra.get("cache_control"), block.as_object_mut()) {
        o.insert("cache_control".into(), cc.clone());
    }
}

/// A message-level `cache_control` marks the message's last block.
fn apply_cache_control(blocks: &mut [Value], extra: &Map<String, Value>) {
    if let Some(last) = blocks.last_mut() {
        copy_cache_control(last, extra);
    }
}

/// User (or assistant) content as Anthropic blocks.
fn content_blocks(content: Option<&MessageContent>, i: usize) -> Result<Vec<Value>, GatewayError> {
    match content {
        None => Ok(Vec::new()),
        Some(MessageContent::Text(s)) if s.is_empty() => Ok(Vec::new()),
        Some(MessageContent::Text(s)) => Ok(vec![text_block(s)]),
        Some(MessageContent::Parts(parts)) => {
            let mut blocks = Vec::with_capacity(parts.len());
            for (j, p) in parts.iter().enumerate() {
                let path = format!("messages[{i}].content[{j}]");
                if let Some(b) = part_block(p, &path)? {
                    blocks.push(b);
                }
            }
            Ok(blocks)
        }
    }
}

fn part_block(p: &ContentPart, path: &str) -> Result<Option<Value>, GatewayError> {
    let mut block = match p.kind.as_str() {
        "text" => return Ok(text_part(p)),
        "image_url" => {
            let url = p.image_url.as_ref().map(|u| u.url()).ok_or_else(|| {
                GatewayError::invalid_request("an image_url part needs an image_url.url")
                    .with_param(format!("{path}.image_url"))
            })?;
            json!({ "type": "image", "source": source(url, &format!("{path}.image_url"))? })
        }
        // PDFs and other documents, as data URLs (uploaded file ids mean nothing to Anthropic).
        "file" => {
            let data = p
                .extra
                .get("file")
                .and_then(|f| f.get("file_data"))
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    GatewayError::invalid_request(
                        "anthropic takes files as file.file_data data URLs only",
                    )
                    .with_param(format!("{path}.file"))
                })?;
            json!({ "type": "document", "source": source(data, &format!("{path}.file"))? })
        }
        other => {
            return Err(GatewayError::invalid_request(format!(
                "anthropic does not support {other:?} content parts"
            ))
            .with_param(format!("{path}.type")))
        }
    };
    copy_cache_control(&mut block, &p.extra);
    Ok(Some(block))
}

/// A data URL becomes an inline base64 source, an http(s) URL a url source.
fn source(url: &str, param: &str) -> Result<Value, GatewayError> {
    let bad = |why: &str| GatewayError::invalid_request(why.to_string()).with_param(param);
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) = rest
            .split_once(',')
            .ok_or_else(|| bad("a data URL needs a ',' before its data"))?;
        let media_type = meta
            .strip_suffix(";base64")
            .ok_or_else(|| bad("anthropic takes only base64 data URLs (data:<type>;base64,...)"))?;
        if media_type.is_empty() {
            return Err(bad("a data URL needs a media type"));
        }
        return Ok(json!({ "type": "base64", "media_type": media_type, "data": data }));
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(json!({ "type": "url", "url": url }));
    }
    Err(bad("expected a data: or http(s) URL"))
}

/// Assistant turns: thinking blocks handed back (needed to continue tool use with thinking
/// on), then text, then tool calls.
fn assistant_blocks(m: &ChatMessage, i: usize) -> Result<Vec<Value>, GatewayError> {
    let mut blocks: Vec<Value> = match m.extra.get("thinking_blocks") {
        Some(Value::Array(b)) => b.clone(),
        _ => Vec::new(),
    };
    blocks.extend(content_blocks(m.content.as_ref(), i)?);
    for (j, call) in m.tool_calls.iter().flatten().enumerate() {
        let param = format!("messages[{i}].tool_calls[{j}].function.arguments");
        let input = tool_arguments::parse_object(&call.function.arguments, "anthropic", &param)?;
        blocks.push(json!({
            "type": "tool_use",
            "id": call.id,
            "name": call.function.name,
            "input": input,
        }));
    }
    Ok(blocks)
}

fn tool_result_block(m: &ChatMessage, i: usize) -> Result<Value, GatewayError> {
    let id = m.tool_call_id.as_deref().ok_or_else(|| {
        GatewayError::invalid_request("a tool message needs the tool_call_id it answers")
            .with_param(format!("messages[{i}].tool_call_id"))
    })?;
    let mut block = json!({ "type": "tool_result", "tool_use_id": id });
    let content = match &m.content {
        Some(MessageContent::Text(s)) if !s.is_empty() => Some(Value::String(s.clone())),
        Some(c @ MessageContent::Parts(_)) => Some(Value::Array(content_blocks(Some(c), i)?)),
        _ => None,
    };
    if let (Some(c), Some(o)) = (content, block.as_object_mut()) {
        o.insert("content".into(), c);
    }
    Ok(block)
}

/// `tools` and `tool_choice`, with JSON mode's forced tool when `response_format` asks.
fn add_tools(
    req: &ChatRequest,
    thinking_on: bool,
    body: &mut Map<String, Value>,
) -> Result<(), GatewayError> {
    let mut tools = tool_definitions(req)?;
    let mut choice = req
        .tool_choice
        .as_ref()
        .filter(|c| !c.is_null())
        .map(tool_choice)
        .transpose()?;
    if let Some(schema) = json_mode_schema(req)? {
        tools.push(json!({ "name": JSON_TOOL, "input_schema": schema }));
        // Anthropic refuses forced tool use while thinking; the tool is then only offered.
        if !thinking_on {
            choice = Some(json!({ "type": "tool", "name": JSON_TOOL }));
        }
    }
    let parallel = match req.extra.get("parallel_tool_calls") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            return Err(
                GatewayError::invalid_request("'parallel_tool_calls' must be a boolean")
                    .with_param("parallel_tool_calls"),
            )
        }
    };
    // OpenAI's switch is Anthropic's inverted flag, which lives on tool_choice.
    if parallel == Some(false) {
        let c = choice.get_or_insert_with(|| json!({ "type": "auto" }));
        if c["type"] != "none" {
            c["disable_parallel_tool_use"] = Value::Bool(true);
        }
    }
    // Anthropic refuses tool_choice without tools; with none, no choice means the same.
    if tools.is_empty() {
        return Ok(());
    }
    body.insert("tools".into(), Value::Array(tools));
    if let Some(c) = choice {
        body.insert("tool_choice".into(), c);
    }
    Ok(())
}

fn tool_definitions(req: &ChatRequest) -> Result<Vec<Value>, GatewayError> {
    let mut out = Vec::new();
    for tool in function_tools(req, "anthropic")? {
        let f = &tool.function;
        let mut def = json!({ "name": f.name, "input_schema": input_schema(f) });
        if let Some(desc) = &f.description {
            def["description"] = json!(desc);
        }
        copy_cache_control(&mut def, &f.extra);
        out.push(def);
    }
    Ok(out)
}

/// A function's parameters as an input schema: an object schema, `{}` when none is given.
pub(crate) fn input_schema(f: &FunctionDefinition) -> Value {
    let mut schema = f
        .parameters
        .clone()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({ "type": "object", "properties": {} }));
    ensure_object_type(&mut schema);
    schema
}

/// Anthropic requires `"type": "object"` at the top of every input schema.
pub(crate) fn ensure_object_type(schema: &mut Value) {
    if let Some(o) = schema.as_object_mut() {
        o.entry("type").or_insert_with(|| json!("object"));
    }
}

fn tool_choice(v: &Value) -> Result<Value, GatewayError> {
    Ok(match ToolChoice::parse(v)? {
        ToolChoice::Auto => json!({ "type": "auto" }),
        ToolChoice::Required => json!({ "type": "any" }),
        ToolChoice::None => json!({ "type": "none" }),
        ToolChoice::Function(name) => json!({ "type": "tool", "name": name }),
    })
}

/// Whether the client asked for JSON output (and so gets the forced JSON tool).
fn json_mode(req: &ChatRequest) -> bool {
    matches!(json_mode_schema(req), Ok(Some(_)))
}

/// The schema the JSON tool takes, when `response_format` asks for JSON.
pub(crate) fn json_mode_schema(req: &ChatRequest) -> Result<Option<Value>, GatewayError> {
    let Some(rf) = req.response_format.as_ref().filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    match rf.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(json!({ "type": "object" }))),
        Some("json_schema") => {
            let mut schema = rf
                .get("json_schema")
                .and_then(|s| s.get("schema"))
                .filter(|s| s.is_object())
                .cloned()
                .unwrap_or_else(|| json!({ "type": "object" }));
            ensure_object_type(&mut schema);
            Ok(Some(schema))
        }
        _ => Err(GatewayError::invalid_request(
            "'response_format.type' must be \"text\", \"json_object\" or \"json_schema\"",
        )
        .with_param("response_format")),
    }
}

/// Anthropic's `thinking`: passed through when given, else mapped from `reasoning_effort`
/// with LiteLLM's budgets.
pub(crate) fn thinking(req: &ChatRequest) -> Result<Option<Value>, GatewayError> {
    if let Some(t) = req.extra.get("thinking").filter(|v| !v.is_null()) {
        if !t.is_object() {
            return Err(
                GatewayError::invalid_request("'thinking' must be an object")
                    .with_param("thinking"),
            );
        }
        return Ok(Some(t.clone()));
    }
    let budget = match req.extra.get("reasoning_effort") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => match s.as_str() {
            "none" => return Ok(None),
            // 1024 is Anthropic's smallest budget.
            "minimal" | "low" => 1024,
            "medium" => 2048,
            "high" => 4096,
            _ => 0,
        },
        Some(_) => 0,
    };
    if budget == 0 {
        return Err(GatewayError::invalid_request(
            "'reasoning_effort' must be \"low\", \"medium\" or \"high\"",
        )
        .with_param("reasoning_effort"));
    }
    Ok(Some(json!({ "type": "enabled", "budget_tokens": budget })))
}

/// The token budget of an enabled `thinking`.
pub(crate) fn thinking_budget(thinking: Option<&Value>) -> Option<u64> {
    thinking
        .filter(|t| t.get("type").and_then(Value::as_str) == Some("enabled"))
        .and_then(|t| t.get("budget_tokens"))
        .and_then(Value::as_u64)
}

/// `top_k`, when given: a non-negative integer.
pub(crate) fn top_k(req: &ChatRequest) -> Result<Option<&Value>, GatewayError> {
    let Some(k) = req.extra.get("top_k").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    if !k.is_u64() {
        return Err(
            GatewayError::invalid_request("'top_k' must be a non-negative integer")
                .with_param("top_k"),
        );
    }
    Ok(Some(k))
}

// ------------------------------------------------------------------------------ response

#[derive(Deserialize)]
struct MessageResponse {
    #[serde(default)]
    id: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    content: Vec<Block>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: AnthropicUsage,
}

/// The content blocks Tollgate translates; others (server tools, citations' sources...)
/// are skipped.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block {
    Text {
        #[serde(default)]
        text: String,
    },
    ToolUse {
        #[serde(default)]
        id: String,
        #[serde(default)]
        name: String,
        #[serde(default)]
        input: Value,
    },
    Thinking {
        #[serde(default)]
        thinking: String,
        #[serde(default)]
        signature: Option<String>,
    },
    RedactedThinking {
        #[serde(default)]
        data: String,
    },
    #[serde(other)]
    Other,
}

/// Anthropic's token counts; any may be missing or null, and later reports (stream
/// `message_delta`) override earlier ones field by field.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
struct AnthropicUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
}

impl AnthropicUsage {
    fn update(&mut self, newer: &AnthropicUsage) {
        let keep = |old: &mut Option<u64>, new: Option<u64>| {
            if new.is_some() {
                *old = new;
            }
        };
        keep(&mut self.input_tokens, newer.input_tokens);
        keep(&mut self.output_tokens, newer.output_tokens);
        keep(
            &mut self.cache_creation_input_tokens,
            newer.cache_creation_input_tokens,
        );
        keep(
            &mut self.cache_read_input_tokens,
            newer.cache_read_input_tokens,
        );
    }

    /// Input tokens exclude cached ones in Anthropic's count; OpenAI's prompt_tokens (and
    /// LiteLLM's) include every input token, with the cached share in the details.
    fn to_openai(self) -> Usage {
        claude_answer::usage(
            self.input_tokens.unwrap_or(0),
            self.output_tokens.unwrap_or(0),
            self.cache_read_input_tokens,
            self.cache_creation_input_tokens,
        )
    }
}

fn finish_reason(stop_reason: Option<&str>) -> &'static str {
    match stop_reason {
        Some("max_tokens") => "length",
        Some("tool_use") => "tool_calls",
        Some("refusal") => "content_filter",
        // end_turn, stop_sequence, pause_turn and anything new.
        _ => "stop",
    }
}

fn completion(msg: MessageResponse, json_mode: bool) -> ChatCompletion {
    let mut answer = claude_answer::Answer::new(json_mode);
    for block in msg.content {
        match block {
            Block::Text { text } => answer.text(&text),
            Block::ToolUse { id, name, input } => answer.tool_use(id, name, &input),
            Block::Thinking {
                thinking,
                signature,
            } => answer.thinking(thinking, signature),
            Block::RedactedThinking { data } => answer.redacted_thinking(data),
            Block::Other => {}
        }
    }
    let (message, finish) = answer.into_message(finish_reason(msg.stop_reason.as_deref()));
    ChatCompletion {
        id: msg.id,
        model: msg.model,
        ..ChatCompletion::with_choice(message, finish, msg.usage.to_openai())
    }
}

// -------------------------------------------------------------------------------- errors

/// Reads `{"type": "error", "error": {"type", "message"}}`, keeping the upstream status.
pub fn anthropic_error(status: u16, body: &[u8]) -> GatewayError {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) if v.get("error").is_some() => error_from_value(status, &v),
        _ => GatewayError::upstream(status, fallback_message(status, body)),
    }
}

fn error_from_value(status: u16, v: &Value) -> GatewayError {
    let err = v.get("error");
    let message = match err {
        Some(Value::Object(o)) => o.get("message").and_then(Value::as_str),
        Some(Value::String(s)) => Some(s.as_str()),
        _ => None,
    }
    .unwrap_or("upstream error");
    // Anthropic names the kind in `type`; OpenAI-shaped proxies in `code`.
    let kind = err.and_then(|e| {
        e.get("type")
            .or_else(|| e.get("code"))
            .and_then(Value::as_str)
    });
    let mut e = GatewayError::upstream(status, message);
    e.code = if is_context_window(message) {
        Some("context_length_exceeded".into())
    } else {
        kind.map(str::to_string)
    };
    e
}

/// Anthropic reports an over-long prompt as a plain 400; a router needs to tell it apart.
fn is_context_window(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("prompt is too long") || m.contains("exceed context limit")
}

/// The HTTP status an error `type` stands for, for errors that arrive inside a stream.
fn status_for(error_type: &str) -> u16 {
    match error_type {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "timeout_error" => 504,
        "overloaded_error" => 529,
        _ => 500,
    }
}

// -------------------------------------------------------------------------------- stream

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StreamEvent {
    MessageStart {
        message: StartMessage,
    },
    ContentBlockStart {
        index: u64,
        content_block: Block,
    },
    ContentBlockDelta {
        index: u64,
        delta: BlockDelta,
    },
    MessageDelta {
        #[serde(default)]
        delta: MessageDeltaBody,
        #[serde(default)]
        usage: Option<AnthropicUsage>,
    },
    MessageStop,
    Error {
        error: Value,
    },
    /// ping, content_block_stop and events added later: nothing to translate.
    #[serde(other)]
    Ignored,
}

#[derive(Deserialize)]
struct StartMessage {
    #[serde(default)]
    id: String,
    #[serde(default)]
    usage: Option<AnthropicUsage>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockDelta {
    TextDelta {
        #[serde(default)]
        text: String,
    },
    InputJsonDelta {
        #[serde(default)]
        partial_json: String,
    },
    ThinkingDelta {
        #[serde(default)]
        thinking: String,
    },
    SignatureDelta {
        #[serde(default)]
        signature: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize, Default)]
struct MessageDeltaBody {
    #[serde(default)]
    stop_reason: Option<String>,
}

/// What an open content block turns into, by Anthropic block index.
#[derive(Clone, Copy, PartialEq)]
enum OpenBlock {
    /// A tool call, with its OpenAI `index`: the ordinal among tool calls, not the block's.
    Tool(u32),
    /// The JSON-mode tool: its input streams as message content.
    JsonAnswer,
    /// Text, thinking, or a kind we skip; their deltas say what they are.
    Other,
}

/// Anthropic SSE → OpenAI chunks, one per request.
pub struct AnthropicStream {
    decoder: SseDecoder,
    events: Vec<SseEvent>,
    json_mode: bool,
    id: String,
    usage: Option<AnthropicUsage>,
    blocks: BTreeMap<u64, OpenBlock>,
    tool_calls: u32,
    finish_sent: bool,
    finished: bool,
}

impl AnthropicStream {
    pub fn new(json_mode: bool) -> Self {
        AnthropicStream {
            decoder: SseDecoder::new(),
            events: Vec::new(),
            json_mode,
            id: String::new(),
            usage: None,
            blocks: BTreeMap::new(),
            tool_calls: 0,
            finish_sent: false,
            finished: false,
        }
    }

    fn take_events(&mut self, out: &mut Vec<ChatChunk>) -> Result<(), GatewayError> {
        let events = std::mem::take(&mut self.events);
        for ev in events {
            if let Some(event) = parse_event(&ev)? {
                self.handle(event, out)?;
            }
        }
        Ok(())
    }

    fn handle(&mut self, event: StreamEvent, out: &mut Vec<ChatChunk>) -> Result<(), GatewayError> {
        match event {
            StreamEvent::MessageStart { message } => {
                self.id = message.id;
                let usage = self.usage.get_or_insert_with(AnthropicUsage::default);
                if let Some(u) = message.usage {
                    usage.update(&u);
                }
                let delta = Delta::start();
                self.emit(out, delta, None);
            }
            StreamEvent::ContentBlockStart {
                index,
                content_block,
            } => self.start_block(index, content_block, out),
            StreamEvent::ContentBlockDelta { index, delta } => self.block_delta(index, delta, out),
            StreamEvent::MessageDelta { delta, usage } => {
                if let Some(u) = usage {
                    self.usage.get_or_insert_with(Default::default).update(&u);
                }
                if let Some(reason) = delta.stop_reason.as_deref() {
                    let finish = self.finish_reason(reason);
                    self.emit(out, Delta::default(), Some(finish));
                }
            }
            StreamEvent::MessageStop => {
                // A client must always see a finish_reason, even if upstream skipped it.
                if !self.finish_sent {
                    self.emit(out, Delta::default(), Some("stop"));
                }
                self.finished = true;
            }
            StreamEvent::Error { error } => {
                let kind = error.get("type").and_then(Value::as_str).unwrap_or("");
                let wrapped = json!({ "error": error });
                return Err(error_from_value(status_for(kind), &wrapped));
            }
            StreamEvent::Ignored => {}
        }
        Ok(())
    }

    fn start_block(&mut self, index: u64, block: Block, out: &mut Vec<ChatChunk>) {
        let open = match block {
            Block::ToolUse { name, .. } if self.json_mode && name == JSON_TOOL => {
                OpenBlock::JsonAnswer
            }
            Block::ToolUse { id, name, .. } => {
                let ordinal = self.tool_calls;
                self.tool_calls += 1;
                let call = ToolCallDelta {
                    index: ordinal,
                    id: Some(id),
                    kind: Some("function".into()),
                    function: Some(FunctionCallDelta {
                        name: Some(name),
                        arguments: Some(String::new()),
                    }),
                };
                self.emit_tool_call(out, call);
                OpenBlock::Tool(ordinal)
            }
            // Starts normally carry empty text; anything already there is content too.
            Block::Text { text } => {
                self.emit_text(out, text);
                OpenBlock::Other
            }
            Block::Thinking { thinking, .. } => {
                self.emit_thinking(out, thinking, None);
                OpenBlock::Other
            }
            Block::RedactedThinking { data } => {
                let mut delta = Delta::default();
                delta.extra.insert(
                    "thinking_blocks".into(),
                    json!([{ "type": "redacted_thinking", "data": data }]),
                );
                self.emit(out, delta, None);
                OpenBlock::Other
            }
            Block::Other => OpenBlock::Other,
        };
        self.blocks.insert(index, open);
    }

    fn block_delta(&mut self, index: u64, delta: BlockDelta, out: &mut Vec<ChatChunk>) {
        let open = self.blocks.get(&index).copied();
        match delta {
            BlockDelta::TextDelta { text } => self.emit_text(out, text),
            BlockDelta::ThinkingDelta { thinking } => self.emit_thinking(out, thinking, None),
            BlockDelta::SignatureDelta { signature } => {
                self.emit_thinking(out, String::new(), Some(signature))
            }
            BlockDelta::InputJsonDelta { partial_json } if partial_json.is_empty() => {}
            BlockDelta::InputJsonDelta { partial_json } => match open {
                Some(OpenBlock::JsonAnswer) => self.emit_text(out, partial_json),
                Some(OpenBlock::Tool(ordinal)) => {
                    let call = ToolCallDelta {
                        index: ordinal,
                        function: Some(FunctionCallDelta {
                            name: None,
                            arguments: Some(partial_json),
                        }),
                        ..Default::default()
                    };
                    self.emit_tool_call(out, call);
                }
                // Arguments for a block that never started cannot be attributed to a call.
                _ => {}
            },
            BlockDelta::Other => {}
        }
    }

    fn finish_reason(&self, stop_reason: &str) -> &'static str {
        let only_json = self.json_mode
            && self.tool_calls == 0
            && self.blocks.values().any(|b| *b == OpenBlock::JsonAnswer);
        if stop_reason == "tool_use" && only_json {
            "stop"
        } else {
            finish_reason(Some(stop_reason))
        }
    }

    fn emit_text(&mut self, out: &mut Vec<ChatChunk>, text: String) {
        if !text.is_empty() {
            let delta = Delta::text(text);
            self.emit(out, delta, None);
        }
    }

    /// Thinking as LiteLLM streams it: `reasoning_content` text, and `thinking_blocks`
    /// pieces (the signature arrives last, on its own).
    fn emit_thinking(&mut self, out: &mut Vec<ChatChunk>, text: String, signature: Option<String>) {
        if let Some(block) = claude_answer::thinking_block(&text, signature) {
            self.emit(out, claude_answer::reasoning_delta(text, block), None);
        }
    }

    fn emit_tool_call(&mut self, out: &mut Vec<ChatChunk>, call: ToolCallDelta) {
        let delta = Delta::tool_calls(vec![call]);
        self.emit(out, delta, None);
    }

    fn emit(&mut self, out: &mut Vec<ChatChunk>, delta: Delta, finish: Option<&str>) {
        if finish.is_some() {
            self.finish_sent = true;
        }
        let mut chunk = ChatChunk::with_delta(delta, finish.map(str::to_string));
        chunk.id.clone_from(&self.id);
        out.push(chunk);
    }
}

/// One SSE event, typed; `None` for events without data worth reading.
fn parse_event(ev: &SseEvent) -> Result<Option<StreamEvent>, GatewayError> {
    let data = ev.data.trim();
    if data.is_empty() {
        return Ok(None);
    }
    let mut value: Value = parse_json(data.as_bytes())?;
    // The data names its own type; the SSE event name stands in if it does not.
    if let (Some(o), Some(name)) = (value.as_object_mut(), ev.event.as_deref()) {
        o.entry("type").or_insert_with(|| json!(name));
    }
    if value.get("type").is_none() {
        return Ok(None);
    }
    from_upstream(value).map(Some)
}

impl StreamTranslator for AnthropicStream {
    type Chunk = ChatChunk;

    fn feed(&mut self, bytes: &[u8], out: &mut Vec<ChatChunk>) -> Result<(), GatewayError> {
        self.decoder.feed(bytes, &mut self.events);
        self.take_events(out)
    }

    fn finish(&mut self, out: &mut Vec<ChatChunk>) -> Result<(), GatewayError> {
        self.decoder.finish(&mut self.events);
        self.take_events(out)?;
        if self.finished {
            Ok(())
        } else {
            Err(stream_cut())
        }
    }

    fn usage(&self) -> Option<Usage> {
        self.usage.map(AnthropicUsage::to_openai)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::split_test::{self, content_of, finishes, run};
    use crate::providers::test_support::{self, chat};

    const STREAM_TEXT: &str = include_str!("fixtures/anthropic/stream_text.txt");
    const STREAM_TOOL_USE: &str = include_str!("fixtures/anthropic/stream_tool_use.txt");
    const STREAM_THINKING: &str = include_str!("fixtures/anthropic/stream_thinking.txt");
    const STREAM_JSON_MODE: &str = include_str!("fixtures/anthropic/stream_json_mode.txt");

    fn deployment() -> Deployment {
        deployment_with("")
    }

    /// A deployment with extra `litellm_params` (`, key: value` pairs).
    fn deployment_with(params: &str) -> Deployment {
        test_support::deployment(
            "c",
            &format!("{{model: anthropic/claude-3-5-sonnet-20240620, api_key: k{params}}}"),
        )
    }

    /// A request with one user message plus `extra` fields.
    fn simple(extra: Value) -> ChatRequest {
        test_support::simple("c", extra)
    }

    fn body(req: &ChatRequest) -> Value {
        let r = Anthropic.chat_request(req, &deployment()).unwrap();
        serde_json::from_slice(r.body()).unwrap()
    }

    fn refused(req: &ChatRequest) -> GatewayError {
        Anthropic.chat_request(req, &deployment()).unwrap_err()
    }

    // ---------------------------------------------------------------- request

    #[test]
    fn request_goes_to_messages_with_anthropic_headers() {
        let r = Anthropic
            .chat_request(&simple(json!({})), &deployment())
            .unwrap();
        assert_eq!(r.uri(), "https://api.anthropic.com/v1/messages");
        assert_eq!(r.headers()["x-api-key"], "k");
        assert_eq!(r.headers()["anthropic-version"], "2023-06-01");
        assert_eq!(r.headers()["content-type"], "application/json");
    }

    #[test]
    fn api_base_and_version_can_be_overridden() {
        let d = deployment_with(", api_base: 'http://h:1/', anthropic_version: '2024-01-01'");
        let r = Anthropic.chat_request(&simple(json!({})), &d).unwrap();
        assert_eq!(r.uri(), "http://h:1/v1/messages");
        assert_eq!(r.headers()["anthropic-version"], "2024-01-01");
        let d = deployment_with(", api_base: 'http://h:1/v1/messages'");
        let r = Anthropic.chat_request(&simple(json!({})), &d).unwrap();
        assert_eq!(r.uri(), "http://h:1/v1/messages");
    }

    #[test]
    fn full_request_translates_as_the_fixture_says() {
        let req = chat(
            serde_json::from_str(include_str!("fixtures/anthropic/request_openai.json")).unwrap(),
        );
        let want: Value =
            serde_json::from_str(include_str!("fixtures/anthropic/request_anthropic.json"))
                .unwrap();
        assert_eq!(body(&req), want);
    }

    #[test]
    fn default_max_tokens_and_stream_off() {
        let b = body(&simple(json!({})));
        assert_eq!(b["max_tokens"], 4096);
        assert!(b.get("stream").is_none());
        assert!(b.get("system").is_none());
        assert!(b.get("tools").is_none());
        assert_eq!(
            b["messages"],
            json!([{"role": "user", "content": [{"type": "text", "text": "hi"}]}])
        );
        assert_eq!(body(&simple(json!({"max_tokens": 7})))["max_tokens"], 7);
    }

    #[test]
    fn system_parts_and_cache_control_become_blocks() {
        let req = chat(json!({"model": "c", "messages": [
            {"role": "system", "content": [{"type": "text", "text": "A", "cache_control": {"type": "ephemeral"}}]},
            {"role": "system", "content": "B"},
            {"role": "user", "content": "hi"}
        ]}));
        assert_eq!(
            body(&req)["system"],
            json!([
                {"type": "text", "text": "A", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "B"}
            ])
        );
    }

    #[test]
    fn only_system_messages_is_a_400() {
        let e = refused(&chat(
            json!({"model": "c", "messages": [{"role": "system", "content": "x"}]}),
        ));
        assert_eq!(e.status().as_u16(), 400);
        assert_eq!(e.param.as_deref(), Some("messages"));
    }

    #[test]
    fn consecutive_assistant_messages_merge_and_prefill_is_trimmed() {
        let req = chat(json!({"model": "c", "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "one"},
            {"role": "assistant", "content": "two  \n"}
        ]}));
        assert_eq!(
            body(&req)["messages"][1],
            json!({"role": "assistant", "content": [
                {"type": "text", "text": "one"}, {"type": "text", "text": "two"}
            ]})
        );
    }

    #[test]
    fn bad_tool_call_arguments_name_the_message() {
        let req = chat(json!({"model": "c", "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "tool_calls": [{"id": "t", "type": "function", "function": {"name": "f", "arguments": "{nope"}}]}
        ]}));
        let e = refused(&req);
        assert_eq!(e.status().as_u16(), 400);
        assert_eq!(
            e.param.as_deref(),
            Some("messages[1].tool_calls[0].function.arguments")
        );
    }

    #[test]
    fn tool_message_needs_its_call_id() {
        let req = chat(json!({"model": "c", "messages": [
            {"role": "user", "content": "hi"},
            {"role": "tool", "content": "x"}
        ]}));
        assert_eq!(
            refused(&req).param.as_deref(),
            Some("messages[1].tool_call_id")
        );
    }

    #[test]
    fn bad_images_and_unknown_parts_are_400s() {
        let with_part = |part: Value| {
            chat(json!({"model": "c", "messages": [{"role": "user", "content": [part]}]}))
        };
        let e = refused(&with_part(
            json!({"type": "image_url", "image_url": {"url": "data:image/png,abc"}}),
        ));
        assert_eq!(e.param.as_deref(), Some("messages[0].content[0].image_url"));
        let e = refused(&with_part(
            json!({"type": "image_url", "image_url": "ftp://x/y.png"}),
        ));
        assert_eq!(e.param.as_deref(), Some("messages[0].content[0].image_url"));
        let e = refused(&with_part(
            json!({"type": "input_audio", "input_audio": {}}),
        ));
        assert_eq!(e.param.as_deref(), Some("messages[0].content[0].type"));
        let pdf = body(&with_part(
            json!({"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE"}}),
        ));
        assert_eq!(
            pdf["messages"][0]["content"][0],
            json!({"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}})
        );
    }

    #[test]
    fn stop_list_and_n() {
        let b = body(&simple(json!({"stop": ["a", "b"], "n": 1})));
        assert_eq!(b["stop_sequences"], json!(["a", "b"]));
        let e = refused(&simple(json!({"n": 2})));
        assert_eq!(e.status().as_u16(), 400);
        assert_eq!(e.param.as_deref(), Some("n"));
    }

    #[test]
    fn tool_choice_mappings() {
        let tools = json!([{"type": "function", "function": {"name": "f", "parameters": {"properties": {}}}}]);
        let choice = |c: Value| body(&simple(json!({"tools": tools, "tool_choice": c})));
        assert_eq!(
            choice(json!("auto"))["tool_choice"],
            json!({"type": "auto"})
        );
        assert_eq!(
            choice(json!("required"))["tool_choice"],
            json!({"type": "any"})
        );
        assert_eq!(
            choice(json!("none"))["tool_choice"],
            json!({"type": "none"})
        );
        let named = choice(json!({"type": "function", "function": {"name": "f"}}));
        assert_eq!(named["tool_choice"], json!({"type": "tool", "name": "f"}));
        // A schema without a type still gets the object type Anthropic requires.
        assert_eq!(named["tools"][0]["input_schema"]["type"], "object");
        let e = refused(&simple(json!({"tools": tools, "tool_choice": "sometimes"})));
        assert_eq!(e.param.as_deref(), Some("tool_choice"));
        // Parallel tool calls off, with no tool_choice: Anthropic's default plus the flag.
        let b = body(&simple(
            json!({"tools": tools, "parallel_tool_calls": false}),
        ));
        assert_eq!(
            b["tool_choice"],
            json!({"type": "auto", "disable_parallel_tool_use": true})
        );
        // Without tools, no tool_choice is sent (Anthropic would refuse it).
        assert!(body(&simple(json!({"tool_choice": "none"})))
            .get("tool_choice")
            .is_none());
    }

    #[test]
    fn json_mode_forces_the_json_tool() {
        let b = body(&simple(json!({"response_format": {"type": "json_object"}})));
        assert_eq!(
            b["tools"],
            json!([{"name": "json_tool_call", "input_schema": {"type": "object"}}])
        );
        assert_eq!(
            b["tool_choice"],
            json!({"type": "tool", "name": "json_tool_call"})
        );
        let schema = json!({"type": "object", "properties": {"city": {"type": "string"}}});
        let b = body(&simple(json!({"response_format": {"type": "json_schema",
            "json_schema": {"name": "x", "schema": schema}}})));
        assert_eq!(b["tools"][0]["input_schema"], schema);
        assert!(body(&simple(json!({"response_format": {"type": "text"}})))
            .get("tools")
            .is_none());
    }

    #[test]
    fn user_top_k_and_reasoning_effort() {
        let b = body(&simple(
            json!({"user": "u1", "top_k": 5, "reasoning_effort": "low"}),
        ));
        assert_eq!(b["metadata"], json!({"user_id": "u1"}));
        assert_eq!(b["top_k"], 5);
        assert_eq!(
            b["thinking"],
            json!({"type": "enabled", "budget_tokens": 1024})
        );
        assert_eq!(b["max_tokens"], 4096 + 1024);
        // E-mail addresses are identifying data Anthropic refuses; LiteLLM drops them.
        assert!(body(&simple(json!({"user": "a@b.c"})))
            .get("metadata")
            .is_none());
        assert_eq!(
            refused(&simple(json!({"top_k": "many"}))).param.as_deref(),
            Some("top_k")
        );
    }

    #[test]
    fn supported_params_cover_what_is_translated() {
        let p = Anthropic.supported_chat_params().unwrap();
        for k in [
            "tools",
            "tool_choice",
            "top_k",
            "parallel_tool_calls",
            "response_format",
        ] {
            assert!(p.contains(&k), "{k}");
        }
        assert!(!p.contains(&"logprobs"));
    }

    // --------------------------------------------------------------- response

    fn response(fixture: &str) -> ChatCompletion {
        let plain = chat(json!({"model": "c", "messages": [{"role": "user", "content": "hi"}]}));
        response_to(fixture, &plain)
    }

    fn response_to(fixture: &str, req: &ChatRequest) -> ChatCompletion {
        Anthropic
            .chat_response(fixture.as_bytes(), req, &deployment())
            .unwrap()
    }

    #[test]
    fn text_response_with_cache_usage() {
        let c = response(include_str!("fixtures/anthropic/response_text.json"));
        assert_eq!(c.id, "msg_013Zva2CMHLNnXjNJJKqJ2EF");
        let choice = &c.choices[0];
        assert_eq!(
            choice.message.content.as_deref(),
            Some("Hi! My name is Claude. How can I help?")
        );
        assert!(choice.message.tool_calls.is_none());
        assert_eq!(choice.finish_reason.as_deref(), Some("stop"));
        let u = c.usage.unwrap();
        assert_eq!(u.prompt_tokens, 2095 + 2051 + 1000);
        assert_eq!(u.completion_tokens, 503);
        assert_eq!(u.total_tokens, 2095 + 2051 + 1000 + 503);
        let details = u.prompt_tokens_details.unwrap();
        assert_eq!(details.cached_tokens, 1000);
        assert_eq!(details.cache_creation_tokens, Some(2051));
    }

    #[test]
    fn tool_use_response() {
        let c = response(include_str!("fixtures/anthropic/response_tool_use.json"));
        let m = &c.choices[0].message;
        assert_eq!(m.content.as_deref(), Some("I'll look that up for you."));
        let calls = m.tool_calls.as_ref().unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].id, "toolu_01A09q90qw90lq917835lq9");
        assert_eq!(calls[0].kind, "function");
        assert_eq!(calls[0].function.name, "get_weather");
        let args: Value = serde_json::from_str(&calls[0].function.arguments).unwrap();
        assert_eq!(
            args,
            json!({"location": "San Francisco, CA", "unit": "celsius"})
        );
        assert_eq!(calls[1].function.arguments, "{}");
        assert_eq!(c.choices[0].finish_reason.as_deref(), Some("tool_calls"));
        assert_eq!(m.extra["reasoning_content"], "The user wants the weather.");
        assert_eq!(m.extra["thinking_blocks"][0]["signature"], "sig123");
        let u = c.usage.unwrap();
        assert_eq!((u.prompt_tokens, u.completion_tokens), (150, 87));
        assert!(u.prompt_tokens_details.is_none());
    }

    #[test]
    fn json_mode_response_becomes_content() {
        let json_req = chat(
            json!({"model": "c", "messages": [{"role": "user", "content": "hi"}],
                                   "response_format": {"type": "json_object"}}),
        );
        let c = response_to(
            include_str!("fixtures/anthropic/response_json_mode.json"),
            &json_req,
        );
        let m = &c.choices[0].message;
        assert!(m.tool_calls.is_none());
        let answer: Value = serde_json::from_str(m.content.as_deref().unwrap()).unwrap();
        assert_eq!(answer, json!({"city": "Paris", "population": 2102650}));
        assert_eq!(c.choices[0].finish_reason.as_deref(), Some("stop"));
    }

    #[test]
    fn stop_reasons_map_to_finish_reasons() {
        for (stop, want) in [
            ("end_turn", "stop"),
            ("stop_sequence", "stop"),
            ("max_tokens", "length"),
            ("tool_use", "tool_calls"),
            ("pause_turn", "stop"),
            ("refusal", "content_filter"),
            ("something_new", "stop"),
        ] {
            let body = json!({"id": "m", "content": [], "stop_reason": stop, "usage": {"input_tokens": 1, "output_tokens": 1}});
            let c = response(&body.to_string());
            assert_eq!(c.choices[0].finish_reason.as_deref(), Some(want), "{stop}");
            assert!(c.choices[0].message.content.is_none());
        }
    }

    #[test]
    fn unreadable_response_is_a_502() {
        let e = Anthropic
            .chat_response(
                b"<html>",
                &chat(json!({"model": "c", "messages": [{"role": "user", "content": "hi"}]})),
                &deployment(),
            )
            .unwrap_err();
        assert_eq!(e.status().as_u16(), 502);
        let e = Anthropic
            .chat_response(
                br#"{"content": "not a list"}"#,
                &chat(json!({"model": "c", "messages": [{"role": "user", "content": "hi"}]})),
                &deployment(),
            )
            .unwrap_err();
        assert_eq!(e.status().as_u16(), 502);
    }

    // ----------------------------------------------------------------- stream

    fn stream(json_mode: bool) -> Box<dyn StreamTranslator<Chunk = ChatChunk>> {
        Box::new(AnthropicStream::new(json_mode))
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
    fn assert_split_invariant(stream_text: &str, json_mode: bool) -> (Vec<Value>, Option<Usage>) {
        split_test::assert_split_invariant(|| stream(json_mode), stream_text)
    }

    #[test]
    fn text_stream_at_every_split() {
        let (chunks, usage) = assert_split_invariant(STREAM_TEXT, false);
        assert_eq!(
            chunks[0]["choices"][0]["delta"],
            json!({"role": "assistant", "content": ""})
        );
        assert_eq!(chunks[0]["id"], "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY");
        assert_eq!(content_of(&chunks), "Hello! Ça va? 👋");
        assert_eq!(finishes(&chunks), ["stop"]);
        assert!(chunks
            .iter()
            .all(|c| c.get("usage").is_none() && c["choices"].as_array().unwrap().len() == 1));
        let u = usage.unwrap();
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.total_tokens),
            (25, 15, 40)
        );
    }

    #[test]
    fn tool_use_stream_at_every_split() {
        let (chunks, usage) = assert_split_invariant(STREAM_TOOL_USE, false);
        assert_eq!(
            content_of(&chunks),
            "Okay, let's check the weather for San Francisco, CA:"
        );
        let calls: Vec<&Value> = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0))
            .collect();
        // Block 1 is the first tool call: OpenAI index 0, not Anthropic's 1.
        assert_eq!(
            *calls[0],
            json!({"index": 0, "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "type": "function",
                   "function": {"name": "get_weather", "arguments": ""}})
        );
        let args = |i: u64| -> String {
            calls
                .iter()
                .filter(|c| c["index"] == i)
                .filter_map(|c| c["function"]["arguments"].as_str())
                .collect()
        };
        let first: Value = serde_json::from_str(&args(0)).unwrap();
        assert_eq!(
            first,
            json!({"location": "San Francisco, CA", "unit": "fahrenheit"})
        );
        assert_eq!(args(1), r#"{"tz": "PST"}"#);
        assert_eq!(finishes(&chunks), ["tool_calls"]);
        let u = usage.unwrap();
        assert_eq!((u.prompt_tokens, u.completion_tokens), (572, 89));
        assert_eq!(u.prompt_tokens_details.unwrap().cached_tokens, 100);
    }

    #[test]
    fn thinking_stream_reports_reasoning() {
        let (chunks, usage) = assert_split_invariant(STREAM_THINKING, false);
        let reasoning: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["reasoning_content"].as_str())
            .collect();
        assert_eq!(reasoning, "1071 = 2 × 462 + 147");
        assert!(chunks.iter().any(|c| {
            c["choices"][0]["delta"]["thinking_blocks"][0]["signature"] == "EqQBCgIYAhIM"
        }));
        assert_eq!(content_of(&chunks), "The GCD is 21.");
        assert_eq!(finishes(&chunks), ["stop"]);
        assert_eq!(usage.unwrap().total_tokens, 0);
    }

    #[test]
    fn json_mode_stream_streams_content() {
        let (chunks, _) = assert_split_invariant(STREAM_JSON_MODE, true);
        assert_eq!(content_of(&chunks), r#"{"city": "Paris"}"#);
        assert!(chunks
            .iter()
            .all(|c| c["choices"][0]["delta"].get("tool_calls").is_none()));
        assert_eq!(finishes(&chunks), ["stop"]);
    }

    #[test]
    fn interleaved_tool_blocks_keep_their_calls_apart() {
        let ev = |data: Value| format!("event: x\ndata: {data}\n\n");
        let stream = [
            ev(json!({"type": "message_start", "message": {"id": "m"}})),
            ev(json!({"type": "content_block_start", "index": 3, "content_block": {"type": "tool_use", "id": "a", "name": "f", "input": {}}})),
            ev(json!({"type": "content_block_start", "index": 5, "content_block": {"type": "tool_use", "id": "b", "name": "g", "input": {}}})),
            ev(json!({"type": "content_block_delta", "index": 5, "delta": {"type": "input_json_delta", "partial_json": "{\"y\":"}})),
            ev(json!({"type": "content_block_delta", "index": 3, "delta": {"type": "input_json_delta", "partial_json": "{}"}})),
            ev(json!({"type": "content_block_delta", "index": 5, "delta": {"type": "input_json_delta", "partial_json": "1}"}})),
            ev(json!({"type": "content_block_delta", "index": 9, "delta": {"type": "input_json_delta", "partial_json": "lost"}})),
            ev(json!({"type": "some_future_event", "x": 1})),
            ev(json!({"type": "message_stop"})),
        ]
        .concat();
        let (chunks, res, _) = run_stream(stream.as_bytes(), 0, false);
        res.unwrap();
        let args = |i: u64| -> String {
            chunks
                .iter()
                .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0))
                .filter(|c| c["index"] == i)
                .filter_map(|c| c["function"]["arguments"].as_str())
                .collect()
        };
        assert_eq!(args(0), "{}");
        assert_eq!(args(1), "{\"y\":1}");
        // No message_delta came, but the client still gets a finish_reason.
        assert_eq!(finishes(&chunks), ["stop"]);
    }

    #[test]
    fn cut_stream_is_an_error() {
        let cut = &STREAM_TEXT[..STREAM_TEXT.find("event: message_stop").unwrap()];
        let (chunks, res, _) = run_stream(cut.as_bytes(), 0, false);
        let e = res.unwrap_err();
        assert_eq!(e.code.as_deref(), Some("stream_interrupted"));
        assert_eq!(content_of(&chunks), "Hello! Ça va? 👋");
        let (_, res, usage) = run_stream(b"", 0, false);
        assert!(res.is_err());
        assert!(usage.is_none());
    }

    #[test]
    fn error_event_is_an_error() {
        let head = &STREAM_TEXT[..STREAM_TEXT.find("event: content_block_stop").unwrap()];
        let stream = format!(
            "{head}event: error\ndata: {{\"type\": \"error\", \"error\": {{\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}}}\n\n"
        );
        let (_, res, _) = run_stream(stream.as_bytes(), 0, false);
        let e = res.unwrap_err();
        assert_eq!(e.message, "Overloaded");
        assert_eq!(e.status().as_u16(), 529);
        assert_eq!(e.code.as_deref(), Some("overloaded_error"));
    }

    #[test]
    fn malformed_events_are_502s_not_panics() {
        for data in [
            "{not json",
            r#"{"type": "content_block_delta", "delta": {"type": "text_delta", "text": "x"}}"#,
            r#"{"type": "message_start", "message": 5}"#,
        ] {
            let stream = format!("event: message_start\ndata: {data}\n\n");
            let (_, res, _) = run_stream(stream.as_bytes(), 0, false);
            assert_eq!(res.unwrap_err().status().as_u16(), 502, "{data}");
        }
    }

    // ----------------------------------------------------------------- errors

    #[test]
    fn upstream_errors_keep_status_and_type() {
        for (status, body, code) in [
            (
                400,
                include_str!("fixtures/anthropic/error_400.json"),
                "invalid_request_error",
            ),
            (
                401,
                include_str!("fixtures/anthropic/error_401.json"),
                "authentication_error",
            ),
            (
                429,
                include_str!("fixtures/anthropic/error_429.json"),
                "rate_limit_error",
            ),
            (
                529,
                include_str!("fixtures/anthropic/error_529.json"),
                "overloaded_error",
            ),
        ] {
            let e = Anthropic.error(status, body.as_bytes());
            assert_eq!(e.status().as_u16(), status);
            assert_eq!(e.code.as_deref(), Some(code));
            let want: Value = serde_json::from_str(body).unwrap();
            assert_eq!(e.message, want["error"]["message"]);
        }
        assert_eq!(
            Anthropic.error(401, b"").kind.type_str(),
            "authentication_error"
        );
    }

    #[test]
    fn prompt_too_long_is_a_context_window_error() {
        let body = include_str!("fixtures/anthropic/error_prompt_too_long.json");
        let e = Anthropic.error(400, body.as_bytes());
        assert_eq!(e.status().as_u16(), 400);
        assert_eq!(e.code.as_deref(), Some("context_length_exceeded"));
        assert!(e.message.contains("prompt is too long"));
    }

    #[test]
    fn non_json_error_keeps_the_body() {
        let e = Anthropic.error(502, b"<html>bad gateway</html>");
        assert_eq!(e.status().as_u16(), 502);
        assert!(e.message.contains("bad gateway"));
        assert!(e.code.is_none());
    }
}
