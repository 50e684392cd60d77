//! The OpenAI-compatible family: one row per LiteLLM prefix, with the service's documented
//! base URL, the variable LiteLLM reads its key from, and the quirks that keep a request
//! from being refused upstream. Quirks are only those with evidence (the service's API
//! reference, or LiteLLM's `get_supported_openai_params` / `map_openai_params` for it).

/// Chat parameters every sampling-only service lacks (no `n`, no log-probabilities, no
/// token biasing).
const SAMPLING_ONLY: &[&str] = &["n", "logprobs", "top_logprobs", "logit_bias"];

/// One OpenAI-compatible service.
#[derive(Debug, PartialEq, Eq)]
pub struct CompatibleProvider {
    /// The LiteLLM prefix, e.g. `groq` in `groq/llama-3.1-8b-instant`.
    pub prefix: &'static str,
    /// Base URL the API paths (`/chat/completions`, ...) are appended to.
    pub default_base: &'static str,
    /// Where the key comes from when `api_key` is not configured.
    pub key_env: &'static str,
    /// Accepts `stream_options.include_usage`; where it does, Tollgate always asks for usage
    /// so spend can be counted even when the client did not ask for it. Where it does not,
    /// a client's `stream_options` is not forwarded either.
    pub stream_usage: bool,
    /// OpenAI chat parameters the service refuses: a request carrying one is answered with
    /// a 400 naming it, or the parameter is dropped under `drop_params`.
    pub refuses: &'static [&'static str],
    /// Takes only the older `max_tokens`: `max_completion_tokens` is sent under that name.
    pub max_tokens_only: bool,
    /// Serves OpenAI's `/images/generations`.
    pub images: bool,
}

impl CompatibleProvider {
    const fn refusing(self, refuses: &'static [&'static str]) -> Self {
        CompatibleProvider { refuses, ..self }
    }

    const fn max_tokens_only(self) -> Self {
        CompatibleProvider {
            max_tokens_only: true,
            ..self
        }
    }

    const fn with_images(self) -> Self {
        CompatibleProvider {
            images: true,
            ..self
        }
    }
}

/// A row with no quirks but `stream_usage`.
const fn p(
    prefix: &'static str,
    default_base: &'static str,
    key_env: &'static str,
    stream_usage: bool,
) -> CompatibleProvider {
    CompatibleProvider {
        prefix,
        default_base,
        key_env,
        stream_usage,
        refuses: &[],
        max_tokens_only: false,
        images: false,
    }
}

