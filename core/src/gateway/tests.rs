//! Pipeline tests: a scripted in-memory `HttpClient` stands in for the network, so these check
//! what the gateway sends and how it answers. The real wire is covered end to end in `tests/`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{json, Value};

use super::*;
use crate::ports::{BodyStream, Clock, HttpClient, TransportError};

/// One scripted answer: status, headers and the body's parts (or a transport error).
pub(crate) type Scripted = Result<
    (
        u16,
        Vec<(&'static str, &'static str)>,
        Vec<Result<&'static str, TransportError>>,
    ),
    TransportError,
>;

/// Answers from a queue of scripted answers and keeps what was sent.
#[derive(Default)]
pub(crate) struct ScriptedClient {
    pub(crate) answers: Mutex<VecDeque<Scripted>>,
    pub(crate) seen: Mutex<Vec<http::Request<Bytes>>>,
}

impl ScriptedClient {
    pub(crate) fn new(answers: Vec<Scripted>) -> Arc<Self> {
        Arc::new(ScriptedClient {
            answers: Mutex::new(answers.into()),
            ..Default::default()
        })
    }
}

#[async_trait::async_trait]
impl HttpClient for ScriptedClient {
    async fn send(
        &self,
        request: http::Request<Bytes>,
        _timeout_ms: u64,
    ) -> Result<http::Response<BodyStream>, TransportError> {
        self.seen.lock().unwrap().push(request);
        let (status, headers, parts) = self
            .answers
            .lock()
            .unwrap()
            .pop_front()
            .expect("an answer was scripted")?;
        let items: Vec<Result<Bytes, TransportError>> = parts
            .into_iter()
            .map(|p| p.map(|s: &'static str| Bytes::from_static(s.as_bytes())))
            .collect();
        let mut b = http::Response::builder().status(status);
        for (k, v) in headers {
            b = b.header(k, v);
        }
        Ok(
            b.body(Box::pin(futures_util::stream::iter(items)) as BodyStream)
                .unwrap(),
        )
    }
}

/// Keeps background tasks so a test can run them (and see that there were some).
#[derive(Default)]
pub(crate) struct HeldTasks(Mutex<Vec<crate::ports::Task>>);

impl crate::ports::AfterResponse for HeldTasks {
    fn defer(&self, task: crate::ports::Task) {
        self.0.lock().unwrap().push(task);
    }
}

impl HeldTasks {
    /// Runs every held task to completion; returns how many there were.
    pub(crate) fn run_all(&self) -> usize {
        let tasks: Vec<_> = self.0.lock().unwrap().drain(..).collect();
        let n = tasks.len();
        for t in tasks {
            futures_executor::block_on(t);
        }
        n
    }
}

/// A clock that stands still and whose sleeps return at once.
pub(crate) struct FixedClock;

#[async_trait::async_trait]
impl Clock for FixedClock {
    fn now_ms(&self) -> u64 {
        1_700_000_000_000
    }
    async fn sleep(&self, _ms: u64) {}
}

const CONFIG: &str = r#"
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o-2024-08-06, api_key: sk-up, api_base: "http://up.test/v1"}
  - model_name: defaulted
    litellm_params: {model: openai/x, api_key: k, api_base: "http://up.test/v1", max_tokens: 77, temperature: 0.5}
  - model_name: claude
    litellm_params: {model: anthropic/claude-3-5-sonnet-20240620, api_key: sk-ant, api_base: "http://up.test"}
  - model_name: canned
    litellm_params: {model: mock/x, mock_response: "canned answer"}
  - model_name: later
    litellm_params: {model: palm/chat-bison, api_key: g}
general_settings:
  master_key: sk-master
"#;

/// A gateway on config `yaml` sending to `client`, on `clock` (the in-memory store's too),
/// with background tasks held.
pub(crate) fn gateway_on(
    yaml: &str,
    client: Arc<dyn HttpClient>,
    clock: Arc<dyn Clock>,
) -> Gateway {
    let store = Arc::new(crate::store::memory::MemoryStore::new(clock.clone()));
    Gateway::new(
        Config::from_yaml(yaml, &|_| None).unwrap(),
        ports(client, clock, store, Arc::new(HeldTasks::default())),
    )
}

/// Distinct, reproducible "random" bytes: a counter through SplitMix64.
#[derive(Default)]
pub(crate) struct CountingEntropy(std::sync::atomic::AtomicU64);

impl crate::ports::Entropy for CountingEntropy {
    fn fill(&self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let n = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let v = crate::rng::Rng::seeded(n).next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// The ports of a test gateway.
pub(crate) fn ports(
    http: Arc<dyn HttpClient>,
    clock: Arc<dyn Clock>,
    store: Arc<dyn crate::store::Store>,
    after_response: Arc<dyn crate::ports::AfterResponse>,
) -> Ports {
    Ports {
        http,
        clock,
        store,
        after_response,
        entropy: Arc::new(CountingEntropy::default()),
    }
}

fn gateway(answers: Vec<Scripted>) -> (Gateway, Arc<ScriptedClient>) {
    let client = ScriptedClient::new(answers);
    (
        gateway_on(CONFIG, client.clone(), Arc::new(FixedClock)),
        client,
    )
}

pub(crate) fn post(path: &str, body: Value) -> http::Request<Bytes> {
    http::Request::post(path)
        .header("authorization", "Bearer sk-master")
        .body(Bytes::from(body.to_string()))
        .unwrap()
}

pub(crate) async fn body_of(resp: GatewayResponse) -> (u16, String) {
    let status = resp.status().as_u16();
    let text = match resp.into_body() {
        ResponseBody::Full(b) => String::from_utf8(b.to_vec()).unwrap(),
        ResponseBody::Stream(s) => s
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
            .collect::<Vec<_>>()
            .await
            .concat(),
    };
    (status, text)
}

/// Every deployment's shared routing figures as the Store holds them at `now_ms`.
pub(crate) fn figures(
    gw: &Gateway,
    store: &dyn crate::store::Store,
    now_ms: u64,
) -> Vec<crate::router::Candidate> {
    let ds: Vec<(usize, &crate::deployment::Deployment)> = gw
        .config()
        .deployments
        .iter()
        .enumerate()
        .map(|(i, d)| (i, d.as_ref()))
        .collect();
    run(crate::router::state::load_candidates(
        store,
        &ds,
        now_ms,
        crate::router::state::Figures::ALL,
    ))
    .unwrap()
}

pub(crate) fn run<F: std::future::Future>(f: F) -> F::Output {
    futures_executor::block_on(f)
}

pub(crate) const OPENAI_OK: &str = r#"{"id":"chatcmpl-up","object":"chat.completion","created":5,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":"hi there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#;

pub(crate) fn hello(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hello"}]})
}

#[test]
fn chat_is_forwarded_and_answer_carries_the_requested_model() {
    run(async {
        let (gw, client) = gateway(vec![Ok((200, vec![], vec![Ok(OPENAI_OK)]))]);
        let (status, text) = body_of(
            gw.handle(post("/v1/chat/completions", hello("gpt-4o")))
                .await,
        )
        .await;
        assert_eq!(status, 200, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["model"], "gpt-4o");
        assert_eq!(v["choices"][0]["message"]["content"], "hi there");
        assert_eq!(v["usage"]["total_tokens"], 5);
        let seen = client.seen.lock().unwrap();
        assert_eq!(seen[0].uri(), "http://up.test/v1/chat/completions");
        assert_eq!(seen[0].headers()["authorization"], "Bearer sk-up");
        let sent: Value = serde_json::from_slice(seen[0].body()).unwrap();
        assert_eq!(sent["model"], "gpt-4o-2024-08-06");
    });
}

#[test]
fn deployment_defaults_fill_in_but_never_override() {
    run(async {
        let (gw, client) = gateway(vec![Ok((200, vec![], vec![Ok(OPENAI_OK)]))]);
        let mut req = hello("defaulted");
        req["temperature"] = json!(0.1);
        body_of(gw.handle(post("/chat/completions", req)).await).await;
        let sent: Value = serde_json::from_slice(client.seen.lock().unwrap()[0].body()).unwrap();
        assert_eq!(sent["max_tokens"], 77);
        assert_eq!(sent["temperature"], 0.1);
    });
}

#[test]
fn gateway_only_params_never_reach_the_provider() {
    run(async {
        let (gw, client) = gateway(vec![Ok((200, vec![], vec![Ok(OPENAI_OK)]))]);
        let mut req = hello("gpt-4o");
        req["metadata"] = json!({"tag": "x"});
        req["num_retries"] = json!(3);
        req["api_base"] = json!("http://evil.test");
        body_of(gw.handle(post("/chat/completions", req)).await).await;
        let seen = client.seen.lock().unwrap();
        assert_eq!(seen[0].uri(), "http://up.test/v1/chat/completions");
        let sent: Value = serde_json::from_slice(seen[0].body()).unwrap();
        assert!(
            sent.get("metadata").is_none()
                && sent.get("num_retries").is_none()
                && sent.get("api_base").is_none()
        );
    });
}

#[test]
fn upstream_rate_limit_stays_429_with_retry_after() {
    run(async {
        let err = r#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
        let (gw, _) = gateway(vec![Ok((429, vec![("retry-after", "7")], vec![Ok(err)]))]);
        let resp = gw
            .handle(post("/v1/chat/completions", hello("gpt-4o")))
            .await;
        assert_eq!(resp.headers()["retry-after"], "7");
        let (status, text) = body_of(resp).await;
        assert_eq!(status, 429);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["error"]["message"], "Rate limit reached");
        assert_eq!(v["error"]["type"], "rate_limit_error");
    });
}

#[test]
fn transport_failures_map_to_408_and_502() {
    run(async {
        let (gw, _) = gateway(vec![
            Err(TransportError::Timeout),
            Err(TransportError::Connect("refused".into())),
        ]);
        let (status, _) = body_of(
            gw.handle(post("/v1/chat/completions", hello("gpt-4o")))
                .await,
        )
        .await;
        assert_eq!(status, 408);
        let (status, text) = body_of(
            gw.handle(post("/v1/chat/completions", hello("gpt-4o")))
                .await,
        )
        .await;
        assert_eq!(status, 502);
        assert!(text.contains("refused"));
    });
}

#[test]
fn streamed_chat_is_restamped_and_ends_with_done() {
    run(async {
        let chunks = vec![
            Ok("data: {\"id\":\"up\",\"created\":5,\"model\":\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":null}]}\n\n"),
            Ok("data: {\"id\":\"up\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n"),
        ];
        let (gw, client) = gateway(vec![Ok((200, vec![], chunks))]);
        let mut req = hello("gpt-4o");
        req["stream"] = json!(true);
        let resp = gw.handle(post("/v1/chat/completions", req)).await;
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        let (_, text) = body_of(resp).await;
        assert!(
            text.contains("\"model\":\"gpt-4o\"") && !text.contains("2024-08-06"),
            "{text}"
        );
        assert!(text.ends_with("data: [DONE]\n\n"));
        let sent: Value = serde_json::from_slice(client.seen.lock().unwrap()[0].body()).unwrap();
        assert_eq!(
            sent["stream_options"]["include_usage"], true,
            "usage is always requested upstream"
        );
    });
}

