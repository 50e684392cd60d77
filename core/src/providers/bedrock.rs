//! Amazon Bedrock: chat through the Converse API (`POST /model/{id}/converse` and
//! `/converse-stream`), embeddings through InvokeModel (`POST /model/{id}/invoke`).
//!
//! The pieces, one job each: [`converse`] turns OpenAI chat into Converse and back,
//! [`stream`] turns ConverseStream events into chunks, [`eventstream`] decodes the binary
//! framing those events travel in, [`embeddings`] speaks the Titan and Cohere bodies, and
//! [`sigv4`] signs each attempt just before it is sent.
//!
//! Credentials: a Bedrock API key (`api_key`, or `AWS_BEARER_TOKEN_BEDROCK`) is sent as a
//! bearer token; otherwise requests are signed with `aws_access_key_id` /
//! `aws_secret_access_key` / `aws_session_token`, which [`complete_params`] fills from the
//! standard `AWS_*` variables at config load (a Lambda role's credentials arrive that way).
//! Missing credentials are a config error naming the field, so a deployment that loads can
//! always sign. Secrets never appear in an error message.

mod converse;
mod embeddings;
pub mod eventstream;
pub mod sigv4;
mod stream;

use bytes::Bytes;
use serde_json::Value;

use super::openai_compatible::fallback_message;
use super::{json_post, ChatStream, ProviderApi, SendContext};
use crate::config::raw::LitellmParams;
use crate::deployment::Deployment;
use crate::error::{ErrorKind, GatewayError};
use crate::openai::{ChatCompletion, ChatRequest};
use crate::secret::Secret;

/// The variable LiteLLM reads a Bedrock API key from.
pub const API_KEY_ENV: &str = "AWS_BEARER_TOKEN_BEDROCK";
/// LiteLLM's region when neither the deployment nor the environment names one.
const DEFAULT_REGION: &str = "us-west-2";
/// The SigV4 service name of the Bedrock runtime.
const SIGNING_SERVICE: &str = "bedrock";

const ACCESS_KEY_ID: &str = "aws_access_key_id";
const SECRET_ACCESS_KEY: &str = "aws_secret_access_key";
const REGION: &str = "aws_region_name";
const RUNTIME_ENDPOINT: &str = "aws_bedrock_runtime_endpoint";

/// LiteLLM's other ways to obtain AWS credentials (STS, profiles); they need calls or files
/// Tollgate does not make, so a config using them is refused rather than failing later.
const UNSUPPORTED_CREDENTIAL_PARAMS: &[&str] = &[
    "aws_role_name",
    "aws_session_name",
    "aws_profile_name",
    "aws_web_identity_token",
    "aws_sts_endpoint",
];

pub struct Bedrock;

#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
impl ProviderApi for Bedrock {
    fn supported_chat_params(&self) -> Option<&'static [&'static str]> {
        Some(converse::SUPPORTED_PARAMS)
    }

    fn chat_request(
        &self,
        req: &ChatRequest,
        d: &Deployment,
    ) -> Result<http::Request<Bytes>, GatewayError> {
        let model = model_id(d);
        let body = converse::request_body(req, d, model)?;
        let (operation, accept) = if req.is_stream() {
            ("converse-stream", "application/vnd.amazon.eventstream")
        } else {
            ("converse", "application/json")
        };
        post(d, &model_url(d, model, operation), accept, &body)
    }

    fn chat_response(
        &self,
        body: &[u8],
        req: &ChatRequest,
        _d: &Deployment,
    ) -> Result<ChatCompletion, GatewayError> {
        converse::completion(body, converse::json_mode(req))
    }

    fn chat_stream(&self, req: &ChatRequest, _d: &Deployment) -> ChatStream {
        Box::new(stream::ConverseStream::new(converse::json_mode(req)))
    }

    fn error(&self, status: u16, body: &[u8]) -> GatewayError {
        bedrock_error(status, body)
    }

    fn embeddings_request(
        &self,
        req: &Value,
        d: &Deployment,
    ) -> Result<http::Request<Bytes>, GatewayError> {
        let model = model_id(d);
        let body = embeddings::request_body(req, model)?;
        post(d, &model_url(d, model, "invoke"), "application/json", &body)
    }

    fn embeddings_response(&self, body: &[u8], d: &Deployment) -> Result<Value, GatewayError> {
        embeddings::response(body, model_id(d))
    }

    /// Signs every attempt afresh (a SigV4 signature is dated); bearer keys were set when the
    /// request was built.
    async fn authorize(
        &self,
        mut request: http::Request<Bytes>,
        d: &Deployment,
        ctx: &SendContext<'_>,
    ) -> Result<http::Request<Bytes>, GatewayError> {
        if d.params.api_key.is_some() {
            return Ok(request);
        }
        let creds = credentials(d)?;
        sigv4::sign(
            &mut request,
            &creds,
            region(d),
            SIGNING_SERVICE,
            ctx.clock.now_ms(),
        )?;
        Ok(request)
    }
}

