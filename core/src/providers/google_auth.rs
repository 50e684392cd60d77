//! Google service-account credentials → short-lived OAuth access tokens (the JWT bearer
//! grant of RFC 7523, as Google's own client libraries do it), cached in-process.
//!
//! The JWT is signed with RS256 by the pure-Rust `rsa` crate: PKCS#1 v1.5 signatures are
//! deterministic, so no random source is needed and this builds for wasm32 too. Signing is
//! the expensive step (a 2048-bit private-key operation), which the cache keeps to about once
//! an hour per instance and account.

use std::collections::BTreeMap;
use std::sync::Mutex;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};

use super::SendContext;
use crate::error::{ErrorKind, GatewayError};
use crate::secret::Secret;

/// The scope Vertex AI needs.
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
const JWT_BEARER_GRANT: &str = "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer";
/// Google accepts assertions valid for at most an hour.
const ASSERTION_LIFETIME_SECS: u64 = 3600;
/// A token is replaced this long before it expires, so no request carries one that lapses
/// in flight (Google's libraries use a few minutes too).
const REFRESH_MARGIN_MS: u64 = 5 * 60 * 1000;
const TOKEN_TIMEOUT_MS: u64 = 30_000;
/// A token response is a few hundred bytes; anything far larger is not one.
const MAX_TOKEN_RESPONSE: usize = 64 * 1024;

/// The fields of a service-account key file Tollgate uses.
#[derive(Debug, Clone, Deserialize)]
pub struct ServiceAccount {
    pub client_email: String,
    pub private_key: Secret,
    #[serde(default)]
    pub private_key_id: Option<String>,
    #[serde(default)]
    pub token_uri: Option<String>,
    #[serde(default)]
    pub project_id: Option<String>,
}

impl ServiceAccount {
    /// From `vertex_credentials`: the key file's JSON (the config keeps a mapping as JSON
    /// text), or (as LiteLLM also allows, on hosts with a file system) a path to it.
    pub fn from_credentials(credentials: &Secret) -> Result<Self, GatewayError> {
        let text = credentials.expose();
        let value: Value = if text.trim_start().starts_with('{') {
            serde_json::from_str(text)
                .map_err(|e| bad_credentials(&format!("not valid JSON: {e}")))?
        } else {
            read_key_file(text)?
        };
        if value
            .get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| t != "service_account")
        {
            return Err(bad_credentials(
                "only service-account keys (\"type\": \"service_account\") are supported",
            ));
        }
        serde_json::from_value(value).map_err(|e| bad_credentials(&e.to_string()))
    }

    pub fn token_uri(&self) -> &str {
        self.token_uri.as_deref().unwrap_or(DEFAULT_TOKEN_URI)
    }

    /// The signed assertion exchanged for a token: `iss` the account, `aud` its token
    /// endpoint, valid from `now_secs` for an hour.
    pub fn signed_jwt(&self, scope: &str, now_secs: u64) -> Result<String, GatewayError> {
        let mut header = json!({ "alg": "RS256", "typ": "JWT" });
        if let Some(kid) = &self.private_key_id {
            header["kid"] = json!(kid);
        }
        let claims = json!({
            "iss": self.client_email,
            "scope": scope,
            "aud": self.token_uri(),
            "iat": now_secs,
            "exp": now_secs + ASSERTION_LIFETIME_SECS,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = rs256(self.private_key.expose(), signing_input.as_bytes())?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn read_key_file(path: &str) -> Result<Value, GatewayError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| bad_credentials(&format!("cannot read the key file {path:?}: {e}")))?;
    serde_json::from_str(&text)
        .map_err(|e| bad_credentials(&format!("the key file {path:?} is not valid JSON: {e}")))
}

/// Workers have no file system: the key must be given inline.
#[cfg(target_arch = "wasm32")]
fn read_key_file(_path: &str) -> Result<Value, GatewayError> {
    Err(bad_credentials(
        "file paths cannot be read on this host; give the service-account JSON itself",
    ))
}

fn bad_credentials(why: &str) -> GatewayError {
    GatewayError::new(
        ErrorKind::Authentication,
        format!("vertex_credentials: {why}"),
    )
    .with_param("vertex_credentials")
}

/// RSASSA-PKCS1-v1_5 with SHA-256 over `message`, with a PEM key (PKCS#8, as Google issues
/// them, or PKCS#1).
fn rs256(pem: &str, message: &[u8]) -> Result<Vec<u8>, GatewayError> {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::signature::{SignatureEncoding, Signer};

    // Keys pasted through environment variables often keep their newlines escaped.
    let pem = pem.replace("\\n", "\n");
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(&pem)
        .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(&pem))
        .map_err(|_| bad_credentials("private_key is not a PEM RSA private key"))?;
    let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key);
    let signature = signer
        .try_sign(message)
        .map_err(|e| bad_credentials(&format!("cannot sign with private_key: {e}")))?;
    Ok(signature.to_vec())
}

