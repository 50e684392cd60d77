//! Deployment selection: which deployment of a model group serves a request.
//!
//! Split so each part can be tested alone:
//! - [`strategy`]: the `router_settings` the operator chose (LiteLLM's names);
//! - [`state`]: the Store keys every instance reads and writes (in-flight, per-minute usage,
//!   latency, cooldowns), so all instances see the same figures;
//! - [`select`]: the pure choice over [`select::Candidate`]s already read from the Store;
//!
//! The caller's sequence per request: [`state::load_candidates`] → [`select::choose`] →
//! [`state::request_started`] … [`state::request_finished`] (and
//! [`state::record_failure`] when the upstream failed).

pub mod fallback;
pub mod retry;
pub mod select;
pub mod session;
pub mod state;
pub mod strategy;

pub use crate::rng::Rng;
pub use select::{choose, Candidate, Selection};
pub use strategy::{CooldownSettings, RoutingStrategy};

/// What routing within one group reads from the config (so the router needs no `Config`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RouteSettings {
    pub strategy: RoutingStrategy,
    pub cooldown: CooldownSettings,
    /// `enable_pre_call_checks`: skip deployments whose `max_input_tokens` the prompt exceeds.
    pub pre_call_checks: bool,
}
