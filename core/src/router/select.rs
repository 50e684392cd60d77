//! The choice itself: pure, over figures the caller has already read from the Store
//! ([`crate::router::state::load_candidates`]), so it is deterministic for a given seed.

use crate::config::raw::number;

use super::strategy::RoutingStrategy;
use crate::deployment::Deployment;
use crate::rng::Rng;

/// One deployment of the group, with the figures the strategies need.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Candidate {
    /// The caller's index for this deployment (returned in [`Selection::Pick`]).
    pub index: usize,
    pub weight: Option<f64>,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub order: Option<u64>,
    /// Requests in flight across all instances.
    pub in_flight: i64,
    /// Tokens used this minute.
    pub minute_tokens: i64,
    /// Requests started this minute.
    pub minute_requests: i64,
    /// Recent average latency per output token (ms); `None` before any figure.
    pub latency_per_output_token: Option<f64>,
    pub input_cost_per_token: Option<f64>,
    pub output_cost_per_token: Option<f64>,
    pub cooling_down: bool,
}

impl Candidate {
    /// The static figures of `deployment` (weights, limits, order, prices); usage left at 0.
    /// Prices come from `model_info`, else from `litellm_params` (LiteLLM accepts both).
    pub fn from_deployment(index: usize, deployment: &Deployment) -> Self {
        let price = |name: &str| {
            deployment
                .model_info
                .get(name)
                .or_else(|| deployment.params.extra.get(name))
                .and_then(number)
        };
        Candidate {
            index,
            weight: deployment.params.weight,
            rpm: deployment.params.rpm,
            tpm: deployment.params.tpm,
            order: deployment.params.order,
            input_cost_per_token: price("input_cost_per_token"),
            output_cost_per_token: price("output_cost_per_token"),
            ..Default::default()
        }
    }

    /// Whether one more request of `estimated_tokens` stays within `rpm` and `tpm` this minute.
    pub fn fits(&self, estimated_tokens: u64) -> bool {
        let rpm_ok = self
            .rpm
            .is_none_or(|rpm| (self.minute_requests.max(0) as u64) < rpm);
        let tpm_ok = self.tpm.is_none_or(|tpm| {
            (self.minute_tokens.max(0) as u64).saturating_add(estimated_tokens) <= tpm
        });
        rpm_ok && tpm_ok
    }

    fn price(&self) -> f64 {
        match (self.input_cost_per_token, self.output_cost_per_token) {
            (None, None) => f64::INFINITY,
            (i, o) => i.unwrap_or(0.0) + o.unwrap_or(0.0),
        }
    }
}

/// What [`choose`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// The chosen candidate's [`Candidate::index`].
    Pick(usize),
    /// Every deployment is past its `rpm`/`tpm` this minute: answer 429
    /// "No deployments available".
    NoneWithinLimits,
    /// The group has no deployments.
    Empty,
}

/// Picks a deployment for one request of about `estimated_tokens` (prompt plus expected
/// output; used against `tpm`). The steps are listed on [`RoutingStrategy`].
pub fn choose(
    strategy: &RoutingStrategy,
    candidates: &[Candidate],
    estimated_tokens: u64,
    rng: &mut Rng,
) -> Selection {
    if candidates.is_empty() {
        return Selection::Empty;
    }
    // 1. Cooldown never empties the group.
    let mut pool: Vec<&Candidate> = candidates.iter().filter(|c| !c.cooling_down).collect();
    if pool.is_empty() {
        pool = candidates.iter().collect();
    }
    // 2. Limits, for the strategies that honour them.
    if strategy.honours_limits() {
        pool.retain(|c| c.fits(estimated_tokens));
        if pool.is_empty() {
            return Selection::NoneWithinLimits;
        }
    }
    // 3. The lowest order tier left.
    let tier = pool.iter().map(|c| c.order.unwrap_or(u64::MAX)).min();
    pool.retain(|c| Some(c.order.unwrap_or(u64::MAX)) == tier);

    let picked = match strategy {
        RoutingStrategy::SimpleShuffle => weighted(&pool, rng),
        RoutingStrategy::LeastBusy => lowest_by(&pool, rng, |c| c.in_flight as f64),
        RoutingStrategy::UsageBased => lowest_by(&pool, rng, |c| c.minute_tokens as f64),
        RoutingStrategy::CostBased => lowest_by(&pool, rng, Candidate::price),
        RoutingStrategy::LatencyBased { buffer } => by_latency(&pool, *buffer, rng),
    };
    Selection::Pick(picked.index)
}

