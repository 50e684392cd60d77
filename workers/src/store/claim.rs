//! Claims (`put_if_absent`) and deletes of KV records, decided by one SQLite-backed Durable Object
//! per record key ([`TollgateClaim`], binding `TOLLGATE_CLAIMS`).
//!
//! KV has no compare-and-set, so the object for a key decides: inside `blockConcurrencyWhile`
//! (no other event reaches the object until it finishes, KV I/O included) it checks, reads KV,
//! writes KV and answers. Two claims of one key anywhere are therefore serialized, and exactly
//! one wins. Deletes go through the same object so a released key can be claimed again at once.
//!
//! The object remembers what it wrote (a marker `until`) for [`TRUST_MS`], KV's propagation
//! time, so its decisions do not depend on KV echoing its own recent writes. After that it asks
//! KV, which by then has converged. A plain `put` does not pass through this object; a claim
//! racing a plain `put` of the same key from another location can therefore still win within
//! KV's ~60 s window (don't mix the two on one key where that matters).

use tollgate_core::store::StoreError;
use worker::kv::KvStore;
use worker::{durable_object, DurableObject, Env, Request, Response, SqlStorage, State};

use super::records;
use super::wire::{self, frame_pair, query_u64, sql_int, unframe_pair};
use super::BINDING_KV;

/// How long the object trusts its own record of a write over KV.
const TRUST_MS: u64 = 60_000;

/// Claims `key` for `value`: `true` when this call wrote it.
pub(crate) async fn claim(
    ns: &worker::ObjectNamespace,
    key: &str,
    value: &[u8],
    ttl_ms: Option<u64>,
) -> Result<bool, StoreError> {
    let path = match ttl_ms {
        Some(t) => format!("/claim?ttl={t}"),
        None => "/claim".to_string(),
    };
    let answer = wire::call(ns, key, &path, &frame_pair(key.as_bytes(), value)).await?;
    yes_no(&answer)
}

/// Deletes `key`: `true` when a live record was removed.
pub(crate) async fn delete(ns: &worker::ObjectNamespace, key: &str) -> Result<bool, StoreError> {
    let answer = wire::call(ns, key, "/delete", &frame_pair(key.as_bytes(), &[])).await?;
    yes_no(&answer)
}

fn yes_no(answer: &[u8]) -> Result<bool, StoreError> {
    match answer {
        b"1" => Ok(true),
        b"0" => Ok(false),
        other => Err(StoreError::Corrupt(format!(
            "claim answer {:?}",
            String::from_utf8_lossy(other)
        ))),
    }
}

#[durable_object(alarm)]
pub struct TollgateClaim {
    state: State,
    env: Env,
}

enum Op {
    Claim { value: Vec<u8>, ttl_ms: Option<u64> },
    Delete,
}

impl TollgateClaim {
    /// The marker's end, if one is stored. Creates nothing.
    fn marker(sql: &SqlStorage) -> Result<Option<u64>, String> {
        if !wire::table_exists(sql, "marker")? {
            return Ok(None);
        }
        let cursor = sql
            .exec("SELECT until_ms FROM marker WHERE id = 1", None)
            .map_err(|e| format!("claim read: {e}"))?;
        match cursor.raw().next() {
            None => Ok(None),
            Some(row) => {
                let row = row.map_err(|e| format!("claim read: {e}"))?;
                Ok(sql_int(row.first())?.map(|v| v.max(0) as u64))
            }
        }
    }

