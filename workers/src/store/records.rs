//! Records in Workers KV.
//!
//! The value is the KV value (raw bytes). The exact expiry rides in the KV metadata
//! (`{"e": ms}`), because KV's own `expirationTtl` cannot be under 60 s: reads and listings drop
//! records past `e`, and KV deletes them itself at `max(60 s, ttl)`. Values up to
//! [`INLINE_MAX`] bytes are also copied into the metadata (`"v"`, base64), so a listing needs no
//! read per key; larger ones are fetched concurrently.
//!
//! Consistency: KV is eventually consistent. A write is normally visible at once in the location
//! that made it and within about 60 s everywhere else; a listing can lag the same way.

use futures_util::future::join_all;
use serde::{Deserialize, Serialize};
use tollgate_core::store::{Entry, StoreError};
use worker::kv::KvStore;

use super::wire::{b64_decode, b64_encode, unavailable};

/// KV's smallest `expirationTtl`, in seconds.
const KV_MIN_TTL_S: u64 = 60;
/// Largest value copied into the metadata (KV allows 1024 bytes of serialized metadata).
const INLINE_MAX: usize = 700;
/// KV's largest list page.
const KV_PAGE: usize = 1000;

#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Meta {
    /// Expiry, ms since the epoch; absent for a record that does not expire.
    #[serde(rename = "e", default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<u64>,
    /// The value itself (base64) when small.
    #[serde(rename = "v", default, skip_serializing_if = "Option::is_none")]
    pub inline: Option<String>,
}

impl Meta {
    /// A record written without our metadata counts as live and never expiring.
    pub fn live(meta: Option<&Meta>, now: u64) -> bool {
        meta.and_then(|m| m.expires_at_ms).is_none_or(|e| e > now)
    }
}

/// The live value of `key`, with its metadata.
pub(crate) async fn get(
    kv: &KvStore,
    key: &str,
    now: u64,
) -> Result<Option<(Vec<u8>, Option<Meta>)>, StoreError> {
    let (value, meta) = kv
        .get(key)
        .bytes_with_metadata::<Meta>()
        .await
        .map_err(|e| unavailable("kv get", e))?;
    Ok(match value {
        Some(v) if Meta::live(meta.as_ref(), now) => Some((v, meta)),
        _ => None,
    })
}

/// Writes `key`, replacing value and expiry; returns the expiry written.
pub(crate) async fn put(
    kv: &KvStore,
    key: &str,
    value: &[u8],
    ttl_ms: Option<u64>,
    now: u64,
) -> Result<Option<u64>, StoreError> {
    let meta = Meta {
        expires_at_ms: ttl_ms.map(|t| now.saturating_add(t)),
        inline: (value.len() <= INLINE_MAX).then(|| b64_encode(value)),
    };
    let expires = meta.expires_at_ms;
    let mut builder = kv
        .put_bytes(key, value)
        .and_then(|b| b.metadata(meta))
        .map_err(|e| unavailable("kv put", e))?;
    if let Some(ttl) = ttl_ms {
        builder = builder.expiration_ttl(ttl.div_ceil(1000).max(KV_MIN_TTL_S));
    }
    builder
        .execute()
        .await
        .map_err(|e| unavailable("kv put", e))?;
    Ok(expires)
}

pub(crate) async fn delete(kv: &KvStore, key: &str) -> Result<(), StoreError> {
    kv.delete(key)
        .await
        .map_err(|e| unavailable("kv delete", e))
}

/// Live records under `prefix` in key order (KV lists in UTF-8 byte order), at most `limit`.
pub(crate) async fn list_prefix(
    kv: &KvStore,
    prefix: &str,
    limit: usize,
    now: u64,
) -> Result<Vec<Entry>, StoreError> {
    // (key, inline value if any), live only, in order.
    let mut found: Vec<(String, Option<Vec<u8>>)> = Vec::new();
    let mut cursor: Option<String> = None;
    while found.len() < limit {
        let mut request = kv
            .list()
            .prefix(prefix.to_string())
            .limit((limit - found.len()).clamp(1, KV_PAGE) as u64);
        if let Some(c) = cursor.take() {
            request = request.cursor(c);
        }
        let page = request
            .execute()
            .await
            .map_err(|e| unavailable("kv list", e))?;
        for key in page.keys {
            let meta = match key.metadata {
                Some(value) => Some(serde_json::from_value::<Meta>(value).map_err(|e| {
                    StoreError::Corrupt(format!("kv metadata of {}: {e}", key.name))
                })?),
                None => None,
            };
            if !Meta::live(meta.as_ref(), now) || found.len() >= limit {
                continue;
            }
            let inline = meta
                .and_then(|m| m.inline)
                .map(|b| {
                    b64_decode(&b)
                        .ok_or_else(|| StoreError::Corrupt(format!("kv metadata of {}", key.name)))
                })
                .transpose()?;
            found.push((key.name, inline));
        }
        match page.cursor {
            Some(c) if !page.list_complete && !c.is_empty() => cursor = Some(c),
            _ => break,
        }
    }
    // Large values: one read each, all at once. A record deleted or expired meanwhile is skipped.
    let reads = found.into_iter().map(|(key, inline)| async move {
        match inline {
            Some(value) => Ok(Some(Entry { key, value })),
            None => Ok(get(kv, &key, now)
                .await?
                .map(|(value, _)| Entry { key, value })),
        }
    });
    join_all(reads)
        .await
        .into_iter()
        .filter_map(Result::transpose)
        .collect()
}
