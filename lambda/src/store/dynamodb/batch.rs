//! [`Store::batch`](tollgate_core::store::Store::batch) on DynamoDB: one `TransactWriteItems`,
//! so a batch applies all or nothing.
//!
//! # A round
//! 1. **Read** every item the batch touches with one strongly consistent `BatchGetItem`.
//! 2. **Plan** with core's planner (`store::batch::plan`): a refusal found here is answered at
//!    once, with `current` from that read (a consistent read: the value as it stood).
//! 3. **Write** one transaction, one item per counter and per lease set (a transaction may not
//!    touch an item twice, so ops on one key are merged):
//!    - a live counter: `UpdateItem ADD` of the net delta, conditioned on "still live" and, when
//!      an op on it is capped, on `v <= room` (the largest total at which every capped op on it
//!      still fits, `store::batch::counter_needs`). Adds commute, so concurrent batches on a hot
//!      counter do not conflict unless it is near its ceiling;
//!    - an absent or expired counter: `PutItem` of the planned total and TTL, conditioned on
//!      "still absent or expired";
//!    - a lease set: one item holding a map holder → expiry (ms) and a version token; the
//!      planned map (expired entries pruned client-side) is written with `PutItem` conditioned on
//!      the version read (or on absence): an optimistic compare-and-set inside the transaction.
//!      Its `exp_ms`/`ttl` are its latest lease, so DynamoDB deletes an abandoned set. Versions
//!      are unique tokens, never reused, so a set deleted by TTL and re-created cannot be
//!      mistaken for the one a slow writer read.
//! 4. If the transaction is cancelled, its `CancellationReasons` name the items whose condition
//!    failed and carry them as they stood (`ReturnValuesOnConditionCheckFailure = ALL_OLD`, an
//!    atomic image, not a re-read): the plan is redone on that image, which either finds the
//!    refusing op (and its `current`) or, when the batch still fits, goes round again: a jittered
//!    exponential backoff, a fresh read and a new transaction, for at most [`BATCH_ROUNDS`]
//!    rounds within the operation timeout (`StoreError::Unavailable` after that). The backoff
//!    spreads contending callers out, which is what lets a hot lease set (every acquire and
//!    release of it is a compare-and-set) make progress.
//!
//! # Totals
//! A transaction returns no values. Lease counts are exact (the compare-and-set wrote exactly
//! the planned set). A counter created by the batch is exact too (it was written whole). A
//! counter updated with `ADD` is **read after the write** (one more consistent `BatchGetItem`):
//! its total then includes any add another caller made since, and is not the value the
//! transaction produced. Per op, a total is the read total minus the deltas of later ops on the
//! same counter in the batch.
//!
//! # Limits
//! A transaction holds at most 100 items: a batch touching more distinct counters and lease
//! sets is refused with `StoreError::Unavailable` before anything is sent.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, KeysAndAttributes, Put,
    ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use tollgate_core::store::batch::{self, Counter, Plan, Planned, Snapshot};
use tollgate_core::store::{BatchOp, BatchOutcome, StoreError};

use super::{
    build_error, counter_key, instance_id, integer, is_live, key_item, no_sdk_retries, number,
    sdk_error, service_error, text, unsigned, DynamoStore, Item, ABSENT_OR_EXPIRED, EXP_MS, LIVE,
    PK, SK, TTL, VALUE,
};

/// Sort key of lease-set items (partition `q#` + key).
const LEASE_SK: &str = "q";
/// The holder → expiry (ms) map of a lease set.
const HOLDERS: &str = "h";
/// The lease set's version token.
const VERSION: &str = "ver";
/// DynamoDB's limit on items in one transaction.
pub const MAX_TRANSACTION_ITEMS: usize = 100;
/// Rounds of plan → transaction before a contended batch gives up.
const BATCH_ROUNDS: usize = 24;
/// Rounds of `BatchGetItem` for keys DynamoDB left unprocessed.
const READ_ROUNDS: usize = 8;

/// An item a batch touches.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Target {
    Counter(String),
    Leases(String),
}

impl Target {
    fn key(&self) -> Item {
        match self {
            Target::Counter(k) => counter_key(k),
            Target::Leases(k) => lease_key(k),
        }
    }
}

pub(super) fn lease_key(key: &str) -> Item {
    key_item(format!("q#{key}"), LEASE_SK.into())
}

/// What the batch last saw of its items.
#[derive(Default)]
struct Seen {
    snapshot: Snapshot,
    /// The version token of each lease-set item that exists.
    versions: HashMap<String, String>,
}

