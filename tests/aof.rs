//! End-to-end tests of the append-only file against target/debug/ferrocache (each test runs
//! its own node with `--dir` in a fresh temporary directory): restart with appendonly yes for
//! every type and expiries, `redis-check-aof` on our appendonlydir, a real redis-server 7.0
//! loading our appendonlydir and ours loading one written by redis-server (those parts are
//! skipped with a message when the tools are not on PATH), BGREWRITEAOF under concurrent
//! writes, truncated files per aof-load-truncated, kill -9 with appendfsync always, CONFIG SET
//! appendonly at runtime, INFO persistence.

mod common;

use common::node::{have, info_field, q, q_err, spawn, start, tempdir, Node};
use common::{free_port, Raw, Reply};
use ferrocache_persistence::rdb::{self, RdbValue};
use std::collections::BTreeMap;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// redis-server on DIR with `--save "" EXTRA...`, None when it is not installed.
fn start_redis(dir: &Path, extra: &[&str]) -> Option<Node> {
    let mut args = vec!["--save", ""];
    args.extend_from_slice(extra);
    common::node::start_redis(dir, &args)
}

type Snap = BTreeMap<(u32, Vec<u8>), (RdbValue, bool)>;

/// Every key of every database: decoded DUMP payload (normalized) and whether it has a TTL.
fn snapshot(c: &mut redis::Connection, dbs: u32) -> Snap {
    let mut out = BTreeMap::new();
    for db in 0..dbs {
        let _: () = redis::cmd("SELECT").arg(db).query(c).unwrap();
        let keys: Vec<Vec<u8>> = redis::cmd("KEYS").arg("*").query(c).unwrap();
        for k in keys {
            let payload: Vec<u8> = redis::cmd("DUMP").arg(&k).query(c).unwrap();
            let v = rdb::restore_payload(&payload)
                .unwrap_or_else(|e| panic!("decode DUMP of {:?}: {e}", String::from_utf8_lossy(&k)));
            let pttl: i64 = redis::cmd("PTTL").arg(&k).query(c).unwrap();
            out.insert((db, k), (aof_normalized(v.normalized()), pttl > 0));
        }
    }
    let _: () = redis::cmd("SELECT").arg(0).query(c).unwrap();
    out
}

/// What an AOF replay cannot restore, in Redis 7.0 as here: a consumer's seen-time (XCLAIM
/// replays set it to the load time) and a group's entries-read counter (XREADGROUP propagates
/// XCLAIM ... LASTID, without ENTRIESREAD).
fn aof_normalized(v: RdbValue) -> RdbValue {
    match v {
        RdbValue::Stream(mut s) => {
            for g in s.groups.iter_mut() {
                g.entries_read = -1;
                for c in g.consumers.iter_mut() {
                    c.seen_time = 0;
                }
            }
            RdbValue::Stream(s)
        }
        other => other,
    }
}

fn assert_same(a: &Snap, b: &Snap, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: key counts differ");
    for (k, v) in a {
        let w =
            b.get(k).unwrap_or_else(|| panic!("{what}: key {:?} in db {} missing", String::from_utf8_lossy(&k.1), k.0));
        assert!(v == w, "{what}: key {:?} in db {} differs:\n{:?}\nvs\n{:?}", String::from_utf8_lossy(&k.1), k.0, v, w);
    }
}

const AOF: &[&str] = &["--appendonly", "yes", "--save", ""];

fn args<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    base.iter().chain(extra.iter()).copied().collect()
}

