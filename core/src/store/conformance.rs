//! The conformance suite every backend must pass: the same cases, in the same words, against
//! memory, embedded, Redis, DynamoDB, Upstash and the Workers backends. Backends call
//! [`run_all`] from their own tests (enable the `conformance` feature of `tollgate-core`).
//!
//! Cases panic on failure, like any test assertion. Every key starts with the caller's
//! `prefix`, so runs against a shared server do not collide (use a unique prefix per run).

use std::sync::atomic::{AtomicU64, Ordering};

use super::{CapOutcome, Store};
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
