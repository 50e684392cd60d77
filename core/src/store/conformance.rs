//! The conformance suite every backend must pass: the same cases, in the same words, against
//! memory, embedded, Redis, DynamoDB, Upstash and the Workers backends. Backends call
//! [`run_all`] from their own tests (enable the `conformance` feature of `tollgate-core`).
//!
//! Cases panic on failure, like any test assertion. Every key starts with the caller's
//! `prefix`, so runs against a shared server do not collide (use a unique prefix per run).

use std::sync::atomic::{AtomicU64, Ordering};

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::{BatchOp, BatchOutcome, CapOutcome, Store};
use crate::ports::Clock;

/// A clock that only moves when told to; `sleep` advances it instantly.
pub struct ManualClock {
    now: AtomicU64,
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock {
            now: AtomicU64::new(1_700_000_000_000),
        }
    }
}

#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }

    async fn sleep(&self, ms: u64) {
        self.now.fetch_add(ms, Ordering::SeqCst);
    }
}

/// TTL used by the expiry cases: short, yet long enough for a round trip to a real server.
const TTL_MS: u64 = 400;

/// Every case, one after another. `clock.sleep` must really let time pass for the backend
/// (a real sleep for servers, an advance for a [`ManualClock`]-driven store).
pub async fn run_all(store: &dyn Store, clock: &dyn Clock, prefix: &str) {
    records_round_trip(store, prefix).await;
    put_if_absent_claims_once(store, prefix).await;
    binary_values_survive(store, prefix).await;
    list_prefix_in_key_order(store, prefix).await;
    records_expire(store, clock, prefix).await;
    counters_add_and_release(store, prefix).await;
    counter_ttl_is_set_once(store, clock, prefix).await;
    capped_add_never_passes_the_ceiling(store, prefix).await;
    logs_are_time_ordered(store, prefix).await;
    batch_adds_return_every_total(store, prefix).await;
    batch_over_a_ceiling_changes_nothing(store, prefix).await;
    batch_negative_adds_release(store, prefix).await;
    batch_counter_ttl_is_set_at_creation(store, clock, prefix).await;
    leases_respect_the_limit(store, prefix).await;
    leases_expire(store, clock, prefix).await;
    mixed_batches_are_all_or_nothing(store, prefix).await;
}

/// `BatchOp::Add`.
pub fn add(key: &str, delta: i64, ceiling: Option<i64>, ttl_ms: Option<u64>) -> BatchOp {
    BatchOp::Add {
        key: key.to_string(),
        delta,
        ceiling,
        ttl_ms,
    }
}

/// `BatchOp::Acquire`.
pub fn acquire(key: &str, holder: &str, limit: u64, ttl_ms: u64) -> BatchOp {
    BatchOp::Acquire {
        key: key.to_string(),
        holder: holder.to_string(),
        limit,
        ttl_ms,
    }
}

/// `BatchOp::Release`.
pub fn release(key: &str, holder: &str) -> BatchOp {
    BatchOp::Release {
        key: key.to_string(),
        holder: holder.to_string(),
    }
}

pub async fn records_round_trip(s: &dyn Store, p: &str) {
    let k = format!("{p}:rec:a");
    assert_eq!(s.get(&k).await.unwrap(), None, "absent record");
    s.put(&k, b"one", None).await.unwrap();
    assert_eq!(s.get(&k).await.unwrap().as_deref(), Some(&b"one"[..]));
    s.put(&k, b"two", None).await.unwrap();
    assert_eq!(
        s.get(&k).await.unwrap().as_deref(),
        Some(&b"two"[..]),
        "put replaces"
    );
    assert!(s.delete(&k).await.unwrap(), "delete reports a removal");
    assert!(
        !s.delete(&k).await.unwrap(),
        "second delete removes nothing"
    );
    assert_eq!(s.get(&k).await.unwrap(), None);
}

pub async fn put_if_absent_claims_once(s: &dyn Store, p: &str) {
    let k = format!("{p}:claim:x");
    assert!(s.put_if_absent(&k, b"first", None).await.unwrap());
    assert!(!s.put_if_absent(&k, b"second", None).await.unwrap());
    assert_eq!(
        s.get(&k).await.unwrap().as_deref(),
        Some(&b"first"[..]),
        "loser does not overwrite"
    );
    s.delete(&k).await.unwrap();
    assert!(
        s.put_if_absent(&k, b"third", None).await.unwrap(),
        "claimable again after delete"
    );
}

