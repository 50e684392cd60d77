//! The admin API's route table: routes that manage or inspect the gateway rather than call a
//! model, all behind the master key (checked by the caller). LiteLLM's key, user, team and
//! spend routes join this table; today it holds the deployment health report.

use bytes::Bytes;
use http::Method;

use crate::error::GatewayError;
use crate::gateway::{Gateway, GatewayResponse};

/// The answer to an admin route, or `None` when `path` is not one.
pub async fn route(
    gateway: &Gateway,
    method: &Method,
    path: &str,
    _req: http::Request<Bytes>,
) -> Option<Result<GatewayResponse, GatewayError>> {
    match (method, path) {
        (&Method::GET, "/health") => Some(Ok(gateway.health().await)),
        _ => None,
    }
}
