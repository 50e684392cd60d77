//! What a request cost, in integer nano-dollars.
//!
//! Prices come from, highest priority first: a deployment's own `litellm_params`, its
//! `model_info`, `general_settings.cost_per_token`, then LiteLLM's price map shipped in the
//! binary (`prices.tsv`, cut by `gen_prices.py`; MIT, see `LICENSE-litellm-prices`). Which map
//! entry prices a deployment follows LiteLLM's lookup (`lookup.rs`); how the sources combine is
//! in `rates.rs`; the arithmetic in `bill.rs`. docs/cost.md has the whole story.
//!
//! Everything is resolved once per instance ([`Pricing::from_config`]): pricing a settled
//! request is one hash lookup and integer arithmetic. Prices are whole pico-dollars per unit
//! (converted exactly from their decimal text), sums are exact, and only the total is
//! rounded, half up, to nano-dollars.

mod bill;
mod lookup;
mod overrides;
pub mod price_map;
pub mod prices;
mod rates;

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use crate::config::Config;
use crate::deployment::Deployment;
use crate::ledger::Entry;
use overrides::CostPerToken;
use price_map::PriceMap;
use prices::Prices;
use rates::Rates;

/// An amount of money in nano-dollars (10⁻⁹ USD). A plain `i64` so spend counters, budgets
/// and the Store's integer counters share one unit without conversions; it holds ±9.2 billion
/// dollars.
pub type Nanos = i64;

/// Nano-dollars as dollars, for display and for LiteLLM's `spend` fields.
pub fn nanos_to_usd(nanos: Nanos) -> f64 {
    nanos as f64 / 1e9
}

/// Dollars (a budget in config or the admin API) as nano-dollars, rounded half up (away from
/// zero). Read through the shortest decimal that is `usd`, so `0.1` is exactly 100,000,000.
/// NaN is 0; out-of-range amounts saturate.
pub fn usd_to_nanos(usd: f64) -> Nanos {
    if usd.is_nan() {
        return 0;
    }
    let saturated = if usd > 0.0 { Nanos::MAX } else { Nanos::MIN };
    if usd.is_infinite() {
        return saturated;
    }
    match prices::parse_scaled(&format!("{usd:e}"), 9) {
        Some(n) => Nanos::try_from(n).unwrap_or(saturated),
        None => saturated,
    }
}

/// What one settled request cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cost {
    pub nanos: Nanos,
    /// Nothing prices the model (no map entry, no price in config): it was counted as 0.
    pub unpriced: bool,
    /// The price-map key the request was priced with (`gpt-4o`, `azure/gpt-4o-2024-08-06`);
    /// `None` when only config prices applied, or nothing did.
    pub model: Option<String>,
}

impl Cost {
    const NOTHING: Cost = Cost {
        nanos: 0,
        unpriced: false,
        model: None,
    };
}

/// Every deployment's prices, resolved once per instance.
pub struct Pricing {
    map: &'static PriceMap<'static>,
    /// By deployment id.
    deployments: HashMap<String, DeploymentPrices>,
    /// Kept for deployments the config did not list (built elsewhere, as in tests).
    cost_per_token: CostPerToken,
    /// Unpriced model names already logged: each is logged once per instance.
    warned: Mutex<HashSet<String>>,
}

/// One deployment's prices.
#[derive(Clone)]
struct DeploymentPrices {
    /// The config's price sources, highest priority first (the map comes after them).
    overrides: Vec<Prices>,
    /// The key of the map entry that prices one of the deployment's names.
    map_key: Option<&'static str>,
    /// `overrides` over that entry; `None` when nothing prices the deployment.
    rates: Option<Rates>,
    max_output_tokens: Option<u64>,
}

impl DeploymentPrices {
    fn resolve(map: &'static PriceMap<'static>, d: &Deployment, cpt: &CostPerToken) -> Self {
        let overrides = overrides::for_deployment(d, cpt);
        let entry = lookup::deployment_entry(map, d);
        let priced = entry.filter(|(_, e)| !e.prices.is_empty());
        let rates = with_map(&overrides, priced.map(|(_, e)| &e.prices));
        DeploymentPrices {
            overrides,
            map_key: priced.map(|(key, _)| key),
            rates,
            max_output_tokens: entry.and_then(|(_, e)| e.max_output_tokens),
        }
    }
}

/// The config's sources over a map entry's prices.
fn with_map(overrides: &[Prices], map: Option<&Prices>) -> Option<Rates> {
    let sources: Vec<&Prices> = overrides.iter().chain(map).collect();
    Rates::resolve(&sources)
}

