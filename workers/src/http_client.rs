//! The `HttpClient` port over the Workers `fetch` API, bodies streamed as they arrive.

use std::time::Duration;

use bytes::Bytes;
use futures_util::future::{select, Either};
use futures_util::StreamExt;
use tollgate_core::ports::{BodyStream, HttpClient, TransportError};
use worker::{AbortController, Fetch, Headers, Method, Request, RequestInit};

pub struct FetchClient;

fn method(m: &http::Method) -> Method {
    Method::from(m.as_str().to_string())
}

#[async_trait::async_trait(?Send)]
impl HttpClient for FetchClient {
    async fn send(
        &self,
        request: http::Request<Bytes>,
        timeout_ms: u64,
    ) -> Result<http::Response<BodyStream>, TransportError> {
        let (parts, body) = request.into_parts();
        let headers = Headers::new();
        for (name, value) in &parts.headers {
            if let Ok(v) = value.to_str() {
                headers
                    .append(name.as_str(), v)
                    .map_err(|e| TransportError::Connect(e.to_string()))?;
            }
        }
        let mut init = RequestInit::new();
        init.with_method(method(&parts.method))
            .with_headers(headers);
        if !body.is_empty() {
            init.with_body(Some(js_sys::Uint8Array::from(body.as_ref()).into()));
        }
        let req = Request::new_with_init(&parts.uri.to_string(), &init)
            .map_err(|e| TransportError::Connect(e.to_string()))?;
        let controller = AbortController::default();
        let signal = controller.signal();
        let fetch = Fetch::Request(req);
        let send = fetch.send_with_signal(&signal);
        let timer = worker::Delay::from(Duration::from_millis(timeout_ms));
        futures_util::pin_mut!(send);
        let mut resp = match select(send, timer).await {
            Either::Left((r, _)) => r.map_err(|e| TransportError::Connect(e.to_string()))?,
            Either::Right(_) => {
                controller.abort();
                return Err(TransportError::Timeout);
            }
        };
        let mut builder = http::Response::builder().status(resp.status_code());
        for (name, value) in resp.headers().entries() {
            builder = builder.header(name, value);
        }
        let body: BodyStream = match resp.stream() {
            Ok(s) => Box::pin(s.map(|chunk| {
                chunk
                    .map(Bytes::from)
                    .map_err(|e| TransportError::Body(e.to_string()))
            })),
            // No body at all (e.g. 204): an empty stream.
            Err(_) => Box::pin(futures_util::stream::empty()),
        };
        builder
            .body(body)
            .map_err(|e| TransportError::Connect(e.to_string()))
    }
}
