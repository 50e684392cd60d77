//! `/customer/*` (and `/end_user/*`, LiteLLM's older name for the same routes): end users, the
//! `user` of a request (new, info, update, delete, list, block, unblock).
//!
//! An end user's limits come from its shared budget (`budget_id`) when it names one that
//! exists, else from its own fields; `litellm_budget_table` in its wire object shows the one
//! in force. Proxy admins change end users; proxy admins and viewers read them.

use bytes::Bytes;
use http::Method;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::budgets::budget_object;
use super::customer_body::CustomerBody;
use super::fields::{
    self, check_soft_below_max, found, given, method_not_allowed, not_found, refused, required,
    reset_at, spent, usd, wire, with_nulls,
};
use super::{require_admin, require_reader};
use crate::budget::Scope;
use crate::error::GatewayError;
use crate::gateway::{Gateway, GatewayResponse};
use crate::identity::caller::store_down;
use crate::identity::records::CustomerRecord;
use crate::identity::records::Stamped;
use crate::identity::Caller;

/// The answer to one of this family's routes, or `None` when `path` is not one.
pub async fn route(
    gateway: &Gateway,
    caller: &Caller,
    method: &Method,
    path: &str,
    req: http::Request<Bytes>,
) -> Option<Result<GatewayResponse, GatewayError>> {
    let action = path
        .strip_prefix("/customer/")
        .or_else(|| path.strip_prefix("/end_user/"))?;
    let expected = match action {
        "info" | "list" => Method::GET,
        "new" | "update" | "delete" | "block" | "unblock" => Method::POST,
        _ => return None,
    };
    if method != expected {
        return Some(Err(method_not_allowed(path)));
    }
    let body = req.body();
    Some(match action {
        "new" => new(gateway, caller, body).await,
        "info" => info(gateway, caller, &req).await,
        "list" => list(gateway, caller).await,
        "update" => update(gateway, caller, body).await,
        "delete" => delete(gateway, caller, body).await,
        "block" => block(gateway, caller, body, true).await,
        _ => block(gateway, caller, body, false).await,
    })
}

/// An end user as LiteLLM's `LiteLLM_EndUserTable` reads: spend in the current period of the
/// budget in force, and that budget as `litellm_budget_table`.
pub async fn customer_object(
    gw: &Gateway,
    rec: &CustomerRecord,
) -> Result<Map<String, Value>, GatewayError> {
    let shared = match &rec.budget_id {
        Some(id) => gw.directory().budget(id).await.map_err(store_down)?,
        None => None,
    };
    let (table, duration) = match &shared {
        Some(b) => (
            Value::Object(budget_object(gw, b)),
            b.budget.budget_duration.clone(),
        ),
        None if rec.budget != Default::default() || rec.limits != Default::default() => {
            let own = &rec.budget.budget_duration;
            let mut t = wire(&rec.budget);
            t.extend(wire(&rec.limits));
            t.insert("budget_id".into(), Value::Null);
            t.insert("budget_reset_at".into(), reset_at(gw, own.as_deref()));
            with_nulls(&mut t, BUDGET_FIELDS);
            (Value::Object(t), own.clone())
        }
        None => (Value::Null, None),
    };
    let spend = spent(
        gw,
        &Scope::EndUser(rec.user_id.clone()),
        duration.as_deref(),
    )
    .await?;
    let mut m = wire(rec);
    for f in BUDGET_FIELDS {
        m.remove(*f);
    }
    m.insert("spend".into(), usd(spend));
    m.insert("litellm_budget_table".into(), table);
    with_nulls(
        &mut m,
        &[
            "alias",
            "allowed_model_region",
            "default_model",
            "budget_id",
        ],
    );
    Ok(m)
}

const BUDGET_FIELDS: &[&str] = &[
    "max_budget",
    "soft_budget",
    "budget_duration",
    "tpm_limit",
    "rpm_limit",
    "max_parallel_requests",
];

async fn new(gw: &Gateway, caller: &Caller, body: &Bytes) -> Result<GatewayResponse, GatewayError> {
    require_admin(caller)?;
    let req: CustomerBody = fields::parse(body)?;
    let Some(id) = given(&req.user_id) else {
        return Err(required("user_id"));
    };
    req.validate_new(gw.config())?;
    check_budget_exists(gw, &req).await?;
    let dir = gw.directory();
    if dir.customer_fresh(id).await.map_err(store_down)?.is_some() {
        return Err(refused(
            "user_id",
            format!("Customer already exists, passed user_id={id}. Please pass a new user_id."),
        ));
    }
    let now = gw.clock().now_ms();
    let mut rec = CustomerRecord::created(id, now);
    req.apply(&mut rec);
    let rec = dir.put_customer(id, rec).await.map_err(store_down)?;
    Ok(fields::ok(&customer_object(gw, &rec).await?))
}

/// A `budget_id` must name a budget that exists (400).
pub async fn check_budget_exists(gw: &Gateway, req: &CustomerBody) -> Result<(), GatewayError> {
    if let Some(id) = &req.budget_id {
        if gw
            .directory()
            .budget(id)
            .await
            .map_err(store_down)?
            .is_none()
        {
            return Err(refused(
                "budget_id",
                format!("Budget {id} does not exist; create it with /budget/new first."),
            ));
        }
    }
    Ok(())
}

