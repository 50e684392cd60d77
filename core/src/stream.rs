//! The output side of a streamed response: pulls upstream bytes, runs them through the
//! provider's translator, and frames OpenAI SSE for the client as each piece arrives (nothing
//! is buffered beyond the current network read).
//!
//! Every chunk gets the response's one id, the requested model name and one `created`. A clean
//! upstream end gives the optional usage chunk and `data: [DONE]`; a broken one gives a
//! `data: {"error": ...}` event and no `[DONE]`, so clients cannot mistake it for a full answer.
//!
//! A stream carries the request's [`Ledger`] ([`EndOfStream`]): it is closed exactly once when
//! the stream is over, before the body ends (so a host that freezes after the response, like
//! Lambda, has already done the work), or, when the client drops the stream early, closed as
//! client-gone with its work handed to the host's [`AfterResponse`].

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use futures_core::Stream;

use crate::error::GatewayError;
use crate::ledger::{EndReason, Ledger};
use crate::openai::{ChatChunk, Usage};
use crate::ports::{AfterResponse, BodyStream, Task};
use crate::providers::{StreamChunk, StreamTranslator};
use crate::sse::{data_frame, DONE_FRAME};

/// What a host sends to the client, chunk by chunk.
#[cfg(not(target_arch = "wasm32"))]
pub type ResponseStream = Pin<Box<dyn Stream<Item = Bytes> + Send>>;
/// What a host sends to the client, chunk by chunk.
#[cfg(target_arch = "wasm32")]
pub type ResponseStream = Pin<Box<dyn Stream<Item = Bytes>>>;

impl StreamChunk for ChatChunk {
    fn id(&self) -> &str {
        &self.id
    }

    fn created(&self) -> u64 {
        self.created
    }

    fn stamp(&mut self, id: &str, model: &str, created: u64) {
        id.clone_into(&mut self.id);
        model.clone_into(&mut self.model);
        self.created = created;
        if self.object.is_empty() {
            self.object = "chat.completion.chunk".into();
        }
    }

    fn usage_only(usage: Usage) -> Self {
        ChatChunk::usage_only(usage)
    }

    fn text_len(&self) -> usize {
        self.choices.iter().map(|c| c.delta.text_len()).sum()
    }
}

/// Identity of the response every chunk carries.
pub struct StreamIdentity {
    /// Used when the upstream's first chunk carries no id of its own.
    pub fallback_id: String,
    /// The model name the client asked for.
    pub model: String,
    /// Used when the upstream's first chunk carries no timestamp.
    pub fallback_created: u64,
    pub include_usage: bool,
}

/// An output stream's end: the request's [`Ledger`], closed once when the upstream ends (its
/// subscribers' work polled to completion before the body ends, so a host that freezes after
/// the response has done it), or closed as [`EndReason::ClientGone`] and left to the host's
/// [`AfterResponse`] if the stream is dropped first. Shared by every output format.
#[derive(Default)]
pub struct EndOfStream {
    /// Open until the upstream ends or the stream is dropped.
    ledger: Option<Ledger>,
    /// Finishes the subscribers' work if the stream is dropped while it runs.
    after: Option<Arc<dyn AfterResponse>>,
    /// Running: polled before the body ends.
    settling: Option<Task>,
}

impl EndOfStream {
    pub fn new(ledger: Ledger, after: Arc<dyn AfterResponse>) -> Self {
        EndOfStream {
            ledger: Some(ledger),
            after: Some(after),
            settling: None,
        }
    }

    /// Answer text sent to the client (for the usage estimate of a cut stream).
    pub fn sent_text(&mut self, bytes: usize) {
        if let Some(e) = self.ledger.as_mut().and_then(Ledger::entry) {
            e.output_text_bytes += bytes as u64;
        }
    }

    /// The upstream is over: close the ledger with the usage reported.
    pub fn begin(&mut self, end: EndReason, usage: Option<Usage>) {
        if let Some(mut ledger) = self.ledger.take() {
            if let Some(e) = ledger.entry() {
                e.usage = usage;
            }
            self.settling = ledger.close(end);
        }
    }

    /// Ready once the subscribers' work (if any) is done.
    pub fn poll_settled(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(task) = self.settling.as_mut() {
            if task.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.settling = None;
        }
        Poll::Ready(())
    }

    /// The stream is being dropped: whatever is not done is finished after the response.
    pub fn finish_in_background(&mut self, usage: impl FnOnce() -> Option<Usage>) {
        if let Some(mut ledger) = self.ledger.take() {
            if let Some(e) = ledger.entry() {
                e.usage = usage();
            }
            ledger.close_after_response(EndReason::ClientGone);
        } else if let (Some(task), Some(after)) = (self.settling.take(), self.after.take()) {
            // Dropped while the work was running: let it finish.
            after.defer(task);
        }
    }
}

/// The error a stream ends with when the upstream connection broke mid-body.
pub fn upstream_broke(transport: &crate::ports::TransportError) -> GatewayError {
    let e = crate::providers::stream_cut();
    GatewayError {
        message: format!("{} ({transport})", e.message),
        ..e
    }
}

pub struct SseOutput<C: StreamChunk> {
    upstream: Option<BodyStream>,
    end: EndOfStream,
    translator: Box<dyn StreamTranslator<Chunk = C>>,
    identity: StreamIdentity,
    /// Fixed by the first chunk: (id, created).
    stamped: Option<(String, u64)>,
    /// Frames ready for the client. All frames produced by one upstream read leave together,
    /// as one write, instead of one syscall each.
    ready: BytesMut,
    scratch: Vec<C>,
}

