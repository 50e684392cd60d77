//! Redis (and ElastiCache / Valkey) Store backend.
//!
//! One `ConnectionManager` (a multiplexed connection that reconnects) per store; clones share
//! it. Every operation is one command or one Lua script, so each is atomic on the server, and
//! each is bounded by the store's operation timeout.
//!
//! The key layout and the scripts are `tollgate_core::store::redis_protocol`, shared with the
//! Upstash (REST) backend. Values are stored as raw bytes here.
//!
//! The scripts touch keys they compute (`r:..` from index members), so this needs a single
//! primary (standalone, primary + replicas, ElastiCache with cluster mode disabled), not
//! Redis Cluster.

use std::future::Future;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, FromRedisValue, RedisError, RedisResult, Script, ServerErrorKind};
use tollgate_core::store::redis_protocol::{
    self as protocol, counter_key, record_key, ScriptCall, ScriptId,
};
use tollgate_core::store::{BatchOp, BatchOutcome, CapOutcome, Entry, LogEntry, Store, StoreError};

#[cfg(test)]
use tollgate_core::store::redis_protocol::{EXPIRY_INDEX, RECORD_INDEX};

static PUT: LazyLock<Script> = LazyLock::new(|| Script::new(protocol::PUT));
static DELETE: LazyLock<Script> = LazyLock::new(|| Script::new(protocol::DELETE));
static LIST: LazyLock<Script> = LazyLock::new(|| Script::new(protocol::LIST));
static COUNTER_ADD: LazyLock<Script> = LazyLock::new(|| Script::new(protocol::COUNTER_ADD));
static COUNTER_ADD_CAPPED: LazyLock<Script> =
    LazyLock::new(|| Script::new(protocol::COUNTER_ADD_CAPPED));
static LOG_APPEND: LazyLock<Script> = LazyLock::new(|| Script::new(protocol::LOG_APPEND));
static BATCH: LazyLock<Script> = LazyLock::new(|| Script::new(protocol::BATCH));
static LEASE_COUNT: LazyLock<Script> = LazyLock::new(|| Script::new(protocol::LEASE_COUNT));

/// The loaded script (EVALSHA with its hash, EVAL on NOSCRIPT) for a protocol script.
fn script(id: ScriptId) -> &'static Script {
    match id {
        ScriptId::Put => &PUT,
        ScriptId::Delete => &DELETE,
        ScriptId::List => &LIST,
        ScriptId::CounterAdd => &COUNTER_ADD,
        ScriptId::CounterAddCapped => &COUNTER_ADD_CAPPED,
        ScriptId::LogAppend => &LOG_APPEND,
        ScriptId::Batch => &BATCH,
        ScriptId::LeaseCount => &LEASE_COUNT,
    }
}

#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    op_timeout: Duration,
    /// The current manager and its generation (see [`RedisStore::renew`]).
    manager: Mutex<(u64, ConnectionManager)>,
}

impl std::fmt::Debug for RedisStore {
    /// Host and port only: never the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let info = self.inner.client.get_connection_info();
        let tls = matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. });
        f.debug_struct("RedisStore")
            .field(
                "server",
                &format!("{}://{}", if tls { "rediss" } else { "redis" }, info.addr()),
            )
            .field("op_timeout", &self.inner.op_timeout)
            .finish()
    }
}

impl RedisStore {
    /// Connects to `url` (`redis://` or `rediss://` for TLS, e.g. ElastiCache in-transit
    /// encryption; `[user][:password]@host[:port][/db]`) and checks the server answers. The
    /// connection is re-established on later operations if it drops.
    pub async fn connect(url: &str, op_timeout: Duration) -> Result<RedisStore, StoreError> {
        let store = RedisStore::connect_lazy(url, op_timeout)?;
        let pong: String = store.query(&redis::cmd("PING")).await?;
        if pong != "PONG" {
            return Err(StoreError::Corrupt("unexpected PING reply".into()));
        }
        Ok(store)
    }

