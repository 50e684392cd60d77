//! The admin API's route table: routes that manage or inspect the gateway rather than call a
//! model. The caller is authenticated before (master key or virtual key); each route checks
//! the caller's role (`Caller::is_admin`, `may_read_all`, or its own objects only).

pub(crate) mod budget_body;
mod budgets;
pub(crate) mod customer_body;
mod customers;
pub(crate) mod fields;
mod key_body;
mod keys;
mod render_key;
pub mod seed;
mod spend;
pub(crate) mod team_body;
mod team_members;
mod team_view;
mod teams;
mod user_body;
mod user_view;
mod users;

use bytes::Bytes;
use http::Method;

use crate::error::GatewayError;
use crate::gateway::{Gateway, GatewayResponse};
use crate::identity::Caller;

/// An admin route's answer, or `None` when the path is not one of its family's.
type Answer = Option<Result<GatewayResponse, GatewayError>>;

/// A family's answer as a boxed future. Boxing keeps each family's state machine out of the
/// request's (one large future made rustc's `Send` proof for the Lambda runtime fail with a
/// higher-ranked lifetime error), and admin calls are rare enough for one allocation.
#[cfg(not(target_arch = "wasm32"))]
type Boxed<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Answer> + Send + 'a>>;
#[cfg(target_arch = "wasm32")]
type Boxed<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Answer> + 'a>>;

/// The answer to an admin route, or `None` when `path` is not one.
pub async fn route(
    gateway: &Gateway,
    caller: &Caller,
    method: &Method,
    path: &str,
    req: http::Request<Bytes>,
) -> Answer {
    if let (&Method::GET, "/health") = (method, path) {
        return Some(match require_admin(caller) {
            Ok(()) => Ok(gateway.health().await),
            Err(e) => Err(e),
        });
    }
    let family = path.trim_start_matches('/').split('/').next().unwrap_or("");
    let answer: Boxed<'_> = match family {
        "spend" | "global" => Box::pin(spend::route(gateway, caller, method, path, &req)),
        _ if path.ends_with("/daily/activity") => {
            Box::pin(spend::route(gateway, caller, method, path, &req))
        }
        "key" => Box::pin(keys::route(gateway, caller, method, path, req)),
        "user" => Box::pin(users::route(gateway, caller, method, path, req)),
        "team" => Box::pin(teams::route(gateway, caller, method, path, req)),
        "customer" | "end_user" => Box::pin(customers::route(gateway, caller, method, path, req)),
        "budget" => Box::pin(budgets::route(gateway, caller, method, path, req)),
        _ => return None,
    };
    answer.await
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
