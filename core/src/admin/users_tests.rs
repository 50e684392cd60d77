//! `/user/*` through the whole gateway.

use serde_json::{json, Value};

use crate::admin::fields::testing::{master_get, master_post};
use crate::admin::keys::tests::{chat, gateway, generate, user_key};
use crate::calendar::iso8601;
use crate::gateway::tests::{call, run};
use crate::identity::records::{Role, TeamRecord, TeamRole};
use crate::identity::token;

fn new_user(gw: &crate::gateway::Gateway, body: Value) -> Value {
    let (status, out) = master_post(gw, "/user/new", body);
    assert_eq!(status, 200, "{out}");
    out
}

fn team(gw: &crate::gateway::Gateway, id: &str, alias: &str) {
    let rec = TeamRecord {
        team_id: id.into(),
        team_alias: Some(alias.into()),
        ..Default::default()
    };
    run(gw.directory().put_team(id, rec)).unwrap();
}

#[test]
fn a_new_user_gets_a_working_key_bound_to_its_models() {
    let gw = gateway();
    team(&gw, "t1", "Team One");
    let out = new_user(
        &gw,
        json!({"user_email": "Ann@Example.com", "user_alias": "ann", "models": ["m"],
               "max_budget": 20, "budget_duration": "30d", "key_alias": "ann-key", "duration": "1h",
               "teams": ["t1"], "metadata": {"dept": "x"}}),
    );
    let user_id = out["user_id"].as_str().unwrap().to_string();
    // A v4 UUID from the entropy port.
    assert_eq!(user_id.len(), 36);
    assert_eq!(&user_id[14..15], "4");
    let key = out["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("sk-"));
    assert_eq!(out["token"], token::hash(&key));
    assert_eq!(out["key_alias"], "ann-key");
    assert_eq!(out["expires"], iso8601(1_700_000_000_000 + 3_600_000));
    assert_eq!(out["user_role"], "internal_user");
    assert_eq!(out["max_budget"], 20.0);
    assert_eq!(out["teams"], json!(["t1"]));
    assert_eq!(chat(&gw, &key, "m").0, 200);
    let (status, err) = chat(&gw, &key, "other");
    assert_eq!(
        (status, &err["error"]["type"]),
        (401, &json!("key_model_access_denied"))
    );
    // The user joined the team as a member.
    let t1 = run(gw.directory().team_fresh("t1")).unwrap().unwrap();
    assert_eq!(t1.member(&user_id).unwrap().role, TeamRole::User);

    let (status, info) = master_get(&gw, &format!("/user/info?user_id={user_id}"));
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["user_id"], user_id);
    assert_eq!(info["user_info"]["user_email"], "Ann@Example.com");
    // The two calls above reserved (and, with after-response work held, never settled) a
    // nano-dollar each: a mock model has no price, and a reservation is never 0.
    assert!(info["user_info"]["spend"].as_f64().unwrap() < 1e-6);
    assert_eq!(info["keys"].as_array().unwrap().len(), 1);
    assert_eq!(info["keys"][0]["token"], token::hash(&key));
    assert_eq!(info["keys"][0]["key_alias"], "ann-key");
    assert_eq!(info["teams"][0]["team_alias"], "Team One");
    // Teams are shown as `/team/info` shows them: with their spend, and no stored `_ms` times.
    assert_eq!(info["teams"][0]["spend"], 0.0);
    assert!(info["teams"][0].get("created_at_ms").is_none());
    assert!(!info.to_string().contains(&key), "no raw key in /user/info");
}

#[test]
fn user_new_checks_its_fields() {
    let gw = gateway();
    new_user(&gw, json!({"user_id": "u1", "user_email": "a@b.c"}));
    for (body, status, param) in [
        (json!({"user_role": "root"}), 422, "user_role"),
        (json!({"user_role": "team"}), 422, "user_role"),
        (json!({"user_id": "  "}), 422, "user_id"),
        (json!({"max_budget": "x"}), 422, "max_budget"),
        (json!({"budget_duration": "soon"}), 422, "budget_duration"),
        (json!({"teams": [5]}), 422, "teams[0]"),
        (json!({"teams": ["nope"]}), 400, "teams"),
        (json!({"user_id": "u1"}), 409, "user_id"),
        (json!({"user_email": "A@B.C"}), 409, "user_email"),
        (json!({"duration": "often"}), 422, "duration"),
    ] {
        let (got, out) = master_post(&gw, "/user/new", body.clone());
        assert_eq!(
            (got, out["error"]["param"].as_str().unwrap_or("")),
            (status, param),
            "{body}: {out}"
        );
    }
    // A taken key alias refuses the whole request: no user is left behind.
    generate(&gw, json!({"key_alias": "taken"}));
    let (status, _) = master_post(
        &gw,
        "/user/new",
        json!({"user_id": "u2", "key_alias": "taken"}),
    );
    assert_eq!(status, 400);
    assert!(run(gw.directory().user_fresh("u2")).unwrap().is_none());
    // Without a key.
    let out = new_user(&gw, json!({"user_id": "u3", "auto_create_key": false}));
    assert_eq!(out["key"], "");
    let (_, keys) = master_get(&gw, "/key/list?user_id=u3");
    assert_eq!(keys["total_count"], 0);
}

