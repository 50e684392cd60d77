//! The router's subscriber: gives back what an attempt took from the shared routing figures
//! (in flight −1) and records what the strategy steers by (tokens this minute, latency), once
//! per request, whatever its end.

use std::sync::Arc;

use super::{EndReason, Entry, Subscriber};
use crate::router::state;
use crate::store::Store;
use crate::store_log::StoreFailures;

const ROUTING: &str = "routing figures";

pub struct RouterFigures {
    store: Arc<dyn Store>,
    failures: Arc<StoreFailures>,
}

impl RouterFigures {
    pub fn new(store: Arc<dyn Store>, failures: Arc<StoreFailures>) -> Self {
        RouterFigures { store, failures }
    }
}

#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
impl Subscriber for RouterFigures {
    /// Only an attempt that took figures (a group of several under a strategy that records
    /// some) has any to give back.
    fn wants(&self, entry: &Entry) -> bool {
        entry.route.is_some()
    }

    async fn settled(&self, entry: &Entry) {
        let Some(route) = &entry.route else {
            return;
        };
        let store = self.store.as_ref();
        let id = route.deployment_id.as_str();
        let f = route.figures;
        // Routing figures are advisory: a failed write is logged, never retried.
        let r = state::request_finished(store, id, f).await;
        self.failures.note(ROUTING, r);
        let usage = entry.usage.as_ref();
        if f.usage {
            let tokens = usage.map_or(0, |u| u.total_tokens);
            let r = state::record_tokens(store, id, entry.ended_ms, tokens).await;
            self.failures.note(ROUTING, r);
        }
        // Latency is a property of answers: a request that failed or was cut says nothing
        // of how fast the deployment answers (timeouts are recorded by the attempt loop).
        if f.latency && entry.end == EndReason::Completed {
            if let Some(ms) = entry.latency_ms() {
                // A stream's sample is its time to first token, not per output token.
                let output = match entry.first_token_ms {
                    Some(_) => 0,
                    None => usage.map_or(0, |u| u.completion_tokens),
                };
                let r = state::record_latency(store, id, entry.ended_ms, ms, output).await;
                self.failures.note(ROUTING, r);
            }
        }
    }
}
