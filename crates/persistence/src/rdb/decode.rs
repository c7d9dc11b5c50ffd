//! Value decoding, mirroring `rdbLoadObject` of Redis 7.0.

use std::io::Read;

use super::listpack::{self, LpEntry};
use super::util::parse_f64;
use super::{
    intset, lzf, module_type_name, rdb_type, ziplist, zipmap, RdbError, RdbValue, StreamConsumer, StreamEntry,
    StreamGroup, StreamId, StreamPendingEntry, StreamValue,
};

/// Largest allocation made up-front from an untrusted length.
const PREALLOC_LIMIT: usize = 1 << 20;

pub(crate) fn read_u8<R: Read>(r: &mut R) -> Result<u8, RdbError> {
    let mut b = [0u8; 1];
    r.read_exact(&mut b)?;
    Ok(b[0])
}

pub(crate) fn read_array<R: Read, const N: usize>(r: &mut R) -> Result<[u8; N], RdbError> {
    let mut b = [0u8; N];
    r.read_exact(&mut b)?;
    Ok(b)
}

/// Read exactly `n` bytes without trusting `n` for a huge allocation.
pub(crate) fn read_bytes<R: Read>(r: &mut R, n: u64) -> Result<Vec<u8>, RdbError> {
    if n as usize <= PREALLOC_LIMIT {
        let mut v = vec![0u8; n as usize];
        r.read_exact(&mut v)?;
        Ok(v)
    } else {
        let mut v = Vec::with_capacity(PREALLOC_LIMIT);
        let got = r.by_ref().take(n).read_to_end(&mut v)?;
        if (got as u64) != n {
            return Err(RdbError::UnexpectedEof);
        }
        Ok(v)
    }
}

fn cap(n: u64) -> usize {
    (n as usize).min(PREALLOC_LIMIT / 16)
}

/// `rdbLoadLenByRef`: returns (value, is_encoded).
pub fn read_len_enc<R: Read>(r: &mut R) -> Result<(u64, bool), RdbError> {
    let b = read_u8(r)?;
    match b >> 6 {
        0 => Ok(((b & 0x3f) as u64, false)),
        1 => {
            let b2 = read_u8(r)?;
            Ok(((((b & 0x3f) as u64) << 8) | b2 as u64, false))
        }
        2 => match b {
            0x80 => Ok((u32::from_be_bytes(read_array(r)?) as u64, false)),
            0x81 => Ok((u64::from_be_bytes(read_array(r)?), false)),
            _ => Err(RdbError::Corrupt(format!("unknown length encoding {b:#x}"))),
        },
        _ => Ok(((b & 0x3f) as u64, true)),
    }
}

/// `rdbLoadLen` (an encoded string marker is an error here).
pub fn read_len<R: Read>(r: &mut R) -> Result<u64, RdbError> {
    match read_len_enc(r)? {
        (v, false) => Ok(v),
        (_, true) => Err(RdbError::Corrupt("unexpected encoded length".into())),
    }
}

/// `rdbGenericLoadStringObject`.
pub fn read_string<R: Read>(r: &mut R) -> Result<Vec<u8>, RdbError> {
    let (len, enc) = read_len_enc(r)?;
    if !enc {
        return read_bytes(r, len);
    }
    match len {
        0 => Ok((read_u8(r)? as i8).to_string().into_bytes()),
        1 => Ok(i16::from_le_bytes(read_array(r)?).to_string().into_bytes()),
        2 => Ok(i32::from_le_bytes(read_array(r)?).to_string().into_bytes()),
        3 => {
            let clen = read_len(r)?;
            let ulen = read_len(r)?;
            let data = read_bytes(r, clen)?;
            if ulen == 0 {
                return Err(RdbError::Corrupt("LZF string with zero length".into()));
            }
            lzf::decompress(&data, ulen as usize)
                .ok_or_else(|| RdbError::Corrupt("invalid LZF compressed string".into()))
        }
        other => Err(RdbError::UnknownStringEncoding(other as u8)),
    }
}

/// `rdbLoadMillisecondTime` (little endian).
pub fn read_millis<R: Read>(r: &mut R) -> Result<i64, RdbError> {
    Ok(i64::from_le_bytes(read_array(r)?))
}

