//! Which Store backend an instance uses, from the config and environment, decided the same way
//! on every host. LiteLLM operators already name Redis in `router_settings` or with `REDIS_*`
//! variables; Tollgate reads those, and adds its own for DynamoDB, Upstash and the embedded file.
//!
//! Order: `general_settings.store.type` (explicit) → `TOLLGATE_STORE` → inferred from what is
//! configured (Upstash REST URL, DynamoDB table, Redis host/URL) → the host's default (the
//! embedded file locally, Durable Objects + KV on Workers).

use serde_json::Value;

use crate::config::{Config, ConfigError};

/// Where the embedded store lives when nothing else is said.
pub const DEFAULT_EMBEDDED_PATH: &str = ".tollgate/store.redb";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreChoice {
    /// Not shared, not kept: tests and throw-away runs.
    Memory,
    /// One file, kept across restarts; one process.
    Embedded { path: String },
    /// Redis or ElastiCache (`rediss://` for TLS).
    Redis { url: String },
    /// DynamoDB; `endpoint` overrides AWS's (moto, DynamoDB Local).
    DynamoDb {
        table: String,
        endpoint: Option<String>,
    },
    /// Upstash Redis over its REST API.
    Upstash { url: String, token: String },
    /// The host's own default (embedded locally, KV + Durable Objects on Workers).
    HostDefault,
}

