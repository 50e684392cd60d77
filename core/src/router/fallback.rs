//! Fallbacks: which other model groups to try when a group fails after its retries
//! (LiteLLM's `fallbacks`, `context_window_fallbacks`, `content_policy_fallbacks`,
//! `default_fallbacks`, `"*"`, `max_fallbacks`, and `fallbacks` sent in the request).

use serde_json::{Map, Value};

use crate::config::error::ConfigError;
use crate::config::raw::RouterSettings;
use crate::error::{ErrorKind, GatewayError};

/// LiteLLM's default cap on fallback groups tried for one request.
const DEFAULT_MAX_FALLBACKS: usize = 5;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fallbacks {
    general: Vec<(String, Vec<String>)>,
    context_window: Vec<(String, Vec<String>)>,
    content_policy: Vec<(String, Vec<String>)>,
    default: Vec<String>,
    max_fallbacks: usize,
}

impl Fallbacks {
    /// Reads the lists from `router_settings` (or, as LiteLLM also allows, `litellm_settings`).
    pub fn from_settings(
        router: &RouterSettings,
        litellm: &Map<String, Value>,
    ) -> Result<Self, ConfigError> {
        let section = |key: &str| -> (Option<&Value>, String) {
            match router.extra.get(key) {
                Some(v) => (Some(v), format!("router_settings.{key}")),
                None => (litellm.get(key), format!("litellm_settings.{key}")),
            }
        };
        let table = |key: &str| -> Result<Vec<(String, Vec<String>)>, ConfigError> {
            let (value, path) = section(key);
            parse_table(value, &path)
        };
        let (default, default_path) = section("default_fallbacks");
        let max_fallbacks = match section("max_fallbacks") {
            (None, _) => DEFAULT_MAX_FALLBACKS,
            (Some(v), path) => v
                .as_u64()
                .map(|n| n as usize)
                .ok_or_else(|| ConfigError::at(&path, "must be a non-negative integer"))?,
        };
        Ok(Fallbacks {
            general: table("fallbacks")?,
            context_window: table("context_window_fallbacks")?,
            content_policy: table("content_policy_fallbacks")?,
            default: match default {
                None | Some(Value::Null) => Vec::new(),
                Some(v) => names(v).ok_or_else(|| {
                    ConfigError::at(&default_path, "must be a list of model group names")
                })?,
            },
            max_fallbacks,
        })
    }

    /// No fallback of any kind is configured (requests may still bring their own).
    pub fn is_empty(&self) -> bool {
        self.general.is_empty()
            && self.context_window.is_empty()
            && self.content_policy.is_empty()
            && self.default.is_empty()
    }

    /// The groups to try, in order, after `group` failed with `err`. `from_request` is the
    /// request's own `fallbacks` list, which replaces the configured general fallbacks.
    pub fn for_failure(
        &self,
        group: &str,
        err: &GatewayError,
        from_request: Option<&Value>,
    ) -> Vec<String> {
        let general = || match from_request.and_then(names) {
            Some(list) => list,
            None => lookup(&self.general, group).unwrap_or_else(|| self.default.clone()),
        };
        // Only a failure of the group itself is worth another group: a policy refusal (the
        // key's limit, budget or model access) or the client's own mistake is not.
        if !err.origin.may_fall_back() {
            return Vec::new();
        }
        let mut out = match err.code.as_deref() {
            Some("context_length_exceeded") => {
                lookup(&self.context_window, group).unwrap_or_else(general)
            }
            Some("content_policy_violation") => {
                lookup(&self.content_policy, group).unwrap_or_else(general)
            }
            // The client's own mistake: another model would refuse it too.
            _ if matches!(
                err.kind,
                ErrorKind::InvalidRequest | ErrorKind::Unprocessable
            ) =>
            {
                Vec::new()
            }
            _ => general(),
        };
        out.retain(|g| g != group);
        out.truncate(self.max_fallbacks);
        out
    }
}

/// A group's list, or the `"*"` entry that applies to every group.
fn lookup(table: &[(String, Vec<String>)], group: &str) -> Option<Vec<String>> {
    let find = |name: &str| {
        table
            .iter()
            .find(|(g, _)| g == name)
            .map(|(_, l)| l.clone())
    };
    find(group).or_else(|| find("*"))
}

