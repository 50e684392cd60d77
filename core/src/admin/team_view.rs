//! Teams and their members' memberships as LiteLLM's rows read on the wire: ISO 8601 times,
//! spend read from each scope's counter for its current period. A team's keys are shown as
//! `/key/info` shows them (`render_key.rs`).

use crate::identity::records::TeamMember;
use serde_json::{json, Map, Value};

use super::fields::{reset_at, spent, usd, wire, with_nulls};
use super::render_key::key_with_spend;
use crate::budget::Scope;
use crate::error::GatewayError;
use crate::gateway::Gateway;
use crate::identity::records::{KeyRecord, TeamRecord};

/// A team as LiteLLM's `LiteLLM_TeamTable` reads. Per-model limits sit in `metadata` and the
/// members' default budget in `team_member_budget_table`, where LiteLLM keeps them.
pub async fn team_object(
    gw: &Gateway,
    team: &TeamRecord,
) -> Result<Map<String, Value>, GatewayError> {
    let duration = team.budget.budget_duration.as_deref();
    let spend = spent(gw, &Scope::Team(team.team_id.clone()), duration).await?;
    let mut m = wire(team);
    let members: Vec<Value> = team
        .members_with_roles
        .iter()
        .map(|mm| json!({"user_id": mm.user_id, "user_email": mm.user_email, "role": mm.role}))
        .collect();
    m.insert("members_with_roles".into(), Value::Array(members));
    let mut metadata = team.metadata.clone();
    for (field, limits) in [
        ("model_rpm_limit", &team.model_rpm_limit),
        ("model_tpm_limit", &team.model_tpm_limit),
    ] {
        m.remove(field);
        if !limits.is_empty() {
            metadata.insert(field.into(), json!(limits));
        }
    }
    m.insert("metadata".into(), Value::Object(metadata));
    m.remove("team_member_budget");
    m.insert(
        "team_member_budget_table".into(),
        team.team_member_budget.map_or(
            Value::Null,
            |b| json!({"max_budget": b, "budget_duration": team.budget.budget_duration}),
        ),
    );
    m.insert("spend".into(), usd(spend));
    m.insert("budget_reset_at".into(), reset_at(gw, duration));
    for (field, empty) in [
        ("admins", json!([])),
        ("members", json!([])),
        ("model_max_budget", json!({})),
        ("model_spend", json!({})),
    ] {
        m.entry(field).or_insert(empty);
    }
    with_nulls(
        &mut m,
        &[
            "team_alias",
            "organization_id",
            "max_budget",
            "soft_budget",
            "budget_duration",
            "tpm_limit",
            "rpm_limit",
            "max_parallel_requests",
        ],
    );
    Ok(m)
}

/// Each member with a user id, as LiteLLM's `LiteLLM_TeamMembership`: the member's spend
/// inside the team (in the team's budget period, as LiteLLM's member budgets default to) and
/// the budget that applies to it, its own or the team's default.
pub async fn memberships(gw: &Gateway, team: &TeamRecord) -> Result<Vec<Value>, GatewayError> {
    let duration = team.budget.budget_duration.as_deref();
    // Collected first: an iterator whose closure borrows is not provably Send across an
    // await (a higher-ranked lifetime), which the Lambda runtime needs.
    let members: Vec<(&TeamMember, &str)> = team
        .members_with_roles
        .iter()
        .filter_map(|m| m.user_id.as_deref().map(|u| (m, u)))
        .collect();
    let mut out = Vec::new();
    for (member, user) in members {
        let scope = Scope::Member {
            team: team.team_id.clone(),
            user: user.to_string(),
        };
        let spend = spent(gw, &scope, duration).await?;
        let (budget, source) = match (member.max_budget_in_team, team.team_member_budget) {
            (Some(b), _) => (Some(b), "custom"),
            (None, Some(b)) => (Some(b), "team_default"),
            (None, None) => (None, "none"),
        };
        out.push(json!({
            "user_id": user,
            "team_id": team.team_id,
            "budget_id": null,
            "spend": usd(spend),
            "litellm_budget_table": budget.map(|b| json!({"max_budget": b, "budget_duration": duration})),
            "budget_source": source,
        }));
    }
    Ok(out)
}

/// `/team/info`'s answer: the team, its keys and its members' memberships.
pub async fn team_info(
    gw: &Gateway,
    team: &TeamRecord,
    keys: &[KeyRecord],
) -> Result<Value, GatewayError> {
    let info = team_object(gw, team).await?;
    let mut objects = Vec::with_capacity(keys.len());
    for k in keys {
        objects.push(key_with_spend(gw, k).await?);
    }
    let keys = objects;
    let members = memberships(gw, team).await?;
    Ok(json!({
        "team_id": team.team_id,
        "team_info": info,
        "keys": keys,
        "team_memberships": members,
    }))
}
