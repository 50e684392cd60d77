//! The gateway: one per instance, answering every request.
//!
//! Hosts call [`Gateway::handle`] (or [`Gateway::handle_scoped`]) with a buffered request and
//! get back a response whose body is either complete or a stream they forward chunk by chunk.
//! Where each step lives:
//!
//! - `routes.rs`: the HTTP route table (probes, models, the LLM endpoints, then `admin`);
//! - `pipeline.rs`: **the request pipeline, read it first** — authenticate → parse & validate
//!   (options read once) → per model group, with fallbacks → the attempt loop (pick a
//!   deployment, try, on a transient upstream failure back off and pick again) → respond;
//! - `attempt.rs`: one attempt on one deployment (prepare, exchange, answer);
//! - `upstream.rs`: the upstream call within its deadlines (first byte, idle between chunks);
//! - `respond.rs`: response builders and the one place errors become HTTP responses;
//! - `options.rs`: the gateway's own request parameters; `work.rs`: a validated request.
//!
//! Every LLM request has one [`Ledger`] (`crate::ledger`), settled exactly once however it
//! ends; its subscribers (routing figures today) act on it.

use std::sync::Arc;

use bytes::Bytes;

use crate::auth::MasterKey;
use crate::config::Config;
use crate::ledger::router_figures::RouterFigures;
use crate::ledger::{Ledger, Subscribers};
use crate::ports::{AfterResponse, Clock, Entropy, HttpClient};
use crate::rng::Rng;
use crate::store::Store;
use crate::store_log::StoreFailures;

pub use respond::{error_response, json_response, GatewayResponse, ResponseBody};

/// The version reported by health endpoints.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What a host gives core: its implementations of the ports.
pub struct Ports {
    pub http: Arc<dyn HttpClient>,
    pub clock: Arc<dyn Clock>,
    pub store: Arc<dyn Store>,
    /// Where work left after a response goes when the host has no request-scoped place for it
    /// (see [`Gateway::handle_scoped`]).
    pub after_response: Arc<dyn AfterResponse>,
    pub entropy: Arc<dyn Entropy>,
}

/// One per instance: config parsed once, clients shared by every request.
pub struct Gateway {
    config: Config,
    master_key: Option<MasterKey>,
    http: Arc<dyn HttpClient>,
    clock: Arc<dyn Clock>,
    store: Arc<dyn Store>,
    /// Finishes a request's bookkeeping after its response, for hosts without a request scope.
    after_response: Arc<dyn AfterResponse>,
    /// Who hears of every settled request.
    subscribers: Arc<Subscribers>,
    /// Request ids and dice: drawn from the host's entropy once, then one counter step per
    /// request (a system call per request would cost more than the rest of the ledger).
    ids: IdSource,
    /// Store failures the features tolerate, logged (rate-limited).
    store_failures: Arc<StoreFailures>,
    /// When this instance started, for `/health`'s uptime.
    started_ms: u64,
    /// Keys, users, teams, end users and budgets (cached reads, Store writes).
    directory: Arc<crate::identity::Directory>,
    /// Randomness for keys the admin API generates.
    entropy: Arc<dyn Entropy>,
    /// Every deployment's prices, resolved once.
    pricing: Arc<crate::cost::Pricing>,
}

impl Gateway {
    // wasm32 is single-threaded: nothing there is Send, and nothing needs to be.
    #[cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
    pub fn new(config: Config, ports: Ports) -> Self {
        let master_key = config.master_key.as_ref().map(MasterKey::from);
        let started_ms = ports.clock.now_ms();
        let failures = StoreFailures::new(Arc::clone(&ports.clock));
        let directory = Arc::new(crate::identity::Directory::new(
            Arc::clone(&ports.store),
            Arc::clone(&ports.clock),
            config.governance.key_cache_ttl_ms,
        ));
        let pricing = Arc::new(crate::cost::Pricing::from_config(&config));
        let spend = crate::spend::SpendRecorder::new(
            Arc::clone(&ports.store),
            Arc::clone(&ports.clock),
            Arc::clone(&pricing),
            Arc::clone(&directory),
            config.governance.calendar,
            Arc::clone(&failures),
            store_prompts(&config),
        );
        let subscribers = Subscribers::new(
            vec![
                Arc::new(RouterFigures::new(
                    Arc::clone(&ports.store),
                    Arc::clone(&failures),
                )),
                Arc::new(spend),
            ],
            Arc::clone(&ports.clock),
        );
        Gateway {
            pricing,
            directory,
            entropy: Arc::clone(&ports.entropy),
            config,
            master_key,
            http: ports.http,
            clock: ports.clock,
            store: ports.store,
            after_response: ports.after_response,
            subscribers,
            ids: IdSource::new(ports.entropy.as_ref()),
            store_failures: failures,
            started_ms,
        }
    }

