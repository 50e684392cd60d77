//! A request's budgets: every scope it spends in ([`Charge`]), the reservation taken before
//! the call, and the Store ops that settle it after.
//!
//! **Reserve before the call, settle after.** Before the upstream is called, the request's
//! most expensive possible cost (its prompt estimate plus `max_tokens` on the group's dearest
//! deployment) is added to the spend counter of every scope with a budget, in one
//! all-or-nothing [`BatchOp`] batch whose ceilings are the budgets. So concurrent requests on
//! any number of instances can never pass a budget: each one's worst case is counted before it
//! starts. When the request ends (the ledger settles it, whatever the end), each counter gets
//! `actual − reserved`, and scopes without a budget get the actual cost, in one more batch.

use super::scope::{counter, Scope};
use super::window::{Calendar, Duration};
use crate::error::{ErrorKind, GatewayError};
use crate::store::{BatchOp, BatchOutcome};

/// Nano-dollars in a dollar (spend counters count integers, so concurrent adds never round).
pub const NANOS_PER_USD: f64 = 1e9;

/// Dollars (config and admin values) to nano-dollars, rounded to the nearest.
pub fn usd_to_nanos(usd: f64) -> i64 {
    (usd * NANOS_PER_USD).round() as i64
}

pub fn nanos_to_usd(nanos: i64) -> f64 {
    nanos as f64 / NANOS_PER_USD
}

/// One scope a request spends in, with its budget if it has one.
#[derive(Debug, Clone, PartialEq)]
pub struct Charge {
    pub scope: Scope,
    /// The budget's period; `None`: all time.
    pub duration: Option<Duration>,
    /// Nano-dollars the scope may spend per period (a hard limit).
    pub max_nanos: Option<i64>,
    /// Above it the answer says so (a header) and a line is logged; nothing is refused.
    pub soft_nanos: Option<i64>,
}

impl Charge {
    /// A scope with limits given in dollars (as records and config hold them).
    pub fn new(
        scope: Scope,
        max_usd: Option<f64>,
        soft_usd: Option<f64>,
        duration: Option<&str>,
    ) -> Self {
        Charge {
            scope,
            duration: duration.and_then(Duration::parse),
            max_nanos: max_usd.map(usd_to_nanos),
            soft_nanos: soft_usd.map(usd_to_nanos),
        }
    }

    fn held(&self) -> bool {
        self.max_nanos.is_some() || self.soft_nanos.is_some()
    }
}

/// How long the markers that make reservations and settlements idempotent live: longer than
/// any retry of a settlement.
pub const MARKER_TTL_MS: u64 = 15 * 60_000;

/// What a request holds between its reservation and its settlement.
///
/// **Exactly once, also when the Store fails.** Every batch that moves reserved money carries
/// a marker counter (`hold:{call}:{n}`, `settle:{call}`) added with a ceiling of 1, so the
/// batch applies at most once however often it is sent. A batch whose outcome is unknown (a
/// timeout: it may still land) is noted as *uncertain*; before settling, the settlement claims
/// its marker alone ([`Plan::resolutions`]): if the claim applies, the batch never landed and
/// now never can; if it is refused with the marker at 1, the batch landed and its amount is
/// counted as reserved.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub charges: Vec<Charge>,
    /// The request's call id (markers are named after it).
    pub call_id: String,
    /// Nano-dollars known to be reserved on each held counter.
    pub reserved_nanos: i64,
    /// The counters reserved on (index into `charges`, counter key, TTL), fixed at reservation
    /// so a request that crosses a period boundary settles where it reserved.
    pub held: Vec<(usize, String, Option<u64>)>,
    /// Scopes already past their soft budget (`param` names), for the response header.
    pub soft_exceeded: Vec<&'static str>,
    /// Reservation batches whose outcome is unknown: (marker key, nanos they would add).
    pub uncertain: Vec<(String, i64)>,
    /// The batch in flight: (marker key, nanos it adds).
    in_flight: Option<(String, i64)>,
    /// How many reservation batches were sent (names their markers).
    sent: u32,
}

