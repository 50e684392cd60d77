//! `/key/*` through the whole gateway.
