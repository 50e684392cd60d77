//! Embedded Store backend on [redb]: the local server's default store. One file, no server to
//! install, and keys, spend and counters survive a restart.
//!
//! Why redb: pure Rust (no C toolchain, no system library), maintained, ACID with
//! copy-on-write B-trees and checksummed commits, and the whole database is one file.
//!
//! # Consistency
//! Every operation is one redb transaction. redb runs one write transaction at a time, so a
//! counter add, a capped add or a `put_if_absent` reads and writes under that exclusion: no
//! lost update and no ceiling passed, however many tasks call at once. Reads see the last
//! committed state (snapshot isolation). Linearizable within the process, like the memory store.
//!
//! # Single process
//! redb's default [`ConcurrencyMode::ExclusiveWriter`](redb::ConcurrencyMode) locks the whole
//! file, so one process (one [`EmbeddedStore`]) owns it; a second open, in this process or
//! another, fails with [`StoreError::Unavailable`] instead of waiting. Several gateway
//! instances need a server-backed store (Redis, DynamoDB). Within the process the store is
//! shared freely across threads and tasks (it is `Send + Sync`; clone the `Arc` you hold it in).
//! redb 4.5 added a `MultiWriter` mode for sharing a file between processes; it is not used
//! here: it is new, needs byte-range locks, and the local server is one process.
//!
//! # Durability
//! redb's default durability ([`Durability::Immediate`](redb::Durability)) is kept: `commit`
//! returns only after an fsync, so a crash or power loss loses nothing that was committed, and
//! the file is never left half-written. The price is one fsync per write (hundreds to a few
//! thousand writes a second on ordinary disks), which is plenty for a local gateway.
//!
//! # Batches
//! [`Store::batch`] reads what the batch touches, decides it with core's planner
//! (`tollgate_core::store::batch::plan`) and writes the result, all in one write transaction:
//! atomic (a refused batch writes nothing, and no other write lands in between) and, once
//! committed, durable.
//!
//! # Expiry
//! Each record and counter stores its absolute expiry (`expires_at_ms`, from the injected
//! [`Clock`]). Reads treat an expired entry as absent; writes over one treat it as absent too
//! (a counter restarts at 0 with a fresh TTL). Expired entries stay on disk until overwritten,
//! deleted, or removed by [`EmbeddedStore::purge_expired`].
//!
//! # Tables and encodings
//! - `records`: `&str` key → `(Option<u64> expires_at_ms, &[u8] value)`;
//! - `counters`: `&str` key → `(i64 total, Option<u64> expires_at_ms)`;
//! - `logs`: `(&str log, u64 at_ms, u64 sequence)` → `&[u8]` data;
//! - `meta`: `&str` → `u64` (the last log sequence, so append order survives a restart);
//! - `leases`: `(&str set, &str holder)` → `u64` expires_at_ms (one row per lease; a set's
//!   expired rows are dropped whenever a batch writes the set).
//!
//! redb compares keys with the key type's own order: `&str` bytewise (the order `list_prefix`
//! promises) and tuples element by element with integers compared numerically, so the logs
//! table sorts by log, then time, then append order, and one range scan answers `log_range`.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{
    Database, DatabaseError, ReadTransaction, ReadableDatabase, ReadableTable, StorageError,
    TableDefinition, WriteTransaction,
};
use tollgate_core::ports::Clock;
use tollgate_core::store::batch::{self, Counter, Planned, Snapshot};
use tollgate_core::store::{BatchOp, BatchOutcome, CapOutcome, Entry, LogEntry, Store, StoreError};

/// key → (expires_at_ms, value).
const RECORDS: TableDefinition<&str, (Option<u64>, &[u8])> = TableDefinition::new("records");
/// key → (total, expires_at_ms).
const COUNTERS: TableDefinition<&str, (i64, Option<u64>)> = TableDefinition::new("counters");
/// (log, at_ms, append sequence) → data.
const LOGS: TableDefinition<(&str, u64, u64), &[u8]> = TableDefinition::new("logs");
/// (lease set, holder) → expires_at_ms.
const LEASES: TableDefinition<(&str, &str), u64> = TableDefinition::new("leases");
/// Bookkeeping values.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// The `meta` key of the last log sequence handed out.
const LOG_SEQUENCE: &str = "log_sequence";

