//! The Store figures behind each [`Candidate`], so every instance routes on the same numbers.
//! Every write is a single atomic Store call (no read-modify-write).
//!
//! Keys, per deployment id ([`deployment_id`]):
//! - `router:inflight:<id>`: requests in flight (+1 on start, −1 on finish);
//! - `router:requests:<id>@<minute>`, `router:tokens:<id>@<minute>`: usage this minute
//!   ([`windowed`], 60 s), for `rpm`/`tpm`;
//! - `router:latency_us:<id>@<minute>` and `router:latency_n:<id>@<minute>`: sum of latency
//!   per output token (µs) and number of samples; the average reads this minute and the last;
//! - `router:fails:<id>@<minute>`: failures this minute, against `allowed_fails`;
//! - `router:cooldown:<id>`: a record whose TTL is the cooldown.

use futures_util::future::try_join_all;

use super::select::Candidate;
use super::strategy::{CooldownSettings, RoutingStrategy};
use crate::deployment::Deployment;
use crate::store::window::windowed;
use crate::store::{Store, StoreError};

/// Usage windows: one minute, as `rpm`/`tpm`.
pub const WINDOW_MS: u64 = 60_000;

/// An in-flight counter expires this long after it was created, so a count leaked by an
/// instance that died mid-request cannot bench a deployment for ever. (The TTL is set once, at
/// creation; an expiry during traffic loses at most the requests then in flight, and reads
/// never go below 0.)
pub const IN_FLIGHT_TTL_MS: u64 = 10 * 60_000;

/// Which shared figures a strategy steers by. Only those are read before a pick and written
/// after a call, so the default strategy costs one cooldown read per multi-deployment group
/// and no writes on success.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Figures {
    /// Requests in flight (`least-busy`).
    pub in_flight: bool,
    /// Requests and tokens this minute (strategies that honour `rpm`/`tpm`).
    pub usage: bool,
    /// Latency per output token (`latency-based-routing`).
    pub latency: bool,
}

impl Figures {
    pub const ALL: Figures = Figures {
        in_flight: true,
        usage: true,
        latency: true,
    };

    pub fn for_strategy(strategy: &RoutingStrategy) -> Figures {
        Figures {
            in_flight: matches!(strategy, RoutingStrategy::LeastBusy),
            usage: strategy.honours_limits(),
            latency: matches!(strategy, RoutingStrategy::LatencyBased { .. }),
        }
    }
}

fn key(kind: &str, id: &str) -> String {
    format!("router:{kind}:{id}")
}

fn minute(kind: &str, id: &str, now_ms: u64) -> (String, u64) {
    windowed(&key(kind, id), WINDOW_MS, now_ms)
}

/// A request was sent to the deployment: in flight +1, requests this minute +1 (each only when
/// `figures` asks for it). Pair with [`request_finished`] on every path.
pub async fn request_started(
    store: &dyn Store,
    id: &str,
    now_ms: u64,
    figures: Figures,
) -> Result<(), StoreError> {
    if figures.in_flight {
        store
            .counter_add(&key("inflight", id), 1, Some(IN_FLIGHT_TTL_MS))
            .await?;
    }
    if figures.usage {
        let (k, ttl) = minute("requests", id, now_ms);
        store.counter_add(&k, 1, Some(ttl)).await?;
    }
    Ok(())
}

/// The request is over (answered, failed or abandoned): in flight −1.
pub async fn request_finished(
    store: &dyn Store,
    id: &str,
    figures: Figures,
) -> Result<(), StoreError> {
    if figures.in_flight {
        store
            .counter_add(&key("inflight", id), -1, Some(IN_FLIGHT_TTL_MS))
            .await?;
    }
    Ok(())
}

/// Tokens used by one answer count against `tpm` this minute.
pub async fn record_tokens(
    store: &dyn Store,
    id: &str,
    now_ms: u64,
    total_tokens: u64,
) -> Result<(), StoreError> {
    let (k, ttl) = minute("tokens", id, now_ms);
    store
        .counter_add(&k, clamp_i64(total_tokens), Some(ttl))
        .await?;
    Ok(())
}

/// One latency sample: `latency_ms / output_tokens` (the whole latency when there are no
/// output tokens, as for time to first token).
pub async fn record_latency(
    store: &dyn Store,
    id: &str,
    now_ms: u64,
    latency_ms: u64,
    output_tokens: u64,
) -> Result<(), StoreError> {
    let per_token_us = latency_ms.saturating_mul(1000) / output_tokens.max(1);
    // Latency windows live one minute longer: the average also reads the previous minute.
    let (k, ttl) = minute("latency_us", id, now_ms);
    store
        .counter_add(&k, clamp_i64(per_token_us), Some(ttl + WINDOW_MS))
        .await?;
    let (k, ttl) = minute("latency_n", id, now_ms);
    store.counter_add(&k, 1, Some(ttl + WINDOW_MS)).await?;
    Ok(())
}

