//! The seams between core and a host runtime. Core never touches a socket, a clock or a
//! thread directly; each host implements these traits with what its runtime offers.

use std::pin::Pin;

use bytes::Bytes;
use futures_core::Stream;

/// `Send` on native hosts, nothing on wasm32, where futures and JS handles are not `Send`.
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSend: Send {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send + ?Sized> MaybeSend for T {}
#[cfg(target_arch = "wasm32")]
pub trait MaybeSend {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSend for T {}

/// `Sync` on native hosts, nothing on wasm32.
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSync: Sync {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Sync + ?Sized> MaybeSync for T {}
#[cfg(target_arch = "wasm32")]
pub trait MaybeSync {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSync for T {}

/// Why an upstream exchange failed below the HTTP level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportError {
    /// No response (headers) within the allowed time.
    Timeout,
    /// Could not connect, or the connection broke.
    Connect(String),
    /// The body stream broke after the headers arrived.
    Body(String),
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransportError::Timeout => write!(f, "upstream timed out"),
            TransportError::Connect(m) => write!(f, "upstream connection failed: {m}"),
            TransportError::Body(m) => write!(f, "upstream body broke: {m}"),
        }
    }
}

/// An upstream response body, delivered as it arrives.
#[cfg(not(target_arch = "wasm32"))]
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, TransportError>> + Send>>;
/// An upstream response body, delivered as it arrives.
#[cfg(target_arch = "wasm32")]
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, TransportError>>>>;

/// Sends one request upstream and hands back the response with its body still streaming.
///
/// Implementations keep one pooled client per process (DESIGN §5: reuse across invocations).
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
pub trait HttpClient: MaybeSend + MaybeSync {
    /// `timeout_ms` bounds the wait for the response headers, not the body: a long stream
    /// is not a timeout.
    async fn send(
        &self,
        request: http::Request<Bytes>,
        timeout_ms: u64,
    ) -> Result<http::Response<BodyStream>, TransportError>;
}

/// Wall-clock time and sleeping, from the host (`std::time::Instant` panics on wasm32).
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
pub trait Clock: MaybeSend + MaybeSync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
    /// Waits `ms` milliseconds (used for retry backoff).
    async fn sleep(&self, ms: u64);
}

/// Work handed to the host to finish after the response has gone: settling a request whose
/// client went away (in-flight counts, usage, spend) must still happen exactly once.
#[cfg(not(target_arch = "wasm32"))]
pub type Task = Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>>;
/// Work handed to the host to finish after the response has gone.
#[cfg(target_arch = "wasm32")]
pub type Task = Pin<Box<dyn std::future::Future<Output = ()> + 'static>>;

/// Request-scoped work that must finish after the response: the host guarantees it runs to
/// completion even though the client has its answer (or has gone).
///
/// - Workers: registered with the request's `ctx.wait_until`, so the isolate is kept alive;
/// - local server: a task tracker that SIGTERM drains before the process exits;
/// - Lambda: core finishes its work before the streamed body ends (the environment freezes
///   after the response), so only a client that leaves early hands work here (a tokio task).
pub trait AfterResponse: MaybeSend + MaybeSync {
    fn defer(&self, task: Task);
}

/// Randomness from the host: the OS on native hosts, `crypto.getRandomValues` on Workers.
/// Core may not ask the OS itself (wasm32 has no OS); ids, virtual keys and each request's
/// routing dice come from here.
pub trait Entropy: MaybeSend + MaybeSync {
    /// Fills `buf` with cryptographically secure random bytes.
    fn fill(&self, buf: &mut [u8]);
}
