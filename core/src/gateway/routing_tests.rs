//! The router inside the pipeline: strategy picks, re-picks on retry, cooldowns written and
//! obeyed, timeouts, pre-call checks and the bookkeeping of streams (also when the client
//! leaves). Upstreams are told apart by host, each with a fixed behaviour.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{json, Value};

use super::tests::{
    body_of, figures, gateway_on, hello, ports, post, run, FixedClock, HeldTasks, OPENAI_OK,
    OVERLOADED,
};
use super::*;
use crate::config::Config;
use crate::ports::{BodyStream, HttpClient, TransportError};
use crate::router::state::{self, Figures};
use crate::store::memory::MemoryStore;

/// How the upstream at one host behaves.
#[derive(Clone, Copy)]
enum Behaviour {
    Ok,
    Status(u16),
    /// Never sends response headers.
    Hang,
    /// Sends headers, then never a byte of the stream.
    SilentStream,
    /// A two-chunk stream without its end, then nothing (the client leaves before).
    EndlessStream,
}

#[derive(Default)]
struct Hosts {
    behaviour: HashMap<&'static str, Behaviour>,
    calls: Mutex<Vec<String>>,
}

impl Hosts {
    fn new(pairs: &[(&'static str, Behaviour)]) -> Arc<Self> {
        Arc::new(Hosts {
            behaviour: pairs.iter().copied().collect(),
            calls: Mutex::default(),
        })
    }

    fn calls_to(&self, host: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|h| *h == host)
            .count()
    }
}

const STREAM_START: &str =
    "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n";

#[async_trait::async_trait]
impl HttpClient for Hosts {
    async fn send(
        &self,
        request: http::Request<Bytes>,
        _timeout_ms: u64,
    ) -> Result<http::Response<BodyStream>, TransportError> {
        let host = request.uri().host().unwrap_or_default().to_string();
        self.calls.lock().unwrap().push(host.clone());
        let behaviour = self.behaviour[host.as_str()];
        let body: BodyStream = match behaviour {
            Behaviour::Hang => std::future::pending().await,
            Behaviour::Ok => Box::pin(futures_util::stream::iter([Ok(Bytes::from_static(
                OPENAI_OK.as_bytes(),
            ))])),
            Behaviour::Status(_) => Box::pin(futures_util::stream::iter([Ok(Bytes::from_static(
                OVERLOADED.as_bytes(),
            ))])),
            Behaviour::SilentStream => Box::pin(futures_util::stream::pending()),
            Behaviour::EndlessStream => Box::pin(
                futures_util::stream::iter([Ok(Bytes::from_static(STREAM_START.as_bytes()))])
                    .chain(futures_util::stream::pending()),
            ),
        };
        let status = match behaviour {
            Behaviour::Status(s) => s,
            _ => 200,
        };
        Ok(http::Response::builder().status(status).body(body).unwrap())
    }
}

struct Setup {
    gw: Gateway,
    hosts: Arc<Hosts>,
    store: Arc<MemoryStore>,
    tasks: Arc<HeldTasks>,
}

/// Group `g` has one deployment per host (`model_info.id` = the host); `extra` is appended.
fn setup(hosts: &[(&'static str, Behaviour)], extra: &str) -> Setup {
    let mut yaml = String::from("model_list:\n");
    for (host, _) in hosts {
        yaml.push_str(&format!(
            "  - model_name: g\n    litellm_params: {{model: openai/m, api_key: k, api_base: \"http://{host}/v1\"}}\n    model_info: {{id: {host}}}\n"
        ));
    }
    yaml.push_str(extra);
    let client = Hosts::new(hosts);
    let store = Arc::new(MemoryStore::new(Arc::new(FixedClock)));
    let tasks = Arc::new(HeldTasks::default());
    let gw = Gateway::new(
        Config::from_yaml(&yaml, &|_| None).unwrap(),
        ports(
            client.clone(),
            Arc::new(FixedClock),
            store.clone(),
            tasks.clone(),
        ),
    );
    Setup {
        gw,
        hosts: client,
        store,
        tasks,
    }
}

fn chat(s: &Setup, body: Value) -> GatewayResponse {
    run(s.gw.handle(post("/v1/chat/completions", body)))
}

#[test]
fn weights_split_traffic_nine_to_one() {
    let yaml = "model_list:
  - model_name: g
    litellm_params: {model: openai/m, api_key: k, api_base: \"http://a/v1\", weight: 9}
  - model_name: g
    litellm_params: {model: openai/m, api_key: k, api_base: \"http://b/v1\", weight: 1}
";
    let client = Hosts::new(&[("a", Behaviour::Ok), ("b", Behaviour::Ok)]);
    let gw = gateway_on(yaml, client.clone(), Arc::new(FixedClock));
    for _ in 0..1000 {
        let resp = run(gw.handle(post("/v1/chat/completions", hello("g"))));
        assert_eq!(resp.status(), 200);
    }
    let a = client.calls_to("a");
    assert!((850..=950).contains(&a), "a got {a} of 1000");
}

#[test]
fn a_retry_goes_to_another_deployment() {
    let s = setup(
        &[("bad", Behaviour::Status(500)), ("good", Behaviour::Ok)],
        "router_settings:\n  num_retries: 1\n",
    );
    for _ in 0..20 {
        let resp = chat(&s, hello("g"));
        assert_eq!(resp.status(), 200);
    }
    // Whenever "bad" was picked first, the retry went to "good": no request failed, and
    // "bad" was never asked twice for one request.
    assert_eq!(s.hosts.calls_to("good"), 20);
}

#[test]
fn a_rate_limited_deployment_cools_down_at_once_and_gets_no_traffic() {
    let s = setup(
        &[("limited", Behaviour::Status(429)), ("good", Behaviour::Ok)],
        "router_settings:\n  num_retries: 1\n  cooldown_time: 60\n",
    );
    for _ in 0..30 {
        assert_eq!(chat(&s, hello("g")).status(), 200);
    }
    assert_eq!(
        s.hosts.calls_to("limited"),
        1,
        "after its first 429 the deployment is benched"
    );
    assert!(run(state::is_cooling_down(s.store.as_ref(), "limited")).unwrap());
}

#[test]
fn server_errors_cool_down_after_allowed_fails() {
    let s = setup(
        &[("flaky", Behaviour::Status(503)), ("good", Behaviour::Ok)],
        "router_settings:\n  num_retries: 1\n  allowed_fails: 2\n  cooldown_time: 60\n",
    );
    for _ in 0..40 {
        assert_eq!(chat(&s, hello("g")).status(), 200);
    }
    assert_eq!(
        s.hosts.calls_to("flaky"),
        3,
        "allowed 2 fails, benched on the 3rd"
    );
}

#[test]
fn a_group_of_one_is_never_cooled_down() {
    let s = setup(&[("only", Behaviour::Status(429))], "");
    for _ in 0..3 {
        assert_eq!(chat(&s, hello("g")).status(), 429);
    }
    assert_eq!(s.hosts.calls_to("only"), 3);
    assert!(!run(state::is_cooling_down(s.store.as_ref(), "only")).unwrap());
}

#[test]
fn a_request_error_does_not_cool_the_deployment() {
    let s = setup(
        &[("a", Behaviour::Status(400)), ("b", Behaviour::Status(400))],
        "",
    );
    assert_eq!(chat(&s, hello("g")).status(), 400);
    for id in ["a", "b"] {
        assert!(!run(state::is_cooling_down(s.store.as_ref(), id)).unwrap());
    }
}

#[test]
fn a_hanging_deployment_times_out_and_is_benched() {
    let s = setup(
        &[("hang", Behaviour::Hang), ("ok", Behaviour::Ok)],
        "router_settings:\n  num_retries: 0\n",
    );
    // Both hosts are in group g; a timed-out call is a failure like any other: with
    // num_retries 0 a request that picked "hang" gets a 408.
    let statuses: Vec<u16> = (0..20)
        .map(|_| chat(&s, hello("g")).status().as_u16())
        .collect();
    assert!(statuses.contains(&408), "{statuses:?}");
    assert!(statuses.contains(&200), "{statuses:?}");
    assert!(
        run(state::is_cooling_down(s.store.as_ref(), "hang")).unwrap(),
        "a timeout benches the deployment at once"
    );
}

#[test]
fn timeouts_fall_back_to_another_group() {
    let yaml = "model_list:
  - model_name: slow
    litellm_params: {model: openai/m, api_key: k, api_base: \"http://hang/v1\", timeout: 2}
  - model_name: backup
    litellm_params: {model: openai/m, api_key: k, api_base: \"http://ok/v1\"}
router_settings:
  fallbacks: [{slow: [backup]}]
";
    let client = Hosts::new(&[("hang", Behaviour::Hang), ("ok", Behaviour::Ok)]);
    let gw = gateway_on(yaml, client.clone(), Arc::new(FixedClock));
    let resp = run(gw.handle(post("/v1/chat/completions", hello("slow"))));
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-litellm-attempted-fallbacks"], "1");
    assert_eq!(client.calls_to("hang"), 1);
}

#[test]
fn a_stream_that_never_starts_is_retried_before_the_client_sees_a_byte() {
    let s = setup(
        &[
            ("silent", Behaviour::SilentStream),
            ("good", Behaviour::EndlessStream),
        ],
        "router_settings:\n  num_retries: 1\n  stream_timeout: 1\n",
    );
    for _ in 0..10 {
        let mut body = hello("g");
        body["stream"] = json!(true);
        let resp = chat(&s, body);
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["x-litellm-model-id"], "good");
    }
}

#[test]
fn least_busy_counts_streams_in_flight_until_they_end_or_are_dropped() {
    let s = setup(
        &[
            ("a", Behaviour::EndlessStream),
            ("b", Behaviour::EndlessStream),
        ],
        "router_settings:\n  routing_strategy: least-busy\n",
    );
    let in_flight = |id: &'static str| {
        let cfg = s.gw.config();
        let d = cfg.deployments.iter().find(|d| d.id == id).unwrap();
        run(state::load_candidates(
            s.store.as_ref(),
            &[(0, d.as_ref())],
            0,
            Figures::ALL,
        ))
        .unwrap()[0]
            .in_flight
    };
    let mut body = hello("g");
    body["stream"] = json!(true);
    let first = chat(&s, body.clone());
    let second = chat(&s, body.clone());
    let ids: Vec<String> = [&first, &second]
        .iter()
        .map(|r| {
            r.headers()["x-litellm-model-id"]
                .to_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_ne!(ids[0], ids[1], "the busy one is avoided: {ids:?}");
    assert_eq!((in_flight("a"), in_flight("b")), (1, 1));
    // The client leaves: the bookkeeping is handed to the spawner and settles once run.
    drop(first);
    assert_eq!(s.tasks.run_all(), 1);
    drop(second);
    assert_eq!(s.tasks.run_all(), 1);
    assert_eq!((in_flight("a"), in_flight("b")), (0, 0));
}

#[test]
fn a_full_answer_settles_after_its_response() {
    let s = setup(
        &[("a", Behaviour::Ok), ("b", Behaviour::Ok)],
        "router_settings:\n  routing_strategy: usage-based-routing\n",
    );
    // A non-streamed answer settles after its response: its tokens count against tpm.
    assert_eq!(chat(&s, hello("g")).status(), 200);
    assert_eq!(
        s.tasks.run_all(),
        1,
        "the ledger's work, after the response"
    );
    let c = figures(&s.gw, s.store.as_ref(), 1_700_000_000_000);
    let tokens: i64 = c.iter().map(|c| c.minute_tokens).sum();
    let requests: i64 = c.iter().map(|c| c.minute_requests).sum();
    assert_eq!(
        (tokens, requests),
        (5, 1),
        "usage of OPENAI_OK, one request"
    );
}

#[test]
fn pre_call_checks_skip_deployments_too_small_for_the_prompt() {
    let yaml = "model_list:
  - model_name: g
    litellm_params: {model: openai/m, api_key: k, api_base: \"http://small/v1\"}
    model_info: {max_input_tokens: 10}
  - model_name: g
    litellm_params: {model: openai/m, api_key: k, api_base: \"http://large/v1\"}
    model_info: {max_input_tokens: 100000}
  - model_name: tiny
    litellm_params: {model: openai/m, api_key: k, api_base: \"http://small/v1\"}
    model_info: {max_input_tokens: 10}
  - model_name: big
    litellm_params: {model: openai/m, api_key: k, api_base: \"http://large/v1\"}
router_settings:
  enable_pre_call_checks: true
  context_window_fallbacks: [{tiny: [big]}]
";
    let client = Hosts::new(&[("small", Behaviour::Ok), ("large", Behaviour::Ok)]);
    let gw = gateway_on(yaml, client.clone(), Arc::new(FixedClock));
    let long =
        json!({"model": "g", "messages": [{"role": "user", "content": "word ".repeat(100)}]});
    for _ in 0..10 {
        assert_eq!(
            run(gw.handle(post("/v1/chat/completions", long.clone()))).status(),
            200
        );
    }
    assert_eq!(client.calls_to("small"), 0);
    assert_eq!(client.calls_to("large"), 10);
    // No deployment of `tiny` fits: a context-window error, so its fallbacks apply.
    let mut to_tiny = long.clone();
    to_tiny["model"] = json!("tiny");
    let resp = run(gw.handle(post("/v1/chat/completions", to_tiny)));
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-litellm-model-group"], "big");
    // A short prompt still goes to the small deployment's group.
    let resp = run(gw.handle(post("/v1/chat/completions", hello("tiny"))));
    assert_eq!(resp.headers()["x-litellm-model-group"], "tiny");
}

#[test]
fn no_deployment_within_limits_is_a_429() {
    let yaml = "model_list:
  - model_name: g
    litellm_params: {model: openai/m, api_key: k, api_base: \"http://a/v1\", rpm: 1}
  - model_name: g
    litellm_params: {model: openai/m, api_key: k, api_base: \"http://b/v1\", rpm: 1}
router_settings:
  routing_strategy: usage-based-routing-v2
";
    let client = Hosts::new(&[("a", Behaviour::Ok), ("b", Behaviour::Ok)]);
    let gw = gateway_on(yaml, client.clone(), Arc::new(FixedClock));
    let status = |gw: &Gateway| {
        run(gw.handle(post("/v1/chat/completions", hello("g"))))
            .status()
            .as_u16()
    };
    assert_eq!((status(&gw), status(&gw)), (200, 200));
    assert_eq!((client.calls_to("a"), client.calls_to("b")), (1, 1));
    let resp = run(gw.handle(post("/v1/chat/completions", hello("g"))));
    assert_eq!(resp.status(), 429);
    let (_, text) = run(body_of(resp));
    assert!(text.contains("No deployments available"), "{text}");
}

/// Every reading is 10 ms after the last.
#[derive(Default)]
struct TickingClock(Mutex<u64>);

#[async_trait::async_trait]
impl Clock for TickingClock {
    fn now_ms(&self) -> u64 {
        let mut t = self.0.lock().unwrap();
        *t += 10;
        *t
    }
    async fn sleep(&self, _ms: u64) {}
}

#[test]
fn overhead_is_reported_apart_from_upstream_time() {
    let yaml = "model_list:\n  - model_name: g\n    litellm_params: {model: openai/m, api_key: k, api_base: \"http://a/v1\"}\n";
    let clock = Arc::new(TickingClock::default());
    let gw = gateway_on(yaml, Hosts::new(&[("a", Behaviour::Ok)]), clock);
    let resp = run(gw.handle(post("/v1/chat/completions", hello("g"))));
    let header = |name: &str| -> u64 { resp.headers()[name].to_str().unwrap().parse().unwrap() };
    let (overhead, total) = (
        header("x-litellm-overhead-duration-ms"),
        header("x-litellm-response-duration-ms"),
    );
    assert!(total > 0);
    assert!(
        overhead < total,
        "upstream time is not overhead: {overhead} vs {total}"
    );
}

#[test]
fn a_request_can_set_its_own_num_retries() {
    let s = setup(&[("down", Behaviour::Status(503))], "");
    let mut body = hello("g");
    body["num_retries"] = json!(2);
    let resp = chat(&s, body);
    assert_eq!(resp.status(), 503);
    assert_eq!(
        s.hosts.calls_to("down"),
        3,
        "one call and the two retries asked for"
    );
    let mut body = hello("g");
    body["num_retries"] = json!("lots");
    let resp = chat(&s, body);
    assert_eq!(resp.status(), 400);
    let (_, text) = run(body_of(resp));
    assert!(text.contains("\"param\":\"num_retries\""), "{text}");
}

#[test]
fn latency_routing_records_a_timeout_as_its_whole_timeout() {
    let s = setup(
        &[("hang", Behaviour::Hang), ("ok", Behaviour::Ok)],
        "router_settings:\n  routing_strategy: latency-based-routing\n  num_retries: 1\n",
    );
    // Both start without figures (tried first, at random) until "hang" has been tried.
    for _ in 0..50 {
        if s.hosts.calls_to("hang") > 0 {
            break;
        }
        assert_eq!(chat(&s, hello("g")).status(), 200, "the retry answers");
    }
    assert_eq!(s.hosts.calls_to("hang"), 1);
    let cfg = s.gw.config();
    let d = cfg.deployments.iter().find(|d| d.id == "hang").unwrap();
    let c = run(state::load_figures(
        s.store.as_ref(),
        &[(0, d.as_ref())],
        1_700_000_000_000,
        Figures::ALL,
    ))
    .unwrap();
    assert_eq!(
        c[0].latency_per_output_token,
        Some(d.timeout_ms as f64),
        "the timeout is the sample"
    );
}
