//! Persistence formats: Redis RDB (and the DUMP payload, which is one RDB value) and, later, AOF.
pub mod rdb;
