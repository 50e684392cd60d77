//! The body of `/budget/new` and `/budget/update` (LiteLLM's `BudgetNewRequest`), also the
//! shape of a budget in the config seed. Every field is optional: one that is absent (or null)
//! leaves the record's value alone.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize, Serializer};

use super::fields::{check_amount, check_duration, check_soft_below_max, set};
use crate::error::GatewayError;
use crate::identity::records::{BudgetRecord, ModelBudget};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BudgetBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_budget: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub soft_budget: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_parallel_requests: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tpm_limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpm_limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_duration: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_max_budget: Option<BTreeMap<String, ModelBudgetIn>>,
}

/// One model's budget as LiteLLM's bodies give it: a bare amount, a key's
/// `{budget_limit, time_period}`, or a budget's `{max_budget, budget_duration}`. Kept in the
/// record's one form ([`ModelBudget`]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ModelBudgetIn {
    Amount(f64),
    Limit {
        budget_limit: f64,
        #[serde(default)]
        time_period: Option<String>,
    },
    Generic {
        max_budget: f64,
        #[serde(default)]
        budget_duration: Option<String>,
    },
}

impl ModelBudgetIn {
    pub fn to_record(&self) -> ModelBudget {
        match self {
            ModelBudgetIn::Amount(a) => ModelBudget::Amount(*a),
            ModelBudgetIn::Limit {
                budget_limit,
                time_period,
            } => ModelBudget::Limit {
                budget_limit: *budget_limit,
                time_period: time_period.clone(),
            },
            ModelBudgetIn::Generic {
                max_budget,
                budget_duration,
            } => ModelBudget::Limit {
                budget_limit: *max_budget,
                time_period: budget_duration.clone(),
            },
        }
    }
}

impl Serialize for ModelBudgetIn {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_record().serialize(s)
    }
}

/// Each model's amount and period, checked as the whole budget's are.
pub fn check_model_budgets(
    budgets: Option<&BTreeMap<String, ModelBudgetIn>>,
) -> Result<(), GatewayError> {
    for (model, b) in budgets.into_iter().flatten() {
        let b = b.to_record();
        let param = format!("model_max_budget.{model}");
        check_amount(&param, Some(b.limit()))?;
        check_duration(&param, b.period())?;
    }
    Ok(())
}

impl BudgetBody {
    pub fn validate(&self) -> Result<(), GatewayError> {
        check_amount("max_budget", self.max_budget)?;
        check_amount("soft_budget", self.soft_budget)?;
        check_duration("budget_duration", self.budget_duration.as_deref())?;
        check_model_budgets(self.model_max_budget.as_ref())?;
        check_soft_below_max(self.soft_budget, self.max_budget)
    }

    /// Writes the fields the body names into `rec`.
    pub fn apply(&self, rec: &mut BudgetRecord) {
        set(&mut rec.budget.max_budget, self.max_budget);
        set(&mut rec.budget.soft_budget, self.soft_budget);
        set(
            &mut rec.budget.budget_duration,
            self.budget_duration.clone(),
        );
        set(
            &mut rec.limits.max_parallel_requests,
            self.max_parallel_requests,
        );
        set(&mut rec.limits.tpm_limit, self.tpm_limit);
        set(&mut rec.limits.rpm_limit, self.rpm_limit);
        if let Some(m) = &self.model_max_budget {
            rec.model_max_budget = m.iter().map(|(k, v)| (k.clone(), v.to_record())).collect();
        }
    }
}
