//! Tollgate's Bedrock provider against this mock, in-process: the gateway's SigV4 signature
//! must pass the mock's independent verifier, its Converse body the mock's validation, and
//! the mock's event stream must read back through the gateway's translator. (The e2e suite
//! does the same over real sockets.)

use bytes::Bytes;
use serde_json::{json, Value};
use tollgate_core::openai::ChatRequest;
use tollgate_core::ports::{BodyStream, Clock, HttpClient, TransportError};
use tollgate_core::providers::bedrock::Bedrock;
use tollgate_core::providers::{ProviderApi, SendContext};

use crate::bedrock::{stream_events, validate_converse};
use crate::logic::{Finish, Reply};
use crate::sigv4::{verify, TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY};

struct FixedClock;

#[async_trait::async_trait]
impl Clock for FixedClock {
    fn now_ms(&self) -> u64 {
        1_735_689_600_000
    }
    async fn sleep(&self, _ms: u64) {}
}

struct NoHttp;

#[async_trait::async_trait]
impl HttpClient for NoHttp {
    async fn send(
        &self,
        _request: hyper::Request<Bytes>,
        _timeout_ms: u64,
    ) -> Result<hyper::Response<BodyStream>, TransportError> {
        Err(TransportError::Connect("offline".into()))
    }
}

fn deployment(model: &str) -> tollgate_core::config::Deployment {
    let yaml = format!(
        "model_list:\n  - model_name: c\n    litellm_params: {{model: 'bedrock/{model}', aws_access_key_id: {TEST_ACCESS_KEY_ID}, aws_secret_access_key: '{TEST_SECRET_ACCESS_KEY}', aws_session_token: tok, aws_region_name: eu-west-3, api_base: 'http://127.0.0.1:4010'}}\n"
    );
    let cfg = tollgate_core::Config::from_yaml(&yaml, &|_| None).unwrap();
    (*cfg.deployments[0]).clone()
}

fn chat(v: Value) -> ChatRequest {
    serde_json::from_value(v).unwrap()
}

#[test]
fn gateway_signatures_pass_the_mock_verifier() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for model in [
        "anthropic.claude-3-haiku-20240307-v1:0",
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-haiku-20240307-v1:0",
    ] {
        let d = deployment(model);
        let req = chat(json!({"model": "c", "stream": true, "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi there"}
        ], "tools": [{"type": "function", "function": {"name": "get_weather"}}]}));
        let request = Bedrock.chat_request(&req, &d).unwrap();
        let ctx = SendContext {
            clock: &FixedClock,
            http: &NoHttp,
        };
        let signed = rt.block_on(Bedrock.authorize(request, &d, &ctx)).unwrap();
        // The HTTP client adds Host from the URL.
        let mut headers = signed.headers().clone();
        headers.insert("host", "127.0.0.1:4010".parse().unwrap());
        let (path, body) = (signed.uri().path(), signed.body());
        assert_eq!(verify("POST", path, "", &headers, body), Ok(()), "{model}");
        validate_converse(&serde_json::from_slice(body).unwrap()).unwrap();
        // Any change after signing is caught.
        let mut tampered = body.to_vec();
        tampered.push(b' ');
        assert!(verify("POST", path, "", &headers, &tampered).is_err());
    }
}

#[test]
fn mock_streams_read_back_through_the_gateway() {
    let d = deployment("anthropic.claude-3-haiku-20240307-v1:0");
    let req = chat(
        json!({"model": "c", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
    );
    let s = stream_events(&Reply::Text("mock reply to: hi".into()), &Finish::Stop, 2);
    let bytes: Vec<u8> = s.events.iter().flat_map(|b| b.to_vec()).collect();
    let mut t = Bedrock.chat_stream(&req, &d);
    let mut out = Vec::new();
    // Fed in 7-byte pieces, as a network might deliver it.
    for piece in bytes.chunks(7) {
        t.feed(piece, &mut out).unwrap();
    }
    t.finish(&mut out).unwrap();
    let text: String = out
        .iter()
        .filter_map(|c| c.choices.first()?.delta.content.clone())
        .collect();
    assert_eq!(text, "mock reply to: hi");
    let u = t.usage().unwrap();
    assert_eq!((u.prompt_tokens, u.completion_tokens), (2, 4));
}
