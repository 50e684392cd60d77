//! In-memory store: one process, for tests and single-instance use. Linearizable (one lock); a
//! batch reads, plans and writes under that one lock, so it is atomic.
//!
//! Memory is bounded where traffic would grow it: each log keeps its newest
//! [`MAX_LOG_ENTRIES`] entries (spend logs are written once per request).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use super::batch::{self, BatchOp, BatchOutcome, Counter, Planned, Snapshot};
use super::{CapOutcome, Entry, LogEntry, Store, StoreError};
use crate::ports::Clock;

/// Entries a log keeps at most; the oldest go first.
pub const MAX_LOG_ENTRIES: usize = 100_000;

#[derive(Default)]
struct State {
    records: BTreeMap<String, (Vec<u8>, Option<u64>)>,
    counters: HashMap<String, (i64, Option<u64>)>,
    /// log → (at_ms, append sequence) → data.
    logs: HashMap<String, BTreeMap<(u64, u64), Vec<u8>>>,
    sequence: u64,
    /// lease set → holder → expiry (ms); expired entries are pruned when the set is written.
    leases: HashMap<String, BTreeMap<String, u64>>,
}

pub struct MemoryStore {
    state: Mutex<State>,
    clock: Arc<dyn Clock>,
}

impl MemoryStore {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        MemoryStore {
            state: Mutex::new(State::default()),
            clock,
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>, StoreError> {
        self.state
            .lock()
            .map_err(|_| StoreError::Unavailable("memory store lock poisoned".into()))
    }

    fn expiry(&self, ttl_ms: Option<u64>) -> Option<u64> {
        ttl_ms.map(|t| self.clock.now_ms().saturating_add(t))
    }

    fn live(&self, expires: Option<u64>) -> bool {
        expires.is_none_or(|e| e > self.clock.now_ms())
    }

    fn counter_total(&self, state: &State, key: &str) -> i64 {
        match state.counters.get(key) {
            Some((v, exp)) if self.live(*exp) => *v,
            _ => 0,
        }
    }

    /// Adds to a counter under the held lock, creating (with its TTL) when absent or expired.
    fn add_locked(&self, state: &mut State, key: &str, delta: i64, ttl_ms: Option<u64>) -> i64 {
        let live = state
            .counters
            .get(key)
            .is_some_and(|(_, exp)| self.live(*exp));
        let expiry = self.expiry(ttl_ms);
        let entry = state.counters.entry(key.to_string()).or_insert((0, expiry));
        if !live {
            *entry = (0, expiry);
        }
        entry.0 = entry.0.saturating_add(delta);
        entry.0
    }

