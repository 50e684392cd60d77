//! DynamoDB Store backend: one table, every operation a single atomic request (or a short loop of
//! conditional requests), never a read-modify-write.
//!
//! # Table design
//! Partition key `pk` (S), sort key `sk` (S); billing PAY_PER_REQUEST; DynamoDB TTL on `ttl`.
//!
//! | item      | `pk`          | `sk`                                   | other attributes              |
//! |-----------|---------------|----------------------------------------|-------------------------------|
//! | record    | `rec`         | `k#` + key                             | `v` (B), `exp_ms`?, `ttl`?    |
//! | counter   | `c#` + key    | `c`                                    | `v` (N), `exp_ms`?, `ttl`?    |
//! | log entry | `l#` + log    | `{at_ms:020}#{seq:020}#{instance}`     | `at` (N), `d` (B)             |
//! | lease set | `q#` + key    | `q`                                    | `h` (M holder → expiry ms), `ver` (S), `exp_ms`, `ttl` |
//!
//! All records share one partition so `list_prefix` is a single `Query` on `begins_with(sk, ..)`
//! in key order (DynamoDB orders only within a partition). The trade-off is a hot partition:
//! records (keys, config, cache) get the per-partition limits (about 3,000 reads and 1,000 writes
//! a second) until DynamoDB's split-for-heat divides the key range, which it does because the
//! table has no local secondary index. Counters, the hot path, get one partition each. One log is
//! one partition. Limits from DynamoDB's key sizes: record keys up to 1,022 bytes, counter and
//! log names up to 2,046 bytes.
//!
//! # Expiry
//! `ttl` (epoch seconds, rounded up) lets DynamoDB delete expired items, but it does so lazily,
//! up to days late, so it is only garbage collection. The truth is `exp_ms` (exact ms): every
//! read filters on it and every conditional write treats an item with `exp_ms <= now` as absent,
//! with `now` from the injected [`Clock`] (so instances with skewed clocks disagree by the skew).
//!
//! # Consistency
//! Reads (`GetItem`, `Query`) are strongly consistent, so a write acknowledged by any instance is
//! seen by the next read anywhere. Counters are linearizable: adds are `UpdateItem ADD` with a
//! condition that the counter is live (and, for a capped add, that the total leaves room); a
//! counter that is absent or expired is (re)created by a `PutItem` conditioned on it still being
//! absent or expired, and a lost race goes back to the add. Each step is atomic on the server.
//!
//! # Batches
//! `Store::batch` is one `TransactWriteItems` (all or nothing) after one consistent read, with
//! lease sets updated by compare-and-set on a version inside the transaction; see [`batch`].
//!
//! # Retries
//! The SDK retries idempotent requests (reads, plain puts, log appends). Requests whose repeat
//! would change the answer (`ADD`, conditional creates, claims, deletes) go out once: a retry
//! after a lost response could add twice or report a won claim as lost. Only throttling, which
//! DynamoDB returns before applying anything, is retried for them here. Every operation is
//! bounded by `op_timeout`; a timed-out write may or may not have been applied.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ReturnValue,
    ReturnValuesOnConditionCheckFailure, ScalarAttributeType, TableStatus, TimeToLiveSpecification,
    TimeToLiveStatus,
};
use aws_sdk_dynamodb::Client;
use tollgate_core::ports::Clock;
use tollgate_core::store::{BatchOp, BatchOutcome, CapOutcome, Entry, LogEntry, Store, StoreError};

mod batch;

type Item = HashMap<String, AttributeValue>;

const PK: &str = "pk";
const SK: &str = "sk";
const VALUE: &str = "v";
const EXP_MS: &str = "exp_ms";
const TTL: &str = "ttl";
const LOG_AT: &str = "at";
const LOG_DATA: &str = "d";

const RECORDS_PK: &str = "rec";
const RECORD_SK_PREFIX: &str = "k#";
const COUNTER_SK: &str = "c";

/// Default bound on one store operation when `TOLLGATE_DYNAMODB_TIMEOUT_MS` is not set.
pub const DEFAULT_OP_TIMEOUT: Duration = Duration::from_secs(3);
/// Rounds of add → create → add before a counter operation gives up (each lost round means
/// another writer made progress, so this is only reached under extreme contention).
const COUNTER_ROUNDS: usize = 8;
/// Tries of a request that DynamoDB throttled (throttled requests are never applied).
const THROTTLE_TRIES: u32 = 5;
/// How long `create_table_if_missing` waits for the table to become ACTIVE.
const TABLE_ACTIVE_WAIT: Duration = Duration::from_secs(60);

/// Condition: the item is live (absent `exp_ms` means no expiry).
const LIVE: &str = "(attribute_not_exists(#exp) OR #exp > :now)";
/// Condition: no live item has this key, so it may be (re)created.
const ABSENT_OR_EXPIRED: &str = "attribute_not_exists(#pk) OR #exp <= :now";

pub struct DynamoStore {
    client: Client,
    table: String,
    clock: Arc<dyn Clock>,
    op_timeout: Duration,
}

/// What one conditional add found.
enum AddAttempt {
    Added(i64),
    /// The counter is absent or expired: it must be created.
    NotLive,
    /// The counter is live and the add would pass the ceiling; its total.
    NoRoom(i64),
}

