//! Spend reports: `/spend/logs`, `/global/spend`, `/global/spend/report`, `/global/activity`
//! and `/{key,user,team,customer,tag}/daily/activity`, read from the spend log and the daily
//! rollups (`crate::spend`). Proxy admins (and viewers) see everything; an internal user sees
//! its own keys' and its own spend only.

use bytes::Bytes;
use http::Method;
use serde_json::{json, Map, Value};

use super::fields::{ok, query, query_u64};
use crate::budget::plan::nanos_to_usd;
use crate::calendar::{Date, Offset};
use crate::error::{ErrorKind, GatewayError, Origin};
use crate::gateway::{Gateway, GatewayResponse};
use crate::identity::caller::store_down;
use crate::identity::{token, Caller};
use crate::spend::rollup::{self, DayTotals, Dim};
use crate::spend::row::SpendRow;
use crate::spend::SPEND_LOG;

/// Rows `/spend/logs` returns at most (LiteLLM caps at 10,000 too).
const MAX_ROWS: usize = 10_000;
/// Days a report may span at most.
const MAX_DAYS: i64 = 400;

pub async fn route(
    gw: &Gateway,
    caller: &Caller,
    method: &Method,
    path: &str,
    req: &http::Request<Bytes>,
) -> Option<Result<GatewayResponse, GatewayError>> {
    if method != Method::GET {
        return None;
    }
    let answer = match path {
        "/spend/logs" => spend_logs(gw, caller, req).await,
        "/global/spend" => global_spend(gw, caller).await,
        "/global/activity" => global_activity(gw, caller, req).await,
        "/global/spend/report" => spend_report(gw, caller, req).await,
        p => {
            let kind = match p.strip_suffix("/daily/activity")? {
                "/key" => "key",
                "/user" => "user",
                "/team" => "team",
                "/customer" | "/end_user" => "enduser",
                "/tag" => "tag",
                _ => return None,
            };
            daily_activity(gw, caller, kind, req).await
        }
    };
    Some(answer)
}

fn forbidden() -> GatewayError {
    GatewayError::new(
        ErrorKind::PermissionDenied,
        "Only proxy admins may read spend beyond their own keys.",
    )
    .with_origin(Origin::Policy)
    .with_code("forbidden")
}

/// A `YYYY-MM-DD` (or ISO date-time) query parameter; a bad one is a 422 naming it.
fn date_param(req: &http::Request<Bytes>, name: &str) -> Result<Option<Date>, GatewayError> {
    query(req, name)
        .map(|v| {
            crate::calendar::parse_iso8601(&v)
                .map(|ms| Date::at(ms, Offset::UTC))
                .ok_or_else(|| {
                    GatewayError::new(
                        ErrorKind::Unprocessable,
                        format!("{name} must be a date (YYYY-MM-DD)"),
                    )
                    .with_origin(Origin::Client)
                    .with_param(name)
                })
        })
        .transpose()
}

/// The days of `[start, end]` (both given, or the last 30 days), oldest first.
fn days(
    gw: &Gateway,
    req: &http::Request<Bytes>,
    required: bool,
) -> Result<Vec<Date>, GatewayError> {
    let today = Date::at(gw.clock().now_ms(), Offset::UTC);
    let (start, end) = match (date_param(req, "start_date")?, date_param(req, "end_date")?) {
        (Some(s), Some(e)) => (s, e),
        _ if required => {
            return Err(
                GatewayError::invalid_request("Please provide start_date and end_date")
                    .with_param("start_date"),
            )
        }
        (s, e) => (s.unwrap_or(today.add_days(-29)), e.unwrap_or(today)),
    };
    let mut out = Vec::new();
    let mut d = start;
    while d <= end && (out.len() as i64) < MAX_DAYS {
        out.push(d);
        d = d.next();
    }
    Ok(out)
}

