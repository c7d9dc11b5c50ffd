//! End-to-end replication tests against target/debug/ferrocache: a ferrocache replica of a
//! ferrocache primary (full sync of every type, streaming, expiry propagated as DEL, partial
//! resync after CLIENT KILL TYPE master, disk-backed and diskless transfers, writes under load
//! during the sync), WAIT, READONLY, ROLE and INFO replication; and, when redis-server is on
//! PATH, ferrocache as a replica of redis-server 7.0 and redis-server as a replica of ferrocache
//! (printing SKIPPED otherwise). min-replicas-to-write, chains and several replicas (a replica
//! dropped past its output buffer limit resyncs fully), memcached flags/CAS through replication
//! and the AOF, replicas that never expire keys themselves, `replicaof` in the configuration.
//! FAILOVER: tests/replication_failover.rs; full syncs under writes:
//! tests/replication_full_sync.rs; helpers: tests/common/repl.rs.

mod common;
#[path = "common/repl.rs"]
mod repl;

use common::free_port;
use common::node::{have, info_field, q, wait_for};
use repl::*;
use std::time::{Duration, Instant};

#[test]
fn ferrocache_replica_of_ferrocache() {
    for diskless in ["yes", "no"] {
        let d = tempdir("ff");
        let p = start(&d, &["--save", "", "--repl-diskless-sync", diskless, "--repl-ping-replica-period", "1"]);
        let rdir = tempdir("ffr");
        let r = start(&rdir, &["--save", ""]);
        let mut pc = p.con();
        let mut rc = r.con();
        fill_every_type(&mut pc, "before");
        for i in 0..2000 {
            let _: () = q(&mut pc, &["SET", &format!("bulk:{i}"), &i.to_string()]);
        }
        // Writes keep coming while the replica syncs: the snapshot and the stream must meet.
        let port = p.port;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let st = stop.clone();
        let writer = std::thread::spawn(move || {
            let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection().unwrap();
            let mut n = 0u64;
            while !st.load(std::sync::atomic::Ordering::Relaxed) {
                let _: i64 = q(&mut c, &["INCR", "counter"]);
                let _: i64 = q(&mut c, &["RPUSH", "log", &n.to_string()]);
                let _: () = q(&mut c, &["SET", &format!("bulk:{}", n % 3000), &format!("w{n}")]);
                n += 1;
            }
            n
        });
        let _: () = q(&mut rc, &["REPLICAOF", "127.0.0.1", &p.port.to_string()]);
        wait_for("link up", 30, || link_up(&mut rc));
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let n = writer.join().unwrap();
        assert!(n > 0);
        fill_every_type(&mut pc, "after");
        let _: () = q(&mut pc, &["SET", "short", "v", "PX", "300"]);
        let _: i64 = q(&mut pc, &["WAIT", "1", "5000"]);
        // Expiry: the replica answers nil for the logically expired key; the primary's DEL
        // removes it.
        std::thread::sleep(Duration::from_millis(400));
        let v: Option<String> = q(&mut rc, &["GET", "short"]);
        assert_eq!(v, None);
        let _: Option<String> = q(&mut pc, &["GET", "short"]);
        let acked: i64 = q(&mut pc, &["WAIT", "1", "5000"]);
        assert_eq!(acked, 1);
        assert_eq!(snapshot(&mut pc), snapshot(&mut rc), "diskless={diskless}");
        let counter: String = q(&mut rc, &["GET", "counter"]);
        assert_eq!(counter, n.to_string());
        let len: i64 = q(&mut rc, &["LLEN", "log"]);
        assert_eq!(len as u64, n);

        // READONLY, ROLE, INFO replication.
        let e = redis::cmd("SET").arg("k").arg("v").query::<()>(&mut rc).unwrap_err();
        assert_eq!(e.kind(), redis::ErrorKind::ReadOnly);
        assert!(e.to_string().ends_with("You can't write against a read only replica."), "{e}");
        let role: redis::Value = q(&mut pc, &["ROLE"]);
        let s = format!("{role:?}");
        assert!(s.contains("master") && s.contains(&r.port.to_string()), "{s}");
        let role: redis::Value = q(&mut rc, &["ROLE"]);
        let s = format!("{role:?}");
        assert!(s.contains("slave") && s.contains("connected"), "{s}");
        assert_eq!(info_field(&mut pc, "replication", "connected_slaves"), "1");
        let s0 = info_field(&mut pc, "replication", "slave0");
        assert!(s0.starts_with(&format!("ip=127.0.0.1,port={},state=online,offset=", r.port)), "{s0}");
        assert_eq!(info_field(&mut rc, "replication", "role"), "slave");
        assert_eq!(info_field(&mut rc, "replication", "master_port"), p.port.to_string());
        assert_eq!(info_field(&mut rc, "replication", "master_sync_in_progress"), "0");
        assert_eq!(
            info_field(&mut pc, "replication", "master_replid"),
            info_field(&mut rc, "replication", "master_replid")
        );
        assert_eq!(
            info_field(&mut pc, "replication", "master_repl_offset"),
            info_field(&mut rc, "replication", "slave_repl_offset")
        );
        assert_eq!(info_field(&mut pc, "replication", "repl_backlog_active"), "1");

        // Link killed: the replica continues with PSYNC from its offset.
        let killed: i64 = q(&mut rc, &["CLIENT", "KILL", "TYPE", "master"]);
        assert_eq!(killed, 1);
        let _: () = q(&mut pc, &["SET", "while-down", "1"]);
        wait_for("link up again", 30, || link_up(&mut rc));
        let acked: i64 = q(&mut pc, &["WAIT", "1", "5000"]);
        assert_eq!(acked, 1);
        let v: Option<String> = q(&mut rc, &["GET", "while-down"]);
        assert_eq!(v.as_deref(), Some("1"));
        assert!(r.log_text().contains("Successful partial resynchronization with master."), "{}", r.log_text());
        assert!(p.log_text().contains("Partial resynchronization request from"));

        // REPLICAOF NO ONE: a master again, writable, with the old id as replid2.
        let old_id = info_field(&mut rc, "replication", "master_replid");
        let _: () = q(&mut rc, &["REPLICAOF", "NO", "ONE"]);
        assert_eq!(info_field(&mut rc, "replication", "role"), "master");
        assert_eq!(info_field(&mut rc, "replication", "master_replid2"), old_id);
        let _: () = q(&mut rc, &["SET", "k", "v"]);
    }
}

