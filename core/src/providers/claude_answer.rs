//! What Anthropic Messages and Bedrock Converse answers share once read: their content blocks
//! gathered into one OpenAI assistant message (JSON mode's forced tool becoming the text,
//! thinking becoming `reasoning_content` and `thinking_blocks`, also when streamed), and usage
//! with cache reads and writes counted as prompt tokens, as LiteLLM does.

use serde_json::{json, Map, Value};

use super::anthropic::JSON_TOOL;
use crate::openai::{AssistantMessage, Delta, FunctionCall, PromptTokensDetails, ToolCall, Usage};

/// An answer's content blocks, gathered in order.
#[derive(Default)]
pub struct Answer {
    json_mode: bool,
    text: String,
    reasoning: String,
    thinking_blocks: Vec<Value>,
    tool_calls: Vec<ToolCall>,
    json_answer: Option<String>,
}

impl Answer {
    pub fn new(json_mode: bool) -> Self {
        Answer {
            json_mode,
            ..Default::default()
        }
    }

    pub fn text(&mut self, text: &str) {
        self.text.push_str(text);
    }

    pub fn tool_use(&mut self, id: String, name: String, input: &Value) {
        if self.json_mode && name == JSON_TOOL {
            // The forced JSON tool's input is the answer itself.
            self.json_answer = Some(input.to_string());
        } else {
            self.tool_calls.push(ToolCall {
                id,
                kind: "function".into(),
                function: FunctionCall {
                    name,
                    arguments: input.to_string(),
                },
            });
        }
    }

    pub fn thinking(&mut self, thinking: String, signature: Option<String>) {
        self.reasoning.push_str(&thinking);
        self.thinking_blocks
            .push(json!({ "type": "thinking", "thinking": thinking, "signature": signature }));
    }

    pub fn redacted_thinking(&mut self, data: String) {
        self.thinking_blocks
            .push(json!({ "type": "redacted_thinking", "data": data }));
    }

    /// The assistant message and its finish reason, given the one the upstream's stop reason
    /// maps to: a JSON-mode answer without tool calls has stopped.
    pub fn into_message(self, finish: &'static str) -> (AssistantMessage, &'static str) {
        let mut finish = finish;
        let content = match self.json_answer {
            Some(answer) => {
                if self.tool_calls.is_empty() {
                    finish = "stop";
                }
                Some(answer)
            }
            None => Some(self.text).filter(|t| !t.is_empty()),
        };
        let mut message = AssistantMessage {
            role: "assistant".into(),
            content,
            tool_calls: Some(self.tool_calls).filter(|t| !t.is_empty()),
            extra: Map::new(),
        };
        if !self.thinking_blocks.is_empty() {
            message
                .extra
                .insert("reasoning_content".into(), Value::String(self.reasoning));
            message
                .extra
                .insert("thinking_blocks".into(), Value::Array(self.thinking_blocks));
        }
        (message, finish)
    }
}

/// A streamed thinking piece as a `thinking_blocks` entry (the signature arrives last, on
/// its own); `None` when it carries nothing.
pub fn thinking_block(text: &str, signature: Option<String>) -> Option<Value> {
    if text.is_empty() && signature.is_none() {
        return None;
    }
    let mut block = json!({ "type": "thinking", "thinking": text });
    if let Some(sig) = signature {
        block["signature"] = Value::String(sig);
    }
    Some(block)
}

/// Reasoning as LiteLLM streams it: `reasoning_content` text, when any, and the
/// `thinking_blocks` piece.
pub fn reasoning_delta(text: String, block: Value) -> Delta {
    let mut delta = Delta::default();
    if !text.is_empty() {
        delta
            .extra
            .insert("reasoning_content".into(), Value::String(text));
    }
    delta
        .extra
        .insert("thinking_blocks".into(), Value::Array(vec![block]));
    delta
}

/// OpenAI usage from counts whose input excludes cache reads and writes: prompt_tokens
/// includes every input token, with the cached share in the details and (as LiteLLM reports
/// them) Anthropic's own names at the top level.
pub fn usage(input: u64, output: u64, cache_read: Option<u64>, cache_write: Option<u64>) -> Usage {
    let read = cache_read.unwrap_or(0);
    let write = cache_write.unwrap_or(0);
    let mut usage = Usage::new(input + read + write, output);
    if cache_read.is_some() || cache_write.is_some() {
        usage.prompt_tokens_details = Some(PromptTokensDetails {
            cached_tokens: read,
            cache_creation_tokens: Some(write),
            ..Default::default()
        });
        usage
            .extra
            .insert("cache_read_input_tokens".into(), json!(read));
        usage
            .extra
            .insert("cache_creation_input_tokens".into(), json!(write));
    }
    usage
}
