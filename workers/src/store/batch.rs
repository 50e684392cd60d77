//! `Store::batch` on Workers: the batch is split by Durable Object (one `TollgateCounter` per
//! key; a counter and the lease set with the same key share one object), each object applies
//! its part atomically, and parts that applied are **undone** when another part refuses.
//!
//! # Atomicity
//! - **Within one object**: all or nothing. The object reads its counter row and lease rows,
//!   decides the part with core's planner and writes, all with the synchronous SQL API and no
//!   `await` in between, so no other request interleaves (the same guarantee as the capped add).
//! - **Across objects**: not atomic; there is no transaction spanning Durable Objects. Parts
//!   that can refuse (a positive capped add, an acquire) are sent first, all at once; parts that
//!   cannot refuse (releases, uncapped adds) only after every refusable part applied, so they are
//!   never undone because of a refusal. When a part refuses (or fails), every part that applied
//!   is undone (compensation): an add is reversed in the same counter window (not if that window
//!   has ended; a counter the batch created and nobody else touched is removed again), and each
//!   lease the batch took, renewed or released is put back as it was.
//!
//! # The compensation window
//! Between a part applying and its undo landing (one round trip to the refusing object and one
//! to the undoing one, typically a few ms) the applied part is visible: other batches may see a
//! counter or lease set a little fuller than it will end up, and be refused when they would
//! have fitted. Never the other way: ceilings and limits are enforced inside each object, so no
//! batch ever passes one. If the undo itself cannot be delivered (the object unreachable, the
//! isolate gone), the effect stays until the counter's window or the lease's TTL ends; it is
//! logged. A part whose call failed or timed out may or may not have applied: then the batch
//! returns the error (not `Refused`), since "nothing applied" cannot be promised.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::pin;
use std::time::Duration;

use futures_util::future::{join_all, select, Either};
use serde::{Deserialize, Serialize};
use tollgate_core::store::{BatchOp, BatchOutcome, StoreError};
use worker::{Delay, ObjectNamespace};

use super::wire;

/// The answer of one object to its part.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum PartReply {
    /// Applied; per op of the part, its total; and how to undo it.
    Applied { totals: Vec<i64>, undo: Undo },
    /// Nothing applied: op `index` of the part refused.
    Refused { index: usize, current: i64 },
}

/// What reverses one applied part.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Undo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counter: Option<CounterUndo>,
    /// Holder → its lease before the batch (`None`: it had none).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub leases: BTreeMap<String, Option<u64>>,
}

/// Reverses a part's net add, only in the window it was made in.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct CounterUndo {
    /// What to add back (the negated net delta).
    pub delta: i64,
    /// The window's expiry the part saw (its identity: a new window means nothing to undo).
    pub window: Option<u64>,
    /// The part created the window: if undoing leaves it at 0, it is removed (so a later add
    /// creates it with its own TTL, as if the batch had never run).
    pub created: bool,
}

/// The ops of the batch that go to one object.
struct Part {
    object: String,
    /// Indexes into the batch, in order.
    indexes: Vec<usize>,
    can_refuse: bool,
}

/// Splits `ops` by object, in order of first appearance.
fn parts(ops: &[BatchOp]) -> Vec<Part> {
    let mut parts: Vec<Part> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        match parts.iter_mut().find(|p| p.object == op.key()) {
            Some(part) => {
                part.indexes.push(i);
                part.can_refuse |= op.can_refuse();
            }
            None => parts.push(Part {
                object: op.key().to_string(),
                indexes: vec![i],
                can_refuse: op.can_refuse(),
            }),
        }
    }
    parts
}

/// Runs `op`, or gives `Timeout` after `ms`.
pub(crate) async fn bounded<T>(
    ms: u64,
    op: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let op = pin!(op);
    let timer = pin!(Delay::from(Duration::from_millis(ms)));
    match select(op, timer).await {
        Either::Left((result, _)) => result,
        Either::Right(_) => Err(StoreError::Timeout),
    }
}

/// The whole batch (see the module docs). Each wave of calls, and the compensation, is bounded
/// by `timeout_ms`.
pub(crate) async fn run(
    ns: &ObjectNamespace,
    ops: &[BatchOp],
    timeout_ms: u64,
) -> Result<BatchOutcome, StoreError> {
    let (refusable, others): (Vec<Part>, Vec<Part>) =
        parts(ops).into_iter().partition(|p| p.can_refuse);
    let mut totals = vec![0; ops.len()];
    let mut applied: Vec<(String, Undo)> = Vec::new();
    for wave in [refusable, others] {
        if wave.is_empty() {
            continue;
        }
        let calls = join_all(wave.iter().map(|part| call_part(ns, ops, part)));
        let results = match bounded(timeout_ms, async { Ok(calls.await) }).await {
            Ok(results) => results,
            Err(e) => {
                compensate(ns, applied, timeout_ms).await;
                return Err(e);
            }
        };
        let mut refused: Option<(usize, i64)> = None;
        let mut failed: Option<StoreError> = None;
        for (part, result) in wave.iter().zip(results) {
            match result {
                Ok(PartReply::Applied { totals: t, undo }) => {
                    for (&i, total) in part.indexes.iter().zip(t) {
                        totals[i] = total;
                    }
                    applied.push((part.object.clone(), undo));
                }
                Ok(PartReply::Refused { index, current }) => {
                    let index = part.indexes[index];
                    if refused.is_none_or(|(first, _)| index < first) {
                        refused = Some((index, current));
                    }
                }
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        if refused.is_some() || failed.is_some() {
            compensate(ns, applied, timeout_ms).await;
            return match (failed, refused) {
                (Some(e), _) => Err(e),
                (None, Some((index, current))) => Ok(BatchOutcome::Refused { index, current }),
                (None, None) => Err(StoreError::Corrupt("batch: no outcome".into())),
            };
        }
    }
    Ok(BatchOutcome::Applied(totals))
}

/// Sends one part to its object and checks the reply fits the part.
async fn call_part(
    ns: &ObjectNamespace,
    ops: &[BatchOp],
    part: &Part,
) -> Result<PartReply, StoreError> {
    let mine: Vec<&BatchOp> = part.indexes.iter().map(|&i| &ops[i]).collect();
    let body = serde_json::to_vec(&mine).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let bytes = wire::call(ns, &part.object, "/batch", &body).await?;
    let reply: PartReply = serde_json::from_slice(&bytes)
        .map_err(|e| StoreError::Corrupt(format!("batch reply: {e}")))?;
    let fits = match &reply {
        PartReply::Applied { totals, .. } => totals.len() == part.indexes.len(),
        PartReply::Refused { index, .. } => *index < part.indexes.len(),
    };
    if fits {
        Ok(reply)
    } else {
        Err(StoreError::Corrupt(
            "batch reply does not match its part".into(),
        ))
    }
}

/// Undoes every applied part, all at once; an undo that fails is logged (its effect then ends
/// with its window or lease TTL).
async fn compensate(ns: &ObjectNamespace, applied: Vec<(String, Undo)>, timeout_ms: u64) {
    let undos = applied.iter().map(|(object, undo)| async move {
        let body = serde_json::to_vec(undo).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        bounded(timeout_ms, wire::call(ns, object, "/undo", &body)).await
    });
    for result in join_all(undos).await {
        if let Err(e) = result {
            worker::console_error!(
                "store batch: an undo failed, its effect lasts until its TTL: {e}"
            );
        }
    }
}