    /// Like [`connect`](Self::connect) but does not touch the network: the first operation
    /// connects. For hosts that must start while Redis is down (then each operation fails with
    /// `Unavailable`/`Timeout` until it is back). Must be called inside a Tokio runtime.
    pub fn connect_lazy(url: &str, op_timeout: Duration) -> Result<RedisStore, StoreError> {
        let client = redis::Client::open(url)
            .map_err(|e| StoreError::Unavailable(format!("invalid Redis URL: {}", e.category())))?;
        let manager = new_manager(&client, op_timeout)?;
        Ok(RedisStore {
            inner: Arc::new(Inner {
                client,
                op_timeout,
                manager: Mutex::new((0, manager)),
            }),
        })
    }

    /// The current connection manager and its generation.
    fn manager(&self) -> (u64, ConnectionManager) {
        let guard = self.inner.manager.lock().unwrap_or_else(|p| p.into_inner());
        (guard.0, guard.1.clone())
    }

    /// Replaces the manager that produced `failed_generation` with a fresh one. The manager
    /// reconnects by itself only after I/O errors; a connection attempt that fails otherwise
    /// (AUTH refused, LOADING after a restart) would be kept forever, and a connection left on a
    /// node demoted to replica (READONLY) is never dropped.
    fn renew(&self, failed_generation: u64) {
        let mut guard = self.inner.manager.lock().unwrap_or_else(|p| p.into_inner());
        if guard.0 != failed_generation {
            return; // another caller already renewed it
        }
        if let Ok(fresh) = new_manager(&self.inner.client, self.inner.op_timeout) {
            *guard = (failed_generation + 1, fresh);
        }
    }

    /// Runs one command within the operation timeout.
    async fn query<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, StoreError> {
        let (generation, mut conn) = self.manager();
        self.bounded(generation, cmd.query_async(&mut conn)).await
    }

    /// Runs one script (EVALSHA, loading it first if the server lacks it) within the timeout.
    async fn run<T: FromRedisValue>(&self, call: &ScriptCall<'_>) -> Result<T, StoreError> {
        let mut invocation = script(call.script).prepare_invoke();
        for key in &call.keys {
            invocation.key(key);
        }
        for arg in &call.args {
            invocation.arg(arg.as_ref());
        }
        let (generation, mut conn) = self.manager();
        self.bounded(generation, invocation.invoke_async(&mut conn))
            .await
    }

    async fn bounded<T>(
        &self,
        generation: u64,
        op: impl Future<Output = RedisResult<T>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.inner.op_timeout, op).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                if needs_new_connection(&e) {
                    self.renew(generation);
                }
                Err(store_error(&e))
            }
            Err(_) => Err(StoreError::Timeout),
        }
    }

    async fn write_record(
        &self,
        key: &str,
        value: &[u8],
        ttl_ms: Option<u64>,
        only_if_absent: bool,
    ) -> Result<bool, StoreError> {
        let call = protocol::put_call(key, value, ttl_ms, only_if_absent, now_ms());
        let written: i64 = self.run(&call).await?;
        Ok(written == 1)
    }
}

fn new_manager(
    client: &redis::Client,
    op_timeout: Duration,
) -> Result<ConnectionManager, StoreError> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(StoreError::Unavailable(
            "the Redis store needs a Tokio runtime".into(),
        ));
    }
    // No retries inside the manager: the operation timeout is the whole budget, and the next
    // operation after a failed attempt starts a new one anyway.
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(op_timeout))
        .set_response_timeout(Some(op_timeout))
        .set_number_of_retries(0);
    ConnectionManager::new_lazy_with_config(client.clone(), config).map_err(|e| store_error(&e))
}

/// Errors after which the connection must be replaced (see [`RedisStore::renew`]).
fn needs_new_connection(e: &RedisError) -> bool {
    matches!(
        e.kind(),
        ErrorKind::AuthenticationFailed
            | ErrorKind::Server(ServerErrorKind::BusyLoading)
            | ErrorKind::Server(ServerErrorKind::ReadOnly)
            | ErrorKind::Server(ServerErrorKind::MasterDown)
    ) || matches!(e.code(), Some("WRONGPASS" | "NOAUTH"))
}

