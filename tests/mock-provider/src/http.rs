//! Request and response helpers shared by every provider format.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use hyper::header::{HeaderValue, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use hyper::{HeaderMap, Response, StatusCode};

use crate::body::MockBody;
use crate::logic::Scenario;

pub type Resp = Response<MockBody>;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A process-unique number for response ids.
pub fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// The token of an `authorization: Bearer <token>` header, when it is not blank.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|k| !k.is_empty())
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

pub fn json(code: u16, body: Vec<u8>) -> Resp {
    let mut r = Response::new(MockBody::full(body));
    *r.status_mut() = status(code);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if code == 429 {
        r.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    }
    if r.status().canonical_reason().is_none() {
        // hyper would print "<none>"; real providers send a phrase (529: Anthropic).
        let phrase: &'static [u8] = if code == 529 {
            b"Site Overloaded"
        } else {
            b"Unknown"
        };
        r.extensions_mut()
            .insert(hyper::ext::ReasonPhrase::from_static(phrase));
    }
    r
}

/// A streamed body as the scenario asks: cut after its events (`cut-stream`), paced
/// (`drip-NNN`).
pub fn stream_body(events: Vec<Bytes>, sc: &Scenario) -> MockBody {
    MockBody::events(events, sc.cut_stream).paced(sc.drip())
}

pub fn sse(events: Vec<Bytes>, sc: &Scenario) -> Resp {
    let mut r = Response::new(stream_body(events, sc));
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// Newline-delimited JSON (Ollama's streams).
pub fn ndjson(lines: Vec<Bytes>, sc: &Scenario) -> Resp {
    let mut r = Response::new(stream_body(lines, sc));
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    r
}
