//! The Store on Cloudflare Workers: KV for records, SQLite-backed Durable Objects for what must
//! be atomic.
//!
//! | primitive | where | consistency |
//! |---|---|---|
//! | `get`, `list_prefix` | KV (`TOLLGATE_KV`) | eventual: a write shows at once where it was made, within ~60 s elsewhere; listings lag likewise |
//! | `put` | KV | last write wins; exact TTL in metadata (KV's own minimum is 60 s) |
//! | `put_if_absent`, `delete` | one [`TollgateClaim`] per key, which then writes KV | claims of one key are serialized: exactly one wins; readers see the winner with KV's lag |
//! | counters | one [`TollgateCounter`] per key (`TOLLGATE_COUNTERS`) | strong (linearizable per key); add, capped add and TTL-at-creation are atomic |
//! | logs | one [`TollgateLog`] per log (`TOLLGATE_LOGS`) | strong; ordered by time, then append order |
//! | leases, `batch` | the [`TollgateCounter`] of each key (a lease table beside the counter row) | atomic per object; across objects applied object by object and compensated on refusal (`batch.rs`) |
//!
//! Every failure is a [`StoreError`] value; nothing here panics. Every operation is bounded by a
//! timeout ([`DEFAULT_TIMEOUT_MS`]); a `Timeout` means the outcome is unknown (the call may still
//! land, as a Workers subrequest cannot be cancelled). Binary values travel as raw
//! bytes (KV values, request bodies, SQL blobs); only values small enough to be copied into KV
//! metadata are base64 there.

mod batch;
mod claim;
#[cfg(feature = "store-conformance")]
pub mod conformance;
mod counter;
mod leases;
mod log;
mod records;
mod wire;

pub use claim::TollgateClaim;
pub use counter::TollgateCounter;
pub use log::TollgateLog;

use std::future::Future;

use tollgate_core::store::{BatchOp, BatchOutcome, CapOutcome, Entry, LogEntry, Store, StoreError};
use worker::kv::KvStore;
use worker::{Env, ObjectNamespace};

use counter::CounterOp;

/// KV namespace for records.
pub const BINDING_KV: &str = "TOLLGATE_KV";
/// Durable Object namespace of [`TollgateCounter`].
pub const BINDING_COUNTERS: &str = "TOLLGATE_COUNTERS";
/// Durable Object namespace of [`TollgateClaim`].
pub const BINDING_CLAIMS: &str = "TOLLGATE_CLAIMS";
/// Durable Object namespace of [`TollgateLog`].
pub const BINDING_LOGS: &str = "TOLLGATE_LOGS";

/// Default bound on one store operation (a Durable Object call that reads and writes KV included).
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;

/// The Workers [`Store`]: cheap to build (it holds binding handles), so build it per request or
/// keep one per isolate.
pub struct WorkersStore {
    kv: KvStore,
    counters: ObjectNamespace,
    claims: ObjectNamespace,
    logs: ObjectNamespace,
    timeout_ms: u64,
}

impl WorkersStore {
    /// From the Worker's bindings; an error names the missing binding.
    pub fn from_env(env: &Env) -> Result<Self, StoreError> {
        let missing = |name: &str, e: worker::Error| {
            StoreError::Unavailable(format!("binding {name} (see wrangler.toml): {e}"))
        };
        Ok(WorkersStore {
            kv: env.kv(BINDING_KV).map_err(|e| missing(BINDING_KV, e))?,
            counters: env
                .durable_object(BINDING_COUNTERS)
                .map_err(|e| missing(BINDING_COUNTERS, e))?,
            claims: env
                .durable_object(BINDING_CLAIMS)
                .map_err(|e| missing(BINDING_CLAIMS, e))?,
            logs: env
                .durable_object(BINDING_LOGS)
                .map_err(|e| missing(BINDING_LOGS, e))?,
            timeout_ms: DEFAULT_TIMEOUT_MS,
        })
    }

    /// Bounds every operation by `ms`; past it the caller gets [`StoreError::Timeout`] (the
    /// operation itself may still complete: a Workers subrequest cannot be cancelled).
    pub fn with_timeout_ms(mut self, ms: u64) -> Self {
        self.timeout_ms = ms;
        self
    }

    async fn bounded<T>(
        &self,
        op: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        batch::bounded(self.timeout_ms, op).await
    }
}

#[async_trait::async_trait(?Send)]
impl Store for WorkersStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let found = self.bounded(records::get(&self.kv, key, wire::now_ms()));
        Ok(found.await?.map(|(value, _)| value))
    }

    async fn put(&self, key: &str, value: &[u8], ttl_ms: Option<u64>) -> Result<(), StoreError> {
        self.bounded(records::put(&self.kv, key, value, ttl_ms, wire::now_ms()))
            .await?;
        Ok(())
    }

    async fn put_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl_ms: Option<u64>,
    ) -> Result<bool, StoreError> {
        self.bounded(claim::claim(&self.claims, key, value, ttl_ms))
            .await
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        self.bounded(claim::delete(&self.claims, key)).await
    }

    async fn list_prefix(&self, prefix: &str, limit: usize) -> Result<Vec<Entry>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.bounded(records::list_prefix(
            &self.kv,
            prefix,
            limit,
            wire::now_ms(),
        ))
        .await
    }

    async fn counter_add(
        &self,
        key: &str,
        delta: i64,
        ttl_ms: Option<u64>,
    ) -> Result<i64, StoreError> {
        let op = CounterOp {
            delta,
            ceiling: None,
            ttl_ms,
        };
        Ok(self
            .bounded(counter::call(&self.counters, key, "/add", &op))
            .await?
            .total)
    }

    async fn counter_add_capped(
        &self,
        key: &str,
        delta: i64,
        ceiling: i64,
        ttl_ms: Option<u64>,
    ) -> Result<CapOutcome, StoreError> {
        let op = CounterOp {
            delta,
            ceiling: Some(ceiling),
            ttl_ms,
        };
        let reply = self.bounded(counter::call(&self.counters, key, "/add", &op));
        Ok(reply.await?.outcome())
    }

    async fn counter_get(&self, key: &str) -> Result<i64, StoreError> {
        let op = CounterOp {
            delta: 0,
            ceiling: None,
            ttl_ms: None,
        };
        Ok(self
            .bounded(counter::call(&self.counters, key, "/get", &op))
            .await?
            .total)
    }

    /// Per object atomic, compensated across objects (`batch.rs`); each wave of calls and the
    /// compensation are bounded by the store's timeout.
    async fn batch(&self, ops: &[BatchOp]) -> Result<BatchOutcome, StoreError> {
        if ops.is_empty() {
            return Ok(BatchOutcome::Applied(Vec::new()));
        }
        batch::run(&self.counters, ops, self.timeout_ms).await
    }

    async fn lease_count(&self, key: &str) -> Result<i64, StoreError> {
        let reply = self.bounded(wire::call(&self.counters, key, "/leases", b""));
        serde_json::from_slice(&reply.await?)
            .map_err(|e| StoreError::Corrupt(format!("lease count reply: {e}")))
    }

    async fn log_append(&self, log: &str, at_ms: u64, data: &[u8]) -> Result<(), StoreError> {
        self.bounded(log::append(&self.logs, log, at_ms, data))
            .await
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
        self.bounded(log::range(&self.logs, log, from_ms, to_ms, limit))
            .await
    }
}
