//! Keys, budgets and spend inside the pipeline: who may call what, a budget that admits
//! exactly what it can pay for, and spend recorded once per request in every scope.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{json, Value};

use super::tests::{body_of, ports, run, FixedClock, HeldTasks, Scripted, ScriptedClient};
use super::*;
use crate::config::Config;
use crate::identity::records::{KeyRecord, TeamRecord};
use crate::identity::token;
use crate::ports::TransportError;
use crate::store::memory::MemoryStore;
use crate::store::Store;

/// Output costs 0.001 a token, input nothing: a request with `max_tokens: 1` answered "hi"
/// (one token) costs exactly its reservation.
const CONFIG: &str = r#"
model_list:
  - model_name: cheap
    litellm_params: {model: mock/x, mock_response: "hi", input_cost_per_token: 0, output_cost_per_token: 0.001}
  - model_name: other
    litellm_params: {model: mock/y, mock_response: "hi", input_cost_per_token: 0, output_cost_per_token: 0.001}
  - model_name: real
    litellm_params: {model: openai/gpt-4o-2024-08-06, api_key: sk-up, api_base: "http://up.test/v1", input_cost_per_token: 0.000001, output_cost_per_token: 0.000002}
router_settings:
  fallbacks: [{"real": ["other"]}]
litellm_settings:
  max_end_user_budget: 0.002
general_settings:
  master_key: sk-master
"#;

struct Setup {
    gw: Gateway,
    store: Arc<MemoryStore>,
    tasks: Arc<HeldTasks>,
}

fn setup(answers: Vec<Scripted>) -> Setup {
    let clock: Arc<dyn crate::ports::Clock> = Arc::new(FixedClock);
    let store = Arc::new(MemoryStore::new(clock.clone()));
    let tasks = Arc::new(HeldTasks::default());
    let gw = Gateway::new(
        Config::from_yaml(CONFIG, &|_| None).unwrap(),
        ports(
            ScriptedClient::new(answers),
            clock,
            store.clone(),
            tasks.clone(),
        ),
    );
    Setup { gw, store, tasks }
}

impl Setup {
    fn key(&self, raw: &str, edit: impl FnOnce(&mut KeyRecord)) {
        let mut rec = KeyRecord {
            token: token::hash(raw),
            ..Default::default()
        };
        edit(&mut rec);
        run(self.gw.directory().put_key(&rec.token.clone(), rec)).unwrap();
    }

    /// A chat request with `key`; the work after the response is run before returning.
    fn chat(&self, key: &str, body: Value) -> (u16, Value, http::HeaderMap) {
        let req = http::Request::post("/v1/chat/completions")
            .header("authorization", format!("Bearer {key}"))
            .body(Bytes::from(body.to_string()))
            .unwrap();
        let resp = run(self.gw.handle(req));
        let headers = resp.headers().clone();
        let (status, text) = run(body_of(resp));
        self.tasks.run_all();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::Null),
            headers,
        )
    }

    fn counter(&self, key: &str) -> i64 {
        run(self.store.counter_get(key)).unwrap()
    }

    fn spend_rows(&self) -> Vec<crate::spend::row::SpendRow> {
        run(self
            .store
            .log_range(crate::spend::SPEND_LOG, 0, u64::MAX, 1000))
        .unwrap()
        .iter()
        .map(|e| serde_json::from_slice(&e.data).unwrap())
        .collect()
    }
}

fn ask(model: &str) -> Value {
    json!({"model": model, "max_tokens": 1, "messages": [{"role": "user", "content": "hello"}]})
}

