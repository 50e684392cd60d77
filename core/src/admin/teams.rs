//! `/team/*`: teams and their members (new, info, update, delete, list, member_add,
//! member_delete, block, unblock), as LiteLLM's team endpoints.
//!
//! Proxy admins change teams; proxy admins and viewers read them; any other key may read
//! `/team/info` of a team it belongs to (its key's team, its user's `teams`, or a roster that
//! names its user) and nothing else. A blocked team's keys are refused at authentication
//! (`identity::caller`). A user record lists its teams (`teams`), kept in step with the roster
//! here when the user exists.

use bytes::Bytes;
use http::Method;
use serde::Deserialize;
use serde_json::json;

use super::fields::{
    self, check_soft_below_max, found, given, method_not_allowed, new_uuid, not_found, refused,
    required,
};
use super::{require_admin, require_reader};
use crate::error::{ErrorKind, GatewayError, Origin};
use crate::gateway::{Gateway, GatewayResponse};
use crate::identity::caller::store_down;
use crate::identity::records::Stamped;
use crate::identity::records::{KeyRecord, TeamRecord, UserRecord};
use crate::identity::Caller;

use super::keys::delete_record;
use super::render_key::key_with_spend;
use super::team_body::{MemberIn, TeamBody};
use super::team_members;
use super::team_view::{memberships, team_info, team_object};

/// The answer to one of this family's routes, or `None` when `path` is not one.
pub async fn route(
    gateway: &Gateway,
    caller: &Caller,
    method: &Method,
    path: &str,
    req: http::Request<Bytes>,
) -> Option<Result<GatewayResponse, GatewayError>> {
    let action = path.strip_prefix("/team/")?;
    let expected = match action {
        "info" | "list" => Method::GET,
        "new" | "update" | "delete" | "member_add" | "member_delete" | "block" | "unblock" => {
            Method::POST
        }
        _ => return None,
    };
    if method != expected {
        return Some(Err(method_not_allowed(path)));
    }
    let body = req.body();
    Some(match action {
        "info" => info(gateway, caller, &req).await,
        "list" => list(gateway, caller, &req).await,
        // Every other route changes something: proxy admins only.
        _ => match require_admin(caller) {
            Err(e) => Err(e),
            Ok(()) => match action {
                "new" => new(gateway, body).await,
                "update" => update(gateway, body).await,
                "delete" => delete(gateway, body).await,
                "member_add" => team_members::add(gateway, body).await,
                "member_delete" => team_members::delete(gateway, body).await,
                "block" => block(gateway, body, true).await,
                _ => block(gateway, body, false).await,
            },
        },
    })
}

/// The team as the Store has it now, or a 404 naming `param`.
pub(super) async fn load(gw: &Gateway, id: &str, param: &str) -> Result<TeamRecord, GatewayError> {
    found(gw.directory().team_fresh(id).await, "Team", id, param)
}

/// Adds `team_id` to the `teams` of each of `user_ids` that has a user record; the users.
/// A slice, not an iterator: an iterator adapter held across the awaits here is not provably
/// Send for every lifetime (rustc's higher-ranked check), which the Lambda runtime needs.
pub(super) async fn join_users(
    gw: &Gateway,
    team_id: &str,
    user_ids: &[&str],
) -> Result<Vec<UserRecord>, GatewayError> {
    let dir = gw.directory();
    let mut users = Vec::new();
    for &id in user_ids {
        let Some(mut user) = dir.user_fresh(id).await.map_err(store_down)? else {
            continue;
        };
        if !user.teams.iter().any(|t| t == team_id) {
            user.teams.push(team_id.to_string());
            user.updated_at_ms = gw.clock().now_ms();
            dir.put_user(id, user.clone()).await.map_err(store_down)?;
        }
        users.push(user);
    }
    Ok(users)
}

/// Removes `team_id` from the user's `teams`; whether the user had it.
pub(super) async fn leave(
    gw: &Gateway,
    team_id: &str,
    user_id: &str,
) -> Result<bool, GatewayError> {
    let dir = gw.directory();
    let Some(mut user) = dir.user_fresh(user_id).await.map_err(store_down)? else {
        return Ok(false);
    };
    let before = user.teams.len();
    user.teams.retain(|t| t != team_id);
    if user.teams.len() == before {
        return Ok(false);
    }
    user.updated_at_ms = gw.clock().now_ms();
    dir.put_user(user_id, user).await.map_err(store_down)?;
    Ok(true)
}

