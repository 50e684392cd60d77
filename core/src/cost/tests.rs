//! Pricing against the shipped map: exact nano-dollar results for known models, the override
//! order, the lookup rules, and the edges (rounding, unpriced, saturation).

use std::sync::{Arc, Mutex};

use serde_json::json;

use super::*;
use crate::ledger::{EndReason, Endpoint, Ledger, Subscriber, Subscribers};
use crate::openai::usage::{CompletionTokensDetails, PromptTokensDetails, Usage};
use crate::ports::{AfterResponse, Clock, Task};

const NOW_MS: u64 = 10_000;

struct Still;

#[async_trait::async_trait]
impl Clock for Still {
    fn now_ms(&self) -> u64 {
        NOW_MS
    }
    async fn sleep(&self, _ms: u64) {}
}

struct Dropped;

impl AfterResponse for Dropped {
    fn defer(&self, _task: Task) {}
}

#[derive(Default)]
struct Recorder(Mutex<Vec<Entry>>);

#[async_trait::async_trait]
impl Subscriber for Recorder {
    async fn settled(&self, entry: &Entry) {
        self.0.lock().unwrap().push(entry.clone());
    }
}

/// A completed request on `d` with `usage`, as the ledger settles it: sent 1.5 s before
/// its end. (Built through the ledger, so new `Entry` fields need no change here.)
fn settled(d: &Arc<Deployment>, endpoint: Endpoint, usage: Option<Usage>) -> Entry {
    let recorder = Arc::new(Recorder::default());
    let subscribers = Subscribers::new(vec![recorder.clone()], Arc::new(Still));
    let mut ledger = Ledger::open("call".into(), endpoint, subscribers, Arc::new(Dropped));
    let e = ledger.entry().unwrap();
    e.deployment = Some(d.clone());
    e.attempt_started_ms = Some(NOW_MS - 1_500);
    e.usage = usage;
    futures_executor::block_on(ledger.close(EndReason::Completed).unwrap());
    let entry = recorder.0.lock().unwrap().pop().unwrap();
    entry
}

fn usage(prompt: u64, completion: u64) -> Usage {
    Usage::new(prompt, completion)
}

fn cached(prompt: u64, cached: u64, created: Option<u64>, completion: u64) -> Usage {
    Usage {
        prompt_tokens_details: Some(PromptTokensDetails {
            cached_tokens: cached,
            cache_creation_tokens: created,
            ..Default::default()
        }),
        ..Usage::new(prompt, completion)
    }
}

fn reasoning(prompt: u64, completion: u64, reasoning: u64) -> Usage {
    Usage {
        completion_tokens_details: Some(CompletionTokensDetails {
            reasoning_tokens: reasoning,
            ..Default::default()
        }),
        ..Usage::new(prompt, completion)
    }
}

fn config(yaml: &str) -> Config {
    let env = |name: &str| match name {
        "OUT_PRICE" => Some("0.000002".to_string()),
        _ => None,
    };
    Config::from_yaml(yaml, &env).unwrap()
}

fn deployment(config: &Config, group: &str) -> Arc<Deployment> {
    Arc::clone(config.deployments_for(group)[0])
}

/// Prices `usage` on the chat endpoint of `group`.
fn chat_cost(pricing: &Pricing, config: &Config, group: &str, usage: Usage) -> Cost {
    let d = deployment(config, group);
    pricing.cost(&settled(&d, Endpoint::ChatCompletions, Some(usage)))
}

fn priced(nanos: Nanos, model: &str) -> Cost {
    Cost {
        nanos,
        unpriced: false,
        model: Some(model.to_string()),
    }
}

