//! The keys of one hash slot: found by walking the one keyspace shard that holds the slot
//! (the keyspace shards by slot in cluster mode), counted, listed, and deleted when this node
//! loses a slot it still has keys in.

use super::slot::key_slot;
use crate::node::Node;
use ferrocache_engine::Effects;

/// The shards that can hold keys of `slot`: one in cluster mode (the keyspace shards by slot),
/// every shard otherwise.
fn shards_of_slot(srv: &Node, slot: usize) -> std::ops::Range<usize> {
    match srv.ks.shard_of_slot(slot as u16) {
        Some(i) => i..i + 1,
        None => 0..srv.ks.num_shards(),
    }
}

/// Keys of db 0 in `slot`, up to `max`.
pub fn keys_in_slot(srv: &Node, slot: usize, max: usize, now: u64) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for i in shards_of_slot(srv, slot) {
        let g = srv.ks.lock_one(i);
        for e in g.dbs[0].iter() {
            if out.len() >= max {
                return out;
            }
            if (e.expire_at == 0 || e.expire_at > now) && key_slot(&e.key) as usize == slot {
                out.push(e.key.to_vec());
            }
        }
    }
    out
}

pub fn count_in_slot(srv: &Node, slot: usize, now: u64) -> usize {
    let mut n = 0;
    for i in shards_of_slot(srv, slot) {
        let g = srv.ks.lock_one(i);
        n += g.dbs[0]
            .iter()
            .filter(|e| (e.expire_at == 0 || e.expire_at > now) && key_slot(&e.key) as usize == slot)
            .count();
    }
    n
}

/// Whether `key` exists in db 0 (getNodeByQuery's lookupKeyReadWithFlags with NOTOUCH: no
/// side effect). Called with no shard locked.
pub fn key_exists(srv: &Node, key: &[u8], now: u64) -> bool {
    let g = srv.ks.lock_one(srv.ks.shard_of(key));
    g.dbs[0].get(srv.ks.hash(key), key).is_some_and(|e| e.expire_at == 0 || e.expire_at > now)
}

/// Redis's delKeysInSlot: delete every key of db 0 in `slot` (this master lost the slot to a
/// newer claim and is not becoming a replica), each propagated as a DEL with its keyspace
/// event, as a command would. Returns how many were deleted.
pub fn del_keys_in_slot(srv: &Node, slot: usize) -> usize {
    let keys = keys_in_slot(srv, slot, usize::MAX, 0);
    let now = crate::node::now_ms();
    for key in &keys {
        let mut guards = srv.ks.lock_keys([&key[..]]);
        crate::persistence::before_write_any(srv, &mut guards);
        let mut fx = Effects::default();
        {
            let mut db = srv.db(&mut guards, &mut fx, 0, now);
            if db.remove(key).is_some() {
                db.modified(key, ferrocache_engine::notify::GENERIC, "del");
                db.fx.propagate(0, vec![b"DEL".to_vec(), key.clone()]);
            }
        }
        srv.apply_effects(&mut fx, 0, None);
    }
    keys.len()
}
