//! What the governance families' tests share: a gateway with a mock model, keys of each role,
//! and a Store a test can take down or count the writes of.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::Value;

use crate::gateway::tests::{call, run};
use crate::gateway::Gateway;
use crate::identity::records::{KeyRecord, Role, UserRecord};
use crate::identity::token;
use crate::store::memory::MemoryStore;
use crate::store::{BatchOp, BatchOutcome, CapOutcome, Entry, LogEntry, Store, StoreError};

pub const CONFIG: &str = "model_list:\n  - model_name: m\n    litellm_params: {model: mock/x, mock_response: hi}\ngeneral_settings:\n  master_key: sk-master\n";

pub const MASTER: &str = "sk-master";

/// `POST path` with `body` as the master key: the status and the JSON answer.
pub fn master_post(gw: &Gateway, path: &str, body: Value) -> (u16, Value) {
    call(gw, "POST", path, MASTER, Some(body))
}

/// `GET path` as the master key: the status and the JSON answer.
pub fn master_get(gw: &Gateway, path: &str) -> (u16, Value) {
    call(gw, "GET", path, MASTER, None)
}

/// Stores the key `raw` for a user `user_id` of `role` (the user is written too), on
/// `team_id` if given.
pub fn key_for(gw: &Gateway, raw: &str, user_id: &str, role: Role, team_id: Option<&str>) {
    run(gw.directory().put_user(
        user_id,
        UserRecord {
            user_id: user_id.into(),
            user_role: role,
            ..Default::default()
        },
    ))
    .unwrap();
    let t = token::hash(raw);
    run(gw.directory().put_key(
        &t,
        KeyRecord {
            token: t.clone(),
            key_name: token::display_name(raw),
            user_id: Some(user_id.into()),
            team_id: team_id.map(str::to_string),
            ..Default::default()
        },
    ))
    .unwrap();
}

/// A gateway with a viewer key (`sk-viewer`) and an internal user's key (`sk-internal`).
pub fn gateway() -> Gateway {
    gateway_on(CONFIG).0
}

/// A gateway on `yaml` (with the two keys of [`gateway`]) and its Store, which a test can
/// take down and whose writes it can count.
pub fn gateway_on(yaml: &str) -> (Gateway, Arc<WatchedStore>) {
    use crate::gateway::tests::{ports, FixedClock, HeldTasks, ScriptedClient};
    let clock: Arc<dyn crate::ports::Clock> = Arc::new(FixedClock);
    let store = Arc::new(WatchedStore {
        inner: MemoryStore::new(clock.clone()),
        down: AtomicBool::new(false),
        writes: AtomicUsize::new(0),
    });
    let gw = Gateway::new(
        crate::config::Config::from_yaml(yaml, &|_| None).unwrap(),
        ports(
            ScriptedClient::new(vec![]),
            clock,
            store.clone(),
            Arc::new(HeldTasks::default()),
        ),
    );
    key_for(&gw, "sk-viewer", "viewer", Role::ProxyAdminViewer, None);
    key_for(&gw, "sk-internal", "worker", Role::InternalUser, None);
    (gw, store)
}

/// The in-memory Store, with a switch that makes every call fail and a count of record
/// writes.
pub struct WatchedStore {
    inner: MemoryStore,
    pub down: AtomicBool,
    pub writes: AtomicUsize,
}

impl WatchedStore {
    fn up(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::Relaxed) {
            return Err(StoreError::Unavailable("down for the test".into()));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Store for WatchedStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.up()?;
        self.inner.get(key).await
    }
    async fn put(&self, key: &str, value: &[u8], ttl: Option<u64>) -> Result<(), StoreError> {
        self.up()?;
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.inner.put(key, value, ttl).await
    }
    async fn put_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<u64>,
    ) -> Result<bool, StoreError> {
        self.up()?;
        self.inner.put_if_absent(key, value, ttl).await
    }
    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        self.up()?;
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.inner.delete(key).await
    }
    async fn list_prefix(&self, prefix: &str, limit: usize) -> Result<Vec<Entry>, StoreError> {
        self.up()?;
        self.inner.list_prefix(prefix, limit).await
    }
    async fn counter_add(&self, key: &str, d: i64, ttl: Option<u64>) -> Result<i64, StoreError> {
        self.up()?;
        self.inner.counter_add(key, d, ttl).await
    }
    async fn counter_add_capped(
        &self,
        key: &str,
        d: i64,
        ceiling: i64,
        ttl: Option<u64>,
    ) -> Result<CapOutcome, StoreError> {
        self.up()?;
        self.inner.counter_add_capped(key, d, ceiling, ttl).await
    }
    async fn counter_get(&self, key: &str) -> Result<i64, StoreError> {
        self.up()?;
        self.inner.counter_get(key).await
    }
    async fn batch(&self, ops: &[BatchOp]) -> Result<BatchOutcome, StoreError> {
        self.up()?;
        self.inner.batch(ops).await
    }
    async fn lease_count(&self, key: &str) -> Result<i64, StoreError> {
        self.up()?;
        self.inner.lease_count(key).await
    }
    async fn log_append(&self, log: &str, at: u64, data: &[u8]) -> Result<(), StoreError> {
        self.up()?;
        self.inner.log_append(log, at, data).await
    }
    async fn log_range(
        &self,
        log: &str,
        from: u64,
        to: u64,
        limit: usize,
    ) -> Result<Vec<LogEntry>, StoreError> {
        self.up()?;
        self.inner.log_range(log, from, to, limit).await
    }
}
