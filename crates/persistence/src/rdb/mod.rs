//! Redis RDB format (Redis 7.0, RDB version 10), independent of the engine.
//!
//! * [`RdbValue`] is a neutral value model covering every Redis data type.
//! * [`encode`] writes values in the encodings Redis 7.0 itself would choose
//!   (see [`EncodeOptions`] / [`EncodingHint`]); [`decode`] reads every value
//!   type Redis 7.0 can load (types 0-5 and 9-19), refusing module values.
//! * [`dump_payload`] / [`restore_payload`] implement the DUMP/RESTORE payload.
//! * [`RdbWriter`] / [`RdbReader`] stream whole RDB files.

pub mod crc64;
pub mod decode;
pub mod dump;
pub mod encode;
pub mod file;
pub mod intset;
pub mod listpack;
pub mod lzf;
pub mod util;
pub mod ziplist;
pub mod zipmap;

pub use decode::read_value;
pub use dump::{dump_payload, dump_payload_with, restore_payload};
pub use encode::encode_value;
pub use encode::{choose_type, write_value};
pub use file::{EntryMeta, RdbEntry, RdbEvent, RdbReader, RdbWriter, RdbWriterOptions};

/// The RDB version written by this crate (Redis 7.0).
pub const RDB_VERSION: u16 = 10;

/// RDB value type bytes (`rdb.h`).
pub mod rdb_type {
    pub const STRING: u8 = 0;
    pub const LIST: u8 = 1;
    pub const SET: u8 = 2;
    pub const ZSET: u8 = 3;
    pub const HASH: u8 = 4;
    pub const ZSET_2: u8 = 5;
    pub const MODULE: u8 = 6;
    pub const MODULE_2: u8 = 7;
    pub const HASH_ZIPMAP: u8 = 9;
    pub const LIST_ZIPLIST: u8 = 10;
    pub const SET_INTSET: u8 = 11;
    pub const ZSET_ZIPLIST: u8 = 12;
    pub const HASH_ZIPLIST: u8 = 13;
    pub const LIST_QUICKLIST: u8 = 14;
    pub const STREAM_LISTPACKS: u8 = 15;
    pub const HASH_LISTPACK: u8 = 16;
    pub const ZSET_LISTPACK: u8 = 17;
    pub const LIST_QUICKLIST_2: u8 = 18;
    pub const STREAM_LISTPACKS_2: u8 = 19;
}

/// RDB opcodes (`rdb.h`).
pub mod opcode {
    pub const FUNCTION2: u8 = 245;
    pub const FUNCTION: u8 = 246;
    pub const MODULE_AUX: u8 = 247;
    pub const IDLE: u8 = 248;
    pub const FREQ: u8 = 249;
    pub const AUX: u8 = 250;
    pub const RESIZEDB: u8 = 251;
    pub const EXPIRETIME_MS: u8 = 252;
    pub const EXPIRETIME: u8 = 253;
    pub const SELECTDB: u8 = 254;
    pub const EOF: u8 = 255;
}

/// A stream entry ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const fn new(ms: u64, seq: u64) -> Self {
        StreamId { ms, seq }
    }

    /// 128-bit big-endian form used as rax key / raw PEL id.
    pub fn to_be_bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.ms.to_be_bytes());
        b[8..].copy_from_slice(&self.seq.to_be_bytes());
        b
    }

    pub fn from_be_bytes(b: &[u8; 16]) -> Self {
        let mut ms = [0u8; 8];
        let mut seq = [0u8; 8];
        ms.copy_from_slice(&b[..8]);
        seq.copy_from_slice(&b[8..]);
        StreamId { ms: u64::from_be_bytes(ms), seq: u64::from_be_bytes(seq) }
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// One stream entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEntry {
    pub id: StreamId,
    pub fields: Vec<(Vec<u8>, Vec<u8>)>,
}

/// A pending (delivered, not acknowledged) entry of a consumer group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamPendingEntry {
    pub id: StreamId,
    /// Last delivery time, unix milliseconds.
    pub delivery_time: i64,
    pub delivery_count: u64,
    /// Owning consumer. Filled in by the decoder from the consumers' PELs.
    /// The encoder writes consumer ownership from [`StreamConsumer::pending`];
    /// this field is informational when writing.
    pub consumer: Option<Vec<u8>>,
}

