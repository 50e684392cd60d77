//! Provider APIs. One module per upstream API, each implementing [`ProviderApi`]: build the
//! upstream request from an OpenAI one, parse the full response, translate the stream
//! (a stateful [`StreamTranslator`] per request), and map errors.
//!
//! The OpenAI-compatible family (Mistral, Groq, Together, ...) is one module driven by a table
//! ([`openai_compatible::COMPATIBLE`]).

pub mod anthropic;
pub mod azure;
pub mod bedrock;
mod claude_answer;
pub mod cohere;
mod function_tools;
pub mod gemini;
pub mod gemini_format;
pub mod google_auth;
pub mod json_lines;
pub mod mock;
pub mod multipart;
pub mod ollama;
pub mod ollama_chat;
mod ollama_common;
pub mod openai_compatible;
pub mod openai_stream;
pub mod stability;
pub mod text_completion;
mod tool_arguments;
pub mod tool_choice;
mod turns;
pub mod vertex_ai;

#[cfg(test)]
mod split_test;
#[cfg(test)]
mod test_support;

use bytes::Bytes;
use serde_json::Value;

use crate::deployment::Deployment;
pub use crate::deployment::ProviderId;
use crate::error::{ErrorKind, GatewayError};
use crate::openai::{ChatChunk, ChatCompletion, ChatRequest, Usage};
use crate::ports::{BodyStream, Clock, HttpClient, MaybeSend};

impl ProviderId {
    /// Where requests go when `api_base` is not set (`None` for in-process providers).
    pub fn default_base(&self) -> Option<&'static str> {
        match self {
            ProviderId::OpenAiCompatible(c) => Some(c.default_base),
            ProviderId::TextCompletionOpenAi => Some(openai_compatible::COMPATIBLE[0].default_base),
            ProviderId::Anthropic => Some(anthropic::DEFAULT_BASE),
            ProviderId::Gemini => Some(gemini::DEFAULT_BASE),
            ProviderId::VertexAi => Some(vertex_ai::DEFAULT_BASE),
            // Regional (bedrock-runtime.{region}.amazonaws.com): the module builds it.
            ProviderId::Bedrock => None,
            ProviderId::Cohere | ProviderId::CohereChat => Some(cohere::DEFAULT_BASE),
            ProviderId::Ollama | ProviderId::OllamaChat => Some(ollama_common::DEFAULT_BASE),
            // Every Azure resource has its own host: `api_base` is required.
            ProviderId::Azure => None,
            ProviderId::Stability => Some(stability::DEFAULT_BASE),
            ProviderId::Mock | ProviderId::NotYetTranslated(_) => None,
        }
    }

    /// The variable LiteLLM reads the key from when `api_key` is not set.
    pub fn api_key_env(&self) -> Option<&'static str> {
        match self {
            ProviderId::OpenAiCompatible(c) => Some(c.key_env),
            ProviderId::TextCompletionOpenAi => Some("OPENAI_API_KEY"),
            ProviderId::Anthropic => Some("ANTHROPIC_API_KEY"),
            ProviderId::Gemini => Some("GEMINI_API_KEY"),
            // Vertex authenticates with a service account (`vertex_credentials`); an
            // api_key is taken as a ready access token, never read from the environment.
            ProviderId::VertexAi => None,
            ProviderId::Bedrock => Some(bedrock::API_KEY_ENV),
            // CO_API_KEY, Cohere's own SDK variable, is read too (see `fill_from_env`).
            ProviderId::Cohere | ProviderId::CohereChat => Some("COHERE_API_KEY"),
            // A local Ollama needs no key; a proxied one may take a bearer token.
            ProviderId::Ollama | ProviderId::OllamaChat => Some("OLLAMA_API_KEY"),
            ProviderId::Azure => Some("AZURE_API_KEY"),
            ProviderId::Stability => Some(stability::API_KEY_ENV),
            ProviderId::Mock | ProviderId::NotYetTranslated(_) => None,
        }
    }

    /// The translation module for this provider.
    pub fn api(&self) -> Result<&'static dyn ProviderApi, GatewayError> {
        match self {
            ProviderId::OpenAiCompatible(_) => Ok(&openai_compatible::OpenAiCompatible),
            ProviderId::TextCompletionOpenAi => Ok(&text_completion::TextCompletionOpenAi),
            ProviderId::Anthropic => Ok(&anthropic::Anthropic),
            ProviderId::Gemini => Ok(&gemini::Gemini),
            ProviderId::VertexAi => Ok(&vertex_ai::VertexAi),
            ProviderId::Bedrock => Ok(&bedrock::Bedrock),
            ProviderId::Cohere | ProviderId::CohereChat => Ok(&cohere::Cohere),
            ProviderId::Ollama => Ok(&ollama::OllamaGenerate),
            ProviderId::OllamaChat => Ok(&ollama_chat::OllamaChat),
            ProviderId::Azure => Ok(&azure::Azure),
            ProviderId::Stability => Ok(&stability::Stability),
            ProviderId::Mock => Ok(&mock::Mock),
            ProviderId::NotYetTranslated(p) => Err(GatewayError::new(
                ErrorKind::NotImplemented,
                format!("provider {p:?} is accepted in config but not translated by this Tollgate version yet"),
            )
            .with_code("provider_not_translated")),
        }
    }
}

