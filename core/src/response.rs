//! What core answers with: a response whose body is complete or streamed, its builders, and
//! the one place a [`GatewayError`] becomes an HTTP response. A leaf module: the gateway and
//! the ingress formats (`anthropic_ingress`) both build on it.

use bytes::Bytes;
use http::{header, StatusCode};

use crate::error::GatewayError;
use crate::stream::ResponseStream;

/// A response body: complete, or streamed as it is produced.
pub enum ResponseBody {
    Full(Bytes),
    Stream(ResponseStream),
}

impl std::fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResponseBody::Full(b) => write!(f, "Full({} bytes)", b.len()),
            ResponseBody::Stream(_) => f.write_str("Stream"),
        }
    }
}

pub type GatewayResponse = http::Response<ResponseBody>;

pub fn json_response<T: serde::Serialize>(status: StatusCode, body: &T) -> GatewayResponse {
    let bytes = serde_json::to_vec(body)
        .map(Bytes::from)
        .unwrap_or_else(|_| Bytes::from_static(b"{}"));
    full_json(status, bytes)
}

/// A JSON body already serialised.
pub fn full_json(status: StatusCode, bytes: Bytes) -> GatewayResponse {
    http::Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(ResponseBody::Full(bytes))
        .expect("static headers are valid")
}

pub fn sse_response(stream: ResponseStream) -> GatewayResponse {
    http::Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(ResponseBody::Stream(stream))
        .expect("static headers are valid")
}

/// The one place a [`GatewayError`] becomes an HTTP response.
pub fn error_response(e: &GatewayError) -> GatewayResponse {
    let mut resp = json_response(e.status(), &e.to_json());
    if let Some(v) = e
        .retry_after
        .as_deref()
        .and_then(|v| http::HeaderValue::from_str(v).ok())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}
