//! Keyspace unit tests.

use super::*;

#[test]
fn set_get_expire() {
    let ks = Keyspace::new(16, 16);
    let mut fx = Effects::default();
    let mut g = ks.lock_keys([&b"a"[..], b"b"]);
    let mut db = Db::new(&mut g, &mut fx, 0, 1000);
    db.set(b"a", Value::str(b"1"), false);
    assert_eq!(db.get(b"a").unwrap().value.as_bytes(), Some(&b"1"[..]));
    db.set_expire(b"a", 1500);
    db.now_ms = 1600;
    assert!(db.get(b"a").is_none());
    assert!(db.get(b"b").is_none());
    assert_eq!(fx.propagate.len(), 1);
    drop(g);
    assert_eq!(ks.stats().expired, 1);
    assert_eq!(ks.db_size(0), 0);
}

#[test]
fn eviction_removes_keys() {
    let ks = Keyspace::new(4, 1);
    let mut fx = Effects::default();
    {
        let mut g = ks.lock_all();
        let mut db = Db::new(&mut g, &mut fx, 0, 1000);
        for i in 0..100 {
            db.set(format!("k{i}").as_bytes(), Value::str(b"v"), false);
        }
    }
    for _ in 0..50 {
        assert!(ks.evict_one(EvictionPolicy::AllKeysLru, &AccessPolicy::default(), 5, 2000, &mut fx));
    }
    assert_eq!(ks.db_size(0), 50);
    assert!(!ks.evict_one(EvictionPolicy::VolatileLru, &AccessPolicy::default(), 5, 2000, &mut fx));
}

#[test]
fn sizes() {
    eprintln!("Value={} Entry={}", std::mem::size_of::<crate::Value>(), std::mem::size_of::<super::Entry>());
}

#[test]
fn sibling_keyspace_swaps_in_whole() {
    let ks = Keyspace::new(8, 2).with_slot_sharding();
    let mut fx = Effects::default();
    {
        let mut g = ks.lock_all();
        let mut db = Db::new(&mut g, &mut fx, 0, 1000);
        db.set(b"old", Value::str(b"1"), false);
    }
    let side = ks.sibling();
    {
        let mut g = side.lock_all();
        let mut db = Db::new(&mut g, &mut fx, 1, 1000);
        for i in 0..100 {
            db.set(format!("new{i}").as_bytes(), Value::str(b"2"), false);
        }
    }
    {
        let (mut a, mut b) = (ks.lock_all(), side.lock_all());
        a.swap_dbs_with(&mut b);
    }
    assert_eq!((ks.db_size(0), ks.db_size(1), side.db_size(0)), (0, 100, 1));
    // Each key is found where the main keyspace's own hash and shard look for it.
    for i in 0..100 {
        let k = format!("new{i}");
        let mut g = ks.lock_keys([k.as_bytes()]);
        let mut db = Db::new(&mut g, &mut fx, 1, 1000);
        assert!(db.exists(k.as_bytes()), "{k}");
    }
}
