use serde_json::json;

use super::*;

fn deployment(yaml_params: &str) -> Deployment {
    crate::providers::test_support::deployment("img", yaml_params)
}

/// The form fields of a request body, in order.
fn fields(r: &http::Request<Bytes>) -> Vec<(String, String)> {
    let ct = r.headers()["content-type"].to_str().unwrap();
    let boundary = ct.split("boundary=").nth(1).unwrap();
    let body = std::str::from_utf8(r.body()).unwrap();
    body.split(&format!("--{boundary}"))
        .filter(|p| p.starts_with("\r\n"))
        .map(|part| {
            let (head, value) = part.split_once("\r\n\r\n").unwrap();
            let name = head.split("name=\"").nth(1).unwrap();
            let name = &name[..name.find('"').unwrap()];
            (name.to_string(), value.trim_end_matches("\r\n").to_string())
        })
        .collect()
}

fn field<'a>(f: &'a [(String, String)], name: &str) -> Option<&'a str> {
    f.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

#[test]
fn prefix_resolves_with_default_base_and_key_variable() {
    let (p, m) = crate::providers::ProviderId::parse("stability/sd3.5-large").unwrap();
    assert_eq!(p, crate::providers::ProviderId::Stability);
    assert_eq!(m, "sd3.5-large");
    assert_eq!(p.default_base(), Some("https://api.stability.ai"));
    assert_eq!(p.api_key_env(), Some("STABILITY_API_KEY"));
}

#[test]
fn models_pick_their_endpoint() {
    assert_eq!(endpoint("sd3.5-large"), "/v2beta/stable-image/generate/sd3");
    assert_eq!(
        endpoint("stable-image-ultra"),
        "/v2beta/stable-image/generate/ultra"
    );
    assert_eq!(
        endpoint("stable-image-core"),
        "/v2beta/stable-image/generate/core"
    );
    assert_eq!(
        endpoint("something-else"),
        "/v2beta/stable-image/generate/sd3"
    );
}

#[test]
fn request_is_a_form_with_bearer_auth_and_json_accept() {
    let d = deployment("{model: stability/sd3.5-large, api_key: sk-st}");
    let req = json!({"model": "img", "prompt": "a red fox", "size": "1792x1024", "negative_prompt": "blur", "seed": 42, "user": "u1"});
    let r = Stability.image_request(&req, &d).unwrap();
    assert_eq!(
        r.uri(),
        "https://api.stability.ai/v2beta/stable-image/generate/sd3"
    );
    assert_eq!(r.headers()["authorization"], "Bearer sk-st");
    assert_eq!(r.headers()["accept"], "application/json");
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("multipart/form-data; boundary="));
    let f = fields(&r);
    assert_eq!(field(&f, "prompt"), Some("a red fox"));
    assert_eq!(field(&f, "model"), Some("sd3.5-large"));
    assert_eq!(field(&f, "aspect_ratio"), Some("16:9"));
    assert_eq!(field(&f, "output_format"), Some("png"));
    assert_eq!(field(&f, "negative_prompt"), Some("blur"));
    assert_eq!(field(&f, "seed"), Some("42"));
    assert_eq!(
        field(&f, "user"),
        None,
        "OpenAI-only identifiers are not sent"
    );
}

#[test]
fn core_and_ultra_send_no_model_field_and_api_base_is_honoured() {
    let d = deployment(
        "{model: stability/stable-image-core, api_base: 'http://127.0.0.1:9/', api_key: k}",
    );
    let r = Stability
        .image_request(&json!({"prompt": "p", "aspect_ratio": "21:9", "size": "1024x1024", "output_format": "webp"}), &d)
        .unwrap();
    assert_eq!(
        r.uri(),
        "http://127.0.0.1:9/v2beta/stable-image/generate/core"
    );
    let f = fields(&r);
    assert_eq!(field(&f, "model"), None);
    assert_eq!(
        field(&f, "aspect_ratio"),
        Some("21:9"),
        "explicit ratio wins"
    );
    assert_eq!(field(&f, "output_format"), Some("webp"));
}

