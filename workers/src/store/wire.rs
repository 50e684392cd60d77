//! Plumbing shared by the store's client side (in the Worker) and its Durable Objects: calling a
//! stub, answering a call, SQL value conversions, base64, and time.

use std::fmt::Display;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use tollgate_core::store::StoreError;
use worker::js_sys::{Date, Uint8Array};
use worker::{
    Method, ObjectNamespace, Request, RequestInit, Response, ScheduledTime, SqlStorageValue,
};

/// The largest integer a JS number (and so a value bound to DO SQL) holds exactly.
pub(crate) const MAX_SAFE: u64 = (1 << 53) - 1;

/// Milliseconds since the epoch (`Date.now()`: frozen during CPU work, moves on I/O).
pub(crate) fn now_ms() -> u64 {
    Date::now() as u64
}

pub(crate) fn unavailable(what: &str, e: impl Display) -> StoreError {
    StoreError::Unavailable(format!("{what}: {e}"))
}

/// Sends one request to the object named `name` and returns the body of its 200 answer; any
/// other status is the object's error message.
pub(crate) async fn call(
    ns: &ObjectNamespace,
    name: &str,
    path_and_query: &str,
    body: &[u8],
) -> Result<Vec<u8>, StoreError> {
    let stub = ns
        .id_from_name(name)
        .and_then(|id| id.get_stub())
        .map_err(|e| unavailable("durable object stub", e))?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_body(Some(Uint8Array::from(body).into()));
    let url = format!("https://tollgate-store{path_and_query}");
    let request = Request::new_with_init(&url, &init).map_err(|e| unavailable(&url, e))?;
    let mut response = stub
        .fetch_with_request(request)
        .await
        .map_err(|e| unavailable(path_and_query, e))?;
    let bytes = response
        .bytes()
        .await
        .map_err(|e| unavailable(path_and_query, e))?;
    match response.status_code() {
        200 => Ok(bytes),
        status => Err(StoreError::Unavailable(format!(
            "{path_and_query}: {status} {}",
            String::from_utf8_lossy(&bytes)
        ))),
    }
}

/// A Durable Object's answer: 200 with the bytes, or 500 with the message. Never an `Err`, so the
/// runtime never sees an exception (and never resets the object) for an ordinary failure.
pub(crate) fn reply(result: Result<Vec<u8>, String>) -> worker::Result<Response> {
    match result {
        Ok(bytes) => Response::from_bytes(bytes),
        Err(message) => Response::error(message, 500),
    }
}

/// A query parameter as a number; absent is `None`.
pub(crate) fn query_u64(url: &worker::Url, name: &str) -> Result<Option<u64>, String> {
    match url.query_pairs().find(|(k, _)| k == name) {
        None => Ok(None),
        Some((_, v)) => v
            .parse()
            .map(Some)
            .map_err(|_| format!("query parameter {name} is not a number: {v}")),
    }
}

/// An integer column (SQLite INTEGER arrives as a JS number).
pub(crate) fn sql_int(v: Option<&SqlStorageValue>) -> Result<Option<i64>, String> {
    match v {
        None | Some(SqlStorageValue::Null) => Ok(None),
        Some(SqlStorageValue::Integer(i)) => Ok(Some(*i)),
        Some(SqlStorageValue::Float(f)) if f.fract() == 0.0 && f.abs() <= MAX_SAFE as f64 => {
            Ok(Some(*f as i64))
        }
        Some(other) => Err(format!("expected an integer column, got {other:?}")),
    }
}

/// A number to bind, refused when a JS number could not hold it exactly.
pub(crate) fn sql_num(v: i64) -> Result<SqlStorageValue, String> {
    if v.unsigned_abs() <= MAX_SAFE {
        Ok(SqlStorageValue::Integer(v))
    } else {
        Err(format!(
            "{v} is outside the exact range of the store (±2^53)"
        ))
    }
}

/// An absolute alarm time (an `i64` would be read as an offset).
pub(crate) fn at(ms: u64) -> ScheduledTime {
    ScheduledTime::new(Date::new(&(ms.min(MAX_SAFE) as f64).into()))
}

/// Standard base64 with padding.
pub(crate) fn b64_encode(data: &[u8]) -> String {
    STANDARD.encode(data)
}

/// Decodes what [`b64_encode`] wrote; `None` for anything else (also non-canonical padding
/// bits, which `b64_encode` never writes).
pub(crate) fn b64_decode(text: &str) -> Option<Vec<u8>> {
    STANDARD.decode(text).ok()
}

/// `[u32 LE length][first][rest]`: a key and a value in one binary body.
pub(crate) fn frame_pair(first: &[u8], rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + first.len() + rest.len());
    out.extend_from_slice(&(first.len() as u32).to_le_bytes());
    out.extend_from_slice(first);
    out.extend_from_slice(rest);
    out
}

pub(crate) fn unframe_pair(body: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = u32::from_le_bytes(body.get(..4)?.try_into().ok()?) as usize;
    let end = len.checked_add(4)?;
    Some((body.get(4..end)?, body.get(end..)?))
}

/// Whether the object's database has `table` (reads must not create storage: an object with
/// none costs nothing).
pub(crate) fn table_exists(sql: &worker::SqlStorage, table: &str) -> Result<bool, String> {
    let cursor = sql
        .exec(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
            vec![SqlStorageValue::from(table)],
        )
        .map_err(|e| format!("schema read: {e}"))?;
    Ok(cursor.raw().next().is_some())
}
