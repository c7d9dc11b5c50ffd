//! hll