#[test]
fn wait_without_replicas_and_errors() {
    let d = tempdir("wait");
    let p = start(&d, &["--save", ""]);
    let mut c = p.con();
    let _: () = q(&mut c, &["SET", "a", "1"]);
    let t = Instant::now();
    let n: i64 = q(&mut c, &["WAIT", "1", "200"]);
    assert_eq!(n, 0);
    assert!(t.elapsed() >= Duration::from_millis(190));
    let n: i64 = q(&mut c, &["WAIT", "0", "0"]);
    assert_eq!(n, 0);
    let e = redis::cmd("WAIT").arg("1").arg("-1").query::<i64>(&mut c).unwrap_err();
    assert!(e.to_string().contains("timeout is negative"));
    let role: redis::Value = q(&mut c, &["ROLE"]);
    assert_eq!(
        format!("{role:?}"),
        format!(
            "{:?}",
            redis::Value::Array(vec![
                redis::Value::BulkString(b"master".to_vec()),
                redis::Value::Int(0),
                redis::Value::Array(vec![])
            ])
        )
    );
    assert_eq!(info_field(&mut c, "replication", "role"), "master");
    assert_eq!(info_field(&mut c, "replication", "connected_slaves"), "0");
}

#[test]
fn ferrocache_replica_of_redis_server() {
    let d = tempdir("fr");
    let Some(p) = start_redis(&d, "dump.rdb") else {
        println!("SKIPPED: redis-server not on PATH");
        return;
    };
    let r = start(&d, &["--save", ""]);
    let mut pc = p.con();
    let mut rc = r.con();
    fill_every_type(&mut pc, "before");
    let _: () = q(&mut rc, &["REPLICAOF", "127.0.0.1", &p.port.to_string()]);
    wait_for("link up", 60, || link_up(&mut rc));
    fill_every_type(&mut pc, "after");
    let _: () = q(&mut pc, &["SET", "short", "v", "PX", "200"]);
    let acked: i64 = q(&mut pc, &["WAIT", "1", "5000"]);
    assert_eq!(acked, 1);
    std::thread::sleep(Duration::from_millis(300));
    let _: Option<String> = q(&mut pc, &["GET", "short"]);
    let acked: i64 = q(&mut pc, &["WAIT", "1", "5000"]);
    assert_eq!(acked, 1);
    assert_eq!(snapshot(&mut pc), snapshot(&mut rc));
    let killed: i64 = q(&mut rc, &["CLIENT", "KILL", "TYPE", "master"]);
    assert_eq!(killed, 1);
    let _: () = q(&mut pc, &["SET", "while-down", "1"]);
    wait_for("link up again", 30, || link_up(&mut rc));
    let acked: i64 = q(&mut pc, &["WAIT", "1", "5000"]);
    assert_eq!(acked, 1);
    assert_eq!(snapshot(&mut pc), snapshot(&mut rc));
    assert!(r.log_text().contains("Successful partial resynchronization with master."));
}

