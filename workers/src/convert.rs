//! Workers request/response ⇄ core's `http` types.

use bytes::Bytes;
use futures_util::StreamExt;
use tollgate_core::error::GatewayError;
use tollgate_core::{GatewayResponse, ResponseBody};
use worker::{Headers, Request, Response};

pub async fn into_core_request(mut req: Request) -> Result<http::Request<Bytes>, GatewayError> {
    let url = req
        .url()
        .map_err(|e| GatewayError::invalid_request(format!("bad URL: {e}")))?;
    let path_and_query = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let mut builder = http::Request::builder()
        .method(req.method().as_ref())
        .uri(path_and_query);
    for (name, value) in req.headers().entries() {
        builder = builder.header(name, value);
    }
    let body = req
        .bytes()
        .await
        .map_err(|e| GatewayError::invalid_request(format!("cannot read the request body: {e}")))?;
    builder
        .body(Bytes::from(body))
        .map_err(|e| GatewayError::invalid_request(format!("bad request: {e}")))
}

pub fn into_worker_response(resp: GatewayResponse) -> worker::Result<Response> {
    let (parts, body) = resp.into_parts();
    let headers = Headers::new();
    for (name, value) in &parts.headers {
        if let Ok(v) = value.to_str() {
            headers.append(name.as_str(), v)?;
        }
    }
    let response = match body {
        ResponseBody::Full(bytes) => Response::from_bytes(bytes.to_vec())?,
        ResponseBody::Stream(stream) => {
            Response::from_stream(stream.map(|b| Ok::<Vec<u8>, worker::Error>(b.to_vec())))?
        }
    };
    Ok(response
        .with_status(parts.status.as_u16())
        .with_headers(headers))
}
