//! Replicas and failover in cluster mode, in mixed clusters of ferrocache and redis-server 7.0
//! nodes built with redis-cli --cluster (create, add-node --cluster-slave, check): a killed
//! master's replica is elected by the other masters' votes (ferrocache replica of a redis master
//! with ferrocache and redis voters, and the other way round) and no WAIT-acknowledged write is
//! lost; a restarted old master rejoins as a replica of the node that took its slots (UPDATE);
//! CLUSTER FAILOVER (the MFSTART handshake) and CLUSTER FAILOVER TAKEOVER on a ferrocache
//! replica.

mod common;

use common::{Raw, Reply, ServerProc};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const NODE_TIMEOUT: &str = "2000";

struct Node {
    proc: ServerProc,
    redis: bool,
    dir: PathBuf,
}

fn spawn(redis: bool, port: u16, dir: &PathBuf) -> Option<ServerProc> {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("log")).unwrap();
    let mut cmd = if redis {
        let mut c = Command::new("redis-server");
        c.args(["--appendonly", "no"]);
        c
    } else {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ferrocache"));
        c.arg("server");
        c
    };
    let child = cmd
        .args(["--port", &port.to_string(), "--cluster-enabled", "yes", "--save", ""])
        .args(["--cluster-node-timeout", NODE_TIMEOUT])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let mut p = ServerProc { child, port, dir: None, name: if redis { "redis-server" } else { "ferrocache" } };
    common::listening_within(port, &mut p.child, Duration::from_secs(10));
    p.alive().then_some(p)
}

fn start(redis: bool) -> Node {
    loop {
        let port = common::port_pair();
        let dir = common::temp_dir("cluster-fo");
        if let Some(proc) = spawn(redis, port, &dir) {
            return Node { proc, redis, dir };
        }
    }
}

fn cli(args: &[&str]) -> String {
    let o = Command::new("redis-cli").args(args).output().unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

/// `redis-cli --cluster create` of `nodes` (with `extra` options), which must cover every slot.
fn create_cluster<'a>(nodes: impl IntoIterator<Item = &'a Node>, extra: &[&str]) {
    let addrs: Vec<String> = nodes.into_iter().map(|n| n.proc.addr()).collect();
    let mut args = vec!["--cluster", "create"];
    args.extend(addrs.iter().map(|s| s.as_str()));
    args.extend(extra);
    args.push("--cluster-yes");
    let out = cli(&args);
    assert!(out.contains("[OK] All 16384 slots covered"), "{out}");
}

fn myid(port: u16) -> String {
    Raw::connect(port).q("CLUSTER MYID").as_str()
}

/// ROLE: ("master", None) or ("slave", Some((master port, link state))).
fn role(port: u16) -> (String, Option<(u16, String)>) {
    let r = Raw::connect(port).q("ROLE");
    let it = r.items();
    let kind = it[0].as_str();
    if kind == "slave" {
        (kind, Some((it[2].as_int() as u16, it[3].as_str())))
    } else {
        (kind, None)
    }
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    t.elapsed()
}

fn cluster_ok(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        && Raw::connect(port).q("CLUSTER INFO").as_str().contains("cluster_state:ok")
}

/// Write `n` keys through the slot owners (CLUSTER KEYSLOT + CLUSTER SLOTS from `seed`).
fn write_keys(seed: u16, n: usize) -> HashMap<String, String> {
    let mut c = Raw::connect(seed);
    let slots = c.q("CLUSTER SLOTS");
    let owners: Vec<(i64, i64, u16)> = slots
        .items()
        .iter()
        .map(|r| {
            let it = r.items();
            (it[0].as_int(), it[1].as_int(), it[2].items()[1].as_int() as u16)
        })
        .collect();
    let mut conns: HashMap<u16, Raw> = HashMap::new();
    let mut written = HashMap::new();
    for i in 0..n {
        let (k, v) = (format!("key:{i}"), format!("value-{i}"));
        let slot = c.cmd(&["CLUSTER", "KEYSLOT", &k]).as_int();
        let port = owners.iter().find(|(a, b, _)| (*a..=*b).contains(&slot)).unwrap().2;
        let conn = conns.entry(port).or_insert_with(|| Raw::connect(port));
        let reply = conn.cmd(&["SET", &k, &v]);
        if reply != Reply::Simple("OK".into()) {
            let nodes = conn.q("CLUSTER NODES").as_str();
            let info = conn.q("CLUSTER INFO").as_str();
            panic!("SET {k} on {port}: {reply:?}\n{nodes}\n{info}");
        }
        written.insert(k, v);
    }
    // Acknowledged by the replicas (WAIT), as a client that must not lose them would ask.
    for (port, conn) in conns.iter_mut() {
        assert_eq!(conn.cmd(&["WAIT", "1", "5000"]), Reply::Int(1), "WAIT on {port}");
    }
    written
}

