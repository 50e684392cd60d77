//! Ollama's chat API (`ollama_chat/`, `POST /api/chat`), and its embeddings (`/api/embed`).
//!
//! Messages keep their roles; images travel as a base64 `images` list beside the text; tool
//! calls carry their arguments as JSON objects (not text), and tool results name the tool
//! they answer. Sampling settings go in `options`, JSON mode in `format`.

use std::collections::HashMap;

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::ollama_common::{
    self, chat_options, content, finish_body, format, ollama_error, parse_answer, post, tool_calls,
    OllamaChatStream,
};
use super::tool_arguments;
use super::{single_choice, ChatStream, ProviderApi};
use crate::deployment::Deployment;
use crate::error::GatewayError;
use crate::openai::{ChatCompletion, ChatMessage, ChatRequest, Role, Tool};

const CHAT_PATH: &str = "/api/chat";
const EMBED_PATH: &str = "/api/embed";

/// The common parameters, Ollama's own options, and tools.
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
    "tools",
    "tool_choice",
    "parallel_tool_calls",
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

pub struct OllamaChat;

impl ProviderApi for OllamaChat {
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
        let answer = parse_answer(body)?;
        Ok(completion(&answer))
    }

    fn chat_stream(&self, _req: &ChatRequest, _d: &Deployment) -> ChatStream {
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
}

fn request_body(req: &ChatRequest, d: &Deployment) -> Result<Value, GatewayError> {
    single_choice(req, "ollama")?;
    let mut body = Map::new();
    body.insert("model".into(), json!(d.upstream_model));
    body.insert("messages".into(), Value::Array(messages(&req.messages)?));
    if let Some(tools) = offered_tools(req)? {
        let tools = serde_json::to_value(tools)
            .map_err(|e| GatewayError::invalid_request(e.to_string()))?;
        body.insert("tools".into(), tools);
    }
    if let Some(f) = format(req.response_format.as_ref())? {
        body.insert("format".into(), f);
    }
    finish_body(&mut body, chat_options(req), req.is_stream(), &req.extra);
    Ok(Value::Object(body))
}

/// The tools to offer. Ollama has no `tool_choice`, so it is honoured through the list:
/// `"none"` offers none, and a named function offers only that one, so the model cannot call
/// another (ignoring the name would let it). `"auto"` and `"required"` offer them all.
fn offered_tools(req: &ChatRequest) -> Result<Option<Vec<&Tool>>, GatewayError> {
    let Some(tools) = req.tools.as_ref().filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let choice = req.tool_choice.as_ref();
    if choice.and_then(Value::as_str) == Some("none") {
        return Ok(None);
    }
    let forced = choice
        .and_then(|c| c.pointer("/function/name"))
        .and_then(Value::as_str);
    let Some(name) = forced else {
        return Ok(Some(tools.iter().collect()));
    };
    let only: Vec<&Tool> = tools.iter().filter(|t| t.function.name == name).collect();
    if only.is_empty() {
        return Err(GatewayError::invalid_request(format!(
            "tool_choice names the function {name:?}, which is not in tools"
        ))
        .with_param("tool_choice"));
    }
    Ok(Some(only))
}

fn messages(messages: &[ChatMessage]) -> Result<Vec<Value>, GatewayError> {
    // Tool results name the tool they answer; OpenAI's name it by call id.
    let mut tool_names: HashMap<&str, &str> = HashMap::new();
    let mut out = Vec::with_capacity(messages.len());
    for (i, m) in messages.iter().enumerate() {
        let (text, images) = content(m.content.as_ref(), i)?;
        let mut message = json!({ "role": role(m.role, i)?, "content": text });
        if !images.is_empty() {
            message["images"] = json!(images);
        }
        if let Some(calls) = m.tool_calls.as_ref().filter(|c| !c.is_empty()) {
            message["tool_calls"] = assistant_tool_calls(calls, i)?;
            for c in calls {
                tool_names.insert(&c.id, &c.function.name);
            }
        }
        if m.role == Role::Tool {
            let name = m.tool_call_id.as_deref().and_then(|id| tool_names.get(id));
            if let Some(name) = name {
                message["tool_name"] = json!(name);
            }
        }
        out.push(message);
    }
    Ok(out)
}

fn role(role: Role, i: usize) -> Result<&'static str, GatewayError> {
    Ok(match role {
        Role::System | Role::Developer => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
        Role::Function => {
            return Err(GatewayError::invalid_request(
                "ollama does not take legacy 'function' messages; use 'tool' messages",
            )
            .with_param(format!("messages[{i}].role")))
        }
    })
}

/// Ollama wants arguments as an object, not JSON text.
fn assistant_tool_calls(
    calls: &[crate::openai::ToolCall],
    i: usize,
) -> Result<Value, GatewayError> {
    let mut out = Vec::with_capacity(calls.len());
    for (j, c) in calls.iter().enumerate() {
        let param = format!("messages[{i}].tool_calls[{j}].function.arguments");
        let arguments = tool_arguments::parse(&c.function.arguments, &param)?;
        out.push(json!({ "function": { "name": c.function.name, "arguments": arguments } }));
    }
    Ok(Value::Array(out))
}

fn completion(answer: &ollama_common::Answer) -> ChatCompletion {
    ollama_common::completion(answer, tool_calls(answer, 0))
}

#[cfg(test)]
mod tests;
