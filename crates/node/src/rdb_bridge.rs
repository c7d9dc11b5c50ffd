//! Conversions between engine values and the RDB codec's neutral values (DUMP/RESTORE, and
//! later RDB files).

use ferrocache_engine::stream::{Consumer, ConsumerGroup, NodeLimits, StreamId, StreamValue};
use ferrocache_engine::value::{HashValue, ListValue, SetValue};
use ferrocache_engine::zset::{SortedSet, ZsetLimits};
use ferrocache_engine::{EncodingLimits, SmallBytes, Value};
use ferrocache_persistence::rdb::{self, RdbValue};

pub fn to_rdb(v: &Value) -> RdbValue {
    match v {
        Value::Str(s) => RdbValue::String(s.to_vec()),
        Value::Raw(r) => RdbValue::String(r.to_vec()),
        Value::Mc(m) => RdbValue::String(m.data().to_vec()),
        Value::List(l) => RdbValue::List(l.items.iter().map(|x| x.to_vec()).collect()),
        Value::Hash(h) => RdbValue::Hash(h.iter().map(|(f, x)| (f.to_vec(), x.to_vec())).collect()),
        Value::Set(s) => RdbValue::Set(s.members()),
        Value::ZSet(z) => RdbValue::ZSet(z.iter().map(|(m, s)| (m.to_vec(), s)).collect()),
        Value::Stream(s) => RdbValue::Stream(stream_to_rdb(s)),
    }
}

fn rid(id: StreamId) -> rdb::StreamId {
    rdb::StreamId::new(id.ms, id.seq)
}
fn eid(id: rdb::StreamId) -> StreamId {
    StreamId::new(id.ms, id.seq)
}

fn stream_to_rdb(s: &StreamValue) -> rdb::StreamValue {
    let entries = s
        .range(StreamId::MIN, StreamId::MAX, false)
        .map(|e| rdb::StreamEntry {
            id: rid(e.id),
            fields: e.fields.chunks(2).map(|p| (p[0].to_vec(), p[1].to_vec())).collect(),
        })
        .collect();
    let groups = s
        .groups
        .iter()
        .map(|(name, g)| rdb::StreamGroup {
            name: name.clone(),
            last_id: rid(g.last_id),
            entries_read: g.entries_read,
            pending: g
                .pel
                .iter()
                .map(|(id, n)| rdb::StreamPendingEntry {
                    id: rid(*id),
                    delivery_time: n.delivery_time,
                    delivery_count: n.delivery_count,
                    consumer: Some(n.consumer.clone()),
                })
                .collect(),
            consumers: g
                .consumers
                .iter()
                .map(|(cn, c)| rdb::StreamConsumer {
                    name: cn.clone(),
                    seen_time: c.seen_time,
                    pending: c.pel.iter().map(|id| rid(*id)).collect(),
                })
                .collect(),
        })
        .collect();
    rdb::StreamValue {
        entries,
        last_id: rid(s.last_id),
        first_id: rid(s.first_id),
        max_deleted_entry_id: rid(s.max_deleted_entry_id),
        entries_added: s.entries_added,
        groups,
    }
}

fn stream_from_rdb(r: rdb::StreamValue) -> StreamValue {
    let mut s = StreamValue::new();
    for e in &r.entries {
        let flat: Vec<&[u8]> = e.fields.iter().flat_map(|(f, v)| [f.as_slice(), v.as_slice()]).collect();
        s.push_loaded(eid(e.id), &flat, NodeLimits::default());
    }
    s.last_id = eid(r.last_id);
    s.first_id = eid(r.first_id);
    s.max_deleted_entry_id = eid(r.max_deleted_entry_id);
    s.entries_added = r.entries_added;
    for g in r.groups {
        let mut cg = ConsumerGroup::new(eid(g.last_id), g.entries_read);
        for c in &g.consumers {
            cg.consumers.insert(c.name.clone(), Consumer { seen_time: c.seen_time, pel: Default::default() });
        }
        for p in g.pending {
            let Some(owner) = p.consumer else { continue };
            if !cg.consumers.contains_key(&owner) {
                continue;
            }
            cg.assign(eid(p.id), &owner, p.delivery_time, p.delivery_count);
        }
        s.groups.insert(g.name, cg);
    }
    s
}

/// Build an engine value; None for types the engine does not hold yet.
pub fn from_rdb(v: RdbValue, lim: &EncodingLimits) -> Option<Value> {
    Some(match v {
        RdbValue::String(s) => Value::from_vec(s),
        RdbValue::List(items) => {
            let mut l = ListValue::default();
            for i in items {
                l.bytes += i.len();
                l.items.push_back(SmallBytes::from_vec(i));
            }
            Value::List(Box::new(l))
        }
        RdbValue::Hash(pairs) => {
            let mut h = HashValue::default();
            for (f, x) in pairs {
                h.set(&f, &x, lim);
            }
            Value::Hash(Box::new(h))
        }
        RdbValue::Set(members) => {
            let mut s = SetValue::default();
            for m in members {
                s.insert(&m, lim);
            }
            Value::Set(Box::new(s))
        }
        RdbValue::ZSet(items) => {
            let zl = ZsetLimits {
                max_listpack_entries: lim.zset_max_listpack_entries,
                max_listpack_value: lim.zset_max_listpack_value,
            };
            let maxlen = items.iter().map(|(m, _)| m.len()).max().unwrap_or(0);
            let mut z = SortedSet::with_hint(items.len(), maxlen, &zl);
            for (m, s) in items {
                z.insert(&m, s, &zl);
            }
            Value::ZSet(Box::new(z))
        }
        RdbValue::Stream(st) => Value::Stream(Box::new(stream_from_rdb(st))),
        RdbValue::Module(_) => return None,
    })
}

pub fn dump(v: &Value) -> Vec<u8> {
    // Serialise with the encoding the engine holds (a hash converted by CONFIG SET'd limits is
    // dumped as RDB_TYPE_HASH, as Redis does), not the one fresh data would get.
    let hint = match v.encoding() {
        "listpack" | "intset" => rdb::EncodingHint::Compact,
        "hashtable" | "skiplist" => rdb::EncodingHint::Plain,
        _ => rdb::EncodingHint::Auto,
    };
    rdb::dump_payload_with(&to_rdb(v), hint, &rdb::EncodeOptions::default())
}

pub fn restore(p: &[u8]) -> Result<Value, String> {
    let v = rdb::restore_payload(p).map_err(|e| e.redis_reply().to_string())?;
    from_rdb(v, &EncodingLimits::default()).ok_or_else(|| "ERR Bad data format".to_string())
}