/// Every key reads back with its value, following MOVED from `seed`.
fn check_keys(seed: u16, keys: &HashMap<String, String>) {
    let mut conns: HashMap<u16, Raw> = HashMap::new();
    for (k, v) in keys {
        let mut port = seed;
        for _ in 0..3 {
            let conn = conns.entry(port).or_insert_with(|| Raw::connect(port));
            match conn.cmd(&["GET", k]) {
                Reply::Error(e) if e.starts_with("MOVED") => {
                    port = e.rsplit(':').next().unwrap().parse().unwrap();
                }
                r => {
                    assert_eq!(r.as_str(), *v, "{k} on {port}");
                    break;
                }
            }
        }
    }
}

/// Kill a master; its replica must be elected and serve the master's slots with every
/// acknowledged key. Returns the time from the kill to the replica's promotion.
fn fail_over(master: &mut Node, replica: u16, survivor: u16, live: &[u16], keys: &HashMap<String, String>) -> Duration {
    let _ = master.proc.child.kill();
    let _ = master.proc.child.wait();
    let t = wait_until("replica promoted", Duration::from_secs(20), || role(replica).0 == "master");
    // Every live node learns the new owner (until then a node may still answer CLUSTERDOWN, as
    // Redis does; clients retry): only then are the keys read through MOVED.
    for &p in live {
        wait_until("cluster ok again", Duration::from_secs(20), || cluster_ok(p));
    }
    let nodes = Raw::connect(survivor).q("CLUSTER NODES").as_str();
    let me = myid(replica);
    let line = nodes.lines().find(|l| l.starts_with(&me)).unwrap();
    assert!(line.contains(" master ") && line.split(' ').count() > 8, "{line}");
    check_keys(survivor, keys);
    t
}