// --------------------------------------------------------------------------- endpoints

/// The Bedrock model id: LiteLLM's route prefixes (`converse/`, `invoke/`) are dropped, as
/// chat always goes through Converse. Cross-region profiles (`us.anthropic...`) and ARNs are
/// ids like any other.
fn model_id(d: &Deployment) -> &str {
    let m = d.upstream_model.as_str();
    m.strip_prefix("converse/")
        .or_else(|| m.strip_prefix("invoke/"))
        .unwrap_or(m)
}

fn region(d: &Deployment) -> &str {
    str_param(&d.params, REGION).unwrap_or(DEFAULT_REGION)
}

/// `aws_bedrock_runtime_endpoint`, else `api_base`, else the region's public endpoint.
fn endpoint(d: &Deployment) -> String {
    let configured = str_param(&d.params, RUNTIME_ENDPOINT).or(d.params.api_base.as_deref());
    match configured {
        Some(base) => base.trim_end_matches('/').to_string(),
        None => format!("https://bedrock-runtime.{}.amazonaws.com", region(d)),
    }
}

/// `{endpoint}/model/{id}/{operation}`; the id is one path segment, so `:` and the `/` of
/// ARNs are percent-encoded (and SigV4 signs exactly this encoded path).
fn model_url(d: &Deployment, model: &str, operation: &str) -> String {
    format!(
        "{}/model/{}/{operation}",
        endpoint(d),
        sigv4::uri_encode(model, true)
    )
}

fn post(
    d: &Deployment,
    url: &str,
    accept: &str,
    body: &Value,
) -> Result<http::Request<Bytes>, GatewayError> {
    let body =
        serde_json::to_vec(body).map_err(|e| GatewayError::invalid_request(e.to_string()))?;
    let bearer = d
        .params
        .api_key
        .as_ref()
        .map(|k| format!("Bearer {}", k.expose()));
    let mut headers = vec![("accept", accept)];
    if let Some(b) = bearer.as_deref() {
        headers.push(("authorization", b));
    }
    json_post(url, &headers, body)
}

// ------------------------------------------------------------------------- credentials

fn str_param<'a>(params: &'a LitellmParams, key: &str) -> Option<&'a str> {
    params
        .extra
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

/// A credential that is set and not blank.
fn secret_param(secret: &Option<Secret>) -> Option<&str> {
    secret
        .as_ref()
        .map(Secret::expose)
        .filter(|s| !s.trim().is_empty())
}

fn credentials(d: &Deployment) -> Result<sigv4::Credentials<'_>, GatewayError> {
    let missing = |field: &str| {
        GatewayError::new(
            ErrorKind::Authentication,
            format!(
                "bedrock deployment {:?} has no {field}: set it in litellm_params, or set api_key to a Bedrock API key",
                d.model_name
            ),
        )
    };
    Ok(sigv4::Credentials {
        access_key_id: str_param(&d.params, ACCESS_KEY_ID).ok_or_else(|| missing(ACCESS_KEY_ID))?,
        secret_access_key: secret_param(&d.params.aws_secret_access_key)
            .ok_or_else(|| missing(SECRET_ACCESS_KEY))?,
        session_token: secret_param(&d.params.aws_session_token),
    })
}

