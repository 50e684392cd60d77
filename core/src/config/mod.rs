//! Loading and validating a LiteLLM `config.yaml`.
//!
//! Parsing happens once per instance: the YAML is read, `os.environ/` strings are substituted,
//! the result is typed (errors name the field path), and every deployment's provider is resolved.
//! A bad config is an error at start-up, never at request time.

mod environ;
pub mod error;
pub mod governance;
pub mod raw;
pub mod seed;

pub use error::ConfigError;
pub(crate) use raw::number;
pub mod redact;

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};

pub use crate::deployment::Deployment;
use crate::deployment::ProviderId;
use crate::secret::Secret;
pub use raw::LitellmParams;

/// Default upstream timeout, as LiteLLM's (600 s).
const DEFAULT_TIMEOUT_SECS: f64 = 600.0;

/// A validated config, shared by every request of an instance.
#[derive(Debug)]
pub struct Config {
    pub deployments: Vec<Arc<Deployment>>,
    /// Model group name → indices into `deployments`, in config order.
    groups: HashMap<String, Vec<usize>>,
    /// Alias → the groups it stands for.
    aliases: HashMap<String, Vec<String>>,
    /// Aliases marked `hidden: true` are callable but not listed in `/v1/models`.
    hidden_aliases: Vec<String>,
    pub master_key: Option<Secret>,
    /// `router_settings.routing_strategy`, checked at load.
    pub routing_strategy: crate::router::RoutingStrategy,
    /// `router_settings.allowed_fails` / `cooldown_time`, checked at load.
    pub cooldown: crate::router::CooldownSettings,
    /// `num_retries` and `retry_policy`, checked at load.
    pub retry: crate::router::retry::RetryPolicy,
    /// `fallbacks`, `context_window_fallbacks`, ..., checked at load.
    pub fallbacks: crate::router::fallback::Fallbacks,
    /// `router_settings.enable_pre_call_checks`: skip deployments whose
    /// `model_info.max_input_tokens` the estimated prompt exceeds.
    pub pre_call_checks: bool,
    /// Keys, budgets and their calendar (`config/governance.rs`), checked at load.
    pub governance: governance::GovernanceSettings,
    /// Governance objects declared in `general_settings.seed` (`config/seed.rs`), checked at
    /// load; `crate::admin::seed::seed` writes them.
    pub seed: seed::SeedSpec,
    pub raw: raw::RawConfig,
}

/// The OpenAI request parameters an operator may preset per deployment in `litellm_params`.
const REQUEST_DEFAULT_KEYS: &[&str] = &[
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "n",
    "response_format",
    "user",
    "logit_bias",
    "top_k",
    "reasoning_effort",
];

impl Config {
    /// What routing within one group reads from the config.
    pub fn route_settings(&self) -> crate::router::RouteSettings {
        crate::router::RouteSettings {
            strategy: self.routing_strategy,
            cooldown: self.cooldown,
            pre_call_checks: self.pre_call_checks,
        }
    }

    /// Parses `yaml`, resolving `os.environ/NAME` through `lookup` (the process environment, or a
    /// Worker's vars and secrets). `environment_variables` in the file take precedence, as in
    /// LiteLLM, which copies them into the environment at start-up.
    pub fn from_yaml(
        yaml: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut doc: serde_yaml::Value = serde_yaml::from_str(yaml)
            .map_err(|e| ConfigError::at("", format!("invalid YAML: {e}")))?;
        if doc.is_null() {
            doc = serde_yaml::Value::Mapping(Default::default());
        }
        if !doc.is_mapping() {
            return Err(ConfigError::at("", "the config must be a YAML mapping"));
        }
        let file_env = file_environment(&doc);
        let combined = |name: &str| file_env.get(name).cloned().or_else(|| lookup(name));
        environ::substitute(&mut doc, &mut String::new(), &combined)?;

        let raw: raw::RawConfig = serde_path_to_error::deserialize(doc).map_err(|e| {
            let path = e.path().to_string();
            ConfigError::at(
                if path == "." { "" } else { &path },
                e.into_inner().to_string(),
            )
        })?;
        Self::from_raw(raw, &combined)
    }

