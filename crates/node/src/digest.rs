//! DEBUG DIGEST and DEBUG DIGEST-VALUE: Redis's dataset digest (debug.c's computeDatasetDigest),
//! the same bytes for the same data, so replicas and masters — ferrocache or redis-server — can
//! be compared (Redis's cluster tests do).

use crate::rdb_bridge::to_rdb;
use crate::Node;
use ferrocache_engine::Value;
use ferrocache_persistence::rdb::RdbValue;
use sha1_smol::Sha1;

pub type Digest = [u8; 20];

/// digest ^= SHA1(data).
fn xor(d: &mut Digest, data: &[u8]) {
    let h = Sha1::from(data).digest().bytes();
    for (a, b) in d.iter_mut().zip(h) {
        *a ^= b;
    }
}

/// digest = SHA1(digest ^ SHA1(data)): order-preserving.
fn mix(d: &mut Digest, data: &[u8]) {
    xor(d, data);
    *d = Sha1::from(&d[..]).digest().bytes();
}

/// xorObjectDigest: the value's type, its contents, and whether it expires.
pub fn mix_value(d: &mut Digest, v: &Value, expires: bool) {
    let rv = to_rdb(v);
    // OBJ_STRING 0, OBJ_LIST 1, OBJ_SET 2, OBJ_ZSET 3, OBJ_HASH 4, OBJ_STREAM 6.
    let ty: u32 = match &rv {
        RdbValue::String(_) => 0,
        RdbValue::List(_) => 1,
        RdbValue::Set(_) => 2,
        RdbValue::ZSet(_) => 3,
        RdbValue::Hash(_) => 4,
        RdbValue::Stream(_) | RdbValue::Module(_) => 6,
    };
    mix(d, &ty.to_be_bytes());
    match &rv {
        RdbValue::String(s) => mix(d, s),
        RdbValue::List(items) => items.iter().for_each(|x| mix(d, x)),
        RdbValue::Set(members) => members.iter().for_each(|x| xor(d, x)),
        RdbValue::ZSet(members) => {
            for (m, score) in members {
                let mut e = [0u8; 20];
                mix(&mut e, m);
                mix(&mut e, ferrocache_protocol::resp::format_double(*score).as_bytes());
                xor(d, &e);
            }
        }
        RdbValue::Hash(pairs) => {
            for (f, v) in pairs {
                let mut e = [0u8; 20];
                mix(&mut e, f);
                mix(&mut e, v);
                xor(d, &e);
            }
        }
        RdbValue::Stream(s) => {
            for e in &s.entries {
                mix(d, format!("{}.{}", e.id.ms, e.id.seq).as_bytes());
                for (f, v) in &e.fields {
                    mix(d, f);
                    mix(d, v);
                }
            }
        }
        RdbValue::Module(_) => {}
    }
    if expires {
        xor(d, b"!!expire!!");
    }
}

/// The digest of one key and value (DEBUG DIGEST-VALUE's per-key part: the value only).
pub fn value_digest(v: &Value, expires: bool) -> Digest {
    let mut d = [0u8; 20];
    mix_value(&mut d, v, expires);
    d
}

/// computeDatasetDigest over every database (all zeros for an empty dataset). Keys already
/// expired but not yet removed are left out, as Redis would have removed them on access.
pub fn dataset(srv: &Node, now: u64) -> Digest {
    let mut fin = [0u8; 20];
    let dbs = srv.config.get_i64("databases").max(1) as usize;
    let mut g = srv.ks.lock_all();
    for db in 0..dbs {
        let mut keyed: Vec<Digest> = Vec::new();
        g.for_each_shard(|s| {
            for e in s.dbs[db].iter() {
                if e.expire_at != 0 && e.expire_at <= now {
                    continue;
                }
                let mut d = [0u8; 20];
                mix(&mut d, &e.key);
                mix_value(&mut d, &e.value, e.expire_at != 0);
                keyed.push(d);
            }
        });
        if keyed.is_empty() {
            continue;
        }
        mix(&mut fin, &(db as u32).to_be_bytes());
        for d in keyed {
            xor(&mut fin, &d);
        }
    }
    fin
}

pub fn hex(d: &Digest) -> String {
    d.iter().map(|b| format!("{:02x}", b)).collect()
}
