//! OpenAI chat request → Gemini `GenerateContentRequest` (the body both Google AI Studio and
//! Vertex AI take; the model travels in the URL).

use serde_json::{json, Map, Value};

use super::schema::{gemini_schema, has_properties};
use super::THOUGHT_SIGNATURE_SEPARATOR;
use crate::error::GatewayError;
use crate::openai::{ChatMessage, ChatRequest, ContentPart, MessageContent, Role, ToolCall};
use crate::providers::function_tools::function_tools;
use crate::providers::tool_arguments;
use crate::providers::tool_choice::ToolChoice;

/// OpenAI parameters Gemini can express. `top_k`, `thinking` and `safety_settings` are
/// LiteLLM's pass-throughs and arrive in `extra`.
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
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "logprobs",
    "top_logprobs",
    "reasoning_effort",
    "thinking",
    "safety_settings",
];

/// The whole Gemini request body for `req`.
pub fn request_body(req: &ChatRequest) -> Result<Value, GatewayError> {
    let (system, contents) = translate_messages(&req.messages)?;
    let mut body = Map::new();
    if let Some(system) = system {
        body.insert("systemInstruction".into(), system);
    }
    body.insert("contents".into(), Value::Array(contents));
    add_tools(req, &mut body)?;
    let config = generation_config(req)?;
    if !config.is_empty() {
        body.insert("generationConfig".into(), Value::Object(config));
    }
    if let Some(s) = req.extra.get("safety_settings").filter(|v| !v.is_null()) {
        body.insert("safetySettings".into(), s.clone());
    }
    Ok(Value::Object(body))
}

// ------------------------------------------------------------------------------ messages

/// The system instruction and the `user`/`model` turns, neighbours of one role merged
/// (Gemini wants the answers to one turn's function calls together in the next turn).
fn translate_messages(
    messages: &[ChatMessage],
) -> Result<(Option<Value>, Vec<Value>), GatewayError> {
    let mut system: Vec<Value> = Vec::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let (role, parts) = match m.role {
            Role::System | Role::Developer => {
                system.extend(text_parts(m.content.as_ref(), i)?);
                continue;
            }
            Role::User => ("user", user_parts(m.content.as_ref(), i)?),
            Role::Assistant => ("model", model_parts(m, i)?),
            // Gemini has no tool role: function results travel in a user turn.
            Role::Tool | Role::Function => ("user", vec![function_response(m, i, messages)?]),
        };
        // Gemini refuses a turn without parts.
        if parts.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last, prev)) if *last == role => prev.extend(parts),
            _ => turns.push((role, parts)),
        }
    }
    if turns.is_empty() {
        if system.is_empty() {
            return Err(GatewayError::invalid_request(
                "gemini needs at least one message with content",
            )
            .with_param("messages"));
        }
        // A prompt of system messages alone is sent as the user's turn (Gemini requires
        // contents), as LiteLLM does.
        turns.push(("user", std::mem::take(&mut system)));
    }
    let system = (!system.is_empty()).then(|| json!({ "parts": system }));
    let contents = turns
        .into_iter()
        .map(|(role, parts)| json!({ "role": role, "parts": parts }))
        .collect();
    Ok((system, contents))
}

fn text_part(text: &str) -> Value {
    json!({ "text": text })
}

/// System content: text only.
fn text_parts(content: Option<&MessageContent>, i: usize) -> Result<Vec<Value>, GatewayError> {
    match content {
        None => Ok(Vec::new()),
        Some(MessageContent::Text(s)) if s.is_empty() => Ok(Vec::new()),
        Some(MessageContent::Text(s)) => Ok(vec![text_part(s)]),
        Some(MessageContent::Parts(parts)) => {
            let mut out = Vec::new();
            for (j, p) in parts.iter().enumerate() {
                if p.kind != "text" {
                    return Err(GatewayError::invalid_request(
                        "gemini system instructions hold only text",
                    )
                    .with_param(format!("messages[{i}].content[{j}].type")));
                }
                out.extend(p.text.as_deref().filter(|t| !t.is_empty()).map(text_part));
            }
            Ok(out)
        }
    }
}

/// User content: text, images, files and audio.
fn user_parts(content: Option<&MessageContent>, i: usize) -> Result<Vec<Value>, GatewayError> {
    let Some(MessageContent::Parts(parts)) = content else {
        return text_parts(content, i);
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, p) in parts.iter().enumerate() {
        let path = format!("messages[{i}].content[{j}]");
        out.extend(media_or_text_part(p, &path)?);
    }
    Ok(out)
}

