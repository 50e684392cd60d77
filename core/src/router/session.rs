//! One request's routing within one model group: pick a deployment, pick again after a
//! failure (preferring deployments not yet tried by this request), and record what the
//! strategy and the cooldowns need in the Store.
//!
//! Routing state is advisory: when the Store cannot be read or written the request still
//! goes out (fail open), picking on the deployments' static figures alone.

use std::sync::Arc;

use super::select::{choose, Candidate, Selection};
use super::state::{self, Figures};
use super::strategy::{CooldownSettings, RoutingStrategy};
use super::RouteSettings;
use crate::deployment::Deployment;
use crate::error::{ErrorKind, GatewayError};
use crate::rng::Rng;
use crate::store::Store;
use crate::store_log::StoreFailures;

/// How routing's Store failures are named in the log.
const ROUTING: &str = "routing figures";

/// How many benched picks are set aside one by one before the pick is taken as it is; a
/// group with more deployments cooling down than this still answers, from one of them, as
/// LiteLLM does when all are benched.
const LAZY_COOLDOWN_CHECKS: usize = 8;

/// What a failed call does to the deployment's standing (LiteLLM's rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureEffect {
    /// Benched at once: rate-limited (429), refused (401), unknown there (404), or timed out
    /// (408) — asking it again soon is pointless.
    CoolDownNow,
    /// Counts against `allowed_fails` this minute: server errors and broken connections.
    Count,
    /// The request's own fault (other 4xx): the deployment is fine.
    None,
}

impl FailureEffect {
    pub fn of(e: &GatewayError) -> FailureEffect {
        // Only what the deployment did counts against it: a policy refusal or a gateway
        // failure never reached it.
        if !e.origin.blames_deployment() {
            return FailureEffect::None;
        }
        match e.status().as_u16() {
            429 | 401 | 404 | 408 => FailureEffect::CoolDownNow,
            s if s >= 500 => FailureEffect::Count,
            _ if e.kind == ErrorKind::Timeout => FailureEffect::CoolDownNow,
            _ => FailureEffect::None,
        }
    }
}

/// Routing for one request on one model group.
pub struct RouteSession<'a> {
    store: &'a dyn Store,
    /// Store failures are tolerated here (routing state is advisory) but logged.
    failures: &'a StoreFailures,
    strategy: RoutingStrategy,
    cooldown: CooldownSettings,
    figures: Figures,
    group_name: &'a str,
    /// The group's deployments that passed the pre-call checks.
    deployments: Vec<&'a Arc<Deployment>>,
    /// Indices into `deployments` that failed during this request.
    failed: Vec<usize>,
    estimated_tokens: u64,
}

impl<'a> RouteSession<'a> {
    /// The deployments of `group` (`all`: the group's, or an alias's) that can take a prompt of about
    /// `prompt_tokens`. Errors: unknown model (404), or every deployment's
    /// `max_input_tokens` is below the prompt (`context_length_exceeded`, so
    /// `context_window_fallbacks` apply).
    pub fn new(
        all: Vec<&'a Arc<Deployment>>,
        settings: RouteSettings,
        store: &'a dyn Store,
        failures: &'a StoreFailures,
        group: &'a str,
        prompt_tokens: u64,
    ) -> Result<Self, GatewayError> {
        if all.is_empty() {
            return Err(unknown_model(group));
        }
        let deployments = if settings.pre_call_checks {
            within_context_window(all, prompt_tokens, group)?
        } else {
            all
        };
        Ok(RouteSession {
            store,
            failures,
            strategy: settings.strategy,
            cooldown: settings.cooldown,
            figures: Figures::for_strategy(&settings.strategy),
            group_name: group,
            deployments,
            failed: Vec::new(),
            estimated_tokens: prompt_tokens,
        })
    }

