//! An Anthropic Messages request as an OpenAI [`ChatRequest`].
//!
//! `system` becomes the first message; `tool_use` blocks become an assistant's `tool_calls`;
//! a user turn's `tool_result` blocks become `tool` messages (placed before the rest of that
//! turn, since OpenAI wants them right after the calls); images become `image_url` parts
//! (base64 as data URLs). Tools keep their `input_schema` as `parameters`; `tool_choice`
//! `auto`/`any`/`tool`/`none` become `auto`/`required`/the named function/`none`.
//! `stop_sequences` → `stop`, `metadata.user_id` → `user`. `top_k` and `thinking` stay as
//! they are here; [`fit_to_provider`] decides per deployment what the provider gets.

use serde_json::{json, Map, Value};

use crate::error::GatewayError;
use crate::openai::{
    ChatMessage, ChatRequest, ContentPart, FunctionCall, FunctionDefinition, ImageUrl,
    MessageContent, Role, Stop, StreamOptions, Tool, ToolCall,
};

/// LiteLLM's thinking budgets for `reasoning_effort` low / medium / high (the same as
/// [`crate::providers::anthropic`] uses the other way), so a round trip keeps the level.
const MEDIUM_BUDGET: u64 = 2048;
const HIGH_BUDGET: u64 = 4096;

/// Gateway-only fields a client may put in the body (through `extra_body`) for the pipeline.
const GATEWAY_FIELDS: &[&str] = &["mock_response", "drop_params"];

fn bad(message: impl Into<String>, param: &str) -> GatewayError {
    GatewayError::invalid_request(message).with_param(param)
}

/// What Anthropic itself refuses for any model: checked before routing, whatever the provider.
pub fn check_required(body: &Value) -> Result<(), GatewayError> {
    match body.get("max_tokens") {
        Some(v) if v.as_u64().is_some_and(|n| n >= 1) => {}
        None | Some(Value::Null) => return Err(bad("max_tokens: Field required", "max_tokens")),
        Some(_) => return Err(bad("max_tokens: must be a positive integer", "max_tokens")),
    }
    match body.get("messages") {
        Some(Value::Array(m)) if !m.is_empty() => Ok(()),
        Some(Value::Array(_)) => Err(bad(
            "messages: at least one message is required",
            "messages",
        )),
        None | Some(Value::Null) => Err(bad("messages: Field required", "messages")),
        Some(_) => Err(bad("messages: Input should be a valid list", "messages")),
    }
}

/// The OpenAI form of an Anthropic request body (already through [`check_required`]).
pub fn to_chat(body: &Value) -> Result<ChatRequest, GatewayError> {
    let model = crate::validate::model_name(body)?;
    let mut messages = Vec::new();
    if let Some(system) = body.get("system").filter(|s| !s.is_null()) {
        messages.push(system_message(system)?);
    }
    let turns = body
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("messages: Field required", "messages"))?;
    for (i, turn) in turns.iter().enumerate() {
        translate_turn(turn, i, &mut messages)?;
    }
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let mut extra = Map::new();
    if let Some(k) = body.get("top_k").filter(|v| !v.is_null()) {
        if !k.is_u64() {
            return Err(bad("top_k: must be a non-negative integer", "top_k"));
        }
        extra.insert("top_k".into(), k.clone());
    }
    if let Some(t) = thinking(body)? {
        extra.insert("thinking".into(), t);
    }
    let (tools, tool_choice, parallel) = tools(body)?;
    if let Some(p) = parallel {
        extra.insert("parallel_tool_calls".into(), Value::Bool(p));
    }
    for k in GATEWAY_FIELDS {
        if let Some(v) = body.get(*k) {
            extra.insert((*k).to_string(), v.clone());
        }
    }
    Ok(ChatRequest {
        model,
        messages,
        stream: stream.then_some(true),
        // The usage chunk is what the final message_delta reports.
        stream_options: stream.then(|| StreamOptions {
            include_usage: Some(true),
            extra: Map::new(),
        }),
        temperature: number(body, "temperature")?,
        top_p: number(body, "top_p")?,
        max_tokens: body.get("max_tokens").and_then(Value::as_u64),
        max_completion_tokens: None,
        stop: stop_sequences(body)?,
        n: None,
        tools,
        tool_choice,
        response_format: None,
        user: user_id(body)?,
        extra,
    })
}

