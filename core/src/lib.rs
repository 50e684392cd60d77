//! Tollgate's runtime-neutral core.
//!
//! Everything that decides something lives here: config, auth, request validation, provider
//! translation, streaming and error mapping. Hosts (`tollgate-lambda`, `tollgate-workers`) only
//! convert their runtime's request/response types and implement the [`ports`].
//!
//! The request pipeline is in [`gateway`]; read that file first.

pub mod admin;
pub mod anthropic_ingress;
pub mod auth;
pub mod config;
pub mod cost;
pub mod deployment;
pub mod error;
pub mod gateway;
pub mod ids;
pub mod ledger;
pub mod openai;
pub mod ports;
pub mod providers;
pub mod response;
pub mod rng;
pub mod router;
pub mod secret;
pub mod sse;
pub mod store;
pub mod store_log;
pub mod stream;
pub mod validate;

pub use config::Config;
pub use error::GatewayError;
pub use gateway::{Gateway, GatewayResponse, ResponseBody};