#[test]
fn redis_server_replica_of_ferrocache() {
    if !have("redis-server") {
        println!("SKIPPED: redis-server not on PATH");
        return;
    }
    for diskless in ["yes", "no"] {
        let d = tempdir("rf");
        let p = start(&d, &["--save", "", "--repl-diskless-sync", diskless]);
        let rd = tempdir("rfr");
        let r = start_redis(&rd, "dump.rdb").unwrap();
        let mut pc = p.con();
        let mut rc = r.con();
        fill_every_type(&mut pc, "before");
        let _: () = q(&mut rc, &["REPLICAOF", "127.0.0.1", &p.port.to_string()]);
        wait_for("link up", 60, || link_up(&mut rc));
        fill_every_type(&mut pc, "after");
        let acked: i64 = q(&mut pc, &["WAIT", "1", "5000"]);
        assert_eq!(acked, 1);
        assert_eq!(snapshot(&mut pc), snapshot(&mut rc), "diskless={diskless}");
        assert_eq!(
            info_field(&mut pc, "replication", "master_repl_offset"),
            info_field(&mut rc, "replication", "slave_repl_offset")
        );
        // Partial resync of redis-server after its link is killed.
        let killed: i64 = q(&mut rc, &["CLIENT", "KILL", "TYPE", "master"]);
        assert_eq!(killed, 1);
        let _: () = q(&mut pc, &["SET", "while-down", "1"]);
        std::thread::sleep(Duration::from_millis(200));
        wait_for("link up again", 30, || link_up(&mut rc));
        let acked: i64 = q(&mut pc, &["WAIT", "1", "5000"]);
        assert_eq!(acked, 1);
        let v: Option<String> = q(&mut rc, &["GET", "while-down"]);
        assert_eq!(v.as_deref(), Some("1"));
        assert!(r.log_text().contains("Successful partial resynchronization with master."), "{}", r.log_text());
    }
}

