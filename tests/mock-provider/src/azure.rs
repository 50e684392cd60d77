//! Azure OpenAI: OpenAI's wire format under a deployment path,
//! `/openai/deployments/{deployment}/{chat/completions|completions|embeddings|images/generations}?api-version=V`,
//! or the v1 style `/openai/v1/{operation}` (deployment named by the body's `model`).
//!
//! Bodies are the OpenAI module's, with the deployment standing in for the model (scenarios
//! read its name). What is Azure's own: the `api-key` header (or `Authorization: Bearer`, for
//! Entra ID tokens), the required `api-version` (404 "Resource not found" without it on the
//! deployment path, as Azure answers), its error bodies, and the content filter.

use hyper::http::request::Parts;
use hyper::HeaderMap;
use serde_json::Value;

use crate::http::{self, Resp};
use crate::json::Obj;
use crate::logic::scenario;
use crate::openai;

/// The operations served under a deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Chat,
    Completions,
    Embeddings,
    Images,
}

/// A parsed Azure path: the operation, and the deployment (`None` on the v1 path).
#[derive(Debug, PartialEq, Eq)]
pub struct AzurePath<'a> {
    pub operation: Operation,
    pub deployment: Option<&'a str>,
}

fn operation(s: &str) -> Option<Operation> {
    match s {
        "chat/completions" => Some(Operation::Chat),
        "completions" => Some(Operation::Completions),
        "embeddings" => Some(Operation::Embeddings),
        "images/generations" => Some(Operation::Images),
        _ => None,
    }
}

pub fn parse_path(path: &str) -> Option<AzurePath<'_>> {
    if let Some(op) = path.strip_prefix("/openai/v1/") {
        return Some(AzurePath {
            operation: operation(op)?,
            deployment: None,
        });
    }
    let rest = path.strip_prefix("/openai/deployments/")?;
    let (deployment, op) = rest.split_once('/')?;
    if deployment.is_empty() {
        return None;
    }
    Some(AzurePath {
        operation: operation(op)?,
        deployment: Some(deployment),
    })
}

/// `{"error": {"code", "message"}}` with a status, Azure's gateway-level error shape.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, code: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    pub fn body(&self) -> Vec<u8> {
        Obj::new()
            .obj(
                "error",
                Obj::new()
                    .str("code", &self.code)
                    .str("message", &self.message),
            )
            .finish()
    }

    pub fn response(&self) -> Resp {
        http::json(self.status, self.body())
    }
}

