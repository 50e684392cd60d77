//! Which scopes a request spends in, and their budgets: the key (and its per-model budget),
//! the key's user, team and membership in the team, the end user, and the whole proxy.

use super::plan::Charge;
use super::scope::Scope;
use crate::config::governance::GovernanceSettings;
use crate::identity::records::{BudgetRecord, CustomerRecord};
use crate::identity::Caller;

/// The request's end user and what the Store knows of it.
pub struct EndUser<'a> {
    pub id: &'a str,
    pub record: Option<&'a CustomerRecord>,
    /// The shared budget its record names (`budget_id`).
    pub shared: Option<&'a BudgetRecord>,
}

/// Every scope the request spends in, for model group (or alias) `model`.
pub fn charges_for(
    caller: &Caller,
    end_user: Option<&EndUser>,
    model: &str,
    settings: &GovernanceSettings,
) -> Vec<Charge> {
    let mut charges = Vec::new();
    if let Some(k) = caller.key() {
        let key = &k.key;
        let b = &key.budget;
        charges.push(Charge::new(
            Scope::Key(key.token.clone()),
            b.max_budget,
            b.soft_budget,
            b.budget_duration.as_deref(),
        ));
        if let Some(per_model) = key.model_max_budget.get(model) {
            charges.push(Charge::new(
                Scope::KeyModel {
                    token: key.token.clone(),
                    model: model.to_string(),
                },
                Some(per_model.limit()),
                None,
                per_model.period(),
            ));
        }
        if let Some(user_id) = &key.user_id {
            let (max, soft, duration) = k.user.as_ref().map_or((None, None, None), |u| {
                (
                    u.budget.max_budget,
                    u.budget.soft_budget,
                    u.budget.budget_duration.as_deref(),
                )
            });
            charges.push(Charge::new(
                Scope::User(user_id.clone()),
                max,
                soft,
                duration,
            ));
        }
        if let Some(team_id) = &key.team_id {
            let team = k.team.as_deref();
            let b = team.map(|t| &t.budget);
            charges.push(Charge::new(
                Scope::Team(team_id.clone()),
                b.and_then(|b| b.max_budget),
                b.and_then(|b| b.soft_budget),
                b.and_then(|b| b.budget_duration.as_deref()),
            ));
            if let Some(user_id) = &key.user_id {
                charges.push(Charge::new(
                    Scope::Member {
                        team: team_id.clone(),
                        user: user_id.clone(),
                    },
                    team.and_then(|t| t.member_budget(user_id)),
                    None,
                    b.and_then(|b| b.budget_duration.as_deref()),
                ));
            }
        }
    }
    if let Some(u) = end_user {
        // Its own budget, else the shared budget it names, else the proxy-wide default.
        let own = u
            .record
            .map(|r| &r.budget)
            .filter(|b| b.max_budget.is_some());
        let shared = u
            .shared
            .map(|s| &s.budget)
            .filter(|b| b.max_budget.is_some());
        let (max, soft, duration) = match own.or(shared) {
            Some(b) => (b.max_budget, b.soft_budget, b.budget_duration.as_deref()),
            None => (settings.max_end_user_budget, None, None),
        };
        charges.push(Charge::new(
            Scope::EndUser(u.id.to_string()),
            max,
            soft,
            duration,
        ));
    }
    if let Some((max, duration)) = settings.proxy_budget {
        charges.push(Charge {
            scope: Scope::Proxy,
            duration,
            max_nanos: Some(super::plan::usd_to_nanos(max)),
            soft_nanos: None,
        });
    }
    charges
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::identity::records::{BudgetLimits, KeyRecord, ModelBudget, TeamMember, TeamRecord};
    use crate::identity::KeyCaller;

    fn caller() -> Caller {
        let mut key = KeyRecord {
            token: "tok".into(),
            user_id: Some("u".into()),
            team_id: Some("t".into()),
            budget: BudgetLimits {
                max_budget: Some(2.0),
                ..Default::default()
            },
            ..Default::default()
        };
        key.model_max_budget
            .insert("gpt".into(), ModelBudget::Amount(0.5));
        let team = TeamRecord {
            team_id: "t".into(),
            members_with_roles: vec![TeamMember {
                user_id: Some("u".into()),
                max_budget_in_team: Some(1.0),
                ..Default::default()
            }],
            ..Default::default()
        };
        Caller::Key(Arc::new(KeyCaller {
            key: Arc::new(key),
            user: None,
            team: Some(Arc::new(team)),
        }))
    }

    #[test]
    fn every_scope_of_a_key_request_is_charged() {
        let settings = GovernanceSettings {
            proxy_budget: Some((100.0, None)),
            max_end_user_budget: Some(0.25),
            ..Default::default()
        };
        let eu = EndUser {
            id: "cust",
            record: None,
            shared: None,
        };
        let charges = charges_for(&caller(), Some(&eu), "gpt", &settings);
        let scopes: Vec<String> = charges.iter().map(|c| c.scope.id()).collect();
        assert_eq!(
            scopes,
            [
                "key:tok",
                "keymodel:tok:gpt",
                "user:u",
                "team:t",
                "member:t:u",
                "enduser:cust",
                "proxy"
            ]
        );
        assert_eq!(charges[1].max_nanos, Some(500_000_000));
        assert_eq!(
            charges[2].max_nanos, None,
            "a user with no record has no budget"
        );
        assert_eq!(charges[4].max_nanos, Some(1_000_000_000));
        assert_eq!(
            charges[5].max_nanos,
            Some(250_000_000),
            "max_end_user_budget"
        );
    }

    #[test]
    fn the_master_key_spends_only_in_end_user_and_proxy_scopes() {
        let charges = charges_for(&Caller::Admin, None, "gpt", &GovernanceSettings::default());
        assert!(charges.is_empty());
    }
}
