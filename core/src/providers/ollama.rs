//! Ollama's generate API (`ollama/`, `POST /api/generate`): one prompt in, text out. It also
//! serves `/v1/completions`, which is what it is made for.
//!
//! Chat requests are flattened into one prompt the way LiteLLM's `ollama_pt` does it:
//! consecutive user (and tool) messages under `### User:`, assistant ones under
//! `### Assistant:`, each section followed by a blank line. System messages go in Ollama's
//! own `system` field instead, so the model's template places them. Images go in `images`.
//! Tools need `ollama_chat/`, which has them natively.

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::ollama_common::{
    self, chat_options, completion_options, content, finish_body, finish_reason, format,
    made_up_id, ollama_error, parse_answer, post, Answer, OllamaChatStream, OllamaTextStream,
};
use super::{single_choice, ChatStream, ProviderApi, TextStream};
use crate::deployment::Deployment;
use crate::error::GatewayError;
use crate::openai::{ChatCompletion, ChatMessage, ChatRequest, Role};

const GENERATE_PATH: &str = "/api/generate";
const EMBED_PATH: &str = "/api/embed";

/// The common parameters and Ollama's own options; no tools (see `ollama_chat/`).
const SUPPORTED_PARAMS: &[&str] = &[
    "stream",
    "stream_options",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "stop",
    "n",
    "response_format",
    "user",
    "keep_alive",
    "think",
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
    "options",
];

/// Fields of a `/v1/completions` request passed to `/api/generate` as they are.
const COMPLETION_FIELDS: &[&str] = &["suffix", "system", "raw", "template", "images", "format"];

pub struct OllamaGenerate;

impl ProviderApi for OllamaGenerate {
    fn supported_chat_params(&self) -> Option<&'static [&'static str]> {
        Some(SUPPORTED_PARAMS)
    }

    fn chat_request(
        &self,
        req: &ChatRequest,
        d: &Deployment,
    ) -> Result<http::Request<Bytes>, GatewayError> {
        post(d, GENERATE_PATH, &chat_body(req, d)?)
    }

    fn chat_response(
        &self,
        body: &[u8],
        _req: &ChatRequest,
        _d: &Deployment,
    ) -> Result<ChatCompletion, GatewayError> {
        Ok(chat_completion(&parse_answer(body)?))
    }

    fn chat_stream(&self, _req: &ChatRequest, _d: &Deployment) -> ChatStream {
        // Generate lines carry `response` where chat lines carry `message`; one reader serves.
        Box::<OllamaChatStream>::default()
    }

    fn error(&self, status: u16, body: &[u8]) -> GatewayError {
        ollama_error(status, body)
    }

    fn embeddings_request(
        &self,
        req: &Value,
        d: &Deployment,
    ) -> Result<http::Request<Bytes>, GatewayError> {
        post(d, EMBED_PATH, &ollama_common::embed_body(req, d)?)
    }

    fn embeddings_response(&self, body: &[u8], _d: &Deployment) -> Result<Value, GatewayError> {
        ollama_common::embeddings_response(body)
    }

    fn completion_request(
        &self,
        req: &Value,
        d: &Deployment,
    ) -> Result<http::Request<Bytes>, GatewayError> {
        post(d, GENERATE_PATH, &completion_body(req, d)?)
    }

    fn completion_response(&self, body: &[u8], _d: &Deployment) -> Result<Value, GatewayError> {
        Ok(text_completion(&parse_answer(body)?))
    }

    fn completion_stream(&self, _d: &Deployment) -> TextStream {
        Box::<OllamaTextStream>::default()
    }
}

// ---------------------------------------------------------------------------------- chat

fn chat_body(req: &ChatRequest, d: &Deployment) -> Result<Value, GatewayError> {
    single_choice(req, "ollama")?;
    if req.tools.as_ref().is_some_and(|t| !t.is_empty()) {
        return Err(GatewayError::invalid_request(
            "ollama/ (the generate API) takes no tools; use ollama_chat/ for tool calling",
        )
        .with_param("tools"));
    }
    let prompt = Prompt::flatten(&req.messages)?;
    let mut body = Map::new();
    body.insert("model".into(), json!(d.upstream_model));
    body.insert("prompt".into(), json!(prompt.text));
    if !prompt.system.is_empty() {
        body.insert("system".into(), json!(prompt.system.join("\n")));
    }
    if !prompt.images.is_empty() {
        body.insert("images".into(), json!(prompt.images));
    }
    if let Some(f) = format(req.response_format.as_ref())? {
        body.insert("format".into(), f);
    }
    finish_body(&mut body, chat_options(req), req.is_stream(), &req.extra);
    Ok(Value::Object(body))
}

