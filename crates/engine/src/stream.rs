//! Streams (Redis 7.0 `t_stream.c`): entries live in nodes modelled on Redis's radix-tree
//! listpacks — a node holds up to stream-node-max-entries entries (live + deleted) and up to
//! stream-node-max-bytes bytes of listpack, with deleted entries kept as tombstones until the
//! whole node empties — so approximate (`~`) trimming removes exactly the whole nodes Redis
//! would. Consumer groups keep their PEL and consumers in byte order (Redis's rax order).

use crate::smallbytes::SmallBytes;
use crate::value::parse_i64_exact;
use std::collections::{BTreeMap, BTreeSet};

/// A stream entry ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId { ms: u64::MAX, seq: u64::MAX };
    pub const fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }
    pub fn is_zero(&self) -> bool {
        self.ms == 0 && self.seq == 0
    }
    /// The next ID (`streamIncrID`); None on overflow.
    pub fn incr(self) -> Option<StreamId> {
        if self.seq == u64::MAX {
            if self.ms == u64::MAX {
                None
            } else {
                Some(StreamId { ms: self.ms + 1, seq: 0 })
            }
        } else {
            Some(StreamId { ms: self.ms, seq: self.seq + 1 })
        }
    }
    /// The previous ID (`streamDecrID`); None on underflow.
    pub fn decr(self) -> Option<StreamId> {
        if self.seq == 0 {
            if self.ms == 0 {
                None
            } else {
                Some(StreamId { ms: self.ms - 1, seq: u64::MAX })
            }
        } else {
            Some(StreamId { ms: self.ms, seq: self.seq - 1 })
        }
    }
    /// `<ms>-<seq>`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = itoa::Buffer::new();
        let mut v = Vec::with_capacity(24);
        v.extend_from_slice(b.format(self.ms).as_bytes());
        v.push(b'-');
        v.extend_from_slice(b.format(self.seq).as_bytes());
        v
    }
    /// 128-bit big-endian form (rax key).
    pub fn to_be_bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.ms.to_be_bytes());
        b[8..].copy_from_slice(&self.seq.to_be_bytes());
        b
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// Listpack limit for one node (`STREAM_LISTPACK_MAX_SIZE`).
pub const STREAM_LISTPACK_MAX_SIZE: usize = 1 << 30;
/// `SCG_INVALID_ENTRIES_READ`.
pub const INVALID_ENTRIES_READ: i64 = -1;

/// Node sizing (stream-node-max-bytes / stream-node-max-entries).
#[derive(Debug, Clone, Copy)]
pub struct NodeLimits {
    pub max_bytes: usize,
    pub max_entries: usize,
}

impl Default for NodeLimits {
    fn default() -> Self {
        NodeLimits { max_bytes: 4096, max_entries: 100 }
    }
}

// ------------------------------------------------------------ listpack sizes

fn lp_backlen_size(l: usize) -> usize {
    if l < 128 {
        1
    } else if l < 16384 {
        2
    } else if l < 2097152 {
        3
    } else if l < 268435456 {
        4
    } else {
        5
    }
}

/// Bytes of a listpack integer entry (encoding + backlen).
pub fn lp_int_size(v: i64) -> usize {
    let enc = if (0..=127).contains(&v) {
        1
    } else if (-4096..=4095).contains(&v) {
        2
    } else if (i16::MIN as i64..=i16::MAX as i64).contains(&v) {
        3
    } else if (-(1i64 << 23)..(1i64 << 23)).contains(&v) {
        4
    } else if (i32::MIN as i64..=i32::MAX as i64).contains(&v) {
        5
    } else {
        9
    };
    enc + lp_backlen_size(enc)
}

/// Bytes of a listpack entry holding `s` (integer-encoded when it looks like one).
pub fn lp_str_size(s: &[u8]) -> usize {
    if let Some(v) = parse_i64_exact(s) {
        return lp_int_size(v);
    }
    let l = s.len();
    let enc = if l < 64 {
        1 + l
    } else if l < 4096 {
        2 + l
    } else {
        5 + l
    };
    enc + lp_backlen_size(enc)
}

