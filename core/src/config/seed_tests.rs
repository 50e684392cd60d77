use crate::config::{Config, ConfigError};
use crate::identity::records::Role;
use crate::identity::token;

const HEAD: &str = "model_list:\n  - model_name: m\n    litellm_params: {model: mock/x}\ngeneral_settings:\n  master_key: sk-master\n  seed:\n";

fn load(seed: &str) -> Result<Config, ConfigError> {
    let env = |name: &str| (name == "BOT_KEY").then(|| "sk-bot-key-from-env".to_string());
    Config::from_yaml(&format!("{HEAD}{seed}"), &env)
}

fn error_at(seed: &str) -> String {
    load(seed).unwrap_err().path
}

#[test]
fn every_kind_is_read_and_keys_are_hashed_at_load() {
    let c = load(concat!(
        "    budgets: [{budget_id: free, max_budget: 1.0, budget_duration: 30d}]\n",
        "    users: [{user_id: alice, user_role: proxy_admin_viewer, max_budget: 20}]\n",
        "    teams: [{team_id: eng, max_budget: 5, members_with_roles: [{role: admin, user_id: alice}]}]\n",
        "    end_users: [{user_id: c1, budget_id: free, default_model: m}]\n",
        "    keys: [{key: os.environ/BOT_KEY, key_alias: bot, team_id: eng, models: [m], model_max_budget: {m: 0.5}}]\n",
    ))
    .unwrap();
    let s = &c.seed;
    assert_eq!(s.budgets[0].budget_id.as_deref(), Some("free"));
    assert_eq!(s.users[0].user_role, Some(Role::ProxyAdminViewer));
    assert_eq!(s.teams[0].max_budget, Some(5.0));
    assert_eq!(s.end_users[0].budget_id.as_deref(), Some("free"));
    let k = &s.keys[0];
    assert_eq!(k.token, token::hash("sk-bot-key-from-env"));
    assert_eq!(k.key_name, "sk-...-env");
    assert_eq!(k.fields.models.as_deref(), Some(&["m".to_string()][..]));
    let printed = format!("{c:?}");
    assert!(
        !printed.contains("sk-bot-key-from-env"),
        "the raw key is not kept"
    );
    assert!(!c.raw.general_settings.extra.contains_key("seed"));
}

#[test]
fn no_seed_is_an_empty_seed() {
    let c = Config::from_yaml("model_list: []\n", &|_| None).unwrap();
    assert!(c.seed.is_empty());
}

#[test]
fn errors_name_the_field() {
    let at = |s: &str| error_at(s);
    assert_eq!(
        at("    keys: [{key: sk-abcdefgh, models: m}]\n"),
        "general_settings.seed.keys[0].models"
    );
    assert_eq!(
        at("    keys: [{key: sk-abcdefgh, models: [1]}]\n"),
        "general_settings.seed.keys[0].models[0]"
    );
    assert_eq!(
        at("    keys: [{models: [m]}]\n"),
        "general_settings.seed.keys[0].key"
    );
    assert_eq!(
        at("    keys: [{key: not-a-key}]\n"),
        "general_settings.seed.keys[0].key"
    );
    assert_eq!(
        at("    keys: [{key: 12345678}]\n"),
        "general_settings.seed.keys[0].key"
    );
    assert_eq!(
        at("    keys: [{key: sk-abcdefgh, duration: 30d}]\n"),
        "general_settings.seed.keys[0].duration"
    );
    assert_eq!(
        at("    keys: [{key: sk-abcdefgh, max_budegt: 1}]\n"),
        "general_settings.seed.keys[0].max_budegt"
    );
    assert_eq!(
        at("    keys: [{key: sk-abcdefgh}, {key: sk-abcdefgh}]\n"),
        "general_settings.seed.keys[1].key"
    );
    assert_eq!(
        at("    keys: [{key: sk-abcdefgh, key_alias: a}, {key: sk-other-key, key_alias: a}]\n"),
        "general_settings.seed.keys[1].key_alias"
    );
    assert_eq!(
        at("    keys: [{key: sk-abcdefgh, budget_duration: sometimes}]\n"),
        "general_settings.seed.keys[0].budget_duration"
    );
    assert_eq!(
        at("    keys: [{key: os.environ/UNSET_KEY}]\n"),
        "general_settings.seed.keys[0].key"
    );
    assert_eq!(
        at("    teams: [{team_alias: x}]\n"),
        "general_settings.seed.teams[0].team_id"
    );
    assert_eq!(
        at("    teams: [{team_id: t, max_budget: -1}]\n"),
        "general_settings.seed.teams[0].max_budget"
    );
    assert_eq!(
        at("    teams: [{team_id: t, members_with_roles: [{role: chief, user_id: a}]}]\n"),
        "general_settings.seed.teams[0].members_with_roles[0].role"
    );
    assert_eq!(
        at("    teams: [{team_id: t}, {team_id: t}]\n"),
        "general_settings.seed.teams[1].team_id"
    );
    assert_eq!(
        at("    users: [{user_role: proxy_admin}]\n"),
        "general_settings.seed.users[0].user_id"
    );
    assert_eq!(
        at("    users: [{user_id: a, user_role: root}]\n"),
        "general_settings.seed.users[0].user_role"
    );
    assert_eq!(
        at("    end_users: [{user_id: c, default_model: gpt-9}]\n"),
        "general_settings.seed.end_users[0].default_model"
    );
    assert_eq!(
        at("    budgets: [{max_budget: 1}]\n"),
        "general_settings.seed.budgets[0].budget_id"
    );
    assert_eq!(
        at("    budgets: [{budget_id: b, soft_budget: 2, max_budget: 1}]\n"),
        "general_settings.seed.budgets[0].soft_budget"
    );
    assert_eq!(
        at("    organizations: []\n"),
        "general_settings.seed.organizations"
    );
    assert_eq!(
        at("    teams: {team_id: t}\n"),
        "general_settings.seed.teams"
    );
}

#[test]
fn an_error_never_quotes_the_raw_key() {
    let e = load("    keys: [{key: os.environ/BOT_KEY, max_budget: lots}]\n").unwrap_err();
    assert_eq!(e.path, "general_settings.seed.keys[0].max_budget");
    assert!(!e.to_string().contains("sk-bot-key-from-env"), "{e}");
}
