//! Stability AI's v2beta Stable Image generation:
//! `POST /v2beta/stable-image/generate/{sd3|ultra|core}`, a multipart form in, and with
//! `Accept: application/json` a JSON answer `{"image": <base64 PNG>, "finish_reason",
//! "seed"}` (with `Accept: image/*`, the raw PNG, as the real API sends).
//!
//! Needs `authorization: Bearer <non-empty>`. Errors use Stability's shape,
//! `{"id", "name", "errors": [...]}`. The model the scenarios read is the form's `model`
//! (the sd3 endpoint's variant), else `stable-image-<endpoint>`; requests are recorded
//! under it with the form fields as a JSON body.

use bytes::Bytes;
use hyper::header::{ACCEPT, CONTENT_TYPE};
use hyper::http::request::Parts;
use hyper::{HeaderMap, Response};
use serde_json::{Map, Value};

use crate::body::MockBody;
use crate::http::{self, next_id, Resp};
use crate::images::PNG_BASE64;
use crate::json::Obj;

const ASPECT_RATIOS: &[&str] = &[
    "16:9", "1:1", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21",
];
const OUTPUT_FORMATS: &[&str] = &["png", "jpeg", "webp"];
/// The sd3 endpoint's `model` values.
const SD3_MODELS: &[&str] = &[
    "sd3.5-large",
    "sd3.5-large-turbo",
    "sd3.5-medium",
    "sd3.5-flash",
    "sd3-large",
    "sd3-large-turbo",
    "sd3-medium",
];

/// The endpoint in `/v2beta/stable-image/generate/{endpoint}`.
pub fn parse_path(path: &str) -> Option<&str> {
    let e = path.strip_prefix("/v2beta/stable-image/generate/")?;
    ["sd3", "ultra", "core"].contains(&e).then_some(e)
}

/// `{"id", "name", "errors"}` with a status.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub name: &'static str,
    pub errors: Vec<String>,
}

impl ApiError {
    pub fn new(status: u16, name: &'static str, error: impl Into<String>) -> Self {
        ApiError {
            status,
            name,
            errors: vec![error.into()],
        }
    }

    pub fn body(&self) -> Vec<u8> {
        Obj::new()
            .str("id", &format!("{:032x}", next_id()))
            .str("name", self.name)
            .val("errors", &self.errors)
            .finish()
    }

    pub fn response(&self) -> Resp {
        http::json(self.status, self.body())
    }
}

/// The error a `...-error-NNN` model answers with, named as Stability names them.
pub fn simulated_error(status: u16, model: &str) -> ApiError {
    let name = match status {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "content_moderation",
        404 => "not_found",
        413 => "payload_too_large",
        422 => "invalid_language",
        429 => "rate_limit_exceeded",
        500..=599 => "internal_error",
        _ => "bad_request",
    };
    ApiError::new(
        status,
        name,
        format!("mock-provider simulated error {status} for model '{model}'"),
    )
}

