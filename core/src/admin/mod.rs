//! The admin API's route table: routes that manage or inspect the gateway rather than call a
//! model. The caller is authenticated before (master key or virtual key); each route checks
//! the caller's role (`Caller::is_admin`, `may_read_all`, or its own objects only).

pub mod body;
mod budgets;
mod customers;
mod keys;
pub mod seed;
mod spend;
mod teams;
mod users;

use bytes::Bytes;
use http::Method;

use crate::error::GatewayError;
use crate::gateway::{Gateway, GatewayResponse};
use crate::identity::Caller;

/// The answer to an admin route, or `None` when `path` is not one.
pub async fn route(
    gateway: &Gateway,
    caller: &Caller,
    method: &Method,
    path: &str,
    req: http::Request<Bytes>,
) -> Option<Result<GatewayResponse, GatewayError>> {
    match (method, path) {
        (&Method::GET, "/health") => Some(match require_admin(caller) {
            Ok(()) => Ok(gateway.health().await),
            Err(e) => Err(e),
        }),
        _ => {
            if let Some(answer) = spend::route(gateway, caller, method, path, &req).await {
                return Some(answer);
            }
            let family = path.trim_start_matches('/').split('/').next().unwrap_or("");
            match family {
                "key" => keys::route(gateway, caller, method, path, req).await,
                "user" => users::route(gateway, caller, method, path, req).await,
                "team" => teams::route(gateway, caller, method, path, req).await,
                "customer" | "end_user" => {
                    customers::route(gateway, caller, method, path, req).await
                }
                "budget" => budgets::route(gateway, caller, method, path, req).await,
                _ => None,
            }
        }
    }
}

/// Refuses callers that are not proxy admins (403, OpenAI's shape).
pub fn require_admin(caller: &Caller) -> Result<(), GatewayError> {
    if caller.is_admin() {
        return Ok(());
    }
    Err(forbidden(caller))
}

/// Refuses callers that may not read everything (403).
pub fn require_reader(caller: &Caller) -> Result<(), GatewayError> {
    if caller.may_read_all() {
        return Ok(());
    }
    Err(forbidden(caller))
}

fn forbidden(caller: &Caller) -> GatewayError {
    GatewayError::new(
        crate::error::ErrorKind::PermissionDenied,
        format!(
            "Only proxy admins may use this route; this key's role is {}.",
            caller.role().as_str()
        ),
    )
    .with_origin(crate::error::Origin::Policy)
    .with_code("forbidden")
}

#[cfg(test)]
mod tests {
    use crate::gateway::tests::{admin_gateway, call, run};
    use crate::identity::records::KeyRecord;
    use crate::identity::token;

    const CONFIG: &str = "model_list:\n  - model_name: m\n    litellm_params: {model: mock/x}\ngeneral_settings:\n  master_key: sk-master\n";

    #[test]
    fn admin_routes_refuse_keys_that_are_not_admins() {
        let gw = admin_gateway(CONFIG);
        let t = token::hash("sk-plain-user-key");
        run(gw.directory().put_key(
            &t,
            KeyRecord {
                token: t.clone(),
                ..Default::default()
            },
        ))
        .unwrap();
        let (status, body) = call(&gw, "GET", "/health", "sk-plain-user-key", None);
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["error"]["type"], "permission_error");
        let (status, _) = call(&gw, "GET", "/health", "sk-unknown-key", None);
        assert_eq!(status, 401);
        let (status, _) = call(&gw, "GET", "/health", &t, None);
        assert_eq!(status, 401, "a stored token is not a credential");
    }
}
