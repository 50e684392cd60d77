//! What the governance routes (teams, end users, budgets) and the config seed share: checks of
//! the fields their bodies have in common (amounts, budget periods), the errors those checks
//! give, generated ids, and turning a stored record into LiteLLM's wire object (ISO 8601
//! times, spend read from its counter).

use serde::Serialize;
use serde_json::{Map, Value};

use crate::budget::{spend, Duration, Scope};
use crate::calendar::iso8601;
use crate::error::{ErrorKind, GatewayError, Origin};
use crate::gateway::Gateway;
use crate::identity::caller::store_down;
use crate::ports::Entropy;

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

/// The body as `T`, as [`crate::admin::body::parse`] reads it, with a missing required field named
/// in `param` (the parser names the object that lacks it, `.` at the top).
pub fn parse<T: serde::de::DeserializeOwned>(body: &bytes::Bytes) -> Result<T, GatewayError> {
    crate::admin::body::parse(body)
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
}
