//! GitOps seeding: writes the governance objects `config.yaml` declares in
//! `general_settings.seed` (format and checks in `config/seed.rs`) so they exist without admin
//! calls. Hosts call [`seed`] at start-up (Lambda's main, a Worker's first request).
//!
//! - **Idempotent.** Each object is read, the config's fields are laid over it, and it is
//!   written only if that changed it: a record already as the config says is not rewritten,
//!   so every instance may seed at every start-up. `created_at` is kept; `updated_at` moves
//!   only on a write.
//! - **The config wins for the fields it names.** An admin edit of a field the config names
//!   (a team's `max_budget`, a key's `models`) is undone at the next start-up (each cold start
//!   on Lambda, each new isolate on Workers); fields the config does not name keep their admin
//!   edits; a member's `max_budget_in_team` set by `/team/member_add` is kept unless the
//!   config names one. Objects are never deleted here: one taken out of the config stays
//!   until an admin deletes it.
//! - **Keys** are stored under their token (`token::hash` of the raw key, hashed at config
//!   load: no raw key reaches this module, and the report and logs name keys as `sk-...abcd`).
//! - **References.** A key naming a team or a budget that does not exist, or an end user
//!   naming a missing budget, is not written (it would run without the limits it names), nor
//!   is a key whose `key_alias` another key holds; each is listed in [`SeedReport::refused`].
//!   Seeded teams are added to their members' user records (`teams`), as `/team/new` does.
//!
//! Order: budgets, users, teams, end users, keys, so references within the seed resolve.

use super::key_body::{KeyFields, Patch};
use super::team_body::TeamBody;
use super::user_body::UserFields;
use crate::config::seed::{SeedKey, SeedKeyFields, SeedUser};
use crate::gateway::Gateway;
use crate::identity::records::{
    BudgetRecord, CustomerRecord, KeyRecord, Stamped, TeamRecord, UserRecord,
};
use crate::identity::Directory;
use crate::store::StoreError;

/// What [`seed`] did, object by object (`team eng`, `key sk-...abcd`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeedReport {
    /// Written for the first time.
    pub created: Vec<String>,
    /// Stored differently from the config, rewritten.
    pub updated: Vec<String>,
    /// Already as the config says: not rewritten.
    pub unchanged: usize,
    /// Not written, with why.
    pub refused: Vec<String>,
}

/// One line for the log: counts, and what was refused (names only: never a raw key).
impl std::fmt::Display for SeedReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} created, {} updated, {} unchanged",
            self.created.len(),
            self.updated.len(),
            self.unchanged
        )?;
        if !self.refused.is_empty() {
            write!(f, "; refused: {}", self.refused.join("; "))?;
        }
        Ok(())
    }
}

impl SeedReport {
    /// Nothing was declared.
    pub fn is_empty(&self) -> bool {
        self.created.is_empty()
            && self.updated.is_empty()
            && self.unchanged == 0
            && self.refused.is_empty()
    }

    /// Notes the outcome for `after` (the config laid over `before`); the record to write,
    /// if any.
    fn settle<T: Stamped>(
        &mut self,
        name: String,
        before: Option<&T>,
        mut after: T,
        now_ms: u64,
    ) -> Option<T> {
        match before {
            None => self.created.push(name),
            Some(b) if *b == after => {
                self.unchanged += 1;
                return None;
            }
            Some(_) => {
                after.stamp(now_ms);
                self.updated.push(name);
            }
        }
        Some(after)
    }
}

