use serde_json::{json, Value};

use crate::admin::fields::testing::{gateway, key_for, master_get, master_post, MASTER};
use crate::budget::scope::counter;
use crate::budget::{Duration, Scope};
use crate::gateway::tests::{call, run};
use crate::gateway::Gateway;
use crate::identity::records::{KeyRecord, Role, UserRecord};
use crate::identity::token;

fn param(e: &Value) -> Value {
    e["error"]["param"].clone()
}

pub(super) fn new_team(gw: &Gateway, body: Value) -> Value {
    let (status, t) = master_post(gw, "/team/new", body);
    assert_eq!(status, 200, "{t}");
    t
}

pub(super) fn user(gw: &Gateway, id: &str) -> UserRecord {
    run(gw.directory().user_fresh(id)).unwrap().unwrap()
}

/// Adds `usd` to a scope's counter for the period `duration` is in now.
fn spend(gw: &Gateway, scope: Scope, duration: &str, usd: f64) {
    let (key, _) = counter(
        &scope,
        Duration::parse(duration),
        1_700_000_000_000,
        Default::default(),
    );
    run(gw
        .directory()
        .store()
        .counter_add(&key, (usd * 1e9) as i64, None))
    .unwrap();
}

pub(super) fn chat(gw: &Gateway, key: &str) -> (u16, Value) {
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    call(gw, "POST", "/v1/chat/completions", key, Some(body))
}

#[test]
fn a_team_is_created_and_its_info_has_litellms_shape() {
    let gw = gateway();
    key_for(&gw, "sk-alice-key", "alice", Role::InternalUser, None);
    let t = new_team(
        &gw,
        json!({"team_id": "eng", "team_alias": "Engineering", "models": ["m"], "max_budget": 10.0,
            "budget_duration": "30d", "tpm_limit": 1000, "rpm_limit": 10, "team_member_budget": 2.0,
            "model_rpm_limit": {"m": 5}, "metadata": {"cost_center": "42"},
            "members_with_roles": [{"role": "admin", "user_id": "alice"}, {"role": "user", "user_id": "bob", "user_email": "bob@x.test"}]}),
    );
    assert_eq!(t["team_id"], "eng");
    assert_eq!(t["team_alias"], "Engineering");
    assert_eq!(t["models"], json!(["m"]));
    assert_eq!(
        t["members_with_roles"][0],
        json!({"user_id": "alice", "user_email": null, "role": "admin"})
    );
    assert_eq!(
        t["metadata"],
        json!({"cost_center": "42", "model_rpm_limit": {"m": 5}})
    );
    assert_eq!(t["team_member_budget_table"]["max_budget"], 2.0);
    assert_eq!(
        (t["spend"].clone(), t["blocked"].clone()),
        (json!(0.0), json!(false))
    );
    assert_eq!(t["budget_reset_at"], "2023-12-01T00:00:00.000000+00:00");
    assert_eq!(t["created_at"], "2023-11-14T22:13:20.000000+00:00");
    assert_eq!(t["soft_budget"], Value::Null);
    assert_eq!(
        user(&gw, "alice").teams,
        vec!["eng"],
        "the user lists its team"
    );

    let raw = "sk-team-key-0001";
    let tok = token::hash(raw);
    run(gw.directory().put_key(
        &tok,
        KeyRecord {
            token: tok.clone(),
            key_name: token::display_name(raw),
            team_id: Some("eng".into()),
            ..Default::default()
        },
    ))
    .unwrap();
    spend(&gw, Scope::Team("eng".into()), "30d", 1.5);
    spend(
        &gw,
        Scope::Member {
            team: "eng".into(),
            user: "alice".into(),
        },
        "30d",
        0.5,
    );
    spend(&gw, Scope::Key(tok.clone()), "30d", 9.0); // the key has no period: all time counts

    let (status, info) = master_get(&gw, "/team/info?team_id=eng");
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["team_id"], "eng");
    assert_eq!(info["team_info"]["spend"], 1.5);
    assert_eq!(info["keys"].as_array().unwrap().len(), 1);
    let k = &info["keys"][0];
    assert_eq!(
        (k["token"].clone(), k["key_name"].clone()),
        (json!(tok), json!("sk-...0001"))
    );
    assert_eq!(k["spend"], 0.0);
    assert!(!info.to_string().contains(raw), "no raw key anywhere");
    let ms = info["team_memberships"].as_array().unwrap();
    assert_eq!(ms.len(), 2);
    assert_eq!(ms[0]["user_id"], "alice");
    assert_eq!(ms[0]["team_id"], "eng");
    assert_eq!(ms[0]["spend"], 0.5);
    assert_eq!(ms[0]["litellm_budget_table"]["max_budget"], 2.0);
    assert_eq!(ms[0]["budget_source"], "team_default");
}