/// A consumer of a consumer group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamConsumer {
    pub name: Vec<u8>,
    /// Last seen time, unix milliseconds.
    pub seen_time: i64,
    /// IDs of the group PEL entries owned by this consumer.
    pub pending: Vec<StreamId>,
}

/// A consumer group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamGroup {
    pub name: Vec<u8>,
    pub last_id: StreamId,
    /// Logical read counter; -1 (`SCG_INVALID_ENTRIES_READ`) when unknown.
    pub entries_read: i64,
    pub pending: Vec<StreamPendingEntry>,
    pub consumers: Vec<StreamConsumer>,
}

/// A stream value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamValue {
    /// Live entries in ID order.
    pub entries: Vec<StreamEntry>,
    pub last_id: StreamId,
    pub first_id: StreamId,
    pub max_deleted_entry_id: StreamId,
    pub entries_added: u64,
    pub groups: Vec<StreamGroup>,
}

impl StreamValue {
    /// A stream holding `entries` as if they were all added with XADD and
    /// never deleted.
    pub fn from_entries(entries: Vec<StreamEntry>) -> Self {
        let first_id = entries.first().map(|e| e.id).unwrap_or_default();
        let last_id = entries.last().map(|e| e.id).unwrap_or_default();
        StreamValue {
            entries_added: entries.len() as u64,
            entries,
            last_id,
            first_id,
            max_deleted_entry_id: StreamId::default(),
            groups: Vec::new(),
        }
    }
}

/// A module value (RDB_TYPE_MODULE_2). Can be written, never decoded: the
/// decoder refuses module values like a Redis without the module would.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleValue {
    /// 64-bit module type id (54-bit name + 10-bit encoding version).
    pub module_id: u64,
    /// Serialized module data after the id, in MODULE_2 opcode format,
    /// including the final `RDB_MODULE_OPCODE_EOF`.
    pub raw: Vec<u8>,
}

/// A Redis value in a neutral, engine-independent form.
#[derive(Debug, Clone, PartialEq)]
pub enum RdbValue {
    String(Vec<u8>),
    /// List elements, head to tail.
    List(Vec<Vec<u8>>),
    /// Set members (unique).
    Set(Vec<Vec<u8>>),
    /// Members and scores (unique members). Decoded zsets are sorted by
    /// (score, member).
    ZSet(Vec<(Vec<u8>, f64)>),
    /// Field/value pairs (unique fields).
    Hash(Vec<(Vec<u8>, Vec<u8>)>),
    Stream(StreamValue),
    Module(ModuleValue),
}

impl RdbValue {
    /// A canonical form for order-insensitive comparison: set members,
    /// hash fields and zset members sorted; stream groups, consumers and
    /// PELs sorted, and PEL owners filled in from the consumers' PELs.
    pub fn normalized(&self) -> RdbValue {
        match self {
            RdbValue::Set(m) => {
                let mut m = m.clone();
                m.sort();
                RdbValue::Set(m)
            }
            RdbValue::Hash(h) => {
                let mut h = h.clone();
                h.sort();
                RdbValue::Hash(h)
            }
            RdbValue::ZSet(z) => {
                let mut z = z.clone();
                z.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
                RdbValue::ZSet(z)
            }
            RdbValue::Stream(s) => {
                let mut s = s.clone();
                s.groups.sort_by(|a, b| a.name.cmp(&b.name));
                for g in &mut s.groups {
                    g.consumers.sort_by(|a, b| a.name.cmp(&b.name));
                    g.pending.sort_by_key(|p| p.id);
                    for p in &mut g.pending {
                        p.consumer = None;
                    }
                    for c in &mut g.consumers {
                        c.pending.sort();
                        for id in &c.pending {
                            if let Ok(i) = g.pending.binary_search_by_key(id, |p| p.id) {
                                g.pending[i].consumer = Some(c.name.clone());
                            }
                        }
                    }
                }
                RdbValue::Stream(s)
            }
            other => other.clone(),
        }
    }

    /// Redis type name (as `TYPE` reports it).
    pub fn type_name(&self) -> &'static str {
        match self {
            RdbValue::String(_) => "string",
            RdbValue::List(_) => "list",
            RdbValue::Set(_) => "set",
            RdbValue::ZSet(_) => "zset",
            RdbValue::Hash(_) => "hash",
            RdbValue::Stream(_) => "stream",
            RdbValue::Module(_) => "module",
        }
    }
}