/// `api-key: <non-empty>` or `authorization: Bearer <non-empty>`.
pub fn check_auth(headers: &HeaderMap) -> Result<(), ApiError> {
    let key = headers
        .get("api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty());
    if key.is_none() && http::bearer(headers).is_none() {
        return Err(ApiError::new(
            401,
            "401",
            "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.",
        ));
    }
    Ok(())
}

/// The deployment path needs `api-version`; the v1 path does not.
pub fn check_version(path: &AzurePath<'_>, query: Option<&str>) -> Result<(), ApiError> {
    let version = crate::logic::query_param(query, "api-version").filter(|v| !v.is_empty());
    if path.deployment.is_some() && version.is_none() {
        return Err(ApiError::new(404, "404", "Resource not found"));
    }
    Ok(())
}

/// Azure's answer to a prompt its content filter blocks (`content-filter` scenario).
pub fn content_filter_error() -> Resp {
    let category = |filtered: bool, severity: &str| {
        Obj::new()
            .val("filtered", &filtered)
            .str("severity", severity)
    };
    let result = Obj::new()
        .obj("hate", category(false, "safe"))
        .obj("self_harm", category(false, "safe"))
        .obj("sexual", category(false, "safe"))
        .obj("violence", category(true, "medium"));
    let body = Obj::new()
        .obj(
            "error",
            Obj::new()
                .str("message", "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry. To learn more about our content filtering policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766")
                .null("type")
                .str("param", "prompt")
                .str("code", "content_filter")
                .num("status", 400)
                .obj(
                    "innererror",
                    Obj::new()
                        .str("code", "ResponsibleAIPolicyViolation")
                        .obj("content_filter_result", result),
                ),
        )
        .finish();
    http::json(400, body)
}

// ----------------------------------------------------------------------- route

/// A request under `/openai/...`: Azure's checks, then OpenAI's handling with the
/// deployment as the model.
pub async fn handle(
    path: AzurePath<'_>,
    parts: &Parts,
    parsed: Result<Value, serde_json::Error>,
) -> Resp {
    if let Err(e) = check_version(&path, parts.uri.query()) {
        return e.response();
    }
    if let Err(e) = check_auth(&parts.headers) {
        return e.response();
    }
    let mut v = match parsed {
        Ok(v) if v.is_object() => v,
        Ok(_) => {
            return openai::ApiError::invalid("The request body must be a JSON object.", None, None)
                .response()
        }
        Err(e) => return openai::not_json(&e).response(),
    };
    if let Some(deployment) = path.deployment {
        v["model"] = Value::String(deployment.to_owned());
    }
    let checked = match path.operation {
        Operation::Chat => openai::validate_chat(&v),
        Operation::Completions => openai::validate_completions(&v),
        Operation::Embeddings => openai::validate_embeddings(&v),
        Operation::Images => crate::images::validate(&v),
    };
    if let Err(e) = checked {
        return e.response();
    }
    let model = v
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let sc = scenario(&model);
    crate::apply_delay(sc.slow_ms).await;
    if let Some(status) = sc.error_status {
        return openai::simulated_error(status, &model).response();
    }
    if sc.context_overflow {
        return openai::context_overflow().response();
    }
    match path.operation {
        Operation::Embeddings => openai::embeddings(&v, &model),
        Operation::Images => crate::images::generate(&v),
        _ if sc.content_filter => content_filter_error(),
        Operation::Chat => openai::chat(&v, &model, &sc),
        Operation::Completions => openai::completions(&v, &model, &sc),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            parse_path("/openai/deployments/my-gpt/chat/completions"),
            Some(AzurePath {
                operation: Operation::Chat,
                deployment: Some("my-gpt")
            })
        );
        assert_eq!(
            parse_path("/openai/deployments/e/embeddings")
                .unwrap()
                .operation,
            Operation::Embeddings
        );
        assert_eq!(
            parse_path("/openai/v1/completions"),
            Some(AzurePath {
                operation: Operation::Completions,
                deployment: None
            })
        );
        assert_eq!(parse_path("/openai/deployments//chat/completions"), None);
        assert_eq!(
            parse_path("/openai/deployments/x/images/generations")
                .unwrap()
                .operation,
            Operation::Images
        );
        assert_eq!(parse_path("/openai/deployments/x/images/edits"), None);
        assert_eq!(parse_path("/v1/chat/completions"), None);
    }

    #[test]
    fn version_and_auth() {
        let p = parse_path("/openai/deployments/d/chat/completions").unwrap();
        assert_eq!(check_version(&p, None).unwrap_err().status, 404);
        assert_eq!(
            check_version(&p, Some("api-version=")).unwrap_err().status,
            404
        );
        check_version(&p, Some("api-version=2024-10-21")).unwrap();
        check_version(&parse_path("/openai/v1/chat/completions").unwrap(), None).unwrap();
        let mut h = HeaderMap::new();
        let e = check_auth(&h).unwrap_err();
        let body: Value = serde_json::from_slice(&e.body()).unwrap();
        assert_eq!(
            (e.status, body["error"]["code"].as_str()),
            (401, Some("401"))
        );
        h.insert("api-key", "k".parse().unwrap());
        check_auth(&h).unwrap();
        let mut h = HeaderMap::new();
        h.insert(hyper::header::AUTHORIZATION, "Bearer t".parse().unwrap());
        check_auth(&h).unwrap();
    }

    #[test]
    fn content_filter_shape() {
        let r = content_filter_error();
        assert_eq!(r.status(), 400);
    }
}
