//! Store primitives benchmark: operations per second and p50/p99 latency for each primitive on
//! each backend, one client at a time, plus counter adds from 8 concurrent clients, and a
//! 4-op `Store::batch` (three capped adds and a lease acquire: the shape a request's rate
//! limits and budget take).
//!
//!   cargo run --release -p tollgate-lambda --example store_bench -- [--ops N]
//!
//! Backends: memory and embedded always; Redis when `BENCH_REDIS_URL` is set; DynamoDB when
//! `BENCH_DYNAMODB_ENDPOINT` is set (a local moto server). `tests/bench/store.sh` starts those
//! servers on loopback and runs this. Prints a Markdown table.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tollgate_core::ports::Clock;
use tollgate_core::store::memory::MemoryStore;
use tollgate_core::store::{BatchOp, BatchOutcome, Store};
use tollgate_lambda::clock::SystemClock;
use tollgate_lambda::store::{dynamodb, embedded, redis};

struct Row {
    backend: String,
    op: &'static str,
    ops_per_s: f64,
    p50_us: f64,
    p99_us: f64,
}

async fn measure<F, Fut>(backend: &str, op: &'static str, n: usize, mut f: F) -> Row
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut lat = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        f(i).await;
        lat.push(t.elapsed());
    }
    let total = start.elapsed();
    lat.sort();
    let pct =
        |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1e6;
    Row {
        backend: backend.into(),
        op,
        ops_per_s: n as f64 / total.as_secs_f64(),
        p50_us: pct(0.50),
        p99_us: pct(0.99),
    }
}

async fn bench(name: &str, store: Arc<dyn Store>, n: usize) -> Vec<Row> {
    let p = format!("bench:{}:{}", std::process::id(), name);
    let value = vec![7u8; 200];
    let mut rows = Vec::new();
    rows.push(
        measure(name, "put", n, |i| {
            let (s, k, v) = (store.clone(), format!("{p}:r:{i}"), value.clone());
            async move {
                s.put(&k, &v, Some(60_000)).await.unwrap();
            }
        })
        .await,
    );
    rows.push(
        measure(name, "get", n, |i| {
            let (s, k) = (store.clone(), format!("{p}:r:{i}"));
            async move {
                assert!(s.get(&k).await.unwrap().is_some());
            }
        })
        .await,
    );
    rows.push(
        measure(name, "put_if_absent", n, |i| {
            let (s, k, v) = (store.clone(), format!("{p}:c:{i}"), value.clone());
            async move {
                s.put_if_absent(&k, &v, None).await.unwrap();
            }
        })
        .await,
    );
    rows.push(
        measure(name, "counter_add", n, |_| {
            let (s, k) = (store.clone(), format!("{p}:n"));
            async move {
                s.counter_add(&k, 1, Some(60_000)).await.unwrap();
            }
        })
        .await,
    );
    rows.push(
        measure(name, "counter_add_capped", n, |_| {
            let (s, k) = (store.clone(), format!("{p}:cap"));
            async move {
                s.counter_add_capped(&k, 1, i64::MAX / 2, Some(60_000))
                    .await
                    .unwrap();
            }
        })
        .await,
    );
    rows.push(
        measure(name, "log_append", n, |i| {
            let (s, k, v) = (store.clone(), format!("{p}:log"), value.clone());
            async move {
                s.log_append(&k, i as u64, &v).await.unwrap();
            }
        })
        .await,
    );
    rows.push(
        measure(name, "list_prefix (10)", n / 10, |i| {
            let (s, k) = (store.clone(), format!("{p}:r:{}", i % 10));
            async move {
                s.list_prefix(&k, 10).await.unwrap();
            }
        })
        .await,
    );
    rows.push(
        measure(name, "batch (4 ops)", n, |i| {
            let s = store.clone();
            let capped = |what: &str| BatchOp::Add {
                key: format!("{p}:b:{what}"),
                delta: 1,
                ceiling: Some(i64::MAX / 2),
                ttl_ms: Some(60_000),
            };
            let ops = [
                capped("rpm"),
                capped("tpm"),
                capped("budget"),
                BatchOp::Acquire {
                    key: format!("{p}:b:parallel"),
                    holder: format!("h{}", i % 8),
                    limit: 100,
                    ttl_ms: 60_000,
                },
            ];
            async move {
                let outcome = s.batch(&ops).await.unwrap();
                assert!(matches!(outcome, BatchOutcome::Applied(_)), "{outcome:?}");
            }
        })
        .await,
    );
    // 8 concurrent clients on one counter: the contended case limits hit.
    let clients = 8;
    let per = n / clients;
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (s, k) = (store.clone(), format!("{p}:conc"));
            tokio::spawn(async move {
                for _ in 0..per {
                    s.counter_add(&k, 1, None).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = start.elapsed();
    rows.push(Row {
        backend: name.into(),
        op: "counter_add × 8 clients",
        ops_per_s: (per * clients) as f64 / elapsed.as_secs_f64(),
        p50_us: f64::NAN,
        p99_us: f64::NAN,
    });
    rows
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args
        .iter()
        .position(|a| a == "--ops")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut rows = Vec::new();
    rows.extend(bench("memory", Arc::new(MemoryStore::new(clock.clone())), n).await);
    let dir: PathBuf = std::env::temp_dir().join(format!("tollgate-bench-{}", std::process::id()));
    let emb = Arc::new(
        embedded::EmbeddedStore::open(&dir.join("bench.redb"), clock.clone())
            .expect("embedded store"),
    );
    rows.extend(bench("embedded (redb)", emb, n / 4).await);
    if let Ok(url) = std::env::var("BENCH_REDIS_URL") {
        let s = redis::RedisStore::connect(&url, Duration::from_secs(2))
            .await
            .expect("redis");
        rows.extend(bench("redis", Arc::new(s), n).await);
    }
    if let Ok(endpoint) = std::env::var("BENCH_DYNAMODB_ENDPOINT") {
        let creds =
            aws_sdk_dynamodb::config::Credentials::new("bench", "bench", None, None, "bench");
        let client =
            dynamodb::sdk_client(Some("us-east-1".into()), Some(endpoint), Some(creds)).await;
        let s = dynamodb::DynamoStore::new(
            client,
            "tollgate-bench".into(),
            clock.clone(),
            Duration::from_secs(5),
        );
        s.create_table_if_missing().await.expect("table");
        rows.extend(bench("dynamodb (moto)", Arc::new(s), n / 10).await);
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!("| backend | primitive | ops/s | p50 | p99 |");
    println!("|---|---|---|---|---|");
    for r in rows {
        let fmt = |v: f64| {
            if v.is_nan() {
                "–".to_string()
            } else if v < 10.0 {
                format!("{v:.1} µs")
            } else {
                format!("{v:.0} µs")
            }
        };
        println!(
            "| {} | {} | {:.0} | {} | {} |",
            r.backend,
            r.op,
            r.ops_per_s,
            fmt(r.p50_us),
            fmt(r.p99_us)
        );
    }
}