/// Fills in the user id of members given by email only, when a user has that email.
pub(super) async fn resolve_emails(
    gw: &Gateway,
    members: &mut [MemberIn],
) -> Result<(), GatewayError> {
    if members.iter().all(|m| m.user_id.is_some()) {
        return Ok(());
    }
    let users = gw.directory().list_users().await.map_err(store_down)?;
    for m in members.iter_mut().filter(|m| m.user_id.is_none()) {
        m.user_id = users
            .iter()
            .find(|u| u.user_email.is_some() && u.user_email == m.user_email)
            .map(|u| u.user_id.clone());
    }
    Ok(())
}

async fn new(gw: &Gateway, body: &Bytes) -> Result<GatewayResponse, GatewayError> {
    let mut req: TeamBody = fields::parse(body)?;
    req.validate()?;
    let id = match given(&req.team_id) {
        Some(id) => id.to_string(),
        None => new_uuid(gw.entropy()),
    };
    let dir = gw.directory();
    if dir.team_fresh(&id).await.map_err(store_down)?.is_some() {
        return Err(refused(
            "team_id",
            format!("Team id = {id} already exists. Please use a different team id."),
        ));
    }
    if let Some(members) = req.members_with_roles.as_mut() {
        resolve_emails(gw, members).await?;
    }
    let now = gw.clock().now_ms();
    let mut team = TeamRecord::created(&id, now);
    req.apply(&mut team, true);
    let team = dir.put_team(&id, team).await.map_err(store_down)?;
    // Collected first: an iterator whose closure borrows is not provably Send across an
    // await (a higher-ranked lifetime), which the Lambda runtime needs.
    let user_ids: Vec<&str> = team
        .members_with_roles
        .iter()
        .filter_map(|m| m.user_id.as_deref())
        .collect();
    join_users(gw, &id, &user_ids).await?;
    Ok(fields::ok(&team_object(gw, &team).await?))
}

/// Whether a caller that may not read everything belongs to team `id`.
fn belongs(caller: &Caller, id: &str, team: Option<&TeamRecord>) -> bool {
    let Some(k) = caller.key() else {
        return false;
    };
    k.key.team_id.as_deref() == Some(id)
        || k.user
            .as_ref()
            .is_some_and(|u| u.teams.iter().any(|t| t == id))
        || k.key
            .user_id
            .as_deref()
            .is_some_and(|u| team.is_some_and(|t| t.member(u).is_some()))
}

async fn info(
    gw: &Gateway,
    caller: &Caller,
    req: &http::Request<Bytes>,
) -> Result<GatewayResponse, GatewayError> {
    let Some(id) = fields::query(req, "team_id") else {
        return Err(required("team_id"));
    };
    let team = gw.directory().team(&id).await.map_err(store_down)?;
    // Checked before the 404, so a key outside the team learns nothing of which teams exist.
    if !caller.may_read_all() && !belongs(caller, &id, team.as_deref()) {
        return Err(GatewayError::new(
            ErrorKind::PermissionDenied,
            format!(
                "This key may only read the teams it belongs to; its role is {}.",
                caller.role().as_str()
            ),
        )
        .with_origin(Origin::Policy)
        .with_code("forbidden")
        .with_param("team_id"));
    }
    let Some(team) = team else {
        return Err(not_found("Team", &id).with_param("team_id"));
    };
    let keys: Vec<_> = gw
        .directory()
        .list_keys()
        .await
        .map_err(store_down)?
        .into_iter()
        .filter(|k| k.team_id.as_deref() == Some(&id))
        .collect();
    Ok(fields::ok(&team_info(gw, &team, &keys).await?))
}

