//! The keyspace: shards, value types, expiry, eviction, memory accounting.
pub mod geo;
pub mod hll;
pub mod zset;
