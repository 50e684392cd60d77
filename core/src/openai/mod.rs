//! OpenAI's wire types: the lingua franca every provider is translated to and from.
//!
//! Known fields are typed so a malformed request is refused with a precise message; unknown
//! fields are kept in `extra` maps and passed through, so new OpenAI parameters keep working.

pub mod chat;
pub mod usage;

pub use chat::*;
pub use usage::*;
