//! JSON Schema → the OpenAPI-3 subset Gemini accepts for `parameters` and `responseSchema`.
//!
//! Gemini refuses a request whose schema holds keys outside its `Schema` message
//! (`additionalProperties`, `$schema`, `strict`, `const`...), and it has no `$ref`. LiteLLM
//! cleans schemas the same way before sending them: inline `$defs`, turn `anyOf [X, null]`
//! into `nullable`, give bare `properties` an object type, and drop every key Gemini does not
//! know.

use serde_json::{Map, Value};

/// The keys of Gemini's `Schema` message; everything else is dropped.
const GEMINI_SCHEMA_KEYS: &[&str] = &[
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "items",
    "minItems",
    "maxItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "example",
    "default",
    "anyOf",
    "propertyOrdering",
];

/// Gemini takes only these string formats; any other `format` is refused upstream.
const GEMINI_STRING_FORMATS: &[&str] = &["enum", "date-time"];

/// How deep `$ref`s are followed; recursive schemas (a tree node holding nodes) cannot be
/// inlined, so past this depth a reference becomes a plain object.
const MAX_REF_DEPTH: usize = 8;

/// A copy of `schema` that Gemini accepts.
pub fn gemini_schema(schema: &Value) -> Value {
    let defs = definitions(schema);
    clean(schema, &defs, 0)
}