fn media_or_text_part(p: &ContentPart, path: &str) -> Result<Option<Value>, GatewayError> {
    match p.kind.as_str() {
        "text" => Ok(p.text.as_deref().filter(|t| !t.is_empty()).map(text_part)),
        "image_url" => {
            let param = format!("{path}.image_url");
            let url = p.image_url.as_ref().map(|u| u.url()).ok_or_else(|| {
                GatewayError::invalid_request("an image_url part needs an image_url.url")
                    .with_param(&param)
            })?;
            media_part(url, Some("image/jpeg"), &param).map(Some)
        }
        // Documents and other files: a data URL in file_data, or a URI in file_id.
        "file" => {
            let param = format!("{path}.file");
            let file = p.extra.get("file");
            let field = |k: &str| file.and_then(|f| f.get(k)).and_then(Value::as_str);
            let url = field("file_data")
                .or_else(|| field("file_id"))
                .ok_or_else(|| {
                    GatewayError::invalid_request(
                        "a file part needs file.file_data or file.file_id",
                    )
                    .with_param(&param)
                })?;
            media_part(url, field("format"), &param).map(Some)
        }
        "input_audio" => {
            let audio = p.extra.get("input_audio");
            let field = |k: &str| audio.and_then(|a| a.get(k)).and_then(Value::as_str);
            match (field("data"), field("format")) {
                (Some(data), Some(format)) => Ok(Some(
                    json!({ "inlineData": { "mimeType": format!("audio/{format}"), "data": data } }),
                )),
                _ => Err(GatewayError::invalid_request(
                    "an input_audio part needs input_audio.data and input_audio.format",
                )
                .with_param(format!("{path}.input_audio"))),
            }
        }
        other => Err(GatewayError::invalid_request(format!(
            "gemini does not support {other:?} content parts"
        ))
        .with_param(format!("{path}.type"))),
    }
}

/// A data URL becomes `inlineData`; an http(s) or gs:// URL becomes `fileData` with a media
/// type guessed from its extension (Gemini requires one), as LiteLLM does.
fn media_part(url: &str, fallback_mime: Option<&str>, param: &str) -> Result<Value, GatewayError> {
    let bad = |why: String| GatewayError::invalid_request(why).with_param(param);
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) = rest
            .split_once(',')
            .ok_or_else(|| bad("a data URL needs a ',' before its data".into()))?;
        let mime = meta
            .strip_suffix(";base64")
            .filter(|m| !m.is_empty())
            .ok_or_else(|| {
                bad("gemini takes only base64 data URLs (data:<type>;base64,...)".into())
            })?;
        return Ok(json!({ "inlineData": { "mimeType": mime, "data": data } }));
    }
    let remote = ["https://", "http://", "gs://"]
        .iter()
        .any(|s| url.starts_with(s));
    if !remote {
        return Err(bad(
            "expected a data: URL or an http(s):// or gs:// URL".into()
        ));
    }
    let mime = mime_from_extension(url).or(fallback_mime).ok_or_else(|| {
        bad(format!(
            "cannot tell the media type of {url:?} from its extension; send it as a data URL"
        ))
    })?;
    Ok(json!({ "fileData": { "mimeType": mime, "fileUri": url } }))
}

/// The media types Gemini reads, by file extension.
fn mime_from_extension(url: &str) -> Option<&'static str> {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let name = path.rsplit('/').next().unwrap_or(path);
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "mp3" => "audio/mp3",
        "wav" => "audio/wav",
        "aac" => "audio/aac",
        "ogg" => "audio/ogg",
        "flac" => "audio/flac",
        "aiff" => "audio/aiff",
        "mp4" => "video/mp4",
        "mov" => "video/mov",
        "mpeg" | "mpg" => "video/mpeg",
        "avi" => "video/avi",
        "wmv" => "video/wmv",
        "flv" => "video/x-flv",
        "webm" => "video/webm",
        "3gp" | "3gpp" => "video/3gpp",
        _ => return None,
    })
}

/// Assistant turns: text, then one `functionCall` part per tool call.
fn model_parts(m: &ChatMessage, i: usize) -> Result<Vec<Value>, GatewayError> {
    let mut parts = text_parts(m.content.as_ref(), i)?;
    for (j, call) in m.tool_calls.iter().flatten().enumerate() {
        parts.push(function_call_part(
            call,
            &format!("messages[{i}].tool_calls[{j}]"),
        )?);
    }
    Ok(parts)
}

