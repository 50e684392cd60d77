//! Keys as the admin API shows them, and to whom: the key object (LiteLLM's
//! `LiteLLM_VerificationToken`: times in ISO 8601, spend read from the key's counter for its
//! current budget period, the fields LiteLLM always has such as `aliases` and `permissions`
//! present though Tollgate keeps none) and the read routes, `/key/info` and `/key/list`.
//!
//! Only the token (SHA-256 hex) is ever shown: the raw key is in a response only where it is
//! handed out ([`generated`]).

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::fields::{found, missing, ok, query, query_u64, unprocessable};
use super::key_body::{caller_user, deny};
use crate::budget::{spend, Scope};
use crate::calendar::iso8601;
use crate::error::GatewayError;
use crate::gateway::{Gateway, GatewayResponse};
use crate::identity::caller::store_down;
use crate::identity::records::KeyRecord;
use crate::identity::{token, Caller};

/// A key's spend in its current budget period and when that period ends.
#[derive(Debug, Clone, Copy, Default)]
pub struct Spend {
    pub usd: f64,
    pub reset_at_ms: Option<u64>,
}

/// Reads the key's spend counter (a 503 when the Store is down: a figure we cannot read is
/// not reported as 0).
pub async fn key_spend(gw: &Gateway, rec: &KeyRecord) -> Result<Spend, GatewayError> {
    spend_of(
        gw,
        Scope::Key(rec.token.clone()),
        rec.budget.budget_duration.as_deref(),
    )
    .await
}

/// What `scope` has spent in the current period of `budget_duration`, and when it ends.
pub async fn spend_of(
    gw: &Gateway,
    scope: Scope,
    budget_duration: Option<&str>,
) -> Result<Spend, GatewayError> {
    let now = gw.clock().now_ms();
    let cal = gw.config().governance.calendar;
    let usd = spend::spent_usd(
        gw.directory().store().as_ref(),
        &scope,
        budget_duration,
        now,
        cal,
    )
    .await
    .map_err(store_down)?;
    Ok(Spend {
        usd,
        reset_at_ms: spend::reset_at_ms(budget_duration, now, cal),
    })
}

/// `active`, `expired` or `revoked` (blocked), as LiteLLM derives a key's status.
pub fn status(rec: &KeyRecord, now_ms: u64) -> &'static str {
    if rec.blocked {
        "revoked"
    } else if rec.is_expired(now_ms) {
        "expired"
    } else {
        "active"
    }
}

/// The key as LiteLLM's `/key/info`, `/key/list` and `/key/block` show it.
pub fn key_object(rec: &KeyRecord, spend: Spend) -> Map<String, Value> {
    let mut out = Map::new();
    // Fields this version does not know come first, so a known field always wins.
    for (k, v) in &rec.extra {
        out.insert(k.clone(), v.clone());
    }
    let known = json!({
        "token": rec.token,
        "key_name": rec.key_name,
        "key_alias": rec.key_alias,
        "spend": spend.usd,
        "max_budget": rec.budget.max_budget,
        "soft_budget": rec.budget.soft_budget,
        "budget_duration": rec.budget.budget_duration,
        "budget_reset_at": spend.reset_at_ms.map(iso8601),
        "expires": rec.expires_ms.map(iso8601),
        "duration": rec.duration,
        "models": rec.models,
        "user_id": rec.user_id,
        "team_id": rec.team_id,
        "budget_id": rec.budget_id,
        "tpm_limit": rec.limits.tpm_limit,
        "rpm_limit": rec.limits.rpm_limit,
        "max_parallel_requests": rec.limits.max_parallel_requests,
        "model_max_budget": rec.model_max_budget,
        "model_rpm_limit": rec.model_rpm_limit,
        "model_tpm_limit": rec.model_tpm_limit,
        "metadata": rec.metadata,
        "tags": rec.tags,
        "blocked": rec.blocked,
        "allowed_cache_controls": rec.allowed_cache_controls,
        "aliases": {},
        "config": {},
        "permissions": {},
        "model_spend": {},
        "soft_budget_cooldown": false,
        "created_at": iso8601(rec.created_at_ms),
        "updated_at": iso8601(rec.updated_at_ms),
        "created_by": rec.created_by,
        "updated_by": rec.updated_by,
    });
    if let Value::Object(known) = known {
        out.extend(known);
    }
    out
}

/// The key object with the key's spend read now.
pub async fn key_with_spend(
    gw: &Gateway,
    rec: &KeyRecord,
) -> Result<Map<String, Value>, GatewayError> {
    Ok(key_object(rec, key_spend(gw, rec).await?))
}

/// The answer to `/key/generate` and `/key/regenerate` (LiteLLM's `GenerateKeyResponse`):
/// the key object with the raw key in `key`, the only time it is ever shown.
pub fn generated(raw: &str, rec: &KeyRecord, spend: Spend) -> Value {
    let mut out = key_object(rec, spend);
    out.insert("key".into(), Value::String(raw.to_string()));
    out.insert("token_id".into(), Value::String(rec.token.clone()));
    Value::Object(out)
}

