//! OpenAI's legacy `/v1/completions` (`text-completion-openai/`), and the passthrough stream
//! used for `/v1/completions` on every OpenAI-compatible provider.

use bytes::Bytes;
use serde::Serialize;
use serde_json::{Map, Value};

use super::openai_compatible::{openai_error, post, with_model};
use super::{unsupported, ChatStream, ProviderApi, StreamChunk, StreamTranslator};
use crate::config::Deployment;
use crate::error::{ErrorKind, GatewayError};
use crate::openai::{ChatCompletion, ChatRequest, Usage};
use crate::sse::{SseDecoder, SseEvent};

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

    fn chat_response(
        &self,
        _body: &[u8],
        _req: &ChatRequest,
        d: &Deployment,
    ) -> Result<ChatCompletion, GatewayError> {
        Err(unsupported(d, "/v1/chat/completions"))
    }

    fn chat_stream(&self, _req: &ChatRequest, _d: &Deployment) -> ChatStream {
        Box::new(super::openai_compatible::OpenAiChatStream::default())
    }

    fn error(&self, status: u16, body: &[u8]) -> GatewayError {
        openai_error(status, body)
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
#[derive(Debug, Clone, Serialize)]
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
}

/// OpenAI-format `/v1/completions` stream: events pass through; usage is lifted out.
#[derive(Default)]
pub struct TextStreamPassthrough {
    decoder: SseDecoder,
    events: Vec<SseEvent>,
    usage: Option<Usage>,
    finished: bool,
}

impl TextStreamPassthrough {
    fn take_events(&mut self, out: &mut Vec<TextChunk>) -> Result<(), GatewayError> {
        for ev in self.events.drain(..) {
            let data = ev.data.trim();
            if data == "[DONE]" {
                self.finished = true;
                continue;
            }
            if data.is_empty() {
                continue;
            }
            let mut map: Map<String, Value> = serde_json::from_str(data).map_err(|e| {
                GatewayError::new(
                    ErrorKind::BadGateway,
                    format!("unreadable stream chunk from the provider: {e}"),
                )
            })?;
            if map.contains_key("error") {
                let mut e = openai_error(500, data.as_bytes());
                e.status = None;
                return Err(e);
            }
            if let Some(u) = map.remove("usage").filter(|u| !u.is_null()) {
                self.usage = serde_json::from_value(u).ok();
            }
            let choices = map.get("choices").and_then(Value::as_array);
            if choices.is_some_and(|c| c.iter().any(|c| !c["finish_reason"].is_null())) {
                self.finished = true;
            }
            if choices.is_some_and(|c| !c.is_empty()) {
                out.push(TextChunk(map));
            }
        }
        Ok(())
    }
}

impl StreamTranslator for TextStreamPassthrough {
    type Chunk = TextChunk;

    fn feed(&mut self, bytes: &[u8], out: &mut Vec<TextChunk>) -> Result<(), GatewayError> {
        self.decoder.feed(bytes, &mut self.events);
        self.take_events(out)
    }

    fn finish(&mut self, out: &mut Vec<TextChunk>) -> Result<(), GatewayError> {
        self.decoder.finish(&mut self.events);
        self.take_events(out)?;
        if self.finished {
            Ok(())
        } else {
            Err(super::stream_cut())
        }
    }

    fn usage(&self) -> Option<Usage> {
        self.usage.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
