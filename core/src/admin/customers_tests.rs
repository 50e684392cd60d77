use std::sync::atomic::Ordering;

use serde_json::{json, Value};

use crate::admin::fields::testing::{gateway, gateway_on, master_get, master_post, CONFIG, MASTER};
use crate::budget::scope::counter;
use crate::budget::{Duration, Scope};
use crate::gateway::tests::{call, run};

fn param(e: &Value) -> Value {
    e["error"]["param"].clone()
}

#[test]
fn an_end_user_is_created_and_read_in_litellms_shape() {
    let gw = gateway();
    let (status, c) = master_post(
        &gw,
        "/customer/new",
        json!({"user_id": "alice", "alias": "Alice", "max_budget": 2.0, "budget_duration": "1d",
            "rpm_limit": 5, "allowed_model_region": "eu", "default_model": "m", "metadata": {"tier": "free"}}),
    );
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["user_id"], "alice");
    assert_eq!(c["alias"], "Alice");
    assert_eq!(c["blocked"], false);
    assert_eq!(c["spend"], 0.0);
    assert_eq!(c["allowed_model_region"], "eu");
    assert_eq!(c["default_model"], "m");
    assert_eq!(c["budget_id"], Value::Null);
    assert_eq!(c["metadata"]["tier"], "free");
    let t = &c["litellm_budget_table"];
    assert_eq!(
        (t["max_budget"].clone(), t["rpm_limit"].clone()),
        (json!(2.0), json!(5))
    );
    assert_eq!(t["budget_duration"], "1d");
    assert_eq!(t["budget_reset_at"], "2023-11-15T00:00:00.000000+00:00");
    assert!(
        c.get("max_budget").is_none(),
        "limits live in the budget table"
    );

    // Spend in the current day's counter shows up.
    let (key, _) = counter(
        &Scope::EndUser("alice".into()),
        Duration::parse("1d"),
        1_700_000_000_000,
        Default::default(),
    );
    run(gw.directory().store().counter_add(&key, 250_000_000, None)).unwrap();
    for path in [
        "/customer/info?end_user_id=alice",
        "/end_user/info?end_user_id=alice",
    ] {
        let (status, c) = master_get(&gw, path);
        assert_eq!(status, 200, "{c}");
        assert_eq!(c["spend"], 0.25);
    }
    let (_, none) = master_post(&gw, "/customer/new", json!({"user_id": "bob"}));
    assert_eq!(none["litellm_budget_table"], Value::Null);
}

#[test]
fn a_shared_budget_is_the_one_in_force() {
    let gw = gateway();
    master_post(
        &gw,
        "/budget/new",
        json!({"budget_id": "free", "max_budget": 1.0, "budget_duration": "30d"}),
    );
    let (status, c) = master_post(
        &gw,
        "/customer/new",
        json!({"user_id": "alice", "budget_id": "free"}),
    );
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["budget_id"], "free");
    assert_eq!(c["litellm_budget_table"]["budget_id"], "free");
    assert_eq!(c["litellm_budget_table"]["max_budget"], 1.0);
    let (status, e) = master_post(
        &gw,
        "/customer/new",
        json!({"user_id": "bob", "budget_id": "nope"}),
    );
    assert_eq!((status, param(&e)), (400, json!("budget_id")));
    let (status, e) = master_post(
        &gw,
        "/customer/update",
        json!({"user_id": "alice", "budget_id": "nope"}),
    );
    assert_eq!((status, param(&e)), (400, json!("budget_id")));
}

#[test]
fn refusals_name_the_field() {
    let gw = gateway();
    let new = |body| master_post(&gw, "/customer/new", body);
    assert_eq!(new(json!({"user_id": "alice"})).0, 200);
    for (body, status, field) in [
        (json!({"user_id": "alice"}), 400, "user_id"),
        (json!({"alias": "x"}), 422, "user_id"),
        (json!({"user_id": "  "}), 422, "user_id"),
        (
            json!({"user_id": "b", "max_budget": "x"}),
            422,
            "max_budget",
        ),
        (json!({"user_id": "b", "max_budget": -2}), 400, "max_budget"),
        (json!({"user_id": "b", "blocked": "yes"}), 422, "blocked"),
        (
            json!({"user_id": "b", "budget_duration": "soon"}),
            422,
            "budget_duration",
        ),
        (
            json!({"user_id": "b", "allowed_model_region": "mars"}),
            422,
            "allowed_model_region",
        ),
        (
            json!({"user_id": "b", "default_model": "gpt-9"}),
            422,
            "default_model",
        ),
        (
            json!({"user_id": "b", "max_budget": 1, "budget_id": "x"}),
            422,
            "budget_id",
        ),
    ] {
        let (s, e) = new(body.clone());
        assert_eq!((s, param(&e)), (status, json!(field)), "{body}: {e}");
    }
    let (s, e) = master_get(&gw, "/customer/info");
    assert_eq!((s, param(&e)), (422, json!("end_user_id")));
    let (s, e) = master_get(&gw, "/customer/info?end_user_id=nope");
    assert_eq!((s, param(&e)), (404, json!("end_user_id")));
    let (s, e) = master_post(&gw, "/customer/update", json!({"user_id": "nope"}));
    assert_eq!((s, param(&e)), (404, json!("user_id")));
    let (s, e) = master_post(
        &gw,
        "/customer/delete",
        json!({"user_ids": ["alice", "nope"]}),
    );
    assert_eq!((s, param(&e)), (404, json!("user_ids")));
    assert!(e["error"]["message"].as_str().unwrap().contains("nope"));
    let (s, e) = master_post(&gw, "/customer/delete", json!({"user_ids": "alice"}));
    assert_eq!((s, param(&e)), (422, json!("user_ids")));
    let (s, _) = master_post(&gw, "/customer/unblock", json!({"user_ids": ["nope"]}));
    assert_eq!(s, 404);
    assert_eq!(call(&gw, "POST", "/customer/list", MASTER, None).0, 405);
    // Nothing was deleted by the refused delete.
    assert_eq!(master_get(&gw, "/customer/info?end_user_id=alice").0, 200);
}

