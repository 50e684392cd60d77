//! The governance records as the Store keeps them: virtual keys, internal users, teams, end
//! users (LiteLLM's "customers") and shared budgets. One JSON record per object under
//! [`store_key`]; spend is never stored here (it lives in counters, see `crate::budget`), so a
//! record is only rewritten by an admin change, never by traffic.
//!
//! Field names are LiteLLM's, so the admin API can render a record almost as stored; times are
//! epoch ms here and ISO 8601 on the wire. Unknown fields are kept (`extra`), so a record
//! written by a newer version survives an older one.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Where each kind of record lives in the Store.
pub mod store_key {
    /// A virtual key, by its token (SHA-256 hex of the raw key).
    pub fn key(token: &str) -> String {
        format!("gov:key:{token}")
    }
    /// Claim of a key alias (value: the token), so aliases stay unique across instances.
    pub fn key_alias(alias: &str) -> String {
        format!("gov:alias:{alias}")
    }
    pub fn user(id: &str) -> String {
        format!("gov:user:{id}")
    }
    pub fn team(id: &str) -> String {
        format!("gov:team:{id}")
    }
    pub fn customer(id: &str) -> String {
        format!("gov:cust:{id}")
    }
    pub fn budget(id: &str) -> String {
        format!("gov:budget:{id}")
    }
    pub const KEY_PREFIX: &str = "gov:key:";
    pub const USER_PREFIX: &str = "gov:user:";
    pub const TEAM_PREFIX: &str = "gov:team:";
    pub const CUSTOMER_PREFIX: &str = "gov:cust:";
    pub const BUDGET_PREFIX: &str = "gov:budget:";
}

/// LiteLLM's user roles (`user_role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// May manage everything (the master key is one).
    ProxyAdmin,
    /// May read everything, change nothing.
    ProxyAdminViewer,
    /// May call models and read its own keys and spend.
    #[default]
    InternalUser,
    /// May read its own keys and spend, not call models... as LiteLLM, it may still call them
    /// with its keys; only management differs.
    InternalUserViewer,
    Team,
    Customer,
}

impl Role {
    pub fn parse(text: &str) -> Option<Role> {
        serde_json::from_value(Value::String(text.to_string())).ok()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::ProxyAdmin => "proxy_admin",
            Role::ProxyAdminViewer => "proxy_admin_viewer",
            Role::InternalUser => "internal_user",
            Role::InternalUserViewer => "internal_user_viewer",
            Role::Team => "team",
            Role::Customer => "customer",
        }
    }
}

/// Spend limits an object may carry (dollars; durations as LiteLLM spells them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BudgetLimits {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_budget: Option<f64>,
    /// Above it: a header and a log line, no refusal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub soft_budget: Option<f64>,
    /// The budget's period (`30d`, `1h`, ...); none: the budget is for all time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_duration: Option<String>,
}

/// Rate limits an object may carry (enforced by the limits feature).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RateLimits {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tpm_limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpm_limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_parallel_requests: Option<u64>,
}

/// One model's budget on a key (`model_max_budget`): LiteLLM accepts a bare number (for all
/// time) or `{"budget_limit": 5.0, "time_period": "30d"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ModelBudget {
    Amount(f64),
    Limit {
        budget_limit: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        time_period: Option<String>,
    },
}

impl ModelBudget {
    pub fn limit(&self) -> f64 {
        match self {
            ModelBudget::Amount(a) => *a,
            ModelBudget::Limit { budget_limit, .. } => *budget_limit,
        }
    }
    pub fn period(&self) -> Option<&str> {
        match self {
            ModelBudget::Amount(_) => None,
            ModelBudget::Limit { time_period, .. } => time_period.as_deref(),
        }
    }
}

/// A virtual key. The raw key is never stored: `token` is its SHA-256 hex.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct KeyRecord {
    pub token: String,
    /// `sk-...abcd`: enough to recognise a key in a list, not to use it.
    pub key_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_alias: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team_id: Option<String>,
    /// Model groups or aliases the key may call; empty: all.
    pub models: Vec<String>,
    #[serde(flatten)]
    pub budget: BudgetLimits,
    #[serde(flatten)]
    pub limits: RateLimits,
    pub model_max_budget: std::collections::BTreeMap<String, ModelBudget>,
    pub model_rpm_limit: std::collections::BTreeMap<String, u64>,
    pub model_tpm_limit: std::collections::BTreeMap<String, u64>,
    /// A shared budget (`/budget/new`) whose limits apply to this key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_id: Option<String>,
    pub metadata: Map<String, Value>,
    pub tags: Vec<String>,
    pub blocked: bool,
    pub allowed_cache_controls: Vec<String>,
    /// The `duration` the key was made with, as given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// When the key stops working (epoch ms); none: never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_ms: Option<u64>,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_by: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A governance record: made with its id at a time, and stamped at every change.
pub trait Stamped: Clone + PartialEq {
    /// A record with only its id, created (and last updated) at `now_ms`.
    fn created(id: &str, now_ms: u64) -> Self;
    /// Notes a change at `now_ms`.
    fn stamp(&mut self, now_ms: u64);
}

