//! Gemini `GenerateContentResponse` → OpenAI chat completion. The types here are shared with
//! the stream translator: every streamed frame is a `GenerateContentResponse` too.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::THOUGHT_SIGNATURE_SEPARATOR;
use crate::openai::{
    AssistantMessage, ChatCompletion, Choice, CompletionTokensDetails, FunctionCall,
    PromptTokensDetails, ToolCall, Usage,
};
pub use crate::providers::from_upstream;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateContentResponse {
    #[serde(default)]
    pub candidates: Vec<Candidate>,
    #[serde(default)]
    pub prompt_feedback: Option<PromptFeedback>,
    #[serde(default)]
    pub usage_metadata: Option<UsageMetadata>,
    #[serde(default)]
    pub model_version: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    #[serde(default)]
    pub content: Option<Content>,
    #[serde(default)]
    pub finish_reason: Option<String>,
    /// Absent for the first (often only) candidate.
    #[serde(default)]
    pub index: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Content {
    #[serde(default)]
    pub parts: Vec<Part>,
}

/// One part of a candidate's content. Kinds Tollgate does not translate (executable code,
/// inline images) carry none of these fields and are skipped.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Part {
    #[serde(default)]
    pub text: Option<String>,
    /// The text is the model's reasoning, not its answer.
    #[serde(default)]
    pub thought: bool,
    #[serde(default)]
    pub function_call: Option<FunctionCallPart>,
    #[serde(default)]
    pub thought_signature: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct FunctionCallPart {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub args: Option<Value>,
    /// Sent by some models and by Vertex; generated when absent.
    #[serde(default)]
    pub id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PromptFeedback {
    #[serde(default)]
    pub block_reason: Option<String>,
}

/// Gemini's token counts. In streams every frame repeats the running totals, so the last one
/// seen is the answer's.
#[derive(Debug, Default, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageMetadata {
    #[serde(default)]
    pub prompt_token_count: Option<u64>,
    #[serde(default)]
    pub candidates_token_count: Option<u64>,
    #[serde(default)]
    pub total_token_count: Option<u64>,
    #[serde(default)]
    pub cached_content_token_count: Option<u64>,
    #[serde(default)]
    pub thoughts_token_count: Option<u64>,
}

impl UsageMetadata {
    /// Thinking is billed as output, so (as LiteLLM does) it counts as completion tokens,
    /// with its share in `reasoning_tokens`. Gemini's prompt count already includes cached
    /// tokens, which OpenAI reports in the details.
    pub fn to_openai(self) -> Usage {
        let thoughts = self.thoughts_token_count.unwrap_or(0);
        let completion = self.candidates_token_count.unwrap_or(0) + thoughts;
        let mut usage = Usage::new(self.prompt_token_count.unwrap_or(0), completion);
        if let Some(cached) = self.cached_content_token_count {
            usage.prompt_tokens_details = Some(PromptTokensDetails {
                cached_tokens: cached,
                ..Default::default()
            });
        }
        if self.thoughts_token_count.is_some() {
            usage.completion_tokens_details = Some(CompletionTokensDetails {
                reasoning_tokens: thoughts,
                ..Default::default()
            });
        }
        usage
    }
}

/// OpenAI's finish_reason for a Gemini `finishReason`; a candidate that called functions
/// finished with `tool_calls`, whatever Gemini says (it says STOP).
pub fn finish_reason(reason: Option<&str>, called_tools: bool) -> &'static str {
    match reason {
        Some("MAX_TOKENS") => "length",
        Some(
            "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY",
        ) => "content_filter",
        _ if called_tools => "tool_calls",
        // STOP, OTHER, MALFORMED_FUNCTION_CALL, FINISH_REASON_UNSPECIFIED, and new ones.
        _ => "stop",
    }
}

/// Numbers the tool calls of one response, so their ids are unique within it and the same
/// on every run (`call_0`, `call_1`, ...).
#[derive(Debug, Default)]
pub struct CallIds {
    next: u32,
}

impl CallIds {
    /// The OpenAI tool call for a `functionCall` part. A thought signature rides along in the
    /// id, where clients keep it untouched and send it back with the call.
    pub fn tool_call(&mut self, call: FunctionCallPart, signature: Option<String>) -> ToolCall {
        let mut id = call.id.unwrap_or_else(|| format!("call_{}", self.next));
        self.next += 1;
        if let Some(sig) = signature {
            id = format!("{id}{THOUGHT_SIGNATURE_SEPARATOR}{sig}");
        }
        let arguments = call.args.unwrap_or_else(|| json!({})).to_string();
        ToolCall {
            id,
            kind: "function".into(),
            function: FunctionCall {
                name: call.name,
                arguments,
            },
        }
    }
}

/// What one candidate's parts add up to.
#[derive(Debug, Default)]
pub struct CandidateParts {
    pub text: String,
    pub reasoning: String,
    pub tool_calls: Vec<ToolCall>,
}

impl CandidateParts {
    pub fn collect(parts: Vec<Part>, ids: &mut CallIds) -> Self {
        let mut out = CandidateParts::default();
        for part in parts {
            if let Some(call) = part.function_call {
                out.tool_calls
                    .push(ids.tool_call(call, part.thought_signature));
            } else if let Some(text) = part.text {
                if part.thought {
                    out.reasoning.push_str(&text);
                } else {
                    out.text.push_str(&text);
                }
            }
        }
        out
    }
}

/// The whole answer. A prompt Gemini blocked has no candidates, only `promptFeedback`:
/// it becomes one empty choice finished by `content_filter`, as LiteLLM answers it.
pub fn completion(resp: GenerateContentResponse) -> ChatCompletion {
    let mut ids = CallIds::default();
    let mut choices: Vec<Choice> = Vec::with_capacity(resp.candidates.len().max(1));
    for (position, candidate) in resp.candidates.into_iter().enumerate() {
        let index = candidate.index.unwrap_or(position as u32);
        let parts = candidate.content.map(|c| c.parts).unwrap_or_default();
        let collected = CandidateParts::collect(parts, &mut ids);
        let finish = finish_reason(
            candidate.finish_reason.as_deref(),
            !collected.tool_calls.is_empty(),
        );
        choices.push(choice(index, collected, finish));
    }
    if choices.is_empty() {
        let blocked = resp.prompt_feedback.and_then(|f| f.block_reason).is_some();
        let finish = if blocked { "content_filter" } else { "stop" };
        choices.push(choice(0, CandidateParts::default(), finish));
    }
    ChatCompletion {
        id: String::new(),
        object: "chat.completion".into(),
        created: 0,
        model: resp.model_version.unwrap_or_default(),
        choices,
        usage: Some(resp.usage_metadata.unwrap_or_default().to_openai()),
        system_fingerprint: None,
        extra: Map::new(),
    }
}

fn choice(index: u32, parts: CandidateParts, finish: &str) -> Choice {
    let message = AssistantMessage::answer(parts.text, parts.tool_calls, parts.reasoning);
    Choice::new(index, message, finish)
}
