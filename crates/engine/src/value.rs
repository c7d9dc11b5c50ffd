//! Value types stored in the keyspace, each with a compact encoding for small values
//! (Redis's listpack/intset idea) that converts to a big one past Redis's thresholds.

use crate::smallbytes::SmallBytes;
use std::collections::VecDeque;

pub type FastMap<K, V> = hashbrown::HashMap<K, V, ahash::RandomState>;
pub type FastSet<K> = hashbrown::HashSet<K, ahash::RandomState>;

/// Thresholds from Redis's config (hash-max-listpack-entries, ...).
#[derive(Debug, Clone, Copy)]
pub struct EncodingLimits {
    pub hash_max_listpack_entries: usize,
    pub hash_max_listpack_value: usize,
    pub set_max_intset_entries: usize,
    pub zset_max_listpack_entries: usize,
    pub zset_max_listpack_value: usize,
    pub list_max_listpack_size: i64,
}

impl Default for EncodingLimits {
    fn default() -> Self {
        EncodingLimits {
            hash_max_listpack_entries: 512,
            hash_max_listpack_value: 64,
            set_max_intset_entries: 512,
            zset_max_listpack_entries: 128,
            zset_max_listpack_value: 64,
            list_max_listpack_size: -2,
        }
    }
}

pub enum Value {
    /// A string that was set whole (Redis "int" / "embstr" / "raw" by content).
    Str(SmallBytes),
    /// A string grown in place (APPEND, SETRANGE, SETBIT): Redis "raw". Boxed so that
    /// `Value` stays 24 bytes.
    Raw(Box<Vec<u8>>),
    List(Box<ListValue>),
    Hash(Box<HashValue>),
    Set(Box<SetValue>),
    ZSet(Box<crate::zset::SortedSet>),
    Stream(Box<crate::stream::StreamValue>),
    /// A string stored through memcached: its bytes plus client flags and CAS (a string for
    /// every Redis command; see `mcitem`).
    Mc(crate::mcitem::McItem),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    String,
    List,
    Hash,
    Set,
    ZSet,
    Stream,
}

impl ValueType {
    pub fn name(self) -> &'static str {
        match self {
            ValueType::String => "string",
            ValueType::List => "list",
            ValueType::Hash => "hash",
            ValueType::Set => "set",
            ValueType::ZSet => "zset",
            ValueType::Stream => "stream",
        }
    }
    pub fn from_name(s: &[u8]) -> Option<ValueType> {
        Some(match s.to_ascii_lowercase().as_slice() {
            b"string" => ValueType::String,
            b"list" => ValueType::List,
            b"hash" => ValueType::Hash,
            b"set" => ValueType::Set,
            b"zset" => ValueType::ZSet,
            b"stream" => ValueType::Stream,
            _ => return None,
        })
    }
}

/// True when `s` is what Redis would store as an "int" encoded string.
pub fn is_int_encodable(s: &[u8]) -> bool {
    s.len() <= 20 && parse_i64_exact(s).is_some()
}

/// Redis's string2ll (no leading zeros / '+' / spaces).
pub fn parse_i64_exact(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, d) = if s[0] == b'-' { (true, &s[1..]) } else { (false, s) };
    if d.is_empty() || d[0] == b'0' {
        return None;
    }
    let mut v: u64 = 0;
    for &c in d {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    if neg {
        if v > i64::MAX as u64 + 1 {
            return None;
        }
        Some((v as i64).wrapping_neg())
    } else if v > i64::MAX as u64 {
        None
    } else {
        Some(v as i64)
    }
}