/// Deployment settings LiteLLM reads from the environment besides the key variable: Azure's
/// `AZURE_API_BASE` / `AZURE_API_VERSION` / `AZURE_AD_TOKEN`, Cohere's `CO_API_KEY`, AWS
/// credentials and region for Bedrock. Called once at config load; the config's own values
/// win. An error names the `litellm_params` field that is missing or wrong.
pub fn fill_from_env(
    provider: ProviderId,
    params: &mut crate::config::raw::LitellmParams,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), (&'static str, String)> {
    match provider {
        ProviderId::Azure => azure::fill_from_env(params, lookup),
        ProviderId::Bedrock => return bedrock::complete_params(params, lookup),
        ProviderId::Cohere | ProviderId::CohereChat if params.api_key.is_none() => {
            params.api_key = lookup("CO_API_KEY").map(crate::secret::Secret::from);
        }
        _ => {}
    }
    Ok(())
}

/// Translates one upstream stream into OpenAI chunks. Created per request; fed raw bytes as
/// they arrive (split anywhere), so it buffers partial frames.
pub trait StreamTranslator: MaybeSend {
    type Chunk: StreamChunk;

    /// Pushes every chunk `bytes` completes onto `out`. An upstream error event is an `Err`.
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<Self::Chunk>) -> Result<(), GatewayError>;

    /// The upstream body ended. `Err` when it ended before the provider's own end marker: the
    /// client must then see an error, not a clean finish.
    fn finish(&mut self, out: &mut Vec<Self::Chunk>) -> Result<(), GatewayError>;

    /// Usage reported so far (complete once `finish` returned `Ok`).
    fn usage(&self) -> Option<Usage>;
}

/// A chunk the output stage can stamp with the response's one id and the requested model.
pub trait StreamChunk: serde::Serialize + MaybeSend + Unpin {
    fn id(&self) -> &str;
    fn created(&self) -> u64;
    fn stamp(&mut self, id: &str, model: &str, created: u64);
    fn usage_only(usage: Usage) -> Self;
    /// Bytes of answer text this chunk carries (content, reasoning, tool arguments): what a
    /// stream cut before its usage is billed on.
    fn text_len(&self) -> usize {
        0
    }
}

pub type ChatStream = Box<dyn StreamTranslator<Chunk = ChatChunk>>;
pub type TextStream = Box<dyn StreamTranslator<Chunk = text_completion::TextChunk>>;

/// What a provider may use to finish a request just before it is sent: the time (request
/// signatures such as SigV4 are dated) and the HTTP client (OAuth token exchanges).
pub struct SendContext<'a> {
    pub clock: &'a dyn Clock,
    pub http: &'a dyn HttpClient,
}

