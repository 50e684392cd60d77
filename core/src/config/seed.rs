//! `general_settings.seed`: governance objects the config declares, so they exist at start-up
//! without admin calls (GitOps). A Tollgate section; LiteLLM ignores it.
//!
//! ```yaml
//! general_settings:
//!   seed:
//!     budgets:   [{budget_id: free, max_budget: 1.0, budget_duration: 30d}]
//!     users:     [{user_id: alice, user_role: internal_user, max_budget: 20}]
//!     teams:     [{team_id: eng, team_alias: Engineering, models: [gpt-4o],
//!                  members_with_roles: [{role: admin, user_id: alice}]}]
//!     end_users: [{user_id: customer-1, budget_id: free}]
//!     keys:      [{key: os.environ/ENG_BOT_KEY, key_alias: eng-bot, team_id: eng, models: [gpt-4o]}]
//! ```
//!
//! Each entry takes the field names of its `/x/new` body (`/budget/new`, `/user/new`,
//! `/team/new`, `/customer/new`, `/key/generate`); ids are required, since the seed finds its
//! objects again by them. A key is given raw (`sk-...`, best through `os.environ/`); it is
//! hashed here, at load, and only its token and `sk-...abcd` name are kept. `duration` is not
//! taken for keys (an expiry counted from each start-up would move). Unknown fields are
//! refused, so a misspelt limit cannot pass as no limit. `crate::admin::seed` writes the
//! objects; what it does with earlier admin edits is documented there.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::ConfigError;
use super::Config;
use crate::admin::budget_body::{check_model_budgets, BudgetBody, ModelBudgetIn};
use crate::admin::customer_body::CustomerBody;
use crate::admin::fields::{check_amount, check_duration, check_soft_below_max, unknown_fields};
use crate::admin::team_body::TeamBody;
use crate::error::GatewayError;
use crate::identity::records::Role;
use crate::identity::token;
use crate::secret::Secret;

const SECTION: &str = "general_settings.seed";

/// The objects `general_settings.seed` declares, checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeedSpec {
    pub budgets: Vec<BudgetBody>,
    pub users: Vec<SeedUser>,
    pub teams: Vec<TeamBody>,
    pub end_users: Vec<CustomerBody>,
    pub keys: Vec<SeedKey>,
}

/// An internal user, with `/user/new`'s fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SeedUser {
    pub user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_alias: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_role: Option<Role>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teams: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_budget: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soft_budget: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_duration: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm_limit: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm_limit: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parallel_requests: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked: Option<bool>,
}

/// A virtual key: its token (the SHA-256 of the raw key, which is not kept), the name it is
/// shown by, and `/key/generate`'s other fields.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedKey {
    pub token: String,
    pub key_name: String,
    pub fields: SeedKeyFields,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SeedKeyFields {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_alias: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_budget: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub soft_budget: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_duration: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tpm_limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpm_limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_parallel_requests: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_max_budget: Option<BTreeMap<String, ModelBudgetIn>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_rpm_limit: Option<BTreeMap<String, u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_tpm_limit: Option<BTreeMap<String, u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_cache_controls: Option<Vec<String>>,
}

/// The checks `/x/new` makes on the same fields.
fn check_limits(
    max: Option<f64>,
    soft: Option<f64>,
    duration: Option<&str>,
) -> Result<(), GatewayError> {
    check_amount("max_budget", max)?;
    check_amount("soft_budget", soft)?;
    check_duration("budget_duration", duration)?;
    check_soft_below_max(soft, max)
}

impl SeedSpec {
    pub fn is_empty(&self) -> bool {
        *self == SeedSpec::default()
    }

    /// Reads `general_settings.seed` (already taken out of the raw settings, so the raw keys
    /// in it are not kept); `config` is the rest of the config, for model names.
    pub fn parse(value: Option<Value>, config: &Config) -> Result<SeedSpec, ConfigError> {
        let mut section = match value {
            None | Some(Value::Null) => return Ok(SeedSpec::default()),
            Some(Value::Object(m)) => m,
            Some(_) => {
                return Err(ConfigError::at(
                    SECTION,
                    "expected a mapping of object lists",
                ))
            }
        };
        let mut take = |kind: &str| -> Result<Vec<Map<String, Value>>, ConfigError> {
            let at = format!("{SECTION}.{kind}");
            match section.remove(kind) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Array(items)) => items
                    .into_iter()
                    .enumerate()
                    .map(|(i, item)| match item {
                        Value::Object(m) => Ok(m),
                        _ => Err(ConfigError::at(&format!("{at}[{i}]"), "expected a mapping")),
                    })
                    .collect(),
                Some(_) => Err(ConfigError::at(&at, "expected a list")),
            }
        };
        let budgets = take("budgets")?;
        let users = take("users")?;
        let teams = take("teams")?;
        let end_users = take("end_users")?;
        let keys = take("keys")?;
        if let Some(other) = section.keys().next() {
            return Err(ConfigError::at(
                &format!("{SECTION}.{other}"),
                "unknown kind; expected budgets, users, teams, end_users or keys",
            ));
        }
        let spec = SeedSpec {
            budgets: entries(budgets, "budgets", |b: &BudgetBody| {
                required(b.budget_id.as_deref(), "budget_id")?;
                b.validate()
            })?,
            users: entries(users, "users", |u: &SeedUser| {
                required(Some(&u.user_id), "user_id")?;
                check_limits(u.max_budget, u.soft_budget, u.budget_duration.as_deref())
            })?,
            teams: entries(teams, "teams", |t: &TeamBody| {
                required(t.team_id.as_deref(), "team_id")?;
                t.validate()
            })?,
            end_users: entries(end_users, "end_users", |c: &CustomerBody| {
                required(c.user_id.as_deref(), "user_id")?;
                c.validate_new(config)
            })?,
            keys: keys
                .into_iter()
                .enumerate()
                .map(|(i, entry)| seed_key(i, entry))
                .collect::<Result<_, _>>()?,
        };
        spec.check_unique()?;
        Ok(spec)
    }

    /// Two entries for one object would fight over it at every start-up.
    fn check_unique(&self) -> Result<(), ConfigError> {
        unique(
            "budgets",
            "budget_id",
            self.budgets.iter().map(|b| b.budget_id.clone()),
        )?;
        unique(
            "users",
            "user_id",
            self.users.iter().map(|u| Some(u.user_id.clone())),
        )?;
        unique(
            "teams",
            "team_id",
            self.teams.iter().map(|t| t.team_id.clone()),
        )?;
        unique(
            "end_users",
            "user_id",
            self.end_users.iter().map(|c| c.user_id.clone()),
        )?;
        unique(
            "keys",
            "key",
            self.keys.iter().map(|k| Some(k.token.clone())),
        )?;
        unique(
            "keys",
            "key_alias",
            self.keys.iter().map(|k| k.fields.key_alias.clone()),
        )
    }
}

