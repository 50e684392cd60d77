//! Spend: what each request cost, recorded once when its ledger settles.
//!
//! [`SpendRecorder`] is the ledger subscriber that, for every authenticated request: prices
//! the usage (`crate::cost`), settles the budget reservation and adds the cost to every
//! scope's spend counter (`crate::budget::Plan::settlement`) and to the daily rollups
//! (`rollup.rs`) in **one** Store batch, writes one spend-log row (`row.rs`), and creates an
//! end user met for the first time. It runs as the request's after-response work, so none of
//! it delays the answer.
//!
//! Exactly once: the ledger settles each request once, and the batch is not retried (a batch
//! whose outcome is unknown might have applied; counting it twice would be worse than the
//! logged loss of one request's figures when the Store fails at that moment).

pub mod rollup;
pub mod row;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use crate::budget::Calendar;
use crate::calendar::{Date, Offset};
use crate::cost::Pricing;
use crate::identity::records::CustomerRecord;
use crate::identity::records::Stamped;
use crate::identity::Directory;
use crate::ledger::{EndReason, Entry, Subscriber};
use crate::ports::Clock;
use crate::store::Store;
use crate::store_log::StoreFailures;

use rollup::{Dim, Figures};
use row::SpendRow;

/// The log spend rows go to.
pub const SPEND_LOG: &str = "spendlogs";

pub struct SpendRecorder {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    pricing: Arc<Pricing>,
    directory: Arc<Directory>,
    calendar: Calendar,
    failures: Arc<StoreFailures>,
    /// Rollup index records this instance has written (day, dim, id): each is written once
    /// per instance, not once per request.
    indexed: Mutex<HashSet<String>>,
    store_prompts: bool,
}

impl SpendRecorder {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        pricing: Arc<Pricing>,
        directory: Arc<Directory>,
        calendar: Calendar,
        failures: Arc<StoreFailures>,
        store_prompts: bool,
    ) -> Self {
        SpendRecorder {
            store,
            clock,
            pricing,
            directory,
            calendar,
            failures,
            indexed: Mutex::new(HashSet::new()),
            store_prompts,
        }
    }

    /// The dimensions a request rolls up under.
    fn dims(entry: &Entry) -> Vec<Dim> {
        let mut dims = vec![Dim::all()];
        if let Some(w) = entry.attribution.as_deref() {
            if let Some(t) = &w.key_token {
                dims.push(Dim::new("key", t.clone()));
            }
            if let Some(u) = &w.user_id {
                dims.push(Dim::new("user", u.clone()));
            }
            if let Some(t) = &w.team_id {
                dims.push(Dim::new("team", t.clone()));
            }
            if let Some(e) = &w.end_user {
                dims.push(Dim::new("enduser", e.clone()));
            }
            for tag in &w.tags {
                dims.push(Dim::new("tag", tag.clone()));
            }
        }
        if let Some(m) = entry
            .model_group
            .as_ref()
            .or(entry.requested_model.as_ref())
        {
            dims.push(Dim::new("model", m.clone()));
        }
        dims
    }

    /// Index records for dims this instance has not indexed yet today.
    fn unindexed(&self, day: &str, dims: &[Dim]) -> Vec<String> {
        let Ok(mut seen) = self.indexed.lock() else {
            return Vec::new();
        };
        if seen.len() > 100_000 {
            seen.clear();
        }
        dims.iter()
            .filter(|d| d.kind != "all")
            .map(|d| rollup::index_key(day, d))
            .filter(|k| seen.insert(k.clone()))
            .collect()
    }

    /// Creates the end user's record the first time it spends (LiteLLM does the same), so
    /// `/customer/list` shows every end user seen.
    async fn remember_end_user(&self, id: &str, now_ms: u64) {
        if let Ok(Some(_)) = self.directory.customer(id).await {
            return;
        }
        let record = CustomerRecord::created(id, now_ms);
        self.failures.note(
            "spend: end user record",
            self.directory.create_customer_if_absent(record).await,
        );
    }
}

