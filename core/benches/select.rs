//! How long choosing a deployment takes when a model group has 100 of them.
//!
//! `choose/*`: the pure choice per strategy over figures already read.
//! `pick/*`: a whole pick as the gateway makes it — Store reads (in-memory Store) plus the
//! choice — for the default strategy (cooldowns only) and for usage-based routing (cooldowns
//! and per-minute counters).
//!
//!     cargo bench -p tollgate-core --bench select

use std::sync::Arc;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use tollgate_core::ports::Clock;
use tollgate_core::router::session::RouteSession;
use tollgate_core::router::strategy::RoutingStrategy;
use tollgate_core::router::{choose, Candidate, Rng};
use tollgate_core::store::memory::MemoryStore;
use tollgate_core::Config;

const GROUP: usize = 100;

fn candidates() -> Vec<Candidate> {
    (0..GROUP)
        .map(|i| Candidate {
            index: i,
            weight: Some(1.0 + (i % 7) as f64),
            rpm: Some(10_000),
            tpm: Some(1_000_000),
            order: None,
            in_flight: (i * 13 % 17) as i64,
            minute_tokens: (i * 7919 % 100_000) as i64,
            minute_requests: (i * 31 % 500) as i64,
            latency_per_output_token: Some(5.0 + (i * 37 % 100) as f64 / 10.0),
            input_cost_per_token: Some(1e-6 * (1 + i % 5) as f64),
            output_cost_per_token: Some(2e-6 * (1 + i % 3) as f64),
            cooling_down: i % 10 == 0,
        })
        .collect()
}

fn bench_choose(c: &mut Criterion) {
    let cands = candidates();
    let strategies = [
        ("simple-shuffle", RoutingStrategy::SimpleShuffle),
        ("least-busy", RoutingStrategy::LeastBusy),
        ("usage-based", RoutingStrategy::UsageBased),
        (
            "latency-based",
            RoutingStrategy::LatencyBased { buffer: 0.1 },
        ),
        ("cost-based", RoutingStrategy::CostBased),
    ];
    let mut group = c.benchmark_group("choose");
    for (name, strategy) in strategies {
        let mut rng = Rng::seeded(7);
        group.bench_function(name, |b| {
            b.iter(|| choose(black_box(&strategy), black_box(&cands), 500, &mut rng))
        });
    }
    group.finish();
}

/// A fixed clock: the in-memory Store only needs "now" for TTLs.
struct Fixed;

#[async_trait::async_trait]
impl Clock for Fixed {
    fn now_ms(&self) -> u64 {
        1_700_000_000_000
    }
    async fn sleep(&self, _ms: u64) {}
}

fn config(strategy: &str) -> Config {
    let mut yaml = String::from("model_list:\n");
    for i in 0..GROUP {
        yaml.push_str(&format!(
            "  - model_name: g\n    litellm_params: {{model: openai/m, api_key: k, api_base: \"http://h{i}/v1\", rpm: 10000, weight: {}}}\n",
            1 + i % 7
        ));
    }
    yaml.push_str(&format!(
        "router_settings:\n  routing_strategy: {strategy}\n"
    ));
    Config::from_yaml(&yaml, &|_| None).expect("bench config loads")
}

fn bench_pick(c: &mut Criterion) {
    let store = MemoryStore::new(Arc::new(Fixed));
    let failures = tollgate_core::store_log::StoreFailures::new(Arc::new(Fixed));
    let mut group = c.benchmark_group("pick");
    for strategy in ["simple-shuffle", "usage-based-routing-v2"] {
        let cfg = config(strategy);
        let session = RouteSession::new(
            cfg.deployments_for("g"),
            cfg.route_settings(),
            &store,
            &failures,
            "g",
            100,
        )
        .expect("group exists");
        let mut rng = Rng::seeded(11);
        group.bench_function(strategy, |b| {
            b.iter(|| {
                futures_executor::block_on(session.pick(1_700_000_000_000, &mut rng))
                    .expect("a deployment")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_choose, bench_pick);
criterion_main!(benches);
