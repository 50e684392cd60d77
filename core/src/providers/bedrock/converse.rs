//! OpenAI chat ⇄ Bedrock Converse, following LiteLLM's mappings: system messages become
//! `system` blocks, turns alternate user/assistant with tool calls as `toolUse` and results as
//! `toolResult` blocks, JSON mode is a forced tool whose input comes back as the message text,
//! `top_k` and `thinking` travel in `additionalModelRequestFields`, and reasoning comes back as
//! `reasoning_content`. Bedrock takes images as bytes only, so image URLs must be data URLs.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::super::anthropic::{
    input_schema, json_mode_schema, thinking, thinking_budget, top_k, JSON_TOOL,
};
use super::super::function_tools::function_tools;
use super::super::turns::Turns;
use super::super::{claude_answer, tool_arguments};
use super::super::{from_upstream, parse_json, single_choice};
use crate::deployment::Deployment;
use crate::error::GatewayError;
use crate::openai::{
    ChatCompletion, ChatMessage, ChatRequest, ContentPart, MessageContent, Role, Usage,
};

/// The OpenAI parameters Converse can express (`user` is accepted and not sent: Bedrock has
/// no such field). `top_k`, `thinking` and `reasoning_effort` arrive in `extra`.
pub const SUPPORTED_PARAMS: &[&str] = &[
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
    "response_format",
    "user",
    "reasoning_effort",
    "thinking",
];

/// Room left for the answer on top of a thinking budget when the client sets no max_tokens
/// (LiteLLM's default).
const DEFAULT_MAX_TOKENS: u64 = 4096;
/// Bedrock refuses tool calls in the history without a tool list; LiteLLM (with
/// `modify_params`) then offers this placeholder, and so do we.
const PLACEHOLDER_TOOL: &str = "dummy_tool";

/// Whether the client asked for JSON output (and so gets the forced JSON tool).
pub fn json_mode(req: &ChatRequest) -> bool {
    matches!(json_mode_schema(req), Ok(Some(_)))
}

// ----------------------------------------------------------------------------- request

/// The whole Converse body for `req`; `model` is the Bedrock model id.
pub fn request_body(req: &ChatRequest, d: &Deployment, model: &str) -> Result<Value, GatewayError> {
    single_choice(req, "bedrock")?;
    let (system, messages) = translate_messages(&req.messages)?;
    let thinking = thinking(req)?;
    let budget = thinking_budget(thinking.as_ref());

    let mut body = Map::new();
    body.insert("messages".into(), Value::Array(messages));
    if !system.is_empty() {
        body.insert("system".into(), Value::Array(system));
    }
    let config = inference_config(req, budget);
    if !config.is_empty() {
        body.insert("inferenceConfig".into(), Value::Object(config));
    }
    let mut additional = Map::new();
    add_top_k(req, model, &mut additional)?;
    if let Some(t) = thinking {
        additional.insert("thinking".into(), t);
    }
    if !additional.is_empty() {
        body.insert(
            "additionalModelRequestFields".into(),
            Value::Object(additional),
        );
    }
    let history_has_tools = req
        .messages
        .iter()
        .any(|m| m.role == Role::Tool || m.tool_calls.as_ref().is_some_and(|c| !c.is_empty()));
    if let Some(config) = tool_config(req, d, budget.is_some(), history_has_tools)? {
        body.insert("toolConfig".into(), config);
    }
    Ok(Value::Object(body))
}