/// Writes the config's seed (see the module docs). A Store failure stops it; running it
/// again finishes the job.
pub async fn seed(gateway: &Gateway) -> Result<SeedReport, StoreError> {
    let spec = &gateway.config().seed;
    let mut report = SeedReport::default();
    if spec.is_empty() {
        return Ok(report);
    }
    let dir = gateway.directory();
    let now = gateway.clock().now_ms();

    for b in &spec.budgets {
        let id = b.budget_id.as_deref().unwrap_or_default().trim();
        let before = dir.budget_fresh(id).await?;
        let mut rec = before
            .clone()
            .unwrap_or_else(|| BudgetRecord::created(id, now));
        b.apply(&mut rec);
        if let Some(rec) = report.settle(format!("budget {id}"), before.as_ref(), rec, now) {
            dir.put_budget(id, rec).await?;
        }
    }

    for u in &spec.users {
        let id = u.user_id.trim();
        let before = dir.user_fresh(id).await?;
        let mut rec = before
            .clone()
            .unwrap_or_else(|| UserRecord::created(id, now));
        user_fields(u).apply(&mut rec, u.user_role.map(Some));
        if let Some(t) = &u.teams {
            rec.teams = t.clone();
        }
        // The seeded teams that list this user, so the team step finds nothing to add.
        for t in spec.teams.iter().filter(|t| lists(t, id)) {
            join(&mut rec, t.team_id.as_deref().unwrap_or_default().trim());
        }
        if let Some(rec) = report.settle(format!("user {id}"), before.as_ref(), rec, now) {
            dir.put_user(id, rec).await?;
        }
    }

    for t in &spec.teams {
        let id = t.team_id.as_deref().unwrap_or_default().trim();
        let before = dir.team_fresh(id).await?;
        let mut rec = before
            .clone()
            .unwrap_or_else(|| TeamRecord::created(id, now));
        t.apply(&mut rec, true);
        let members: Vec<String> = rec
            .members_with_roles
            .iter()
            .filter_map(|m| m.user_id.clone())
            .collect();
        if let Some(rec) = report.settle(format!("team {id}"), before.as_ref(), rec, now) {
            dir.put_team(id, rec).await?;
        }
        for user in members
            .iter()
            .filter(|m| !spec.users.iter().any(|u| &u.user_id == *m))
        {
            join_user(dir, &mut report, user, id, now).await?;
        }
    }

    for c in &spec.end_users {
        let id = c.user_id.as_deref().unwrap_or_default().trim();
        if let Some(b) = &c.budget_id {
            if dir.budget(b).await?.is_none() {
                report
                    .refused
                    .push(format!("end user {id}: budget {b} does not exist"));
                continue;
            }
        }
        let before = dir.customer_fresh(id).await?;
        let mut rec = before
            .clone()
            .unwrap_or_else(|| CustomerRecord::created(id, now));
        c.apply(&mut rec);
        if let Some(rec) = report.settle(format!("end user {id}"), before.as_ref(), rec, now) {
            dir.put_customer(id, rec).await?;
        }
    }

    for k in &spec.keys {
        seed_key(dir, &mut report, k, now).await?;
    }

    tracing::info!(
        created = report.created.len(),
        updated = report.updated.len(),
        unchanged = report.unchanged,
        refused = report.refused.len(),
        "config seed applied"
    );
    for r in &report.refused {
        tracing::warn!(object = %r, "config seed: object not written");
    }
    Ok(report)
}

fn lists(team: &TeamBody, user_id: &str) -> bool {
    team.members_with_roles
        .iter()
        .flatten()
        .any(|m| m.user_id.as_deref() == Some(user_id))
}

fn join(user: &mut UserRecord, team_id: &str) {
    if !user.teams.iter().any(|t| t == team_id) {
        user.teams.push(team_id.to_string());
    }
}

/// Adds the team to a member's user record (one the seed does not declare), if it exists.
async fn join_user(
    dir: &Directory,
    report: &mut SeedReport,
    user_id: &str,
    team_id: &str,
    now: u64,
) -> Result<(), StoreError> {
    let Some(before) = dir.user_fresh(user_id).await? else {
        return Ok(());
    };
    let mut rec = before.clone();
    join(&mut rec, team_id);
    if rec != before {
        rec.stamp(now);
        report.updated.push(format!("user {user_id}"));
        dir.put_user(user_id, rec).await?;
    }
    Ok(())
}

