//! Store backends for the native host. Each implements `tollgate_core::store::Store` with the
//! semantics the conformance suite checks; consistency per backend is in `docs/storage.md`.

pub mod dynamodb;
pub mod embedded;
pub mod redis;
#[cfg(test)]
mod upstash_tests;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tollgate_core::ports::Clock;
use tollgate_core::store::memory::MemoryStore;
use tollgate_core::store::settings::{StoreChoice, DEFAULT_EMBEDDED_PATH};
use tollgate_core::store::upstash::UpstashStore;
use tollgate_core::store::{Store, StoreError};

/// How long one Redis operation may take before it counts as a failure.
const REDIS_OP_TIMEOUT: Duration = Duration::from_millis(500);
/// How long one Upstash REST call may take (a round trip over the internet).
const UPSTASH_OP_TIMEOUT_MS: u64 = 1_000;
/// How long one DynamoDB operation may take (its SDK retries throttling inside this bound),
/// unless `TOLLGATE_DYNAMODB_TIMEOUT_MS` says otherwise.
const DYNAMODB_OP_TIMEOUT: Duration = Duration::from_secs(3);

/// `TOLLGATE_DYNAMODB_TIMEOUT_MS`, else [`DYNAMODB_OP_TIMEOUT`].
fn dynamodb_timeout() -> Result<Duration, StoreError> {
    match std::env::var("TOLLGATE_DYNAMODB_TIMEOUT_MS") {
        Ok(ms) => ms.trim().parse().map(Duration::from_millis).map_err(|_| {
            StoreError::Unavailable("TOLLGATE_DYNAMODB_TIMEOUT_MS is not a number".into())
        }),
        Err(_) => Ok(DYNAMODB_OP_TIMEOUT),
    }
}

/// Opens the backend `choice` names. `HostDefault` is the embedded file locally; inside Lambda
/// (read-only code directory, instances that share nothing) it is memory, and a shared
/// backend (DynamoDB, Redis) should be configured.
pub async fn open(
    choice: &StoreChoice,
    clock: Arc<dyn Clock>,
    in_lambda: bool,
) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match choice {
        StoreChoice::Memory => Arc::new(MemoryStore::new(clock)),
        StoreChoice::HostDefault if in_lambda => Arc::new(MemoryStore::new(clock)),
        StoreChoice::Embedded { path } => {
            Arc::new(embedded::EmbeddedStore::open(Path::new(path), clock)?)
        }
        StoreChoice::HostDefault => Arc::new(embedded::EmbeddedStore::open(
            Path::new(DEFAULT_EMBEDDED_PATH),
            clock,
        )?),
        // Lazy: the gateway starts (and serves what needs no store) while Redis is down.
        StoreChoice::Redis { url } => {
            Arc::new(redis::RedisStore::connect_lazy(url, REDIS_OP_TIMEOUT)?)
        }
        StoreChoice::DynamoDb { table, endpoint } => {
            let region = std::env::var("AWS_REGION")
                .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
                .ok();
            let client = dynamodb::sdk_client(region, endpoint.clone(), None).await;
            Arc::new(dynamodb::DynamoStore::new(
                client,
                table.clone(),
                clock,
                dynamodb_timeout()?,
            ))
        }
        StoreChoice::Upstash { url, token } => {
            let http = crate::http_client::ReqwestClient::new().map_err(|e| {
                StoreError::Unavailable(format!("cannot build the HTTP client for Upstash: {e}"))
            })?;
            Arc::new(UpstashStore::new(
                Arc::new(http),
                clock,
                url.clone(),
                token.clone(),
                UPSTASH_OP_TIMEOUT_MS,
            ))
        }
    })
}

/// A description for logs: the kind and where, never credentials.
pub fn describe(choice: &StoreChoice, in_lambda: bool) -> String {
    match choice {
        StoreChoice::Memory => "memory".into(),
        StoreChoice::HostDefault if in_lambda => {
            "memory (per instance: configure DynamoDB or Redis to share state)".into()
        }
        StoreChoice::Embedded { path } => format!("embedded ({path})"),
        StoreChoice::HostDefault => format!("embedded ({DEFAULT_EMBEDDED_PATH})"),
        StoreChoice::Redis { url } => {
            let host = url.rsplit('@').next().unwrap_or(url);
            format!(
                "redis ({})",
                host.trim_start_matches("redis://")
                    .trim_start_matches("rediss://")
            )
        }
        StoreChoice::DynamoDb { table, .. } => format!("dynamodb (table {table})"),
        StoreChoice::Upstash { url, .. } => format!("upstash ({url})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_carry_no_credentials() {
        let d = describe(
            &StoreChoice::Redis {
                url: "rediss://app:s3cret@cache.example:6380".into(),
            },
            false,
        );
        assert_eq!(d, "redis (cache.example:6380)");
        let d = describe(
            &StoreChoice::Upstash {
                url: "https://u.example".into(),
                token: "tok-secret".into(),
            },
            false,
        );
        assert!(!d.contains("tok-secret"));
    }

    #[tokio::test]
    async fn memory_and_embedded_open() {
        let clock: Arc<dyn Clock> = Arc::new(crate::clock::SystemClock);
        let s = open(&StoreChoice::Memory, clock.clone(), false)
            .await
            .unwrap();
        assert_eq!(s.counter_add("k", 2, None).await.unwrap(), 2);
        let dir = std::env::temp_dir().join(format!("tollgate-open-{}", std::process::id()));
        let path = dir.join("s.redb").to_string_lossy().into_owned();
        let s = open(&StoreChoice::Embedded { path }, clock, false)
            .await
            .unwrap();
        assert_eq!(s.counter_add("k", 3, None).await.unwrap(), 3);
        drop(s);
        let _ = std::fs::remove_dir_all(dir);
    }
}
