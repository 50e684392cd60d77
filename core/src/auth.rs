//! Who may call the gateway. For now: the master key (virtual keys come with the governance
//! issue). Keys are compared as SHA-256 digests in constant time, so neither timing nor length
//! leaks anything about the configured key.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{ErrorKind, GatewayError};
use crate::secret::Secret;

/// The key a request presents: `Authorization: Bearer`, or the `api-key` / `x-api-key` /
/// `x-litellm-api-key` headers that Azure-style and Anthropic-style clients send.
pub fn presented_key(headers: &http::HeaderMap) -> Option<&str> {
    if let Some(v) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let v = v.trim();
        // "Bearer <key>" in any case; a bare key is accepted too, as LiteLLM does.
        let token = match v.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
            None if v.eq_ignore_ascii_case("bearer") => "",
            _ => v,
        };
        if !token.is_empty() {
            return Some(token);
        }
    }
    ["x-litellm-api-key", "api-key", "x-api-key"]
        .iter()
        .filter_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()))
        .map(str::trim)
        .find(|v| !v.is_empty())
}

/// The master key, kept only as its digest.
#[derive(Clone)]
pub struct MasterKey {
    digest: [u8; 32],
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// The configured key is exposed only to be hashed.
impl From<&Secret> for MasterKey {
    fn from(key: &Secret) -> Self {
        MasterKey::new(key.expose())
    }
}

impl MasterKey {
    pub fn new(key: &str) -> Self {
        MasterKey {
            digest: Sha256::digest(key.as_bytes()).into(),
        }
    }

    pub fn matches(&self, presented: &str) -> bool {
        let d: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        self.digest.ct_eq(&d).into()
    }
}

/// Checks the request against the master key; with no master key configured the gateway is
/// open, as LiteLLM's is.
pub fn authorize(
    master: Option<&MasterKey>,
    headers: &http::HeaderMap,
) -> Result<(), GatewayError> {
    let Some(master) = master else { return Ok(()) };
    match presented_key(headers) {
        None => Err(GatewayError::new(
            ErrorKind::Authentication,
            "No API key provided. Send it as 'Authorization: Bearer <key>'.",
        )
        .with_code("missing_api_key")),
        Some(k) if master.matches(k) => Ok(()),
        Some(_) => Err(
            GatewayError::new(ErrorKind::Authentication, "Invalid API key.")
                .with_code("invalid_api_key"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn bearer_and_alternate_headers_are_read() {
        assert_eq!(
            presented_key(&headers(&[("authorization", "Bearer sk-1")])),
            Some("sk-1")
        );
        assert_eq!(
            presented_key(&headers(&[("x-api-key", "sk-2")])),
            Some("sk-2")
        );
        assert_eq!(
            presented_key(&headers(&[("authorization", "Bearer ")])),
            None
        );
    }

    #[test]
    fn master_key_gate() {
        let m = MasterKey::new("sk-master");
        assert!(authorize(Some(&m), &headers(&[("authorization", "Bearer sk-master")])).is_ok());
        let wrong =
            authorize(Some(&m), &headers(&[("authorization", "Bearer sk-mastex")])).unwrap_err();
        assert_eq!(wrong.status().as_u16(), 401);
        let missing = authorize(Some(&m), &headers(&[])).unwrap_err();
        assert_eq!(missing.code.as_deref(), Some("missing_api_key"));
        assert!(authorize(None, &headers(&[])).is_ok());
    }

    #[test]
    fn debug_does_not_print_the_key() {
        assert!(!format!("{:?}", MasterKey::new("sk-secret")).contains("secret"));
    }
}