/// One provider API. Building the chat request is required; reading responses, streams and
/// errors defaults to OpenAI's wire format; embeddings and legacy completions are optional and
/// refused with a clear 400 by default.
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
pub trait ProviderApi: Sync {
    /// The OpenAI chat parameters this API can express; `None` means it takes them all.
    /// Others are refused with a 400 naming them, or dropped when `drop_params` is on.
    fn supported_chat_params(&self) -> Option<&'static [&'static str]> {
        None
    }

    /// OpenAI chat parameters this deployment's service refuses although its API is
    /// OpenAI's (a table quirk); refused with a 400 naming them, or dropped under
    /// `drop_params`, like the unsupported ones.
    fn refused_chat_params(&self, _d: &Deployment) -> &'static [&'static str] {
        &[]
    }

    fn chat_request(
        &self,
        req: &ChatRequest,
        d: &Deployment,
    ) -> Result<http::Request<Bytes>, GatewayError>;

    /// `req` is the translated request, for providers whose answer depends on how it was asked
    /// (Anthropic's JSON mode is a forced tool whose input becomes the message text).
    /// The default reads OpenAI's wire format, which most providers speak.
    fn chat_response(
        &self,
        body: &[u8],
        _req: &ChatRequest,
        _d: &Deployment,
    ) -> Result<ChatCompletion, GatewayError> {
        parse_json(body)
    }

    /// A translator for one streamed response; the default reads OpenAI's SSE.
    fn chat_stream(&self, _req: &ChatRequest, _d: &Deployment) -> ChatStream {
        Box::<openai_compatible::OpenAiChatStream>::default()
    }

    /// Maps an upstream error response to an OpenAI-style error with the same status; the
    /// default reads OpenAI's error body.
    fn error(&self, status: u16, body: &[u8]) -> GatewayError {
        openai_compatible::openai_error(status, body)
    }

    fn embeddings_request(
        &self,
        _req: &Value,
        d: &Deployment,
    ) -> Result<http::Request<Bytes>, GatewayError> {
        Err(unsupported(d, "embeddings"))
    }

    fn embeddings_response(&self, body: &[u8], _d: &Deployment) -> Result<Value, GatewayError> {
        parse_json(body)
    }

    /// `/v1/images/generations`. `req` is the validated OpenAI body (gateway-only fields
    /// stripped); providers without an image API refuse with a clear 400.
    fn image_request(
        &self,
        _req: &Value,
        d: &Deployment,
    ) -> Result<http::Request<Bytes>, GatewayError> {
        Err(unsupported(d, "image generation"))
    }

    /// The provider's answer as OpenAI's `{"created", "data": [{"b64_json" | "url", ...}]}`.
    /// `req` is what the client asked, for providers whose answer shape it decides
    /// (`response_format`); the default reads OpenAI's own answer as it is.
    fn image_response(
        &self,
        body: &[u8],
        _req: &Value,
        _d: &Deployment,
    ) -> Result<Value, GatewayError> {
        openai_images_answer(body)
    }

    fn completion_request(
        &self,
        _req: &Value,
        d: &Deployment,
    ) -> Result<http::Request<Bytes>, GatewayError> {
        Err(unsupported(d, "/v1/completions"))
    }

    fn completion_response(&self, body: &[u8], _d: &Deployment) -> Result<Value, GatewayError> {
        parse_json(body)
    }

    fn completion_stream(&self, _d: &Deployment) -> TextStream {
        Box::new(text_completion::TextStreamPassthrough::default())
    }

    /// Adds credentials that depend on the moment of sending: a signature over the final
    /// request (Bedrock's SigV4) or a short-lived token fetched and cached by the provider
    /// (Vertex AI). Called before every attempt, retries included, so a signature is never
    /// stale. The default sends the request as built.
    async fn authorize(
        &self,
        request: http::Request<Bytes>,
        _d: &Deployment,
        _ctx: &SendContext<'_>,
    ) -> Result<http::Request<Bytes>, GatewayError> {
        Ok(request)
    }

    /// Providers that answer in-process (the built-in mock) return their response here and no
    /// network call is made.
    fn answer_locally(&self, _req: &http::Request<Bytes>) -> Option<http::Response<BodyStream>> {
        None
    }
}

pub fn unsupported(d: &Deployment, what: &str) -> GatewayError {
    GatewayError::invalid_request(format!(
        "model {:?} (provider {}) does not support {what}",
        d.model_name,
        d.provider.prefix()
    ))
    .with_code("unsupported_endpoint")
}

