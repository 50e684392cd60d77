//! `/team/member_add` and `/team/member_delete`: the roster of a team, kept in step with its
//! members' user records (their `teams`) and, on removal, their keys on the team.

use crate::identity::records::KeyRecord;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

use super::keys::delete_record;
use super::team_body::MemberIn;
use super::team_view::{memberships, team_object};
use super::teams::{join_users, leave, load, resolve_emails};
use super::user_view::user_with_spend;
use crate::admin::fields::{self, check_amount, refused, unprocessable};
use crate::error::{ErrorKind, GatewayError, Origin};
use crate::gateway::{Gateway, GatewayResponse};
use crate::identity::caller::store_down;

#[derive(Deserialize)]
struct AddBody {
    team_id: String,
    /// One member or a list of them.
    member: Value,
    max_budget_in_team: Option<f64>,
    budget_duration: Option<String>,
}

/// `member` as one member or a list, each read with its place named on error.
fn members_of(value: Value) -> Result<(Vec<MemberIn>, bool), GatewayError> {
    let read = |v: Value, at: String| -> Result<MemberIn, GatewayError> {
        let m: MemberIn = serde_path_to_error::deserialize(v).map_err(|e| {
            let inner = e.path().to_string();
            let param = if inner == "." {
                at.clone()
            } else {
                format!("{at}.{inner}")
            };
            GatewayError::new(
                ErrorKind::Unprocessable,
                format!("{param}: {}", e.into_inner()),
            )
            .with_origin(Origin::Client)
            .with_param(param)
        })?;
        m.validate(&at)?;
        Ok(m)
    };
    match value {
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| read(v, format!("member[{i}]")))
            .collect::<Result<Vec<_>, _>>()
            .map(|m| (m, false)),
        v @ Value::Object(_) => Ok((vec![read(v, "member".into())?], true)),
        _ => Err(unprocessable(
            "member",
            "member must be a member object or a list of them",
        )),
    }
}

pub async fn add(gw: &Gateway, body: &Bytes) -> Result<GatewayResponse, GatewayError> {
    let req: AddBody = fields::parse(body)?;
    let (mut members, single) = members_of(req.member)?;
    check_amount("max_budget_in_team", req.max_budget_in_team)?;
    if req.budget_duration.is_some() {
        // A member's spend inside a team counts in the team's budget period; a period of its
        // own is not kept, so it is refused rather than silently dropped.
        return Err(refused(
            "budget_duration",
            "A member's budget uses the team's budget_duration; budget_duration is not supported here.",
        ));
    }
    let mut team = load(gw, &req.team_id, "team_id").await?;
    resolve_emails(gw, &mut members).await?;
    let (already, new): (Vec<MemberIn>, Vec<MemberIn>) = members
        .into_iter()
        .partition(|m| team.members_with_roles.iter().any(|t| m.names(t)));
    if new.is_empty() && !already.is_empty() {
        let who = if single {
            format!(
                "User already in team. Member: user_id={:?}, user_email={:?}",
                already[0].user_id, already[0].user_email
            )
        } else {
            "All users are already in team.".to_string()
        };
        return Err(refused("member", who).with_code("team_member_already_in_team"));
    }
    for m in &new {
        let mut member = m.to_member(None);
        member.max_budget_in_team = req.max_budget_in_team.or(member.max_budget_in_team);
        team.members_with_roles.push(member);
    }
    team.updated_at_ms = gw.clock().now_ms();
    let team = gw
        .directory()
        .put_team(&req.team_id, team)
        .await
        .map_err(store_down)?;
    let added: Vec<&str> = new.iter().filter_map(|m| m.user_id.as_deref()).collect();
    let users = join_users(gw, &team.team_id, &added).await?;
    let mut users_out = Vec::with_capacity(users.len());
    for u in &users {
        users_out.push(user_with_spend(gw, u).await?);
    }
    let added_memberships: Vec<Value> = memberships(gw, &team)
        .await?
        .into_iter()
        .filter(|m| added.iter().any(|a| m["user_id"] == *a))
        .collect();
    let mut out = team_object(gw, &team).await?;
    out.insert("updated_users".into(), json!(users_out));
    out.insert(
        "updated_team_memberships".into(),
        Value::Array(added_memberships),
    );
    Ok(fields::ok(&out))
}

#[derive(Deserialize)]
struct DeleteBody {
    team_id: String,
    user_id: Option<String>,
    user_email: Option<String>,
}

/// Removes the member (by user id or email), the team from its user's `teams`, and, as
/// LiteLLM does, the keys its user holds on the team.
pub async fn delete(gw: &Gateway, body: &Bytes) -> Result<GatewayResponse, GatewayError> {
    let req: DeleteBody = fields::parse(body)?;
    if req.user_id.is_none() && req.user_email.is_none() {
        return Err(unprocessable(
            "user_id",
            "Either user_id or user_email needs to be passed in",
        ));
    }
    let mut team = load(gw, &req.team_id, "team_id").await?;
    let wanted = MemberIn {
        user_id: req.user_id.clone(),
        user_email: req.user_email.clone(),
        role: Default::default(),
        max_budget_in_team: None,
    };
    let (removed, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut team.members_with_roles)
        .into_iter()
        .partition(|m| {
            wanted.names(m) || (req.user_email.is_some() && m.user_email == req.user_email)
        });
    team.members_with_roles = kept;
    let mut users: Vec<String> = removed.iter().filter_map(|m| m.user_id.clone()).collect();
    if removed.is_empty() {
        users.extend(req.user_id.clone());
    }
    // A user record may still list the team after its roster entry went: that is removed too.
    let mut stale = false;
    for u in &users {
        stale |= leave(gw, &team.team_id, u).await?;
    }
    if removed.is_empty() && !stale {
        return Err(refused("user_id", "User not found in team"));
    }
    let dir = gw.directory();
    // Collected before the writes: an iterator whose closure borrows is not provably Send
    // across an await (the Lambda runtime needs it to be).
    let doomed: Vec<KeyRecord> = dir
        .list_keys()
        .await
        .map_err(store_down)?
        .into_iter()
        .filter(|k| {
            k.team_id.as_deref() == Some(&team.team_id)
                && k.user_id.as_ref().is_some_and(|u| users.contains(u))
        })
        .collect();
    for key in &doomed {
        delete_record(dir, key).await?;
    }
    team.updated_at_ms = gw.clock().now_ms();
    let team = dir.put_team(&req.team_id, team).await.map_err(store_down)?;
    Ok(fields::ok(&team_object(gw, &team).await?))
}

#[cfg(test)]
#[path = "team_members_tests.rs"]
mod tests;
