//! Tollgate on Cloudflare Workers (being written).