/// Drops or reshapes what the picked provider cannot take, as LiteLLM does: `top_k` only goes
/// to providers that list it; `user` (from `metadata.user_id`) only where it is known; `thinking` goes as is to providers that take it (Gemini,
/// Bedrock) and as `reasoning_effort` to the others; `parallel_tool_calls` only where known.
/// `supported` is the provider's list (`None`: OpenAI's wire format, which takes everything
/// OpenAI defines).
pub fn fit_to_provider(req: &mut ChatRequest, supported: Option<&[&str]>) {
    let takes = |p: &str| supported.is_none_or(|s| s.contains(&p));
    let lists = |p: &str| supported.is_some_and(|s| s.contains(&p));
    if !lists("top_k") {
        req.extra.remove("top_k");
    }
    if !takes("parallel_tool_calls") {
        req.extra.remove("parallel_tool_calls");
    }
    // Anthropic clients (Claude Code among them) send metadata.user_id on every request: a
    // provider without `user` must not fail them for it.
    if !takes("user") {
        req.user = None;
    }
    if !lists("thinking") {
        if let Some(t) = req.extra.remove("thinking") {
            if takes("reasoning_effort") {
                req.extra
                    .insert("reasoning_effort".into(), json!(effort_for(&t)));
            }
        }
    }
}

/// LiteLLM's budget → effort levels (at least the budget the level stands for).
fn effort_for(thinking: &Value) -> &'static str {
    match thinking.get("budget_tokens").and_then(Value::as_u64) {
        Some(b) if b >= HIGH_BUDGET => "high",
        Some(b) if b >= MEDIUM_BUDGET => "medium",
        _ => "low",
    }
}

fn number(body: &Value, key: &str) -> Result<Option<f64>, GatewayError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| bad(format!("{key}: Input should be a valid number"), key)),
    }
}

fn stop_sequences(body: &Value) -> Result<Option<Stop>, GatewayError> {
    match body.get("stop_sequences") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) if items.is_empty() => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|s| s.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .map(|v| Some(Stop::Many(v)))
            .ok_or_else(|| {
                bad(
                    "stop_sequences: every item must be a string",
                    "stop_sequences",
                )
            }),
        Some(_) => Err(bad(
            "stop_sequences: Input should be a valid list",
            "stop_sequences",
        )),
    }
}

fn user_id(body: &Value) -> Result<Option<String>, GatewayError> {
    match body.get("metadata") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(m.get("user_id").and_then(Value::as_str).map(String::from)),
        Some(_) => Err(bad("metadata: Input should be an object", "metadata")),
    }
}

/// `thinking` when enabled (`disabled` is the same as none).
fn thinking(body: &Value) -> Result<Option<Value>, GatewayError> {
    match body.get("thinking") {
        None | Some(Value::Null) => Ok(None),
        Some(t @ Value::Object(o)) => match o.get("type").and_then(Value::as_str) {
            Some("disabled") => Ok(None),
            Some(_) => Ok(Some(t.clone())),
            None => Err(bad("thinking.type: Field required", "thinking")),
        },
        Some(_) => Err(bad("thinking: Input should be an object", "thinking")),
    }
}

fn system_message(system: &Value) -> Result<ChatMessage, GatewayError> {
    let content = match system {
        Value::String(s) => MessageContent::Text(s.clone()),
        Value::Array(blocks) => MessageContent::Parts(
            blocks
                .iter()
                .enumerate()
                .map(|(i, b)| match block_type(b) {
                    Some("text") => text_part(b, &format!("system.{i}")),
                    _ => Err(bad(
                        format!("system.{i}: only text blocks are allowed in system"),
                        "system",
                    )),
                })
                .collect::<Result<_, _>>()?,
        ),
        _ => {
            return Err(bad(
                "system: Input should be a string or a list of text blocks",
                "system",
            ))
        }
    };
    Ok(message(Role::System, Some(content)))
}

fn message(role: Role, content: Option<MessageContent>) -> ChatMessage {
    ChatMessage {
        role,
        content,
        name: None,
        tool_calls: None,
        tool_call_id: None,
        extra: Map::new(),
    }
}

fn block_type(b: &Value) -> Option<&str> {
    b.get("type").and_then(Value::as_str)
}

/// A turn's content as blocks (a string is one text block).
fn blocks_of(content: Option<&Value>, path: &str) -> Result<Vec<Value>, GatewayError> {
    match content {
        Some(Value::String(s)) => Ok(vec![json!({"type": "text", "text": s})]),
        Some(Value::Array(blocks)) => Ok(blocks.clone()),
        None | Some(Value::Null) => Err(bad(format!("{path}.content: Field required"), "messages")),
        Some(_) => Err(bad(
            format!("{path}.content: Input should be a string or a list of blocks"),
            "messages",
        )),
    }
}

