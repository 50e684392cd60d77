//! `/v1/images/generations` through the whole pipeline: validation, each provider's request,
//! answers, retries and fallbacks, with a scripted in-memory upstream.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{json, Value};

use super::tests::{body_of, gateway_on, post, run, ScriptedClient, SleepLog};
use super::*;

const CONFIG: &str = r#"
model_list:
  - model_name: dall-e
    litellm_params: {model: openai/dall-e-3, api_key: sk-up, api_base: "http://up.test/v1"}
  - model_name: az-image
    litellm_params: {model: azure/my-dalle, api_key: az-key, api_base: "https://res.openai.azure.com", api_version: "2024-10-21"}
  - model_name: sd
    litellm_params: {model: stability/sd3.5-large, api_key: sk-st, api_base: "http://st.test"}
  - model_name: chat-only
    litellm_params: {model: groq/llama3, api_key: k}
  - model_name: flaky
    litellm_params: {model: openai/dall-e-2, api_key: sk-up, api_base: "http://up.test/v1"}
router_settings:
  num_retries: 1
  fallbacks:
    - flaky: [sd]
general_settings:
  master_key: sk-master
"#;

const OPENAI_IMAGES: &str = r#"{"created":1700000001,"data":[{"b64_json":"iVBORw0KGgo=","revised_prompt":"a fox, painted"}]}"#;
const STABILITY_IMAGE: &str = r#"{"image":"iVBORw0KGgo=","finish_reason":"SUCCESS","seed":9}"#;
const OVERLOADED: &str = r#"{"error":{"message":"overloaded","type":"server_error"}}"#;