/// A marker op: +1 under a ceiling of 1, so its batch applies at most once.
fn marker(key: String) -> BatchOp {
    BatchOp::Add {
        key,
        delta: 1,
        ceiling: Some(1),
        ttl_ms: Some(MARKER_TTL_MS),
    }
}

impl Plan {
    pub fn new(charges: Vec<Charge>) -> Self {
        Plan {
            charges,
            ..Default::default()
        }
    }

    /// The plan of request `call_id`.
    pub fn for_request(charges: Vec<Charge>, call_id: &str) -> Self {
        Plan {
            charges,
            call_id: call_id.to_string(),
            ..Default::default()
        }
    }

    /// Whether the request holds (or may hold) a reservation.
    pub fn is_held(&self) -> bool {
        !self.held.is_empty()
    }

    fn next_marker(&mut self) -> String {
        let key = format!("hold:{}:{}", self.call_id, self.sent);
        self.sent += 1;
        key
    }

    /// The reservation batch: its marker, then `estimate_nanos` (at least 1, so a budget
    /// already spent refuses even an unpriced request) on every scope with a budget. Empty
    /// when no scope has one.
    pub fn reservation(&mut self, estimate_nanos: i64, now_ms: u64, cal: Calendar) -> Vec<BatchOp> {
        let delta = estimate_nanos.max(1);
        self.held.clear();
        for (i, c) in self.charges.iter().enumerate().filter(|(_, c)| c.held()) {
            let (key, ttl_ms) = counter(&c.scope, c.duration, now_ms, cal);
            self.held.push((i, key, ttl_ms));
        }
        if self.held.is_empty() {
            return Vec::new();
        }
        let mark = self.next_marker();
        self.in_flight = Some((mark.clone(), delta));
        let mut ops = vec![marker(mark)];
        ops.extend(self.held.iter().map(|(i, key, ttl_ms)| BatchOp::Add {
            key: key.clone(),
            delta,
            ceiling: self.charges[*i].max_nanos,
            ttl_ms: *ttl_ms,
        }));
        ops
    }

    /// Reads the reservation's outcome: `Ok` (noting soft budgets passed) or the budget error
    /// naming the scope that refused. Nothing is held after a refusal.
    pub fn accept(&mut self, outcome: &BatchOutcome) -> Result<(), GatewayError> {
        let (_, delta) = self.in_flight.take().unwrap_or_default();
        match outcome {
            BatchOutcome::Applied(totals) => {
                self.reserved_nanos += delta;
                // totals[0] is the marker's.
                for ((i, _, _), total) in self.held.iter().zip(totals.iter().skip(1)) {
                    let c = &self.charges[*i];
                    if c.soft_nanos.is_some_and(|soft| *total >= soft) {
                        self.soft_exceeded.push(c.scope.param());
                    }
                }
                Ok(())
            }
            BatchOutcome::Refused { index, current } => {
                let c = self.refused_charge(*index);
                self.held.clear();
                self.reserved_nanos = 0;
                Err(match c {
                    Some(c) => exceeded(&c, *current, delta),
                    None => {
                        GatewayError::policy(ErrorKind::BudgetExceeded, "Budget has been exceeded!")
                    }
                })
            }
        }
    }

    /// The charge whose counter refused a reservation batch (op `index`; op 0 is the marker).
    fn refused_charge(&self, index: usize) -> Option<Charge> {
        index
            .checked_sub(1)
            .and_then(|h| self.held.get(h))
            .map(|(i, _, _)| self.charges[*i].clone())
    }

    /// The batch in flight failed without an answer (it may still land): settled later
    /// through [`Plan::resolutions`].
    pub fn unsure(&mut self) {
        if let Some(pending) = self.in_flight.take() {
            self.uncertain.push(pending);
        }
    }

    /// The answer to the batch last marked [`Plan::unsure`] (a reservation is marked unsure
    /// before it is sent, so a request dropped while waiting still settles it).
    pub fn answered(&mut self, outcome: &BatchOutcome) -> Result<(), GatewayError> {
        self.in_flight = self.uncertain.pop();
        self.accept(outcome)
    }