#[test]
fn a_team_without_an_id_gets_a_uuid() {
    let gw = gateway();
    let t = new_team(&gw, json!({"team_alias": "x"}));
    assert_eq!(t["team_id"].as_str().unwrap().len(), 36);
    let t = new_team(&gw, json!({"team_id": "  "}));
    assert_eq!(
        t["team_id"].as_str().unwrap().len(),
        36,
        "a blank id is none"
    );
}

#[test]
fn refusals_name_the_field() {
    let gw = gateway();
    new_team(&gw, json!({"team_id": "eng"}));
    for (body, status, field) in [
        (json!({"team_id": "eng"}), 400, "team_id"),
        (json!({"max_budget": "ten"}), 422, "max_budget"),
        (json!({"max_budget": -1}), 400, "max_budget"),
        (
            json!({"max_budget": 1, "soft_budget": 1}),
            400,
            "soft_budget",
        ),
        (
            json!({"budget_duration": "forever"}),
            422,
            "budget_duration",
        ),
        (json!({"models": "m"}), 422, "models"),
        (json!({"tpm_limit": 1.5}), 422, "tpm_limit"),
        (
            json!({"members_with_roles": [{"role": "owner", "user_id": "a"}]}),
            422,
            "members_with_roles[0].role",
        ),
        (
            json!({"members_with_roles": [{"user_id": "a"}]}),
            422,
            "members_with_roles[0].role",
        ),
        (
            json!({"members_with_roles": [{"role": "user"}]}),
            422,
            "members_with_roles[0]",
        ),
        (
            json!({"members_with_roles": [{"role": "user", "user_id": "a"}, {"role": "admin", "user_id": "a"}]}),
            400,
            "members_with_roles[1]",
        ),
    ] {
        let (s, e) = master_post(&gw, "/team/new", body.clone());
        assert_eq!((s, param(&e)), (status, json!(field)), "{body}: {e}");
    }
    for (method, path, body, status, field) in [
        ("GET", "/team/info", None, 422, "team_id"),
        ("GET", "/team/info?team_id=nope", None, 404, "team_id"),
        (
            "POST",
            "/team/update",
            Some(json!({"max_budget": 1})),
            422,
            "team_id",
        ),
        (
            "POST",
            "/team/update",
            Some(json!({"team_id": "nope"})),
            404,
            "team_id",
        ),
        (
            "POST",
            "/team/delete",
            Some(json!({"team_ids": ["eng", "nope"]})),
            404,
            "team_ids",
        ),
        ("POST", "/team/delete", Some(json!({})), 422, "team_ids"),
        (
            "POST",
            "/team/block",
            Some(json!({"team_id": "nope"})),
            404,
            "team_id",
        ),
        ("POST", "/team/unblock", Some(json!({})), 422, "team_id"),
    ] {
        let (s, e) = call(&gw, method, path, MASTER, body);
        assert_eq!((s, param(&e)), (status, json!(field)), "{path}: {e}");
    }
    assert_eq!(master_get(&gw, "/team/new").0, 405);
    assert_eq!(
        master_get(&gw, "/team/info?team_id=eng").0,
        200,
        "not deleted"
    );
}