/// Maps a Redis error to the store's. Messages come from the error kind and the server's reply,
/// never from the URL, so they carry no credentials; unreadable data is not echoed.
fn store_error(e: &RedisError) -> StoreError {
    if e.is_timeout() {
        return StoreError::Timeout;
    }
    let wrong_data = matches!(e.kind(), ErrorKind::Parse | ErrorKind::UnexpectedReturnType)
        || matches!(e.code(), Some("WRONGTYPE" | "CORRUPT"))
        || e.detail().is_some_and(|d| d.contains("not an integer"));
    if wrong_data {
        StoreError::Corrupt(format!("redis: {}", e.category()))
    } else {
        StoreError::Unavailable(format!("redis: {e}"))
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Splits a log member back into `at_ms` and data.
fn parse_log_member(member: Vec<u8>) -> Result<LogEntry, StoreError> {
    let (at_ms, data) = protocol::parse_log_member(&member)
        .ok_or_else(|| StoreError::Corrupt("redis: malformed log entry".into()))?;
    Ok(LogEntry {
        at_ms,
        data: data.to_vec(),
    })
}

#[async_trait::async_trait]
impl Store for RedisStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.query(redis::cmd("GET").arg(record_key(key))).await
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
        let removed: i64 = self.run(&protocol::delete_call(key)).await?;
        Ok(removed > 0)
    }

    async fn list_prefix(&self, prefix: &str, limit: usize) -> Result<Vec<Entry>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let flat: Vec<Vec<u8>> = self.run(&protocol::list_call(prefix, limit)).await?;
        protocol::pairs(flat)
            .into_iter()
            .map(|(key, value)| {
                let key = String::from_utf8(key).map_err(|_| {
                    StoreError::Corrupt("redis: record index key is not UTF-8".into())
                })?;
                Ok(Entry { key, value })
            })
            .collect()
    }

    async fn counter_add(
        &self,
        key: &str,
        delta: i64,
        ttl_ms: Option<u64>,
    ) -> Result<i64, StoreError> {
        self.run(&protocol::counter_add_call(key, delta, ttl_ms))
            .await
    }

    async fn counter_add_capped(
        &self,
        key: &str,
        delta: i64,
        ceiling: i64,
        ttl_ms: Option<u64>,
    ) -> Result<CapOutcome, StoreError> {
        let (added, total): (i64, i64) = self
            .run(&protocol::counter_add_capped_call(
                key, delta, ceiling, ttl_ms,
            ))
            .await?;
        Ok(protocol::cap_outcome(added, total))
    }

    async fn counter_get(&self, key: &str) -> Result<i64, StoreError> {
        let total: Option<i64> = self.query(redis::cmd("GET").arg(counter_key(key))).await?;
        Ok(total.unwrap_or(0))
    }

    /// One `EVALSHA` of the shared batch script: atomic on the server (see
    /// `redis_protocol::BATCH`).
    async fn batch(&self, ops: &[BatchOp]) -> Result<BatchOutcome, StoreError> {
        if ops.is_empty() {
            return Ok(BatchOutcome::Applied(Vec::new()));
        }
        let reply: Vec<i64> = self.run(&protocol::batch_call(ops)).await?;
        protocol::batch_outcome(&reply, ops.len())
            .ok_or_else(|| StoreError::Corrupt("redis: unexpected batch reply".into()))
    }

    async fn lease_count(&self, key: &str) -> Result<i64, StoreError> {
        self.run(&protocol::lease_count_call(key)).await
    }

    async fn log_append(&self, log: &str, at_ms: u64, data: &[u8]) -> Result<(), StoreError> {
        let _sequence: i64 = self
            .run(&protocol::log_append_call(log, at_ms, data))
            .await?;
        Ok(())
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
        let members: Vec<Vec<u8>> = self
            .query(
                redis::cmd("ZRANGEBYSCORE")
                    .arg(&protocol::log_range_args(log, from_ms, to_ms, limit)[..]),
            )
            .await?;
        members.into_iter().map(parse_log_member).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::process::Command;
    use std::time::Instant;

    use futures_util::future::join_all;
    use tollgate_core::store::conformance::{
        batch_hammer, check_batch_totals, concurrent_batches, concurrent_ceiling, run_all,
        BATCH_MAX_APPLIED,
    };

    use super::*;
    use crate::clock::SystemClock;
    use crate::test_support::{free_port, start_redis_on, ChildServer};

    const OP_TIMEOUT: Duration = Duration::from_millis(500);
    /// Slack on top of the operation timeout before a fault test calls it a hang.
    const MARGIN: Duration = Duration::from_millis(700);

    fn start_redis() -> ChildServer {
        crate::test_support::start_redis(&[])
    }

    fn url(port: u16) -> String {
        format!("redis://127.0.0.1:{port}")
    }

    async fn store_for(server: &ChildServer) -> RedisStore {
        RedisStore::connect(&url(server.port), Duration::from_secs(5))
            .await
            .expect("connect to the test redis-server")
    }

    fn unique_prefix(name: &str) -> String {
        format!("t{}-{}-{name}", std::process::id(), now_ms())
    }

    /// Raw access for checks the Store API cannot express (index contents).
    async fn raw<T: FromRedisValue>(store: &RedisStore, cmd: &redis::Cmd) -> T {
        store.query(cmd).await.expect("raw command")
    }

    async fn index_members(store: &RedisStore, index: &str, prefix: &str) -> Vec<String> {
        let max = [b"(", prefix.as_bytes(), b"\xff"].concat();
        raw(
            store,
            redis::cmd("ZRANGEBYLEX")
                .arg(index)
                .arg(format!("[{prefix}"))
                .arg(max),
        )
        .await
    }

    fn assert_fails_fast(result: Result<impl std::fmt::Debug, StoreError>, started: Instant) {
        assert!(
            matches!(
                result,
                Err(StoreError::Unavailable(_) | StoreError::Timeout)
            ),
            "expected Unavailable or Timeout, got {result:?}"
        );
        assert!(
            started.elapsed() < OP_TIMEOUT + MARGIN,
            "took {:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn conformance_suite() {
        let server = start_redis();
        let store = store_for(&server).await;
        run_all(&store, &SystemClock, &unique_prefix("conf")).await;
    }

    #[tokio::test]
    async fn concurrent_ceiling_on_one_connection_manager() {
        let server = start_redis();
        let store = store_for(&server).await;
        concurrent_ceiling(&store, &unique_prefix("conc1"), 8, 50, 100).await;
    }

    #[tokio::test]
    async fn concurrent_batches_on_one_connection_manager() {
        let server = start_redis();
        let store = store_for(&server).await;
        concurrent_batches(&store, &unique_prefix("batch1"), 8, 30).await;
    }

    /// The same check as `concurrent_batches`, with each client on its own connection.
    #[tokio::test]
    async fn concurrent_batches_on_separate_connections() {
        let server = start_redis();
        let stores = join_all((0..8).map(|_| store_for(&server))).await;
        let p = unique_prefix("batch8");
        let holders: Vec<String> = (0..stores.len()).map(|i| format!("conn{i}")).collect();
        let hammers = stores
            .iter()
            .zip(&holders)
            .map(|(s, holder)| batch_hammer(s, &p, holder, 1, 30));
        let tallies = join_all(hammers).await;
        let applied: i64 = tallies.iter().map(|t| t.applied).sum();
        assert_eq!(applied, BATCH_MAX_APPLIED);
        check_batch_totals(&stores[0], &p, applied).await;
    }

    /// The same check as `concurrent_ceiling`, with each client on its own connection.
    #[tokio::test]
    async fn concurrent_ceiling_on_separate_connections() {
        let server = start_redis();
        let stores = join_all((0..8).map(|_| store_for(&server))).await;
        let p = unique_prefix("conc8");
        let (capped, plain) = (format!("{p}:capped"), format!("{p}:plain"));
        let workers = stores.iter().map(|s| async {
            let mut added = 0;
            for _ in 0..50 {
                match s.counter_add_capped(&capped, 1, 100, None).await.unwrap() {
                    CapOutcome::Added(total) => {
                        assert!(total <= 100);
                        added += 1;
                    }
                    CapOutcome::Refused(total) => assert_eq!(total, 100),
                }
                s.counter_add(&plain, 1, None).await.unwrap();
            }
            added
        });
        let added: i64 = join_all(workers).await.into_iter().sum();
        assert_eq!(added, 100);
        assert_eq!(stores[0].counter_get(&capped).await.unwrap(), 100);
        assert_eq!(stores[0].counter_get(&plain).await.unwrap(), 400);
    }

    const WORKER_PORT: &str = "TOLLGATE_REDIS_WORKER_PORT";
    const WORKER_PREFIX: &str = "TOLLGATE_REDIS_WORKER_PREFIX";
    const WORKER_START_MS: &str = "TOLLGATE_REDIS_WORKER_START_MS";
    const WORKER_TASKS: usize = 4;
    const WORKER_ATTEMPTS: usize = 75; // per task: 300 capped + 300 plain adds per process
    const TWO_PROCESS_CEILING: i64 = 450;

    /// Run by `two_processes_share_counters` in child processes; does nothing on its own.
    #[tokio::test]
    #[ignore = "helper: run in a child process by two_processes_share_counters"]
    async fn two_process_worker() {
        let var = |name| std::env::var(name).ok();
        let (Some(port), Some(p), Some(start)) =
            (var(WORKER_PORT), var(WORKER_PREFIX), var(WORKER_START_MS))
        else {
            return;
        };
        let store = RedisStore::connect(&url(port.parse().unwrap()), Duration::from_secs(5))
            .await
            .unwrap();
        // Both processes start hammering at the same moment.
        let start: u64 = start.parse().unwrap();
        tokio::time::sleep(Duration::from_millis(start.saturating_sub(now_ms()))).await;
        let (capped, plain) = (format!("{p}:capped"), format!("{p}:plain"));
        let tasks = (0..WORKER_TASKS).map(|_| async {
            let mut added = 0;
            for _ in 0..WORKER_ATTEMPTS {
                let outcome = store
                    .counter_add_capped(&capped, 1, TWO_PROCESS_CEILING, None)
                    .await
                    .unwrap();
                if let CapOutcome::Added(total) = outcome {
                    assert!(total <= TWO_PROCESS_CEILING);
                    added += 1;
                }
                store.counter_add(&plain, 1, None).await.unwrap();
            }
            added
        });
        let added: i64 = join_all(tasks).await.into_iter().sum();
        println!("capped_added={added}");
        let holder = format!("pid{}", std::process::id());
        let tally = batch_hammer(&store, &format!("{p}:batch"), &holder, WORKER_TASKS, 30).await;
        println!("batch_applied={}", tally.applied);
    }

    #[tokio::test]
    async fn two_processes_share_counters() {
        let server = start_redis();
        let p = unique_prefix("procs");
        let test_name = format!(
            "{}::two_process_worker",
            module_path!().split_once("::").map_or("", |(_, rest)| rest)
        );
        let start_ms = now_ms() + 1500;
        let children: Vec<_> = (0..2)
            .map(|_| {
                Command::new(std::env::current_exe().unwrap())
                    .args([&test_name, "--exact", "--ignored", "--nocapture"])
                    .env(WORKER_PORT, server.port.to_string())
                    .env(WORKER_PREFIX, &p)
                    .env(WORKER_START_MS, start_ms.to_string())
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .expect("spawn the test binary")
            })
            .collect();
        let (mut added, mut batches) = (0, 0);
        for child in children {
            let out = child.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "worker failed: {stdout}");
            let reported = |name: &str| -> i64 {
                let line = stdout
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .unwrap_or_else(|| panic!("worker did not report {name}: {stdout}"));
                line.trim().parse().unwrap()
            };
            added += reported("capped_added=");
            batches += reported("batch_applied=");
        }
        assert!(now_ms() > start_ms, "the workers overlapped in time");
        let store = store_for(&server).await;
        assert_eq!(added, TWO_PROCESS_CEILING, "capped adds that succeeded");
        assert_eq!(
            store.counter_get(&format!("{p}:capped")).await.unwrap(),
            TWO_PROCESS_CEILING
        );
        assert_eq!(
            store.counter_get(&format!("{p}:plain")).await.unwrap(),
            (2 * WORKER_TASKS * WORKER_ATTEMPTS) as i64,
            "no increment lost"
        );
        assert_eq!(
            batches, BATCH_MAX_APPLIED,
            "batches applied, both processes"
        );
        check_batch_totals(&store, &format!("{p}:batch"), batches).await;
    }

    /// A counter released back to 0 still exists: a later add must not restart its window
    /// (inferring "created" from total == delta would get this wrong).
    #[tokio::test]
    async fn released_counter_keeps_its_window() {
        let server = start_redis();
        let store = store_for(&server).await;
        let k = format!("{}:ctr", unique_prefix("window"));
        assert_eq!(store.counter_add(&k, 1, Some(600)).await.unwrap(), 1);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(store.counter_add(&k, -1, Some(600)).await.unwrap(), 0);
        assert_eq!(store.counter_add(&k, 1, Some(600)).await.unwrap(), 1);
        assert_eq!(
            store
                .counter_add_capped(&k, 1, 10, Some(600))
                .await
                .unwrap(),
            CapOutcome::Added(2)
        );
        tokio::time::sleep(Duration::from_millis(450)).await;
        assert_eq!(
            store.counter_get(&k).await.unwrap(),
            0,
            "the window ended on time"
        );
    }

    /// Expired records are skipped even when more than a page of them precede the live ones,
    /// and listing removes them from the indexes.
    #[tokio::test]
    async fn listing_skips_and_removes_expired_records() {
        let server = start_redis();
        let store = store_for(&server).await;
        let p = unique_prefix("list");
        for k in ["b2", "b1", "b3"] {
            store
                .put(&format!("{p}:{k}"), k.as_bytes(), None)
                .await
                .unwrap();
        }
        for i in 0..300 {
            store
                .put(&format!("{p}:a{i:03}"), b"short", Some(100))
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        let listed = store.list_prefix(&format!("{p}:"), 2).await.unwrap();
        let keys: Vec<_> = listed.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, [format!("{p}:b1"), format!("{p}:b2")]);
        assert_eq!(listed[1].value, b"b2");
        let left = index_members(&store, RECORD_INDEX, &format!("{p}:")).await;
        assert_eq!(left.len(), 3, "expired members were removed: {left:?}");
        assert!(index_members(&store, EXPIRY_INDEX, &format!("{p}:"))
            .await
            .is_empty());
    }

    /// Writes clean up index members of expired records, so TTL'd records (a cache) do not
    /// grow the indexes forever even if nobody lists them.
    #[tokio::test]
    async fn writes_prune_the_indexes() {
        let server = start_redis();
        let store = store_for(&server).await;
        let p = unique_prefix("prune");
        for i in 0..40 {
            store
                .put(&format!("{p}:c{i}"), b"x", Some(50))
                .await
                .unwrap();
        }
        store
            .put(&format!("{p}:keep"), b"x", Some(60_000))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        store.put(&format!("{p}:w1"), b"x", None).await.unwrap();
        store
            .put_if_absent(&format!("{p}:w2"), b"x", None)
            .await
            .unwrap();
        let members = index_members(&store, RECORD_INDEX, &format!("{p}:")).await;
        assert_eq!(
            members,
            [format!("{p}:keep"), format!("{p}:w1"), format!("{p}:w2")]
        );
        let expiring = index_members(&store, EXPIRY_INDEX, &format!("{p}:")).await;
        assert_eq!(expiring, [format!("{p}:keep")]);
    }

    #[tokio::test]
    async fn ttl_zero_and_huge_are_accepted() {
        let server = start_redis();
        let store = store_for(&server).await;
        let p = unique_prefix("ttl");
        store
            .put(&format!("{p}:zero"), b"x", Some(0))
            .await
            .unwrap();
        store
            .put(&format!("{p}:huge"), b"x", Some(u64::MAX))
            .await
            .unwrap();
        assert_eq!(
            store
                .counter_add(&format!("{p}:c"), 1, Some(u64::MAX))
                .await
                .unwrap(),
            1
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(store.get(&format!("{p}:zero")).await.unwrap(), None);
        assert!(store.get(&format!("{p}:huge")).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn logs_keep_binary_data_and_append_order_within_a_millisecond() {
        let server = start_redis();
        let store = store_for(&server).await;
        let log = format!("{}:log", unique_prefix("log"));
        let at = 1_700_000_000_123;
        let data: Vec<Vec<u8>> = (0..20u8)
            .map(|i| vec![i, 0, 0xff, b'\n', 255 - i])
            .collect();
        for d in &data {
            store.log_append(&log, at, d).await.unwrap();
        }
        store.log_append(&log, at - 1, b"earlier").await.unwrap();
        let got = store.log_range(&log, at - 1, at + 1, 100).await.unwrap();
        assert_eq!(got[0].data, b"earlier");
        assert_eq!(got[0].at_ms, at - 1);
        assert!(got[1..].iter().all(|e| e.at_ms == at));
        let rest: Vec<_> = got[1..].iter().map(|e| e.data.clone()).collect();
        assert_eq!(rest, data);
        assert!(store.log_range(&log, at, at, 10).await.unwrap().is_empty());
        assert!(store
            .log_range(&log, 0, u64::MAX, 0)
            .await
            .unwrap()
            .is_empty());
    }

    #[tokio::test]
    async fn wrongly_typed_data_is_corrupt() {
        let server = start_redis();
        let store = store_for(&server).await;
        let k = format!("{}:c", unique_prefix("corrupt"));
        raw::<()>(&store, redis::cmd("SET").arg(counter_key(&k)).arg("abc")).await;
        assert!(matches!(
            store.counter_get(&k).await,
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            store.counter_add(&k, 1, None).await,
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            store.counter_add_capped(&k, 1, 9, None).await,
            Err(StoreError::Corrupt(_))
        ));
    }

    #[tokio::test]
    async fn nothing_listening_is_unavailable_fast() {
        let port = free_port();
        let started = Instant::now();
        let result = RedisStore::connect(&url(port), OP_TIMEOUT).await;
        assert!(
            matches!(result, Err(StoreError::Unavailable(_))),
            "{result:?}"
        );
        assert!(started.elapsed() < OP_TIMEOUT + MARGIN);

        let store = RedisStore::connect_lazy(&url(port), OP_TIMEOUT).unwrap();
        for _ in 0..3 {
            let started = Instant::now();
            let result = store.counter_add("k", 1, None).await;
            assert!(
                matches!(result, Err(StoreError::Unavailable(_))),
                "{result:?}"
            );
            assert!(started.elapsed() < OP_TIMEOUT + MARGIN);
        }
    }

    #[tokio::test]
    async fn server_stopped_midway_fails_fast_then_recovers() {
        let server = start_redis();
        let port = server.port;
        let store = RedisStore::connect(&url(port), OP_TIMEOUT).await.unwrap();
        store.put("k", b"v", None).await.unwrap();
        drop(server); // killed
        for _ in 0..3 {
            let started = Instant::now();
            assert_fails_fast(store.get("k").await, started);
            let started = Instant::now();
            assert_fails_fast(store.counter_add_capped("c", 1, 5, None).await, started);
        }
        let _server = start_redis_on(port, &[]);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match store.counter_add_capped("c", 1, 5, None).await {
                Ok(outcome) => {
                    assert_eq!(outcome, CapOutcome::Added(1), "a fresh server");
                    break;
                }
                Err(e) => assert!(Instant::now() < deadline, "never reconnected: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A server that accepts connections but never answers.
    #[tokio::test]
    async fn silent_server_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let started = Instant::now();
        let result = RedisStore::connect(&url(port), OP_TIMEOUT).await;
        assert!(matches!(result, Err(StoreError::Timeout)), "{result:?}");
        assert!(started.elapsed() < OP_TIMEOUT + MARGIN);

        let store = RedisStore::connect_lazy(&url(port), OP_TIMEOUT).unwrap();
        for _ in 0..2 {
            let started = Instant::now();
            let result = store.get("k").await;
            assert!(matches!(result, Err(StoreError::Timeout)), "{result:?}");
            assert!(started.elapsed() < OP_TIMEOUT + MARGIN);
            let started = Instant::now();
            let result = store.counter_add_capped("c", 1, 5, None).await;
            assert!(matches!(result, Err(StoreError::Timeout)), "{result:?}");
            assert!(started.elapsed() < OP_TIMEOUT + MARGIN);
        }
        drop(listener);
    }

    /// `rediss://` builds a TLS client (a crypto provider is present: rustls would panic
    /// otherwise); against a plain server the handshake fails cleanly.
    #[tokio::test]
    async fn tls_url_against_a_plain_server_fails_cleanly() {
        let server = start_redis();
        let started = Instant::now();
        let result =
            RedisStore::connect(&format!("rediss://127.0.0.1:{}", server.port), OP_TIMEOUT).await;
        assert_fails_fast(result, started);
    }

    #[tokio::test]
    async fn password_from_env_vars_authenticates_and_is_never_shown() {
        let password = "p@ss:w/rd#1 %é";
        let server = start_redis_on(free_port(), &["--requirepass", password]);
        let port = server.port.to_string();
        let env = |user: Option<&'static str>, pass: &'static str| {
            let port = port.clone();
            tollgate_core::store::settings::redis_url_from_env(&move |name: &str| match name {
                "REDIS_HOST" => Some("127.0.0.1".into()),
                "REDIS_PORT" => Some(port.clone()),
                "REDIS_USERNAME" => user.map(String::from),
                "REDIS_PASSWORD" => Some(pass.into()),
                _ => None,
            })
            .unwrap()
        };
        for user in [None, Some("default")] {
            let store = RedisStore::connect(&env(user, "p@ss:w/rd#1 %é"), OP_TIMEOUT)
                .await
                .expect("authenticated");
            store.put("k", b"v", None).await.unwrap();
            assert!(!format!("{store:?}").contains("p@ss"), "{store:?}");
        }
        let wrong = RedisStore::connect(&env(None, "wrong-s3cret"), OP_TIMEOUT).await;
        match wrong {
            Err(StoreError::Unavailable(m)) => assert!(!m.contains("s3cret"), "{m}"),
            other => panic!("expected Unavailable, got {other:?}"),
        }
        let nobody = RedisStore::connect(
            &format!("redis://:s3cret@127.0.0.1:{}", free_port()),
            OP_TIMEOUT,
        )
        .await;
        assert!(!format!("{nobody:?}").contains("s3cret"));
    }

    /// A connection refused at AUTH is replaced, so the store heals once the password matches
    /// (e.g. after a rotation), instead of keeping the failed connection forever.
    #[tokio::test]
    async fn failed_authentication_is_retried_with_a_new_connection() {
        let server = start_redis_on(free_port(), &["--requirepass", "old"]);
        let admin = RedisStore::connect(
            &format!("redis://:old@127.0.0.1:{}", server.port),
            OP_TIMEOUT,
        )
        .await
        .unwrap();
        let store = RedisStore::connect_lazy(
            &format!("redis://:new@127.0.0.1:{}", server.port),
            OP_TIMEOUT,
        )
        .unwrap();
        assert!(matches!(
            store.get("k").await,
            Err(StoreError::Unavailable(_))
        ));
        raw::<()>(
            &admin,
            redis::cmd("CONFIG")
                .arg("SET")
                .arg("requirepass")
                .arg("new"),
        )
        .await;
        assert_eq!(store.get("k").await, Ok(None), "renewed after the failure");
    }

    #[test]
    fn connect_lazy_outside_a_runtime_is_an_error_not_a_panic() {
        let result = RedisStore::connect_lazy("redis://127.0.0.1:1", OP_TIMEOUT);
        assert!(matches!(result, Err(StoreError::Unavailable(_))));
        let bad = RedisStore::connect_lazy("not a url", OP_TIMEOUT);
        assert!(matches!(bad, Err(StoreError::Unavailable(_))));
    }
}