    /// [`Plan::answered`] for a top-up.
    pub fn answered_top_up(&mut self, outcome: &BatchOutcome) -> Result<(), GatewayError> {
        self.in_flight = self.uncertain.pop();
        self.accept_top_up(outcome)
    }

    /// Raises the reservation to `estimate_nanos` before a fallback to a dearer group: a
    /// marker, then the difference with the same ceilings on the same counters. Empty when
    /// the reservation already covers it. Read the outcome with [`Plan::accept_top_up`].
    pub fn top_up(&mut self, estimate_nanos: i64) -> Vec<BatchOp> {
        let covered = self.reserved_nanos + self.uncertain.iter().map(|(_, n)| n).sum::<i64>();
        let extra = estimate_nanos - covered;
        if extra <= 0 || self.held.is_empty() {
            return Vec::new();
        }
        let mark = self.next_marker();
        self.in_flight = Some((mark.clone(), extra));
        let mut ops = vec![marker(mark)];
        ops.extend(self.held.iter().map(|(i, key, ttl_ms)| BatchOp::Add {
            key: key.clone(),
            delta: extra,
            ceiling: self.charges[*i].max_nanos,
            ttl_ms: *ttl_ms,
        }));
        ops
    }

    /// The outcome of [`Plan::top_up`]: the reservation grows, or stays as it was (and the
    /// budget error says why the dearer group cannot be tried).
    pub fn accept_top_up(&mut self, outcome: &BatchOutcome) -> Result<(), GatewayError> {
        let (_, extra) = self.in_flight.take().unwrap_or_default();
        match outcome {
            BatchOutcome::Applied(_) => {
                self.reserved_nanos += extra;
                Ok(())
            }
            BatchOutcome::Refused { index, current } => {
                let c = self.refused_charge(*index);
                Err(match c {
                    Some(c) => exceeded(&c, *current, self.reserved_nanos + extra),
                    None => {
                        GatewayError::policy(ErrorKind::BudgetExceeded, "Budget has been exceeded!")
                    }
                })
            }
        }
    }

    /// One claim per uncertain batch, to run (each alone) before settling; give each outcome
    /// to [`Plan::resolved`]. A claim adds 2 under a ceiling of 2: on a marker at 0 it applies
    /// (the batch never landed, and now never can: the marker is past its ceiling of 1); on a
    /// marker at 1 it is refused (the batch landed); on a marker at 2 — this claim already
    /// applied once, its answer lost and the claim sent again — it is refused with 2, which
    /// still says the batch never landed. So the claim too may be sent again safely.
    pub fn resolutions(&self) -> Vec<BatchOp> {
        self.uncertain
            .iter()
            .map(|(m, _)| BatchOp::Add {
                key: m.clone(),
                delta: 2,
                ceiling: Some(2),
                ttl_ms: Some(MARKER_TTL_MS),
            })
            .collect()
    }

    /// The outcome of the claim on uncertain batch `index`: the batch landed (its marker was
    /// at 1: its amount is reserved) or it did not.
    pub fn resolved(&mut self, index: usize, outcome: &BatchOutcome) {
        if let (Some((_, nanos)), BatchOutcome::Refused { current: 1, .. }) =
            (self.uncertain.get(index), outcome)
        {
            self.reserved_nanos += nanos;
        }
    }

    /// Forgets uncertain batches once resolved.
    pub fn clear_uncertain(&mut self) {
        self.uncertain.clear();
    }

