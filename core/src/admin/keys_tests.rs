//! `/key/*` through the whole gateway: admin calls with `call(...)`, and the keys they make
//! used on `/v1/chat/completions`.

use serde_json::{json, Value};

use crate::admin::fields::testing::{master_get, master_post};
use crate::budget::scope::counter;
use crate::budget::{Duration, Scope};
use crate::calendar::iso8601;
use crate::gateway::tests::{admin_gateway, call, run};
use crate::gateway::Gateway;
use crate::identity::records::TeamRecord;
use crate::identity::token;
use crate::store::StoreError;

const CONFIG: &str = "model_list:
  - model_name: m
    litellm_params: {model: mock/x, mock_response: hi}
  - model_name: other
    litellm_params: {model: mock/y, mock_response: hi}
general_settings:
  master_key: sk-master
";

/// `FixedClock`'s time.
const NOW: u64 = 1_700_000_000_000;

pub(crate) fn gateway() -> Gateway {
    admin_gateway(CONFIG)
}

/// `/key/generate` as the master key; the answer (asserted 200).
pub(crate) fn generate(gw: &Gateway, body: Value) -> Value {
    let (status, out) = master_post(gw, "/key/generate", body);
    assert_eq!(status, 200, "{out}");
    out
}

pub(crate) fn chat(gw: &Gateway, key: &str, model: &str) -> (u16, Value) {
    call(
        gw,
        "POST",
        "/v1/chat/completions",
        key,
        Some(json!({"model": model, "messages": [{"role": "user", "content": "hello"}]})),
    )
}

/// A user with `role` made by `/user/new`; its first key.
pub(crate) fn user_key(gw: &Gateway, user_id: &str, role: &str) -> String {
    let (status, out) = master_post(
        gw,
        "/user/new",
        json!({"user_id": user_id, "user_role": role}),
    );
    assert_eq!(status, 200, "{out}");
    out["key"].as_str().unwrap().to_string()
}

fn raw(out: &Value) -> String {
    out["key"].as_str().unwrap().to_string()
}

fn error_of(out: &Value) -> (&str, &str) {
    (
        out["error"]["type"].as_str().unwrap_or(""),
        out["error"]["param"].as_str().unwrap_or(""),
    )
}

#[test]
fn a_key_lives_blocked_unblocked_narrowed_and_deleted() {
    let gw = gateway();
    let made = generate(&gw, json!({"models": ["m", "other"], "key_alias": "svc"}));
    let key = raw(&made);
    assert!(key.starts_with("sk-"));
    assert_eq!(made["token"], token::hash(&key));
    assert_eq!(made["key_name"], token::display_name(&key));
    assert_eq!(made["spend"], 0.0);
    assert_eq!(made["expires"], Value::Null);
    assert_eq!(made["key_alias"], "svc");
    assert_eq!(made["created_at"], iso8601(NOW));
    assert_eq!(chat(&gw, &key, "m").0, 200);

    let (status, out) = master_post(&gw, "/key/block", json!({"key": key}));
    assert_eq!((status, &out["blocked"]), (200, &json!(true)), "{out}");
    assert_eq!(chat(&gw, &key, "m").0, 401);
    let (status, _) = master_post(&gw, "/key/unblock", json!({"key": made["token"]}));
    assert_eq!(status, 200);
    assert_eq!(chat(&gw, &key, "m").0, 200);

    let (status, out) = master_post(&gw, "/key/update", json!({"key": key, "models": ["other"]}));
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["models"], json!(["other"]));
    assert_eq!(out["key_alias"], "svc", "absent fields are kept");
    let (status, out) = chat(&gw, &key, "m");
    assert_eq!((status, error_of(&out).0), (401, "key_model_access_denied"));
    assert_eq!(chat(&gw, &key, "other").0, 200);

    let (status, out) = master_post(&gw, "/key/delete", json!({"keys": [key]}));
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["deleted_keys"], json!([key]));
    assert_eq!(chat(&gw, &key, "other").0, 401);
    let (status, _) = master_get(
        &gw,
        &format!("/key/info?key={}", made["token"].as_str().unwrap()),
    );
    assert_eq!(status, 404);
    // The alias went with it.
    generate(&gw, json!({"key_alias": "svc"}));
}

