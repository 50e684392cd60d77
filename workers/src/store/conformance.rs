//! Test-only (`store-conformance` feature): `GET /__store/conformance` runs core's conformance
//! suite against the real bindings, in real time, and answers 200 "ok". A failed case panics,
//! which workerd reports as a 500 (the message is in the wrangler log).

use tollgate_core::store::conformance::{concurrent_batches, concurrent_ceiling, run_all};
use tollgate_core::store::{CapOutcome, Store};
use worker::{Env, Response};

use super::WorkersStore;
use crate::clock::WorkerClock;

pub const ROUTE: &str = "/__store/conformance";

pub async fn run(env: &Env) -> worker::Result<Response> {
    // A failed assertion aborts the isolate; say which one first (it lands in the wrangler log).
    std::panic::set_hook(Box::new(|info| {
        worker::console_error!("store conformance failed: {info}");
    }));
    let store = match WorkersStore::from_env(env) {
        Ok(s) => s,
        Err(e) => return Response::error(e.to_string(), 500),
    };
    let prefix = format!(
        "conf-{}-{}",
        js_sys::Date::now() as u64,
        (js_sys::Math::random() * 1e9) as u64
    );
    worker::console_log!("store conformance: prefix {prefix}");
    run_all(&store, &WorkerClock, &prefix).await;
    concurrent_ceiling(&store, &format!("{prefix}-conc"), 8, 25, 60).await;
    concurrent_batches(&store, &format!("{prefix}-batch"), 8, 30).await;
    workers_specifics(&store, &WorkerClock, &prefix).await;
    Response::ok("ok")
}

/// Paths of this backend the shared suite does not reach.
async fn workers_specifics(s: &dyn Store, clock: &WorkerClock, p: &str) {
    use tollgate_core::ports::Clock;

    // A value too large to ride in KV metadata is listed through a read of its own.
    let big: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
    s.put(&format!("{p}:big:1"), &big, None).await.unwrap();
    s.put(&format!("{p}:big:2"), b"", None).await.unwrap();
    let listed = s.list_prefix(&format!("{p}:big:"), 10).await.unwrap();
    assert_eq!(listed.len(), 2, "both listed");
    assert_eq!(listed[0].value, big, "large value listed whole");
    assert!(listed[1].value.is_empty(), "empty value listed");

    // A claim with a TTL ends on time and can be claimed again.
    let k = format!("{p}:claim:ttl");
    assert!(s.put_if_absent(&k, b"one", Some(400)).await.unwrap());
    assert!(!s.put_if_absent(&k, b"two", Some(400)).await.unwrap());
    clock.sleep(700).await;
    assert_eq!(s.get(&k).await.unwrap(), None, "claim expired");
    assert!(
        s.put_if_absent(&k, b"three", None).await.unwrap(),
        "expired claim is claimable"
    );
    // Concurrent claims of one key: exactly one wins, and its value is the one stored.
    let k = format!("{p}:claim:race");
    let racers = (0..8u8).map(|i| {
        let k = k.clone();
        async move { (i, s.put_if_absent(&k, &[i], None).await.unwrap()) }
    });
    let winners: Vec<u8> = futures_util::future::join_all(racers)
        .await
        .into_iter()
        .filter_map(|(i, won)| won.then_some(i))
        .collect();
    assert_eq!(winners.len(), 1, "exactly one concurrent claim wins");
    assert_eq!(s.get(&k).await.unwrap(), Some(winners.clone()));

    // A plain put is seen by a later claim; deleting it reports a removal.
    let k = format!("{p}:claim:put");
    s.put(&k, b"plain", None).await.unwrap();
    assert!(!s.put_if_absent(&k, b"claim", None).await.unwrap());
    assert!(s.delete(&k).await.unwrap());
    assert!(!s.delete(&format!("{p}:claim:never")).await.unwrap());

    // A refused capped add does not create the counter's window; a capped add can create one.
    let c = format!("{p}:cap:ttl");
    assert_eq!(
        s.counter_add_capped(&c, 5, 3, Some(400)).await.unwrap(),
        CapOutcome::Refused(0)
    );
    assert_eq!(
        s.counter_add_capped(&c, 2, 3, Some(400)).await.unwrap(),
        CapOutcome::Added(2)
    );
    clock.sleep(700).await;
    assert_eq!(s.counter_get(&c).await.unwrap(), 0, "capped window ended");

    // Open-ended ranges and an empty entry.
    let log = format!("{p}:log:wide");
    s.log_append(&log, 5, b"").await.unwrap();
    s.log_append(&log, 1_700_000_000_000, b"now").await.unwrap();
    let all = s.log_range(&log, 0, u64::MAX, usize::MAX).await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(all[0].data.is_empty());
    assert_eq!(all[1].data, b"now");
    assert!(
        s.log_append(&log, u64::MAX, b"x").await.is_err(),
        "time past 2^53 is an error, not a panic"
    );
}