#[test]
fn users_read_only_themselves_and_admins_manage() {
    let gw = gateway();
    let alice = user_key(&gw, "alice", "internal_user");
    user_key(&gw, "bob", "internal_user");
    let viewer = user_key(&gw, "vera", "proxy_admin_viewer");
    let admin = user_key(&gw, "ada", "proxy_admin");

    let (status, me) = call(&gw, "GET", "/user/info", &alice, None);
    assert_eq!((status, &me["user_id"]), (200, &json!("alice")), "{me}");
    let (status, _) = call(&gw, "GET", "/user/info?user_id=alice", &alice, None);
    assert_eq!(status, 200);
    let (status, out) = call(&gw, "GET", "/user/info?user_id=bob", &alice, None);
    assert_eq!(
        (status, &out["error"]["type"]),
        (403, &json!("permission_error"))
    );
    let (status, _) = call(&gw, "GET", "/user/info?user_id=bob", &viewer, None);
    assert_eq!(status, 200);
    let (status, _) = call(&gw, "GET", "/user/list", &alice, None);
    assert_eq!(status, 403);
    let (status, _) = call(&gw, "GET", "/user/list", &viewer, None);
    assert_eq!(status, 200);
    for who in [&alice, &viewer] {
        for (path, body) in [
            ("/user/new", json!({})),
            (
                "/user/update",
                json!({"user_id": "alice", "max_budget": 1000}),
            ),
            ("/user/delete", json!({"user_ids": ["bob"]})),
        ] {
            let (status, _) = call(&gw, "POST", path, who, Some(body));
            assert_eq!(status, 403, "{path}");
        }
    }
    let (status, _) = call(
        &gw,
        "POST",
        "/user/new",
        &admin,
        Some(json!({"user_id": "carl"})),
    );
    assert_eq!(status, 200);
    // The master key's admin view: every key and team.
    let (status, all) = master_get(&gw, "/user/info");
    assert_eq!((status, all["keys"].as_array().unwrap().len()), (200, 5));
    assert_eq!(all["user_id"], Value::Null);
    let (status, out) = master_get(&gw, "/user/info?user_id=nobody");
    assert_eq!((status, &out["error"]["param"]), (404, &json!("user_id")));
}

#[test]
fn updates_patch_users_and_roles_take_effect() {
    let gw = gateway();
    let key = user_key(&gw, "u1", "internal_user");
    let (status, _) = call(
        &gw,
        "POST",
        "/key/generate",
        &key,
        Some(json!({"user_id": "x"})),
    );
    assert_eq!(status, 403);
    let (status, out) = master_post(
        &gw,
        "/user/update",
        json!({"user_id": "u1", "user_role": "proxy_admin", "max_budget": 5, "user_email": "u1@x.y"}),
    );
    assert_eq!(status, 200, "{out}");
    assert_eq!(
        (&out["user_role"], &out["max_budget"]),
        (&json!("proxy_admin"), &json!(5.0))
    );
    let u = run(gw.directory().user("u1")).unwrap().unwrap();
    assert_eq!(u.user_role, Role::ProxyAdmin);
    let (status, _) = call(
        &gw,
        "POST",
        "/key/generate",
        &key,
        Some(json!({"user_id": "x"})),
    );
    assert_eq!(status, 200, "now an admin");
    // By email; a null clears.
    let (status, out) = master_post(
        &gw,
        "/user/update",
        json!({"user_email": "U1@x.y", "max_budget": null}),
    );
    assert_eq!(
        (status, &out["max_budget"], &out["user_email"]),
        (200, &Value::Null, &json!("u1@x.y"))
    );
    for (body, status, param) in [
        (json!({"max_budget": 1}), 422, "user_id"),
        (json!({"user_id": "nobody"}), 404, "user_id"),
        (
            json!({"user_id": "u1", "user_role": "boss"}),
            422,
            "user_role",
        ),
        (
            json!({"user_id": "u1", "tpm_limit": "many"}),
            422,
            "tpm_limit",
        ),
    ] {
        let (got, out) = master_post(&gw, "/user/update", body.clone());
        assert_eq!(
            (got, out["error"]["param"].as_str().unwrap_or("")),
            (status, param),
            "{body}: {out}"
        );
    }
}

