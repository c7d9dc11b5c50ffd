//! Value encoding, mirroring `rdbSaveObject` of Redis 7.0.

use super::listpack::{self, ListpackBuilder};
use super::util::{d2string, double_to_i64, format_g17, string_to_i64};
use super::{
    intset, rdb_type, ziplist, zipmap, EncodeOptions, EncodingHint, RdbError, RdbValue, StreamId, StreamValue,
};

/// `rdbSaveLen`.
pub fn write_len(out: &mut Vec<u8>, len: u64) {
    if len < (1 << 6) {
        out.push(len as u8);
    } else if len < (1 << 14) {
        out.push(((len >> 8) as u8) | 0x40);
        out.push(len as u8);
    } else if len <= u32::MAX as u64 {
        out.push(0x80);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

/// `rdbEncodeInteger`: the special integer string encodings.
fn encode_integer(out: &mut Vec<u8>, v: i64) -> bool {
    if (i8::MIN as i64..=i8::MAX as i64).contains(&v) {
        out.push(0xc0);
        out.push(v as i8 as u8);
    } else if (i16::MIN as i64..=i16::MAX as i64).contains(&v) {
        out.push(0xc1);
        out.extend_from_slice(&(v as i16).to_le_bytes());
    } else if (i32::MIN as i64..=i32::MAX as i64).contains(&v) {
        out.push(0xc2);
        out.extend_from_slice(&(v as i32).to_le_bytes());
    } else {
        return false;
    }
    true
}

/// `rdbSaveRawString`: integer encoding for short numeric strings, LZF for
/// strings longer than 20 bytes when `compress` and it saves >= 4 bytes,
/// verbatim otherwise.
pub fn write_string(out: &mut Vec<u8>, s: &[u8], compress: bool) {
    if s.len() <= 11 {
        if let Some(v) = string_to_i64(s) {
            if encode_integer(out, v) {
                return;
            }
        }
    }
    if compress && s.len() > 20 {
        if let Some(c) = super::lzf::compress(s, s.len() - 4) {
            out.push(0xc3);
            write_len(out, c.len() as u64);
            write_len(out, s.len() as u64);
            out.extend_from_slice(&c);
            return;
        }
    }
    write_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// `rdbSaveMillisecondTime`.
pub fn write_millis(out: &mut Vec<u8>, t: i64) {
    out.extend_from_slice(&t.to_le_bytes());
}

/// `rdbSaveDoubleValue` (string form, RDB_TYPE_ZSET).
fn write_string_double(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.push(253);
    } else if v.is_infinite() {
        out.push(if v > 0.0 { 254 } else { 255 });
    } else {
        let max = 4503599627370496.0f64;
        let s = if v > -max && v < max && v == (v as i64) as f64 { (v as i64).to_string() } else { format_g17(v) };
        out.push(s.len() as u8);
        out.extend_from_slice(s.as_bytes());
    }
}

fn sorted_zset(z: &[(Vec<u8>, f64)]) -> Vec<(&[u8], f64)> {
    let mut v: Vec<(&[u8], f64)> = z.iter().map(|(m, s)| (m.as_slice(), *s)).collect();
    v.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(b.0)));
    v
}

fn all_ints(members: &[Vec<u8>]) -> Option<Vec<i64>> {
    let mut v = Vec::with_capacity(members.len());
    for m in members {
        v.push(string_to_i64(m)?);
    }
    v.sort_unstable();
    v.dedup();
    Some(v)
}