    async fn handle(&self, req: &mut Request) -> Result<Vec<u8>, String> {
        let url = req.url().map_err(|e| e.to_string())?;
        let body = req.bytes().await.map_err(|e| format!("claim body: {e}"))?;
        let (key, value) = unframe_pair(&body).ok_or("claim body is not a key frame")?;
        let key = String::from_utf8(key.to_vec()).map_err(|_| "claim key is not UTF-8")?;
        let op = match url.path() {
            "/claim" => Op::Claim {
                value: value.to_vec(),
                ttl_ms: query_u64(&url, "ttl")?,
            },
            "/delete" => Op::Delete,
            other => return Err(format!("no claim operation {other}")),
        };
        let sql = self.state.storage().sql();
        let kv = self
            .env
            .kv(BINDING_KV)
            .map_err(|e| format!("{BINDING_KV}: {e}"))?;
        let storage = self.state.storage();
        // Exclusive: no other request or alarm reaches this object until the future ends, even
        // while it waits on KV. Errors are returned inside `Ok`, so they never reset the object.
        let decided = self
            .state
            .block_concurrency_while(async move {
                let outcome = match op {
                    Op::Claim { value, ttl_ms } => {
                        claim_exclusive(&sql, &kv, &key, &value, ttl_ms).await
                    }
                    Op::Delete => delete_exclusive(&sql, &kv, &key).await,
                };
                if let Ok(Some(until)) = outcome.as_ref().map(|(_, alarm)| *alarm) {
                    if let Err(e) = storage.set_alarm(wire::at(until)).await {
                        worker::console_error!("claim cleanup alarm: {e}");
                    }
                }
                Ok(outcome.map(|(won, _)| won))
            })
            .await
            .map_err(|e| format!("claim: {e}"))??;
        Ok(if decided {
            b"1".to_vec()
        } else {
            b"0".to_vec()
        })
    }
}

/// Returns whether the claim won and, if a marker was written, when to clean it up.
async fn claim_exclusive(
    sql: &SqlStorage,
    kv: &KvStore,
    key: &str,
    value: &[u8],
    ttl_ms: Option<u64>,
) -> Result<(bool, Option<u64>), String> {
    let now = wire::now_ms();
    if TollgateClaim::marker(sql)?.is_some_and(|until| until > now) {
        return Ok((false, None));
    }
    if records::get(kv, key, now)
        .await
        .map_err(|e| e.to_string())?
        .is_some()
    {
        return Ok((false, None));
    }
    let expires = records::put(kv, key, value, ttl_ms, now)
        .await
        .map_err(|e| e.to_string())?;
    let until = expires
        .unwrap_or(u64::MAX)
        .min(now.saturating_add(TRUST_MS));
    sql.exec(
        "CREATE TABLE IF NOT EXISTS marker (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            until_ms INTEGER NOT NULL
        )",
        None,
    )
    .map_err(|e| format!("claim schema: {e}"))?;
    sql.exec(
        "INSERT OR REPLACE INTO marker (id, until_ms) VALUES (1, ?)",
        vec![wire::sql_num(until as i64)?],
    )
    .map_err(|e| format!("claim write: {e}"))?;
    Ok((true, Some(until)))
}

async fn delete_exclusive(
    sql: &SqlStorage,
    kv: &KvStore,
    key: &str,
) -> Result<(bool, Option<u64>), String> {
    let now = wire::now_ms();
    let marked = TollgateClaim::marker(sql)?.is_some_and(|until| until > now);
    let stored = records::get(kv, key, now)
        .await
        .map_err(|e| e.to_string())?
        .is_some();
    records::delete(kv, key).await.map_err(|e| e.to_string())?;
    if marked {
        // The alarm already set for the marker's end then finds nothing and frees the storage.
        sql.exec("DELETE FROM marker", None)
            .map_err(|e| format!("claim write: {e}"))?;
    }
    Ok((marked || stored, None))
}

impl DurableObject for TollgateClaim {
    fn new(state: State, env: Env) -> Self {
        TollgateClaim { state, env }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let result = self.handle(&mut req).await;
        wire::reply(result)
    }

    /// When the marker has run out, the object's storage goes (KV holds the record).
    async fn alarm(&self) -> worker::Result<Response> {
        let now = wire::now_ms();
        match Self::marker(&self.state.storage().sql()) {
            Ok(Some(until)) if until > now => {
                if let Err(e) = self.state.storage().set_alarm(wire::at(until)).await {
                    worker::console_error!("claim cleanup alarm: {e}");
                }
            }
            Ok(_) => {
                if let Err(e) = self.state.storage().delete_all().await {
                    worker::console_error!("claim cleanup: {e}");
                }
            }
            Err(e) => worker::console_error!("claim cleanup: {e}"),
        }
        Response::empty()
    }
}