/// `GET /spend/logs`: rows filtered by `api_key` (raw or token), `user_id`, `request_id` and
/// a date range; with a range and `summarize` (default true), totals per day instead.
async fn spend_logs(
    gw: &Gateway,
    caller: &Caller,
    req: &http::Request<Bytes>,
) -> Result<GatewayResponse, GatewayError> {
    let mut api_key = query(req, "api_key").map(|k| token::token_of(&k));
    let mut user_id = query(req, "user_id");
    if !caller.may_read_all() {
        // An internal user reads its own user's rows, or its own key's.
        let k = caller.key().ok_or_else(forbidden)?;
        match (&k.key.user_id, &api_key) {
            (_, Some(t)) if *t == k.key.token => {}
            (Some(own), _) if user_id.as_ref().is_none_or(|u| u == own) => {
                user_id = Some(own.clone())
            }
            _ => {
                if api_key.is_some() || user_id.is_some() {
                    return Err(forbidden());
                }
                api_key = Some(k.key.token.clone());
            }
        }
    }
    let request_id = query(req, "request_id");
    let ranged = query(req, "start_date").is_some() && query(req, "end_date").is_some();
    let (from_ms, to_ms) = if ranged {
        let d = days(gw, req, true)?;
        let first = d.first().copied().unwrap_or(Date::at(0, Offset::UTC));
        let last = d.last().copied().unwrap_or(first);
        (
            first.start_ms(Offset::UTC),
            last.next().start_ms(Offset::UTC),
        )
    } else {
        (0, u64::MAX)
    };
    let entries = gw
        .directory()
        .store()
        .log_range(SPEND_LOG, from_ms, to_ms, MAX_ROWS)
        .await
        .map_err(store_down)?;
    let rows: Vec<SpendRow> = entries
        .iter()
        .filter_map(|e| serde_json::from_slice::<SpendRow>(&e.data).ok())
        .filter(|r| api_key.as_ref().is_none_or(|k| &r.api_key == k))
        .filter(|r| user_id.as_ref().is_none_or(|u| &r.user == u))
        .filter(|r| request_id.as_ref().is_none_or(|id| &r.request_id == id))
        .collect();
    let summarize = query(req, "summarize").is_none_or(|v| v != "false");
    if !(ranged && summarize) {
        return Ok(ok(&rows));
    }
    // Per day: total spend, and spend by user and by model (LiteLLM's summarized shape).
    let mut by_day: std::collections::BTreeMap<String, DaySummary> = Default::default();
    for r in &rows {
        let day = r.startTime.get(..10).unwrap_or_default().to_string();
        let slot = by_day.entry(day).or_default();
        slot.0 += r.spend;
        add_to(&mut slot.1, &r.user, r.spend);
        add_to(&mut slot.2, &r.model, r.spend);
    }
    let out: Vec<Value> = by_day
        .into_iter()
        .map(|(day, (spend, users, models))| json!({"startTime": day, "spend": spend, "users": users, "models": models}))
        .collect();
    Ok(ok(&out))
}

/// A day's spend, by user and by model.
type DaySummary = (f64, Map<String, Value>, Map<String, Value>);

fn add_to(map: &mut Map<String, Value>, name: &str, amount: f64) {
    let now = map.get(name).and_then(Value::as_f64).unwrap_or(0.0);
    map.insert(name.to_string(), json!(now + amount));
}

/// `GET /global/spend`: the proxy's spend over the last 30 days and its `max_budget`.
async fn global_spend(gw: &Gateway, caller: &Caller) -> Result<GatewayResponse, GatewayError> {
    if !caller.may_read_all() {
        return Err(forbidden());
    }
    let today = Date::at(gw.clock().now_ms(), Offset::UTC);
    let mut total = DayTotals::default();
    for i in 0..30 {
        let day = today.add_days(-i).to_string();
        let t = rollup::read(gw.directory().store().as_ref(), &day, &Dim::all())
            .await
            .map_err(store_down)?;
        total.add(&t);
    }
    let max_budget = gw.config().governance.proxy_budget.map(|(b, _)| b);
    Ok(ok(
        &json!({"spend": nanos_to_usd(total.spend_nanos), "max_budget": max_budget}),
    ))
}

/// `GET /global/activity?start_date&end_date`: requests and tokens per day.
async fn global_activity(
    gw: &Gateway,
    caller: &Caller,
    req: &http::Request<Bytes>,
) -> Result<GatewayResponse, GatewayError> {
    let dim = own_dim(caller)?;
    let mut daily = Vec::new();
    let (mut requests, mut tokens) = (0i64, 0i64);
    for day in days(gw, req, true)? {
        let t = rollup::read(gw.directory().store().as_ref(), &day.to_string(), &dim)
            .await
            .map_err(store_down)?;
        let (r, k) = (
            t.successful_requests + t.failed_requests,
            t.prompt_tokens + t.completion_tokens,
        );
        requests += r;
        tokens += k;
        daily.push(json!({"date": month_day(day), "api_requests": r, "total_tokens": k}));
    }
    Ok(ok(
        &json!({"daily_data": daily, "sum_api_requests": requests, "sum_total_tokens": tokens}),
    ))
}

/// Admins see the whole proxy; an internal user its own user's (or key's) figures.
fn own_dim(caller: &Caller) -> Result<Dim, GatewayError> {
    if caller.may_read_all() {
        return Ok(Dim::all());
    }
    let k = caller.key().ok_or_else(forbidden)?;
    Ok(match &k.key.user_id {
        Some(u) => Dim::new("user", u.clone()),
        None => Dim::new("key", k.key.token.clone()),
    })
}

/// `Dec 04`, LiteLLM's chart label.
fn month_day(d: Date) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {:02}",
        MONTHS[(d.month as usize).saturating_sub(1) % 12],
        d.day
    )
}