#[test]
fn update_list_delete() {
    let gw = gateway();
    for id in ["carol", "alice"] {
        master_post(
            &gw,
            "/end_user/new",
            json!({"user_id": id, "max_budget": 3}),
        );
    }
    let (status, c) = master_post(
        &gw,
        "/customer/update",
        json!({"user_id": "alice", "alias": "A", "soft_budget": 1}),
    );
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["alias"], "A");
    assert_eq!(c["litellm_budget_table"]["max_budget"], 3.0, "kept");
    assert_eq!(c["litellm_budget_table"]["soft_budget"], 1.0);
    let (s, e) = master_post(
        &gw,
        "/customer/update",
        json!({"user_id": "alice", "soft_budget": 5}),
    );
    assert_eq!(
        (s, param(&e)),
        (400, json!("soft_budget")),
        "above the kept max"
    );

    let (_, list) = master_get(&gw, "/customer/list");
    let ids: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["user_id"].clone())
        .collect();
    assert_eq!(ids, vec![json!("alice"), json!("carol")]);

    let (status, d) = master_post(&gw, "/customer/delete", json!({"user_ids": ["alice"]}));
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["deleted_customers"], 1);
    assert_eq!(master_get(&gw, "/customer/info?end_user_id=alice").0, 404);
}

#[test]
fn block_creates_unknown_end_users_and_unblock_lists_the_rest() {
    let gw = gateway();
    master_post(&gw, "/customer/new", json!({"user_id": "alice"}));
    let (status, b) = master_post(
        &gw,
        "/customer/block",
        json!({"user_ids": ["alice", "mallory"]}),
    );
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["blocked_users"][0]["user_id"], "alice");
    assert_eq!(b["blocked_users"][1]["blocked"], true);
    let (_, m) = master_get(&gw, "/customer/info?end_user_id=mallory");
    assert_eq!(m["blocked"], true);
    let (status, u) = master_post(&gw, "/end_user/unblock", json!({"user_ids": ["alice"]}));
    assert_eq!(status, 200, "{u}");
    assert_eq!(u["blocked_users"], json!(["mallory"]));
    let (_, a) = master_get(&gw, "/customer/info?end_user_id=alice");
    assert_eq!(a["blocked"], false);
}

#[test]
fn viewers_read_and_internal_users_do_neither() {
    let gw = gateway();
    master_post(&gw, "/customer/new", json!({"user_id": "alice"}));
    for path in ["/customer/info?end_user_id=alice", "/customer/list"] {
        assert_eq!(call(&gw, "GET", path, "sk-viewer", None).0, 200, "{path}");
        assert_eq!(call(&gw, "GET", path, "sk-internal", None).0, 403, "{path}");
    }
    for path in [
        "/customer/new",
        "/customer/update",
        "/customer/delete",
        "/customer/block",
        "/customer/unblock",
    ] {
        let body = Some(json!({"user_id": "alice", "user_ids": ["alice"]}));
        assert_eq!(
            call(&gw, "POST", path, "sk-viewer", body.clone()).0,
            403,
            "{path}"
        );
        assert_eq!(
            call(&gw, "POST", path, "sk-internal", body).0,
            403,
            "{path}"
        );
    }
}

#[test]
fn a_store_that_is_down_is_a_503() {
    let (gw, store) = gateway_on(CONFIG);
    store.down.store(true, Ordering::Relaxed);
    let (status, e) = master_post(&gw, "/customer/new", json!({"user_id": "alice"}));
    assert_eq!(status, 503, "{e}");
    assert_eq!(e["error"]["code"], "store_unavailable");
    assert_eq!(master_get(&gw, "/customer/list").0, 503);
}
