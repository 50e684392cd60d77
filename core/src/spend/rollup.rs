//! Daily rollups: per day and per dimension (the whole proxy, key, user, team, end user, model
//! group, tag), counters of successful and failed requests, prompt, completion and cache-read
//! tokens, and spend in nano-dollars. Reports read these instead of scanning spend logs, so a
//! month of usage is a few hundred counter reads however many requests it held.
//!
//! Layout: counter `roll:{YYYY-MM-DD}:{dim}:{id}:{metric}`, and an index record
//! `rollidx:{YYYY-MM-DD}:{dim}:{id}` (written once per instance, day and id) so a report can
//! list which keys, teams... were active on a day. Days are UTC dates, as LiteLLM's daily
//! activity tables.

use crate::budget::scope::{escape, unescape};
use crate::store::BatchOp;

/// Rollups are kept this long (counters expire on their own).
pub const KEEP_MS: u64 = 400 * 86_400_000;

/// What a rollup counts.
pub const METRICS: [&str; 6] = ["req", "fail", "pt", "ct", "cr", "spend"];

/// One dimension value a request rolls up under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Dim {
    pub kind: &'static str,
    pub id: String,
}

impl Dim {
    pub fn new(kind: &'static str, id: impl Into<String>) -> Self {
        Dim {
            kind,
            id: id.into(),
        }
    }

    /// The whole proxy.
    pub fn all() -> Self {
        Dim::new("all", "-")
    }
}

pub fn counter_key(day: &str, dim: &Dim, metric: &str) -> String {
    format!("roll:{day}:{}:{}:{metric}", dim.kind, escape(&dim.id))
}

pub fn index_key(day: &str, dim: &Dim) -> String {
    format!("rollidx:{day}:{}:{}", dim.kind, escape(&dim.id))
}

/// The id an index record's key names (the part after the prefix, unescaped).
pub fn indexed_id(key: &str) -> Option<String> {
    key.rsplit_once(':').map(|(_, id)| unescape(id))
}

pub fn index_prefix(day: &str, kind: &str) -> String {
    format!("rollidx:{day}:{kind}:")
}

/// One request's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Figures {
    pub ok: bool,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cache_read_tokens: u64,
    pub spend_nanos: i64,
}

/// The counter adds for one request under each of `dims` on `day` (zero adds left out).
pub fn ops(day: &str, dims: &[Dim], f: Figures) -> Vec<BatchOp> {
    let values = [
        i64::from(f.ok),
        i64::from(!f.ok),
        f.prompt_tokens as i64,
        f.completion_tokens as i64,
        f.cache_read_tokens as i64,
        f.spend_nanos,
    ];
    let mut out = Vec::with_capacity(dims.len() * 4);
    for dim in dims {
        for (metric, value) in METRICS.iter().zip(values) {
            if value != 0 {
                out.push(BatchOp::Add {
                    key: counter_key(day, dim, metric),
                    delta: value,
                    ceiling: None,
                    ttl_ms: Some(KEEP_MS),
                });
            }
        }
    }
    out
}

/// A dimension value's totals on one day, as read back.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct DayTotals {
    pub successful_requests: i64,
    pub failed_requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cache_read_input_tokens: i64,
    pub spend_nanos: i64,
}

impl DayTotals {
    pub fn from_metrics(values: &[i64; 6]) -> Self {
        DayTotals {
            successful_requests: values[0],
            failed_requests: values[1],
            prompt_tokens: values[2],
            completion_tokens: values[3],
            cache_read_input_tokens: values[4],
            spend_nanos: values[5],
        }
    }

    pub fn add(&mut self, other: &DayTotals) {
        self.successful_requests += other.successful_requests;
        self.failed_requests += other.failed_requests;
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.cache_read_input_tokens += other.cache_read_input_tokens;
        self.spend_nanos += other.spend_nanos;
    }
}

/// Reads a dimension value's totals on `day`.
pub async fn read(
    store: &dyn crate::store::Store,
    day: &str,
    dim: &Dim,
) -> Result<DayTotals, crate::store::StoreError> {
    let mut values = [0i64; 6];
    let reads = METRICS
        .iter()
        .map(|m| async move { store.counter_get(&counter_key(day, dim, m)).await });
    for (slot, v) in values
        .iter_mut()
        .zip(futures_util::future::join_all(reads).await)
    {
        *slot = v?;
    }
    Ok(DayTotals::from_metrics(&values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_figures_add_nothing() {
        let ops = ops(
            "2026-12-04",
            &[Dim::all(), Dim::new("key", "t")],
            Figures {
                ok: true,
                prompt_tokens: 3,
                completion_tokens: 0,
                cache_read_tokens: 0,
                spend_nanos: 7,
            },
        );
        let keys: Vec<&str> = ops.iter().map(|o| o.key()).collect();
        assert_eq!(
            keys,
            [
                "roll:2026-12-04:all:-:req",
                "roll:2026-12-04:all:-:pt",
                "roll:2026-12-04:all:-:spend",
                "roll:2026-12-04:key:t:req",
                "roll:2026-12-04:key:t:pt",
                "roll:2026-12-04:key:t:spend"
            ]
        );
    }
}
