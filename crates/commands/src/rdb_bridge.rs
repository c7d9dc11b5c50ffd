//! Conversions between engine values and the RDB codec's neutral values (DUMP/RESTORE, and
//! later RDB files).

use ferrocache_engine::value::{HashValue, ListValue, SetValue};
use ferrocache_engine::zset::{SortedSet, ZsetLimits};
use ferrocache_engine::{EncodingLimits, SmallBytes, Value};
use ferrocache_persistence::rdb::{self, RdbValue};

pub fn to_rdb(v: &Value) -> RdbValue {
    match v {
        Value::Str(s) => RdbValue::String(s.to_vec()),
        Value::Raw(r) => RdbValue::String(r.clone()),
        Value::List(l) => RdbValue::List(l.items.iter().map(|x| x.to_vec()).collect()),
        Value::Hash(h) => RdbValue::Hash(h.iter().map(|(f, x)| (f.to_vec(), x.to_vec())).collect()),
        Value::Set(s) => RdbValue::Set(s.members()),
        Value::ZSet(z) => RdbValue::ZSet(z.iter().map(|(m, s)| (m.to_vec(), s)).collect()),
    }
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
            let zl = ZsetLimits { max_listpack_entries: lim.zset_max_listpack_entries, max_listpack_value: lim.zset_max_listpack_value };
            let maxlen = items.iter().map(|(m, _)| m.len()).max().unwrap_or(0);
            let mut z = SortedSet::with_hint(items.len(), maxlen, &zl);
            for (m, s) in items {
                z.insert(&m, s, &zl);
            }
            Value::ZSet(Box::new(z))
        }
        RdbValue::Stream(_) | RdbValue::Module(_) => return None,
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
