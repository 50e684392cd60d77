//! `router_settings`: which routing strategy, and when a failing deployment cools down.
//! Names and defaults are LiteLLM's.

use serde_json::{Map, Value};

use crate::config::error::ConfigError;
use crate::config::raw::number;
use crate::config::raw::RouterSettings;

/// How a deployment is picked among a model group's deployments.
///
/// Every strategy starts with the same two steps, done by [`crate::router::select::choose`]:
/// 1. deployments cooling down are set aside, unless that would leave none (cooldown never
///    empties a group);
/// 2. for the strategies that honour `rpm`/`tpm` (usage, latency, cost), deployments this
///    request would push past a limit are set aside; if none is left the answer is
///    "no deployments available" (a 429);
/// 3. only the lowest `order` tier that still has a deployment is kept (no `order` = last).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum RoutingStrategy {
    /// `simple-shuffle` (the default):
    /// 1. steps 1 and 3 above (limits are not checked);
    /// 2. random, weighted by `weight` when any deployment sets one, else by `rpm`, else by
    ///    `tpm` (a deployment without the figure weighs 0);
    /// 3. uniform when no weights are set or they all are 0.
    #[default]
    SimpleShuffle,
    /// `least-busy`:
    /// 1. steps 1 and 3 above (limits are not checked);
    /// 2. the fewest requests in flight across all instances;
    /// 3. ties broken at random.
    LeastBusy,
    /// `usage-based-routing` / `usage-based-routing-v2`:
    /// 1. steps 1–3 above: a deployment fits when `requests + 1 <= rpm` and
    ///    `tokens + estimated <= tpm` for the current minute;
    /// 2. the lowest token usage this minute;
    /// 3. ties broken at random.
    UsageBased,
    /// `latency-based-routing`:
    /// 1. steps 1–3 above;
    /// 2. deployments with no latency figure yet are tried first (random among them);
    /// 3. else random among those whose latency per output token is within
    ///    `lowest × (1 + buffer)` (`buffer` 0 = the fastest only).
    LatencyBased { buffer: f64 },
    /// `cost-based-routing`:
    /// 1. steps 1–3 above;
    /// 2. the lowest `input_cost_per_token + output_cost_per_token` (a deployment with no
    ///    price set is treated as dearest);
    /// 3. ties broken at random.
    CostBased,
}

impl RoutingStrategy {
    /// Reads `router_settings.routing_strategy` (and the latency buffer from
    /// `routing_strategy_args.lowest_latency_buffer`, or `lowest_latency_buffer`).
    pub fn from_settings(settings: &RouterSettings) -> Result<Self, ConfigError> {
        Self::parse(settings.routing_strategy.as_deref(), &settings.extra)
    }

    /// `name` as in `router_settings.routing_strategy`; `extra` is the rest of
    /// `router_settings`.
    pub fn parse(name: Option<&str>, extra: &Map<String, Value>) -> Result<Self, ConfigError> {
        let Some(name) = name else {
            return Ok(RoutingStrategy::SimpleShuffle);
        };
        Ok(match name.trim() {
            "" | "simple-shuffle" => RoutingStrategy::SimpleShuffle,
            "least-busy" => RoutingStrategy::LeastBusy,
            // The short forms appear in the product brief's examples.
            "usage-based-routing" | "usage-based-routing-v2" | "usage-based" => {
                RoutingStrategy::UsageBased
            }
            "latency-based-routing" | "latency-based" => RoutingStrategy::LatencyBased {
                buffer: latency_buffer(extra)?,
            },
            "cost-based-routing" | "cost-based" => RoutingStrategy::CostBased,
            other => {
                return Err(ConfigError::at(
                    "router_settings.routing_strategy",
                    format!(
                        "unknown routing strategy {other:?}; expected one of simple-shuffle, \
                         least-busy, usage-based-routing, usage-based-routing-v2, \
                         latency-based-routing, cost-based-routing"
                    ),
                ))
            }
        })
    }

    /// Whether this strategy sets aside deployments past their `rpm`/`tpm`.
    pub fn honours_limits(&self) -> bool {
        matches!(
            self,
            RoutingStrategy::UsageBased
                | RoutingStrategy::LatencyBased { .. }
                | RoutingStrategy::CostBased
        )
    }
}

fn latency_buffer(extra: &Map<String, Value>) -> Result<f64, ConfigError> {
    let nested = extra
        .get("routing_strategy_args")
        .and_then(|a| a.get("lowest_latency_buffer"))
        .map(|v| {
            (
                "router_settings.routing_strategy_args.lowest_latency_buffer",
                v,
            )
        });
    let flat = extra
        .get("lowest_latency_buffer")
        .map(|v| ("router_settings.lowest_latency_buffer", v));
    match nested.or(flat) {
        None => Ok(0.0),
        Some((path, v)) => match number(v) {
            Some(b) if b.is_finite() && b >= 0.0 => Ok(b),
            _ => Err(ConfigError::at(path, "must be a non-negative number")),
        },
    }
}