impl DynamoStore {
    pub fn new(client: Client, table: String, clock: Arc<dyn Clock>, op_timeout: Duration) -> Self {
        DynamoStore {
            client,
            table,
            clock,
            op_timeout,
        }
    }

    /// From the environment: `TOLLGATE_DYNAMODB_TABLE` (required), `AWS_REGION` or
    /// `AWS_DEFAULT_REGION`, optional `TOLLGATE_DYNAMODB_ENDPOINT` (e.g. moto) and
    /// `TOLLGATE_DYNAMODB_TIMEOUT_MS`. Credentials come from the SDK's default chain (the
    /// Lambda role).
    pub async fn from_env(clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        let table = env_var("TOLLGATE_DYNAMODB_TABLE")
            .ok_or_else(|| StoreError::Unavailable("TOLLGATE_DYNAMODB_TABLE is not set".into()))?;
        let region = env_var("AWS_REGION").or_else(|| env_var("AWS_DEFAULT_REGION"));
        let endpoint = env_var("TOLLGATE_DYNAMODB_ENDPOINT");
        let op_timeout = match env_var("TOLLGATE_DYNAMODB_TIMEOUT_MS") {
            Some(ms) => ms.parse().map(Duration::from_millis).map_err(|_| {
                StoreError::Unavailable("TOLLGATE_DYNAMODB_TIMEOUT_MS is not a number".into())
            })?,
            None => DEFAULT_OP_TIMEOUT,
        };
        let client = sdk_client(region, endpoint, None).await;
        Ok(DynamoStore::new(client, table, clock, op_timeout))
    }