pub async fn binary_values_survive(s: &dyn Store, p: &str) {
    let k = format!("{p}:bin:v");
    let value: Vec<u8> = (0..=255u8).chain([0, 0xff, 0xc3]).collect();
    s.put(&k, &value, None).await.unwrap();
    assert_eq!(s.get(&k).await.unwrap(), Some(value));
}

pub async fn list_prefix_in_key_order(s: &dyn Store, p: &str) {
    for k in ["a3", "a1", "b1", "a2"] {
        s.put(&format!("{p}:list:{k}"), k.as_bytes(), None)
            .await
            .unwrap();
    }
    let listed = s.list_prefix(&format!("{p}:list:a"), 10).await.unwrap();
    let keys: Vec<_> = listed.iter().map(|e| e.key.clone()).collect();
    assert_eq!(
        keys,
        [
            format!("{p}:list:a1"),
            format!("{p}:list:a2"),
            format!("{p}:list:a3")
        ]
    );
    assert_eq!(listed[0].value, b"a1");
    assert_eq!(
        s.list_prefix(&format!("{p}:list:a"), 2)
            .await
            .unwrap()
            .len(),
        2,
        "limit"
    );
    assert!(s
        .list_prefix(&format!("{p}:list:zz"), 10)
        .await
        .unwrap()
        .is_empty());
}

pub async fn records_expire(s: &dyn Store, clock: &dyn Clock, p: &str) {
    let k = format!("{p}:ttl:r");
    s.put(&k, b"short", Some(TTL_MS)).await.unwrap();
    s.put(&format!("{p}:ttl:keep"), b"kept", None)
        .await
        .unwrap();
    assert!(s.get(&k).await.unwrap().is_some(), "visible before expiry");
    clock.sleep(TTL_MS + 300).await;
    assert_eq!(s.get(&k).await.unwrap(), None, "gone after expiry");
    assert!(
        s.list_prefix(&format!("{p}:ttl:"), 10)
            .await
            .unwrap()
            .iter()
            .all(|e| e.key != k),
        "expired records are not listed"
    );
    assert!(
        s.put_if_absent(&k, b"again", None).await.unwrap(),
        "an expired record can be claimed"
    );
}

pub async fn counters_add_and_release(s: &dyn Store, p: &str) {
    let k = format!("{p}:ctr:a");
    assert_eq!(s.counter_get(&k).await.unwrap(), 0, "absent counter is 0");
    assert_eq!(s.counter_add(&k, 5, None).await.unwrap(), 5);
    assert_eq!(
        s.counter_add(&k, -2, None).await.unwrap(),
        3,
        "negative add releases"
    );
    assert_eq!(s.counter_get(&k).await.unwrap(), 3);
}

pub async fn counter_ttl_is_set_once(s: &dyn Store, clock: &dyn Clock, p: &str) {
    let k = format!("{p}:ctr:ttl");
    assert_eq!(s.counter_add(&k, 1, Some(TTL_MS)).await.unwrap(), 1);
    clock.sleep(TTL_MS / 2).await;
    // A later add must not push the window's end further out.
    assert_eq!(s.counter_add(&k, 1, Some(TTL_MS)).await.unwrap(), 2);
    clock.sleep(TTL_MS / 2 + 300).await;
    assert_eq!(
        s.counter_get(&k).await.unwrap(),
        0,
        "the window ended on time"
    );
    assert_eq!(
        s.counter_add(&k, 1, Some(TTL_MS)).await.unwrap(),
        1,
        "a new window starts at 0"
    );
}

