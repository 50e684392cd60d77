//! LiteLLM's `os.environ/NAME` indirection: any string of that form in the config is replaced
//! by the variable's value before the config is typed, so secrets never live in the file.

use serde_yaml::Value;

use super::ConfigError;

const PREFIX: &str = "os.environ/";

/// Replaces every `os.environ/NAME` string in `value`, naming the field path of any unset one.
pub fn substitute(
    value: &mut Value,
    path: &mut String,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    match value {
        Value::String(s) => {
            if let Some(name) = s.strip_prefix(PREFIX) {
                let name = name.trim();
                match lookup(name) {
                    Some(v) => *s = v,
                    None => {
                        return Err(ConfigError::at(
                            path,
                            format!("environment variable {name} is not set (referenced as os.environ/{name})"),
                        ))
                    }
                }
            }
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                substitute(item, path, lookup)?;
                path.truncate(len);
            }
        }
        Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                let len = path.len();
                let key = match k {
                    Value::String(s) => s.clone(),
                    other => serde_yaml::to_string(other)
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                };
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&key);
                substitute(v, path, lookup)?;
                path.truncate(len);
            }
        }
        Value::Tagged(t) => substitute(&mut t.value, path, lookup)?,
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "KEY").then(|| "secret".to_string())
    }

    #[test]
    fn replaces_nested_strings() {
        let mut v: Value = serde_yaml::from_str("a:\n  - b: os.environ/KEY\n  - plain").unwrap();
        substitute(&mut v, &mut String::new(), &env).unwrap();
        assert_eq!(v["a"][0]["b"], Value::String("secret".into()));
        assert_eq!(v["a"][1], Value::String("plain".into()));
    }

    #[test]
    fn unset_variable_names_the_path() {
        let mut v: Value =
            serde_yaml::from_str("model_list:\n  - api_key: os.environ/NOPE").unwrap();
        let err = substitute(&mut v, &mut String::new(), &env).unwrap_err();
        assert_eq!(err.path, "model_list[0].api_key");
        assert!(err.message.contains("NOPE"));
    }
}
