//! A per-instance cache of records read from the Store, each kept for a few seconds.
//!
//! Every LLM request authenticates its key; reading the key (and its user and team) from the
//! Store each time would put a round trip in front of every call. Records are kept for
//! `ttl_ms` (`general_settings.user_api_key_cache_ttl`, default 5 s), so a change made on
//! another instance (a key revoked, blocked, its models changed) takes effect here within that
//! bound; a change made on this instance takes effect at once (writes go through the cache).
//! Absent records are cached too (an unknown key costs one read per bound, not one per try),
//! and the cache is cleared when it grows past [`MAX_ENTRIES`], so a flood of invented keys
//! cannot grow memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Entries kept at most, per kind of record.
const MAX_ENTRIES: usize = 10_000;

/// When each record was read, and the record (`None`: it did not exist).
type Entries<T> = HashMap<String, (u64, Option<Arc<T>>)>;

pub struct TtlCache<T> {
    entries: Mutex<Entries<T>>,
}

impl<T> Default for TtlCache<T> {
    fn default() -> Self {
        TtlCache {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

/// What the cache knows of a key.
pub enum Cached<T> {
    /// Read within the bound: the record, or `None` if it did not exist.
    Fresh(Option<Arc<T>>),
    Unknown,
}

impl<T> TtlCache<T> {
    pub fn get(&self, id: &str, now_ms: u64, ttl_ms: u64) -> Cached<T> {
        let Ok(entries) = self.entries.lock() else {
            return Cached::Unknown;
        };
        match entries.get(id) {
            Some((at, value)) if now_ms.saturating_sub(*at) < ttl_ms => {
                Cached::Fresh(value.clone())
            }
            _ => Cached::Unknown,
        }
    }

    pub fn put(&self, id: &str, now_ms: u64, value: Option<Arc<T>>) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_ENTRIES && !entries.contains_key(id) {
                entries.clear();
            }
            entries.insert(id.to_string(), (now_ms, value));
        }
    }

    pub fn forget(&self, id: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_after_the_bound() {
        let c = TtlCache::default();
        c.put("a", 1_000, Some(Arc::new(1)));
        assert!(matches!(c.get("a", 5_999, 5_000), Cached::Fresh(Some(_))));
        assert!(matches!(c.get("a", 6_000, 5_000), Cached::Unknown));
        c.put("b", 1_000, None);
        assert!(matches!(c.get("b", 1_001, 5_000), Cached::Fresh(None)));
        c.forget("b");
        assert!(matches!(c.get("b", 1_001, 5_000), Cached::Unknown));
    }

    #[test]
    fn a_flood_of_ids_cannot_grow_it_without_bound() {
        let c = TtlCache::<u8>::default();
        for i in 0..(MAX_ENTRIES + 10) {
            c.put(&i.to_string(), 0, None);
        }
        assert!(c.entries.lock().unwrap().len() <= MAX_ENTRIES);
    }
}