fn function_call_part(call: &ToolCall, path: &str) -> Result<Value, GatewayError> {
    let param = format!("{path}.function.arguments");
    let args = tool_arguments::parse_object(&call.function.arguments, "gemini", &param)?;
    let mut part = json!({ "functionCall": { "name": call.function.name, "args": args } });
    // Gemini 3 refuses a function call replayed without the signature it came with; it
    // travels inside the tool call id (see THOUGHT_SIGNATURE_SEPARATOR).
    if let Some((_, signature)) = call.id.split_once(THOUGHT_SIGNATURE_SEPARATOR) {
        part["thoughtSignature"] = json!(signature);
    }
    Ok(part)
}

/// A tool result as a `functionResponse`. Gemini matches results to calls by function name,
/// which OpenAI tool messages lack: it is looked up from the call the message answers.
fn function_response(
    m: &ChatMessage,
    i: usize,
    messages: &[ChatMessage],
) -> Result<Value, GatewayError> {
    let name = match m.tool_call_id.as_deref() {
        Some(id) => called_function(id, &messages[..i]).or(m.name.as_deref()),
        None => m.name.as_deref(),
    }
    .ok_or_else(|| {
        GatewayError::invalid_request(
            "a tool message must answer a tool call of an earlier assistant message (its tool_call_id names none)",
        )
        .with_param(format!("messages[{i}].tool_call_id"))
    })?;
    let text = m
        .content
        .as_ref()
        .map(MessageContent::joined_text)
        .unwrap_or_default();
    Ok(json!({ "functionResponse": { "name": name, "response": { "content": text } } }))
}

/// The function of the latest earlier tool call with this id (ids may repeat across turns).
fn called_function<'a>(id: &str, earlier: &'a [ChatMessage]) -> Option<&'a str> {
    earlier
        .iter()
        .rev()
        .flat_map(|m| m.tool_calls.iter().flatten())
        .find(|c| c.id == id)
        .map(|c| c.function.name.as_str())
}

// --------------------------------------------------------------------------------- tools

/// `tools: [{functionDeclarations}]` and `toolConfig.functionCallingConfig`.
fn add_tools(req: &ChatRequest, body: &mut Map<String, Value>) -> Result<(), GatewayError> {
    let declarations = function_declarations(req)?;
    // With no tools a tool_choice means nothing, and Gemini refuses a config without them.
    if declarations.is_empty() {
        return Ok(());
    }
    body.insert(
        "tools".into(),
        json!([{ "functionDeclarations": declarations }]),
    );
    if let Some(choice) = req.tool_choice.as_ref().filter(|c| !c.is_null()) {
        body.insert(
            "toolConfig".into(),
            json!({ "functionCallingConfig": function_calling_config(choice)? }),
        );
    }
    Ok(())
}

fn function_declarations(req: &ChatRequest) -> Result<Vec<Value>, GatewayError> {
    let mut out = Vec::new();
    for tool in function_tools(req, "gemini")? {
        let f = &tool.function;
        let mut decl = json!({ "name": f.name });
        if let Some(desc) = &f.description {
            decl["description"] = json!(desc);
        }
        if let Some(params) = f.parameters.as_ref().filter(|p| has_properties(p)) {
            decl["parameters"] = gemini_schema(params);
        }
        out.push(decl);
    }
    Ok(out)
}

fn function_calling_config(choice: &Value) -> Result<Value, GatewayError> {
    Ok(match ToolChoice::parse(choice)? {
        ToolChoice::Auto => json!({ "mode": "AUTO" }),
        ToolChoice::None => json!({ "mode": "NONE" }),
        ToolChoice::Required => json!({ "mode": "ANY" }),
        ToolChoice::Function(name) => json!({ "mode": "ANY", "allowedFunctionNames": [name] }),
    })
}

// ------------------------------------------------------------------------ generation