fn names(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string))
            .collect(),
        Value::String(s) => Some(vec![s.clone()]),
        _ => None,
    }
}

/// `[{group: [fallback, ...]}, ...]` (LiteLLM's shape) or a single mapping.
fn parse_table(
    value: Option<&Value>,
    path: &str,
) -> Result<Vec<(String, Vec<String>)>, ConfigError> {
    let bad = || ConfigError::at(path, "expected a list of {model_group: [fallback groups]}");
    let mut out = Vec::new();
    let mut add = |map: &Map<String, Value>| -> Result<(), ConfigError> {
        for (group, list) in map {
            out.push((group.clone(), names(list).ok_or_else(bad)?));
        }
        Ok(())
    };
    match value {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for item in items {
                add(item.as_object().ok_or_else(bad)?)?;
            }
        }
        Some(Value::Object(map)) => add(map)?,
        Some(_) => return Err(bad()),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fallbacks(yaml: &str) -> Result<Fallbacks, ConfigError> {
        let router: RouterSettings = serde_yaml::from_str(yaml).unwrap();
        Fallbacks::from_settings(&router, &Map::new())
    }

    fn err(status: u16, code: Option<&str>) -> GatewayError {
        let mut e = GatewayError::upstream(status, "x");
        e.code = code.map(str::to_string);
        e
    }

    #[test]
    fn the_briefs_fallbacks_apply_by_group() {
        let f = fallbacks(
            "fallbacks:\n  - gpt-4: [gpt-3.5-turbo]\n  - claude-3-opus: [claude-3-sonnet, gpt-4]\n",
        )
        .unwrap();
        assert_eq!(
            f.for_failure("gpt-4", &err(500, None), None),
            ["gpt-3.5-turbo"]
        );
        assert_eq!(
            f.for_failure("claude-3-opus", &err(429, None), None),
            ["claude-3-sonnet", "gpt-4"]
        );
        assert!(f.for_failure("other", &err(500, None), None).is_empty());
    }

    #[test]
    fn special_lists_star_default_and_request() {
        let f = fallbacks(
            "fallbacks:\n  - \"*\": [backup]\ncontext_window_fallbacks:\n  - small: [large]\ndefault_fallbacks: [last-resort]\nmax_fallbacks: 1\n",
        )
        .unwrap();
        assert_eq!(
            f.for_failure("small", &err(400, Some("context_length_exceeded")), None),
            ["large"]
        );
        assert_eq!(
            f.for_failure("any", &err(503, None), None),
            ["backup"],
            "\"*\" applies to every group"
        );
        assert!(
            f.for_failure("any", &err(400, None), None).is_empty(),
            "a bad request is not retried elsewhere"
        );
        let from_request = serde_json::json!(["mine", "also"]);
        assert_eq!(
            f.for_failure("any", &err(503, None), Some(&from_request)),
            ["mine"],
            "max_fallbacks: 1"
        );
        let only_default = fallbacks("default_fallbacks: [last-resort]\n").unwrap();
        assert_eq!(
            only_default.for_failure("g", &err(500, None), None),
            ["last-resort"]
        );
    }

    #[test]
    fn malformed_lists_name_the_field() {
        assert_eq!(
            fallbacks("fallbacks: 3\n").unwrap_err().path,
            "router_settings.fallbacks"
        );
        assert_eq!(
            fallbacks("fallbacks:\n  - gpt-4: 3\n").unwrap_err().path,
            "router_settings.fallbacks"
        );
    }

    #[test]
    fn a_policy_refusal_never_falls_back() {
        let f = fallbacks("fallbacks: [{a: [b]}]\ndefault_fallbacks: [c]").unwrap();
        let upstream = GatewayError::upstream(429, "slow down");
        assert_eq!(f.for_failure("a", &upstream, None), vec!["b"]);
        let refused = GatewayError::policy(ErrorKind::RateLimit, "key over its rpm");
        assert!(f.for_failure("a", &refused, None).is_empty());
        let from_request = serde_json::json!(["d"]);
        assert!(f.for_failure("a", &refused, Some(&from_request)).is_empty());
        let denied = GatewayError::policy(ErrorKind::Authentication, "model not allowed");
        assert!(f.for_failure("a", &denied, None).is_empty());
    }
}
