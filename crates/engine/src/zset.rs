//! zset