/// A Store in one redb file. See the module docs for consistency, durability and the
/// single-process rule.
pub struct EmbeddedStore {
    db: Arc<Database>,
    path: PathBuf,
    clock: Arc<dyn Clock>,
}

impl EmbeddedStore {
    /// Opens (or creates) the store at `path`, creating missing parent directories. Fails with
    /// [`StoreError::Unavailable`] naming the path when the file cannot be created or opened or
    /// is already open, and with [`StoreError::Corrupt`] when it is not a readable database.
    pub fn open(path: &Path, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        create_parent_dir(path)?;
        // redb may panic rather than return an error on a file altered behind its back; a
        // damaged file must not take the server down, so the panic becomes an error.
        let opened = catch_unwind(AssertUnwindSafe(|| Database::create(path))).map_err(|_| {
            StoreError::Corrupt(format!(
                "embedded store at {}: the file could not be read as a database",
                path.display()
            ))
        })?;
        let db = opened.map_err(|e| open_error(path, e))?;
        create_tables(&db).map_err(|e| store_error(path, e))?;
        Ok(EmbeddedStore {
            db: Arc::new(db),
            path: path.to_path_buf(),
            clock,
        })
    }

    /// Removes expired records and counters from the file (reads already ignore them). Cheap
    /// to call at startup or now and then; the gateway is correct without it.
    pub async fn purge_expired(&self) -> Result<(), StoreError> {
        let now = self.clock.now_ms();
        self.write(move |txn| {
            txn.open_table(RECORDS)?
                .retain(|_, (expires, _)| live(expires, now))?;
            txn.open_table(COUNTERS)?
                .retain(|_, (_, expires)| live(expires, now))?;
            Ok(())
        })
        .await
    }

    /// Runs `op` in a read transaction on a blocking thread.
    async fn read<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&ReadTransaction) -> Result<T, redb::Error> + Send + 'static,
    {
        self.blocking(move |db| op(&db.begin_read()?)).await
    }

    /// Runs `op` in a write transaction on a blocking thread and commits it; an error from
    /// `op` drops the transaction, which rolls it back.
    async fn write<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<T, redb::Error> + Send + 'static,
    {
        self.blocking(move |db| {
            let txn = db.begin_write()?;
            let out = op(&txn)?;
            txn.commit()?;
            Ok(out)
        })
        .await
    }

    /// redb blocks on disk I/O (and a write waits for the previous one), so every operation
    /// runs on tokio's blocking pool rather than stalling the async workers.
    async fn blocking<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, redb::Error> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        match tokio::task::spawn_blocking(move || op(&db)).await {
            Ok(result) => result.map_err(|e| store_error(&self.path, e)),
            Err(join) => Err(StoreError::Unavailable(format!(
                "embedded store at {}: operation did not complete: {join}",
                self.path.display()
            ))),
        }
    }
}

fn create_parent_dir(path: &Path) -> Result<(), StoreError> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::create_dir_all(dir).map_err(|e| {
            unavailable(
                path,
                format!("cannot create directory {}", dir.display()),
                e,
            )
        }),
        _ => Ok(()),
    }
}

/// Creates the tables up front, so read transactions never meet a missing table.
fn create_tables(db: &Database) -> Result<(), redb::Error> {
    let txn = db.begin_write()?;
    txn.open_table(RECORDS)?;
    txn.open_table(COUNTERS)?;
    txn.open_table(LOGS)?;
    txn.open_table(META)?;
    txn.open_table(LEASES)?;
    txn.commit()?;
    Ok(())
}

fn unavailable(path: &Path, what: impl Display, e: impl Display) -> StoreError {
    StoreError::Unavailable(format!("embedded store at {}: {what}: {e}", path.display()))
}

fn open_error(path: &Path, e: DatabaseError) -> StoreError {
    match e {
        DatabaseError::DatabaseAlreadyOpen => unavailable(
            path,
            "cannot open",
            "the file is already open (the embedded store is single-process; \
             use Redis or DynamoDB to share state between instances)",
        ),
        other => store_error(path, other),
    }
}