#[test]
fn mixed_cluster_failover_both_ways_and_manual() {
    if common::which("redis-cli").is_none() || common::which("redis-server").is_none() {
        eprintln!("SKIPPED: redis-cli / redis-server are not on PATH");
        return;
    }
    // Masters: ferrocache, redis-server, ferrocache. Replicas: redis of M0, ferrocache of M1,
    // ferrocache of M2.
    let mut m = [start(false), start(true), start(false)];
    let r = [start(true), start(false), start(false)];
    create_cluster(&m, &[]);
    for (master, replica) in m.iter().zip(r.iter()) {
        let id = myid(master.proc.port);
        let out = cli(&[
            "--cluster",
            "add-node",
            &replica.proc.addr(),
            &master.proc.addr(),
            "--cluster-slave",
            "--cluster-master-id",
            &id,
        ]);
        assert!(out.contains("[OK] New node added correctly"), "{out}");
    }
    for (master, replica) in m.iter().zip(r.iter()) {
        let mp = master.proc.port;
        wait_until("replica linked", Duration::from_secs(30), || {
            role(replica.proc.port).1 == Some((mp, "connected".into()))
        });
    }
    for n in m.iter().chain(r.iter()) {
        wait_until("cluster ok", Duration::from_secs(30), || cluster_ok(n.proc.port));
    }
    let keys = write_keys(m[0].proc.port, 300);

    // A ferrocache replica takes over a killed redis-server master (votes: two ferrocache masters).
    let survivor = m[0].proc.port;
    let live: Vec<u16> = [&m[0], &m[2], &r[0], &r[1], &r[2]].iter().map(|n| n.proc.port).collect();
    let t1 = fail_over(&mut m[1], r[1].proc.port, survivor, &live, &keys);
    eprintln!("ferrocache replica of redis-server promoted after {t1:?}");
    // A redis-server replica takes over a killed ferrocache master (votes: ferrocache masters).
    let survivor = m[2].proc.port;
    let live: Vec<u16> = [&m[2], &r[0], &r[1], &r[2]].iter().map(|n| n.proc.port).collect();
    let t0 = fail_over(&mut m[0], r[0].proc.port, survivor, &live, &keys);
    eprintln!("redis-server replica of ferrocache promoted after {t0:?}");
    for t in [t0, t1] {
        assert!(t < Duration::from_secs(12), "failover took {t:?} (node timeout {NODE_TIMEOUT} ms)");
    }

    // The old ferrocache master comes back: it learns its slots moved and replicates the node
    // that took them.
    let (port, dir) = (m[0].proc.port, m[0].dir.clone());
    m[0].proc = spawn(m[0].redis, port, &dir).expect("restart the old master");
    let new_master = r[0].proc.port;
    wait_until("old master rejoins as a replica", Duration::from_secs(30), || {
        role(port).1 == Some((new_master, "connected".into()))
    });

    // Manual failover of a ferrocache replica of a ferrocache master: the roles swap.
    let (mp, rp) = (m[2].proc.port, r[2].proc.port);
    assert_eq!(Raw::connect(rp).q("CLUSTER FAILOVER"), Reply::Simple("OK".into()));
    wait_until("manual failover", Duration::from_secs(15), || {
        role(rp).0 == "master" && role(mp).1 == Some((rp, "connected".into()))
    });
    // TAKEOVER back, without the master's agreement.
    assert_eq!(Raw::connect(mp).q("CLUSTER FAILOVER TAKEOVER"), Reply::Simple("OK".into()));
    wait_until("takeover", Duration::from_secs(15), || role(mp).0 == "master" && role(rp).0 == "slave");
    for p in [mp, rp, r[1].proc.port, r[0].proc.port, port] {
        wait_until("cluster ok at the end", Duration::from_secs(20), || cluster_ok(p));
    }
    check_keys(mp, &keys);
    let check = cli(&["--cluster", "check", &format!("127.0.0.1:{mp}")]);
    assert!(check.contains("[OK] All nodes agree about slots configuration."), "{check}");
    assert!(check.contains("[OK] All 16384 slots covered."), "{check}");
    // Errors as Redis: FAILOVER on a master, REPLICATE of a replica, REPLICAOF in cluster mode.
    let mut c = Raw::connect(mp);
    assert_eq!(c.q("CLUSTER FAILOVER").as_str(), "ERR You should send CLUSTER FAILOVER to a replica");
    // Redis checks the target's role (as this node knows it) before its own slots.
    let replica_id = myid(rp);
    wait_until("the master sees its replica as one", Duration::from_secs(15), || {
        Raw::connect(mp)
            .q("CLUSTER NODES")
            .as_str()
            .lines()
            .any(|l| l.starts_with(&replica_id) && l.contains(" slave "))
    });
    assert_eq!(
        c.cmd(&["CLUSTER", "REPLICATE", &replica_id]).as_str(),
        "ERR I can only replicate a master, not a replica."
    );
    let other_master = myid(r[0].proc.port);
    assert_eq!(
        c.cmd(&["CLUSTER", "REPLICATE", &other_master]).as_str(),
        "ERR To set a master the node must be empty and without assigned slots."
    );
    assert_eq!(c.q("REPLICAOF 127.0.0.1 1").as_str(), "ERR REPLICAOF not allowed in cluster mode.");
    assert_eq!(c.q("CLUSTER FAILOVER NOW").as_str(), "ERR syntax error");
    for n in m.iter().chain(r.iter()) {
        let _ = std::fs::remove_dir_all(&n.dir);
    }
}