#[test]
fn min_replicas_to_write() {
    let d = tempdir("minrep");
    let p = start(&d, &["--save", "", "--min-replicas-to-write", "1", "--min-replicas-max-lag", "2"]);
    let r = start(&d, &["--save", ""]);
    let mut pc = p.con();
    // Same replies as redis-server with the same settings and no replica.
    let mut nodes = vec![p.port];
    let rs = common::redis_server(&["--min-replicas-to-write", "1", "--min-replicas-max-lag", "2"]);
    if let Some(rs) = &rs {
        nodes.push(rs.port);
    } else {
        println!("SKIPPED (comparison part): redis-server not on PATH");
    }
    let mut seen = Vec::new();
    for port in &nodes {
        let mut c = common::Raw::connect(*port);
        let mut replies = Vec::new();
        for cmd in [
            "SET k v",
            "GET k",
            "MULTI",
            "SET k v",
            "GET k",
            "EXEC",
            "MULTI",
            "GET k",
            "EXEC",
            "PING",
            "DEL k",
            "CONFIG SET min-replicas-max-lag 0",
            "SET k v",
            "CONFIG SET min-replicas-max-lag 2",
        ] {
            replies.push(c.qraw(cmd));
        }
        for script in [
            "return redis.call('set','k','v')",
            "return redis.pcall('set','k','v')",
            "#!lua\nreturn redis.call('set','k','v')",
            "#!lua flags=no-writes\nreturn redis.call('get','k')",
            "return redis.call('get','k')",
        ] {
            c.send_cmd(&["EVAL", script, "0"]);
            replies.push(String::from_utf8_lossy(&c.read_raw()).into_owned());
        }
        let mut rc = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection().unwrap();
        replies.push(info_field(&mut rc, "replication", "min_slaves_good_slaves"));
        seen.push(replies);
    }
    assert_eq!(seen[0][0], "-NOREPLICAS Not enough good replicas to write.\r\n");
    assert_eq!(seen[0][5], "-EXECABORT Transaction discarded because of previous errors.\r\n");
    assert_eq!(seen[0][12], "+OK\r\n");
    if seen.len() == 2 {
        assert_eq!(seen[0], seen[1]);
    }
    // A replica that acknowledges: writes are accepted.
    let mut rc = r.con();
    let _: () = q(&mut rc, &["REPLICAOF", "127.0.0.1", &p.port.to_string()]);
    wait_for("link up", 30, || link_up(&mut rc));
    wait_for("good replica", 10, || info_field(&mut pc, "replication", "min_slaves_good_slaves") == "1");
    let _: () = q(&mut pc, &["SET", "k", "v"]);
    // Its ACKs stop (process stopped): after more than 2 s of lag, writes are refused again.
    signal(&r, "-STOP");
    wait_for("replica lagging", 10, || info_field(&mut pc, "replication", "min_slaves_good_slaves") == "0");
    let e = q_err(&p, &["SET", "k", "w"]);
    assert_eq!(e, "NOREPLICAS Not enough good replicas to write.");
    signal(&r, "-CONT");
    wait_for("good again", 10, || info_field(&mut pc, "replication", "min_slaves_good_slaves") == "1");
    let _: () = q(&mut pc, &["SET", "k", "w"]);
    let _: () = q(&mut pc, &["CONFIG", "SET", "min-replicas-to-write", "0"]);
    let s: String = redis::cmd("INFO").arg("replication").query(&mut pc).unwrap();
    assert!(!s.contains("min_slaves_good_slaves"), "{s}");
}

