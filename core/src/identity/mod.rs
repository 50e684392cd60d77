//! Who may call the gateway and what they own: virtual keys, internal users, teams, end users
//! and shared budgets (LiteLLM's governance objects), stored as records in the Store.
//!
//! - `records.rs`: the records and where they live;
//! - `token.rs`: generating keys from the entropy port, and the SHA-256 token they are kept as;
//! - `cache.rs`, `directory.rs`: reads through a short per-instance cache, writes to the Store;
//! - `caller.rs`: authenticating a request (master key or virtual key) and model access.
//!
//! Spend is not here: it lives in Store counters (`crate::budget`), so traffic never rewrites
//! a record.

pub mod cache;
pub mod caller;
pub mod directory;
pub mod records;
pub mod token;

pub use caller::{Caller, KeyCaller};
pub use directory::Directory;
