//! The `Entropy` port natively: the operating system's generator.

use tollgate_core::ports::Entropy;

pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn fill(&self, buf: &mut [u8]) {
        // The OS generator does not fail on Linux once the process runs; should it, requests
        // must still be answered, so ids fall back to a clock-and-counter mix (distinct, not
        // secret) and the failure is logged.
        if getrandom::fill(buf).is_err() {
            tracing::error!("the OS random generator failed; using a clock-based fallback");
            fallback_fill(buf);
        }
    }
}

fn fallback_fill(buf: &mut [u8]) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    for chunk in buf.chunks_mut(8) {
        let n = N.fetch_add(1, Ordering::Relaxed);
        let v = tollgate_core::rng::Rng::seeded(
            nanos ^ n.rotate_left(32) ^ u64::from(std::process::id()),
        )
        .next_u64()
        .to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_draws_differ() {
        let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
        OsEntropy.fill(&mut a);
        OsEntropy.fill(&mut b);
        assert_ne!(a, b);
        assert_ne!(a, [0u8; 16]);
    }
}