impl Seen {
    /// Records `item` (or its absence) as the current state of `target`.
    fn observe(
        &mut self,
        target: &Target,
        item: Option<&Item>,
        now: u64,
    ) -> Result<(), StoreError> {
        match target {
            Target::Counter(k) => {
                self.snapshot.counters.remove(k);
                let live = match item {
                    Some(item) if is_live(item, now)? => Some(item),
                    _ => None,
                };
                if let Some(item) = live {
                    let counter = Counter {
                        total: integer(item, VALUE)?,
                        expires_at_ms: match item.get(EXP_MS) {
                            Some(_) => Some(unsigned(item, EXP_MS)?),
                            None => None,
                        },
                    };
                    self.snapshot.counters.insert(k.clone(), counter);
                }
            }
            Target::Leases(k) => {
                self.snapshot.leases.remove(k);
                self.versions.remove(k);
                if let Some(item) = item {
                    let version = match item.get(VERSION) {
                        Some(AttributeValue::S(v)) => v.clone(),
                        _ => return Err(StoreError::Corrupt("lease set without a version".into())),
                    };
                    self.versions.insert(k.clone(), version);
                    self.snapshot.leases.insert(k.clone(), holders(item)?);
                }
            }
        }
        Ok(())
    }
}

/// The holder → expiry map of a lease-set item.
fn holders(item: &Item) -> Result<BTreeMap<String, u64>, StoreError> {
    match item.get(HOLDERS) {
        Some(AttributeValue::M(map)) => map
            .iter()
            .map(|(holder, expiry)| match expiry {
                AttributeValue::N(n) => n
                    .parse()
                    .map(|e| (holder.clone(), e))
                    .map_err(|_| StoreError::Corrupt("lease expiry is not a u64".into())),
                _ => Err(StoreError::Corrupt("lease expiry is not a number".into())),
            })
            .collect(),
        _ => Err(StoreError::Corrupt("lease set without holders".into())),
    }
}

/// The distinct items `ops` touch, in a stable order.
fn targets(ops: &[BatchOp]) -> Vec<Target> {
    let set: BTreeSet<Target> = ops
        .iter()
        .map(|op| match op {
            BatchOp::Add { key, .. } => Target::Counter(key.clone()),
            BatchOp::Acquire { key, .. } | BatchOp::Release { key, .. } => {
                Target::Leases(key.clone())
            }
        })
        .collect();
    set.into_iter().collect()
}

/// A fresh, never reused version token for a lease set.
fn version_token() -> String {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    format!("{}-{seq}", instance_id())
}

/// A pseudo-random wait below `max_ms`, so retrying callers do not collide again in step.
fn jitter(max_ms: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(SEQUENCE.fetch_add(1, Ordering::Relaxed));
    hasher.finish() % max_ms.max(1)
}

/// How a transaction ended.
enum Written {
    Committed,
    Cancelled(Vec<CancellationReason>),
}

impl DynamoStore {
    /// The whole batch (see the module docs); the caller bounds it by the operation timeout.
    pub(super) async fn run_batch(&self, ops: &[BatchOp]) -> Result<BatchOutcome, StoreError> {
        if ops.is_empty() {
            return Ok(BatchOutcome::Applied(Vec::new()));
        }
        let targets = targets(ops);
        if targets.len() > MAX_TRANSACTION_ITEMS {
            return Err(StoreError::Unavailable(format!(
                "DynamoDB batch touches {} counters and lease sets; one transaction takes at most \
                 {MAX_TRANSACTION_ITEMS}",
                targets.len()
            )));
        }
        let mut seen = self.read_targets(&targets).await?;
        for round in 0..BATCH_ROUNDS {
            let now = self.clock.now_ms();
            let plan = match batch::plan(ops, &seen.snapshot, now)? {
                Planned::Applied(plan) => plan,
                refused @ Planned::Refused { .. } => return Ok(refused.outcome()),
            };
            let (written, items) = self.transaction(&targets, ops, &seen, &plan, now)?;
            if items.is_empty() {
                return Ok(BatchOutcome::Applied(plan.totals)); // nothing to change
            }
            match self.transact(items).await? {
                Written::Committed => return self.totals(ops, &seen, &plan).await,
                Written::Cancelled(reasons) => {
                    // The failed items as they stood: enough to tell a refusal at once.
                    for (target, reason) in written.iter().zip(&reasons) {
                        if reason.code() == Some("ConditionalCheckFailed") {
                            seen.observe(target, reason.item(), now)?;
                        }
                    }
                    if let refused @ Planned::Refused { .. } =
                        batch::plan(ops, &seen.snapshot, now)?
                    {
                        return Ok(refused.outcome());
                    }
                    // Lost a race (a version moved, a window began or ended, a conflicting
                    // transaction): back off with full jitter, then read afresh and go again at
                    // once, so the read and the write stay close together.
                    self.clock.sleep(1 + jitter(4 << round.min(6))).await;
                    seen = self.read_targets(&targets).await?;
                }
            }
        }
        Err(StoreError::Unavailable(
            "DynamoDB batch too contended to apply".into(),
        ))
    }