#[test]
fn an_expired_key_is_refused_with_expired_key() {
    let gw = gateway();
    let made = generate(&gw, json!({"duration": "1s"}));
    assert_eq!(made["expires"], iso8601(NOW + 1_000));
    assert_eq!(made["duration"], "1s");
    let key = raw(&made);
    assert_eq!(chat(&gw, &key, "m").0, 200, "not yet");
    let t = token::hash(&key);
    let mut rec = run(gw.directory().key_fresh(&t)).unwrap().unwrap();
    rec.expires_ms = Some(NOW - 1);
    run(gw.directory().put_key(&t, rec)).unwrap();
    let (status, out) = chat(&gw, &key, "m");
    assert_eq!((status, error_of(&out).0), (400, "expired_key"), "{out}");
    let (_, info) = master_get(&gw, &format!("/key/info?key={t}"));
    assert_eq!(info["info"]["status"], "expired");
    // Updating the duration revives it.
    let (status, _) = master_post(&gw, "/key/update", json!({"key": t, "duration": null}));
    assert_eq!(status, 200);
    assert_eq!(chat(&gw, &key, "m").0, 200);
}

#[test]
fn aliases_are_unique_and_follow_their_key() {
    let gw = gateway();
    let a = generate(&gw, json!({"key_alias": "prod"}));
    let (status, out) = master_post(&gw, "/key/generate", json!({"key_alias": "prod"}));
    assert_eq!((status, error_of(&out).1), (400, "key_alias"), "{out}");
    let b = generate(&gw, json!({"key_alias": "staging"}));
    let (status, out) = master_post(
        &gw,
        "/key/update",
        json!({"key": b["token"], "key_alias": "prod"}),
    );
    assert_eq!((status, error_of(&out).1), (400, "key_alias"), "{out}");
    // Renaming frees the old alias; `key_alias` alone names the key to update.
    let (status, _) = master_post(
        &gw,
        "/key/update",
        json!({"key": a["token"], "key_alias": "prod2"}),
    );
    assert_eq!(status, 200);
    let (status, out) = master_post(
        &gw,
        "/key/update",
        json!({"key_alias": "prod2", "max_budget": 3.5}),
    );
    assert_eq!((status, &out["max_budget"]), (200, &json!(3.5)), "{out}");
    assert_eq!(out["key_alias"], "prod2");
    generate(&gw, json!({"key_alias": "prod"}));
    // Delete by alias frees it.
    let (status, out) = master_post(&gw, "/key/delete", json!({"key_aliases": ["staging"]}));
    assert_eq!((status, &out["deleted_keys"]), (200, &json!(["staging"])));
    assert_eq!(chat(&gw, &raw(&b), "m").0, 401);
    generate(&gw, json!({"key_alias": "staging"}));
}

#[test]
fn custom_keys_must_look_like_keys_and_be_new() {
    let gw = gateway();
    let (status, out) = master_post(&gw, "/key/generate", json!({"key": "my-own-key"}));
    assert_eq!((status, error_of(&out).1), (400, "key"), "{out}");
    let (status, out) = master_post(&gw, "/key/generate", json!({"key": "sk-master"}));
    assert_eq!(
        (status, error_of(&out).1),
        (400, "key"),
        "the master key is not a virtual key"
    );
    let made = generate(&gw, json!({"key": "sk-my-own-key-1"}));
    assert_eq!(made["key"], "sk-my-own-key-1");
    assert_eq!(chat(&gw, "sk-my-own-key-1", "m").0, 200);
    let (status, out) = master_post(&gw, "/key/generate", json!({"key": "sk-my-own-key-1"}));
    assert_eq!((status, error_of(&out).1), (400, "key"), "{out}");
}

