//! The gateway's own request parameters (LiteLLM's), read once per request whatever the
//! endpoint: what to fall back to, how often to retry, the caller's metadata, tags, end user
//! and cache controls, and a canned `mock_response`. Providers never see them (see
//! `validate::strip_gateway_params`).

use serde_json::{Map, Value};

use crate::error::GatewayError;

/// A request may ask for more (or fewer) retries than the config; this many at most.
const MAX_REQUEST_RETRIES: u64 = 10;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestOptions {
    /// The request's own `fallbacks` (replaces the configured general fallbacks).
    pub fallbacks: Option<Value>,
    /// The request's own `num_retries` (at most [`MAX_REQUEST_RETRIES`]).
    pub num_retries: Option<u32>,
    /// `metadata` (LiteLLM also reads `litellm_metadata`).
    pub metadata: Option<Map<String, Value>>,
    pub tags: Vec<String>,
    /// The end user: the body's `user`, else the `x-litellm-end-user-id` header.
    pub end_user: Option<String>,
    /// `cache: {no-cache, no-store, ttl, s-maxage, namespace, use-cache}`.
    pub cache_controls: Option<Map<String, Value>>,
    /// A canned answer: the built-in mock provider replies with it, whatever the deployment.
    pub mock_response: Option<Value>,
}

impl RequestOptions {
    /// Reads the options from a request body's top-level fields. `header_end_user` is the
    /// `x-litellm-end-user-id` header, used when the body names no `user`.
    pub fn read(
        body: &Map<String, Value>,
        header_end_user: Option<&str>,
    ) -> Result<Self, GatewayError> {
        let num_retries = match body.get("num_retries") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_u64() {
                Some(n) => Some(n.min(MAX_REQUEST_RETRIES) as u32),
                None => {
                    return Err(GatewayError::invalid_request(
                        "num_retries must be a non-negative integer",
                    )
                    .with_param("num_retries"))
                }
            },
        };
        let metadata = match body
            .get("metadata")
            .or_else(|| body.get("litellm_metadata"))
        {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(m.clone()),
            Some(_) => {
                return Err(GatewayError::invalid_request("metadata must be an object")
                    .with_param("metadata"))
            }
        };
        let tags = tags(body.get("tags"))
            .or_else(|| tags(metadata.as_ref().and_then(|m| m.get("tags"))))
            .unwrap_or_default();
        let end_user = body
            .get("user")
            .and_then(Value::as_str)
            .or(header_end_user)
            .filter(|u| !u.is_empty())
            .map(str::to_string);
        let cache_controls = match body.get("cache") {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(m.clone()),
            Some(_) => {
                return Err(GatewayError::invalid_request(
                    "cache must be an object of cache controls",
                )
                .with_param("cache"))
            }
        };
        Ok(RequestOptions {
            fallbacks: body.get("fallbacks").filter(|v| !v.is_null()).cloned(),
            num_retries,
            metadata,
            tags,
            end_user,
            cache_controls,
            mock_response: body.get("mock_response").cloned(),
        })
    }
}

fn tags(v: Option<&Value>) -> Option<Vec<String>> {
    let items = v?.as_array()?;
    Some(
        items
            .iter()
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read(v: Value) -> Result<RequestOptions, GatewayError> {
        RequestOptions::read(v.as_object().unwrap(), Some("header-user"))
    }

    #[test]
    fn reads_every_option_once() {
        let o = read(json!({
            "fallbacks": ["b"], "num_retries": 50, "metadata": {"tags": ["m"], "x": 1},
            "user": "u-1", "cache": {"no-cache": true}, "mock_response": "hi"
        }))
        .unwrap();
        assert_eq!(o.fallbacks, Some(json!(["b"])));
        assert_eq!(o.num_retries, Some(10), "capped");
        assert_eq!(o.tags, vec!["m"]);
        assert_eq!(o.end_user.as_deref(), Some("u-1"));
        assert_eq!(o.cache_controls.unwrap()["no-cache"], true);
        assert_eq!(o.mock_response, Some(json!("hi")));
    }

    #[test]
    fn header_names_the_end_user_when_the_body_does_not() {
        let o = read(json!({"tags": ["a", 3, "b"]})).unwrap();
        assert_eq!(o.end_user.as_deref(), Some("header-user"));
        assert_eq!(o.tags, vec!["a", "b"]);
    }

    #[test]
    fn wrong_types_name_the_param() {
        let e = read(json!({"num_retries": -1})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("num_retries"));
        let e = read(json!({"metadata": "x"})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("metadata"));
        let e = read(json!({"cache": 1})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("cache"));
    }
}