    fn from_raw(
        mut raw: raw::RawConfig,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let global_drop = raw.litellm_settings.drop_params.unwrap_or(false);
        let global = GlobalTimeouts::from_settings(&raw)?;
        let mut deployments = Vec::with_capacity(raw.model_list.len());
        let mut groups: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, entry) in raw.model_list.iter().enumerate() {
            let path = format!("model_list[{i}]");
            if entry.model_name.trim().is_empty() {
                return Err(ConfigError::at(
                    &format!("{path}.model_name"),
                    "must not be empty",
                ));
            }
            let params = &entry.litellm_params;
            let (provider, upstream_model) = ProviderId::parse(&params.model)
                .map_err(|m| ConfigError::at(&format!("{path}.litellm_params.model"), m))?;
            let timeout = positive_seconds(
                params.timeout.or(global.timeout),
                &format!("{path}.litellm_params.timeout"),
            )?
            .unwrap_or(DEFAULT_TIMEOUT_SECS);
            let stream_timeout = positive_seconds(
                params.stream_timeout.or(global.stream_timeout),
                &format!("{path}.litellm_params.stream_timeout"),
            )?;
            let request_defaults = params
                .extra
                .iter()
                .filter(|(k, _)| REQUEST_DEFAULT_KEYS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let mut params = params.clone();
            if params.api_key.is_none() {
                // LiteLLM falls back to the provider's conventional variable (OPENAI_API_KEY...).
                params.api_key = provider.api_key_env().and_then(lookup).map(Secret::from);
            }
            // Settings a provider reads from the environment, readable only now.
            crate::providers::fill_from_env(provider, &mut params, lookup).map_err(
                |(field, m)| ConfigError::at(&format!("{path}.litellm_params.{field}"), m),
            )?;
            groups
                .entry(entry.model_name.clone())
                .or_default()
                .push(deployments.len());
            let mut deployment = Deployment {
                id: String::new(),
                model_name: entry.model_name.clone(),
                provider,
                upstream_model: upstream_model.to_string(),
                drop_params: params.drop_params.unwrap_or(global_drop),
                params,
                model_info: entry.model_info.clone(),
                request_defaults,
                timeout_ms: (timeout * 1000.0) as u64,
                stream_timeout_ms: stream_timeout.map(|s| (s * 1000.0) as u64),
            };
            deployment.id = crate::deployment::deployment_id(&deployment);
            deployments.push(Arc::new(deployment));
        }
        let (aliases, hidden_aliases) = parse_aliases(&raw.router_settings.model_group_alias)?;
        // LiteLLM reads LITELLM_MASTER_KEY when the file sets none.
        let master_key = raw
            .general_settings
            .master_key
            .clone()
            .or_else(|| lookup("LITELLM_MASTER_KEY").map(Secret::from))
            .filter(|k| !k.expose().is_empty());
        let routing_strategy = crate::router::RoutingStrategy::from_settings(&raw.router_settings)?;
        let cooldown = crate::router::CooldownSettings::from_settings(&raw.router_settings)?;
        let retry = crate::router::retry::RetryPolicy::from_settings(
            &raw.router_settings,
            &raw.litellm_settings.extra,
        )?;
        let fallbacks = crate::router::fallback::Fallbacks::from_settings(
            &raw.router_settings,
            &raw.litellm_settings.extra,
        )?;
        let pre_call_checks = match raw.router_settings.extra.get("enable_pre_call_checks") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => true,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => false,
            Some(_) => {
                return Err(ConfigError::at(
                    "router_settings.enable_pre_call_checks",
                    "must be true or false",
                ))
            }
        };
        let governance = governance::GovernanceSettings::from_raw(&raw)?;
        // Taken out of the raw settings, so the raw keys it may hold are not kept.
        let seed_section = raw.general_settings.extra.remove("seed");
        let mut config = Config {
            governance,
            seed: seed::SeedSpec::default(),
            pre_call_checks,
            routing_strategy,
            cooldown,
            retry,
            fallbacks,
            deployments,
            groups,
            aliases,
            hidden_aliases,
            master_key,
            raw,
        };
        // Read once the rest is, since an end user's `default_model` must be a model here.
        config.seed = seed::SeedSpec::parse(seed_section, &config)?;
        Ok(config)
    }

    /// The deployments serving `model`: a group name, or an alias of one or more groups.
    pub fn deployments_for(&self, model: &str) -> Vec<&Arc<Deployment>> {
        if let Some(idx) = self.groups.get(model) {
            return idx.iter().map(|&i| &self.deployments[i]).collect();
        }
        self.aliases
            .get(model)
            .map(|targets| {
                targets
                    .iter()
                    .filter_map(|g| self.groups.get(g))
                    .flatten()
                    .map(|&i| &self.deployments[i])
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The groups an alias stands for (`router_settings.model_group_alias`).
    pub fn alias_targets(&self, alias: &str) -> Option<&[String]> {
        self.aliases.get(alias).map(Vec::as_slice)
    }

    /// Names `/v1/models` lists: every group, then every visible alias that leads somewhere.
    pub fn public_model_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for d in &self.deployments {
            if !names.contains(&d.model_name) {
                names.push(d.model_name.clone());
            }
        }
        let mut aliases: Vec<&String> = self
            .aliases
            .keys()
            .filter(|a| !self.hidden_aliases.contains(a) && !self.deployments_for(a).is_empty())
            .collect();
        aliases.sort();
        for a in aliases {
            if !names.contains(a) {
                names.push(a.clone());
            }
        }
        names
    }
}

/// Timeouts set for every deployment: `router_settings.timeout` (else LiteLLM's
/// `litellm_settings.request_timeout`) and `router_settings.stream_timeout`, in seconds.
struct GlobalTimeouts {
    timeout: Option<f64>,
    stream_timeout: Option<f64>,
}

impl GlobalTimeouts {
    fn from_settings(raw: &raw::RawConfig) -> Result<Self, ConfigError> {
        let read = |map: &Map<String, Value>, key: &str, path: &str| match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match number(v) {
                Some(n) => positive_seconds(Some(n), path),
                None => Err(ConfigError::at(path, "must be a number of seconds")),
            },
        };
        let router = &raw.router_settings.extra;
        let timeout = match read(router, "timeout", "router_settings.timeout")? {
            Some(t) => Some(t),
            None => read(
                &raw.litellm_settings.extra,
                "request_timeout",
                "litellm_settings.request_timeout",
            )?,
        };
        Ok(GlobalTimeouts {
            timeout,
            stream_timeout: read(router, "stream_timeout", "router_settings.stream_timeout")?,
        })
    }
}

