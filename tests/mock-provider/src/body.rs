//! Response body: a full buffer, or a list of SSE events that may end in a
//! deliberate error (so hyper aborts the connection mid-body), sent at once or one every
//! so often (`drip-NNN`).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long to wait before failing a cut stream, so that hyper flushes the
/// events sent so far before it tears the connection down.
const CUT_DELAY: Duration = Duration::from_millis(30);

pub enum MockBody {
    Full(Option<Bytes>),
    Events {
        events: std::vec::IntoIter<Bytes>,
        /// Some: fail after the events (a cut stream).
        cut: Option<Pin<Box<tokio::time::Sleep>>>,
        /// Some: wait this long after each event before sending the next (or ending).
        pace: Option<Pace>,
        done: bool,
    },
}

/// The pause between events of a paced body.
pub struct Pace {
    every: Duration,
    /// Running after an event was sent; the next one waits for it.
    wait: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl MockBody {
    pub fn full(b: impl Into<Bytes>) -> Self {
        MockBody::Full(Some(b.into()))
    }

    pub fn events(events: Vec<Bytes>, cut: bool) -> Self {
        MockBody::Events {
            events: events.into_iter(),
            cut: cut.then(|| Box::pin(tokio::time::sleep(CUT_DELAY))),
            pace: None,
            done: false,
        }
    }

    /// Sends the events one every `every` (none: at once). A full body is unchanged.
    pub fn paced(mut self, every: Option<Duration>) -> Self {
        if let MockBody::Events { pace, .. } = &mut self {
            *pace = every.map(|every| Pace { every, wait: None });
        }
        self
    }
}

#[derive(Debug)]
pub struct StreamCut;

impl std::fmt::Display for StreamCut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("mock-provider: stream cut on purpose (cut-stream scenario)")
    }
}

impl std::error::Error for StreamCut {}

impl Body for MockBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            MockBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            MockBody::Events {
                events,
                cut,
                pace,
                done,
            } => {
                if *done {
                    return Poll::Ready(None);
                }
                if let Some(p) = pace.as_mut() {
                    if let Some(wait) = p.wait.as_mut() {
                        if wait.as_mut().poll(cx).is_pending() {
                            return Poll::Pending;
                        }
                        p.wait = None;
                    }
                }
                if let Some(b) = events.next() {
                    if let Some(p) = pace.as_mut() {
                        p.wait = Some(Box::pin(tokio::time::sleep(p.every)));
                    }
                    return Poll::Ready(Some(Ok(Frame::data(b))));
                }
                match cut {
                    None => {
                        *done = true;
                        Poll::Ready(None)
                    }
                    Some(sleep) => match sleep.as_mut().poll(cx) {
                        Poll::Pending => Poll::Pending,
                        Poll::Ready(()) => {
                            *done = true;
                            Poll::Ready(Some(Err(Box::new(StreamCut))))
                        }
                    },
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            MockBody::Full(b) => b.is_none(),
            MockBody::Events { done, .. } => *done,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            MockBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            MockBody::Full(None) => SizeHint::with_exact(0),
            MockBody::Events { .. } => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn data(b: &mut MockBody) -> Bytes {
        b.frame().await.unwrap().unwrap().into_data().unwrap()
    }

    #[tokio::test]
    async fn events_then_clean_end() {
        let mut b = MockBody::events(
            vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")],
            false,
        );
        assert_eq!(b.size_hint().exact(), None, "streamed bodies are chunked");
        assert_eq!(data(&mut b).await, "a");
        assert_eq!(data(&mut b).await, "b");
        assert!(b.frame().await.is_none());
        assert!(b.is_end_stream());
    }

    #[tokio::test]
    async fn cut_body_fails_after_its_events() {
        let mut b = MockBody::events(vec![Bytes::from_static(b"a")], true);
        assert_eq!(data(&mut b).await, "a");
        let err = b.frame().await.unwrap().unwrap_err();
        assert!(err.is::<StreamCut>());
        assert!(b.frame().await.is_none());
    }

    #[tokio::test]
    async fn paced_body_waits_between_events() {
        let every = Duration::from_millis(60);
        let mut b = MockBody::events(
            vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")],
            false,
        )
        .paced(Some(every));
        let start = std::time::Instant::now();
        assert_eq!(data(&mut b).await, "a");
        assert!(start.elapsed() < every, "the first event goes at once");
        assert_eq!(data(&mut b).await, "b");
        assert!(start.elapsed() >= every, "the second waits");
        assert!(b.frame().await.is_none());
        assert!(start.elapsed() >= every * 2, "the end waits too");
    }

    #[tokio::test]
    async fn full_body_has_exact_length() {
        let mut b = MockBody::full(&b"{}"[..]);
        assert_eq!(b.size_hint().exact(), Some(2));
        assert_eq!(data(&mut b).await, "{}");
        assert!(b.frame().await.is_none());
    }
}
