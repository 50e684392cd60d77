use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde_json::json;

use super::seed;
use crate::admin::fields::testing::{gateway_on, master_post};
use crate::config::Config;
use crate::gateway::tests::{call, ports, run, FixedClock, HeldTasks, ScriptedClient};
use crate::gateway::Gateway;
use crate::identity::records::{KeyRecord, TeamRecord, TeamRole, UserRecord};
use crate::identity::token;

const SEEDED: &str = r#"
model_list:
  - model_name: m
    litellm_params: {model: mock/x, mock_response: hi}
  - model_name: other
    litellm_params: {model: mock/y, mock_response: hi}
general_settings:
  master_key: sk-master
  seed:
    budgets:
      - {budget_id: free, max_budget: 1.0, budget_duration: 30d}
    users:
      - {user_id: alice, user_role: internal_user, max_budget: 20, teams: [sales]}
    teams:
      - team_id: eng
        team_alias: Engineering
        max_budget: 50
        models: [m]
        members_with_roles: [{role: admin, user_id: alice}, {role: user, user_id: bob}]
    end_users:
      - {user_id: customer-1, budget_id: free}
    keys:
      - {key: sk-seeded-bot-key, key_alias: eng-bot, team_id: eng, user_id: alice, models: [m], max_budget: 5}
"#;

fn chat(gw: &Gateway, key: &str, model: &str) -> u16 {
    let body = json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
    call(gw, "POST", "/v1/chat/completions", key, Some(body)).0
}

#[test]
fn seeding_twice_changes_nothing_the_second_time_and_the_key_authenticates() {
    let (gw, store) = gateway_on(SEEDED);
    // bob is a user the seed does not declare: his record gets the team.
    run(gw.directory().put_user(
        "bob",
        UserRecord {
            user_id: "bob".into(),
            ..Default::default()
        },
    ))
    .unwrap();
    let first = run(seed(&gw)).unwrap();
    assert_eq!(
        first.created,
        vec![
            "budget free",
            "user alice",
            "team eng",
            "end user customer-1",
            "key sk-...-key"
        ]
    );
    assert_eq!(first.updated, vec!["user bob"]);
    assert!(first.refused.is_empty(), "{:?}", first.refused);

    let writes = store.writes.load(Ordering::Relaxed);
    let second = run(seed(&gw)).unwrap();
    assert_eq!(
        (second.created.len(), second.updated.len(), second.unchanged),
        (0, 0, 5),
        "{second:?}"
    );
    assert_eq!(
        store.writes.load(Ordering::Relaxed),
        writes,
        "nothing rewritten"
    );

    let dir = gw.directory();
    let tok = token::hash("sk-seeded-bot-key");
    let key = run(dir.key(&tok)).unwrap().unwrap();
    assert_eq!(
        (key.key_name.as_str(), key.team_id.as_deref()),
        ("sk-...-key", Some("eng"))
    );
    assert_eq!(run(dir.alias_token("eng-bot")).unwrap(), Some(tok));
    assert_eq!(
        run(dir.user("alice")).unwrap().unwrap().teams,
        vec!["sales", "eng"]
    );
    assert_eq!(run(dir.user("bob")).unwrap().unwrap().teams, vec!["eng"]);
    assert_eq!(
        run(dir.customer("customer-1"))
            .unwrap()
            .unwrap()
            .budget_id
            .as_deref(),
        Some("free")
    );
    assert_eq!(
        chat(&gw, "sk-seeded-bot-key", "m"),
        200,
        "the seeded key authenticates"
    );
    assert_eq!(
        chat(&gw, "sk-seeded-bot-key", "other"),
        401,
        "and keeps to its models"
    );
    let (status, info) = call(
        &gw,
        "GET",
        "/team/info?team_id=eng",
        "sk-seeded-bot-key",
        None,
    );
    assert_eq!(status, 200, "its own team: {info}");
}

