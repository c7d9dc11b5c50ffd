//! The keyspace: shards, value types, expiry, eviction, memory accounting. No IO.
pub mod cursor_scan;
pub mod effects;
pub mod geo;
pub mod glob;
pub mod hll;
pub mod keyspace;
pub mod lazyfree;
pub mod mcitem;
pub mod memory;
pub mod slot;
pub mod smallbytes;
pub mod stream;
pub mod value;
pub mod zset;

pub use effects::{notify, Effects, KeyEvent};
pub use keyspace::{AccessPolicy, Db, Entry, EvictionPolicy, Guards, Keyspace};
pub use smallbytes::SmallBytes;
pub use value::{EncodingLimits, HashValue, ListValue, SetValue, Value, ValueType};
