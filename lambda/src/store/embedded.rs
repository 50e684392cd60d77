//! embedded Store backend (being written).
