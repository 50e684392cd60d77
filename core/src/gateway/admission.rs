//! Admission: after authentication and parsing, before any upstream is called — who the
//! request is on behalf of (key, user, team, end user, tags), whether its end user is blocked,
//! and the budget reservation (`crate::budget`). What it holds goes into the ledger, so the
//! spend subscriber settles it however the request ends.

use std::sync::Arc;

use super::pipeline::Scope;
use super::work::Work;
use super::Gateway;
use crate::budget::charges::{charges_for, EndUser};
use crate::budget::Plan;
use crate::error::{ErrorKind, GatewayError, Origin};
use crate::identity::caller::store_down;
use crate::ledger::Attribution;
use crate::store::FailurePolicy;

impl Gateway {
    /// Notes who the request is for and reserves its worst-case cost on every budget it
    /// spends in; refuses it (400 `budget_exceeded`) when a budget cannot take it.
    pub(super) async fn admit(
        &self,
        work: &Work,
        requested: &str,
        scope: &mut Scope,
    ) -> Result<(), GatewayError> {
        let key = scope.caller.key();
        let attribution = Attribution {
            key_token: key.map(|k| k.key.token.clone()),
            key_alias: key.and_then(|k| k.key.key_alias.clone()),
            user_id: key.and_then(|k| k.key.user_id.clone()),
            team_id: key.and_then(|k| k.key.team_id.clone()),
            end_user: scope.opts.end_user.clone(),
            tags: merged_tags(key.map(|k| k.key.tags.as_slice()), &scope.opts.tags),
            metadata: scope.opts.metadata.clone(),
        };
        let end_user = match &attribution.end_user {
            Some(id) => Some(self.end_user(id).await?),
            None => None,
        };
        let charges = charges_for(
            &scope.caller,
            end_user
                .as_ref()
                .map(|(id, rec, shared)| EndUser {
                    id,
                    record: rec.as_deref(),
                    shared: shared.as_deref(),
                })
                .as_ref(),
            requested,
            &self.config.governance,
        );
        if let Some(e) = scope.ledger.entry() {
            e.attribution = Some(Arc::new(attribution));
        }
        let call_id = scope
            .ledger
            .entry()
            .map(|e| e.call_id.clone())
            .unwrap_or_default();
        let mut plan = Plan::for_request(charges, &call_id);
        let estimate = self.estimate(requested, work);
        let ops = plan.reservation(
            estimate,
            self.clock.now_ms(),
            self.config.governance.calendar,
        );
        // Unsure until answered, and in the ledger before it is sent: if the request is
        // dropped while waiting, or the Store fails without an answer, the settlement finds
        // out whether the reservation landed (docs/governance.md, "exactly once").
        plan.unsure();
        if let Some(e) = scope.ledger.entry() {
            e.budget = Some(Box::new(plan));
        }
        if ops.is_empty() {
            return Ok(());
        }
        let outcome = self.store.batch(&ops).await;
        let Some(plan) = scope.ledger.entry().and_then(|e| e.budget.as_mut()) else {
            return Ok(());
        };
        match outcome {
            Ok(outcome) => plan.answered(&outcome),
            Err(e) if self.config.governance.budget_store_failure == FailurePolicy::Open => {
                tracing::warn!(error = %e, "budgets not checked: the store failed and budget_store_failure is open");
                Ok(())
            }
            Err(e) => Err(store_down(e)),
        }
    }

    /// Raises the request's reservation to what it could cost on `group` (a fallback).
    pub(super) async fn top_up_for(
        &self,
        group: &str,
        work: &Work,
        scope: &mut Scope,
    ) -> Result<(), GatewayError> {
        let estimate = self.estimate(group, work);
        let Some(plan) = scope.ledger.entry().and_then(|e| e.budget.as_mut()) else {
            return Ok(());
        };
        let ops = plan.top_up(estimate);
        if ops.is_empty() {
            return Ok(());
        }
        plan.unsure();
        let outcome = self.store.batch(&ops).await;
        let Some(plan) = scope.ledger.entry().and_then(|e| e.budget.as_mut()) else {
            return Ok(());
        };
        match outcome {
            Ok(outcome) => plan.answered_top_up(&outcome),
            Err(_) if self.config.governance.budget_store_failure == FailurePolicy::Open => Ok(()),
            Err(e) => Err(store_down(e)),
        }
    }

    /// The most `work` could cost on any deployment of `group`.
    fn estimate(&self, group: &str, work: &Work) -> i64 {
        let deployments: Vec<Arc<crate::deployment::Deployment>> = self
            .config
            .deployments_for(group)
            .into_iter()
            .cloned()
            .collect();
        let requested = work
            .max_output_tokens()
            .unwrap_or(self.config.governance.reserved_output_tokens);
        // No model writes more than its `max_output_tokens`: a huge `max_tokens` must not pin a
        // budget with a reservation no answer could use (LiteLLM clamps the same way).
        let ceiling = deployments
            .iter()
            .map(|d| self.pricing.max_output_tokens(d))
            .collect::<Option<Vec<u64>>>()
            .and_then(|c| c.into_iter().max());
        let output = ceiling.map_or(requested, |c| requested.min(c));
        self.pricing
            .estimate(&deployments, work.estimated_prompt_tokens(), output)
    }

    /// The end user's record and the shared budget it names; a blocked end user is refused.
    #[allow(clippy::type_complexity)]
    async fn end_user(
        &self,
        id: &str,
    ) -> Result<
        (
            String,
            Option<Arc<crate::identity::records::CustomerRecord>>,
            Option<Arc<crate::identity::records::BudgetRecord>>,
        ),
        GatewayError,
    > {
        let record = self.directory.customer(id).await.map_err(store_down)?;
        if record.as_ref().is_some_and(|r| r.blocked) {
            return Err(GatewayError::new(
                ErrorKind::Authentication,
                format!(
                    "End User={id} is blocked. Update via /customer/unblock if you're an admin."
                ),
            )
            .with_origin(Origin::Policy)
            .with_param("user")
            .with_code("end_user_blocked"));
        }
        let shared = match record.as_ref().and_then(|r| r.budget_id.as_deref()) {
            Some(b) => self.directory.budget(b).await.map_err(store_down)?,
            None => None,
        };
        Ok((id.to_string(), record, shared))
    }
}

/// The key's tags, then the request's (LiteLLM merges them), without repeats.
fn merged_tags(key_tags: Option<&[String]>, request_tags: &[String]) -> Vec<String> {
    let mut tags: Vec<String> = key_tags.unwrap_or_default().to_vec();
    for t in request_tags {
        if !tags.contains(t) {
            tags.push(t.clone());
        }
    }
    tags
}
