//! The Lambda host: function-URL (and API Gateway / ALB) events in, streamed responses out
//! (`InvokeMode: RESPONSE_STREAM`), so SSE reaches the client as it is produced.

use std::sync::Arc;

use bytes::Bytes;
use lambda_http::{service_fn, Body, Error, Request};
use tollgate_core::Gateway;

use crate::response_body::{into_host_response, HostBody};

pub async fn run(gateway: Arc<Gateway>) -> Result<(), String> {
    let handler = service_fn(move |event: Request| {
        let gateway = Arc::clone(&gateway);
        async move {
            Ok::<http::Response<HostBody>, Error>(into_host_response(
                gateway.handle(into_core_request(event)).await,
            ))
        }
    });
    lambda_http::run_with_streaming_response(handler)
        .await
        .map_err(|e| format!("lambda runtime failed: {e}"))
}

/// lambda_http decodes base64 bodies already; only the body type differs from core's.
fn into_core_request(event: Request) -> http::Request<Bytes> {
    let (parts, body) = event.into_parts();
    let bytes = match body {
        Body::Empty => Bytes::new(),
        Body::Text(s) => Bytes::from(s),
        Body::Binary(b) => Bytes::from(b),
        _ => Bytes::new(),
    };
    http::Request::from_parts(parts, bytes)
}