#[test]
fn client_errors_are_400_with_a_param() {
    run(async {
        let (gw, _) = gateway(vec![]);
        let bad = http::Request::post("/v1/chat/completions")
            .header("authorization", "Bearer sk-master")
            .body(Bytes::from_static(b"{nope"))
            .unwrap();
        let (status, text) = body_of(gw.handle(bad).await).await;
        assert_eq!(status, 400);
        assert!(text.contains("invalid_request_error"));
        let (status, text) = body_of(
            gw.handle(post("/v1/chat/completions", json!({"model": "gpt-4o"})))
                .await,
        )
        .await;
        assert_eq!(status, 400);
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap()["error"]["param"],
            "messages"
        );
        let (status, text) =
            body_of(gw.handle(post("/v1/chat/completions", hello("nope"))).await).await;
        assert_eq!(status, 400);
        assert!(text.contains("model=nope"));
        let (status, _) = body_of(
            gw.handle(post("/v1/embeddings", json!({"model": "gpt-4o"})))
                .await,
        )
        .await;
        assert_eq!(status, 400);
    });
}

#[test]
fn auth_routes_and_methods() {
    run(async {
        let (gw, _) = gateway(vec![]);
        let anon = |m: &str, p: &str| {
            http::Request::builder()
                .method(m)
                .uri(p)
                .body(Bytes::new())
                .unwrap()
        };
        assert_eq!(
            gw.handle(anon("GET", "/health/liveliness")).await.status(),
            200
        );
        assert_eq!(
            gw.handle(anon("GET", "/health/readiness")).await.status(),
            200
        );
        assert_eq!(gw.handle(anon("GET", "/v1/models")).await.status(), 401);
        let authed = |m: &str, p: &str| {
            http::Request::builder()
                .method(m)
                .uri(p)
                .header("authorization", "Bearer sk-master")
                .body(Bytes::new())
                .unwrap()
        };
        let (status, text) = body_of(gw.handle(authed("GET", "/models")).await).await;
        assert_eq!(status, 200);
        assert!(text.contains("\"id\":\"claude\""));
        assert_eq!(
            gw.handle(authed("GET", "/v1/chat/completions"))
                .await
                .status(),
            405
        );
        assert_eq!(gw.handle(authed("GET", "/v1/nothing")).await.status(), 404);
        assert_eq!(
            gw.handle(authed("GET", "/v1/models/gpt-4o")).await.status(),
            200
        );
        assert_eq!(
            gw.handle(authed("GET", "/v1/models/none")).await.status(),
            400
        );
    });
}