const MODELS: &str = r#"
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, api_key: k}
  - model_name: o1
    litellm_params: {model: openai/o1, api_key: k}
  - model_name: sonnet
    litellm_params: {model: anthropic/claude-sonnet-4-5-20250929, api_key: k}
  - model_name: bedrock-sonnet
    litellm_params:
      model: bedrock/anthropic.claude-3-5-sonnet-20241022-v2:0
      aws_access_key_id: id
      aws_secret_access_key: secret
      aws_region_name: us-east-1
  - model_name: vertex-flash
    litellm_params: {model: vertex_ai/gemini-2.5-flash, vertex_project: p, vertex_location: us-central1}
  - model_name: qwen
    litellm_params: {model: dashscope/qwen-turbo, api_key: k}
  - model_name: embed
    litellm_params: {model: openai/text-embedding-3-small, api_key: k}
  - model_name: imagen
    litellm_params: {model: gemini/imagen-3.0-generate-001, api_key: k}
  - model_name: dall-e-3
    litellm_params: {model: openai/dall-e-3, api_key: k}
    model_info: {output_cost_per_image: 0.04}
  - model_name: nowhere
    litellm_params: {model: openai/no-such-model-xyz, api_key: k}
"#;

#[test]
fn gpt_4o_from_the_map() {
    let c = config(MODELS);
    let p = Pricing::from_config(&c);
    // 1000 × $2.5/M + 500 × $10/M = $0.0075
    assert_eq!(
        chat_cost(&p, &c, "gpt-4o", usage(1_000, 500)),
        priced(7_500_000, "gpt-4o")
    );
}

#[test]
fn openai_cached_tokens_are_billed_at_the_cache_read_price() {
    let c = config(MODELS);
    let p = Pricing::from_config(&c);
    // 600 × $2.5/M + 400 cached × $1.25/M + 500 × $10/M = $0.007
    let cost = chat_cost(&p, &c, "gpt-4o", cached(1_000, 400, None, 500));
    assert_eq!(cost.nanos, 7_000_000);
}

#[test]
fn anthropic_cache_reads_and_writes_each_at_their_price() {
    let c = config(MODELS);
    let p = Pricing::from_config(&c);
    // prompt_tokens includes both: 2000 plain × $3/M + 6000 read × $0.3/M
    // + 2000 written × $3.75/M + 1000 out × $15/M = $0.0303
    assert_eq!(
        chat_cost(&p, &c, "sonnet", cached(10_000, 6_000, Some(2_000), 1_000)),
        priced(30_300_000, "claude-sonnet-4-5-20250929")
    );
}

#[test]
fn cache_counts_beyond_the_prompt_never_go_negative() {
    let c = config(MODELS);
    let p = Pricing::from_config(&c);
    // A provider reporting more cached tokens than prompt tokens: no plain input, no panic.
    let cost = chat_cost(&p, &c, "sonnet", cached(10, 600, Some(u64::MAX), 0));
    assert!(cost.nanos > 0 && !cost.unpriced);
}

#[test]
fn bedrock_models_are_found_without_the_provider_prefix() {
    let c = config(MODELS);
    let p = Pricing::from_config(&c);
    // 2000 × $3/M + 100 × $15/M = $0.0075
    assert_eq!(
        chat_cost(&p, &c, "bedrock-sonnet", usage(2_000, 100)),
        priced(7_500_000, "anthropic.claude-3-5-sonnet-20241022-v2:0")
    );
}

#[test]
fn a_bare_name_is_taken_only_from_the_same_provider() {
    let c = config(MODELS);
    let p = Pricing::from_config(&c);
    // vertex_ai/gemini-2.5-flash is listed as `gemini-2.5-flash` (vertex_ai-language-models).
    let cost = chat_cost(&p, &c, "vertex-flash", usage(1_000_000, 0));
    assert_eq!(cost, priced(300_000_000, "gemini-2.5-flash"));

    let c = config(
        r#"
model_list:
  - model_name: groq-4o
    litellm_params: {model: groq/gpt-4o, api_key: k}
"#,
    );
    let p = Pricing::from_config(&c);
    let cost = chat_cost(&p, &c, "groq-4o", usage(1_000, 500));
    assert!(cost.unpriced, "OpenAI's gpt-4o price is not groq's");
}

