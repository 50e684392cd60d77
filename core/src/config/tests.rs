use super::*;
use crate::secret::Secret;

fn env(name: &str) -> Option<String> {
    match name {
        "OPENAI_API_KEY" => Some("sk-openai".into()),
        "ANTHROPIC_API_KEY" => Some("sk-ant".into()),
        "GEMINI_API_KEY" => Some("gem".into()),
        "LITELLM_MASTER_KEY" => Some("sk-master".into()),
        "DATABASE_URL" => Some("postgresql://x".into()),
        "REDIS_HOST" => Some("127.0.0.1".into()),
        "REDIS_PORT" => Some("6379".into()),
        _ => None,
    }
}

fn load(yaml: &str) -> Result<Config, ConfigError> {
    Config::from_yaml(yaml, &env)
}

#[test]
fn brief_example_config_loads_unchanged() {
    let cfg = load(include_str!("fixtures/brief-example.yaml")).expect("brief example must load");
    assert_eq!(cfg.deployments.len(), 5);
    assert_eq!(
        cfg.master_key.as_ref().map(|k| k.expose()),
        Some("sk-master")
    );
    let gpt4 = &cfg.deployments_for("gpt-4")[0];
    assert_eq!(gpt4.upstream_model, "gpt-4");
    assert_eq!(
        gpt4.params.api_key.as_ref().map(|k| k.expose()),
        Some("sk-openai")
    );
    assert_eq!(gpt4.request_defaults["max_tokens"], 4096);
    assert_eq!(gpt4.request_defaults["temperature"], 0.7);
    let claude = &cfg.deployments_for("claude-3-sonnet")[0];
    assert_eq!(claude.provider.prefix(), "anthropic");
    assert_eq!(claude.upstream_model, "claude-3-sonnet-20240229");
    // A list alias pools the groups that exist: gpt-4-turbo is not configured.
    assert_eq!(cfg.deployments_for("gpt-4-group").len(), 1);
    assert_eq!(
        cfg.deployments_for("claude-group")[0].model_name,
        "claude-3-sonnet"
    );
    assert!(cfg.deployments_for("nope").is_empty());
}

#[test]
fn models_list_has_groups_then_aliases() {
    let cfg = load(include_str!("fixtures/brief-example.yaml")).unwrap();
    let names = cfg.public_model_names();
    assert_eq!(
        &names[..5],
        &[
            "gpt-4",
            "gpt-3.5-turbo",
            "claude-3-sonnet",
            "gemini-pro",
            "llama2"
        ]
    );
    assert!(names.contains(&"gpt-4-group".to_string()));
}

#[test]
fn several_deployments_share_a_group() {
    let cfg = load(
        "model_list:\n  - model_name: g\n    litellm_params: {model: openai/a}\n  - model_name: g\n    litellm_params: {model: groq/b}\n",
    )
    .unwrap();
    let names: Vec<_> = cfg
        .deployments_for("g")
        .iter()
        .map(|d| d.upstream_model.clone())
        .collect();
    assert_eq!(names, ["a", "b"]);
}

#[test]
fn invalid_yaml_is_refused() {
    let err = load("model_list: [\n").unwrap_err();
    assert!(err.message.contains("invalid YAML"), "{err}");
}

#[test]
fn unknown_provider_names_the_field() {
    let err = load("model_list:\n  - model_name: x\n    litellm_params: {model: nosuch/thing}\n")
        .unwrap_err();
    assert_eq!(err.path, "model_list[0].litellm_params.model");
    assert!(err.message.contains("nosuch"), "{err}");
}

#[test]
fn missing_model_names_the_field() {
    let err =
        load("model_list:\n  - model_name: x\n    litellm_params: {api_key: k}\n").unwrap_err();
    assert!(
        err.path.starts_with("model_list[0].litellm_params"),
        "{err}"
    );
    assert!(err.message.contains("model"), "{err}");
}

#[test]
fn wrong_type_names_the_field() {
    let err = load(
        "model_list:\n  - model_name: x\n    litellm_params: {model: openai/a, timeout: soon}\n",
    )
    .unwrap_err();
    assert!(err.path.contains("model_list[0]"), "{err}");
    assert!(err.message.contains("number"), "{err}");
    let err = load("model_list: 3\n").unwrap_err();
    assert_eq!(err.path, "model_list");
}