/// The OpenAI-compatible family. OpenAI itself is first: the legacy-completions and mock
/// modules borrow its row.
pub static COMPATIBLE: &[CompatibleProvider] = &[
    p(
        "openai",
        "https://api.openai.com/v1",
        "OPENAI_API_KEY",
        true,
    )
    .with_images(),
    p(
        "mistral",
        "https://api.mistral.ai/v1",
        "MISTRAL_API_KEY",
        false,
    ),
    // Mistral's code endpoint, same API.
    p(
        "codestral",
        "https://codestral.mistral.ai/v1",
        "CODESTRAL_API_KEY",
        false,
    ),
    p(
        "groq",
        "https://api.groq.com/openai/v1",
        "GROQ_API_KEY",
        true,
    ),
    p(
        "together_ai",
        "https://api.together.xyz/v1",
        "TOGETHERAI_API_KEY",
        true,
    )
    .with_images(),
    p(
        "deepseek",
        "https://api.deepseek.com/v1",
        "DEEPSEEK_API_KEY",
        true,
    ),
    p(
        "fireworks_ai",
        "https://api.fireworks.ai/inference/v1",
        "FIREWORKS_AI_API_KEY",
        true,
    ),
    p(
        "openrouter",
        "https://openrouter.ai/api/v1",
        "OPENROUTER_API_KEY",
        true,
    ),
    // Perplexity reports usage on every chunk and does not take stream_options.
    p(
        "perplexity",
        "https://api.perplexity.ai",
        "PERPLEXITYAI_API_KEY",
        false,
    ),
    p("xai", "https://api.x.ai/v1", "XAI_API_KEY", true).with_images(),
    p(
        "deepinfra",
        "https://api.deepinfra.com/v1/openai",
        "DEEPINFRA_API_KEY",
        true,
    )
    .with_images(),
    p(
        "cerebras",
        "https://api.cerebras.ai/v1",
        "CEREBRAS_API_KEY",
        true,
    ),
    // NVIDIA's hosted NIM catalogue: no n/logprobs/logit_bias, max_tokens only.
    p(
        "nvidia_nim",
        "https://integrate.api.nvidia.com/v1",
        "NVIDIA_NIM_API_KEY",
        false,
    )
    .refusing(SAMPLING_ONLY)
    .max_tokens_only(),
    // SambaNova Cloud: sampling, stop, tools and response_format, nothing else.
    p(
        "sambanova",
        "https://api.sambanova.ai/v1",
        "SAMBANOVA_API_KEY",
        true,
    )
    .refusing(&[
        "n",
        "logprobs",
        "top_logprobs",
        "logit_bias",
        "presence_penalty",
        "frequency_penalty",
        "seed",
    ])
    .max_tokens_only(),
    p(
        "anyscale",
        "https://api.endpoints.anyscale.com/v1",
        "ANYSCALE_API_KEY",
        false,
    ),
    // AI21's Jamba chat API (LiteLLM's ai21_chat); no penalties, log-probabilities or
    // parallel tool calls.
    p(
        "ai21",
        "https://api.ai21.com/studio/v1",
        "AI21_API_KEY",
        false,
    )
    .refusing(&[
        "logprobs",
        "top_logprobs",
        "logit_bias",
        "presence_penalty",
        "frequency_penalty",
        "parallel_tool_calls",
    ]),
    p(
        "friendliai",
        "https://api.friendli.ai/serverless/v1",
        "FRIENDLIAI_API_KEY",
        true,
    ),
    // GitHub Models, authenticated with a GitHub token.
    p(
        "github",
        "https://models.inference.ai.azure.com",
        "GITHUB_API_KEY",
        true,
    ),
    // Nscale's serverless inference takes sampling parameters and n only.
    p(
        "nscale",
        "https://inference.api.nscale.com/v1",
        "NSCALE_API_KEY",
        false,
    )
    .refusing(&[
        "logprobs",
        "top_logprobs",
        "logit_bias",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
    ]),
    p(
        "novita",
        "https://api.novita.ai/v3/openai",
        "NOVITA_API_KEY",
        true,
    ),
    p(
        "nebius",
        "https://api.studio.nebius.ai/v1",
        "NEBIUS_API_KEY",
        true,
    )
    .max_tokens_only()
    .with_images(),
    p(
        "featherless_ai",
        "https://api.featherless.ai/v1",
        "FEATHERLESS_AI_API_KEY",
        false,
    )
    .refusing(&["logprobs", "top_logprobs", "seed", "parallel_tool_calls"])
    .max_tokens_only(),
    p(
        "hyperbolic",
        "https://api.hyperbolic.xyz/v1",
        "HYPERBOLIC_API_KEY",
        false,
    )
    .refusing(&[
        "logprobs",
        "top_logprobs",
        "logit_bias",
        "parallel_tool_calls",
    ]),
    p(
        "lambda_ai",
        "https://api.lambda.ai/v1",
        "LAMBDA_API_KEY",
        true,
    ),
    p(
        "galadriel",
        "https://api.galadriel.com/v1",
        "GALADRIEL_API_KEY",
        false,
    ),
    // Alibaba Model Studio's OpenAI-compatible mode (international endpoint).
    p(
        "dashscope",
        "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
        "DASHSCOPE_API_KEY",
        true,
    ),
    // Kimi: no legacy `functions`, max_tokens only.
    p(
        "moonshot",
        "https://api.moonshot.ai/v1",
        "MOONSHOT_API_KEY",
        true,
    )
    .refusing(&["functions", "function_call"])
    .max_tokens_only(),
    // ByteDance's Ark (Volcano Engine).
    p(
        "volcengine",
        "https://ark.cn-beijing.volces.com/api/v3",
        "VOLCENGINE_API_KEY",
        true,
    ),
    // Meta's Llama API, OpenAI-compatible route.
    p(
        "meta_llama",
        "https://api.llama.com/compat/v1",
        "LLAMA_API_KEY",
        false,
    ),
    // Hugging Face: the Inference Providers router's OpenAI route; a TGI or Inference
    // Endpoint is reached by setting api_base to its `.../v1`.
    p(
        "huggingface",
        "https://router.huggingface.co/v1",
        "HF_TOKEN",
        true,
    ),
    p(
        "empower",
        "https://app.empower.dev/api/v1",
        "EMPOWER_API_KEY",
        false,
    ),
    p(
        "scaleway",
        "https://api.scaleway.ai/v1",
        "SCW_SECRET_KEY",
        true,
    ),
    p(
        "veniceai",
        "https://api.venice.ai/api/v1",
        "VENICE_AI_API_KEY",
        false,
    ),
    // Self-hosted servers: localhost defaults, a key only when the operator set one.
    p(
        "hosted_vllm",
        "http://localhost:8000/v1",
        "HOSTED_VLLM_API_KEY",
        true,
    ),
    p(
        "lm_studio",
        "http://localhost:1234/v1",
        "LM_STUDIO_API_KEY",
        true,
    ),
    p(
        "llamafile",
        "http://127.0.0.1:8080/v1",
        "LLAMAFILE_API_KEY",
        false,
    ),
    p(
        "xinference",
        "http://127.0.0.1:9997/v1",
        "XINFERENCE_API_KEY",
        false,
    ),
    p(
        "custom_openai",
        "http://localhost:8000/v1",
        "OPENAI_API_KEY",
        true,
    )
    .with_images(),
    p(
        "openai_like",
        "http://localhost:8000/v1",
        "OPENAI_LIKE_API_KEY",
        true,
    )
    .with_images(),
];

/// The row for a LiteLLM prefix.
pub fn find(prefix: &str) -> Option<&'static CompatibleProvider> {
    COMPATIBLE.iter().find(|c| c.prefix == prefix)
}