/// `GET /global/spend/report?start_date&end_date&group_by=team|customer|api_key`: per day,
/// each group's spend and tokens.
async fn spend_report(
    gw: &Gateway,
    caller: &Caller,
    req: &http::Request<Bytes>,
) -> Result<GatewayResponse, GatewayError> {
    if !caller.may_read_all() {
        return Err(forbidden());
    }
    let (kind, label, field) = match query(req, "group_by").as_deref().unwrap_or("team") {
        "team" => ("team", "teams", "team_name"),
        "customer" => ("enduser", "customers", "customer"),
        "api_key" => ("key", "api_keys", "api_key"),
        "user" => ("user", "users", "user_id"),
        "model" => ("model", "models", "model"),
        "tag" => ("tag", "tags", "tag"),
        other => {
            return Err(GatewayError::new(
                ErrorKind::Unprocessable,
                format!(
                    "group_by must be team, customer, api_key, user, model or tag, not {other:?}"
                ),
            )
            .with_origin(Origin::Client)
            .with_param("group_by"))
        }
    };
    let store = gw.directory().store();
    let mut out = Vec::new();
    for day in days(gw, req, true)? {
        let day = day.to_string();
        let ids = store
            .list_prefix(&rollup::index_prefix(&day, kind), 10_000)
            .await
            .map_err(store_down)?;
        let mut groups = Vec::new();
        for entry in ids {
            let id = rollup::indexed_id(&entry.key).unwrap_or_default();
            let t = rollup::read(store.as_ref(), &day, &Dim::new(kind, id.clone()))
                .await
                .map_err(store_down)?;
            groups.push(json!({
                field: id,
                "total_spend": nanos_to_usd(t.spend_nanos),
                "total_tokens": t.prompt_tokens + t.completion_tokens,
                "api_requests": t.successful_requests + t.failed_requests,
            }));
        }
        if !groups.is_empty() {
            out.push(json!({"group_by_day": day, label: groups}));
        }
    }
    Ok(ok(&out))
}

/// `GET /{key,user,team,customer,tag}/daily/activity`: per day metrics of the named objects
/// (`api_key`, `user_id`, `team_ids`, `end_user_ids`, `tags`; comma-separated), LiteLLM's
/// `SpendAnalyticsPaginatedResponse` shape.
async fn daily_activity(
    gw: &Gateway,
    caller: &Caller,
    kind: &'static str,
    req: &http::Request<Bytes>,
) -> Result<GatewayResponse, GatewayError> {
    let param = match kind {
        "key" => "api_key",
        "user" => "user_id",
        "team" => "team_ids",
        "enduser" => "end_user_ids",
        _ => "tags",
    };
    let mut ids: Vec<String> = query(req, param)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if kind == "key" {
        ids = ids.iter().map(|k| token::token_of(k)).collect();
    }
    if !caller.may_read_all() {
        let k = caller.key().ok_or_else(forbidden)?;
        let own = match kind {
            "key" => Some(k.key.token.clone()),
            "user" => k.key.user_id.clone(),
            _ => None,
        }
        .ok_or_else(forbidden)?;
        if ids.iter().any(|i| *i != own) {
            return Err(forbidden());
        }
        ids = vec![own];
    }
    let store = gw.directory().store();
    let page = query_u64(req, "page")?.unwrap_or(1).max(1);
    let page_size = query_u64(req, "page_size")?.unwrap_or(50).clamp(1, 1000);
    let all_days = days(gw, req, false)?;
    let mut results = Vec::new();
    let mut total = DayTotals::default();
    for day in &all_days {
        let day_text = day.to_string();
        let names = if ids.is_empty() {
            store
                .list_prefix(&rollup::index_prefix(&day_text, kind), 10_000)
                .await
                .map_err(store_down)?
                .into_iter()
                .filter_map(|e| rollup::indexed_id(&e.key))
                .collect()
        } else {
            ids.clone()
        };
        let mut day_total = DayTotals::default();
        let mut breakdown = Map::new();
        for id in names {
            let t = rollup::read(store.as_ref(), &day_text, &Dim::new(kind, id.clone()))
                .await
                .map_err(store_down)?;
            if t == DayTotals::default() {
                continue;
            }
            day_total.add(&t);
            breakdown.insert(id, json!({"metrics": metrics(&t)}));
        }
        if day_total == DayTotals::default() {
            continue;
        }
        total.add(&day_total);
        results.push(json!({"date": day_text, "metrics": metrics(&day_total), "breakdown": {param: breakdown}}));
    }
    let total_pages = (results.len() as u64).div_ceil(page_size).max(1);
    let page_results: Vec<Value> = results
        .into_iter()
        .skip(((page - 1) * page_size) as usize)
        .take(page_size as usize)
        .collect();
    let mut meta = metrics(&total);
    if let Value::Object(m) = &mut meta {
        for (k, v) in [
            ("page", json!(page)),
            ("total_pages", json!(total_pages)),
            ("has_more", json!(page < total_pages)),
        ] {
            m.insert(k.into(), v);
        }
    }
    Ok(ok(&json!({"results": page_results, "metadata": meta})))
}

fn metrics(t: &DayTotals) -> Value {
    json!({
        "spend": nanos_to_usd(t.spend_nanos),
        "prompt_tokens": t.prompt_tokens,
        "completion_tokens": t.completion_tokens,
        "total_tokens": t.prompt_tokens + t.completion_tokens,
        "cache_read_input_tokens": t.cache_read_input_tokens,
        "api_requests": t.successful_requests + t.failed_requests,
        "successful_requests": t.successful_requests,
        "failed_requests": t.failed_requests,
    })
}
