//! The batched, all-or-nothing counter operation ([`super::Store::batch`]): its types, and the
//! pure planner that decides a batch against a snapshot of what it touches.
//!
//! # Semantics (every backend)
//! Ops are decided **in order, each against the state the ops before it leave**, and then either
//! all apply or none does:
//! - `Add` adds to a counter exactly like `counter_add` (a counter that is absent or expired
//!   starts at 0 and takes the op's TTL; later adds never move it). With a `ceiling`, a positive
//!   delta that would take the total past it refuses the batch; a delta ≤ 0 (a release) is
//!   never refused.
//! - `Acquire` takes a lease in a lease set. Expired leases never count. A holder that already
//!   has a live lease renews it (new expiry, same count); otherwise the set must have fewer than
//!   `limit` live leases, or the batch is refused.
//! - `Release` drops a holder's lease; absent or expired is fine (nothing happens).
//!
//! `Applied` carries, per op, the counter's total or the set's live count right after that op.
//! `Refused { index, current }` names the first op that would pass its ceiling or limit;
//! `current` is the counter's total or the set's live count **as stored** (before the batch,
//! since nothing was applied).
//!
//! Counters and lease sets are separate namespaces: a counter and a lease set may share a key.
//!
//! # The planner
//! [`plan`] is the decision without the I/O: the memory, embedded, DynamoDB and Workers
//! backends read the state the batch touches ([`Snapshot`]), plan, and write the result back in
//! one atomic step of their own (a lock, a write transaction, a conditional transaction, one
//! Durable Object turn). The Redis backends run the same rules inside one Lua script
//! (`redis_protocol::BATCH`); the conformance suite holds them all to the same answers.

use std::collections::{BTreeMap, HashMap};

use super::StoreError;

/// One operation inside a [`Store::batch`](super::Store::batch). Serializable because the
/// Workers backend sends a batch's ops to the Durable Objects that apply them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum BatchOp {
    /// Adds `delta` to counter `key` (TTL set at creation, as `counter_add`). With a `ceiling`, the
    /// whole batch is refused when this add (delta > 0) would take the total past it.
    Add {
        key: String,
        delta: i64,
        ceiling: Option<i64>,
        ttl_ms: Option<u64>,
    },
    /// Takes lease `holder` in the lease set `key`, which holds at most `limit` live leases; the lease
    /// expires `ttl_ms` from now unless released (an instance that dies leaks nothing for longer).
    /// Re-acquiring a lease the holder already has renews it and does not count twice.
    Acquire {
        key: String,
        holder: String,
        limit: u64,
        ttl_ms: u64,
    },
    /// Gives lease `holder` back; nothing happens when it is absent or expired.
    Release { key: String, holder: String },
}

impl BatchOp {
    /// The counter's or lease set's key.
    pub fn key(&self) -> &str {
        match self {
            BatchOp::Add { key, .. }
            | BatchOp::Acquire { key, .. }
            | BatchOp::Release { key, .. } => key,
        }
    }

    /// Whether this op can refuse the batch (a positive capped add, or an acquire). Backends
    /// that cannot apply a batch atomically apply these first, so ops that cannot refuse never
    /// need to be undone because of a refusal.
    pub fn can_refuse(&self) -> bool {
        match self {
            BatchOp::Add { delta, ceiling, .. } => ceiling.is_some() && *delta > 0,
            BatchOp::Acquire { .. } => true,
            BatchOp::Release { .. } => false,
        }
    }
}

/// The outcome of [`Store::batch`](super::Store::batch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOutcome {
    /// Every op applied; per op, in order: the counter's new total, or the lease set's live count after the op.
    Applied(Vec<i64>),
    /// Nothing applied: op `index` would pass its ceiling or limit; `current` is that counter's total or the set's live count as it stands.
    Refused { index: usize, current: i64 },
}

/// A live counter as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter {
    pub total: i64,
    /// Absolute expiry (ms since the epoch); `None` never expires.
    pub expires_at_ms: Option<u64>,
}

/// What a batch touches, as stored before it: live counters (absent or expired ones are simply
/// missing) and lease sets (holder → expiry in ms; expired entries may be included, the planner
/// ignores them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub counters: HashMap<String, Counter>,
    pub leases: HashMap<String, BTreeMap<String, u64>>,
}