/// When a failing deployment is benched: more than `allowed_fails` failures within a minute
/// cool it down for `cooldown_ms`. LiteLLM's defaults: 3 fails, 5 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CooldownSettings {
    pub allowed_fails: u64,
    pub cooldown_ms: u64,
}

impl Default for CooldownSettings {
    fn default() -> Self {
        CooldownSettings {
            allowed_fails: 3,
            cooldown_ms: 5_000,
        }
    }
}

impl CooldownSettings {
    /// Reads `router_settings.allowed_fails` and `router_settings.cooldown_time` (seconds).
    pub fn from_settings(settings: &RouterSettings) -> Result<Self, ConfigError> {
        let mut out = CooldownSettings::default();
        if let Some(v) = settings.extra.get("allowed_fails") {
            out.allowed_fails = match number(v) {
                Some(n) if n >= 0.0 && n.fract() == 0.0 => n as u64,
                _ => {
                    return Err(ConfigError::at(
                        "router_settings.allowed_fails",
                        "must be a non-negative integer",
                    ))
                }
            };
        }
        if let Some(v) = settings.extra.get("cooldown_time") {
            out.cooldown_ms = match number(v) {
                Some(s) if s.is_finite() && s >= 0.0 => (s * 1000.0) as u64,
                _ => {
                    return Err(ConfigError::at(
                        "router_settings.cooldown_time",
                        "must be a non-negative number of seconds",
                    ))
                }
            };
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn extra(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn names_map_to_strategies() {
        let none = Map::new();
        let cases = [
            (None, RoutingStrategy::SimpleShuffle),
            (Some("simple-shuffle"), RoutingStrategy::SimpleShuffle),
            (Some("least-busy"), RoutingStrategy::LeastBusy),
            (Some("usage-based-routing"), RoutingStrategy::UsageBased),
            (Some("usage-based-routing-v2"), RoutingStrategy::UsageBased),
            (
                Some("latency-based-routing"),
                RoutingStrategy::LatencyBased { buffer: 0.0 },
            ),
            (Some("cost-based-routing"), RoutingStrategy::CostBased),
        ];
        for (name, want) in cases {
            assert_eq!(
                RoutingStrategy::parse(name, &none).unwrap(),
                want,
                "{name:?}"
            );
        }
    }

    #[test]
    fn unknown_name_is_an_error_naming_the_field() {
        let err = RoutingStrategy::parse(Some("fastest"), &Map::new()).unwrap_err();
        assert_eq!(err.path, "router_settings.routing_strategy");
        assert!(err.message.contains("fastest"), "{}", err.message);
    }

    #[test]
    fn latency_buffer_nested_flat_and_invalid() {
        let name = Some("latency-based-routing");
        let nested = extra(json!({"routing_strategy_args": {"lowest_latency_buffer": 0.5}}));
        assert_eq!(
            RoutingStrategy::parse(name, &nested).unwrap(),
            RoutingStrategy::LatencyBased { buffer: 0.5 }
        );
        let flat = extra(json!({"lowest_latency_buffer": "0.25"}));
        assert_eq!(
            RoutingStrategy::parse(name, &flat).unwrap(),
            RoutingStrategy::LatencyBased { buffer: 0.25 }
        );
        let bad = extra(json!({"routing_strategy_args": {"lowest_latency_buffer": -1}}));
        let err = RoutingStrategy::parse(name, &bad).unwrap_err();
        assert_eq!(
            err.path,
            "router_settings.routing_strategy_args.lowest_latency_buffer"
        );
    }

    #[test]
    fn from_config_yaml() {
        let yaml = "model_list: []\nrouter_settings:\n  routing_strategy: least-busy\n  \
                    allowed_fails: 1\n  cooldown_time: 30\n";
        let cfg = crate::Config::from_yaml(yaml, &|_| None).unwrap();
        let rs = &cfg.raw.router_settings;
        assert_eq!(
            RoutingStrategy::from_settings(rs).unwrap(),
            RoutingStrategy::LeastBusy
        );
        assert_eq!(
            CooldownSettings::from_settings(rs).unwrap(),
            CooldownSettings {
                allowed_fails: 1,
                cooldown_ms: 30_000
            }
        );
        let bad = RouterSettings {
            extra: extra(json!({"cooldown_time": "soon"})),
            ..Default::default()
        };
        assert_eq!(
            CooldownSettings::from_settings(&bad).unwrap_err().path,
            "router_settings.cooldown_time"
        );
    }
}
