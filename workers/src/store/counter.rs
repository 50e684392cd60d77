//! Counters: one SQLite-backed Durable Object per counter key ([`TollgateCounter`], binding
//! `TOLLGATE_COUNTERS`, addressed with `id_from_name(key)`).
//!
//! The object holds one row, `(value, expires_at)`. An add reads the row, decides and writes it
//! with the synchronous SQL API and no `await` in between, so nothing can interleave: a Durable
//! Object runs one JavaScript turn at a time, and events are only delivered at an `await`. That
//! makes add and capped add atomic, and since every caller anywhere reaches the same single
//! object, strongly consistent (linearizable per key). The write is confirmed before the reply
//! leaves (the object's output gate).
//!
//! TTL: set when a window is created (absent or expired row) and never moved by later adds; an
//! alarm at the expiry deletes the object's storage, so per-window keys do not accumulate.

use serde::{Deserialize, Serialize};
use tollgate_core::store::{CapOutcome, StoreError};
use worker::{durable_object, DurableObject, Env, Request, Response, SqlStorage, State};

use super::wire::{self, sql_int, sql_num};

/// One counter operation, the JSON body of a call to `/add` or `/get`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct CounterOp {
    #[serde(default)]
    pub delta: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ceiling: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u64>,
}

/// The answer: the total after the operation, and whether the add happened.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct CounterReply {
    pub total: i64,
    pub added: bool,
}

impl CounterReply {
    pub fn outcome(&self) -> CapOutcome {
        if self.added {
            CapOutcome::Added(self.total)
        } else {
            CapOutcome::Refused(self.total)
        }
    }
}

/// Calls the counter object for `key`.
pub(crate) async fn call(
    ns: &worker::ObjectNamespace,
    key: &str,
    path: &str,
    op: &CounterOp,
) -> Result<CounterReply, StoreError> {
    let body = serde_json::to_vec(op).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let bytes = wire::call(ns, key, path, &body).await?;
    serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt(format!("counter reply: {e}")))
}

#[durable_object(alarm)]
pub struct TollgateCounter {
    state: State,
}

impl TollgateCounter {
    /// The stored row, if any: (value, expires_at). Creates nothing.
    fn row(sql: &SqlStorage) -> Result<Option<(i64, Option<u64>)>, String> {
        if !wire::table_exists(sql, "counter")? {
            return Ok(None);
        }
        let cursor = sql
            .exec("SELECT value, expires_at FROM counter WHERE id = 1", None)
            .map_err(|e| format!("counter read: {e}"))?;
        let Some(row) = cursor.raw().next() else {
            return Ok(None);
        };
        let row = row.map_err(|e| format!("counter read: {e}"))?;
        let value = sql_int(row.first())?.ok_or("counter row without a value")?;
        let expires = sql_int(row.get(1))?.map(|e| e.max(0) as u64);
        Ok(Some((value, expires)))
    }

    /// The whole operation, synchronously: read, decide, write. Returns the reply and, when a
    /// window with a TTL was created, its expiry (for the cleanup alarm).
    fn apply(
        &self,
        op: &CounterOp,
        add: bool,
        now: u64,
    ) -> Result<(CounterReply, Option<u64>), String> {
        let sql = self.state.storage().sql();
        let live = Self::row(&sql)?.filter(|(_, exp)| exp.is_none_or(|e| e > now));
        let total = live.map_or(0, |(v, _)| v);
        if !add {
            return Ok((
                CounterReply {
                    total,
                    added: false,
                },
                None,
            ));
        }
        if op
            .ceiling
            .is_some_and(|c| total.saturating_add(op.delta) > c)
        {
            return Ok((
                CounterReply {
                    total,
                    added: false,
                },
                None,
            ));
        }
        let new_total = total.checked_add(op.delta).ok_or("counter overflow")?;
        let (expires, created) = match live {
            Some((_, exp)) => (exp, None),
            None => {
                let exp = op.ttl_ms.map(|t| now.saturating_add(t).min(wire::MAX_SAFE));
                (exp, exp)
            }
        };
        sql.exec(
            "CREATE TABLE IF NOT EXISTS counter (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                value INTEGER NOT NULL,
                expires_at INTEGER
            )",
            None,
        )
        .map_err(|e| format!("counter schema: {e}"))?;
        sql.exec(
            "INSERT OR REPLACE INTO counter (id, value, expires_at) VALUES (1, ?, ?)",
            vec![sql_num(new_total)?, expires.map(|e| e as i64).into()],
        )
        .map_err(|e| format!("counter write: {e}"))?;
        Ok((
            CounterReply {
                total: new_total,
                added: true,
            },
            created,
        ))
    }

    async fn handle(&self, path: &str, body: &[u8]) -> Result<Vec<u8>, String> {
        let op: CounterOp =
            serde_json::from_slice(body).map_err(|e| format!("counter request: {e}"))?;
        let add = match path {
            "/add" => true,
            "/get" => false,
            other => return Err(format!("no counter operation {other}")),
        };
        // Everything that must be atomic happens inside this synchronous call.
        let (reply, created) = self.apply(&op, add, wire::now_ms())?;
        if let Some(expires) = created {
            // Cleanup only: the expiry itself is enforced by `expires_at` on every read.
            if let Err(e) = self.state.storage().set_alarm(wire::at(expires)).await {
                worker::console_error!("counter cleanup alarm: {e}");
            }
        }
        serde_json::to_vec(&reply).map_err(|e| e.to_string())
    }
}

impl DurableObject for TollgateCounter {
    fn new(state: State, _env: Env) -> Self {
        TollgateCounter { state }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let path = req.path();
        let result = match req.bytes().await {
            Ok(body) => self.handle(&path, &body).await,
            Err(e) => Err(format!("counter request body: {e}")),
        };
        wire::reply(result)
    }

    /// At a window's end: drop the object's storage if the window is over (a newer window
    /// re-arms the alarm for its own end).
    async fn alarm(&self) -> worker::Result<Response> {
        let now = wire::now_ms();
        let row = Self::row(&self.state.storage().sql());
        match row {
            Ok(Some((_, Some(exp)))) if exp > now => {
                if let Err(e) = self.state.storage().set_alarm(wire::at(exp)).await {
                    worker::console_error!("counter cleanup alarm: {e}");
                }
            }
            Ok(Some((_, None))) => {}
            Ok(_) => {
                // Same turn as the check: no request can slip in between.
                if let Err(e) = self.state.storage().delete_all().await {
                    worker::console_error!("counter cleanup: {e}");
                }
            }
            Err(e) => worker::console_error!("counter cleanup: {e}"),
        }
        Response::empty()
    }
}
