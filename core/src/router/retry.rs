//! Retries inside a model group: how many a failure earns (by its class, LiteLLM's
//! `retry_policy` names) and how long to wait before the next try (exponential backoff with
//! jitter; an upstream `retry-after` is honoured when it is reasonable).

use serde_json::{Map, Value};

use crate::config::error::ConfigError;
use crate::config::raw::RouterSettings;
use crate::error::{ErrorKind, GatewayError};
use crate::rng::Rng;

/// Waits longer than this in `retry-after` are not honoured (the client is better served by
/// the error than by a minute-long hang).
const MAX_RETRY_AFTER_MS: u64 = 60_000;

/// LiteLLM's error classes for `retry_policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    BadRequest,
    Authentication,
    Timeout,
    RateLimit,
    ContentPolicyViolation,
    InternalServer,
    /// Never retried: another try cannot change the answer (404, 403, 422, 501).
    Final,
}

impl ErrorClass {
    pub fn of(e: &GatewayError) -> ErrorClass {
        if e.code.as_deref() == Some("content_policy_violation") {
            return ErrorClass::ContentPolicyViolation;
        }
        match e.kind {
            ErrorKind::InvalidRequest => ErrorClass::BadRequest,
            ErrorKind::Authentication => ErrorClass::Authentication,
            ErrorKind::Timeout => ErrorClass::Timeout,
            ErrorKind::RateLimit => ErrorClass::RateLimit,
            ErrorKind::Api | ErrorKind::BadGateway | ErrorKind::Unavailable => {
                ErrorClass::InternalServer
            }
            ErrorKind::NotFound
            | ErrorKind::PermissionDenied
            | ErrorKind::Unprocessable
            | ErrorKind::NotImplemented
            | ErrorKind::BudgetExceeded
            | ErrorKind::ExpiredKey
            | ErrorKind::KeyModelAccessDenied
            | ErrorKind::TeamModelAccessDenied => ErrorClass::Final,
        }
    }

    fn policy_key(self) -> Option<&'static str> {
        Some(match self {
            ErrorClass::BadRequest => "BadRequestErrorRetries",
            ErrorClass::Authentication => "AuthenticationErrorRetries",
            ErrorClass::Timeout => "TimeoutErrorRetries",
            ErrorClass::RateLimit => "RateLimitErrorRetries",
            ErrorClass::ContentPolicyViolation => "ContentPolicyViolationErrorRetries",
            ErrorClass::InternalServer => "InternalServerErrorRetries",
            ErrorClass::Final => return None,
        })
    }

    /// Without a policy entry, only transient failures are retried.
    fn transient(self) -> bool {
        matches!(
            self,
            ErrorClass::Timeout | ErrorClass::RateLimit | ErrorClass::InternalServer
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// `router_settings.num_retries` (or `litellm_settings.num_retries`); 0 by default.
    pub num_retries: u32,
    /// `retry_policy` entries by LiteLLM's class names.
    per_class: Map<String, Value>,
    pub base_delay_ms: u64,
    pub max_delay_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            num_retries: 0,
            per_class: Map::new(),
            base_delay_ms: 500,
            max_delay_ms: 8_000,
        }
    }
}

