//! Gemini SSE (`streamGenerateContent?alt=sse`) → OpenAI chunks, one translator per request.
//!
//! Every frame is a whole `GenerateContentResponse` holding the new parts only, and the
//! running usage. Gemini sends no `[DONE]`: the stream is complete when a candidate has
//! finished (or the prompt was blocked) and the body ends; ending before that is a cut.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::error::error_from_value;
use super::response::{
    finish_reason, from_upstream, CallIds, CandidateParts, GenerateContentResponse, UsageMetadata,
};
use crate::error::GatewayError;
use crate::openai::{ChatChunk, Delta, FunctionCallDelta, ToolCallDelta, Usage};
use crate::providers::{parse_json, stream_cut, StreamTranslator};
use crate::sse::{SseDecoder, SseEvent};

#[derive(Default)]
pub struct GeminiStream {
    decoder: SseDecoder,
    events: Vec<SseEvent>,
    usage: Option<UsageMetadata>,
    ids: CallIds,
    /// Candidates that already sent their first chunk (which carries the role).
    started: BTreeSet<u32>,
    /// Tool calls so far, per candidate: the next call's OpenAI `index`.
    tool_calls: BTreeMap<u32, u32>,
    finished: bool,
}

impl GeminiStream {
    pub fn new() -> Self {
        Self::default()
    }

    fn take_events(&mut self, out: &mut Vec<ChatChunk>) -> Result<(), GatewayError> {
        for ev in std::mem::take(&mut self.events) {
            let data = ev.data.trim();
            if data.is_empty() {
                continue;
            }
            let value: Value = parse_json(data.as_bytes())?;
            if let Some(error) = value.get("error") {
                return Err(error_from_value(0, error));
            }
            self.handle(from_upstream(value)?, out);
        }
        Ok(())
    }

    fn handle(&mut self, frame: GenerateContentResponse, out: &mut Vec<ChatChunk>) {
        if frame.usage_metadata.is_some() {
            self.usage = frame.usage_metadata;
        }
        let blocked = frame
            .prompt_feedback
            .as_ref()
            .is_some_and(|f| f.block_reason.is_some());
        if frame.candidates.is_empty() && blocked {
            self.emit(out, 0, Delta::default(), Some("content_filter"));
            self.finished = true;
            return;
        }
        for (position, candidate) in frame.candidates.into_iter().enumerate() {
            let index = candidate.index.unwrap_or(position as u32);
            let parts = candidate.content.map(|c| c.parts).unwrap_or_default();
            let collected = CandidateParts::collect(parts, &mut self.ids);
            self.emit_parts(out, index, collected);
            if let Some(reason) = candidate.finish_reason.as_deref() {
                let called = self.tool_calls.get(&index).is_some_and(|n| *n > 0);
                let finish = finish_reason(Some(reason), called);
                self.emit(out, index, Delta::default(), Some(finish));
                self.finished = true;
            }
        }
    }

    /// One chunk with everything the frame added to a candidate (nothing if it added none).
    fn emit_parts(&mut self, out: &mut Vec<ChatChunk>, index: u32, parts: CandidateParts) {
        let mut delta = Delta::default();
        if !parts.text.is_empty() {
            delta.content = Some(parts.text);
        }
        if !parts.reasoning.is_empty() {
            delta
                .extra
                .insert("reasoning_content".into(), Value::String(parts.reasoning));
        }
        if !parts.tool_calls.is_empty() {
            let count = self.tool_calls.entry(index).or_insert(0);
            let calls = parts
                .tool_calls
                .into_iter()
                .map(|call| {
                    let ordinal = *count;
                    *count += 1;
                    // Gemini sends each call whole, so one delta carries all of it.
                    ToolCallDelta {
                        index: ordinal,
                        id: Some(call.id),
                        kind: Some(call.kind),
                        function: Some(FunctionCallDelta {
                            name: Some(call.function.name),
                            arguments: Some(call.function.arguments),
                        }),
                    }
                })
                .collect();
            delta.tool_calls = Some(calls);
        }
        let empty = delta.content.is_none() && delta.tool_calls.is_none() && delta.extra.is_empty();
        if !empty {
            self.emit(out, index, delta, None);
        }
    }

    fn emit(
        &mut self,
        out: &mut Vec<ChatChunk>,
        index: u32,
        mut delta: Delta,
        finish: Option<&str>,
    ) {
        if self.started.insert(index) {
            delta.role = Some("assistant".into());
        }
        let mut chunk = ChatChunk::with_delta(delta, finish.map(str::to_string));
        if let Some(choice) = chunk.choices.first_mut() {
            choice.index = index;
        }
        out.push(chunk);
    }
}

impl StreamTranslator for GeminiStream {
    type Chunk = ChatChunk;

    fn feed(&mut self, bytes: &[u8], out: &mut Vec<ChatChunk>) -> Result<(), GatewayError> {
        self.decoder.feed(bytes, &mut self.events);
        self.take_events(out)
    }

    fn finish(&mut self, out: &mut Vec<ChatChunk>) -> Result<(), GatewayError> {
        self.decoder.finish(&mut self.events);
        self.take_events(out)?;
        if self.finished {
            Ok(())
        } else {
            Err(stream_cut())
        }
    }

    fn usage(&self) -> Option<Usage> {
        self.usage.map(UsageMetadata::to_openai)
    }
}
