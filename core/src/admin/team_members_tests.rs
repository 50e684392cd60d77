use serde_json::{json, Value};

use crate::admin::fields::testing::{gateway, key_for, master_post};
use crate::gateway::tests::run;
use crate::gateway::Gateway;
use crate::identity::records::{Role, UserRecord};
use crate::identity::token;

fn param(e: &Value) -> Value {
    e["error"]["param"].clone()
}

fn user(gw: &Gateway, id: &str) -> UserRecord {
    run(gw.directory().user_fresh(id)).unwrap().unwrap()
}

fn add(gw: &Gateway, body: Value) -> (u16, Value) {
    master_post(gw, "/team/member_add", body)
}

/// A team `eng` with member `alice` (a user with a key on the team), and a user `bob`.
fn setup() -> Gateway {
    let gw = gateway();
    key_for(&gw, "sk-bob-key-01", "bob", Role::InternalUser, None);
    let mut bob = user(&gw, "bob");
    bob.user_email = Some("bob@x.test".into());
    run(gw.directory().put_user("bob", bob)).unwrap();
    key_for(
        &gw,
        "sk-alice-eng-1",
        "alice",
        Role::InternalUser,
        Some("eng"),
    );
    let (status, t) = master_post(
        &gw,
        "/team/new",
        json!({"team_id": "eng", "members_with_roles": [{"role": "admin", "user_id": "alice"}]}),
    );
    assert_eq!(status, 200, "{t}");
    gw
}

#[test]
fn a_member_is_added_with_a_budget_and_its_user_lists_the_team() {
    let gw = setup();
    let (status, r) = add(
        &gw,
        json!({"team_id": "eng", "member": {"role": "user", "user_id": "bob"}, "max_budget_in_team": 3.0}),
    );
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["team_id"], "eng");
    assert_eq!(
        r["members_with_roles"][1],
        json!({"user_id": "bob", "user_email": null, "role": "user"})
    );
    assert_eq!(r["updated_users"][0]["user_id"], "bob");
    assert_eq!(r["updated_users"][0]["teams"], json!(["eng"]));
    let m = &r["updated_team_memberships"];
    assert_eq!(m.as_array().unwrap().len(), 1);
    assert_eq!(m[0]["litellm_budget_table"]["max_budget"], 3.0);
    assert_eq!(m[0]["budget_source"], "custom");
    assert_eq!(user(&gw, "bob").teams, vec!["eng"]);
}

#[test]
fn a_list_adds_the_new_and_skips_members_already_in() {
    let gw = setup();
    let (status, r) = add(
        &gw,
        json!({"team_id": "eng", "member": [
            {"role": "user", "user_id": "alice"},
            {"role": "user", "user_email": "bob@x.test"},
            {"role": "user", "user_id": "newcomer"}]}),
    );
    assert_eq!(status, 200, "{r}");
    let members = r["members_with_roles"].as_array().unwrap();
    assert_eq!(members.len(), 3);
    assert_eq!(members[1]["user_id"], "bob", "found by email");
    assert_eq!(
        r["updated_users"].as_array().unwrap().len(),
        1,
        "newcomer has no user record"
    );
    let (status, e) = add(
        &gw,
        json!({"team_id": "eng", "member": [{"role": "user", "user_id": "alice"}]}),
    );
    assert_eq!(
        (status, param(&e)),
        (400, json!("member")),
        "all already in"
    );
}

#[test]
fn member_add_refusals_name_the_field() {
    let gw = setup();
    for (body, status, field) in [
        (
            json!({"team_id": "eng", "member": {"role": "user", "user_id": "alice"}}),
            400,
            "member",
        ),
        (
            json!({"team_id": "nope", "member": {"role": "user", "user_id": "bob"}}),
            404,
            "team_id",
        ),
        (
            json!({"member": {"role": "user", "user_id": "bob"}}),
            422,
            "team_id",
        ),
        (json!({"team_id": "eng"}), 422, "member"),
        (
            json!({"team_id": "eng", "member": {"role": "boss", "user_id": "bob"}}),
            422,
            "member.role",
        ),
        (
            json!({"team_id": "eng", "member": [{"role": "user", "user_id": "x"}, {"role": "user"}]}),
            422,
            "member[1]",
        ),
        (json!({"team_id": "eng", "member": "bob"}), 422, "member"),
        (
            json!({"team_id": "eng", "member": {"role": "user", "user_id": "bob"}, "max_budget_in_team": -1}),
            400,
            "max_budget_in_team",
        ),
        (
            json!({"team_id": "eng", "member": {"role": "user", "user_id": "bob"}, "budget_duration": "1d"}),
            400,
            "budget_duration",
        ),
    ] {
        let (s, e) = add(&gw, body.clone());
        assert_eq!((s, param(&e)), (status, json!(field)), "{body}: {e}");
    }
    assert_eq!(
        user(&gw, "bob").teams,
        Vec::<String>::new(),
        "nothing was added"
    );
}

#[test]
fn a_member_is_removed_with_its_keys_on_the_team() {
    let gw = setup();
    assert_eq!(user(&gw, "alice").teams, vec!["eng"]);
    let (status, t) = master_post(
        &gw,
        "/team/member_delete",
        json!({"team_id": "eng", "user_id": "alice"}),
    );
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["members_with_roles"], json!([]));
    assert!(user(&gw, "alice").teams.is_empty());
    let tok = token::hash("sk-alice-eng-1");
    assert!(
        run(gw.directory().key(&tok)).unwrap().is_none(),
        "its key on the team went"
    );
    for (body, status, field) in [
        (
            json!({"team_id": "eng", "user_id": "alice"}),
            400,
            "user_id",
        ),
        (
            json!({"team_id": "nope", "user_id": "alice"}),
            404,
            "team_id",
        ),
        (json!({"team_id": "eng"}), 422, "user_id"),
    ] {
        let (s, e) = master_post(&gw, "/team/member_delete", body.clone());
        assert_eq!((s, param(&e)), (status, json!(field)), "{body}: {e}");
    }
}

#[test]
fn a_member_is_removed_by_email() {
    let gw = setup();
    add(
        &gw,
        json!({"team_id": "eng", "member": {"role": "user", "user_email": "bob@x.test"}}),
    );
    let (status, t) = master_post(
        &gw,
        "/team/member_delete",
        json!({"team_id": "eng", "user_email": "bob@x.test"}),
    );
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["members_with_roles"].as_array().unwrap().len(), 1);
    assert!(user(&gw, "bob").teams.is_empty());
}
