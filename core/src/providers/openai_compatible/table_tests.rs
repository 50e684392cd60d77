//! Every row of the table: where its requests go, how they are authorised, and its quirks.

use std::collections::HashSet;

use serde_json::{json, Value};

use super::*;
use crate::config::Config;
use crate::providers::test_support::{self, chat};
use crate::providers::{ProviderApi, ProviderId};

fn deployment(model: &str, extra: &str) -> Deployment {
    test_support::deployment("g", &format!("{{model: {model}, api_key: sk-row{extra}}}"))
}

fn sent(r: &http::Request<Bytes>) -> Value {
    serde_json::from_slice(r.body()).unwrap()
}

#[test]
fn the_table_has_at_least_thirty_distinct_rows() {
    assert!(COMPATIBLE.len() >= 30, "{} rows", COMPATIBLE.len());
    let prefixes: HashSet<_> = COMPATIBLE.iter().map(|c| c.prefix).collect();
    assert_eq!(prefixes.len(), COMPATIBLE.len(), "a prefix appears twice");
    assert_eq!(
        COMPATIBLE[0].prefix, "openai",
        "OpenAI's row is borrowed as [0]"
    );
}

#[test]
fn every_row_sends_chat_to_its_base_with_bearer_auth() {
    for c in COMPATIBLE {
        let model = format!("{}/some-model", c.prefix);
        let (id, upstream) = ProviderId::parse(&model).unwrap();
        assert_eq!(id, ProviderId::OpenAiCompatible(c), "{}", c.prefix);
        assert_eq!(upstream, "some-model");
        assert_eq!(id.api_key_env(), Some(c.key_env));
        assert_eq!(id.default_base(), Some(c.default_base));
        assert!(
            c.default_base.starts_with("https://") || c.default_base.starts_with("http://"),
            "{}",
            c.prefix
        );
        assert!(!c.default_base.ends_with('/'), "{}", c.prefix);
        let d = deployment(&format!("{}/some-model", c.prefix), "");
        let r = OpenAiCompatible
            .chat_request(
                &chat(json!({"model": "g", "messages": [{"role": "user", "content": "hi"}]})),
                &d,
            )
            .unwrap();
        assert_eq!(
            r.uri().to_string(),
            format!("{}/chat/completions", c.default_base),
            "{}",
            c.prefix
        );
        assert_eq!(
            r.headers()["authorization"],
            "Bearer sk-row",
            "{}",
            c.prefix
        );
        assert_eq!(r.headers()["content-type"], "application/json");
        assert_eq!(sent(&r)["model"], "some-model");
    }
}

#[test]
fn key_variables_are_read_when_no_key_is_configured() {
    for c in COMPATIBLE {
        let yaml = format!(
            "model_list:\n  - model_name: g\n    litellm_params: {{model: {}/m}}\n",
            c.prefix
        );
        let lookup = |name: &str| (name == c.key_env).then(|| format!("from-{name}"));
        let cfg = Config::from_yaml(&yaml, &lookup).unwrap();
        assert_eq!(
            cfg.deployments[0]
                .params
                .api_key
                .as_ref()
                .map(|k| k.expose()),
            Some(format!("from-{}", c.key_env).as_str()),
            "{}",
            c.prefix
        );
    }
}

#[test]
fn formerly_pending_prefixes_now_translate() {
    for p in [
        "huggingface",
        "ai21",
        "nvidia_nim",
        "sambanova",
        "github",
        "nscale",
        "novita",
    ] {
        let (id, _) = ProviderId::parse(&format!("{p}/m")).unwrap();
        assert!(id.api().is_ok(), "{p}");
        assert!(matches!(id, ProviderId::OpenAiCompatible(_)), "{p}");
    }
}

#[test]
fn max_completion_tokens_is_renamed_where_only_max_tokens_is_known() {
    let req = chat(
        json!({"model": "g", "messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 64}),
    );
    for c in COMPATIBLE {
        let d = deployment(&format!("{}/m", c.prefix), "");
        let body = sent(&OpenAiCompatible.chat_request(&req, &d).unwrap());
        if c.max_tokens_only {
            assert_eq!(body["max_tokens"], 64, "{}", c.prefix);
            assert!(body.get("max_completion_tokens").is_none(), "{}", c.prefix);
        } else {
            assert_eq!(body["max_completion_tokens"], 64, "{}", c.prefix);
            assert!(body.get("max_tokens").is_none(), "{}", c.prefix);
        }
    }
    // The client's own max_tokens wins over the renamed one.
    let both = chat(
        json!({"model": "g", "messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 64, "max_tokens": 10}),
    );
    let d = deployment("sambanova/m", "");
    assert_eq!(
        sent(&OpenAiCompatible.chat_request(&both, &d).unwrap())["max_tokens"],
        10
    );
}

#[test]
fn stream_usage_is_asked_only_where_taken() {
    let req = chat(
        json!({"model": "g", "messages": [{"role": "user", "content": "hi"}], "stream": true, "stream_options": {"include_usage": false}}),
    );
    for c in COMPATIBLE {
        let d = deployment(&format!("{}/m", c.prefix), "");
        let body = sent(&OpenAiCompatible.chat_request(&req, &d).unwrap());
        if c.stream_usage {
            assert_eq!(
                body["stream_options"]["include_usage"], true,
                "{}",
                c.prefix
            );
        } else {
            assert!(body.get("stream_options").is_none(), "{}", c.prefix);
        }
    }
}

#[test]
fn refused_params_are_the_rows_own() {
    let d = deployment("sambanova/m", "");
    let refused = OpenAiCompatible.refused_chat_params(&d);
    assert!(refused.contains(&"n") && refused.contains(&"logprobs"));
    let d = deployment("groq/m", "");
    assert!(OpenAiCompatible.refused_chat_params(&d).is_empty());
    for c in COMPATIBLE {
        for p in c.refuses {
            assert!(
                !["model", "messages", "stream"].contains(p),
                "{}: {p}",
                c.prefix
            );
        }
    }
}

#[test]
fn images_go_to_rows_that_serve_them_and_are_refused_elsewhere() {
    let req = json!({"model": "g", "prompt": "a fox"});
    for c in COMPATIBLE {
        let d = deployment(&format!("{}/img-model", c.prefix), "");
        let r = OpenAiCompatible.image_request(&req, &d);
        if c.images {
            let r = r.unwrap();
            assert_eq!(
                r.uri().to_string(),
                format!("{}/images/generations", c.default_base)
            );
            assert_eq!(sent(&r)["model"], "img-model");
        } else {
            let e = r.unwrap_err();
            assert_eq!(e.status().as_u16(), 400, "{}", c.prefix);
            assert!(e.message.contains("image generation"), "{}", c.prefix);
        }
    }
}