#[test]
fn a_budget_admits_exactly_what_it_can_pay_for() {
    let s = setup(vec![]);
    s.key("sk-budget-key-1", |k| k.budget.max_budget = Some(0.003));
    for i in 0..3 {
        let (status, body, headers) = s.chat("sk-budget-key-1", ask("cheap"));
        assert_eq!(status, 200, "request {i}: {body}");
        assert_eq!(headers["x-litellm-response-cost"], "0.001");
    }
    let (status, body, _) = s.chat("sk-budget-key-1", ask("cheap"));
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["type"], "budget_exceeded");
    assert_eq!(body["error"]["param"], "key");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Current cost: 0.003, Estimated request cost: 0.001, Max budget: 0.003"));
    let token = token::hash("sk-budget-key-1");
    assert_eq!(s.counter(&format!("spend:key:{token}:all")), 3_000_000);
    let rows = s.spend_rows();
    assert_eq!(
        rows.len(),
        4,
        "the refusal is logged too, as a failure that cost nothing"
    );
    assert!(rows[..3]
        .iter()
        .all(|r| r.spend == 0.001 && r.api_key == token && r.status == "success"));
    assert_eq!((rows[3].spend, rows[3].status.as_str()), (0.0, "failure"));
}

#[test]
fn end_users_get_the_default_budget_and_are_remembered() {
    let s = setup(vec![]);
    let mut body = ask("cheap");
    body["user"] = json!("customer-7");
    for _ in 0..2 {
        assert_eq!(s.chat("sk-master", body.clone()).0, 200);
    }
    let (status, err, _) = s.chat("sk-master", body);
    assert_eq!(status, 400);
    assert_eq!(err["error"]["param"], "end_user");
    assert!(run(s.gw.directory().customer("customer-7"))
        .unwrap()
        .is_some());
    assert_eq!(s.counter("spend:enduser:customer-7:all"), 2_000_000);
}

#[test]
fn model_access_is_checked_per_group_and_for_fallbacks() {
    // "real" fails upstream; its fallback "other" is not among the key's models, so it is
    // skipped and the upstream error is the answer.
    let s = setup(vec![Ok((
        500,
        vec![],
        vec![Ok("{\"error\":{\"message\":\"down\"}}")],
    ))]);
    s.key("sk-limited-key", |k| k.models = vec!["real".into()]);
    let (status, body, _) = s.chat("sk-limited-key", ask("cheap"));
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["type"], "key_model_access_denied");
    let mut req = ask("real");
    req["num_retries"] = json!(0);
    let (status, body, headers) = s.chat("sk-limited-key", req);
    assert_eq!(status, 500, "{body}");
    assert!(headers.get("x-litellm-attempted-fallbacks").is_none());

    // A team's models bound its keys too.
    let team = TeamRecord {
        team_id: "t1".into(),
        models: vec!["other".into()],
        ..Default::default()
    };
    run(s.gw.directory().put_team("t1", team)).unwrap();
    s.key("sk-team-key", |k| k.team_id = Some("t1".into()));
    let (status, body, _) = s.chat("sk-team-key", ask("cheap"));
    assert_eq!(status, 401);
    assert_eq!(body["error"]["type"], "team_model_access_denied");
    assert_eq!(s.chat("sk-team-key", ask("other")).0, 200);

    // /v1/models lists what the key may call.
    let (status, models) = super::tests::call(&s.gw, "GET", "/v1/models", "sk-limited-key", None);
    assert_eq!(status, 200);
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["real"]);
    assert_eq!(
        super::tests::call(&s.gw, "GET", "/v1/models/cheap", "sk-limited-key", None).0,
        401
    );
}

#[test]
fn refused_keys() {
    let s = setup(vec![]);
    s.key("sk-blocked-key", |k| k.blocked = true);
    s.key("sk-expired-key", |k| k.expires_ms = Some(1));
    assert_eq!(s.chat("sk-blocked-key", ask("cheap")).0, 401);
    let (status, body, _) = s.chat("sk-expired-key", ask("cheap"));
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "expired_key");
    assert_eq!(s.chat("sk-nobody", ask("cheap")).0, 401);
    assert!(
        s.spend_rows().is_empty(),
        "refused before admission: nothing to log"
    );
}

