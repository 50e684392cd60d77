//! The config file exactly as LiteLLM spells it. Fields later issues need are kept in `extra`
//! maps so nothing an operator wrote is silently lost.
//!
//! Credentials are [`Secret`]s, and the untyped maps print through [`RedactedMap`], so every
//! type here can be printed with `{:?}` without showing a key.

use std::fmt;

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use super::redact::{ApiBase, EnvironmentVariables, ExtraFields, RedactedMap};
use crate::secret::Secret;

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct RawConfig {
    pub model_list: Vec<RawModelEntry>,
    pub router_settings: RouterSettings,
    pub general_settings: GeneralSettings,
    pub litellm_settings: LitellmSettings,
    pub environment_variables: EnvironmentVariables,
}

#[derive(Debug, Deserialize)]
pub struct RawModelEntry {
    pub model_name: String,
    pub litellm_params: LitellmParams,
    #[serde(default)]
    pub model_info: Map<String, Value>,
}

/// `litellm_params` of one deployment.
#[derive(Debug, Clone, Deserialize)]
pub struct LitellmParams {
    /// `provider/upstream-model`.
    pub model: String,
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// Prints without any credentials in the URL; reads as `&str` (`as_deref()`).
    #[serde(default)]
    pub api_base: Option<ApiBase>,
    #[serde(default)]
    pub api_version: Option<String>,
    /// Seconds.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub timeout: Option<f64>,
    /// Seconds until the first byte of a stream.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub stream_timeout: Option<f64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub max_retries: Option<u64>,
    #[serde(default, deserialize_with = "lenient_f64")]
    pub weight: Option<f64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub rpm: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub tpm: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub order: Option<u64>,
    #[serde(default)]
    pub drop_params: Option<bool>,
    /// LiteLLM's canned answer: the `mock/` provider replies with it.
    #[serde(default)]
    pub mock_response: Option<Value>,
    /// Bedrock SigV4: the secret half of `aws_access_key_id` (which stays in `extra`: an
    /// identifier, sent in the clear in every `Authorization` header).
    #[serde(default)]
    pub aws_secret_access_key: Option<Secret>,
    /// Bedrock SigV4 with temporary credentials.
    #[serde(default)]
    pub aws_session_token: Option<Secret>,
    /// Azure: an Entra ID token, sent as a bearer token instead of the key.
    #[serde(default)]
    pub azure_ad_token: Option<Secret>,
    /// Vertex AI: the service-account key (it holds a private key), as the key file's JSON
    /// text (a mapping in the YAML is kept as JSON text) or a path to the file.
    #[serde(default, deserialize_with = "json_text")]
    pub vertex_credentials: Option<Secret>,
    /// Everything else: default request parameters (`temperature`, `max_tokens`, ...) and
    /// provider settings later issues read. Prints with secret-looking values redacted.
    #[serde(flatten)]
    pub extra: ExtraFields,
}

impl LitellmParams {
    /// `Authorization: Bearer <api_key>`, when the deployment has a key.
    pub fn bearer(&self) -> Option<String> {
        self.api_key
            .as_ref()
            .map(|k| format!("Bearer {}", k.expose()))
    }
}

/// `router_settings`; `extra` may hold `redis_password` / `redis_url` (printed redacted).
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RouterSettings {
    pub routing_strategy: Option<String>,
    pub model_group_alias: Map<String, Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl fmt::Debug for RouterSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouterSettings")
            .field("routing_strategy", &self.routing_strategy)
            .field("model_group_alias", &self.model_group_alias)
            .field("extra", &RedactedMap(&self.extra))
            .finish()
    }
}

/// `general_settings`; `extra` may hold `database_url` or the store's token (printed redacted).
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct GeneralSettings {
    pub master_key: Option<Secret>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl fmt::Debug for GeneralSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneralSettings")
            .field("master_key", &self.master_key)
            .field("extra", &RedactedMap(&self.extra))
            .finish()
    }
}

/// `litellm_settings`; `extra` may hold callback credentials (printed redacted).
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct LitellmSettings {
    pub drop_params: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl fmt::Debug for LitellmSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LitellmSettings")
            .field("drop_params", &self.drop_params)
            .field("extra", &RedactedMap(&self.extra))
            .finish()
    }
}

/// A credential given as text or (for JSON key files) as a mapping, kept as text. Other
/// values are refused without being quoted.
fn json_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(Secret::from(s))),
        Some(map @ Value::Object(_)) => Ok(Some(Secret::from(map.to_string()))),
        Some(_) => Err(serde::de::Error::custom(
            "expected the service-account JSON (text or a mapping) or a path to it",
        )),
    }
}

/// Numbers may arrive as strings once `os.environ/` values are substituted in.
#[derive(Deserialize)]
#[serde(untagged)]
enum NumOrString {
    Num(f64),
    Str(String),
}

fn lenient_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    match Option::<NumOrString>::deserialize(d)? {
        None => Ok(None),
        Some(NumOrString::Num(n)) => Ok(Some(n)),
        Some(NumOrString::Str(s)) => s
            .trim()
            .parse::<f64>()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("expected a number, got {s:?}"))),
    }
}

fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match lenient_f64(d)? {
        None => Ok(None),
        Some(n) if n >= 0.0 && n.fract() == 0.0 && n <= u64::MAX as f64 => Ok(Some(n as u64)),
        Some(n) => Err(serde::de::Error::custom(format!(
            "expected a non-negative integer, got {n}"
        ))),
    }
}

/// A number, or a string holding one (values substituted from `os.environ/` are strings).
pub(crate) fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}
