//! Response ids (`chatcmpl-…`). Unique enough to correlate logs, not secrets: a process-wide
//! counter mixed with the clock and an instance seed, so concurrent instances do not collide.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::rng::Rng;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// `prefix` followed by 24 hex digits.
pub fn new_id(prefix: &str, now_ms: u64, instance_seed: u64) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut rng =
        Rng::seeded(now_ms ^ instance_seed.rotate_left(17) ^ n.wrapping_mul(0x2545_f491_4f6c_dd1d));
    let (a, b) = (rng.next_u64(), rng.next_u64());
    format!("{prefix}{:016x}{:08x}", a, (b >> 32) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_differ_and_have_the_prefix() {
        let a = new_id("chatcmpl-", 1, 2);
        let b = new_id("chatcmpl-", 1, 2);
        assert_ne!(a, b);
        assert!(a.starts_with("chatcmpl-"));
        assert_eq!(a.len(), "chatcmpl-".len() + 24);
    }
}
