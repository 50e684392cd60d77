//! The HTTP route table: unauthenticated probes, then (with the master key) models, the LLM
//! endpoints and the admin routes (`crate::admin`).

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::{json, Value};

use super::respond::{error_response, json_response, model_object, GatewayResponse};
use super::{Gateway, RequestIds, VERSION};
use crate::anthropic_ingress;
use crate::error::{ErrorKind, GatewayError};
use crate::ledger::Endpoint;
use crate::ports::AfterResponse;
use crate::router::session::unknown_model;

/// The LLM endpoint a path names (each also without `/v1`).
fn llm_endpoint(path: &str) -> Option<Endpoint> {
    Some(match path {
        "/chat/completions" => Endpoint::ChatCompletions,
        "/completions" => Endpoint::Completions,
        "/embeddings" => Endpoint::Embeddings,
        "/images/generations" => Endpoint::ImageGenerations,
        "/messages" => Endpoint::Messages,
        _ => return None,
    })
}

impl Gateway {
    pub(super) async fn route(
        &self,
        req: http::Request<Bytes>,
        ids: &RequestIds,
        after: Arc<dyn AfterResponse>,
    ) -> GatewayResponse {
        let path = normalise_path(req.uri().path()).to_string();
        let method = req.method().clone();
        match (&method, llm_endpoint(&path)) {
            (&Method::POST, Some(endpoint)) => {
                let ledger = self.open_ledger(ids, endpoint, &after);
                return self.llm(endpoint, req, ids, ledger, after).await;
            }
            (_, Some(endpoint)) => return error_for(endpoint, &not_allowed(&path)),
            _ => {}
        }
        match self.other(&method, &path, req).await {
            Ok(resp) => resp,
            Err(e) => error_response(&e),
        }
    }

    /// Everything that is not an LLM call.
    async fn other(
        &self,
        method: &Method,
        path: &str,
        req: http::Request<Bytes>,
    ) -> Result<GatewayResponse, GatewayError> {
        // Probes are unauthenticated, as load balancers and Lambda health checks expect.
        match (method, path) {
            (&Method::GET, "/health/liveliness" | "/health/liveness") => {
                return Ok(json_response(StatusCode::OK, &json!("I'm alive!")))
            }
            (&Method::GET, "/health/readiness") => return Ok(self.readiness().await),
            _ => {}
        }
        let caller = self
            .directory
            .authenticate(self.master_key.as_ref(), req.headers())
            .await?;
        match (method, path) {
            (&Method::GET, "/models") => Ok(self.models(&caller)),
            (&Method::GET, p) if p.starts_with("/models/") => {
                let name = &p["/models/".len()..];
                caller.may_use(name, &self.config)?;
                self.model(name)
            }
            (_, "/models") => Err(not_allowed(path)),
            _ => match crate::admin::route(self, &caller, method, path, req).await {
                Some(answer) => answer,
                None => Err(GatewayError::new(
                    ErrorKind::NotFound,
                    format!("Unknown route: {path}"),
                )
                .with_origin(crate::error::Origin::Client)
                .with_code("route_not_found")),
            },
        }
    }

    /// Ready when the store answers (LiteLLM reports its database here the same way).
    async fn readiness(&self) -> GatewayResponse {
        match self.store.counter_get("tollgate:readiness").await {
            Ok(_) => json_response(
                StatusCode::OK,
                &json!({"status": "healthy", "db": "connected", "cache": null, "litellm_version": VERSION}),
            ),
            Err(e) => json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({"status": "unhealthy", "db": e.to_string(), "cache": null, "litellm_version": VERSION}),
            ),
        }
    }

    /// The models the caller may use (a virtual key sees only its own, as with LiteLLM).
    fn models(&self, caller: &crate::identity::Caller) -> GatewayResponse {
        let data: Vec<Value> = self
            .config
            .public_model_names()
            .iter()
            .filter(|n| caller.may_use(n, &self.config).is_ok())
            .map(|n| model_object(n))
            .collect();
        json_response(StatusCode::OK, &json!({"object": "list", "data": data}))
    }

    fn model(&self, name: &str) -> Result<GatewayResponse, GatewayError> {
        if self.config.deployments_for(name).is_empty() {
            return Err(unknown_model(name));
        }
        Ok(json_response(StatusCode::OK, &model_object(name)))
    }
}

fn not_allowed(path: &str) -> GatewayError {
    GatewayError::invalid_request(format!("Method not allowed on {path}")).with_status(405)
}

/// The error shape a path's clients read: Anthropic's on `/v1/messages`, OpenAI's elsewhere.
pub(super) fn error_for(endpoint: Endpoint, e: &GatewayError) -> GatewayResponse {
    match endpoint {
        Endpoint::Messages => anthropic_ingress::error_response(e),
        _ => error_response(e),
    }
}

/// `/v1/x`, `/x` and `/x/` are the same route.
pub(super) fn normalise_path(path: &str) -> &str {
    let p = path
        .strip_prefix("/v1")
        .filter(|p| p.is_empty() || p.starts_with('/'))
        .unwrap_or(path);
    let p = p.trim_end_matches('/');
    if p.is_empty() {
        "/"
    } else {
        p
    }
}