// ------------------------------------------------------------ nodes

/// One entry (live or tombstone). `fields` is flat: field, value, field, value...
#[derive(Clone, Debug)]
pub struct StreamEntry {
    pub id: StreamId,
    pub fields: Vec<SmallBytes>,
    pub deleted: bool,
}

/// A radix-tree node: one listpack of entries sharing a master entry.
#[derive(Clone, Debug)]
pub struct StreamNode {
    pub master_id: StreamId,
    master_fields: Vec<SmallBytes>,
    pub entries: Vec<StreamEntry>,
    pub live: usize,
    pub deleted: usize,
    entries_bytes: usize,
}

impl StreamNode {
    /// The listpack's byte size as Redis would have it.
    pub fn lp_bytes(&self) -> usize {
        6 + lp_int_size(self.live as i64)
            + lp_int_size(self.deleted as i64)
            + lp_int_size(self.master_fields.len() as i64)
            + self.master_fields.iter().map(|f| lp_str_size(f)).sum::<usize>()
            + lp_int_size(0)
            + self.entries_bytes
            + 1
    }
    fn find(&self, id: StreamId) -> Option<usize> {
        self.entries.binary_search_by(|e| e.id.cmp(&id)).ok()
    }
    fn last_id(&self) -> StreamId {
        self.entries.last().map(|e| e.id).unwrap_or(self.master_id)
    }
}

// ------------------------------------------------------------ groups

#[derive(Clone, Debug)]
pub struct Nack {
    /// Last delivery, unix ms.
    pub delivery_time: i64,
    pub delivery_count: u64,
    pub consumer: Vec<u8>,
}

#[derive(Clone, Debug, Default)]
pub struct Consumer {
    pub seen_time: i64,
    pub pel: BTreeSet<StreamId>,
}

#[derive(Clone, Debug)]
pub struct ConsumerGroup {
    pub last_id: StreamId,
    pub entries_read: i64,
    pub pel: BTreeMap<StreamId, Nack>,
    pub consumers: BTreeMap<Vec<u8>, Consumer>,
}

impl ConsumerGroup {
    pub fn new(last_id: StreamId, entries_read: i64) -> ConsumerGroup {
        ConsumerGroup { last_id, entries_read, pel: BTreeMap::new(), consumers: BTreeMap::new() }
    }
    /// Remove a PEL entry from the group and its owner.
    pub fn remove_nack(&mut self, id: StreamId) -> Option<Nack> {
        let n = self.pel.remove(&id)?;
        if let Some(c) = self.consumers.get_mut(&n.consumer) {
            c.pel.remove(&id);
        }
        Some(n)
    }
    /// Create the consumer if missing; returns true if created.
    pub fn ensure_consumer(&mut self, name: &[u8], now: i64) -> bool {
        if let Some(c) = self.consumers.get_mut(name) {
            c.seen_time = now;
            false
        } else {
            self.consumers.insert(name.to_vec(), Consumer { seen_time: now, pel: BTreeSet::new() });
            true
        }
    }
    /// Give PEL entry `id` to `consumer` (which must exist), creating it when missing.
    pub fn assign(&mut self, id: StreamId, consumer: &[u8], delivery_time: i64, delivery_count: u64) {
        if let Some(old) = self.pel.get(&id).map(|n| n.consumer.clone()) {
            if old.as_slice() != consumer {
                if let Some(c) = self.consumers.get_mut(&old) {
                    c.pel.remove(&id);
                }
            }
        }
        self.pel.insert(id, Nack { delivery_time, delivery_count, consumer: consumer.to_vec() });
        if let Some(c) = self.consumers.get_mut(consumer) {
            c.pel.insert(id);
        }
    }
}

// ------------------------------------------------------------ the stream

