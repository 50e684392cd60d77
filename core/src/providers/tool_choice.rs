//! OpenAI's `tool_choice`, read once into what every provider maps from.

use serde_json::Value;

use crate::error::GatewayError;

/// What the client asked of tool use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    Auto,
    None,
    Required,
    /// `{"type": "function", "function": {"name": ...}}`: this one function must be called.
    Function(String),
}

impl ToolChoice {
    /// Reads `tool_choice`; anything else is a 400 naming the accepted forms.
    pub fn parse(v: &Value) -> Result<ToolChoice, GatewayError> {
        let parsed = match v {
            Value::String(s) => match s.as_str() {
                "auto" => Some(ToolChoice::Auto),
                "none" => Some(ToolChoice::None),
                "required" => Some(ToolChoice::Required),
                _ => None,
            },
            Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("function") => o
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .map(|name| ToolChoice::Function(name.to_string())),
            _ => None,
        };
        parsed.ok_or_else(|| {
            GatewayError::invalid_request(
                "'tool_choice' must be \"auto\", \"required\", \"none\" or {\"type\": \"function\", \"function\": {\"name\": ...}}",
            )
            .with_param("tool_choice")
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_openai_form_and_a_clear_error() {
        assert_eq!(ToolChoice::parse(&json!("auto")).unwrap(), ToolChoice::Auto);
        assert_eq!(ToolChoice::parse(&json!("none")).unwrap(), ToolChoice::None);
        assert_eq!(
            ToolChoice::parse(&json!("required")).unwrap(),
            ToolChoice::Required
        );
        assert_eq!(
            ToolChoice::parse(&json!({"type": "function", "function": {"name": "f"}})).unwrap(),
            ToolChoice::Function("f".into())
        );
        let e = ToolChoice::parse(&json!("sometimes")).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("tool_choice"));
        assert!(ToolChoice::parse(&json!({"type": "function"})).is_err());
    }
}