/// A conversation as one prompt.
#[derive(Default)]
struct Prompt {
    text: String,
    system: Vec<String>,
    images: Vec<String>,
}

/// The section a message belongs to; neighbours of one kind share a section.
#[derive(Clone, Copy, PartialEq)]
enum Section {
    User,
    Assistant,
}

impl Prompt {
    fn flatten(messages: &[ChatMessage]) -> Result<Prompt, GatewayError> {
        let mut prompt = Prompt::default();
        let mut open: Option<(Section, String)> = None;
        for (i, m) in messages.iter().enumerate() {
            let section = match m.role {
                Role::System | Role::Developer => {
                    let text = prompt.text_of(m, i)?;
                    if !text.is_empty() {
                        prompt.system.push(text);
                    }
                    continue;
                }
                Role::User | Role::Tool | Role::Function => Section::User,
                Role::Assistant => Section::Assistant,
            };
            let mut text = prompt.text_of(m, i)?;
            if let Some(calls) = m.tool_calls.as_ref().filter(|c| !c.is_empty()) {
                let calls = serde_json::to_string(calls).unwrap_or_default();
                text.push_str(&format!("Tool Calls: {calls}"));
            }
            match &mut open {
                Some((s, body)) if *s == section => body.push_str(&text),
                _ => {
                    prompt.close(open.take());
                    open = Some((section, text));
                }
            }
        }
        prompt.close(open);
        Ok(prompt)
    }

    fn close(&mut self, section: Option<(Section, String)>) {
        let Some((section, body)) = section.filter(|(_, body)| !body.is_empty()) else {
            return;
        };
        let heading = match section {
            Section::User => "### User:",
            Section::Assistant => "### Assistant:",
        };
        self.text.push_str(&format!("{heading}\n{body}\n\n"));
    }

    /// The text of a message; its images are collected on the way.
    fn text_of(&mut self, m: &ChatMessage, i: usize) -> Result<String, GatewayError> {
        let (text, images) = content(m.content.as_ref(), i)?;
        self.images.extend(images);
        Ok(text)
    }
}

fn chat_completion(answer: &Answer) -> ChatCompletion {
    ollama_common::completion(answer, Vec::new())
}

// --------------------------------------------------------------------------- completions

/// `/v1/completions` → `/api/generate`. Ollama takes one prompt per request.
fn completion_body(req: &Value, d: &Deployment) -> Result<Value, GatewayError> {
    let empty = Map::new();
    let fields = req.as_object().unwrap_or(&empty);
    let prompt = match fields.get("prompt") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) if items.len() == 1 && items[0].is_string() => {
            items[0].as_str().unwrap_or_default().to_string()
        }
        _ => {
            return Err(GatewayError::invalid_request(
                "ollama takes one text prompt per request ('prompt' as a string)",
            )
            .with_param("prompt"))
        }
    };
    if fields
        .get("n")
        .and_then(Value::as_u64)
        .is_some_and(|n| n > 1)
    {
        return Err(GatewayError::invalid_request(
            "ollama returns one choice per request; 'n' must be 1",
        )
        .with_param("n"));
    }
    let mut body = Map::new();
    body.insert("model".into(), json!(d.upstream_model));
    body.insert("prompt".into(), json!(prompt));
    for k in COMPLETION_FIELDS {
        if let Some(v) = fields.get(*k).filter(|v| !v.is_null()) {
            body.insert((*k).into(), v.clone());
        }
    }
    let stream = fields
        .get("stream")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    finish_body(&mut body, completion_options(fields), stream, fields);
    Ok(Value::Object(body))
}

fn text_completion(answer: &Answer) -> Value {
    let finish = finish_reason(answer.done_reason.as_deref(), false);
    json!({
        "id": made_up_id("cmpl-", &answer.created_at, 0),
        "object": "text_completion",
        "created": ollama_common::unix_seconds(&answer.created_at),
        "model": "",
        "choices": [{ "text": answer.text(), "index": 0, "logprobs": null, "finish_reason": finish }],
        "usage": answer.usage(),
    })
}

#[cfg(test)]
mod tests;
