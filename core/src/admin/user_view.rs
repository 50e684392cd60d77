//! Users as the admin API shows them: LiteLLM's `LiteLLM_UserTable` row with its spend, the
//! `/user/new` answer (the one place its first raw key is shown) and `/user/info`'s keys and
//! teams.

use serde_json::{json, Map, Value};

use super::keys::NewKey;
use super::render_key::{key_object, key_spend, spend_of, Spend};
use super::team_view::team_object;
use crate::budget::Scope;
use crate::calendar::iso8601;
use crate::error::GatewayError;
use crate::gateway::Gateway;
use crate::identity::records::{KeyRecord, TeamRecord, UserRecord};

/// LiteLLM's `NewUserResponse`: the user's fields and its first key (raw, shown this once;
/// `""` when none was made, as LiteLLM answers).
pub fn new_user_response(user: &UserRecord, key: Option<&NewKey>) -> Value {
    let mut out = user_object(user, Spend::default());
    let rec = key.map(|k| &k.record);
    let fields = [
        ("key", json!(key.map_or("", |k| k.raw.as_str()))),
        ("token", json!(rec.map(|r| &r.token))),
        ("key_name", json!(rec.map(|r| &r.key_name))),
        ("key_alias", json!(rec.and_then(|r| r.key_alias.as_ref()))),
        (
            "expires",
            json!(rec.and_then(|r| r.expires_ms).map(iso8601)),
        ),
        ("duration", json!(rec.and_then(|r| r.duration.as_ref()))),
    ];
    out.extend(fields.map(|(k, v)| (k.to_string(), v)));
    Value::Object(out)
}

/// A user as LiteLLM's admin API shows it (`LiteLLM_UserTable`).
pub fn user_object(u: &UserRecord, spend: Spend) -> Map<String, Value> {
    // Fields this version does not know come first, so a known field always wins.
    let mut out: Map<String, Value> = u.extra.clone();
    let known = json!({
        "user_id": u.user_id,
        "user_alias": u.user_alias,
        "user_email": u.user_email,
        "user_role": u.user_role.as_str(),
        "teams": u.teams,
        "models": u.models,
        "spend": spend.usd,
        "max_budget": u.budget.max_budget,
        "soft_budget": u.budget.soft_budget,
        "budget_duration": u.budget.budget_duration,
        "budget_reset_at": spend.reset_at_ms.map(iso8601),
        "tpm_limit": u.limits.tpm_limit,
        "rpm_limit": u.limits.rpm_limit,
        "max_parallel_requests": u.limits.max_parallel_requests,
        "metadata": u.metadata,
        "blocked": u.blocked,
        "model_max_budget": {},
        "model_spend": {},
        "allowed_cache_controls": [],
        "created_at": iso8601(u.created_at_ms),
        "updated_at": iso8601(u.updated_at_ms),
    });
    if let Value::Object(known) = known {
        out.extend(known);
    }
    out
}

/// The user object with the user's spend read now.
pub async fn user_with_spend(
    gw: &Gateway,
    u: &UserRecord,
) -> Result<Map<String, Value>, GatewayError> {
    Ok(user_object(u, user_spend(gw, u).await?))
}

/// The user's spend in its current budget period.
pub async fn user_spend(gw: &Gateway, u: &UserRecord) -> Result<Spend, GatewayError> {
    spend_of(
        gw,
        Scope::User(u.user_id.clone()),
        u.budget.budget_duration.as_deref(),
    )
    .await
}

/// Key objects (tokens only, never raw keys) with their spend and team alias.
pub async fn rendered_keys(
    gw: &Gateway,
    keys: &[KeyRecord],
    teams: &[TeamRecord],
) -> Result<Vec<Value>, GatewayError> {
    let spends = futures_util::future::try_join_all(keys.iter().map(|k| key_spend(gw, k))).await?;
    Ok(keys
        .iter()
        .zip(spends)
        .map(|(k, s)| {
            let mut obj = key_object(k, s);
            let alias = k
                .team_id
                .as_ref()
                .and_then(|id| teams.iter().find(|t| &t.team_id == id))
                .and_then(|t| t.team_alias.clone());
            obj.insert("team_alias".into(), json!(alias));
            Value::Object(obj)
        })
        .collect())
}

/// Teams as `/user/info` lists them: as `/team/info` shows a team.
pub async fn rendered_teams(
    gw: &Gateway,
    teams: &[TeamRecord],
) -> Result<Vec<Value>, GatewayError> {
    let mut out = Vec::with_capacity(teams.len());
    for team in teams {
        out.push(Value::Object(team_object(gw, team).await?));
    }
    Ok(out)
}