/// A field the config names, as a body that sets it.
fn named<T: Clone>(value: &Option<T>) -> Patch<T> {
    value.clone().map(Some)
}

/// The seed's user as the `/user/update` body naming the same fields (a null in the config
/// reads as absent, so it keeps the stored value: the seed never clears a field).
fn user_fields(u: &SeedUser) -> UserFields {
    UserFields {
        user_alias: named(&u.user_alias),
        user_email: named(&u.user_email),
        models: named(&u.models),
        max_budget: named(&u.max_budget),
        soft_budget: named(&u.soft_budget),
        budget_duration: named(&u.budget_duration),
        tpm_limit: named(&u.tpm_limit),
        rpm_limit: named(&u.rpm_limit),
        max_parallel_requests: named(&u.max_parallel_requests),
        metadata: named(&u.metadata),
        blocked: named(&u.blocked),
        ..Default::default()
    }
}

/// The seed's key as the `/key/update` body naming the same fields.
fn key_fields(f: &SeedKeyFields) -> KeyFields {
    let model_max_budget = f.model_max_budget.as_ref().map(|m| {
        m.iter()
            .map(|(model, b)| (model.clone(), b.to_record()))
            .collect()
    });
    KeyFields {
        key_alias: named(&f.key_alias),
        user_id: named(&f.user_id),
        team_id: named(&f.team_id),
        budget_id: named(&f.budget_id),
        models: named(&f.models),
        max_budget: named(&f.max_budget),
        soft_budget: named(&f.soft_budget),
        budget_duration: named(&f.budget_duration),
        tpm_limit: named(&f.tpm_limit),
        rpm_limit: named(&f.rpm_limit),
        max_parallel_requests: named(&f.max_parallel_requests),
        model_max_budget: named(&model_max_budget),
        model_rpm_limit: named(&f.model_rpm_limit),
        model_tpm_limit: named(&f.model_tpm_limit),
        metadata: named(&f.metadata),
        tags: named(&f.tags),
        blocked: named(&f.blocked),
        allowed_cache_controls: named(&f.allowed_cache_controls),
        ..Default::default()
    }
}

async fn seed_key(
    dir: &Directory,
    report: &mut SeedReport,
    k: &SeedKey,
    now: u64,
) -> Result<(), StoreError> {
    let f = &k.fields;
    let name = format!("key {}", k.key_name);
    if let Some(t) = &f.team_id {
        if dir.team(t).await?.is_none() {
            report
                .refused
                .push(format!("{name}: team {t} does not exist"));
            return Ok(());
        }
    }
    if let Some(b) = &f.budget_id {
        if dir.budget(b).await?.is_none() {
            report
                .refused
                .push(format!("{name}: budget {b} does not exist"));
            return Ok(());
        }
    }
    if let Some(alias) = &f.key_alias {
        if !dir.claim_alias(alias, &k.token).await? {
            report
                .refused
                .push(format!("{name}: key_alias {alias} is held by another key"));
            return Ok(());
        }
    }
    let before = dir.key_fresh(&k.token).await?;
    let mut rec = before.clone().unwrap_or_else(|| KeyRecord {
        token: k.token.clone(),
        created_at_ms: now,
        updated_at_ms: now,
        created_by: Some("config".into()),
        ..Default::default()
    });
    rec.key_name = k.key_name.clone();
    // No `duration` (the seed takes none), so `now` starts nothing here.
    key_fields(f).apply(&mut rec, now);
    let old_alias = before.as_ref().and_then(|b| b.key_alias.clone());
    if let Some(mut rec) = report.settle(name, before.as_ref(), rec, now) {
        if before.is_some() {
            rec.updated_by = Some("config".into());
        }
        dir.put_key(&k.token, rec).await?;
    }
    // The config renamed the key: its old alias is free again.
    if let (Some(old), Some(new)) = (old_alias, &f.key_alias) {
        if &old != new {
            dir.release_alias(&old).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "seed_tests.rs"]
mod tests;
