//! One error type for the whole pipeline, mapped to HTTP in one place ([`GatewayError::status`]
//! and [`GatewayError::to_body`]). Every failure a client can see has OpenAI's shape:
//! `{"error": {"message", "type", "param", "code"}}`.

use http::StatusCode;
use serde_json::json;

/// The class of a failure; decides the status and the OpenAI `type` string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The client sent something we cannot accept (400).
    InvalidRequest,
    /// Missing or wrong credentials (401).
    Authentication,
    /// Credentials are fine but not allowed to do this (403).
    PermissionDenied,
    /// No such model or route (404).
    NotFound,
    /// The upstream took too long (408).
    Timeout,
    /// Well-formed but unprocessable (422).
    Unprocessable,
    /// Too many requests (429).
    RateLimit,
    /// Something went wrong upstream or here (500 unless the upstream said otherwise).
    Api,
    /// The configured provider exists in LiteLLM's namespace but Tollgate does not translate it yet (501).
    NotImplemented,
    /// The upstream could not be reached (502).
    BadGateway,
    /// The upstream is overloaded or down (503).
    Unavailable,
    /// A key, user, team, end user or the proxy is over its budget (400, LiteLLM's type).
    BudgetExceeded,
    /// The virtual key is past its expiry (400, LiteLLM's type).
    ExpiredKey,
    /// The virtual key may not call this model (401, LiteLLM's type).
    KeyModelAccessDenied,
    /// The key's team may not call this model (401, LiteLLM's type).
    TeamModelAccessDenied,
}

impl ErrorKind {
    /// OpenAI's `error.type` string for this kind.
    pub fn type_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest | ErrorKind::NotFound | ErrorKind::Unprocessable => {
                "invalid_request_error"
            }
            ErrorKind::Authentication => "authentication_error",
            ErrorKind::PermissionDenied => "permission_error",
            ErrorKind::Timeout => "timeout_error",
            ErrorKind::RateLimit => "rate_limit_error",
            ErrorKind::Api | ErrorKind::BadGateway | ErrorKind::Unavailable => "api_error",
            ErrorKind::NotImplemented => "not_implemented_error",
            ErrorKind::BudgetExceeded => "budget_exceeded",
            ErrorKind::ExpiredKey => "expired_key",
            ErrorKind::KeyModelAccessDenied => "key_model_access_denied",
            ErrorKind::TeamModelAccessDenied => "team_model_access_denied",
        }
    }

    fn default_status(self) -> StatusCode {
        match self {
            ErrorKind::InvalidRequest | ErrorKind::BudgetExceeded | ErrorKind::ExpiredKey => {
                StatusCode::BAD_REQUEST
            }
            ErrorKind::Authentication
            | ErrorKind::KeyModelAccessDenied
            | ErrorKind::TeamModelAccessDenied => StatusCode::UNAUTHORIZED,
            ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Timeout => StatusCode::REQUEST_TIMEOUT,
            ErrorKind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::RateLimit => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Api => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::NotImplemented => StatusCode::NOT_IMPLEMENTED,
            ErrorKind::BadGateway => StatusCode::BAD_GATEWAY,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The kind an upstream HTTP status means.
    pub fn from_status(status: u16) -> ErrorKind {
        match status {
            400 => ErrorKind::InvalidRequest,
            401 => ErrorKind::Authentication,
            403 => ErrorKind::PermissionDenied,
            404 => ErrorKind::NotFound,
            408 => ErrorKind::Timeout,
            422 => ErrorKind::Unprocessable,
            429 => ErrorKind::RateLimit,
            503 | 529 => ErrorKind::Unavailable,
            _ => ErrorKind::Api,
        }
    }
}

/// Who a failure comes from. Retries, fallbacks and cooldowns decide by it: only what a
/// deployment did may bench that deployment or send the request elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Origin {
    /// The request itself is wrong (bad JSON, unknown model, wrong master key): another
    /// deployment or group would refuse it too.
    Client,
    /// The gateway refused it by rule (a key's rate limit or budget, a model the key may not
    /// use). Never retried, never fallen back from, never held against a deployment.
    Policy,
    /// A provider answered with an error, timed out or broke; `deployment` is its id when
    /// known (providers build the error, the attempt loop names the deployment).
    Upstream { deployment: Option<Box<str>> },
    /// The gateway itself: routing found no capacity, a translation is missing, a bug.
    #[default]
    Gateway,
    /// The Store failed (and the feature fails closed).
    Store,
}

impl Origin {
    /// A failure of the request's model group that another group might not have.
    pub fn may_fall_back(&self) -> bool {
        matches!(self, Origin::Upstream { .. } | Origin::Gateway)
    }

    /// A failure a retry on the same group might not have.
    pub fn may_retry(&self) -> bool {
        matches!(self, Origin::Upstream { .. })
    }

    /// A failure that says something about the deployment (cooldowns).
    pub fn blames_deployment(&self) -> bool {
        matches!(self, Origin::Upstream { .. })
    }
}

