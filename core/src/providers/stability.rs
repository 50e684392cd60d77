//! Stability AI (`stability/<model>`): OpenAI image generation onto the v2beta Stable Image
//! API, `POST {base}/v2beta/stable-image/generate/{sd3|ultra|core}`.
//!
//! The request is a multipart form (`prompt`, `aspect_ratio`, `output_format`, ...) with
//! `Accept: application/json`, so the answer is `{"image": <base64>, "finish_reason",
//! "seed"}` rather than raw bytes. What maps from OpenAI's request:
//!
//! - `size` becomes the nearest `aspect_ratio` Stability offers (`1792x1024` → `16:9`);
//!   an explicit `aspect_ratio` wins;
//! - `response_format: "url"` is answered with a `data:` URL (Stability hosts no images);
//! - `n` above 1, `quality` and `style` have no Stability equivalent: refused with a 400
//!   naming them, or dropped when the deployment sets `drop_params`;
//! - Stability's own fields pass through: `negative_prompt`, `seed`, `style_preset`,
//!   `cfg_scale`, `output_format` (default `png`).
//!
//! The `sd3` endpoint serves several models; the upstream model (`sd3.5-large`, ...) is sent
//! as its `model` field. A filtered result (`finish_reason: CONTENT_FILTERED`, or the
//! `content_moderation` error) is a 400 `content_policy_violation`, which
//! `content_policy_fallbacks` act on.

use bytes::Bytes;
use serde_json::{json, Value};

use super::multipart::Form;
use super::openai_compatible::fallback_message;
use super::{join_url, parse_json, unsupported, ProviderApi};
use crate::deployment::Deployment;
use crate::error::{ErrorKind, GatewayError};
use crate::openai::ChatRequest;
use crate::secret::Secret;
use crate::validate::parse_size;

pub const DEFAULT_BASE: &str = "https://api.stability.ai";
pub const API_KEY_ENV: &str = "STABILITY_API_KEY";

/// The aspect ratios the v2beta generate endpoints take.
const ASPECT_RATIOS: &[(u32, u32)] = &[
    (1, 1),
    (16, 9),
    (9, 16),
    (21, 9),
    (9, 21),
    (3, 2),
    (2, 3),
    (5, 4),
    (4, 5),
];

/// Stability's form fields a client may send as they are.
const PASSTHROUGH: &[&str] = &["negative_prompt", "seed", "style_preset", "cfg_scale"];

/// OpenAI fields Stability has no equivalent for.
const NO_EQUIVALENT: &[&str] = &["quality", "style"];

pub struct Stability;

impl ProviderApi for Stability {
    fn chat_request(
        &self,
        _req: &ChatRequest,
        d: &Deployment,
    ) -> Result<http::Request<Bytes>, GatewayError> {
        Err(unsupported(d, "chat completions"))
    }

    fn error(&self, status: u16, body: &[u8]) -> GatewayError {
        stability_error(status, body)
    }

    fn image_request(
        &self,
        req: &Value,
        d: &Deployment,
    ) -> Result<http::Request<Bytes>, GatewayError> {
        let form = form(req, d)?;
        let (content_type, body) = form.encode();
        let base = d.params.api_base.as_deref().unwrap_or(DEFAULT_BASE);
        let url = join_url(base, endpoint(&d.upstream_model));
        let mut b = http::Request::post(&url)
            .header(http::header::CONTENT_TYPE, content_type)
            .header(http::header::ACCEPT, "application/json");
        if let Some(key) = d.params.api_key.as_ref().map(Secret::expose) {
            b = b.header(http::header::AUTHORIZATION, format!("Bearer {key}"));
        }
        b.body(Bytes::from(body)).map_err(|e| {
            GatewayError::invalid_request(format!("cannot build upstream request to {url}: {e}"))
                .with_param("api_base")
        })
    }

    fn image_response(
        &self,
        body: &[u8],
        req: &Value,
        _d: &Deployment,
    ) -> Result<Value, GatewayError> {
        let answer: Value = parse_json(body)?;
        if answer.get("finish_reason").and_then(Value::as_str) == Some("CONTENT_FILTERED") {
            return Err(content_filtered(
                "Stability AI filtered the generated image (finish_reason CONTENT_FILTERED)",
            ));
        }
        let Some(image) = answer.get("image").and_then(Value::as_str) else {
            return Err(GatewayError::new(
                ErrorKind::BadGateway,
                "Stability AI's answer has no image",
            ));
        };
        let item = if req.get("response_format").and_then(Value::as_str) == Some("url") {
            let format = req
                .get("output_format")
                .and_then(Value::as_str)
                .unwrap_or("png");
            json!({"url": format!("data:image/{format};base64,{image}")})
        } else {
            json!({"b64_json": image})
        };
        Ok(json!({"data": [item]}))
    }
}