/// `GET /key/info?key=` (raw or token; without it, the caller's own key).
pub(super) async fn info(
    gw: &Gateway,
    caller: &Caller,
    req: &http::Request<Bytes>,
) -> Result<GatewayResponse, GatewayError> {
    let token = match query(req, "key").filter(|k| !k.is_empty()) {
        Some(key) => token::token_of(&key),
        // No `?key=`: the caller's own key.
        None => match caller.key() {
            Some(k) => k.key.token.clone(),
            None => return Err(missing("key")),
        },
    };
    let rec = found(gw.directory().key_fresh(&token).await, "Key", &token, "key")?;
    if !may_read(caller, &rec) {
        return Err(deny(
            format!(
                "You are not allowed to access this key's info. Your role={}",
                caller.role().as_str()
            ),
            Some("key"),
        ));
    }
    let mut info = key_with_spend(gw, &rec).await?;
    // LiteLLM drops the token from `info`; it is the `key` beside it. The raw key, even when
    // it was the query, is never echoed.
    info.remove("token");
    info.insert("status".into(), status(&rec, gw.clock().now_ms()).into());
    Ok(ok(&json!({ "key": token, "info": info })))
}

/// Readers see every key; any other key its own, and its own user's.
pub(super) fn may_read(caller: &Caller, rec: &KeyRecord) -> bool {
    if caller.may_read_all() {
        return true;
    }
    caller.key().is_some_and(|k| {
        k.key.token == rec.token || (rec.user_id.is_some() && rec.user_id == k.key.user_id)
    })
}

/// `GET /key/list`: `page`, `size`, filters `user_id`, `team_id`, `key_alias`; tokens, or
/// key objects with `return_full_object=true`.
pub(super) async fn list(
    gw: &Gateway,
    caller: &Caller,
    req: &http::Request<Bytes>,
) -> Result<GatewayResponse, GatewayError> {
    let page = query_u64(req, "page")?.unwrap_or(1);
    if page == 0 {
        return Err(unprocessable("page", "page must be at least 1"));
    }
    let size = query_u64(req, "size")?.unwrap_or(10);
    if !(1..=100).contains(&size) {
        return Err(unprocessable("size", "size must be between 1 and 100"));
    }
    let full = match query(req, "return_full_object").as_deref() {
        None | Some("false") | Some("False") | Some("0") => false,
        Some("true") | Some("True") | Some("1") => true,
        Some(_) => {
            return Err(unprocessable(
                "return_full_object",
                "return_full_object must be true or false",
            ))
        }
    };
    let mut user_id = query(req, "user_id").filter(|s| !s.is_empty());
    let team_id = query(req, "team_id").filter(|s| !s.is_empty());
    let key_alias = query(req, "key_alias").filter(|s| !s.is_empty());
    let dir = gw.directory();
    if !caller.may_read_all() {
        user_id = Some(own_listing_scope(gw, caller, user_id, team_id.as_deref()).await?);
    }
    let mut keys: Vec<KeyRecord> = dir
        .list_keys()
        .await
        .map_err(store_down)?
        .into_iter()
        .filter(|k| user_id.is_none() || k.user_id == user_id)
        .filter(|k| team_id.is_none() || k.team_id == team_id)
        .filter(|k| key_alias.is_none() || k.key_alias == key_alias)
        .collect();
    // Newest first, ties by token, as LiteLLM orders its listing.
    keys.sort_by(|a, b| {
        b.created_at_ms
            .cmp(&a.created_at_ms)
            .then_with(|| b.token.cmp(&a.token))
    });
    let total = keys.len() as u64;
    let start = usize::try_from((page - 1).saturating_mul(size)).unwrap_or(usize::MAX);
    let shown: Vec<KeyRecord> = keys.into_iter().skip(start).take(size as usize).collect();
    let listed: Vec<Value> = if full {
        let spends =
            futures_util::future::try_join_all(shown.iter().map(|k| key_spend(gw, k))).await?;
        shown
            .iter()
            .zip(spends)
            .map(|(k, s)| Value::Object(key_object(k, s)))
            .collect()
    } else {
        shown.into_iter().map(|k| Value::String(k.token)).collect()
    };
    Ok(ok(&json!({
        "keys": listed,
        "total_count": total,
        "current_page": page,
        "total_pages": total.div_ceil(size),
    })))
}

/// A caller that may not read everything lists its own user's keys only: another `user_id`
/// is a 403, and a `team_id` must be a team it belongs to. The user id to list.
async fn own_listing_scope(
    gw: &Gateway,
    caller: &Caller,
    asked: Option<String>,
    team_id: Option<&str>,
) -> Result<String, GatewayError> {
    let Some(own) = caller_user(caller) else {
        return Err(deny(
            "You are not authorized to list keys: no user_id is associated with this key.",
            Some("user_id"),
        ));
    };
    if asked.as_deref().is_some_and(|u| u != own) {
        return Err(deny(
            "You are not authorized to check another user's keys.",
            Some("user_id"),
        ));
    }
    if let Some(team_id) = team_id {
        let team = gw.directory().team(team_id).await.map_err(store_down)?;
        let member = team.is_some_and(|t| t.member(own).is_some());
        if !member {
            return Err(deny(
                "You are not authorized to check this team's keys.",
                Some("team_id"),
            ));
        }
    }
    Ok(own.to_string())
}