#[test]
fn sizes_map_to_the_nearest_ratio() {
    assert_eq!(nearest_aspect_ratio(1024, 1024), "1:1");
    assert_eq!(nearest_aspect_ratio(1792, 1024), "16:9");
    assert_eq!(nearest_aspect_ratio(1024, 1792), "9:16");
    assert_eq!(nearest_aspect_ratio(1536, 1024), "3:2");
    assert_eq!(nearest_aspect_ratio(1024, 1536), "2:3");
    assert_eq!(nearest_aspect_ratio(4000, 1000), "21:9");
}

#[test]
fn openai_only_fields_are_refused_unless_dropped() {
    let d = deployment("{model: stability/sd3.5-large, api_key: k}");
    for (k, v) in [
        ("n", json!(2)),
        ("quality", json!("hd")),
        ("style", json!("vivid")),
    ] {
        let mut req = json!({"prompt": "p"});
        req[k] = v;
        let e = Stability.image_request(&req, &d).unwrap_err();
        assert_eq!(e.param.as_deref(), Some(k));
        assert_eq!(e.status().as_u16(), 400);
        assert_eq!(e.code.as_deref(), Some("unsupported_params"));
    }
    Stability
        .image_request(&json!({"prompt": "p", "n": 1}), &d)
        .unwrap();
    let d = deployment("{model: stability/sd3.5-large, api_key: k, drop_params: true}");
    Stability
        .image_request(&json!({"prompt": "p", "n": 3, "quality": "hd"}), &d)
        .unwrap();
}

#[test]
fn answer_becomes_openai_images() {
    let d = deployment("{model: stability/sd3.5-large}");
    let body = br#"{"image":"iVBORw0K","finish_reason":"SUCCESS","seed":7}"#;
    let v = Stability
        .image_response(body, &json!({"prompt": "p"}), &d)
        .unwrap();
    assert_eq!(v, json!({"data": [{"b64_json": "iVBORw0K"}]}));
    let v = Stability
        .image_response(body, &json!({"prompt": "p", "response_format": "url"}), &d)
        .unwrap();
    assert_eq!(v["data"][0]["url"], "data:image/png;base64,iVBORw0K");
}

#[test]
fn filtered_or_empty_answers_are_errors() {
    let d = deployment("{model: stability/sd3.5-large}");
    let e = Stability
        .image_response(
            br#"{"image":"x","finish_reason":"CONTENT_FILTERED","seed":1}"#,
            &json!({}),
            &d,
        )
        .unwrap_err();
    assert_eq!(e.status().as_u16(), 400);
    assert_eq!(e.code.as_deref(), Some("content_policy_violation"));
    let e = Stability
        .image_response(br#"{"finish_reason":"SUCCESS"}"#, &json!({}), &d)
        .unwrap_err();
    assert_eq!(e.status().as_u16(), 502);
    let e = Stability
        .image_response(b"<html>", &json!({}), &d)
        .unwrap_err();
    assert_eq!(e.status().as_u16(), 502);
}

#[test]
fn errors_keep_status_name_and_messages() {
    let e = stability_error(
        400,
        br#"{"id":"abc","name":"bad_request","errors":["prompt: cannot be empty","seed: too big"]}"#,
    );
    assert_eq!(e.status().as_u16(), 400);
    assert_eq!(e.message, "prompt: cannot be empty; seed: too big");
    assert_eq!(e.code.as_deref(), Some("bad_request"));
    let e = stability_error(
        429,
        br#"{"id":"x","name":"rate_limit_exceeded","errors":["slow down"]}"#,
    );
    assert_eq!(e.status().as_u16(), 429);
    let e = stability_error(
        403,
        br#"{"id":"x","name":"content_moderation","errors":["flagged"]}"#,
    );
    assert_eq!(e.status().as_u16(), 400);
    assert_eq!(e.code.as_deref(), Some("content_policy_violation"));
    let e = stability_error(500, b"oops");
    assert_eq!(e.status().as_u16(), 500);
    assert!(e.message.contains("oops"));
}

#[test]
fn chat_is_refused_clearly() {
    let d = deployment("{model: stability/sd3.5-large}");
    let req: ChatRequest = serde_json::from_value(
        json!({"model": "img", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .unwrap();
    let e = Stability.chat_request(&req, &d).unwrap_err();
    assert_eq!(e.status().as_u16(), 400);
    assert!(e.message.contains("does not support chat"));
}