#[test]
fn reasoning_tokens_at_their_own_price_when_the_model_has_one() {
    let c = config(MODELS);
    let p = Pricing::from_config(&c);
    // qwen-turbo: 100 × $0.05/M + 400 × $0.2/M + 600 reasoning × $0.5/M = $0.000385
    let cost = chat_cost(&p, &c, "qwen", reasoning(100, 1_000, 600));
    assert_eq!(cost, priced(385_000, "dashscope/qwen-turbo"));
    // o1 has no reasoning price: all 1000 completion tokens at $60/M, + 1000 × $15/M.
    let cost = chat_cost(&p, &c, "o1", reasoning(1_000, 1_000, 600));
    assert_eq!(cost, priced(75_000_000, "o1"));
}

#[test]
fn embeddings_bill_the_prompt() {
    let c = config(MODELS);
    let p = Pricing::from_config(&c);
    let d = deployment(&c, "embed");
    // 123 × $0.02/M = $0.00000246
    let cost = p.cost(&settled(&d, Endpoint::Embeddings, Some(usage(123, 0))));
    assert_eq!(cost, priced(2_460, "text-embedding-3-small"));
}

#[test]
fn images_are_billed_per_image_made() {
    let c = config(MODELS);
    let p = Pricing::from_config(&c);
    let d = deployment(&c, "imagen");
    let mut e = settled(&d, Endpoint::ImageGenerations, None);
    // No answer kept: one image (the request's `n` is not in the ledger).
    assert_eq!(
        p.cost(&e),
        priced(40_000_000, "gemini/imagen-3.0-generate-001")
    );
    e.output = Some(r#"{"created":1,"data":[{"url":"a"},{"url":"b"}]}"#.into());
    assert_eq!(p.cost(&e).nanos, 80_000_000);
    e.output = Some(r#"{"created":1,"data":[]}"#.into());
    assert_eq!(p.cost(&e).nanos, 0);
    e.output = None;
    e.end = EndReason::Failed;
    assert_eq!(p.cost(&e).nanos, 0, "no image was made");
}

#[test]
fn dall_e_3_per_image_from_model_info() {
    let c = config(MODELS);
    let p = Pricing::from_config(&c);
    let d = deployment(&c, "dall-e-3");
    let mut e = settled(&d, Endpoint::ImageGenerations, None);
    e.output = Some(r#"{"data":[{"b64_json":"AAAA"}]}"#.into());
    // The map lists DALL·E 3 only by size and quality (per pixel); the config's price holds.
    assert_eq!(
        p.cost(&e),
        Cost {
            nanos: 40_000_000,
            unpriced: false,
            model: None
        }
    );
}

#[test]
fn a_cache_hit_costs_nothing() {
    let c = config(MODELS);
    let p = Pricing::from_config(&c);
    let d = deployment(&c, "gpt-4o");
    let mut e = settled(&d, Endpoint::ChatCompletions, Some(usage(1_000, 500)));
    e.cache_hit = true;
    assert_eq!(p.cost(&e).nanos, 0);
}

#[test]
fn a_request_no_deployment_took_costs_nothing() {
    let c = config(MODELS);
    let p = Pricing::from_config(&c);
    let d = deployment(&c, "gpt-4o");
    let mut e = settled(&d, Endpoint::ChatCompletions, Some(usage(1_000, 500)));
    e.deployment = None;
    assert_eq!(
        p.cost(&e),
        Cost {
            nanos: 0,
            unpriced: false,
            model: None
        }
    );
}

#[test]
fn an_unpriced_model_costs_nothing_says_so_and_is_logged_once() {
    let c = config(MODELS);
    let p = Pricing::from_config(&c);
    for _ in 0..3 {
        let cost = chat_cost(&p, &c, "nowhere", usage(1_000, 500));
        assert_eq!(
            cost,
            Cost {
                nanos: 0,
                unpriced: true,
                model: None
            }
        );
    }
    assert_eq!(p.warned(), vec!["openai/no-such-model-xyz".to_string()]);
    chat_cost(&p, &c, "gpt-4o", usage(1, 1));
    assert_eq!(p.warned().len(), 1, "priced models are not logged");
}

const OVERRIDES: &str = r#"
model_list:
  - model_name: cheap-4o
    litellm_params:
      model: openai/gpt-4o
      api_key: k
      input_cost_per_token: 0.000001
      output_cost_per_token: os.environ/OUT_PRICE
    model_info: {input_cost_per_token: 0.5}
  - model_name: info-4o
    litellm_params: {model: openai/gpt-4o, api_key: k}
    model_info: {output_cost_per_token: 0.00002}
  - model_name: bad-4o
    litellm_params: {model: openai/gpt-4o, api_key: k, input_cost_per_token: "cheap", output_cost_per_token: -1}
  - model_name: listed-4o
    litellm_params: {model: openai/gpt-4o, api_key: k}
  - model_name: both-4o
    litellm_params: {model: openai/gpt-4o-2024-08-06, api_key: k, output_cost_per_token: 0.000003}
  - model_name: my-llama
    litellm_params: {model: hosted_vllm/meta-llama/Llama-3-8b, api_base: "http://llama.test/v1"}
  - model_name: half-nano
    litellm_params: {model: openai/tiny, api_key: k, input_cost_per_token: "0.0000000005", output_cost_per_token: 4.99e-10}
  - model_name: dedicated
    litellm_params: {model: openai/gpt-4o, api_key: k, input_cost_per_second: 0.001}
general_settings:
  cost_per_token:
    my-llama: 0.000002
    listed-4o: "1e-6"
    openai/gpt-4o-2024-08-06: {input_cost_per_token: 0.000004, output_cost_per_token: 0.000005}
"#;

#[test]
fn litellm_params_beat_model_info_beat_the_map() {
    let c = config(OVERRIDES);
    let p = Pricing::from_config(&c);
    // 1000 × $1/M + 500 × $2/M (the output price came through os.environ as text).
    assert_eq!(
        chat_cost(&p, &c, "cheap-4o", usage(1_000, 500)),
        priced(2_000_000, "gpt-4o")
    );
    // model_info's output price over the map's input: 1000 × $2.5/M + 500 × $20/M.
    assert_eq!(
        chat_cost(&p, &c, "info-4o", usage(1_000, 500)).nanos,
        12_500_000
    );
}

#[test]
fn a_deployment_input_price_also_prices_its_cached_tokens() {
    let c = config(OVERRIDES);
    let p = Pricing::from_config(&c);
    // The map's cache price is quoted against the map's input price, which the deployment
    // replaced: the 400 cached tokens cost $1/M like the rest.
    let cost = chat_cost(&p, &c, "cheap-4o", cached(1_000, 400, None, 500));
    assert_eq!(cost.nanos, 2_000_000);
}

#[test]
fn malformed_config_prices_are_ignored() {
    let c = config(OVERRIDES);
    let p = Pricing::from_config(&c);
    assert_eq!(
        chat_cost(&p, &c, "bad-4o", usage(1_000, 500)),
        priced(7_500_000, "gpt-4o")
    );
}

#[test]
fn cost_per_token_prices_input_and_output_alike() {
    let c = config(OVERRIDES);
    let p = Pricing::from_config(&c);
    // Not in the map: 1500 tokens × $2/M.
    assert_eq!(
        chat_cost(&p, &c, "my-llama", usage(1_000, 500)),
        Cost {
            nanos: 3_000_000,
            unpriced: false,
            model: None
        }
    );
    // It beats the map...
    assert_eq!(
        chat_cost(&p, &c, "listed-4o", usage(1_000, 500)).nanos,
        1_500_000
    );
    // ...but not the deployment's own price, and a mapping sets the two apart:
    // 1000 × $4/M + 500 × $3/M.
    assert_eq!(
        chat_cost(&p, &c, "both-4o", usage(1_000, 500)).nanos,
        5_500_000
    );
}

#[test]
fn the_total_is_rounded_half_up_to_nano_dollars() {
    let c = config(OVERRIDES);
    let p = Pricing::from_config(&c);
    let cost = |prompt, completion| chat_cost(&p, &c, "half-nano", usage(prompt, completion)).nanos;
    assert_eq!(cost(1, 0), 1, "0.5 nano rounds up");
    assert_eq!(cost(0, 1), 0, "0.499 nano rounds down");
    assert_eq!(cost(3, 0), 2, "1.5");
    // Summed exactly, rounded once: 1 × 0.5 + 1 × 0.499 = 0.999 → 1.
    assert_eq!(cost(1, 1), 1);
    assert_eq!(cost(1_000, 1_000), 999);
}

#[test]
fn per_second_pricing_bills_the_attempt_duration() {
    let c = config(OVERRIDES);
    let p = Pricing::from_config(&c);
    let d = deployment(&c, "dedicated");
    // 1.5 s × $0.001/s, whatever the tokens.
    let mut e = settled(
        &d,
        Endpoint::ChatCompletions,
        Some(usage(1_000_000, 1_000_000)),
    );
    assert_eq!(p.cost(&e), priced(1_500_000, "gpt-4o"));
    e.end = EndReason::Failed;
    assert_eq!(p.cost(&e).nanos, 0);
    e.end = EndReason::Completed;
    e.attempt_started_ms = None;
    assert_eq!(p.cost(&e).nanos, 0, "no upstream was called");
}

const AZURE: &str = r#"
model_list:
  - model_name: az-base
    litellm_params: {model: azure/prod-4o, api_key: k, api_base: "https://x.openai.azure.com", api_version: "2024-06-01"}
    model_info: {base_model: azure/gpt-4o}
  - model_name: az-bare-base
    litellm_params: {model: azure/prod-4o-b, api_key: k, api_base: "https://x.openai.azure.com", api_version: "2024-06-01", base_model: gpt-4o-2024-08-06}
  - model_name: az
    litellm_params: {model: azure/prod-4o-c, api_key: k, api_base: "https://x.openai.azure.com", api_version: "2024-06-01"}
"#;

#[test]
fn base_model_prices_an_azure_deployment() {
    let c = config(AZURE);
    let p = Pricing::from_config(&c);
    assert_eq!(
        chat_cost(&p, &c, "az-base", usage(1_000, 500)),
        priced(7_500_000, "azure/gpt-4o")
    );
    // Without a provider prefix, Azure's own entry is tried first.
    assert_eq!(
        chat_cost(&p, &c, "az-bare-base", usage(1_000, 500))
            .model
            .as_deref(),
        Some("azure/gpt-4o-2024-08-06")
    );
}

#[test]
fn the_upstream_reported_model_prices_a_deployment_whose_name_is_not_priced() {
    let c = config(AZURE);
    let p = Pricing::from_config(&c);
    let d = deployment(&c, "az");
    let mut e = settled(&d, Endpoint::ChatCompletions, Some(usage(1_000, 500)));
    assert!(p.cost(&e).unpriced);
    e.response_model = Some("gpt-4o-2024-08-06".into());
    assert_eq!(p.cost(&e), priced(7_500_000, "azure/gpt-4o-2024-08-06"));
}

#[test]
fn the_deployment_name_beats_the_reported_model() {
    let c = config(MODELS);
    let p = Pricing::from_config(&c);
    let d = deployment(&c, "gpt-4o");
    let mut e = settled(&d, Endpoint::ChatCompletions, Some(usage(1_000, 500)));
    e.response_model = Some("o1".into());
    assert_eq!(p.cost(&e), priced(7_500_000, "gpt-4o"));
}

#[test]
fn a_cut_stream_is_billed_its_estimate() {
    let c = config(MODELS);
    let p = Pricing::from_config(&c);
    let recorder = Arc::new(Recorder::default());
    let subscribers = Subscribers::new(vec![recorder.clone()], Arc::new(Still));
    let mut ledger = Ledger::open(
        "c".into(),
        Endpoint::ChatCompletions,
        subscribers,
        Arc::new(Dropped),
    );
    let e = ledger.entry().unwrap();
    e.deployment = Some(deployment(&c, "gpt-4o"));
    e.attempt_started_ms = Some(NOW_MS);
    e.prompt_tokens_estimate = 1_000;
    e.output_text_bytes = 2_000; // 500 tokens
    futures_executor::block_on(ledger.close(EndReason::UpstreamBroke).unwrap());
    let entry = recorder.0.lock().unwrap().pop().unwrap();
    assert_eq!(p.cost(&entry).nanos, 7_500_000);
}

#[test]
fn absurd_usage_saturates_instead_of_overflowing() {
    let c = config(MODELS);
    let p = Pricing::from_config(&c);
    let huge = Usage {
        prompt_tokens: u64::MAX,
        completion_tokens: u64::MAX,
        total_tokens: u64::MAX,
        ..Default::default()
    };
    assert_eq!(chat_cost(&p, &c, "o1", huge).nanos, i64::MAX);
}

#[test]
fn estimate_is_the_dearest_deployment() {
    let c = config(MODELS);
    let p = Pricing::from_config(&c);
    let group = |names: &[&str]| names.iter().map(|n| deployment(&c, n)).collect::<Vec<_>>();
    // gpt-4o: 1000 × $2.5/M + 1000 × $10/M = $0.0125; o1: 1000 × $15/M + 1000 × $60/M = $0.075.
    assert_eq!(p.estimate(&group(&["gpt-4o"]), 1_000, 1_000), 12_500_000);
    assert_eq!(
        p.estimate(&group(&["gpt-4o", "o1"]), 1_000, 1_000),
        75_000_000
    );
    // Prompt tokens at the dearest input rate: a cache write ($3.75/M) beats plain input.
    assert_eq!(p.estimate(&group(&["sonnet"]), 1_000, 1_000), 18_750_000);
    // Reasoning at its own (dearer) rate: 1000 × $0.05/M + 1000 × $0.5/M.
    assert_eq!(p.estimate(&group(&["qwen"]), 1_000, 1_000), 550_000);
    // An unpriced deployment adds nothing; an image model is at least one image.
    assert_eq!(p.estimate(&group(&["nowhere"]), 1_000, 1_000), 0);
    assert_eq!(p.estimate(&group(&["imagen"]), 10, 0), 40_000_000);
    assert_eq!(p.estimate(&[], 1_000, 1_000), 0);
}

#[test]
fn estimate_rounds_up_and_covers_per_second_deployments() {
    let c = config(OVERRIDES);
    let p = Pricing::from_config(&c);
    let d = deployment(&c, "half-nano");
    assert_eq!(p.estimate(&[d], 0, 1), 1, "0.499 nano reserves 1");
    // Billed by the second: the whole timeout (600 s by default) × $0.001/s.
    let d = deployment(&c, "dedicated");
    assert_eq!(p.estimate(&[d], 1, 1), 600_000_000);
}

#[test]
fn max_output_tokens_from_the_map_or_model_info() {
    let c = config(
        r#"
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, api_key: k}
  - model_name: capped
    litellm_params: {model: openai/gpt-4o, api_key: k}
    model_info: {max_output_tokens: 100}
  - model_name: nowhere
    litellm_params: {model: openai/no-such-model-xyz, api_key: k}
"#,
    );
    let p = Pricing::from_config(&c);
    assert_eq!(p.max_output_tokens(&deployment(&c, "gpt-4o")), Some(16_384));
    assert_eq!(p.max_output_tokens(&deployment(&c, "capped")), Some(100));
    assert_eq!(p.max_output_tokens(&deployment(&c, "nowhere")), None);
}

#[test]
fn a_deployment_the_config_did_not_list_is_priced_on_the_fly() {
    let c = config(MODELS);
    let p = Pricing::from_config(&Config::from_yaml("", &|_| None).unwrap());
    let cost = chat_cost(&p, &c, "gpt-4o", usage(1_000, 500));
    assert_eq!(cost, priced(7_500_000, "gpt-4o"));
}

#[test]
fn dollars_and_nano_dollars_convert_exactly() {
    assert_eq!(usd_to_nanos(0.1), 100_000_000);
    assert_eq!(usd_to_nanos(12.34), 12_340_000_000);
    assert_eq!(usd_to_nanos(1.0), 1_000_000_000);
    assert_eq!(usd_to_nanos(0.0000000015), 2, "half up");
    assert_eq!(usd_to_nanos(0.0000000014), 1);
    assert_eq!(usd_to_nanos(-0.0000000015), -2, "away from zero");
    assert_eq!(usd_to_nanos(0.0), 0);
    assert_eq!(usd_to_nanos(f64::NAN), 0);
    assert_eq!(usd_to_nanos(f64::INFINITY), i64::MAX);
    assert_eq!(usd_to_nanos(1e300), i64::MAX);
    assert_eq!(usd_to_nanos(-1e300), i64::MIN);
    assert_eq!(usd_to_nanos(9.3e9), i64::MAX, "past i64");
    assert_eq!(nanos_to_usd(1_500_000_000), 1.5);
    assert_eq!(nanos_to_usd(usd_to_nanos(250.75)), 250.75);
}

/// The cost-override names sit in `litellm_params` next to request defaults such as
/// `temperature`; only the latter may reach the provider.
#[test]
fn cost_overrides_are_never_sent_upstream() {
    use crate::ports::{BodyStream, HttpClient, TransportError};

    #[derive(Default)]
    struct Recording(Mutex<Vec<bytes::Bytes>>);

    #[async_trait::async_trait]
    impl HttpClient for Recording {
        async fn send(
            &self,
            request: http::Request<bytes::Bytes>,
            _timeout_ms: u64,
        ) -> Result<http::Response<BodyStream>, TransportError> {
            self.0.lock().unwrap().push(request.body().clone());
            let answer = json!({
                "id": "x", "object": "chat.completion", "created": 1, "model": "gpt-4o",
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": "hi"}}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
            });
            let body = bytes::Bytes::from(answer.to_string());
            let stream: BodyStream = Box::pin(futures_util::stream::iter([Ok(body)]));
            Ok(http::Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .body(stream)
                .unwrap())
        }
    }

    struct Zeros;
    impl crate::ports::Entropy for Zeros {
        fn fill(&self, buf: &mut [u8]) {
            buf.fill(7);
        }
    }

    let yaml = r#"
model_list:
  - model_name: priced
    litellm_params:
      model: openai/gpt-4o
      api_key: k
      api_base: "http://up.test/v1"
      temperature: 0.5
      input_cost_per_token: 0.000001
      output_cost_per_token: 0.000002
      input_cost_per_second: 0.1
      output_cost_per_second: 0.1
      cache_read_input_token_cost: 0.0000001
      cache_creation_input_token_cost: 0.0000001
      output_cost_per_reasoning_token: 0.000002
      output_cost_per_image: 0.04
      input_cost_per_image: 0.04
      output_cost_per_image_token: 0.00001
general_settings: {master_key: sk-m}
"#;
    let c = config(yaml);
    let defaults = &c.deployments[0].request_defaults;
    assert_eq!(defaults.keys().collect::<Vec<_>>(), vec!["temperature"]);

    let client = Arc::new(Recording::default());
    let clock: Arc<dyn Clock> = Arc::new(Still);
    let gateway = crate::Gateway::new(
        c,
        crate::gateway::Ports {
            http: client.clone(),
            clock: clock.clone(),
            store: Arc::new(crate::store::memory::MemoryStore::new(clock)),
            after_response: Arc::new(Dropped),
            entropy: Arc::new(Zeros),
        },
    );
    let request = http::Request::post("/v1/chat/completions")
        .header("authorization", "Bearer sk-m")
        .body(bytes::Bytes::from(
            json!({"model": "priced", "messages": [{"role": "user", "content": "hi"}]}).to_string(),
        ))
        .unwrap();
    let response = futures_executor::block_on(gateway.handle(request));
    assert_eq!(response.status(), 200);
    let sent = client.0.lock().unwrap();
    let body: serde_json::Value = serde_json::from_slice(&sent[0]).unwrap();
    assert_eq!(body["temperature"], json!(0.5), "request defaults do go");
    for (name, _) in prices::PRICE_FIELDS {
        assert!(body.get(name).is_none(), "{name} was sent upstream: {body}");
    }
}

#[test]
fn pricing_is_shared_across_threads_on_native_hosts() {
    fn shared<T: Send + Sync>() {}
    shared::<Pricing>();
}
