//! Talking to an upstream within its deadlines: the call (headers within `timeout`), a
//! stream's first bytes (within `stream_timeout`), and, once a stream runs, an idle deadline
//! between its chunks, so a stalled provider cannot hold a request (and its slots) for ever.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use futures_util::future::{select, Either};
use futures_util::StreamExt;
use http::header;

use super::Gateway;
use crate::deployment::Deployment;
use crate::error::GatewayError;
use crate::ports::{BodyStream, Clock, Task, TransportError};
use crate::providers::{ProviderApi, SendContext};

/// An upstream error body longer than this is cut: it is only read for its message.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// How long a running stream may go without a byte when the deployment sets no
/// `stream_timeout`: long enough for a model that thinks before it speaks (providers send
/// keep-alive pings meanwhile), short enough that a dead upstream is let go.
pub(super) const DEFAULT_STREAM_IDLE_MS: u64 = 120_000;

/// The idle deadline between a stream's chunks for `d`: its `stream_timeout`, else the default
/// (never longer than its whole-call `timeout`).
pub(super) fn stream_idle_ms(d: &Deployment) -> u64 {
    d.stream_timeout_ms
        .unwrap_or(DEFAULT_STREAM_IDLE_MS.min(d.timeout_ms))
}

impl Gateway {
    /// Sends `request` (or lets an in-process provider answer it), waiting at most
    /// `timeout_ms` for the response headers, and turns a non-2xx answer into the provider's
    /// error, with its status and `retry-after` kept.
    pub(super) async fn call_within(
        &self,
        api: &dyn ProviderApi,
        request: http::Request<Bytes>,
        d: &Deployment,
        timeout_ms: u64,
    ) -> Result<BodyStream, GatewayError> {
        let response = match api.answer_locally(&request) {
            Some(r) => r,
            None => {
                let ctx = SendContext {
                    clock: self.clock.as_ref(),
                    http: self.http.as_ref(),
                };
                let request = api.authorize(request, d, &ctx).await?;
                self.http.send(request, timeout_ms).await?
            }
        };
        let status = response.status();
        if status.is_success() {
            return Ok(response.into_body());
        }
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = read_all(response.into_body(), MAX_ERROR_BODY)
            .await
            .unwrap_or_default();
        let mut err = api.error(status.as_u16(), &body);
        err.retry_after = retry_after.map(Into::into);
        Err(err)
    }
}

/// `http::Request` is not `Clone`; the body is shared, not copied.
pub(super) fn copy_request(req: &http::Request<Bytes>) -> http::Request<Bytes> {
    let mut copy = http::Request::new(req.body().clone());
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.headers_mut() = req.headers().clone();
    copy
}

/// Collects a body, up to `limit` bytes.
pub(crate) async fn read_all(mut body: BodyStream, limit: usize) -> Result<Bytes, GatewayError> {
    let mut buf = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        let room = limit.saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if buf.len() >= limit {
            break;
        }
    }
    Ok(buf.freeze())
}

/// `fut`'s output, or `None` when `ms` pass first.
pub(super) async fn within<F: Future>(clock: &dyn Clock, ms: u64, fut: F) -> Option<F::Output> {
    let fut = std::pin::pin!(fut);
    match select(fut, clock.sleep(ms)).await {
        Either::Left((out, _)) => Some(out),
        Either::Right(_) => None,
    }
}

/// Waits for the body's first bytes and gives back the whole body, those bytes included. An
/// empty body is returned as is (the translator reports it as cut).
pub(super) async fn first_bytes(mut body: BodyStream) -> Result<BodyStream, TransportError> {
    match body.next().await {
        None => Ok(Box::pin(futures_util::stream::empty())),
        Some(Err(e)) => Err(e),
        Some(Ok(first)) => Ok(Box::pin(
            futures_util::stream::once(async move { Ok(first) }).chain(body),
        )),
    }
}

