//! Streamed `/v1/messages` answers: Anthropic's event sequence for the client.
//!
//! [`ChunkToEvents`] turns OpenAI chunks (from any provider's translator) into
//! `message_start`, `ping`, `content_block_start` / `content_block_delta` /
//! `content_block_stop` per block, `message_delta` (stop reason, usage) and `message_stop`.
//! Anthropic blocks do not overlap: a change of kind (thinking → text → tool call) closes the
//! open block and opens the next index. [`AnthropicSse`] is the output stage: it pulls
//! upstream bytes through an [`EventSource`] (translated, or an Anthropic upstream passed
//! through) and runs the end-of-stream bookkeeping once, as [`crate::stream::SseOutput`]
//! does for OpenAI framing.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use serde_json::{json, Value};

use super::error::{error_event, put_event};
use super::response::{message_id, stop_reason, usage_json};
use crate::error::GatewayError;
use crate::ledger::{EndReason, Ledger};
use crate::openai::{ChatChunk, Delta, Usage};
use crate::ports::{AfterResponse, BodyStream, MaybeSend};
use crate::providers::{ChatStream, StreamChunk};
use crate::stream::{upstream_broke, EndOfStream, ResponseStream};

/// What kind of block is open, so the next delta knows whether it continues it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum BlockKind {
    Thinking,
    Text,
    /// Carries the OpenAI tool-call index.
    Tool(u32),
}

/// OpenAI chunks → Anthropic events, for one response.
pub struct ChunkToEvents {
    id: String,
    model: String,
    started: bool,
    /// The open block: (Anthropic index, kind).
    open: Option<(u32, BlockKind)>,
    next_index: u32,
    /// OpenAI tool-call index → Anthropic block index.
    tools: Vec<(u32, u32)>,
    finish: Option<String>,
    usage: Option<Usage>,
}

impl ChunkToEvents {
    /// `fallback_id` is used when the provider's chunks carry no id; `model` is the name the
    /// client asked for.
    pub fn new(fallback_id: String, model: String) -> Self {
        ChunkToEvents {
            id: fallback_id,
            model,
            started: false,
            open: None,
            next_index: 0,
            tools: Vec::new(),
            finish: None,
            usage: None,
        }
    }

    /// Frames the events `chunk` stands for onto `out`.
    pub fn push(&mut self, chunk: &ChatChunk, out: &mut BytesMut) {
        if let Some(u) = &chunk.usage {
            self.usage = Some(u.clone());
        }
        if !self.started {
            if !chunk.id.is_empty() {
                self.id = message_id(&chunk.id);
            }
            self.start(out);
        }
        for choice in chunk.choices.iter().filter(|c| c.index == 0) {
            self.delta(&choice.delta, out);
            if let Some(f) = &choice.finish_reason {
                self.finish = Some(f.clone());
            }
        }
    }

    /// The stream is over: closes the open block and sends the stop reason and usage.
    /// `usage` is the translator's total when it has one.
    pub fn finish(&mut self, usage: Option<Usage>, out: &mut BytesMut) {
        if usage.is_some() {
            self.usage = usage;
        }
        if !self.started {
            self.start(out);
        }
        self.close(out);
        let reason = stop_reason(self.finish.as_deref(), !self.tools.is_empty());
        put_event(
            out,
            "message_delta",
            &json!({
                "type": "message_delta",
                "delta": {"stop_reason": reason, "stop_sequence": null},
                "usage": usage_json(self.usage.as_ref()),
            }),
        );
        put_event(out, "message_stop", &json!({"type": "message_stop"}));
    }

    fn start(&mut self, out: &mut BytesMut) {
        self.started = true;
        let mut usage = usage_json(self.usage.as_ref());
        // Output is counted at the end (message_delta), as Anthropic streams do.
        usage["output_tokens"] = json!(0);
        put_event(
            out,
            "message_start",
            &json!({
                "type": "message_start",
                "message": {
                    "id": self.id, "type": "message", "role": "assistant", "model": self.model,
                    "content": [], "stop_reason": null, "stop_sequence": null, "usage": usage,
                },
            }),
        );
        put_event(out, "ping", &json!({"type": "ping"}));
    }

