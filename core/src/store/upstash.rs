//! Upstash Redis over its REST API, from any host: each operation is one HTTPS `POST {url}`
//! whose body is a Redis command as a JSON array (`["EVALSHA", sha, numkeys, key.., arg..]`),
//! sent through the [`HttpClient`] port with `Authorization: Bearer {token}`. Upstash answers
//! `{"result": ..}` (bulk strings as JSON strings, integers as numbers, arrays as arrays, nil
//! as null), or `{"error": ".."}` with HTTP 400 (command failed) / 401 (bad token).
//!
//! The key layout and the Lua scripts are [`redis_protocol`]'s, the same as the native
//! `RedisStore`'s, so every operation is one command or one script and atomic on the server
//! (Upstash runs a script under its global lock by default; the scripts touch keys they
//! compute, so they must not use `allow-key-locking`). On a Global database, plain reads
//! (`get`, `counter_get`, `log_range`) may be served by a read region and lag the primary.
//!
//! **Data format: base64 values.** JSON cannot carry raw bytes, so record values and log data
//! are stored as standard base64 text (`r:{key}` holds base64; a log member is the 36 digits
//! then base64), and decoded on the way back. Counters are plain integers. So an Upstash store
//! and a `RedisStore` (raw bytes) on the same database share counters but not records or logs.
//! Every other argument is UTF-8 text (store keys are `&str`), so replies never need
//! `Upstash-Encoding: base64`.
//!
//! Scripts go as `EVALSHA` (40 bytes instead of up to ~1 KB of Lua per call); on `NOSCRIPT`
//! (first use, or after the server's script cache was flushed) the same call is repeated once
//! as `EVAL`, which also caches the script.
//!
//! Every operation, including a `NOSCRIPT` retry and reading the reply body, is bounded by
//! `op_timeout_ms` (the [`HttpClient`] timeout covers only the headers; the body read is raced
//! against [`Clock::sleep`]). The token never appears in errors or `Debug` output.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bytes::Bytes;
use futures_util::future::{select, Either};
use futures_util::StreamExt;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Method, StatusCode};
use serde_json::Value;

use super::redis_protocol::{self as protocol, ScriptCall, ScriptId};
use super::{BatchOp, BatchOutcome, CapOutcome, Entry, LogEntry, Store, StoreError};
use crate::ports::{BodyStream, Clock, HttpClient, TransportError};

/// Replies larger than this are refused (a listing of huge records would otherwise exhaust a
/// Worker's 128 MB).
const MAX_REPLY_BYTES: usize = 32 * 1024 * 1024;

/// Error messages from the server are cut to this many characters.
const MAX_ERROR_CHARS: usize = 300;

/// The Upstash store. Build one per process (or per Worker isolate) and share it.
pub struct UpstashStore {
    http: Arc<dyn HttpClient>,
    clock: Arc<dyn Clock>,
    url: String,
    /// `Bearer {token}`, marked sensitive; `None` when the token cannot be a header value.
    auth: Option<HeaderValue>,
    /// The token, only to scrub it from error text (never shown).
    token: String,
    op_timeout_ms: u64,
    /// SHA-1 (hex) of each script, indexed by `ScriptId as usize`.
    shas: [String; ScriptId::ALL.len()],
}

impl std::fmt::Debug for UpstashStore {
    /// The URL and timeout only: never the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstashStore")
            .field("url", &self.url)
            .field("op_timeout_ms", &self.op_timeout_ms)
            .finish()
    }
}

/// An error reply from the server.
struct ServerError {
    status: StatusCode,
    message: String,
}