#[test]
fn a_failed_request_gives_its_reservation_back() {
    let s = setup(vec![Err(TransportError::Connect("refused".into()))]);
    s.key("sk-budget-key-2", |k| k.budget.max_budget = Some(1.0));
    let mut req = ask("real");
    req["num_retries"] = json!(0);
    req["fallbacks"] = json!([]);
    let (status, _, _) = s.chat("sk-budget-key-2", req);
    assert!(status >= 500);
    let token = token::hash("sk-budget-key-2");
    assert_eq!(s.counter(&format!("spend:key:{token}:all")), 0);
    let rows = s.spend_rows();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, "failure");
    assert_eq!(s.counter("roll:2023-11-14:all:-:fail"), 1);
}

#[test]
fn spend_lands_in_every_scope_and_rollup() {
    let s = setup(vec![]);
    let team = TeamRecord {
        team_id: "t2".into(),
        ..Default::default()
    };
    run(s.gw.directory().put_team("t2", team)).unwrap();
    s.key("sk-attributed", |k| {
        k.user_id = Some("u2".into());
        k.team_id = Some("t2".into());
        k.tags = vec!["from-key".into()];
    });
    let mut body = ask("cheap");
    body["metadata"] = json!({"tags": ["from-request"]});
    assert_eq!(s.chat("sk-attributed", body).0, 200);
    let token = token::hash("sk-attributed");
    for key in [
        format!("spend:key:{token}:all"),
        "spend:user:u2:all".into(),
        "spend:team:t2:all".into(),
        "spend:member:t2:u2:all".into(),
        "roll:2023-11-14:all:-:spend".into(),
        "roll:2023-11-14:team:t2:spend".into(),
        "roll:2023-11-14:tag:from-key:spend".into(),
        "roll:2023-11-14:tag:from-request:spend".into(),
        "roll:2023-11-14:model:cheap:spend".into(),
    ] {
        assert_eq!(s.counter(&key), 1_000_000, "{key}");
    }
    let row = &s.spend_rows()[0];
    assert_eq!(
        (row.user.as_str(), row.team_id.as_deref()),
        ("u2", Some("t2"))
    );
    assert_eq!(row.request_tags, ["from-key", "from-request"]);
    assert_eq!(row.model_group.as_deref(), Some("cheap"));
}

#[test]
fn spend_reports_read_the_logs_and_rollups() {
    let s = setup(vec![]);
    s.key("sk-report-a", |k| k.user_id = Some("ua".into()));
    s.key("sk-report-b", |k| k.user_id = Some("ub".into()));
    for key in ["sk-report-a", "sk-report-a", "sk-report-b"] {
        assert_eq!(s.chat(key, ask("cheap")).0, 200);
    }
    let get = |key: &str, path: &str| super::tests::call(&s.gw, "GET", path, key, None);
    let (status, rows) = get("sk-master", "/spend/logs?api_key=sk-report-a");
    assert_eq!(status, 200, "{rows}");
    assert_eq!(rows.as_array().unwrap().len(), 2);
    let (_, total) = get("sk-master", "/global/spend");
    assert!(
        (total["spend"].as_f64().unwrap() - 0.003).abs() < 1e-12,
        "{total}"
    );
    let (_, report) = get(
        "sk-master",
        "/global/spend/report?start_date=2023-11-14&end_date=2023-11-14&group_by=api_key",
    );
    let groups = report[0]["api_keys"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{report}");
    let (_, activity) = get(
        "sk-master",
        "/global/activity?start_date=2023-11-14&end_date=2023-11-14",
    );
    assert_eq!(activity["sum_api_requests"], 3);
    let (_, daily) = get(
        "sk-master",
        "/user/daily/activity?user_id=ua&start_date=2023-11-14&end_date=2023-11-14",
    );
    assert_eq!(daily["metadata"]["api_requests"], 2, "{daily}");
    // An internal user reads its own rows, not another's.
    let (status, own) = get("sk-report-b", "/spend/logs");
    assert_eq!((status, own.as_array().unwrap().len()), (200, 1));
    assert_eq!(get("sk-report-b", "/spend/logs?user_id=ua").0, 403);
    assert_eq!(get("sk-report-b", "/global/spend").0, 403);
    let (status, e) = get("sk-master", "/global/activity");
    assert_eq!(status, 400, "{e}");
}
