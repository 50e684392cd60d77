//! The body of `/user/new` and `/user/update` (LiteLLM's `NewUserRequest` /
//! `UpdateUserRequest`), checked and applied to a [`UserRecord`]; the config seed's users are
//! applied through it too.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::fields::{check_amount, check_duration, unprocessable};
use super::key_body::{nullable, set, set_opt, Patch};
use crate::error::GatewayError;
use crate::identity::records::{Role, TeamRole, UserRecord};

/// The fields `/user/new` and `/user/update` accept (LiteLLM's `NewUserRequest` /
/// `UpdateUserRequest`); as for keys, an update keeps what is absent and clears what is `null`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct UserFields {
    #[serde(deserialize_with = "nullable")]
    pub user_id: Patch<String>,
    #[serde(deserialize_with = "nullable")]
    pub user_email: Patch<String>,
    #[serde(deserialize_with = "nullable")]
    pub user_alias: Patch<String>,
    #[serde(deserialize_with = "nullable")]
    pub user_role: Patch<String>,
    #[serde(deserialize_with = "nullable")]
    pub models: Patch<Vec<String>>,
    #[serde(deserialize_with = "nullable")]
    pub max_budget: Patch<f64>,
    #[serde(deserialize_with = "nullable")]
    pub soft_budget: Patch<f64>,
    #[serde(deserialize_with = "nullable")]
    pub budget_duration: Patch<String>,
    #[serde(deserialize_with = "nullable")]
    pub tpm_limit: Patch<u64>,
    #[serde(deserialize_with = "nullable")]
    pub rpm_limit: Patch<u64>,
    #[serde(deserialize_with = "nullable")]
    pub max_parallel_requests: Patch<u64>,
    #[serde(deserialize_with = "nullable")]
    pub metadata: Patch<Map<String, Value>>,
    #[serde(deserialize_with = "nullable")]
    pub blocked: Patch<bool>,
    // `/user/new` only: the teams to join and the first key.
    pub teams: Option<Vec<TeamRef>>,
    pub team_id: Option<String>,
    pub auto_create_key: Option<bool>,
    pub key_alias: Option<String>,
    pub duration: Option<String>,
}

/// A team to join: its id, or LiteLLM's `{"team_id", "max_budget_in_team", "user_role"}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum TeamRef {
    Id(String),
    Member {
        team_id: String,
        #[serde(default)]
        max_budget_in_team: Option<f64>,
        #[serde(default)]
        user_role: TeamRole,
    },
}

impl TeamRef {
    pub fn id(&self) -> &str {
        match self {
            TeamRef::Id(id) | TeamRef::Member { team_id: id, .. } => id,
        }
    }
}

impl UserFields {
    /// Checks what the body alone decides; the role it sets, if any.
    pub fn check(&mut self) -> Result<Patch<Role>, GatewayError> {
        if let Some(Some(id)) = &mut self.user_id {
            *id = id.trim().to_string();
            if id.is_empty() {
                return Err(unprocessable(
                    "user_id",
                    "user_id must not be empty or contain only whitespace",
                ));
            }
        }
        check_amount("max_budget", self.max_budget.flatten())?;
        check_amount("soft_budget", self.soft_budget.flatten())?;
        if let Some(Some(d)) = &self.budget_duration {
            check_duration("budget_duration", Some(d))?;
        }
        Ok(match &self.user_role {
            None => None,
            Some(None) => Some(None),
            Some(Some(text)) => Some(Some(request_role(text)?)),
        })
    }

    pub fn apply(&self, rec: &mut UserRecord, role: Patch<Role>) {
        if let Some(role) = role {
            rec.user_role = role.unwrap_or_default();
        }
        set_opt(&mut rec.user_email, &self.user_email);
        set_opt(&mut rec.user_alias, &self.user_alias);
        set(&mut rec.models, &self.models);
        set_opt(&mut rec.budget.max_budget, &self.max_budget);
        set_opt(&mut rec.budget.soft_budget, &self.soft_budget);
        set_opt(&mut rec.budget.budget_duration, &self.budget_duration);
        set_opt(&mut rec.limits.tpm_limit, &self.tpm_limit);
        set_opt(&mut rec.limits.rpm_limit, &self.rpm_limit);
        set_opt(
            &mut rec.limits.max_parallel_requests,
            &self.max_parallel_requests,
        );
        set(&mut rec.metadata, &self.metadata);
        set(&mut rec.blocked, &self.blocked);
    }
}

/// A role a request may set: LiteLLM's request models accept these four only.
fn request_role(text: &str) -> Result<Role, GatewayError> {
    match Role::parse(text) {
        Some(
            role @ (Role::ProxyAdmin
            | Role::ProxyAdminViewer
            | Role::InternalUser
            | Role::InternalUserViewer),
        ) => Ok(role),
        _ => Err(unprocessable(
            "user_role",
            format!(
                "user_role: '{text}' is not one of proxy_admin, proxy_admin_viewer, \
                 internal_user, internal_user_viewer"
            ),
        )),
    }
}
