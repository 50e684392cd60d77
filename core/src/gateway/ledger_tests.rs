//! The ledger inside the pipeline: every request settles exactly once, whatever its end, on a
//! group of one and under the default `simple-shuffle` (where the router records nothing), and
//! what it settles reaches the Store through its subscribers.

use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use serde_json::{json, Value};

use super::tests::{
    body_of, figures, hello, ports, post, run, FixedClock, HeldTasks, Scripted, ScriptedClient,
};
use super::*;
use crate::config::Config;
use crate::ledger::{EndReason, Entry, Subscriber, UsageQuality};
use crate::ports::TransportError;
use crate::store::memory::MemoryStore;
use crate::store::Store;

/// Writes what it hears into the Store (`settled:<end>` and `tokens:<quality>` counters), as
/// the spend and limit subscribers will, and keeps the entries.
struct StoreTally {
    store: Arc<MemoryStore>,
    seen: Mutex<Vec<Entry>>,
}

#[async_trait::async_trait]
impl Subscriber for StoreTally {
    async fn settled(&self, e: &Entry) {
        let end = format!("settled:{:?}", e.end);
        self.store.counter_add(&end, 1, None).await.unwrap();
        if let Some(u) = &e.usage {
            let key = format!("tokens:{:?}", e.usage_quality);
            let total = i64::try_from(u.total_tokens).unwrap();
            self.store.counter_add(&key, total, None).await.unwrap();
        }
        self.seen.lock().unwrap().push(e.clone());
    }
}

struct Setup {
    gw: Gateway,
    store: Arc<MemoryStore>,
    tasks: Arc<HeldTasks>,
    tally: Arc<StoreTally>,
}

impl Setup {
    fn counter(&self, key: &str) -> i64 {
        run(self.store.counter_get(key)).unwrap()
    }

    /// Runs the work left after responses, then the one entry settled so far.
    fn settled(&self) -> Entry {
        self.tasks.run_all();
        let seen = self.tally.seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "settled exactly once: {seen:?}");
        seen[0].clone()
    }
}