    /// Creates the table (PAY_PER_REQUEST, TTL on `ttl`) unless it exists; for tests and local
    /// use (deployments create it from `template.yaml`).
    pub async fn create_table_if_missing(&self) -> Result<(), StoreError> {
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
        };
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
        };
        let request = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key(PK, KeyType::Hash).map_err(build_error)?)
            .key_schema(key(SK, KeyType::Range).map_err(build_error)?)
            .attribute_definitions(attr(PK).map_err(build_error)?)
            .attribute_definitions(attr(SK).map_err(build_error)?);
        match self.bounded(async { Ok(request.send().await) }).await? {
            Ok(_) => {}
            Err(e) if e.code() == Some("ResourceInUseException") => {}
            Err(e) => return Err(sdk_error("CreateTable", e)),
        }
        self.wait_until_active().await?;
        self.enable_ttl().await
    }

    async fn wait_until_active(&self) -> Result<(), StoreError> {
        let deadline = tokio::time::Instant::now() + TABLE_ACTIVE_WAIT;
        loop {
            let described = self
                .bounded(async {
                    let request = self.client.describe_table().table_name(&self.table);
                    request
                        .send()
                        .await
                        .map_err(|e| sdk_error("DescribeTable", e))
                })
                .await?;
            let status = described.table().and_then(|t| t.table_status());
            if status == Some(&TableStatus::Active) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(StoreError::Unavailable(format!(
                    "table {} did not become ACTIVE",
                    self.table
                )));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn enable_ttl(&self) -> Result<(), StoreError> {
        let described = self
            .bounded(async {
                let request = self.client.describe_time_to_live().table_name(&self.table);
                request
                    .send()
                    .await
                    .map_err(|e| sdk_error("DescribeTimeToLive", e))
            })
            .await?;
        let status = described
            .time_to_live_description()
            .and_then(|d| d.time_to_live_status());
        if matches!(
            status,
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
        ) {
            return Ok(());
        }
        let spec = TimeToLiveSpecification::builder()
            .enabled(true)
            .attribute_name(TTL)
            .build()
            .map_err(build_error)?;
        let request = self
            .client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(spec);
        match self.bounded(async { Ok(request.send().await) }).await? {
            Ok(_) => Ok(()),
            // Another caller enabled it between our describe and update.
            Err(e) if e.code() == Some("ValidationException") => Ok(()),
            Err(e) => Err(sdk_error("UpdateTimeToLive", e)),
        }
    }

    /// Bounds one store operation (all its requests) by `op_timeout`.
    async fn bounded<T>(
        &self,
        operation: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(self.op_timeout, operation)
            .await
            .unwrap_or(Err(StoreError::Timeout))
    }

    /// Sends a request that must not be repeated blindly, retrying only when DynamoDB throttled
    /// it (and so applied nothing). `send` builds and sends the request with SDK retries off.
    async fn send_once<T, E, R, F, Fut>(&self, mut send: F) -> Result<T, SdkError<E, R>>
    where
        E: ProvideErrorMetadata,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, R>>>,
    {
        let mut backoff_ms = 25;
        let mut tries = 1;
        loop {
            match send().await {
                Err(e) if is_throttled(&e) && tries < THROTTLE_TRIES => {
                    self.clock.sleep(backoff_ms).await;
                    backoff_ms *= 2;
                    tries += 1;
                }
                result => return result,
            }
        }
    }

    /// `exp_ms` and `ttl` attributes for an item written now with `ttl_ms`.
    fn expiry_attributes(&self, ttl_ms: Option<u64>, item: &mut Item) {
        if let Some(ttl_ms) = ttl_ms {
            let exp_ms = self.clock.now_ms().saturating_add(ttl_ms);
            item.insert(EXP_MS.into(), number(exp_ms));
            // Rounded up so DynamoDB never deletes an item before `exp_ms`.
            item.insert(TTL.into(), number(exp_ms.div_ceil(1000)));
        }
    }

    // ----- records -----

    /// The item at `key` (strongly consistent), unless absent or expired.
    async fn get_live(&self, key: Item) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        match output.item {
            Some(item) if is_live(&item, self.clock.now_ms())? => Ok(Some(item)),
            _ => Ok(None),
        }
    }

    async fn get_record(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.get_live(record_key(key))
            .await?
            .map(|item| binary(&item, VALUE))
            .transpose()
    }

    fn record_item(&self, key: &str, value: &[u8], ttl_ms: Option<u64>) -> Item {
        let mut item = record_key(key);
        item.insert(VALUE.into(), AttributeValue::B(Blob::new(value)));
        self.expiry_attributes(ttl_ms, &mut item);
        item
    }

    async fn put_record(
        &self,
        key: &str,
        value: &[u8],
        ttl_ms: Option<u64>,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.record_item(key, value, ttl_ms)))
            .send()
            .await
            .map_err(|e| sdk_error("PutItem", e))?;
        Ok(())
    }

    async fn claim_record(
        &self,
        key: &str,
        value: &[u8],
        ttl_ms: Option<u64>,
    ) -> Result<bool, StoreError> {
        let item = self.record_item(key, value, ttl_ms);
        self.put_if_absent_or_expired(item, self.clock.now_ms())
            .await
    }

    async fn delete_record(&self, key: &str) -> Result<bool, StoreError> {
        let output = self
            .send_once(|| {
                self.client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(record_key(key)))
                    .return_values(ReturnValue::AllOld)
                    .customize()
                    .config_override(no_sdk_retries())
                    .send()
            })
            .await
            .map_err(|e| sdk_error("DeleteItem", e))?;
        // An expired leftover is removed too, but it was not live, so it does not count.
        match output.attributes {
            Some(old) => is_live(&old, self.clock.now_ms()),
            None => Ok(false),
        }
    }

    async fn list_records(&self, prefix: &str, limit: usize) -> Result<Vec<Entry>, StoreError> {
        let mut entries = Vec::new();
        let mut start: Option<Item> = None;
        let now = self.clock.now_ms();
        while entries.len() < limit {
            // `Limit` counts items read before the filter, so a page may come back short.
            let page_size = (limit - entries.len()).min(1000) as i32;
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .filter_expression(LIVE)
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_names("#exp", EXP_MS)
                .expression_attribute_values(":pk", text(RECORDS_PK))
                .expression_attribute_values(":prefix", text(format!("{RECORD_SK_PREFIX}{prefix}")))
                .expression_attribute_values(":now", number(now))
                .consistent_read(true)
                .scan_index_forward(true)
                .limit(page_size)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error("Query", e))?;
            for item in output.items() {
                if entries.len() < limit && is_live(item, now)? {
                    entries.push(record_entry(item)?);
                }
            }
            match output.last_evaluated_key {
                Some(next) => start = Some(next),
                None => break,
            }
        }
        Ok(entries)
    }

    // ----- counters -----

    /// Adds `delta` if the counter is live and, with `room`, its total is at most `room`.
    async fn add_if_live(
        &self,
        key: &str,
        delta: i64,
        room: Option<i128>,
        now: u64,
    ) -> Result<AddAttempt, StoreError> {
        let mut values = Item::new();
        values.insert(":d".into(), number(delta));
        values.insert(":now".into(), number(now));
        let condition = match room {
            Some(room) => {
                values.insert(":room".into(), number(room));
                format!("attribute_exists(#pk) AND {LIVE} AND #v <= :room")
            }
            None => format!("attribute_exists(#pk) AND {LIVE}"),
        };
        let result = self
            .send_once(|| {
                self.client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(counter_key(key)))
                    .update_expression("ADD #v :d")
                    .condition_expression(condition.as_str())
                    .expression_attribute_names("#pk", PK)
                    .expression_attribute_names("#exp", EXP_MS)
                    .expression_attribute_names("#v", VALUE)
                    .set_expression_attribute_values(Some(values.clone()))
                    .return_values(ReturnValue::UpdatedNew)
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    )
                    .customize()
                    .config_override(no_sdk_retries())
                    .send()
            })
            .await;
        match result {
            Ok(output) => match output.attributes {
                Some(new) => integer(&new, VALUE).map(AddAttempt::Added),
                None => Err(StoreError::Corrupt("UpdateItem returned no total".into())),
            },
            Err(SdkError::ServiceError(e)) => match e.into_err() {
                UpdateItemError::ConditionalCheckFailedException(failed) => {
                    // The item as it stood when the condition failed (atomic, not a re-read).
                    match failed.item {
                        Some(old) if is_live(&old, now)? => {
                            integer(&old, VALUE).map(AddAttempt::NoRoom)
                        }
                        _ => Ok(AddAttempt::NotLive),
                    }
                }
                other => Err(service_error("UpdateItem", &other)),
            },
            Err(e) => Err(sdk_error("UpdateItem", e)),
        }
    }

    /// Creates the counter at `delta` (with its TTL) if it is still absent or expired; `false`
    /// when another writer created it first.
    async fn create_counter(
        &self,
        key: &str,
        delta: i64,
        ttl_ms: Option<u64>,
        now: u64,
    ) -> Result<bool, StoreError> {
        let mut item = counter_key(key);
        item.insert(VALUE.into(), number(delta));
        self.expiry_attributes(ttl_ms, &mut item);
        self.put_if_absent_or_expired(item, now).await
    }

    /// Writes `item` only if no live item has its key (absent, or expired by `now`); `false`
    /// when a live one is there. Not retried by the SDK: a retry after a lost response could
    /// report a won write as lost.
    async fn put_if_absent_or_expired(&self, item: Item, now: u64) -> Result<bool, StoreError> {
        let result = self
            .send_once(|| {
                self.client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(item.clone()))
                    .condition_expression(ABSENT_OR_EXPIRED)
                    .expression_attribute_names("#pk", PK)
                    .expression_attribute_names("#exp", EXP_MS)
                    .expression_attribute_values(":now", number(now))
                    .customize()
                    .config_override(no_sdk_retries())
                    .send()
            })
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(sdk_error("PutItem", e)),
        }
    }

    /// Add, or create when absent/expired, until one of them wins. `ceiling` makes it capped.
    async fn add(
        &self,
        key: &str,
        delta: i64,
        ceiling: Option<i64>,
        ttl_ms: Option<u64>,
    ) -> Result<CapOutcome, StoreError> {
        // Room below which the current total must stay: total + delta <= ceiling.
        let room = ceiling.map(|c| i128::from(c) - i128::from(delta));
        for _ in 0..COUNTER_ROUNDS {
            let now = self.clock.now_ms();
            match self.add_if_live(key, delta, room, now).await? {
                AddAttempt::Added(total) => return Ok(CapOutcome::Added(total)),
                AddAttempt::NoRoom(total) => return Ok(CapOutcome::Refused(total)),
                AddAttempt::NotLive => {}
            }
            // A new counter starts at 0.
            if room.is_some_and(|room| room < 0) {
                return Ok(CapOutcome::Refused(0));
            }
            if self.create_counter(key, delta, ttl_ms, now).await? {
                return Ok(CapOutcome::Added(delta));
            }
        }
        Err(StoreError::Unavailable(
            "DynamoDB counter too contended to update".into(),
        ))
    }

    async fn get_counter(&self, key: &str) -> Result<i64, StoreError> {
        self.get_live(counter_key(key))
            .await?
            .map_or(Ok(0), |item| integer(&item, VALUE))
    }

    // ----- logs -----

    async fn append_log(&self, log: &str, at_ms: u64, data: &[u8]) -> Result<(), StoreError> {
        let mut item = Item::new();
        item.insert(PK.into(), text(log_pk(log)));
        item.insert(SK.into(), text(log_sk(at_ms)));
        item.insert(LOG_AT.into(), number(at_ms));
        item.insert(LOG_DATA.into(), AttributeValue::B(Blob::new(data)));
        // The sort key is unique, so a retried put writes the same item again: idempotent.
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| sdk_error("PutItem", e))?;
        Ok(())
    }

    async fn read_log(
        &self,
        log: &str,
        from_ms: u64,
        to_ms: u64,
        limit: usize,
    ) -> Result<Vec<LogEntry>, StoreError> {
        let mut entries = Vec::new();
        if from_ms >= to_ms {
            return Ok(entries);
        }
        let mut start: Option<Item> = None;
        while entries.len() < limit {
            // "{to_ms:020}" sorts before every "{to_ms:020}#..." key, so `to_ms` is exclusive.
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :from AND :to")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":pk", text(log_pk(log)))
                .expression_attribute_values(":from", text(format!("{from_ms:020}")))
                .expression_attribute_values(":to", text(format!("{to_ms:020}")))
                .consistent_read(true)
                .scan_index_forward(true)
                .limit((limit - entries.len()).min(1000) as i32)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error("Query", e))?;
            for item in output.items() {
                if entries.len() < limit {
                    entries.push(LogEntry {
                        at_ms: unsigned(item, LOG_AT)?,
                        data: binary(item, LOG_DATA)?,
                    });
                }
            }
            match output.last_evaluated_key {
                Some(next) => start = Some(next),
                None => break,
            }
        }
        Ok(entries)
    }
}