async fn list(
    gw: &Gateway,
    caller: &Caller,
    req: &http::Request<Bytes>,
) -> Result<GatewayResponse, GatewayError> {
    require_reader(caller)?;
    let user = fields::query(req, "user_id");
    let dir = gw.directory();
    let mut teams: Vec<TeamRecord> = dir
        .list_teams()
        .await
        .map_err(store_down)?
        .into_iter()
        .filter(|t| user.as_deref().is_none_or(|u| t.member(u).is_some()))
        .collect();
    teams.sort_by(|a, b| (&a.team_alias, &a.team_id).cmp(&(&b.team_alias, &b.team_id)));
    let keys = dir.list_keys().await.map_err(store_down)?;
    let mut out = Vec::with_capacity(teams.len());
    for team in &teams {
        let mut object = team_object(gw, team).await?;
        let mine: Vec<&KeyRecord> = keys
            .iter()
            .filter(|k| k.team_id.as_deref() == Some(&team.team_id))
            .collect();
        let mut team_keys = Vec::new();
        for k in mine {
            team_keys.push(key_with_spend(gw, k).await?);
        }
        object.insert("keys".into(), json!(team_keys));
        object.insert(
            "team_memberships".into(),
            json!(memberships(gw, team).await?),
        );
        out.push(object);
    }
    Ok(fields::ok(&out))
}

async fn update(gw: &Gateway, body: &Bytes) -> Result<GatewayResponse, GatewayError> {
    let req: TeamBody = fields::parse(body)?;
    let Some(id) = given(&req.team_id) else {
        return Err(required("team_id"));
    };
    req.validate()?;
    let mut team = load(gw, id, "team_id").await?;
    req.apply(&mut team, false);
    check_soft_below_max(team.budget.soft_budget, team.budget.max_budget)?;
    team.updated_at_ms = gw.clock().now_ms();
    let team = gw
        .directory()
        .put_team(id, team)
        .await
        .map_err(store_down)?;
    Ok(fields::ok(&json!({
        "team_id": team.team_id,
        "data": team_object(gw, &team).await?,
    })))
}

#[derive(Deserialize)]
struct DeleteBody {
    team_ids: Vec<String>,
}

/// Deletes the teams and, as LiteLLM does, every key of theirs; members' users no longer list
/// them. Every id must exist, or nothing is deleted.
async fn delete(gw: &Gateway, body: &Bytes) -> Result<GatewayResponse, GatewayError> {
    let mut req: DeleteBody = fields::parse(body)?;
    let mut seen = std::collections::HashSet::new();
    req.team_ids.retain(|id| seen.insert(id.clone()));
    let mut teams = Vec::with_capacity(req.team_ids.len());
    let mut missing = Vec::new();
    for id in &req.team_ids {
        match gw.directory().team_fresh(id).await.map_err(store_down)? {
            Some(t) => teams.push(t),
            None => missing.push(id.as_str()),
        }
    }
    if !missing.is_empty() {
        return Err(not_found("Team", &missing.join(", ")).with_param("team_ids"));
    }
    let dir = gw.directory();
    let keys = dir.list_keys().await.map_err(store_down)?;
    for team in &teams {
        let doomed: Vec<&KeyRecord> = keys
            .iter()
            .filter(|k| k.team_id.as_deref() == Some(&team.team_id))
            .collect();
        for key in doomed {
            delete_record(dir, key).await?;
        }
        let members: Vec<&str> = team
            .members_with_roles
            .iter()
            .filter_map(|m| m.user_id.as_deref())
            .collect();
        for user in members {
            leave(gw, &team.team_id, user).await?;
        }
        dir.delete_team(&team.team_id).await.map_err(store_down)?;
    }
    Ok(fields::ok(&json!({ "deleted_teams": req.team_ids })))
}

#[derive(Deserialize)]
struct BlockBody {
    team_id: String,
}

async fn block(gw: &Gateway, body: &Bytes, blocked: bool) -> Result<GatewayResponse, GatewayError> {
    let req: BlockBody = fields::parse(body)?;
    let mut team = load(gw, &req.team_id, "team_id").await?;
    team.blocked = blocked;
    team.updated_at_ms = gw.clock().now_ms();
    let team = gw
        .directory()
        .put_team(&req.team_id, team)
        .await
        .map_err(store_down)?;
    Ok(fields::ok(&team_object(gw, &team).await?))
}

#[cfg(test)]
#[path = "team_access_tests.rs"]
mod access_tests;
#[cfg(test)]
#[path = "teams_tests.rs"]
mod tests;