#[derive(Clone, Debug, Default)]
pub struct StreamValue {
    pub nodes: BTreeMap<StreamId, StreamNode>,
    pub length: u64,
    pub last_id: StreamId,
    pub first_id: StreamId,
    pub max_deleted_entry_id: StreamId,
    pub entries_added: u64,
    pub groups: BTreeMap<Vec<u8>, ConsumerGroup>,
}

/// How to trim (`streamAddTrimArgs`).
#[derive(Debug, Clone, Copy)]
pub enum Trim {
    None,
    MaxLen(u64),
    MinId(StreamId),
}

#[derive(Debug, PartialEq, Eq)]
pub enum AppendError {
    /// ID equal or smaller than the top item (EDOM).
    IdTooSmall,
    /// Elements too large (ERANGE).
    TooLarge,
}

impl StreamValue {
    pub fn new() -> StreamValue {
        StreamValue::default()
    }
    pub fn len(&self) -> usize {
        self.length as usize
    }
    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// Append an entry (`streamAppendItem`). `use_id`: an explicit ID, with `seq_given`
    /// false for the `<ms>-*` form. `fields` is flat (field, value, ...).
    pub fn append(
        &mut self,
        fields: &[&[u8]],
        use_id: Option<StreamId>,
        seq_given: bool,
        now_ms: u64,
        lim: NodeLimits,
    ) -> Result<StreamId, AppendError> {
        let id = match use_id {
            Some(u) if seq_given => u,
            Some(u) => {
                if self.last_id.ms == u.ms {
                    if self.last_id.seq == u64::MAX {
                        // Redis returns C_ERR here without setting errno: the reply is
                        // "Elements are too large to be stored".
                        return Err(AppendError::TooLarge);
                    }
                    StreamId::new(u.ms, self.last_id.seq + 1)
                } else {
                    u
                }
            }
            None => {
                if self.last_id.ms >= now_ms {
                    self.last_id.incr().unwrap_or(self.last_id)
                } else {
                    StreamId::new(now_ms, 0)
                }
            }
        };
        if id <= self.last_id {
            return Err(AppendError::IdTooSmall);
        }
        let totelelen: usize = fields.iter().map(|f| f.len()).sum();
        if totelelen > STREAM_LISTPACK_MAX_SIZE {
            return Err(AppendError::TooLarge);
        }
        let numfields = fields.len() / 2;
        let mut node_max_bytes = lim.max_bytes;
        if node_max_bytes == 0 || node_max_bytes > STREAM_LISTPACK_MAX_SIZE {
            node_max_bytes = STREAM_LISTPACK_MAX_SIZE;
        }
        let need_new = match self.nodes.values().next_back() {
            None => true,
            Some(n) => {
                n.lp_bytes() + totelelen >= node_max_bytes
                    || (lim.max_entries != 0 && n.live + n.deleted >= lim.max_entries)
            }
        };
        if need_new {
            let master_fields: Vec<SmallBytes> = (0..numfields).map(|i| SmallBytes::new(fields[i * 2])).collect();
            self.nodes.insert(
                id,
                StreamNode { master_id: id, master_fields, entries: Vec::new(), live: 0, deleted: 0, entries_bytes: 0 },
            );
        }
        let node = self.nodes.values_mut().next_back().expect("tail node");
        let same = node.master_fields.len() == numfields
            && node.master_fields.iter().enumerate().all(|(i, f)| f.as_slice() == fields[i * 2]);
        let flags: i64 = if same { 2 } else { 0 };
        let mut bytes = lp_int_size(flags)
            + lp_int_size(id.ms.wrapping_sub(node.master_id.ms) as i64)
            + lp_int_size(id.seq.wrapping_sub(node.master_id.seq) as i64);
        let mut lp_count = numfields as i64 + 3;
        if !same {
            bytes += lp_int_size(numfields as i64);
            lp_count += numfields as i64 + 1;
        }
        for (i, f) in fields.iter().enumerate() {
            if i % 2 == 1 || !same {
                bytes += lp_str_size(f);
            }
        }
        bytes += lp_int_size(lp_count);
        node.entries_bytes += bytes;
        node.live += 1;
        node.entries.push(StreamEntry {
            id,
            fields: fields.iter().map(|f| SmallBytes::new(f)).collect(),
            deleted: false,
        });
        self.length += 1;
        self.entries_added += 1;
        self.last_id = id;
        if self.length == 1 {
            self.first_id = id;
        }
        Ok(id)
    }