#[async_trait::async_trait]
impl Store for DynamoStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.bounded(self.get_record(key)).await
    }

    async fn put(&self, key: &str, value: &[u8], ttl_ms: Option<u64>) -> Result<(), StoreError> {
        self.bounded(self.put_record(key, value, ttl_ms)).await
    }

    async fn put_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl_ms: Option<u64>,
    ) -> Result<bool, StoreError> {
        self.bounded(self.claim_record(key, value, ttl_ms)).await
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        self.bounded(self.delete_record(key)).await
    }

    async fn list_prefix(&self, prefix: &str, limit: usize) -> Result<Vec<Entry>, StoreError> {
        self.bounded(self.list_records(prefix, limit)).await
    }

    async fn counter_add(
        &self,
        key: &str,
        delta: i64,
        ttl_ms: Option<u64>,
    ) -> Result<i64, StoreError> {
        match self.bounded(self.add(key, delta, None, ttl_ms)).await? {
            CapOutcome::Added(total) | CapOutcome::Refused(total) => Ok(total),
        }
    }

    async fn counter_add_capped(
        &self,
        key: &str,
        delta: i64,
        ceiling: i64,
        ttl_ms: Option<u64>,
    ) -> Result<CapOutcome, StoreError> {
        self.bounded(self.add(key, delta, Some(ceiling), ttl_ms))
            .await
    }

    async fn counter_get(&self, key: &str) -> Result<i64, StoreError> {
        self.bounded(self.get_counter(key)).await
    }

    async fn batch(&self, ops: &[BatchOp]) -> Result<BatchOutcome, StoreError> {
        self.bounded(self.run_batch(ops)).await
    }

    async fn lease_count(&self, key: &str) -> Result<i64, StoreError> {
        self.bounded(self.count_leases(key)).await
    }

    async fn log_append(&self, log: &str, at_ms: u64, data: &[u8]) -> Result<(), StoreError> {
        self.bounded(self.append_log(log, at_ms, data)).await
    }

    async fn log_range(
        &self,
        log: &str,
        from_ms: u64,
        to_ms: u64,
        limit: usize,
    ) -> Result<Vec<LogEntry>, StoreError> {
        self.bounded(self.read_log(log, from_ms, to_ms, limit))
            .await
    }
}

