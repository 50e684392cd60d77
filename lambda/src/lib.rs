//! Tollgate's native host: the pieces `main.rs` wires together, and the server-backed Store
//! backends (Redis, DynamoDB, embedded), as a library so integration tests and tools reach them.

pub mod after_response;
pub mod cli;
pub mod clock;
pub mod config_source;
pub mod entropy;
pub mod http_client;
pub mod lambda_host;
pub mod local_server;
pub mod response_body;
pub mod shutdown;
pub mod store;
#[cfg(test)]
pub mod test_support;
