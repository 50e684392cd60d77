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
//!
//! The object also holds the lease set with its key (`leases.rs`), and applies its part of a
//! `Store::batch` (`/batch`: counter and leases together, read-decide-write in one synchronous
//! turn with core's planner) and the undo of a part (`/undo`); see `batch.rs` for how a batch
//! spans objects. The cleanup alarm keeps the storage while the counter's window or any lease
//! is live.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tollgate_core::store::batch::{self as planner, Counter, Planned, Snapshot};
use tollgate_core::store::{BatchOp, CapOutcome, StoreError};
use worker::{durable_object, DurableObject, Env, Request, Response, SqlStorage, State};

use super::batch::{CounterUndo, PartReply, Undo};
use super::leases;
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
        Self::write_row(&sql, sql_num(new_total)?, expires)?;
        Ok((
            CounterReply {
                total: new_total,
                added: true,
            },
            created,
        ))
    }

    /// Writes the row (`value` already checked by `sql_num`).
    fn write_row(
        sql: &SqlStorage,
        value: worker::SqlStorageValue,
        expires: Option<u64>,
    ) -> Result<(), String> {
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
            vec![value, expires.map(|e| e.min(wire::MAX_SAFE) as i64).into()],
        )
        .map_err(|e| format!("counter write: {e}"))?;
        Ok(())
    }

    /// This object's part of a batch, synchronously: read the counter and the leases, plan,
    /// and (when it applies) write both. Every value is checked before the first write, so a
    /// refused or invalid part writes nothing. Returns the reply and the time until which the
    /// storage must be kept (for the cleanup alarm).
    fn apply_batch(&self, ops: &[BatchOp], now: u64) -> Result<(PartReply, Option<u64>), String> {
        let key = ops.first().map_or("", BatchOp::key);
        if ops.iter().any(|op| op.key() != key) {
            return Err("a batch part spans several objects".into());
        }
        let sql = self.state.storage().sql();
        let live = Self::row(&sql)?.filter(|(_, exp)| exp.is_none_or(|e| e > now));
        let stored_leases = leases::read(&sql)?;
        let mut snapshot = Snapshot::default();
        if let Some((total, expires_at_ms)) = live {
            let counter = Counter {
                total,
                expires_at_ms,
            };
            snapshot.counters.insert(key.to_string(), counter);
        }
        snapshot
            .leases
            .insert(key.to_string(), stored_leases.clone());
        let plan = match planner::plan(ops, &snapshot, now).map_err(|e| e.to_string())? {
            Planned::Applied(plan) => plan,
            Planned::Refused { index, current } => {
                return Ok((PartReply::Refused { index, current }, None))
            }
        };
        // Check and prepare everything, then write.
        let counter = match plan.counters.get(key) {
            Some(c) => Some((c, sql_num(c.total)?)),
            None => None,
        };
        let lease_rows = plan.leases.get(key).map(leases::rows).transpose()?;
        let mut undo = Undo::default();
        if let Some((c, _)) = &counter {
            let before = live.map_or(0, |(v, _)| v);
            undo.counter = Some(CounterUndo {
                delta: before.checked_sub(c.total).ok_or("counter overflow")?,
                window: c.expires_at_ms,
                created: live.is_none(),
            });
        }
        for op in ops {
            if let BatchOp::Acquire { holder, .. } | BatchOp::Release { holder, .. } = op {
                let prior = stored_leases.get(holder).copied().filter(|&e| e > now);
                undo.leases.entry(holder.clone()).or_insert(prior);
            }
        }
        let window = counter.as_ref().and_then(|(c, _)| c.expires_at_ms);
        if let Some((c, value)) = counter {
            Self::write_row(&sql, value, c.expires_at_ms)?;
        }
        if let Some(rows) = lease_rows {
            leases::replace(&sql, rows)?;
        }
        let keep_until = window
            .into_iter()
            .chain(plan.leases.get(key).and_then(|s| s.values().copied().max()))
            .max();
        let reply = PartReply::Applied {
            totals: plan.totals,
            undo,
        };
        Ok((reply, keep_until))
    }

    /// Reverses an applied part, synchronously (see `batch::CounterUndo` for when a counter is
    /// left alone).
    fn undo(&self, undo: &Undo, now: u64) -> Result<(), String> {
        let sql = self.state.storage().sql();
        if let Some(cu) = &undo.counter {
            let live = Self::row(&sql)?.filter(|(_, exp)| exp.is_none_or(|e| e > now));
            if let Some((value, expires)) = live.filter(|(_, exp)| *exp == cu.window) {
                let restored = value.checked_add(cu.delta).ok_or("counter overflow")?;
                if restored == 0 && cu.created {
                    sql.exec("DELETE FROM counter", None)
                        .map_err(|e| format!("counter write: {e}"))?;
                } else {
                    Self::write_row(&sql, sql_num(restored)?, expires)?;
                }
            }
        }
        for (holder, prior) in &undo.leases {
            leases::restore(&sql, holder, *prior)?;
        }
        Ok(())
    }

    /// Live leases (read only).
    fn lease_count(&self, now: u64) -> Result<i64, String> {
        let stored = leases::read(&self.state.storage().sql())?;
        Ok(planner::live_count(&stored, now))
    }

    async fn handle(&self, path: &str, body: &[u8]) -> Result<Vec<u8>, String> {
        let now = wire::now_ms();
        // Everything that must be atomic happens inside one synchronous call below.
        let (reply, keep_until) = match path {
            "/add" | "/get" => {
                let op: CounterOp =
                    serde_json::from_slice(body).map_err(|e| format!("counter request: {e}"))?;
                let (reply, created) = self.apply(&op, path == "/add", now)?;
                (serde_json::to_vec(&reply), created)
            }
            "/batch" => {
                let ops: Vec<BatchOp> =
                    serde_json::from_slice(body).map_err(|e| format!("batch request: {e}"))?;
                let (reply, keep_until) = self.apply_batch(&ops, now)?;
                (serde_json::to_vec(&reply), keep_until)
            }
            "/undo" => {
                let undo: Undo =
                    serde_json::from_slice(body).map_err(|e| format!("undo request: {e}"))?;
                self.undo(&undo, now)?;
                (Ok(b"{}".to_vec()), None)
            }
            "/leases" => (serde_json::to_vec(&self.lease_count(now)?), None),
            other => return Err(format!("no counter operation {other}")),
        };
        if let Some(until) = keep_until {
            // Cleanup only: expiry itself is enforced by `expires_at` on every read. The alarm
            // re-arms itself while anything is still live, so an early one is harmless.
            if let Err(e) = self.state.storage().set_alarm(wire::at(until)).await {
                worker::console_error!("counter cleanup alarm: {e}");
            }
        }
        reply.map_err(|e| e.to_string())
    }

    /// Until when the storage must be kept: `Ok(None)` when nothing is live (delete it),
    /// `Ok(Some(None))` for a counter without a TTL (keep it, no alarm).
    fn keep_until(&self, now: u64) -> Result<Option<Option<u64>>, String> {
        let sql = self.state.storage().sql();
        let counter = Self::row(&sql)?;
        if matches!(counter, Some((_, None))) {
            return Ok(Some(None));
        }
        let leases: BTreeMap<String, u64> = leases::read(&sql)?;
        Ok(counter
            .and_then(|(_, exp)| exp)
            .into_iter()
            .chain(leases.values().copied())
            .filter(|&e| e > now)
            .max()
            .map(Some))
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

    /// At a window's end: drop the object's storage if nothing in it is live any more (a newer
    /// window or a later lease re-arms the alarm for its own end).
    async fn alarm(&self) -> worker::Result<Response> {
        match self.keep_until(wire::now_ms()) {
            Ok(Some(Some(until))) => {
                if let Err(e) = self.state.storage().set_alarm(wire::at(until)).await {
                    worker::console_error!("counter cleanup alarm: {e}");
                }
            }
            Ok(Some(None)) => {}
            Ok(None) => {
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
