//! ConverseStream → OpenAI chunks, one translator per request.
//!
//! The body is a sequence of event-stream messages ([`super::eventstream`]); each event's
//! name is its `:event-type` header and its payload is JSON: `messageStart`,
//! `contentBlockStart` (tool calls), `contentBlockDelta` (text, tool input, reasoning),
//! `contentBlockStop`, `messageStop` (the stop reason) and `metadata` (usage). Exceptions
//! (`:message-type: exception`) become errors. The stream is complete once both
//! `messageStop` and `metadata` came; ending earlier is a cut.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Value};

use super::super::claude_answer;
use super::converse::{finish_reason, BedrockUsage};
use super::eventstream::{Decoder, Message};
use super::{error_with, status_for_exception};
use crate::error::{ErrorKind, GatewayError};
use crate::openai::{ChatChunk, Delta, FunctionCallDelta, ToolCallDelta, Usage};
use crate::providers::anthropic::JSON_TOOL;
use crate::providers::{stream_cut, StreamTranslator};

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct BlockStart {
    #[serde(default)]
    content_block_index: u64,
    #[serde(default)]
    start: StartBody,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct StartBody {
    #[serde(default)]
    tool_use: Option<ToolStart>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolStart {
    #[serde(default)]
    tool_use_id: String,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockDelta {
    #[serde(default)]
    content_block_index: u64,
    delta: DeltaBody,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeltaBody {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    tool_use: Option<ToolInput>,
    #[serde(default)]
    reasoning_content: Option<ReasoningDelta>,
}

#[derive(Deserialize)]
struct ToolInput {
    #[serde(default)]
    input: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReasoningDelta {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    signature: Option<String>,
    #[serde(default)]
    redacted_content: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageStop {
    #[serde(default)]
    stop_reason: Option<String>,
}

#[derive(Deserialize)]
struct Metadata {
    #[serde(default)]
    usage: Option<BedrockUsage>,
}

/// What an open content block turns into, by Converse block index.
#[derive(Clone, Copy, PartialEq)]
enum OpenBlock {
    /// A tool call, with its OpenAI `index`: the ordinal among tool calls, not the block's.
    Tool(u32),
    /// The JSON-mode tool: its input streams as message content.
    JsonAnswer,
}

pub struct ConverseStream {
    decoder: Decoder,
    messages: Vec<Message>,
    json_mode: bool,
    blocks: BTreeMap<u64, OpenBlock>,
    tool_calls: u32,
    usage: Option<BedrockUsage>,
    stopped: bool,
    metadata_seen: bool,
}

impl ConverseStream {
    pub fn new(json_mode: bool) -> Self {
        ConverseStream {
            decoder: Decoder::new(),
            messages: Vec::new(),
            json_mode,
            blocks: BTreeMap::new(),
            tool_calls: 0,
            usage: None,
            stopped: false,
            metadata_seen: false,
        }
    }

    fn take_messages(&mut self, out: &mut Vec<ChatChunk>) -> Result<(), GatewayError> {
        for m in std::mem::take(&mut self.messages) {
            self.handle(&m, out)?;
        }
        Ok(())
    }

    fn handle(&mut self, m: &Message, out: &mut Vec<ChatChunk>) -> Result<(), GatewayError> {
        match m.header_str(":message-type").unwrap_or("event") {
            "event" => {}
            "exception" => return Err(exception(m)),
            "error" => return Err(protocol_error(m)),
            _ => return Ok(()),
        }
        match m.header_str(":event-type").unwrap_or("") {
            "messageStart" => {
                let delta = Delta::start();
                emit(out, delta, None);
            }
            "contentBlockStart" => self.start_block(payload(m)?, out),
            "contentBlockDelta" => self.block_delta(payload(m)?, out),
            "messageStop" => {
                let stop: MessageStop = payload(m)?;
                let finish = self.finish_reason(stop.stop_reason.as_deref());
                emit(out, Delta::default(), Some(finish));
                self.stopped = true;
            }
            "metadata" => {
                let meta: Metadata = payload(m)?;
                if let Some(u) = meta.usage {
                    self.usage = Some(u);
                }
                self.metadata_seen = true;
            }
            // contentBlockStop and events added later: nothing to translate.
            _ => {}
        }
        Ok(())
    }

    fn start_block(&mut self, start: BlockStart, out: &mut Vec<ChatChunk>) {
        let Some(tool) = start.start.tool_use else {
            return;
        };
        let open = if self.json_mode && tool.name == JSON_TOOL {
            OpenBlock::JsonAnswer
        } else {
            let ordinal = self.tool_calls;
            self.tool_calls += 1;
            emit_tool_call(
                out,
                ToolCallDelta {
                    index: ordinal,
                    id: Some(tool.tool_use_id),
                    kind: Some("function".into()),
                    function: Some(FunctionCallDelta {
                        name: Some(tool.name),
                        arguments: Some(String::new()),
                    }),
                },
            );
            OpenBlock::Tool(ordinal)
        };
        self.blocks.insert(start.content_block_index, open);
    }

    fn block_delta(&mut self, d: BlockDelta, out: &mut Vec<ChatChunk>) {
        if let Some(text) = d.delta.text.filter(|t| !t.is_empty()) {
            emit_text(out, text);
        }
        if let Some(input) = d.delta.tool_use.map(|t| t.input).filter(|i| !i.is_empty()) {
            match self.blocks.get(&d.content_block_index) {
                Some(OpenBlock::JsonAnswer) => emit_text(out, input),
                Some(OpenBlock::Tool(ordinal)) => emit_tool_call(
                    out,
                    ToolCallDelta {
                        index: *ordinal,
                        function: Some(FunctionCallDelta {
                            name: None,
                            arguments: Some(input),
                        }),
                        ..Default::default()
                    },
                ),
                // Input for a block that never started cannot be attributed to a call.
                None => {}
            }
        }
        if let Some(r) = d.delta.reasoning_content {
            emit_reasoning(out, r);
        }
    }

    /// JSON mode's forced tool ends the turn with `tool_use`, but the client asked for text.
    fn finish_reason(&self, stop_reason: Option<&str>) -> &'static str {
        let only_json = self.json_mode
            && self.tool_calls == 0
            && self.blocks.values().any(|b| *b == OpenBlock::JsonAnswer);
        if stop_reason == Some("tool_use") && only_json {
            "stop"
        } else {
            finish_reason(stop_reason)
        }
    }
}

/// A typed event payload; one we cannot read is the provider's fault (502).
fn payload<T: serde::de::DeserializeOwned>(m: &Message) -> Result<T, GatewayError> {
    serde_json::from_slice(&m.payload).map_err(|e| {
        GatewayError::new(
            ErrorKind::BadGateway,
            format!(
                "the provider sent an unreadable {} event: {e}",
                m.header_str(":event-type").unwrap_or("stream")
            ),
        )
    })
}

/// `:exception-type` (`throttlingException`...) with a `{"message"}` payload.
fn exception(m: &Message) -> GatewayError {
    let kind = m
        .header_str(":exception-type")
        .unwrap_or("internalServerException");
    let message = serde_json::from_slice::<Value>(&m.payload)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| format!("bedrock stream failed with {kind}"));
    error_with(
        status_for_exception(kind),
        Some(&capitalized(kind)),
        &message,
    )
}

/// An event-stream protocol error: `:error-code` and `:error-message` headers.
fn protocol_error(m: &Message) -> GatewayError {
    let code = m.header_str(":error-code").unwrap_or("InternalFailure");
    let message = m
        .header_str(":error-message")
        .unwrap_or("bedrock stream failed");
    error_with(status_for_exception(code), Some(code), message)
}

/// Stream exception names are camelCase (`throttlingException`); the HTTP ones, which clients
/// may already match on, are PascalCase.
fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

fn emit(out: &mut Vec<ChatChunk>, delta: Delta, finish: Option<&str>) {
    out.push(ChatChunk::with_delta(delta, finish.map(str::to_string)));
}

fn emit_text(out: &mut Vec<ChatChunk>, text: String) {
    let delta = Delta::text(text);
    emit(out, delta, None);
}

fn emit_tool_call(out: &mut Vec<ChatChunk>, call: ToolCallDelta) {
    let delta = Delta::tool_calls(vec![call]);
    emit(out, delta, None);
}

/// Reasoning as LiteLLM streams it: `reasoning_content` text and `thinking_blocks` pieces
/// (the signature arrives last, on its own).
fn emit_reasoning(out: &mut Vec<ChatChunk>, r: ReasoningDelta) {
    let text = r.text.unwrap_or_default();
    let block = match r.redacted_content {
        Some(data) => json!({ "type": "redacted_thinking", "data": data }),
        None => match claude_answer::thinking_block(&text, r.signature) {
            Some(block) => block,
            None => return,
        },
    };
    emit(out, claude_answer::reasoning_delta(text, block), None);
}

impl StreamTranslator for ConverseStream {
    type Chunk = ChatChunk;

    fn feed(&mut self, bytes: &[u8], out: &mut Vec<ChatChunk>) -> Result<(), GatewayError> {
        self.decoder.feed(bytes, &mut self.messages).map_err(|e| {
            GatewayError::new(ErrorKind::BadGateway, format!("bedrock stream: {e}"))
        })?;
        self.take_messages(out)
    }

    fn finish(&mut self, out: &mut Vec<ChatChunk>) -> Result<(), GatewayError> {
        self.take_messages(out)?;
        if self.stopped && self.metadata_seen && !self.decoder.has_partial() {
            Ok(())
        } else {
            Err(stream_cut())
        }
    }

    fn usage(&self) -> Option<Usage> {
        self.usage.map(BedrockUsage::to_openai)
    }
}

#[cfg(test)]
mod tests;
