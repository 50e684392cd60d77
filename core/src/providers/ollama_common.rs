//! What Ollama's `/api/chat` ([`ollama_chat`](super::ollama_chat)) and `/api/generate`
//! ([`ollama`](super::ollama)) share: the request `options`, the answer line (a full answer
//! and every NDJSON stream line have one shape), usage and finish reasons, errors, and the
//! stream translator.
//!
//! Ollama streams unless told otherwise, so requests always say `stream` explicitly. Its
//! streams are NDJSON: one JSON object per line, the last with `done: true` and the counts.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::json_lines::LineBuffer;
use super::openai_compatible::fallback_message;
use super::text_completion::TextChunk;
use super::tool_arguments;
use super::{join_url, json_post, parse_json, stream_cut, StreamChunk, StreamTranslator};
use crate::deployment::Deployment;
use crate::error::{ErrorKind, GatewayError};
use crate::openai::{
    AssistantMessage, ChatChunk, ChatCompletion, ChatRequest, Delta, FunctionCall,
    FunctionCallDelta, MessageContent, ToolCall, ToolCallDelta, Usage,
};

pub const DEFAULT_BASE: &str = "http://localhost:11434";

/// Ollama's own sampling and runtime options, passed through from the request when present
/// (LiteLLM passes the same ones).
const OLLAMA_OPTIONS: &[&str] = &[
    "top_k",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "num_ctx",
    "num_keep",
    "num_batch",
    "num_gpu",
    "num_gqa",
    "num_thread",
    "repeat_last_n",
    "repeat_penalty",
    "mirostat",
    "mirostat_eta",
    "mirostat_tau",
    "tfs_z",
    "typical_p",
    "min_p",
];

/// Top-level fields of Ollama's requests passed through as they are.
const PASSTHROUGH_FIELDS: &[&str] = &["keep_alive", "think"];

/// A JSON POST under the deployment's base URL; a key, when set, goes as a bearer token (for
/// Ollama behind an authenticating proxy).
pub fn post(
    d: &Deployment,
    path: &str,
    body: &Value,
) -> Result<http::Request<Bytes>, GatewayError> {
    let base = d.params.api_base.as_deref().unwrap_or(DEFAULT_BASE);
    let auth = d.params.bearer();
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    let body =
        serde_json::to_vec(body).map_err(|e| GatewayError::invalid_request(e.to_string()))?;
    json_post(&join_url(base, path), &headers, body)
}

/// `options` for a chat request.
pub fn chat_options(req: &ChatRequest) -> Map<String, Value> {
    let mut options = Map::new();
    if let Some(max) = req.max_output_tokens() {
        options.insert("num_predict".into(), json!(max));
    }
    if let Some(t) = req.temperature {
        options.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.top_p {
        options.insert("top_p".into(), json!(p));
    }
    if let Some(stop) = req.stop.clone() {
        options.insert("stop".into(), json!(stop.into_vec()));
    }
    copy_ollama_options(&req.extra, &mut options);
    options
}

/// `options` for a legacy completion request (a JSON object).
pub fn completion_options(req: &Map<String, Value>) -> Map<String, Value> {
    let mut options = Map::new();
    let present = |k: &str| req.get(k).filter(|v| !v.is_null());
    if let Some(max) = present("max_tokens") {
        options.insert("num_predict".into(), max.clone());
    }
    for k in ["temperature", "top_p"] {
        if let Some(v) = present(k) {
            options.insert(k.into(), v.clone());
        }
    }
    match present("stop") {
        Some(Value::String(s)) => {
            options.insert("stop".into(), json!([s]));
        }
        Some(stop @ Value::Array(_)) => {
            options.insert("stop".into(), stop.clone());
        }
        _ => {}
    }
    copy_ollama_options(req, &mut options);
    options
}

fn copy_ollama_options(from: &Map<String, Value>, options: &mut Map<String, Value>) {
    for k in OLLAMA_OPTIONS {
        if let Some(v) = from.get(*k).filter(|v| !v.is_null()) {
            options.insert((*k).into(), v.clone());
        }
    }
    // An operator may also give Ollama options as a ready-made object.
    if let Some(Value::Object(extra)) = from.get("options") {
        for (k, v) in extra {
            options.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
}

/// Adds `options` (when any), `stream`, and the passthrough fields to a request body.
pub fn finish_body(
    body: &mut Map<String, Value>,
    options: Map<String, Value>,
    stream: bool,
    extra: &Map<String, Value>,
) {
    if !options.is_empty() {
        body.insert("options".into(), Value::Object(options));
    }
    body.insert("stream".into(), Value::Bool(stream));
    for k in PASSTHROUGH_FIELDS {
        if let Some(v) = extra.get(*k).filter(|v| !v.is_null()) {
            body.insert((*k).into(), v.clone());
        }
    }
}

/// Ollama's `format`: `"json"` for JSON mode, or the schema itself for structured output.
pub fn format(response_format: Option<&Value>) -> Result<Option<Value>, GatewayError> {
    let Some(rf) = response_format.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    match rf.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(json!("json"))),
        Some("json_schema") => Ok(Some(
            rf.get("json_schema")
                .and_then(|s| s.get("schema"))
                .cloned()
                .unwrap_or_else(|| json!("json")),
        )),
        _ => Err(GatewayError::invalid_request(
            "'response_format.type' must be \"text\", \"json_object\" or \"json_schema\"",
        )
        .with_param("response_format")),
    }
}

/// The base64 data of a `data:` image URL; Ollama takes images only inline.
pub fn image_data<'a>(url: &'a str, param: &str) -> Result<&'a str, GatewayError> {
    url.strip_prefix("data:")
        .and_then(|rest| rest.split_once(";base64,"))
        .map(|(_, data)| data)
        .ok_or_else(|| {
            GatewayError::invalid_request(
                "ollama takes images inline only: send a base64 data URL (data:image/png;base64,...)",
            )
            .with_param(param)
        })
}

