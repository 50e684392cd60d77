//! Why a config was refused. A leaf: every module that reads a part of the config reports
//! through it.

/// Why a config was refused, with the field path at fault (`model_list[2].litellm_params.model`).
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl ConfigError {
    pub fn at(path: &str, message: impl Into<String>) -> Self {
        ConfigError {
            path: if path.is_empty() {
                "<root>".into()
            } else {
                path.to_string()
            },
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid config at {}: {}", self.path, self.message)
    }
}

impl std::error::Error for ConfigError {}