    /// The deployment for the next attempt.
    ///
    /// A group of one is answered without touching the Store. Otherwise deployments that
    /// already failed this request are set aside (unless none would be left), the figures the
    /// strategy needs are read, and the strategy chooses.
    pub async fn pick(&self, now_ms: u64, rng: &mut Rng) -> Result<Arc<Deployment>, GatewayError> {
        if self.deployments.len() == 1 {
            return Ok(Arc::clone(self.deployments[0]));
        }
        let mut pool: Vec<(usize, &Deployment)> = self
            .deployments
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.failed.contains(i))
            .map(|(i, d)| (i, d.as_ref()))
            .collect();
        if pool.is_empty() {
            pool = self
                .deployments
                .iter()
                .enumerate()
                .map(|(i, d)| (i, d.as_ref()))
                .collect();
        }
        let loaded = state::load_figures(self.store, &pool, now_ms, self.figures).await;
        let mut candidates = match self.failures.note(ROUTING, loaded) {
            Some(c) => c,
            None => pool
                .iter()
                .map(|(i, d)| Candidate::from_deployment(*i, d))
                .collect(),
        };
        // Cooldowns are checked on the pick only (one read in the usual case, instead of one
        // per deployment); a benched pick is set aside and the strategy chooses again.
        let mut selection = choose(&self.strategy, &candidates, self.estimated_tokens, rng);
        for _ in 0..LAZY_COOLDOWN_CHECKS {
            let Selection::Pick(i) = selection else {
                break;
            };
            let at = candidates.iter().position(|c| c.index == i);
            let cooling = state::is_cooling_down(self.store, &self.deployments[i].id).await;
            let cooling = self.failures.note(ROUTING, cooling).unwrap_or(false);
            match at {
                Some(at) if cooling && !candidates[at].cooling_down => {
                    candidates[at].cooling_down = true;
                    selection = choose(&self.strategy, &candidates, self.estimated_tokens, rng);
                }
                // Not benched, or every deployment is (cooldown never empties a group).
                _ => break,
            }
        }
        match selection {
            Selection::Pick(i) => Ok(Arc::clone(self.deployments[i])),
            Selection::NoneWithinLimits => {
                let mut e = GatewayError::new(
                    ErrorKind::RateLimit,
                    format!(
                        "No deployments available for model group {:?}: every deployment is at \
                         its rpm/tpm limit for this minute",
                        self.group_name
                    ),
                )
                .with_code("no_deployments_available");
                e.retry_after = Some("60".into());
                Err(e)
            }
            Selection::Empty => Err(unknown_model(self.group_name)),
        }
    }

    /// A request is about to go to `d`.
    pub async fn started(&self, d: &Deployment, now_ms: u64) {
        if self.deployments.len() > 1 {
            let r = state::request_started(self.store, &d.id, now_ms, self.figures).await;
            self.failures.note(ROUTING, r);
        }
    }

    /// The call to `d` failed with `e`: in flight −1, and the deployment cools down when the
    /// error says so (never in a group of one, which cooldown must not empty).
    pub async fn failed(&mut self, d: &Deployment, e: &GatewayError, now_ms: u64) {
        let Some(index) = self.index_of(d) else {
            return;
        };
        if !self.failed.contains(&index) {
            self.failed.push(index);
        }
        if self.deployments.len() == 1 {
            return;
        }
        let r = state::request_finished(self.store, &d.id, self.figures).await;
        self.failures.note(ROUTING, r);
        if self.figures.latency && e.kind == ErrorKind::Timeout {
            // A timeout is the slowest answer there is: it counts as a sample of the whole
            // timeout, so latency-based routing steers away from the deployment.
            let r = state::record_latency(self.store, &d.id, now_ms, d.timeout_ms, 0).await;
            self.failures.note(ROUTING, r);
        }
        let r = match FailureEffect::of(e) {
            FailureEffect::CoolDownNow => {
                state::start_cooldown(self.store, &d.id, now_ms, self.cooldown.cooldown_ms).await
            }
            FailureEffect::Count => {
                state::record_failure(self.store, &d.id, now_ms, &self.cooldown)
                    .await
                    .map(|_| ())
            }
            FailureEffect::None => Ok(()),
        };
        self.failures.note(ROUTING, r);
    }

    /// The shared figures an attempt on this group takes (and its ledger gives back at the
    /// end): `None` for a group of one or a strategy that records nothing.
    pub fn figures_taken(&self) -> Option<Figures> {
        let f = self.figures;
        (self.deployments.len() > 1 && (f.in_flight || f.usage || f.latency)).then_some(f)
    }

    fn index_of(&self, d: &Deployment) -> Option<usize> {
        self.deployments.iter().position(|x| x.id == d.id)
    }
}

/// Deployments whose `model_info.max_input_tokens` (when set) holds `prompt_tokens`.
fn within_context_window<'a>(
    all: Vec<&'a Arc<Deployment>>,
    prompt_tokens: u64,
    group: &str,
) -> Result<Vec<&'a Arc<Deployment>>, GatewayError> {
    let limit = |d: &Deployment| {
        d.model_info
            .get("max_input_tokens")
            .and_then(crate::config::raw::number)
            .map(|n| n as u64)
    };
    let largest = all.iter().filter_map(|d| limit(d)).max();
    let fitting: Vec<&Arc<Deployment>> = all
        .into_iter()
        .filter(|d| limit(d).is_none_or(|max| prompt_tokens <= max))
        .collect();
    if fitting.is_empty() {
        return Err(GatewayError::invalid_request(format!(
            "The prompt (about {prompt_tokens} tokens) is longer than every deployment of model \
             group {group:?} accepts (largest max_input_tokens: {})",
            largest.unwrap_or(0)
        ))
        .with_code("context_length_exceeded")
        // The router's judgement on this group, not the client's mistake: the group's
        // `context_window_fallbacks` may hold a larger model.
        .with_origin(crate::error::Origin::Gateway));
    }
    Ok(fitting)
}

/// LiteLLM's answer for a model no group or alias serves.
pub fn unknown_model(name: &str) -> GatewayError {
    GatewayError::invalid_request(format!(
        "Invalid model name passed in model={name}. Call `/v1/models` to view available models."
    ))
    .with_param("model")
    .with_code("model_not_found")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_upstream_failures_bench_a_deployment() {
        let upstream = GatewayError::upstream(429, "slow down").from_deployment("d");
        assert_eq!(FailureEffect::of(&upstream), FailureEffect::CoolDownNow);
        let refused = GatewayError::policy(ErrorKind::RateLimit, "key over its rpm");
        assert_eq!(FailureEffect::of(&refused), FailureEffect::None);
        let ours = GatewayError::new(ErrorKind::Api, "bug");
        assert_eq!(FailureEffect::of(&ours), FailureEffect::None);
        let timeout: GatewayError = crate::ports::TransportError::Timeout.into();
        assert_eq!(FailureEffect::of(&timeout), FailureEffect::CoolDownNow);
    }
}