/// Parses an upstream JSON body; garbage from upstream is a 502, not the client's fault.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, GatewayError> {
    serde_json::from_slice(body).map_err(|e| {
        GatewayError::new(
            ErrorKind::BadGateway,
            format!("the provider returned an unreadable response: {e}"),
        )
    })
}

/// Types an upstream JSON value; a shape we cannot read is the provider's fault (502).
pub fn from_upstream<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, GatewayError> {
    serde_json::from_value(value).map_err(|e| {
        GatewayError::new(
            ErrorKind::BadGateway,
            format!("the provider returned an unreadable response: {e}"),
        )
    })
}

/// An OpenAI images answer, checked for its `data` list (anything else from upstream is a
/// 502, not a success the client cannot read).
pub fn openai_images_answer(body: &[u8]) -> Result<Value, GatewayError> {
    let v: Value = parse_json(body)?;
    if v.get("data").is_some_and(Value::is_array) {
        Ok(v)
    } else {
        Err(GatewayError::new(
            ErrorKind::BadGateway,
            "the provider's image answer has no `data` list",
        ))
    }
}

/// Joins a base URL (no trailing slash assumed) and an API path.
pub fn join_url(base: &str, path: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with(path) {
        base.to_string()
    } else {
        format!("{base}{path}")
    }
}

/// A JSON POST with the given headers.
pub fn json_post(
    url: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<http::Request<Bytes>, GatewayError> {
    let mut b = http::Request::post(url).header(http::header::CONTENT_TYPE, "application/json");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Bytes::from(body)).map_err(|e| {
        GatewayError::invalid_request(format!("cannot build upstream request to {url}: {e}"))
            .with_param("api_base")
    })
}

/// Refuses `n > 1` for the APIs (`provider`) that answer once per request.
pub fn single_choice(req: &ChatRequest, provider: &str) -> Result<(), GatewayError> {
    if req.n.is_some_and(|n| n > 1) {
        return Err(GatewayError::invalid_request(format!(
            "{provider} returns one choice per request; 'n' must be 1"
        ))
        .with_param("n"));
    }
    Ok(())
}

/// The upstream stream ended before its end marker.
pub fn stream_cut() -> GatewayError {
    GatewayError::new(
        ErrorKind::BadGateway,
        "the provider's stream ended before it was complete",
    )
    .with_code("stream_interrupted")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_resolve() {
        assert_eq!(
            ProviderId::parse("anthropic/claude-3").unwrap().0,
            ProviderId::Anthropic
        );
        let (p, m) = ProviderId::parse("groq/llama-3.1-8b").unwrap();
        assert_eq!(p.prefix(), "groq");
        assert_eq!(m, "llama-3.1-8b");
        // Upstream names may themselves hold slashes.
        let (p, m) = ProviderId::parse("openrouter/meta-llama/llama-3-70b").unwrap();
        assert_eq!(p.prefix(), "openrouter");
        assert_eq!(m, "meta-llama/llama-3-70b");
    }

    #[test]
    fn bare_names_are_inferred_or_refused() {
        assert_eq!(ProviderId::parse("gpt-4o").unwrap().0.prefix(), "openai");
        assert_eq!(
            ProviderId::parse("claude-3-haiku").unwrap().0,
            ProviderId::Anthropic
        );
        assert!(ProviderId::parse("llama3")
            .unwrap_err()
            .contains("no provider prefix"));
    }

    #[test]
    fn unknown_prefix_is_refused_and_pending_ones_load() {
        assert!(ProviderId::parse("nosuch/x")
            .unwrap_err()
            .contains("unknown provider prefix"));
        let (p, _) = ProviderId::parse("palm/chat-bison").unwrap();
        assert_eq!(p.api().err().map(|e| e.status().as_u16()), Some(501));
    }

    #[test]
    fn join_url_does_not_double_the_path() {
        assert_eq!(
            join_url("http://h/v1/", "/chat/completions"),
            "http://h/v1/chat/completions"
        );
        assert_eq!(
            join_url("http://h/v1/messages", "/v1/messages"),
            "http://h/v1/messages"
        );
    }
}
