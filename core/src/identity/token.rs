//! Virtual key text: making a key from the host's entropy, and the one-way token it is stored
//! under (LiteLLM's: the SHA-256 hex of the raw key).

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::ports::Entropy;

/// Random bytes in a generated key: 24 bytes are 32 URL-safe characters (192 bits; LiteLLM
/// uses 16 bytes, 22 characters).
const KEY_BYTES: usize = 24;

/// A new raw key: `sk-` and 32 URL-safe characters from the host's cryptographic entropy.
pub fn generate(entropy: &dyn Entropy) -> String {
    let mut bytes = [0u8; KEY_BYTES];
    entropy.fill(&mut bytes);
    let mut key = String::with_capacity(3 + 32);
    key.push_str("sk-");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(bytes, &mut key);
    key
}

/// The stored token of a raw key.
pub fn hash(raw: &str) -> String {
    hex(&Sha256::digest(raw.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 0x0f)] as char);
    }
    s
}

/// Whether `text` is already a token (64 lowercase hex characters) rather than a raw key.
pub fn is_token(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The token for a key given either way (admin routes accept both, as LiteLLM's do).
pub fn token_of(raw_or_token: &str) -> String {
    if is_token(raw_or_token) {
        raw_or_token.to_string()
    } else {
        hash(raw_or_token)
    }
}

/// `sk-...abcd`: how a key is shown once it has been handed out (LiteLLM's `key_name`).
pub fn display_name(raw: &str) -> String {
    let tail: String = raw
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("sk-...{tail}")
}

/// Why a custom key (`key` in `/key/generate`) is refused, if it is.
pub fn check_custom(raw: &str) -> Result<(), &'static str> {
    if !raw.starts_with("sk-") {
        return Err("a custom key must start with 'sk-'");
    }
    if raw.len() < 8 || raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("a custom key must be at least 8 characters, without spaces");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counting(std::sync::atomic::AtomicU8);
    impl Entropy for Counting {
        fn fill(&self, buf: &mut [u8]) {
            for b in buf {
                *b = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    #[test]
    fn generated_keys_are_long_url_safe_and_distinct() {
        let e = Counting(Default::default());
        let (a, b) = (generate(&e), generate(&e));
        assert!(a.starts_with("sk-") && a.len() == 35, "{a}");
        assert!(a[3..]
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_ne!(a, b);
    }

    #[test]
    fn tokens_are_sha256_hex_and_lookups_take_either_form() {
        // sha256("sk-1234"), as LiteLLM's hash_token gives it.
        let t = hash("sk-1234");
        assert_eq!(
            t,
            "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b"
        );
        assert!(is_token(&t));
        assert_eq!(token_of("sk-1234"), t);
        assert_eq!(token_of(&t), t);
        assert_eq!(display_name("sk-abcdefgh"), "sk-...efgh");
    }

    #[test]
    fn custom_keys_must_look_like_keys() {
        assert!(check_custom("sk-my-own-key").is_ok());
        assert!(check_custom("my-own-key").is_err());
        assert!(check_custom("sk-a b c d e").is_err());
    }
}
