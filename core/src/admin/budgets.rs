//! `/budget/*`: shared budgets (new, info, update, delete, list), LiteLLM's budget table. A
//! budget is referred to by end users and keys through `budget_id`; its limits apply to each
//! of them (the spend is theirs, not the budget's).
//!
//! Proxy admins change budgets; proxy admins and viewers read them.

use bytes::Bytes;
use http::Method;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::budget_body::BudgetBody;
use super::fields::{
    self, found, given, method_not_allowed, new_uuid, not_found, refused, required, reset_at, wire,
    with_nulls,
};
use super::{require_admin, require_reader};
use crate::error::GatewayError;
use crate::gateway::{Gateway, GatewayResponse};
use crate::identity::caller::store_down;
use crate::identity::records::BudgetRecord;
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
    let action = path.strip_prefix("/budget/")?;
    let expected = match action {
        "list" => Method::GET,
        "new" | "info" | "update" | "delete" => Method::POST,
        _ => return None,
    };
    if method != expected {
        return Some(Err(method_not_allowed(path)));
    }
    let body = req.body();
    Some(match action {
        "new" => new(gateway, caller, body).await,
        "info" => info(gateway, caller, body).await,
        "list" => list(gateway, caller).await,
        "update" => update(gateway, caller, body).await,
        _ => delete(gateway, caller, body).await,
    })
}

/// A budget as LiteLLM's budget table row reads, with its current period's end.
pub fn budget_object(gateway: &Gateway, rec: &BudgetRecord) -> Map<String, Value> {
    let mut m = wire(rec);
    m.insert(
        "budget_reset_at".into(),
        reset_at(gateway, rec.budget.budget_duration.as_deref()),
    );
    with_nulls(
        &mut m,
        &[
            "max_budget",
            "soft_budget",
            "max_parallel_requests",
            "tpm_limit",
            "rpm_limit",
            "budget_duration",
        ],
    );
    m
}

async fn new(gw: &Gateway, caller: &Caller, body: &Bytes) -> Result<GatewayResponse, GatewayError> {
    require_admin(caller)?;
    let req: BudgetBody = fields::parse(body)?;
    req.validate()?;
    let id = match given(&req.budget_id) {
        Some(id) => id.to_string(),
        None => new_uuid(gw.entropy()),
    };
    let dir = gw.directory();
    if dir.budget_fresh(&id).await.map_err(store_down)?.is_some() {
        return Err(refused(
            "budget_id",
            format!("Budget with id '{id}' already exists."),
        ));
    }
    let now = gw.clock().now_ms();
    let mut rec = BudgetRecord::created(&id, now);
    req.apply(&mut rec);
    let rec = dir.put_budget(&id, rec).await.map_err(store_down)?;
    Ok(fields::ok(&budget_object(gw, &rec)))
}

#[derive(Deserialize)]
struct InfoBody {
    budgets: Vec<String>,
}

async fn info(
    gw: &Gateway,
    caller: &Caller,
    body: &Bytes,
) -> Result<GatewayResponse, GatewayError> {
    require_reader(caller)?;
    let req: InfoBody = fields::parse(body)?;
    if req.budgets.is_empty() {
        return Err(refused("budgets", "Specify list of budget id's to query."));
    }
    let mut out = Vec::with_capacity(req.budgets.len());
    for id in &req.budgets {
        match gw.directory().budget(id).await.map_err(store_down)? {
            Some(rec) => out.push(budget_object(gw, &rec)),
            None => return Err(not_found("Budget", id).with_param("budgets")),
        }
    }
    Ok(fields::ok(&out))
}

async fn list(gw: &Gateway, caller: &Caller) -> Result<GatewayResponse, GatewayError> {
    require_reader(caller)?;
    let all = gw.directory().list_budgets().await.map_err(store_down)?;
    let out: Vec<_> = all.iter().map(|b| budget_object(gw, b)).collect();
    Ok(fields::ok(&out))
}

async fn update(
    gw: &Gateway,
    caller: &Caller,
    body: &Bytes,
) -> Result<GatewayResponse, GatewayError> {
    require_admin(caller)?;
    let req: BudgetBody = fields::parse(body)?;
    let Some(id) = given(&req.budget_id) else {
        return Err(required("budget_id"));
    };
    req.validate()?;
    let dir = gw.directory();
    let mut rec = found(dir.budget_fresh(id).await, "Budget", id, "budget_id")?;
    req.apply(&mut rec);
    fields::check_soft_below_max(rec.budget.soft_budget, rec.budget.max_budget)?;
    rec.updated_at_ms = gw.clock().now_ms();
    let rec = dir.put_budget(id, rec).await.map_err(store_down)?;
    Ok(fields::ok(&budget_object(gw, &rec)))
}

#[derive(Deserialize)]
struct DeleteBody {
    id: String,
}

async fn delete(
    gw: &Gateway,
    caller: &Caller,
    body: &Bytes,
) -> Result<GatewayResponse, GatewayError> {
    require_admin(caller)?;
    let req: DeleteBody = fields::parse(body)?;
    let dir = gw.directory();
    let rec = found(dir.budget_fresh(&req.id).await, "Budget", &req.id, "id")?;
    // A budget still in use is kept: deleting it would silently lift its limits from every end
    // user and key that names it (LiteLLM's database refuses it through a foreign key).
    let customers = dir.list_customers().await.map_err(store_down)?;
    let keys = dir.list_keys().await.map_err(store_down)?;
    let users: Vec<&str> = customers
        .iter()
        .filter(|c| c.budget_id.as_deref() == Some(&req.id))
        .map(|c| c.user_id.as_str())
        .collect();
    let key_count = keys
        .iter()
        .filter(|k| k.budget_id.as_deref() == Some(&req.id))
        .count();
    if !users.is_empty() || key_count > 0 {
        return Err(refused(
            "id",
            format!(
                "Budget {} is still used by end users {users:?} and {key_count} key(s); move them to another budget first.",
                req.id
            ),
        ));
    }
    dir.delete_budget(&req.id).await.map_err(store_down)?;
    Ok(fields::ok(&budget_object(gw, &rec)))
}

#[cfg(test)]
#[path = "budgets_tests.rs"]
mod tests;
