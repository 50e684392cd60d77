//! Store failures that a feature tolerates (routing figures are advisory, limits may fail
//! open) are still worth knowing about, but not once per request: each kind is logged at most
//! once a minute per instance, with how many were passed over since.

use std::sync::{Arc, Mutex};

use crate::ports::Clock;
use crate::store::StoreError;

/// How often one kind of Store failure is logged.
const LOG_EVERY_MS: u64 = 60_000;

pub struct StoreFailures {
    clock: Arc<dyn Clock>,
    /// Per kind: when it was last logged, and how many were not logged since.
    seen: Mutex<Vec<(&'static str, u64, u64)>>,
}

impl StoreFailures {
    // wasm32 is single-threaded: nothing there is Send, and nothing needs to be.
    #[cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
    pub fn new(clock: Arc<dyn Clock>) -> Arc<Self> {
        Arc::new(StoreFailures {
            clock,
            seen: Mutex::new(Vec::new()),
        })
    }

    /// The value, or `None` after logging the failure (rate-limited). `what` names the feature
    /// ("routing figures"); the error text comes from the backend and holds no secrets (keys
    /// and URLs with passwords are never part of a StoreError).
    pub fn note<T>(&self, what: &'static str, result: Result<T, StoreError>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                if let Some(passed_over) = self.due(what) {
                    tracing::warn!(feature = what, error = %e, passed_over, "store operation failed");
                }
                None
            }
        }
    }

    /// `Some(failures not logged since the last time)` when `what` may be logged now.
    fn due(&self, what: &'static str) -> Option<u64> {
        let now = self.clock.now_ms();
        let Ok(mut seen) = self.seen.lock() else {
            return None;
        };
        match seen.iter_mut().find(|(k, _, _)| *k == what) {
            Some((_, last, passed)) if now.saturating_sub(*last) < LOG_EVERY_MS => {
                *passed += 1;
                None
            }
            Some((_, last, passed)) => {
                *last = now;
                Some(std::mem::take(passed))
            }
            None => {
                seen.push((what, now, 0));
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::ManualClock;

    #[test]
    fn one_log_a_minute_per_kind() {
        let clock = Arc::new(ManualClock::default());
        let f = StoreFailures::new(clock.clone());
        assert_eq!(f.due("routing"), Some(0));
        assert_eq!(f.due("routing"), None);
        assert_eq!(f.due("routing"), None);
        assert_eq!(f.due("limits"), Some(0), "kinds are apart");
        futures_executor::block_on(clock.sleep(LOG_EVERY_MS));
        assert_eq!(f.due("routing"), Some(2), "reports what it passed over");
        assert_eq!(f.note("routing", Ok::<_, StoreError>(7)), Some(7));
        assert_eq!(f.note::<()>("routing", Err(StoreError::Timeout)), None);
    }
}