    fn delta(&mut self, delta: &Delta, out: &mut BytesMut) {
        if let Some(text) = delta
            .extra
            .get("reasoning_content")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            let index = self.ensure_open(BlockKind::Thinking, out);
            self.block_delta(
                index,
                json!({"type": "thinking_delta", "thinking": text}),
                out,
            );
        }
        // Signatures arrive with LiteLLM-style thinking blocks, usually last and on their own.
        if let Some(Value::Array(blocks)) = delta.extra.get("thinking_blocks") {
            for sig in blocks
                .iter()
                .filter_map(|b| b.get("signature").and_then(Value::as_str))
                .filter(|s| !s.is_empty())
            {
                let index = self.ensure_open(BlockKind::Thinking, out);
                self.block_delta(
                    index,
                    json!({"type": "signature_delta", "signature": sig}),
                    out,
                );
            }
        }
        if let Some(text) = delta.content.as_deref().filter(|t| !t.is_empty()) {
            let index = self.ensure_open(BlockKind::Text, out);
            self.block_delta(index, json!({"type": "text_delta", "text": text}), out);
        }
        for call in delta.tool_calls.iter().flatten() {
            let index = match self.tools.iter().find(|(oi, _)| *oi == call.index) {
                Some(&(_, index)) => index,
                None => self.start_tool(call, out),
            };
            let args = call.function.as_ref().and_then(|f| f.arguments.as_deref());
            if let Some(args) = args.filter(|a| !a.is_empty()) {
                // A late fragment of an earlier call keeps that call's index: the SDKs
                // accumulate by index.
                self.block_delta(
                    index,
                    json!({"type": "input_json_delta", "partial_json": args}),
                    out,
                );
            }
        }
    }

    /// The index of an open block of `kind`, opening one (and closing another) if needed.
    fn ensure_open(&mut self, kind: BlockKind, out: &mut BytesMut) -> u32 {
        if let Some((index, open)) = self.open {
            if open == kind {
                return index;
            }
        }
        let block = match kind {
            BlockKind::Thinking => json!({"type": "thinking", "thinking": "", "signature": ""}),
            _ => json!({"type": "text", "text": ""}),
        };
        self.open_block(kind, block, out)
    }

    fn start_tool(&mut self, call: &crate::openai::ToolCallDelta, out: &mut BytesMut) -> u32 {
        let name = call
            .function
            .as_ref()
            .and_then(|f| f.name.clone())
            .unwrap_or_default();
        let id = call
            .id
            .clone()
            .unwrap_or_else(|| format!("toolu_{}_{}", self.id, call.index));
        let block = json!({"type": "tool_use", "id": id, "name": name, "input": {}});
        let index = self.open_block(BlockKind::Tool(call.index), block, out);
        self.tools.push((call.index, index));
        index
    }

    fn open_block(&mut self, kind: BlockKind, block: Value, out: &mut BytesMut) -> u32 {
        self.close(out);
        let index = self.next_index;
        self.next_index += 1;
        self.open = Some((index, kind));
        put_event(
            out,
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": block}),
        );
        index
    }

    fn block_delta(&self, index: u32, delta: Value, out: &mut BytesMut) {
        put_event(
            out,
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": index, "delta": delta}),
        );
    }

    fn close(&mut self, out: &mut BytesMut) {
        if let Some((index, _)) = self.open.take() {
            put_event(
                out,
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": index}),
            );
        }
    }
}

/// Upstream bytes → framed Anthropic events.
pub trait EventSource: MaybeSend {
    fn feed(&mut self, bytes: &[u8], out: &mut BytesMut) -> Result<(), GatewayError>;
    /// The upstream ended; `Err` when it ended before its own end marker.
    fn finish(&mut self, out: &mut BytesMut) -> Result<(), GatewayError>;
    /// Usage so far, for the ledger.
    fn usage(&self) -> Option<Usage>;
    /// Answer text bytes sent since the last call (for a cut stream's usage estimate).
    fn take_text_len(&mut self) -> usize {
        0
    }
}

