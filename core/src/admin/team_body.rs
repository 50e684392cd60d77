//! The body of `/team/new` and `/team/update` (LiteLLM's `NewTeamRequest`), also the shape of
//! a team in the config seed. Absent (or null) fields leave the record's value alone.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::admin::fields::{
    check_amount, check_duration, check_soft_below_max, refused, set, unprocessable,
};
use crate::error::GatewayError;
use crate::identity::records::{TeamMember, TeamRecord, TeamRole};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TeamBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team_alias: Option<String>,
    /// The whole roster (new teams and the seed; `/team/update` leaves members to
    /// `/team/member_add` and `/team/member_delete`, as LiteLLM's does).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members_with_roles: Option<Vec<MemberIn>>,
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
    /// Every member's budget inside the team unless the member has its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team_member_budget: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_rpm_limit: Option<BTreeMap<String, u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_tpm_limit: Option<BTreeMap<String, u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked: Option<bool>,
}

/// A member as LiteLLM's `Member`: a role and a user id or email (or both). Tollgate also
/// takes the member's own budget inside the team.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberIn {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_email: Option<String>,
    pub role: TeamRole,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_budget_in_team: Option<f64>,
}

impl MemberIn {
    /// Checked at `param` (`members_with_roles[0]`, `member`): who it is, and its budget.
    pub fn validate(&self, param: &str) -> Result<(), GatewayError> {
        if self.user_id.is_none() && self.user_email.is_none() {
            return Err(unprocessable(
                param,
                format!("{param}: Either user id or user email must be provided"),
            ));
        }
        check_amount(
            &format!("{param}.max_budget_in_team"),
            self.max_budget_in_team,
        )
    }

    /// Whether this names `m` (by user id, else by email).
    pub fn names(&self, m: &TeamMember) -> bool {
        match (&self.user_id, &m.user_id) {
            (Some(a), Some(b)) => a == b,
            _ => self.user_email.is_some() && self.user_email == m.user_email,
        }
    }

    /// The stored member; a budget this does not name is kept from `before`.
    pub fn to_member(&self, before: Option<&TeamMember>) -> TeamMember {
        TeamMember {
            user_id: self.user_id.clone(),
            user_email: self.user_email.clone(),
            role: self.role,
            max_budget_in_team: self
                .max_budget_in_team
                .or(before.and_then(|b| b.max_budget_in_team)),
        }
    }
}

impl TeamBody {
    pub fn validate(&self) -> Result<(), GatewayError> {
        check_amount("max_budget", self.max_budget)?;
        check_amount("soft_budget", self.soft_budget)?;
        check_amount("team_member_budget", self.team_member_budget)?;
        check_duration("budget_duration", self.budget_duration.as_deref())?;
        let members = self.members_with_roles.as_deref().unwrap_or_default();
        for (i, m) in members.iter().enumerate() {
            m.validate(&format!("members_with_roles[{i}]"))?;
            if members[..i].iter().any(|other| {
                let as_member = other.to_member(None);
                m.names(&as_member)
            }) {
                return Err(refused(
                    &format!("members_with_roles[{i}]"),
                    "A member is listed twice.",
                ));
            }
        }
        check_soft_below_max(self.soft_budget, self.max_budget)
    }

    /// Writes the fields the body names into `rec`; the roster too when `with_members`.
    pub fn apply(&self, rec: &mut TeamRecord, with_members: bool) {
        set(&mut rec.team_alias, self.team_alias.clone());
        if let Some(m) = &self.models {
            rec.models = m.clone();
        }
        set(&mut rec.budget.max_budget, self.max_budget);
        set(&mut rec.budget.soft_budget, self.soft_budget);
        set(
            &mut rec.budget.budget_duration,
            self.budget_duration.clone(),
        );
        set(&mut rec.limits.tpm_limit, self.tpm_limit);
        set(&mut rec.limits.rpm_limit, self.rpm_limit);
        set(
            &mut rec.limits.max_parallel_requests,
            self.max_parallel_requests,
        );
        set(&mut rec.team_member_budget, self.team_member_budget);
        if let Some(m) = &self.model_rpm_limit {
            rec.model_rpm_limit = m.clone();
        }
        if let Some(m) = &self.model_tpm_limit {
            rec.model_tpm_limit = m.clone();
        }
        if let Some(m) = &self.metadata {
            rec.metadata = m.clone();
        }
        if let Some(b) = self.blocked {
            rec.blocked = b;
        }
        if let (true, Some(members)) = (with_members, &self.members_with_roles) {
            let before = std::mem::take(&mut rec.members_with_roles);
            rec.members_with_roles = members
                .iter()
                .map(|m| m.to_member(before.iter().find(|b| m.names(b))))
                .collect();
        }
    }
}