/// A failure with everything needed to answer the client.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayError {
    pub kind: ErrorKind,
    /// Who it comes from: decides retries, fallbacks and cooldowns.
    pub origin: Origin,
    /// Overrides the kind's default status (an upstream 529 stays 529).
    pub status: Option<u16>,
    pub message: String,
    pub param: Option<String>,
    pub code: Option<String>,
    /// Seconds the client should wait, copied from an upstream `retry-after`.
    pub retry_after: Option<Box<str>>,
}

impl GatewayError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        GatewayError {
            kind,
            origin: Origin::Gateway,
            status: None,
            message: message.into(),
            param: None,
            code: None,
            retry_after: None,
        }
    }

    /// The client's mistake (400).
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidRequest, message).with_origin(Origin::Client)
    }

    /// A refusal by the gateway's rules (limits, budgets, model access).
    pub fn policy(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self::new(kind, message).with_origin(Origin::Policy)
    }

    pub fn with_origin(mut self, origin: Origin) -> Self {
        self.origin = origin;
        self
    }

    /// Names the deployment an upstream failure came from. A provider that refuses the
    /// deployment's own credentials (401/403) is said to, so the client cannot take it for a
    /// problem with the key it presented to the gateway.
    pub fn from_deployment(mut self, deployment_id: &str) -> Self {
        if matches!(self.status().as_u16(), 401 | 403) {
            self.message = format!(
                "The provider refused the credentials configured for deployment {deployment_id} \
                 (the gateway's provider key, not the key you sent): {}",
                self.message
            );
            self.code
                .get_or_insert_with(|| "upstream_auth_error".into());
        }
        self.origin = Origin::Upstream {
            deployment: Some(deployment_id.into()),
        };
        self
    }

    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// An error from an upstream response: keeps its status so 429 stays 429.
    pub fn upstream(status: u16, message: impl Into<String>) -> Self {
        let status = if (400..=599).contains(&status) {
            status
        } else {
            502
        };
        Self::new(ErrorKind::from_status(status), message)
            .with_status(status)
            .with_origin(Origin::Upstream { deployment: None })
    }

    pub fn status(&self) -> StatusCode {
        self.status
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or_else(|| self.kind.default_status())
    }

    /// The OpenAI error object, `{"error": {...}}`.
    pub fn to_json(&self) -> serde_json::Value {
        let code = self
            .code
            .clone()
            .unwrap_or_else(|| self.status().as_u16().to_string());
        json!({
            "error": {
                "message": self.message,
                "type": self.kind.type_str(),
                "param": self.param,
                "code": code,
            }
        })
    }

    pub fn to_body(&self) -> bytes::Bytes {
        bytes::Bytes::from(self.to_json().to_string())
    }
}

impl std::fmt::Display for GatewayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.kind.type_str(),
            self.status(),
            self.message
        )
    }
}

impl std::error::Error for GatewayError {}

impl From<crate::ports::TransportError> for GatewayError {
    fn from(e: crate::ports::TransportError) -> Self {
        let e = match e {
            crate::ports::TransportError::Timeout => GatewayError::new(
                ErrorKind::Timeout,
                "Request timed out waiting for the upstream provider",
            ),
            other => GatewayError::new(ErrorKind::BadGateway, other.to_string()),
        };
        e.with_origin(Origin::Upstream { deployment: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_status_is_kept() {
        let e = GatewayError::upstream(429, "slow down");
        assert_eq!(e.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(e.kind.type_str(), "rate_limit_error");
        let e = GatewayError::upstream(529, "overloaded");
        assert_eq!(e.status().as_u16(), 529);
    }

    #[test]
    fn body_has_openai_shape() {
        let e = GatewayError::invalid_request("bad").with_param("messages");
        let v = e.to_json();
        assert_eq!(v["error"]["message"], "bad");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["param"], "messages");
        assert_eq!(v["error"]["code"], "400");
    }

    #[test]
    fn origins_decide_retries_and_fallbacks() {
        let policy = GatewayError::policy(ErrorKind::RateLimit, "key over its rpm");
        assert!(!policy.origin.may_retry());
        assert!(!policy.origin.may_fall_back());
        assert!(!policy.origin.blames_deployment());
        let upstream = GatewayError::upstream(429, "slow down");
        assert!(upstream.origin.may_retry() && upstream.origin.may_fall_back());
        assert!(!GatewayError::invalid_request("bad").origin.may_fall_back());
    }

    #[test]
    fn an_upstream_401_names_the_deployment_credentials() {
        let e = GatewayError::upstream(401, "Incorrect API key provided").from_deployment("dep-1");
        assert_eq!(e.status().as_u16(), 401);
        assert!(e.message.contains("deployment dep-1"), "{}", e.message);
        assert!(e.message.contains("not the key you sent"));
        assert_eq!(e.code.as_deref(), Some("upstream_auth_error"));
        assert_eq!(
            e.origin,
            Origin::Upstream {
                deployment: Some("dep-1".into())
            }
        );
        // Other statuses keep their message.
        let e = GatewayError::upstream(500, "boom").from_deployment("dep-1");
        assert_eq!(e.message, "boom");
    }

    #[test]
    fn non_error_upstream_status_becomes_bad_gateway() {
        assert_eq!(GatewayError::upstream(302, "odd").status().as_u16(), 502);
    }
}
