//! Printing the parts of a config Tollgate does not type (`litellm_params` extras, the
//! `*_settings` maps, `environment_variables`) without the credentials operators put there:
//! `redis_password`, a provider's `*_token`, `database_url` with a password in it. Typed
//! credentials are [`Secret`](crate::secret::Secret)s; these maps are printed through
//! [`RedactedMap`], so a `{:?}` of the whole config is safe to log.

use std::fmt;
use std::ops::{Deref, DerefMut};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::secret::{looks_secret, redact_url_userinfo, REDACTED};

/// A settings map as `Debug` prints it: text, lists and mappings under a secret-looking name
/// become `<redacted>` (at any depth), and so does the user part of any URL.
pub struct RedactedMap<'a>(pub &'a Map<String, Value>);

impl fmt::Debug for RedactedMap<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, v)| (k, redacted(Some(k), v))))
            .finish()
    }
}

/// A copy of `value` safe to print; `name` is the setting it was found under.
fn redacted(name: Option<&str>, value: &Value) -> Value {
    match value {
        Value::String(_) | Value::Array(_) | Value::Object(_) if name.is_some_and(looks_secret) => {
            Value::String(REDACTED.into())
        }
        Value::String(s) => redact_url_userinfo(s).map_or_else(|| value.clone(), Value::String),
        Value::Array(items) => Value::Array(items.iter().map(|v| redacted(None, v)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), redacted(Some(k), v)))
                .collect(),
        ),
        _ => value.clone(),
    }
}

/// `litellm_params` fields Tollgate has no typed field for (request defaults, provider
/// settings): a map, read and written as one through `Deref`, that prints redacted.
#[derive(Clone, Default, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct ExtraFields(pub Map<String, Value>);

impl Deref for ExtraFields {
    type Target = Map<String, Value>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for ExtraFields {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl From<Map<String, Value>> for ExtraFields {
    fn from(map: Map<String, Value>) -> Self {
        ExtraFields(map)
    }
}

impl fmt::Debug for ExtraFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        RedactedMap(&self.0).fmt(f)
    }
}

/// `api_base`: a URL, which may carry credentials (`https://user:password@proxy/v1`). Reads
/// as the URL text through `Deref`; `Debug` prints it with the user part redacted.
///
/// The gateway still echoes the URL as is in `/health` and `x-litellm-model-api-base`, as
/// LiteLLM does: credentials belong in `api_key`, not in the URL.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct ApiBase(pub String);

impl Deref for ApiBase {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<String> for ApiBase {
    fn from(url: String) -> Self {
        ApiBase(url)
    }
}

impl fmt::Debug for ApiBase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match redact_url_userinfo(&self.0) {
            Some(safe) => safe.fmt(f),
            None => self.0.fmt(f),
        }
    }
}

/// `environment_variables:`, which exist to hold keys: every value prints as `<redacted>`.
#[derive(Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct EnvironmentVariables(pub Map<String, Value>);

impl fmt::Debug for EnvironmentVariables {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.keys().map(|k| (k, REDACTED)))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_looking_settings_print_redacted_at_any_depth() {
        let map = json!({
            "redis_password": "pw-1",
            "redis_url": "redis://:pw-2@cache:6379",
            "store": {"type": "upstash", "token": "pw-3", "url": "https://u.example"},
            "headers": {"Authorization": "Bearer pw-4"},
            "callbacks": [{"secret_key": "pw-5"}],
            "private_key": {"n": "pw-6"},
            "input_cost_per_token": 0.5,
            "model": "gpt-4o",
        });
        let printed = format!("{:?}", RedactedMap(map.as_object().unwrap()));
        for i in 1..=6 {
            assert!(!printed.contains(&format!("pw-{i}")), "pw-{i} in {printed}");
        }
        for kept in [
            "upstash",
            "https://u.example",
            "0.5",
            "gpt-4o",
            "cache:6379",
        ] {
            assert!(printed.contains(kept), "{kept} missing from {printed}");
        }
    }

    #[test]
    fn environment_variables_print_names_only() {
        let env: EnvironmentVariables =
            serde_json::from_value(json!({"OPENAI_API_KEY": "sk-env", "PORT": 4000})).unwrap();
        let printed = format!("{env:?}");
        assert!(printed.contains("OPENAI_API_KEY") && printed.contains("PORT"));
        assert!(!printed.contains("sk-env") && !printed.contains("4000"));
    }
}
