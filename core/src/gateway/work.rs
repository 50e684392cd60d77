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

impl Work {
    /// The most output tokens the request asks for (`max_tokens`, `max_completion_tokens`),
    /// times `n` choices; `None` when it names no bound. Embeddings and images produce no
    /// output tokens.
    pub(super) fn max_output_tokens(&self) -> Option<u64> {
        let field = |v: &Value, name: &str| v.get(name).and_then(Value::as_u64);
        match self {
            Work::Chat(req) => req
                .max_completion_tokens
                .or(req.max_tokens)
                .map(|t| t * u64::from(req.n.unwrap_or(1).max(1))),
            Work::Completion(v) => Some(
                // OpenAI's legacy default is 16 tokens.
                field(v, "max_tokens").unwrap_or(16) * field(v, "n").unwrap_or(1).max(1),
            ),
            Work::Embeddings(_) | Work::Images(_) => Some(0),
            Work::Messages(m) => field(&m.original, "max_tokens"),
        }
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
