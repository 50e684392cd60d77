//! Who is calling: the master key (an admin), or a virtual key with its user and team. Every
//! route authenticates through [`Directory::authenticate`]; LLM routes then ask
//! [`Caller::may_use`] for each model group they try (the requested one and each fallback).

use std::sync::Arc;

use super::directory::Directory;
use super::records::{KeyRecord, Role, TeamRecord, UserRecord};
use super::token;
use crate::auth::{presented_key, MasterKey};
use crate::calendar::iso8601;
use crate::config::Config;
use crate::error::{ErrorKind, GatewayError, Origin};

/// An authenticated caller.
#[derive(Debug, Clone)]
pub enum Caller {
    /// The master key, or anyone when no master key is configured (LiteLLM's open mode).
    Admin,
    /// A virtual key.
    Key(Arc<KeyCaller>),
}

/// A virtual key and what it belongs to, as read at authentication.
#[derive(Debug)]
pub struct KeyCaller {
    pub key: Arc<KeyRecord>,
    pub user: Option<Arc<UserRecord>>,
    pub team: Option<Arc<TeamRecord>>,
}

impl Caller {
    /// The caller's role: proxy admin for the master key, else the key's user's role
    /// (`internal_user` for a key with no user).
    pub fn role(&self) -> Role {
        match self {
            Caller::Admin => Role::ProxyAdmin,
            Caller::Key(k) => k.user.as_ref().map_or(Role::InternalUser, |u| u.user_role),
        }
    }

    /// May change anything (master key, or a `proxy_admin` user's key).
    pub fn is_admin(&self) -> bool {
        self.role() == Role::ProxyAdmin
    }

    /// May read anything.
    pub fn may_read_all(&self) -> bool {
        matches!(self.role(), Role::ProxyAdmin | Role::ProxyAdminViewer)
    }

    pub fn key(&self) -> Option<&KeyCaller> {
        match self {
            Caller::Admin => None,
            Caller::Key(k) => Some(k),
        }
    }

    /// Whether the caller may call `model` (a group or alias the request names, or a fallback
    /// group). Checked against the key's `models`, then its team's (or, for a key without a
    /// team, its user's).
    pub fn may_use(&self, model: &str, config: &Config) -> Result<(), GatewayError> {
        let Caller::Key(k) = self else { return Ok(()) };
        if !allows(&k.key.models, model, config) {
            return Err(GatewayError::policy(
                ErrorKind::KeyModelAccessDenied,
                format!(
                    "key not allowed to access model. This key can only access models={:?}. Tried to access {model}",
                    k.key.models
                ),
            )
            .with_param("model"));
        }
        if let Some(team) = &k.team {
            if !allows(&team.models, model, config) {
                return Err(GatewayError::policy(
                    ErrorKind::TeamModelAccessDenied,
                    format!(
                        "team not allowed to access model. Team={}, Model={model}. Allowed team models = {:?}",
                        team.team_id, team.models
                    ),
                )
                .with_param("model"));
            }
        }
        // A personal key (no team) is bound by its user's models too, as LiteLLM checks them.
        if let (None, Some(user)) = (&k.key.team_id, &k.user) {
            if !allows(&user.models, model, config) {
                return Err(GatewayError::policy(
                    ErrorKind::KeyModelAccessDenied,
                    format!(
                        "user not allowed to access model. User={}, Model={model}. Allowed user models = {:?}",
                        user.user_id, user.models
                    ),
                )
                .with_param("model"));
            }
        }
        Ok(())
    }
}

/// LiteLLM's model lists: empty (or `all-proxy-models`, `*`) allows everything; a name allows
/// that group or alias; an alias in the list allows the groups it stands for; `prefix/*`
/// allows names with that prefix.
fn allows(models: &[String], model: &str, config: &Config) -> bool {
    if models.is_empty() || lists(models, model, config) {
        return true;
    }
    // An alias the list does not name is allowed when every group it stands for is.
    config
        .alias_targets(model)
        .is_some_and(|groups| !groups.is_empty() && groups.iter().all(|g| lists(models, g, config)))
}