impl Value {
    pub fn str(b: &[u8]) -> Value {
        Value::Str(SmallBytes::new(b))
    }
    pub fn from_vec(v: Vec<u8>) -> Value {
        if v.len() <= crate::smallbytes::INLINE_CAP {
            Value::Str(SmallBytes::new(&v))
        } else {
            Value::Raw(Box::new(v))
        }
    }
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::Str(_) | Value::Raw(_) | Value::Mc(_) => ValueType::String,
            Value::List(_) => ValueType::List,
            Value::Hash(_) => ValueType::Hash,
            Value::Set(_) => ValueType::Set,
            Value::ZSet(_) => ValueType::ZSet,
            Value::Stream(_) => ValueType::Stream,
        }
    }
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Str(s) => Some(s.as_slice()),
            Value::Raw(v) => Some(v),
            Value::Mc(m) => Some(m.data()),
            _ => None,
        }
    }
    /// Make the string growable in place and return it (APPEND, SETRANGE, SETBIT).
    pub fn as_raw_mut(&mut self) -> Option<&mut Vec<u8>> {
        if let Value::Str(s) = self {
            *self = Value::Raw(Box::new(s.to_vec()));
        }
        // A Redis in-place write drops the memcached metadata (and so invalidates its CAS).
        if let Value::Mc(m) = self {
            *self = Value::Raw(Box::new(m.data().to_vec()));
        }
        match self {
            Value::Raw(v) => Some(&mut **v),
            _ => None,
        }
    }
    /// OBJECT ENCODING name.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Str(s) => {
                if is_int_encodable(s) {
                    "int"
                } else if s.len() <= 44 {
                    "embstr"
                } else {
                    "raw"
                }
            }
            // APPEND/SETRANGE/SETBIT results stay raw in Redis, digits or not.
            Value::Raw(_) => "raw",
            Value::Mc(m) => {
                if is_int_encodable(m.data()) {
                    "int"
                } else if m.data().len() <= 44 {
                    "embstr"
                } else {
                    "raw"
                }
            }
            Value::List(l) => l.encoding(),
            Value::Hash(h) => h.encoding(),
            Value::Set(s) => s.encoding(),
            Value::ZSet(z) => z.encoding(),
            Value::Stream(_) => "stream",
        }
    }
    /// Approximate bytes used (MEMORY USAGE, eviction accounting).
    pub fn mem_usage(&self) -> usize {
        match self {
            Value::Str(s) => s.heap_size(),
            Value::Raw(v) => v.capacity() + 24,
            Value::Mc(m) => m.mem_usage(),
            Value::List(l) => l.mem_usage(),
            Value::Hash(h) => h.mem_usage(),
            Value::Set(s) => s.mem_usage(),
            Value::ZSet(z) => z.memory_usage(),
            Value::Stream(x) => x.mem_usage(),
        }
    }
    /// Number of elements (for lazyfree decisions and DEBUG).
    pub fn len(&self) -> usize {
        match self {
            Value::Str(s) => s.len(),
            Value::Raw(v) => v.len(),
            Value::Mc(m) => m.data().len(),
            Value::List(l) => l.len(),
            Value::Hash(h) => h.len(),
            Value::Set(s) => s.len(),
            Value::ZSet(z) => z.len(),
            Value::Stream(x) => x.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn deep_clone(&self) -> Value {
        match self {
            Value::Str(s) => Value::Str(s.clone()),
            Value::Raw(v) => Value::Raw(v.clone()),
            Value::Mc(m) => Value::Mc(m.clone()),
            Value::List(l) => Value::List(l.clone()),
            Value::Hash(h) => Value::Hash(h.clone()),
            Value::Set(s) => Value::Set(s.clone()),
            Value::ZSet(z) => Value::ZSet(z.clone()),
            Value::Stream(x) => Value::Stream(x.clone()),
        }
    }
}

// ---------------------------------------------------------------- lists

/// A list (Redis 7.0: always a quicklist). `quicklist` is kept for callers that set it.
#[derive(Clone, Default)]
pub struct ListValue {
    pub items: VecDeque<SmallBytes>,
    /// Bytes of all elements (to decide the reported encoding as Redis does).
    pub bytes: usize,
    pub quicklist: bool,
}

impl ListValue {
    pub fn len(&self) -> usize {
        self.items.len()
    }
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
    /// Redis 7.0 always stores lists as quicklists (the listpack list encoding came in 7.2),
    /// so OBJECT ENCODING answers "quicklist" for every list.
    pub fn encoding(&self) -> &'static str {
        "quicklist"
    }
    pub fn mem_usage(&self) -> usize {
        self.items.capacity() * std::mem::size_of::<SmallBytes>()
            + self.items.iter().map(|s| s.heap_size()).sum::<usize>()
    }
}

// ---------------------------------------------------------------- hashes

#[derive(Clone)]
pub enum HashValue {
    /// Small hash: field/value pairs in insertion order (Redis's listpack).
    Listpack(Vec<(SmallBytes, SmallBytes)>),
    Table(FastMap<SmallBytes, SmallBytes>),
}

impl Default for HashValue {
    fn default() -> Self {
        HashValue::Listpack(Vec::new())
    }
}

