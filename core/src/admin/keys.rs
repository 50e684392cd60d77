//! `/key/*`: virtual keys (generate, update, delete, info, list, regenerate, block, unblock),
//! as LiteLLM's `key_management_endpoints.py` serves them.
//!
//! Who may do what: proxy admins (the master key, a `proxy_admin` user's key) everything;
//! `proxy_admin_viewer` reads everything and changes nothing; an `internal_user` may generate
//! keys for itself; any key may read its own info and its user's keys. Keys are stored only as
//! their token: the raw key is in the generate / regenerate answer and nowhere else.

use std::sync::Arc;

use bytes::Bytes;
use http::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use super::fields::{found, not_found, ok, parse, unprocessable};
use super::key_body::{
    actor, authorize_generate, check_custom, check_references, claim, release_if_held, KeyFields,
};
use super::render_key::{generated, info, key_spend, key_with_spend, list};
use super::require_admin;
use crate::budget::scope::counter;
use crate::budget::{Duration, Scope};
use crate::error::GatewayError;
use crate::gateway::{Gateway, GatewayResponse};
use crate::identity::caller::store_down;
use crate::identity::records::{store_key, KeyRecord};
use crate::identity::{token, Caller, Directory};

#[cfg(test)]
#[path = "keys_tests.rs"]
pub(super) mod tests;

/// The answer to one of this family's routes, or `None` when `path` is not one.
pub async fn route(
    gw: &Gateway,
    caller: &Caller,
    method: &Method,
    path: &str,
    req: http::Request<Bytes>,
) -> Option<Result<GatewayResponse, GatewayError>> {
    let body = req.body();
    Some(match (method, path) {
        (&Method::POST, "/key/generate") => generate(gw, caller, body).await,
        (&Method::POST, "/key/update") => update(gw, caller, body).await,
        (&Method::POST, "/key/delete") => delete(gw, caller, body).await,
        (&Method::GET, "/key/info") => info(gw, caller, &req).await,
        (&Method::GET, "/key/list") => list(gw, caller, &req).await,
        (&Method::POST, "/key/block") => block(gw, caller, body, true).await,
        (&Method::POST, "/key/unblock") => block(gw, caller, body, false).await,
        (&Method::POST, "/key/regenerate") => regenerate(gw, caller, None, body).await,
        (&Method::POST, p) => {
            let key = p
                .strip_prefix("/key/")
                .and_then(|rest| rest.strip_suffix("/regenerate"))
                .filter(|k| !k.is_empty() && !k.contains('/'))?;
            regenerate(gw, caller, Some(key), body).await
        }
        _ => return None,
    })
}

/// A key just made: the raw key (shown once) and its record.
pub(super) struct NewKey {
    pub raw: String,
    pub record: Arc<KeyRecord>,
}

async fn generate(
    gw: &Gateway,
    caller: &Caller,
    body: &Bytes,
) -> Result<GatewayResponse, GatewayError> {
    let made = create_key(gw, caller, parse(body)?).await?;
    let spend = key_spend(gw, &made.record).await?;
    Ok(ok(&generated(&made.raw, &made.record, spend)))
}

/// Makes a key as `/key/generate` does (also `/user/new`'s key): checks the body and the
/// caller's right to it, claims the alias, stores the record under the token.
pub(super) async fn create_key(
    gw: &Gateway,
    caller: &Caller,
    mut fields: KeyFields,
) -> Result<NewKey, GatewayError> {
    fields.check()?;
    authorize_generate(gw, caller, &mut fields).await?;
    let dir = gw.directory();
    let raw = match KeyFields::given(&fields.key) {
        Some(custom) => {
            check_custom(gw, custom, "key")?;
            custom.clone()
        }
        None => token::generate(gw.entropy()),
    };
    let token = token::hash(&raw);
    if dir.key_fresh(&token).await.map_err(store_down)?.is_some() {
        return Err(GatewayError::invalid_request("This key already exists.").with_param("key"));
    }
    check_references(dir, &fields).await?;
    let now = dir.now_ms();
    let mut rec = KeyRecord {
        token: token.clone(),
        key_name: token::display_name(&raw),
        created_at_ms: now,
        updated_at_ms: now,
        created_by: actor(caller),
        updated_by: actor(caller),
        ..Default::default()
    };
    fields.apply(&mut rec, now);
    if let Some(alias) = &rec.key_alias {
        claim(dir, alias, &token).await?;
    }
    let alias = rec.key_alias.clone();
    match dir.put_key(&token, rec).await {
        Ok(record) => Ok(NewKey { raw, record }),
        Err(e) => {
            if let Some(alias) = alias {
                let _ = release_if_held(dir, &alias, &token).await;
            }
            Err(store_down(e))
        }
    }
}

