//! One ledger per request, settled exactly once whatever the end: the answer is complete, the
//! upstream broke mid-stream, the client went away, or the request failed.
//!
//! The pipeline writes what it learns into the ledger's [`Entry`] as it goes (the model
//! names, the deployment, the usage, the time to first token...). When the request is over the
//! entry is closed with its [`EndReason`] and handed to every [`Subscriber`] (routing figures
//! today; limits, spend, metrics and callbacks next). No subscriber settles on its own, so
//! nothing is counted twice or forgotten on a path someone did not think of.
//!
//! Exactly once: [`Ledger::close`] consumes the entry; a ledger dropped before it was closed
//! (the client left while the gateway waited on the upstream) closes itself as
//! [`EndReason::ClientGone`] and hands the subscribers' work to the request's
//! [`AfterResponse`]. A stream takes the ledger over ([`Ledger::hand_over`]) and closes it at
//! its end.

pub mod router_figures;

use std::sync::Arc;

use bytes::Bytes;

use crate::deployment::Deployment;
use crate::error::GatewayError;
use crate::openai::Usage;
use crate::ports::{AfterResponse, Clock, MaybeSend, MaybeSync, Task};

/// The API a request came in through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    ChatCompletions,
    Completions,
    Embeddings,
    ImageGenerations,
    /// Anthropic's `/v1/messages`.
    Messages,
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The whole answer reached the client.
    Completed,
    /// The upstream stream broke (or went idle past its deadline) after the response started.
    UpstreamBroke,
    /// The client went away before the answer was complete.
    ClientGone,
    /// The request was answered with an error.
    Failed,
}

/// Whether the usage is the provider's count or the gateway's estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageQuality {
    Exact,
    /// A stream cut before the provider reported its usage: the prompt and the output already
    /// sent are estimated (about four bytes a token), never billed as 0.
    Estimated,
}

/// The routing figures an attempt took and its settlement gives back (in flight +1, ...).
#[derive(Debug, Clone)]
pub struct RouteNote {
    pub deployment_id: String,
    pub figures: crate::router::state::Figures,
}

/// Who a request is on behalf of, for spend attribution and logs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attribution {
    /// The virtual key's token (SHA-256 hex); `None` for the master key.
    pub key_token: Option<String>,
    pub key_alias: Option<String>,
    pub user_id: Option<String>,
    pub team_id: Option<String>,
    /// The request's end user (`user`, or `x-litellm-end-user-id`).
    pub end_user: Option<String>,
    pub tags: Vec<String>,
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

/// What the ledger knows of one request.
#[derive(Debug, Clone)]
pub struct Entry {
    /// `x-litellm-call-id`.
    pub call_id: String,
    pub endpoint: Endpoint,
    /// The model name the client asked for (a group or an alias).
    pub requested_model: Option<String>,
    /// The model group that answered (or was tried last).
    pub model_group: Option<String>,
    /// The model the upstream says answered (pricing reads it).
    pub response_model: Option<String>,
    /// The deployment that answered (or was tried last).
    pub deployment: Option<Arc<Deployment>>,
    /// Routing figures to give back at the end, if the attempt took any.
    pub route: Option<RouteNote>,
    pub started_ms: u64,
    /// When the answering attempt was sent.
    pub attempt_started_ms: Option<u64>,
    /// When a stream's first bytes arrived from the upstream.
    pub first_token_ms: Option<u64>,
    pub ended_ms: u64,
    pub end: EndReason,
    pub error: Option<GatewayError>,
    pub usage: Option<Usage>,
    pub usage_quality: UsageQuality,
    /// About how many tokens the prompt holds (a quarter of its text bytes).
    pub prompt_tokens_estimate: u64,
    /// Bytes of answer text sent to the client so far (content, reasoning, tool arguments).
    pub output_text_bytes: u64,
    pub cache_hit: bool,
    /// The answer as sent, when a subscriber asked for it (caching, callbacks).
    pub output: Option<Bytes>,
    pub retries: u32,
    pub fallbacks: u32,
    /// Who the request is on behalf of (set once authenticated and parsed).
    pub attribution: Option<Arc<Attribution>>,
    /// The budgets it spends in and what it reserved on them (`crate::budget`), settled by
    /// the spend subscriber.
    pub budget: Option<Box<crate::budget::Plan>>,
}

impl Entry {
    fn new(call_id: String, endpoint: Endpoint, now_ms: u64) -> Self {
        Entry {
            call_id,
            endpoint,
            requested_model: None,
            model_group: None,
            response_model: None,
            deployment: None,
            route: None,
            started_ms: now_ms,
            attempt_started_ms: None,
            first_token_ms: None,
            ended_ms: now_ms,
            end: EndReason::Failed,
            error: None,
            usage: None,
            usage_quality: UsageQuality::Exact,
            prompt_tokens_estimate: 0,
            output_text_bytes: 0,
            cache_hit: false,
            output: None,
            retries: 0,
            fallbacks: 0,
            attribution: None,
            budget: None,
        }
    }

