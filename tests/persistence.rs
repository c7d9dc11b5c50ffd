//! End-to-end tests of RDB persistence against target/debug/ferrocache (each test runs its own
//! node with `--dir` in a fresh temporary directory): SAVE + restart for every type, interop
//! with a real redis-server 7.0 and redis-check-rdb (skipped with a message when they are not
//! on PATH), BGSAVE consistency under a concurrent write load, save points, MISCONF, FLUSHALL
//! and SHUTDOWN saves, DEBUG RELOAD, INFO persistence.

mod common;

use common::node::{have, info_field, q, q_err, spawn, start, start_logging_to, tempdir, Node};
use common::{Raw, Reply};
use ferrocache_persistence::rdb::{self, RdbEvent, RdbReader, RdbValue, StreamEntry, StreamId, StreamValue};
use std::collections::BTreeMap;
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// redis-server on DIR loading DIR/DBFILENAME (`--save "" --appendonly no`), None when it is
/// not installed.
fn start_redis(dir: &Path, dbfilename: &str) -> Option<Node> {
    common::node::start_redis(dir, &["--dbfilename", dbfilename, "--save", "", "--appendonly", "no"])
}

fn restore(c: &mut redis::Connection, key: &str, v: &RdbValue, ttl_ms: u64) {
    let payload = rdb::dump_payload(v);
    let _: () = redis::cmd("RESTORE").arg(key).arg(ttl_ms).arg(payload).query(c).unwrap();
}

/// A dataset with every type, both encodings of each collection, TTLs, in several databases.
/// Collections the node has no commands for yet are created with RESTORE.
fn populate(c: &mut redis::Connection) {
    for db in [0, 1, 7] {
        let _: () = redis::cmd("SELECT").arg(db).query(c).unwrap();
        let p = format!("d{db}:");
        for i in 0..50 {
            let _: () = q(c, &["SET", &format!("{p}str:{i}"), &format!("value-{i}")]);
        }
        let _: () = q(c, &["SET", &format!("{p}int"), "12345"]);
        let _: () = q(c, &["SET", &format!("{p}bigint"), "-9223372036854775808"]);
        let _: () = q(c, &["SET", &format!("{p}long"), &"abc".repeat(1000)]);
        let _: () = q(c, &["SET", &format!("{p}ttl"), "x", "EX", "1000"]);
        let _: () = q(c, &["SET", &format!("{p}bin"), "\u{0}\u{1}\u{ff}"]);
        let _: () = q(c, &["HSET", &format!("{p}hash:small"), "a", "1", "b", "2", "c", "three"]);
        let mut args: Vec<String> = vec!["HSET".into(), format!("{p}hash:big")];
        for i in 0..700 {
            args.push(format!("field{i}"));
            args.push(format!("val{i}"));
        }
        let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        let _: i64 = q(c, &a);
        let _: i64 = q(c, &["HSET", &format!("{p}hash:longval"), "f", &"v".repeat(100)]);
        let _: i64 = q(c, &["PEXPIRE", &format!("{p}hash:small"), "5000000"]);
        restore(
            c,
            &format!("{p}list:small"),
            &RdbValue::List((0..10).map(|i| format!("item{i}").into_bytes()).collect()),
            0,
        );
        restore(
            c,
            &format!("{p}list:big"),
            &RdbValue::List((0..3000).map(|i| format!("element-number-{i}").into_bytes()).collect()),
            0,
        );
        restore(
            c,
            &format!("{p}set:ints"),
            &RdbValue::Set((0..100).map(|i| (i * 7).to_string().into_bytes()).collect()),
            0,
        );
        restore(
            c,
            &format!("{p}set:strs"),
            &RdbValue::Set((0..600).map(|i| format!("m{i}").into_bytes()).collect()),
            9_000_000,
        );
        restore(
            c,
            &format!("{p}zset:small"),
            &RdbValue::ZSet((0..20).map(|i| (format!("z{i}").into_bytes(), i as f64 * 1.5)).collect()),
            0,
        );
        restore(
            c,
            &format!("{p}zset:big"),
            &RdbValue::ZSet((0..300).map(|i| (format!("member{i}").into_bytes(), (i as f64).sqrt())).collect()),
            0,
        );
        restore(
            c,
            &format!("{p}stream:restored"),
            &RdbValue::Stream(StreamValue::from_entries(
                (1..=250)
                    .map(|i| StreamEntry {
                        id: StreamId::new(1000 + i, i % 3),
                        fields: vec![(b"f".to_vec(), format!("{i}").into_bytes())],
                    })
                    .collect(),
            )),
            0,
        );
        let sk = format!("{p}stream");
        for i in 0..30 {
            let _: String = q(c, &["XADD", &sk, &format!("{}-1", 100 + i), "field", &format!("v{i}"), "other", "x"]);
        }
        let _: () = q(c, &["XGROUP", "CREATE", &sk, "grp", "0"]);
        let _: redis::Value = q(c, &["XREADGROUP", "GROUP", "grp", "alice", "COUNT", "5", "STREAMS", &sk, ">"]);
        let _: redis::Value = q(c, &["XREADGROUP", "GROUP", "grp", "bob", "COUNT", "3", "STREAMS", &sk, ">"]);
        let _: i64 = q(c, &["XACK", &sk, "grp", "101-1"]);
        let _: i64 = q(c, &["XDEL", &sk, "110-1"]);
    }
    let _: () = redis::cmd("SELECT").arg(0).query(c).unwrap();
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
            out.insert((db, k), (v.normalized(), pttl > 0));
        }
    }
    let _: () = redis::cmd("SELECT").arg(0).query(c).unwrap();
    out
}