pub async fn capped_add_never_passes_the_ceiling(s: &dyn Store, p: &str) {
    let k = format!("{p}:cap:a");
    assert_eq!(
        s.counter_add_capped(&k, 11, 10, None).await.unwrap(),
        CapOutcome::Refused(0)
    );
    assert_eq!(
        s.counter_add_capped(&k, 4, 10, None).await.unwrap(),
        CapOutcome::Added(4)
    );
    assert_eq!(
        s.counter_add_capped(&k, 6, 10, None).await.unwrap(),
        CapOutcome::Added(10)
    );
    assert_eq!(
        s.counter_add_capped(&k, 1, 10, None).await.unwrap(),
        CapOutcome::Refused(10)
    );
    assert_eq!(s.counter_add(&k, -3, None).await.unwrap(), 7, "release");
    assert_eq!(
        s.counter_add_capped(&k, 3, 10, None).await.unwrap(),
        CapOutcome::Added(10)
    );
    assert_eq!(s.counter_get(&k).await.unwrap(), 10);
}

pub async fn logs_are_time_ordered(s: &dyn Store, p: &str) {
    let log = format!("{p}:log:spend");
    for (at, data) in [(100, "a"), (300, "c"), (200, "b"), (200, "b2")] {
        s.log_append(&log, at, data.as_bytes()).await.unwrap();
    }
    let all = s.log_range(&log, 0, 1000, 100).await.unwrap();
    let data: Vec<_> = all
        .iter()
        .map(|e| String::from_utf8(e.data.clone()).unwrap())
        .collect();
    assert_eq!(
        data,
        ["a", "b", "b2", "c"],
        "ordered by time, then append order"
    );
    assert_eq!(all[1].at_ms, 200);
    let middle = s.log_range(&log, 200, 300, 100).await.unwrap();
    assert_eq!(middle.len(), 2, "from is inclusive, to exclusive");
    assert_eq!(
        s.log_range(&log, 0, 1000, 1).await.unwrap()[0].data,
        b"a",
        "limit keeps the oldest"
    );
    assert!(s
        .log_range(&format!("{p}:log:other"), 0, 1000, 10)
        .await
        .unwrap()
        .is_empty());
}

/// `clients` concurrent callers each try `attempts` capped adds of 1 against `ceiling`, and
/// the same number of plain adds on a second counter: the capped total lands exactly on the
/// ceiling (never past it) and no plain increment is lost.
pub async fn concurrent_ceiling(
    s: &dyn Store,
    p: &str,
    clients: usize,
    attempts: usize,
    ceiling: i64,
) {
    assert!(
        (clients * attempts) as i64 > ceiling,
        "the test must push past the ceiling"
    );
    let capped = format!("{p}:conc:capped");
    let plain = format!("{p}:conc:plain");
    let workers = (0..clients).map(|_| async {
        let mut added = 0i64;
        for _ in 0..attempts {
            if let CapOutcome::Added(total) = s
                .counter_add_capped(&capped, 1, ceiling, None)
                .await
                .unwrap()
            {
                assert!(
                    total <= ceiling,
                    "a capped add returned {total} > {ceiling}"
                );
                added += 1;
            }
            s.counter_add(&plain, 1, None).await.unwrap();
        }
        added
    });
    let added: i64 = futures_util::future::join_all(workers)
        .await
        .into_iter()
        .sum();
    assert_eq!(added, ceiling, "exactly `ceiling` capped adds succeed");
    assert_eq!(s.counter_get(&capped).await.unwrap(), ceiling);
    assert_eq!(
        s.counter_get(&plain).await.unwrap(),
        (clients * attempts) as i64,
        "no increment lost"
    );
}

pub async fn batch_adds_return_every_total(s: &dyn Store, p: &str) {
    let (a, b, c) = (format!("{p}:b:a"), format!("{p}:b:b"), format!("{p}:b:c"));
    s.counter_add(&b, 10, None).await.unwrap();
    let ops = [
        add(&a, 1, None, None),
        add(&b, 5, Some(100), None),
        add(&c, 7, Some(7), None),
        add(&a, 2, Some(3), None),
    ];
    assert_eq!(
        s.batch(&ops).await.unwrap(),
        BatchOutcome::Applied(vec![1, 15, 7, 3]),
        "every total, in order; a later op on one key sees the earlier one"
    );
    assert_eq!(s.counter_get(&a).await.unwrap(), 3);
    assert_eq!(s.counter_get(&b).await.unwrap(), 15);
    assert_eq!(s.counter_get(&c).await.unwrap(), 7);
    assert_eq!(
        s.batch(&[]).await.unwrap(),
        BatchOutcome::Applied(vec![]),
        "an empty batch"
    );
}