    /// Insert an entry as-is at the tail (RDB load): same node rules as XADD.
    pub fn push_loaded(&mut self, id: StreamId, fields: &[&[u8]], lim: NodeLimits) {
        let (last, added, first) = (self.last_id, self.entries_added, self.first_id);
        self.last_id = StreamId::MIN;
        let _ = self.append(fields, Some(id), true, 0, lim);
        self.last_id = if last > id { last } else { id };
        self.entries_added = added;
        if self.length > 1 {
            self.first_id = first;
        }
    }

    fn node_of(&self, id: StreamId) -> Option<&StreamNode> {
        self.nodes.range(..=id).next_back().map(|(_, n)| n)
    }

    /// The live entry with this ID.
    pub fn get(&self, id: StreamId) -> Option<&StreamEntry> {
        let n = self.node_of(id)?;
        let i = n.find(id)?;
        let e = &n.entries[i];
        if e.deleted {
            None
        } else {
            Some(e)
        }
    }
    pub fn exists(&self, id: StreamId) -> bool {
        self.get(id).is_some()
    }

    /// Live entries with start <= id <= end, in order (reversed when `rev`).
    pub fn range(&self, start: StreamId, end: StreamId, rev: bool) -> Box<dyn Iterator<Item = &StreamEntry> + '_> {
        if start > end {
            return Box::new(std::iter::empty());
        }
        if !rev {
            let from = self.nodes.range(..=start).next_back().map(|(k, _)| *k).unwrap_or(StreamId::MIN);
            Box::new(
                self.nodes
                    .range(from..)
                    .flat_map(|(_, n)| n.entries.iter())
                    .filter(move |e| !e.deleted && e.id >= start)
                    .take_while(move |e| e.id <= end),
            )
        } else {
            Box::new(
                self.nodes
                    .range(..=end)
                    .rev()
                    .flat_map(|(_, n)| n.entries.iter().rev())
                    .filter(move |e| !e.deleted && e.id <= end)
                    .take_while(move |e| e.id >= start),
            )
        }
    }

    /// First live entry ID (`streamGetEdgeID(s,1,1)`), 0-0 when empty.
    pub fn first_live_id(&self) -> StreamId {
        self.range(StreamId::MIN, StreamId::MAX, false).next().map(|e| e.id).unwrap_or_default()
    }
    /// Last live entry ID (`streamLastValidID`), 0-0 when empty.
    pub fn last_live_id(&self) -> StreamId {
        self.range(StreamId::MIN, StreamId::MAX, true).next().map(|e| e.id).unwrap_or_default()
    }
    /// First ID in the first node, tombstones included (`streamGetEdgeID(s,1,0)`).
    pub fn first_id_with_tombstones(&self) -> StreamId {
        self.nodes.values().next().and_then(|n| n.entries.first().map(|e| e.id)).unwrap_or_default()
    }

    /// Delete one entry (`streamDeleteItem`). Does not touch first_id/max_deleted_entry_id.
    pub fn delete(&mut self, id: StreamId) -> bool {
        let Some((&key, _)) = self.nodes.range(..=id).next_back() else {
            return false;
        };
        let n = self.nodes.get_mut(&key).unwrap();
        let Some(i) = n.find(id) else { return false };
        if n.entries[i].deleted {
            return false;
        }
        if n.live == 1 {
            self.nodes.remove(&key);
        } else {
            let e = &mut n.entries[i];
            e.deleted = true;
            e.fields = Vec::new();
            n.live -= 1;
            n.deleted += 1;
        }
        self.length -= 1;
        true
    }

    /// `streamTrim`. `limit` 0 means unlimited. Returns entries removed.
    pub fn trim(&mut self, how: Trim, approx: bool, limit: u64) -> u64 {
        if matches!(how, Trim::None) {
            return 0;
        }
        let mut deleted: u64 = 0;
        loop {
            if let Trim::MaxLen(m) = how {
                if self.length <= m {
                    break;
                }
            }
            let Some((&key, node)) = self.nodes.iter().next() else {
                break;
            };
            let entries = node.live as u64;
            if limit != 0 && deleted + entries > limit {
                break;
            }
            let remove_node = match how {
                Trim::MaxLen(m) => self.length - entries >= m,
                Trim::MinId(min) => node.last_id() < min,
                Trim::None => false,
            };
            if remove_node {
                self.nodes.remove(&key);
                self.length -= entries;
                deleted += entries;
                continue;
            }
            if approx {
                break;
            }
            let node = self.nodes.get_mut(&key).unwrap();
            let mut from_lp = 0u64;
            for e in node.entries.iter_mut() {
                let stop = match how {
                    Trim::MaxLen(m) => self.length <= m,
                    Trim::MinId(min) => e.id >= min,
                    Trim::None => true,
                };
                if stop {
                    break;
                }
                if !e.deleted {
                    e.deleted = true;
                    e.fields = Vec::new();
                    from_lp += 1;
                    self.length -= 1;
                }
            }
            node.live -= from_lp as usize;
            node.deleted += from_lp as usize;
            deleted += from_lp;
            break;
        }
        if self.length == 0 {
            self.first_id = StreamId::MIN;
        } else if deleted > 0 {
            self.first_id = self.first_live_id();
        }
        deleted
    }

    /// `streamRangeHasTombstones` with end = +inf when None.
    pub fn range_has_tombstones(&self, start: StreamId, end: Option<StreamId>) -> bool {
        if self.length == 0 || self.max_deleted_entry_id.is_zero() {
            return false;
        }
        if self.first_id > self.max_deleted_entry_id {
            return false;
        }
        let end = end.unwrap_or(StreamId::MAX);
        start <= self.max_deleted_entry_id && self.max_deleted_entry_id <= end
    }

    /// `streamEstimateDistanceFromFirstEverEntry`; INVALID_ENTRIES_READ when unknown.
    pub fn estimate_distance(&self, id: StreamId) -> i64 {
        if self.entries_added == 0 {
            return 0;
        }
        if self.length == 0 && id <= self.last_id {
            return self.entries_added as i64;
        }
        if id == self.last_id {
            return self.entries_added as i64;
        } else if id > self.last_id {
            return INVALID_ENTRIES_READ;
        }
        if self.max_deleted_entry_id.is_zero() || self.max_deleted_entry_id < self.first_id {
            if id < self.first_id {
                return (self.entries_added - self.length) as i64;
            } else if id == self.first_id {
                return (self.entries_added - self.length + 1) as i64;
            }
        }
        INVALID_ENTRIES_READ
    }

    /// A group's lag (`streamReplyWithCGLag`); None when not computable.
    pub fn group_lag(&self, g: &ConsumerGroup) -> Option<i64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if g.entries_read != INVALID_ENTRIES_READ && !self.range_has_tombstones(g.last_id, None) {
            return Some(self.entries_added as i64 - g.entries_read);
        }
        let er = self.estimate_distance(g.last_id);
        if er != INVALID_ENTRIES_READ {
            Some(self.entries_added as i64 - er)
        } else {
            None
        }
    }

    /// Advance a group's last delivered ID to `id` as delivering it does (`streamReplyWithRange`).
    pub fn group_deliver(&self, g: &mut ConsumerGroup, id: StreamId) {
        if id > g.last_id {
            if g.entries_read != INVALID_ENTRIES_READ && !self.range_has_tombstones(id, None) {
                g.entries_read += 1;
            } else if self.entries_added != 0 {
                g.entries_read = self.estimate_distance(id);
            }
            g.last_id = id;
        }
    }

    /// Number of radix-tree keys (nodes).
    pub fn rax_keys(&self) -> usize {
        self.nodes.len()
    }

    /// Number of rax nodes Redis's radix tree would have for these keys.
    pub fn rax_nodes(&self) -> usize {
        let keys: Vec<[u8; 16]> = self.nodes.keys().map(|k| k.to_be_bytes()).collect();
        if keys.is_empty() {
            return 1;
        }
        fn count(keys: &[[u8; 16]], depth: usize) -> usize {
            if depth == 16 {
                return 1;
            }
            // Longest common prefix from depth.
            let first = &keys[0];
            let last = &keys[keys.len() - 1];
            let mut l = depth;
            while l < 16 && first[l] == last[l] {
                l += 1;
            }
            if l > depth {
                return 1 + count(keys, l);
            }
            let mut n = 1;
            let mut i = 0;
            while i < keys.len() {
                let b = keys[i][depth];
                let mut j = i;
                while j < keys.len() && keys[j][depth] == b {
                    j += 1;
                }
                n += count(&keys[i..j], depth + 1);
                i = j;
            }
            n
        }
        count(&keys, 0)
    }

    pub fn mem_usage(&self) -> usize {
        let mut n = 0;
        for node in self.nodes.values() {
            n += 64 + node.lp_bytes();
        }
        for (name, g) in &self.groups {
            n += 64 + name.len() + g.pel.len() * 64;
            for (c, _) in g.consumers.iter() {
                n += 64 + c.len();
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(s: &mut StreamValue, ms: u64) -> StreamId {
        s.append(&[b"item", b"1"], Some(StreamId::new(ms, 0)), true, 0, NodeLimits::default()).unwrap()
    }

    #[test]
    fn nodes_split_at_100() {
        let mut s = StreamValue::new();
        for i in 1..=250 {
            add(&mut s, i);
        }
        assert_eq!(s.rax_keys(), 3);
        assert_eq!(s.len(), 250);
        // MAXLEN ~ 120 removes only the first whole node.
        let d = s.trim(Trim::MaxLen(120), true, 10000);
        assert_eq!(d, 100);
        assert_eq!(s.len(), 150);
        assert_eq!(s.first_id, StreamId::new(101, 0));
        let d = s.trim(Trim::MaxLen(120), false, 0);
        assert_eq!(d, 30);
        assert_eq!(s.first_id, StreamId::new(131, 0));
        assert_eq!(s.range(StreamId::MIN, StreamId::MAX, false).count(), 120);
        assert_eq!(s.range(StreamId::MIN, StreamId::MAX, true).next().unwrap().id, StreamId::new(250, 0));
    }

    #[test]
    fn delete_and_rax_nodes() {
        let mut s = StreamValue::new();
        assert_eq!(s.rax_nodes(), 1);
        add(&mut s, 1);
        assert_eq!(s.rax_nodes(), 2);
        add(&mut s, 2);
        assert!(s.delete(StreamId::new(1, 0)));
        assert!(!s.delete(StreamId::new(1, 0)));
        assert_eq!(s.len(), 1);
        assert!(s.delete(StreamId::new(2, 0)));
        assert_eq!(s.rax_keys(), 0);
    }

    #[test]
    fn lp_sizes() {
        assert_eq!(lp_int_size(0), 2);
        assert_eq!(lp_int_size(128), 3);
        assert_eq!(lp_str_size(b"abc"), 5);
        assert_eq!(lp_str_size(b"123"), 2);
        assert_eq!(lp_str_size(b"1234"), 3);
    }
}