#[test]
fn wrong_types_and_bad_values_are_4xx_naming_the_field() {
    let gw = gateway();
    for (body, status, param) in [
        (json!({"max_budget": "lots"}), 422, "max_budget"),
        (json!({"models": "m"}), 422, "models"),
        (json!({"tpm_limit": -1}), 422, "tpm_limit"),
        (json!({"metadata": [1]}), 422, "metadata"),
        (json!({"blocked": "yes"}), 422, "blocked"),
        (json!({"budget_duration": "soon"}), 422, "budget_duration"),
        (json!({"duration": "forever"}), 422, "duration"),
        (
            json!({"model_max_budget": {"m": {"budget_limit": 1, "time_period": "x"}}}),
            422,
            "model_max_budget.m.time_period",
        ),
        (json!({"max_budget": -2}), 400, "max_budget"),
        (json!({"team_id": "no-such-team"}), 400, "team_id"),
        (json!({"budget_id": "no-such-budget"}), 400, "budget_id"),
    ] {
        let (got, out) = master_post(&gw, "/key/generate", body.clone());
        assert_eq!((got, error_of(&out).1), (status, param), "{body}: {out}");
        assert_eq!(out["error"]["type"], "invalid_request_error");
    }
    for (path, param) in [
        ("/key/list?size=500", "size"),
        ("/key/list?page=0", "page"),
        ("/key/list?page=two", "page"),
        ("/key/list?return_full_object=maybe", "return_full_object"),
    ] {
        let (got, out) = master_get(&gw, path);
        assert_eq!((got, error_of(&out).1), (422, param), "{path}: {out}");
    }
    for (path, body, status, param) in [
        ("/key/update", json!({"max_budget": 1}), 422, "key"),
        ("/key/update", json!({"key": "sk-nope-nope"}), 404, "key"),
        ("/key/block", json!({}), 422, "key"),
        ("/key/block", json!({"key": 5}), 422, "key"),
        ("/key/delete", json!({}), 422, "keys"),
        (
            "/key/delete",
            json!({"keys": ["sk-nope-nope"]}),
            404,
            "keys",
        ),
        ("/key/regenerate", json!({}), 422, "key"),
    ] {
        let (got, out) = master_post(&gw, path, body.clone());
        assert_eq!(
            (got, error_of(&out).1),
            (status, param),
            "{path} {body}: {out}"
        );
    }
    let (status, out) = master_get(&gw, "/key/info");
    assert_eq!(
        (status, error_of(&out).1),
        (400, "key"),
        "the master key has no key record"
    );
}

#[test]
fn a_delete_naming_an_unknown_key_deletes_nothing() {
    let gw = gateway();
    let key = raw(&generate(&gw, json!({})));
    let (status, out) = master_post(&gw, "/key/delete", json!({"keys": [key, "sk-unknown-1"]}));
    assert_eq!(status, 404, "{out}");
    assert!(out["error"]["message"]
        .as_str()
        .unwrap()
        .contains("sk-unknown-1"));
    assert_eq!(chat(&gw, &key, "m").0, 200);
}

#[test]
fn lists_page_newest_first_and_filter() {
    let gw = gateway();
    let mut tokens = Vec::new();
    for i in 0..12 {
        let user = if i % 3 == 0 { "u1" } else { "u2" };
        let made = generate(&gw, json!({"user_id": user, "key_alias": format!("k{i}")}));
        tokens.push(made["token"].as_str().unwrap().to_string());
    }
    let (status, out) = master_get(&gw, "/key/list?page=3&size=5");
    assert_eq!(status, 200, "{out}");
    assert_eq!(
        (
            out["total_count"].as_u64(),
            out["total_pages"].as_u64(),
            out["current_page"].as_u64()
        ),
        (Some(12), Some(3), Some(3))
    );
    assert_eq!(out["keys"].as_array().unwrap().len(), 2);
    assert!(
        out["keys"][0].is_string(),
        "tokens unless full objects are asked for"
    );
    let (_, first) = master_get(&gw, "/key/list");
    assert_eq!(first["keys"].as_array().unwrap().len(), 10, "default size");
    let (_, u1) = master_get(&gw, "/key/list?user_id=u1&return_full_object=true");
    assert_eq!(u1["total_count"], 4);
    assert!(u1["keys"]
        .as_array()
        .unwrap()
        .iter()
        .all(|k| k["user_id"] == "u1" && k["token"].is_string()));
    let (_, one) = master_get(&gw, "/key/list?key_alias=k7");
    assert_eq!(one["keys"], json!([tokens[7]]));
    let (_, past) = master_get(&gw, "/key/list?page=9");
    assert_eq!(past["keys"], json!([]));
}

