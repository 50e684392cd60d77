//! `/user/*`: internal users (new, info, update, delete, list), as LiteLLM's
//! `internal_user_endpoints.py` serves them.
//!
//! Proxy admins manage users; readers (`proxy_admin_viewer`) read any; any other key reads
//! its own user only. `/user/new` also makes the user's first key (`auto_create_key`) exactly
//! as `/key/generate` would, and `/user/delete` deletes the users' keys and memberships.

use bytes::Bytes;
use http::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use super::fields::{
    found, missing, new_uuid, not_found, ok, parse, query, query_u64, unprocessable,
};
use super::key_body::{caller_user, deny, KeyFields};
use super::keys::{create_key, delete_record};
use super::user_body::{TeamRef, UserFields};
use super::user_view::{
    new_user_response, rendered_keys, rendered_teams, user_object, user_spend, user_with_spend,
};
use super::{require_admin, require_reader};
use crate::error::GatewayError;
use crate::gateway::{Gateway, GatewayResponse};
use crate::identity::caller::store_down;
use crate::identity::records::Stamped;
use crate::identity::records::{KeyRecord, TeamMember, TeamRecord, TeamRole, UserRecord};
use crate::identity::{Caller, Directory};

#[cfg(test)]
#[path = "users_tests.rs"]
mod tests;

/// The answer to one of this family's routes, or `None` when `path` is not one.
pub async fn route(
    gw: &Gateway,
    caller: &Caller,
    method: &Method,
    path: &str,
    req: http::Request<Bytes>,
) -> Option<Result<GatewayResponse, GatewayError>> {
    Some(match (method, path) {
        (&Method::POST, "/user/new") => new_user(gw, caller, req.body()).await,
        (&Method::GET, "/user/info") => info(gw, caller, &req).await,
        (&Method::POST, "/user/update") => update(gw, caller, req.body()).await,
        (&Method::POST, "/user/delete") => delete(gw, caller, req.body()).await,
        (&Method::GET, "/user/list") => list(gw, caller, &req).await,
        _ => return None,
    })
}

async fn new_user(
    gw: &Gateway,
    caller: &Caller,
    body: &Bytes,
) -> Result<GatewayResponse, GatewayError> {
    require_admin(caller)?;
    let mut fields: UserFields = parse(body)?;
    let role = fields.check()?;
    let dir = gw.directory();
    let user_id = match KeyFields::given(&fields.user_id) {
        Some(id) => id.clone(),
        None => new_uuid(gw.entropy()),
    };
    if dir
        .user_fresh(&user_id)
        .await
        .map_err(store_down)?
        .is_some()
    {
        return Err(conflict(
            "user_id",
            format!("User with id {user_id} already exists"),
        ));
    }
    if let Some(email) = KeyFields::given(&fields.user_email) {
        email_is_free(dir, email, None).await?;
    }
    let mut joins: Vec<(TeamRef, &'static str)> = Vec::new();
    if let Some(team_id) = fields.team_id.take().filter(|t| !t.is_empty()) {
        joins.push((TeamRef::Id(team_id), "team_id"));
    }
    joins.extend(
        fields
            .teams
            .take()
            .unwrap_or_default()
            .into_iter()
            .map(|t| (t, "teams")),
    );
    for (team, param) in &joins {
        if dir
            .team_fresh(team.id())
            .await
            .map_err(store_down)?
            .is_none()
        {
            return Err(GatewayError::invalid_request(format!(
                "Team not found for team_id={}",
                team.id()
            ))
            .with_param(*param));
        }
    }
    let now = dir.now_ms();
    let mut user = UserRecord::created(&user_id, now);
    fields.apply(&mut user, role);
    user.teams = joins.iter().map(|(t, _)| t.id().to_string()).collect();
    user.teams.dedup();
    // The key first: its alias and duration are checked (and the alias claimed) before the
    // user exists, so a refused key leaves no half-made user behind. The key gets the user's
    // models, as LiteLLM's does, so the user's model list binds it.
    let key = match fields.auto_create_key {
        Some(false) => None,
        _ => {
            let key_fields = KeyFields {
                user_id: Some(Some(user_id.clone())),
                key_alias: Some(fields.key_alias.clone()),
                duration: Some(fields.duration.clone()),
                models: Some(Some(user.models.clone())),
                ..Default::default()
            };
            Some(create_key(gw, caller, key_fields).await?)
        }
    };
    let user = match dir.put_user(&user_id, user).await {
        Ok(user) => user,
        Err(e) => {
            if let Some(k) = &key {
                let _ = delete_record(dir, &k.record).await;
            }
            return Err(store_down(e));
        }
    };
    for (team, _) in &joins {
        join_team(dir, team, &user).await?;
    }
    Ok(ok(&new_user_response(&user, key.as_ref())))
}

/// A 409 for a user id or email already taken (LiteLLM's status for a duplicate user).
fn conflict(field: &str, message: String) -> GatewayError {
    GatewayError::invalid_request(message)
        .with_status(409)
        .with_param(field)
}

/// Emails are unique among users, compared without case (as LiteLLM compares them).
async fn email_is_free(
    dir: &Directory,
    email: &str,
    except: Option<&str>,
) -> Result<(), GatewayError> {
    let taken = dir
        .list_users()
        .await
        .map_err(store_down)?
        .into_iter()
        .any(|u| {
            Some(u.user_id.as_str()) != except
                && u.user_email
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(email.trim()))
        });
    if taken {
        return Err(conflict(
            "user_email",
            format!("User with email {email} already exists"),
        ));
    }
    Ok(())
}