/// Access tokens by account and scope, shared by every request of an instance.
#[derive(Default)]
pub struct TokenCache {
    tokens: Mutex<BTreeMap<String, CachedToken>>,
}

#[derive(Clone)]
struct CachedToken {
    access_token: String,
    expires_at_ms: u64,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl TokenCache {
    pub const fn new() -> Self {
        TokenCache {
            tokens: Mutex::new(BTreeMap::new()),
        }
    }

    /// A token for `account` valid for a while yet: cached, or fetched (and cached) now.
    pub async fn access_token(
        &self,
        account: &ServiceAccount,
        scope: &str,
        ctx: &SendContext<'_>,
    ) -> Result<String, GatewayError> {
        let key = format!("{}\n{scope}", account.client_email);
        let now_ms = ctx.clock.now_ms();
        if let Some(token) = self.fresh(&key, now_ms) {
            return Ok(token);
        }
        let fetched = fetch_token(account, scope, now_ms / 1000, ctx).await?;
        // Google's tokens last an hour; one without a lifetime is used once.
        let lifetime_ms = fetched.expires_in.unwrap_or(0).saturating_mul(1000);
        let token = CachedToken {
            access_token: fetched.access_token,
            expires_at_ms: now_ms.saturating_add(lifetime_ms),
        };
        let access_token = token.access_token.clone();
        self.lock().insert(key, token);
        Ok(access_token)
    }

    fn fresh(&self, key: &str, now_ms: u64) -> Option<String> {
        let tokens = self.lock();
        let token = tokens.get(key)?;
        (token.expires_at_ms > now_ms.saturating_add(REFRESH_MARGIN_MS))
            .then(|| token.access_token.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, CachedToken>> {
        // A panic elsewhere while holding the lock leaves a map that is still valid.
        self.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// POSTs a fresh assertion to the account's token endpoint.
async fn fetch_token(
    account: &ServiceAccount,
    scope: &str,
    now_secs: u64,
    ctx: &SendContext<'_>,
) -> Result<TokenResponse, GatewayError> {
    let assertion = account.signed_jwt(scope, now_secs)?;
    let form = format!("grant_type={JWT_BEARER_GRANT}&assertion={assertion}");
    let uri = account.token_uri();
    let request = http::Request::post(uri)
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(Bytes::from(form))
        .map_err(|e| bad_credentials(&format!("bad token_uri {uri:?}: {e}")))?;
    let response = ctx.http.send(request, TOKEN_TIMEOUT_MS).await?;
    let status = response.status().as_u16();
    let body = read_limited(response.into_body()).await?;
    if status != 200 {
        return Err(token_refused(status, &body));
    }
    serde_json::from_slice(&body).map_err(|e| {
        GatewayError::new(
            ErrorKind::BadGateway,
            format!("the Google token endpoint returned an unreadable answer: {e}"),
        )
    })
}

async fn read_limited(mut body: crate::ports::BodyStream) -> Result<Vec<u8>, GatewayError> {
    let mut out = Vec::new();
    while let Some(piece) = body.next().await {
        out.extend_from_slice(&piece?);
        if out.len() > MAX_TOKEN_RESPONSE {
            return Err(GatewayError::new(
                ErrorKind::BadGateway,
                "the Google token endpoint's answer is too large",
            ));
        }
    }
    Ok(out)
}

/// `{"error": "invalid_grant", "error_description": "..."}`: the credentials are wrong, which
/// the client of the gateway should see as an authentication failure, not an outage.
fn token_refused(status: u16, body: &[u8]) -> GatewayError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let field = |k: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let reason = field("error_description")
        .or_else(|| field("error"))
        .unwrap_or_else(|| format!("status {status}"));
    let message = format!("Google refused the Vertex AI credentials: {reason}");
    let e = if (400..500).contains(&status) {
        GatewayError::new(ErrorKind::Authentication, message).with_status(401)
    } else {
        GatewayError::upstream(status, message)
    };
    match field("error") {
        Some(code) => e.with_code(code),
        None => e,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ports::{BodyStream, HttpClient, TransportError};
    use crate::providers::test_support::FakeClock;
    use rsa::signature::Verifier;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// TEST ONLY: a throwaway key generated for these tests.
    pub const TEST_ACCOUNT: &str = include_str!("fixtures/google_auth/test_service_account.json");

    /// Answers every request with `status` and `body`, and keeps what it was sent.
    pub struct TokenEndpoint {
        pub status: u16,
        pub body: &'static str,
        pub seen: Mutex<Vec<http::Request<Bytes>>>,
    }

    impl TokenEndpoint {
        pub fn new(status: u16, body: &'static str) -> Self {
            TokenEndpoint {
                status,
                body,
                seen: Mutex::new(Vec::new()),
            }
        }
        pub fn calls(&self) -> usize {
            self.seen.lock().unwrap().len()
        }
    }

    #[async_trait::async_trait]
    impl HttpClient for TokenEndpoint {
        async fn send(
            &self,
            request: http::Request<Bytes>,
            _timeout_ms: u64,
        ) -> Result<http::Response<BodyStream>, TransportError> {
            self.seen.lock().unwrap().push(request);
            let body: BodyStream = Box::pin(futures_util::stream::iter(vec![Ok(
                Bytes::from_static(self.body.as_bytes()),
            )]));
            Ok(http::Response::builder()
                .status(self.status)
                .body(body)
                .unwrap())
        }
    }

    pub const TOKEN_OK: &str =
        r#"{"access_token": "ya29.test-token", "expires_in": 3599, "token_type": "Bearer"}"#;

    fn account() -> ServiceAccount {
        ServiceAccount::from_credentials(&Secret::from(TEST_ACCOUNT)).unwrap()
    }

    fn run<F: std::future::Future>(f: F) -> F::Output {
        futures_executor::block_on(f)
    }

    fn decode(part: &str) -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    #[test]
    fn jwt_claims_and_signature_verify_with_the_public_key() {
        let sa = account();
        let jwt = sa.signed_jwt(CLOUD_PLATFORM_SCOPE, 1_700_000_000).unwrap();
        let pieces: Vec<&str> = jwt.split('.').collect();
        assert_eq!(pieces.len(), 3);
        let header = decode(pieces[0]);
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["kid"], "0123456789abcdef0123456789abcdef01234567");
        let claims = decode(pieces[1]);
        assert_eq!(
            claims,
            json!({
                "iss": "tollgate-test@tollgate-test-project.iam.gserviceaccount.com",
                "scope": "https://www.googleapis.com/auth/cloud-platform",
                "aud": "https://oauth2.googleapis.com/token",
                "iat": 1_700_000_000u64,
                "exp": 1_700_003_600u64,
            })
        );
        use rsa::pkcs8::DecodePrivateKey;
        let private = rsa::RsaPrivateKey::from_pkcs8_pem(sa.private_key.expose()).unwrap();
        let verifier = rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(private.to_public_key());
        let signature = rsa::pkcs1v15::Signature::try_from(
            URL_SAFE_NO_PAD.decode(pieces[2]).unwrap().as_slice(),
        )
        .unwrap();
        let signed = format!("{}.{}", pieces[0], pieces[1]);
        verifier.verify(signed.as_bytes(), &signature).unwrap();
        let mut tampered = signed.into_bytes();
        tampered[5] ^= 1;
        assert!(verifier.verify(&tampered, &signature).is_err());
        // Deterministic: the same claims give the same token.
        assert_eq!(
            jwt,
            sa.signed_jwt(CLOUD_PLATFORM_SCOPE, 1_700_000_000).unwrap()
        );
    }

    #[test]
    fn credentials_as_mapping_string_or_path() {
        let from_map = ServiceAccount::from_credentials(&Secret::from(TEST_ACCOUNT)).unwrap();
        assert_eq!(
            from_map.project_id.as_deref(),
            Some("tollgate-test-project")
        );
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/providers/fixtures/google_auth/test_service_account.json"
        );
        let from_path = ServiceAccount::from_credentials(&Secret::from(path)).unwrap();
        assert_eq!(from_path.client_email, from_map.client_email);
        for bad in [
            "{nope",
            "/no/such/file.json",
            r#"{"type": "authorized_user", "client_email": "a", "private_key": "b"}"#,
        ] {
            let e = ServiceAccount::from_credentials(&Secret::from(bad)).unwrap_err();
            assert_eq!(e.status().as_u16(), 401, "{bad}");
            assert_eq!(e.param.as_deref(), Some("vertex_credentials"));
        }
        let mut broken = from_map.clone();
        broken.private_key =
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".into();
        let e = broken.signed_jwt(CLOUD_PLATFORM_SCOPE, 0).unwrap_err();
        assert!(e.message.contains("not a PEM RSA private key"));
    }

    #[test]
    fn token_is_fetched_once_and_refreshed_before_expiry() {
        run(async {
            let cache = TokenCache::new();
            let http = TokenEndpoint::new(200, TOKEN_OK);
            let clock = FakeClock(AtomicU64::new(1_700_000_000_000));
            let ctx = SendContext {
                clock: &clock,
                http: &http,
            };
            let sa = account();
            let token = cache
                .access_token(&sa, CLOUD_PLATFORM_SCOPE, &ctx)
                .await
                .unwrap();
            assert_eq!(token, "ya29.test-token");
            assert_eq!(http.calls(), 1);
            {
                let seen = http.seen.lock().unwrap();
                let req = &seen[0];
                assert_eq!(req.uri(), "https://oauth2.googleapis.com/token");
                assert_eq!(
                    req.headers()["content-type"],
                    "application/x-www-form-urlencoded"
                );
                let form = std::str::from_utf8(req.body()).unwrap();
                let assertion = form
                    .strip_prefix("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=")
                    .unwrap();
                let claims = decode(assertion.split('.').nth(1).unwrap());
                assert_eq!(claims["iat"], 1_700_000_000u64);
            }
            // Within the hour, minus the margin: the cached token.
            clock
                .0
                .fetch_add(3_599_000 - REFRESH_MARGIN_MS - 1, Ordering::SeqCst);
            cache
                .access_token(&sa, CLOUD_PLATFORM_SCOPE, &ctx)
                .await
                .unwrap();
            assert_eq!(http.calls(), 1);
            // Inside the margin: a new one.
            clock.0.fetch_add(2, Ordering::SeqCst);
            cache
                .access_token(&sa, CLOUD_PLATFORM_SCOPE, &ctx)
                .await
                .unwrap();
            assert_eq!(http.calls(), 2);
            // Another scope is another token.
            cache.access_token(&sa, "other-scope", &ctx).await.unwrap();
            assert_eq!(http.calls(), 3);
        });
    }

    #[test]
    fn refused_grant_is_an_authentication_error() {
        run(async {
            let http = TokenEndpoint::new(
                400,
                r#"{"error": "invalid_grant", "error_description": "Invalid JWT Signature."}"#,
            );
            let clock = FakeClock(AtomicU64::new(0));
            let ctx = SendContext {
                clock: &clock,
                http: &http,
            };
            let e = TokenCache::new()
                .access_token(&account(), CLOUD_PLATFORM_SCOPE, &ctx)
                .await
                .unwrap_err();
            assert_eq!(e.status().as_u16(), 401);
            assert_eq!(e.code.as_deref(), Some("invalid_grant"));
            assert!(e.message.contains("Invalid JWT Signature."));
            let http = TokenEndpoint::new(200, "<html>");
            let ctx = SendContext {
                clock: &clock,
                http: &http,
            };
            let e = TokenCache::new()
                .access_token(&account(), CLOUD_PLATFORM_SCOPE, &ctx)
                .await
                .unwrap_err();
            assert_eq!(e.status().as_u16(), 502);
        });
    }
}
