//! OpenAI's legacy `/v1/completions` (`text-completion-openai/`), and the passthrough stream
//! used for `/v1/completions` on every OpenAI-compatible provider.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::openai_compatible::{post, with_model};
use super::openai_stream::{OpenAiFormatChunk, OpenAiFormatStream};
use super::{unsupported, ProviderApi, StreamChunk};
use crate::deployment::Deployment;
use crate::error::GatewayError;
use crate::openai::{ChatRequest, Usage};

pub struct TextCompletionOpenAi;

impl ProviderApi for TextCompletionOpenAi {
    fn chat_request(
        &self,
        _req: &ChatRequest,
        d: &Deployment,
    ) -> Result<http::Request<Bytes>, GatewayError> {
        Err(unsupported(
            d,
            "/v1/chat/completions (it is a text-completion model: use /v1/completions)",
        ))
    }

    fn completion_request(
        &self,
        req: &Value,
        d: &Deployment,
    ) -> Result<http::Request<Bytes>, GatewayError> {
        post(d, "/completions", with_model(req, d)?)
    }
}

/// A `text_completion` stream chunk, kept as JSON: it passes through with only id and model
/// restamped.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TextChunk(pub Map<String, Value>);

impl StreamChunk for TextChunk {
    fn id(&self) -> &str {
        self.0.get("id").and_then(Value::as_str).unwrap_or("")
    }

    fn created(&self) -> u64 {
        self.0.get("created").and_then(Value::as_u64).unwrap_or(0)
    }

    fn stamp(&mut self, id: &str, model: &str, created: u64) {
        self.0.insert("id".into(), Value::String(id.to_string()));
        self.0
            .insert("model".into(), Value::String(model.to_string()));
        self.0.insert("created".into(), Value::from(created));
        self.0
            .entry("object")
            .or_insert_with(|| Value::String("text_completion".into()));
    }

    fn usage_only(usage: Usage) -> Self {
        let mut m = Map::new();
        m.insert("object".into(), Value::String("text_completion".into()));
        m.insert("choices".into(), Value::Array(Vec::new()));
        m.insert(
            "usage".into(),
            serde_json::to_value(usage).unwrap_or(Value::Null),
        );
        TextChunk(m)
    }

    fn text_len(&self) -> usize {
        let choices = self.0.get("choices").and_then(Value::as_array);
        choices
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("text").and_then(Value::as_str))
            .map(str::len)
            .sum()
    }
}

/// OpenAI-format `/v1/completions` stream: events pass through; usage is lifted out.
pub type TextStreamPassthrough = OpenAiFormatStream<TextChunk>;

impl OpenAiFormatChunk for TextChunk {
    fn is_error(&self) -> bool {
        self.0.contains_key("error")
    }

    fn take_usage(&mut self) -> Option<Usage> {
        self.0
            .remove("usage")
            .filter(|u| !u.is_null())
            .and_then(|u| serde_json::from_value(u).ok())
    }

    fn has_finish_reason(&self) -> bool {
        self.choices()
            .is_some_and(|c| c.iter().any(|c| !c["finish_reason"].is_null()))
    }

    fn has_choices(&self) -> bool {
        self.choices().is_some_and(|c| !c.is_empty())
    }
}

impl TextChunk {
    fn choices(&self) -> Option<&Vec<Value>> {
        self.0.get("choices").and_then(Value::as_array)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::StreamTranslator;

    #[test]
    fn passthrough_lifts_usage_and_detects_end() {
        let s = "data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"created\":1,\"model\":\"x\",\"choices\":[{\"text\":\"Hi\",\"index\":0,\"logprobs\":null,\"finish_reason\":null}]}\n\n\
                 data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"created\":1,\"model\":\"x\",\"choices\":[{\"text\":\"\",\"index\":0,\"logprobs\":null,\"finish_reason\":\"stop\"}]}\n\n\
                 data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"created\":1,\"model\":\"x\",\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1,\"total_tokens\":2}}\n\n\
                 data: [DONE]\n\n";
        let mut t = TextStreamPassthrough::default();
        let mut out = Vec::new();
        t.feed(s.as_bytes(), &mut out).unwrap();
        t.finish(&mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].0["choices"][0]["text"], "Hi");
        assert_eq!(t.usage().unwrap().total_tokens, 2);
        let mut cut = TextStreamPassthrough::default();
        cut.feed(&s.as_bytes()[..100], &mut Vec::new()).unwrap();
        assert!(cut.finish(&mut Vec::new()).is_err());
    }

    #[test]
    fn stamp_sets_id_and_model() {
        let mut c = TextChunk(Map::new());
        c.stamp("cmpl-x", "my-model", 5);
        assert_eq!(c.id(), "cmpl-x");
        assert_eq!(c.0["model"], "my-model");
        assert_eq!(c.created(), 5);
    }
}