/// `rdbLoadDoubleValue` (string doubles of RDB_TYPE_ZSET).
fn read_string_double<R: Read>(r: &mut R) -> Result<f64, RdbError> {
    let len = read_u8(r)?;
    match len {
        255 => Ok(f64::NEG_INFINITY),
        254 => Ok(f64::INFINITY),
        253 => Ok(f64::NAN),
        n => {
            let b = read_bytes(r, n as u64)?;
            parse_f64(&b).ok_or_else(|| RdbError::Corrupt("invalid double".into()))
        }
    }
}

fn score_of(e: LpEntry) -> Result<f64, RdbError> {
    match e {
        LpEntry::Int(v) => Ok(v as f64),
        LpEntry::Str(s) => parse_f64(&s).ok_or_else(|| RdbError::Corrupt("invalid zset score".into())),
    }
}

fn check_score(s: f64) -> Result<f64, RdbError> {
    if s.is_nan() {
        Err(RdbError::Corrupt("zset with NAN score detected".into()))
    } else {
        Ok(s)
    }
}

fn pairs(entries: Vec<LpEntry>, what: &str) -> Result<Vec<(LpEntry, LpEntry)>, RdbError> {
    if !entries.len().is_multiple_of(2) {
        return Err(RdbError::Corrupt(format!("{what} with odd element count")));
    }
    let mut out = Vec::with_capacity(entries.len() / 2);
    let mut it = entries.into_iter();
    while let (Some(a), Some(b)) = (it.next(), it.next()) {
        out.push((a, b));
    }
    Ok(out)
}

fn zset_from_pairs(p: Vec<(LpEntry, LpEntry)>) -> Result<RdbValue, RdbError> {
    let mut z = Vec::with_capacity(p.len());
    for (m, s) in p {
        z.push((m.into_bytes(), check_score(score_of(s)?)?));
    }
    Ok(RdbValue::ZSet(sort_zset(z)))
}

fn sort_zset(mut z: Vec<(Vec<u8>, f64)>) -> Vec<(Vec<u8>, f64)> {
    z.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    z
}

fn hash_from_pairs(p: Vec<(LpEntry, LpEntry)>) -> RdbValue {
    RdbValue::Hash(p.into_iter().map(|(f, v)| (f.into_bytes(), v.into_bytes())).collect())
}

fn bytes_list(e: Vec<LpEntry>) -> Vec<Vec<u8>> {
    e.into_iter().map(LpEntry::into_bytes).collect()
}

/// Read the body of a value of RDB type `ty` (the type byte was already
/// consumed). Module values are refused with [`RdbError::ModuleValue`].
pub fn read_value<R: Read>(r: &mut R, ty: u8) -> Result<RdbValue, RdbError> {
    use rdb_type::*;
    Ok(match ty {
        STRING => RdbValue::String(read_string(r)?),
        LIST | SET => {
            let n = read_len(r)?;
            let mut v = Vec::with_capacity(cap(n));
            for _ in 0..n {
                v.push(read_string(r)?);
            }
            if ty == LIST {
                RdbValue::List(v)
            } else {
                RdbValue::Set(v)
            }
        }
        ZSET | ZSET_2 => {
            let n = read_len(r)?;
            let mut v = Vec::with_capacity(cap(n));
            for _ in 0..n {
                let m = read_string(r)?;
                let s = if ty == ZSET_2 { f64::from_le_bytes(read_array(r)?) } else { read_string_double(r)? };
                v.push((m, check_score(s)?));
            }
            RdbValue::ZSet(sort_zset(v))
        }
        HASH => {
            let n = read_len(r)?;
            let mut v = Vec::with_capacity(cap(n));
            for _ in 0..n {
                let f = read_string(r)?;
                let val = read_string(r)?;
                v.push((f, val));
            }
            RdbValue::Hash(v)
        }
        MODULE | MODULE_2 => {
            let module_id = read_len(r)?;
            return Err(RdbError::ModuleValue { module_id, module_name: module_type_name(module_id) });
        }
        HASH_ZIPMAP => RdbValue::Hash(zipmap::parse(&read_string(r)?)?),
        LIST_ZIPLIST => RdbValue::List(bytes_list(ziplist::parse(&read_string(r)?)?)),
        SET_INTSET => {
            RdbValue::Set(intset::parse(&read_string(r)?)?.into_iter().map(|v| v.to_string().into_bytes()).collect())
        }
        ZSET_ZIPLIST => zset_from_pairs(pairs(ziplist::parse(&read_string(r)?)?, "zset")?)?,
        ZSET_LISTPACK => zset_from_pairs(pairs(listpack::parse(&read_string(r)?)?, "zset")?)?,
        HASH_ZIPLIST => hash_from_pairs(pairs(ziplist::parse(&read_string(r)?)?, "hash")?),
        HASH_LISTPACK => hash_from_pairs(pairs(listpack::parse(&read_string(r)?)?, "hash")?),
        LIST_QUICKLIST | LIST_QUICKLIST_2 => {
            let nodes = read_len(r)?;
            let mut v = Vec::new();
            for _ in 0..nodes {
                let container = if ty == LIST_QUICKLIST_2 { read_len(r)? } else { 2 };
                let blob = read_string(r)?;
                match container {
                    1 => v.push(blob),
                    2 => {
                        let items =
                            if ty == LIST_QUICKLIST_2 { listpack::parse(&blob)? } else { ziplist::parse(&blob)? };
                        v.extend(bytes_list(items));
                    }
                    c => return Err(RdbError::Corrupt(format!("quicklist node with unknown container {c}"))),
                }
            }
            RdbValue::List(v)
        }
        STREAM_LISTPACKS | STREAM_LISTPACKS_2 => RdbValue::Stream(read_stream(r, ty)?),
        other => return Err(RdbError::UnknownType(other)),
    })
}