fn clamp_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A failed call (one LiteLLM would count: 429, 5xx, timeouts...). More than
/// `allowed_fails` within the minute starts a cooldown; `true` when it did.
pub async fn record_failure(
    store: &dyn Store,
    id: &str,
    now_ms: u64,
    settings: &CooldownSettings,
) -> Result<bool, StoreError> {
    let (k, ttl) = minute("fails", id, now_ms);
    let fails = store.counter_add(&k, 1, Some(ttl)).await?;
    if fails > clamp_i64(settings.allowed_fails) {
        start_cooldown(store, id, now_ms, settings.cooldown_ms).await?;
        return Ok(true);
    }
    Ok(false)
}

/// Benches the deployment for `cooldown_ms` at once (for errors LiteLLM cools down on without
/// counting, such as 401 or 404). A 0 cooldown does nothing.
pub async fn start_cooldown(
    store: &dyn Store,
    id: &str,
    now_ms: u64,
    cooldown_ms: u64,
) -> Result<(), StoreError> {
    if cooldown_ms == 0 {
        return Ok(());
    }
    store
        .put(
            &key("cooldown", id),
            now_ms.to_string().as_bytes(),
            Some(cooldown_ms),
        )
        .await
}

pub async fn is_cooling_down(store: &dyn Store, id: &str) -> Result<bool, StoreError> {
    Ok(store.get(&key("cooldown", id)).await?.is_some())
}

/// Which counter each slot of [`fill`]'s figures is read from.
#[derive(Clone, Copy)]
enum Slot {
    InFlight,
    Requests,
    Tokens,
    LatencySum,
    LatencyCount,
    PreviousLatencySum,
    PreviousLatencyCount,
}

const SLOTS: [Slot; 7] = [
    Slot::InFlight,
    Slot::Requests,
    Slot::Tokens,
    Slot::LatencySum,
    Slot::LatencyCount,
    Slot::PreviousLatencySum,
    Slot::PreviousLatencyCount,
];

impl Slot {
    fn wanted(self, figures: Figures) -> bool {
        match self {
            Slot::InFlight => figures.in_flight,
            Slot::Requests | Slot::Tokens => figures.usage,
            _ => figures.latency,
        }
    }

    fn key(self, id: &str, now_ms: u64) -> String {
        let previous = now_ms.saturating_sub(WINDOW_MS);
        match self {
            Slot::InFlight => key("inflight", id),
            Slot::Requests => minute("requests", id, now_ms).0,
            Slot::Tokens => minute("tokens", id, now_ms).0,
            Slot::LatencySum => minute("latency_us", id, now_ms).0,
            Slot::LatencyCount => minute("latency_n", id, now_ms).0,
            Slot::PreviousLatencySum => minute("latency_us", id, previous).0,
            Slot::PreviousLatencyCount => minute("latency_n", id, previous).0,
        }
    }
}

fn fill(c: &mut Candidate, v: &[i64], cooling_down: bool) {
    // Unread figures are 0 (see `load_candidates`), which no strategy that skips them reads.
    c.in_flight = v[0].max(0);
    c.minute_requests = v[1].max(0);
    c.minute_tokens = v[2].max(0);
    let (sum, n) = (v[3] + v[5], v[4] + v[6]);
    c.latency_per_output_token = (n > 0).then(|| sum.max(0) as f64 / n as f64 / 1000.0);
    c.cooling_down = cooling_down;
}

/// Builds the candidates for `deployments` (`(caller's index, deployment)`) with their current
/// figures: cooldowns always, the counters only as `figures` asks. All reads are issued
/// together.
pub async fn load_candidates(
    store: &dyn Store,
    deployments: &[(usize, &Deployment)],
    now_ms: u64,
    figures: Figures,
) -> Result<Vec<Candidate>, StoreError> {
    let mut candidates = load_figures(store, deployments, now_ms, figures).await?;
    let ids = deployments.iter().map(|(_, d)| d.id.as_str());
    let cooling = try_join_all(ids.map(|id| is_cooling_down(store, id))).await?;
    for (c, cooling) in candidates.iter_mut().zip(cooling) {
        c.cooling_down = cooling;
    }
    Ok(candidates)
}