fn unique(
    kind: &str,
    field: &str,
    ids: impl Iterator<Item = Option<String>>,
) -> Result<(), ConfigError> {
    let mut seen = std::collections::HashSet::new();
    for (i, id) in ids.enumerate() {
        if let Some(id) = id {
            if !seen.insert(id) {
                return Err(ConfigError::at(
                    &format!("{SECTION}.{kind}[{i}].{field}"),
                    "declared twice in the seed",
                ));
            }
        }
    }
    Ok(())
}

fn required(id: Option<&str>, field: &str) -> Result<(), GatewayError> {
    match id.map(str::trim) {
        Some(id) if !id.is_empty() => Ok(()),
        _ => Err(crate::admin::fields::required(field)),
    }
}

/// Each entry of `kind` as `T`: unknown fields refused, then `check`ed; errors name the
/// entry's field (`general_settings.seed.teams[0].max_budget`).
fn entries<T: DeserializeOwned + Serialize>(
    items: Vec<Map<String, Value>>,
    kind: &str,
    check: impl Fn(&T) -> Result<(), GatewayError>,
) -> Result<Vec<T>, ConfigError> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, map)| entry(map, &format!("{SECTION}.{kind}[{i}]"), &check))
        .collect()
}

fn entry<T: DeserializeOwned + Serialize>(
    map: Map<String, Value>,
    at: &str,
    check: impl Fn(&T) -> Result<(), GatewayError>,
) -> Result<T, ConfigError> {
    let parsed: T = serde_path_to_error::deserialize(Value::Object(map.clone())).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        // A missing field is reported at the entry; name it.
        let field = inner
            .split("missing field `")
            .nth(1)
            .and_then(|r| r.split('`').next());
        match (path.as_str(), field) {
            (".", Some(f)) => ConfigError::at(&format!("{at}.{f}"), "required"),
            (".", None) => ConfigError::at(at, inner),
            (p, _) => ConfigError::at(&format!("{at}.{p}"), inner),
        }
    })?;
    if let Some(field) = unknown_fields(&map, &parsed).first() {
        return Err(ConfigError::at(
            &format!("{at}.{field}"),
            "unknown field (the seed takes the fields of the matching /x/new body)",
        ));
    }
    check(&parsed).map_err(|e| {
        let field = e.param.clone().unwrap_or_default();
        let path = if field.is_empty() {
            at.to_string()
        } else {
            format!("{at}.{field}")
        };
        ConfigError::at(&path, e.message)
    })?;
    Ok(parsed)
}

/// A key entry: the raw `key` becomes its token at once; the rest is `/key/generate`'s.
fn seed_key(i: usize, mut map: Map<String, Value>) -> Result<SeedKey, ConfigError> {
    let at = format!("{SECTION}.keys[{i}]");
    let raw: Secret = match map.remove("key") {
        None | Some(Value::Null) => return Err(ConfigError::at(&format!("{at}.key"), "required")),
        Some(v) => serde_json::from_value(v)
            .map_err(|e| ConfigError::at(&format!("{at}.key"), e.to_string()))?,
    };
    token::check_custom(raw.expose()).map_err(|m| ConfigError::at(&format!("{at}.key"), m))?;
    let fields: SeedKeyFields = entry(map, &at, |k: &SeedKeyFields| {
        check_limits(k.max_budget, k.soft_budget, k.budget_duration.as_deref())?;
        check_model_budgets(k.model_max_budget.as_ref())?;
        match k.key_alias.as_deref().map(str::trim) {
            Some("") => Err(crate::admin::fields::required("key_alias")),
            _ => Ok(()),
        }
    })?;
    Ok(SeedKey {
        token: token::hash(raw.expose()),
        key_name: token::display_name(raw.expose()),
        fields,
    })
}

#[cfg(test)]
#[path = "seed_tests.rs"]
mod tests;