fn inference_config(req: &ChatRequest, thinking_budget: Option<u64>) -> Map<String, Value> {
    let mut c = Map::new();
    // With thinking on, maxTokens must exceed the budget, so the default leaves room.
    let max = req
        .max_output_tokens()
        .or(thinking_budget.map(|b| b + DEFAULT_MAX_TOKENS));
    if let Some(m) = max {
        c.insert("maxTokens".into(), json!(m));
    }
    if let Some(t) = req.temperature {
        c.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.top_p {
        c.insert("topP".into(), json!(p));
    }
    // Converse refuses empty stop sequences.
    let stops: Vec<String> = req
        .stop
        .clone()
        .map(|s| s.into_vec())
        .unwrap_or_default()
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
    if !stops.is_empty() {
        c.insert("stopSequences".into(), json!(stops));
    }
    c
}

/// `top_k` is model-specific: Anthropic models take `top_k`, Amazon Nova `inferenceConfig.topK`;
/// other families have no such knob and LiteLLM drops it for them, as we do.
fn add_top_k(
    req: &ChatRequest,
    model: &str,
    additional: &mut Map<String, Value>,
) -> Result<(), GatewayError> {
    let Some(k) = top_k(req)? else {
        return Ok(());
    };
    let base = base_model(model);
    if base.starts_with("anthropic.") {
        additional.insert("top_k".into(), k.clone());
    } else if base.starts_with("amazon.nova") {
        additional.insert("inferenceConfig".into(), json!({ "topK": k }));
    }
    Ok(())
}

/// The foundation model behind an id: without an ARN's resource path or a cross-region
/// inference profile's geography prefix (`us.anthropic.claude...` → `anthropic.claude...`).
pub fn base_model(model: &str) -> &str {
    const GEOGRAPHIES: &[&str] = &[
        "us.", "eu.", "apac.", "us-gov.", "global.", "jp.", "au.", "ca.",
    ];
    let model = if model.starts_with("arn:") {
        model.rsplit('/').next().unwrap_or(model)
    } else {
        model
    };
    GEOGRAPHIES
        .iter()
        .find_map(|g| model.strip_prefix(g))
        .unwrap_or(model)
}

/// The `system` blocks and the alternating user/assistant turns.
fn translate_messages(messages: &[ChatMessage]) -> Result<(Vec<Value>, Vec<Value>), GatewayError> {
    let mut system = Vec::new();
    let mut turns = Turns::default();
    for (i, m) in messages.iter().enumerate() {
        let (role, blocks) = match m.role {
            Role::System | Role::Developer => {
                system.extend(system_blocks(m, i)?);
                continue;
            }
            Role::User => ("user", content_blocks(m.content.as_ref(), &m.extra, i)?),
            Role::Assistant => ("assistant", assistant_blocks(m, i)?),
            // Converse has no tool role: results travel in the next user turn.
            Role::Tool => ("user", vec![tool_result_block(m, i)?]),
            Role::Function => {
                return Err(GatewayError::invalid_request(
                    "bedrock does not take legacy 'function' messages; use 'tool' messages",
                )
                .with_param(format!("messages[{i}].role")))
            }
        };
        // Converse requires user and assistant turns to alternate: neighbours merge.
        turns.push(role, blocks);
    }
    if turns.is_empty() {
        return Err(GatewayError::invalid_request(
            "bedrock needs at least one user or assistant message besides the system prompt",
        )
        .with_param("messages"));
    }
    Ok((system, turns.into_messages()))
}

/// A prompt-caching marker (`cache_control` on a part or message) is a `cachePoint` block
/// placed after what it marks.
fn cache_point(extra: &Map<String, Value>) -> Option<Value> {
    extra
        .get("cache_control")
        .filter(|v| !v.is_null())
        .map(|_| json!({ "cachePoint": { "type": "default" } }))
}

fn system_blocks(m: &ChatMessage, i: usize) -> Result<Vec<Value>, GatewayError> {
    let mut blocks = Vec::new();
    match &m.content {
        Some(MessageContent::Text(s)) if !s.is_empty() => blocks.push(json!({ "text": s })),
        Some(MessageContent::Parts(parts)) => {
            for (j, p) in parts.iter().enumerate() {
                if p.kind != "text" {
                    return Err(GatewayError::invalid_request(
                        "bedrock system prompts hold only text",
                    )
                    .with_param(format!("messages[{i}].content[{j}].type")));
                }
                if let Some(text) = p.text.as_deref().filter(|t| !t.is_empty()) {
                    blocks.push(json!({ "text": text }));
                    blocks.extend(cache_point(&p.extra));
                }
            }
        }
        _ => {}
    }
    if !blocks.is_empty() {
        blocks.extend(cache_point(&m.extra));
    }
    Ok(blocks)
}

/// User (or assistant) content as Converse blocks; a message-level `cache_control` adds a
/// cache point at its end.
fn content_blocks(
    content: Option<&MessageContent>,
    extra: &Map<String, Value>,
    i: usize,
) -> Result<Vec<Value>, GatewayError> {
    let mut blocks = Vec::new();
    match content {
        Some(MessageContent::Text(s)) if !s.is_empty() => blocks.push(json!({ "text": s })),
        None | Some(MessageContent::Text(_)) => {}
        Some(MessageContent::Parts(parts)) => {
            for (j, p) in parts.iter().enumerate() {
                if let Some(b) = part_block(p, i, j)? {
                    blocks.push(b);
                    blocks.extend(cache_point(&p.extra));
                }
            }
        }
    }
    if !blocks.is_empty() {
        blocks.extend(cache_point(extra));
    }
    Ok(blocks)
}

fn part_block(p: &ContentPart, i: usize, j: usize) -> Result<Option<Value>, GatewayError> {
    let path = format!("messages[{i}].content[{j}]");
    match p.kind.as_str() {
        "text" => Ok(p
            .text
            .as_deref()
            .filter(|t| !t.is_empty())
            .map(|t| json!({ "text": t }))),
        "image_url" => {
            let param = format!("{path}.image_url");
            let url = p.image_url.as_ref().map(|u| u.url()).ok_or_else(|| {
                GatewayError::invalid_request("an image_url part needs an image_url.url")
                    .with_param(param.as_str())
            })?;
            let (media_type, data) = data_url(url, &param)?;
            let format = image_format(media_type).ok_or_else(|| {
                GatewayError::invalid_request(format!(
                    "bedrock takes png, jpeg, gif or webp images, not {media_type:?}"
                ))
                .with_param(param.as_str())
            })?;
            Ok(Some(
                json!({ "image": { "format": format, "source": { "bytes": data } } }),
            ))
        }
        // PDFs and other documents, as data URLs; Converse needs a name unique per request.
        "file" => {
            let param = format!("{path}.file");
            let url = p
                .extra
                .get("file")
                .and_then(|f| f.get("file_data"))
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    GatewayError::invalid_request(
                        "bedrock takes files as file.file_data data URLs only",
                    )
                    .with_param(param.as_str())
                })?;
            let (media_type, data) = data_url(url, &param)?;
            let format = document_format(media_type).ok_or_else(|| {
                GatewayError::invalid_request(format!(
                    "bedrock does not take {media_type:?} documents"
                ))
                .with_param(param.as_str())
            })?;
            Ok(Some(json!({ "document": {
                "format": format,
                "name": format!("document {i}-{j}"),
                "source": { "bytes": data },
            } })))
        }
        other => Err(GatewayError::invalid_request(format!(
            "bedrock does not support {other:?} content parts"
        ))
        .with_param(format!("{path}.type"))),
    }
}