    /// Fixes the usage for the way the request ended: the provider's count when the answer
    /// completed with one; otherwise, if an upstream was called, at least the estimate of the
    /// prompt and of the output already sent (a cut stream is never free). A request that
    /// failed before any upstream answered uses nothing.
    fn settle_usage(&mut self) {
        let called = self.attempt_started_ms.is_some();
        match (self.end, self.usage.take()) {
            (EndReason::Completed, Some(u)) => {
                self.usage = Some(u);
                self.usage_quality = UsageQuality::Exact;
            }
            (EndReason::Failed, reported) => {
                self.usage = reported;
                self.usage_quality = UsageQuality::Exact;
            }
            (_, reported) if called => {
                let output_estimate = self.output_text_bytes.div_ceil(4);
                let reported = reported.unwrap_or_default();
                let prompt = reported.prompt_tokens.max(self.prompt_tokens_estimate);
                let completion = reported.completion_tokens.max(output_estimate);
                self.usage = Some(Usage {
                    prompt_tokens: prompt,
                    completion_tokens: completion,
                    total_tokens: prompt + completion,
                    ..reported
                });
                self.usage_quality = UsageQuality::Estimated;
            }
            (_, reported) => self.usage = reported,
        }
    }

    /// The latency of the answering attempt: time to first token for a stream, the whole
    /// call otherwise (`None` when no attempt answered).
    pub fn latency_ms(&self) -> Option<u64> {
        let sent = self.attempt_started_ms?;
        Some(
            self.first_token_ms
                .unwrap_or(self.ended_ms)
                .saturating_sub(sent),
        )
    }
}

/// Something that acts on a settled request (routing figures, limits, spend, metrics...).
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
pub trait Subscriber: MaybeSend + MaybeSync {
    /// Whether [`Subscriber::settled`] has anything to do for `entry`: a cheap check, so a
    /// request nobody needs to hear of costs no background task at all.
    fn wants(&self, _entry: &Entry) -> bool {
        true
    }

    /// Called once per request, after it ended. Failures are the subscriber's to log; they
    /// never reach the client, who has the answer already.
    async fn settled(&self, entry: &Entry);
}

/// Who hears of settled requests, shared by every ledger of an instance.
pub struct Subscribers {
    list: Vec<Arc<dyn Subscriber>>,
    clock: Arc<dyn Clock>,
}

impl Subscribers {
    // wasm32 is single-threaded: nothing there is Send, and nothing needs to be.
    #[cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
    pub fn new(list: Vec<Arc<dyn Subscriber>>, clock: Arc<dyn Clock>) -> Arc<Self> {
        Arc::new(Subscribers { list, clock })
    }

    /// The same subscribers and one more, heard last.
    // wasm32 is single-threaded: nothing there is Send, and nothing needs to be.
    #[cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
    pub fn with(&self, extra: Arc<dyn Subscriber>) -> Arc<Self> {
        let mut list = self.list.clone();
        list.push(extra);
        Subscribers::new(list, Arc::clone(&self.clock))
    }
}

/// One request's ledger. See the module documentation.
pub struct Ledger {
    entry: Option<Box<Entry>>,
    subscribers: Arc<Subscribers>,
    after: Arc<dyn AfterResponse>,
}

impl Ledger {
    pub fn open(
        call_id: String,
        endpoint: Endpoint,
        subscribers: Arc<Subscribers>,
        after: Arc<dyn AfterResponse>,
    ) -> Self {
        let now = subscribers.clock.now_ms();
        Ledger {
            entry: Some(Box::new(Entry::new(call_id, endpoint, now))),
            subscribers,
            after,
        }
    }

    /// The entry, to note what the pipeline learns. `None` once handed over or closed.
    pub fn entry(&mut self) -> Option<&mut Entry> {
        self.entry.as_deref_mut()
    }

    /// Moves the open entry into a new ledger (a stream's, which closes it at its end); this
    /// one is left empty and closing or dropping it does nothing.
    pub fn hand_over(&mut self) -> Ledger {
        Ledger {
            entry: self.entry.take(),
            subscribers: Arc::clone(&self.subscribers),
            after: Arc::clone(&self.after),
        }
    }

    /// Ends the request: the subscribers' work, to be awaited before the response ends (a
    /// stream) or handed to [`Ledger::defer`]. `None` when already closed or handed over.
    pub fn close(&mut self, end: EndReason) -> Option<Task> {
        let mut entry = self.entry.take()?;
        entry.end = end;
        entry.ended_ms = self.subscribers.clock.now_ms();
        entry.settle_usage();
        if !self.subscribers.list.iter().any(|s| s.wants(&entry)) {
            return None;
        }
        let subscribers = Arc::clone(&self.subscribers);
        Some(Box::pin(async move {
            for s in subscribers.list.iter().filter(|s| s.wants(&entry)) {
                s.settled(&entry).await;
            }
        }))
    }

    /// Closes the ledger and leaves the subscribers' work to the host, after the response.
    pub fn close_after_response(&mut self, end: EndReason) {
        if let Some(task) = self.close(end) {
            self.after.defer(task);
        }
    }
}

