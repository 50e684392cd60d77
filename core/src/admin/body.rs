//! Reading admin requests: JSON bodies into typed structs with the wrong field named, and
//! query strings. Bad input is a 4xx in OpenAI's shape, never a 500.

use bytes::Bytes;
use http::StatusCode;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{ErrorKind, GatewayError, Origin};
use crate::gateway::{json_response, GatewayResponse};

/// The body as `T`. An empty body reads as `{}`. Invalid JSON is a 400; a field of the wrong
/// type (or a missing required one) is a 422 naming the field in `param`.
pub fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, GatewayError> {
    let text: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    let value: serde_json::Value = serde_json::from_slice(text).map_err(|e| {
        GatewayError::invalid_request(format!("The request body is not valid JSON: {e}"))
    })?;
    if !value.is_object() {
        return Err(GatewayError::invalid_request(
            "The request body must be a JSON object.",
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.inner().to_string();
        // A missing field is reported at the parent ("."): name the field itself.
        let (path, inner) = match (e.path().to_string(), missing_field(&inner)) {
            (p, Some(field)) if p == "." => (field.to_string(), "field required".to_string()),
            (p, Some(field)) => (format!("{p}.{field}"), "field required".to_string()),
            (p, None) => (p, inner),
        };
        GatewayError::new(ErrorKind::Unprocessable, format!("{path}: {inner}"))
            .with_origin(Origin::Client)
            .with_param(path)
    })
}

/// The field serde's "missing field `name`" message names.
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

/// A query parameter, percent-decoded.
pub fn query(req: &http::Request<Bytes>, name: &str) -> Option<String> {
    query_pairs(req)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// Every value of a repeated query parameter (`?keys=a&keys=b`), percent-decoded.
pub fn query_all(req: &http::Request<Bytes>, name: &str) -> Vec<String> {
    query_pairs(req)
        .into_iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v)
        .collect()
}

/// A numeric query parameter; a non-number is a 422 naming it.
pub fn query_u64(req: &http::Request<Bytes>, name: &str) -> Result<Option<u64>, GatewayError> {
    query(req, name)
        .map(|v| {
            v.trim().parse::<u64>().map_err(|_| {
                GatewayError::new(
                    ErrorKind::Unprocessable,
                    format!("{name} must be a non-negative integer"),
                )
                .with_origin(Origin::Client)
                .with_param(name)
            })
        })
        .transpose()
}

fn query_pairs(req: &http::Request<Bytes>) -> Vec<(String, String)> {
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
                continue;
            }
            (b'+', _) => out.push(b' '),
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A 200 with `value` as JSON.
pub fn ok<T: Serialize>(value: &T) -> GatewayResponse {
    json_response(StatusCode::OK, value)
}

/// A 404 naming what was not found.
pub fn not_found(what: &str, id: &str) -> GatewayError {
    GatewayError::new(ErrorKind::NotFound, format!("{what} not found: {id}"))
        .with_origin(Origin::Client)
        .with_code("not_found")
}

/// A 400 for a field the route needs.
pub fn missing(field: &str) -> GatewayError {
    GatewayError::invalid_request(format!("{field} is required")).with_param(field)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Body {
        max_budget: Option<f64>,
        models: Option<Vec<String>>,
    }

    #[test]
    fn wrong_types_name_the_field() {
        let e = parse::<Body>(&Bytes::from(r#"{"max_budget": "lots"}"#)).unwrap_err();
        assert_eq!(e.status().as_u16(), 422);
        assert_eq!(e.param.as_deref(), Some("max_budget"));
        let e = parse::<Body>(&Bytes::from(r#"{"models": [1]}"#)).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("models[0]"));
        let e = parse::<Body>(&Bytes::from("{nope")).unwrap_err();
        assert_eq!(e.status().as_u16(), 400);
        assert!(parse::<Body>(&Bytes::new()).is_ok(), "empty is {{}}");
        assert_eq!(
            parse::<Body>(&Bytes::from("[]"))
                .unwrap_err()
                .status()
                .as_u16(),
            400
        );
    }

    #[test]
    fn query_strings_decode() {
        let req = http::Request::builder()
            .uri("/key/info?key=sk-a%2Bb&page=2&x=%zz&keys=a&keys=b")
            .body(Bytes::new())
            .unwrap();
        assert_eq!(query(&req, "key").as_deref(), Some("sk-a+b"));
        assert_eq!(query_u64(&req, "page").unwrap(), Some(2));
        assert_eq!(query(&req, "x").as_deref(), Some("%zz"));
        assert_eq!(query_all(&req, "keys"), vec!["a", "b"]);
        assert!(query_u64(&req, "key").is_err());
    }
}
