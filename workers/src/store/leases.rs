//! The lease table of a counter object (`TollgateCounter`): one row per lease of the set named
//! like the object, `(holder, expires_at)`. Synchronous SQL only, so the object's batch can read,
//! decide and write with no `await` in between (see `counter.rs`). Reads never create the table
//! (an object with no storage costs nothing).

use std::collections::BTreeMap;

use worker::{SqlStorage, SqlStorageValue};

use super::wire::{self, sql_int, sql_num};

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS leases (
    holder TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
)";

/// Every stored lease (expired ones included): holder → expiry.
pub(crate) fn read(sql: &SqlStorage) -> Result<BTreeMap<String, u64>, String> {
    let mut out = BTreeMap::new();
    if !wire::table_exists(sql, "leases")? {
        return Ok(out);
    }
    let cursor = sql
        .exec("SELECT holder, expires_at FROM leases", None)
        .map_err(|e| format!("lease read: {e}"))?;
    for row in cursor.raw() {
        let row = row.map_err(|e| format!("lease read: {e}"))?;
        let holder = match row.first() {
            Some(SqlStorageValue::String(h)) => h.clone(),
            other => return Err(format!("lease holder is not text: {other:?}")),
        };
        let expires = sql_int(row.get(1))?.ok_or("lease without an expiry")?;
        out.insert(holder, expires.max(0) as u64);
    }
    Ok(out)
}

/// Bind values for `set`, checked before anything is written.
pub(crate) fn rows(set: &BTreeMap<String, u64>) -> Result<Vec<(String, SqlStorageValue)>, String> {
    set.iter()
        .map(|(holder, &exp)| Ok((holder.clone(), sql_num(exp.min(wire::MAX_SAFE) as i64)?)))
        .collect()
}

/// Replaces the whole set with `rows` (from [`rows`]).
pub(crate) fn replace(
    sql: &SqlStorage,
    rows: Vec<(String, SqlStorageValue)>,
) -> Result<(), String> {
    sql.exec(SCHEMA, None)
        .map_err(|e| format!("lease schema: {e}"))?;
    sql.exec("DELETE FROM leases", None)
        .map_err(|e| format!("lease write: {e}"))?;
    for (holder, expires) in rows {
        sql.exec(
            "INSERT INTO leases (holder, expires_at) VALUES (?, ?)",
            vec![SqlStorageValue::from(holder), expires],
        )
        .map_err(|e| format!("lease write: {e}"))?;
    }
    Ok(())
}

/// Puts one holder back as it was before a batch: `None` removes its lease.
pub(crate) fn restore(sql: &SqlStorage, holder: &str, prior: Option<u64>) -> Result<(), String> {
    match prior {
        Some(exp) => {
            let exp = sql_num(exp.min(wire::MAX_SAFE) as i64)?;
            sql.exec(SCHEMA, None)
                .map_err(|e| format!("lease schema: {e}"))?;
            sql.exec(
                "INSERT OR REPLACE INTO leases (holder, expires_at) VALUES (?, ?)",
                vec![SqlStorageValue::from(holder), exp],
            )
        }
        None if wire::table_exists(sql, "leases")? => sql.exec(
            "DELETE FROM leases WHERE holder = ?",
            vec![SqlStorageValue::from(holder)],
        ),
        None => return Ok(()),
    }
    .map(|_| ())
    .map_err(|e| format!("lease write: {e}"))
}