/// `$defs` and the older `definitions`, from the root.
fn definitions(schema: &Value) -> Map<String, Value> {
    let mut defs = Map::new();
    for key in ["definitions", "$defs"] {
        if let Some(Value::Object(d)) = schema.get(key) {
            defs.extend(d.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    defs
}

fn clean(schema: &Value, defs: &Map<String, Value>, depth: usize) -> Value {
    let Value::Object(obj) = schema else {
        return schema.clone();
    };
    if let Some(target) = obj.get("$ref").and_then(Value::as_str) {
        return resolve_ref(target, obj, defs, depth);
    }
    let mut out = Map::new();
    for (key, value) in obj {
        if !GEMINI_SCHEMA_KEYS.contains(&key.as_str()) {
            continue;
        }
        let cleaned = match key.as_str() {
            "properties" => match value {
                Value::Object(props) => Value::Object(
                    props
                        .iter()
                        .map(|(k, v)| (k.clone(), clean(v, defs, depth)))
                        .collect(),
                ),
                _ => continue,
            },
            "items" => clean(value, defs, depth),
            "anyOf" => match value {
                Value::Array(options) => {
                    Value::Array(options.iter().map(|o| clean(o, defs, depth)).collect())
                }
                _ => continue,
            },
            "format"
                if !value
                    .as_str()
                    .is_some_and(|f| GEMINI_STRING_FORMATS.contains(&f)) =>
            {
                continue
            }
            _ => value.clone(),
        };
        out.insert(key.clone(), cleaned);
    }
    nullable_from_type_list(&mut out);
    nullable_from_any_of(&mut out);
    if out.contains_key("properties") && !out.contains_key("type") {
        out.insert("type".into(), Value::String("object".into()));
    }
    Value::Object(out)
}

/// Inlines `#/$defs/Name` (or `#/definitions/Name`); siblings such as a description win.
fn resolve_ref(
    target: &str,
    obj: &Map<String, Value>,
    defs: &Map<String, Value>,
    depth: usize,
) -> Value {
    let name = target.rsplit('/').next().unwrap_or(target);
    let mut resolved = match defs.get(name) {
        Some(def) if depth < MAX_REF_DEPTH => clean(def, defs, depth + 1),
        _ => serde_json::json!({ "type": "object" }),
    };
    if let (Value::Object(r), Some(Value::String(desc))) = (&mut resolved, obj.get("description")) {
        r.insert("description".into(), Value::String(desc.clone()));
    }
    resolved
}

/// `"type": ["string", "null"]` → `"type": "string", "nullable": true`.
fn nullable_from_type_list(out: &mut Map<String, Value>) {
    let Some(Value::Array(types)) = out.get("type") else {
        return;
    };
    let non_null: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
    let had_null = non_null.len() < types.len();
    match non_null.len() {
        1 => {
            out.insert("type".into(), non_null[0].clone());
        }
        0 => {
            out.remove("type");
        }
        _ => {
            let options = non_null
                .into_iter()
                .map(|t| serde_json::json!({ "type": t }));
            out.remove("type");
            out.insert("anyOf".into(), Value::Array(options.collect()));
        }
    }
    if had_null {
        out.insert("nullable".into(), Value::Bool(true));
    }
}

/// `anyOf: [X, {"type": "null"}]` → X with `nullable: true` (what pydantic emits for
/// `Optional[X]`); with several options left, they stay an `anyOf`, marked nullable.
fn nullable_from_any_of(out: &mut Map<String, Value>) {
    let Some(Value::Array(options)) = out.get("anyOf") else {
        return;
    };
    let is_null = |o: &Value| o.get("type").and_then(Value::as_str) == Some("null");
    if !options.iter().any(is_null) {
        return;
    }
    let rest: Vec<Value> = options.iter().filter(|o| !is_null(o)).cloned().collect();
    out.remove("anyOf");
    if let [only] = rest.as_slice() {
        if let Value::Object(inner) = only {
            for (k, v) in inner {
                out.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    } else if !rest.is_empty() {
        out.insert("anyOf".into(), Value::Array(rest));
    }
    out.insert("nullable".into(), Value::Bool(true));
}

/// Whether a function's parameter schema declares any parameter: Gemini refuses an object
/// schema with empty `properties`, so such functions are declared without parameters.
pub fn has_properties(schema: &Value) -> bool {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .is_some_and(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_keys_and_formats_are_dropped() {
        let s = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object", "additionalProperties": false, "strict": true,
            "properties": {
                "when": {"type": "string", "format": "date-time"},
                "mail": {"type": "string", "format": "email", "const": "x"},
                "tags": {"type": "array", "items": {"type": "string", "examples": ["a"]}}
            },
            "required": ["when"]
        });
        assert_eq!(
            gemini_schema(&s),
            json!({
                "type": "object",
                "properties": {
                    "when": {"type": "string", "format": "date-time"},
                    "mail": {"type": "string"},
                    "tags": {"type": "array", "items": {"type": "string"}}
                },
                "required": ["when"]
            })
        );
    }

    #[test]
    fn refs_are_inlined_and_recursion_is_bounded() {
        let s = json!({
            "$defs": {
                "City": {"type": "object", "properties": {"name": {"type": "string"}}},
                "Node": {"type": "object", "properties": {"child": {"$ref": "#/$defs/Node"}}}
            },
            "properties": {
                "city": {"$ref": "#/$defs/City", "description": "where"},
                "tree": {"$ref": "#/$defs/Node"}
            }
        });
        let out = gemini_schema(&s);
        assert_eq!(out["type"], "object", "bare properties get the object type");
        assert!(out.get("$defs").is_none());
        assert_eq!(
            out["properties"]["city"],
            json!({"type": "object", "description": "where", "properties": {"name": {"type": "string"}}})
        );
        let mut node = &out["properties"]["tree"];
        let mut depth = 0;
        while let Some(child) = node["properties"].get("child") {
            node = child;
            depth += 1;
        }
        assert_eq!(depth, MAX_REF_DEPTH);
        assert_eq!(*node, json!({"type": "object"}));
    }

    #[test]
    fn null_options_become_nullable() {
        let s = json!({"type": "object", "properties": {
            "a": {"anyOf": [{"type": "string"}, {"type": "null"}], "title": "A"},
            "b": {"type": ["integer", "null"]},
            "c": {"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]}
        }});
        let p = &gemini_schema(&s)["properties"];
        assert_eq!(
            p["a"],
            json!({"type": "string", "nullable": true, "title": "A"})
        );
        assert_eq!(p["b"], json!({"type": "integer", "nullable": true}));
        assert_eq!(
            p["c"],
            json!({"anyOf": [{"type": "string"}, {"type": "integer"}], "nullable": true})
        );
    }

    #[test]
    fn empty_parameter_objects_are_detected() {
        assert!(!has_properties(
            &json!({"type": "object", "properties": {}})
        ));
        assert!(!has_properties(&json!({"type": "object"})));
        assert!(has_properties(
            &json!({"properties": {"x": {"type": "string"}}})
        ));
    }
}