#[test]
fn unset_environment_variable_is_refused() {
    let err = load("general_settings:\n  master_key: os.environ/NOT_SET_ANYWHERE\n").unwrap_err();
    assert_eq!(err.path, "general_settings.master_key");
    assert!(err.message.contains("NOT_SET_ANYWHERE"));
}

#[test]
fn file_environment_variables_feed_substitution() {
    let cfg = load(
        "environment_variables:\n  MY_KEY: from-file\nmodel_list:\n  - model_name: x\n    litellm_params: {model: openai/a, api_key: os.environ/MY_KEY, timeout: \"30\"}\n",
    )
    .unwrap();
    assert_eq!(
        cfg.deployments[0]
            .params
            .api_key
            .as_ref()
            .map(|k| k.expose()),
        Some("from-file")
    );
    assert_eq!(cfg.deployments[0].timeout_ms, 30_000);
}

#[test]
fn provider_key_variable_is_the_fallback() {
    let cfg =
        load("model_list:\n  - model_name: x\n    litellm_params: {model: openai/a}\n").unwrap();
    assert_eq!(
        cfg.deployments[0]
            .params
            .api_key
            .as_ref()
            .map(|k| k.expose()),
        Some("sk-openai")
    );
}

#[test]
fn hidden_alias_is_callable_but_not_listed() {
    let cfg = load(
        "model_list:\n  - model_name: x\n    litellm_params: {model: openai/a}\nrouter_settings:\n  model_group_alias:\n    secret: {model: x, hidden: true}\n    shown: x\n",
    )
    .unwrap();
    assert_eq!(cfg.deployments_for("secret").len(), 1);
    let names = cfg.public_model_names();
    assert_eq!(names, ["x", "shown"]);
}

#[test]
fn empty_config_is_valid() {
    let cfg = Config::from_yaml("", &|_| None).unwrap();
    assert!(cfg.deployments.is_empty());
    assert!(cfg.master_key.is_none());
    let from_env = Config::from_yaml("", &|n| {
        (n == "LITELLM_MASTER_KEY").then(|| "sk-env".to_string())
    })
    .unwrap();
    assert_eq!(
        from_env.master_key.as_ref().map(|k| k.expose()),
        Some("sk-env")
    );
}

#[test]
fn router_settings_are_checked_at_load() {
    let cfg = load(include_str!("fixtures/brief-example.yaml")).unwrap();
    assert_eq!(
        cfg.routing_strategy,
        crate::router::RoutingStrategy::UsageBased
    );
    // The brief's own example spells it short.
    let short = load("router_settings:\n  routing_strategy: latency-based\n").unwrap();
    assert!(matches!(
        short.routing_strategy,
        crate::router::RoutingStrategy::LatencyBased { .. }
    ));
    let err = load("router_settings:\n  routing_strategy: fastest-please\n").unwrap_err();
    assert_eq!(err.path, "router_settings.routing_strategy");
    let err = load("router_settings:\n  cooldown_time: soon\n").unwrap_err();
    assert_eq!(err.path, "router_settings.cooldown_time");
}

/// Every credential a config can carry, each with a value the printed config must not hold.
const SECRETS_CONFIG: &str = r#"
environment_variables:
  FILE_ONLY_KEY: s3cr3t-env-file
model_list:
  - model_name: openai
    litellm_params:
      model: openai/gpt-4o
      api_key: s3cr3t-api-key
      organization: org-visible
      custom_auth_token: s3cr3t-extra-token
      proxy_password: s3cr3t-extra-password
      extra_headers: {Authorization: "Bearer s3cr3t-extra-header"}
      api_base: "https://user:s3cr3t-url-password@gw.example/v1"
  - model_name: from-file-env
    litellm_params: {model: openai/gpt-4o, api_key: os.environ/FILE_ONLY_KEY}
  - model_name: from-process-env
    litellm_params: {model: anthropic/claude-3-5-sonnet-20240620}
  - model_name: bedrock
    litellm_params:
      model: bedrock/anthropic.claude-3-haiku-20240307-v1:0
      aws_access_key_id: AKIAVISIBLE
      aws_secret_access_key: s3cr3t-aws-secret
      aws_session_token: s3cr3t-aws-session
      aws_region_name: us-east-1
  - model_name: bedrock-env
    litellm_params: {model: bedrock/m, aws_region_name: us-east-1}
  - model_name: bedrock-key
    litellm_params: {model: bedrock/m, api_key: s3cr3t-bedrock-bearer}
  - model_name: azure
    litellm_params:
      model: azure/my-gpt4
      api_base: https://r.openai.azure.com
      azure_ad_token: s3cr3t-azure-ad
  - model_name: vertex
    litellm_params:
      model: vertex_ai/gemini-1.5-pro
      vertex_project: p
      vertex_credentials:
        type: service_account
        client_email: a@p.iam.gserviceaccount.com
        private_key: "-----BEGIN PRIVATE KEY-----\ns3cr3t-pem\n-----END PRIVATE KEY-----\n"
