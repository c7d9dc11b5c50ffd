//! End-to-end replication tests against target/debug/ferrocache: a ferrocache replica of a
//! ferrocache primary (full sync of every type, streaming, expiry propagated as DEL, partial
//! resync after CLIENT KILL TYPE master, disk-backed and diskless transfers, writes under load
//! during the sync), WAIT, READONLY, ROLE and INFO replication; and, when redis-server is on
//! PATH, ferrocache as a replica of redis-server 7.0 and redis-server as a replica of ferrocache
//! (printing SKIPPED otherwise). FAILOVER (errors, TIMEOUT, FORCE, ABORT, write loads over RESP
//! and memcached with no acknowledged write lost, with redis-server in both roles),
//! min-replicas-to-write, chains and several replicas (a replica dropped past its output buffer
//! limit resyncs fully), memcached flags/CAS through replication and the AOF, and replicas that
//! never expire keys themselves. Full syncs under concurrent writes of every type (disk and
//! diskless, to ferrocache and redis-server replicas, on a fresh primary and after a promotion)
//! end with exactly the primary's dataset; a diskless transfer's stream waits for the first ACK.

mod common;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Node {
    child: Option<Child>,
    port: u16,
    log: PathBuf,
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Node {
    fn con(&self) -> redis::Connection {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port)).unwrap().get_connection().unwrap()
    }
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
    /// Wait for the process to exit (after SHUTDOWN).
    #[allow(dead_code)]
    fn wait_exit(&mut self) {
        let mut c = self.child.take().unwrap();
        let t = Instant::now();
        loop {
            if c.try_wait().unwrap().is_some() {
                return;
            }
            assert!(t.elapsed() < Duration::from_secs(20), "node did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_port(port: u16, child: &mut Child) {
    let t = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(st) = child.try_wait().unwrap() {
            panic!("server exited: {st}");
        }
        assert!(t.elapsed() < Duration::from_secs(30), "server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ferrocache-repl-{}-{}-{}", name, std::process::id(), free_port()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn start(dir: &Path, extra: &[&str]) -> Node {
    start_logging_to(dir, dir, extra)
}

fn start_logging_to(dir: &Path, logdir: &Path, extra: &[&str]) -> Node {
    let port = free_port();
    let log = logdir.join(format!("ferrocache-{port}.log"));
    let mut args: Vec<String> =
        vec!["server".into(), "--port".into(), port.to_string(), "--dir".into(), dir.display().to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrocache"))
        .args(&args)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start ferrocache");
    wait_port(port, &mut child);
    Node { child: Some(child), port, log }
}

fn have(bin: &str) -> bool {
    Command::new(bin).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

fn start_redis(dir: &Path, dbfilename: &str) -> Option<Node> {
    if !have("redis-server") {
        return None;
    }
    let port = free_port();
    let log = dir.join(format!("redis-{port}.log"));
    let mut child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--dir",
            &dir.display().to_string(),
            "--dbfilename",
            dbfilename,
            "--save",
            "",
            "--appendonly",
            "no",
            "--repl-diskless-sync-delay",
            "0",
        ])
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    wait_port(port, &mut child);
    // Wait for loading to finish.
    let n = Node { child: Some(child), port, log };
    let mut c = n.con();
    let t = Instant::now();
    while info_field(&mut c, "persistence", "loading") != "0" {
        assert!(t.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(n)
}

fn info_field(c: &mut redis::Connection, section: &str, field: &str) -> String {
    let s: String = redis::cmd("INFO").arg(section).query(c).unwrap();
    for l in s.lines() {
        if let Some(v) = l.strip_prefix(&format!("{field}:")) {
            return v.trim().to_string();
        }
    }
    panic!("no field {field} in INFO {section}: {s}")
}

fn q<T: redis::FromRedisValue>(c: &mut redis::Connection, args: &[&str]) -> T {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(c).unwrap()
}

fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(secs), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn link_up(c: &mut redis::Connection) -> bool {
    info_field(c, "replication", "master_link_status") == "up"
}

/// Every key of every database with its DUMP-independent content (type + sorted content + TTL>0).
fn snapshot(c: &mut redis::Connection) -> Vec<(i64, String, String, bool)> {
    let mut all = Vec::new();
    for db in 0..16 {
        let _: () = q(c, &["SELECT", &db.to_string()]);
        let mut keys: Vec<String> = q(c, &["KEYS", "*"]);
        keys.sort();
        for k in keys {
            let t: String = q(c, &["TYPE", &k]);
            let v = match t.as_str() {
                "string" => q::<String>(c, &["GET", &k]),
                "hash" => {
                    let mut v: Vec<String> = q(c, &["HGETALL", &k]);
                    v.sort();
                    v.join(",")
                }
                "list" => q::<Vec<String>>(c, &["LRANGE", &k, "0", "-1"]).join(","),
                "set" => {
                    let mut v: Vec<String> = q(c, &["SMEMBERS", &k]);
                    v.sort();
                    v.join(",")
                }
                "zset" => q::<Vec<String>>(c, &["ZRANGE", &k, "0", "-1", "WITHSCORES"]).join(","),
                "stream" => format!("{:?}", q::<redis::Value>(c, &["XRANGE", &k, "-", "+"])),
                other => other.to_string(),
            };
            let ttl: i64 = q(c, &["PTTL", &k]);
            all.push((db, k, v, ttl > 0));
        }
    }
    let _: () = q(c, &["SELECT", "0"]);
    all
}

fn fill_every_type(c: &mut redis::Connection, tag: &str) {
    let _: () = q(c, &["SET", &format!("s:{tag}"), "v"]);
    let _: () = q(c, &["SET", &format!("ttl:{tag}"), "v", "EX", "1000"]);
    let _: i64 = q(c, &["HSET", &format!("h:{tag}"), "a", "1", "b", "2"]);
    let _: i64 = q(c, &["RPUSH", &format!("l:{tag}"), "x", "y", "z"]);
    let _: i64 = q(c, &["SADD", &format!("set:{tag}"), "1", "2", "3"]);
    let _: i64 = q(c, &["ZADD", &format!("z:{tag}"), "1", "a", "2.5", "b"]);
    let _: String = q(c, &["XADD", &format!("x:{tag}"), "*", "f", "v"]);
    let _: i64 = q(c, &["INCRBY", &format!("n:{tag}"), "5"]);
    let _: () = q(c, &["SELECT", "7"]);
    let _: () = q(c, &["SET", &format!("db7:{tag}"), "seven"]);
    let _: () = q(c, &["SELECT", "0"]);
}

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

/// The exact error line (without '-') a command gets on a fresh connection to `n`.
fn q_err(n: &Node, args: &[&str]) -> String {
    match common::Raw::connect(n.port).cmd(args) {
        common::Reply::Error(e) => e,
        v => panic!("expected an error from {args:?}, got {v:?}"),
    }
}

/// GET for polling loops: None also while the node answers -LOADING (a replica loading a sync).
fn get_opt(c: &mut redis::Connection, key: &str) -> Option<String> {
    redis::cmd("GET").arg(key).query::<Option<String>>(c).ok().flatten()
}

fn role_name(c: &mut redis::Connection) -> String {
    info_field(c, "replication", "role")
}

fn signal(n: &Node, sig: &str) {
    let pid = n.child.as_ref().unwrap().id().to_string();
    let st = Command::new("kill").args([sig, &pid]).status().unwrap();
    assert!(st.success());
}

/// A client writing `SET fo:<n> <n>` to `port` as fast as it can (with a `WAIT 1 500` every
/// 25 writes) until told to stop or refused with READONLY. Returns the writes that were
/// answered OK.
fn write_load(
    port: u16,
    prefix: &'static str,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<Vec<u64>> {
    std::thread::spawn(move || {
        let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection().unwrap();
        let mut ok = Vec::new();
        let mut n = 0u64;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let r = redis::cmd("SET").arg(format!("{prefix}:{n}")).arg(n).query::<()>(&mut c);
            match r {
                Ok(()) => ok.push(n),
                Err(e) if e.kind() == redis::ErrorKind::ReadOnly => break,
                Err(e) => panic!("write {n}: {e}"),
            }
            if n % 25 == 24 {
                let _: i64 = q(&mut c, &["WAIT", "1", "500"]);
            }
            n += 1;
        }
        ok
    })
}

/// The same over memcached text (`set <prefix>:<n> 0 0 ...`) until SERVER_ERROR READONLY.
fn mc_write_load(port: u16, prefix: &'static str) -> std::thread::JoinHandle<Vec<u64>> {
    std::thread::spawn(move || {
        use std::io::{BufRead, Write};
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut w = s.try_clone().unwrap();
        let mut rd = std::io::BufReader::new(s);
        let mut ok = Vec::new();
        for n in 0u64.. {
            let v = n.to_string();
            w.write_all(format!("set {prefix}:{n} 3 0 {}\r\n{v}\r\n", v.len()).as_bytes()).unwrap();
            let mut line = String::new();
            rd.read_line(&mut line).unwrap();
            let r = line.trim_end();
            if r == "STORED" {
                ok.push(n);
            } else {
                assert!(r.starts_with("SERVER_ERROR READONLY"), "{r}");
                break;
            }
        }
        ok
    })
}

/// Every key a writer got OK for is on `c` with its value.
fn assert_writes_present(c: &mut redis::Connection, prefix: &str, ok: &[u64]) {
    assert!(!ok.is_empty());
    eprintln!("{prefix}: {} acknowledged writes, all present", ok.len());
    for n in ok {
        let v: Option<String> = q(c, &["GET", &format!("{prefix}:{n}")]);
        assert_eq!(v, Some(n.to_string()), "acknowledged write {prefix}:{n} lost");
    }
}

#[test]
fn failover_ferrocache_to_ferrocache() {
    let d = tempdir("fo");
    let pm = free_port();
    let p = start(&d, &["--save", "", "--memcached-port", &pm.to_string()]);
    let r1 = start(&d, &["--save", ""]);
    let r2 = start(&d, &["--save", ""]);
    let (mut pc, mut c1, mut c2) = (p.con(), r1.con(), r2.con());
    // Errors before any replica is attached (texts as redis-server 7.0).
    assert_eq!(q_err(&p, &["FAILOVER"]), "ERR FAILOVER requires connected replicas.");
    assert_eq!(q_err(&p, &["FAILOVER", "ABORT"]), "ERR No failover in progress.");
    assert_eq!(q_err(&p, &["FAILOVER", "TIMEOUT", "0"]), "ERR FAILOVER timeout must be greater than 0");
    assert_eq!(q_err(&p, &["FAILOVER", "TIMEOUT", "5", "TIMEOUT", "5"]), "ERR syntax error");
    assert_eq!(q_err(&p, &["FAILOVER", "TO", "h", "x"]), "ERR value is not an integer or out of range");
    for c in [&mut c1, &mut c2] {
        let _: () = q(c, &["REPLICAOF", "127.0.0.1", &p.port.to_string()]);
    }
    wait_for("links up", 30, || link_up(&mut c1) && link_up(&mut c2));
    wait_for("replicas online", 30, || info_field(&mut pc, "replication", "connected_slaves") == "2");
    assert_eq!(q_err(&r1, &["FAILOVER"]), "ERR FAILOVER is not valid when server is a replica.");
    assert_eq!(q_err(&p, &["FAILOVER", "TO", "127.0.0.1", "1"]), "ERR FAILOVER target HOST and PORT is not a replica.");
    assert_eq!(
        q_err(&p, &["FAILOVER", "FORCE"]),
        "ERR FAILOVER with force option requires both a timeout and target HOST and IP."
    );
    assert_eq!(info_field(&mut pc, "replication", "master_failover_state"), "no-failover");

    // A target that cannot catch up (stopped): waiting-for-sync with writes paused, then the
    // TIMEOUT aborts and the paused write goes through.
    let _: () = q(&mut pc, &["SET", "before-stop", "1"]);
    let _: i64 = q(&mut pc, &["WAIT", "2", "5000"]);
    signal(&r2, "-STOP");
    let _: () = q(&mut pc, &["SET", "r2-misses-this", "1"]);
    let r2port = r2.port.to_string();
    // A transaction queued before the pause: its EXEC (holding a write) waits too.
    let mut tx = common::Raw::connect(p.port);
    assert_eq!(tx.q("MULTI"), common::Reply::Simple("OK".into()));
    assert_eq!(tx.q("SET in-tx 1"), common::Reply::Simple("QUEUED".into()));
    let _: () = q(&mut pc, &["FAILOVER", "TO", "127.0.0.1", &r2port, "TIMEOUT", "1500"]);
    let exec = std::thread::spawn(move || {
        let t = Instant::now();
        let r = tx.q("EXEC");
        (t.elapsed(), r)
    });
    assert_eq!(info_field(&mut pc, "replication", "master_failover_state"), "waiting-for-sync");
    assert_eq!(q_err(&p, &["FAILOVER"]), "ERR FAILOVER already in progress.");
    assert_eq!(q_err(&p, &["REPLICAOF", "NO", "ONE"]), "ERR REPLICAOF not allowed while failing over.");
    let t = Instant::now();
    let _: () = q(&mut pc, &["SET", "paused-write", "1"]);
    let paused = t.elapsed();
    assert!(paused >= Duration::from_millis(1000), "write not paused: {paused:?}");
    let (exec_paused, r) = exec.join().unwrap();
    assert!(exec_paused >= Duration::from_millis(1000), "EXEC not paused: {exec_paused:?}");
    assert_eq!(format!("{r:?}"), "[+OK]");
    assert_eq!(info_field(&mut pc, "replication", "master_failover_state"), "no-failover");
    assert_eq!(role_name(&mut pc), "master");
    assert!(p.log_text().contains("aborted: Replica never caught up before timeout"), "{}", p.log_text());

    // FORCE: after the timeout the primary switches anyway (failover-in-progress while the
    // stopped target does not answer); ABORT makes it a primary again.
    let _: () = q(&mut pc, &["FAILOVER", "TO", "127.0.0.1", &r2port, "TIMEOUT", "300", "FORCE"]);
    wait_for("failover-in-progress", 10, || {
        info_field(&mut pc, "replication", "master_failover_state") == "failover-in-progress"
    });
    let _: () = q(&mut pc, &["FAILOVER", "ABORT"]);
    assert_eq!(info_field(&mut pc, "replication", "master_failover_state"), "no-failover");
    assert_eq!(role_name(&mut pc), "master");
    let _: () = q(&mut pc, &["SET", "after-abort", "1"]);
    signal(&r2, "-CONT");
    wait_for("r2 back", 30, || link_up(&mut c2));
    wait_for("replicas online", 30, || info_field(&mut pc, "replication", "connected_slaves") == "2");
    let acked: i64 = q(&mut pc, &["WAIT", "2", "5000"]);
    assert_eq!(acked, 2);

    // The real thing under a write load: every write answered OK is on the new primary.
    // A client blocked on a key is unblocked with an error and disconnected (Redis's
    // disconnectAllBlockedClients when the node becomes a replica).
    let mut blocked = common::Raw::connect(p.port);
    blocked.set_timeout(Duration::from_secs(30));
    blocked.send_cmd(&["BLPOP", "nothing-here", "0"]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let w = write_load(p.port, "fo", stop.clone());
    let mw = mc_write_load(pm, "mcfo");
    std::thread::sleep(Duration::from_millis(500));
    let _: () = q(&mut pc, &["FAILOVER", "TO", "127.0.0.1", &r1.port.to_string()]);
    wait_for("r1 promoted", 30, || role_name(&mut c1) == "master");
    let ok = w.join().unwrap();
    let mc_ok = mw.join().unwrap();
    assert_eq!(
        blocked.read(),
        common::Reply::Error(
            "UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)".into()
        )
    );
    assert!(blocked.closed());
    wait_for("old primary follows r1", 30, || role_name(&mut pc) == "slave" && link_up(&mut pc));
    assert_eq!(info_field(&mut pc, "replication", "master_port"), r1.port.to_string());
    assert_eq!(info_field(&mut pc, "replication", "master_failover_state"), "no-failover");
    assert!(p.log_text().contains("Successful partial resynchronization with master."), "{}", p.log_text());
    assert!(r1.log_text().contains("MASTER MODE enabled (failover request from"));
    assert_writes_present(&mut c1, "fo", &ok);
    assert_writes_present(&mut c1, "mcfo", &mc_ok);
    let e = redis::cmd("SET").arg("k").arg("v").query::<()>(&mut pc).unwrap_err();
    assert_eq!(e.kind(), redis::ErrorKind::ReadOnly);
    let _: () = q(&mut c1, &["SET", "on-new-primary", "1"]);
    let acked: i64 = q(&mut c1, &["WAIT", "1", "5000"]);
    assert_eq!(acked, 1);
    // r2 follows the old primary (now a replica of r1): everyone has the same data.
    wait_for("r2 converges", 30, || link_up(&mut c2) && get_opt(&mut c2, "on-new-primary").is_some());
    let s1 = snapshot(&mut c1);
    assert_eq!(s1, snapshot(&mut pc));
    assert_eq!(s1, snapshot(&mut c2));

    // And back, to any replica (the old primary is r1's only one).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let w = write_load(r1.port, "back", stop.clone());
    std::thread::sleep(Duration::from_millis(300));
    let _: () = q(&mut c1, &["FAILOVER"]);
    wait_for("p promoted again", 30, || role_name(&mut pc) == "master");
    let ok = w.join().unwrap();
    assert_writes_present(&mut pc, "back", &ok);
    wait_for("r1 follows p", 30, || role_name(&mut c1) == "slave" && link_up(&mut c1));
    let _: () = q(&mut pc, &["SET", "final", "1"]);
    let _: i64 = q(&mut pc, &["WAIT", "1", "5000"]);
    wait_for("r2 converges", 30, || get_opt(&mut c2, "final").is_some());
    let s = snapshot(&mut pc);
    assert_eq!(s, snapshot(&mut c1));
    assert_eq!(s, snapshot(&mut c2));
}

#[test]
fn failover_with_redis_server() {
    if !have("redis-server") {
        println!("SKIPPED: redis-server not on PATH");
        return;
    }
    // ferrocache primary, redis-server target.
    let d = tempdir("for");
    let p = start(&d, &["--save", ""]);
    let r = start_redis(&d, "r.rdb").unwrap();
    let (mut pc, mut rc) = (p.con(), r.con());
    fill_every_type(&mut pc, "x");
    let _: () = q(&mut rc, &["REPLICAOF", "127.0.0.1", &p.port.to_string()]);
    wait_for("link up", 30, || link_up(&mut rc));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let w = write_load(p.port, "fr", stop.clone());
    std::thread::sleep(Duration::from_millis(500));
    let _: () = q(&mut pc, &["FAILOVER", "TO", "127.0.0.1", &r.port.to_string()]);
    wait_for("redis promoted", 30, || role_name(&mut rc) == "master");
    let ok = w.join().unwrap();
    assert_writes_present(&mut rc, "fr", &ok);
    wait_for("ferrocache follows", 30, || role_name(&mut pc) == "slave" && link_up(&mut pc));
    assert!(p.log_text().contains("Successful partial resynchronization with master."), "{}", p.log_text());
    let _: () = q(&mut rc, &["SET", "on-redis", "1"]);
    let acked: i64 = q(&mut rc, &["WAIT", "1", "5000"]);
    assert_eq!(acked, 1);
    assert_eq!(snapshot(&mut rc), snapshot(&mut pc));

    // redis-server primary, ferrocache target (the roles are now the other way round).
    let w = write_load(r.port, "rf", stop.clone());
    std::thread::sleep(Duration::from_millis(500));
    let _: () = q(&mut rc, &["FAILOVER", "TO", "127.0.0.1", &p.port.to_string()]);
    wait_for("ferrocache promoted", 30, || role_name(&mut pc) == "master");
    let ok = w.join().unwrap();
    assert_writes_present(&mut pc, "rf", &ok);
    wait_for("redis follows", 30, || role_name(&mut rc) == "slave" && link_up(&mut rc));
    assert!(r.log_text().contains("Successful partial resynchronization with master."), "{}", r.log_text());
    let _: () = q(&mut pc, &["SET", "on-ferro", "1"]);
    let acked: i64 = q(&mut pc, &["WAIT", "1", "5000"]);
    assert_eq!(acked, 1);
    assert_eq!(snapshot(&mut pc), snapshot(&mut rc));
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

fn offset_of(c: &mut redis::Connection, field: &str) -> u64 {
    info_field(c, "replication", field).parse().unwrap()
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

/// One memcached text exchange: send `req`, read until a line equal to `end`.
fn mc_text(port: u16, req: &str, end: &str) -> String {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    let mut b = [0u8; 4096];
    while !out.ends_with(format!("{end}\r\n").as_bytes()) {
        let n = s.read(&mut b).unwrap();
        assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&out));
        out.extend_from_slice(&b[..n]);
    }
    String::from_utf8(out).unwrap()
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