fn translate_turn(turn: &Value, i: usize, out: &mut Vec<ChatMessage>) -> Result<(), GatewayError> {
    let path = format!("messages.{i}");
    let blocks = blocks_of(turn.get("content"), &path)?;
    match turn.get("role").and_then(Value::as_str) {
        Some("user") => user_turn(&blocks, &path, out),
        Some("assistant") => {
            out.push(assistant_turn(&blocks, &path)?);
            Ok(())
        }
        _ => Err(bad(
            format!("{path}.role: Input should be 'user' or 'assistant'"),
            "messages",
        )),
    }
}

/// A user turn: one `tool` message per `tool_result`, then the other blocks as one user
/// message (images a tool returned go there too: OpenAI tool messages carry text only).
fn user_turn(blocks: &[Value], path: &str, out: &mut Vec<ChatMessage>) -> Result<(), GatewayError> {
    let mut parts = Vec::new();
    for (j, b) in blocks.iter().enumerate() {
        let at = format!("{path}.content.{j}");
        match block_type(b) {
            Some("tool_result") => out.push(tool_result(b, &at, &mut parts)?),
            _ => parts.push(user_part(b, &at)?),
        }
    }
    // One plain text block is sent as a string: every provider reads that form.
    let content = match parts.as_slice() {
        [] => return Ok(()),
        [only] if only.kind == "text" && only.extra.is_empty() => {
            MessageContent::Text(only.text.clone().unwrap_or_default())
        }
        _ => MessageContent::Parts(parts),
    };
    out.push(message(Role::User, Some(content)));
    Ok(())
}

fn user_part(b: &Value, at: &str) -> Result<ContentPart, GatewayError> {
    match block_type(b) {
        Some("text") => text_part(b, at),
        Some("image") => image_part(b, at),
        Some("document") => document_part(b, at),
        Some(other) => Err(bad(
            format!("{at}: content blocks of type '{other}' can only be sent to Anthropic models"),
            "messages",
        )),
        None => Err(bad(format!("{at}.type: Field required"), "messages")),
    }
}

fn part(kind: &str) -> ContentPart {
    ContentPart {
        kind: kind.into(),
        text: None,
        image_url: None,
        extra: Map::new(),
    }
}

fn text_part(b: &Value, at: &str) -> Result<ContentPart, GatewayError> {
    let text = b
        .get("text")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("{at}.text: Field required"), "messages"))?;
    let mut p = part("text");
    p.text = Some(text.to_string());
    // Prompt caching hints travel on OpenAI parts the way LiteLLM reads them.
    if let Some(c) = b.get("cache_control") {
        p.extra.insert("cache_control".into(), c.clone());
    }
    Ok(p)
}

/// A `source` as a URL: base64 data becomes a data URL.
fn source_url(b: &Value, at: &str) -> Result<String, GatewayError> {
    let source = b
        .get("source")
        .ok_or_else(|| bad(format!("{at}.source: Field required"), "messages"))?;
    let field = |k: &str| {
        source
            .get(k)
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("{at}.source.{k}: Field required"), "messages"))
    };
    match source.get("type").and_then(Value::as_str) {
        Some("base64") => Ok(format!(
            "data:{};base64,{}",
            field("media_type")?,
            field("data")?
        )),
        Some("url") => Ok(field("url")?.to_string()),
        _ => Err(bad(
            format!("{at}.source.type: expected 'base64' or 'url'"),
            "messages",
        )),
    }
}

fn image_part(b: &Value, at: &str) -> Result<ContentPart, GatewayError> {
    let mut p = part("image_url");
    p.image_url = Some(ImageUrl::Object {
        url: source_url(b, at)?,
        detail: None,
    });
    Ok(p)
}

/// PDFs (base64 or URL) become OpenAI `file` parts; plain-text documents become text.
fn document_part(b: &Value, at: &str) -> Result<ContentPart, GatewayError> {
    let source = b.get("source");
    if source.and_then(|s| s.get("type")).and_then(Value::as_str) == Some("text") {
        let text = source
            .and_then(|s| s.get("data"))
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("{at}.source.data: Field required"), "messages"))?;
        let mut p = part("text");
        p.text = Some(text.to_string());
        return Ok(p);
    }
    let mut p = part("file");
    p.extra
        .insert("file".into(), json!({ "file_data": source_url(b, at)? }));
    Ok(p)
}

