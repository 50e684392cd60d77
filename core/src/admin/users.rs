//! `/user/*`: internal users (new, info, update, delete, list).

use bytes::Bytes;
use http::Method;

use crate::error::GatewayError;
use crate::gateway::{Gateway, GatewayResponse};
use crate::identity::Caller;

/// The answer to one of this family's routes, or `None` when `path` is not one.
pub async fn route(
    _gateway: &Gateway,
    _caller: &Caller,
    _method: &Method,
    _path: &str,
    _req: http::Request<Bytes>,
) -> Option<Result<GatewayResponse, GatewayError>> {
    None
}