/// A DynamoDB client from `aws_config`'s defaults, with optional overrides (tests pass static
/// credentials and moto's endpoint).
pub async fn sdk_client(
    region: Option<String>,
    endpoint: Option<String>,
    credentials: Option<Credentials>,
) -> Client {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = region {
        loader = loader.region(Region::new(region));
    }
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    if let Some(credentials) = credentials {
        loader = loader.credentials_provider(credentials);
    }
    Client::new(&loader.load().await)
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn no_sdk_retries() -> aws_sdk_dynamodb::config::Builder {
    aws_sdk_dynamodb::Config::builder().retry_config(RetryConfig::disabled())
}

// ----- keys -----

fn key_item(pk: String, sk: String) -> Item {
    let mut item = Item::new();
    item.insert(PK.into(), AttributeValue::S(pk));
    item.insert(SK.into(), AttributeValue::S(sk));
    item
}

/// The `k#` prefix keeps the sort key non-empty for an empty key or prefix.
fn record_key(key: &str) -> Item {
    key_item(RECORDS_PK.into(), format!("{RECORD_SK_PREFIX}{key}"))
}

fn counter_key(key: &str) -> Item {
    key_item(format!("c#{key}"), COUNTER_SK.into())
}

fn log_pk(log: &str) -> String {
    format!("l#{log}")
}

/// Zero-padded time first, so string order is time order; then a per-process sequence so one
/// process's same-ms entries keep append order; then this process's random id so two processes
/// never collide. Same-ms entries from different processes are ordered by (sequence, id), which
/// is arbitrary but stable.
fn log_sk(at_ms: u64) -> String {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    format!("{at_ms:020}#{seq:020}#{}", instance_id())
}

/// A random id for this process, from the standard library's randomly seeded hasher.
fn instance_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        hasher.write_u128(nanos);
        format!("{:016x}", hasher.finish())
    })
}

// ----- attribute values -----

fn text(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn number(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn is_live(item: &Item, now: u64) -> Result<bool, StoreError> {
    match item.get(EXP_MS) {
        None => Ok(true),
        Some(AttributeValue::N(n)) => n
            .parse::<u64>()
            .map(|exp| exp > now)
            .map_err(|_| StoreError::Corrupt(format!("{EXP_MS} is not a timestamp"))),
        Some(_) => Err(StoreError::Corrupt(format!("{EXP_MS} is not a number"))),
    }
}

fn binary(item: &Item, name: &str) -> Result<Vec<u8>, StoreError> {
    match item.get(name) {
        Some(AttributeValue::B(blob)) => Ok(blob.as_ref().to_vec()),
        _ => Err(StoreError::Corrupt(format!("{name} is not binary"))),
    }
}

fn integer(item: &Item, name: &str) -> Result<i64, StoreError> {
    parsed_number(item, name, "an i64")
}

fn unsigned(item: &Item, name: &str) -> Result<u64, StoreError> {
    parsed_number(item, name, "a u64")
}

/// A number attribute parsed as `T`; `what` names `T` in the error.
fn parsed_number<T: std::str::FromStr>(
    item: &Item,
    name: &str,
    what: &str,
) -> Result<T, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(n)) => n
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("{name} is not {what}"))),
        _ => Err(StoreError::Corrupt(format!("{name} is not a number"))),
    }
}

fn record_entry(item: &Item) -> Result<Entry, StoreError> {
    let key = match item.get(SK) {
        Some(AttributeValue::S(sk)) => sk.strip_prefix(RECORD_SK_PREFIX),
        _ => None,
    };
    let key = key.ok_or_else(|| StoreError::Corrupt("record without a key".into()))?;
    Ok(Entry {
        key: key.to_string(),
        value: binary(item, VALUE)?,
    })
}

// ----- errors -----

fn is_condition_failure<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    err.code() == Some("ConditionalCheckFailedException")
}

fn is_throttled<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    matches!(
        err.code(),
        Some(
            "ProvisionedThroughputExceededException"
                | "ThrottlingException"
                | "RequestLimitExceeded"
        )
    )
}

/// Maps an SDK error to a StoreError. Only the error code goes in the message: DynamoDB's
/// messages can quote key values.
fn sdk_error<E: ProvideErrorMetadata, R>(op: &str, err: SdkError<E, R>) -> StoreError {
    let what = match &err {
        SdkError::TimeoutError(_) => return StoreError::Timeout,
        SdkError::DispatchFailure(d) if d.is_timeout() => return StoreError::Timeout,
        SdkError::DispatchFailure(d) if d.is_io() => "connection failed",
        SdkError::DispatchFailure(_) => "request not sent",
        SdkError::ServiceError(_) => err.code().unwrap_or("service error"),
        SdkError::ResponseError(_) => "unreadable response",
        SdkError::ConstructionFailure(_) => "request could not be built",
        _ => "SDK error",
    };
    StoreError::Unavailable(format!("DynamoDB {op}: {what}"))
}

