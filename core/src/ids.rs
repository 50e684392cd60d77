//! Response ids (`chatcmpl-…`). Unique enough to correlate logs, not secrets: a process-wide
//! counter mixed with the clock and an instance seed, so concurrent instances do not collide.

use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// SplitMix64: a tiny, well-distributed mixer.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `prefix` followed by 24 hex digits.
pub fn new_id(prefix: &str, now_ms: u64, instance_seed: u64) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let a = mix(now_ms ^ instance_seed.rotate_left(17) ^ n);
    let b = mix(a ^ n.wrapping_mul(0x2545_f491_4f6c_dd1d));
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