/// The generate endpoint serving `model`: Ultra, Core, or SD3 (the default, as LiteLLM's).
pub fn endpoint(model: &str) -> &'static str {
    let m = model.to_ascii_lowercase();
    if m.contains("sd3") {
        "/v2beta/stable-image/generate/sd3"
    } else if m.contains("ultra") {
        "/v2beta/stable-image/generate/ultra"
    } else if m.contains("core") {
        "/v2beta/stable-image/generate/core"
    } else {
        "/v2beta/stable-image/generate/sd3"
    }
}

/// The form for `req`, or a 400 naming the first field Stability cannot honour.
fn form(req: &Value, d: &Deployment) -> Result<Form, GatewayError> {
    let mut form = Form::new();
    let prompt = req.get("prompt").and_then(Value::as_str).unwrap_or("");
    form.text("prompt", prompt);
    let model = d.upstream_model.to_ascii_lowercase();
    if endpoint(&model).ends_with("/sd3")
        && (model.starts_with("sd3.") || model.starts_with("sd3-"))
    {
        form.text("model", model.clone());
    }
    let present = |k: &str| req.get(k).filter(|v| !v.is_null());
    if present("n").and_then(Value::as_u64).is_some_and(|n| n > 1) && !d.drop_params {
        return Err(no_equivalent(
            "n",
            "Stability AI returns one image per request; send n: 1",
        ));
    }
    if let Some(k) = NO_EQUIVALENT.iter().find(|k| present(k).is_some()) {
        if !d.drop_params {
            return Err(no_equivalent(k, "Stability AI has no equivalent"));
        }
    }
    if let Some(ratio) = present("aspect_ratio") {
        form.text("aspect_ratio", scalar_text(ratio));
    } else if let Some(size) = present("size").and_then(Value::as_str) {
        if let Some((w, h)) = parse_size(size) {
            form.text("aspect_ratio", nearest_aspect_ratio(w, h));
        }
    }
    let output_format = present("output_format").map_or_else(|| "png".into(), scalar_text);
    form.text("output_format", output_format);
    for k in PASSTHROUGH {
        if let Some(v) = present(k) {
            form.text(k, scalar_text(v));
        }
    }
    Ok(form)
}

fn no_equivalent(param: &str, why: &str) -> GatewayError {
    GatewayError::invalid_request(format!(
        "stability does not support parameter '{param}' ({why}). To drop it instead, set `drop_params: true` in the deployment's litellm_params or in litellm_settings."
    ))
    .with_param(param)
    .with_code("unsupported_params")
}

/// A form value from JSON: strings as they are, numbers and booleans as written.
fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The supported `W:H` closest to `w/h`, compared on a log scale so that wide and tall
/// shapes are judged alike.
pub fn nearest_aspect_ratio(w: u32, h: u32) -> String {
    let target = (f64::from(w) / f64::from(h)).ln();
    let (rw, rh) = ASPECT_RATIOS
        .iter()
        .copied()
        .min_by(|a, b| {
            let da = ((f64::from(a.0) / f64::from(a.1)).ln() - target).abs();
            let db = ((f64::from(b.0) / f64::from(b.1)).ln() - target).abs();
            da.total_cmp(&db)
        })
        .unwrap_or((1, 1));
    format!("{rw}:{rh}")
}

/// Reads `{"id", "name", "errors": [...]}`, keeping the status; content moderation becomes
/// `content_policy_violation`.
pub fn stability_error(status: u16, body: &[u8]) -> GatewayError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let name = parsed
        .as_ref()
        .and_then(|v| v.get("name"))
        .and_then(Value::as_str);
    let errors: Vec<&str> = parsed
        .as_ref()
        .and_then(|v| v.get("errors"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let message = if errors.is_empty() {
        parsed
            .as_ref()
            .and_then(|v| v.get("message"))
            .and_then(Value::as_str)
            .map_or_else(|| fallback_message(status, body), str::to_string)
    } else {
        errors.join("; ")
    };
    if name == Some("content_moderation") {
        return content_filtered(&message);
    }
    let mut e = GatewayError::upstream(status, message);
    e.code = name.map(str::to_string);
    e
}

fn content_filtered(message: &str) -> GatewayError {
    GatewayError::new(ErrorKind::InvalidRequest, message)
        .with_param("prompt")
        .with_code("content_policy_violation")
}

#[cfg(test)]
mod tests;