/// An accepted batch: what to write back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Per op: the counter's total or the set's live count after it.
    pub totals: Vec<i64>,
    /// The final state of every counter the batch adds to (including a window it creates).
    pub counters: BTreeMap<String, Counter>,
    /// The final live leases of every set the batch touches (expired ones pruned; an empty map
    /// means the set can be removed).
    pub leases: BTreeMap<String, BTreeMap<String, u64>>,
}

/// The planner's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Planned {
    Applied(Plan),
    Refused { index: usize, current: i64 },
}

impl Planned {
    /// The outcome a caller of `Store::batch` sees.
    pub fn outcome(&self) -> BatchOutcome {
        match self {
            Planned::Applied(plan) => BatchOutcome::Applied(plan.totals.clone()),
            Planned::Refused { index, current } => BatchOutcome::Refused {
                index: *index,
                current: *current,
            },
        }
    }
}

/// Live leases of `set` at `now` (expiry strictly after now).
pub fn live_count(set: &BTreeMap<String, u64>, now_ms: u64) -> i64 {
    set.values().filter(|&&exp| exp > now_ms).count() as i64
}

/// Decides `ops` against `snapshot` at `now_ms` (see the module docs for the rules). Errors only
/// when a total would overflow an `i64`.
pub fn plan(ops: &[BatchOp], snapshot: &Snapshot, now_ms: u64) -> Result<Planned, StoreError> {
    let mut counters: BTreeMap<String, Counter> = BTreeMap::new();
    let mut leases: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut totals = Vec::with_capacity(ops.len());
    for (index, op) in ops.iter().enumerate() {
        let total = match op {
            BatchOp::Add {
                key,
                delta,
                ceiling,
                ttl_ms,
            } => {
                let counter = counters.entry(key.clone()).or_insert_with(|| {
                    snapshot.counters.get(key).copied().unwrap_or(Counter {
                        total: 0,
                        expires_at_ms: ttl_ms.map(|t| now_ms.saturating_add(t)),
                    })
                });
                let passes =
                    ceiling.is_some_and(|c| *delta > 0 && counter.total.saturating_add(*delta) > c);
                if passes {
                    let current = snapshot.counters.get(key).map_or(0, |c| c.total);
                    return Ok(Planned::Refused { index, current });
                }
                counter.total = counter.total.checked_add(*delta).ok_or_else(|| {
                    StoreError::Unavailable(format!("batch: counter {key} would overflow"))
                })?;
                counter.total
            }
            BatchOp::Acquire {
                key,
                holder,
                limit,
                ttl_ms,
            } => {
                let set = working_set(&mut leases, snapshot, key, now_ms);
                if !set.contains_key(holder) && set.len() as u64 >= *limit {
                    let current = snapshot
                        .leases
                        .get(key)
                        .map_or(0, |stored| live_count(stored, now_ms));
                    return Ok(Planned::Refused { index, current });
                }
                let expires = now_ms.saturating_add(*ttl_ms);
                if expires > now_ms {
                    set.insert(holder.clone(), expires);
                } else {
                    set.remove(holder); // a lease of 0 ms is over as soon as it is taken
                }
                set.len() as i64
            }
            BatchOp::Release { key, holder } => {
                let set = working_set(&mut leases, snapshot, key, now_ms);
                set.remove(holder);
                set.len() as i64
            }
        };
        totals.push(total);
    }
    Ok(Planned::Applied(Plan {
        totals,
        counters,
        leases,
    }))
}

/// The batch's working copy of a lease set: its live leases, read from the snapshot once.
fn working_set<'a>(
    leases: &'a mut BTreeMap<String, BTreeMap<String, u64>>,
    snapshot: &Snapshot,
    key: &str,
    now_ms: u64,
) -> &'a mut BTreeMap<String, u64> {
    leases.entry(key.to_string()).or_insert_with(|| {
        snapshot
            .leases
            .get(key)
            .map_or_else(BTreeMap::new, |stored| {
                stored
                    .iter()
                    .filter(|(_, &exp)| exp > now_ms)
                    .map(|(h, &exp)| (h.clone(), exp))
                    .collect()
            })
    })
}

/// What a batch asks of one counter, for backends that add with a conditional increment rather
/// than writing a planned total (DynamoDB): the net delta, and the largest stored total at which
/// every capped op on it still fits (`total + prefix sum ≤ ceiling` for each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterNeed {
    pub net_delta: i64,
    /// `None` when no op on this counter can refuse.
    pub room: Option<i128>,
}

