//! What a deployment is, apart from how it is called: the resolved `model_list` entry, which
//! provider API it speaks (from its `provider/` prefix), and its stable id. A leaf module:
//! config builds deployments, providers and the router read them, and none of them needs the
//! others for it.

pub mod compatible_table;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::config::raw::LitellmParams;
use compatible_table::CompatibleProvider;

/// One upstream a model group can send to: a `model_list` entry, resolved.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// Stable across instances: `model_info.id`, else a hash of name, model and api_base
    /// (`x-litellm-model-id`, and the key of its routing state).
    pub id: String,
    /// The `model_name` clients ask for.
    pub model_name: String,
    pub provider: ProviderId,
    /// The model name the provider knows (after the `provider/` prefix).
    pub upstream_model: String,
    pub params: LitellmParams,
    pub model_info: Map<String, Value>,
    /// Request parameters the operator set in `litellm_params` (`temperature`, `max_tokens`...);
    /// a client's own value wins.
    pub request_defaults: Map<String, Value>,
    pub drop_params: bool,
    /// Bound on the whole call (`litellm_params.timeout`, else the global timeout, else 600 s).
    pub timeout_ms: u64,
    /// Bound on the wait for a stream's first byte (`litellm_params.stream_timeout`, else
    /// `router_settings.stream_timeout`); `None` leaves streams under `timeout_ms`.
    pub stream_timeout_ms: Option<u64>,
}

/// Which API a deployment speaks, from the `provider/` prefix of `litellm_params.model`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ProviderId {
    /// OpenAI itself or a service that speaks its API.
    OpenAiCompatible(&'static CompatibleProvider),
    /// OpenAI's legacy `/v1/completions` models (`text-completion-openai/`).
    TextCompletionOpenAi,
    Anthropic,
    /// Google AI Studio's Gemini API (`gemini/`).
    Gemini,
    /// Gemini on Google Cloud Vertex AI (`vertex_ai/`, `vertex_ai_beta/`).
    VertexAi,
    /// Amazon Bedrock (Converse; InvokeModel for embeddings), SigV4-signed.
    Bedrock,
    /// Cohere's v2 chat and embed API (`cohere/` and `cohere_chat/` both use it).
    Cohere,
    CohereChat,
    /// Ollama's `/api/generate` (`ollama/`).
    Ollama,
    /// Ollama's `/api/chat` (`ollama_chat/`).
    OllamaChat,
    /// Azure OpenAI: OpenAI's wire format under a deployment path.
    Azure,
    /// Stability AI's v2beta Stable Image API (image generation only).
    Stability,
    /// Built-in canned answers (LiteLLM's `mock_response`): works offline, with no key.
    Mock,
    /// A LiteLLM provider prefix Tollgate accepts in config but does not translate yet;
    /// requests to it fail with a clear 501 instead of the config being refused.
    NotYetTranslated(&'static str),
}

/// LiteLLM prefixes that load but are not translated in this version.
const NOT_YET_TRANSLATED: &[&str] = &[
    "azure_ai",
    "replicate",
    "sagemaker",
    "watsonx",
    "aleph_alpha",
    "palm",
    "vertex_ai_anthropic",
];

impl ProviderId {
    /// Splits `provider/upstream-model`. A bare name is inferred the way LiteLLM does for the
    /// best-known families (`gpt-*` → openai, `claude-*` → anthropic).
    pub fn parse(model: &str) -> Result<(ProviderId, &str), String> {
        let model = model.trim();
        if model.is_empty() {
            return Err("must not be empty; expected provider/model, e.g. openai/gpt-4o".into());
        }
        let Some((prefix, rest)) = model.split_once('/') else {
            return infer_bare(model).map(|p| (p, model)).ok_or_else(|| {
                format!("{model:?} has no provider prefix; expected provider/model, e.g. openai/{model}")
            });
        };
        if rest.is_empty() {
            return Err(format!(
                "{model:?} names no model after the provider prefix"
            ));
        }
        let id = match prefix {
            "anthropic" => ProviderId::Anthropic,
            "gemini" => ProviderId::Gemini,
            "vertex_ai" | "vertex_ai_beta" => ProviderId::VertexAi,
            "bedrock" => ProviderId::Bedrock,
            "cohere" => ProviderId::Cohere,
            "cohere_chat" => ProviderId::CohereChat,
            "ollama" => ProviderId::Ollama,
            "ollama_chat" => ProviderId::OllamaChat,
            "azure" => ProviderId::Azure,
            "stability" => ProviderId::Stability,
            "mock" => ProviderId::Mock,
            "text-completion-openai" => ProviderId::TextCompletionOpenAi,
            p => match compatible_table::find(p) {
                Some(c) => ProviderId::OpenAiCompatible(c),
                None => match NOT_YET_TRANSLATED.iter().find(|n| **n == p) {
                    Some(n) => ProviderId::NotYetTranslated(n),
                    None => return Err(format!("unknown provider prefix {p:?} in {model:?}")),
                },
            },
        };
        Ok((id, rest))
    }

    pub fn prefix(&self) -> &'static str {
        match self {
            ProviderId::OpenAiCompatible(c) => c.prefix,
            ProviderId::TextCompletionOpenAi => "text-completion-openai",
            ProviderId::Anthropic => "anthropic",
            ProviderId::Gemini => "gemini",
            ProviderId::VertexAi => "vertex_ai",
            ProviderId::Bedrock => "bedrock",
            ProviderId::Cohere => "cohere",
            ProviderId::CohereChat => "cohere_chat",
            ProviderId::Ollama => "ollama",
            ProviderId::OllamaChat => "ollama_chat",
            ProviderId::Azure => "azure",
            ProviderId::Stability => "stability",
            ProviderId::Mock => "mock",
            ProviderId::NotYetTranslated(p) => p,
        }
    }
}

fn infer_bare(model: &str) -> Option<ProviderId> {
    const OPENAI: &[&str] = &[
        "gpt-",
        "o1",
        "o3",
        "o4",
        "chatgpt-",
        "text-embedding-",
        "davinci",
        "babbage",
        "dall-e",
    ];
    if OPENAI.iter().any(|p| model.starts_with(p)) {
        return compatible_table::find("openai").map(ProviderId::OpenAiCompatible);
    }
    if model.starts_with("claude") {
        return Some(ProviderId::Anthropic);
    }
    None
}

/// A deployment's id: `model_info.id` when set (LiteLLM's field), else the first 16 bytes of
/// SHA-256 over (model_name, litellm_params.model, api_base), hex-encoded. Stable across
/// instances and restarts as long as those three do not change.
pub fn deployment_id(deployment: &Deployment) -> String {
    match deployment.model_info.get("id") {
        Some(Value::String(s)) if !s.is_empty() => return s.clone(),
        Some(Value::Number(n)) => return n.to_string(),
        _ => {}
    }
    let mut h = Sha256::new();
    for part in [
        deployment.model_name.as_str(),
        deployment.params.model.as_str(),
        deployment.params.api_base.as_deref().unwrap_or(""),
    ] {
        // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