/// How to choose the on-disk encoding of a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EncodingHint {
    /// What Redis 7.0 would pick for this data given the thresholds in
    /// [`EncodeOptions`] (a key built from scratch by HSET/SADD/ZADD/RPUSH/XADD).
    #[default]
    Auto,
    /// Force the compact encoding (listpack for hash/zset, intset for sets
    /// when all members are integers), e.g. when the engine holds it so.
    Compact,
    /// Force the plain encoding (RDB_TYPE_HASH, RDB_TYPE_ZSET_2, RDB_TYPE_SET).
    Plain,
}

/// Encoder configuration, mirroring the redis.conf settings that influence
/// what Redis writes. `Default` is redis-server 7.0's compiled-in defaults
/// (what it runs with when started without a config file; note
/// `hash-max-listpack-entries` is 512 there, while the sample redis.conf
/// shipped with Redis sets 128: see [`EncodeOptions::redis_conf_sample`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeOptions {
    /// `rdbcompression`: LZF-compress strings longer than 20 bytes when it
    /// saves space.
    pub compression: bool,
    pub hash_max_listpack_entries: usize,
    pub hash_max_listpack_value: usize,
    pub zset_max_listpack_entries: usize,
    pub zset_max_listpack_value: usize,
    pub set_max_intset_entries: usize,
    /// `list-max-listpack-size` (negative: size class, positive: count).
    pub list_max_listpack_size: i32,
    pub stream_node_max_bytes: usize,
    pub stream_node_max_entries: usize,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        EncodeOptions {
            compression: true,
            hash_max_listpack_entries: 512,
            hash_max_listpack_value: 64,
            zset_max_listpack_entries: 128,
            zset_max_listpack_value: 64,
            set_max_intset_entries: 512,
            list_max_listpack_size: -2,
            stream_node_max_bytes: 4096,
            stream_node_max_entries: 100,
        }
    }
}

impl EncodeOptions {
    /// The thresholds of the sample redis.conf shipped with Redis 7.0
    /// (identical to the defaults except `hash-max-listpack-entries 128`).
    pub fn redis_conf_sample() -> Self {
        EncodeOptions { hash_max_listpack_entries: 128, ..Default::default() }
    }
}

/// Errors from decoding RDB data.
#[derive(Debug, thiserror::Error)]
pub enum RdbError {
    #[error("I/O error: {0}")]
    Io(std::io::Error),
    #[error("unexpected end of RDB data")]
    UnexpectedEof,
    #[error("wrong signature trying to load DB from file")]
    BadSignature,
    #[error("can't handle RDB format version {0}")]
    UnsupportedVersion(u32),
    #[error("wrong RDB checksum: expected {expected:#018x}, got {computed:#018x}")]
    ChecksumMismatch { expected: u64, computed: u64 },
    #[error("DUMP payload version or checksum are wrong")]
    BadDumpPayload,
    #[error("unknown RDB encoding type {0}")]
    UnknownType(u8),
    #[error("unknown RDB string encoding {0}")]
    UnknownStringEncoding(u8),
    #[error("the RDB contains module data I can't load: no matching module '{module_name}' (id {module_id:#x})")]
    ModuleValue { module_id: u64, module_name: String },
    #[error("pre-release function format not supported")]
    PreReleaseFunctionFormat,
    #[error("corrupt RDB data: {0}")]
    Corrupt(String),
}

impl From<std::io::Error> for RdbError {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            RdbError::UnexpectedEof
        } else {
            RdbError::Io(e)
        }
    }
}

impl RdbError {
    /// The error reply Redis sends for this failure in RESTORE.
    pub fn redis_reply(&self) -> &'static str {
        match self {
            RdbError::BadDumpPayload => "ERR DUMP payload version or checksum are wrong",
            _ => "ERR Bad data format",
        }
    }
}

/// Decode the 9-character module name from a module type id.
pub fn module_type_name(module_id: u64) -> String {
    const SET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut id = module_id >> 10;
    let mut name = [0u8; 9];
    for j in (0..9).rev() {
        name[j] = SET[(id & 63) as usize];
        id >>= 6;
    }
    String::from_utf8_lossy(&name).into_owned()
}