/// Maps a redb error: a damaged file is `Corrupt`, anything else (I/O, locks) `Unavailable`.
fn store_error(path: &Path, e: impl Into<redb::Error>) -> StoreError {
    match e.into() {
        redb::Error::Corrupted(m) => {
            StoreError::Corrupt(format!("embedded store at {}: {m}", path.display()))
        }
        other => unavailable(path, "operation failed", other),
    }
}

/// Whether an entry with this expiry is still visible at `now`.
fn live(expires_at_ms: Option<u64>, now: u64) -> bool {
    expires_at_ms.is_none_or(|at| at > now)
}

fn expiry(ttl_ms: Option<u64>, now: u64) -> Option<u64> {
    ttl_ms.map(|ttl| now.saturating_add(ttl))
}

/// Whether a live record has `key`.
fn record_is_live(
    table: &impl ReadableTable<&'static str, (Option<u64>, &'static [u8])>,
    key: &str,
    now: u64,
) -> Result<bool, StorageError> {
    Ok(table.get(key)?.is_some_and(|g| live(g.value().0, now)))
}

/// The live counter `(total, expiry)`, or `None` when absent or expired.
fn live_counter(
    table: &impl ReadableTable<&'static str, (i64, Option<u64>)>,
    key: &str,
    now: u64,
) -> Result<Option<(i64, Option<u64>)>, StorageError> {
    Ok(table
        .get(key)?
        .map(|g| g.value())
        .filter(|(_, expires)| live(*expires, now)))
}

/// Adds inside a write transaction. A missing or expired counter starts at 0 with a fresh
/// expiry; a live one keeps its expiry, so a window ends on time however often it is hit.
fn add_in(
    txn: &WriteTransaction,
    key: &str,
    delta: i64,
    ttl_ms: Option<u64>,
    now: u64,
) -> Result<i64, redb::Error> {
    let mut table = txn.open_table(COUNTERS)?;
    let (total, expires) = live_counter(&table, key, now)?.unwrap_or((0, expiry(ttl_ms, now)));
    let total = total.saturating_add(delta);
    table.insert(key, (total, expires))?;
    Ok(total)
}

/// Every lease row of `set` (live or not): holder → expiry.
fn lease_rows(
    table: &impl ReadableTable<(&'static str, &'static str), u64>,
    set: &str,
) -> Result<BTreeMap<String, u64>, StorageError> {
    let mut rows = BTreeMap::new();
    // Tuples compare element by element, so the set's rows are one run starting at (set, "").
    for item in table.range((set, "")..)? {
        let (key, expires) = item?;
        let (s, holder) = key.value();
        if s != set {
            break;
        }
        rows.insert(holder.to_owned(), expires.value());
    }
    Ok(rows)
}

/// Reads, plans and (when accepted) writes a batch inside one write transaction. The inner
/// error is the planner's (an overflowing total), returned before anything is written.
fn batch_in(
    txn: &WriteTransaction,
    ops: &[BatchOp],
    now: u64,
) -> Result<Result<Planned, StoreError>, redb::Error> {
    let mut snapshot = Snapshot::default();
    {
        let counters = txn.open_table(COUNTERS)?;
        let leases = txn.open_table(LEASES)?;
        for op in ops {
            let key = op.key();
            match op {
                BatchOp::Add { .. } => {
                    if let Some((total, expires_at_ms)) = live_counter(&counters, key, now)? {
                        let counter = Counter {
                            total,
                            expires_at_ms,
                        };
                        snapshot.counters.insert(key.to_owned(), counter);
                    }
                }
                BatchOp::Acquire { .. } | BatchOp::Release { .. } => {
                    if !snapshot.leases.contains_key(key) {
                        snapshot
                            .leases
                            .insert(key.to_owned(), lease_rows(&leases, key)?);
                    }
                }
            }
        }
    }
    let planned = match batch::plan(ops, &snapshot, now) {
        Ok(planned) => planned,
        Err(e) => return Ok(Err(e)),
    };
    if let Planned::Applied(plan) = &planned {
        let mut counters = txn.open_table(COUNTERS)?;
        for (key, c) in &plan.counters {
            counters.insert(key.as_str(), (c.total, c.expires_at_ms))?;
        }
        let mut leases = txn.open_table(LEASES)?;
        for (set, live) in &plan.leases {
            for holder in snapshot
                .leases
                .get(set)
                .into_iter()
                .flat_map(|rows| rows.keys())
            {
                leases.remove((set.as_str(), holder.as_str()))?;
            }
            for (holder, expires) in live {
                leases.insert((set.as_str(), holder.as_str()), *expires)?;
            }
        }
    }
    Ok(Ok(planned))
}

