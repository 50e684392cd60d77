//! The Store: the only place state that must hold across instances lives (keys, spend, rate
//! counters, cooldowns, cache, logs).
//!
//! Small atomic primitives rather than one method per feature, so no caller ever needs a
//! read-modify-write:
//! - **records**: key → bytes with an optional TTL; `put_if_absent` for claims;
//! - **counters**: atomic add returning the new total, and a *capped* add that refuses to pass a
//!   ceiling (budgets, parallel-request slots); a negative add releases. A TTL is set when the
//!   counter is created, so a window ends on time however often it is hit;
//! - **logs**: append-only, time-ordered entries (spend and audit records);
//! - **batches** ([`Store::batch`]): several counter adds and lease acquires/releases in one
//!   round trip, all or nothing, so a request refused by one limit consumes nothing from the
//!   others. Leases (parallel-request slots) expire on their own, so an instance that dies
//!   leaks a slot only until its lease's TTL. Rules and per-backend atomicity: [`batch`] and
//!   `docs/storage.md`.
//!
//! Each backend's consistency is documented in `docs/storage.md`. Backends live in the hosts
//! (Redis, DynamoDB, embedded, Workers KV / Durable Objects); [`memory::MemoryStore`] is here
//! because it needs nothing but a clock, and [`upstash::UpstashStore`] because it needs only
//! the `HttpClient` and `Clock` ports (so both hosts use it). [`redis_protocol`] is the key
//! layout and Lua scripts shared by the Redis and Upstash backends.

pub mod batch;
pub mod memory;
pub mod redis_protocol;
pub mod settings;
pub mod upstash;
pub mod window;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

pub use batch::{BatchOp, BatchOutcome};

use crate::ports::{MaybeSend, MaybeSync};

/// Why a store operation failed. Callers decide per feature whether that fails open or closed
/// ([`FailurePolicy`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The backend could not be reached or refused the operation.
    Unavailable(String),
    /// The backend did not answer in time.
    Timeout,
    /// The backend answered with something this code cannot read.
    Corrupt(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Unavailable(m) => write!(f, "store unavailable: {m}"),
            StoreError::Timeout => write!(f, "store timed out"),
            StoreError::Corrupt(m) => write!(f, "store returned unreadable data: {m}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// What a feature does when the store fails: let the request through (open) or refuse it
/// (closed). Rate limits default to open (availability first); budgets to closed (money first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailurePolicy {
    Open,
    Closed,
}

/// One record returned by a prefix listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: Vec<u8>,
}

/// One log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// When the caller says it happened (ms since the epoch); entries are ordered by it, then by
    /// append order.
    pub at_ms: u64,
    pub data: Vec<u8>,
}

/// The outcome of [`Store::counter_add_capped`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapOutcome {
    /// Added; the new total.
    Added(i64),
    /// Refused because the total would pass the ceiling; the total as it stands.
    Refused(i64),
}

/// Atomic storage primitives, implemented by every backend with the same semantics.
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
pub trait Store: MaybeSend + MaybeSync {
    /// The record's value, unless absent or expired.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Writes the record, replacing any value and TTL.
    async fn put(&self, key: &str, value: &[u8], ttl_ms: Option<u64>) -> Result<(), StoreError>;

    /// Writes the record only if no live record has the key; `true` when written.
    async fn put_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl_ms: Option<u64>,
    ) -> Result<bool, StoreError>;

    /// Removes the record; `true` when a live record was removed.
    async fn delete(&self, key: &str) -> Result<bool, StoreError>;

    /// Live records whose key starts with `prefix`, in key order, at most `limit`.
    async fn list_prefix(&self, prefix: &str, limit: usize) -> Result<Vec<Entry>, StoreError>;

    /// Adds `delta` (negative to release) and returns the new total. A counter that does not
    /// exist (or has expired) starts at 0 and, if `ttl_ms` is given, expires that long after this
    /// call; later adds do not move its expiry.
    async fn counter_add(
        &self,
        key: &str,
        delta: i64,
        ttl_ms: Option<u64>,
    ) -> Result<i64, StoreError>;

    /// Adds `delta` only if the new total would not exceed `ceiling`; all or nothing.
    async fn counter_add_capped(
        &self,
        key: &str,
        delta: i64,
        ceiling: i64,
        ttl_ms: Option<u64>,
    ) -> Result<CapOutcome, StoreError>;

    /// The counter's total (0 when absent or expired).
    async fn counter_get(&self, key: &str) -> Result<i64, StoreError>;

    /// Applies `ops` in one step, all or nothing: each op is decided against the state the ops
    /// before it leave; when one would pass its ceiling or limit, nothing is applied and the
    /// outcome names it. Atomic on every backend except Workers, which applies per Durable
    /// Object and undoes applied objects when a later one refuses (see `docs/storage.md`).
    async fn batch(&self, ops: &[BatchOp]) -> Result<BatchOutcome, StoreError>;

    /// Live leases in set `key` (expired ones never count).
    async fn lease_count(&self, key: &str) -> Result<i64, StoreError>;

    /// Appends an entry to the log `log`.
    async fn log_append(&self, log: &str, at_ms: u64, data: &[u8]) -> Result<(), StoreError>;

    /// Entries of `log` with `from_ms <= at_ms < to_ms`, oldest first, at most `limit`.
    async fn log_range(
        &self,
        log: &str,
        from_ms: u64,
        to_ms: u64,
        limit: usize,
    ) -> Result<Vec<LogEntry>, StoreError>;
}