impl SpendRecorder {
    /// Finds out, for each reservation batch whose outcome was unknown, whether it landed
    /// (its marker is claimed: refused means it landed). A claim the Store does not answer is
    /// sent again; one never answered leaves the batch counted as not landed, logged.
    async fn resolve(&self, plan: &mut crate::budget::Plan) {
        for (index, claim) in plan.resolutions().into_iter().enumerate() {
            if let Some(outcome) = self
                .send(&[claim], SETTLE_ATTEMPTS, "spend: reservation claim")
                .await
            {
                plan.resolved(index, &outcome);
            }
        }
        plan.clear_uncertain();
    }

    /// Sends `ops` as one batch, up to `attempts` times while the Store does not answer
    /// (backing off); the outcome, or `None` (logged) when it never answered.
    async fn send(
        &self,
        ops: &[crate::store::BatchOp],
        attempts: u32,
        what: &'static str,
    ) -> Option<crate::store::BatchOutcome> {
        let mut wait_ms = 100;
        for attempt in 1..=attempts {
            match self.store.batch(ops).await {
                Ok(outcome) => return Some(outcome),
                Err(e) if attempt == attempts => {
                    self.failures.note::<()>(what, Err(e));
                }
                Err(_) => {
                    self.clock.sleep(wait_ms).await;
                    wait_ms *= 2;
                }
            }
        }
        None
    }
}

/// Tries a batch that moves reserved money gets (backing off 0.1, 0.2, 0.4, 0.8 s).
const SETTLE_ATTEMPTS: u32 = 5;

#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
impl Subscriber for SpendRecorder {
    /// Authenticated requests only: a request refused before it was admitted spent nothing.
    fn wants(&self, entry: &Entry) -> bool {
        entry.attribution.is_some()
    }

    async fn settled(&self, entry: &Entry) {
        let now = self.clock.now_ms();
        let cost = if entry.cache_hit {
            crate::cost::Cost {
                nanos: 0,
                unpriced: false,
                model: None,
            }
        } else {
            self.pricing.cost(entry)
        };
        let usage = entry.usage.clone().unwrap_or_default();
        let mut plan = entry.budget.as_deref().cloned();
        if let Some(plan) = plan.as_mut() {
            self.resolve(plan).await;
        }
        let mut ops = plan
            .as_ref()
            .map(|p| p.settlement(cost.nanos, now, self.calendar))
            .unwrap_or_default();
        let day = Date::at(entry.started_ms, Offset::UTC).to_string();
        let dims = Self::dims(entry);
        ops.extend(rollup::ops(
            &day,
            &dims,
            Figures {
                ok: entry.end == EndReason::Completed,
                prompt_tokens: usage.prompt_tokens,
                completion_tokens: usage.completion_tokens,
                cache_read_tokens: usage
                    .prompt_tokens_details
                    .as_ref()
                    .map_or(0, |d| d.cached_tokens),
                spend_nanos: cost.nanos,
            },
        ));
        // A settlement of reserved money carries its marker, so it is safe to send again
        // when the Store does not answer; one without a reservation is sent once.
        let attempts = if plan.as_ref().is_some_and(|p| p.is_held()) {
            SETTLE_ATTEMPTS
        } else {
            1
        };
        self.send(&ops, attempts, "spend: settlement batch").await;
        for key in self.unindexed(&day, &dims) {
            self.failures.note(
                "spend: rollup index",
                self.store.put(&key, b"", Some(rollup::KEEP_MS)).await,
            );
        }
        let mut row = SpendRow::from_entry(entry, cost.nanos, cost.unpriced);
        if self.store_prompts {
            row.response = entry
                .output
                .as_ref()
                .and_then(|b| serde_json::from_slice(b).ok());
        }
        match serde_json::to_vec(&row) {
            Ok(bytes) => {
                self.failures.note(
                    "spend: log row",
                    self.store
                        .log_append(SPEND_LOG, entry.started_ms, &bytes)
                        .await,
                );
            }
            Err(e) => tracing::warn!(error = %e, "spend row not serializable"),
        }
        if let Some(id) = entry
            .attribution
            .as_ref()
            .and_then(|w| w.end_user.as_deref())
        {
            self.remember_end_user(id, now).await;
        }
    }
}