impl RetryPolicy {
    /// Reads `num_retries` and `retry_policy`: LiteLLM's per-class counts
    /// (`RateLimitErrorRetries`, ...) and the product brief's `{max_retries, base_delay,
    /// max_delay}` (seconds).
    pub fn from_settings(
        router: &RouterSettings,
        litellm: &Map<String, Value>,
    ) -> Result<Self, ConfigError> {
        let mut out = RetryPolicy::default();
        let count = |v: &Value, path: &str| -> Result<u32, ConfigError> {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| ConfigError::at(path, "must be a non-negative integer"))
        };
        let seconds = |v: &Value, path: &str| -> Result<u64, ConfigError> {
            v.as_f64()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(|s| (s * 1000.0) as u64)
                .ok_or_else(|| ConfigError::at(path, "must be a non-negative number of seconds"))
        };
        if let Some(v) = router.extra.get("num_retries") {
            out.num_retries = count(v, "router_settings.num_retries")?;
        } else if let Some(v) = litellm.get("num_retries") {
            out.num_retries = count(v, "litellm_settings.num_retries")?;
        }
        match router.extra.get("retry_policy") {
            None | Some(Value::Null) => {}
            Some(Value::Object(policy)) => {
                for (k, v) in policy {
                    let path = format!("router_settings.retry_policy.{k}");
                    match k.as_str() {
                        "max_retries" => out.num_retries = count(v, &path)?,
                        "base_delay" => out.base_delay_ms = seconds(v, &path)?,
                        "max_delay" => out.max_delay_ms = seconds(v, &path)?,
                        _ if k.ends_with("ErrorRetries") => {
                            count(v, &path)?;
                            out.per_class.insert(k.clone(), v.clone());
                        }
                        _ => return Err(ConfigError::at(&path, "unknown retry_policy entry")),
                    }
                }
            }
            Some(_) => {
                return Err(ConfigError::at(
                    "router_settings.retry_policy",
                    "must be a mapping",
                ))
            }
        }
        Ok(out)
    }

    /// This policy with `num_retries` replaced (a request's own `num_retries`, as LiteLLM
    /// accepts in the body); per-class `retry_policy` entries still apply.
    pub fn with_num_retries(&self, num_retries: u32) -> RetryPolicy {
        RetryPolicy {
            num_retries,
            ..self.clone()
        }
    }

    /// How many retries a failure like `e` earns.
    pub fn retries_for(&self, e: &GatewayError) -> u32 {
        // A retry on the same group changes nothing for a policy refusal or a client error.
        if !e.origin.may_retry() {
            return 0;
        }
        let class = ErrorClass::of(e);
        let explicit = class
            .policy_key()
            .and_then(|k| self.per_class.get(k))
            .and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            })
            .and_then(|n| u32::try_from(n).ok());
        match explicit {
            Some(n) => n,
            None if class.transient() => self.num_retries,
            None => 0,
        }
    }

    /// The wait before retry number `attempt` (0-based): the upstream's `retry-after` when it
    /// is given in seconds and at most a minute, else `base × 2^attempt` capped at the maximum,
    /// with jitter (a uniform half to whole of it) so instances do not retry in step.
    pub fn backoff_ms(&self, attempt: u32, retry_after: Option<&str>, rng: &mut Rng) -> u64 {
        if let Some(ms) = retry_after
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| (s * 1000.0) as u64)
            .filter(|ms| *ms <= MAX_RETRY_AFTER_MS)
        {
            return ms;
        }
        let full = self
            .base_delay_ms
            .saturating_mul(1u64 << attempt.min(20))
            .min(self.max_delay_ms);
        full / 2 + (rng.next_f64() * (full / 2) as f64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(yaml: &str) -> Result<RetryPolicy, ConfigError> {
        let router: RouterSettings = serde_yaml::from_str(yaml).unwrap();
        RetryPolicy::from_settings(&router, &Map::new())
    }

    #[test]
    fn transient_failures_get_num_retries_and_others_none() {
        let p = policy("num_retries: 2").unwrap();
        assert_eq!(p.retries_for(&GatewayError::upstream(429, "slow")), 2);
        assert_eq!(p.retries_for(&GatewayError::upstream(503, "down")), 2);
        assert_eq!(
            p.retries_for(&crate::ports::TransportError::Timeout.into()),
            2
        );
        assert_eq!(p.retries_for(&GatewayError::upstream(401, "key")), 0);
        assert_eq!(p.retries_for(&GatewayError::upstream(400, "bad")), 0);
        assert_eq!(p.retries_for(&GatewayError::upstream(404, "gone")), 0);
    }

    #[test]
    fn litellm_per_class_policy_wins() {
        let p = policy("num_retries: 2\nretry_policy:\n  RateLimitErrorRetries: 5\n  AuthenticationErrorRetries: 1\n").unwrap();
        assert_eq!(p.retries_for(&GatewayError::upstream(429, "slow")), 5);
        assert_eq!(p.retries_for(&GatewayError::upstream(401, "key")), 1);
        // A policy refusal is never retried, whatever the policy says of its class.
        let refused = GatewayError::policy(ErrorKind::RateLimit, "key over its rpm");
        assert_eq!(p.retries_for(&refused), 0);
        assert_eq!(p.retries_for(&GatewayError::upstream(500, "boom")), 2);
    }

    #[test]
    fn brief_style_policy_and_bad_values() {
        let p =
            policy("retry_policy:\n  max_retries: 3\n  base_delay: 1\n  max_delay: 10\n").unwrap();
        assert_eq!(
            (p.num_retries, p.base_delay_ms, p.max_delay_ms),
            (3, 1000, 10_000)
        );
        assert_eq!(
            policy("num_retries: many").unwrap_err().path,
            "router_settings.num_retries"
        );
        assert_eq!(
            policy("retry_policy:\n  Whatever: 1\n").unwrap_err().path,
            "router_settings.retry_policy.Whatever"
        );
    }

    #[test]
    fn backoff_grows_with_jitter_and_honours_retry_after() {
        let p = RetryPolicy::default();
        let mut rng = Rng::seeded(7);
        for attempt in 0..6 {
            let full = (500u64 << attempt).min(8_000);
            let wait = p.backoff_ms(attempt, None, &mut rng);
            assert!(
                (full / 2..=full).contains(&wait),
                "attempt {attempt}: {wait} not in [{}, {full}]",
                full / 2
            );
        }
        assert_eq!(p.backoff_ms(0, Some("2"), &mut rng), 2_000);
        assert_eq!(p.backoff_ms(0, Some("0.25"), &mut rng), 250);
        let ignored = p.backoff_ms(0, Some("3600"), &mut rng);
        assert!(
            ignored <= 500,
            "an hour-long retry-after is not honoured: {ignored}"
        );
    }
}