    /// Live leases of set `key` (one consistent read).
    pub(super) async fn count_leases(&self, key: &str) -> Result<i64, StoreError> {
        Ok(match self.get_live(lease_key(key)).await? {
            Some(item) => batch::live_count(&holders(&item)?, self.clock.now_ms()),
            None => 0,
        })
    }

    /// One consistent read of `targets` (present items, absences noted).
    async fn read_targets(&self, targets: &[Target]) -> Result<Seen, StoreError> {
        let items = self
            .read_items(targets.iter().map(Target::key).collect())
            .await?;
        let now = self.clock.now_ms();
        let mut seen = Seen::default();
        for target in targets {
            let key = target.key();
            let found = items.iter().find(|item| same_key(item, &key));
            seen.observe(target, found, now)?;
        }
        Ok(seen)
    }

    /// `BatchGetItem`, strongly consistent, until DynamoDB has processed every key.
    async fn read_items(&self, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::new();
        let mut pending = keys;
        for _ in 0..READ_ROUNDS {
            if pending.is_empty() {
                return Ok(found);
            }
            let request = KeysAndAttributes::builder()
                .set_keys(Some(pending))
                .consistent_read(true)
                .build()
                .map_err(build_error)?;
            let output = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(|e| sdk_error("BatchGetItem", e))?;
            if let Some(items) = output.responses.and_then(|mut r| r.remove(&self.table)) {
                found.extend(items);
            }
            pending = output
                .unprocessed_keys
                .and_then(|mut u| u.remove(&self.table))
                .map(|k| k.keys)
                .unwrap_or_default();
        }
        Err(StoreError::Unavailable(
            "DynamoDB BatchGetItem left keys unprocessed".into(),
        ))
    }

    /// The transaction for `plan`: one write per target that changes, and the targets in the
    /// same order (cancellation reasons come back in it).
    fn transaction(
        &self,
        targets: &[Target],
        ops: &[BatchOp],
        seen: &Seen,
        plan: &Plan,
        now: u64,
    ) -> Result<(Vec<Target>, Vec<TransactWriteItem>), StoreError> {
        let needs = batch::counter_needs(ops);
        let mut written = Vec::new();
        let mut items = Vec::new();
        for target in targets {
            let item = match target {
                Target::Counter(k) => {
                    let need = needs.get(k).copied();
                    match (seen.snapshot.counters.contains_key(k), need) {
                        (true, Some(need)) => {
                            self.add_to_live(k, need.net_delta, need.room, now)?
                        }
                        (_, _) => match plan.counters.get(k) {
                            Some(counter) => self.create(k, counter, now)?,
                            None => continue,
                        },
                    }
                }
                Target::Leases(k) => {
                    let live = plan.leases.get(k).cloned().unwrap_or_default();
                    let version = seen.versions.get(k);
                    if version.is_none() && live.is_empty() {
                        continue; // absent, and stays empty
                    }
                    self.write_leases(k, &live, version, now)?
                }
            };
            written.push(target.clone());
            items.push(item);
        }
        Ok((written, items))
    }

