//! What every admin family and the config seed share to read requests and write answers:
//! JSON bodies into typed structs with the wrong field named, and query strings (bad input is
//! a 4xx in OpenAI's shape, never a 500); checks of the fields the bodies have in common
//! (amounts, budget periods) and the errors those checks give; generated ids; and turning a
//! stored record into LiteLLM's wire object (ISO 8601 times, spend read from its counter).

use bytes::Bytes;
use http::StatusCode;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::budget::{spend, Duration, Scope};
use crate::calendar::iso8601;
use crate::error::{ErrorKind, GatewayError, Origin};
use crate::gateway::{json_response, Gateway, GatewayResponse};
use crate::identity::caller::store_down;
use crate::ports::Entropy;
use crate::store::StoreError;

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

/// The record a Store read found, or a 404 naming `what` and `id` in `param` (a Store that
/// cannot be read is a 503).
pub fn found<T>(
    read: Result<Option<T>, StoreError>,
    what: &str,
    id: &str,
    param: &str,
) -> Result<T, GatewayError> {
    read.map_err(store_down)?
        .ok_or_else(|| not_found(what, id).with_param(param))
}

/// A 400 for a field the route needs.
pub fn missing(field: &str) -> GatewayError {
    GatewayError::invalid_request(format!("{field} is required")).with_param(field)
}

/// A random (version 4) UUID from the host's entropy, LiteLLM's id for teams and budgets.
pub fn new_uuid(entropy: &dyn Entropy) -> String {
    let mut b = [0u8; 16];
    entropy.fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// A well-formed body the route cannot accept as it is (422), naming the field.
pub fn unprocessable(param: &str, message: impl Into<String>) -> GatewayError {
    GatewayError::new(ErrorKind::Unprocessable, message)
        .with_origin(Origin::Client)
        .with_param(param)
}

/// A required field the body lacks (422, as LiteLLM's request models answer).
pub fn required(param: &str) -> GatewayError {
    unprocessable(param, format!("{param}: field required"))
}

/// A request the current state refuses (400), naming the field.
pub fn refused(param: &str, message: impl Into<String>) -> GatewayError {
    GatewayError::invalid_request(message).with_param(param)
}

/// A route called with the wrong method (405).
pub fn method_not_allowed(path: &str) -> GatewayError {
    GatewayError::invalid_request(format!("Method not allowed on {path}")).with_status(405)
}

/// Dollar amounts must be finite and not negative (LiteLLM answers 400).
pub fn check_amount(param: &str, value: Option<f64>) -> Result<(), GatewayError> {
    match value {
        Some(v) if !v.is_finite() || v < 0.0 => Err(refused(
            param,
            format!("{param} must be a non-negative finite number. Received: {v}"),
        )),
        _ => Ok(()),
    }
}

/// A `budget_duration` must be one the budget periods understand (422).
pub fn check_duration(param: &str, value: Option<&str>) -> Result<(), GatewayError> {
    match value {
        Some(d) if Duration::parse(d).is_none() => Err(unprocessable(
            param,
            format!("{param}: {d:?} is not a duration (30s, 30m, 1h, 1d, 7d, 30d, 1mo)"),
        )),
        _ => Ok(()),
    }
}

/// A soft budget only warns, so it must sit strictly below the hard one (LiteLLM's rule).
pub fn check_soft_below_max(soft: Option<f64>, max: Option<f64>) -> Result<(), GatewayError> {
    match (soft, max) {
        (Some(s), Some(m)) if s >= m => Err(refused(
            "soft_budget",
            format!("soft_budget ({s}) must be strictly lower than max_budget ({m})"),
        )),
        _ => Ok(()),
    }
}

/// Sets an optional field when the body names it (an absent or null field changes nothing,
/// as in LiteLLM's updates).
pub fn set<T>(field: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *field = value;
    }
}