async fn update(
    gw: &Gateway,
    caller: &Caller,
    body: &Bytes,
) -> Result<GatewayResponse, GatewayError> {
    require_admin(caller)?;
    let mut fields: KeyFields = parse(body)?;
    fields.check()?;
    let dir = gw.directory();
    // `key` names the key; without it `key_alias` does (and then is not a rename).
    let token = match KeyFields::given(&fields.key) {
        Some(key) => token::token_of(key),
        None => match KeyFields::given(&fields.key_alias).cloned() {
            Some(alias) => {
                fields.key_alias = None;
                found(
                    dir.alias_token(&alias).await,
                    "Key with alias",
                    &alias,
                    "key_alias",
                )?
            }
            None => {
                return Err(unprocessable(
                    "key",
                    "either key or key_alias must be provided",
                ))
            }
        },
    };
    let mut rec = found(dir.key_fresh(&token).await, "Key", &token, "key")?;
    check_references(dir, &fields).await?;
    let old_alias = rec.key_alias.clone();
    let now = dir.now_ms();
    fields.apply(&mut rec, now);
    rec.updated_at_ms = now;
    rec.updated_by = actor(caller);
    let new_alias = rec.key_alias.clone();
    let renamed = new_alias != old_alias;
    if let (true, Some(alias)) = (renamed, &new_alias) {
        claim(dir, alias, &token).await?;
    }
    let rec = match dir.put_key(&token, rec).await {
        Ok(rec) => rec,
        Err(e) => {
            if let (true, Some(alias)) = (renamed, &new_alias) {
                let _ = release_if_held(dir, alias, &token).await;
            }
            return Err(store_down(e));
        }
    };
    if let (true, Some(old)) = (renamed, &old_alias) {
        release_if_held(dir, old, &token).await?;
    }
    let mut out = key_with_spend(gw, &rec).await?;
    out.insert("key".into(), Value::String(token));
    Ok(ok(&out))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DeleteBody {
    keys: Option<Vec<String>>,
    key_aliases: Option<Vec<String>>,
}

async fn delete(
    gw: &Gateway,
    caller: &Caller,
    body: &Bytes,
) -> Result<GatewayResponse, GatewayError> {
    require_admin(caller)?;
    let req: DeleteBody = parse(body)?;
    let (keys, aliases) = (
        req.keys.unwrap_or_default(),
        req.key_aliases.unwrap_or_default(),
    );
    if keys.is_empty() && aliases.is_empty() {
        return Err(unprocessable(
            "keys",
            "At least one of 'keys' or 'key_aliases' must be provided.",
        ));
    }
    let dir = gw.directory();
    // Everything is found before anything is deleted: an unknown key deletes nothing.
    let mut found: Vec<KeyRecord> = Vec::new();
    let mut unknown: Vec<&str> = Vec::new();
    for given in &keys {
        match dir
            .key_fresh(&token::token_of(given))
            .await
            .map_err(store_down)?
        {
            Some(rec) => found.push(rec),
            None => unknown.push(given),
        }
    }
    for alias in &aliases {
        let rec = match dir.alias_token(alias).await.map_err(store_down)? {
            Some(t) => dir.key_fresh(&t).await.map_err(store_down)?,
            None => None,
        };
        match rec {
            Some(rec) => found.push(rec),
            None => unknown.push(alias),
        }
    }
    if !unknown.is_empty() {
        let param = if keys.iter().any(|k| unknown.contains(&k.as_str())) {
            "keys"
        } else {
            "key_aliases"
        };
        return Err(not_found("Keys", &unknown.join(", ")).with_param(param));
    }
    for rec in &found {
        delete_record(dir, rec).await?;
    }
    Ok(ok(
        &json!({ "deleted_keys": keys.iter().chain(&aliases).collect::<Vec<_>>() }),
    ))
}

/// Removes a key and frees its alias (also `/user/delete`'s keys).
pub(super) async fn delete_record(dir: &Directory, rec: &KeyRecord) -> Result<(), GatewayError> {
    dir.delete_key(&rec.token).await.map_err(store_down)?;
    if let Some(alias) = &rec.key_alias {
        release_if_held(dir, alias, &rec.token).await?;
    }
    Ok(())
}

/// `/key/regenerate` and `/key/{key}/regenerate`: a new raw key for the same record (with any
/// fields the body changes), stored under the new token; the old token stops working at once.
async fn regenerate(
    gw: &Gateway,
    caller: &Caller,
    path_key: Option<&str>,
    body: &Bytes,
) -> Result<GatewayResponse, GatewayError> {
    require_admin(caller)?;
    let mut fields: KeyFields = parse(body)?;
    fields.check()?;
    let Some(given) = path_key
        .map(str::to_string)
        .or_else(|| KeyFields::given(&fields.key).cloned())
    else {
        return Err(unprocessable("key", "key is required"));
    };
    // `key` names the key to regenerate here, never a custom new one (that is `new_key`).
    fields.key = None;
    let dir = gw.directory();
    let old_token = token::token_of(&given);
    let old = found(dir.key_fresh(&old_token).await, "Key", &old_token, "key")?;
    check_references(dir, &fields).await?;
    let raw = match KeyFields::given(&fields.new_key) {
        Some(custom) => {
            check_custom(gw, custom, "new_key")?;
            custom.clone()
        }
        None => token::generate(gw.entropy()),
    };
    let new_token = token::hash(&raw);
    if new_token == old_token
        || dir
            .key_fresh(&new_token)
            .await
            .map_err(store_down)?
            .is_some()
    {
        return Err(GatewayError::invalid_request("new_key already exists.").with_param("new_key"));
    }
    let now = dir.now_ms();
    let mut rec = old.clone();
    rec.token = new_token.clone();
    rec.key_name = token::display_name(&raw);
    fields.apply(&mut rec, now);
    rec.updated_at_ms = now;
    rec.updated_by = actor(caller);
    let kept_alias = rec.key_alias.is_some() && rec.key_alias == old.key_alias;
    if let (false, Some(alias)) = (kept_alias, &rec.key_alias) {
        claim(dir, alias, &new_token).await?;
    }
    let rec = dir.put_key(&new_token, rec).await.map_err(store_down)?;
    match (&old.key_alias, kept_alias) {
        // The claim moves to the new token (overwritten, so no other key can take it between).
        (Some(alias), true) => dir
            .store()
            .put(&store_key::key_alias(alias), new_token.as_bytes(), None)
            .await
            .map_err(store_down)?,
        (Some(alias), false) => release_if_held(dir, alias, &old_token).await?,
        (None, _) => {}
    }
    carry_spend(gw, &old, &rec).await?;
    dir.delete_key(&old_token).await.map_err(store_down)?;
    let spend = key_spend(gw, &rec).await?;
    Ok(ok(&generated(&raw, &rec, spend)))
}

/// Spend counters are keyed by token, so a regenerated key takes the old key's spend in the
/// current periods with it (the key's and each model budget's): regenerating a key must not
/// reset its budget. LiteLLM keeps spend on the row, which regeneration keeps.
async fn carry_spend(gw: &Gateway, old: &KeyRecord, new: &KeyRecord) -> Result<(), GatewayError> {
    let store = gw.directory().store();
    let now = gw.clock().now_ms();
    let cal = gw.config().governance.calendar;
    let mut moves = vec![(
        Scope::Key(old.token.clone()),
        Scope::Key(new.token.clone()),
        old.budget.budget_duration.clone(),
        new.budget.budget_duration.clone(),
    )];
    for (model, budget) in &old.model_max_budget {
        let Some(kept) = new.model_max_budget.get(model) else {
            continue;
        };
        let scope = |token: &str| Scope::KeyModel {
            token: token.to_string(),
            model: model.clone(),
        };
        moves.push((
            scope(&old.token),
            scope(&new.token),
            budget.period().map(str::to_string),
            kept.period().map(str::to_string),
        ));
    }
    for (from, to, from_period, to_period) in moves {
        let parse = |p: Option<String>| p.as_deref().and_then(Duration::parse);
        let (from_key, _) = counter(&from, parse(from_period), now, cal);
        let spent = store.counter_get(&from_key).await.map_err(store_down)?;
        if spent > 0 {
            let (to_key, ttl) = counter(&to, parse(to_period), now, cal);
            store
                .counter_add(&to_key, spent, ttl)
                .await
                .map_err(store_down)?;
        }
    }
    Ok(())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct BlockBody {
    key: Option<String>,
}

async fn block(
    gw: &Gateway,
    caller: &Caller,
    body: &Bytes,
    blocked: bool,
) -> Result<GatewayResponse, GatewayError> {
    require_admin(caller)?;
    let req: BlockBody = parse(body)?;
    let Some(key) = req.key.filter(|k| !k.is_empty()) else {
        return Err(unprocessable("key", "key is required"));
    };
    let dir = gw.directory();
    let token = token::token_of(&key);
    let mut rec = found(dir.key_fresh(&token).await, "Key", &token, "key")?;
    rec.blocked = blocked;
    rec.updated_at_ms = dir.now_ms();
    rec.updated_by = actor(caller);
    let rec = dir.put_key(&token, rec).await.map_err(store_down)?;
    Ok(ok(&key_with_spend(gw, &rec).await?))
}
