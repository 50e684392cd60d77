//! `tollgate_core::store::upstash::UpstashStore` on the native host: the reqwest `HttpClient`
//! against [`UpstashShim`] (Upstash's REST API in front of a real redis-server), plus faults
//! from hand-written HTTP servers. Paths are `crate::`-absolute only.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tollgate_core::ports::{Clock, HttpClient};
use tollgate_core::store::conformance::{concurrent_batches, concurrent_ceiling, run_all};
use tollgate_core::store::redis_protocol::{counter_key, log_key, record_key};
use tollgate_core::store::upstash::UpstashStore;
use tollgate_core::store::{CapOutcome, Store, StoreError};

use crate::clock::SystemClock;
use crate::http_client::ReqwestClient;
use crate::test_support::{free_port, start_redis, ChildServer, UpstashShim};

const TOKEN: &str = "AX-test-t0ken-s3cret";
const OP_TIMEOUT_MS: u64 = 500;
/// Slack on top of the operation timeout before a fault test calls it a hang.
const MARGIN: Duration = Duration::from_millis(700);

fn store_at(url: &str, token: &str, op_timeout_ms: u64) -> UpstashStore {
    let http: Arc<dyn HttpClient> = Arc::new(ReqwestClient::new().expect("a reqwest client"));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    UpstashStore::new(http, clock, url, token, op_timeout_ms)
}

/// A redis-server, the shim in front of it, and a store through the shim.
async fn setup() -> (ChildServer, UpstashShim, UpstashStore) {
    let redis = start_redis(&[]);
    let shim = UpstashShim::start(redis.port, TOKEN).await;
    let store = store_at(&shim.url, TOKEN, 5_000);
    (redis, shim, store)
}

async fn raw(redis: &ChildServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("redis://127.0.0.1:{}", redis.port))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

fn unique_prefix(name: &str) -> String {
    format!("t{}-{}-{name}", std::process::id(), SystemClock.now_ms())
}

fn elapsed_ok(started: Instant) {
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(OP_TIMEOUT_MS) + MARGIN,
        "took {took:?}"
    );
}

/// A one-shot HTTP server on 127.0.0.1: every connection gets `response` (then, if `hold`,
/// the connection stays open without another byte). Returns its URL.
fn canned_server(response: &'static [u8], hold: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(response);
            let _ = stream.flush();
            if hold {
                held.push(stream);
            }
        }
    });
    url
}

#[tokio::test]
async fn conformance_suite() {
    let (_redis, _shim, store) = setup().await;
    run_all(&store, &SystemClock, &unique_prefix("conf")).await;
}

#[tokio::test]
async fn concurrent_capped_adds_never_pass_the_ceiling() {
    let (_redis, _shim, store) = setup().await;
    concurrent_ceiling(&store, &unique_prefix("conc"), 8, 25, 60).await;
}

#[tokio::test]
async fn concurrent_batches_are_all_or_nothing() {
    let (_redis, _shim, store) = setup().await;
    concurrent_batches(&store, &unique_prefix("batch"), 8, 30).await;
}

/// The documented data format: values and log data are base64 text; counters are integers.
#[tokio::test]
async fn values_are_stored_as_base64_and_counters_as_integers() {
    let (redis, _shim, store) = setup().await;
    let mut conn = raw(&redis).await;
    let p = unique_prefix("format");
    let value = [0u8, 0xff, b'"', b'\\', b'\n', 0xc3];
    store.put(&format!("{p}:r"), &value, None).await.unwrap();
    store
        .counter_add(&format!("{p}:c"), 42, None)
        .await
        .unwrap();
    store
        .log_append(&format!("{p}:l"), 7, &value)
        .await
        .unwrap();

    let stored: String = redis::cmd("GET")
        .arg(record_key(&format!("{p}:r")))
        .query_async(&mut conn)
        .await
        .unwrap();
    let b64 = "AP8iXArD"; // standard base64 of `value`
    assert_eq!(stored, b64);
    let counter: String = redis::cmd("GET")
        .arg(counter_key(&format!("{p}:c")))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(counter, "42");
    let members: Vec<String> = redis::cmd("ZRANGE")
        .arg(log_key(&format!("{p}:l")))
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(members, [format!("{:020}{:016}{b64}", 7, 1)]);

    assert_eq!(
        store.get(&format!("{p}:r")).await.unwrap(),
        Some(value.to_vec())
    );
    let log = store.log_range(&format!("{p}:l"), 0, 10, 10).await.unwrap();
    assert_eq!((log[0].at_ms, &log[0].data[..]), (7, &value[..]));
}