pub async fn batch_over_a_ceiling_changes_nothing(s: &dyn Store, p: &str) {
    let (a, b, c, l) = (
        format!("{p}:bn:a"),
        format!("{p}:bn:b"),
        format!("{p}:bn:c"),
        format!("{p}:bn:l"),
    );
    s.counter_add(&a, 4, None).await.unwrap();
    s.counter_add(&b, 9, None).await.unwrap();
    let ops = [
        add(&a, 1, Some(10), None),
        acquire(&l, "h1", 3, 60_000),
        add(&c, 5, None, None),
        add(&b, 2, Some(10), None),
        add(&a, 1, Some(10), None),
    ];
    assert_eq!(
        s.batch(&ops).await.unwrap(),
        BatchOutcome::Refused {
            index: 3,
            current: 9
        },
        "op 3 would take b to 11"
    );
    assert_eq!(s.counter_get(&a).await.unwrap(), 4, "a untouched");
    assert_eq!(s.counter_get(&b).await.unwrap(), 9, "b untouched");
    assert_eq!(s.counter_get(&c).await.unwrap(), 0, "c never created");
    assert_eq!(s.lease_count(&l).await.unwrap(), 0, "no lease taken");
    // Ceilings count earlier ops on the same key in the batch.
    let ops = [add(&a, 3, Some(10), None), add(&a, 4, Some(10), None)];
    assert_eq!(
        s.batch(&ops).await.unwrap(),
        BatchOutcome::Refused {
            index: 1,
            current: 4
        }
    );
    assert_eq!(s.counter_get(&a).await.unwrap(), 4);
    // A new counter starts at 0: a first add over its ceiling is refused at 0.
    assert_eq!(
        s.batch(&[add(&c, 6, Some(5), Some(60_000))]).await.unwrap(),
        BatchOutcome::Refused {
            index: 0,
            current: 0
        }
    );
    assert_eq!(s.counter_get(&c).await.unwrap(), 0);
    // Exactly at the ceiling is allowed.
    assert_eq!(
        s.batch(&[add(&b, 1, Some(10), None)]).await.unwrap(),
        BatchOutcome::Applied(vec![10])
    );
}

pub async fn batch_negative_adds_release(s: &dyn Store, p: &str) {
    let (a, b) = (format!("{p}:br:a"), format!("{p}:br:b"));
    s.counter_add(&a, 12, None).await.unwrap();
    s.counter_add(&b, 3, None).await.unwrap();
    // A release is never refused, even with the total above the ceiling.
    let ops = [add(&a, -5, Some(10), None), add(&b, -3, None, None)];
    assert_eq!(
        s.batch(&ops).await.unwrap(),
        BatchOutcome::Applied(vec![7, 0])
    );
    // A release in the batch makes room for a later capped add.
    let ops = [add(&a, -2, None, None), add(&a, 5, Some(10), None)];
    assert_eq!(
        s.batch(&ops).await.unwrap(),
        BatchOutcome::Applied(vec![5, 10])
    );
    assert_eq!(s.counter_get(&a).await.unwrap(), 10);
    assert_eq!(s.counter_get(&b).await.unwrap(), 0);
}

pub async fn batch_counter_ttl_is_set_at_creation(s: &dyn Store, clock: &dyn Clock, p: &str) {
    let (w, keep) = (format!("{p}:bt:w"), format!("{p}:bt:keep"));
    s.counter_add(&keep, 1, None).await.unwrap();
    let ops = [
        add(&w, 1, Some(100), Some(TTL_MS)),
        add(&keep, 1, Some(100), Some(1)),
    ];
    assert_eq!(
        s.batch(&ops).await.unwrap(),
        BatchOutcome::Applied(vec![1, 2])
    );
    clock.sleep(TTL_MS / 2).await;
    // A later add must not push the window's end further out.
    assert_eq!(
        s.batch(&[add(&w, 1, Some(100), Some(TTL_MS))])
            .await
            .unwrap(),
        BatchOutcome::Applied(vec![2])
    );
    clock.sleep(TTL_MS / 2 + 300).await;
    assert_eq!(
        s.counter_get(&w).await.unwrap(),
        0,
        "the window ended on time"
    );
    assert_eq!(
        s.counter_get(&keep).await.unwrap(),
        2,
        "a counter that existed keeps having no TTL"
    );
    assert_eq!(
        s.batch(&[add(&w, 1, Some(100), Some(TTL_MS))])
            .await
            .unwrap(),
        BatchOutcome::Applied(vec![1]),
        "a new window starts at 0"
    );
}

