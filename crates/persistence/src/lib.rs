//! Persistence formats: Redis RDB (and the DUMP payload, which is one RDB value) and the
//! multi-part AOF's manifest and command stream.
pub mod aof;
pub mod rdb;