/// `(media type, base64 data)` of a base64 data URL. Bedrock takes bytes, never URLs, and
/// Tollgate does not fetch images on a client's behalf.
fn data_url<'a>(url: &'a str, param: &str) -> Result<(&'a str, &'a str), GatewayError> {
    let bad = |why: &str| GatewayError::invalid_request(why.to_string()).with_param(param);
    let Some(rest) = url.strip_prefix("data:") else {
        return Err(bad(
            "bedrock needs the image bytes: send it as a base64 data URL (data:image/png;base64,...), not a link",
        ));
    };
    let (meta, data) = rest
        .split_once(',')
        .ok_or_else(|| bad("a data URL needs a ',' before its data"))?;
    let media_type = meta
        .strip_suffix(";base64")
        .ok_or_else(|| bad("bedrock takes only base64 data URLs (data:<type>;base64,...)"))?;
    Ok((media_type, data))
}

fn image_format(media_type: &str) -> Option<&'static str> {
    Some(match media_type {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpeg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        _ => return None,
    })
}

fn document_format(media_type: &str) -> Option<&'static str> {
    Some(match media_type {
        "application/pdf" => "pdf",
        "text/csv" => "csv",
        "text/html" => "html",
        "text/plain" => "txt",
        "text/markdown" => "md",
        "application/msword" => "doc",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => "docx",
        "application/vnd.ms-excel" => "xls",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "xlsx",
        _ => return None,
    })
}

