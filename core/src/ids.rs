//! Response ids (`chatcmpl-…`): drawn from the request's generator, itself seeded from the
//! host's entropy, so ids from concurrent instances do not collide.

use crate::rng::Rng;

/// `prefix` followed by 24 hex digits.
pub fn new_id(prefix: &str, rng: &mut Rng) -> String {
    let (a, b) = (rng.next_u64(), rng.next_u64());
    format!("{prefix}{:016x}{:08x}", a, (b >> 32) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_differ_and_have_the_prefix() {
        let mut rng = Rng::seeded(7);
        let a = new_id("chatcmpl-", &mut rng);
        let b = new_id("chatcmpl-", &mut rng);
        assert_ne!(a, b);
        assert!(a.starts_with("chatcmpl-"));
        assert_eq!(a.len(), "chatcmpl-".len() + 24);
    }
}