/// [`load_candidates`] without the cooldowns (all `false`), for callers that check only the
/// deployments a strategy picks.
pub async fn load_figures(
    store: &dyn Store,
    deployments: &[(usize, &Deployment)],
    now_ms: u64,
    figures: Figures,
) -> Result<Vec<Candidate>, StoreError> {
    // Only the counters the strategy reads are fetched; the rest stay 0.
    let wanted: Vec<Slot> = SLOTS.into_iter().filter(|s| s.wanted(figures)).collect();
    let mut values = vec![0i64; deployments.len() * SLOTS.len()];
    if !wanted.is_empty() {
        let keys: Vec<String> = deployments
            .iter()
            .flat_map(|(_, d)| wanted.iter().map(move |slot| slot.key(&d.id, now_ms)))
            .collect();
        let read = try_join_all(keys.iter().map(|k| store.counter_get(k))).await?;
        for (n, value) in read.into_iter().enumerate() {
            let (deployment, slot) = (n / wanted.len(), wanted[n % wanted.len()]);
            values[deployment * SLOTS.len() + slot as usize] = value;
        }
    }
    Ok(deployments
        .iter()
        .enumerate()
        .map(|(n, (index, d))| {
            let mut c = Candidate::from_deployment(*index, d);
            fill(
                &mut c,
                &values[n * SLOTS.len()..(n + 1) * SLOTS.len()],
                false,
            );
            c
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use futures_executor::block_on;

    use super::*;
    use crate::deployment::deployment_id;
    use crate::ports::Clock;
    use crate::store::conformance::ManualClock;
    use crate::store::memory::MemoryStore;

    fn setup() -> (Arc<ManualClock>, MemoryStore) {
        let clock = Arc::new(ManualClock::default());
        let store = MemoryStore::new(clock.clone());
        (clock, store)
    }

    fn config() -> crate::Config {
        let yaml = r#"
model_list:
  - model_name: m
    litellm_params: {model: openai/gpt-4o, rpm: 2}
  - model_name: m
    litellm_params: {model: openai/gpt-4o, api_base: "https://eu.example"}
  - model_name: m
    litellm_params: {model: openai/gpt-4o-mini}
    model_info: {id: my-id}
"#;
        crate::Config::from_yaml(yaml, &|_| Some("k".into())).unwrap()
    }

    fn load(store: &MemoryStore, cfg: &crate::Config, now: u64) -> Vec<Candidate> {
        let ds: Vec<(usize, &Deployment)> = cfg
            .deployments
            .iter()
            .enumerate()
            .map(|(i, d)| (i, d.as_ref()))
            .collect();
        block_on(load_candidates(store, &ds, now, Figures::ALL)).unwrap()
    }

    fn record(store: &MemoryStore, id: &str, now: u64, tokens: u64, ms: u64, out: u64) {
        block_on(record_tokens(store, id, now, tokens)).unwrap();
        block_on(record_latency(store, id, now, ms, out)).unwrap();
    }

    #[test]
    fn only_the_figures_asked_for_are_written_and_read() {
        let (clock, store) = setup();
        let cfg = config();
        let id = deployment_id(&cfg.deployments[0]);
        let now = clock.now_ms();
        let shuffle = Figures::for_strategy(&RoutingStrategy::SimpleShuffle);
        assert_eq!(shuffle, Figures::default());
        block_on(request_started(&store, &id, now, shuffle)).unwrap();
        assert_eq!(load(&store, &cfg, now)[0].in_flight, 0);
        assert_eq!(load(&store, &cfg, now)[0].minute_requests, 0);
        let busy = Figures::for_strategy(&RoutingStrategy::LeastBusy);
        block_on(request_started(&store, &id, now, busy)).unwrap();
        let c = &load(&store, &cfg, now)[0];
        assert_eq!((c.in_flight, c.minute_requests), (1, 0));
        // Reading with fewer figures leaves the others at 0.
        let ds = [(0, cfg.deployments[0].as_ref())];
        let c = block_on(load_candidates(&store, &ds, now, shuffle)).unwrap();
        assert_eq!(c[0].in_flight, 0);
    }

    #[test]
    fn ids_are_stable_distinct_and_honour_model_info() {
        let a = config();
        let b = config();
        let ids: Vec<String> = a.deployments.iter().map(|d| deployment_id(d)).collect();
        assert_eq!(ids[0], deployment_id(&b.deployments[0]));
        assert_ne!(ids[0], ids[1], "api_base is part of the id");
        assert_eq!(ids[0].len(), 32);
        assert!(ids[0].chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(ids[2], "my-id");
    }

    #[test]
    fn in_flight_up_and_down() {
        let (clock, store) = setup();
        let cfg = config();
        let id = deployment_id(&cfg.deployments[1]);
        let now = clock.now_ms();
        block_on(request_started(&store, &id, now, Figures::ALL)).unwrap();
        block_on(request_started(&store, &id, now, Figures::ALL)).unwrap();
        assert_eq!(load(&store, &cfg, now)[1].in_flight, 2);
        assert_eq!(load(&store, &cfg, now)[0].in_flight, 0);
        block_on(request_finished(&store, &id, Figures::ALL)).unwrap();
        assert_eq!(load(&store, &cfg, now)[1].in_flight, 1);
        block_on(request_finished(&store, &id, Figures::ALL)).unwrap();
        block_on(request_finished(&store, &id, Figures::ALL)).unwrap();
        assert_eq!(load(&store, &cfg, now)[1].in_flight, 0, "never below 0");
    }

    #[test]
    fn per_minute_usage_rolls_over_at_the_window_boundary() {
        let (clock, store) = setup();
        let cfg = config();
        let id = deployment_id(&cfg.deployments[0]);
        // Start 1 s before a minute boundary.
        let start = clock.now_ms();
        let to_edge = WINDOW_MS - start % WINDOW_MS - 1_000;
        block_on(clock.sleep(to_edge));
        let now = clock.now_ms();
        block_on(request_started(&store, &id, now, Figures::ALL)).unwrap();
        block_on(request_started(&store, &id, now, Figures::ALL)).unwrap();
        record(&store, &id, now, 300, 1_000, 100);
        let c = &load(&store, &cfg, now)[0];
        assert_eq!((c.minute_requests, c.minute_tokens), (2, 300));
        assert_eq!(c.rpm, Some(2));
        assert!(!c.fits(0), "rpm 2 reached");
        assert_eq!(c.latency_per_output_token, Some(10.0));

        block_on(clock.sleep(1_000));
        let now = clock.now_ms();
        let c = &load(&store, &cfg, now)[0];
        assert_eq!((c.minute_requests, c.minute_tokens), (0, 0));
        assert!(c.fits(0));
        assert_eq!(
            c.latency_per_output_token,
            Some(10.0),
            "latency still reads the previous minute"
        );
        block_on(clock.sleep(2 * WINDOW_MS));
        let c = &load(&store, &cfg, clock.now_ms())[0];
        assert_eq!(c.latency_per_output_token, None);
    }

    #[test]
    fn latency_averages_samples() {
        let (clock, store) = setup();
        let cfg = config();
        let id = deployment_id(&cfg.deployments[2]);
        let now = clock.now_ms();
        record(&store, &id, now, 10, 200, 10);
        record(&store, &id, now, 10, 400, 10);
        record(&store, &id, now, 10, 90, 0);
        let c = &load(&store, &cfg, now)[2];
        assert_eq!(c.latency_per_output_token, Some((20.0 + 40.0 + 90.0) / 3.0));
    }

    #[test]
    fn cooldown_after_allowed_fails_then_expiry() {
        let (clock, store) = setup();
        let cfg = config();
        let id = deployment_id(&cfg.deployments[1]);
        let settings = CooldownSettings {
            allowed_fails: 2,
            cooldown_ms: 5_000,
        };
        let now = clock.now_ms();
        assert!(!block_on(record_failure(&store, &id, now, &settings)).unwrap());
        assert!(!block_on(record_failure(&store, &id, now, &settings)).unwrap());
        assert!(!load(&store, &cfg, now)[1].cooling_down);
        assert!(block_on(record_failure(&store, &id, now, &settings)).unwrap());
        let cands = load(&store, &cfg, now);
        assert!(cands[1].cooling_down);
        assert!(!cands[0].cooling_down);

        block_on(clock.sleep(4_999));
        assert!(block_on(is_cooling_down(&store, &id)).unwrap());
        block_on(clock.sleep(2));
        assert!(!block_on(is_cooling_down(&store, &id)).unwrap());
    }

    #[test]
    fn fails_from_an_earlier_minute_do_not_count() {
        let (clock, store) = setup();
        let cfg = config();
        let id = deployment_id(&cfg.deployments[0]);
        let settings = CooldownSettings {
            allowed_fails: 1,
            cooldown_ms: 1_000,
        };
        assert!(!block_on(record_failure(&store, &id, clock.now_ms(), &settings)).unwrap());
        block_on(clock.sleep(WINDOW_MS));
        assert!(!block_on(record_failure(&store, &id, clock.now_ms(), &settings)).unwrap());
        assert!(block_on(record_failure(&store, &id, clock.now_ms(), &settings)).unwrap());
    }

    #[test]
    fn zero_cooldown_benches_nothing() {
        let (clock, store) = setup();
        block_on(start_cooldown(&store, "x", clock.now_ms(), 0)).unwrap();
        assert!(!block_on(is_cooling_down(&store, "x")).unwrap());
    }
}