#[test]
fn chained_and_several_replicas() {
    let d = tempdir("chain");
    let p = start(&d, &["--save", "", "--repl-backlog-size", "16384", "--repl-ping-replica-period", "1"]);
    let r1 = start(&d, &["--save", ""]);
    let r2 = start(&d, &["--save", "", "--repl-timeout", "5"]);
    let s1 = start(&d, &["--save", ""]);
    let (mut pc, mut c1, mut c2, mut cs) = (p.con(), r1.con(), r2.con(), s1.con());
    fill_every_type(&mut pc, "before");
    // Writes of every type keep coming while the chain forms.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let st = stop.clone();
    let port = p.port;
    let writer = std::thread::spawn(move || {
        let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection().unwrap();
        let mut n = 0u64;
        while !st.load(std::sync::atomic::Ordering::Relaxed) {
            fill_every_type(&mut c, &format!("w{}", n % 50));
            let _: i64 = q(&mut c, &["INCR", "counter"]);
            let _: i64 = q(&mut c, &["HINCRBY", "hc", &format!("f{}", n % 7), "1"]);
            let _: Option<String> = q(&mut c, &["LPOP", &format!("l:w{}", (n + 25) % 50)]);
            n += 1;
        }
        n
    });
    let _: () = q(&mut cs, &["REPLICAOF", "127.0.0.1", &r1.port.to_string()]);
    for c in [&mut c1, &mut c2] {
        let _: () = q(c, &["REPLICAOF", "127.0.0.1", &p.port.to_string()]);
    }
    wait_for("links up", 60, || link_up(&mut c1) && link_up(&mut c2) && link_up(&mut cs));
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(writer.join().unwrap() > 0);
    let acked: i64 = q(&mut pc, &["WAIT", "2", "5000"]);
    assert_eq!(acked, 2);
    let off = offset_of(&mut pc, "master_repl_offset");
    wait_for("sub-replica at the primary's offset", 30, || offset_of(&mut cs, "slave_repl_offset") >= off);
    let _: () = q(&mut pc, &["CONFIG", "SET", "repl-ping-replica-period", "3600"]);
    std::thread::sleep(Duration::from_millis(1200));
    let off = offset_of(&mut pc, "master_repl_offset");
    wait_for("all at the same offset", 30, || {
        offset_of(&mut c1, "slave_repl_offset") == off
            && offset_of(&mut c2, "slave_repl_offset") == off
            && offset_of(&mut cs, "slave_repl_offset") == off
    });
    // The sub-replica has the primary's history: same id, same offsets, same data.
    let id = info_field(&mut pc, "replication", "master_replid");
    for c in [&mut c1, &mut c2, &mut cs] {
        assert_eq!(info_field(c, "replication", "master_replid"), id);
        assert_eq!(offset_of(c, "master_repl_offset"), off);
    }
    assert_eq!(info_field(&mut c1, "replication", "connected_slaves"), "1");
    let sp = snapshot(&mut pc);
    assert!(sp.len() > 400, "{}", sp.len());
    assert_eq!(sp, snapshot(&mut c1));
    assert_eq!(sp, snapshot(&mut c2));
    assert_eq!(sp, snapshot(&mut cs));

    // r2 stops reading: its output buffer passes the limit and it is dropped while the primary
    // goes on writing at full speed; back, its offset is far behind the 16 KB backlog, so it
    // resyncs fully.
    let _: () = q(&mut pc, &["CONFIG", "SET", "client-output-buffer-limit", "replica 4mb 2mb 1"]);
    std::thread::sleep(Duration::from_millis(300));
    signal(&r2, "-STOP");
    let big = "x".repeat(100_000);
    let t = Instant::now();
    for i in 0..300 {
        let _: () = q(&mut pc, &["SET", &format!("big:{}", i % 100), &big]);
    }
    let took = t.elapsed();
    assert!(took < Duration::from_secs(20), "the primary stalled: {took:?}");
    wait_for("r2 dropped", 10, || info_field(&mut pc, "replication", "connected_slaves") == "1");
    assert!(
        p.log_text().contains("scheduled to be closed ASAP for overcoming of output buffer limits."),
        "{}",
        p.log_text()
    );
    let _: () = q(&mut pc, &["SET", "after-drop", "1"]);
    let acked: i64 = q(&mut pc, &["WAIT", "1", "5000"]);
    assert_eq!(acked, 1);
    signal(&r2, "-CONT");
    wait_for("r2 back", 60, || {
        info_field(&mut pc, "replication", "connected_slaves") == "2" && get_opt(&mut c2, "after-drop").is_some()
    });
    let full: u64 = info_field(&mut pc, "stats", "sync_full").parse().unwrap();
    // (r1 may have been dropped too on a loaded machine: it then resynced as well.)
    assert!(full >= 3, "r1, r2 and r2's resync: {full}");
    assert!(r2.log_text().matches("Full resync from master").count() >= 2, "{}", r2.log_text());
    let acked: i64 = q(&mut pc, &["WAIT", "2", "5000"]);
    assert_eq!(acked, 2);
    let off = offset_of(&mut pc, "master_repl_offset");
    wait_for("sub-replica caught up", 30, || offset_of(&mut cs, "slave_repl_offset") == off);
    let sp = snapshot(&mut pc);
    assert_eq!(sp, snapshot(&mut c1));
    assert_eq!(sp, snapshot(&mut c2));
    assert_eq!(sp, snapshot(&mut cs));
}