/// A timeout in seconds must be positive (and a number).
fn positive_seconds(value: Option<f64>, path: &str) -> Result<Option<f64>, ConfigError> {
    match value {
        Some(s) if s.is_nan() || s <= 0.0 => Err(ConfigError::at(
            path,
            "must be a positive number of seconds",
        )),
        other => Ok(other),
    }
}

/// `environment_variables:` from the file, as strings.
fn file_environment(doc: &serde_yaml::Value) -> HashMap<String, String> {
    let mut out = HashMap::new();
    if let Some(map) = doc
        .get("environment_variables")
        .and_then(|v| v.as_mapping())
    {
        for (k, v) in map {
            let value = match v {
                serde_yaml::Value::String(s) => s.clone(),
                serde_yaml::Value::Number(n) => n.to_string(),
                serde_yaml::Value::Bool(b) => b.to_string(),
                _ => continue,
            };
            if let Some(k) = k.as_str() {
                out.insert(k.to_string(), value);
            }
        }
    }
    out
}

/// Alias → the model groups it stands for.
type AliasMap = HashMap<String, Vec<String>>;

/// `model_group_alias` values may be a group name, `{model, hidden}`, or (as in the product
/// brief) a list of group names, whose deployments are pooled.
fn parse_aliases(map: &Map<String, Value>) -> Result<(AliasMap, Vec<String>), ConfigError> {
    let mut aliases = HashMap::new();
    let mut hidden = Vec::new();
    for (alias, target) in map {
        let path = format!("router_settings.model_group_alias.{alias}");
        let targets = match target {
            Value::String(s) => vec![s.clone()],
            Value::Array(items) => items
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    ConfigError::at(&path, "a list of aliases must hold model group names")
                })?,
            Value::Object(o) => {
                if o.get("hidden").and_then(Value::as_bool) == Some(true) {
                    hidden.push(alias.clone());
                }
                let model = o.get("model").and_then(Value::as_str).ok_or_else(|| {
                    ConfigError::at(&format!("{path}.model"), "missing model group name")
                })?;
                vec![model.to_string()]
            }
            _ => {
                return Err(ConfigError::at(
                    &path,
                    "expected a model group name, a list of them, or {model, hidden}",
                ))
            }
        };
        aliases.insert(alias.clone(), targets);
    }
    Ok((aliases, hidden))
}

#[cfg(test)]
mod tests;