/// Config-load hook: fills the AWS settings a deployment leaves out from the standard
/// variables (`lookup` only works at load), and refuses one that cannot authenticate.
/// The error names the `litellm_params` field at fault, never a value.
pub fn complete_params(
    params: &mut LitellmParams,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), (&'static str, String)> {
    for field in UNSUPPORTED_CREDENTIAL_PARAMS {
        if params.extra.get(*field).is_some_and(|v| !v.is_null()) {
            return Err((
                field,
                "is not supported by Tollgate; give aws_access_key_id and aws_secret_access_key (or the AWS_* variables)".into(),
            ));
        }
    }
    // The secret key and session token are typed `Secret`s, checked when the file is read.
    for field in [ACCESS_KEY_ID, REGION, RUNTIME_ENDPOINT] {
        if params
            .extra
            .get(field)
            .is_some_and(|v| !v.is_null() && !v.is_string())
        {
            return Err((field, "must be a string".into()));
        }
    }
    let env = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| lookup(n).filter(|v| !v.is_empty()))
    };
    if str_param(params, REGION).is_none() {
        if let Some(r) = env(&["AWS_REGION_NAME", "AWS_REGION", "AWS_DEFAULT_REGION"]) {
            params.extra.insert(REGION.into(), Value::String(r));
        }
    }
    // A Bedrock API key replaces signing altogether.
    if params.api_key.is_some() {
        return Ok(());
    }
    match (
        str_param(params, ACCESS_KEY_ID).is_some(),
        secret_param(&params.aws_secret_access_key).is_some(),
    ) {
        (true, true) => Ok(()),
        (true, false) => Err((
            SECRET_ACCESS_KEY,
            "must be set together with aws_access_key_id".into(),
        )),
        (false, true) => Err((
            ACCESS_KEY_ID,
            "must be set together with aws_secret_access_key".into(),
        )),
        (false, false) => {
            let (Some(id), Some(secret)) =
                (env(&["AWS_ACCESS_KEY_ID"]), env(&["AWS_SECRET_ACCESS_KEY"]))
            else {
                return Err((
                    ACCESS_KEY_ID,
                    "is not set and AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY are not in the environment; give AWS credentials, or api_key (AWS_BEARER_TOKEN_BEDROCK) for a Bedrock API key".into(),
                ));
            };
            params.extra.insert(ACCESS_KEY_ID.into(), Value::String(id));
            params.aws_secret_access_key = Some(Secret::from(secret));
            // The environment's session token belongs to the environment's keys only.
            params.aws_session_token = env(&["AWS_SESSION_TOKEN"]).map(Secret::from);
            Ok(())
        }
    }
}

// ------------------------------------------------------------------------------ errors

/// Reads Bedrock's `{"message": "..."}` error body, keeping the upstream status. The
/// exception name travels in the `x-amzn-errortype` header, which this hook does not see; it
/// is taken from the body's `__type` when present, else from the status.
pub fn bedrock_error(status: u16, body: &[u8]) -> GatewayError {
    let value: Option<Value> = serde_json::from_slice(body).ok();
    let message = value.as_ref().and_then(|v| {
        v.get("message")
            .or_else(|| v.get("Message"))
            .and_then(Value::as_str)
    });
    let Some(message) = message else {
        return GatewayError::upstream(status, fallback_message(status, body));
    };
    let exception = value
        .as_ref()
        .and_then(|v| v.get("__type").or_else(|| v.get("code")))
        .and_then(Value::as_str)
        .map(exception_name)
        .or_else(|| exception_for_status(status));
    error_with(status, exception, message)
}

/// An error from its status, exception name and message, spotting context-window overflows.
fn error_with(status: u16, exception: Option<&str>, message: &str) -> GatewayError {
    let mut e = GatewayError::upstream(status, message);
    e.code = if status == 400 && is_context_window(message) {
        Some("context_length_exceeded".into())
    } else {
        exception.map(str::to_string)
    };
    e
}

/// `com.amazon.coral.validate#ValidationException` or `ValidationException:http://...`
/// → `ValidationException`.
fn exception_name(raw: &str) -> &str {
    let after_hash = raw.rsplit('#').next().unwrap_or(raw);
    after_hash.split(':').next().unwrap_or(after_hash)
}

/// The exception Bedrock documents for each status, when the body does not name it.
fn exception_for_status(status: u16) -> Option<&'static str> {
    Some(match status {
        400 => "ValidationException",
        403 => "AccessDeniedException",
        404 => "ResourceNotFoundException",
        408 => "ModelTimeoutException",
        424 => "ModelErrorException",
        429 => "ThrottlingException",
        500 => "InternalServerException",
        503 => "ServiceUnavailableException",
        _ => return None,
    })
}

/// The status an exception stands for, for exceptions that arrive inside a stream.
fn status_for_exception(exception: &str) -> u16 {
    let lower = exception.to_ascii_lowercase();
    match lower.trim_end_matches("exception") {
        "validation" => 400,
        "accessdenied" => 403,
        "resourcenotfound" => 404,
        "modeltimeout" => 408,
        "modelstreamerror" | "modelerror" => 424,
        "throttling" | "modelnotready" => 429,
        "serviceunavailable" => 503,
        _ => 500,
    }
}

/// Bedrock reports an over-long prompt as a plain ValidationException; a router must be able
/// to tell it apart to use `context_window_fallbacks`. Phrases seen from Bedrock's models
/// (and matched by LiteLLM).
fn is_context_window(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    // "max_tokens ... exceeds the maximum" is about the answer, not the prompt.
    let about_output = m.contains("max_tokens") || m.contains("maxtokens");
    m.contains("too long")
        || m.contains("too many input tokens")
        || m.contains("too many tokens")
        || m.contains("expected maxlength")
        || m.contains("context length")
        || m.contains("context window")
        || (m.contains("exceeds the maximum") && !about_output)
}

#[cfg(test)]
mod tests;