impl Drop for Ledger {
    /// Not closed: the request's future was dropped (the client went away) before it ended.
    fn drop(&mut self) {
        self.close_after_response(EndReason::ClientGone);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<Entry>>);

    #[async_trait::async_trait]
    impl Subscriber for Recorder {
        async fn settled(&self, entry: &Entry) {
            self.0.lock().unwrap().push(entry.clone());
        }
    }

    #[derive(Default)]
    struct Held(Mutex<Vec<Task>>);

    impl AfterResponse for Held {
        fn defer(&self, task: Task) {
            self.0.lock().unwrap().push(task);
        }
    }

    struct Still;

    #[async_trait::async_trait]
    impl Clock for Still {
        fn now_ms(&self) -> u64 {
            1_000
        }
        async fn sleep(&self, _ms: u64) {}
    }

    fn open() -> (Ledger, Arc<Recorder>, Arc<Held>) {
        let recorder = Arc::new(Recorder::default());
        let held = Arc::new(Held::default());
        let subs = Subscribers::new(vec![recorder.clone()], Arc::new(Still));
        let ledger = Ledger::open("call".into(), Endpoint::ChatCompletions, subs, held.clone());
        (ledger, recorder, held)
    }

    fn run_held(held: &Held) {
        for t in held.0.lock().unwrap().drain(..) {
            futures_executor::block_on(t);
        }
    }

    #[test]
    fn closing_twice_settles_once() {
        let (mut ledger, recorder, _) = open();
        let task = ledger.close(EndReason::Completed).unwrap();
        assert!(ledger.close(EndReason::Failed).is_none());
        futures_executor::block_on(task);
        drop(ledger);
        assert_eq!(recorder.0.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_dropped_ledger_settles_as_client_gone_after_the_response() {
        let (ledger, recorder, held) = open();
        drop(ledger);
        assert!(recorder.0.lock().unwrap().is_empty(), "deferred, not run");
        run_held(&held);
        let seen = recorder.0.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].end, EndReason::ClientGone);
    }

    #[test]
    fn a_handed_over_ledger_is_settled_by_its_new_owner_only() {
        let (mut ledger, recorder, held) = open();
        let mut stream_side = ledger.hand_over();
        drop(ledger);
        run_held(&held);
        assert!(recorder.0.lock().unwrap().is_empty());
        futures_executor::block_on(stream_side.close(EndReason::Completed).unwrap());
        assert_eq!(recorder.0.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_cut_stream_is_billed_an_estimate_never_zero() {
        let (mut ledger, recorder, _) = open();
        let e = ledger.entry().unwrap();
        e.attempt_started_ms = Some(1_000);
        e.prompt_tokens_estimate = 12;
        e.output_text_bytes = 41;
        futures_executor::block_on(ledger.close(EndReason::UpstreamBroke).unwrap());
        let seen = recorder.0.lock().unwrap();
        let usage = seen[0].usage.clone().unwrap();
        assert_eq!(seen[0].usage_quality, UsageQuality::Estimated);
        assert_eq!(
            (
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.total_tokens
            ),
            (12, 11, 23)
        );
    }

    #[test]
    fn a_cut_stream_keeps_what_the_provider_reported_when_larger() {
        let (mut ledger, recorder, _) = open();
        let e = ledger.entry().unwrap();
        e.attempt_started_ms = Some(1_000);
        e.prompt_tokens_estimate = 5;
        e.output_text_bytes = 4;
        e.usage = Some(Usage {
            prompt_tokens: 300,
            completion_tokens: 0,
            total_tokens: 300,
            ..Default::default()
        });
        futures_executor::block_on(ledger.close(EndReason::ClientGone).unwrap());
        let usage = recorder.0.lock().unwrap()[0].usage.clone().unwrap();
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (300, 1));
    }

    struct Uninterested;

    #[async_trait::async_trait]
    impl Subscriber for Uninterested {
        fn wants(&self, _entry: &Entry) -> bool {
            false
        }
        async fn settled(&self, _entry: &Entry) {
            panic!("not wanted, never called");
        }
    }

    #[test]
    fn a_request_no_subscriber_wants_costs_no_task() {
        let held = Arc::new(Held::default());
        let subs = Subscribers::new(vec![Arc::new(Uninterested)], Arc::new(Still));
        let mut ledger = Ledger::open("c".into(), Endpoint::Embeddings, subs, held.clone());
        assert!(ledger.close(EndReason::Completed).is_none());
        drop(Ledger::open(
            "d".into(),
            Endpoint::Embeddings,
            Subscribers::new(vec![Arc::new(Uninterested)], Arc::new(Still)),
            held.clone(),
        ));
        assert!(held.0.lock().unwrap().is_empty(), "nothing deferred");
    }

    #[test]
    fn a_request_that_never_reached_an_upstream_uses_nothing() {
        let (mut ledger, recorder, _) = open();
        ledger.entry().unwrap().prompt_tokens_estimate = 50;
        futures_executor::block_on(ledger.close(EndReason::ClientGone).unwrap());
        assert!(recorder.0.lock().unwrap()[0].usage.is_none());
    }
}