/// A message's text (text parts joined) and its images' base64 data.
pub fn content(
    content: Option<&MessageContent>,
    i: usize,
) -> Result<(String, Vec<String>), GatewayError> {
    let parts = match content {
        None => return Ok((String::new(), Vec::new())),
        Some(MessageContent::Text(s)) => return Ok((s.clone(), Vec::new())),
        Some(MessageContent::Parts(parts)) => parts,
    };
    let mut text = String::new();
    let mut images = Vec::new();
    for (j, p) in parts.iter().enumerate() {
        let path = format!("messages[{i}].content[{j}]");
        match p.kind.as_str() {
            "text" => text.push_str(p.text.as_deref().unwrap_or("")),
            "image_url" => {
                let param = format!("{path}.image_url");
                let url = p.image_url.as_ref().map(|u| u.url()).unwrap_or("");
                images.push(image_data(url, &param)?.to_string());
            }
            other => {
                return Err(GatewayError::invalid_request(format!(
                    "ollama does not support {other:?} content parts"
                ))
                .with_param(format!("{path}.type")))
            }
        }
    }
    Ok((text, images))
}

// ------------------------------------------------------------------------------- answers

/// One answer of either endpoint: a whole response, or one NDJSON stream line.
#[derive(Deserialize, Default)]
pub struct Answer {
    #[serde(default)]
    pub created_at: String,
    /// `/api/chat`.
    #[serde(default)]
    pub message: Option<AnswerMessage>,
    /// `/api/generate`.
    #[serde(default)]
    pub response: Option<String>,
    /// `/api/generate`'s reasoning (chat has it in `message`).
    #[serde(default)]
    pub thinking: Option<String>,
    #[serde(default)]
    pub done: bool,
    #[serde(default)]
    pub done_reason: Option<String>,
    #[serde(default)]
    pub prompt_eval_count: Option<u64>,
    #[serde(default)]
    pub eval_count: Option<u64>,
    #[serde(default)]
    pub error: Option<Value>,
}

#[derive(Deserialize, Default)]
pub struct AnswerMessage {
    #[serde(default)]
    pub content: String,
    #[serde(default)]
    pub thinking: Option<String>,
    #[serde(default)]
    pub tool_calls: Vec<AnswerToolCall>,
}

#[derive(Deserialize)]
pub struct AnswerToolCall {
    #[serde(default)]
    pub id: Option<String>,
    pub function: AnswerFunction,
}

#[derive(Deserialize)]
pub struct AnswerFunction {
    #[serde(default)]
    pub name: String,
    /// An object (Ollama's form); a string is taken as already-serialised JSON.
    #[serde(default)]
    pub arguments: Value,
}

impl Answer {
    pub fn text(&self) -> &str {
        match (&self.message, &self.response) {
            (Some(m), _) => &m.content,
            (None, Some(r)) => r,
            (None, None) => "",
        }
    }

