//! Store backends for the native host. Each implements `tollgate_core::store::Store` with the
//! semantics the conformance suite checks; consistency per backend is in `docs/storage.md`.

pub mod dynamodb;
pub mod embedded;
pub mod redis;