#[test]
fn memcached_items_replicate_and_survive_aof() {
    let d = tempdir("mcrepl");
    let (pm, rm) = (free_port(), free_port());
    let pargs = ["--save", "", "--appendonly", "yes", "--memcached-port", &pm.to_string()];
    let mut p = start(&d, &pargs);
    let rdir = tempdir("mcreplr");
    let r = start(&rdir, &["--save", "", "--memcached-port", &rm.to_string()]);
    let mut pc = p.con();
    let mut rc = r.con();
    // Before the replica attaches (full sync) and after (stream).
    // (stored a few times: its CAS unique is not the one a fresh node would issue first)
    for _ in 0..3 {
        assert_eq!(mc_text(pm, "set early 9 0 3\r\nabc\r\n", "STORED"), "STORED\r\n");
    }
    let _: () = q(&mut rc, &["REPLICAOF", "127.0.0.1", &p.port.to_string()]);
    wait_for("link up", 30, || link_up(&mut rc));
    assert_eq!(mc_text(pm, "set k 42 0 5\r\nhello\r\n", "STORED"), "STORED\r\n");
    mc_text(pm, "set n 7 0 1\r\n5\r\nincr n 3\r\n", "8");
    mc_text(pm, "set e 11 1000 2\r\nhi\r\n", "STORED");
    // WAIT covers this connection's writes: write after the memcached ones, then wait.
    let _: () = q(&mut pc, &["SET", "sync", "1"]);
    let acked: i64 = q(&mut pc, &["WAIT", "1", "5000"]);
    assert_eq!(acked, 1);
    let on_p = mc_text(pm, "gets k n e\r\n", "END");
    assert!(on_p.starts_with("VALUE k 42 5 "), "{on_p}");
    assert!(on_p.contains("VALUE n 7 1 "), "{on_p}");
    // The replica serves memcached reads with the primary's flags and CAS uniques.
    assert_eq!(mc_text(rm, "gets k n e\r\n", "END"), on_p);
    // The item that came with the full sync (RDB aux fields) has them too.
    let on_p_all = mc_text(pm, "gets k n e early\r\n", "END");
    assert!(on_p_all.contains("VALUE early 9 3 "), "{on_p_all}");
    assert_eq!(mc_text(rm, "gets k n e early\r\n", "END"), on_p_all);
    // A read-only replica refuses memcached writes.
    assert_eq!(
        mc_text(rm, "set x 0 0 1\r\na\r\nincr n 1\r\nget x\r\n", "END"),
        "SERVER_ERROR READONLY You can't write against a read only replica.\r\n".repeat(2) + "END\r\n"
    );
    // A CAS unique read on the primary works on the replica once promoted.
    let cas_k: u64 = on_p.lines().next().unwrap().split(' ').nth(4).unwrap().parse().unwrap();
    let _: () = q(&mut rc, &["REPLICAOF", "NO", "ONE"]);
    assert_eq!(mc_text(rm, &format!("cas k 5 0 3 {cas_k}\r\nnew\r\n"), "STORED"), "STORED\r\n");
    // New uniques on the promoted replica never reuse the primary's.
    let after = mc_text(rm, "gets k\r\n", "END");
    let cas_new: u64 = after.lines().next().unwrap().split(' ').nth(4).unwrap().parse().unwrap();
    assert!(cas_new > cas_k, "{after}");

    // Restart the primary from its AOF: flags and CAS uniques are back.
    let _: () = redis::cmd("SHUTDOWN").query(&mut pc).unwrap_or(());
    p.wait_exit();
    let mut p2 = start(&d, &pargs);
    let mut pc2 = p2.con();
    assert_eq!(mc_text(pm, "gets k n e early\r\n", "END"), on_p_all);
    // Rewritten with an RDB preamble (flags and CAS in aux fields) and loaded again.
    let _: String = q(&mut pc2, &["BGREWRITEAOF"]);
    wait_for("rewrite done", 30, || info_field(&mut pc2, "persistence", "aof_rewrite_in_progress") == "0");
    std::thread::sleep(Duration::from_millis(200));
    let _: () = redis::cmd("SHUTDOWN").query(&mut pc2).unwrap_or(());
    p2.wait_exit();
    let p2 = start(&d, &pargs);
    let mut pc2 = p2.con();
    assert_eq!(mc_text(pm, "gets k n e early\r\n", "END"), on_p_all);
    // Rewritten as commands (no RDB preamble) and loaded again.
    let _: () = q(&mut pc2, &["CONFIG", "SET", "aof-use-rdb-preamble", "no"]);
    let _: String = q(&mut pc2, &["BGREWRITEAOF"]);
    wait_for("rewrite done", 30, || info_field(&mut pc2, "persistence", "aof_rewrite_in_progress") == "0");
    std::thread::sleep(Duration::from_millis(200));
    let _: () = redis::cmd("SHUTDOWN").query(&mut pc2).unwrap_or(());
    let mut p2 = p2;
    p2.wait_exit();
    let p3 = start(&d, &["--save", "", "--appendonly", "yes", "--memcached-port", &pm.to_string()]);
    assert_eq!(mc_text(pm, "gets k n e early\r\n", "END"), on_p_all);
    assert!(p3.log_text().contains("DB loaded from"), "{}", p3.log_text());

    // A redis-server replica keeps plain strings and sees nothing it rejects.
    if have("redis-server") {
        let rs = start_redis(&rdir, "rs.rdb").unwrap();
        let mut rsc = rs.con();
        let _: () = q(&mut rsc, &["REPLICAOF", "127.0.0.1", &p3.port.to_string()]);
        wait_for("redis link up", 30, || link_up(&mut rsc));
        mc_text(pm, "set viaredis 5 0 2\r\nok\r\nincr n 1\r\n", "9");
        let mut pc3 = p3.con();
        let _: () = q(&mut pc3, &["SET", "sync", "2"]);
        let acked: i64 = q(&mut pc3, &["WAIT", "1", "5000"]);
        assert_eq!(acked, 1);
        assert_eq!(q::<String>(&mut rsc, &["GET", "viaredis"]), "ok");
        assert_eq!(q::<String>(&mut rsc, &["GET", "n"]), "9");
        assert_eq!(q::<String>(&mut rsc, &["GET", "k"]), "hello");
        assert_eq!(
            info_field(&mut pc3, "replication", "master_repl_offset"),
            info_field(&mut rsc, "replication", "slave_repl_offset")
        );
        let log = rs.log_text();
        assert!(!log.contains("CRITICAL") && !log.contains("Error"), "{log}");
    } else {
        println!("SKIPPED (redis-server part): redis-server not on PATH");
    }
}

