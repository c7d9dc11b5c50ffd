//! Full syncs under concurrent writes of every type (disk and diskless, to ferrocache and
//! redis-server replicas, on a fresh primary and after a promotion) end with exactly the
//! primary's dataset; a diskless transfer's stream waits for the first ACK.
//! Helpers: tests/common/repl.rs.

mod common;
#[path = "common/repl.rs"]
mod repl;

use common::node::{have, info_field, q, wait_for, Node};
use repl::*;
use std::net::TcpStream;
use std::time::{Duration, Instant};

// ------------------------------------------------------------ full syncs under writes (issue 11 §3)

/// A dataset of `n` keys of every type (strings, lists, hashes, sets and intsets, sorted sets,
/// streams, keys with a TTL, counters), in databases 0 and 3.
fn fill_dataset(c: &mut redis::Connection, n: usize) {
    let mut p = redis::pipe();
    for i in 0..n {
        let big = "v".repeat(1 + (i * 37) % 300);
        match i % 9 {
            0 => p.cmd("SET").arg(format!("str:{i}")).arg(&big).ignore(),
            1 => p.cmd("RPUSH").arg(format!("list:{i}")).arg((0..1 + i % 150).collect::<Vec<_>>()).ignore(),
            2 => p
                .cmd("HSET")
                .arg(format!("hash:{i}"))
                .arg((0..1 + i % 140).flat_map(|j| [format!("f{j}"), format!("{big}{j}")]).collect::<Vec<_>>())
                .ignore(),
            3 => p
                .cmd("SADD")
                .arg(format!("set:{i}"))
                .arg((0..1 + i % 130).map(|j| format!("m{j}")).collect::<Vec<_>>())
                .ignore(),
            4 => p.cmd("SADD").arg(format!("iset:{i}")).arg((0..1 + i % 130).collect::<Vec<_>>()).ignore(),
            5 => p
                .cmd("ZADD")
                .arg(format!("zset:{i}"))
                .arg(
                    (0..1 + i % 160).flat_map(|j| [format!("{}", j as f64 * 1.5), format!("z{j}")]).collect::<Vec<_>>(),
                )
                .ignore(),
            6 => p.cmd("XADD").arg(format!("stream:{i}")).arg("*").arg("a").arg(i).arg("b").arg(&big).ignore(),
            7 => p.cmd("SET").arg(format!("ttl:{i}")).arg(&big).arg("EX").arg(100_000).ignore(),
            _ => p.cmd("INCRBY").arg(format!("num:{i}")).arg(i).ignore(),
        };
        if i % 10 == 0 {
            p.cmd("SELECT")
                .arg(3)
                .ignore()
                .cmd("SET")
                .arg(format!("db3:{i}"))
                .arg(&big)
                .ignore()
                .cmd("SELECT")
                .arg(0)
                .ignore();
        }
        if i % 500 == 499 {
            let _: () = p.query(c).unwrap();
            p = redis::pipe();
        }
    }
    let _: () = p.query(c).unwrap();
}

/// Writes of every kind to `port` (pipelined by 20, in databases 0 and 3) until `stop`.
/// Returns how many rounds were written.
fn mixed_write_load(
    port: u16,
    tag: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection().unwrap();
        let mut n = 0u64;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let mut p = redis::pipe();
            for _ in 0..20 {
                let k = n % 700;
                p.cmd("SET").arg(format!("{tag}:s:{k}")).arg(format!("w{n}")).ignore();
                p.cmd("INCR").arg(format!("{tag}:counter")).ignore();
                p.cmd("RPUSH").arg(format!("{tag}:log")).arg(n).ignore();
                p.cmd("HSET").arg(format!("hash:{}", 2 + 9 * (n % 300))).arg(format!("{tag}{n}")).arg(n).ignore();
                p.cmd("ZADD").arg(format!("zset:{}", 5 + 9 * (n % 300))).arg(n).arg(format!("{tag}{n}")).ignore();
                p.cmd("DEL").arg(format!("str:{}", 9 * (n % 300))).ignore();
                p.cmd("SELECT").arg(3).ignore().cmd("SET").arg(format!("{tag}:db3:{k}")).arg(n).ignore();
                p.cmd("SELECT").arg(0).ignore();
                n += 1;
            }
            let _: () = p.query(&mut c).unwrap();
        }
        n
    })
}

