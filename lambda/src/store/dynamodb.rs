//! dynamodb Store backend (being written).