/// The text fields of a `multipart/form-data` body, in order (file parts kept as lossy text).
pub fn parse_form(headers: &HeaderMap, body: &[u8]) -> Result<Vec<(String, String)>, ApiError> {
    let bad = |why: &str| ApiError::new(400, "bad_request", why.to_owned());
    let ct = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("multipart/form-data") {
        return Err(bad("content-type: must be multipart/form-data"));
    }
    let boundary = ct
        .split(';')
        .filter_map(|p| p.trim().strip_prefix("boundary="))
        .next()
        .map(|b| b.trim_matches('"'))
        .filter(|b| !b.is_empty())
        .ok_or_else(|| bad("content-type: multipart boundary missing"))?;
    let text = String::from_utf8_lossy(body);
    let delimiter = format!("--{boundary}");
    let mut pieces = text.split(delimiter.as_str());
    if pieces.next().is_none() {
        return Err(bad("body: malformed multipart"));
    }
    let mut fields = Vec::new();
    let mut closed = false;
    for piece in pieces {
        if piece.starts_with("--") {
            closed = true;
            break;
        }
        let part = piece
            .strip_prefix("\r\n")
            .ok_or_else(|| bad("body: malformed multipart"))?;
        let (head, value) = part
            .split_once("\r\n\r\n")
            .ok_or_else(|| bad("body: malformed multipart part"))?;
        let name = head
            .split("name=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .ok_or_else(|| bad("body: part without a name"))?;
        let value = value.strip_suffix("\r\n").unwrap_or(value);
        fields.push((name.to_owned(), value.to_owned()));
    }
    if !closed {
        return Err(bad("body: multipart not terminated"));
    }
    Ok(fields)
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The model a request is recorded and scripted under.
pub fn model_of(endpoint: &str, fields: &[(String, String)]) -> String {
    match field(fields, "model") {
        Some(m) if endpoint == "sd3" => m.to_owned(),
        _ => format!("stable-image-{endpoint}"),
    }
}

/// The form as a JSON object, for the recorder.
pub fn fields_json(fields: &[(String, String)]) -> Bytes {
    let map: Map<String, Value> = fields
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    Bytes::from(serde_json::to_vec(&map).unwrap_or_default())
}

pub fn check_auth(parts: &Parts) -> Result<(), ApiError> {
    if http::bearer(&parts.headers).is_none() {
        return Err(ApiError::new(
            401,
            "unauthorized",
            "authorization: missing or invalid Bearer API key",
        ));
    }
    Ok(())
}

/// Stability's field checks: a prompt, and known `aspect_ratio`, `output_format` and
/// sd3 `model` values.
pub fn validate(endpoint: &str, fields: &[(String, String)]) -> Result<(), ApiError> {
    let bad = |msg: String| ApiError::new(400, "bad_request", msg);
    match field(fields, "prompt") {
        Some(p) if !p.trim().is_empty() => {}
        _ => return Err(bad("prompt: cannot be empty".into())),
    }
    if let Some(r) = field(fields, "aspect_ratio") {
        if !ASPECT_RATIOS.contains(&r) {
            return Err(bad(format!(
                "aspect_ratio: must be one of {}",
                ASPECT_RATIOS.join(", ")
            )));
        }
    }
    if let Some(f) = field(fields, "output_format") {
        if !OUTPUT_FORMATS.contains(&f) {
            return Err(bad("output_format: must be one of png, jpeg, webp".into()));
        }
    }
    if let Some(m) = field(fields, "model") {
        let base = SD3_MODELS.iter().any(|known| m.starts_with(known));
        if endpoint != "sd3" || !base {
            return Err(bad(format!(
                "model: '{m}' is not available on this endpoint"
            )));
        }
    }
    Ok(())
}

/// The image: JSON when asked for (`Accept: application/json`), else raw PNG bytes.
pub fn generate(parts: &Parts, fields: &[(String, String)]) -> Resp {
    let accept = parts
        .headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let seed = field(fields, "seed")
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(1_234_567);
    if accept.contains("application/json") {
        let body = Obj::new()
            .str("image", PNG_BASE64)
            .str("finish_reason", "SUCCESS")
            .num("seed", seed)
            .finish();
        return http::json(200, body);
    }
    let png = decode_base64(PNG_BASE64);
    let mut r = Response::new(MockBody::full(png));
    r.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("image/png"),
    );
    r
}

fn decode_base64(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for v in s.bytes().filter_map(val) {
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use hyper::header::AUTHORIZATION;

    fn form(fields: &[(&str, &str)]) -> (HeaderMap, Vec<u8>) {
        let mut body = String::new();
        for (k, v) in fields {
            body.push_str(&format!(
                "--B0\r\ncontent-disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
            ));
        }
        body.push_str("--B0--\r\n");
        let mut h = HeaderMap::new();
        h.insert(
            CONTENT_TYPE,
            "multipart/form-data; boundary=B0".parse().unwrap(),
        );
        (h, body.into_bytes())
    }

    fn parts(accept: &str, auth: Option<&str>) -> Parts {
        let mut b =
            hyper::Request::post("/v2beta/stable-image/generate/sd3").header(ACCEPT, accept);
        if let Some(a) = auth {
            b = b.header(AUTHORIZATION, a);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn paths() {
        assert_eq!(
            parse_path("/v2beta/stable-image/generate/core"),
            Some("core")
        );
        assert_eq!(parse_path("/v2beta/stable-image/generate/sd3"), Some("sd3"));
        assert_eq!(parse_path("/v2beta/stable-image/generate/x"), None);
        assert_eq!(parse_path("/v1/images/generations"), None);
    }

    #[test]
    fn multipart_fields_parse_with_line_breaks_kept() {
        let (h, b) = form(&[("prompt", "a fox\r\nin snow"), ("seed", "3")]);
        let f = parse_form(&h, &b).unwrap();
        assert_eq!(f[0], ("prompt".into(), "a fox\r\nin snow".into()));
        assert_eq!(field(&f, "seed"), Some("3"));
        let json: Value = serde_json::from_slice(&fields_json(&f)).unwrap();
        assert_eq!(json["seed"], "3");
    }

    #[test]
    fn malformed_forms_are_400() {
        let (_, b) = form(&[("prompt", "x")]);
        let mut json_ct = HeaderMap::new();
        json_ct.insert(CONTENT_TYPE, "application/json".parse().unwrap());
        assert_eq!(parse_form(&json_ct, &b).unwrap_err().status, 400);
        let (h, _) = form(&[]);
        assert!(parse_form(&h, b"--B0\r\nno-head").is_err());
        assert!(parse_form(
            &h,
            b"--B0\r\ncontent-disposition: form-data; name=\"p\"\r\n\r\nx\r\n"
        )
        .is_err());
    }

    #[test]
    fn validation_and_models() {
        let ok = |f: &[(&str, &str)]| {
            let (h, b) = form(f);
            validate("sd3", &parse_form(&h, &b).unwrap())
        };
        ok(&[
            ("prompt", "p"),
            ("aspect_ratio", "16:9"),
            ("model", "sd3.5-large"),
        ])
        .unwrap();
        ok(&[("prompt", "p"), ("model", "sd3.5-large-error-429")]).unwrap();
        assert!(ok(&[("prompt", " ")]).is_err());
        assert!(ok(&[("prompt", "p"), ("aspect_ratio", "7:3")]).is_err());
        assert!(ok(&[("prompt", "p"), ("output_format", "gif")]).is_err());
        assert!(ok(&[("prompt", "p"), ("model", "dall-e-3")]).is_err());
        let (h, b) = form(&[("prompt", "p"), ("model", "sd3.5-large")]);
        let f = parse_form(&h, &b).unwrap();
        assert_eq!(model_of("sd3", &f), "sd3.5-large");
        assert_eq!(model_of("core", &f), "stable-image-core");
    }

    #[test]
    fn auth_and_error_shape() {
        assert_eq!(check_auth(&parts("*/*", None)).unwrap_err().status, 401);
        check_auth(&parts("*/*", Some("Bearer k"))).unwrap();
        let e = simulated_error(429, "m");
        let v: Value = serde_json::from_slice(&e.body()).unwrap();
        assert_eq!(v["name"], "rate_limit_exceeded");
        assert!(v["errors"][0].as_str().unwrap().contains("429"));
        assert_eq!(v["id"].as_str().unwrap().len(), 32);
    }

    #[tokio::test]
    async fn json_or_raw_png() {
        let (h, b) = form(&[("prompt", "p"), ("seed", "5")]);
        let f = parse_form(&h, &b).unwrap();
        let r = generate(&parts("application/json", None), &f);
        let body = r.into_body().collect().await.unwrap().to_bytes();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            (v["image"].as_str(), v["seed"].as_u64()),
            (Some(PNG_BASE64), Some(5))
        );
        assert_eq!(v["finish_reason"], "SUCCESS");
        let r = generate(&parts("image/*", None), &f);
        assert_eq!(r.headers()[CONTENT_TYPE], "image/png");
        let body = r.into_body().collect().await.unwrap().to_bytes();
        assert!(body.starts_with(b"\x89PNG\r\n\x1a\n"));
    }
}