    pub fn reasoning(&self) -> &str {
        self.message
            .as_ref()
            .and_then(|m| m.thinking.as_deref())
            .or(self.thinking.as_deref())
            .unwrap_or("")
    }

    pub fn tool_calls(&self) -> &[AnswerToolCall] {
        self.message.as_ref().map_or(&[], |m| &m.tool_calls)
    }

    pub fn usage(&self) -> Usage {
        Usage::new(
            self.prompt_eval_count.unwrap_or(0),
            self.eval_count.unwrap_or(0),
        )
    }

    /// An `{"error": ...}` answer, as an error.
    pub fn check(&self) -> Result<(), GatewayError> {
        match &self.error {
            None | Some(Value::Null) => Ok(()),
            Some(e) => {
                let message = e.as_str().map_or_else(|| e.to_string(), str::to_string);
                Err(error_from_message(None, message))
            }
        }
    }
}

/// Seconds since the epoch of an RFC 3339 time (`2023-08-04T19:22:45.499127Z`); 0 when it
/// cannot be read (the gateway then stamps its own time).
pub fn unix_seconds(rfc3339: &str) -> u64 {
    let num = |range: std::ops::Range<usize>| -> Option<i64> { rfc3339.get(range)?.parse().ok() };
    let parts = (|| {
        Some((
            num(0..4)?,
            num(5..7)?,
            num(8..10)?,
            num(11..13)?,
            num(14..16)?,
            num(17..19)?,
        ))
    })();
    let Some((y, m, d, hh, mm, ss)) = parts else {
        return 0;
    };
    // Days from the civil date (Howard Hinnant's algorithm), proleptic Gregorian.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    // The offset, when not Z: local time minus offset is UTC.
    let offset = rfc3339
        .get(19..)
        .map(|rest| rest.trim_start_matches(|c: char| c == '.' || c.is_ascii_digit()))
        .and_then(|tz| {
            let sign = match tz.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let h: i64 = tz.get(1..3)?.parse().ok()?;
            let m: i64 = tz.get(4..6)?.parse().ok()?;
            Some(sign * (h * 3600 + m * 60))
        })
        .unwrap_or(0);
    u64::try_from(secs - offset).unwrap_or(0)
}

/// `done_reason` as an OpenAI finish reason. Ollama says `stop` when it called tools.
pub fn finish_reason(done_reason: Option<&str>, called_tools: bool) -> &'static str {
    match done_reason {
        Some("length") => "length",
        _ if called_tools => "tool_calls",
        // stop, load, unload and anything new.
        _ => "stop",
    }
}

/// A tool call id. Ollama gives none (or, in newer versions, one per call); OpenAI clients
/// need one to answer the call, so one is made up from the answer's timestamp and position.
pub fn tool_call_id(given: Option<&str>, created_at: &str, ordinal: usize) -> String {
    match given.filter(|id| !id.is_empty()) {
        Some(id) => id.to_string(),
        None => made_up_id("call_", created_at, ordinal),
    }
}