impl Pricing {
    /// Resolves every deployment's prices (parsing the shipped map on first use).
    pub fn from_config(config: &Config) -> Pricing {
        let map = PriceMap::shipped();
        let cost_per_token = CostPerToken::from_settings(&config.raw.general_settings.extra);
        let deployments = config
            .deployments
            .iter()
            .map(|d| {
                let prices = DeploymentPrices::resolve(map, d, &cost_per_token);
                (d.id.clone(), prices)
            })
            .collect();
        Pricing {
            map,
            deployments,
            cost_per_token,
            warned: Mutex::new(HashSet::new()),
        }
    }

    fn prices_of(&self, d: &Deployment) -> Cow<'_, DeploymentPrices> {
        match self.deployments.get(&d.id) {
            Some(p) => Cow::Borrowed(p),
            None => Cow::Owned(DeploymentPrices::resolve(self.map, d, &self.cost_per_token)),
        }
    }

    /// What a settled request cost. A cache hit costs 0; so does a request no deployment
    /// took. When the deployment's own names are not in the map, the model the upstream
    /// reported answering with is tried. An unpriced model costs 0, says so, and is logged
    /// once per instance.
    pub fn cost(&self, entry: &Entry) -> Cost {
        let Some(d) = entry.deployment.as_deref() else {
            return Cost::NOTHING;
        };
        let prices = self.prices_of(d);
        let reported = || {
            let model = entry.response_model.as_deref()?;
            lookup::response_model_entry(self.map, d, model).filter(|(_, e)| !e.prices.is_empty())
        };
        let (rates, key) = match prices.map_key {
            Some(key) => (prices.rates, Some(key)),
            None => match reported() {
                Some((key, e)) => (with_map(&prices.overrides, Some(&e.prices)), Some(key)),
                None => (prices.rates, None),
            },
        };
        let Some(rates) = rates else {
            self.warn_unpriced(&d.params.model);
            return Cost {
                unpriced: true,
                ..Cost::NOTHING
            };
        };
        Cost {
            nanos: bill::to_nanos(bill::femtos(entry, &rates)),
            unpriced: false,
            model: key.map(str::to_string),
        }
    }

    /// What a request could cost at most on any deployment of `deployments`: prompt tokens at
    /// the dearest input rate and output tokens at the dearest output rate (so a cache write
    /// or reasoning never overruns it), at least one image on an image model, the whole
    /// timeout on a deployment billed by the second; the maximum over deployments, rounded
    /// up. Used to reserve budget before the call; an unpriced deployment adds nothing.
    pub fn estimate(
        &self,
        deployments: &[Arc<Deployment>],
        prompt_tokens: u64,
        output_tokens: u64,
    ) -> i64 {
        deployments
            .iter()
            .filter_map(|d| {
                let rates = self.prices_of(d).rates?;
                Some(bill::most(
                    &rates,
                    prompt_tokens,
                    output_tokens,
                    d.timeout_ms,
                ))
            })
            .max()
            .map_or(0, bill::to_nanos_ceil)
    }

    /// The most output tokens the deployment's model can produce: `model_info.max_output_tokens`
    /// when the operator set it, else the map's, if known. Caps a reservation.
    pub fn max_output_tokens(&self, deployment: &Deployment) -> Option<u64> {
        let configured = deployment
            .model_info
            .get("max_output_tokens")
            .and_then(crate::config::number)
            .filter(|n| *n >= 0.0 && n.fract() == 0.0 && *n <= u64::MAX as f64)
            .map(|n| n as u64);
        configured.or_else(|| self.prices_of(deployment).max_output_tokens)
    }

    /// Logs an unpriced model once per instance.
    fn warn_unpriced(&self, model: &str) {
        let mut warned = match self.warned.lock() {
            Ok(w) => w,
            // A panic elsewhere while logging: the set is still a set.
            Err(poisoned) => poisoned.into_inner(),
        };
        if warned.insert(model.to_string()) {
            tracing::warn!(
                model,
                "no price for this model (not in the price map, none in config): its requests count as costing 0"
            );
        }
    }

    /// Names logged as unpriced so far (tests).
    #[cfg(test)]
    fn warned(&self) -> Vec<String> {
        let mut names: Vec<String> = self.warned.lock().unwrap().iter().cloned().collect();
        names.sort();
        names
    }
}

#[cfg(test)]
mod tests;