impl<C: StreamChunk + 'static> SseOutput<C> {
    pub fn new(
        upstream: BodyStream,
        translator: Box<dyn StreamTranslator<Chunk = C>>,
        identity: StreamIdentity,
    ) -> Self {
        SseOutput {
            upstream: Some(upstream),
            end: EndOfStream::default(),
            translator,
            identity,
            stamped: None,
            ready: BytesMut::new(),
            scratch: Vec::new(),
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

    fn begin_settling(&mut self, end: EndReason) {
        self.end.begin(end, self.translator.usage());
    }

    fn stamp_and_queue(&mut self) {
        for mut chunk in self.scratch.drain(..) {
            let (id, created) = self.stamped.get_or_insert_with(|| {
                let id = if chunk.id().is_empty() {
                    self.identity.fallback_id.clone()
                } else {
                    chunk.id().to_string()
                };
                let created = if chunk.created() == 0 {
                    self.identity.fallback_created
                } else {
                    chunk.created()
                };
                (id, created)
            });
            chunk.stamp(id, &self.identity.model, *created);
            self.end.sent_text(chunk.text_len());
            let mark = self.ready.len();
            self.ready.put_slice(b"data: ");
            match serde_json::to_writer((&mut self.ready).writer(), &chunk) {
                Ok(()) => self.ready.put_slice(b"\n\n"),
                Err(e) => {
                    self.ready.truncate(mark);
                    let e = GatewayError::new(crate::error::ErrorKind::Api, e.to_string());
                    self.ready.put_slice(&error_frame(&e));
                }
            }
        }
    }

    fn end_cleanly(&mut self) {
        if self.identity.include_usage {
            if let Some(usage) = self.translator.usage() {
                self.scratch.push(C::usage_only(usage));
                self.stamp_and_queue();
            }
        }
        self.ready.put_slice(DONE_FRAME);
        self.upstream = None;
        self.begin_settling(EndReason::Completed);
    }

    fn end_with_error(&mut self, err: &GatewayError) {
        self.stamp_and_queue();
        self.ready.put_slice(&error_frame(err));
        self.upstream = None;
        self.begin_settling(EndReason::UpstreamBroke);
    }
}

/// `data: {"error": {...}}`, the event OpenAI's SDKs raise as an APIError.
pub fn error_frame(err: &GatewayError) -> Bytes {
    data_frame(err.to_json().to_string().as_bytes())
}

impl<C: StreamChunk + 'static> Stream for SseOutput<C> {
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
                    match this.translator.feed(bytes.as_ref(), &mut this.scratch) {
                        Ok(()) => this.stamp_and_queue(),
                        Err(e) => this.end_with_error(&e),
                    }
                }
                Poll::Ready(Some(Err(transport))) => {
                    this.end_with_error(&upstream_broke(&transport));
                }
                Poll::Ready(None) => match this.translator.finish(&mut this.scratch) {
                    Ok(()) => {
                        this.stamp_and_queue();
                        this.end_cleanly();
                    }
                    Err(e) => this.end_with_error(&e),
                },
            }
        }
    }
}

impl<C: StreamChunk> Drop for SseOutput<C> {
    /// The client left before the end: the bookkeeping still happens, in the background.
    fn drop(&mut self) {
        let translator = &self.translator;
        self.end.finish_in_background(|| translator.usage());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::TransportError;
    use crate::providers::openai_compatible::OpenAiChatStream;
    use futures_util::StreamExt;

    const CHUNK: &str = "data: {\"id\":\"up-1\",\"object\":\"chat.completion.chunk\",\"created\":9,\"model\":\"gpt-4o-2024\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n";
    const END: &str = "data: {\"id\":\"up-1\",\"created\":9,\"model\":\"x\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: {\"id\":\"up-1\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"total_tokens\":4}}\n\ndata: [DONE]\n\n";

    fn run(parts: Vec<Result<&'static str, TransportError>>, include_usage: bool) -> String {
        let upstream: BodyStream =
            Box::pin(futures_util::stream::iter(parts.into_iter().map(|p| {
                p.map(|s: &'static str| Bytes::from_static(s.as_bytes()))
            })));
        let out = SseOutput::new(
            upstream,
            Box::new(OpenAiChatStream::default()),
            StreamIdentity {
                fallback_id: "chatcmpl-x".into(),
                model: "my-group".into(),
                fallback_created: 1,
                include_usage,
            },
        );
        let frames: Vec<Bytes> = futures_executor::block_on(out.collect());
        frames
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect()
    }

    #[test]
    fn clean_stream_is_restamped_and_closed() {
        let s = run(vec![Ok(CHUNK), Ok(END)], true);
        assert!(s.contains("\"model\":\"my-group\""));
        assert!(!s.contains("gpt-4o-2024"));
        assert!(s.contains("\"id\":\"up-1\""));
        assert!(s.contains("\"total_tokens\":4"));
        assert!(s.ends_with("data: [DONE]\n\n"));
    }

    #[test]
    fn usage_is_only_sent_when_asked() {
        let s = run(vec![Ok(CHUNK), Ok(END)], false);
        assert!(!s.contains("usage"));
        assert!(s.ends_with("data: [DONE]\n\n"));
    }

    #[test]
    fn broken_upstream_gives_error_event_and_no_done() {
        let s = run(
            vec![Ok(CHUNK), Err(TransportError::Body("reset".into()))],
            true,
        );
        assert!(s.contains("\"content\":\"Hi\""));
        assert!(s.contains("data: {\"error\""));
        assert!(s.contains("stream_interrupted"));
        assert!(!s.contains("[DONE]"));
    }

    #[test]
    fn upstream_ending_early_is_an_error_too() {
        let s = run(vec![Ok(CHUNK)], false);
        assert!(s.contains("data: {\"error\""));
        assert!(!s.contains("[DONE]"));
    }
}