/// Weighted by `weight`, else `rpm`, else `tpm`; uniform when none is set or all are 0.
fn weighted<'a>(pool: &[&'a Candidate], rng: &mut Rng) -> &'a Candidate {
    type Figure = fn(&Candidate) -> Option<f64>;
    let figures: [Figure; 3] = [
        |c| c.weight,
        |c| c.rpm.map(|v| v as f64),
        |c| c.tpm.map(|v| v as f64),
    ];
    for figure in figures {
        if !pool.iter().any(|c| figure(c).is_some()) {
            continue;
        }
        let weights: Vec<f64> = pool
            .iter()
            .map(|c| {
                figure(c)
                    .filter(|w| w.is_finite() && *w > 0.0)
                    .unwrap_or(0.0)
            })
            .collect();
        let total: f64 = weights.iter().sum();
        if total <= 0.0 {
            break;
        }
        let mut target = rng.next_f64() * total;
        for (c, w) in pool.iter().zip(&weights) {
            if target < *w {
                return c;
            }
            target -= w;
        }
        // Rounding left a sliver past the last weight: the last weighted candidate.
        let last = weights.iter().rposition(|w| *w > 0.0).unwrap_or(0);
        return pool[last];
    }
    pool[rng.below(pool.len())]
}

/// The candidate with the lowest `key`; ties broken at random.
fn lowest_by<'a>(
    pool: &[&'a Candidate],
    rng: &mut Rng,
    key: impl Fn(&Candidate) -> f64,
) -> &'a Candidate {
    let min = pool.iter().map(|c| key(c)).fold(f64::INFINITY, f64::min);
    let ties: Vec<&Candidate> = pool
        .iter()
        .copied()
        .filter(|c| key(c) == min || (min.is_infinite() && key(c).is_infinite()))
        .collect();
    ties[rng.below(ties.len())]
}