/// Assistant turns: reasoning handed back (needed to continue tool use with thinking on),
/// then text, then tool calls.
fn assistant_blocks(m: &ChatMessage, i: usize) -> Result<Vec<Value>, GatewayError> {
    let mut blocks: Vec<Value> = match m.extra.get("thinking_blocks") {
        Some(Value::Array(b)) => b.iter().filter_map(reasoning_block).collect(),
        _ => Vec::new(),
    };
    blocks.extend(content_blocks(m.content.as_ref(), &Map::new(), i)?);
    for (j, call) in m.tool_calls.iter().flatten().enumerate() {
        let param = format!("messages[{i}].tool_calls[{j}].function.arguments");
        let input = tool_arguments::parse_object(&call.function.arguments, "bedrock", &param)?;
        blocks.push(json!({ "toolUse": {
            "toolUseId": call.id,
            "name": call.function.name,
            "input": input,
        } }));
    }
    blocks.extend(cache_point(&m.extra));
    Ok(blocks)
}

/// A `thinking_blocks` entry (LiteLLM's shape) as a Converse `reasoningContent` block.
fn reasoning_block(b: &Value) -> Option<Value> {
    match b.get("type").and_then(Value::as_str)? {
        "thinking" => {
            let mut text =
                json!({ "text": b.get("thinking").and_then(Value::as_str).unwrap_or("") });
            if let Some(sig) = b.get("signature").and_then(Value::as_str) {
                text["signature"] = json!(sig);
            }
            Some(json!({ "reasoningContent": { "reasoningText": text } }))
        }
        "redacted_thinking" => {
            let data = b.get("data").and_then(Value::as_str)?;
            Some(json!({ "reasoningContent": { "redactedContent": data } }))
        }
        _ => None,
    }
}

fn tool_result_block(m: &ChatMessage, i: usize) -> Result<Value, GatewayError> {
    let id = m.tool_call_id.as_deref().ok_or_else(|| {
        GatewayError::invalid_request("a tool message needs the tool_call_id it answers")
            .with_param(format!("messages[{i}].tool_call_id"))
    })?;
    let mut content = content_blocks(m.content.as_ref(), &Map::new(), i)?;
    // Converse requires some content; an empty result is still an answer.
    if content.is_empty() {
        content.push(json!({ "text": "" }));
    }
    Ok(json!({ "toolResult": { "toolUseId": id, "content": content } }))
}

/// `toolConfig`: the client's tools, JSON mode's forced tool, and the tool choice.
fn tool_config(
    req: &ChatRequest,
    d: &Deployment,
    thinking_on: bool,
    history_has_tools: bool,
) -> Result<Option<Value>, GatewayError> {
    let mut tools = tool_specs(req)?;
    let mut choice = match req.tool_choice.as_ref().filter(|c| !c.is_null()) {
        Some(c) => tool_choice(c, d.drop_params)?,
        None => None,
    };
    if let Some(schema) = json_mode_schema(req)? {
        tools.push(tool_spec(JSON_TOOL, None, schema));
        // Forced tool use is refused while thinking; the tool is then only offered.
        if !thinking_on {
            choice = Some(json!({ "tool": { "name": JSON_TOOL } }));
        }
    }
    if tools.is_empty() && history_has_tools {
        tools.push(tool_spec(
            PLACEHOLDER_TOOL,
            Some("This is a dummy tool call"),
            json!({ "type": "object", "properties": {} }),
        ));
    }
    if tools.is_empty() {
        return Ok(None);
    }
    let mut config = json!({ "tools": tools });
    if let Some(c) = choice {
        config["toolChoice"] = c;
    }
    Ok(Some(config))
}

fn tool_spec(name: &str, description: Option<&str>, schema: Value) -> Value {
    let mut spec = json!({ "name": name, "inputSchema": { "json": schema } });
    if let Some(desc) = description {
        spec["description"] = json!(desc);
    }
    json!({ "toolSpec": spec })
}

fn tool_specs(req: &ChatRequest) -> Result<Vec<Value>, GatewayError> {
    let mut out = Vec::new();
    for tool in function_tools(req, "bedrock")? {
        let f = &tool.function;
        out.push(tool_spec(
            &f.name,
            f.description.as_deref(),
            input_schema(f),
        ));
        out.extend(cache_point(&f.extra).or_else(|| cache_point(&tool.extra)));
    }
    Ok(out)
}

