//! `/v1/chat/completions` request, response and stream chunk.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Usage;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<ChatMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Stop>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ChatRequest {
    pub fn is_stream(&self) -> bool {
        self.stream.unwrap_or(false)
    }

    pub fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false)
    }

    /// The token ceiling the client asked for, under either name.
    pub fn max_output_tokens(&self) -> Option<u64> {
        self.max_completion_tokens.or(self.max_tokens)
    }

    /// Bytes of prompt text: every message's text and tool-call arguments.
    pub fn prompt_text_len(&self) -> usize {
        self.messages
            .iter()
            .map(|m| {
                let text = match &m.content {
                    Some(MessageContent::Text(s)) => s.len(),
                    Some(MessageContent::Parts(parts)) => parts
                        .iter()
                        .filter_map(|p| p.text.as_deref())
                        .map(str::len)
                        .sum(),
                    None => 0,
                };
                let calls: usize = m
                    .tool_calls
                    .iter()
                    .flatten()
                    .map(|c| c.function.arguments.len())
                    .sum();
                text + calls
            })
            .sum()
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StreamOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_usage: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

impl Stop {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Stop::One(s) => vec![s],
            Stop::Many(v) => v,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    Developer,
    User,
    Assistant,
    Tool,
    Function,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<MessageContent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A message body: a plain string or a list of typed parts (text, images, ...).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MessageContent {
    Text(String),
    Parts(Vec<ContentPart>),
}

impl MessageContent {
    /// All text parts joined, for providers (and tool results) that only take a string.
    pub fn joined_text(&self) -> String {
        match self {
            MessageContent::Text(s) => s.clone(),
            MessageContent::Parts(parts) => parts
                .iter()
                .filter_map(|p| p.text.as_deref())
                .collect::<Vec<_>>()
                .join(""),
        }
    }
}

/// One part of a multi-part message. Kept as a loose struct, not an enum, so part types
/// Tollgate does not know yet (audio, files) still pass through to providers that do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<ImageUrl>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ImageUrl {
    Object {
        url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// Some clients send the URL as a bare string.
    Bare(String),
}

impl ImageUrl {
    pub fn url(&self) -> &str {
        match self {
            ImageUrl::Object { url, .. } => url,
            ImageUrl::Bare(url) => url,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tool {
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    pub function: FunctionDefinition,
    /// e.g. Anthropic's `cache_control` set on the tool itself.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn function_type() -> String {
    "function".to_string()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FunctionDefinition {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    pub function: FunctionCall,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionCall {
    pub name: String,
    /// JSON text, exactly as the model produced it.
    #[serde(default)]
    pub arguments: String,
}

// ---------------------------------------------------------------- responses

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatCompletion {
    #[serde(default)]
    pub id: String,
    #[serde(default = "completion_object")]
    pub object: String,
    #[serde(default)]
    pub created: u64,
    #[serde(default)]
    pub model: String,
    pub choices: Vec<Choice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_fingerprint: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn completion_object() -> String {
    "chat.completion".to_string()
}

impl ChatCompletion {
    /// A completion with one choice; id, model and created are stamped later.
    pub fn with_choice(message: AssistantMessage, finish_reason: &str, usage: Usage) -> Self {
        ChatCompletion {
            id: String::new(),
            object: completion_object(),
            created: 0,
            model: String::new(),
            choices: vec![Choice::new(0, message, finish_reason)],
            usage: Some(usage),
            system_fingerprint: None,
            extra: Map::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Choice {
    #[serde(default)]
    pub index: u32,
    pub message: AssistantMessage,
    #[serde(default)]
    pub finish_reason: Option<String>,
    #[serde(default)]
    pub logprobs: Option<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Choice {
    pub fn new(index: u32, message: AssistantMessage, finish_reason: &str) -> Self {
        Choice {
            index,
            message,
            finish_reason: Some(finish_reason.into()),
            logprobs: None,
            extra: Map::new(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AssistantMessage {
    #[serde(default = "assistant_role")]
    pub role: String,
    /// `null` (not absent) when the model only called tools, as OpenAI sends it.
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl AssistantMessage {
    /// A model's answer: `content` (`null` when empty), `tool_calls` when any, and
    /// `reasoning_content` when there is reasoning.
    pub fn answer(text: String, tool_calls: Vec<ToolCall>, reasoning: String) -> Self {
        let mut message = AssistantMessage {
            role: assistant_role(),
            content: Some(text).filter(|t| !t.is_empty()),
            tool_calls: Some(tool_calls).filter(|t| !t.is_empty()),
            extra: Map::new(),
        };
        if !reasoning.is_empty() {
            message
                .extra
                .insert("reasoning_content".into(), Value::String(reasoning));
        }
        message
    }
}

fn assistant_role() -> String {
    "assistant".to_string()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatChunk {
    #[serde(default)]
    pub id: String,
    #[serde(default = "chunk_object")]
    pub object: String,
    #[serde(default)]
    pub created: u64,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub choices: Vec<ChunkChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_fingerprint: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn chunk_object() -> String {
    "chat.completion.chunk".to_string()
}

impl ChatChunk {
    /// A chunk with one choice carrying `delta`; id, model and created are stamped later.
    pub fn with_delta(delta: Delta, finish_reason: Option<String>) -> Self {
        ChatChunk {
            id: String::new(),
            object: chunk_object(),
            created: 0,
            model: String::new(),
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason,
                logprobs: None,
            }],
            usage: None,
            system_fingerprint: None,
            extra: Map::new(),
        }
    }

    /// The closing chunk `stream_options.include_usage` asks for: no choices, only usage.
    pub fn usage_only(usage: Usage) -> Self {
        let mut chunk = Self::with_delta(Delta::default(), None);
        chunk.choices.clear();
        chunk.usage = Some(usage);
        chunk
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChunkChoice {
    #[serde(default)]
    pub index: u32,
    #[serde(default)]
    pub delta: Delta,
    #[serde(default)]
    pub finish_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Delta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCallDelta>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Delta {
    /// Bytes of answer text: content, reasoning (`reasoning_content`) and tool arguments.
    pub fn text_len(&self) -> usize {
        let content = self.content.as_deref().map_or(0, str::len);
        let reasoning = self
            .extra
            .get("reasoning_content")
            .and_then(Value::as_str)
            .map_or(0, str::len);
        let arguments: usize = self
            .tool_calls
            .iter()
            .flatten()
            .filter_map(|t| t.function.as_ref()?.arguments.as_deref())
            .map(str::len)
            .sum();
        content + reasoning + arguments
    }

    /// The opening delta of a streamed answer: the assistant role and empty content.
    pub fn start() -> Self {
        Delta {
            role: Some("assistant".into()),
            content: Some(String::new()),
            ..Default::default()
        }
    }

    pub fn text(text: String) -> Self {
        Delta {
            content: Some(text),
            ..Default::default()
        }
    }

    pub fn tool_calls(calls: Vec<ToolCallDelta>) -> Self {
        Delta {
            tool_calls: Some(calls),
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolCallDelta {
    pub index: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionCallDelta>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionCallDelta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let req: ChatRequest = serde_json::from_value(json!({
            "model": "m", "messages": [{"role": "user", "content": "hi"}],
            "logprobs": true, "seed": 7
        }))
        .unwrap();
        let back = serde_json::to_value(&req).unwrap();
        assert_eq!(back["logprobs"], true);
        assert_eq!(back["seed"], 7);
        assert!(back.get("temperature").is_none());
    }

    #[test]
    fn unknown_role_is_refused() {
        let r: Result<ChatRequest, _> = serde_json::from_value(
            json!({"model": "m", "messages": [{"role": "robot", "content": "x"}]}),
        );
        assert!(r.is_err());
    }

    #[test]
    fn multipart_content_keeps_text_and_images() {
        let m: ChatMessage = serde_json::from_value(json!({"role": "user", "content": [
            {"type": "text", "text": "look"},
            {"type": "image_url", "image_url": {"url": "http://x/y.png"}}
        ]}))
        .unwrap();
        let MessageContent::Parts(parts) = m.content.unwrap() else {
            panic!("parts expected")
        };
        assert_eq!(parts[0].text.as_deref(), Some("look"));
        assert_eq!(parts[1].image_url.as_ref().unwrap().url(), "http://x/y.png");
    }

    #[test]
    fn assistant_content_serialises_as_null_when_absent() {
        let msg = AssistantMessage {
            role: "assistant".into(),
            ..Default::default()
        };
        assert_eq!(serde_json::to_value(&msg).unwrap()["content"], Value::Null);
    }
}
