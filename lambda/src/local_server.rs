//! The plain HTTP server (quick start and self-hosting): hyper, HTTP/1.1 with keep-alive, and a
//! graceful shutdown that loses no request's bookkeeping.
//!
//! On SIGTERM / Ctrl-C: the listener closes at once (new connections are refused); open
//! requests, streams included, may finish within the grace bound while idle keep-alive
//! connections close cleanly (hyper's graceful shutdown); connections still open at the bound
//! (or at a second signal) are dropped, which hands their streams' settlement to the after-response tracker; then every
//! pending after-response task runs to completion (bounded too), and `run` returns.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tollgate_core::error::{ErrorKind, GatewayError};
use tollgate_core::gateway::error_response;
use tollgate_core::Gateway;

use crate::after_response::TrackedAfterResponse;
use crate::response_body::{into_host_response, HostBody};
use crate::shutdown::{self, Bounds};

/// Request bodies above this are refused (images in base64 make chat bodies large).
const MAX_REQUEST_BYTES: usize = 32 * 1024 * 1024;

/// Serves on `host:port` until SIGTERM or Ctrl-C, then shuts down gracefully within `bounds`.
/// `after` must be the tracker the gateway's `Ports` defer to.
pub async fn run(
    gateway: Arc<Gateway>,
    host: &str,
    port: u16,
    after: &TrackedAfterResponse,
    bounds: Bounds,
) -> Result<(), String> {
    let addr: SocketAddr = format!("{host}:{port}")
        .parse()
        .or_else(|_| format!("[{host}]:{port}").parse())
        .map_err(|_| format!("cannot listen on {host}:{port}: not an IP address"))?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    // Scripts wait for this line to know the server is ready (and which port it got).
    println!("Tollgate listening on http://{bound}");
    tracing::info!(%bound, "listening");
    serve(listener, gateway, after, bounds, shutdown::signal).await;
    Ok(())
}

/// Accepts connections until a `stop()` future resolves, then drains: see the module docs. A
/// second `stop()` during the grace period ends it early (once the process handles SIGINT,
/// Ctrl-C no longer kills it, so a second Ctrl-C must mean "now").
pub async fn serve<F: Future<Output = ()>>(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    after: &TrackedAfterResponse,
    bounds: Bounds,
    stop: impl Fn() -> F,
) {
    let graceful = GracefulShutdown::new();
    // Every connection's task, so the ones still open at the grace bound can be dropped.
    let mut connections = JoinSet::new();
    let first = stop();
    tokio::pin!(first);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = &mut first => break,
        };
        while connections.try_join_next().is_some() {}
        let _ = stream.set_nodelay(true);
        let gateway = Arc::clone(&gateway);
        let service = service_fn(move |req| handle(Arc::clone(&gateway), req));
        let connection =
            graceful.watch(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
        connections.spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    // Refuse new connections from now on.
    drop(listener);
    while connections.try_join_next().is_some() {}
    tracing::info!(
        open_connections = connections.len(),
        grace_secs = bounds.grace.as_secs(),
        "shutting down: finishing open requests"
    );
    tokio::select! {
        drained = tokio::time::timeout(bounds.grace, graceful.shutdown()) => {
            if drained.is_err() {
                tracing::warn!(
                    open_connections = connections.len(),
                    "grace period over: dropping the connections still open (their streams settle in the background)"
                );
            }
        }
        () = stop() => tracing::warn!(
            open_connections = connections.len(),
            "second stop signal: dropping the connections still open (their streams settle in the background)"
        ),
    }
    // Aborts what is left and waits until each connection, and so its stream, is dropped:
    // only then has every settlement been handed to `after`.
    connections.shutdown().await;
    let pending = after.pending();
    let left = after.drain(bounds.settle).await;
    if left == 0 {
        tracing::info!(settled = pending, "shut down: all after-response work done");
    } else {
        tracing::warn!(
            unfinished = left,
            settle_secs = bounds.settle.as_secs(),
            "shut down with after-response work unfinished at the bound"
        );
    }
}

async fn handle(
    gateway: Arc<Gateway>,
    req: http::Request<Incoming>,
) -> Result<http::Response<HostBody>, std::convert::Infallible> {
    let (parts, body) = req.into_parts();
    let bytes: Bytes = match Limited::new(body, MAX_REQUEST_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            let e = GatewayError::new(
                ErrorKind::InvalidRequest,
                "The request body is too large or was cut off.",
            )
            .with_status(413);
            return Ok(into_host_response(error_response(&e)));
        }
    };
    let response = gateway
        .handle(http::Request::from_parts(parts, bytes))
        .await;
    Ok(into_host_response(response))
}