/// `replica` does REPLICAOF `primary` while writes go to the primary; once the link is up and
/// the writes stopped, the replica holds exactly the primary's dataset.
fn sync_under_writes(primary: &Node, replica: &Node, what: &str) {
    let mut pc = primary.con();
    let mut rc = replica.con();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tag = format!("w{}", replica.port);
    let writer = mixed_write_load(primary.port, tag.clone(), stop.clone());
    std::thread::sleep(Duration::from_millis(100));
    let _: () = q(&mut rc, &["REPLICAOF", "127.0.0.1", &primary.port.to_string()]);
    let t = Instant::now();
    while !link_up(&mut rc) {
        assert!(
            t.elapsed() < Duration::from_secs(40),
            "{what}: the replica's link never came up: {}\n--- primary log:\n{}\n--- replica log:\n{}",
            s_info(&mut rc),
            primary.log_text(),
            replica.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Keep writing a little after the sync: the stream after the snapshot must apply too.
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let n = writer.join().unwrap();
    assert!(n > 0);
    let acked: i64 = q(&mut pc, &["WAIT", "1", "10000"]);
    assert_eq!(acked, 1, "{what}");
    // (>=: the primary's periodic PING may follow.)
    let off: u64 = info_field(&mut pc, "replication", "master_repl_offset").parse().unwrap();
    wait_for("replica offset", 10, || offset_of(&mut rc, "slave_repl_offset") >= off);
    assert_dataset_equal(&mut pc, &mut rc, what);
    let counter: String = q(&mut rc, &["GET", &format!("{tag}:counter")]);
    assert_eq!(counter, n.to_string(), "{what}");
}

fn s_info(c: &mut redis::Connection) -> String {
    redis::cmd("INFO").arg("replication").query::<String>(c).unwrap_or_default()
}

/// DBSIZE of every database, then every key and value.
fn assert_dataset_equal(pc: &mut redis::Connection, rc: &mut redis::Connection, what: &str) {
    for db in 0..16 {
        let _: () = q(pc, &["SELECT", &db.to_string()]);
        let _: () = q(rc, &["SELECT", &db.to_string()]);
        let a: i64 = q(pc, &["DBSIZE"]);
        let b: i64 = q(rc, &["DBSIZE"]);
        assert_eq!(a, b, "{what}: DBSIZE of db {db}");
    }
    let _: () = q(pc, &["SELECT", "0"]);
    let _: () = q(rc, &["SELECT", "0"]);
    let a = snapshot(pc);
    let b = snapshot(rc);
    assert!(a.len() > 1000, "{what}: {} keys", a.len());
    if a != b {
        let diff: Vec<_> = a.iter().zip(b.iter()).filter(|(x, y)| x != y).take(3).collect();
        panic!("{what}: datasets differ ({} vs {} keys), first differences: {diff:?}", a.len(), b.len());
    }
}

/// A fresh ferrocache primary with data, writes during the sync, to a ferrocache replica and
/// to a redis-server replica, disk-backed and diskless.
#[test]
fn full_sync_under_writes_fresh_primary() {
    for diskless in ["yes", "no"] {
        let d = tempdir("fsw");
        let p = start(&d, &["--save", "", "--repl-diskless-sync", diskless, "--repl-diskless-sync-delay", "0"]);
        fill_dataset(&mut p.con(), 3000);
        let rdir = tempdir("fswr");
        let r = start(&rdir, &["--save", ""]);
        sync_under_writes(&p, &r, &format!("ferrocache -> ferrocache, diskless={diskless}"));
        drop(r);
        if have("redis-server") {
            let rd = tempdir("fswredis");
            let rr = start_redis(&rd, "dump.rdb").unwrap();
            sync_under_writes(&p, &rr, &format!("ferrocache -> redis-server, diskless={diskless}"));
        } else {
            println!("SKIPPED: redis-server not on PATH");
        }
    }
}

/// issue 11 §3's reproduction: redis-server A holds data; ferrocache F syncs from A under
/// writes, A stops, F is promoted (REPLICAOF NO ONE), then replicas sync from F under writes.
#[test]
fn full_sync_under_writes_after_promotion() {
    if !have("redis-server") {
        println!("SKIPPED: redis-server not on PATH");
        return;
    }
    for diskless in ["yes", "no"] {
        let ad = tempdir("fpa");
        let a = start_redis(&ad, "dump.rdb").unwrap();
        fill_dataset(&mut a.con(), 3000);
        let d = tempdir("fpf");
        let f = start(&d, &["--save", "", "--repl-diskless-sync", diskless, "--repl-diskless-sync-delay", "0"]);
        sync_under_writes(&a, &f, &format!("redis-server -> ferrocache, diskless={diskless}"));
        drop(a);
        let mut fc = f.con();
        let _: () = q(&mut fc, &["REPLICAOF", "NO", "ONE"]);
        assert_eq!(role_name(&mut fc), "master");
        let rd = tempdir("fpr");
        let rr = start_redis(&rd, "dump.rdb").unwrap();
        sync_under_writes(&f, &rr, &format!("promoted ferrocache -> redis-server, diskless={diskless}"));
        drop(rr);
        let rdir = tempdir("fpr2");
        let r = start(&rdir, &["--save", ""]);
        sync_under_writes(&f, &r, &format!("promoted ferrocache -> ferrocache, diskless={diskless}"));
    }
}

/// A diskless transfer's stream starts after the replica's first REPLCONF ACK, never glued to
/// the EOF mark (a redis-server replica loading to disk only finds the mark at the very end of
/// one read: with stream bytes behind it, it waits for the end of the RDB forever).
#[test]
fn diskless_stream_waits_for_first_ack() {
    use std::io::{BufRead, Read, Write};
    let d = tempdir("eofack");
    let p = start(&d, &["--save", "", "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"]);
    let mut pc = p.con();
    fill_dataset(&mut pc, 300);
    let s = TcpStream::connect(("127.0.0.1", p.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = std::io::BufReader::new(s);
    let mut line = String::new();
    w.write_all(&common::encode(&["REPLCONF", "capa", "eof", "capa", "psync2"])).unwrap();
    r.read_line(&mut line).unwrap();
    assert_eq!(line, "+OK\r\n");
    w.write_all(&common::encode(&["PSYNC", "?", "-1"])).unwrap();
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        if line.starts_with("+FULLRESYNC") {
            break;
        }
        assert!(line == "\n", "{line:?}");
    }
    // Writes after the snapshot's start point: they travel in the stream after the RDB.
    for i in 0..50 {
        let _: () = q(&mut pc, &["SET", &format!("after:{i}"), "v"]);
    }
    line.clear();
    r.read_line(&mut line).unwrap();
    let mark = line.trim_end().strip_prefix("$EOF:").expect("a diskless transfer").as_bytes().to_vec();
    assert_eq!(mark.len(), 40);
    let mut data = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while data.len() < mark.len() || !data.ends_with(&mark) {
        let n = r.read(&mut buf).unwrap();
        assert!(n > 0, "EOF before the mark");
        data.extend_from_slice(&buf[..n]);
        if let Some(i) = data.windows(mark.len()).position(|x| x == &mark[..]) {
            assert_eq!(
                i + mark.len(),
                data.len(),
                "{} stream bytes were sent right behind the EOF mark, before the replica's first ACK",
                data.len() - i - mark.len()
            );
        }
    }
    // Nothing until the ACK...
    r.get_ref().set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    match r.read(&mut buf) {
        Ok(n) => panic!("{n} bytes before the first ACK: {:?}", String::from_utf8_lossy(&buf[..n])),
        Err(e) => assert!(matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut), "{e}"),
    }
    // ...then the writes made during the transfer.
    r.get_ref().set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    w.write_all(&common::encode(&["REPLCONF", "ACK", "0"])).unwrap();
    let mut stream = Vec::new();
    while !String::from_utf8_lossy(&stream).contains("after:49") {
        let n = r.read(&mut buf).unwrap();
        assert!(n > 0, "connection closed");
        stream.extend_from_slice(&buf[..n]);
    }
    assert!(
        stream.starts_with(b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$7\r\nafter:0\r\n"),
        "{:?}",
        String::from_utf8_lossy(&stream)
    );
    assert!(p.log_text().contains("Waiting for REPLCONF ACK from slave to enable streaming"), "{}", p.log_text());
}

/// repl-diskless-load swapdb with the master's replication id (a replica restarted from its own
/// RDB): the full sync loads on the side (INFO async_loading:1) while the old data set is served
/// without -LOADING; a completed transfer swaps the new one in; a transfer cut by the master's
/// death keeps the old one (Redis's tests/cluster 17-diskless-load-swapdb, outside cluster mode).
#[test]
fn swapdb_replica_serves_old_data_during_a_full_sync() {
    let (dm, dr) = (tempdir("swapm"), tempdir("swapr"));
    let m = start(&dm, &["--save", "", "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"]);
    let mut mc = m.con();
    let _: () = q(&mut mc, &["CONFIG", "SET", "repl-backlog-size", "16384"]);
    let mport = m.port.to_string();
    let replica_args = ["--save", "", "--repl-diskless-load", "swapdb", "--replicaof", "127.0.0.1", &mport];
    let mut r = start(&dr, &replica_args);
    let mut rc = r.con();
    let _: () = q(&mut mc, &["SET", "old", "1"]);
    wait_for("first sync", 30, || link_up(&mut rc) && get_opt(&mut rc, "old").as_deref() == Some("1"));
    let value = "A".repeat(1024);
    // Round 1 completes; round 2's master dies mid-transfer.
    for round in 1..=2 {
        let _: () = q(&mut rc, &["SAVE"]);
        drop(rc);
        drop(r);
        // Past the backlog: the restarted replica cannot continue, it needs a full sync.
        for i in 0..2000 {
            let _: () = q(&mut mc, &["SET", &format!("r{round}:{i}"), &value]);
        }
        let _: () = q(&mut mc, &["DEL", "old"]);
        let _: () = q(&mut mc, &["CONFIG", "SET", "rdb-key-save-delay", "1000"]);
        r = start(&dr, &replica_args);
        rc = r.con();
        let before: i64 = q(&mut rc, &["DBSIZE"]);
        wait_for("async_loading:1", 10, || info_field(&mut rc, "persistence", "async_loading") == "1");
        // The old data set is served meanwhile (no -LOADING).
        assert_eq!(info_field(&mut rc, "persistence", "loading"), "0");
        let n: i64 = q(&mut rc, &["DBSIZE"]);
        assert_eq!(n, before, "round {round}: the old data set is served while loading");
        if round == 1 {
            assert_eq!(get_opt(&mut rc, "old").as_deref(), Some("1"));
            // What would change or save the data set waits (no-async-loading commands).
            let e = q_err(&r, &["BGSAVE"]);
            assert!(e.starts_with("LOADING"), "{e}");
            let _: () = q(&mut mc, &["CONFIG", "SET", "rdb-key-save-delay", "0"]);
            wait_for("swapped in", 60, || info_field(&mut rc, "persistence", "async_loading") == "0");
            wait_for("link up", 30, || link_up(&mut rc));
            assert_eq!(get_opt(&mut rc, "old"), None, "the new data set replaced the old one");
            let n: i64 = q(&mut rc, &["DBSIZE"]);
            assert_eq!(n, 2000);
            assert!(r.log_text().contains("Swapping active DB with loaded DB"), "{}", r.log_text());
        } else {
            drop(mc);
            drop(m);
            wait_for("async_loading:0", 30, || info_field(&mut rc, "persistence", "async_loading") == "0");
            let n: i64 = q(&mut rc, &["DBSIZE"]);
            assert_eq!(n, 2000, "the old data set is kept when the transfer fails");
            assert_eq!(get_opt(&mut rc, "r1:0").as_deref(), Some(value.as_str()));
            return;
        }
    }
}

/// A replica restarted on its own RDB continues with a partial resync (the file records the
/// primary's replication id, offset and stream db, as Redis's rdbPopulateSaveInfo): nothing is
/// transferred again, and the writes made while it was down, into the db the stream had
/// selected (no new SELECT comes), land where they belong. Against a ferrocache and a
/// redis-server primary.
#[test]
fn restarted_replica_continues_with_psync() {
    for redis_primary in [false, true] {
        if redis_primary && !have("redis-server") {
            continue;
        }
        let (dm, dr) = (tempdir("resm"), tempdir("resr"));
        let m = if redis_primary { start_redis(&dm, "dump.rdb").unwrap() } else { start(&dm, &["--save", ""]) };
        let mut mc = m.con();
        let mport = m.port.to_string();
        let args = ["--save", "", "--replicaof", "127.0.0.1", &mport];
        let r = start(&dr, &args);
        let mut rc = r.con();
        fill_every_type(&mut mc, "a");
        // The stream's last SELECT is db 3, and a transaction completes.
        let _: () = q(&mut mc, &["SELECT", "3"]);
        let _: () = redis::pipe().atomic().cmd("SET").arg("tx1").arg("1").cmd("INCR").arg("n").query(&mut mc).unwrap();
        let off: u64 = info_field(&mut mc, "replication", "master_repl_offset").parse().unwrap();
        wait_for("replica caught up", 30, || link_up(&mut rc) && offset_of(&mut rc, "slave_repl_offset") >= off);
        let _: () = q(&mut rc, &["SAVE"]);
        let full_before: u64 = info_field(&mut mc, "stats", "sync_full").parse().unwrap();
        drop(rc);
        drop(r);
        // Written while the replica is down: no SELECT is sent again for db 3.
        let _: () = q(&mut mc, &["SET", "while-down", "x"]);
        let _: () = q(&mut mc, &["INCR", "n"]);
        let r = start(&dr, &args);
        let mut rc = r.con();
        wait_for("link up", 30, || link_up(&mut rc));
        let what = if redis_primary { "redis-server primary" } else { "ferrocache primary" };
        assert!(r.log_text().contains("Master accepted a Partial Resynchronization"), "{what}: {}", r.log_text());
        let full_after: u64 = info_field(&mut mc, "stats", "sync_full").parse().unwrap();
        assert_eq!(full_after, full_before, "{what}: no full sync");
        let off: u64 = info_field(&mut mc, "replication", "master_repl_offset").parse().unwrap();
        wait_for("replica caught up", 30, || offset_of(&mut rc, "slave_repl_offset") >= off);
        let _: () = q(&mut rc, &["SELECT", "3"]);
        assert_eq!(get_opt(&mut rc, "while-down").as_deref(), Some("x"), "{what}");
        assert_eq!(get_opt(&mut rc, "n").as_deref(), Some("2"), "{what}");
        let _: () = q(&mut mc, &["SELECT", "0"]);
        let _: () = q(&mut rc, &["SELECT", "0"]);
        assert_eq!(snapshot(&mut mc), snapshot(&mut rc), "{what}");
    }
}