/// A dataset of every type written with native commands, with TTLs, in several databases,
/// including a transaction and commands propagated in rewritten form (relative expiries,
/// SPOP, INCRBYFLOAT, ...).
fn populate(c: &mut redis::Connection, tag: &str) {
    for db in [0, 2, 9] {
        let _: () = redis::cmd("SELECT").arg(db).query(c).unwrap();
        let p = format!("{tag}{db}:");
        for i in 0..40 {
            let _: () = q(c, &["SET", &format!("{p}str:{i}"), &format!("value-{i}")]);
        }
        let _: i64 = q(c, &["INCRBY", &format!("{p}counter"), "41"]);
        let _: i64 = q(c, &["INCR", &format!("{p}counter")]);
        let _: String = q(c, &["INCRBYFLOAT", &format!("{p}float"), "1.5"]);
        let _: i64 = q(c, &["APPEND", &format!("{p}appended"), "abc"]);
        let _: i64 = q(c, &["APPEND", &format!("{p}appended"), "def"]);
        let _: () = q(c, &["SET", &format!("{p}ttl"), "x", "EX", "1000"]);
        let _: () = q(c, &["SET", &format!("{p}bin"), "\u{0}\u{1}\r\n\u{ff}"]);
        let _: () = q(c, &["SETEX", &format!("{p}setex"), "500", "v"]);
        let _: i64 = q(c, &["HSET", &format!("{p}hash"), "a", "1", "b", "2", "c", "three"]);
        let _: i64 = q(c, &["HINCRBY", &format!("{p}hash"), "a", "10"]);
        let mut big: Vec<String> = vec!["HSET".into(), format!("{p}hash:big")];
        for i in 0..300 {
            big.push(format!("field{i}"));
            big.push(format!("val{i}"));
        }
        let a: Vec<&str> = big.iter().map(|s| s.as_str()).collect();
        let _: i64 = q(c, &a);
        let _: i64 = q(c, &["PEXPIRE", &format!("{p}hash"), "5000000"]);
        let _: i64 = q(c, &["RPUSH", &format!("{p}list"), "a", "b", "c", "d", "e"]);
        let _: i64 = q(c, &["LPUSH", &format!("{p}list"), "z"]);
        let _: String = q(c, &["LPOP", &format!("{p}list")]);
        let _: () = q(c, &["LTRIM", &format!("{p}list"), "0", "3"]);
        for i in 0..200 {
            let _: i64 = q(c, &["RPUSH", &format!("{p}list:big"), &format!("element-{i}")]);
        }
        let _: i64 = q(c, &["SADD", &format!("{p}set:ints"), "1", "2", "3", "4", "5"]);
        let _: i64 = q(c, &["SADD", &format!("{p}set:strs"), "x", "y", "z", "w"]);
        let _: redis::Value = q(c, &["SPOP", &format!("{p}set:strs")]);
        let _: i64 = q(c, &["ZADD", &format!("{p}zset"), "1", "a", "2.5", "b", "-inf", "c", "3.141592653589793", "pi"]);
        let _: String = q(c, &["ZINCRBY", &format!("{p}zset"), "0.1", "a"]);
        let _: i64 = q(c, &["EXPIRE", &format!("{p}zset"), "100000"]);
        let sk = format!("{p}stream");
        for i in 0..20 {
            let _: String = q(c, &["XADD", &sk, &format!("{}-1", 100 + i), "field", &format!("v{i}"), "other", "x"]);
        }
        let _: String = q(c, &["XADD", &sk, "*", "auto", "id"]);
        let _: () = q(c, &["XGROUP", "CREATE", &sk, "grp", "0"]);
        let _: redis::Value = q(c, &["XREADGROUP", "GROUP", "grp", "alice", "COUNT", "5", "STREAMS", &sk, ">"]);
        let _: redis::Value = q(c, &["XREADGROUP", "GROUP", "grp", "bob", "COUNT", "3", "STREAMS", &sk, ">"]);
        let _: i64 = q(c, &["XACK", &sk, "grp", "101-1"]);
        let _: i64 = q(c, &["XDEL", &sk, "110-1"]);
        let _: i64 = q(c, &["PFADD", &format!("{p}hll"), "a", "b", "c"]);
        let _: i64 = q(c, &["SETBIT", &format!("{p}bits"), "100", "1"]);
        let _: () = q(c, &["SET", &format!("{p}gone"), "x"]);
        let _: i64 = q(c, &["DEL", &format!("{p}gone")]);
        let _: () = q(c, &["SET", &format!("{p}renamed-from"), "x"]);
        let _: () = q(c, &["RENAME", &format!("{p}renamed-from"), &format!("{p}renamed-to")]);
        let _: () = redis::pipe()
            .atomic()
            .cmd("INCR")
            .arg(format!("{p}tx:a"))
            .ignore()
            .cmd("RPUSH")
            .arg(format!("{p}tx:b"))
            .arg("1")
            .ignore()
            .query(c)
            .unwrap();
    }
    let _: () = redis::cmd("SELECT").arg(0).query(c).unwrap();
}

fn shutdown(mut n: Node, c: &mut redis::Connection) {
    let _ = redis::cmd("SHUTDOWN").arg("NOSAVE").query::<()>(c);
    n.wait_exit();
}