/// Adds the user to the team's members (once).
async fn join_team(dir: &Directory, team: &TeamRef, user: &UserRecord) -> Result<(), GatewayError> {
    let Some(mut record) = dir.team_fresh(team.id()).await.map_err(store_down)? else {
        return Ok(());
    };
    if record.member(&user.user_id).is_some() {
        return Ok(());
    }
    let (role, max_budget_in_team) = match team {
        TeamRef::Id(_) => (TeamRole::User, None),
        TeamRef::Member {
            user_role,
            max_budget_in_team,
            ..
        } => (*user_role, *max_budget_in_team),
    };
    record.members_with_roles.push(TeamMember {
        user_id: Some(user.user_id.clone()),
        user_email: user.user_email.clone(),
        role,
        max_budget_in_team,
    });
    record.updated_at_ms = dir.now_ms();
    dir.put_team(team.id(), record).await.map_err(store_down)?;
    Ok(())
}

async fn info(
    gw: &Gateway,
    caller: &Caller,
    req: &http::Request<Bytes>,
) -> Result<GatewayResponse, GatewayError> {
    let asked = query(req, "user_id").filter(|u| !u.is_empty());
    let own = caller_user(caller);
    let dir = gw.directory();
    let user_id = match (asked, own) {
        (Some(id), _) if caller.may_read_all() || Some(id.as_str()) == own => id,
        (Some(id), _) => {
            return Err(deny(
                format!(
                    "key not allowed to access this user's info. user_id={id}, key's user_id={}",
                    own.unwrap_or("None")
                ),
                Some("user_id"),
            ))
        }
        // A reader without `user_id`: LiteLLM's admin view, every key and team.
        (None, _) if caller.may_read_all() => return admin_view(gw, own).await,
        (None, Some(own)) => own.to_string(),
        (None, None) => return Err(missing("user_id")),
    };
    let user = found(dir.user_fresh(&user_id).await, "User", &user_id, "user_id")?;
    let teams: Vec<TeamRecord> = dir
        .list_teams()
        .await
        .map_err(store_down)?
        .into_iter()
        .filter(|t| t.member(&user_id).is_some() || user.teams.contains(&t.team_id))
        .collect();
    let keys: Vec<KeyRecord> = dir
        .list_keys()
        .await
        .map_err(store_down)?
        .into_iter()
        .filter(|k| k.user_id.as_deref() == Some(user_id.as_str()))
        .collect();
    let spend = user_spend(gw, &user).await?;
    Ok(ok(&json!({
        "user_id": user_id,
        "user_info": user_object(&user, spend),
        "keys": rendered_keys(gw, &keys, &teams).await?,
        "teams": rendered_teams(gw, &teams).await?,
    })))
}

/// `/user/info` for a reader naming no user: every key and team, and the reader's own user.
async fn admin_view(gw: &Gateway, own: Option<&str>) -> Result<GatewayResponse, GatewayError> {
    let dir = gw.directory();
    let teams = dir.list_teams().await.map_err(store_down)?;
    let keys = dir.list_keys().await.map_err(store_down)?;
    let user_info = match own {
        Some(id) => match dir.user_fresh(id).await.map_err(store_down)? {
            Some(u) => Value::Object(user_with_spend(gw, &u).await?),
            None => Value::Null,
        },
        None => Value::Null,
    };
    Ok(ok(&json!({
        "user_id": own,
        "user_info": user_info,
        "keys": rendered_keys(gw, &keys, &teams).await?,
        "teams": rendered_teams(gw, &teams).await?,
    })))
}

