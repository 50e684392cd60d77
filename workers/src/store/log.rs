//! Logs: one SQLite-backed Durable Object per log name ([`TollgateLog`], binding
//! `TOLLGATE_LOGS`), a table `(seq, at_ms, data)` indexed by `(at_ms, seq)`.
//!
//! Consistency: strong (one object per log; every append is confirmed before it returns, and a
//! range read sees every append confirmed before it). Ordered by `at_ms`, then append order.
//! Entries are kept until deleted by other means (no retention here). One object serializes all
//! appends to a log, so a very hot log is best split by the caller (e.g. per day or per team).
//!
//! Wire: append is `POST /append?at=N` with the raw entry as the body; a range answers
//! `[u64 LE at_ms][u32 LE len][data]` repeated.

use tollgate_core::store::{LogEntry, StoreError};
use worker::{durable_object, DurableObject, Env, Request, Response, SqlStorageValue, State};

use super::wire::{self, query_u64, sql_int, MAX_SAFE};

pub(crate) async fn append(
    ns: &worker::ObjectNamespace,
    log: &str,
    at_ms: u64,
    data: &[u8],
) -> Result<(), StoreError> {
    wire::call(ns, log, &format!("/append?at={at_ms}"), data).await?;
    Ok(())
}

pub(crate) async fn range(
    ns: &worker::ObjectNamespace,
    log: &str,
    from_ms: u64,
    to_ms: u64,
    limit: usize,
) -> Result<Vec<LogEntry>, StoreError> {
    let path = format!("/range?from={from_ms}&to={to_ms}&limit={limit}");
    let body = wire::call(ns, log, &path, &[]).await?;
    decode(&body).ok_or_else(|| StoreError::Corrupt("log range answer".into()))
}

fn encode(entries: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let size = entries.iter().map(|(_, d)| 12 + d.len()).sum();
    let mut out = Vec::with_capacity(size);
    for (at, data) in entries {
        out.extend_from_slice(&at.to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
    }
    out
}

fn decode(mut body: &[u8]) -> Option<Vec<LogEntry>> {
    let mut entries = Vec::new();
    while !body.is_empty() {
        let at_ms = u64::from_le_bytes(body.get(..8)?.try_into().ok()?);
        let len = u32::from_le_bytes(body.get(8..12)?.try_into().ok()?) as usize;
        let end = len.checked_add(12)?;
        let data = body.get(12..end)?.to_vec();
        entries.push(LogEntry { at_ms, data });
        body = body.get(end..)?;
    }
    Some(entries)
}

#[durable_object(fetch)]
pub struct TollgateLog {
    state: State,
}

impl TollgateLog {
    fn append(&self, at_ms: u64, data: Vec<u8>) -> Result<Vec<u8>, String> {
        if at_ms > MAX_SAFE {
            return Err(format!("at_ms {at_ms} is past 2^53"));
        }
        let sql = self.state.storage().sql();
        sql.exec(
            "CREATE TABLE IF NOT EXISTS log (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                at_ms INTEGER NOT NULL,
                data BLOB
            )",
            None,
        )
        .and_then(|_| {
            sql.exec(
                "CREATE INDEX IF NOT EXISTS log_at ON log (at_ms, seq)",
                None,
            )
        })
        .map_err(|e| format!("log schema: {e}"))?;
        sql.exec(
            "INSERT INTO log (at_ms, data) VALUES (?, ?)",
            vec![
                SqlStorageValue::Integer(at_ms as i64),
                SqlStorageValue::Blob(data),
            ],
        )
        .map_err(|e| format!("log append: {e}"))?;
        Ok(Vec::new())
    }

    fn range(&self, from_ms: u64, to_ms: u64, limit: u64) -> Result<Vec<u8>, String> {
        let sql = self.state.storage().sql();
        // `at_ms < to` is `at_ms <= to - 1`; bounds past 2^53 hold no entries (see append).
        if to_ms == 0 || from_ms > MAX_SAFE || limit == 0 || !wire::table_exists(&sql, "log")? {
            return Ok(Vec::new());
        }
        let last = (to_ms - 1).min(MAX_SAFE);
        let cursor = sql
            .exec(
                "SELECT at_ms, data FROM log WHERE at_ms >= ? AND at_ms <= ?
                 ORDER BY at_ms, seq LIMIT ?",
                vec![
                    SqlStorageValue::Integer(from_ms as i64),
                    SqlStorageValue::Integer(last as i64),
                    SqlStorageValue::Integer(limit.min(MAX_SAFE) as i64),
                ],
            )
            .map_err(|e| format!("log range: {e}"))?;
        let mut entries = Vec::new();
        for row in cursor.raw() {
            let row = row.map_err(|e| format!("log range: {e}"))?;
            let at = sql_int(row.first())?.ok_or("log row without at_ms")?;
            let data = match row.get(1) {
                Some(SqlStorageValue::Blob(b)) => b.clone(),
                None | Some(SqlStorageValue::Null) => Vec::new(),
                Some(other) => return Err(format!("log data is not a blob: {other:?}")),
            };
            entries.push((at.max(0) as u64, data));
        }
        Ok(encode(&entries))
    }

    async fn handle(&self, req: &mut Request) -> Result<Vec<u8>, String> {
        let url = req.url().map_err(|e| e.to_string())?;
        match url.path() {
            "/append" => {
                let at = query_u64(&url, "at")?.ok_or("append without at")?;
                let data = req.bytes().await.map_err(|e| format!("log body: {e}"))?;
                self.append(at, data)
            }
            "/range" => self.range(
                query_u64(&url, "from")?.unwrap_or(0),
                query_u64(&url, "to")?.unwrap_or(u64::MAX),
                query_u64(&url, "limit")?.unwrap_or(u64::MAX),
            ),
            other => Err(format!("no log operation {other}")),
        }
    }
}

impl DurableObject for TollgateLog {
    fn new(state: State, _env: Env) -> Self {
        TollgateLog { state }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let result = self.handle(&mut req).await;
        wire::reply(result)
    }
}