fn service_error<E: ProvideErrorMetadata>(op: &str, err: &E) -> StoreError {
    StoreError::Unavailable(format!(
        "DynamoDB {op}: {}",
        err.code().unwrap_or("service error")
    ))
}

fn build_error(err: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Unavailable(format!("DynamoDB request could not be built: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::test_support::{free_port, ChildServer};
    use std::net::TcpListener;
    use std::process::{Command, Stdio};
    use std::sync::atomic::AtomicUsize;
    use std::time::Instant;
    use tollgate_core::store::conformance;

    const TABLE: &str = "tollgate-test";
    /// The child-process half of `two_processes_share_one_counter_and_batches`.
    const CHILD_TEST: &str = "store::dynamodb::tests::child_process_hammers_the_counter";
    const CHILD_ROUNDS: usize = 40;
    const CHILD_CEILING: i64 = 50;

    /// moto's DynamoDB, stopped when dropped.
    struct Moto {
        endpoint: String,
        _server: ChildServer,
    }

    fn start_moto() -> Moto {
        let (server, endpoint) = crate::test_support::start_moto();
        Moto {
            endpoint,
            _server: server,
        }
    }

    async fn store_at(endpoint: &str, table: &str, op_timeout: Duration) -> DynamoStore {
        let credentials = Credentials::new("test", "test", None, None, "tollgate-tests");
        let client = sdk_client(
            Some("us-east-1".into()),
            Some(endpoint.into()),
            Some(credentials),
        )
        .await;
        DynamoStore::new(client, table.into(), Arc::new(SystemClock), op_timeout)
    }

    /// moto plus a store on a freshly created table.
    async fn moto_store() -> (Moto, DynamoStore) {
        let moto = start_moto();
        let store = store_at(&moto.endpoint, TABLE, Duration::from_secs(5)).await;
        store.create_table_if_missing().await.expect("create table");
        store
            .create_table_if_missing()
            .await
            .expect("creating twice is fine");
        (moto, store)
    }

    fn unique_prefix(name: &str) -> String {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        format!("{name}-{}-{nanos}", std::process::id())
    }

    async fn raw_item(store: &DynamoStore, key: Item) -> Item {
        let output = store
            .client
            .get_item()
            .table_name(&store.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .expect("raw get");
        output.item.expect("item exists")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passes_the_conformance_suite() {
        let (_moto, store) = moto_store().await;
        conformance::run_all(&store, &SystemClock, &unique_prefix("conf")).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn expiry_attributes_and_edge_cases() {
        let (_moto, store) = moto_store().await;
        let p = unique_prefix("edge");

        // `ttl` is whole seconds at or after `exp_ms`, for DynamoDB's own deletion.
        store
            .put(&format!("{p}:r"), b"x", Some(5_000))
            .await
            .unwrap();
        let item = raw_item(&store, record_key(&format!("{p}:r"))).await;
        let exp_ms = unsigned(&item, EXP_MS).unwrap();
        let ttl_s = unsigned(&item, TTL).unwrap();
        assert!(ttl_s * 1000 >= exp_ms && ttl_s * 1000 < exp_ms + 1000);
        store.put(&format!("{p}:r"), b"y", None).await.unwrap();
        let item = raw_item(&store, record_key(&format!("{p}:r"))).await;
        assert!(
            !item.contains_key(EXP_MS) && !item.contains_key(TTL),
            "put replaces the TTL"
        );

        // A counter created without a TTL does not get one from a later add.
        let c = format!("{p}:forever");
        assert_eq!(store.counter_add(&c, 1, None).await.unwrap(), 1);
        assert_eq!(store.counter_add(&c, 1, Some(1)).await.unwrap(), 2);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(store.counter_get(&c).await.unwrap(), 2);

        // Expired records are skipped across pages, whatever DynamoDB has not yet deleted.
        for i in 0..6 {
            let ttl = (i % 2 == 0).then_some(1);
            store
                .put(&format!("{p}:page:{i}"), b"v", ttl)
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let keys: Vec<_> = store
            .list_prefix(&format!("{p}:page:"), 2)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.key)
            .collect();
        assert_eq!(keys, [format!("{p}:page:1"), format!("{p}:page:3")]);
        assert!(store.list_prefix(&p, 0).await.unwrap().is_empty());

        // A capped add on an expired counter starts a new window from 0.
        let w = format!("{p}:window");
        assert_eq!(store.counter_add(&w, 9, Some(1)).await.unwrap(), 9);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(
            store
                .counter_add_capped(&w, 3, 5, Some(60_000))
                .await
                .unwrap(),
            CapOutcome::Added(3)
        );

        // Empty and inverted log ranges.
        store
            .log_append(&format!("{p}:log"), 5, b"e")
            .await
            .unwrap();
        assert!(store
            .log_range(&format!("{p}:log"), 5, 5, 10)
            .await
            .unwrap()
            .is_empty());
        assert!(store
            .log_range(&format!("{p}:log"), 9, 1, 10)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            store
                .log_range(&format!("{p}:log"), 5, 6, 10)
                .await
                .unwrap()
                .len(),
            1
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_capped_adds_never_pass_the_ceiling() {
        let moto = start_moto();
        let timeout = Duration::from_secs(10);
        let store = store_at(&moto.endpoint, TABLE, timeout).await;
        store.create_table_if_missing().await.unwrap();
        // Eight callers sharing one client.
        conformance::concurrent_ceiling(&store, &unique_prefix("one-client"), 8, 25, 60).await;
        // Eight callers, each with its own client (own connections, as separate instances).
        let spread = RoundRobin::of_clients(8, &moto.endpoint, timeout).await;
        conformance::concurrent_ceiling(&spread, &unique_prefix("eight-clients"), 8, 25, 60).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_batches_are_all_or_nothing() {
        let moto = start_moto();
        let timeout = Duration::from_secs(10);
        let store = store_at(&moto.endpoint, TABLE, timeout).await;
        store.create_table_if_missing().await.unwrap();
        // Eight callers sharing one client, then eight callers with a client each.
        conformance::concurrent_batches(&store, &unique_prefix("batch-one"), 8, 30).await;
        let spread = RoundRobin::of_clients(8, &moto.endpoint, timeout).await;
        conformance::concurrent_batches(&spread, &unique_prefix("batch-eight"), 8, 30).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batches_over_the_transaction_limit_are_refused() {
        let (_moto, store) = moto_store().await;
        let p = unique_prefix("limit");
        let ops: Vec<_> = (0..=batch::MAX_TRANSACTION_ITEMS)
            .map(|i| conformance::add(&format!("{p}:{i}"), 1, None, None))
            .collect();
        match store.batch(&ops).await {
            Err(StoreError::Unavailable(m)) => assert!(m.contains("at most 100"), "{m}"),
            other => panic!("expected a clear refusal, got {other:?}"),
        }
        assert_eq!(store.counter_get(&format!("{p}:0")).await.unwrap(), 0);
        // Many ops on few items fit: ops on one counter merge into one transaction item.
        let ops: Vec<_> = (0..150)
            .map(|_| conformance::add(&format!("{p}:merged"), 1, Some(200), None))
            .collect();
        assert!(matches!(
            store.batch(&ops).await.unwrap(),
            BatchOutcome::Applied(t) if t.len() == 150 && t[149] == 150
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_processes_share_one_counter_and_batches() {
        let (moto, _store) = moto_store().await;
        let prefix = unique_prefix("procs");
        let spawn = || {
            Command::new(std::env::current_exe().expect("test binary"))
                .args([
                    "--ignored",
                    "--exact",
                    CHILD_TEST,
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("TOLLGATE_TEST_DDB_ENDPOINT", &moto.endpoint)
                .env("TOLLGATE_TEST_DDB_TABLE", TABLE)
                .env("TOLLGATE_TEST_DDB_PREFIX", &prefix)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn a child test process")
        };
        let children = [spawn(), spawn()];
        let (added, batches) = tokio::task::spawn_blocking(move || {
            children
                .into_iter()
                .map(|child| {
                    let out = child.wait_with_output().expect("child output");
                    let stdout = String::from_utf8_lossy(&out.stdout);
                    assert!(
                        out.status.success(),
                        "child failed: {stdout}{}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                    let reported = |name: &str| {
                        stdout
                            // libtest prints the test's name on the same line, so search within lines.
                            .split(name)
                            .nth(1)
                            .and_then(|rest| rest.split_whitespace().next())
                            .and_then(|n| n.parse::<i64>().ok())
                            .unwrap_or_else(|| panic!("child did not report {name}: {stdout}"))
                    };
                    (reported("CAPPED_ADDED="), reported("BATCH_APPLIED="))
                })
                .fold((0, 0), |(a, b), (x, y)| (a + x, b + y))
        })
        .await
        .unwrap();
        let store = store_at(&moto.endpoint, TABLE, Duration::from_secs(5)).await;
        assert_eq!(
            added, CHILD_CEILING,
            "capped adds that succeeded, both processes"
        );
        let capped = store
            .counter_get(&format!("{prefix}:capped"))
            .await
            .unwrap();
        assert_eq!(capped, CHILD_CEILING, "the ceiling is reached exactly");
        let plain = store.counter_get(&format!("{prefix}:plain")).await.unwrap();
        assert_eq!(plain, 2 * CHILD_ROUNDS as i64, "no plain add lost");
        assert_eq!(
            batches,
            conformance::BATCH_MAX_APPLIED,
            "batches applied, both processes"
        );
        conformance::check_batch_totals(&store, &format!("{prefix}:batch"), batches).await;
    }

    /// Run only as a child of `two_processes_share_one_counter_and_batches` (does nothing
    /// without its env).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    #[ignore = "child process of two_processes_share_one_counter_and_batches"]
    async fn child_process_hammers_the_counter() {
        let (Ok(endpoint), Ok(table), Ok(prefix)) = (
            std::env::var("TOLLGATE_TEST_DDB_ENDPOINT"),
            std::env::var("TOLLGATE_TEST_DDB_TABLE"),
            std::env::var("TOLLGATE_TEST_DDB_PREFIX"),
        ) else {
            return;
        };
        let store = store_at(&endpoint, &table, Duration::from_secs(10)).await;
        let (capped, plain) = (format!("{prefix}:capped"), format!("{prefix}:plain"));
        // Four concurrent callers in this process, each doing a quarter of the rounds.
        let workers = (0..4).map(|_| async {
            let mut added = 0;
            for _ in 0..CHILD_ROUNDS / 4 {
                match store
                    .counter_add_capped(&capped, 1, CHILD_CEILING, None)
                    .await
                    .unwrap()
                {
                    CapOutcome::Added(total) => {
                        assert!(total <= CHILD_CEILING);
                        added += 1;
                    }
                    CapOutcome::Refused(total) => assert_eq!(total, CHILD_CEILING),
                }
                store.counter_add(&plain, 1, None).await.unwrap();
            }
            added
        });
        let added: i64 = futures_util::future::join_all(workers)
            .await
            .into_iter()
            .sum();
        println!("CAPPED_ADDED={added}");
        let holder = format!("pid{}", std::process::id());
        let tally =
            conformance::batch_hammer(&store, &format!("{prefix}:batch"), &holder, 4, 20).await;
        println!("BATCH_APPLIED={}", tally.applied);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nothing_listening_fails_within_the_timeout() {
        let op_timeout = Duration::from_millis(800);
        let store = store_at(
            &format!("http://127.0.0.1:{}", free_port()),
            TABLE,
            op_timeout,
        )
        .await;
        let started = Instant::now();
        let result = store.counter_add("k", 1, None).await;
        assert!(
            matches!(
                result,
                Err(StoreError::Unavailable(_) | StoreError::Timeout)
            ),
            "{result:?}"
        );
        assert!(started.elapsed() < op_timeout + Duration::from_secs(1));
        let started = Instant::now();
        assert!(store.get("k").await.is_err());
        assert!(started.elapsed() < op_timeout + Duration::from_secs(1));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_silent_server_times_out() {
        // Accepts TCP (the kernel's backlog) but never reads or answers.
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = silent.local_addr().unwrap().port();
        let op_timeout = Duration::from_millis(500);
        let store = store_at(&format!("http://127.0.0.1:{port}"), TABLE, op_timeout).await;
        for _ in 0..2 {
            let started = Instant::now();
            assert_eq!(
                store.counter_add_capped("k", 1, 5, None).await,
                Err(StoreError::Timeout)
            );
            assert_eq!(store.get("k").await, Err(StoreError::Timeout));
            assert!(started.elapsed() < 2 * op_timeout + Duration::from_secs(1));
        }
        drop(silent);
    }

    /// Spreads calls over several stores, so concurrent callers use separate clients.
    struct RoundRobin {
        stores: Vec<DynamoStore>,
        next: AtomicUsize,
    }

    impl RoundRobin {
        /// `n` stores, each with its own client (own connections, as separate instances).
        async fn of_clients(n: usize, endpoint: &str, timeout: Duration) -> Self {
            let mut stores = Vec::new();
            for _ in 0..n {
                stores.push(store_at(endpoint, TABLE, timeout).await);
            }
            RoundRobin {
                stores,
                next: AtomicUsize::new(0),
            }
        }
    }

    impl RoundRobin {
        fn pick(&self) -> &DynamoStore {
            &self.stores[self.next.fetch_add(1, Ordering::Relaxed) % self.stores.len()]
        }
    }

    #[async_trait::async_trait]
    impl Store for RoundRobin {
        async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
            self.pick().get(key).await
        }
        async fn put(&self, key: &str, value: &[u8], ttl: Option<u64>) -> Result<(), StoreError> {
            self.pick().put(key, value, ttl).await
        }
        async fn put_if_absent(
            &self,
            key: &str,
            value: &[u8],
            ttl: Option<u64>,
        ) -> Result<bool, StoreError> {
            self.pick().put_if_absent(key, value, ttl).await
        }
        async fn delete(&self, key: &str) -> Result<bool, StoreError> {
            self.pick().delete(key).await
        }
        async fn list_prefix(&self, prefix: &str, limit: usize) -> Result<Vec<Entry>, StoreError> {
            self.pick().list_prefix(prefix, limit).await
        }
        async fn counter_add(
            &self,
            key: &str,
            d: i64,
            ttl: Option<u64>,
        ) -> Result<i64, StoreError> {
            self.pick().counter_add(key, d, ttl).await
        }
        async fn counter_add_capped(
            &self,
            key: &str,
            d: i64,
            ceiling: i64,
            ttl: Option<u64>,
        ) -> Result<CapOutcome, StoreError> {
            self.pick().counter_add_capped(key, d, ceiling, ttl).await
        }
        async fn counter_get(&self, key: &str) -> Result<i64, StoreError> {
            self.pick().counter_get(key).await
        }
        async fn batch(&self, ops: &[BatchOp]) -> Result<BatchOutcome, StoreError> {
            self.pick().batch(ops).await
        }
        async fn lease_count(&self, key: &str) -> Result<i64, StoreError> {
            self.pick().lease_count(key).await
        }
        async fn log_append(&self, log: &str, at: u64, data: &[u8]) -> Result<(), StoreError> {
            self.pick().log_append(log, at, data).await
        }
        async fn log_range(
            &self,
            log: &str,
            from: u64,
            to: u64,
            limit: usize,
        ) -> Result<Vec<LogEntry>, StoreError> {
            self.pick().log_range(log, from, to, limit).await
        }
    }
}