async fn update(
    gw: &Gateway,
    caller: &Caller,
    body: &Bytes,
) -> Result<GatewayResponse, GatewayError> {
    require_admin(caller)?;
    let mut fields: UserFields = parse(body)?;
    let role = fields.check()?;
    let dir = gw.directory();
    let mut user = match (
        KeyFields::given(&fields.user_id),
        KeyFields::given(&fields.user_email),
    ) {
        (Some(id), _) => found(dir.user_fresh(id).await, "User", id, "user_id")?,
        // Without an id, the email names the user (and so is not changed).
        (None, Some(email)) => {
            let found = dir
                .list_users()
                .await
                .map_err(store_down)?
                .into_iter()
                .find(|u| {
                    u.user_email
                        .as_deref()
                        .is_some_and(|e| e.eq_ignore_ascii_case(email))
                });
            let found = found.ok_or_else(|| not_found("User", email).with_param("user_email"))?;
            fields.user_email = None;
            found
        }
        (None, None) => {
            return Err(unprocessable(
                "user_id",
                "Either user id or user email must be provided",
            ))
        }
    };
    if let Some(email) = KeyFields::given(&fields.user_email) {
        if user.user_email.as_deref() != Some(email.as_str()) {
            email_is_free(dir, email, Some(&user.user_id)).await?;
        }
    }
    fields.apply(&mut user, role);
    user.updated_at_ms = dir.now_ms();
    let id = user.user_id.clone();
    let user = dir.put_user(&id, user).await.map_err(store_down)?;
    let spend = user_spend(gw, &user).await?;
    Ok(ok(&user_object(&user, spend)))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DeleteBody {
    user_ids: Option<Vec<String>>,
}

async fn delete(
    gw: &Gateway,
    caller: &Caller,
    body: &Bytes,
) -> Result<GatewayResponse, GatewayError> {
    require_admin(caller)?;
    let ids = parse::<DeleteBody>(body)?.user_ids.unwrap_or_default();
    if ids.is_empty() {
        return Err(unprocessable("user_ids", "user_ids is required"));
    }
    let dir = gw.directory();
    // Every user is found before anything is deleted: an unknown id deletes nothing.
    let mut unknown = Vec::new();
    for id in &ids {
        if dir.user_fresh(id).await.map_err(store_down)?.is_none() {
            unknown.push(id.as_str());
        }
    }
    if !unknown.is_empty() {
        return Err(not_found("Users", &unknown.join(", ")).with_param("user_ids"));
    }
    let gone = |id: Option<&String>| id.is_some_and(|id| ids.contains(id));
    for key in dir.list_keys().await.map_err(store_down)? {
        if gone(key.user_id.as_ref()) {
            delete_record(dir, &key).await?;
        }
    }
    for mut team in dir.list_teams().await.map_err(store_down)? {
        let before = team.members_with_roles.len();
        team.members_with_roles
            .retain(|m| !gone(m.user_id.as_ref()));
        if team.members_with_roles.len() != before {
            team.updated_at_ms = dir.now_ms();
            let id = team.team_id.clone();
            dir.put_team(&id, team).await.map_err(store_down)?;
        }
    }
    let mut deleted = 0u64;
    for id in &ids {
        deleted += u64::from(dir.delete_user(id).await.map_err(store_down)?);
    }
    // LiteLLM answers with the number of users deleted.
    Ok(ok(&deleted))
}

async fn list(
    gw: &Gateway,
    caller: &Caller,
    req: &http::Request<Bytes>,
) -> Result<GatewayResponse, GatewayError> {
    require_reader(caller)?;
    let page = query_u64(req, "page")?.unwrap_or(1);
    if page == 0 {
        return Err(unprocessable("page", "page must be at least 1"));
    }
    let page_size = query_u64(req, "page_size")?.unwrap_or(25);
    if !(1..=100).contains(&page_size) {
        return Err(unprocessable(
            "page_size",
            "page_size must be between 1 and 100",
        ));
    }
    let role = query(req, "role").filter(|r| !r.is_empty());
    // One id matches as a substring, several exactly (as LiteLLM filters).
    let ids: Vec<String> = query(req, "user_ids")
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let email = query(req, "user_email").map(|e| e.to_lowercase());
    let team = query(req, "team").filter(|t| !t.is_empty());
    let dir = gw.directory();
    let mut users: Vec<UserRecord> = dir
        .list_users()
        .await
        .map_err(store_down)?
        .into_iter()
        .filter(|u| role.as_deref().is_none_or(|r| u.user_role.as_str() == r))
        .filter(|u| match ids.as_slice() {
            [] => true,
            [one] => u.user_id.to_lowercase().contains(&one.to_lowercase()),
            many => many.contains(&u.user_id),
        })
        .filter(|u| {
            email.as_deref().is_none_or(|e| {
                u.user_email
                    .as_deref()
                    .is_some_and(|ue| ue.to_lowercase().contains(e))
            })
        })
        .filter(|u| team.as_ref().is_none_or(|t| u.teams.contains(t)))
        .collect();
    // Newest first (LiteLLM's default order), ties by id.
    users.sort_by(|a, b| {
        b.created_at_ms
            .cmp(&a.created_at_ms)
            .then_with(|| a.user_id.cmp(&b.user_id))
    });
    let total = users.len() as u64;
    let start = usize::try_from((page - 1).saturating_mul(page_size)).unwrap_or(usize::MAX);
    let shown: Vec<UserRecord> = users
        .into_iter()
        .skip(start)
        .take(page_size as usize)
        .collect();
    let keys = dir.list_keys().await.map_err(store_down)?;
    let spends =
        futures_util::future::try_join_all(shown.iter().map(|u| user_spend(gw, u))).await?;
    let listed: Vec<Value> = shown
        .iter()
        .zip(spends)
        .map(|(u, s)| {
            let mut obj = user_object(u, s);
            let count = keys
                .iter()
                .filter(|k| k.user_id.as_deref() == Some(u.user_id.as_str()))
                .count();
            obj.insert("key_count".into(), json!(count));
            Value::Object(obj)
        })
        .collect();
    Ok(ok(&json!({
        "users": listed,
        "total": total,
        "page": page,
        "page_size": page_size,
        "total_pages": total.div_ceil(page_size),
    })))
}