fn assert_same(a: &Snap, b: &Snap, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: key counts differ");
    for (k, v) in a {
        let w =
            b.get(k).unwrap_or_else(|| panic!("{what}: key {:?} in db {} missing", String::from_utf8_lossy(&k.1), k.0));
        assert!(v == w, "{what}: key {:?} in db {} differs:\n{:?}\nvs\n{:?}", String::from_utf8_lossy(&k.1), k.0, v, w);
    }
}

/// Read an RDB file into (db, key) -> value, checking the checksum.
fn read_rdb(path: &Path) -> BTreeMap<(u64, Vec<u8>), RdbValue> {
    let f = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let mut out = BTreeMap::new();
    for ev in RdbReader::new(f).unwrap() {
        if let RdbEvent::Entry(e) = ev.unwrap() {
            assert!(
                out.insert((e.db, e.key.clone()), e.value).is_none(),
                "duplicate key {:?}",
                String::from_utf8_lossy(&e.key)
            );
        }
    }
    out
}

fn wait_bgsave(c: &mut redis::Connection) {
    let t = Instant::now();
    while info_field(c, "persistence", "rdb_bgsave_in_progress") != "0" {
        assert!(t.elapsed() < Duration::from_secs(120), "BGSAVE did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn save_and_restart_loads_identical_data() {
    let dir = tempdir("persist", "restart");
    let n = start(&dir, &[]);
    let mut c = n.con();
    populate(&mut c);
    let last0: i64 = q(&mut c, &["LASTSAVE"]);
    assert_ne!(info_field(&mut c, "persistence", "rdb_changes_since_last_save"), "0");
    std::thread::sleep(Duration::from_millis(1100));
    let _: () = q(&mut c, &["SET", "short-lived", "x", "PX", "1500"]);
    let before = snapshot(&mut c, 16);
    let ok: String = q(&mut c, &["SAVE"]);
    assert_eq!(ok, "OK");
    let last1: i64 = q(&mut c, &["LASTSAVE"]);
    assert!(last1 > last0, "LASTSAVE moves ({last0} -> {last1})");
    assert_eq!(info_field(&mut c, "persistence", "rdb_changes_since_last_save"), "0");
    assert_eq!(info_field(&mut c, "persistence", "rdb_saves"), "1");
    assert!(n.log_text().contains("DB saved on disk"));
    assert!(dir.join("dump.rdb").exists());
    assert!(
        !std::fs::read_dir(&dir).unwrap().any(|e| e.unwrap().file_name().to_string_lossy().starts_with("temp-")),
        "temp file left behind"
    );
    drop(c);
    drop(n);
    std::thread::sleep(Duration::from_millis(1600)); // "short-lived" expires
    let n2 = start(&dir, &["--enable-debug-command", "local"]);
    let mut c2 = n2.con();
    let mut after = snapshot(&mut c2, 16);
    let log = n2.log_text();
    assert!(log.contains("Loading RDB produced by version 7.0.15"), "{log}");
    assert!(log.contains("DB loaded from disk: "), "{log}");
    assert!(log.contains("keys expired: 1."), "{log}");
    assert_eq!(info_field(&mut c2, "persistence", "rdb_last_load_keys_expired"), "1");
    assert_eq!(info_field(&mut c2, "persistence", "rdb_last_load_keys_loaded"), (before.len() - 1).to_string());
    let mut before = before;
    before.remove(&(0, b"short-lived".to_vec()));
    assert_same(&before, &after, "after restart");
    // DEBUG RELOAD keeps everything too.
    let ok: String = q(&mut c2, &["DEBUG", "RELOAD"]);
    assert_eq!(ok, "OK");
    after = snapshot(&mut c2, 16);
    assert_same(&before, &after, "after DEBUG RELOAD");
    assert_eq!(
        q_err(&mut c2, &["DEBUG", "RELOAD", "BOGUS"]),
        "ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options."
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rdb_files_interoperate_with_redis() {
    let dir = tempdir("persist", "interop");
    let mut n = start(&dir, &["--dbfilename", "ferro.rdb"]);
    let mut c = n.con();
    populate(&mut c);
    let ours = snapshot(&mut c, 16);
    let _: String = q(&mut c, &["SAVE"]);
    let file = dir.join("ferro.rdb");
    // Our own reader accepts it, with no duplicated key.
    assert_eq!(read_rdb(&file).len(), ours.len());
    if !have("redis-check-rdb") {
        println!("redis-check-rdb not on PATH: skipping the redis-check-rdb part");
    } else {
        let out = Command::new("redis-check-rdb").arg(&file).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && text.contains("RDB looks OK"), "redis-check-rdb: {text}");
        assert!(text.contains("Checksum OK"), "{text}");
        assert!(text.contains(&format!("{} keys read", ours.len())), "{text}");
    }
    let Some(r) = start_redis(&dir, "ferro.rdb") else {
        println!("redis-server not on PATH: skipping the redis-server interoperability part");
        return;
    };
    let mut rc = r.con();
    let theirs = snapshot(&mut rc, 16);
    assert_same(&ours, &theirs, "ferrocache dump loaded by redis-server");
    // And back: a dump written by redis-server 7.0 loads into ferrocache.
    let _: () = q(&mut rc, &["RPUSH", "native:list", "a", "b", "c"]);
    let _: i64 = q(&mut rc, &["SADD", "native:set", "x", "y", "1"]);
    let _: i64 = q(&mut rc, &["ZADD", "native:zset", "1", "a", "2.5", "b", "-inf", "c"]);
    let _: i64 = q(&mut rc, &["PEXPIRE", "native:zset", "100000000"]);
    let theirs = snapshot(&mut rc, 16);
    let _: String = q(&mut rc, &["SAVE"]);
    drop(rc);
    drop(r);
    std::fs::rename(dir.join("ferro.rdb"), dir.join("redis.rdb")).unwrap();
    let _ = redis::cmd("SHUTDOWN").arg("NOSAVE").query::<()>(&mut c);
    drop(c);
    n.wait_exit();
    let n2 = start(&dir, &["--dbfilename", "redis.rdb"]);
    let mut c2 = n2.con();
    let loaded = snapshot(&mut c2, 16);
    assert_same(&theirs, &loaded, "redis-server dump loaded by ferrocache");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bgsave_is_a_consistent_point_in_time_snapshot_under_writes() {
    let dir = tempdir("persist", "bgsave");
    let n = start(&dir, &["--save", ""]);
    let mut c = n.con();
    // Enough data that a BGSAVE walk overlaps many writes.
    let mut pipe = redis::pipe();
    for i in 0..60_000 {
        pipe.cmd("SET").arg(format!("filler:{i}")).arg(format!("{:0100}", i)).ignore();
    }
    let _: () = pipe.query(&mut c).unwrap();
    let _: () = q(&mut c, &["MSET", "a", "0", "b", "0"]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..2 {
        let stop = stop.clone();
        let port = n.port;
        writers.push(std::thread::spawn(move || {
            let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection().unwrap();
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if w == 0 {
                    // A transaction over two shards.
                    let _: () = redis::pipe()
                        .atomic()
                        .cmd("INCR")
                        .arg("a")
                        .ignore()
                        .cmd("INCR")
                        .arg("b")
                        .ignore()
                        .query(&mut c)
                        .unwrap();
                } else {
                    // One multi-key command over many shards, and churn on the filler keys.
                    i += 1;
                    let mut m = redis::cmd("MSET");
                    for k in 0..50 {
                        m.arg(format!("multi:{k}")).arg(i);
                    }
                    let _: () = m.query(&mut c).unwrap();
                    let _: () =
                        redis::cmd("SET").arg(format!("filler:{}", i % 60_000)).arg("changed").query(&mut c).unwrap();
                    let _: () = redis::cmd("DEL").arg(format!("filler:{}", (i * 7919) % 60_000)).query(&mut c).unwrap();
                }
            }
            i
        }));
    }
    std::thread::sleep(Duration::from_millis(200));
    for round in 0..3 {
        let r: String = q(&mut c, &["BGSAVE"]);
        assert_eq!(r, "Background saving started");
        let busy = q_err(&mut c, &["BGSAVE"]);
        assert!(
            busy == "ERR Background save already in progress"
                || info_field(&mut c, "persistence", "rdb_bgsave_in_progress") == "0",
            "{busy}"
        );
        wait_bgsave(&mut c);
        assert_eq!(info_field(&mut c, "persistence", "rdb_last_bgsave_status"), "ok");
        let data = read_rdb(&dir.join("dump.rdb"));
        let get = |k: &str| match data.get(&(0, k.as_bytes().to_vec())) {
            Some(RdbValue::String(s)) => String::from_utf8(s.clone()).unwrap(),
            other => panic!("{k}: {other:?}"),
        };
        let (a, b) = (get("a"), get("b"));
        assert_eq!(a, b, "round {round}: MULTI/EXEC INCR a / INCR b split by the snapshot");
        assert!(a.parse::<u64>().unwrap() > 0 || round == 0);
        let m0 = data.get(&(0, b"multi:0".to_vec())).cloned();
        for k in 1..50 {
            assert_eq!(
                data.get(&(0, format!("multi:{k}").into_bytes())).cloned(),
                m0,
                "round {round}: MSET split by the snapshot"
            );
        }
        let fillers = data.keys().filter(|k| k.1.starts_with(b"filler:")).count();
        assert!(fillers > 30_000, "round {round}: {fillers} filler keys");
        let log = n.log_text();
        assert!(log.contains("Background saving terminated with success"), "{log}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    assert_eq!(info_field(&mut c, "persistence", "rdb_saves"), "3");
    // Loading the last snapshot gives a == b as well.
    drop(c);
    drop(n);
    let n2 = start(&dir, &["--save", ""]);
    let mut c2 = n2.con();
    let a: String = q(&mut c2, &["GET", "a"]);
    let b: String = q(&mut c2, &["GET", "b"]);
    assert_eq!(a, b);
    assert_eq!(q_err(&mut c2, &["BGSAVE", "NOW"]), "ERR syntax error");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn save_points_trigger_a_bgsave() {
    let dir = tempdir("persist", "savepoints");
    let n = start(&dir, &["--save", "1 3", "--hz", "50"]);
    let mut c = n.con();
    assert_eq!(q::<Vec<String>>(&mut c, &["CONFIG", "GET", "save"]), vec!["save".to_string(), "1 3".to_string()]);
    let _: () = q(&mut c, &["SET", "k1", "v"]);
    let _: () = q(&mut c, &["SET", "k2", "v"]);
    // Two changes: below the threshold; nothing is saved.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(!dir.join("dump.rdb").exists());
    let _: () = q(&mut c, &["SET", "k3", "v"]);
    let t = Instant::now();
    while !dir.join("dump.rdb").exists() {
        assert!(t.elapsed() < Duration::from_secs(10), "save point did not trigger");
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_bgsave(&mut c);
    assert!(n.log_text().contains("3 changes in 1 seconds. Saving..."), "{}", n.log_text());
    assert_eq!(info_field(&mut c, "persistence", "rdb_changes_since_last_save"), "0");
    assert_eq!(read_rdb(&dir.join("dump.rdb")).len(), 3);
    // save "" disables save points.
    let _: () = q(&mut c, &["CONFIG", "SET", "save", ""]);
    std::fs::remove_file(dir.join("dump.rdb")).unwrap();
    for i in 0..10 {
        let _: () = q(&mut c, &["SET", &format!("x{i}"), "v"]);
    }
    std::thread::sleep(Duration::from_millis(2500));
    assert!(!dir.join("dump.rdb").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn misconf_when_bgsave_fails() {
    let dir = tempdir("persist", "misconf");
    let sub = dir.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    // CONFIG SET dir below is a protected config.
    let n = start_logging_to(&sub, &dir, &["--enable-protected-configs", "yes"]);
    let mut c = n.con();
    let _: () = q(&mut c, &["SET", "k", "v"]);
    // The directory disappears (works even as root, where permissions do not stop writes).
    std::fs::remove_dir_all(&sub).unwrap();
    let r: String = q(&mut c, &["BGSAVE"]);
    assert_eq!(r, "Background saving started");
    wait_bgsave(&mut c);
    assert_eq!(info_field(&mut c, "persistence", "rdb_last_bgsave_status"), "err");
    let misconf = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";
    assert_eq!(q_err(&mut c, &["SET", "k", "v2"]), misconf);
    assert_eq!(q_err(&mut c, &["PING"]), misconf);
    let v: String = q(&mut c, &["GET", "k"]);
    assert_eq!(v, "v");
    // In MULTI the write is refused and EXEC aborts.
    let _: () = q(&mut c, &["MULTI"]);
    assert_eq!(q_err(&mut c, &["SET", "k", "v3"]), misconf);
    assert_eq!(q_err(&mut c, &["EXEC"]), "EXECABORT Transaction discarded because of previous errors.");
    // Turning the option off lets writes through.
    let _: () = q(&mut c, &["CONFIG", "SET", "stop-writes-on-bgsave-error", "no"]);
    let _: () = q(&mut c, &["SET", "k", "v4"]);
    let _: () = q(&mut c, &["CONFIG", "SET", "stop-writes-on-bgsave-error", "yes"]);
    assert_eq!(q_err(&mut c, &["SET", "k", "v5"]), misconf);
    // A successful save clears the condition.
    std::fs::create_dir_all(&sub).unwrap();
    let _: () = q(&mut c, &["CONFIG", "SET", "dir", &sub.display().to_string()]);
    let ok: String = q(&mut c, &["SAVE"]);
    assert_eq!(ok, "OK");
    assert_eq!(info_field(&mut c, "persistence", "rdb_last_bgsave_status"), "ok");
    let _: () = q(&mut c, &["SET", "k", "v6"]);
    let log = n.log_text();
    assert!(log.contains("Failed opening the temp RDB file temp-"), "{log}");
    assert!(log.contains("Background saving error"), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn flushall_and_shutdown_save_as_redis_does() {
    let dir = tempdir("persist", "flush");
    // With save points, FLUSHALL writes an empty dump and resets the change counter.
    let mut n = start(&dir, &[]);
    let mut c = n.con();
    let _: () = q(&mut c, &["SET", "k", "v"]);
    let _: String = q(&mut c, &["SAVE"]);
    assert_eq!(read_rdb(&dir.join("dump.rdb")).len(), 1);
    let _: () = q(&mut c, &["SET", "k2", "v"]);
    let _: () = q(&mut c, &["FLUSHALL"]);
    assert_eq!(read_rdb(&dir.join("dump.rdb")).len(), 0);
    assert_eq!(info_field(&mut c, "persistence", "rdb_changes_since_last_save"), "0");
    // SHUTDOWN saves when save points are configured.
    let _: () = q(&mut c, &["SET", "after", "1"]);
    let _ = redis::cmd("SHUTDOWN").query::<()>(&mut c);
    n.wait_exit();
    assert!(n.log_text().contains("Saving the final RDB snapshot before exiting."));
    assert_eq!(read_rdb(&dir.join("dump.rdb")).len(), 1);
    // SHUTDOWN NOSAVE does not.
    let mut n = start(&dir, &[]);
    let mut c = n.con();
    let _: () = q(&mut c, &["SET", "nosave", "1"]);
    let _ = redis::cmd("SHUTDOWN").arg("NOSAVE").query::<()>(&mut c);
    n.wait_exit();
    assert_eq!(read_rdb(&dir.join("dump.rdb")).len(), 1);
    // Without save points, SHUTDOWN does not save, SHUTDOWN SAVE does; FLUSHALL does not save.
    let mut n = start(&dir, &["--save", ""]);
    let mut c = n.con();
    let _: () = q(&mut c, &["SET", "x", "1"]);
    let _: () = q(&mut c, &["FLUSHALL"]);
    assert_eq!(read_rdb(&dir.join("dump.rdb")).len(), 1);
    let _: () = q(&mut c, &["SET", "y", "1"]);
    let _ = redis::cmd("SHUTDOWN").query::<()>(&mut c);
    n.wait_exit();
    assert_eq!(read_rdb(&dir.join("dump.rdb")).len(), 1);
    let mut n = start(&dir, &["--save", ""]);
    let mut c = n.con();
    let _: () = q(&mut c, &["SET", "y", "1"]);
    let _ = redis::cmd("SHUTDOWN").arg("SAVE").query::<()>(&mut c);
    n.wait_exit();
    let data = read_rdb(&dir.join("dump.rdb"));
    assert_eq!(data.len(), 2, "{data:?}");
    // rdbcompression / rdbchecksum: an uncompressed dump with a zero checksum still loads.
    let n = start(&dir, &["--save", "", "--rdbcompression", "no", "--rdbchecksum", "no"]);
    let mut c = n.con();
    let _: () = q(&mut c, &["SET", "long", &"x".repeat(500)]);
    let _: String = q(&mut c, &["SAVE"]);
    let bytes = std::fs::read(dir.join("dump.rdb")).unwrap();
    assert_eq!(&bytes[bytes.len() - 8..], &[0u8; 8]);
    assert!(bytes.windows(500).any(|w| w.iter().all(|&b| b == b'x')), "uncompressed");
    drop(c);
    drop(n);
    let n = start(&dir, &["--save", ""]);
    let mut c = n.con();
    let v: String = q(&mut c, &["GET", "long"]);
    assert_eq!(v.len(), 500);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Write `n` keys `key:<i>` with pipelined SETs (batches of 10k).
fn fill(port: u16, n: usize, val: &str) {
    let mut raw = Raw::connect(port);
    raw.set_timeout(Duration::from_secs(60));
    for start in (0..n).step_by(10_000) {
        let end = (start + 10_000).min(n);
        let mut buf = Vec::new();
        for i in start..end {
            buf.extend(common::encode(&["SET", &format!("key:{i}"), val]));
        }
        raw.send(&buf);
        for _ in start..end {
            assert_eq!(raw.read(), Reply::Simple("OK".into()));
        }
    }
}

fn info_map(r: &mut Raw, section: &str) -> BTreeMap<String, String> {
    let text = r.cmd(&["INFO", section]).as_str();
    text.lines().filter_map(|l| l.split_once(':')).map(|(k, v)| (k.to_string(), v.trim().to_string())).collect()
}

/// Connect as soon as the port accepts.
fn connect_early(n: &mut Node) -> Raw {
    let t = Instant::now();
    loop {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", n.port)) {
            drop(s);
            return Raw::connect(n.port);
        }
        if let Some(st) = n.child.as_mut().unwrap().try_wait().unwrap() {
            panic!("server exited: {st}");
        }
        assert!(t.elapsed() < Duration::from_secs(30), "server did not start");
        std::thread::sleep(Duration::from_millis(2));
    }
}

const LOADING: &str = "LOADING Redis is loading the dataset in memory";

#[test]
fn clients_get_loading_while_a_big_rdb_loads() {
    const N: usize = 800_000;
    let dir = tempdir("persist", "loading");
    let n = start(&dir, &["--save", ""]);
    let val = "v".repeat(64);
    fill(n.port, N, &val);
    let mut c = n.con();
    let _: String = q(&mut c, &["SAVE"]);
    drop(c);
    drop(n);
    let size = std::fs::metadata(dir.join("dump.rdb")).unwrap().len();
    assert!(size > 8 << 20, "dump.rdb is {size} bytes: too small to take a few progress steps");

    let mut n = spawn(&dir, &dir, &["--save", ""]);
    let mut r = connect_early(&mut n);
    let t = Instant::now();
    let (mut saw_loading, mut saw_progress, mut saw_tx) = (false, false, false);
    let mut last_loaded = 0u64;
    loop {
        assert!(t.elapsed() < Duration::from_secs(120), "loading did not finish");
        let get = r.cmd(&["GET", "key:1"]);
        if get == Reply::Bulk(val.clone().into_bytes()) {
            break;
        }
        assert_eq!(get, Reply::Error(LOADING.into()));
        saw_loading = true;
        // PING has no LOADING flag in Redis 7.0; INFO, SELECT, CLIENT, CONFIG GET do.
        let ping = r.cmd(&["PING"]);
        let info = info_map(&mut r, "persistence");
        if info["loading"] == "1" {
            assert_eq!(ping, Reply::Error(LOADING.into()));
            for f in ["loading_start_time", "loading_rdb_used_mem", "loading_loaded_perc", "loading_eta_seconds"] {
                assert!(info.contains_key(f), "{f} missing: {info:?}");
            }
            assert_eq!(info["loading_total_bytes"], size.to_string());
            assert!(info["loading_rdb_used_mem"].parse::<u64>().unwrap() > 0);
            let loaded: u64 = info["loading_loaded_bytes"].parse().unwrap();
            assert!(loaded >= last_loaded && loaded <= size, "{info:?}");
            let perc: f64 = info["loading_loaded_perc"].parse().unwrap();
            assert!((perc - loaded as f64 * 100.0 / size as f64).abs() < 0.01, "{info:?}");
            if loaded > last_loaded && last_loaded > 0 {
                saw_progress = true;
            }
            last_loaded = loaded;
            // The sections that walk every shard answer at once, with the keys loaded so far.
            let t_info = Instant::now();
            let all = r.cmd(&["INFO", "everything"]).as_str();
            // (6.6 s when INFO waited for the loader; 5 s leaves room for a loaded CI machine.)
            assert!(t_info.elapsed() < Duration::from_secs(5), "INFO took {:?}", t_info.elapsed());
            let keys: usize = all
                .lines()
                .find_map(|l| l.strip_prefix("db0:keys="))
                .map_or(0, |v| v.split(',').next().unwrap().parse().unwrap());
            assert!(keys <= N, "{keys}");
            assert_eq!(r.cmd(&["SELECT", "0"]), Reply::Simple("OK".into()));
            // Loading may end at any point of this round: then commands are served.
            let dbsize = r.cmd(&["DBSIZE"]);
            if dbsize != Reply::Error(LOADING.into()) {
                assert_eq!(dbsize, Reply::Int(N as i64));
                continue;
            }
            if !saw_tx {
                // A transaction with a denied command is discarded, as any rejected command does.
                assert_eq!(r.cmd(&["MULTI"]), Reply::Simple("OK".into()));
                let set = r.cmd(&["SET", "x", "1"]);
                let exec = r.cmd(&["EXEC"]);
                if set == Reply::Error(LOADING.into()) {
                    assert_eq!(
                        exec,
                        Reply::Error("EXECABORT Transaction discarded because of previous errors.".into())
                    );
                    saw_tx = true;
                } else {
                    r.cmd(&["DEL", "x"]);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    assert!(saw_loading && saw_progress && saw_tx, "loading {saw_loading} progress {saw_progress} tx {saw_tx}");
    assert_eq!(r.cmd(&["DBSIZE"]), Reply::Int(N as i64));
    assert_eq!(r.cmd(&["PING"]), Reply::Simple("PONG".into()));
    let info = info_map(&mut r, "persistence");
    assert_eq!(info["loading"], "0");
    assert!(!info.contains_key("loading_total_bytes"), "{info:?}");
    assert_eq!(info["rdb_last_load_keys_loaded"], N.to_string());
    let log = n.log_text();
    assert!(log.contains(&format!("Done loading RDB, keys loaded: {N}, keys expired: 0.")), "{log}");
    assert!(log.contains("DB loaded from disk: "), "{log}");

    // SHUTDOWN while loading exits without saving the partly loaded dataset.
    let _ = redis::cmd("SHUTDOWN").query::<()>(&mut n.con());
    n.wait_exit();
    let mtime = std::fs::metadata(dir.join("dump.rdb")).unwrap().modified().unwrap();
    let mut n = spawn(&dir, &dir, &[]);
    let mut r = connect_early(&mut n);
    let t = Instant::now();
    while r.cmd(&["PING"]) != Reply::Error(LOADING.into()) {
        assert!(t.elapsed() < Duration::from_secs(5), "not loading");
    }
    r.send_cmd(&["SHUTDOWN"]);
    let _ = r.try_read();
    n.wait_exit();
    assert!(n.log_text().contains("User requested shutdown..."), "{}", n.log_text());
    assert_eq!(std::fs::metadata(dir.join("dump.rdb")).unwrap().modified().unwrap(), mtime);
    assert_eq!(std::fs::metadata(dir.join("dump.rdb")).unwrap().len(), size);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bgsave_on_a_full_disk() {
    // The BGSAVE's temp file is a link to /dev/full: every write fails with ENOSPC.
    let dir = tempdir("persist", "diskfull");
    let n = start(&dir, &[]);
    let mut c = n.con();
    let mut p = redis::pipe();
    for i in 0..20_000 {
        p.cmd("SET").arg(format!("key:{i}")).arg("x".repeat(100)).ignore();
    }
    let _: () = p.query(&mut c).unwrap();
    let pid = info_field(&mut c, "server", "process_id");
    std::os::unix::fs::symlink("/dev/full", dir.join(format!("temp-{pid}-1.rdb"))).unwrap();
    let r: String = q(&mut c, &["BGSAVE"]);
    assert_eq!(r, "Background saving started");
    wait_bgsave(&mut c);
    assert_eq!(info_field(&mut c, "persistence", "rdb_last_bgsave_status"), "err");
    assert!(!dir.join("dump.rdb").exists());
    let misconf = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";
    assert_eq!(q_err(&mut c, &["SET", "k", "v"]), misconf);
    assert_eq!(q_err(&mut c, &["DEL", "key:1"]), misconf);
    let v: String = q(&mut c, &["GET", "key:1"]);
    assert_eq!(v.len(), 100);
    let log = n.log_text();
    assert!(log.contains("Write error saving DB on disk(rdbSaveRio): No space left on device"), "{log}");
    assert!(log.contains("Background saving error"), "{log}");
    // The next BGSAVE (a new temp name) succeeds and lifts MISCONF.
    let r: String = q(&mut c, &["BGSAVE"]);
    assert_eq!(r, "Background saving started");
    wait_bgsave(&mut c);
    assert_eq!(info_field(&mut c, "persistence", "rdb_last_bgsave_status"), "ok");
    let _: () = q(&mut c, &["SET", "k", "v"]);
    assert_eq!(read_rdb(&dir.join("dump.rdb")).len(), 20_000);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every entry of an RDB file: (db, key) -> (normalized value, absolute expiry ms).
fn read_rdb_full(path: &Path) -> BTreeMap<(u64, Vec<u8>), (RdbValue, Option<i64>)> {
    let f = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let mut out = BTreeMap::new();
    for ev in RdbReader::new(f).unwrap() {
        if let RdbEvent::Entry(e) = ev.unwrap() {
            let k = (e.db, e.key.clone());
            assert!(out.insert(k, (e.value.normalized(), e.expire_ms)).is_none(), "duplicate key {:?}", e.key);
        }
    }
    out
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// A deterministic dataset (every type, both encodings, TTLs soon and far, four databases) as
/// a list of commands.
fn exact_prefix(exp_soon: u64, exp_far: u64) -> Vec<Vec<String>> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut rnd = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<String>>();
    let mut cmds: Vec<Vec<String>> = Vec::new();
    cmds.push(s(&["SELECT", "0"]));
    for i in 0..20_000 {
        let len = [3, 10, 40, 100, 300][rnd(5) as usize];
        let v: String = (0..len).map(|j| (b'a' + ((i + j + rnd(3) as usize) % 26) as u8) as char).collect();
        cmds.push(vec!["SET".into(), format!("s:{i}"), v]);
        match i % 10 {
            0 | 1 => cmds.push(vec!["PEXPIREAT".into(), format!("s:{i}"), (exp_soon + (i as u64 % 997)).to_string()]),
            2 => cmds.push(vec!["PEXPIREAT".into(), format!("s:{i}"), (exp_far + i as u64).to_string()]),
            _ => {}
        }
    }
    for i in 0..500 {
        cmds.push(vec!["SET".into(), format!("n:{i}"), (i * 1000).to_string()]);
    }
    for i in 0..300 {
        let fields = if i % 10 == 0 { 300 } else { 1 + rnd(20) };
        let mut c = vec!["HSET".to_string(), format!("h:{i}")];
        for f in 0..fields {
            c.push(format!("f{f}"));
            c.push(format!("v{}", rnd(1_000_000)));
        }
        cmds.push(c);
        let n = if i % 10 == 1 { 600 } else { 1 + rnd(30) };
        let mut c = vec!["SADD".to_string(), format!("set:{i}")];
        for m in 0..n {
            c.push(if i % 2 == 0 { m.to_string() } else { format!("m{m}") });
        }
        cmds.push(c);
        let mut c = vec!["RPUSH".to_string(), format!("l:{i}")];
        for m in 0..(1 + rnd(200)) {
            c.push(format!("item{m}"));
        }
        cmds.push(c);
        let n = if i % 10 == 2 { 400 } else { 1 + rnd(40) };
        let mut c = vec!["ZADD".to_string(), format!("z:{i}")];
        for m in 0..n {
            c.push(format!("{}", rnd(10_000) as f64 / 7.0));
            c.push(format!("zm{m}"));
        }
        cmds.push(c);
        if i % 5 == 0 {
            for k in ["h", "set", "l", "z"] {
                let at = if i % 10 == 0 { exp_soon + i as u64 } else { exp_far };
                cmds.push(vec!["PEXPIREAT".into(), format!("{k}:{i}"), at.to_string()]);
            }
        }
    }
    for i in 0..20 {
        for e in 1..=50 {
            cmds.push(s(&["XADD", &format!("x:{i}"), &format!("{e}-1"), "f", &format!("v{e}")]));
        }
    }
    for (db, n) in [(1, 3000), (2, 2000), (3, 2000)] {
        cmds.push(vec!["SELECT".into(), db.to_string()]);
        for i in 0..n {
            cmds.push(vec!["SET".into(), format!("d{db}:{i}"), format!("value-{db}-{i}")]);
        }
        cmds.push(vec!["HSET".into(), format!("d{db}:hash"), "a".into(), "1".into()]);
    }
    cmds.push(s(&["SELECT", "0"]));
    cmds
}

fn run_pipelined(c: &mut redis::Connection, cmds: &[Vec<String>]) {
    for chunk in cmds.chunks(2000) {
        let mut p = redis::pipe();
        for a in chunk {
            let mut cmd = redis::cmd(&a[0]);
            for x in &a[1..] {
                cmd.arg(x);
            }
            p.add_command(cmd).ignore();
        }
        let _: () = p.query(c).unwrap();
    }
}

/// One random write of the hammer: strings, deletes, collections, renames, expiries (set,
/// removed, and lazily triggered), MOVE/COPY, transactions, scripts with undeclared keys,
/// FLUSHDB; SWAPDB (the whole-shard fallback) only when `late`.
fn hammer_one(c: &mut redis::Connection, r: &mut impl rand::Rng, late: bool) {
    let i = r.gen_range(0..22_000);
    let small = r.gen_range(0..300);
    let s = format!("s:{i}");
    let cmd: Vec<String> = match r.gen_range(0..24) {
        0 => vec!["SET".into(), s, format!("new-{}", r.gen::<u32>())],
        1 => vec!["DEL".into(), s],
        2 => vec!["SET".into(), format!("fresh:{}", r.gen::<u32>() % 50_000), "x".into()],
        3 => vec!["APPEND".into(), s, "-appended".into()],
        4 => vec!["INCRBY".into(), format!("n:{}", small), "7".into()],
        5 => vec!["HSET".into(), format!("h:{small}"), format!("f{}", r.gen_range(0..400)), "changed".into()],
        6 => vec!["HDEL".into(), format!("h:{small}"), format!("f{}", r.gen_range(0..20))],
        7 => vec!["SADD".into(), format!("set:{small}"), format!("{}", r.gen_range(0..1000))],
        8 => vec!["SREM".into(), format!("set:{small}"), format!("m{}", r.gen_range(0..30))],
        9 => vec!["LPUSH".into(), format!("l:{small}"), "pushed".into()],
        10 => vec!["RPOP".into(), format!("l:{small}"), "3".into()],
        11 => vec!["ZINCRBY".into(), format!("z:{small}"), "2.5".into(), format!("zm{}", r.gen_range(0..50))],
        12 => vec!["ZREM".into(), format!("z:{small}"), format!("zm{}", r.gen_range(0..50))],
        13 => vec!["RENAME".into(), s, format!("s:{}", r.gen_range(0..22_000))],
        14 => vec!["PEXPIRE".into(), s, format!("{}", r.gen_range(1..3000))],
        15 => vec!["PERSIST".into(), s],
        16 => vec!["GET".into(), s],
        17 => vec!["XADD".into(), format!("x:{}", small % 20), "*".into(), "f".into(), "new".into()],
        18 => vec!["COPY".into(), s, format!("copy:{i}"), "DB".into(), "2".into(), "REPLACE".into()],
        19 => vec!["MOVE".into(), s, "3".into()],
        20 => {
            let _: redis::RedisResult<redis::Value> = redis::pipe()
                .atomic()
                .cmd("SET")
                .arg(&s)
                .arg("in-multi")
                .cmd("DEL")
                .arg(format!("h:{small}"))
                .cmd("LMOVE")
                .arg(format!("l:{small}"))
                .arg(format!("l:{}", (small + 1) % 300))
                .arg("LEFT")
                .arg("RIGHT")
                .query(c);
            return;
        }
        21 => vec![
            "EVAL".into(),
            "redis.call('SET', KEYS[1], ARGV[1]); redis.call('DEL', 'n:' .. ARGV[2]); \
             redis.call('SADD', 'set:' .. ARGV[2], 'from-script'); return 1"
                .into(),
            "1".into(),
            s,
            "script".into(),
            small.to_string(),
        ],
        22 => {
            let db = r.gen_range(1..4);
            let _: redis::RedisResult<redis::Value> = redis::pipe()
                .cmd("SELECT")
                .arg(db)
                .cmd("DEL")
                .arg(format!("d{db}:{}", r.gen_range(0..3000)))
                .cmd(if r.gen_range(0..40) == 0 { "FLUSHDB" } else { "PING" })
                .cmd("SET")
                .arg(format!("d{db}:{}", r.gen_range(0..3000)))
                .arg("after")
                .cmd("SELECT")
                .arg(0)
                .query(c);
            return;
        }
        _ => {
            if late && r.gen_range(0..50) == 0 {
                vec!["SWAPDB".into(), "2".into(), "3".into()]
            } else {
                vec!["SINTERSTORE".into(), format!("set:{small}"), format!("set:{}", (small + 2) % 300)]
            }
        }
    };
    let mut q = redis::cmd(&cmd[0]);
    for a in &cmd[1..] {
        q.arg(a);
    }
    let _: redis::RedisResult<redis::Value> = q.query(c);
}

#[test]
fn bgsave_holds_exactly_the_dataset_at_its_start_under_every_kind_of_write() {
    // Two nodes get the same deterministic dataset. The reference SAVEs it with no write
    // running; the node under test BGSAVEs it (slowly, rdb-key-save-delay) while several
    // clients modify, delete, create, expire, rename, move and flush keys. The BGSAVE was
    // requested on the connection that wrote the dataset, after its last write, so the
    // snapshot's start is exactly that dataset: both files must hold the same entries.
    // The keys expiring "soon" must expire during the BGSAVE: a machine too busy to write the
    // dataset well before then gets a fresh try with twice the margin (and a BGSAVE twice as
    // slow, so that it still spans the expiry).
    let mut margin_ms = 5000;
    let (a, _b, mut ca, dir_a, dir_b, exp_soon, cut) = loop {
        let t0 = unix_ms();
        let exp_soon = t0 + margin_ms;
        let exp_far = t0 + 3_600_000;
        let prefix = exact_prefix(exp_soon, exp_far);
        let dir_a = tempdir("persist", "exact-a");
        let dir_b = tempdir("persist", "exact-b");
        let a = start(&dir_a, &["--save", ""]);
        let b = start(&dir_b, &["--save", ""]);
        let mut ca = a.con();
        let mut cb = b.con();
        run_pipelined(&mut cb, &prefix);
        let _: () = q(&mut cb, &["SAVE"]);
        run_pipelined(&mut ca, &prefix);
        let delay = (400 * margin_ms / 5000).to_string();
        let _: () = q(&mut ca, &["CONFIG", "SET", "rdb-key-save-delay", &delay]);
        let r: String = q(&mut ca, &["BGSAVE"]);
        assert_eq!(r, "Background saving started");
        let cut = unix_ms();
        if cut + 1000 < exp_soon {
            break (a, b, ca, dir_a, dir_b, exp_soon, cut);
        }
        eprintln!("the dataset took {} ms to write with a {margin_ms} ms margin: again", cut - t0);
        assert!(
            margin_ms < 40_000,
            "the dataset took too long to write ({} ms) even with a {margin_ms} ms margin",
            cut - t0
        );
        margin_ms *= 2;
    };
    let t0 = exp_soon - margin_ms;
    let expected = read_rdb_full(&dir_b.join("dump.rdb"));
    assert!(expected.len() > 25_000, "{}", expected.len());

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ops = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut writers = Vec::new();
    for w in 0..3u64 {
        let (stop, ops, port) = (stop.clone(), ops.clone(), a.port);
        writers.push(std::thread::spawn(move || {
            use rand::SeedableRng;
            let mut r = rand::rngs::SmallRng::seed_from_u64(w);
            let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection().unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let late = unix_ms() > exp_soon + 2000;
                hammer_one(&mut c, &mut r, late);
                ops.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }));
    }
    wait_bgsave(&mut ca);
    let done = unix_ms();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    assert_eq!(info_field(&mut ca, "persistence", "rdb_last_bgsave_status"), "ok");
    let n_ops = ops.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("dataset written in {} ms; BGSAVE took {} ms; {n_ops} writes ran during it", cut - t0, done - cut);
    assert!(done > exp_soon + 1000, "the BGSAVE ended before the keys expiring during it did");
    assert!(n_ops > 2000, "only {n_ops} writes during the BGSAVE");
    assert_ne!(info_field(&mut ca, "persistence", "rdb_last_cow_size"), "0");
    assert_eq!(info_field(&mut ca, "persistence", "current_cow_size"), "0");

    let got = read_rdb_full(&dir_a.join("dump.rdb"));
    let mut diffs = Vec::new();
    for (k, v) in &expected {
        match got.get(k) {
            None => diffs.push(format!("missing db {} {:?}", k.0, String::from_utf8_lossy(&k.1))),
            Some(g) if g != v => diffs.push(format!(
                "differs db {} {:?}: {:?} vs expected {:?}",
                k.0,
                String::from_utf8_lossy(&k.1),
                g,
                v
            )),
            _ => {}
        }
    }
    for k in got.keys() {
        if !expected.contains_key(k) {
            diffs.push(format!("extra db {} {:?}", k.0, String::from_utf8_lossy(&k.1)));
        }
    }
    assert!(diffs.is_empty(), "{} differences, first: {:#?}", diffs.len(), &diffs[..diffs.len().min(10)]);
    let _ = std::fs::remove_dir_all(&dir_a);
    let _ = std::fs::remove_dir_all(&dir_b);
}