const ONE: &str = "model_list:
  - model_name: g
    litellm_params: {model: openai/m, api_key: k, api_base: \"http://a/v1\"}
";

const TWO: &str = "model_list:
  - model_name: g
    litellm_params: {model: openai/m, api_key: k, api_base: \"http://a/v1\"}
    model_info: {id: a}
  - model_name: g
    litellm_params: {model: openai/m, api_key: k, api_base: \"http://b/v1\"}
    model_info: {id: b}
";

fn setup(yaml: &str, answers: Vec<Scripted>) -> Setup {
    setup_with(yaml, ScriptedClient::new(answers), Arc::new(FixedClock))
}

/// A gateway on `yaml` with `client` and `clock`, its ledgers heard by a [`StoreTally`].
fn setup_with(
    yaml: &str,
    client: Arc<dyn crate::ports::HttpClient>,
    clock: Arc<dyn crate::ports::Clock>,
) -> Setup {
    let store = Arc::new(MemoryStore::new(Arc::new(FixedClock)));
    let tasks = Arc::new(HeldTasks::default());
    let tally = Arc::new(StoreTally {
        store: store.clone(),
        seen: Mutex::default(),
    });
    let gw = Gateway::new(
        Config::from_yaml(yaml, &|_| None).unwrap(),
        ports(client, clock, store.clone(), tasks.clone()),
    )
    .with_subscriber(tally.clone());
    Setup {
        gw,
        store,
        tasks,
        tally,
    }
}

const OK: &str = r#"{"id":"c","object":"chat.completion","created":5,"model":"m-2024-05","choices":[{"index":0,"message":{"role":"assistant","content":"hi there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#;
const CHUNK: &str = "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello there, friend\"}}]}\n\n";
const END: &str = "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4,\"total_tokens\":7}}\n\ndata: [DONE]\n\n";

fn streamed(model: &str) -> Value {
    let mut body = hello(model);
    body["stream"] = json!(true);
    body
}

fn chat(s: &Setup, body: Value) -> GatewayResponse {
    run(s.gw.handle(post("/v1/chat/completions", body)))
}

#[test]
fn a_full_answer_settles_once_with_exact_usage_on_a_group_of_one() {
    let s = setup(ONE, vec![Ok((200, vec![], vec![Ok(OK)]))]);
    let (status, _) = run(body_of(chat(&s, hello("g"))));
    assert_eq!(status, 200);
    let e = s.settled();
    assert_eq!(e.end, EndReason::Completed);
    assert_eq!(e.usage_quality, UsageQuality::Exact);
    assert_eq!(e.requested_model.as_deref(), Some("g"));
    assert_eq!(e.model_group.as_deref(), Some("g"));
    assert_eq!(
        e.response_model.as_deref(),
        Some("m-2024-05"),
        "for pricing"
    );
    assert!(e.output.is_some(), "the answer is captured");
    assert_eq!(s.counter("settled:Completed"), 1);
    assert_eq!(s.counter("tokens:Exact"), 5);
}

#[test]
fn a_clean_stream_settles_once_under_simple_shuffle() {
    let s = setup(TWO, vec![Ok((200, vec![], vec![Ok(CHUNK), Ok(END)]))]);
    let (status, text) = run(body_of(chat(&s, streamed("g"))));
    assert_eq!(status, 200);
    assert!(text.ends_with("data: [DONE]\n\n"));
    let e = s.settled();
    assert_eq!(e.end, EndReason::Completed);
    assert_eq!(e.usage.unwrap().total_tokens, 7);
    assert!(e.first_token_ms.is_some());
    assert_eq!(s.counter("tokens:Exact"), 7);
}

#[test]
fn an_upstream_that_breaks_mid_stream_is_billed_an_estimate() {
    let s = setup(
        ONE,
        vec![Ok((
            200,
            vec![],
            vec![Ok(CHUNK), Err(TransportError::Body("reset".into()))],
        ))],
    );
    let (_, text) = run(body_of(chat(&s, streamed("g"))));
    assert!(text.contains("data: {\"error\""));
    let e = s.settled();
    assert_eq!(e.end, EndReason::UpstreamBroke);
    assert_eq!(e.usage_quality, UsageQuality::Estimated);
    let u = e.usage.unwrap();
    assert!(u.prompt_tokens > 0, "the prompt was sent");
    assert_eq!(
        u.completion_tokens, 5,
        "19 bytes of text sent, about 5 tokens"
    );
    assert!(s.counter("tokens:Estimated") > 0, "never billed 0");
}

#[test]
fn a_client_that_leaves_mid_stream_is_settled_after_the_response() {
    let s = setup(ONE, vec![Ok((200, vec![], vec![Ok(CHUNK)]))]);
    let resp = chat(&s, streamed("g"));
    let ResponseBody::Stream(mut stream) = resp.into_body() else {
        panic!("a stream")
    };
    let first = run(stream.next()).unwrap();
    assert!(String::from_utf8_lossy(&first).contains("Hello there"));
    drop(stream);
    let e = s.settled();
    assert_eq!(e.end, EndReason::ClientGone);
    assert_eq!(e.usage_quality, UsageQuality::Estimated);
    assert!(e.usage.unwrap().completion_tokens > 0);
}

#[test]
fn a_request_dropped_before_its_answer_settles_as_client_gone() {
    // The upstream never answers; the client gives up (the request's future is dropped).
    struct Never;
    #[async_trait::async_trait]
    impl crate::ports::HttpClient for Never {
        async fn send(
            &self,
            _r: http::Request<bytes::Bytes>,
            _t: u64,
        ) -> Result<http::Response<crate::ports::BodyStream>, TransportError> {
            std::future::pending().await
        }
    }
    /// Time stands still and no timeout ever fires.
    struct Frozen;
    #[async_trait::async_trait]
    impl crate::ports::Clock for Frozen {
        fn now_ms(&self) -> u64 {
            1_700_000_000_000
        }
        async fn sleep(&self, _ms: u64) {
            std::future::pending::<()>().await
        }
    }
    let yaml = format!("{TWO}router_settings:\n  routing_strategy: least-busy\n");
    let Setup {
        gw,
        store,
        tasks,
        tally,
    } = setup_with(&yaml, Arc::new(Never), Arc::new(Frozen));
    let mut fut = Box::pin(gw.handle(post("/v1/chat/completions", hello("g"))));
    let waker = futures_util::task::noop_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    if let std::task::Poll::Ready(r) = std::future::Future::poll(fut.as_mut(), &mut cx) {
        panic!("answered: {:?}", run(body_of(r)));
    }
    let in_flight: i64 = ["a", "b"]
        .iter()
        .map(|id| run(store.counter_get(&format!("router:inflight:{id}"))).unwrap())
        .sum();
    assert_eq!(in_flight, 1, "the attempt is in flight");
    drop(fut);
    assert_eq!(tasks.run_all(), 1);
    let seen = tally.seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].end, EndReason::ClientGone);
    let in_flight: i64 = ["a", "b"]
        .iter()
        .map(|id| run(store.counter_get(&format!("router:inflight:{id}"))).unwrap())
        .sum();
    assert_eq!(in_flight, 0, "given back by the ledger");
}

#[test]
fn an_unreadable_answer_fails_settles_and_gives_back_its_slot() {
    // Regression: an error in answer() after a good exchange used to skip the settlement, so
    // least-busy's in-flight count leaked.
    let yaml = format!("{TWO}router_settings:\n  routing_strategy: least-busy\n");
    let s = setup(&yaml, vec![Ok((200, vec![], vec![Ok("not json")]))]);
    let (status, _) = run(body_of(chat(&s, hello("g"))));
    assert_eq!(status, 502);
    let e = s.settled();
    assert_eq!(e.end, EndReason::Failed);
    assert!(e.error.is_some());
    let c = figures(&s.gw, s.store.as_ref(), 0);
    assert_eq!(c.iter().map(|c| c.in_flight).sum::<i64>(), 0);
}

#[test]
fn a_retry_then_success_settles_once() {
    let overloaded = r#"{"error":{"message":"overloaded","type":"server_error"}}"#;
    let s = setup(
        &format!("{ONE}router_settings:\n  num_retries: 2\n"),
        vec![
            Ok((503, vec![], vec![Ok(overloaded)])),
            Ok((200, vec![], vec![Ok(OK)])),
        ],
    );
    let (status, _) = run(body_of(chat(&s, hello("g"))));
    assert_eq!(status, 200);
    let e = s.settled();
    assert_eq!((e.end, e.retries), (EndReason::Completed, 1));
    assert_eq!(s.counter("settled:Completed"), 1);
    assert_eq!(s.counter("settled:Failed"), 0);
}

#[test]
fn a_fallback_then_success_settles_once_on_the_group_that_answered() {
    let yaml = "model_list:
  - model_name: g
    litellm_params: {model: openai/m, api_key: k, api_base: \"http://a/v1\"}
  - model_name: backup
    litellm_params: {model: openai/m, api_key: k, api_base: \"http://b/v1\"}
router_settings:
  num_retries: 0
  fallbacks: [{g: [backup]}]
";
    let s = setup(
        yaml,
        vec![
            Ok((500, vec![], vec![Ok("{}")])),
            Ok((200, vec![], vec![Ok(OK)])),
        ],
    );
    let (status, _) = run(body_of(chat(&s, hello("g"))));
    assert_eq!(status, 200);
    let e = s.settled();
    assert_eq!(e.end, EndReason::Completed);
    assert_eq!(e.fallbacks, 1);
    assert_eq!(e.requested_model.as_deref(), Some("g"));
    assert_eq!(e.model_group.as_deref(), Some("backup"));
}

#[test]
fn a_refused_request_settles_as_failed_without_usage() {
    let s = setup(ONE, vec![]);
    let (status, _) = run(body_of(chat(&s, json!({"model": "g"}))));
    assert_eq!(status, 400);
    let e = s.settled();
    assert_eq!(e.end, EndReason::Failed);
    assert!(e.usage.is_none());
    assert_eq!(s.counter("settled:Failed"), 1);
}

#[test]
fn a_stalled_stream_ends_at_its_idle_deadline_and_settles() {
    let yaml = "model_list:
  - model_name: g
    litellm_params: {model: openai/m, api_key: k, api_base: \"http://a/v1\", stream_timeout: 2}
";
    // One chunk, then silence: the idle deadline (stream_timeout once started) ends it.
    struct Stalling;
    #[async_trait::async_trait]
    impl crate::ports::HttpClient for Stalling {
        async fn send(
            &self,
            _r: http::Request<bytes::Bytes>,
            _t: u64,
        ) -> Result<http::Response<crate::ports::BodyStream>, TransportError> {
            let body: crate::ports::BodyStream = Box::pin(
                futures_util::stream::iter([Ok(bytes::Bytes::from_static(CHUNK.as_bytes()))])
                    .chain(futures_util::stream::pending()),
            );
            Ok(http::Response::new(body))
        }
    }
    let Setup {
        gw, tasks, tally, ..
    } = setup_with(yaml, Arc::new(Stalling), Arc::new(FixedClock));
    let (_, text) = run(body_of(run(
        gw.handle(post("/v1/chat/completions", streamed("g")))
    )));
    assert!(text.contains("Hello there"));
    assert!(text.contains("no data from the upstream for 2 s"), "{text}");
    assert!(!text.contains("[DONE]"));
    tasks.run_all();
    let seen = tally.seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].end, EndReason::UpstreamBroke);
}
