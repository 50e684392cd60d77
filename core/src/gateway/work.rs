//! A validated request that can be tried on one model group after another.

use serde_json::Value;

use crate::anthropic_ingress;
use crate::openai::ChatRequest;

pub(super) enum Work {
    Chat(Box<ChatRequest>),
    Completion(Value),
    Embeddings(Value),
    Images(Value),
    Messages(Box<anthropic_ingress::MessagesRequest>),
}

impl Work {
    /// About how many tokens the prompt holds, for `max_input_tokens` checks, `tpm`
    /// estimates and the usage of a cut stream: a quarter of its text's bytes, rounded up
    /// (OpenAI's rule of thumb for English; no tokenizer ships in the gateway).
    pub(super) fn estimated_prompt_tokens(&self) -> u64 {
        let bytes = match self {
            Work::Chat(req) => req.prompt_text_len(),
            Work::Completion(v) => text_len(v.get("prompt")),
            Work::Embeddings(v) => text_len(v.get("input")),
            Work::Images(v) => text_len(v.get("prompt")),
            Work::Messages(m) => m.prompt_text_len(),
        };
        (bytes as u64).div_ceil(4)
    }
}

/// Bytes of text in a prompt or input value (a string, or arrays of them; token arrays count
/// four bytes per token).
fn text_len(v: Option<&Value>) -> usize {
    match v {
        Some(Value::String(s)) => s.len(),
        Some(Value::Array(items)) => items.iter().map(|i| text_len(Some(i))).sum(),
        Some(Value::Number(_)) => 4,
        _ => 0,
    }
}
