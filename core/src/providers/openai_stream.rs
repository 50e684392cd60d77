//! Reading a stream in OpenAI's own SSE format (chat chunks or legacy text-completion chunks):
//! parse each event once, lift usage out (the output stage decides whether the client sees it),
//! and notice whether the stream really ended (`[DONE]` or a finish reason).

use std::marker::PhantomData;

use serde::de::DeserializeOwned;

use super::openai_compatible::openai_error;
use super::{StreamChunk, StreamTranslator};
use crate::error::{ErrorKind, GatewayError};
use crate::openai::Usage;
use crate::sse::{SseDecoder, SseEvent};

/// What the reader needs to know of one OpenAI-format chunk type.
pub trait OpenAiFormatChunk: StreamChunk + DeserializeOwned {
    /// The event is `{"error": {...}}` rather than a chunk.
    fn is_error(&self) -> bool;
    fn take_usage(&mut self) -> Option<Usage>;
    fn has_finish_reason(&self) -> bool;
    /// Usage-only chunks have none; they are not forwarded as they are.
    fn has_choices(&self) -> bool;
}

pub struct OpenAiFormatStream<C> {
    decoder: SseDecoder,
    events: Vec<SseEvent>,
    usage: Option<Usage>,
    finished: bool,
    chunk: PhantomData<C>,
}

impl<C> Default for OpenAiFormatStream<C> {
    fn default() -> Self {
        OpenAiFormatStream {
            decoder: SseDecoder::new(),
            events: Vec::new(),
            usage: None,
            finished: false,
            chunk: PhantomData,
        }
    }
}

impl<C: OpenAiFormatChunk> OpenAiFormatStream<C> {
    fn take_events(&mut self, out: &mut Vec<C>) -> Result<(), GatewayError> {
        for ev in self.events.drain(..) {
            let data = ev.data.trim();
            if data == "[DONE]" {
                self.finished = true;
                continue;
            }
            if data.is_empty() {
                continue;
            }
            let mut chunk: C = serde_json::from_str(data).map_err(|e| {
                GatewayError::new(
                    ErrorKind::BadGateway,
                    format!("unreadable stream chunk from the provider: {e}"),
                )
            })?;
            if chunk.is_error() {
                // The status was 200 when the stream began; the kind comes from the message.
                let mut e = openai_error(500, data.as_bytes());
                e.status = None;
                return Err(e);
            }
            if let Some(u) = chunk.take_usage() {
                self.usage = Some(u);
            }
            self.finished |= chunk.has_finish_reason();
            if chunk.has_choices() {
                out.push(chunk);
            }
        }
        Ok(())
    }
}

impl<C: OpenAiFormatChunk + 'static> StreamTranslator for OpenAiFormatStream<C> {
    type Chunk = C;

    fn feed(&mut self, bytes: &[u8], out: &mut Vec<C>) -> Result<(), GatewayError> {
        self.decoder.feed(bytes, &mut self.events);
        self.take_events(out)
    }

    fn finish(&mut self, out: &mut Vec<C>) -> Result<(), GatewayError> {
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