/// Per counter key, what the batch needs of it (see [`CounterNeed`]).
pub fn counter_needs(ops: &[BatchOp]) -> BTreeMap<String, CounterNeed> {
    let mut needs: BTreeMap<String, (i128, Option<i128>)> = BTreeMap::new();
    for op in ops {
        if let BatchOp::Add {
            key,
            delta,
            ceiling,
            ..
        } = op
        {
            let (prefix, room) = needs.entry(key.clone()).or_insert((0, None));
            *prefix += i128::from(*delta);
            if let (Some(c), true) = (ceiling, *delta > 0) {
                let this = i128::from(*c) - *prefix;
                *room = Some(room.map_or(this, |r: i128| r.min(this)));
            }
        }
    }
    needs
        .into_iter()
        .map(|(key, (net, room))| {
            let net_delta = i64::try_from(net).unwrap_or(if net < 0 { i64::MIN } else { i64::MAX });
            (key, CounterNeed { net_delta, room })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(key: &str, delta: i64, ceiling: Option<i64>) -> BatchOp {
        BatchOp::Add {
            key: key.into(),
            delta,
            ceiling,
            ttl_ms: Some(1000),
        }
    }

    fn acquire(key: &str, holder: &str, limit: u64) -> BatchOp {
        BatchOp::Acquire {
            key: key.into(),
            holder: holder.into(),
            limit,
            ttl_ms: 100,
        }
    }

    #[test]
    fn ops_see_the_ops_before_them() {
        let ops = [
            add("a", 3, Some(5)),
            add("a", 2, Some(5)),
            add("a", 1, Some(5)),
        ];
        let planned = plan(&ops, &Snapshot::default(), 10).unwrap();
        assert_eq!(
            planned.outcome(),
            BatchOutcome::Refused {
                index: 2,
                current: 0
            }
        );
        let planned = plan(&ops[..2], &Snapshot::default(), 10).unwrap();
        let Planned::Applied(p) = planned else {
            panic!("applied")
        };
        assert_eq!(p.totals, [3, 5]);
        assert_eq!(
            p.counters["a"],
            Counter {
                total: 5,
                expires_at_ms: Some(1010)
            },
            "the first add creates the window"
        );
    }

    #[test]
    fn leases_renew_prune_and_refuse() {
        let mut snapshot = Snapshot::default();
        snapshot.leases.insert(
            "s".into(),
            BTreeMap::from([("old".into(), 5), ("x".into(), 50)]),
        );
        let ops = [
            acquire("s", "x", 1),
            acquire("s", "y", 2),
            acquire("s", "z", 2),
        ];
        assert_eq!(
            plan(&ops, &snapshot, 10).unwrap().outcome(),
            BatchOutcome::Refused {
                index: 2,
                current: 1
            },
            "old expired at 5 and never counts; x renews"
        );
        let Planned::Applied(p) = plan(&ops[..2], &snapshot, 10).unwrap() else {
            panic!("applied")
        };
        assert_eq!(p.totals, [1, 2]);
        assert_eq!(
            p.leases["s"],
            BTreeMap::from([("x".into(), 110), ("y".into(), 110)])
        );
    }

    #[test]
    fn releases_are_never_refused_and_overflow_is_an_error() {
        let mut snapshot = Snapshot::default();
        snapshot.counters.insert(
            "a".into(),
            Counter {
                total: 9,
                expires_at_ms: None,
            },
        );
        let Planned::Applied(p) = plan(&[add("a", -4, Some(1))], &snapshot, 0).unwrap() else {
            panic!("a release over the ceiling still applies")
        };
        assert_eq!(p.totals, [5]);
        assert!(plan(&[add("a", i64::MAX, None)], &snapshot, 0).is_err());
    }

    #[test]
    fn needs_combine_every_capped_op() {
        let ops = [
            add("a", 2, Some(10)),
            add("b", 1, None),
            add("a", 3, Some(8)),
            add("a", -1, Some(0)),
        ];
        let needs = counter_needs(&ops);
        assert_eq!(
            needs["a"],
            CounterNeed {
                net_delta: 4,
                room: Some(3)
            }
        );
        assert_eq!(
            needs["b"],
            CounterNeed {
                net_delta: 1,
                room: None
            }
        );
    }
}