/// A blank id counts as none (LiteLLM treats `"team_id": ""` as unset).
pub fn given(id: &Option<String>) -> Option<&str> {
    id.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Top-level fields of `input` that `parsed` did not take (typos in a config entry): a field
/// the body knows serializes back unless it was null.
pub fn unknown_fields<T: Serialize>(input: &Map<String, Value>, parsed: &T) -> Vec<String> {
    let known = match serde_json::to_value(parsed) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    input
        .iter()
        .filter(|(k, v)| !v.is_null() && !known.contains_key(*k))
        .map(|(k, _)| k.clone())
        .collect()
}

/// A stored record as a wire object: epoch-ms times (`*_at_ms`, `expires_ms`) become ISO 8601
/// fields without the suffix (null when unset), as LiteLLM's rows read.
pub fn wire<T: Serialize>(record: &T) -> Map<String, Value> {
    let mut map = match serde_json::to_value(record) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let timed: Vec<String> = map
        .keys()
        .filter(|k| k.ends_with("_at_ms") || *k == "expires_ms")
        .cloned()
        .collect();
    for k in timed {
        let ms = map.remove(&k).and_then(|v| v.as_u64()).filter(|ms| *ms > 0);
        map.insert(
            k.trim_end_matches("_ms").to_string(),
            ms.map_or(Value::Null, |ms| Value::String(iso8601(ms))),
        );
    }
    map
}

/// Fields LiteLLM always sends, as null where the record has none.
pub fn with_nulls(map: &mut Map<String, Value>, fields: &[&str]) {
    for f in fields {
        map.entry(f.to_string()).or_insert(Value::Null);
    }
}

/// What `scope` has spent in its current period of `duration`, in dollars.
pub async fn spent(
    gateway: &Gateway,
    scope: &Scope,
    duration: Option<&str>,
) -> Result<f64, GatewayError> {
    spend::spent_usd(
        gateway.directory().store().as_ref(),
        scope,
        duration,
        gateway.clock().now_ms(),
        gateway.config().governance.calendar,
    )
    .await
    .map_err(store_down)
}

/// When the current period of `duration` ends (LiteLLM's `budget_reset_at`), or null.
pub fn reset_at(gateway: &Gateway, duration: Option<&str>) -> Value {
    spend::reset_at_ms(
        duration,
        gateway.clock().now_ms(),
        gateway.config().governance.calendar,
    )
    .map_or(Value::Null, |ms| Value::String(iso8601(ms)))
}

/// The dollar figure as JSON (a float, never NaN).
pub fn usd(v: f64) -> Value {
    serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
}

/// What the governance families' tests share.
#[cfg(test)]
#[path = "fields_testing.rs"]
pub mod testing;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4() {
        let e = crate::gateway::tests::CountingEntropy::default();
        let (a, b) = (new_uuid(&e), new_uuid(&e));
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
    }

    #[test]
    fn records_go_on_the_wire_with_iso_times() {
        let m = wire(
            &serde_json::json!({"created_at_ms": 1_700_000_000_000u64, "updated_at_ms": 0, "expires_ms": null, "x": 1}),
        );
        assert_eq!(m["created_at"], "2023-11-14T22:13:20.000000+00:00");
        assert_eq!(m["updated_at"], Value::Null);
        assert_eq!(m["expires"], Value::Null);
        assert!(!m.contains_key("created_at_ms"));
    }

    #[test]
    fn unknown_fields_are_the_ones_not_taken() {
        #[derive(Serialize)]
        struct B {
            #[serde(skip_serializing_if = "Option::is_none")]
            max_budget: Option<f64>,
        }
        let input = serde_json::json!({"max_budget": 1.0, "max_budegt": 2.0, "nothing": null});
        let parsed = B {
            max_budget: Some(1.0),
        };
        assert_eq!(
            unknown_fields(input.as_object().unwrap(), &parsed),
            vec!["max_budegt"]
        );
    }

    #[test]
    fn checks_name_the_field() {
        let e = check_amount("max_budget", Some(-1.0)).unwrap_err();
        assert_eq!(
            (e.status().as_u16(), e.param.as_deref()),
            (400, Some("max_budget"))
        );
        let e = check_duration("budget_duration", Some("fortnight")).unwrap_err();
        assert_eq!(e.status().as_u16(), 422);
        assert!(check_duration("budget_duration", Some("30d")).is_ok());
        assert!(check_soft_below_max(Some(2.0), Some(1.0)).is_err());
        assert!(check_soft_below_max(Some(0.5), Some(1.0)).is_ok());
    }

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
        assert!(query_u64(&req, "key").is_err());
    }
}