/// OpenAI's tool_choice as Converse's. Converse has no "none": like LiteLLM, it is refused
/// unless `drop_params` is on, which ignores it.
fn tool_choice(v: &Value, drop_params: bool) -> Result<Option<Value>, GatewayError> {
    let mapped = match v {
        Value::String(s) => match s.as_str() {
            "auto" => Some(json!({ "auto": {} })),
            "required" => Some(json!({ "any": {} })),
            "none" if drop_params => return Ok(None),
            "none" => {
                return Err(GatewayError::invalid_request(
                    "bedrock has no tool_choice \"none\"; leave the tools out, or turn on drop_params to ignore it",
                )
                .with_param("tool_choice"))
            }
            _ => None,
        },
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("function") => o
            .get("function")
            .and_then(|f| f.get("name"))
            .and_then(Value::as_str)
            .map(|name| json!({ "tool": { "name": name } })),
        _ => None,
    };
    mapped.map(Some).ok_or_else(|| {
        GatewayError::invalid_request(
            "'tool_choice' must be \"auto\", \"required\" or {\"type\": \"function\", \"function\": {\"name\": ...}}",
        )
        .with_param("tool_choice")
    })
}

// ---------------------------------------------------------------------------- response

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConverseResponse {
    #[serde(default)]
    output: Output,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: BedrockUsage,
}

#[derive(Deserialize, Default)]
struct Output {
    #[serde(default)]
    message: Option<ResponseMessage>,
}

#[derive(Deserialize)]
struct ResponseMessage {
    #[serde(default)]
    content: Vec<ContentBlock>,
}

/// A Converse content block: an object with one member naming its kind. Kinds Tollgate does
/// not translate (citations, guard content...) leave every field empty and are skipped.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ContentBlock {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    tool_use: Option<ToolUse>,
    #[serde(default)]
    reasoning_content: Option<ReasoningContent>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolUse {
    #[serde(default)]
    tool_use_id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    input: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReasoningContent {
    #[serde(default)]
    reasoning_text: Option<ReasoningText>,
    #[serde(default)]
    redacted_content: Option<String>,
}

#[derive(Deserialize)]
struct ReasoningText {
    #[serde(default)]
    text: String,
    #[serde(default)]
    signature: Option<String>,
}

/// Bedrock's token counts. `inputTokens` excludes cache reads and writes; OpenAI's
/// prompt_tokens (and LiteLLM's) include every input token, with the cached share in the
/// details.
#[derive(Debug, Default, Clone, Copy, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BedrockUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    total_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    cache_write_input_tokens: Option<u64>,
}

impl BedrockUsage {
    pub fn to_openai(self) -> Usage {
        let mut usage = claude_answer::usage(
            self.input_tokens,
            self.output_tokens,
            self.cache_read_input_tokens,
            self.cache_write_input_tokens,
        );
        // Bedrock's own total already counts the cache; keep it when given, as LiteLLM does.
        if let Some(total) = self.total_tokens.filter(|t| *t > 0) {
            usage.total_tokens = total;
        }
        usage
    }
}

/// Converse's stop reasons as OpenAI finish reasons.
pub fn finish_reason(stop_reason: Option<&str>) -> &'static str {
    match stop_reason {
        Some("max_tokens") | Some("model_context_window_exceeded") => "length",
        Some("tool_use") => "tool_calls",
        Some("guardrail_intervened") | Some("content_filtered") => "content_filter",
        // end_turn, stop_sequence and anything new.
        _ => "stop",
    }
}

/// A Converse response as an OpenAI completion (id, model and time are stamped by the caller).
pub fn completion(body: &[u8], json_mode: bool) -> Result<ChatCompletion, GatewayError> {
    let value: Value = parse_json(body)?;
    let resp: ConverseResponse = from_upstream(value)?;
    let mut answer = claude_answer::Answer::new(json_mode);
    for block in resp.output.message.map(|m| m.content).unwrap_or_default() {
        if let Some(t) = block.text {
            answer.text(&t);
        }
        if let Some(call) = block.tool_use {
            answer.tool_use(call.tool_use_id, call.name, &call.input);
        }
        if let Some(r) = block.reasoning_content {
            if let Some(rt) = r.reasoning_text {
                answer.thinking(rt.text, rt.signature);
            }
            if let Some(data) = r.redacted_content {
                answer.redacted_thinking(data);
            }
        }
    }
    let (message, finish) = answer.into_message(finish_reason(resp.stop_reason.as_deref()));
    Ok(ChatCompletion::with_choice(
        message,
        finish,
        resp.usage.to_openai(),
    ))
}