/// `redis-cli --cluster create --cluster-replicas 1` over six ferrocache nodes: three masters,
/// each with a replica linked to it, and `--cluster check` agrees.
#[test]
fn redis_cli_create_with_replicas() {
    if common::which("redis-cli").is_none() {
        eprintln!("SKIPPED: redis-cli is not on PATH");
        return;
    }
    let nodes: Vec<Node> = (0..6).map(|_| start(false)).collect();
    create_cluster(&nodes, &["--cluster-replicas", "1"]);
    let mut masters = 0;
    for n in &nodes {
        wait_until("cluster ok", Duration::from_secs(30), || cluster_ok(n.proc.port));
        wait_until("replica linked", Duration::from_secs(30), || match role(n.proc.port) {
            (k, _) if k == "master" => true,
            (_, Some((_, link))) => link == "connected",
            _ => false,
        });
        masters += (role(n.proc.port).0 == "master") as usize;
    }
    assert_eq!(masters, 3);
    let check = cli(&["--cluster", "check", &nodes[0].proc.addr()]);
    assert!(check.contains("[OK] All nodes agree about slots configuration."), "{check}");
    assert_eq!(check.matches("1 additional replica(s)").count(), 3, "{check}");
    for n in &nodes {
        let _ = std::fs::remove_dir_all(&n.dir);
    }
}

/// A master that loses a slot to a newer claim while it still holds keys in it deletes them
/// (Redis's dirty slots, delKeysInSlot) and keeps its other slots' keys; redis-server as the
/// losing master does the same. The claim comes from a redis-server or ferrocache node that
/// bumped its epoch and took the slot with CLUSTER SETSLOT ... NODE.
#[test]
fn master_losing_a_slot_deletes_its_keys() {
    if common::which("redis-cli").is_none() || common::which("redis-server").is_none() {
        eprintln!("SKIPPED: redis-cli or redis-server is not on PATH");
        return;
    }
    for loser_is_redis in [false, true] {
        let nodes = [start(loser_is_redis), start(!loser_is_redis), start(false)];
        create_cluster(&nodes, &[]);
        let (a, b) = (nodes[0].proc.port, nodes[1].proc.port);
        for n in &nodes {
            wait_until("cluster ok", Duration::from_secs(30), || cluster_ok(n.proc.port));
        }
        // Keys in two of A's slots (A serves 0-5460), by hash tags found for them.
        let mut ca = Raw::connect(a);
        let tag = |slot: u16| (0..).map(|i| format!("t{i}")).find(|t| key_slot(t.as_bytes()) == slot).unwrap();
        let (lost, kept) = (tag(100), tag(200));
        for i in 0..20 {
            assert_eq!(ca.cmd(&["SET", &format!("{{{lost}}}:{i}"), "v"]), Reply::Simple("OK".into()));
            assert_eq!(ca.cmd(&["SET", &format!("{{{kept}}}:{i}"), "v"]), Reply::Simple("OK".into()));
        }
        let mut cb = Raw::connect(b);
        assert_eq!(cb.cmd(&["CLUSTER", "BUMPEPOCH"]).as_str().split(' ').next(), Some("BUMPED"));
        let bid = myid(b);
        assert_eq!(cb.cmd(&["CLUSTER", "SETSLOT", "100", "NODE", &bid]), Reply::Simple("OK".into()));
        let kind = if loser_is_redis { "redis-server" } else { "ferrocache" };
        wait_until(&format!("{kind} dropped slot 100's keys"), Duration::from_secs(20), || {
            Raw::connect(a).cmd(&["CLUSTER", "COUNTKEYSINSLOT", "100"]) == Reply::Int(0)
        });
        assert_eq!(ca.cmd(&["CLUSTER", "COUNTKEYSINSLOT", "200"]), Reply::Int(20), "{kind}");
        assert_eq!(ca.cmd(&["DBSIZE"]), Reply::Int(20), "{kind}");
        let moved = ca.cmd(&["GET", &format!("{{{lost}}}:0")]);
        assert_eq!(moved, Reply::Error(format!("MOVED 100 127.0.0.1:{b}")), "{kind}");
        for n in &nodes {
            let _ = std::fs::remove_dir_all(&n.dir);
        }
    }
}

/// Redis's keyHashSlot of a key without a hash tag (CRC16/XMODEM mod 16384).
fn key_slot(key: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in key {
        crc ^= (b as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc & 0x3FFF
}