fn read_raw_id<R: Read>(r: &mut R) -> Result<StreamId, RdbError> {
    Ok(StreamId::from_be_bytes(&read_array(r)?))
}

fn lp_int(e: Option<&LpEntry>) -> Result<i64, RdbError> {
    e.and_then(LpEntry::as_i64).ok_or_else(|| RdbError::Corrupt("stream listpack: expected integer".into()))
}

fn lp_bytes(e: Option<&LpEntry>) -> Result<Vec<u8>, RdbError> {
    e.cloned().map(LpEntry::into_bytes).ok_or_else(|| RdbError::Corrupt("stream listpack: truncated entry".into()))
}

/// Decode one stream listpack node into its live entries.
fn parse_stream_node(master: StreamId, lp: &[u8], out: &mut Vec<StreamEntry>) -> Result<(), RdbError> {
    let e = listpack::parse(lp)?;
    if e.is_empty() {
        return Err(RdbError::Corrupt("empty listpack inside stream".into()));
    }
    let mut i = 0usize;
    let next = |i: &mut usize| {
        let r = e.get(*i);
        *i += 1;
        r
    };
    let _count = lp_int(next(&mut i))?;
    let _deleted = lp_int(next(&mut i))?;
    let nmaster = lp_int(next(&mut i))?;
    if nmaster < 0 {
        return Err(RdbError::Corrupt("stream: negative master field count".into()));
    }
    let mut master_fields = Vec::with_capacity(nmaster as usize);
    for _ in 0..nmaster {
        master_fields.push(lp_bytes(next(&mut i))?);
    }
    if lp_int(next(&mut i))? != 0 {
        return Err(RdbError::Corrupt("stream: bad master entry terminator".into()));
    }
    while i < e.len() {
        let flags = lp_int(next(&mut i))?;
        let ms = master.ms.wrapping_add(lp_int(next(&mut i))? as u64);
        let seq = master.seq.wrapping_add(lp_int(next(&mut i))? as u64);
        let mut fields = Vec::new();
        if flags & 2 != 0 {
            for f in &master_fields {
                fields.push((f.clone(), lp_bytes(next(&mut i))?));
            }
        } else {
            let nf = lp_int(next(&mut i))?;
            if nf < 0 {
                return Err(RdbError::Corrupt("stream: negative field count".into()));
            }
            for _ in 0..nf {
                let f = lp_bytes(next(&mut i))?;
                let v = lp_bytes(next(&mut i))?;
                fields.push((f, v));
            }
        }
        let _lp_count = lp_int(next(&mut i))?;
        if flags & 1 == 0 {
            out.push(StreamEntry { id: StreamId { ms, seq }, fields });
        }
    }
    Ok(())
}