    /// Adds a subscriber to every request's ledger (features that act on settled requests).
    pub fn with_subscriber(mut self, subscriber: Arc<dyn crate::ledger::Subscriber>) -> Self {
        self.subscribers = self.subscribers.with(subscriber);
        self
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The governance records (keys, users, teams, end users, budgets).
    pub fn directory(&self) -> &crate::identity::Directory {
        &self.directory
    }

    /// The host's cryptographic randomness (new keys).
    pub fn entropy(&self) -> &dyn Entropy {
        self.entropy.as_ref()
    }

    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// Answers one request. Never panics on client input; every failure is an OpenAI-style error.
    /// Work left after the response goes to the instance's [`Ports::after_response`].
    pub async fn handle(&self, req: http::Request<Bytes>) -> GatewayResponse {
        self.handle_scoped(req, Arc::clone(&self.after_response))
            .await
    }

    /// [`Gateway::handle`], with work left after the response handed to `after` (Workers: the
    /// request's `ctx.wait_until`; Lambda: work finished before the invocation ends).
    pub async fn handle_scoped(
        &self,
        req: http::Request<Bytes>,
        after: Arc<dyn AfterResponse>,
    ) -> GatewayResponse {
        let started_ms = self.clock.now_ms();
        let ids = self.ids.next();
        let mut resp = self.route(req, &ids, after).await;
        respond::stamp_common_headers(&mut resp, &ids.call_id, started_ms, self.clock.now_ms());
        resp
    }

    /// A ledger for one LLM request.
    fn open_ledger(
        &self,
        ids: &RequestIds,
        endpoint: crate::ledger::Endpoint,
        after: &Arc<dyn AfterResponse>,
    ) -> Ledger {
        Ledger::open(
            ids.call_id.clone(),
            endpoint,
            Arc::clone(&self.subscribers),
            Arc::clone(after),
        )
    }
}

/// `general_settings.store_prompts_in_spend_logs` (LiteLLM's): answers kept in spend logs.
fn store_prompts(config: &Config) -> bool {
    config
        .raw
        .general_settings
        .extra
        .get("store_prompts_in_spend_logs")
        .is_some_and(|v| v.as_bool() == Some(true) || v.as_str() == Some("true"))
}

/// A request's identity and dice: the call id (a version-4 UUID, as LiteLLM's) and the seed of
/// the request's routing and id generator. Derived from a key drawn from the host's entropy,
/// so two instances started in the same millisecond never agree.
pub(crate) struct RequestIds {
    pub call_id: String,
    pub seed: u64,
}

/// Per-instance source of request ids: a random key from the host's entropy, and a counter.
struct IdSource {
    key: [u64; 2],
    counter: std::sync::atomic::AtomicU64,
}

impl IdSource {
    fn new(entropy: &dyn Entropy) -> Self {
        let mut b = [0u8; 16];
        entropy.fill(&mut b);
        let word = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or_default());
        IdSource {
            key: [word(0), word(8)],
            counter: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The next request's ids: the counter mixed with the instance's random key (SplitMix64
    /// steps), so ids are unique within an instance and differ between instances.
    fn next(&self) -> RequestIds {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut rng = Rng::seeded(self.key[0] ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut u = [0u8; 16];
        u[..8].copy_from_slice(&(rng.next_u64() ^ self.key[1]).to_le_bytes());
        u[8..].copy_from_slice(&rng.next_u64().to_le_bytes());
        let seed = rng.next_u64();
        RequestIds::from_bytes(u, seed)
    }
}

impl RequestIds {
    fn from_bytes(mut u: [u8; 16], seed: u64) -> Self {
        u[6] = (u[6] & 0x0f) | 0x40;
        u[8] = (u[8] & 0x3f) | 0x80;
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut call_id = String::with_capacity(36);
        for (i, byte) in u.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                call_id.push('-');
            }
            call_id.push(HEX[usize::from(byte >> 4)] as char);
            call_id.push(HEX[usize::from(byte & 0x0f)] as char);
        }
        RequestIds { call_id, seed }
    }

    pub fn rng(&self) -> Rng {
        Rng::seeded(self.seed)
    }
}

mod admission;
mod attempt;
mod health;
mod options;
mod pipeline;
mod respond;
mod routes;
mod upstream;
mod work;

pub(crate) use upstream::read_all;

#[cfg(test)]
mod governance_tests;
#[cfg(test)]
mod image_tests;
#[cfg(test)]
mod ledger_tests;
#[cfg(test)]
mod messages_tests;
#[cfg(test)]
mod routing_tests;
#[cfg(test)]
pub(crate) mod tests;