#[test]
fn raw_keys_never_appear_in_info_or_lists() {
    let gw = gateway();
    let key = raw(&generate(
        &gw,
        json!({"user_id": "u1", "metadata": {"app": "x"}}),
    ));
    let token = token::hash(&key);
    let (status, info) = master_get(&gw, &format!("/key/info?key={key}"));
    assert_eq!(status, 200);
    assert_eq!(
        info["key"], token,
        "the token, even when the raw key was asked"
    );
    assert!(info["info"].get("token").is_none());
    assert_eq!(info["info"]["metadata"], json!({"app": "x"}));
    assert_eq!(info["info"]["status"], "active");
    let (_, own) = call(&gw, "GET", "/key/info", &key, None);
    assert_eq!(own["key"], token, "without ?key=, the caller's own");
    let (_, list) = master_get(&gw, "/key/list?return_full_object=true");
    let (_, user) = master_get(&gw, "/user/info?user_id=u1");
    let (_, blocked) = master_post(&gw, "/key/block", json!({"key": key}));
    let (_, updated) = master_post(&gw, "/key/update", json!({"key": key, "tags": ["a"]}));
    for out in [&info, &own, &list, &user, &blocked, &updated] {
        assert!(!out.to_string().contains(&key), "{out}");
    }
}

#[test]
fn info_reports_the_spend_of_the_current_period() {
    let gw = gateway();
    let made = generate(&gw, json!({"budget_duration": "1d", "max_budget": 10}));
    let token = made["token"].as_str().unwrap().to_string();
    assert_eq!(made["budget_reset_at"], "2023-11-15T00:00:00.000000+00:00");
    add_spend(&gw, Scope::Key(token.clone()), Some("1d"), 1.25);
    let (_, info) = master_get(&gw, &format!("/key/info?key={token}"));
    assert_eq!(info["info"]["spend"], 1.25);
    assert_eq!(info["info"]["max_budget"], 10.0);
    assert_eq!(
        info["info"]["budget_reset_at"],
        "2023-11-15T00:00:00.000000+00:00"
    );
}

fn add_spend(gw: &Gateway, scope: Scope, duration: Option<&str>, usd: f64) {
    let cal = gw.config().governance.calendar;
    let (key, ttl) = counter(&scope, duration.and_then(Duration::parse), NOW, cal);
    run(gw
        .directory()
        .store()
        .counter_add(&key, (usd * 1e9) as i64, ttl))
    .unwrap();
}

#[test]
fn regenerating_moves_the_record_alias_and_spend_to_a_new_key() {
    let gw = gateway();
    let made = generate(
        &gw,
        json!({"key_alias": "svc", "models": ["m"], "budget_duration": "30d",
        "model_max_budget": {"m": {"budget_limit": 5, "time_period": "1d"}}}),
    );
    let (old, old_token) = (raw(&made), made["token"].as_str().unwrap().to_string());
    add_spend(&gw, Scope::Key(old_token.clone()), Some("30d"), 2.0);
    add_spend(
        &gw,
        Scope::KeyModel {
            token: old_token.clone(),
            model: "m".into(),
        },
        Some("1d"),
        0.5,
    );
    let (status, out) = master_post(
        &gw,
        &format!("/key/{old}/regenerate"),
        json!({"max_budget": 9}),
    );
    assert_eq!(status, 200, "{out}");
    let new = raw(&out);
    assert_ne!(new, old);
    assert_eq!(
        (&out["key_alias"], &out["max_budget"], &out["models"]),
        (&json!("svc"), &json!(9.0), &json!(["m"]))
    );
    assert_eq!(out["spend"], 2.0, "spend is not reset by regenerating");
    let new_token = token::hash(&new);
    assert_eq!(
        run(gw.directory().alias_token("svc")).unwrap(),
        Some(new_token.clone())
    );
    let cal = gw.config().governance.calendar;
    let spent = run(crate::budget::spend::spent_usd(
        gw.directory().store().as_ref(),
        &Scope::KeyModel {
            token: new_token,
            model: "m".into(),
        },
        Some("1d"),
        NOW,
        cal,
    ))
    .unwrap();
    assert_eq!(spent, 0.5);
    assert_eq!(chat(&gw, &old, "m").0, 401);
    assert_eq!(chat(&gw, &new, "m").0, 200);
    // The body form, with a custom new key.
    let (status, out) = master_post(
        &gw,
        "/key/regenerate",
        json!({"key": new, "new_key": "sk-rotated-key-1"}),
    );
    assert_eq!(
        (status, &out["key"]),
        (200, &json!("sk-rotated-key-1")),
        "{out}"
    );
    assert_eq!(chat(&gw, "sk-rotated-key-1", "m").0, 200);
    let (status, _) = call(
        &gw,
        "POST",
        &format!("/key/{old}/regenerate"),
        "sk-master",
        None,
    );
    assert_eq!(status, 404, "the old key is gone");
}