#[test]
fn builtin_mock_answers_offline_including_per_request() {
    run(async {
        let (gw, client) = gateway(vec![]);
        let (status, text) = body_of(
            gw.handle(post("/v1/chat/completions", hello("canned")))
                .await,
        )
        .await;
        assert_eq!(status, 200);
        assert!(text.contains("canned answer"));
        let mut req = hello("gpt-4o");
        req["mock_response"] = json!("per request");
        let (_, text) = body_of(gw.handle(post("/v1/chat/completions", req)).await).await;
        assert!(text.contains("per request"));
        let mut req = hello("canned");
        req["mock_response"] = json!("litellm.RateLimitError");
        assert_eq!(
            gw.handle(post("/v1/chat/completions", req)).await.status(),
            429
        );
        assert!(
            client.seen.lock().unwrap().is_empty(),
            "no network call was made"
        );
    });
}

#[test]
fn provider_not_translated_yet_is_a_clear_501() {
    run(async {
        let (gw, _) = gateway(vec![]);
        let (status, text) = body_of(
            gw.handle(post("/v1/chat/completions", hello("later")))
                .await,
        )
        .await;
        assert_eq!(status, 501);
        assert!(text.contains("palm"));
    });
}

#[test]
fn unsupported_params_for_anthropic_are_refused_unless_dropped() {
    run(async {
        let (gw, _) = gateway(vec![]);
        let mut req = hello("claude");
        req["logit_bias"] = json!({"50256": -100});
        let (status, text) =
            body_of(gw.handle(post("/v1/chat/completions", req.clone())).await).await;
        assert_eq!(status, 400);
        assert!(text.contains("logit_bias"));
        let ok = r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-3-5-sonnet-20240620","content":[{"type":"text","text":"ok"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":1}}"#;
        let (gw, client) = gateway(vec![Ok((200, vec![], vec![Ok(ok)]))]);
        req["drop_params"] = json!(true);
        let (status, text) = body_of(gw.handle(post("/v1/chat/completions", req)).await).await;
        assert_eq!(status, 200, "{text}");
        let sent: Value = serde_json::from_slice(client.seen.lock().unwrap()[0].body()).unwrap();
        assert!(sent.get("logit_bias").is_none() && sent.get("drop_params").is_none());
    });
}

