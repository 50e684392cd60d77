//! The fields `/key/generate`, `/key/update` and `/key/regenerate` accept (LiteLLM's
//! `GenerateKeyRequest` / `UpdateKeyRequest`), checked and applied to a [`KeyRecord`].
//!
//! One struct serves all three: every field is a [`Patch`], so an update can tell a field left
//! out (kept) from one sent as `null` (cleared), as LiteLLM's merge-patch updates do; for a new
//! key both mean "not set". [`KeyFields::check`] decides what the body alone can; the checks
//! below decide what the caller may set and read the Store (the team and budget named, alias
//! claims).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use super::fields::{check_amount, check_duration};
use crate::budget::Duration;
use crate::error::{ErrorKind, GatewayError, Origin};
use crate::gateway::Gateway;
use crate::identity::caller::store_down;
use crate::identity::records::{KeyRecord, ModelBudget, Role};
use crate::identity::{token, Caller, Directory};

/// `created_by` for the master key, LiteLLM's `litellm_proxy_admin_name`.
const MASTER_ACTOR: &str = "default_user_id";

/// A field as sent: absent (`None`), `null` (`Some(None)`), or a value.
pub type Patch<T> = Option<Option<T>>;

/// Reads a field that is present, even as `null`, as `Some(...)`; an absent one keeps the
/// struct's default, `None`.
pub fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Patch<T>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// `duration: "-1"` is LiteLLM's older spelling of "never expires".
const NEVER: &str = "-1";

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct KeyFields {
    /// Generate: a custom raw key. Update / regenerate: the key to change (raw or token).
    #[serde(deserialize_with = "nullable")]
    pub key: Patch<String>,
    /// Regenerate: the new raw key, instead of a generated one.
    #[serde(deserialize_with = "nullable")]
    pub new_key: Patch<String>,
    #[serde(deserialize_with = "nullable")]
    pub key_alias: Patch<String>,
    #[serde(deserialize_with = "nullable")]
    pub duration: Patch<String>,
    #[serde(deserialize_with = "nullable")]
    pub models: Patch<Vec<String>>,
    #[serde(deserialize_with = "nullable")]
    pub max_budget: Patch<f64>,
    #[serde(deserialize_with = "nullable")]
    pub soft_budget: Patch<f64>,
    #[serde(deserialize_with = "nullable")]
    pub budget_duration: Patch<String>,
    #[serde(deserialize_with = "nullable")]
    pub tpm_limit: Patch<u64>,
    #[serde(deserialize_with = "nullable")]
    pub rpm_limit: Patch<u64>,
    #[serde(deserialize_with = "nullable")]
    pub max_parallel_requests: Patch<u64>,
    #[serde(deserialize_with = "nullable")]
    pub model_max_budget: Patch<BTreeMap<String, ModelBudget>>,
    #[serde(deserialize_with = "nullable")]
    pub model_rpm_limit: Patch<BTreeMap<String, u64>>,
    #[serde(deserialize_with = "nullable")]
    pub model_tpm_limit: Patch<BTreeMap<String, u64>>,
    #[serde(deserialize_with = "nullable")]
    pub user_id: Patch<String>,
    #[serde(deserialize_with = "nullable")]
    pub team_id: Patch<String>,
    #[serde(deserialize_with = "nullable")]
    pub budget_id: Patch<String>,
    #[serde(deserialize_with = "nullable")]
    pub metadata: Patch<Map<String, Value>>,
    #[serde(deserialize_with = "nullable")]
    pub tags: Patch<Vec<String>>,
    #[serde(deserialize_with = "nullable")]
    pub blocked: Patch<bool>,
    #[serde(deserialize_with = "nullable")]
    pub allowed_cache_controls: Patch<Vec<String>>,
}

impl KeyFields {
    /// Checks what the body alone decides, and normalises blank ids and aliases to "not set"
    /// (the Admin UI sends `""` for a cleared field, which LiteLLM reads as unset too).
    pub fn check(&mut self) -> Result<(), GatewayError> {
        for field in [
            &mut self.key_alias,
            &mut self.user_id,
            &mut self.team_id,
            &mut self.budget_id,
        ] {
            if matches!(field, Some(Some(s)) if s.trim().is_empty()) {
                *field = Some(None);
            }
        }
        check_amount("max_budget", self.max_budget.flatten())?;
        check_amount("soft_budget", self.soft_budget.flatten())?;
        if let Some(Some(d)) = &self.budget_duration {
            check_duration("budget_duration", Some(d))?;
        }
        if let Some(Some(d)) = &self.duration {
            if d.trim() != NEVER {
                check_duration("duration", Some(d))?;
            }
        }
        for (model, budget) in self.model_max_budget.iter().flatten().flatten() {
            check_amount(&format!("model_max_budget.{model}"), Some(budget.limit()))?;
            if let Some(p) = budget.period() {
                check_duration(&format!("model_max_budget.{model}.time_period"), Some(p))?;
            }
        }
        Ok(())
    }