pub async fn leases_respect_the_limit(s: &dyn Store, p: &str) {
    let l = format!("{p}:ls:slots");
    let long = 60_000;
    assert_eq!(s.lease_count(&l).await.unwrap(), 0, "absent set is empty");
    assert_eq!(
        s.batch(&[acquire(&l, "a", 2, long)]).await.unwrap(),
        BatchOutcome::Applied(vec![1])
    );
    assert_eq!(
        s.batch(&[acquire(&l, "a", 2, long)]).await.unwrap(),
        BatchOutcome::Applied(vec![1]),
        "re-acquiring renews, it does not count twice"
    );
    assert_eq!(
        s.batch(&[acquire(&l, "b", 2, long)]).await.unwrap(),
        BatchOutcome::Applied(vec![2])
    );
    assert_eq!(
        s.batch(&[acquire(&l, "c", 2, long)]).await.unwrap(),
        BatchOutcome::Refused {
            index: 0,
            current: 2
        },
        "the limit holds"
    );
    assert_eq!(
        s.batch(&[acquire(&l, "b", 2, long)]).await.unwrap(),
        BatchOutcome::Applied(vec![2]),
        "a holder renews even at the limit"
    );
    assert_eq!(s.lease_count(&l).await.unwrap(), 2);
    assert_eq!(
        s.batch(&[release(&l, "a")]).await.unwrap(),
        BatchOutcome::Applied(vec![1]),
        "release frees a slot"
    );
    assert_eq!(
        s.batch(&[release(&l, "a"), release(&l, "nobody")])
            .await
            .unwrap(),
        BatchOutcome::Applied(vec![1, 1]),
        "releasing what is not held does nothing"
    );
    assert_eq!(
        s.batch(&[acquire(&l, "c", 2, long)]).await.unwrap(),
        BatchOutcome::Applied(vec![2])
    );
    // Release then acquire in one batch: the freed slot is usable by the next op.
    assert_eq!(
        s.batch(&[release(&l, "b"), acquire(&l, "d", 2, long)])
            .await
            .unwrap(),
        BatchOutcome::Applied(vec![1, 2])
    );
    assert_eq!(s.lease_count(&l).await.unwrap(), 2);
    // A lease set and a counter may share a key: separate namespaces.
    assert_eq!(s.counter_get(&l).await.unwrap(), 0);
    assert_eq!(
        s.batch(&[add(&l, 5, None, None)]).await.unwrap(),
        BatchOutcome::Applied(vec![5])
    );
    assert_eq!(s.lease_count(&l).await.unwrap(), 2);
    s.batch(&[release(&l, "c"), release(&l, "d")])
        .await
        .unwrap();
    assert_eq!(s.lease_count(&l).await.unwrap(), 0);
}

pub async fn leases_expire(s: &dyn Store, clock: &dyn Clock, p: &str) {
    let l = format!("{p}:le:slots");
    assert_eq!(
        s.batch(&[
            acquire(&l, "short", 2, TTL_MS),
            acquire(&l, "long", 2, 60_000)
        ])
        .await
        .unwrap(),
        BatchOutcome::Applied(vec![1, 2])
    );
    assert_eq!(
        s.batch(&[acquire(&l, "x", 2, 60_000)]).await.unwrap(),
        BatchOutcome::Refused {
            index: 0,
            current: 2
        }
    );
    clock.sleep(TTL_MS + 300).await;
    assert_eq!(
        s.lease_count(&l).await.unwrap(),
        1,
        "an expired lease stops counting"
    );
    assert_eq!(
        s.batch(&[acquire(&l, "x", 2, 60_000)]).await.unwrap(),
        BatchOutcome::Applied(vec![2]),
        "its slot is free again"
    );
    assert_eq!(
        s.batch(&[release(&l, "short")]).await.unwrap(),
        BatchOutcome::Applied(vec![2]),
        "releasing an expired lease does nothing"
    );
    // A renewal moves the expiry: renewed before it ends, the lease outlives its first TTL.
    let r = format!("{p}:le:renew");
    s.batch(&[acquire(&r, "h", 1, TTL_MS)]).await.unwrap();
    clock.sleep(TTL_MS / 2).await;
    s.batch(&[acquire(&r, "h", 1, TTL_MS + 600)]).await.unwrap();
    clock.sleep(TTL_MS / 2 + 300).await;
    assert_eq!(
        s.lease_count(&r).await.unwrap(),
        1,
        "renewed lease still live"
    );
}