/// A store that is down: every call fails.
struct DownStore;

#[async_trait::async_trait]
impl crate::store::Store for DownStore {
    async fn get(&self, _: &str) -> Result<Option<Vec<u8>>, crate::store::StoreError> {
        Err(crate::store::StoreError::Timeout)
    }
    async fn put(&self, _: &str, _: &[u8], _: Option<u64>) -> Result<(), crate::store::StoreError> {
        Err(crate::store::StoreError::Timeout)
    }
    async fn put_if_absent(
        &self,
        _: &str,
        _: &[u8],
        _: Option<u64>,
    ) -> Result<bool, crate::store::StoreError> {
        Err(crate::store::StoreError::Timeout)
    }
    async fn delete(&self, _: &str) -> Result<bool, crate::store::StoreError> {
        Err(crate::store::StoreError::Timeout)
    }
    async fn list_prefix(
        &self,
        _: &str,
        _: usize,
    ) -> Result<Vec<crate::store::Entry>, crate::store::StoreError> {
        Err(crate::store::StoreError::Timeout)
    }
    async fn counter_add(
        &self,
        _: &str,
        _: i64,
        _: Option<u64>,
    ) -> Result<i64, crate::store::StoreError> {
        Err(crate::store::StoreError::Timeout)
    }
    async fn counter_add_capped(
        &self,
        _: &str,
        _: i64,
        _: i64,
        _: Option<u64>,
    ) -> Result<crate::store::CapOutcome, crate::store::StoreError> {
        Err(crate::store::StoreError::Timeout)
    }
    async fn counter_get(&self, _: &str) -> Result<i64, crate::store::StoreError> {
        Err(crate::store::StoreError::Timeout)
    }
    async fn log_append(&self, _: &str, _: u64, _: &[u8]) -> Result<(), crate::store::StoreError> {
        Err(crate::store::StoreError::Timeout)
    }
    async fn log_range(
        &self,
        _: &str,
        _: u64,
        _: u64,
        _: usize,
    ) -> Result<Vec<crate::store::LogEntry>, crate::store::StoreError> {
        Err(crate::store::StoreError::Timeout)
    }
    async fn batch(
        &self,
        _: &[crate::store::BatchOp],
    ) -> Result<crate::store::BatchOutcome, crate::store::StoreError> {
        Err(crate::store::StoreError::Timeout)
    }
    async fn lease_count(&self, _: &str) -> Result<i64, crate::store::StoreError> {
        Err(crate::store::StoreError::Timeout)
    }
}