fn gateway(answers: Vec<(u16, &'static str)>) -> (Gateway, Arc<ScriptedClient>) {
    let up = ScriptedClient::new(
        answers
            .into_iter()
            .map(|(status, body)| Ok((status, vec![], vec![Ok(body)])))
            .collect(),
    );
    let gw = gateway_on(CONFIG, up.clone(), Arc::new(SleepLog::default()));
    (gw, up)
}

fn draw(model: &str) -> Value {
    json!({"model": model, "prompt": "a red fox", "size": "1024x1024"})
}

#[test]
fn openai_images_are_forwarded_with_the_upstream_model() {
    run(async {
        let (gw, up) = gateway(vec![(200, OPENAI_IMAGES)]);
        let resp = gw
            .handle(post("/v1/images/generations", draw("dall-e")))
            .await;
        assert_eq!(resp.headers()["x-litellm-model-group"], "dall-e");
        let (status, text) = body_of(resp).await;
        assert_eq!(status, 200, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["created"], 1700000001);
        assert_eq!(v["data"][0]["b64_json"], "iVBORw0KGgo=");
        assert_eq!(v["data"][0]["revised_prompt"], "a fox, painted");
        let seen = up.seen.lock().unwrap();
        assert_eq!(seen[0].uri(), "http://up.test/v1/images/generations");
        assert_eq!(seen[0].headers()["authorization"], "Bearer sk-up");
        let sent: Value = serde_json::from_slice(seen[0].body()).unwrap();
        assert_eq!(sent["model"], "dall-e-3");
        assert_eq!(sent["size"], "1024x1024");
    });
}

#[test]
fn the_unversioned_path_works_too() {
    run(async {
        let (gw, _) = gateway(vec![(200, OPENAI_IMAGES)]);
        let resp = gw.handle(post("/images/generations", draw("dall-e"))).await;
        assert_eq!(resp.status(), 200);
    });
}

#[test]
fn azure_images_go_to_the_deployment_path() {
    run(async {
        let (gw, up) = gateway(vec![(200, OPENAI_IMAGES)]);
        let resp = gw
            .handle(post("/v1/images/generations", draw("az-image")))
            .await;
        assert_eq!(resp.status(), 200);
        let seen = up.seen.lock().unwrap();
        assert_eq!(
            seen[0].uri(),
            "https://res.openai.azure.com/openai/deployments/my-dalle/images/generations?api-version=2024-10-21"
        );
        assert_eq!(seen[0].headers()["api-key"], "az-key");
    });
}

#[test]
fn stability_answers_become_openai_images_with_a_created_time() {
    run(async {
        let (gw, up) = gateway(vec![(200, STABILITY_IMAGE)]);
        let (status, text) =
            body_of(gw.handle(post("/v1/images/generations", draw("sd"))).await).await;
        assert_eq!(status, 200, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["data"][0]["b64_json"], "iVBORw0KGgo=");
        assert_eq!(v["created"], 1_700_000_000u64, "filled from the clock");
        let seen = up.seen.lock().unwrap();
        assert_eq!(
            seen[0].uri(),
            "http://st.test/v2beta/stable-image/generate/sd3"
        );
        let body = String::from_utf8(seen[0].body().to_vec()).unwrap();
        assert!(
            body.contains("name=\"aspect_ratio\"\r\n\r\n1:1\r\n"),
            "{body}"
        );
    });
}

#[test]
fn bad_requests_are_400_with_their_param_and_never_sent() {
    run(async {
        let (gw, up) = gateway(vec![]);
        for (body, param) in [
            (json!({"model": "dall-e"}), "prompt"),
            (json!({"prompt": "x"}), "model"),
            (json!({"model": "dall-e", "prompt": "x", "n": "two"}), "n"),
            (json!({"model": "dall-e", "prompt": "x", "size": 5}), "size"),
            (
                json!({"model": "dall-e", "prompt": "x", "response_format": "gif"}),
                "response_format",
            ),
            (
                json!({"model": "dall-e", "prompt": "x", "quality": 1}),
                "quality",
            ),
            (
                json!({"model": "dall-e", "prompt": "x", "style": "pop"}),
                "style",
            ),
            (
                json!({"model": "sd", "prompt": "x", "style": "vivid"}),
                "style",
            ),
        ] {
            let (status, text) = body_of(
                gw.handle(post("/v1/images/generations", body.clone()))
                    .await,
            )
            .await;
            assert_eq!(status, 400, "{body}: {text}");
            let v: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(v["error"]["param"], param, "{body}");
        }
        assert!(up.seen.lock().unwrap().is_empty());
    });
}

#[test]
fn providers_without_images_refuse_clearly() {
    run(async {
        let (gw, _) = gateway(vec![]);
        let (status, text) = body_of(
            gw.handle(post("/v1/images/generations", draw("chat-only")))
                .await,
        )
        .await;
        assert_eq!(status, 400);
        assert!(text.contains("does not support image generation"), "{text}");
        let (status, _) = body_of(
            gw.handle(post("/v1/images/generations", draw("nope")))
                .await,
        )
        .await;
        assert_eq!(status, 400, "unknown model group");
        let get = http::Request::get("/v1/images/generations")
            .header("authorization", "Bearer sk-master")
            .body(Bytes::new())
            .unwrap();
        assert_eq!(gw.handle(get).await.status(), 405);
    });
}

#[test]
fn failures_are_retried_then_fall_back() {
    run(async {
        // flaky: first try and its retry fail; the fallback group (Stability) answers.
        let (gw, up) = gateway(vec![
            (503, OVERLOADED),
            (503, OVERLOADED),
            (200, STABILITY_IMAGE),
        ]);
        let resp = gw
            .handle(post("/v1/images/generations", draw("flaky")))
            .await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["x-litellm-attempted-fallbacks"], "1");
        assert_eq!(resp.headers()["x-litellm-model-group"], "sd");
        assert_eq!(up.seen.lock().unwrap().len(), 3);
    });
}

#[test]
fn upstream_errors_keep_their_status_and_garbage_is_502() {
    run(async {
        let (gw, _) = gateway(vec![(
            400,
            r#"{"id":"e1","name":"bad_request","errors":["prompt: too long"]}"#,
        )]);
        let (status, text) =
            body_of(gw.handle(post("/v1/images/generations", draw("sd"))).await).await;
        assert_eq!(status, 400);
        assert!(text.contains("prompt: too long"), "{text}");
        let (gw, _) = gateway(vec![(200, r#"{"nothing":true}"#)]);
        let (status, _) = body_of(
            gw.handle(post("/v1/images/generations", draw("dall-e")))
                .await,
        )
        .await;
        assert_eq!(status, 502);
    });
}
