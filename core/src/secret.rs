//! Credentials from the config (provider keys, the master key, AWS secret keys and session
//! tokens, service-account keys) as a type that cannot leak by accident: `{:?}`, `{}` and
//! serialization print a placeholder, so a config, a deployment or an error built from them
//! can be logged whole. The value comes out only through [`Secret::expose`], at the few
//! places that must send it (a request header, a signature), where a reviewer can see it.

use std::fmt;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a secret prints as, in `Debug`, `Display` and serialized output.
pub const REDACTED: &str = "<redacted>";

/// A credential. Read from a plain string in YAML/JSON; never printed.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself, for the code that sends it upstream. Keep these calls few.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_string())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({REDACTED})")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Compares SHA-256 digests in constant time, so neither the timing nor the length of the
/// comparison says anything about either value.
impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        let a: [u8; 32] = Sha256::digest(self.0.as_bytes()).into();
        let b: [u8; 32] = Sha256::digest(other.0.as_bytes()).into();
        a.ct_eq(&b).into()
    }
}

impl Eq for Secret {}

/// Writes the placeholder: a serialized config or deployment never carries the value.
impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

/// Reads a string. Anything else is refused without quoting it: serde's own message would
/// print a numeric key (`invalid type: integer `12345``) into the config error, so the
/// value goes through this visitor (`deserialize_any`) rather than the format's own check.
impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SecretVisitor)
    }
}

struct SecretVisitor;

impl SecretVisitor {
    fn refuse<E: de::Error>(&self, what: &'static str) -> Result<Secret, E> {
        Err(E::invalid_type(de::Unexpected::Other(what), self))
    }
}

impl de::Visitor<'_> for SecretVisitor {
    type Value = Secret;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Secret, E> {
        Ok(Secret(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Secret, E> {
        Ok(Secret(v))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Secret, E> {
        self.refuse("a boolean")
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Secret, E> {
        self.refuse("a number")
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Secret, E> {
        self.refuse("a number")
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Secret, E> {
        self.refuse("a number")
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Secret, E> {
        self.refuse("bytes")
    }
}

/// Whether a setting named `name` (`api_key`, `aws_session_token`, `redis_password`,
/// `clientSecret`...) holds a credential, for maps of settings Tollgate does not type, whose
/// text values are then redacted when printed. Numbers and booleans are never secrets, so
/// `input_cost_per_token` still prints.
pub fn looks_secret(name: &str) -> bool {
    const WORDS: &[&str] = &[
        "key",
        "token",
        "secret",
        "password",
        "passwd",
        "pwd",
        "credential",
        "credentials",
        "auth",
        "authorization",
        "cookie",
        "apikey",
        "signature",
        "private",
    ];
    const SUFFIXES: &[&str] = &["key", "token", "secret", "password", "credentials"];
    let lower = name.to_ascii_lowercase();
    lower
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|word| WORDS.contains(&word))
        || SUFFIXES.iter().any(|s| lower.ends_with(s))
}

/// `scheme://user:password@host/...` with the user part replaced, for URLs printed from
/// settings (`redis_url`, `database_url`); `None` when `text` has no credentials in it.
pub fn redact_url_userinfo(text: &str) -> Option<String> {
    let (scheme, rest) = text.split_once("://")?;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at = rest[..authority_end].rfind('@')?;
    Some(format!("{scheme}://{REDACTED}@{}", &rest[at + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALUE: &str = "sk-live-0123456789abcdef";

    #[test]
    fn printing_never_shows_the_value() {
        let s = Secret::new(VALUE);
        for printed in [
            format!("{s:?}"),
            format!("{s:#?}"),
            format!("{s}"),
            format!("{:?}", Some(&s)),
            serde_json::to_string(&s).unwrap(),
        ] {
            assert!(!printed.contains("sk-"), "{printed}");
            assert!(printed.contains(REDACTED), "{printed}");
        }
        assert_eq!(s.expose(), VALUE);
    }

    #[test]
    fn reads_a_plain_string_only() {
        let s: Secret = serde_json::from_str(&format!("{VALUE:?}")).unwrap();
        assert_eq!(s.expose(), VALUE);
        let s: Secret = serde_yaml::from_str("abc").unwrap();
        assert_eq!(s.expose(), "abc");
        assert!(serde_json::from_str::<Secret>("{\"a\": 1}").is_err());
        // A value of the wrong type is not quoted back in the error.
        for number in ["987654321", "-987654321", "9876.54321"] {
            let e = serde_json::from_str::<Secret>(number).unwrap_err();
            assert!(!e.to_string().contains("987654"), "{e}");
            let e = serde_yaml::from_str::<Secret>(number).unwrap_err();
            assert!(!e.to_string().contains("987654"), "{e}");
        }
    }

    #[test]
    fn equality_is_by_value() {
        assert_eq!(Secret::new("a"), Secret::from("a"));
        assert_ne!(Secret::new("a"), Secret::new("b"));
        assert_ne!(Secret::new("a"), Secret::new("aa"));
        assert_ne!(Secret::new(""), Secret::new("a"));
    }

    #[test]
    fn secret_names() {
        for name in [
            "api_key",
            "master_key",
            "aws_secret_access_key",
            "aws_session_token",
            "aws_access_key_id",
            "azure_ad_token",
            "vertex_credentials",
            "redis_password",
            "apiKey",
            "clientSecret",
            "x-api-key",
            "UPSTASH_REDIS_REST_TOKEN",
            "private_key",
        ] {
            assert!(looks_secret(name), "{name}");
        }
        for name in [
            "model",
            "api_base",
            "max_tokens",
            "vertex_project",
            "aws_region_name",
            "temperature",
            "organization",
        ] {
            assert!(!looks_secret(name), "{name}");
        }
    }

    #[test]
    fn url_credentials_are_cut() {
        assert_eq!(
            redact_url_userinfo("redis://:hunter2@cache:6379/0").as_deref(),
            Some("redis://<redacted>@cache:6379/0")
        );
        assert_eq!(
            redact_url_userinfo("https://u:p@h/x?q=a@b").as_deref(),
            Some("https://<redacted>@h/x?q=a@b")
        );
        assert_eq!(redact_url_userinfo("https://h/x?email=a@b"), None);
        assert_eq!(redact_url_userinfo("plain text"), None);
    }
}