    /// Writes every field the body names into `rec` (a `null` clears it). `now_ms` starts a
    /// new `duration`. Aliases, ownership and the referenced team and budget are checked by
    /// the route before this.
    pub fn apply(&self, rec: &mut KeyRecord, now_ms: u64) {
        if let Some(alias) = &self.key_alias {
            rec.key_alias.clone_from(alias);
        }
        if let Some(duration) = &self.duration {
            let parsed = duration.as_deref().and_then(Duration::parse);
            rec.duration = parsed.and(duration.clone());
            rec.expires_ms = parsed.map(|d| now_ms.saturating_add(d.approx_ms()));
        }
        set(&mut rec.models, &self.models);
        set_opt(&mut rec.budget.max_budget, &self.max_budget);
        set_opt(&mut rec.budget.soft_budget, &self.soft_budget);
        set_opt(&mut rec.budget.budget_duration, &self.budget_duration);
        set_opt(&mut rec.limits.tpm_limit, &self.tpm_limit);
        set_opt(&mut rec.limits.rpm_limit, &self.rpm_limit);
        set_opt(
            &mut rec.limits.max_parallel_requests,
            &self.max_parallel_requests,
        );
        set(&mut rec.model_max_budget, &self.model_max_budget);
        set(&mut rec.model_rpm_limit, &self.model_rpm_limit);
        set(&mut rec.model_tpm_limit, &self.model_tpm_limit);
        set_opt(&mut rec.user_id, &self.user_id);
        set_opt(&mut rec.team_id, &self.team_id);
        set_opt(&mut rec.budget_id, &self.budget_id);
        set(&mut rec.metadata, &self.metadata);
        set(&mut rec.tags, &self.tags);
        set(&mut rec.blocked, &self.blocked);
        set(
            &mut rec.allowed_cache_controls,
            &self.allowed_cache_controls,
        );
    }

    /// The value a field was sent with, if any (neither absent nor `null`).
    pub fn given<T>(field: &Patch<T>) -> Option<&T> {
        field.as_ref().and_then(Option::as_ref)
    }
}

/// Admins may generate any key. An `internal_user` only keys of its own: its `user_id` is
/// forced, a team must be one it belongs to, and it may not attach a shared budget (someone
/// else's money).
pub(super) async fn authorize_generate(
    gw: &Gateway,
    caller: &Caller,
    fields: &mut KeyFields,
) -> Result<(), GatewayError> {
    if caller.is_admin() {
        return Ok(());
    }
    if caller.role() != Role::InternalUser {
        return Err(deny(
            format!(
                "A key whose role is {} may not generate keys.",
                caller.role().as_str()
            ),
            None,
        ));
    }
    let Some(own) = caller_user(caller) else {
        return Err(deny(
            "This key has no user_id, so it may not generate keys.",
            Some("user_id"),
        ));
    };
    if KeyFields::given(&fields.user_id).is_some_and(|u| u != own) {
        return Err(deny(
            "You may only generate keys for your own user_id.",
            Some("user_id"),
        ));
    }
    fields.user_id = Some(Some(own.to_string()));
    if let Some(team_id) = KeyFields::given(&fields.team_id) {
        let team = gw.directory().team(team_id).await.map_err(store_down)?;
        if team.is_some_and(|t| t.member(own).is_none()) {
            return Err(deny(
                format!("You are not a member of team {team_id}."),
                Some("team_id"),
            ));
        }
    }
    if KeyFields::given(&fields.budget_id).is_some() {
        return Err(deny(
            "Only proxy admins may attach a budget_id to a key.",
            Some("budget_id"),
        ));
    }
    Ok(())
}

/// A custom raw key must look like a key, and must not be the master key (which would
/// authenticate as the admin before the record is ever read).
pub fn check_custom(gw: &Gateway, raw: &str, field: &str) -> Result<(), GatewayError> {
    token::check_custom(raw).map_err(|why| GatewayError::invalid_request(why).with_param(field))?;
    if gw
        .config()
        .master_key
        .as_ref()
        .is_some_and(|m| m.expose() == raw)
    {
        return Err(
            GatewayError::invalid_request("A key may not be the master key.").with_param(field),
        );
    }
    Ok(())
}

/// The team and shared budget a body names must exist (LiteLLM checks both, 400).
pub(super) async fn check_references(
    dir: &Directory,
    fields: &KeyFields,
) -> Result<(), GatewayError> {
    if let Some(team_id) = KeyFields::given(&fields.team_id) {
        // Read afresh: a team made a moment ago on another instance is not refused.
        if dir.team_fresh(team_id).await.map_err(store_down)?.is_none() {
            return Err(GatewayError::invalid_request(format!(
                "Team not found for team_id={team_id}."
            ))
            .with_param("team_id"));
        }
    }
    if let Some(budget_id) = KeyFields::given(&fields.budget_id) {
        if dir
            .budget_fresh(budget_id)
            .await
            .map_err(store_down)?
            .is_none()
        {
            return Err(GatewayError::invalid_request(format!(
                "Budget not found for budget_id={budget_id}."
            ))
            .with_param("budget_id"));
        }
    }
    Ok(())
}

