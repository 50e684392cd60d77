//! Who may do what with teams, and what a blocked team or a Store that is down does.

use std::sync::atomic::Ordering;

use serde_json::json;

use super::tests::{chat, new_team, user};
use crate::admin::fields::testing::{
    gateway, gateway_on, key_for, master_get, master_post, CONFIG,
};
use crate::gateway::tests::{call, run};
use crate::identity::records::Role;

#[test]
fn a_blocked_teams_keys_get_401() {
    let gw = gateway();
    new_team(&gw, json!({"team_id": "eng"}));
    key_for(
        &gw,
        "sk-eng-key-1",
        "carol",
        Role::InternalUser,
        Some("eng"),
    );
    assert_eq!(chat(&gw, "sk-eng-key-1").0, 200);
    let (status, t) = master_post(&gw, "/team/block", json!({"team_id": "eng"}));
    assert_eq!((status, t["blocked"].clone()), (200, json!(true)), "{t}");
    let (status, e) = chat(&gw, "sk-eng-key-1");
    assert_eq!(status, 401, "{e}");
    assert_eq!(e["error"]["code"], "team_blocked");
    let (status, t) = master_post(&gw, "/team/unblock", json!({"team_id": "eng"}));
    assert_eq!((status, t["blocked"].clone()), (200, json!(false)));
    assert_eq!(chat(&gw, "sk-eng-key-1").0, 200);
}

#[test]
fn an_internal_user_reads_only_its_own_teams() {
    let gw = gateway();
    new_team(&gw, json!({"team_id": "eng"}));
    new_team(
        &gw,
        json!({"team_id": "ops", "members_with_roles": [{"role": "user", "user_id": "dave"}]}),
    );
    new_team(&gw, json!({"team_id": "hr"}));
    key_for(
        &gw,
        "sk-eng-member",
        "erin",
        Role::InternalUser,
        Some("eng"),
    );
    key_for(&gw, "sk-dave-key", "dave", Role::InternalUser, None);
    let info =
        |key, team: &str| call(&gw, "GET", &format!("/team/info?team_id={team}"), key, None).0;
    assert_eq!(info("sk-eng-member", "eng"), 200, "its key's team");
    assert_eq!(
        info("sk-dave-key", "ops"),
        200,
        "a roster that names its user"
    );
    assert_eq!(info("sk-eng-member", "hr"), 403);
    assert_eq!(
        info("sk-eng-member", "nope"),
        403,
        "no hint of which teams exist"
    );
    assert_eq!(info("sk-internal", "eng"), 403);
    assert_eq!(call(&gw, "GET", "/team/list", "sk-eng-member", None).0, 403);
    let (status, e) = call(
        &gw,
        "POST",
        "/team/new",
        "sk-internal",
        Some(json!({"team_id": "mine"})),
    );
    assert_eq!(
        (status, e["error"]["type"].clone()),
        (403, json!("permission_error"))
    );
    // Its user's `teams` counts too.
    let mut erin = user(&gw, "erin");
    erin.teams.push("hr".into());
    run(gw.directory().put_user("erin", erin)).unwrap();
    assert_eq!(info("sk-eng-member", "hr"), 200);
}

#[test]
fn viewers_read_but_do_not_change() {
    let gw = gateway();
    new_team(&gw, json!({"team_id": "eng"}));
    assert_eq!(
        call(&gw, "GET", "/team/info?team_id=eng", "sk-viewer", None).0,
        200
    );
    assert_eq!(
        call(&gw, "GET", "/team/info?team_id=nope", "sk-viewer", None).0,
        404
    );
    assert_eq!(call(&gw, "GET", "/team/list", "sk-viewer", None).0, 200);
    for path in [
        "/team/new",
        "/team/update",
        "/team/delete",
        "/team/member_add",
        "/team/member_delete",
        "/team/block",
        "/team/unblock",
    ] {
        let body = Some(json!({"team_id": "eng", "team_ids": ["eng"]}));
        assert_eq!(call(&gw, "POST", path, "sk-viewer", body).0, 403, "{path}");
    }
}

#[test]
fn a_store_that_is_down_is_a_503() {
    let (gw, store) = gateway_on(CONFIG);
    store.down.store(true, Ordering::Relaxed);
    assert_eq!(master_get(&gw, "/team/list").0, 503);
    let (status, e) = master_post(&gw, "/team/new", json!({"team_id": "eng"}));
    assert_eq!(
        (status, e["error"]["code"].clone()),
        (503, json!("store_unavailable"))
    );
}