#[test]
fn deleting_users_deletes_their_keys_and_memberships() {
    let gw = gateway();
    team(&gw, "t1", "T");
    new_user(
        &gw,
        json!({"user_id": "u1", "teams": [{"team_id": "t1", "user_role": "admin"}], "key_alias": "u1-key"}),
    );
    let key = user_key(&gw, "u2", "internal_user");
    let extra = generate(&gw, json!({"user_id": "u1"}));
    let (status, out) = master_post(&gw, "/user/delete", json!({"user_ids": ["u1", "ghost"]}));
    assert_eq!(
        (status, &out["error"]["param"]),
        (404, &json!("user_ids")),
        "{out}"
    );
    assert!(
        run(gw.directory().user_fresh("u1")).unwrap().is_some(),
        "nothing deleted"
    );
    let (status, out) = master_post(&gw, "/user/delete", json!({"user_ids": ["u1"]}));
    assert_eq!((status, &out), (200, &json!(1)), "{out}");
    assert_eq!(chat(&gw, extra["key"].as_str().unwrap(), "m").0, 401);
    assert!(run(gw.directory().alias_token("u1-key")).unwrap().is_none());
    assert!(run(gw.directory().team_fresh("t1"))
        .unwrap()
        .unwrap()
        .members_with_roles
        .is_empty());
    assert_eq!(chat(&gw, &key, "m").0, 200, "other users keep theirs");
    let (status, out) = master_post(&gw, "/user/delete", json!({}));
    assert_eq!((status, &out["error"]["param"]), (422, &json!("user_ids")));
}

#[test]
fn lists_page_and_filter_users() {
    let gw = gateway();
    for i in 0..7 {
        let role = if i < 2 {
            "proxy_admin_viewer"
        } else {
            "internal_user"
        };
        new_user(
            &gw,
            json!({"user_id": format!("user-{i}"), "user_role": role,
            "user_email": format!("p{i}@corp.example"), "auto_create_key": i % 2 == 0}),
        );
    }
    let (status, out) = master_get(&gw, "/user/list?page=2&page_size=3");
    assert_eq!(status, 200, "{out}");
    assert_eq!(
        (
            &out["total"],
            &out["page"],
            &out["page_size"],
            &out["total_pages"]
        ),
        (&json!(7), &json!(2), &json!(3), &json!(3))
    );
    assert_eq!(out["users"].as_array().unwrap().len(), 3);
    let (_, out) = master_get(&gw, "/user/list?role=proxy_admin_viewer");
    assert_eq!(out["total"], 2);
    let (_, out) = master_get(&gw, "/user/list?user_ids=user-3,user-4");
    assert_eq!(out["total"], 2);
    let (_, out) = master_get(&gw, "/user/list?user_ids=user-6");
    assert_eq!(
        (&out["total"], &out["users"][0]["key_count"]),
        (&json!(1), &json!(1))
    );
    let (_, out) = master_get(&gw, "/user/list?user_email=P5%40CORP");
    assert_eq!(
        (&out["total"], &out["users"][0]["key_count"]),
        (&json!(1), &json!(0))
    );
    let (status, out) = master_get(&gw, "/user/list?page_size=101");
    assert_eq!((status, &out["error"]["param"]), (422, &json!("page_size")));
}

#[test]
fn a_users_models_bind_its_personal_keys_but_not_its_team_keys() {
    let gw = gateway();
    team(&gw, "t1", "T");
    new_user(
        &gw,
        json!({"user_id": "u1", "models": ["m"], "auto_create_key": false}),
    );
    // A key with no models of its own still may not leave the user's list.
    let personal = generate(&gw, json!({"user_id": "u1"}));
    let personal = personal["key"].as_str().unwrap();
    assert_eq!(chat(&gw, personal, "m").0, 200);
    let (status, out) = chat(&gw, personal, "other");
    assert_eq!(
        (status, &out["error"]["type"]),
        (401, &json!("key_model_access_denied"))
    );
    // A team key answers to its team's models instead, as LiteLLM's checks do.
    let team_key = generate(&gw, json!({"user_id": "u1", "team_id": "t1"}));
    assert_eq!(chat(&gw, team_key["key"].as_str().unwrap(), "other").0, 200);
}
