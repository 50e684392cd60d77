//! The config's governance settings: how long key records are cached, the calendar budgets
//! reset on, the whole proxy's budget, the default end-user budget, and what a budget check
//! does when the Store is down. Read once at load; errors name the field.

use serde_json::{Map, Value};

use super::error::ConfigError;
use super::raw::{number, RawConfig};
use crate::budget::{Calendar, Duration};
use crate::calendar::Offset;
use crate::identity::directory::DEFAULT_CACHE_TTL_MS;
use crate::store::FailurePolicy;

/// Output tokens reserved for a request that names no `max_tokens` (see `docs/governance.md`).
pub const DEFAULT_RESERVED_OUTPUT_TOKENS: u64 = 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct GovernanceSettings {
    /// `general_settings.user_api_key_cache_ttl` (seconds; LiteLLM's name), default 5 s.
    pub key_cache_ttl_ms: u64,
    /// `litellm_settings.timezone` (a fixed offset) and `general_settings.budget_reset_at`.
    pub calendar: Calendar,
    /// The whole proxy's budget in dollars and its period: `general_settings.max_budget` /
    /// `budget_duration` (the brief's), else `litellm_settings.max_budget` / `budget_duration`.
    pub proxy_budget: Option<(f64, Option<Duration>)>,
    /// `litellm_settings.max_end_user_budget`: every end user's budget unless its own record
    /// says otherwise.
    pub max_end_user_budget: Option<f64>,
    /// Output tokens reserved when a request names no `max_tokens`
    /// (`general_settings.budget_reserved_output_tokens`).
    pub reserved_output_tokens: u64,
    /// `general_settings.budget_store_failure`: `closed` (default: refuse with 503) or `open`.
    pub budget_store_failure: FailurePolicy,
}

impl Default for GovernanceSettings {
    fn default() -> Self {
        GovernanceSettings {
            key_cache_ttl_ms: DEFAULT_CACHE_TTL_MS,
            calendar: Calendar::default(),
            proxy_budget: None,
            max_end_user_budget: None,
            reserved_output_tokens: DEFAULT_RESERVED_OUTPUT_TOKENS,
            budget_store_failure: FailurePolicy::Closed,
        }
    }
}

impl GovernanceSettings {
    pub fn from_raw(raw: &RawConfig) -> Result<Self, ConfigError> {
        let general = &raw.general_settings.extra;
        let litellm = &raw.litellm_settings.extra;
        let mut s = GovernanceSettings::default();
        if let Some(secs) = non_negative(general, "general_settings", "user_api_key_cache_ttl")? {
            s.key_cache_ttl_ms = (secs * 1000.0) as u64;
        }
        if let Some(tz) = text(litellm, "litellm_settings", "timezone")?.or(text(
            general,
            "general_settings",
            "timezone",
        )?) {
            s.calendar.offset = Offset::parse(&tz).ok_or_else(|| {
                ConfigError::at(
                    "litellm_settings.timezone",
                    format!("{tz:?} is not a UTC offset (UTC, +05:30, -0800); named zones are not supported"),
                )
            })?;
        }
        if let Some(at) = text(general, "general_settings", "budget_reset_at")? {
            s.calendar.reset_minute = Calendar::parse_reset_at(&at).ok_or_else(|| {
                ConfigError::at("general_settings.budget_reset_at", "expected HH:MM")
            })?;
        }
        s.proxy_budget = match non_negative(general, "general_settings", "max_budget")? {
            Some(b) => Some((b, duration(general, "general_settings")?)),
            None => non_negative(litellm, "litellm_settings", "max_budget")?
                .map(|b| Ok::<_, ConfigError>((b, duration(litellm, "litellm_settings")?)))
                .transpose()?,
        };
        s.max_end_user_budget = non_negative(litellm, "litellm_settings", "max_end_user_budget")?
            .or(non_negative(
                general,
                "general_settings",
                "max_end_user_budget",
            )?);
        if let Some(n) = non_negative(general, "general_settings", "budget_reserved_output_tokens")?
        {
            s.reserved_output_tokens = n as u64;
        }
        if let Some(p) = text(general, "general_settings", "budget_store_failure")? {
            s.budget_store_failure = match p.as_str() {
                "closed" => FailurePolicy::Closed,
                "open" => FailurePolicy::Open,
                _ => {
                    return Err(ConfigError::at(
                        "general_settings.budget_store_failure",
                        "expected open or closed",
                    ))
                }
            };
        }
        Ok(s)
    }
}

fn non_negative(
    map: &Map<String, Value>,
    section: &str,
    field: &str,
) -> Result<Option<f64>, ConfigError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match number(v) {
            Some(n) if n >= 0.0 && n.is_finite() => Ok(Some(n)),
            _ => Err(ConfigError::at(
                &format!("{section}.{field}"),
                "expected a non-negative number",
            )),
        },
    }
}

fn text(
    map: &Map<String, Value>,
    section: &str,
    field: &str,
) -> Result<Option<String>, ConfigError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ConfigError::at(
            &format!("{section}.{field}"),
            "expected text",
        )),
    }
}

fn duration(map: &Map<String, Value>, section: &str) -> Result<Option<Duration>, ConfigError> {
    text(map, section, "budget_duration")?
        .map(|d| {
            Duration::parse(&d).ok_or_else(|| {
                ConfigError::at(
                    &format!("{section}.budget_duration"),
                    format!("{d:?} is not a duration (30s, 30m, 1h, 1d, 7d, 30d, 1mo)"),
                )
            })
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(yaml: &str) -> Result<GovernanceSettings, ConfigError> {
        let raw: RawConfig = serde_yaml::from_str(yaml).unwrap();
        GovernanceSettings::from_raw(&raw)
    }

    #[test]
    fn the_briefs_settings_are_read() {
        let s = load(
            "general_settings:\n  max_budget: 100.0\n  budget_duration: 30d\n  budget_reset_at: '06:30'\n  user_api_key_cache_ttl: 2\nlitellm_settings:\n  timezone: '+01:00'\n  max_end_user_budget: 0.5\n",
        )
        .unwrap();
        assert_eq!(s.proxy_budget, Some((100.0, Some(Duration::Months(1)))));
        assert_eq!(s.calendar.reset_minute, 390);
        assert_eq!(s.calendar.offset, Offset(60));
        assert_eq!(s.key_cache_ttl_ms, 2000);
        assert_eq!(s.max_end_user_budget, Some(0.5));
        assert_eq!(s.budget_store_failure, FailurePolicy::Closed);
    }

    #[test]
    fn litellm_settings_budget_is_the_fallback_and_errors_name_the_field() {
        let s = load("litellm_settings:\n  max_budget: 5\n").unwrap();
        assert_eq!(s.proxy_budget, Some((5.0, None)));
        let e =
            load("general_settings:\n  max_budget: 5\n  budget_duration: fortnight\n").unwrap_err();
        assert_eq!(e.path, "general_settings.budget_duration");
        let e = load("litellm_settings:\n  timezone: Europe/Paris\n").unwrap_err();
        assert_eq!(e.path, "litellm_settings.timezone");
        let e = load("general_settings:\n  max_budget: -1\n").unwrap_err();
        assert_eq!(e.path, "general_settings.max_budget");
    }
}