/// The RDB type Redis 7.0 would write for `v`.
pub fn choose_type(v: &RdbValue, hint: EncodingHint, opts: &EncodeOptions) -> u8 {
    match v {
        RdbValue::String(_) => rdb_type::STRING,
        RdbValue::List(_) => rdb_type::LIST_QUICKLIST_2,
        RdbValue::Stream(_) => rdb_type::STREAM_LISTPACKS_2,
        RdbValue::Module(_) => rdb_type::MODULE_2,
        RdbValue::Set(m) => {
            let ints = m.iter().all(|x| string_to_i64(x).is_some());
            let compact = match hint {
                EncodingHint::Auto => ints && m.len() <= opts.set_max_intset_entries,
                EncodingHint::Compact => ints,
                EncodingHint::Plain => false,
            };
            if compact {
                rdb_type::SET_INTSET
            } else {
                rdb_type::SET
            }
        }
        RdbValue::ZSet(z) => {
            let compact = match hint {
                EncodingHint::Auto => {
                    z.len() <= opts.zset_max_listpack_entries
                        && z.iter().all(|(m, _)| m.len() <= opts.zset_max_listpack_value)
                }
                EncodingHint::Compact => true,
                EncodingHint::Plain => false,
            };
            if compact {
                rdb_type::ZSET_LISTPACK
            } else {
                rdb_type::ZSET_2
            }
        }
        RdbValue::Hash(h) => {
            let compact = match hint {
                EncodingHint::Auto => {
                    h.len() <= opts.hash_max_listpack_entries
                        && h.iter().all(|(f, v)| {
                            f.len() <= opts.hash_max_listpack_value && v.len() <= opts.hash_max_listpack_value
                        })
                }
                EncodingHint::Compact => true,
                EncodingHint::Plain => false,
            };
            if compact {
                rdb_type::HASH_LISTPACK
            } else {
                rdb_type::HASH
            }
        }
    }
}

/// Choose the type (see [`choose_type`]) and write the value body. Returns
/// the type byte, which goes before the key in an RDB file.
pub fn encode_value(out: &mut Vec<u8>, v: &RdbValue, hint: EncodingHint, opts: &EncodeOptions) -> u8 {
    let ty = choose_type(v, hint, opts);
    write_value(out, v, ty, opts).expect("chosen type always fits the value");
    ty
}

fn mismatch(ty: u8, v: &RdbValue) -> RdbError {
    RdbError::Corrupt(format!("cannot write a {} value as RDB type {ty}", v.type_name()))
}

