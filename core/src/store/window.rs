//! Fixed time windows for counters: the window is folded into the key, so "requests this
//! minute" is a plain atomic counter whose TTL ends the window. Every instance computes the same
//! key from its clock, so they all count into one counter.

/// The counter key for `key` in the window of `window_ms` that contains `now_ms`, and the TTL
/// that ends it (with a second of slack for clock skew between instances).
pub fn windowed(key: &str, window_ms: u64, now_ms: u64) -> (String, u64) {
    let window_ms = window_ms.max(1);
    let index = now_ms / window_ms;
    let ends_at = (index + 1) * window_ms;
    (format!("{key}@{index}"), ends_at - now_ms + 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_window_same_key_next_window_new_key() {
        let (a, ttl) = windowed("rpm:k", 60_000, 120_500);
        let (b, _) = windowed("rpm:k", 60_000, 179_999);
        let (c, _) = windowed("rpm:k", 60_000, 180_000);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(ttl, 60_000 - 500 + 1000);
    }
}