#[test]
fn roles_decide_who_may_manage_and_read_keys() {
    let gw = gateway();
    let alice = user_key(&gw, "alice", "internal_user");
    let bob = user_key(&gw, "bob", "internal_user");
    let viewer = user_key(&gw, "vera", "proxy_admin_viewer");
    let admin = user_key(&gw, "ada", "proxy_admin");
    let read_only = user_key(&gw, "ivy", "internal_user_viewer");

    // An internal user makes keys for itself only.
    let (status, out) = call(
        &gw,
        "POST",
        "/key/generate",
        &alice,
        Some(json!({"user_id": "bob"})),
    );
    assert_eq!(
        (status, error_of(&out)),
        (403, ("permission_error", "user_id")),
        "{out}"
    );
    let (status, mine) = call(
        &gw,
        "POST",
        "/key/generate",
        &alice,
        Some(json!({"models": ["m"]})),
    );
    assert_eq!((status, &mine["user_id"]), (200, &json!("alice")), "{mine}");
    assert_eq!(chat(&gw, &raw(&mine), "m").0, 200);
    for who in [&viewer, &read_only] {
        let (status, _) = call(&gw, "POST", "/key/generate", who, Some(json!({})));
        assert_eq!(status, 403);
    }

    // Reads: own key and own user's keys; readers everything.
    let bobs = token::hash(&bob);
    let (status, _) = call(&gw, "GET", &format!("/key/info?key={bobs}"), &alice, None);
    assert_eq!(status, 403);
    let (status, _) = call(
        &gw,
        "GET",
        &format!("/key/info?key={}", mine["token"].as_str().unwrap()),
        &alice,
        None,
    );
    assert_eq!(status, 200, "a key of alice's user");
    let (status, _) = call(&gw, "GET", &format!("/key/info?key={bobs}"), &viewer, None);
    assert_eq!(status, 200);
    let (status, list) = call(&gw, "GET", "/key/list", &alice, None);
    assert_eq!((status, &list["total_count"]), (200, &json!(2)), "{list}");
    let (status, _) = call(&gw, "GET", "/key/list?user_id=bob", &alice, None);
    assert_eq!(status, 403);
    let (_, all) = call(&gw, "GET", "/key/list", &viewer, None);
    assert_eq!(all["total_count"], 6);

    // Changes: admins only.
    for who in [&alice, &viewer, &read_only] {
        for (path, body) in [
            ("/key/update", json!({"key": bobs, "max_budget": 1})),
            ("/key/block", json!({"key": bobs})),
            ("/key/delete", json!({"keys": [bobs]})),
            ("/key/regenerate", json!({"key": bobs})),
        ] {
            let (status, out) = call(&gw, "POST", path, who, Some(body));
            assert_eq!(
                (status, error_of(&out).0),
                (403, "permission_error"),
                "{path}: {out}"
            );
        }
    }
    let (status, out) = call(
        &gw,
        "POST",
        "/key/generate",
        &admin,
        Some(json!({"user_id": "bob"})),
    );
    assert_eq!((status, &out["created_by"]), (200, &json!("ada")), "{out}");
    let (status, _) = call(
        &gw,
        "POST",
        "/key/block",
        &admin,
        Some(json!({"key": bobs})),
    );
    assert_eq!(status, 200);
    assert_eq!(chat(&gw, &bob, "m").0, 401);
}