    /// The settlement batch for a request that cost `actual_nanos`: (when it held a
    /// reservation) its marker, then the held counters corrected by `actual − reserved`, and
    /// the other scopes given the actual cost in their current period. Resolve uncertain
    /// batches first.
    pub fn settlement(&self, actual_nanos: i64, now_ms: u64, cal: Calendar) -> Vec<BatchOp> {
        let mut ops = Vec::new();
        if self.is_held() {
            ops.push(marker(format!("settle:{}", self.call_id)));
        }
        for (i, c) in self.charges.iter().enumerate() {
            let (key, delta, ttl_ms) = match self.held.iter().find(|(h, _, _)| *h == i) {
                Some((_, key, ttl)) => (key.clone(), actual_nanos - self.reserved_nanos, *ttl),
                None => {
                    let (key, ttl) = counter(&c.scope, c.duration, now_ms, cal);
                    (key, actual_nanos, ttl)
                }
            };
            if delta != 0 {
                ops.push(BatchOp::Add {
                    key,
                    delta,
                    ceiling: None,
                    ttl_ms,
                });
            }
        }
        ops
    }
}

/// LiteLLM's message: `Budget has been exceeded! Key=... Current cost: X, Estimated request
/// cost: E, Max budget: Y` (the estimate is what the request would have reserved: a request
/// can be refused while the spend is below the budget, when its worst case does not fit).
fn exceeded(c: &Charge, current_nanos: i64, estimate_nanos: i64) -> GatewayError {
    let who = match &c.scope {
        Scope::Key(t) => format!("Key={}", &t[..t.len().min(12)]),
        Scope::User(u) => format!("User={u}"),
        Scope::Team(t) => format!("Team={t}"),
        Scope::Member { team, user } => format!("User={user} in Team={team}"),
        Scope::EndUser(u) => format!("End User={u}"),
        Scope::Proxy => "Proxy".to_string(),
        Scope::KeyModel { model, .. } => format!("Model={model} on this key"),
    };
    GatewayError::policy(
        ErrorKind::BudgetExceeded,
        format!(
            "Budget has been exceeded! {who} Current cost: {}, Estimated request cost: {}, Max budget: {}",
            nanos_to_usd(current_nanos),
            nanos_to_usd(estimate_nanos),
            nanos_to_usd(c.max_nanos.unwrap_or_default())
        ),
    )
    .with_param(c.scope.param())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;
    use crate::store::Store;
    use std::sync::Arc;

    struct Still;
    #[async_trait::async_trait]
    impl crate::ports::Clock for Still {
        fn now_ms(&self) -> u64 {
            1_000
        }
        async fn sleep(&self, _ms: u64) {}
    }

    fn plan() -> Plan {
        Plan::new(vec![
            Charge::new(Scope::Key("k".into()), Some(1.0), Some(0.5), None),
            Charge::new(Scope::Team("t".into()), None, None, None),
            Charge::new(Scope::Proxy, Some(100.0), None, Some("1d")),
        ])
    }

    #[test]
    fn reserve_then_settle_leaves_exactly_the_actual_cost() {
        futures_executor::block_on(async {
            let store = MemoryStore::new(Arc::new(Still));
            let cal = Calendar::default();
            let mut p = plan();
            let ops = p.reservation(300_000_000, 1_000, cal);
            assert_eq!(ops.len(), 3, "a marker, then only the scopes with a budget");
            p.accept(&store.batch(&ops).await.unwrap()).unwrap();
            assert_eq!(
                store.counter_get("spend:key:k:all").await.unwrap(),
                300_000_000
            );
            store
                .batch(&p.settlement(120_000_000, 1_000, cal))
                .await
                .unwrap();
            assert_eq!(
                store.counter_get("spend:key:k:all").await.unwrap(),
                120_000_000
            );
            assert_eq!(
                store.counter_get("spend:team:t:all").await.unwrap(),
                120_000_000
            );
            assert_eq!(
                store.counter_get("spend:proxy:0").await.unwrap(),
                120_000_000
            );
        });
    }

    #[test]
    fn a_budget_refuses_what_would_pass_it_and_names_the_scope() {
        futures_executor::block_on(async {
            let store = MemoryStore::new(Arc::new(Still));
            let cal = Calendar::default();
            store
                .counter_add("spend:key:k:all", 900_000_000, None)
                .await
                .unwrap();
            let mut p = plan();
            let ops = p.reservation(200_000_000, 1_000, cal);
            let e = p.accept(&store.batch(&ops).await.unwrap()).unwrap_err();
            assert_eq!(e.status().as_u16(), 400);
            assert_eq!(e.kind.type_str(), "budget_exceeded");
            assert_eq!(e.param.as_deref(), Some("key"));
            assert!(
                e.message.starts_with(
                    "Budget has been exceeded! Key=k Current cost: 0.9, Estimated request cost: 0.2, Max budget: 1"
                ),
                "{}",
                e.message
            );
            assert_eq!(
                store.counter_get("spend:proxy:0").await.unwrap(),
                0,
                "nothing held"
            );
            assert!(
                p.settlement(0, 1_000, cal).is_empty(),
                "a refused request settles nothing"
            );
        });
    }

    #[test]
    fn a_fallback_to_a_dearer_group_tops_the_reservation_up() {
        futures_executor::block_on(async {
            let store = MemoryStore::new(Arc::new(Still));
            let cal = Calendar::default();
            let mut p = plan();
            let ops = p.reservation(100_000_000, 1_000, cal);
            p.accept(&store.batch(&ops).await.unwrap()).unwrap();
            assert!(p.top_up(50_000_000).is_empty(), "already covered");
            let ops = p.top_up(950_000_000);
            p.accept_top_up(&store.batch(&ops).await.unwrap()).unwrap();
            assert_eq!(
                store.counter_get("spend:key:k:all").await.unwrap(),
                950_000_000
            );
            let ops = p.top_up(1_100_000_000);
            let e = p
                .accept_top_up(&store.batch(&ops).await.unwrap())
                .unwrap_err();
            assert_eq!(e.param.as_deref(), Some("key"));
            store
                .batch(&p.settlement(200_000_000, 1_000, cal))
                .await
                .unwrap();
            assert_eq!(
                store.counter_get("spend:key:k:all").await.unwrap(),
                200_000_000
            );
        });
    }

    async fn settle(store: &MemoryStore, p: &mut Plan, actual: i64) {
        for (i, claim) in p.resolutions().into_iter().enumerate() {
            let outcome = store.batch(&[claim]).await.unwrap();
            p.resolved(i, &outcome);
        }
        p.clear_uncertain();
        store
            .batch(&p.settlement(actual, 1_000, Calendar::default()))
            .await
            .unwrap();
    }

    #[test]
    fn a_reservation_that_landed_unanswered_is_settled_once() {
        futures_executor::block_on(async {
            let store = MemoryStore::new(Arc::new(Still));
            let mut p = Plan::for_request(plan().charges, "call-1");
            let ops = p.reservation(300_000_000, 1_000, Calendar::default());
            p.unsure();
            store.batch(&ops).await.unwrap(); // landed, but the answer was lost
            settle(&store, &mut p, 100_000_000).await;
            assert_eq!(
                store.counter_get("spend:key:k:all").await.unwrap(),
                100_000_000
            );
            // The settlement sent again (a retry after a lost answer) changes nothing.
            let again = p.settlement(100_000_000, 1_000, Calendar::default());
            assert!(matches!(
                store.batch(&again).await.unwrap(),
                BatchOutcome::Refused { index: 0, .. }
            ));
            assert_eq!(
                store.counter_get("spend:key:k:all").await.unwrap(),
                100_000_000
            );
        });
    }

    #[test]
    fn a_claim_sent_twice_still_says_the_reservation_never_landed() {
        futures_executor::block_on(async {
            let store = MemoryStore::new(Arc::new(Still));
            let mut p = Plan::for_request(plan().charges, "call-3");
            let ops = p.reservation(300_000_000, 1_000, Calendar::default());
            p.unsure();
            let claim = p.resolutions().remove(0);
            store.batch(std::slice::from_ref(&claim)).await.unwrap(); // applied, answer lost
            let again = store.batch(&[claim]).await.unwrap();
            p.resolved(0, &again);
            p.clear_uncertain();
            assert_eq!(p.reserved_nanos, 0, "{again:?}");
            assert!(matches!(
                store.batch(&ops).await.unwrap(),
                BatchOutcome::Refused { index: 0, .. }
            ));
        });
    }

    #[test]
    fn a_reservation_that_arrives_after_its_claim_is_refused() {
        futures_executor::block_on(async {
            let store = MemoryStore::new(Arc::new(Still));
            let mut p = Plan::for_request(plan().charges, "call-2");
            let ops = p.reservation(300_000_000, 1_000, Calendar::default());
            p.unsure(); // sent; no answer yet
            settle(&store, &mut p, 0).await;
            // The slow reservation lands after the settlement claimed its marker: refused.
            assert!(matches!(
                store.batch(&ops).await.unwrap(),
                BatchOutcome::Refused { index: 0, .. }
            ));
            assert_eq!(store.counter_get("spend:key:k:all").await.unwrap(), 0);
        });
    }

    /// What the reservation prevents: a read-then-write check lets every concurrent request
    /// through when they all read before any writes.
    #[test]
    fn a_read_then_write_check_overspends_where_the_reservation_does_not() {
        futures_executor::block_on(async {
            let store = Arc::new(MemoryStore::new(Arc::new(Still)));
            let naive = (0..50).map(|_| {
                let store = Arc::clone(&store);
                async move {
                    let spent = store.counter_get("naive").await.unwrap();
                    yield_now().await; // another request runs between the read and the write
                    if spent + 100_000_000 > 1_000_000_000 {
                        return false;
                    }
                    store.counter_add("naive", 100_000_000, None).await.unwrap();
                    true
                }
            });
            let passed = futures_util::future::join_all(naive)
                .await
                .into_iter()
                .filter(|ok| *ok)
                .count();
            assert_eq!(passed, 50, "every request read 0 and passed: 5x the budget");

            let reserved = (0..50).map(|n| {
                let store = Arc::clone(&store);
                async move {
                    let mut p = Plan::for_request(
                        vec![Charge::new(Scope::Key("k".into()), Some(1.0), None, None)],
                        &format!("c{n}"),
                    );
                    let ops = p.reservation(100_000_000, 1_000, Calendar::default());
                    yield_now().await;
                    p.accept(&store.batch(&ops).await.unwrap()).is_ok()
                }
            });
            let passed = futures_util::future::join_all(reserved)
                .await
                .into_iter()
                .filter(|ok| *ok)
                .count();
            assert_eq!(passed, 10);
        });
    }

    /// Yields once to the executor, so joined futures interleave.
    async fn yield_now() {
        let mut yielded = false;
        futures_util::future::poll_fn(|cx| {
            if yielded {
                std::task::Poll::Ready(())
            } else {
                yielded = true;
                cx.waker().wake_by_ref();
                std::task::Poll::Pending
            }
        })
        .await
    }

    #[test]
    fn soft_budgets_are_noted_not_enforced() {
        futures_executor::block_on(async {
            let store = MemoryStore::new(Arc::new(Still));
            let mut p = plan();
            let ops = p.reservation(600_000_000, 1_000, Calendar::default());
            p.accept(&store.batch(&ops).await.unwrap()).unwrap();
            assert_eq!(p.soft_exceeded, vec!["key"]);
        });
    }

    #[test]
    fn concurrent_reservations_never_pass_the_budget() {
        // 50 requests that each may cost 0.1 against a 1.0 budget, interleaved: exactly 10 pass.
        futures_executor::block_on(async {
            let store = Arc::new(MemoryStore::new(Arc::new(Still)));
            let cal = Calendar::default();
            let tries = (0..50).map(|n| {
                let store = Arc::clone(&store);
                async move {
                    let mut p = Plan::for_request(
                        vec![Charge::new(Scope::Key("k".into()), Some(1.0), None, None)],
                        &format!("c{n}"),
                    );
                    let ops = p.reservation(100_000_000, 1_000, cal);
                    p.accept(&store.batch(&ops).await.unwrap()).is_ok()
                }
            });
            let passed = futures_util::future::join_all(tries)
                .await
                .into_iter()
                .filter(|ok| *ok)
                .count();
            assert_eq!(passed, 10);
        });
    }
}