impl HashValue {
    pub fn len(&self) -> usize {
        match self {
            HashValue::Listpack(v) => v.len(),
            HashValue::Table(m) => m.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn encoding(&self) -> &'static str {
        match self {
            HashValue::Listpack(_) => "listpack",
            HashValue::Table(_) => "hashtable",
        }
    }
    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match self {
            HashValue::Listpack(v) => v.iter().find(|(f, _)| f.as_slice() == field).map(|(_, v)| v.as_slice()),
            HashValue::Table(m) => m.get(field).map(|v| v.as_slice()),
        }
    }
    /// Set a field; returns true if the field is new.
    pub fn set(&mut self, field: &[u8], value: &[u8], lim: &EncodingLimits) -> bool {
        if let HashValue::Listpack(v) = self {
            if field.len() > lim.hash_max_listpack_value || value.len() > lim.hash_max_listpack_value {
                self.convert();
            } else if let Some(e) = v.iter_mut().find(|(f, _)| f.as_slice() == field) {
                e.1 = SmallBytes::new(value);
                // Redis's hashTypeSet checks the length after an update too (the limit may
                // have been lowered by CONFIG SET since the hash was built).
                if v.len() > lim.hash_max_listpack_entries {
                    self.convert();
                }
                return false;
            } else if v.len() < lim.hash_max_listpack_entries {
                v.push((SmallBytes::new(field), SmallBytes::new(value)));
                return true;
            } else {
                self.convert();
            }
        }
        match self {
            HashValue::Table(m) => m.insert(SmallBytes::new(field), SmallBytes::new(value)).is_none(),
            HashValue::Listpack(_) => unreachable!(),
        }
    }
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self {
            HashValue::Listpack(v) => {
                if let Some(i) = v.iter().position(|(f, _)| f.as_slice() == field) {
                    v.remove(i);
                    true
                } else {
                    false
                }
            }
            HashValue::Table(m) => m.remove(field).is_some(),
        }
    }
    fn convert(&mut self) {
        if let HashValue::Listpack(v) = self {
            let mut m = FastMap::with_capacity_and_hasher(v.len() * 2, ahash::RandomState::new());
            for (f, x) in v.drain(..) {
                m.insert(f, x);
            }
            *self = HashValue::Table(m);
        }
    }
    pub fn iter(&self) -> Box<dyn Iterator<Item = (&[u8], &[u8])> + '_> {
        match self {
            HashValue::Listpack(v) => Box::new(v.iter().map(|(f, x)| (f.as_slice(), x.as_slice()))),
            HashValue::Table(m) => Box::new(m.iter().map(|(f, x)| (f.as_slice(), x.as_slice()))),
        }
    }
    pub fn mem_usage(&self) -> usize {
        match self {
            HashValue::Listpack(v) => {
                v.capacity() * 48 + v.iter().map(|(a, b)| a.heap_size() + b.heap_size()).sum::<usize>()
            }
            HashValue::Table(m) => {
                m.capacity() * 49 + m.iter().map(|(a, b)| a.heap_size() + b.heap_size()).sum::<usize>()
            }
        }
    }
}

// ---------------------------------------------------------------- sets

#[derive(Clone)]
pub enum SetValue {
    /// Sorted integers (Redis's intset).
    Intset(Vec<i64>),
    Table(FastSet<SmallBytes>),
}

impl Default for SetValue {
    fn default() -> Self {
        SetValue::Intset(Vec::new())
    }
}

impl SetValue {
    pub fn len(&self) -> usize {
        match self {
            SetValue::Intset(v) => v.len(),
            SetValue::Table(s) => s.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn encoding(&self) -> &'static str {
        match self {
            SetValue::Intset(_) => "intset",
            SetValue::Table(_) => "hashtable",
        }
    }
    pub fn contains(&self, m: &[u8]) -> bool {
        match self {
            SetValue::Intset(v) => parse_i64_exact(m).is_some_and(|i| v.binary_search(&i).is_ok()),
            SetValue::Table(s) => s.contains(m),
        }
    }
    pub fn insert(&mut self, m: &[u8], lim: &EncodingLimits) -> bool {
        if let SetValue::Intset(v) = self {
            match parse_i64_exact(m) {
                Some(i) => match v.binary_search(&i) {
                    Ok(_) => return false,
                    Err(pos) => {
                        if v.len() < lim.set_max_intset_entries {
                            v.insert(pos, i);
                            return true;
                        }
                        self.convert();
                    }
                },
                None => self.convert(),
            }
        }
        match self {
            SetValue::Table(s) => s.insert(SmallBytes::new(m)),
            SetValue::Intset(_) => unreachable!(),
        }
    }
    pub fn remove(&mut self, m: &[u8]) -> bool {
        match self {
            SetValue::Intset(v) => match parse_i64_exact(m).map(|i| v.binary_search(&i)) {
                Some(Ok(pos)) => {
                    v.remove(pos);
                    true
                }
                _ => false,
            },
            SetValue::Table(s) => s.remove(m),
        }
    }
    fn convert(&mut self) {
        if let SetValue::Intset(v) = self {
            let mut s = FastSet::with_capacity_and_hasher(v.len() * 2, ahash::RandomState::new());
            let mut b = itoa::Buffer::new();
            for i in v.iter() {
                s.insert(SmallBytes::new(b.format(*i).as_bytes()));
            }
            *self = SetValue::Table(s);
        }
    }
    /// All members (as owned bytes).
    pub fn members(&self) -> Vec<Vec<u8>> {
        match self {
            SetValue::Intset(v) => v.iter().map(|i| i.to_string().into_bytes()).collect(),
            SetValue::Table(s) => s.iter().map(|m| m.to_vec()).collect(),
        }
    }
    pub fn mem_usage(&self) -> usize {
        match self {
            SetValue::Intset(v) => v.capacity() * 8,
            SetValue::Table(s) => s.capacity() * 25 + s.iter().map(|m| m.heap_size()).sum::<usize>(),
        }
    }
}
