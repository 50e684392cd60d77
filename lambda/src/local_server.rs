//! The plain HTTP server (quick start and self-hosting): hyper, HTTP/1.1 with keep-alive.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tollgate_core::error::{ErrorKind, GatewayError};
use tollgate_core::gateway::error_response;
use tollgate_core::Gateway;

use crate::response_body::{into_host_response, HostBody};

/// Request bodies above this are refused (images in base64 make chat bodies large).
const MAX_REQUEST_BYTES: usize = 32 * 1024 * 1024;

pub async fn run(gateway: Arc<Gateway>, host: &str, port: u16) -> Result<(), String> {
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
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
            _ = &mut shutdown => {
                tracing::info!("shutting down");
                return Ok(());
            }
        };
        let _ = stream.set_nodelay(true);
        let gateway = Arc::clone(&gateway);
        tokio::spawn(async move {
            let service = service_fn(move |req| serve(Arc::clone(&gateway), req));
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
}

async fn serve(
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

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
