//! The `HttpClient` port over reqwest: one pooled client per process, bodies streamed.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use tollgate_core::ports::{BodyStream, HttpClient, TransportError};

pub struct ReqwestClient {
    client: reqwest::Client,
}

impl ReqwestClient {
    pub fn new() -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            // Below the 60 s idle timeout of common load balancers (AWS ALB, nginx 75 s), so
            // a pooled connection is dropped here before the far end closes it under a request.
            .pool_idle_timeout(Duration::from_secs(50))
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        Ok(ReqwestClient { client })
    }
}

/// reqwest errors name the URL, and some providers put keys in query strings: drop it.
fn describe(e: reqwest::Error) -> String {
    e.without_url().to_string()
}

#[async_trait]
impl HttpClient for ReqwestClient {
    async fn send(
        &self,
        request: http::Request<Bytes>,
        timeout_ms: u64,
    ) -> Result<http::Response<BodyStream>, TransportError> {
        let (parts, body) = request.into_parts();
        let send = self
            .client
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .body(body)
            .send();
        let response = tokio::time::timeout(Duration::from_millis(timeout_ms), send)
            .await
            .map_err(|_| TransportError::Timeout)?
            .map_err(|e| {
                if e.is_timeout() {
                    TransportError::Timeout
                } else {
                    TransportError::Connect(describe(e))
                }
            })?;
        let mut builder = http::Response::builder().status(response.status());
        if let Some(h) = builder.headers_mut() {
            *h = response.headers().clone();
        }
        let body: BodyStream = Box::pin(
            response
                .bytes_stream()
                .map(|r| r.map_err(|e| TransportError::Body(describe(e)))),
        );
        builder
            .body(body)
            .map_err(|e| TransportError::Connect(e.to_string()))
    }
}