async fn info(
    gw: &Gateway,
    caller: &Caller,
    req: &http::Request<Bytes>,
) -> Result<GatewayResponse, GatewayError> {
    require_reader(caller)?;
    let Some(id) = fields::query(req, "end_user_id") else {
        return Err(required("end_user_id"));
    };
    let rec = found(
        gw.directory().customer(&id).await,
        "End User",
        &id,
        "end_user_id",
    )?;
    Ok(fields::ok(&customer_object(gw, &rec).await?))
}

async fn list(gw: &Gateway, caller: &Caller) -> Result<GatewayResponse, GatewayError> {
    require_reader(caller)?;
    let mut all = gw.directory().list_customers().await.map_err(store_down)?;
    all.sort_by(|a, b| a.user_id.cmp(&b.user_id));
    let mut objects = Vec::with_capacity(all.len());
    for c in &all {
        objects.push(customer_object(gw, c).await?);
    }
    Ok(fields::ok(&objects))
}

async fn update(
    gw: &Gateway,
    caller: &Caller,
    body: &Bytes,
) -> Result<GatewayResponse, GatewayError> {
    require_admin(caller)?;
    let req: CustomerBody = fields::parse(body)?;
    let Some(id) = given(&req.user_id) else {
        return Err(required("user_id"));
    };
    req.validate(gw.config())?;
    check_budget_exists(gw, &req).await?;
    let dir = gw.directory();
    let mut rec = found(dir.customer_fresh(id).await, "End User", id, "user_id")?;
    req.apply(&mut rec);
    check_soft_below_max(rec.budget.soft_budget, rec.budget.max_budget)?;
    rec.updated_at_ms = gw.clock().now_ms();
    let rec = dir.put_customer(id, rec).await.map_err(store_down)?;
    Ok(fields::ok(&customer_object(gw, &rec).await?))
}

#[derive(Deserialize)]
struct Ids {
    user_ids: Vec<String>,
}

/// Every id in `ids` that has no end user, refused together (404 naming them).
async fn all_exist(gw: &Gateway, ids: &[String]) -> Result<Vec<CustomerRecord>, GatewayError> {
    let mut found = Vec::with_capacity(ids.len());
    let mut missing = Vec::new();
    for id in ids {
        match gw
            .directory()
            .customer_fresh(id)
            .await
            .map_err(store_down)?
        {
            Some(c) => found.push(c),
            None => missing.push(id.as_str()),
        }
    }
    if !missing.is_empty() {
        return Err(not_found("End User Id(s)", &missing.join(", ")).with_param("user_ids"));
    }
    Ok(found)
}

async fn delete(
    gw: &Gateway,
    caller: &Caller,
    body: &Bytes,
) -> Result<GatewayResponse, GatewayError> {
    require_admin(caller)?;
    let req: Ids = fields::parse(body)?;
    if req.user_ids.is_empty() {
        return Err(refused(
            "user_ids",
            "user_ids must name at least one end user",
        ));
    }
    all_exist(gw, &req.user_ids).await?;
    let mut deleted = 0;
    for id in &req.user_ids {
        deleted += usize::from(
            gw.directory()
                .delete_customer(id)
                .await
                .map_err(store_down)?,
        );
    }
    Ok(fields::ok(&json!({
        "deleted_customers": deleted,
        "message": format!("Successfully deleted customers with ids: {:?}", req.user_ids),
    })))
}

/// `/customer/block` creates the end users it does not know (as LiteLLM's, so an id can be
/// blocked before its first request); `/customer/unblock` only changes existing ones and
/// answers with the ids still blocked.
async fn block(
    gw: &Gateway,
    caller: &Caller,
    body: &Bytes,
    blocked: bool,
) -> Result<GatewayResponse, GatewayError> {
    require_admin(caller)?;
    let req: Ids = fields::parse(body)?;
    let dir = gw.directory();
    let now = gw.clock().now_ms();
    let existing = if blocked {
        Vec::new()
    } else {
        all_exist(gw, &req.user_ids).await?
    };
    let mut changed = Vec::with_capacity(req.user_ids.len());
    for id in &req.user_ids {
        let current = match existing.iter().find(|c| &c.user_id == id) {
            Some(c) => Some(c.clone()),
            None => dir.customer_fresh(id).await.map_err(store_down)?,
        };
        let mut rec = current.unwrap_or_else(|| CustomerRecord::created(id, now));
        rec.blocked = blocked;
        rec.updated_at_ms = now;
        changed.push(dir.put_customer(id, rec).await.map_err(store_down)?);
    }
    if blocked {
        let mut objects = Vec::with_capacity(changed.len());
        for c in &changed {
            objects.push(customer_object(gw, c).await?);
        }
        return Ok(fields::ok(&json!({ "blocked_users": objects })));
    }
    let still: Vec<String> = dir
        .list_customers()
        .await
        .map_err(store_down)?
        .into_iter()
        .filter(|c| c.blocked)
        .map(|c| c.user_id)
        .collect();
    Ok(fields::ok(&json!({ "blocked_users": still })))
}

#[cfg(test)]
#[path = "customers_tests.rs"]
mod tests;
