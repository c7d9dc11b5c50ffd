//! MIGRATE (outside cluster mode, as Redis allows): the same session sent to a ferrocache source
//! and to a redis-server source, both migrating into a redis-server target, gives the same
//! replies; keys move with their TTL and type; ferrocache to ferrocache works too.

mod common;

use common::{Raw, ServerProc};

fn session(src: &ServerProc, dst: &ServerProc) -> Vec<String> {
    let mut s = src.conn();
    let mut d = dst.conn();
    d.q("FLUSHALL");
    let p = dst.port.to_string();
    let mut out = Vec::new();
    let mut r = |c: &mut Raw, args: &[&str]| out.push(c.cmd(args).as_str());
    r(&mut s, &["SET", "a", "1"]);
    r(&mut s, &["RPUSH", "l", "x", "y", "z"]);
    r(&mut s, &["SET", "t", "v", "PX", "100000"]);
    r(&mut s, &["MIGRATE", "127.0.0.1", &p, "a", "0", "1000"]);
    r(&mut s, &["MIGRATE", "127.0.0.1", &p, "", "3", "1000", "KEYS", "l", "t", "nokey"]);
    r(&mut s, &["MIGRATE", "127.0.0.1", &p, "zz", "0", "1000"]);
    r(&mut s, &["SET", "b", "2"]);
    r(&mut d, &["SET", "b", "3"]);
    r(&mut s, &["MIGRATE", "127.0.0.1", &p, "b", "0", "1000"]);
    r(&mut s, &["MIGRATE", "127.0.0.1", &p, "b", "0", "1000", "COPY", "REPLACE"]);
    r(&mut s, &["EXISTS", "a", "l", "t", "b"]);
    r(&mut d, &["GET", "a"]);
    r(&mut d, &["SELECT", "3"]);
    r(&mut d, &["LRANGE", "l", "0", "-1"]);
    r(&mut d, &["TYPE", "t"]);
    r(&mut d, &["SELECT", "0"]);
    r(&mut d, &["GET", "b"]);
    r(&mut s, &["MIGRATE", "127.0.0.1", &p, "b", "0", "1000", "AUTH", "x"]);
    r(&mut s, &["MIGRATE", "127.0.0.1", &p, "b", "0", "1000", "KEYS", "a"]);
    r(&mut s, &["MIGRATE", "127.0.0.1", &p, "b", "x", "1000"]);
    r(&mut s, &["MIGRATE", "127.0.0.1", &p, "b", "0", "1000", "BOGUS"]);
    r(&mut s, &["MIGRATE", "127.0.0.1", &p, "b", "0", "1000", "AUTH2", "u"]);
    out.push(format!("ttl>90000:{}", d.cmd(&["PTTL", "t"]).as_int() > 0));
    out
}

#[test]
fn migrate_as_redis() {
    let f = common::ferrocache(&[]);
    let Some(target) = common::redis_server(&[]) else {
        eprintln!("SKIPPED: redis-server is not on PATH");
        return;
    };
    let ours = session(&f, &target);
    assert!(ours.contains(&"NOKEY".to_string()), "{:?}", ours);
    assert_eq!(ours[3], "OK");
    let r = common::redis_server(&[]).unwrap();
    let theirs = session(&r, &target);
    assert_eq!(ours, theirs);
    // An unreachable target.
    let mut c = f.conn();
    c.q("SET k v");
    assert_eq!(c.q("MIGRATE 127.0.0.1 1 k 0 200").as_str(), "IOERR error or timeout connecting to the client");
    assert_eq!(c.q("GET k").as_str(), "v");
}

#[test]
fn migrate_between_ferrocache_nodes_moves_the_keys() {
    let a = common::ferrocache(&[]);
    let b = common::ferrocache(&[]);
    let mut c = a.conn();
    for i in 0..200 {
        c.cmd(&["HSET".to_string(), format!("h{}", i), "f".into(), i.to_string()]);
    }
    let mut args = vec![
        "MIGRATE".to_string(),
        "127.0.0.1".into(),
        b.port.to_string(),
        "".into(),
        "0".into(),
        "5000".into(),
        "KEYS".into(),
    ];
    args.extend((0..200).map(|i| format!("h{}", i)));
    assert_eq!(c.cmd(&args).as_str(), "OK");
    assert_eq!(c.q("DBSIZE").as_int(), 0);
    let mut d = b.conn();
    assert_eq!(d.q("DBSIZE").as_int(), 200);
    assert_eq!(d.q("HGET h199 f").as_str(), "199");
}