fn wait_rewrite(c: &mut redis::Connection) {
    let t = Instant::now();
    loop {
        if info_field(c, "persistence", "aof_rewrite_in_progress") == "0"
            && info_field(c, "persistence", "aof_rewrite_scheduled") == "0"
        {
            return;
        }
        assert!(t.elapsed() < Duration::from_secs(120), "BGREWRITEAOF did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn manifest(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("appendonlydir/appendonly.aof.manifest")).unwrap()
}

fn check_aof(dir: &Path) {
    if !have("redis-check-aof") {
        println!("redis-check-aof not on PATH: skipping the redis-check-aof part");
        return;
    }
    let out = Command::new("redis-check-aof").arg(dir.join("appendonlydir/appendonly.aof.manifest")).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && text.contains("All AOF files and manifest are valid"), "redis-check-aof: {text}");
}

#[test]
fn writes_survive_restart_with_every_type() {
    for (name, extra) in [
        ("rdb-preamble", &["--aof-use-rdb-preamble", "yes"][..]),
        ("cmd-base", &["--aof-use-rdb-preamble", "no", "--aof-timestamp-enabled", "yes"][..]),
    ] {
        let dir = tempdir("aof", name);
        let a = args(AOF, extra);
        let n = start(&dir, &a);
        let mut c = n.con();
        populate(&mut c, "pre:");
        // Part of the data in the base (after a rewrite), part in the incr file.
        let r: String = q(&mut c, &["BGREWRITEAOF"]);
        assert_eq!(r, "Background append only file rewriting started");
        wait_rewrite(&mut c);
        assert_eq!(info_field(&mut c, "persistence", "aof_last_bgrewrite_status"), "ok");
        populate(&mut c, "post:");
        let _: () = q(&mut c, &["SET", "short-lived", "x", "PX", "800"]);
        let before = snapshot(&mut c, 16);
        assert!(before.len() > 300, "{}", before.len());
        let m = manifest(&dir);
        let suffix = if name == "rdb-preamble" { "rdb" } else { "aof" };
        assert_eq!(
            m,
            format!("file appendonly.aof.2.base.{suffix} seq 2 type b\nfile appendonly.aof.2.incr.aof seq 2 type i\n"),
            "{name}"
        );
        if name == "cmd-base" {
            let base = std::fs::read(dir.join("appendonlydir/appendonly.aof.2.base.aof")).unwrap();
            assert!(base.starts_with(b"#TS:"), "timestamp annotation first");
            let incr = std::fs::read(dir.join("appendonlydir/appendonly.aof.2.incr.aof")).unwrap();
            assert!(incr.starts_with(b"#TS:"), "incr starts with an annotation");
        }
        shutdown(n, &mut c);
        check_aof(&dir);
        std::thread::sleep(Duration::from_millis(900)); // "short-lived" expires
        let n2 = start(&dir, &a);
        let mut c2 = n2.con();
        let after = snapshot(&mut c2, 16);
        let mut before = before;
        before.remove(&(0, b"short-lived".to_vec()));
        assert_same(&before, &after, &format!("{name}: after restart"));
        let log = n2.log_text();
        assert!(log.contains("DB loaded from base file appendonly.aof.2.base"), "{log}");
        assert!(log.contains("DB loaded from incr file appendonly.aof.2.incr.aof"), "{log}");
        assert!(!dir.join("dump.rdb").exists(), "no RDB involved");
        // The restarted node appends to the same incr file.
        let _: () = q(&mut c2, &["SET", "third-run", "1"]);
        shutdown(n2, &mut c2);
        let n3 = start(&dir, &a);
        let mut c3 = n3.con();
        let v: String = q(&mut c3, &["GET", "third-run"]);
        assert_eq!(v, "1");
        drop(c3);
        drop(n3);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn aof_wins_over_rdb_and_config_set_appendonly_starts_one() {
    let dir = tempdir("aof", "configset");
    let n = start(&dir, &["--save", ""]);
    let mut c = n.con();
    assert_eq!(info_field(&mut c, "persistence", "aof_enabled"), "0");
    let _: () = q(&mut c, &["SET", "in-rdb-only", "1"]);
    let _: String = q(&mut c, &["SAVE"]);
    let _: () = q(&mut c, &["SET", "k", "v1"]);
    let ok: String = q(&mut c, &["CONFIG", "SET", "appendonly", "yes"]);
    assert_eq!(ok, "OK");
    assert_eq!(info_field(&mut c, "persistence", "aof_enabled"), "1");
    wait_rewrite(&mut c);
    assert_eq!(info_field(&mut c, "persistence", "aof_rewrites"), "1");
    assert_eq!(
        manifest(&dir),
        "file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n"
    );
    let _: () = q(&mut c, &["SET", "k", "v2"]);
    let _: i64 = q(&mut c, &["DEL", "in-rdb-only"]);
    let size: u64 = info_field(&mut c, "persistence", "aof_current_size").parse().unwrap();
    let base: u64 = info_field(&mut c, "persistence", "aof_base_size").parse().unwrap();
    assert!(size > base && base > 0, "{size} {base}");
    for f in [
        "aof_pending_rewrite",
        "aof_buffer_length",
        "aof_pending_bio_fsync",
        "aof_delayed_fsync",
        "aof_last_write_status",
        "aof_current_rewrite_time_sec",
        "aof_last_rewrite_time_sec",
        "aof_rewrites_consecutive_failures",
    ] {
        info_field(&mut c, "persistence", f);
    }
    shutdown(n, &mut c);
    check_aof(&dir);
    // appendonly yes: the AOF is loaded, the RDB (which still has in-rdb-only) is not.
    let n2 = start(&dir, AOF);
    let mut c2 = n2.con();
    let v: String = q(&mut c2, &["GET", "k"]);
    assert_eq!(v, "v2");
    let e: i64 = q(&mut c2, &["EXISTS", "in-rdb-only"]);
    assert_eq!(e, 0, "AOF wins over RDB");
    // CONFIG SET appendonly no stops appending.
    let _: String = q(&mut c2, &["CONFIG", "SET", "appendonly", "no"]);
    assert_eq!(info_field(&mut c2, "persistence", "aof_enabled"), "0");
    let _: () = q(&mut c2, &["SET", "not-logged", "1"]);
    shutdown(n2, &mut c2);
    let n3 = start(&dir, AOF);
    let mut c3 = n3.con();
    let e: i64 = q(&mut c3, &["EXISTS", "not-logged"]);
    assert_eq!(e, 0);
    assert_eq!(q_err(&mut c3, &["BGREWRITEAOF", "x"]), "ERR wrong number of arguments for 'bgrewriteaof' command");
    drop(c3);
    drop(n3);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn aof_interoperates_with_redis() {
    if !have("redis-server") {
        println!("redis-server not on PATH: skipping the redis-server AOF interoperability test");
        return;
    }
    for preamble in ["yes", "no"] {
        // Ours -> redis-server.
        let dir = tempdir("aof", &format!("interop-{preamble}"));
        let a = args(AOF, &["--aof-use-rdb-preamble", preamble]);
        let n = start(&dir, &a);
        let mut c = n.con();
        populate(&mut c, "pre:");
        let _: String = q(&mut c, &["BGREWRITEAOF"]);
        wait_rewrite(&mut c);
        populate(&mut c, "post:");
        let ours = snapshot(&mut c, 16);
        shutdown(n, &mut c);
        check_aof(&dir);
        let r = start_redis(&dir, &["--appendonly", "yes", "--aof-use-rdb-preamble", preamble]).unwrap();
        let mut rc = r.con();
        let theirs = snapshot(&mut rc, 16);
        assert_same(&ours, &theirs, &format!("preamble {preamble}: our appendonlydir loaded by redis-server"));
        // redis-server -> ours: redis appends to our incr file and rewrites (its own base).
        let _: () = q(&mut rc, &["SET", "written-by-redis", "1"]);
        let _: i64 = q(&mut rc, &["RPUSH", "native:list", "a", "b"]);
        let _: String = q(&mut rc, &["BGREWRITEAOF"]);
        wait_rewrite(&mut rc);
        let _: i64 = q(&mut rc, &["SADD", "after-redis-rewrite", "x", "y"]);
        let _: i64 = q(&mut rc, &["PEXPIRE", "after-redis-rewrite", "100000000"]);
        let theirs = snapshot(&mut rc, 16);
        let _ = redis::cmd("SHUTDOWN").arg("NOSAVE").query::<()>(&mut rc);
        drop(rc);
        let mut r = r;
        r.wait_exit();
        let n2 = start(&dir, &a);
        let mut c2 = n2.con();
        let loaded = snapshot(&mut c2, 16);
        assert_same(
            &theirs,
            &loaded,
            &format!("preamble {preamble}: redis-server's appendonlydir loaded by ferrocache"),
        );
        drop(c2);
        drop(n2);
        let _ = std::fs::remove_dir_all(&dir);
    }
    // An appendonlydir created from scratch by redis-server (its own base + incr).
    let dir = tempdir("aof", "interop-native");
    let r = start_redis(&dir, &["--appendonly", "yes"]).unwrap();
    let mut rc = r.con();
    populate(&mut rc, "native:");
    let theirs = snapshot(&mut rc, 16);
    let _ = redis::cmd("SHUTDOWN").arg("NOSAVE").query::<()>(&mut rc);
    let mut r = r;
    r.wait_exit();
    let n = start(&dir, AOF);
    let mut c = n.con();
    assert_same(&theirs, &snapshot(&mut c, 16), "redis-server appendonlydir loaded by ferrocache");
    drop(c);
    drop(n);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bgrewriteaof_under_concurrent_writes_loses_nothing() {
    let dir = tempdir("aof", "rewrite");
    let a = args(AOF, &["--appendfsync", "no"]);
    let n = start(&dir, &a);
    let mut c = n.con();
    let mut pipe = redis::pipe();
    for i in 0..50_000 {
        pipe.cmd("SET").arg(format!("filler:{i}")).arg(format!("{:080}", i)).ignore();
    }
    let _: () = pipe.query(&mut c).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..3u64 {
        let stop = stop.clone();
        let port = n.port;
        writers.push(std::thread::spawn(move || {
            let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection().unwrap();
            let mut acked = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match w {
                    0 => {
                        let _: i64 = redis::cmd("INCR").arg("counter").query(&mut c).unwrap();
                    }
                    1 => {
                        let _: i64 = redis::cmd("RPUSH").arg("log").arg(acked).query(&mut c).unwrap();
                    }
                    _ => {
                        let _: () = redis::pipe()
                            .atomic()
                            .cmd("INCR")
                            .arg("tx:a")
                            .ignore()
                            .cmd("INCR")
                            .arg("tx:b")
                            .ignore()
                            .query(&mut c)
                            .unwrap();
                        let _: () = redis::cmd("SET")
                            .arg(format!("filler:{}", acked % 50_000))
                            .arg("changed")
                            .query(&mut c)
                            .unwrap();
                    }
                }
                acked += 1;
            }
            acked
        }));
    }
    std::thread::sleep(Duration::from_millis(150));
    for _ in 0..3 {
        let r: String = q(&mut c, &["BGREWRITEAOF"]);
        assert_eq!(r, "Background append only file rewriting started");
        wait_rewrite(&mut c);
        assert_eq!(info_field(&mut c, "persistence", "aof_last_bgrewrite_status"), "ok");
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acked: Vec<u64> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    assert_eq!(info_field(&mut c, "persistence", "aof_rewrites"), "3");
    assert!(
        manifest(&dir)
            .starts_with("file appendonly.aof.4.base.rdb seq 4 type b\nfile appendonly.aof.4.incr.aof seq 4 type i\n"),
        "{}",
        manifest(&dir)
    );
    let before = snapshot(&mut c, 1);
    // kill -9: with appendfsync no, writes already in the kernel survive a process crash.
    drop(c);
    drop(n);
    check_aof(&dir);
    let n2 = start(&dir, &a);
    let mut c2 = n2.con();
    let counter: u64 = q(&mut c2, &["GET", "counter"]);
    assert_eq!(counter, acked[0], "every acknowledged INCR is in the AOF exactly once");
    let len: u64 = q(&mut c2, &["LLEN", "log"]);
    assert_eq!(len, acked[1]);
    let list: Vec<u64> = q(&mut c2, &["LRANGE", "log", "0", "-1"]);
    assert!(list.iter().enumerate().all(|(i, v)| *v == i as u64), "RPUSH order");
    let ta: u64 = q(&mut c2, &["GET", "tx:a"]);
    let tb: u64 = q(&mut c2, &["GET", "tx:b"]);
    assert_eq!((ta, tb), (acked[2], acked[2]));
    assert_same(&before, &snapshot(&mut c2, 1), "after rewrites and kill -9");
    drop(c2);
    drop(n2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn appendfsync_always_kill9_keeps_every_acknowledged_write() {
    let dir = tempdir("aof", "always");
    let a = args(AOF, &["--appendfsync", "always"]);
    let n = start(&dir, &a);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let stop = stop.clone();
        let port = n.port;
        writers.push(std::thread::spawn(move || {
            let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection().unwrap();
            let mut acked = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match redis::cmd("SET").arg(format!("w{w}:{acked}")).arg(acked).query::<()>(&mut c) {
                    Ok(()) => acked += 1,
                    Err(_) => break,
                }
            }
            acked
        }));
    }
    std::thread::sleep(Duration::from_millis(700));
    drop(n); // kill -9 while writes are in flight
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acked: Vec<u64> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    assert!(acked.iter().sum::<u64>() > 20, "{acked:?}");
    let n2 = start(&dir, &a);
    let mut c2 = n2.con();
    for (w, k) in acked.iter().enumerate() {
        for i in 0..*k {
            let e: i64 = q(&mut c2, &["EXISTS", &format!("w{w}:{i}")]);
            assert_eq!(e, 1, "acknowledged write w{w}:{i} lost");
        }
    }
    drop(c2);
    drop(n2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn truncated_aof_per_aof_load_truncated() {
    let dir = tempdir("aof", "truncated");
    let n = start(&dir, AOF);
    let mut c = n.con();
    for i in 0..10 {
        let _: () = q(&mut c, &["SET", &format!("k{i}"), "v"]);
    }
    shutdown(n, &mut c);
    let incr = dir.join("appendonlydir/appendonly.aof.1.incr.aof");
    let good_len = std::fs::metadata(&incr).unwrap().len();
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&incr).unwrap();
        f.write_all(b"*3\r\n$3\r\nSET\r\n$7\r\npart").unwrap(); // cut in the middle of a command
    }
    // aof-load-truncated no: refuses to start.
    let port = free_port();
    let log = dir.join("refuse.log");
    let st = Command::new(env!("CARGO_BIN_EXE_ferrocache"))
        .args([
            "server",
            "--port",
            &port.to_string(),
            "--dir",
            &dir.display().to_string(),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--aof-load-truncated",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .status()
        .unwrap();
    assert!(!st.success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("Unexpected end of file reading the append only file appendonly.aof.1.incr.aof"), "{text}");
    assert_eq!(std::fs::metadata(&incr).unwrap().len(), good_len + 21, "file untouched");
    // aof-load-truncated yes (the default): loads what is complete and truncates the file.
    let n2 = start(&dir, AOF);
    let mut c2 = n2.con();
    let size: i64 = q(&mut c2, &["DBSIZE"]);
    assert_eq!(size, 10);
    let log = n2.log_text();
    assert!(log.contains("!!! Warning: short read while loading the AOF file appendonly.aof.1.incr.aof!!!"), "{log}");
    assert!(
        log.contains(&format!("!!! Truncating the AOF appendonly.aof.1.incr.aof at offset {good_len} !!!")),
        "{log}"
    );
    assert!(log.contains("AOF appendonly.aof.1.incr.aof loaded anyway because aof-load-truncated is enabled"), "{log}");
    let _: () = q(&mut c2, &["SET", "after", "1"]);
    shutdown(n2, &mut c2);
    check_aof(&dir);
    // An incomplete MULTI at the end is reverted the same way.
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&incr).unwrap();
        f.write_all(b"*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$2\r\ntx\r\n$1\r\n1\r\n").unwrap();
    }
    let n3 = start(&dir, AOF);
    let mut c3 = n3.con();
    let e: i64 = q(&mut c3, &["EXISTS", "tx"]);
    assert_eq!(e, 0);
    let e: i64 = q(&mut c3, &["EXISTS", "after"]);
    assert_eq!(e, 1);
    assert!(n3.log_text().contains("Revert incomplete MULTI/EXEC transaction in AOF file appendonly.aof.1.incr.aof"));
    drop(c3);
    drop(n3);
    let _ = std::fs::remove_dir_all(&dir);
}

const LOADING: &str = "LOADING Redis is loading the dataset in memory";

#[test]
fn clients_get_loading_while_a_big_aof_loads() {
    const N: usize = 300_000;
    let dir = tempdir("aof", "loading");
    let n = start(&dir, &["--appendonly", "yes", "--save", ""]);
    let mut raw = Raw::connect(n.port);
    raw.set_timeout(Duration::from_secs(60));
    for start in (0..N).step_by(10_000) {
        let mut buf = Vec::new();
        for i in start..start + 10_000 {
            buf.extend(common::encode(&["SET", &format!("key:{i}"), &format!("value:{i}")]));
        }
        raw.send(&buf);
        for _ in 0..10_000 {
            assert_eq!(raw.read(), Reply::Simple("OK".into()));
        }
    }
    let mut c = n.con();
    shutdown(n, &mut c);
    let incr = dir.join("appendonlydir/appendonly.aof.1.incr.aof");
    let size = std::fs::metadata(&incr).unwrap().len()
        + std::fs::metadata(dir.join("appendonlydir/appendonly.aof.1.base.rdb")).unwrap().len();

    let mut n = spawn(&dir, &dir, &["--appendonly", "yes", "--save", ""]);
    let t = Instant::now();
    let mut r = loop {
        if TcpStream::connect(("127.0.0.1", n.port)).is_ok() {
            break Raw::connect(n.port);
        }
        assert!(n.child.as_mut().unwrap().try_wait().unwrap().is_none(), "node exited");
        assert!(t.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(2));
    };
    let (mut saw_loading, mut max_loaded) = (false, 0u64);
    loop {
        assert!(t.elapsed() < Duration::from_secs(120), "loading did not finish");
        let get = r.cmd(&["GET", &format!("key:{}", N - 1)]);
        if get == Reply::Bulk(format!("value:{}", N - 1).into_bytes()) {
            break;
        }
        assert_eq!(get, Reply::Error(LOADING.into()));
        let info = r.cmd(&["INFO", "persistence"]).as_str();
        if info.contains("loading:1\r\n") {
            saw_loading = true;
            assert!(info.contains(&format!("loading_total_bytes:{size}\r\n")), "{info}");
            let loaded: u64 =
                info.lines().find_map(|l| l.strip_prefix("loading_loaded_bytes:")).unwrap().trim().parse().unwrap();
            assert!(loaded >= max_loaded && loaded <= size);
            max_loaded = loaded;
            let set = r.cmd(&["SET", "k", "v"]);
            if set != Reply::Error(LOADING.into()) {
                // Loading may have ended between INFO and SET: then the write is served.
                assert_eq!(set, Reply::Simple("OK".into()));
                assert!(r.cmd(&["INFO", "persistence"]).as_str().contains("loading:0\r\n"));
                r.cmd(&["DEL", "k"]);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(saw_loading && max_loaded > 0, "loading was never seen");
    assert_eq!(r.cmd(&["DBSIZE"]), Reply::Int(N as i64));
    assert!(n.log_text().contains("DB loaded from append only file: "), "{}", n.log_text());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn manifest_file_names_with_control_and_non_utf8_bytes() {
    use std::os::unix::ffi::OsStrExt;
    // A manifest (as Redis's sdscatrepr writes it) naming a non-UTF-8 file with control
    // characters and a quote.
    let dir = tempdir("aof", "odd-names");
    let aofdir = dir.join("appendonlydir");
    std::fs::create_dir_all(&aofdir).unwrap();
    let odd: &[u8] = b"odd\xff\x01'\tname.aof";
    let odd_path = aofdir.join(std::ffi::OsStr::from_bytes(odd));
    std::fs::write(&odd_path, common::encode(&["SET", "k", "v"])).unwrap();
    let manifest_text = "file \"odd\\xff\\x01'\\tname.aof\" seq 1 type i\n";
    std::fs::write(aofdir.join("appendonly.aof.manifest"), manifest_text).unwrap();
    let n = start(&dir, AOF);
    let mut c = n.con();
    let v: String = q(&mut c, &["GET", "k"]);
    assert_eq!(v, "v");
    let _: () = q(&mut c, &["SET", "k2", "v2"]);
    shutdown(n, &mut c);
    // k2 went to the odd file; the manifest is untouched.
    assert_eq!(manifest(&dir), manifest_text);
    assert!(std::fs::read(&odd_path).unwrap().windows(2).any(|w| w == b"k2"));
    let n = start(&dir, AOF);
    let mut c = n.con();
    let v: String = q(&mut c, &["GET", "k2"]);
    assert_eq!(v, "v2");
    // A rewrite turns it into history and deletes it.
    let _: String = q(&mut c, &["BGREWRITEAOF"]);
    wait_rewrite(&mut c);
    assert_eq!(
        manifest(&dir),
        "file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.2.incr.aof seq 2 type i\n"
    );
    let t = Instant::now();
    while odd_path.exists() {
        assert!(t.elapsed() < Duration::from_secs(10), "history file not removed");
        std::thread::sleep(Duration::from_millis(20));
    }
    shutdown(n, &mut c);
    let _ = std::fs::remove_dir_all(&dir);

    // Our manifest for an appendfilename needing quotes, read by redis-server and
    // redis-check-aof.
    let dir = tempdir("aof", "odd-appendfilename");
    let fname = "ap pend\t'x\u{1}\"q.aof";
    let a = args(AOF, &["--appendfilename", fname]);
    let n = start(&dir, &a);
    let mut c = n.con();
    let _: () = q(&mut c, &["SET", "odd", "1"]);
    shutdown(n, &mut c);
    let text = std::fs::read_to_string(dir.join(format!("appendonlydir/{fname}.manifest"))).unwrap();
    assert_eq!(
        text,
        "file \"ap pend\\t'x\\x01\\\"q.aof.1.base.rdb\" seq 1 type b\nfile \"ap pend\\t'x\\x01\\\"q.aof.1.incr.aof\" seq 1 type i\n"
    );
    let n = start(&dir, &a);
    let mut c = n.con();
    let v: String = q(&mut c, &["GET", "odd"]);
    assert_eq!(v, "1");
    shutdown(n, &mut c);
    if have("redis-check-aof") {
        let out =
            Command::new("redis-check-aof").arg(dir.join(format!("appendonlydir/{fname}.manifest"))).output().unwrap();
        let t = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && t.contains("All AOF files and manifest are valid"), "redis-check-aof: {t}");
    }
    if let Some(r) = start_redis(&dir, &["--appendonly", "yes", "--appendfilename", fname]) {
        let mut rc = r.con();
        let v: String = q(&mut rc, &["GET", "odd"]);
        assert_eq!(v, "1", "redis-server loads our manifest");
    } else {
        println!("redis-server not on PATH: skipping the redis-server part");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The replies of SAVE / BGSAVE / BGSAVE SCHEDULE / BGREWRITEAOF while the other one runs.
fn save_rewrite_interplay(c: &mut redis::Connection) -> Vec<String> {
    let reply = |c: &mut redis::Connection, args: &[&str]| -> String {
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        match cmd.query::<redis::Value>(c) {
            Ok(redis::Value::Okay) => "OK".into(),
            Ok(redis::Value::SimpleString(s)) => s,
            Ok(v) => format!("{v:?}"),
            Err(e) => format!("-{} {}", e.code().unwrap_or(""), e.detail().unwrap_or("")),
        }
    };
    let wait = |c: &mut redis::Connection, field: &str, value: &str| {
        let t = Instant::now();
        while info_field(c, "persistence", field) != value {
            assert!(t.elapsed() < Duration::from_secs(60), "{field} never became {value}");
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    let mut out = Vec::new();
    let mut p = redis::pipe();
    for i in 0..2000 {
        p.cmd("SET").arg(format!("key:{i}")).arg(i).ignore();
    }
    let _: () = p.query(c).unwrap();
    // 1 ms per key: a background save or rewrite takes about 2 s.
    out.push(reply(c, &["CONFIG", "SET", "rdb-key-save-delay", "1000"]));
    out.push(reply(c, &["BGSAVE"]));
    out.push(reply(c, &["BGSAVE"]));
    out.push(reply(c, &["BGSAVE", "SCHEDULE"]));
    out.push(reply(c, &["SAVE"]));
    out.push(reply(c, &["BGREWRITEAOF"]));
    out.push(format!("scheduled:{}", info_field(c, "persistence", "aof_rewrite_scheduled")));
    out.push(reply(c, &["BGREWRITEAOF"]));
    // The BGSAVE ends; the scheduled rewrite starts.
    wait(c, "aof_rewrite_in_progress", "1");
    out.push(format!("bgsave:{}", info_field(c, "persistence", "rdb_bgsave_in_progress")));
    out.push(format!("status:{}", info_field(c, "persistence", "rdb_last_bgsave_status")));
    out.push(reply(c, &["BGSAVE"]));
    out.push(reply(c, &["BGREWRITEAOF"]));
    out.push(reply(c, &["BGSAVE", "SCHEDULE"]));
    out.push(reply(c, &["BGSAVE", "SCHEDULE"]));
    // SAVE runs next to a rewrite.
    out.push(reply(c, &["SAVE"]));
    out.push(reply(c, &["CONFIG", "SET", "rdb-key-save-delay", "0"]));
    // The rewrite ends; the scheduled BGSAVE runs.
    wait(c, "aof_rewrite_in_progress", "0");
    let t = Instant::now();
    while info_field(c, "persistence", "rdb_saves") != "3"
        || info_field(c, "persistence", "rdb_bgsave_in_progress") != "0"
    {
        assert!(t.elapsed() < Duration::from_secs(60), "the scheduled BGSAVE did not run");
        std::thread::sleep(Duration::from_millis(5));
    }
    for f in ["rdb_last_bgsave_status", "aof_last_bgrewrite_status", "aof_rewrites", "aof_rewrite_scheduled"] {
        out.push(format!("{f}:{}", info_field(c, "persistence", f)));
    }
    out
}

#[test]
fn save_bgsave_and_bgrewriteaof_while_the_other_runs() {
    let expected = [
        "OK",
        "Background saving started",
        "-ERR Background save already in progress",
        "-ERR Background save already in progress",
        "-ERR Background save already in progress",
        "Background append only file rewriting scheduled",
        "scheduled:1",
        "Background append only file rewriting scheduled",
        "bgsave:0",
        "status:ok",
        "-ERR Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible.",
        "-ERR Background append only file rewriting already in progress",
        "Background saving scheduled",
        "Background saving scheduled",
        "OK",
        "OK",
        "rdb_last_bgsave_status:ok",
        "aof_last_bgrewrite_status:ok",
        "aof_rewrites:1",
        "aof_rewrite_scheduled:0",
    ];
    let dir = tempdir("aof", "interplay");
    let n = start(&dir, AOF);
    let mut c = n.con();
    let ours = save_rewrite_interplay(&mut c);
    assert_eq!(ours, expected);
    assert!(dir.join("dump.rdb").exists());
    let log = n.log_text();
    assert!(log.contains("Background append only file rewriting started"), "{log}");
    shutdown(n, &mut c);
    check_aof(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    let rdir = tempdir("aof", "interplay-redis");
    if let Some(r) = start_redis(&rdir, &["--appendonly", "yes"]) {
        let mut rc = r.con();
        assert_eq!(save_rewrite_interplay(&mut rc), expected, "redis-server");
    } else {
        println!("redis-server not on PATH: skipping the redis-server comparison");
    }
    let _ = std::fs::remove_dir_all(&rdir);
}

/// A full disk under the AOF: the incr file is replaced by a link to /dev/full.
fn aof_write_error(dir: &Path, start: &dyn Fn() -> Node) -> Vec<String> {
    let n = start();
    let mut c = n.con();
    let _: () = q(&mut c, &["SET", "before", "1"]);
    shutdown(n, &mut c);
    let incr = dir.join("appendonlydir/appendonly.aof.1.incr.aof");
    std::fs::remove_file(&incr).unwrap();
    std::os::unix::fs::symlink("/dev/full", &incr).unwrap();
    let n = start();
    let mut c = n.con();
    let mut out = vec![info_field(&mut c, "persistence", "aof_last_write_status")];
    // The write is done (and acknowledged, as Redis does with appendfsync everysec); the AOF
    // write fails before the reply is sent.
    let _: () = q(&mut c, &["SET", "k", "v"]);
    out.push(info_field(&mut c, "persistence", "aof_last_write_status"));
    out.push(q_err(&mut c, &["SET", "k2", "v"]));
    out.push(q_err(&mut c, &["PING"]));
    out.push(q_err(&mut c, &["INCR", "n"]));
    let v: String = q(&mut c, &["GET", "k"]);
    out.push(v);
    let log = n.log_text();
    assert!(log.contains("Error writing to the AOF file: No space left on device"), "{log}");
    drop(c);
    drop(n);
    out
}

#[test]
fn aof_write_error_denies_writes_with_misconf() {
    let expected = [
        "ok",
        "err",
        "MISCONF Errors writing to the AOF file: No space left on device",
        "MISCONF Errors writing to the AOF file: No space left on device",
        "MISCONF Errors writing to the AOF file: No space left on device",
        "v",
    ];
    let dir = tempdir("aof", "aof-full");
    assert_eq!(aof_write_error(&dir, &|| start(&dir, AOF)), expected);
    let _ = std::fs::remove_dir_all(&dir);
    if have("redis-server") {
        let dir = tempdir("aof", "aof-full-redis");
        assert_eq!(aof_write_error(&dir, &|| start_redis(&dir, &["--appendonly", "yes"]).unwrap()), expected, "redis");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