/// Write the body of `v` as RDB type `ty` (without the type byte). Besides
/// the types Redis 7.0 writes, the legacy encodings (LIST, ZSET,
/// HASH_ZIPMAP, LIST_ZIPLIST, ZSET_ZIPLIST, HASH_ZIPLIST, LIST_QUICKLIST,
/// STREAM_LISTPACKS) can be produced, e.g. for compatibility tests.
pub fn write_value(out: &mut Vec<u8>, v: &RdbValue, ty: u8, opts: &EncodeOptions) -> Result<(), RdbError> {
    let c = opts.compression;
    match (v, ty) {
        (RdbValue::String(s), rdb_type::STRING) => write_string(out, s, c),
        (RdbValue::List(l), rdb_type::LIST_QUICKLIST_2) => write_quicklist2(out, l, opts),
        (RdbValue::List(l), rdb_type::LIST) | (RdbValue::Set(l), rdb_type::SET) => {
            write_len(out, l.len() as u64);
            for e in l {
                write_string(out, e, c);
            }
        }
        (RdbValue::List(l), rdb_type::LIST_ZIPLIST) => {
            write_string(out, &ziplist::build(l.iter().map(|e| e.as_slice())), c)
        }
        (RdbValue::List(l), rdb_type::LIST_QUICKLIST) => {
            let chunks: Vec<&[Vec<u8>]> = l.chunks(128).collect();
            write_len(out, chunks.len() as u64);
            for ch in chunks {
                write_string(out, &ziplist::build(ch.iter().map(|e| e.as_slice())), c);
            }
        }
        (RdbValue::Set(m), rdb_type::SET_INTSET) => {
            let ints = all_ints(m).ok_or_else(|| RdbError::Corrupt("intset encoding needs integer members".into()))?;
            write_string(out, &intset::build(&ints), c);
        }
        (RdbValue::ZSet(z), rdb_type::ZSET_LISTPACK) | (RdbValue::ZSet(z), rdb_type::ZSET_ZIPLIST) => {
            let sorted = sorted_zset(z);
            if ty == rdb_type::ZSET_LISTPACK {
                let mut b = ListpackBuilder::new();
                for (m, s) in sorted {
                    b.push(m);
                    match double_to_i64(s) {
                        Some(i) => b.push_int(i),
                        None => b.push(d2string(s).as_bytes()),
                    }
                }
                write_string(out, &b.finish(), c);
            } else {
                let items: Vec<Vec<u8>> =
                    sorted.iter().flat_map(|(m, s)| [m.to_vec(), d2string(*s).into_bytes()]).collect();
                write_string(out, &ziplist::build(items.iter().map(|e| e.as_slice())), c);
            }
        }
        (RdbValue::ZSet(z), rdb_type::ZSET_2) | (RdbValue::ZSet(z), rdb_type::ZSET) => {
            let sorted = sorted_zset(z);
            write_len(out, sorted.len() as u64);
            // From the greatest to the smallest, like Redis.
            for (m, s) in sorted.iter().rev() {
                write_string(out, m, c);
                if ty == rdb_type::ZSET_2 {
                    out.extend_from_slice(&s.to_le_bytes());
                } else {
                    write_string_double(out, *s);
                }
            }
        }
        (RdbValue::Hash(h), rdb_type::HASH_LISTPACK) | (RdbValue::Hash(h), rdb_type::HASH_ZIPLIST) => {
            let items = h.iter().flat_map(|(f, v)| [f.as_slice(), v.as_slice()]);
            let blob = if ty == rdb_type::HASH_LISTPACK { listpack::build(items) } else { ziplist::build(items) };
            write_string(out, &blob, c);
        }
        (RdbValue::Hash(h), rdb_type::HASH_ZIPMAP) => write_string(out, &zipmap::build(h), c),
        (RdbValue::Hash(h), rdb_type::HASH) => {
            write_len(out, h.len() as u64);
            for (f, v) in h {
                write_string(out, f, c);
                write_string(out, v, c);
            }
        }
        (RdbValue::Stream(s), rdb_type::STREAM_LISTPACKS_2) | (RdbValue::Stream(s), rdb_type::STREAM_LISTPACKS) => {
            write_stream(out, s, ty, opts)
        }
        (RdbValue::Module(m), rdb_type::MODULE_2) => {
            write_len(out, m.module_id);
            out.extend_from_slice(&m.raw);
        }
        _ => return Err(mismatch(ty, v)),
    }
    Ok(())
}

const LARGE_ELEMENT: usize = 1 << 30;
const OPTIMIZATION_LEVEL: [usize; 5] = [4096, 8192, 16384, 32768, 65536];
const SIZE_SAFETY_LIMIT: usize = 8192;
const SIZE_ESTIMATE_OVERHEAD: usize = 8;

/// `_quicklistNodeAllowInsert`.
fn quicklist_allow_insert(node_sz: usize, count: usize, fill: i32, sz: usize) -> bool {
    let new_sz = node_sz + sz + SIZE_ESTIMATE_OVERHEAD;
    if fill < 0 {
        let offset = (-(fill as i64) - 1) as usize;
        if offset < OPTIMIZATION_LEVEL.len() && new_sz <= OPTIMIZATION_LEVEL[offset] {
            return true;
        }
    }
    if new_sz > SIZE_SAFETY_LIMIT {
        return false;
    }
    (count as i64) < fill as i64
}

enum QlNode {
    Plain(Vec<u8>),
    Packed(ListpackBuilder),
}