    /// The live state of what `ops` touch, read under the held lock.
    fn snapshot(&self, state: &State, ops: &[BatchOp]) -> Snapshot {
        let mut snapshot = Snapshot::default();
        for op in ops {
            let key = op.key();
            match op {
                BatchOp::Add { .. } => {
                    if let Some((total, exp)) = state.counters.get(key) {
                        if self.live(*exp) {
                            let counter = Counter {
                                total: *total,
                                expires_at_ms: *exp,
                            };
                            snapshot.counters.insert(key.to_string(), counter);
                        }
                    }
                }
                BatchOp::Acquire { .. } | BatchOp::Release { .. } => {
                    if let Some(set) = state.leases.get(key) {
                        snapshot.leases.insert(key.to_string(), set.clone());
                    }
                }
            }
        }
        snapshot
    }
}

#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let state = self.lock()?;
        Ok(match state.records.get(key) {
            Some((v, exp)) if self.live(*exp) => Some(v.clone()),
            _ => None,
        })
    }

    async fn put(&self, key: &str, value: &[u8], ttl_ms: Option<u64>) -> Result<(), StoreError> {
        let expiry = self.expiry(ttl_ms);
        self.lock()?
            .records
            .insert(key.to_string(), (value.to_vec(), expiry));
        Ok(())
    }

    async fn put_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl_ms: Option<u64>,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock()?;
        if let Some((_, exp)) = state.records.get(key) {
            if self.live(*exp) {
                return Ok(false);
            }
        }
        let expiry = self.expiry(ttl_ms);
        state
            .records
            .insert(key.to_string(), (value.to_vec(), expiry));
        Ok(true)
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let removed = self.lock()?.records.remove(key);
        Ok(removed.is_some_and(|(_, exp)| self.live(exp)))
    }

    async fn list_prefix(&self, prefix: &str, limit: usize) -> Result<Vec<Entry>, StoreError> {
        let state = self.lock()?;
        Ok(state
            .records
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(_, (_, exp))| self.live(*exp))
            .take(limit)
            .map(|(k, (v, _))| Entry {
                key: k.clone(),
                value: v.clone(),
            })
            .collect())
    }

    async fn counter_add(
        &self,
        key: &str,
        delta: i64,
        ttl_ms: Option<u64>,
    ) -> Result<i64, StoreError> {
        let mut state = self.lock()?;
        Ok(self.add_locked(&mut state, key, delta, ttl_ms))
    }

    async fn counter_add_capped(
        &self,
        key: &str,
        delta: i64,
        ceiling: i64,
        ttl_ms: Option<u64>,
    ) -> Result<CapOutcome, StoreError> {
        let mut state = self.lock()?;
        let current = self.counter_total(&state, key);
        if current.saturating_add(delta) > ceiling {
            return Ok(CapOutcome::Refused(current));
        }
        Ok(CapOutcome::Added(
            self.add_locked(&mut state, key, delta, ttl_ms),
        ))
    }

    async fn counter_get(&self, key: &str) -> Result<i64, StoreError> {
        let state = self.lock()?;
        Ok(self.counter_total(&state, key))
    }

    async fn batch(&self, ops: &[BatchOp]) -> Result<BatchOutcome, StoreError> {
        let mut state = self.lock()?;
        let snapshot = self.snapshot(&state, ops);
        let planned = batch::plan(ops, &snapshot, self.clock.now_ms())?;
        if let Planned::Applied(plan) = &planned {
            for (key, c) in &plan.counters {
                state
                    .counters
                    .insert(key.clone(), (c.total, c.expires_at_ms));
            }
            for (key, set) in &plan.leases {
                if set.is_empty() {
                    state.leases.remove(key);
                } else {
                    state.leases.insert(key.clone(), set.clone());
                }
            }
        }
        Ok(planned.outcome())
    }

    async fn lease_count(&self, key: &str) -> Result<i64, StoreError> {
        let state = self.lock()?;
        let now = self.clock.now_ms();
        Ok(state
            .leases
            .get(key)
            .map_or(0, |set| batch::live_count(set, now)))
    }

    async fn log_append(&self, log: &str, at_ms: u64, data: &[u8]) -> Result<(), StoreError> {
        let mut state = self.lock()?;
        state.sequence += 1;
        let seq = state.sequence;
        let entries = state.logs.entry(log.to_string()).or_default();
        entries.insert((at_ms, seq), data.to_vec());
        if entries.len() > MAX_LOG_ENTRIES {
            entries.pop_first();
        }
        Ok(())
    }

    async fn log_range(
        &self,
        log: &str,
        from_ms: u64,
        to_ms: u64,
        limit: usize,
    ) -> Result<Vec<LogEntry>, StoreError> {
        let state = self.lock()?;
        let Some(entries) = state.logs.get(log) else {
            return Ok(Vec::new());
        };
        Ok(entries
            .range((from_ms, 0)..(to_ms, 0))
            .take(limit)
            .map(|((at_ms, _), data)| LogEntry {
                at_ms: *at_ms,
                data: data.clone(),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::{self, ManualClock};

    #[test]
    fn memory_store_passes_the_conformance_suite() {
        let clock = Arc::new(ManualClock::default());
        let store = MemoryStore::new(clock.clone());
        futures_executor::block_on(conformance::run_all(&store, clock.as_ref(), "mem"));
    }

    #[test]
    fn memory_store_never_passes_a_ceiling_under_concurrency() {
        let clock = Arc::new(ManualClock::default());
        let store = MemoryStore::new(clock);
        futures_executor::block_on(conformance::concurrent_ceiling(
            &store, "mem-conc", 8, 50, 100,
        ));
    }

    #[test]
    fn memory_store_batches_are_all_or_nothing_under_concurrency() {
        let clock = Arc::new(ManualClock::default());
        let store = MemoryStore::new(clock);
        futures_executor::block_on(conformance::concurrent_batches(&store, "mem-batch", 8, 30));
    }
}
