//! The config file exactly as LiteLLM spells it. Fields later issues need are kept in `extra`
//! maps so nothing an operator wrote is silently lost.

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct RawConfig {
    pub model_list: Vec<RawModelEntry>,
    pub router_settings: RouterSettings,
    pub general_settings: GeneralSettings,
    pub litellm_settings: LitellmSettings,
    pub environment_variables: Map<String, Value>,
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
    pub api_key: Option<String>,
    #[serde(default)]
    pub api_base: Option<String>,
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
    /// Everything else: default request parameters (`temperature`, `max_tokens`, ...) and
    /// provider settings later issues read.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct RouterSettings {
    pub routing_strategy: Option<String>,
    pub model_group_alias: Map<String, Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct GeneralSettings {
    pub master_key: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct LitellmSettings {
    pub drop_params: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
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
