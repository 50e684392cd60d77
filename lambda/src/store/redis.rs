//! redis Store backend (being written).