/// A provider's stream through its OpenAI translator, then [`ChunkToEvents`].
pub struct TranslatedEvents {
    translator: ChatStream,
    events: ChunkToEvents,
    scratch: Vec<ChatChunk>,
    text_len: usize,
}

impl TranslatedEvents {
    pub fn new(translator: ChatStream, events: ChunkToEvents) -> Self {
        TranslatedEvents {
            translator,
            events,
            scratch: Vec::new(),
            text_len: 0,
        }
    }

    fn drain(&mut self, out: &mut BytesMut) {
        for chunk in self.scratch.drain(..) {
            self.text_len += chunk.text_len();
            self.events.push(&chunk, out);
        }
    }
}

impl EventSource for TranslatedEvents {
    fn feed(&mut self, bytes: &[u8], out: &mut BytesMut) -> Result<(), GatewayError> {
        let fed = self.translator.feed(bytes, &mut self.scratch);
        // What was translated before an error still reaches the client.
        self.drain(out);
        fed
    }

    fn finish(&mut self, out: &mut BytesMut) -> Result<(), GatewayError> {
        let finished = self.translator.finish(&mut self.scratch);
        self.drain(out);
        finished?;
        self.events.finish(self.translator.usage(), out);
        Ok(())
    }

    fn usage(&self) -> Option<Usage> {
        self.translator.usage()
    }

    fn take_text_len(&mut self) -> usize {
        std::mem::take(&mut self.text_len)
    }
}

/// The output stage: events as upstream bytes arrive, an `error` event (and no
/// `message_stop`) when the upstream breaks, the bookkeeping run once at the end.
pub struct AnthropicSse {
    upstream: Option<BodyStream>,
    source: Box<dyn EventSource>,
    end: EndOfStream,
    ready: BytesMut,
}

impl AnthropicSse {
    pub fn new(upstream: BodyStream, source: Box<dyn EventSource>) -> Self {
        AnthropicSse {
            upstream: Some(upstream),
            source,
            end: EndOfStream::default(),
            ready: BytesMut::new(),
        }
    }

    /// Closes `ledger` once when the stream is over; `after` finishes the work if the client
    /// leaves first.
    pub fn settling(mut self, ledger: Ledger, after: Arc<dyn AfterResponse>) -> Self {
        self.end = EndOfStream::new(ledger, after);
        self
    }

    pub fn boxed(self) -> ResponseStream {
        Box::pin(self)
    }

    fn end(&mut self, err: Option<&GatewayError>) {
        if let Some(e) = err {
            self.ready.extend_from_slice(&error_event(e));
        }
        self.upstream = None;
        self.end.sent_text(self.source.take_text_len());
        let reason = match err {
            None => EndReason::Completed,
            Some(_) => EndReason::UpstreamBroke,
        };
        self.end.begin(reason, self.source.usage());
    }
}

impl Stream for AnthropicSse {
    type Item = Bytes;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let this = self.get_mut();
        loop {
            if !this.ready.is_empty() {
                return Poll::Ready(Some(this.ready.split().freeze()));
            }
            let Some(upstream) = this.upstream.as_mut() else {
                return this.end.poll_settled(cx).map(|()| None);
            };
            match upstream.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(bytes))) => {
                    if let Err(e) = this.source.feed(&bytes, &mut this.ready) {
                        this.end(Some(&e));
                    } else {
                        this.end.sent_text(this.source.take_text_len());
                    }
                }
                Poll::Ready(Some(Err(transport))) => {
                    this.end(Some(&upstream_broke(&transport)));
                }
                Poll::Ready(None) => {
                    let finished = this.source.finish(&mut this.ready);
                    this.end(finished.err().as_ref());
                }
            }
        }
    }
}

impl Drop for AnthropicSse {
    /// The client left before the end: the bookkeeping still happens, in the background.
    fn drop(&mut self) {
        let source = &self.source;
        self.end.finish_in_background(|| source.usage());
    }
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