impl UpstashStore {
    /// A store for the database at `url` (`UPSTASH_REDIS_REST_URL`, e.g.
    /// `https://eu1-x.upstash.io`) with `token` (`UPSTASH_REDIS_REST_TOKEN`). Touches nothing
    /// on the network; a bad URL or token shows up as `Unavailable` on every operation.
    pub fn new(
        http: Arc<dyn HttpClient>,
        clock: Arc<dyn Clock>,
        url: impl Into<String>,
        token: impl Into<String>,
        op_timeout_ms: u64,
    ) -> UpstashStore {
        let token = token.into();
        let auth = HeaderValue::from_str(&format!("Bearer {token}"))
            .ok()
            .map(|mut value| {
                value.set_sensitive(true);
                value
            });
        UpstashStore {
            http,
            clock,
            url: url.into(),
            auth,
            token,
            op_timeout_ms,
            shas: ScriptId::ALL.map(|id| sha1_smol::Sha1::from(id.source()).digest().to_string()),
        }
    }

    fn deadline(&self) -> u64 {
        self.clock.now_ms().saturating_add(self.op_timeout_ms)
    }

    /// Runs one command; an error reply comes back as `Ok(Err(..))`.
    async fn command(
        &self,
        command: &[&str],
        deadline: u64,
    ) -> Result<Result<Value, ServerError>, StoreError> {
        let remaining = deadline.saturating_sub(self.clock.now_ms());
        if remaining == 0 {
            return Err(StoreError::Timeout);
        }
        let auth = self.auth.clone().ok_or_else(|| {
            StoreError::Unavailable("upstash: the token is not a valid header value".into())
        })?;
        let body = serde_json::to_vec(command)
            .map_err(|_| StoreError::Unavailable("upstash: cannot encode the command".into()))?;
        let request = http::Request::builder()
            .method(Method::POST)
            .uri(self.url.as_str())
            .header(AUTHORIZATION, auth)
            .header(CONTENT_TYPE, "application/json")
            .body(Bytes::from(body))
            .map_err(|_| StoreError::Unavailable("upstash: invalid REST URL".into()))?;
        let response = self
            .http
            .send(request, remaining)
            .await
            .map_err(|e| self.transport_error(e))?;
        let status = response.status();
        let bytes = self.read_body(response.into_body(), deadline).await?;
        let reply = match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(mut map)) => {
                if let Some(error) = map.remove("error") {
                    let message = match error {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    return Ok(Err(ServerError { status, message }));
                }
                map.remove("result").filter(|_| status.is_success())
            }
            _ => None,
        };
        match reply {
            Some(result) => Ok(Ok(result)),
            None if status.is_success() => {
                Err(StoreError::Corrupt("upstash: unreadable reply".into()))
            }
            None => Err(StoreError::Unavailable(format!("upstash: HTTP {status}"))),
        }
    }

    /// Reads the whole reply body, bounded by the deadline and [`MAX_REPLY_BYTES`].
    async fn read_body(&self, mut body: BodyStream, deadline: u64) -> Result<Vec<u8>, StoreError> {
        let collect = async {
            let mut buf = Vec::new();
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| self.transport_error(e))?;
                if buf.len() + chunk.len() > MAX_REPLY_BYTES {
                    return Err(StoreError::Corrupt("upstash: reply too large".into()));
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(buf)
        };
        let remaining = deadline.saturating_sub(self.clock.now_ms());
        let timer = self.clock.sleep(remaining);
        match select(std::pin::pin!(collect), timer).await {
            Either::Left((read, _)) => read,
            Either::Right(_) => Err(StoreError::Timeout),
        }
    }

    /// Runs a plain command and maps an error reply to a store error.
    async fn query(&self, command: &[&str]) -> Result<Value, StoreError> {
        self.command(command, self.deadline())
            .await?
            .map_err(|e| self.server_error(e))
    }

    /// Runs a script: EVALSHA, then EVAL once if the server does not have it.
    async fn run(&self, call: &ScriptCall<'_>) -> Result<Value, StoreError> {
        let deadline = self.deadline();
        let numkeys = call.keys.len().to_string();
        let mut command = Vec::with_capacity(3 + call.keys.len() + call.args.len());
        command.extend([
            "EVALSHA",
            self.shas[call.script as usize].as_str(),
            &numkeys,
        ]);
        command.extend(call.keys.iter().map(String::as_str));
        for arg in &call.args {
            command.push(std::str::from_utf8(arg).map_err(|_| {
                StoreError::Unavailable("upstash: a script argument is not UTF-8".into())
            })?);
        }
        match self.command(&command, deadline).await? {
            Ok(result) => return Ok(result),
            Err(e) if !e.message.starts_with("NOSCRIPT") => return Err(self.server_error(e)),
            Err(_) => {}
        }
        command[0] = "EVAL";
        command[1] = call.script.source();
        self.command(&command, deadline)
            .await?
            .map_err(|e| self.server_error(e))
    }

    async fn write_record(
        &self,
        key: &str,
        value: &[u8],
        ttl_ms: Option<u64>,
        only_if_absent: bool,
    ) -> Result<bool, StoreError> {
        let encoded = BASE64.encode(value);
        let call = protocol::put_call(
            key,
            encoded.as_bytes(),
            ttl_ms,
            only_if_absent,
            self.clock.now_ms(),
        );
        Ok(int(&self.run(&call).await?)? == 1)
    }

    fn transport_error(&self, e: TransportError) -> StoreError {
        match e {
            TransportError::Timeout => StoreError::Timeout,
            TransportError::Connect(m) | TransportError::Body(m) => {
                StoreError::Unavailable(format!("upstash: {}", self.scrub(&m)))
            }
        }
    }

    fn server_error(&self, e: ServerError) -> StoreError {
        let message = self.scrub(&e.message);
        if protocol::is_data_error(&e.message) {
            StoreError::Corrupt(format!("upstash: {message}"))
        } else if e.status == StatusCode::BAD_REQUEST {
            StoreError::Unavailable(format!("upstash: {message}"))
        } else {
            StoreError::Unavailable(format!("upstash: HTTP {}: {message}", e.status))
        }
    }

    /// Server or transport text fit for an error: cut short, and without the token.
    fn scrub(&self, text: &str) -> String {
        let text: String = text.chars().take(MAX_ERROR_CHARS).collect();
        if self.token.is_empty() {
            text
        } else {
            text.replace(self.token.as_str(), "[token]")
        }
    }
}