    /// `ADD` to a counter that must still be live (and leave room for every capped op).
    fn add_to_live(
        &self,
        key: &str,
        delta: i64,
        room: Option<i128>,
        now: u64,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut condition = format!("attribute_exists(#pk) AND {LIVE}");
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(counter_key(key)))
            .update_expression("ADD #v :d")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#exp", EXP_MS)
            .expression_attribute_names("#v", VALUE)
            .expression_attribute_values(":d", number(delta))
            .expression_attribute_values(":now", number(now))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if let Some(room) = room {
            condition.push_str(" AND #v <= :room");
            update = update.expression_attribute_values(":room", number(room));
        }
        let update = update
            .condition_expression(condition)
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Creates a counter (absent or expired) with its planned total and TTL.
    fn create(
        &self,
        key: &str,
        counter: &Counter,
        now: u64,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut item = counter_key(key);
        item.insert(VALUE.into(), number(counter.total));
        if let Some(exp_ms) = counter.expires_at_ms {
            item.insert(EXP_MS.into(), number(exp_ms));
            item.insert(TTL.into(), number(exp_ms.div_ceil(1000)));
        }
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(ABSENT_OR_EXPIRED)
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#exp", EXP_MS)
            .expression_attribute_values(":now", number(now))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Writes a lease set's planned leases if its version is still the one read.
    fn write_leases(
        &self,
        key: &str,
        live: &BTreeMap<String, u64>,
        version: Option<&String>,
        now: u64,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut item = lease_key(key);
        let map = live
            .iter()
            .map(|(holder, exp)| (holder.clone(), number(exp)))
            .collect();
        item.insert(HOLDERS.into(), AttributeValue::M(map));
        item.insert(VERSION.into(), text(version_token()));
        // The set lives as long as its latest lease; an empty one is over now.
        let exp_ms = live.values().copied().max().unwrap_or(now);
        item.insert(EXP_MS.into(), number(exp_ms));
        item.insert(TTL.into(), number(exp_ms.div_ceil(1000)));
        let mut put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .expression_attribute_names("#pk", PK)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        put = match version {
            Some(v) => put
                .condition_expression("attribute_exists(#pk) AND #ver = :ver")
                .expression_attribute_names("#ver", VERSION)
                .expression_attribute_values(":ver", text(v.clone())),
            None => put.condition_expression("attribute_not_exists(#pk)"),
        };
        Ok(TransactWriteItem::builder()
            .put(put.build().map_err(build_error)?)
            .build())
    }

    /// Sends the transaction once (a repeat after a lost answer could apply it twice; only
    /// throttling, which applies nothing, is retried).
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<Written, StoreError> {
        let result = self
            .send_once(|| {
                self.client
                    .transact_write_items()
                    .set_transact_items(Some(items.clone()))
                    .customize()
                    .config_override(no_sdk_retries())
                    .send()
            })
            .await;
        match result {
            Ok(_) => Ok(Written::Committed),
            Err(SdkError::ServiceError(e)) => match e.into_err() {
                TransactWriteItemsError::TransactionCanceledException(cancelled) => Ok(
                    Written::Cancelled(cancelled.cancellation_reasons().to_vec()),
                ),
                other => Err(service_error("TransactWriteItems", &other)),
            },
            Err(e) => Err(sdk_error("TransactWriteItems", e)),
        }
    }

    /// Per-op totals of a committed batch (see the module docs: counters updated with `ADD`
    /// are read after the write).
    async fn totals(
        &self,
        ops: &[BatchOp],
        seen: &Seen,
        plan: &Plan,
    ) -> Result<BatchOutcome, StoreError> {
        let added: Vec<&String> = plan
            .counters
            .keys()
            .filter(|k| seen.snapshot.counters.contains_key(*k))
            .collect();
        let mut finals: HashMap<String, i64> = plan
            .counters
            .iter()
            .map(|(k, c)| (k.clone(), c.total))
            .collect();
        if !added.is_empty() {
            let items = self
                .read_items(added.iter().map(|k| counter_key(k)).collect())
                .await?;
            let now = self.clock.now_ms();
            for k in added {
                let key = counter_key(k);
                let live = items
                    .iter()
                    .find(|item| same_key(item, &key))
                    .filter(|item| is_live(item, now).unwrap_or(false));
                // Gone already (a window that ended): keep the planned total.
                if let Some(item) = live {
                    finals.insert(k.clone(), integer(item, VALUE)?);
                }
            }
        }
        let mut totals = plan.totals.clone();
        let mut later: HashMap<&str, i64> = HashMap::new();
        for (i, op) in ops.iter().enumerate().rev() {
            if let BatchOp::Add { key, delta, .. } = op {
                if let Some(total) = finals.get(key) {
                    let after = later.entry(key).or_insert(0);
                    totals[i] = total.saturating_sub(*after);
                    *after = after.saturating_add(*delta);
                }
            }
        }
        Ok(BatchOutcome::Applied(totals))
    }
}

/// Whether `item` has the primary key `key`.
fn same_key(item: &Item, key: &Item) -> bool {
    item.get(PK) == key.get(PK) && item.get(SK) == key.get(SK)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(key: &str) -> BatchOp {
        BatchOp::Add {
            key: key.into(),
            delta: 1,
            ceiling: None,
            ttl_ms: None,
        }
    }

    #[test]
    fn targets_are_distinct_and_counters_apart_from_lease_sets() {
        let ops = [
            add("a"),
            add("a"),
            BatchOp::Release {
                key: "a".into(),
                holder: "h".into(),
            },
        ];
        assert_eq!(
            targets(&ops),
            [Target::Counter("a".into()), Target::Leases("a".into())]
        );
    }

    #[test]
    fn version_tokens_are_never_reused() {
        assert_ne!(version_token(), version_token());
        assert!(jitter(8) < 8);
        assert_eq!(jitter(0), 0);
    }
}
