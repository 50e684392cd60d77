//! The body of `/customer/new` and `/customer/update` (LiteLLM's `NewCustomerRequest`), also
//! the shape of an end user in the config seed. Absent (or null) fields leave the record's
//! value alone.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::admin::fields::{
    check_amount, check_duration, check_soft_below_max, set, unprocessable,
};
use crate::config::Config;
use crate::error::GatewayError;
use crate::identity::records::CustomerRecord;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CustomerBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked: Option<bool>,
    /// A shared budget (`/budget/new`); its limits win over the end user's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_budget: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub soft_budget: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_duration: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tpm_limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpm_limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_parallel_requests: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_model_region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

impl CustomerBody {
    /// Checks that need no Store: amounts, the budget period, the region, the default model.
    pub fn validate(&self, config: &Config) -> Result<(), GatewayError> {
        check_amount("max_budget", self.max_budget)?;
        check_amount("soft_budget", self.soft_budget)?;
        check_duration("budget_duration", self.budget_duration.as_deref())?;
        if let Some(r) = self.allowed_model_region.as_deref() {
            if !matches!(r, "eu" | "us") {
                return Err(unprocessable(
                    "allowed_model_region",
                    format!("allowed_model_region must be 'eu' or 'us', got {r:?}"),
                ));
            }
        }
        if let Some(m) = self.default_model.as_deref() {
            if config.deployments_for(m).is_empty() {
                return Err(unprocessable(
                    "default_model",
                    format!("Default Model not on proxy. Default_model={m}"),
                ));
            }
        }
        check_soft_below_max(self.soft_budget, self.max_budget)
    }

    /// A new end user names a shared budget or its own, not both (LiteLLM's rule).
    pub fn validate_new(&self, config: &Config) -> Result<(), GatewayError> {
        if self.max_budget.is_some() && self.budget_id.is_some() {
            return Err(unprocessable(
                "budget_id",
                "Set either 'max_budget' or 'budget_id', not both.",
            ));
        }
        self.validate(config)
    }

    /// Writes the fields the body names into `rec`.
    pub fn apply(&self, rec: &mut CustomerRecord) {
        set(&mut rec.alias, self.alias.clone());
        if let Some(b) = self.blocked {
            rec.blocked = b;
        }
        set(&mut rec.budget_id, self.budget_id.clone());
        set(&mut rec.budget.max_budget, self.max_budget);
        set(&mut rec.budget.soft_budget, self.soft_budget);
        set(
            &mut rec.budget.budget_duration,
            self.budget_duration.clone(),
        );
        set(&mut rec.limits.tpm_limit, self.tpm_limit);
        set(&mut rec.limits.rpm_limit, self.rpm_limit);
        set(
            &mut rec.limits.max_parallel_requests,
            self.max_parallel_requests,
        );
        set(
            &mut rec.allowed_model_region,
            self.allowed_model_region.clone(),
        );
        set(&mut rec.default_model, self.default_model.clone());
        if let Some(m) = &self.metadata {
            rec.metadata = m.clone();
        }
    }
}