/// Keys beyond ASCII travel as JSON text; the listing's upper bound (prefix ++ 0xff) is built
/// inside the script, so it still bounds every key with the prefix.
#[tokio::test]
async fn listing_handles_non_ascii_keys() {
    let (_redis, _shim, store) = setup().await;
    let p = unique_prefix("utf8");
    for k in ["a", "\u{e9}", "\u{1f600}", "\u{ff}x"] {
        store
            .put(&format!("{p}:{k}"), k.as_bytes(), None)
            .await
            .unwrap();
    }
    store
        .put(&format!("{p};z"), b"outside", None)
        .await
        .unwrap();
    let listed = store.list_prefix(&format!("{p}:"), 10).await.unwrap();
    let keys: Vec<_> = listed.iter().map(|e| e.key.clone()).collect();
    assert_eq!(
        keys,
        ["a", "\u{e9}", "\u{ff}x", "\u{1f600}"].map(|k| format!("{p}:{k}"))
    );
    assert_eq!(listed[3].value, "\u{1f600}".as_bytes());
    let one = store.list_prefix(&format!("{p}:\u{e9}"), 10).await.unwrap();
    assert_eq!(one.len(), 1);
}

/// Scripts go as EVALSHA; after the server forgets them (SCRIPT FLUSH, a restart), the
/// NOSCRIPT reply is answered with EVAL and operations carry on.
#[tokio::test]
async fn scripts_are_reloaded_after_noscript() {
    let (redis, _shim, store) = setup().await;
    let mut conn = raw(&redis).await;
    let k = format!("{}:c", unique_prefix("noscript"));
    assert_eq!(store.counter_add(&k, 1, None).await.unwrap(), 1);
    let sha = redis::Script::new(tollgate_core::store::redis_protocol::COUNTER_ADD)
        .get_hash()
        .to_string();
    let cached: Vec<i64> = redis::cmd("SCRIPT")
        .arg("EXISTS")
        .arg(&sha)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(cached, [1], "EVAL on NOSCRIPT cached the script");
    let () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(store.counter_add(&k, 1, None).await.unwrap(), 2);
    assert_eq!(
        store.counter_add_capped(&k, 1, 2, None).await.unwrap(),
        CapOutcome::Refused(2)
    );
    assert_eq!(store.counter_add(&k, 1, None).await.unwrap(), 3);
    // Three scripts sent in full (first use, after the flush, first capped add); the last
    // add went by hash alone.
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await
        .unwrap();
    let calls = |name: &str| -> u64 {
        stats
            .lines()
            .find_map(|l| l.strip_prefix(&format!("cmdstat_{name}:calls=")))
            .and_then(|rest| rest.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    assert_eq!(calls("eval"), 3, "{stats}");
    assert!(calls("evalsha") >= 1, "{stats}");
}

#[tokio::test]
async fn wrongly_typed_data_is_corrupt() {
    let (redis, _shim, store) = setup().await;
    let mut conn = raw(&redis).await;
    let p = unique_prefix("corrupt");
    let (c, r) = (format!("{p}:c"), format!("{p}:r"));
    let () = redis::cmd("SET")
        .arg(counter_key(&c))
        .arg("abc")
        .query_async(&mut conn)
        .await
        .unwrap();
    let () = redis::cmd("SET")
        .arg(record_key(&r))
        .arg("not base64!")
        .query_async(&mut conn)
        .await
        .unwrap();
    for result in [
        store.counter_get(&c).await,
        store.counter_add(&c, 1, None).await,
        store.counter_add_capped(&c, 1, 9, None).await.map(|_| 0),
    ] {
        assert!(matches!(result, Err(StoreError::Corrupt(_))), "{result:?}");
    }
    assert!(matches!(store.get(&r).await, Err(StoreError::Corrupt(_))));
}

#[tokio::test]
async fn a_wrong_token_is_unavailable_and_never_shown() {
    let (_redis, shim, _store) = setup().await;
    let wrong = "wrong-t0ken-s3cret";
    let store = store_at(&shim.url, wrong, OP_TIMEOUT_MS);
    assert!(!format!("{store:?}").contains(wrong));
    for result in [
        store.get("k").await.map(|_| ()),
        store.counter_add("k", 1, None).await.map(|_| ()),
    ] {
        match result {
            Err(StoreError::Unavailable(m)) => {
                assert!(!m.contains(wrong) && !m.contains("s3cret"), "{m}");
                assert!(m.contains("401"), "{m}");
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }
    let bad_header = store_at(&shim.url, "line\nbreak", OP_TIMEOUT_MS);
    assert!(matches!(
        bad_header.get("k").await,
        Err(StoreError::Unavailable(_))
    ));
}

/// A server that accepts connections but never answers: Timeout within the operation timeout.
#[tokio::test]
async fn silent_server_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let store = store_at(
        &format!("http://{}", listener.local_addr().unwrap()),
        TOKEN,
        OP_TIMEOUT_MS,
    );
    for _ in 0..2 {
        let started = Instant::now();
        let result = store.counter_add_capped("c", 1, 5, None).await;
        assert!(matches!(result, Err(StoreError::Timeout)), "{result:?}");
        elapsed_ok(started);
    }
    drop(listener);
}

/// Headers arrive, then the body stalls: the body read is bounded too.
#[tokio::test]
async fn stalled_body_times_out() {
    let url = canned_server(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"res",
        true,
    );
    let store = store_at(&url, TOKEN, OP_TIMEOUT_MS);
    let started = Instant::now();
    let result = store.get("k").await;
    assert!(matches!(result, Err(StoreError::Timeout)), "{result:?}");
    elapsed_ok(started);
}

#[tokio::test]
async fn unreadable_replies_are_corrupt_and_gateway_errors_unavailable() {
    let garbage = canned_server(
        b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot json!",
        false,
    );
    let result = store_at(&garbage, TOKEN, OP_TIMEOUT_MS).get("k").await;
    assert!(matches!(result, Err(StoreError::Corrupt(_))), "{result:?}");
    let shape = canned_server(
        b"HTTP/1.1 200 OK\r\nContent-Length: 14\r\nConnection: close\r\n\r\n{\"result\":[1]}",
        false,
    );
    let result = store_at(&shape, TOKEN, OP_TIMEOUT_MS)
        .counter_get("k")
        .await;
    assert!(matches!(result, Err(StoreError::Corrupt(_))), "{result:?}");
    let gateway = canned_server(
        b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 6\r\nConnection: close\r\n\r\n<html>",
        false,
    );
    match store_at(&gateway, TOKEN, OP_TIMEOUT_MS).get("k").await {
        Err(StoreError::Unavailable(m)) => assert!(m.contains("502"), "{m}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn nothing_listening_is_unavailable_fast() {
    let store = store_at(
        &format!("http://127.0.0.1:{}", free_port()),
        TOKEN,
        OP_TIMEOUT_MS,
    );
    let started = Instant::now();
    let result = store.put("k", b"v", None).await;
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{result:?}"
    );
    elapsed_ok(started);
    let bad_url = store_at("not a url", TOKEN, OP_TIMEOUT_MS);
    assert!(matches!(
        bad_url.get("k").await,
        Err(StoreError::Unavailable(_))
    ));
}

/// The shim answers pipelines the way Upstash documents (one object per command).
#[tokio::test]
async fn shim_speaks_upstash_rest() {
    let (_redis, shim, _store) = setup().await;
    let client = reqwest::Client::new();
    let k = unique_prefix("shim");
    let post = |path: &str, body: serde_json::Value| {
        client
            .post(format!("{}{path}", shim.url))
            .bearer_auth(TOKEN)
            .body(body.to_string())
            .send()
    };
    async fn json(response: reqwest::Response) -> serde_json::Value {
        serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
    }
    let response = post("/", serde_json::json!(["SET", k, "v", "EX", 100]))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(json(response).await, serde_json::json!({"result": "OK"}));
    let response = post(
        "/pipeline",
        serde_json::json!([
            ["GET", k],
            ["INCR", k],
            ["GET", "absent"],
            ["ZADD", "z", 1, "m"]
        ]),
    )
    .await
    .unwrap();
    let body = json(response).await;
    assert_eq!(body[0], serde_json::json!({"result": "v"}));
    assert!(body[1]["error"]
        .as_str()
        .unwrap()
        .contains("not an integer"));
    assert_eq!(body[2], serde_json::json!({"result": null}));
    assert_eq!(body[3], serde_json::json!({"result": 1}));
    let response = post("/", serde_json::json!(["EVALSHA", "0".repeat(40), 0]))
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body = json(response).await;
    assert!(
        body["error"].as_str().unwrap().starts_with("NOSCRIPT"),
        "{body}"
    );
}