fn tool_result(
    b: &Value,
    at: &str,
    spill: &mut Vec<ContentPart>,
) -> Result<ChatMessage, GatewayError> {
    let id = b
        .get("tool_use_id")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("{at}.tool_use_id: Field required"), "messages"))?;
    let text = match b.get("content") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(inner)) => {
            let mut text = Vec::new();
            for (k, ib) in inner.iter().enumerate() {
                let p = user_part(ib, &format!("{at}.content.{k}"))?;
                match p.text {
                    Some(t) if p.kind == "text" => text.push(t),
                    _ => spill.push(p),
                }
            }
            text.join("\n")
        }
        Some(_) => {
            return Err(bad(
                format!("{at}.content: Input should be a string or a list of blocks"),
                "messages",
            ))
        }
    };
    let mut m = message(Role::Tool, Some(MessageContent::Text(text)));
    m.tool_call_id = Some(id.to_string());
    Ok(m)
}

/// An assistant turn: text joined, `tool_use` as tool calls, thinking kept as LiteLLM's
/// `thinking_blocks` (providers that replay reasoning read them; others ignore them).
fn assistant_turn(blocks: &[Value], path: &str) -> Result<ChatMessage, GatewayError> {
    let mut text = String::new();
    let mut calls = Vec::new();
    let mut thinking = Vec::new();
    for (j, b) in blocks.iter().enumerate() {
        let at = format!("{path}.content.{j}");
        match block_type(b) {
            Some("text") => text.push_str(b.get("text").and_then(Value::as_str).unwrap_or("")),
            Some("tool_use") => calls.push(tool_call(b, &at)?),
            Some("thinking" | "redacted_thinking") => thinking.push(b.clone()),
            Some(other) => {
                return Err(bad(
                    format!(
                    "{at}: content blocks of type '{other}' can only be sent to Anthropic models"
                ),
                    "messages",
                ))
            }
            None => return Err(bad(format!("{at}.type: Field required"), "messages")),
        }
    }
    let mut m = message(
        Role::Assistant,
        Some(MessageContent::Text(text)).filter(|c| !c.joined_text().is_empty()),
    );
    if !calls.is_empty() {
        m.tool_calls = Some(calls);
    }
    if !thinking.is_empty() {
        m.extra
            .insert("thinking_blocks".into(), Value::Array(thinking));
    }
    Ok(m)
}

fn tool_call(b: &Value, at: &str) -> Result<ToolCall, GatewayError> {
    let field = |k: &str| {
        b.get(k)
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("{at}.{k}: Field required"), "messages"))
    };
    let input = b.get("input").cloned().unwrap_or_else(|| json!({}));
    Ok(ToolCall {
        id: field("id")?.to_string(),
        kind: "function".into(),
        function: FunctionCall {
            name: field("name")?.to_string(),
            arguments: input.to_string(),
        },
    })
}

type ToolSettings = (Option<Vec<Tool>>, Option<Value>, Option<bool>);

/// `tools`, `tool_choice` and, from `disable_parallel_tool_use`, `parallel_tool_calls`.
fn tools(body: &Value) -> Result<ToolSettings, GatewayError> {
    let tools = match body.get("tools") {
        None | Some(Value::Null) => None,
        Some(Value::Array(list)) => Some(
            list.iter()
                .enumerate()
                .map(|(i, t)| tool(t, i))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(_) => return Err(bad("tools: Input should be a valid list", "tools")),
    };
    let Some(choice) = body.get("tool_choice").filter(|c| !c.is_null()) else {
        return Ok((tools, None, None));
    };
    let openai = match choice.get("type").and_then(Value::as_str) {
        Some("auto") => json!("auto"),
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => {
            let name = choice
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("tool_choice.name: Field required", "tool_choice"))?;
            json!({"type": "function", "function": {"name": name}})
        }
        _ => {
            return Err(bad(
                "tool_choice.type: expected 'auto', 'any', 'tool' or 'none'",
                "tool_choice",
            ))
        }
    };
    let parallel = choice
        .get("disable_parallel_tool_use")
        .and_then(Value::as_bool)
        .map(|disabled| !disabled);
    Ok((tools, Some(openai), parallel))
}

fn tool(t: &Value, i: usize) -> Result<Tool, GatewayError> {
    let name = t
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("tools.{i}.name: Field required"), "tools"))?;
    // Anthropic's server tools (web search, bash, ...) have a versioned type and no schema.
    let Some(schema) = t.get("input_schema") else {
        return Err(bad(
            format!("tools.{i}: server tools ('{name}') can only be sent to Anthropic models"),
            "tools",
        ));
    };
    let mut extra = Map::new();
    if let Some(c) = t.get("cache_control") {
        extra.insert("cache_control".into(), c.clone());
    }
    Ok(Tool {
        kind: "function".into(),
        function: FunctionDefinition {
            name: name.to_string(),
            description: t
                .get("description")
                .and_then(Value::as_str)
                .map(String::from),
            parameters: Some(schema.clone()),
            extra: Map::new(),
        },
        extra,
    })
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
