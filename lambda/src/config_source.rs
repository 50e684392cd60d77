//! Where the config comes from: `--config FILE`, `$TOLLGATE_CONFIG` (a path) or
//! `$TOLLGATE_CONFIG_YAML` (the YAML itself, for Lambda deployments without a bundled file).
//! With none of them the gateway starts with no models, as LiteLLM does.

use tollgate_core::Config;

pub fn load(cli_path: Option<&str>) -> Result<Config, String> {
    let env_path = std::env::var("TOLLGATE_CONFIG")
        .ok()
        .filter(|p| !p.is_empty());
    let (yaml, origin) = match cli_path.map(str::to_string).or(env_path) {
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read config file {path}: {e}"))?;
            (text, path)
        }
        None => match std::env::var("TOLLGATE_CONFIG_YAML") {
            Ok(text) => (text, "$TOLLGATE_CONFIG_YAML".to_string()),
            Err(_) => {
                tracing::warn!("no config given (--config, TOLLGATE_CONFIG or TOLLGATE_CONFIG_YAML): serving no models");
                (String::new(), "<empty>".to_string())
            }
        },
    };
    let config = Config::from_yaml(&yaml, &|name| std::env::var(name).ok())
        .map_err(|e| format!("{origin}: {e}"))?;
    tracing::info!(models = config.deployments.len(), source = %origin, "config loaded");
    Ok(config)
}