/// An integer reply (a number, or a string holding one: counters come back as strings).
fn int(value: &Value) -> Result<i64, StoreError> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| StoreError::Corrupt("upstash: expected an integer".into()))
}

fn string(value: Value) -> Result<String, StoreError> {
    match value {
        Value::String(s) => Ok(s),
        _ => Err(StoreError::Corrupt("upstash: expected a string".into())),
    }
}

fn array(value: Value) -> Result<Vec<Value>, StoreError> {
    match value {
        Value::Array(items) => Ok(items),
        _ => Err(StoreError::Corrupt("upstash: expected an array".into())),
    }
}

fn decode(text: &[u8]) -> Result<Vec<u8>, StoreError> {
    BASE64
        .decode(text)
        .map_err(|_| StoreError::Corrupt("upstash: a stored value is not base64".into()))
}

#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
impl Store for UpstashStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self.query(&["GET", &protocol::record_key(key)]).await? {
            Value::Null => Ok(None),
            value => decode(string(value)?.as_bytes()).map(Some),
        }
    }

    async fn put(&self, key: &str, value: &[u8], ttl_ms: Option<u64>) -> Result<(), StoreError> {
        self.write_record(key, value, ttl_ms, false)
            .await
            .map(|_| ())
    }

    async fn put_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl_ms: Option<u64>,
    ) -> Result<bool, StoreError> {
        self.write_record(key, value, ttl_ms, true).await
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        Ok(int(&self.run(&protocol::delete_call(key)).await?)? > 0)
    }

    async fn list_prefix(&self, prefix: &str, limit: usize) -> Result<Vec<Entry>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let flat = array(self.run(&protocol::list_call(prefix, limit)).await?)?;
        protocol::pairs(flat)
            .into_iter()
            .map(|(key, value)| {
                Ok(Entry {
                    key: string(key)?,
                    value: decode(string(value)?.as_bytes())?,
                })
            })
            .collect()
    }

    async fn counter_add(
        &self,
        key: &str,
        delta: i64,
        ttl_ms: Option<u64>,
    ) -> Result<i64, StoreError> {
        int(&self
            .run(&protocol::counter_add_call(key, delta, ttl_ms))
            .await?)
    }

    async fn counter_add_capped(
        &self,
        key: &str,
        delta: i64,
        ceiling: i64,
        ttl_ms: Option<u64>,
    ) -> Result<CapOutcome, StoreError> {
        let call = protocol::counter_add_capped_call(key, delta, ceiling, ttl_ms);
        match array(self.run(&call).await?)?.as_slice() {
            [added, total] => Ok(protocol::cap_outcome(int(added)?, int(total)?)),
            _ => Err(StoreError::Corrupt(
                "upstash: unexpected capped-add reply".into(),
            )),
        }
    }

    async fn counter_get(&self, key: &str) -> Result<i64, StoreError> {
        match self.query(&["GET", &protocol::counter_key(key)]).await? {
            Value::Null => Ok(0),
            value => int(&value),
        }
    }

    /// One `EVALSHA` of the shared batch script: atomic on the server, like the Redis backend.
    async fn batch(&self, ops: &[BatchOp]) -> Result<BatchOutcome, StoreError> {
        if ops.is_empty() {
            return Ok(BatchOutcome::Applied(Vec::new()));
        }
        let reply = array(self.run(&protocol::batch_call(ops)).await?)?
            .iter()
            .map(int)
            .collect::<Result<Vec<_>, _>>()?;
        protocol::batch_outcome(&reply, ops.len())
            .ok_or_else(|| StoreError::Corrupt("upstash: unexpected batch reply".into()))
    }

    async fn lease_count(&self, key: &str) -> Result<i64, StoreError> {
        int(&self.run(&protocol::lease_count_call(key)).await?)
    }

    async fn log_append(&self, log: &str, at_ms: u64, data: &[u8]) -> Result<(), StoreError> {
        let encoded = BASE64.encode(data);
        let call = protocol::log_append_call(log, at_ms, encoded.as_bytes());
        int(&self.run(&call).await?).map(|_sequence| ())
    }

    async fn log_range(
        &self,
        log: &str,
        from_ms: u64,
        to_ms: u64,
        limit: usize,
    ) -> Result<Vec<LogEntry>, StoreError> {
        if limit == 0 || from_ms >= to_ms {
            return Ok(Vec::new());
        }
        let args = protocol::log_range_args(log, from_ms, to_ms, limit);
        let mut command = vec!["ZRANGEBYSCORE"];
        command.extend(args.iter().map(String::as_str));
        array(self.query(&command).await?)?
            .into_iter()
            .map(|member| {
                let member = string(member)?;
                let (at_ms, data) = protocol::parse_log_member(member.as_bytes())
                    .ok_or_else(|| StoreError::Corrupt("upstash: malformed log entry".into()))?;
                Ok(LogEntry {
                    at_ms,
                    data: decode(data)?,
                })
            })
            .collect()
    }
}

// Unit tests of the reply decoding; the store itself runs the conformance suite against a
// real redis-server behind a REST shim in the native host's tests
// (`lambda/src/store/upstash_tests.rs`).
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_come_as_numbers_or_strings() {
        assert_eq!(int(&Value::from(5)), Ok(5));
        assert_eq!(int(&Value::from("-7")), Ok(-7));
        assert!(matches!(
            int(&Value::from("abc")),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(int(&Value::Null), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn values_are_base64() {
        assert_eq!(decode(b"AP8="), Ok(vec![0, 0xff]));
        assert!(matches!(
            decode(b"not base64!"),
            Err(StoreError::Corrupt(_))
        ));
    }
}