fn lists(models: &[String], model: &str, config: &Config) -> bool {
    models.iter().any(|m| {
        m == model
            || m == "*"
            || m == "all-proxy-models"
            || m == "all-team-models"
            || m.strip_suffix('*')
                .is_some_and(|p| !p.is_empty() && model.starts_with(p))
            || config
                .alias_targets(m)
                .is_some_and(|groups| groups.iter().any(|g| g == model))
    })
}

impl Directory {
    /// Authenticates a request's headers: the master key, a live virtual key, or (with no
    /// master key configured) anyone. Unknown, deleted and blocked keys are 401, an expired
    /// key 400 (`expired_key`); a key whose team is blocked is 401. The Store failing while
    /// the key is not cached is a 503: keys fail closed.
    pub async fn authenticate(
        &self,
        master: Option<&MasterKey>,
        headers: &http::HeaderMap,
    ) -> Result<Caller, GatewayError> {
        let Some(master) = master else {
            return Ok(Caller::Admin);
        };
        let Some(presented) = presented_key(headers) else {
            return Err(GatewayError::new(
                ErrorKind::Authentication,
                "No API key provided. Send it as 'Authorization: Bearer <key>'.",
            )
            .with_origin(Origin::Client)
            .with_code("missing_api_key"));
        };
        if master.matches(presented) {
            return Ok(Caller::Admin);
        }
        let invalid = || {
            GatewayError::new(ErrorKind::Authentication, "Invalid API key.")
                .with_origin(Origin::Client)
                .with_code("invalid_api_key")
        };
        // Only a raw key authenticates: a stored token is not a credential.
        if token::is_token(presented) {
            return Err(invalid());
        }
        let token = token::hash(presented);
        let key = self
            .key(&token)
            .await
            .map_err(store_down)?
            .ok_or_else(invalid)?;
        if key.blocked {
            return Err(
                GatewayError::new(ErrorKind::Authentication, "Key is blocked.")
                    .with_origin(Origin::Policy)
                    .with_code("key_blocked"),
            );
        }
        let now = self.now_ms();
        if key.is_expired(now) {
            return Err(GatewayError::policy(
                ErrorKind::ExpiredKey,
                format!(
                    "Authentication Error - Expired Key. Key Expiry time {} and current time {}",
                    key.expires_ms.map(iso8601).unwrap_or_default(),
                    iso8601(now)
                ),
            ));
        }
        let (user, team) = futures_util::future::join(
            async {
                match &key.user_id {
                    Some(id) => self.user(id).await,
                    None => Ok(None),
                }
            },
            async {
                match &key.team_id {
                    Some(id) => self.team(id).await,
                    None => Ok(None),
                }
            },
        )
        .await;
        let (user, team) = (user.map_err(store_down)?, team.map_err(store_down)?);
        if let Some(team) = team.as_ref().filter(|t| t.blocked) {
            return Err(GatewayError::new(
                ErrorKind::Authentication,
                format!("Team {} is blocked.", team.team_id),
            )
            .with_origin(Origin::Policy)
            .with_code("team_blocked"));
        }
        if user.as_ref().is_some_and(|u| u.blocked) {
            return Err(
                GatewayError::new(ErrorKind::Authentication, "User is blocked.")
                    .with_origin(Origin::Policy)
                    .with_code("user_blocked"),
            );
        }
        Ok(Caller::Key(Arc::new(KeyCaller { key, user, team })))
    }
}

/// The Store failed where the answer decides access: refuse (503) rather than guess.
pub fn store_down(e: crate::store::StoreError) -> GatewayError {
    GatewayError::new(
        ErrorKind::Unavailable,
        format!("The gateway's store is unavailable, so keys and budgets cannot be checked: {e}"),
    )
    .with_origin(Origin::Store)
    .with_code("store_unavailable")
}