#[test]
fn update_keeps_what_it_does_not_name() {
    let gw = gateway();
    new_team(
        &gw,
        json!({"team_id": "eng", "max_budget": 5, "members_with_roles": [{"role": "user", "user_id": "a"}]}),
    );
    let (status, u) = master_post(
        &gw,
        "/team/update",
        json!({"team_id": "eng", "team_alias": "E", "rpm_limit": 3, "members_with_roles": []}),
    );
    assert_eq!(status, 200, "{u}");
    assert_eq!(u["team_id"], "eng");
    let d = &u["data"];
    assert_eq!(
        (
            d["team_alias"].clone(),
            d["rpm_limit"].clone(),
            d["max_budget"].clone()
        ),
        (json!("E"), json!(3), json!(5.0))
    );
    assert_eq!(
        d["members_with_roles"][0]["user_id"], "a",
        "members change through member_add/delete"
    );
    let (s, e) = master_post(
        &gw,
        "/team/update",
        json!({"team_id": "eng", "soft_budget": 6}),
    );
    assert_eq!((s, param(&e)), (400, json!("soft_budget")));
}

#[test]
fn delete_takes_the_teams_keys_with_it() {
    let gw = gateway();
    key_for(&gw, "sk-alice-key", "alice", Role::InternalUser, None);
    new_team(
        &gw,
        json!({"team_id": "eng", "members_with_roles": [{"role": "user", "user_id": "alice"}]}),
    );
    new_team(&gw, json!({"team_id": "ops"}));
    key_for(
        &gw,
        "sk-eng-key-1",
        "alice",
        Role::InternalUser,
        Some("eng"),
    );
    let tok = token::hash("sk-eng-key-1");
    let mut k = (*run(gw.directory().key(&tok)).unwrap().unwrap()).clone();
    k.key_alias = Some("eng-bot".into());
    run(gw.directory().put_key(&tok, k)).unwrap();
    run(gw.directory().claim_alias("eng-bot", &tok)).unwrap();
    let (status, d) = master_post(&gw, "/team/delete", json!({"team_ids": ["eng", "eng"]}));
    assert_eq!(status, 200, "{d}");
    assert_eq!(d, json!({"deleted_teams": ["eng"]}));
    assert!(
        run(gw.directory().key(&tok)).unwrap().is_none(),
        "the team's key went"
    );
    assert!(
        run(gw.directory().alias_token("eng-bot"))
            .unwrap()
            .is_none(),
        "and its alias"
    );
    assert!(user(&gw, "alice").teams.is_empty());
    assert_eq!(chat(&gw, "sk-eng-key-1").0, 401);
    assert_eq!(master_get(&gw, "/team/info?team_id=ops").0, 200);
}

#[test]
fn list_is_sorted_by_alias_and_filters_by_user() {
    let gw = gateway();
    new_team(
        &gw,
        json!({"team_id": "t1", "team_alias": "zeta", "members_with_roles": [{"role": "user", "user_id": "u"}]}),
    );
    new_team(&gw, json!({"team_id": "t2", "team_alias": "alpha"}));
    let (status, l) = master_get(&gw, "/team/list");
    assert_eq!(status, 200, "{l}");
    let ids: Vec<_> = l
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["team_id"].clone())
        .collect();
    assert_eq!(ids, vec![json!("t2"), json!("t1")]);
    assert_eq!(l[1]["team_memberships"][0]["user_id"], "u");
    assert_eq!(l[1]["keys"], json!([]));
    let (_, l) = master_get(&gw, "/team/list?user_id=u");
    assert_eq!(l.as_array().unwrap().len(), 1);
    assert_eq!(l[0]["team_id"], "t1");
}