#[test]
fn replica_never_expires_keys_itself() {
    let d = tempdir("noexp");
    let rm = free_port();
    let p = start(&d, &["--save", ""]);
    let r = start(&d, &["--save", "", "--memcached-port", &rm.to_string()]);
    let (mut pc, mut rc) = (p.con(), r.con());
    let _: () = q(&mut rc, &["REPLICAOF", "127.0.0.1", &p.port.to_string()]);
    wait_for("link up", 30, || link_up(&mut rc));
    let _: i64 = q(&mut pc, &["RPUSH", "lst", "1", "2", "3"]);
    for (i, w) in [(1, "3"), (2, "2"), (3, "1")] {
        let _: () = q(&mut pc, &["SET", &format!("w_{i}"), w, "PX", "1500"]);
        let _: () = q(&mut pc, &["SET", &format!("o_{i}"), &format!("v{i}"), "PX", "1500"]);
    }
    let _: () = q(&mut pc, &["SET", "mk", "x", "PX", "1500"]);
    let _: () = q(&mut pc, &["SET", "stream-exp", "x", "PX", "1500"]);
    let acked: i64 = q(&mut pc, &["WAIT", "1", "5000"]);
    assert_eq!(acked, 1);
    let sorted: Vec<Option<String>> = q(&mut rc, &["SORT_RO", "lst", "BY", "w_*", "GET", "o_*"]);
    assert_eq!(sorted, vec![Some("v3".to_string()), Some("v2".into()), Some("v1".into())]);
    // The primary stops (it would expire the keys and send DELs); on the replica they are
    // logically expired: hidden from reads but not deleted.
    signal(&p, "-STOP");
    std::thread::sleep(Duration::from_millis(1700));
    let before: i64 = q(&mut rc, &["DBSIZE"]);
    assert_eq!(before, 9);
    let sorted: Vec<Option<String>> = q(&mut rc, &["SORT_RO", "lst", "BY", "w_*", "GET", "o_*"]);
    assert_eq!(sorted, vec![None, None, None]);
    assert_eq!(mc_text(rm, "get mk\r\n", "END"), "END\r\n");
    assert_eq!(mc_text(rm, "gets w_1 o_2\r\n", "END"), "END\r\n");
    let v: Option<String> = q(&mut rc, &["GET", "stream-exp"]);
    assert_eq!(v, None);
    let after: i64 = q(&mut rc, &["DBSIZE"]);
    assert_eq!(after, 9, "the replica deleted logically expired keys");
    assert_eq!(info_field(&mut rc, "stats", "expired_keys"), "0");
    signal(&p, "-CONT");
    // The primary's DELs remove them (the primary's stream sees the keys it still has).
    wait_for("primary's DELs", 30, || q::<i64>(&mut rc, &["DBSIZE"]) == 1);
    // Commands of the primary's stream apply to keys logically expired on the replica.
    let _: () = q(&mut pc, &["SET", "lazy", "1", "PX", "300"]);
    let _: i64 = q(&mut pc, &["WAIT", "1", "5000"]);
    signal(&p, "-STOP");
    std::thread::sleep(Duration::from_millis(400));
    let v: Option<String> = q(&mut rc, &["GET", "lazy"]);
    assert_eq!(v, None);
    signal(&p, "-CONT");
    let _: Option<String> = q(&mut pc, &["GET", "lazy"]);
    let _: i64 = q(&mut pc, &["WAIT", "1", "5000"]);
    assert_eq!(q::<i64>(&mut rc, &["DBSIZE"]), 1);
}

/// `replicaof host port` from the command line and `slaveof` in a config file start the node
/// as a replica once its own data is loaded.
#[test]
fn replicaof_in_the_configuration() {
    let p = common::ferrocache(&[]);
    let mut pc = p.sync();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut pc).unwrap();
    let port = p.port.to_string();
    let r1 = common::ferrocache(&["--replicaof", "127.0.0.1", &port]);
    let dir = common::temp_dir("replicaof-conf");
    let conf = dir.join("node.conf");
    std::fs::write(&conf, format!("slaveof 127.0.0.1 {port}\n")).unwrap();
    let r2 = common::ferrocache_with(Some(&conf), &[]);
    for r in [&r1, &r2] {
        let mut c = r.sync();
        let t = std::time::Instant::now();
        while redis::cmd("GET").arg("k").query::<Option<String>>(&mut c).ok().flatten().as_deref() != Some("v") {
            assert!(t.elapsed() < std::time::Duration::from_secs(20), "replica did not sync");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let role: Vec<redis::Value> = redis::cmd("ROLE").query(&mut c).unwrap();
        assert_eq!(role[0], redis::Value::BulkString(b"slave".to_vec()));
    }
    let _ = std::fs::remove_dir_all(dir);
}