pub async fn mixed_batches_are_all_or_nothing(s: &dyn Store, p: &str) {
    let (a, l) = (format!("{p}:mx:a"), format!("{p}:mx:l"));
    let long = 60_000;
    s.batch(&[acquire(&l, "other", 1, long)]).await.unwrap();
    // The lease refuses: the add before it does not happen.
    assert_eq!(
        s.batch(&[add(&a, 1, Some(10), None), acquire(&l, "me", 1, long)])
            .await
            .unwrap(),
        BatchOutcome::Refused {
            index: 1,
            current: 1
        }
    );
    assert_eq!(s.counter_get(&a).await.unwrap(), 0);
    // The add refuses: the lease before it is not taken.
    s.counter_add(&a, 10, None).await.unwrap();
    s.batch(&[release(&l, "other")]).await.unwrap();
    assert_eq!(
        s.batch(&[acquire(&l, "me", 1, long), add(&a, 1, Some(10), None)])
            .await
            .unwrap(),
        BatchOutcome::Refused {
            index: 1,
            current: 10
        }
    );
    assert_eq!(s.lease_count(&l).await.unwrap(), 0, "no lease taken");
    // Both fit: both apply.
    assert_eq!(
        s.batch(&[acquire(&l, "me", 1, long), add(&a, -1, None, None)])
            .await
            .unwrap(),
        BatchOutcome::Applied(vec![1, 9])
    );
    // A refused batch does not release what it would have released either.
    assert_eq!(
        s.batch(&[release(&l, "me"), add(&a, 5, Some(10), None)])
            .await
            .unwrap(),
        BatchOutcome::Refused {
            index: 1,
            current: 9
        }
    );
    assert_eq!(
        s.lease_count(&l).await.unwrap(),
        1,
        "the release was undone"
    );
}

/// Returns `Pending` once, so concurrent callers on a store that never awaits (memory)
/// still interleave.
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// Ceilings and the lease limit of [`batch_hammer`]: each applied batch adds
/// [`BATCH_A_DELTA`] to A and [`BATCH_B_DELTA`] to B, so B's ceiling is the one reached.
pub const BATCH_A_CEILING: i64 = 50;
pub const BATCH_B_CEILING: i64 = 80;
pub const BATCH_A_DELTA: i64 = 1;
pub const BATCH_B_DELTA: i64 = 2;
pub const BATCH_LEASE_LIMIT: u64 = 5;
/// Batches that can apply before B is full.
pub const BATCH_MAX_APPLIED: i64 = BATCH_B_CEILING / BATCH_B_DELTA;

/// What one [`batch_hammer`] saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchTally {
    /// Batches that applied.
    pub applied: i64,
    /// The largest lease count any applied batch or `lease_count` reported.
    pub max_leases: i64,
}