/// Decides the backend. `lookup` reads environment variables (Worker vars on Workers).
pub fn choose(
    config: &Config,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<StoreChoice, ConfigError> {
    let explicit = config.raw.general_settings.extra.get("store");
    let section = explicit.and_then(Value::as_object);
    let setting = |name: &str| -> Option<String> {
        section.and_then(|s| s.get(name)).and_then(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    };
    let kind = setting("type").or_else(|| lookup("TOLLGATE_STORE"));
    let path = "general_settings.store.type";
    match kind.as_deref().map(str::to_ascii_lowercase).as_deref() {
        Some("memory") => Ok(StoreChoice::Memory),
        Some("embedded") | Some("file") => Ok(StoreChoice::Embedded {
            path: setting("path").or_else(|| lookup("TOLLGATE_STORE_PATH")).unwrap_or_else(|| DEFAULT_EMBEDDED_PATH.into()),
        }),
        Some("redis") => redis_url(config, &setting, lookup)
            .map(|url| StoreChoice::Redis { url })
            .ok_or_else(|| ConfigError::at(path, "type redis needs a URL or host (store.url, REDIS_URL or REDIS_HOST)")),
        Some("dynamodb") => dynamo(&setting, lookup)
            .ok_or_else(|| ConfigError::at(path, "type dynamodb needs a table (store.table or TOLLGATE_DYNAMODB_TABLE)")),
        Some("upstash") => upstash(&setting, lookup).ok_or_else(|| {
            ConfigError::at(path, "type upstash needs UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN (or store.url and store.token)")
        }),
        Some(other) => Err(ConfigError::at(path, format!("unknown store type {other:?}; expected memory, embedded, redis, dynamodb or upstash"))),
        None => Ok(upstash(&setting, lookup)
            .or_else(|| dynamo(&setting, lookup))
            .or_else(|| redis_url(config, &setting, lookup).map(|url| StoreChoice::Redis { url }))
            .unwrap_or(StoreChoice::HostDefault)),
    }
}

fn upstash(
    setting: &dyn Fn(&str) -> Option<String>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Option<StoreChoice> {
    let url = setting("url")
        .filter(|u| u.starts_with("http"))
        .or_else(|| lookup("UPSTASH_REDIS_REST_URL"))?;
    let token = setting("token").or_else(|| lookup("UPSTASH_REDIS_REST_TOKEN"))?;
    Some(StoreChoice::Upstash { url, token })
}

fn dynamo(
    setting: &dyn Fn(&str) -> Option<String>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Option<StoreChoice> {
    let table = setting("table").or_else(|| lookup("TOLLGATE_DYNAMODB_TABLE"))?;
    let endpoint = setting("endpoint").or_else(|| lookup("TOLLGATE_DYNAMODB_ENDPOINT"));
    Some(StoreChoice::DynamoDb { table, endpoint })
}

/// LiteLLM's Redis settings: `store.url`, else `router_settings.redis_url`, else
/// `router_settings.redis_host` / `redis_port` / `redis_password`, else the environment
/// ([`redis_url_from_env`]).
fn redis_url(
    config: &Config,
    setting: &dyn Fn(&str) -> Option<String>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Option<String> {
    let router = &config.raw.router_settings.extra;
    let router_str = |k: &str| {
        router
            .get(k)
            .and_then(|v| {
                v.as_str()
                    .map(str::to_string)
                    .or_else(|| v.as_u64().map(|n| n.to_string()))
            })
            .filter(|v| !v.trim().is_empty())
    };
    if let Some(url) = setting("url")
        .filter(|u| u.starts_with("redis"))
        .or_else(|| router_str("redis_url"))
    {
        return Some(url.trim().to_string());
    }
    match router_str("redis_host") {
        Some(host) => Some(build_redis_url(
            &host,
            router_str("redis_port").as_deref(),
            trimmed(lookup, "REDIS_USERNAME").as_deref(),
            router_str("redis_password").as_deref(),
            tls_requested(lookup),
        )),
        None => redis_url_from_env(lookup),
    }
}

/// The Redis URL from LiteLLM's variables: `REDIS_URL` as is, else `REDIS_HOST` with
/// `REDIS_PORT` (default 6379), `REDIS_USERNAME`, `REDIS_PASSWORD` and `REDIS_SSL`
/// (`true`/`1`/`yes` → `rediss://`). `None` when neither `REDIS_URL` nor `REDIS_HOST` is set.
pub fn redis_url_from_env(lookup: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    if let Some(url) = trimmed(lookup, "REDIS_URL") {
        return Some(url);
    }
    let host = trimmed(lookup, "REDIS_HOST")?;
    // A password is used exactly as given; only an empty one counts as unset.
    let password = lookup("REDIS_PASSWORD").filter(|p| !p.is_empty());
    Some(build_redis_url(
        &host,
        trimmed(lookup, "REDIS_PORT").as_deref(),
        trimmed(lookup, "REDIS_USERNAME").as_deref(),
        password.as_deref(),
        tls_requested(lookup),
    ))
}

fn trimmed(lookup: &dyn Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    lookup(name)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn tls_requested(lookup: &dyn Fn(&str) -> Option<String>) -> bool {
    trimmed(lookup, "REDIS_SSL")
        .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
}

/// `redis[s]://[user][:password@]host:port`, credentials percent-encoded, IPv6 bracketed.
fn build_redis_url(
    host: &str,
    port: Option<&str>,
    username: Option<&str>,
    password: Option<&str>,
    tls: bool,
) -> String {
    let scheme = if tls { "rediss" } else { "redis" };
    let auth = match (username, password) {
        (None, None) => String::new(),
        (Some(u), None) => format!("{}@", percent_encode(u)),
        (u, Some(p)) => format!(
            "{}:{}@",
            u.map(percent_encode).unwrap_or_default(),
            percent_encode(p)
        ),
    };
    let host = host.trim();
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]") // an IPv6 literal
    } else {
        host.to_string()
    };
    format!("{scheme}://{auth}{host}:{}", port.unwrap_or("6379").trim())
}

/// Percent-encodes everything but RFC 3986's unreserved characters (for URL credentials).
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choose_with(yaml: &str, env: &[(&str, &str)]) -> Result<StoreChoice, ConfigError> {
        let lookup = |n: &str| {
            env.iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_string())
        };
        let config = Config::from_yaml(yaml, &lookup).unwrap();
        choose(&config, &lookup)
    }

    #[test]
    fn nothing_configured_is_the_host_default() {
        assert_eq!(choose_with("", &[]).unwrap(), StoreChoice::HostDefault);
    }

    #[test]
    fn litellm_redis_settings_are_honoured() {
        let c = choose_with("router_settings:\n  redis_host: cache.local\n  redis_port: 6380\n  redis_password: pw\n", &[]).unwrap();
        assert_eq!(
            c,
            StoreChoice::Redis {
                url: "redis://:pw@cache.local:6380".into()
            }
        );
        let c = choose_with("", &[("REDIS_HOST", "h"), ("REDIS_SSL", "true")]).unwrap();
        assert_eq!(
            c,
            StoreChoice::Redis {
                url: "rediss://h:6379".into()
            }
        );
    }

    #[test]
    fn redis_url_from_env_follows_litellm() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            redis_url_from_env(&|name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            })
        };
        assert_eq!(vars(&[]), None);
        assert_eq!(vars(&[("REDIS_PORT", "1")]), None, "no host, no Redis");
        assert_eq!(
            vars(&[
                ("REDIS_URL", " rediss://u:p@h:1/2 "),
                ("REDIS_HOST", "other")
            ])
            .as_deref(),
            Some("rediss://u:p@h:1/2")
        );
        assert_eq!(
            vars(&[("REDIS_HOST", "h")]).as_deref(),
            Some("redis://h:6379")
        );
        assert_eq!(
            vars(&[
                ("REDIS_HOST", "h"),
                ("REDIS_PORT", "7000"),
                ("REDIS_SSL", "True")
            ])
            .as_deref(),
            Some("rediss://h:7000")
        );
        assert_eq!(
            vars(&[("REDIS_HOST", "h"), ("REDIS_SSL", "false")]).as_deref(),
            Some("redis://h:6379")
        );
        assert_eq!(
            vars(&[("REDIS_HOST", "h"), ("REDIS_PASSWORD", "a b@c/d:e")]).as_deref(),
            Some("redis://:a%20b%40c%2Fd%3Ae@h:6379")
        );
        assert_eq!(
            vars(&[("REDIS_HOST", "h"), ("REDIS_USERNAME", "app")]).as_deref(),
            Some("redis://app@h:6379")
        );
    }

    #[test]
    fn explicit_type_wins_and_names_what_is_missing() {
        let c = choose_with(
            "general_settings:\n  store: {type: embedded, path: /tmp/x.redb}\n",
            &[("REDIS_HOST", "h")],
        )
        .unwrap();
        assert_eq!(
            c,
            StoreChoice::Embedded {
                path: "/tmp/x.redb".into()
            }
        );
        let e = choose_with("general_settings:\n  store: {type: dynamodb}\n", &[]).unwrap_err();
        assert!(e.message.contains("table"));
        let e = choose_with("", &[("TOLLGATE_STORE", "cassandra")]).unwrap_err();
        assert!(e.message.contains("cassandra"));
    }

    #[test]
    fn inferred_from_environment() {
        let c = choose_with(
            "",
            &[
                ("TOLLGATE_DYNAMODB_TABLE", "t"),
                ("TOLLGATE_DYNAMODB_ENDPOINT", "http://127.0.0.1:5000"),
            ],
        )
        .unwrap();
        assert_eq!(
            c,
            StoreChoice::DynamoDb {
                table: "t".into(),
                endpoint: Some("http://127.0.0.1:5000".into())
            }
        );
        let c = choose_with(
            "",
            &[
                ("UPSTASH_REDIS_REST_URL", "https://u"),
                ("UPSTASH_REDIS_REST_TOKEN", "tok"),
            ],
        )
        .unwrap();
        assert_eq!(
            c,
            StoreChoice::Upstash {
                url: "https://u".into(),
                token: "tok".into()
            }
        );
    }
}
