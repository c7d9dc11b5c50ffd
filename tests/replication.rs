//! End-to-end replication tests against target/debug/ferrocache: a ferrocache replica of a
//! ferrocache primary (full sync of every type, streaming, expiry propagated as DEL, partial
//! resync after CLIENT KILL TYPE master, disk-backed and diskless transfers, writes under load
//! during the sync), WAIT, READONLY, ROLE and INFO replication; and, when redis-server is on
//! PATH, ferrocache as a replica of redis-server 7.0 and redis-server as a replica of ferrocache
//! (printing SKIPPED otherwise).

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