/// `clients` concurrent callers (holders `{holder}-{i}`) each run `attempts` batches
/// `[Add A +1 ≤ 50, Add B +2 ≤ 80, Acquire C (limit 5)]`, and release their lease after an
/// applied one (with other callers running in between). Checks every answer on the way; the
/// caller checks the totals with [`check_batch_totals`] (several processes may hammer at once).
pub async fn batch_hammer(
    s: &dyn Store,
    p: &str,
    holder: &str,
    clients: usize,
    attempts: usize,
) -> BatchTally {
    let (a, b, c) = batch_keys(p);
    let workers = (0..clients).map(|i| {
        let (a, b, c) = (a.clone(), b.clone(), c.clone());
        let me = format!("{holder}-{i}");
        async move {
            let mut tally = BatchTally::default();
            let ops = [
                add(&a, BATCH_A_DELTA, Some(BATCH_A_CEILING), None),
                add(&b, BATCH_B_DELTA, Some(BATCH_B_CEILING), None),
                acquire(&c, &me, BATCH_LEASE_LIMIT, 60_000),
            ];
            for _ in 0..attempts {
                match s.batch(&ops).await.unwrap() {
                    BatchOutcome::Applied(totals) => {
                        assert_eq!(totals.len(), 3);
                        assert!(totals[0] <= BATCH_A_CEILING, "A passed: {totals:?}");
                        assert!(totals[1] <= BATCH_B_CEILING, "B passed: {totals:?}");
                        assert!(
                            (1..=BATCH_LEASE_LIMIT as i64).contains(&totals[2]),
                            "lease count: {totals:?}"
                        );
                        tally.applied += 1;
                        tally.max_leases = tally.max_leases.max(totals[2]);
                        YieldNow(false).await;
                        let held = s.lease_count(&c).await.unwrap();
                        assert!(held <= BATCH_LEASE_LIMIT as i64, "{held} leases");
                        tally.max_leases = tally.max_leases.max(held);
                        let released = s.batch(&[release(&c, &me)]).await.unwrap();
                        assert!(
                            matches!(&released, BatchOutcome::Applied(n) if n[0] < BATCH_LEASE_LIMIT as i64),
                            "{released:?}"
                        );
                    }
                    BatchOutcome::Refused { index, current } => match index {
                        0 => assert!(current > BATCH_A_CEILING - BATCH_A_DELTA, "A {current}"),
                        1 => assert!(current > BATCH_B_CEILING - BATCH_B_DELTA, "B {current}"),
                        2 => assert_eq!(current, BATCH_LEASE_LIMIT as i64, "leases"),
                        other => panic!("refused at op {other}"),
                    },
                }
                YieldNow(false).await;
            }
            tally
        }
    });
    futures_util::future::join_all(workers)
        .await
        .into_iter()
        .fold(BatchTally::default(), |sum, t| BatchTally {
            applied: sum.applied + t.applied,
            max_leases: sum.max_leases.max(t.max_leases),
        })
}

/// After every [`batch_hammer`] on `p` is over, with `applied` batches applied in all: A and B
/// hold exactly what the applied batches added (an add that applied without its batch shows
/// here), neither passed its ceiling, and every lease was released.
pub async fn check_batch_totals(s: &dyn Store, p: &str, applied: i64) {
    let (a, b, c) = batch_keys(p);
    let (ta, tb) = (
        s.counter_get(&a).await.unwrap(),
        s.counter_get(&b).await.unwrap(),
    );
    assert_eq!(
        (ta, tb),
        (BATCH_A_DELTA * applied, BATCH_B_DELTA * applied),
        "A and B hold exactly the {applied} applied batches"
    );
    assert!(ta <= BATCH_A_CEILING && tb <= BATCH_B_CEILING);
    assert_eq!(s.lease_count(&c).await.unwrap(), 0, "every lease released");
}

/// [`batch_hammer`] then [`check_batch_totals`], in one process: B's ceiling is reached exactly
/// (`attempts` must leave enough tries for that), and the lease limit was never passed.
pub async fn concurrent_batches(s: &dyn Store, p: &str, clients: usize, attempts: usize) {
    assert!(
        clients > BATCH_LEASE_LIMIT as usize,
        "more clients than leases, so the limit is pushed"
    );
    let tally = batch_hammer(s, p, "h", clients, attempts).await;
    assert_eq!(
        tally.applied, BATCH_MAX_APPLIED,
        "batches apply until B is full, and no further"
    );
    assert!(tally.max_leases <= BATCH_LEASE_LIMIT as i64);
    check_batch_totals(s, p, tally.applied).await;
}

fn batch_keys(p: &str) -> (String, String, String) {
    (
        format!("{p}:bc:a"),
        format!("{p}:bc:b"),
        format!("{p}:bc:c"),
    )
}