/// Quicklist as built by RPUSHing every element (`quicklistPushTail`).
fn write_quicklist2(out: &mut Vec<u8>, l: &[Vec<u8>], opts: &EncodeOptions) {
    let fill = opts.list_max_listpack_size;
    let mut nodes: Vec<QlNode> = Vec::new();
    for e in l {
        let sz = e.len();
        if sz >= LARGE_ELEMENT {
            nodes.push(QlNode::Plain(e.clone()));
            continue;
        }
        if let Some(QlNode::Packed(b)) = nodes.last_mut() {
            if quicklist_allow_insert(b.bytes(), b.len(), fill, sz) {
                b.push(e);
                continue;
            }
        }
        let mut b = ListpackBuilder::new();
        b.push(e);
        nodes.push(QlNode::Packed(b));
    }
    write_len(out, nodes.len() as u64);
    for n in nodes {
        match n {
            QlNode::Plain(data) => {
                write_len(out, 1);
                write_string(out, &data, opts.compression);
            }
            QlNode::Packed(b) => {
                write_len(out, 2);
                write_string(out, &b.finish(), opts.compression);
            }
        }
    }
}

const STREAM_ITEM_FLAG_SAMEFIELDS: i64 = 1 << 1;
const STREAM_LISTPACK_MAX_SIZE: usize = 1 << 30;

struct StreamNode {
    master_id: StreamId,
    master_fields: Vec<Vec<u8>>,
    count: i64,
    /// Everything after the leading `count` element.
    rest: ListpackBuilder,
}

impl StreamNode {
    fn bytes(&self) -> usize {
        self.rest.bytes() + listpack::int_entry_size(self.count)
    }

    fn finish(self) -> Vec<u8> {
        let mut b = ListpackBuilder::new();
        b.push_int(self.count);
        b.append(self.rest);
        b.finish()
    }
}

/// Build the stream's listpacks the way successive `XADD`s
/// (`streamAppendItem`) do.
fn stream_nodes(s: &StreamValue, opts: &EncodeOptions) -> Vec<StreamNode> {
    let mut nodes: Vec<StreamNode> = Vec::new();
    let mut node_max_bytes = opts.stream_node_max_bytes;
    if node_max_bytes == 0 || node_max_bytes > STREAM_LISTPACK_MAX_SIZE {
        node_max_bytes = STREAM_LISTPACK_MAX_SIZE;
    }
    for e in &s.entries {
        let totelelen: usize = e.fields.iter().map(|(f, v)| f.len() + v.len()).sum();
        let new_node = match nodes.last() {
            None => true,
            Some(n) => {
                n.bytes() + totelelen >= node_max_bytes
                    || (opts.stream_node_max_entries != 0 && n.count as usize >= opts.stream_node_max_entries)
            }
        };
        let mut flags = 0i64;
        if new_node {
            let mut rest = ListpackBuilder::new();
            rest.push_int(0); // deleted
            rest.push_int(e.fields.len() as i64);
            for (f, _) in &e.fields {
                rest.push(f);
            }
            rest.push_int(0); // master entry terminator
            nodes.push(StreamNode {
                master_id: e.id,
                master_fields: e.fields.iter().map(|(f, _)| f.clone()).collect(),
                count: 1,
                rest,
            });
            flags |= STREAM_ITEM_FLAG_SAMEFIELDS;
        } else {
            let n = nodes.last_mut().expect("node");
            n.count += 1;
            if n.master_fields.len() == e.fields.len()
                && n.master_fields.iter().zip(&e.fields).all(|(m, (f, _))| m == f)
            {
                flags |= STREAM_ITEM_FLAG_SAMEFIELDS;
            }
        }
        let n = nodes.last_mut().expect("node");
        let same = flags & STREAM_ITEM_FLAG_SAMEFIELDS != 0;
        let b = &mut n.rest;
        b.push_int(flags);
        b.push_int(e.id.ms.wrapping_sub(n.master_id.ms) as i64);
        b.push_int(e.id.seq.wrapping_sub(n.master_id.seq) as i64);
        if !same {
            b.push_int(e.fields.len() as i64);
        }
        for (f, v) in &e.fields {
            if !same {
                b.push(f);
            }
            b.push(v);
        }
        let nf = e.fields.len() as i64;
        let mut lp_count = nf + 3;
        if !same {
            lp_count += nf + 1;
        }
        b.push_int(lp_count);
    }
    nodes
}