/// A stream body that fails when no bytes arrive for `idle_ms`: the output stage then ends
/// the stream with an error event, and the ledger settles it as broken.
///
/// The timer is armed once and re-armed only when it fires after chunks came (for the time
/// left since the last one), so a fast stream costs no timer per chunk. A timer that fires
/// with no chunk since it was armed ends the stream, whatever the clock says.
pub(super) struct IdleDeadline {
    body: BodyStream,
    clock: Arc<dyn Clock>,
    idle_ms: u64,
    last_chunk_ms: u64,
    chunk_since_armed: bool,
    timer: Option<Task>,
    expired: bool,
}

impl IdleDeadline {
    pub(super) fn wrap(body: BodyStream, clock: Arc<dyn Clock>, idle_ms: u64) -> BodyStream {
        let now = clock.now_ms();
        Box::pin(IdleDeadline {
            body,
            clock,
            idle_ms,
            last_chunk_ms: now,
            chunk_since_armed: false,
            timer: None,
            expired: false,
        })
    }

    fn arm(&mut self, ms: u64) {
        let clock = Arc::clone(&self.clock);
        self.chunk_since_armed = false;
        self.timer = Some(Box::pin(async move { clock.sleep(ms).await }));
    }

    fn expire(&mut self) -> Poll<Option<Result<Bytes, TransportError>>> {
        self.expired = true;
        self.timer = None;
        Poll::Ready(Some(Err(TransportError::Body(format!(
            "no data from the upstream for {} s",
            self.idle_ms / 1000
        )))))
    }
}

impl Stream for IdleDeadline {
    type Item = Result<Bytes, TransportError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.expired {
            return Poll::Ready(None);
        }
        if let Poll::Ready(item) = this.body.as_mut().poll_next(cx) {
            this.last_chunk_ms = this.clock.now_ms();
            this.chunk_since_armed = true;
            return Poll::Ready(item);
        }
        loop {
            let Some(timer) = this.timer.as_mut() else {
                this.arm(this.idle_ms);
                continue;
            };
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if !this.chunk_since_armed {
                return this.expire();
            }
            // Chunks came while it ran: wait what is left since the last one.
            let quiet = this.clock.now_ms().saturating_sub(this.last_chunk_ms);
            match this.idle_ms.checked_sub(quiet).filter(|left| *left > 0) {
                Some(left) => this.arm(left),
                None => return this.expire(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    /// A clock whose sleeps advance it (and return at once).
    #[derive(Default)]
    struct Jumping(AtomicU64);

    #[async_trait::async_trait]
    impl Clock for Jumping {
        fn now_ms(&self) -> u64 {
            self.0.load(Ordering::SeqCst)
        }
        async fn sleep(&self, ms: u64) {
            self.0.fetch_add(ms, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_stalled_stream_fails_after_its_idle_deadline() {
        let body: BodyStream = Box::pin(
            futures_util::stream::iter([Ok(Bytes::from_static(b"data: x\n\n"))])
                .chain(futures_util::stream::pending()),
        );
        let clock = Arc::new(Jumping::default());
        let mut s = IdleDeadline::wrap(body, clock.clone(), 5_000);
        let items: Vec<_> = futures_executor::block_on(async {
            let mut v = Vec::new();
            while let Some(i) = s.next().await {
                v.push(i);
            }
            v
        });
        assert_eq!(items.len(), 2);
        assert!(items[0].is_ok());
        assert!(matches!(&items[1], Err(TransportError::Body(m)) if m.contains("5 s")));
        assert_eq!(clock.now_ms(), 5_000, "waited exactly the deadline");
    }

    #[test]
    fn a_flowing_stream_is_untouched() {
        let parts: Vec<Result<Bytes, TransportError>> =
            (0..50).map(|_| Ok(Bytes::from_static(b"x"))).collect();
        let body: BodyStream = Box::pin(futures_util::stream::iter(parts));
        let s = IdleDeadline::wrap(body, Arc::new(Jumping::default()), 1);
        let items: Vec<_> = futures_executor::block_on(s.collect::<Vec<_>>());
        assert_eq!(items.len(), 50);
        assert!(items.iter().all(Result::is_ok));
    }
}