general_settings:
  master_key: s3cr3t-master
  database_url: "postgresql://u:s3cr3t-db@db.example/litellm"
  store: {type: upstash, url: "https://up.example", token: s3cr3t-upstash}
router_settings:
  redis_password: s3cr3t-redis-password
  redis_url: "redis://:s3cr3t-redis-url@cache:6379"
litellm_settings:
  langfuse_secret_key: s3cr3t-langfuse
"#;

fn secrets_env(name: &str) -> Option<String> {
    match name {
        "ANTHROPIC_API_KEY" => Some("s3cr3t-process-env".into()),
        "AWS_ACCESS_KEY_ID" => Some("AKIAENVVISIBLE".into()),
        "AWS_SECRET_ACCESS_KEY" => Some("s3cr3t-env-aws-secret".into()),
        "AWS_SESSION_TOKEN" => Some("s3cr3t-env-aws-session".into()),
        _ => None,
    }
}

#[test]
fn printing_the_config_never_shows_a_secret() {
    let cfg = Config::from_yaml(SECRETS_CONFIG, &secrets_env).unwrap();
    // Each value really was read (a redaction test on missing values proves nothing).
    let d = |name: &str| cfg.deployments_for(name)[0].clone();
    let exposed = |s: &Option<Secret>| s.as_ref().map(|s| s.expose().to_string());
    assert_eq!(
        exposed(&d("from-file-env").params.api_key).unwrap(),
        "s3cr3t-env-file"
    );
    assert_eq!(
        exposed(&d("from-process-env").params.api_key).unwrap(),
        "s3cr3t-process-env"
    );
    assert_eq!(
        exposed(&d("bedrock-env").params.aws_session_token).unwrap(),
        "s3cr3t-env-aws-session"
    );
    assert!(exposed(&d("vertex").params.vertex_credentials)
        .unwrap()
        .contains("s3cr3t-pem"));
    assert_eq!(exposed(&cfg.master_key).unwrap(), "s3cr3t-master");

    for printed in [format!("{cfg:?}"), format!("{cfg:#?}")] {
        let leaks: Vec<&str> = printed
            .match_indices("s3cr3t")
            .map(|(i, _)| &printed[i..(i + 30).min(printed.len())])
            .collect();
        assert!(leaks.is_empty(), "secrets printed: {leaks:?}");
        // What is not secret still prints, so the output stays useful.
        for visible in ["org-visible", "gw.example", "up.example", "us-east-1"] {
            assert!(printed.contains(visible), "{visible} is missing");
        }
    }
    for deployment in &cfg.deployments {
        assert!(!format!("{deployment:?}").contains("s3cr3t"));
        assert!(!format!("{:?}", deployment.params).contains("s3cr3t"));
    }
}

#[test]
fn credentials_of_the_wrong_type_are_refused_without_quoting_them() {
    let err = load(
        "model_list:\n  - model_name: x\n    litellm_params: {model: openai/a, api_key: 4242424242}\n",
    )
    .unwrap_err();
    assert!(err.path.contains("model_list[0]"), "{err}");
    assert!(!err.to_string().contains("4242424242"), "{err}");
    let err = load(
        "model_list:\n  - model_name: v\n    litellm_params: {model: vertex_ai/g, vertex_credentials: 4242424242}\n",
    )
    .unwrap_err();
    assert!(err.path.contains("model_list[0]"), "{err}");
    assert!(!err.to_string().contains("4242424242"), "{err}");
    let err = load("general_settings:\n  master_key: 4242424242\n").unwrap_err();
    assert_eq!(err.path, "general_settings.master_key");
    assert!(!err.to_string().contains("4242424242"), "{err}");
}