#[test]
fn readiness_reports_the_store() {
    run(async {
        let (gw, _) = gateway(vec![]);
        let ready = || {
            http::Request::get("/health/readiness")
                .body(Bytes::new())
                .unwrap()
        };
        let (status, text) = body_of(gw.handle(ready()).await).await;
        assert_eq!(status, 200);
        assert!(text.contains("\"db\":\"connected\""), "{text}");
        let config = Config::from_yaml(CONFIG, &|_| None).unwrap();
        let down = Gateway::new(
            config,
            ports(
                Arc::new(ScriptedClient::default()),
                Arc::new(FixedClock),
                Arc::new(DownStore),
                Arc::new(HeldTasks::default()),
            ),
        );
        let (status, text) = body_of(down.handle(ready()).await).await;
        assert_eq!(status, 503);
        assert!(text.contains("timed out"), "{text}");
        // Liveliness does not depend on the store.
        let live = down
            .handle(
                http::Request::get("/health/liveliness")
                    .body(Bytes::new())
                    .unwrap(),
            )
            .await;
        assert_eq!(live.status(), 200);
    });
}

#[test]
fn answers_carry_litellm_correlation_headers() {
    run(async {
        let (gw, _) = gateway(vec![Ok((200, vec![], vec![Ok(OPENAI_OK)]))]);
        let resp = gw
            .handle(post("/v1/chat/completions", hello("gpt-4o")))
            .await;
        let h = resp.headers();
        assert_eq!(h["x-litellm-model-group"], "gpt-4o");
        assert_eq!(h["x-litellm-model-api-base"], "http://up.test/v1");
        assert_eq!(h["x-litellm-model-id"].len(), 32, "hash-derived id");
        let call_id = h["x-litellm-call-id"].to_str().unwrap();
        assert_eq!(call_id.len(), 36);
        assert_eq!(call_id.matches('-').count(), 4);
        assert!(h["x-litellm-response-duration-ms"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .is_ok());
        // Errors carry the call id too, but name no deployment.
        let resp = gw.handle(post("/v1/chat/completions", hello("nope"))).await;
        assert!(resp.headers().contains_key("x-litellm-call-id"));
        assert!(!resp.headers().contains_key("x-litellm-model-id"));
        // The default base is reported when api_base is not set; a mock has none.
        let resp = gw
            .handle(post("/v1/chat/completions", hello("canned")))
            .await;
        assert!(!resp.headers().contains_key("x-litellm-model-api-base"));
        assert_eq!(resp.headers()["x-litellm-model-group"], "canned");
    });
}

#[test]
fn health_probes_every_deployment() {
    run(async {
        let err = r#"{"error":{"message":"upstream broke","type":"server_error","param":null,"code":null}}"#;
        let (gw, client) = gateway(vec![
            Ok((200, vec![], vec![Ok(OPENAI_OK)])),
            Ok((500, vec![], vec![Ok(err)])),
            Ok((200, vec![], vec![Ok("{}")])),
        ]);
        let anon = http::Request::get("/health").body(Bytes::new()).unwrap();
        assert_eq!(
            gw.handle(anon).await.status(),
            401,
            "/health needs the master key"
        );
        let req = http::Request::get("/health")
            .header("authorization", "Bearer sk-master")
            .body(Bytes::new())
            .unwrap();
        let (status, text) = body_of(gw.handle(req).await).await;
        assert_eq!(status, 200);
        let v: Value = serde_json::from_str(&text).unwrap();
        let names = |k: &str| -> Vec<String> {
            v[k].as_array()
                .unwrap()
                .iter()
                .map(|e| e["model"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(names("healthy_endpoints"), ["gpt-4o", "claude", "canned"]);
        assert_eq!(names("unhealthy_endpoints"), ["defaulted", "later"]);
        assert_eq!(v["healthy_count"], 3);
        assert_eq!(v["unhealthy_count"], 2);
        assert_eq!(v["status"], "unhealthy");
        assert!(v["uptime"].as_str().unwrap().ends_with('s'));
        assert!(v["healthy_endpoints"][0]["latency_ms"].is_u64());
        assert_eq!(
            v["unhealthy_endpoints"][0]["error"], "upstream broke",
            "the provider's message"
        );
        assert!(
            !text.contains("sk-up") && !text.contains("sk-ant"),
            "no keys in the report: {text}"
        );
        // The probe is minimal: one token.
        let sent: Value = serde_json::from_slice(client.seen.lock().unwrap()[0].body()).unwrap();
        assert_eq!(sent["max_tokens"], 1);
    });
}

/// A clock that records every sleep instead of waiting.
#[derive(Default)]
pub(crate) struct SleepLog(Mutex<Vec<u64>>);

#[async_trait::async_trait]
impl Clock for SleepLog {
    fn now_ms(&self) -> u64 {
        1_700_000_000_000
    }
    async fn sleep(&self, ms: u64) {
        self.0.lock().unwrap().push(ms);
    }
}

fn retrying_gateway(answers: Vec<Scripted>) -> (Gateway, Arc<ScriptedClient>, Arc<SleepLog>) {
    let yaml = format!("{CONFIG}router_settings:\n  num_retries: 2\n");
    let client = ScriptedClient::new(answers);
    let clock = Arc::new(SleepLog::default());
    let gw = gateway_on(&yaml, client.clone(), clock.clone());
    (gw, client, clock)
}

pub(crate) const OVERLOADED: &str =
    r#"{"error":{"message":"overloaded","type":"server_error","param":null,"code":null}}"#;

#[test]
fn transient_failures_are_retried_until_success() {
    run(async {
        let (gw, client, sleeps) = retrying_gateway(vec![
            Ok((503, vec![], vec![Ok(OVERLOADED)])),
            Ok((429, vec![("retry-after", "2")], vec![Ok(OVERLOADED)])),
            Ok((200, vec![], vec![Ok(OPENAI_OK)])),
        ]);
        let resp = gw
            .handle(post("/v1/chat/completions", hello("gpt-4o")))
            .await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["x-litellm-attempted-retries"], "2");
        assert_eq!(
            client.seen.lock().unwrap().len(),
            3,
            "one call and two retries"
        );
        let waits = sleeps.0.lock().unwrap().clone();
        assert_eq!(waits.len(), 2);
        assert!(
            (250..=500).contains(&waits[0]),
            "first backoff with jitter: {}",
            waits[0]
        );
        assert_eq!(waits[1], 2_000, "retry-after honoured");
    });
}

#[test]
fn retries_run_out_and_final_errors_are_not_retried() {
    run(async {
        let (gw, client, _) = retrying_gateway(vec![
            Ok((503, vec![], vec![Ok(OVERLOADED)])),
            Ok((503, vec![], vec![Ok(OVERLOADED)])),
            Ok((503, vec![], vec![Ok(OVERLOADED)])),
        ]);
        let resp = gw
            .handle(post("/v1/chat/completions", hello("gpt-4o")))
            .await;
        assert_eq!(resp.status(), 503, "the last error, with its status");
        assert_eq!(client.seen.lock().unwrap().len(), 3);
        let key_error = r#"{"error":{"message":"bad key","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#;
        let (gw, client, _) = retrying_gateway(vec![Ok((401, vec![], vec![Ok(key_error)]))]);
        assert_eq!(
            gw.handle(post("/v1/chat/completions", hello("gpt-4o")))
                .await
                .status(),
            401
        );
        assert_eq!(client.seen.lock().unwrap().len(), 1, "a 401 is not retried");
    });
}

#[test]
fn no_retries_by_default() {
    run(async {
        let (gw, client) = gateway(vec![Ok((503, vec![], vec![Ok(OVERLOADED)]))]);
        assert_eq!(
            gw.handle(post("/v1/chat/completions", hello("gpt-4o")))
                .await
                .status(),
            503
        );
        assert_eq!(client.seen.lock().unwrap().len(), 1);
    });
}

#[test]
fn context_window_errors_use_their_own_fallbacks() {
    run(async {
        let yaml = format!(
            "{CONFIG}router_settings:\n  context_window_fallbacks:\n    - gpt-4o: [canned]\n"
        );
        let client = ScriptedClient::new(vec![Ok((
            400,
            vec![],
            vec![Ok(
                r#"{"error":{"message":"too long","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#,
            )],
        ))]);
        let gw = gateway_on(&yaml, client, Arc::new(FixedClock));
        let resp = gw
            .handle(post("/v1/chat/completions", hello("gpt-4o")))
            .await;
        assert_eq!(resp.headers()["x-litellm-attempted-fallbacks"], "1");
        let (status, text) = body_of(resp).await;
        assert_eq!(status, 200);
        assert!(text.contains("canned answer"), "{text}");
        // A plain bad request is not sent elsewhere.
        let (gw, _) = gateway(vec![Ok((400, vec![], vec![Ok(OVERLOADED)]))]);
        assert_eq!(
            gw.handle(post("/v1/chat/completions", hello("gpt-4o")))
                .await
                .status(),
            400
        );
    });
}

/// A gateway on `yaml` with the in-memory store at a fixed time, for admin route tests.
pub(crate) fn admin_gateway(yaml: &str) -> Gateway {
    gateway_on(yaml, ScriptedClient::new(vec![]), Arc::new(FixedClock))
}

/// One request with `key` as its bearer; the status and the JSON body (`Value::Null` when the
/// body is not JSON).
pub(crate) fn call(
    gw: &Gateway,
    method: &str,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {key}"))
        .body(body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string())))
        .unwrap();
    let (status, text) = run(async { body_of(gw.handle(req).await).await });
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}