/// `prefix` and 24 hex digits derived from the answer's timestamp and an ordinal:
/// deterministic, so translating the same answer twice names things the same way.
pub fn made_up_id(prefix: &str, created_at: &str, ordinal: usize) -> String {
    let mut seed: u64 = 0xcbf2_9ce4_8422_2325;
    for b in created_at.bytes().chain(ordinal.to_le_bytes()) {
        seed = (seed ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut rng = crate::rng::Rng::seeded(seed);
    format!(
        "{prefix}{:016x}{:08x}",
        rng.next_u64(),
        rng.next_u64() >> 32
    )
}

/// The answer's tool calls in OpenAI's shape; `first` is the ordinal of the first one in the
/// whole answer (streams send calls over several lines).
pub fn tool_calls(answer: &Answer, first: usize) -> Vec<ToolCall> {
    answer
        .tool_calls()
        .iter()
        .enumerate()
        .map(|(i, c)| ToolCall {
            id: tool_call_id(c.id.as_deref(), &answer.created_at, first + i),
            kind: "function".into(),
            function: FunctionCall {
                name: c.function.name.clone(),
                arguments: tool_arguments::text(&c.function.arguments),
            },
        })
        .collect()
}

/// An answer as a chat completion with `calls` (none for the generate API).
pub fn completion(answer: &Answer, calls: Vec<ToolCall>) -> ChatCompletion {
    let finish = finish_reason(answer.done_reason.as_deref(), !calls.is_empty());
    let message = AssistantMessage::answer(
        answer.text().to_string(),
        calls,
        answer.reasoning().to_string(),
    );
    ChatCompletion {
        created: unix_seconds(&answer.created_at),
        ..ChatCompletion::with_choice(message, finish, answer.usage())
    }
}

/// Reads a whole (non-streamed) answer; an `{"error"}` body with a 200 is still an error.
pub fn parse_answer(body: &[u8]) -> Result<Answer, GatewayError> {
    let answer: Answer = parse_json(body)?;
    answer.check()?;
    Ok(answer)
}

// -------------------------------------------------------------------------------- errors

/// Reads `{"error": "..."}`, keeping the upstream status.
pub fn ollama_error(status: u16, body: &[u8]) -> GatewayError {
    let message = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| fallback_message(status, body));
    error_from_message(Some(status), message)
}

fn error_from_message(status: Option<u16>, message: String) -> GatewayError {
    let lower = message.to_ascii_lowercase();
    let not_found = lower.contains("not found") && lower.contains("model");
    let mut e = match status {
        Some(s) => GatewayError::upstream(s, message),
        // An error line inside a stream: the status was 200 when the stream began.
        None if not_found => GatewayError::new(ErrorKind::NotFound, message),
        None => GatewayError::new(ErrorKind::Api, message),
    };
    if not_found {
        e.code = Some("model_not_found".into());
    } else if lower.contains("context length") || lower.contains("context window") {
        e.code = Some("context_length_exceeded".into());
    }
    e
}

// -------------------------------------------------------------------------------- stream

/// Reads NDJSON answer lines, whatever they are turned into.
#[derive(Default)]
struct LineReader {
    lines: LineBuffer,
    pending: Vec<String>,
    done: bool,
}

impl LineReader {
    /// The answers of the lines completed so far (or of the rest, at the end).
    fn answers(&mut self, bytes: Option<&[u8]>) -> Result<Vec<Answer>, GatewayError> {
        match bytes {
            Some(b) => self.lines.feed(b, &mut self.pending),
            None => self.lines.finish(&mut self.pending),
        }
        let at_end = bytes.is_none();
        let mut answers = Vec::with_capacity(self.pending.len());
        for line in self.pending.drain(..) {
            let answer: Answer = match parse_json(line.as_bytes()) {
                Ok(a) => a,
                // A line the body ended in the middle of: the stream was cut, not garbled.
                Err(_) if at_end && !self.done => return Err(stream_cut()),
                Err(e) => return Err(e),
            };
            answer.check()?;
            self.done |= answer.done;
            answers.push(answer);
        }
        Ok(answers)
    }

    fn end(&self) -> Result<(), GatewayError> {
        if self.done {
            Ok(())
        } else {
            Err(stream_cut())
        }
    }
}

/// Ollama NDJSON (either endpoint) → OpenAI chat chunks, one per request.
#[derive(Default)]
pub struct OllamaChatStream {
    reader: LineReader,
    started: bool,
    tool_calls: usize,
    usage: Option<Usage>,
}

impl OllamaChatStream {
    fn translate(&mut self, answers: Vec<Answer>, out: &mut Vec<ChatChunk>) {
        for a in answers {
            if !self.started {
                self.started = true;
                let delta = Delta::start();
                out.push(ChatChunk::with_delta(delta, None));
            }
            if !a.reasoning().is_empty() {
                let mut delta = Delta::default();
                delta
                    .extra
                    .insert("reasoning_content".into(), json!(a.reasoning()));
                out.push(ChatChunk::with_delta(delta, None));
            }
            if !a.text().is_empty() {
                let delta = Delta {
                    content: Some(a.text().to_string()),
                    ..Default::default()
                };
                out.push(ChatChunk::with_delta(delta, None));
            }
            // Ollama sends each call whole, in one line.
            let calls: Vec<ToolCallDelta> = tool_calls(&a, self.tool_calls)
                .into_iter()
                .map(|c| {
                    let index = self.tool_calls as u32;
                    self.tool_calls += 1;
                    ToolCallDelta {
                        index,
                        id: Some(c.id),
                        kind: Some("function".into()),
                        function: Some(FunctionCallDelta {
                            name: Some(c.function.name),
                            arguments: Some(c.function.arguments),
                        }),
                    }
                })
                .collect();
            if !calls.is_empty() {
                let delta = Delta::tool_calls(calls);
                out.push(ChatChunk::with_delta(delta, None));
            }
            if a.done {
                let finish = finish_reason(a.done_reason.as_deref(), self.tool_calls > 0);
                out.push(ChatChunk::with_delta(Delta::default(), Some(finish.into())));
                self.usage = Some(a.usage());
            }
        }
    }
}

impl StreamTranslator for OllamaChatStream {
    type Chunk = ChatChunk;

    fn feed(&mut self, bytes: &[u8], out: &mut Vec<ChatChunk>) -> Result<(), GatewayError> {
        let answers = self.reader.answers(Some(bytes))?;
        self.translate(answers, out);
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<ChatChunk>) -> Result<(), GatewayError> {
        let answers = self.reader.answers(None)?;
        self.translate(answers, out);
        self.reader.end()
    }

    fn usage(&self) -> Option<Usage> {
        self.usage.clone()
    }
}

/// Ollama `/api/generate` NDJSON → OpenAI `text_completion` chunks (for `/v1/completions`).
#[derive(Default)]
pub struct OllamaTextStream {
    reader: LineReader,
    usage: Option<Usage>,
}

impl OllamaTextStream {
    fn translate(&mut self, answers: Vec<Answer>, out: &mut Vec<TextChunk>) {
        for a in answers {
            let finish = a
                .done
                .then(|| finish_reason(a.done_reason.as_deref(), false));
            if a.text().is_empty() && finish.is_none() {
                continue;
            }
            out.push(text_chunk(a.text(), finish));
            if a.done {
                self.usage = Some(a.usage());
            }
        }
    }
}

/// One legacy completion chunk; id, model and created are stamped by the output stage.
pub fn text_chunk(text: &str, finish: Option<&str>) -> TextChunk {
    let mut chunk = TextChunk::usage_only(Usage::default());
    chunk.0.remove("usage");
    chunk.0.insert(
        "choices".into(),
        json!([{ "text": text, "index": 0, "logprobs": null, "finish_reason": finish }]),
    );
    chunk
}

impl StreamTranslator for OllamaTextStream {
    type Chunk = TextChunk;

    fn feed(&mut self, bytes: &[u8], out: &mut Vec<TextChunk>) -> Result<(), GatewayError> {
        let answers = self.reader.answers(Some(bytes))?;
        self.translate(answers, out);
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<TextChunk>) -> Result<(), GatewayError> {
        let answers = self.reader.answers(None)?;
        self.translate(answers, out);
        self.reader.end()
    }

    fn usage(&self) -> Option<Usage> {
        self.usage.clone()
    }
}

// ---------------------------------------------------------------------------- embeddings

/// `POST /api/embed` takes `input` as a string or a list of strings.
pub fn embed_body(req: &Value, d: &Deployment) -> Result<Value, GatewayError> {
    let input = match req.get("input") {
        Some(s @ Value::String(_)) => s.clone(),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
            Value::Array(items.clone())
        }
        _ => {
            return Err(GatewayError::invalid_request(
                "ollama embeds text only; token arrays are not supported",
            )
            .with_param("input"))
        }
    };
    let mut body = json!({ "model": d.upstream_model, "input": input });
    if let Some(dims) = req.get("dimensions").filter(|v| v.is_u64()) {
        body["dimensions"] = dims.clone();
    }
    for k in ["truncate", "keep_alive", "options"] {
        if let Some(v) = req.get(k).filter(|v| !v.is_null()) {
            body[k] = v.clone();
        }
    }
    Ok(body)
}

#[derive(Deserialize)]
struct EmbedResponse {
    embeddings: Vec<Vec<f64>>,
    #[serde(default)]
    prompt_eval_count: Option<u64>,
}

pub fn embeddings_response(body: &[u8]) -> Result<Value, GatewayError> {
    let r: EmbedResponse = parse_json(body)?;
    let data: Vec<Value> = r
        .embeddings
        .into_iter()
        .enumerate()
        .map(|(i, v)| json!({ "object": "embedding", "index": i, "embedding": v }))
        .collect();
    let tokens = r.prompt_eval_count.unwrap_or(0);
    Ok(json!({
        "object": "list",
        "data": data,
        "model": "",
        "usage": { "prompt_tokens": tokens, "total_tokens": tokens },
    }))
}