#[test]
fn the_config_wins_for_the_fields_it_names_and_keeps_the_rest() {
    let (gw, _) = gateway_on(SEEDED);
    // An older team record, edited by an admin.
    run(gw.directory().put_team(
        "eng",
        TeamRecord {
            team_id: "eng".into(),
            created_at_ms: 1_000,
            updated_at_ms: 2_000,
            ..Default::default()
        },
    ))
    .unwrap();
    master_post(
        &gw,
        "/team/update",
        json!({"team_id": "eng", "max_budget": 99, "rpm_limit": 7}),
    );
    master_post(
        &gw,
        "/team/member_add",
        json!({"team_id": "eng", "member": {"role": "user", "user_id": "bob"}, "max_budget_in_team": 2}),
    );
    let report = run(seed(&gw)).unwrap();
    assert!(
        report.updated.contains(&"team eng".to_string()),
        "{report:?}"
    );
    let team = run(gw.directory().team("eng")).unwrap().unwrap();
    assert_eq!(team.budget.max_budget, Some(50.0), "named by the config");
    assert_eq!(
        team.limits.rpm_limit,
        Some(7),
        "not named: the admin's edit stays"
    );
    assert_eq!(team.created_at_ms, 1_000, "created_at kept");
    assert_eq!(team.updated_at_ms, 1_700_000_000_000);
    assert_eq!(team.member("bob").unwrap().max_budget_in_team, Some(2.0));
    assert_eq!(team.member("alice").unwrap().role, TeamRole::Admin);
    assert_eq!(run(seed(&gw)).unwrap().updated, Vec::<String>::new());
}

#[test]
fn dangling_references_and_taken_aliases_are_refused() {
    let yaml = SEEDED
        .replace("team_id: eng, user_id", "team_id: ghost, user_id")
        .replace("budget_id: free}", "budget_id: gone}");
    let (gw, _) = gateway_on(&yaml);
    let r = run(seed(&gw)).unwrap();
    assert_eq!(
        r.refused,
        vec![
            "end user customer-1: budget gone does not exist",
            "key sk-...-key: team ghost does not exist"
        ]
    );
    assert!(run(gw.directory().key(&token::hash("sk-seeded-bot-key")))
        .unwrap()
        .is_none());
    assert_eq!(chat(&gw, "sk-seeded-bot-key", "m"), 401);

    let (gw, _) = gateway_on(SEEDED);
    run(gw.directory().claim_alias("eng-bot", "someone-else")).unwrap();
    let r = run(seed(&gw)).unwrap();
    assert_eq!(
        r.refused,
        vec!["key sk-...-key: key_alias eng-bot is held by another key"]
    );
}

#[test]
fn a_renamed_key_frees_its_old_alias() {
    let (gw, _) = gateway_on(SEEDED);
    run(seed(&gw)).unwrap();
    let renamed = SEEDED.replace("key_alias: eng-bot", "key_alias: eng-robot");
    // A new instance on the same Store, started with the changed config.
    let gw2 = Gateway::new(
        Config::from_yaml(&renamed, &|_| None).unwrap(),
        ports(
            ScriptedClient::new(vec![]),
            Arc::new(FixedClock),
            Arc::clone(gw.directory().store()),
            Arc::new(HeldTasks::default()),
        ),
    );
    let r = run(seed(&gw2)).unwrap();
    assert_eq!(r.updated, vec!["key sk-...-key"]);
    let tok = token::hash("sk-seeded-bot-key");
    assert_eq!(
        run(gw2.directory().alias_token("eng-robot")).unwrap(),
        Some(tok.clone())
    );
    assert_eq!(run(gw2.directory().alias_token("eng-bot")).unwrap(), None);
    let key: KeyRecord = run(gw2.directory().key_fresh(&tok)).unwrap().unwrap();
    assert_eq!(key.updated_by.as_deref(), Some("config"));
}

#[test]
fn no_seed_writes_nothing_and_a_store_failure_is_an_error() {
    let (gw, store) = gateway_on(crate::admin::fields::testing::CONFIG);
    let writes = store.writes.load(Ordering::Relaxed);
    assert_eq!(run(seed(&gw)).unwrap(), Default::default());
    assert_eq!(store.writes.load(Ordering::Relaxed), writes);

    let (gw, store) = gateway_on(SEEDED);
    store.down.store(true, Ordering::Relaxed);
    assert!(run(seed(&gw)).is_err());
    store.down.store(false, Ordering::Relaxed);
    assert_eq!(
        run(seed(&gw)).unwrap().created.len(),
        5,
        "a later run finishes the job"
    );
}