macro_rules! stamped {
    ($($record:ident . $id:ident),*) => {$(
        impl Stamped for $record {
            fn created(id: &str, now_ms: u64) -> Self {
                $record {
                    $id: id.to_string(),
                    created_at_ms: now_ms,
                    updated_at_ms: now_ms,
                    ..Default::default()
                }
            }
            fn stamp(&mut self, now_ms: u64) {
                self.updated_at_ms = now_ms;
            }
        }
    )*};
}
stamped!(
    BudgetRecord.budget_id,
    UserRecord.user_id,
    TeamRecord.team_id,
    CustomerRecord.user_id,
    KeyRecord.token
);

impl KeyRecord {
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expires_ms.is_some_and(|e| now_ms >= e)
    }
}

/// An internal user (`/user/*`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserRecord {
    pub user_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_alias: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_email: Option<String>,
    pub user_role: Role,
    pub teams: Vec<String>,
    pub models: Vec<String>,
    #[serde(flatten)]
    pub budget: BudgetLimits,
    #[serde(flatten)]
    pub limits: RateLimits,
    pub metadata: Map<String, Value>,
    pub blocked: bool,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// LiteLLM's team member roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TeamRole {
    Admin,
    #[default]
    User,
}

/// One member of a team (`members_with_roles`), with an optional budget of its own inside the
/// team (`max_budget_in_team`, LiteLLM's team membership budget).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TeamMember {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_email: Option<String>,
    pub role: TeamRole,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_budget_in_team: Option<f64>,
}

/// A team (`/team/*`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TeamRecord {
    pub team_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team_alias: Option<String>,
    pub members_with_roles: Vec<TeamMember>,
    pub models: Vec<String>,
    #[serde(flatten)]
    pub budget: BudgetLimits,
    #[serde(flatten)]
    pub limits: RateLimits,
    /// Every member's budget inside the team unless the member has its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team_member_budget: Option<f64>,
    pub model_rpm_limit: std::collections::BTreeMap<String, u64>,
    pub model_tpm_limit: std::collections::BTreeMap<String, u64>,
    pub metadata: Map<String, Value>,
    pub blocked: bool,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl TeamRecord {
    pub fn member(&self, user_id: &str) -> Option<&TeamMember> {
        self.members_with_roles
            .iter()
            .find(|m| m.user_id.as_deref() == Some(user_id))
    }

    /// The member's budget inside the team, if any.
    pub fn member_budget(&self, user_id: &str) -> Option<f64> {
        self.member(user_id)
            .and_then(|m| m.max_budget_in_team)
            .or(self.team_member_budget)
    }
}

/// An end user (`/customer/*`): the `user` of a request, or `x-litellm-end-user-id`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CustomerRecord {
    pub user_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    pub blocked: bool,
    /// A shared budget (`/budget/new`) whose limits apply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_id: Option<String>,
    #[serde(flatten)]
    pub budget: BudgetLimits,
    #[serde(flatten)]
    pub limits: RateLimits,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_model_region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_model: Option<String>,
    pub metadata: Map<String, Value>,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A shared budget (`/budget/*`), referred to by keys and end users through `budget_id`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BudgetRecord {
    pub budget_id: String,
    #[serde(flatten)]
    pub budget: BudgetLimits,
    #[serde(flatten)]
    pub limits: RateLimits,
    pub model_max_budget: std::collections::BTreeMap<String, ModelBudget>,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_record_round_trips_and_keeps_unknown_fields() {
        let text = r#"{"token":"ab","key_name":"sk-...cdef","models":["gpt-4o"],
            "max_budget":1.5,"budget_duration":"30d","rpm_limit":10,
            "model_max_budget":{"gpt-4o":{"budget_limit":0.5,"time_period":"1d"},"o1":2.0},
            "from_the_future":true}"#;
        let rec: KeyRecord = serde_json::from_str(text).unwrap();
        assert_eq!(rec.budget.max_budget, Some(1.5));
        assert_eq!(rec.limits.rpm_limit, Some(10));
        assert_eq!(rec.model_max_budget["gpt-4o"].period(), Some("1d"));
        assert_eq!(rec.model_max_budget["o1"].limit(), 2.0);
        let again: KeyRecord = serde_json::from_value(serde_json::to_value(&rec).unwrap()).unwrap();
        assert_eq!(again, rec);
        assert_eq!(again.extra["from_the_future"], true);
    }

    #[test]
    fn roles_read_litellm_names() {
        assert_eq!(Role::parse("proxy_admin"), Some(Role::ProxyAdmin));
        assert_eq!(
            Role::parse("internal_user_viewer"),
            Some(Role::InternalUserViewer)
        );
        assert_eq!(Role::parse("root"), None);
        assert_eq!(Role::ProxyAdminViewer.as_str(), "proxy_admin_viewer");
    }

    #[test]
    fn member_budget_prefers_the_members_own() {
        let team = TeamRecord {
            team_member_budget: Some(5.0),
            members_with_roles: vec![
                TeamMember {
                    user_id: Some("a".into()),
                    max_budget_in_team: Some(1.0),
                    ..Default::default()
                },
                TeamMember {
                    user_id: Some("b".into()),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        assert_eq!(team.member_budget("a"), Some(1.0));
        assert_eq!(team.member_budget("b"), Some(5.0));
    }
}
