//! Reading what a scope has spent in its current budget period (admin views, soft budgets).

use super::plan::nanos_to_usd;
use super::scope::{counter, Scope};
use super::window::{Calendar, Duration};
use crate::store::{Store, StoreError};

/// What `scope` has spent (finished requests plus reservations in flight) in the period of
/// `budget_duration` that `now_ms` falls in, in dollars. An unreadable duration counts all time.
pub async fn spent_usd(
    store: &dyn Store,
    scope: &Scope,
    budget_duration: Option<&str>,
    now_ms: u64,
    cal: Calendar,
) -> Result<f64, StoreError> {
    let (key, _) = counter(
        scope,
        budget_duration.and_then(Duration::parse),
        now_ms,
        cal,
    );
    Ok(nanos_to_usd(store.counter_get(&key).await?))
}

/// When the current period of `budget_duration` ends (LiteLLM's `budget_reset_at`), epoch ms.
pub fn reset_at_ms(budget_duration: Option<&str>, now_ms: u64, cal: Calendar) -> Option<u64> {
    budget_duration
        .and_then(Duration::parse)
        .map(|d| d.period(now_ms, cal).end_ms)
}