/// `streamEstimateDistanceFromFirstEverEntry`, for groups loaded from
/// RDB_TYPE_STREAM_LISTPACKS (no stored entries_read).
fn estimate_entries_read(s: &StreamValue, id: StreamId) -> i64 {
    if s.entries_added == 0 {
        return 0;
    }
    let length = s.entries.len() as u64;
    if length == 0 && id <= s.last_id {
        return s.entries_added as i64;
    }
    if id == s.last_id {
        return s.entries_added as i64;
    } else if id > s.last_id {
        return -1;
    }
    let zero = StreamId::default();
    if s.max_deleted_entry_id == zero || s.max_deleted_entry_id < s.first_id {
        if id < s.first_id {
            return (s.entries_added - length) as i64;
        } else if id == s.first_id {
            return (s.entries_added - length + 1) as i64;
        }
    }
    -1
}

fn read_stream<R: Read>(r: &mut R, ty: u8) -> Result<StreamValue, RdbError> {
    let v2 = ty == rdb_type::STREAM_LISTPACKS_2;
    let nodes = read_len(r)?;
    let mut entries = Vec::new();
    let mut last_master: Option<StreamId> = None;
    for _ in 0..nodes {
        let key = read_string(r)?;
        let key: [u8; 16] = key
            .as_slice()
            .try_into()
            .map_err(|_| RdbError::Corrupt("stream node key is not the size of a stream ID".into()))?;
        let master = StreamId::from_be_bytes(&key);
        if let Some(prev) = last_master {
            if master <= prev {
                return Err(RdbError::Corrupt("stream node keys out of order".into()));
            }
        }
        last_master = Some(master);
        let lp = read_string(r)?;
        parse_stream_node(master, &lp, &mut entries)?;
    }
    let length = read_len(r)?;
    if length != entries.len() as u64 {
        return Err(RdbError::Corrupt(format!("stream length {length} does not match its {} entries", entries.len())));
    }
    let last_id = StreamId::new(read_len(r)?, read_len(r)?);
    let mut s = StreamValue { entries, last_id, ..Default::default() };
    if v2 {
        s.first_id = StreamId::new(read_len(r)?, read_len(r)?);
        s.max_deleted_entry_id = StreamId::new(read_len(r)?, read_len(r)?);
        s.entries_added = read_len(r)?;
    } else {
        s.entries_added = length;
        s.first_id = s.entries.first().map(|e| e.id).unwrap_or_default();
    }
    let ngroups = read_len(r)?;
    for _ in 0..ngroups {
        let name = read_string(r)?;
        let last_id = StreamId::new(read_len(r)?, read_len(r)?);
        let entries_read = if v2 { read_len(r)? as i64 } else { estimate_entries_read(&s, last_id) };
        let npel = read_len(r)?;
        let mut pending: Vec<StreamPendingEntry> = Vec::with_capacity(cap(npel));
        for _ in 0..npel {
            let id = read_raw_id(r)?;
            let delivery_time = read_millis(r)?;
            let delivery_count = read_len(r)?;
            pending.push(StreamPendingEntry { id, delivery_time, delivery_count, consumer: None });
        }
        let mut sorted = true;
        for w in pending.windows(2) {
            if w[0].id >= w[1].id {
                sorted = false;
            }
        }
        if !sorted {
            pending.sort_by_key(|p| p.id);
            if pending.windows(2).any(|w| w[0].id == w[1].id) {
                return Err(RdbError::Corrupt("duplicated ID in consumer group PEL".into()));
            }
        }
        let nconsumers = read_len(r)?;
        let mut consumers = Vec::with_capacity(cap(nconsumers));
        for _ in 0..nconsumers {
            let cname = read_string(r)?;
            let seen_time = read_millis(r)?;
            let n = read_len(r)?;
            let mut ids = Vec::with_capacity(cap(n));
            for _ in 0..n {
                let id = read_raw_id(r)?;
                let idx = pending
                    .binary_search_by_key(&id, |p| p.id)
                    .map_err(|_| RdbError::Corrupt("consumer PEL entry not found in group global PEL".into()))?;
                if pending[idx].consumer.is_some() {
                    return Err(RdbError::Corrupt("PEL entry owned by more than one consumer".into()));
                }
                pending[idx].consumer = Some(cname.clone());
                ids.push(id);
            }
            consumers.push(StreamConsumer { name: cname, seen_time, pending: ids });
        }
        s.groups.push(StreamGroup { name, last_id, entries_read, pending, consumers });
    }
    Ok(s)
}
