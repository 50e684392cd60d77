//! Prices an operator sets in config, which beat the shipped map: per deployment in
//! `litellm_params` or `model_info` (LiteLLM's field names: `input_cost_per_token`, ...), and
//! `general_settings.cost_per_token` for every deployment of a model.
//!
//! None of these names is a request parameter: `config::REQUEST_DEFAULT_KEYS` does not list
//! them, so they never reach a provider (a test in `cost/tests.rs` watches for it).

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::prices::{Pico, Prices, PRICE_FIELDS};
use crate::deployment::Deployment;

/// The prices set in one config map (`litellm_params` or `model_info`). A value that is not a
/// non-negative number is ignored, with a warning naming where it was (never its value's
/// neighbours: these maps may hold credentials).
pub fn from_map(map: &Map<String, Value>, place: &str) -> Prices {
    let mut prices = Prices::default();
    for (name, slot) in PRICE_FIELDS {
        match map.get(name) {
            None | Some(Value::Null) => {}
            Some(v) => match Pico::from_json(v) {
                Some(p) => *slot(&mut prices) = Some(p),
                None => {
                    tracing::warn!(place = %place, field = name, "price ignored: not a non-negative number")
                }
            },
        }
    }
    prices
}

/// `general_settings.cost_per_token`: model name (a `model_name`, or the model as written in
/// `litellm_params.model`, or without its provider prefix) → a price per token, input and
/// output alike. A mapping of LiteLLM's price names is read too, for prices that differ.
#[derive(Debug, Default)]
pub struct CostPerToken(HashMap<String, Prices>);

impl CostPerToken {
    pub fn from_settings(general_settings: &Map<String, Value>) -> CostPerToken {
        let Some(table) = general_settings.get("cost_per_token") else {
            return CostPerToken::default();
        };
        let Some(table) = table.as_object() else {
            tracing::warn!("general_settings.cost_per_token ignored: expected a mapping of model names to prices");
            return CostPerToken::default();
        };
        let mut out = HashMap::new();
        for (model, price) in table {
            let place = format!("general_settings.cost_per_token.{model}");
            let prices = match price {
                Value::Object(fields) => from_map(fields, &place),
                other => match Pico::from_json(other) {
                    Some(p) => Prices {
                        input_per_token: Some(p),
                        output_per_token: Some(p),
                        ..Prices::default()
                    },
                    None => {
                        tracing::warn!(place = %place, "price ignored: not a non-negative number");
                        continue;
                    }
                },
            };
            out.insert(model.clone(), prices);
        }
        CostPerToken(out)
    }

    /// The prices set for `deployment`: under its group name, else its model as written, else
    /// its upstream model.
    pub fn for_deployment(&self, deployment: &Deployment) -> Option<&Prices> {
        [
            deployment.model_name.as_str(),
            deployment.params.model.trim(),
            deployment.upstream_model.as_str(),
        ]
        .into_iter()
        .find_map(|name| self.0.get(name))
    }
}

/// The sources above the shipped map for `deployment`, highest priority first; sources that
/// set nothing are left out.
pub fn for_deployment(deployment: &Deployment, cost_per_token: &CostPerToken) -> Vec<Prices> {
    let place = |what: &str| format!("model_list[{}].{what}", deployment.model_name);
    [
        from_map(&deployment.params.extra, &place("litellm_params")),
        from_map(&deployment.model_info, &place("model_info")),
        cost_per_token
            .for_deployment(deployment)
            .copied()
            .unwrap_or_default(),
    ]
    .into_iter()
    .filter(|p| !p.is_empty())
    .collect()
}