/// No figure yet first (random among them); else random within `lowest × (1 + buffer)`.
fn by_latency<'a>(pool: &[&'a Candidate], buffer: f64, rng: &mut Rng) -> &'a Candidate {
    let untried: Vec<&Candidate> = pool
        .iter()
        .copied()
        .filter(|c| c.latency_per_output_token.is_none())
        .collect();
    if !untried.is_empty() {
        return untried[rng.below(untried.len())];
    }
    let latency = |c: &Candidate| c.latency_per_output_token.unwrap_or(f64::INFINITY);
    let lowest = pool
        .iter()
        .map(|c| latency(c))
        .fold(f64::INFINITY, f64::min);
    let ceiling = lowest + lowest * buffer.max(0.0);
    let near: Vec<&Candidate> = pool
        .iter()
        .copied()
        .filter(|c| latency(c) <= ceiling)
        .collect();
    near[rng.below(near.len())]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(index: usize) -> Candidate {
        Candidate {
            index,
            ..Default::default()
        }
    }

    fn counts(strategy: RoutingStrategy, cands: &[Candidate], n: usize, seed: u64) -> Vec<usize> {
        let mut rng = Rng::seeded(seed);
        let mut out = vec![0; cands.iter().map(|c| c.index).max().unwrap_or(0) + 1];
        for _ in 0..n {
            match choose(&strategy, cands, 0, &mut rng) {
                Selection::Pick(i) => out[i] += 1,
                other => panic!("{other:?}"),
            }
        }
        out
    }

    #[test]
    fn empty_group() {
        let mut rng = Rng::seeded(1);
        assert_eq!(
            choose(&RoutingStrategy::SimpleShuffle, &[], 0, &mut rng),
            Selection::Empty
        );
    }

    #[test]
    fn shuffle_weighted_nine_to_one() {
        let a = Candidate {
            weight: Some(9.0),
            ..c(0)
        };
        let b = Candidate {
            weight: Some(1.0),
            ..c(1)
        };
        let n = counts(RoutingStrategy::SimpleShuffle, &[a, b], 10_000, 42);
        let share = n[0] as f64 / 10_000.0;
        assert!((share - 0.9).abs() <= 0.02, "{n:?}");
    }

    #[test]
    fn shuffle_falls_back_to_rpm_then_tpm_then_uniform() {
        let by_rpm = [
            Candidate {
                rpm: Some(100),
                tpm: Some(1),
                ..c(0)
            },
            Candidate {
                rpm: Some(0),
                tpm: Some(1_000),
                ..c(1)
            },
        ];
        assert_eq!(
            counts(RoutingStrategy::SimpleShuffle, &by_rpm, 500, 3),
            [500, 0]
        );
        let by_tpm = [
            Candidate {
                tpm: Some(1),
                ..c(0)
            },
            Candidate {
                tpm: Some(3),
                ..c(1)
            },
        ];
        let n = counts(RoutingStrategy::SimpleShuffle, &by_tpm, 4_000, 4);
        assert!((n[1] as f64 / 4_000.0 - 0.75).abs() < 0.03, "{n:?}");
        let n = counts(
            RoutingStrategy::SimpleShuffle,
            &[c(0), c(1), c(2)],
            3_000,
            5,
        );
        assert!(n.iter().all(|&k| k > 900), "{n:?}");
    }

    #[test]
    fn order_keeps_the_lowest_tier() {
        let cands = [
            Candidate {
                order: Some(2),
                weight: Some(100.0),
                ..c(0)
            },
            Candidate {
                order: Some(1),
                ..c(1)
            },
            Candidate {
                order: Some(1),
                ..c(2)
            },
            c(3),
        ];
        let n = counts(RoutingStrategy::SimpleShuffle, &cands, 1_000, 6);
        assert_eq!(n[0] + n[3], 0, "{n:?}");
        assert!(n[1] > 300 && n[2] > 300, "{n:?}");
        // Tier 1 cooling down: tier 2 serves.
        let mut cooled = cands.clone();
        cooled[1].cooling_down = true;
        cooled[2].cooling_down = true;
        assert_eq!(
            counts(RoutingStrategy::SimpleShuffle, &cooled, 100, 7),
            [100, 0, 0, 0]
        );
    }

    #[test]
    fn cooldown_skips_but_never_empties() {
        let cands = [
            Candidate {
                cooling_down: true,
                ..c(0)
            },
            c(1),
        ];
        assert_eq!(counts(RoutingStrategy::LeastBusy, &cands, 100, 8), [0, 100]);
        let all_cool = [
            Candidate {
                cooling_down: true,
                in_flight: 5,
                ..c(0)
            },
            Candidate {
                cooling_down: true,
                in_flight: 1,
                ..c(1)
            },
        ];
        assert_eq!(
            counts(RoutingStrategy::LeastBusy, &all_cool, 100, 9),
            [0, 100]
        );
    }

    #[test]
    fn least_busy_fewest_in_flight_ties_random() {
        let cands = [
            Candidate {
                in_flight: 3,
                ..c(0)
            },
            Candidate {
                in_flight: 1,
                ..c(1)
            },
            Candidate {
                in_flight: 1,
                ..c(2)
            },
        ];
        let n = counts(RoutingStrategy::LeastBusy, &cands, 1_000, 10);
        assert_eq!(n[0], 0);
        assert!(n[1] > 400 && n[2] > 400, "{n:?}");
    }

    #[test]
    fn usage_based_lowest_tokens_within_limits() {
        let cands = [
            Candidate {
                tpm: Some(1_000),
                minute_tokens: 100,
                ..c(0)
            },
            Candidate {
                tpm: Some(1_000),
                minute_tokens: 950,
                ..c(1)
            },
            Candidate {
                rpm: Some(5),
                minute_requests: 5,
                ..c(2)
            },
        ];
        let mut rng = Rng::seeded(11);
        let s = RoutingStrategy::UsageBased;
        assert_eq!(choose(&s, &cands, 10, &mut rng), Selection::Pick(0));
        // 0 would pass its tpm with 950 more tokens; 1 and 2 are past theirs.
        assert_eq!(
            choose(&s, &cands, 950, &mut rng),
            Selection::NoneWithinLimits
        );
        // Exactly at the limit still fits.
        assert_eq!(choose(&s, &cands, 900, &mut rng), Selection::Pick(0));
        let ties = [c(0), c(1)];
        let n = counts(s, &ties, 1_000, 12);
        assert!(n[0] > 400 && n[1] > 400, "{n:?}");
    }

    #[test]
    fn latency_untried_first_then_within_buffer() {
        let lat = |i, l| Candidate {
            latency_per_output_token: Some(l),
            ..c(i)
        };
        let cands = [lat(0, 10.0), c(1), lat(2, 50.0)];
        let s0 = RoutingStrategy::LatencyBased { buffer: 0.0 };
        assert_eq!(counts(s0, &cands, 50, 13), [0, 50, 0]);

        let cands = [lat(0, 10.0), lat(1, 14.0), lat(2, 16.0)];
        assert_eq!(counts(s0, &cands, 50, 14), [50, 0, 0]);
        let s = RoutingStrategy::LatencyBased { buffer: 0.5 };
        let n = counts(s, &cands, 1_000, 15);
        assert_eq!(n[2], 0, "16 > 10 × 1.5");
        assert!(n[0] > 400 && n[1] > 400, "{n:?}");
        // Past its limits, the fastest is set aside.
        let mut limited = cands.clone();
        limited[0].rpm = Some(1);
        limited[0].minute_requests = 1;
        assert_eq!(counts(s0, &limited, 20, 16), [0, 20, 0]);
    }

    #[test]
    fn cost_cheapest_within_limits() {
        let priced = |i, inp, out| Candidate {
            input_cost_per_token: Some(inp),
            output_cost_per_token: Some(out),
            ..c(i)
        };
        let cands = [priced(0, 1e-6, 2e-6), priced(1, 5e-7, 1e-6), c(2)];
        let s = RoutingStrategy::CostBased;
        assert_eq!(counts(s, &cands, 50, 17), [0, 50, 0]);
        let mut limited = cands.clone();
        limited[1].tpm = Some(10);
        limited[1].minute_tokens = 11;
        assert_eq!(counts(s, &limited, 50, 18), [50, 0, 0]);
        // Unpriced deployments only when nothing priced is left.
        assert_eq!(counts(s, &[c(0), c(1)], 1, 19).iter().sum::<usize>(), 1);
    }

    #[test]
    fn candidate_from_deployment_reads_params_and_prices() {
        let yaml = r#"
model_list:
  - model_name: m
    litellm_params: {model: openai/gpt-4o, weight: 2, rpm: 10, tpm: 1000, order: 1,
                     input_cost_per_token: 0.000001}
    model_info: {output_cost_per_token: 0.000002}
"#;
        let cfg = crate::Config::from_yaml(yaml, &|_| Some("k".into())).unwrap();
        let cand = Candidate::from_deployment(7, &cfg.deployments[0]);
        assert_eq!(cand.index, 7);
        assert_eq!(cand.weight, Some(2.0));
        assert_eq!(
            (cand.rpm, cand.tpm, cand.order),
            (Some(10), Some(1000), Some(1))
        );
        assert_eq!(cand.input_cost_per_token, Some(1e-6));
        assert_eq!(cand.output_cost_per_token, Some(2e-6));
    }
}