/// The next log sequence, persisted in the same transaction as the entry it orders.
fn next_log_sequence(txn: &WriteTransaction) -> Result<u64, redb::Error> {
    let mut meta = txn.open_table(META)?;
    let next = meta.get(LOG_SEQUENCE)?.map_or(0, |g| g.value()) + 1;
    meta.insert(LOG_SEQUENCE, next)?;
    Ok(next)
}

#[async_trait::async_trait]
impl Store for EmbeddedStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let (key, now) = (key.to_owned(), self.clock.now_ms());
        self.read(move |txn| {
            let table = txn.open_table(RECORDS)?;
            let found = table.get(key.as_str())?;
            Ok(found.and_then(|g| {
                let (expires, value) = g.value();
                live(expires, now).then(|| value.to_vec())
            }))
        })
        .await
    }

    async fn put(&self, key: &str, value: &[u8], ttl_ms: Option<u64>) -> Result<(), StoreError> {
        let (key, value) = (key.to_owned(), value.to_vec());
        let expires = expiry(ttl_ms, self.clock.now_ms());
        self.write(move |txn| {
            txn.open_table(RECORDS)?
                .insert(key.as_str(), (expires, value.as_slice()))?;
            Ok(())
        })
        .await
    }

    async fn put_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl_ms: Option<u64>,
    ) -> Result<bool, StoreError> {
        let (key, value, now) = (key.to_owned(), value.to_vec(), self.clock.now_ms());
        self.write(move |txn| {
            let mut table = txn.open_table(RECORDS)?;
            if record_is_live(&table, &key, now)? {
                return Ok(false);
            }
            table.insert(key.as_str(), (expiry(ttl_ms, now), value.as_slice()))?;
            Ok(true)
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let (key, now) = (key.to_owned(), self.clock.now_ms());
        self.write(move |txn| {
            let mut table = txn.open_table(RECORDS)?;
            let removed = table.remove(key.as_str())?;
            Ok(removed.is_some_and(|g| live(g.value().0, now)))
        })
        .await
    }

    async fn list_prefix(&self, prefix: &str, limit: usize) -> Result<Vec<Entry>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (prefix, now) = (prefix.to_owned(), self.clock.now_ms());
        self.read(move |txn| {
            let table = txn.open_table(RECORDS)?;
            let mut out = Vec::new();
            // Keys sort bytewise, so the keys with the prefix are one run starting at it.
            for item in table.range(prefix.as_str()..)? {
                let (key, value) = item?;
                let key = key.value();
                if !key.starts_with(prefix.as_str()) {
                    break;
                }
                let (expires, value) = value.value();
                if live(expires, now) {
                    out.push(Entry {
                        key: key.to_owned(),
                        value: value.to_vec(),
                    });
                    if out.len() == limit {
                        break;
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    async fn counter_add(
        &self,
        key: &str,
        delta: i64,
        ttl_ms: Option<u64>,
    ) -> Result<i64, StoreError> {
        let (key, now) = (key.to_owned(), self.clock.now_ms());
        self.write(move |txn| add_in(txn, &key, delta, ttl_ms, now))
            .await
    }

    async fn counter_add_capped(
        &self,
        key: &str,
        delta: i64,
        ceiling: i64,
        ttl_ms: Option<u64>,
    ) -> Result<CapOutcome, StoreError> {
        let (key, now) = (key.to_owned(), self.clock.now_ms());
        // Check and add in one write transaction: no other write can land in between.
        self.write(move |txn| {
            let current = {
                let table = txn.open_table(COUNTERS)?;
                live_counter(&table, &key, now)?.map_or(0, |(total, _)| total)
            };
            if current.saturating_add(delta) > ceiling {
                return Ok(CapOutcome::Refused(current));
            }
            Ok(CapOutcome::Added(add_in(txn, &key, delta, ttl_ms, now)?))
        })
        .await
    }

    async fn counter_get(&self, key: &str) -> Result<i64, StoreError> {
        let (key, now) = (key.to_owned(), self.clock.now_ms());
        self.read(move |txn| {
            let table = txn.open_table(COUNTERS)?;
            Ok(live_counter(&table, &key, now)?.map_or(0, |(total, _)| total))
        })
        .await
    }

    async fn batch(&self, ops: &[BatchOp]) -> Result<BatchOutcome, StoreError> {
        let (ops, now) = (ops.to_vec(), self.clock.now_ms());
        // Read, decide and write in one write transaction: nothing lands in between.
        let planned = self.write(move |txn| batch_in(txn, &ops, now)).await??;
        Ok(planned.outcome())
    }

    async fn lease_count(&self, key: &str) -> Result<i64, StoreError> {
        let (key, now) = (key.to_owned(), self.clock.now_ms());
        self.read(move |txn| {
            let table = txn.open_table(LEASES)?;
            Ok(batch::live_count(&lease_rows(&table, &key)?, now))
        })
        .await
    }

    async fn log_append(&self, log: &str, at_ms: u64, data: &[u8]) -> Result<(), StoreError> {
        let (log, data) = (log.to_owned(), data.to_vec());
        self.write(move |txn| {
            let sequence = next_log_sequence(txn)?;
            txn.open_table(LOGS)?
                .insert((log.as_str(), at_ms, sequence), data.as_slice())?;
            Ok(())
        })
        .await
    }

    async fn log_range(
        &self,
        log: &str,
        from_ms: u64,
        to_ms: u64,
        limit: usize,
    ) -> Result<Vec<LogEntry>, StoreError> {
        if from_ms >= to_ms || limit == 0 {
            return Ok(Vec::new());
        }
        let log = log.to_owned();
        self.read(move |txn| {
            let table = txn.open_table(LOGS)?;
            // Sequences start at 1, so (log, t, 0) sorts before every entry at time t: the
            // range is exactly from_ms <= at_ms < to_ms.
            let range = table.range((log.as_str(), from_ms, 0)..(log.as_str(), to_ms, 0))?;
            let mut out = Vec::new();
            for item in range.take(limit) {
                let (key, data) = item?;
                out.push(LogEntry {
                    at_ms: key.value().1,
                    data: data.value().to_vec(),
                });
            }
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::ReadableTableMetadata;
    use std::sync::atomic::{AtomicU64, Ordering};
    use tollgate_core::store::conformance::{self, ManualClock};

    /// A unique directory under the system temp dir, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let unique = format!(
                "tollgate-embedded-{name}-{}-{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos()),
                NEXT.fetch_add(1, Ordering::Relaxed)
            );
            TempDir(std::env::temp_dir().join(unique))
        }

        fn db(&self) -> PathBuf {
            self.0.join("nested").join("store.redb")
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn manual_store(dir: &TempDir) -> (EmbeddedStore, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::default());
        let store = EmbeddedStore::open(&dir.db(), clock.clone()).expect("open store");
        (store, clock)
    }

    #[tokio::test]
    async fn embedded_store_passes_the_conformance_suite() {
        let dir = TempDir::new("conformance");
        let (store, clock) = manual_store(&dir);
        conformance::run_all(&store, clock.as_ref(), "emb").await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn embedded_store_never_passes_a_ceiling_under_concurrency() {
        let dir = TempDir::new("concurrency");
        let (store, _clock) = manual_store(&dir);
        conformance::concurrent_ceiling(&store, "emb-conc", 8, 50, 100).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn embedded_store_batches_are_all_or_nothing_under_concurrency() {
        let dir = TempDir::new("batch-concurrency");
        let (store, _clock) = manual_store(&dir);
        conformance::concurrent_batches(&store, "emb-batch", 8, 30).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn spawned_tasks_sharing_one_store_lose_no_increment() {
        let dir = TempDir::new("threads");
        let (store, _clock) = manual_store(&dir);
        let store = Arc::new(store);
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    for _ in 0..25 {
                        store.counter_add("shared", 1, None).await.unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(store.counter_get("shared").await.unwrap(), 200);
    }

    #[tokio::test]
    async fn data_survives_a_reopen() {
        let dir = TempDir::new("reopen");
        let clock = Arc::new(ManualClock::default());
        {
            let store = EmbeddedStore::open(&dir.db(), clock.clone()).unwrap();
            store.put("key:a", b"alpha", None).await.unwrap();
            store.put("key:b", b"beta", Some(60_000)).await.unwrap();
            store.counter_add("spend", 7, Some(60_000)).await.unwrap();
            store.log_append("audit", 20, b"second").await.unwrap();
            store.log_append("audit", 10, b"first").await.unwrap();
        }
        let store = EmbeddedStore::open(&dir.db(), clock.clone()).unwrap();
        let keys: Vec<_> = store.list_prefix("key:", 10).await.unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(
            store.get("key:a").await.unwrap().as_deref(),
            Some(&b"alpha"[..])
        );
        assert_eq!(store.counter_get("spend").await.unwrap(), 7);
        // Append order continues after the reopen: a same-time entry sorts after older ones.
        store.log_append("audit", 20, b"third").await.unwrap();
        let log: Vec<_> = store
            .log_range("audit", 0, 100, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.data)
            .collect();
        assert_eq!(log, [&b"first"[..], b"second", b"third"]);
        // The TTLs were stored too: past them, the record and counter are gone.
        clock.sleep(60_001).await;
        assert_eq!(store.get("key:b").await.unwrap(), None);
        assert_eq!(store.counter_get("spend").await.unwrap(), 0);
    }

    #[tokio::test]
    async fn purge_removes_only_expired_entries() {
        let dir = TempDir::new("purge");
        let (store, clock) = manual_store(&dir);
        store.put("short", b"s", Some(10)).await.unwrap();
        store.put("long", b"l", None).await.unwrap();
        store.counter_add("window", 1, Some(10)).await.unwrap();
        clock.sleep(11).await;
        store.purge_expired().await.unwrap();
        let db = Arc::clone(&store.db);
        let (records, counters) = tokio::task::spawn_blocking(move || {
            let txn = db.begin_read().unwrap();
            let records = txn.open_table(RECORDS).unwrap().len().unwrap();
            let counters = txn.open_table(COUNTERS).unwrap().len().unwrap();
            (records, counters)
        })
        .await
        .unwrap();
        assert_eq!((records, counters), (1, 0));
        assert_eq!(store.get("long").await.unwrap().as_deref(), Some(&b"l"[..]));
    }

    #[tokio::test]
    async fn a_second_open_of_the_same_file_is_refused() {
        let dir = TempDir::new("twice");
        let (_store, clock) = manual_store(&dir);
        match EmbeddedStore::open(&dir.db(), clock) {
            Err(StoreError::Unavailable(m)) => {
                assert!(m.contains("already open"), "{m}");
                assert!(m.contains(&dir.db().display().to_string()), "{m}");
            }
            Err(other) => panic!("expected Unavailable, got {other:?}"),
            Ok(_) => panic!("a second open of one file must be refused"),
        }
    }

    #[tokio::test]
    async fn an_unwritable_location_is_unavailable_and_named() {
        let dir = TempDir::new("unwritable");
        std::fs::create_dir_all(&dir.0).unwrap();
        let file = dir.0.join("plain-file");
        std::fs::write(&file, b"not a directory").unwrap();
        let path = file.join("store.redb");
        match EmbeddedStore::open(&path, Arc::new(ManualClock::default())) {
            Err(StoreError::Unavailable(m)) => {
                assert!(m.contains(&path.display().to_string()), "{m}")
            }
            Err(other) => panic!("expected Unavailable, got {other:?}"),
            Ok(_) => panic!("opening under a regular file must fail"),
        }
    }
}