#[test]
fn an_internal_user_may_use_only_its_own_teams_and_no_shared_budget() {
    let gw = gateway();
    let alice = user_key(&gw, "alice", "internal_user");
    for (id, member) in [("t-in", "alice"), ("t-out", "bob")] {
        let team = TeamRecord {
            team_id: id.into(),
            members_with_roles: vec![crate::identity::records::TeamMember {
                user_id: Some(member.into()),
                ..Default::default()
            }],
            ..Default::default()
        };
        run(gw.directory().put_team(id, team)).unwrap();
    }
    let (status, out) = call(
        &gw,
        "POST",
        "/key/generate",
        &alice,
        Some(json!({"team_id": "t-in"})),
    );
    assert_eq!((status, &out["team_id"]), (200, &json!("t-in")), "{out}");
    let (status, out) = call(
        &gw,
        "POST",
        "/key/generate",
        &alice,
        Some(json!({"team_id": "t-out"})),
    );
    assert_eq!((status, error_of(&out).1), (403, "team_id"));
    let (status, out) = call(
        &gw,
        "POST",
        "/key/generate",
        &alice,
        Some(json!({"budget_id": "b"})),
    );
    assert_eq!((status, error_of(&out).1), (403, "budget_id"));
    let (status, out) = call(&gw, "GET", "/key/list?team_id=t-out", &alice, None);
    assert_eq!((status, error_of(&out).1), (403, "team_id"));
    let (_, out) = call(&gw, "GET", "/key/list?team_id=t-in", &alice, None);
    assert_eq!(out["total_count"], 1);
    // The master key may name any existing team.
    generate(&gw, json!({"team_id": "t-out"}));
}

#[test]
fn a_store_that_is_down_is_a_503() {
    let down = Gateway::new(
        crate::config::Config::from_yaml(CONFIG, &|_| None).unwrap(),
        crate::gateway::tests::ports(
            crate::gateway::tests::ScriptedClient::new(vec![]),
            std::sync::Arc::new(crate::gateway::tests::FixedClock),
            std::sync::Arc::new(Down),
            std::sync::Arc::new(crate::gateway::tests::HeldTasks::default()),
        ),
    );
    for (method, path, body) in [
        ("POST", "/key/generate", Some(json!({}))),
        ("GET", "/key/list", None),
        ("GET", "/key/info?key=sk-some-key-1", None),
        ("POST", "/user/new", Some(json!({}))),
        ("GET", "/user/list", None),
    ] {
        let (status, out) = call(&down, method, path, "sk-master", body);
        assert_eq!(
            (status, &out["error"]["code"]),
            (503, &json!("store_unavailable")),
            "{path}: {out}"
        );
    }
}

/// A Store whose every call fails.
struct Down;

#[async_trait::async_trait]
impl crate::store::Store for Down {
    async fn get(&self, _: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Err(StoreError::Timeout)
    }
    async fn put(&self, _: &str, _: &[u8], _: Option<u64>) -> Result<(), StoreError> {
        Err(StoreError::Timeout)
    }
    async fn put_if_absent(&self, _: &str, _: &[u8], _: Option<u64>) -> Result<bool, StoreError> {
        Err(StoreError::Timeout)
    }
    async fn delete(&self, _: &str) -> Result<bool, StoreError> {
        Err(StoreError::Timeout)
    }
    async fn list_prefix(&self, _: &str, _: usize) -> Result<Vec<crate::store::Entry>, StoreError> {
        Err(StoreError::Timeout)
    }
    async fn counter_add(&self, _: &str, _: i64, _: Option<u64>) -> Result<i64, StoreError> {
        Err(StoreError::Timeout)
    }
    async fn counter_add_capped(
        &self,
        _: &str,
        _: i64,
        _: i64,
        _: Option<u64>,
    ) -> Result<crate::store::CapOutcome, StoreError> {
        Err(StoreError::Timeout)
    }
    async fn counter_get(&self, _: &str) -> Result<i64, StoreError> {
        Err(StoreError::Timeout)
    }
    async fn batch(
        &self,
        _: &[crate::store::BatchOp],
    ) -> Result<crate::store::BatchOutcome, StoreError> {
        Err(StoreError::Timeout)
    }
    async fn lease_count(&self, _: &str) -> Result<i64, StoreError> {
        Err(StoreError::Timeout)
    }
    async fn log_append(&self, _: &str, _: u64, _: &[u8]) -> Result<(), StoreError> {
        Err(StoreError::Timeout)
    }
    async fn log_range(
        &self,
        _: &str,
        _: u64,
        _: u64,
        _: usize,
    ) -> Result<Vec<crate::store::LogEntry>, StoreError> {
        Err(StoreError::Timeout)
    }
}