fn write_stream(out: &mut Vec<u8>, s: &StreamValue, ty: u8, opts: &EncodeOptions) {
    let c = opts.compression;
    let v2 = ty == rdb_type::STREAM_LISTPACKS_2;
    let nodes = stream_nodes(s, opts);
    write_len(out, nodes.len() as u64);
    for n in nodes {
        write_string(out, &n.master_id.to_be_bytes(), c);
        write_string(out, &n.finish(), c);
    }
    write_len(out, s.entries.len() as u64);
    write_len(out, s.last_id.ms);
    write_len(out, s.last_id.seq);
    if v2 {
        write_len(out, s.first_id.ms);
        write_len(out, s.first_id.seq);
        write_len(out, s.max_deleted_entry_id.ms);
        write_len(out, s.max_deleted_entry_id.seq);
        write_len(out, s.entries_added);
    }
    let mut groups: Vec<_> = s.groups.iter().collect();
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    write_len(out, groups.len() as u64);
    for g in groups {
        write_string(out, &g.name, c);
        write_len(out, g.last_id.ms);
        write_len(out, g.last_id.seq);
        if v2 {
            write_len(out, g.entries_read as u64);
        }
        let mut pel: Vec<_> = g.pending.iter().collect();
        pel.sort_by_key(|p| p.id);
        write_len(out, pel.len() as u64);
        for p in pel {
            out.extend_from_slice(&p.id.to_be_bytes());
            write_millis(out, p.delivery_time);
            write_len(out, p.delivery_count);
        }
        let mut consumers: Vec<_> = g.consumers.iter().collect();
        consumers.sort_by(|a, b| a.name.cmp(&b.name));
        write_len(out, consumers.len() as u64);
        for cons in consumers {
            write_string(out, &cons.name, c);
            write_millis(out, cons.seen_time);
            let mut ids = cons.pending.clone();
            ids.sort();
            write_len(out, ids.len() as u64);
            for id in ids {
                out.extend_from_slice(&id.to_be_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn len_encoding() {
        let mut v = Vec::new();
        write_len(&mut v, 10);
        write_len(&mut v, 300);
        write_len(&mut v, 70000);
        write_len(&mut v, 1 << 40);
        assert_eq!(v, vec![10, 0x41, 0x2c, 0x80, 0, 1, 0x11, 0x70, 0x81, 0, 0, 1, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn string_encodings() {
        let mut v = Vec::new();
        write_string(&mut v, b"12", true);
        assert_eq!(v, vec![0xc0, 12]);
        v.clear();
        write_string(&mut v, b"-300", true);
        assert_eq!(v, vec![0xc1, 0xd4, 0xfe]);
        v.clear();
        write_string(&mut v, b"100000", true);
        assert_eq!(v, vec![0xc2, 0xa0, 0x86, 1, 0]);
        v.clear();
        write_string(&mut v, b"012", true);
        assert_eq!(v, vec![3, b'0', b'1', b'2']);
        v.clear();
        write_string(&mut v, &[b'a'; 100], true);
        assert_eq!(v[0], 0xc3);
        v.clear();
        write_string(&mut v, &[b'a'; 100], false);
        assert_eq!(v[0], 0x40);
    }

    #[test]
    fn quicklist_node_split() {
        // 8kb nodes: elements of 1000 bytes -> 8 per node (8*1002+7+8 > 8192 at the 9th).
        let l: Vec<Vec<u8>> = (0..20).map(|_| vec![b'x'; 1000]).collect();
        let mut out = Vec::new();
        let opts = EncodeOptions { compression: false, ..Default::default() };
        write_quicklist2(&mut out, &l, &opts);
        assert_eq!(out[0], 3);
    }
}
