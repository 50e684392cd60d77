use serde_json::json;

use crate::admin::fields::testing::{gateway, master_get, master_post};
use crate::gateway::tests::{call, run};
use crate::identity::records::CustomerRecord;

#[test]
fn a_budget_is_created_read_listed_updated_and_deleted() {
    let gw = gateway();
    let (status, b) = master_post(
        &gw,
        "/budget/new",
        json!({"budget_id": "free", "max_budget": 5.0, "budget_duration": "30d", "rpm_limit": 10,
            "model_max_budget": {"gpt-4o": {"max_budget": 1.0, "budget_duration": "1d"}, "o1": 2.0}}),
    );
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["budget_id"], "free");
    assert_eq!(b["max_budget"], 5.0);
    assert_eq!(b["rpm_limit"], 10);
    assert_eq!(b["soft_budget"], json!(null));
    assert_eq!(
        b["model_max_budget"]["gpt-4o"],
        json!({"budget_limit": 1.0, "time_period": "1d"})
    );
    assert_eq!(b["model_max_budget"]["o1"], 2.0);
    // FixedClock is 2023-11-14T22:13:20Z: a 30d budget resets on the 1st of the next month.
    assert_eq!(b["budget_reset_at"], "2023-12-01T00:00:00.000000+00:00");
    assert_eq!(b["created_at"], "2023-11-14T22:13:20.000000+00:00");

    let (status, list) = master_post(&gw, "/budget/info", json!({"budgets": ["free"]}));
    assert_eq!(status, 200, "{list}");
    assert_eq!(list[0]["budget_id"], "free");

    let (status, b) = master_post(
        &gw,
        "/budget/update",
        json!({"budget_id": "free", "max_budget": 7.5}),
    );
    assert_eq!(status, 200, "{b}");
    assert_eq!(
        (b["max_budget"].clone(), b["rpm_limit"].clone()),
        (json!(7.5), json!(10))
    );

    let (_, list) = master_get(&gw, "/budget/list");
    assert_eq!(list.as_array().unwrap().len(), 1);

    let (status, b) = master_post(&gw, "/budget/delete", json!({"id": "free"}));
    assert_eq!((status, b["budget_id"].clone()), (200, json!("free")));
    let (_, list) = master_get(&gw, "/budget/list");
    assert_eq!(list, json!([]));
}

#[test]
fn a_budget_without_an_id_gets_a_uuid() {
    let gw = gateway();
    let (status, b) = master_post(&gw, "/budget/new", json!({"max_budget": 1}));
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["budget_id"].as_str().unwrap().len(), 36);
    assert_eq!(b["budget_reset_at"], json!(null), "no period, no reset");
}

#[test]
fn refusals_name_the_field() {
    let gw = gateway();
    let new = |body| master_post(&gw, "/budget/new", body);
    assert_eq!(new(json!({"budget_id": "b"})).0, 200);
    let (status, e) = new(json!({"budget_id": "b"}));
    assert_eq!(
        (status, e["error"]["param"].clone()),
        (400, json!("budget_id"))
    );
    let (status, e) = new(json!({"max_budget": "lots"}));
    assert_eq!(
        (status, e["error"]["param"].clone()),
        (422, json!("max_budget"))
    );
    let (status, e) = new(json!({"budget_duration": "fortnight"}));
    assert_eq!(
        (status, e["error"]["param"].clone()),
        (422, json!("budget_duration"))
    );
    let (status, e) = new(json!({"rpm_limit": -1}));
    assert_eq!(
        (status, e["error"]["param"].clone()),
        (422, json!("rpm_limit"))
    );
    let (status, e) = new(json!({"max_budget": -1}));
    assert_eq!(
        (status, e["error"]["param"].clone()),
        (400, json!("max_budget"))
    );
    let (status, e) = new(json!({"max_budget": 1, "soft_budget": 2}));
    assert_eq!(
        (status, e["error"]["param"].clone()),
        (400, json!("soft_budget"))
    );
    let (status, e) =
        new(json!({"model_max_budget": {"m": {"budget_limit": 1, "time_period": "often"}}}));
    assert_eq!(
        (status, e["error"]["param"].clone()),
        (422, json!("model_max_budget.m"))
    );

    let (status, e) = master_post(&gw, "/budget/info", json!({"budgets": ["b", "nope"]}));
    assert_eq!(
        (status, e["error"]["param"].clone()),
        (404, json!("budgets"))
    );
    assert_eq!(
        master_post(&gw, "/budget/info", json!({"budgets": []})).0,
        400
    );
    let (status, e) = master_post(&gw, "/budget/info", json!({"budgets": "b"}));
    assert_eq!(
        (status, e["error"]["param"].clone()),
        (422, json!("budgets"))
    );
    let (status, e) = master_post(&gw, "/budget/update", json!({"max_budget": 1}));
    assert_eq!(
        (status, e["error"]["param"].clone()),
        (422, json!("budget_id"))
    );
    let (status, _) = master_post(&gw, "/budget/update", json!({"budget_id": "nope"}));
    assert_eq!(status, 404);
    let (status, _) = master_post(&gw, "/budget/delete", json!({"id": "nope"}));
    assert_eq!(status, 404);
    let (status, e) = master_post(&gw, "/budget/delete", json!({}));
    assert_eq!((status, e["error"]["param"].clone()), (422, json!("id")));
    assert_eq!(master_get(&gw, "/budget/new").0, 405);
}

#[test]
fn a_budget_in_use_is_not_deleted() {
    let gw = gateway();
    master_post(&gw, "/budget/new", json!({"budget_id": "b"}));
    run(gw.directory().put_customer(
        "alice",
        CustomerRecord {
            user_id: "alice".into(),
            budget_id: Some("b".into()),
            ..Default::default()
        },
    ))
    .unwrap();
    let (status, e) = master_post(&gw, "/budget/delete", json!({"id": "b"}));
    assert_eq!(
        (status, e["error"]["param"].clone()),
        (400, json!("id")),
        "{e}"
    );
    assert!(e["error"]["message"].as_str().unwrap().contains("alice"));
}

#[test]
fn viewers_read_and_internal_users_do_neither() {
    let gw = gateway();
    master_post(&gw, "/budget/new", json!({"budget_id": "b"}));
    assert_eq!(call(&gw, "GET", "/budget/list", "sk-viewer", None).0, 200);
    let info = Some(json!({"budgets": ["b"]}));
    assert_eq!(
        call(&gw, "POST", "/budget/info", "sk-viewer", info.clone()).0,
        200
    );
    for (method, path, body) in [
        ("POST", "/budget/new", Some(json!({}))),
        ("POST", "/budget/update", Some(json!({"budget_id": "b"}))),
        ("POST", "/budget/delete", Some(json!({"id": "b"}))),
    ] {
        assert_eq!(
            call(&gw, method, path, "sk-viewer", body.clone()).0,
            403,
            "{path}"
        );
        assert_eq!(
            call(&gw, method, path, "sk-internal", body).0,
            403,
            "{path}"
        );
    }
    assert_eq!(call(&gw, "GET", "/budget/list", "sk-internal", None).0, 403);
    assert_eq!(
        call(&gw, "POST", "/budget/info", "sk-internal", info).0,
        403
    );
}