fn generation_config(req: &ChatRequest) -> Result<Map<String, Value>, GatewayError> {
    let mut c = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            c.insert(k.into(), v);
        }
    };
    put("maxOutputTokens", req.max_output_tokens().map(Value::from));
    put("temperature", req.temperature.map(Value::from));
    put("topP", req.top_p.map(Value::from));
    put("topK", non_negative_int(req, "top_k")?);
    put(
        "stopSequences",
        req.stop.clone().map(|s| json!(s.into_vec())),
    );
    put("candidateCount", req.n.map(Value::from));
    put("presencePenalty", number(req, "presence_penalty")?);
    put("frequencyPenalty", number(req, "frequency_penalty")?);
    put("seed", integer(req, "seed")?);
    put(
        "responseLogprobs",
        req.extra
            .get("logprobs")
            .filter(|v| v.is_boolean())
            .cloned(),
    );
    put("logprobs", non_negative_int(req, "top_logprobs")?);
    put("thinkingConfig", thinking_config(req)?);
    add_response_format(req, &mut c)?;
    Ok(c)
}

fn extra<'a>(req: &'a ChatRequest, key: &str) -> Option<&'a Value> {
    req.extra.get(key).filter(|v| !v.is_null())
}

fn number(req: &ChatRequest, key: &str) -> Result<Option<Value>, GatewayError> {
    typed(req, key, Value::is_number, "a number")
}

fn integer(req: &ChatRequest, key: &str) -> Result<Option<Value>, GatewayError> {
    typed(req, key, |v| v.is_i64() || v.is_u64(), "an integer")
}

fn non_negative_int(req: &ChatRequest, key: &str) -> Result<Option<Value>, GatewayError> {
    typed(req, key, Value::is_u64, "a non-negative integer")
}

fn typed(
    req: &ChatRequest,
    key: &str,
    ok: fn(&Value) -> bool,
    what: &str,
) -> Result<Option<Value>, GatewayError> {
    match extra(req, key) {
        None => Ok(None),
        Some(v) if ok(v) => Ok(Some(v.clone())),
        Some(_) => {
            Err(GatewayError::invalid_request(format!("'{key}' must be {what}")).with_param(key))
        }
    }
}

/// `responseMimeType` (and `responseSchema`) for JSON mode.
fn add_response_format(req: &ChatRequest, c: &mut Map<String, Value>) -> Result<(), GatewayError> {
    let Some(rf) = req.response_format.as_ref().filter(|v| !v.is_null()) else {
        return Ok(());
    };
    match rf.get("type").and_then(Value::as_str) {
        Some("text") => {}
        Some("json_object") => {
            c.insert("responseMimeType".into(), json!("application/json"));
        }
        Some("json_schema") => {
            c.insert("responseMimeType".into(), json!("application/json"));
            let schema = rf.get("json_schema").and_then(|s| s.get("schema"));
            if let Some(schema) = schema.filter(|s| s.is_object()) {
                c.insert("responseSchema".into(), gemini_schema(schema));
            }
        }
        _ => {
            return Err(GatewayError::invalid_request(
                "'response_format.type' must be \"text\", \"json_object\" or \"json_schema\"",
            )
            .with_param("response_format"))
        }
    }
    Ok(())
}

/// Gemini's `thinkingConfig`: from Anthropic-style `thinking` when given, else from
/// `reasoning_effort` with LiteLLM's budgets. Thoughts are asked for whenever thinking is on,
/// so they come back as `reasoning_content`.
fn thinking_config(req: &ChatRequest) -> Result<Option<Value>, GatewayError> {
    let budget = if let Some(t) = extra(req, "thinking") {
        let enabled = t.get("type").and_then(Value::as_str) != Some("disabled");
        let budget = t.get("budget_tokens").and_then(Value::as_u64);
        match (enabled, budget) {
            (false, _) => 0,
            (true, Some(b)) => b,
            (true, None) => {
                return Err(GatewayError::invalid_request(
                    "'thinking' must be {\"type\": \"enabled\", \"budget_tokens\": N} or {\"type\": \"disabled\"}",
                )
                .with_param("thinking"))
            }
        }
    } else {
        match extra(req, "reasoning_effort").map(|v| v.as_str()) {
            None => return Ok(None),
            Some(Some("none" | "disable")) => 0,
            Some(Some("minimal")) => 128,
            Some(Some("low")) => 1024,
            Some(Some("medium")) => 2048,
            Some(Some("high")) => 4096,
            Some(_) => return Err(GatewayError::invalid_request(
                "'reasoning_effort' must be \"none\", \"minimal\", \"low\", \"medium\" or \"high\"",
            )
            .with_param("reasoning_effort")),
        }
    };
    Ok(Some(
        json!({ "thinkingBudget": budget, "includeThoughts": budget > 0 }),
    ))
}