/// Claims `alias` for `token`; a 400 when another key holds it (aliases are unique across
/// instances through the Store's `put_if_absent`).
pub(super) async fn claim(dir: &Directory, alias: &str, token: &str) -> Result<(), GatewayError> {
    if dir.claim_alias(alias, token).await.map_err(store_down)? {
        return Ok(());
    }
    Err(
        GatewayError::invalid_request(format!("Key with alias '{alias}' already exists."))
            .with_param("key_alias"),
    )
}

/// Frees `alias` if `token` holds it (never another key's claim).
pub(super) async fn release_if_held(
    dir: &Directory,
    alias: &str,
    token: &str,
) -> Result<(), GatewayError> {
    if dir.alias_token(alias).await.map_err(store_down)?.as_deref() == Some(token) {
        dir.release_alias(alias).await.map_err(store_down)?;
    }
    Ok(())
}

/// The user a virtual-key caller acts for (its key's `user_id`).
pub(super) fn caller_user(caller: &Caller) -> Option<&str> {
    caller.key().and_then(|k| k.key.user_id.as_deref())
}

/// Who made a change, for `created_by` / `updated_by`.
pub(super) fn actor(caller: &Caller) -> Option<String> {
    match caller {
        Caller::Admin => Some(MASTER_ACTOR.to_string()),
        Caller::Key(_) => caller_user(caller).map(str::to_string),
    }
}

/// A 403 in OpenAI's shape.
pub(super) fn deny(message: impl Into<String>, param: Option<&str>) -> GatewayError {
    let e = GatewayError::new(ErrorKind::PermissionDenied, message)
        .with_origin(Origin::Policy)
        .with_code("forbidden");
    match param {
        Some(p) => e.with_param(p),
        None => e,
    }
}

pub(super) fn set<T: Clone + Default>(target: &mut T, patch: &Patch<T>) {
    if let Some(v) = patch {
        *target = v.clone().unwrap_or_default();
    }
}

pub(super) fn set_opt<T: Clone>(target: &mut Option<T>, patch: &Patch<T>) {
    if let Some(v) = patch {
        target.clone_from(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::fields::parse;
    use bytes::Bytes;

    fn fields(json: &str) -> Result<KeyFields, GatewayError> {
        let mut f = parse::<KeyFields>(&Bytes::from(json.to_string()))?;
        f.check()?;
        Ok(f)
    }

    #[test]
    fn absent_fields_are_kept_and_null_fields_are_cleared() {
        let mut rec = KeyRecord {
            models: vec!["a".into()],
            key_alias: Some("old".into()),
            ..Default::default()
        };
        rec.budget.max_budget = Some(5.0);
        fields(r#"{"max_budget": null, "tpm_limit": 7}"#)
            .unwrap()
            .apply(&mut rec, 0);
        assert_eq!(rec.budget.max_budget, None);
        assert_eq!(rec.limits.tpm_limit, Some(7));
        assert_eq!(rec.models, vec!["a".to_string()]);
        assert_eq!(rec.key_alias.as_deref(), Some("old"));
    }

    #[test]
    fn durations_set_and_clear_the_expiry() {
        let mut rec = KeyRecord::default();
        fields(r#"{"duration": "1h"}"#)
            .unwrap()
            .apply(&mut rec, 1_000);
        assert_eq!(rec.expires_ms, Some(1_000 + 3_600_000));
        assert_eq!(rec.duration.as_deref(), Some("1h"));
        fields(r#"{"duration": "-1"}"#)
            .unwrap()
            .apply(&mut rec, 1_000);
        assert_eq!((rec.expires_ms, rec.duration), (None, None));
    }

    #[test]
    fn bad_values_name_their_field() {
        let e = fields(r#"{"budget_duration": "fortnight"}"#).unwrap_err();
        assert_eq!(
            (e.status().as_u16(), e.param.as_deref()),
            (422, Some("budget_duration"))
        );
        let e = fields(r#"{"max_budget": -1}"#).unwrap_err();
        assert_eq!(
            (e.status().as_u16(), e.param.as_deref()),
            (400, Some("max_budget"))
        );
        let e = fields(r#"{"model_max_budget": {"m": {"budget_limit": 1, "time_period": "x"}}}"#)
            .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("model_max_budget.m.time_period"));
        let e = fields(r#"{"tpm_limit": -5}"#).unwrap_err();
        assert_eq!(
            (e.status().as_u16(), e.param.as_deref()),
            (422, Some("tpm_limit"))
        );
        let f = fields(r#"{"team_id": "", "key_alias": " "}"#).unwrap();
        assert_eq!((f.team_id, f.key_alias), (Some(None), Some(None)));
    }
}
