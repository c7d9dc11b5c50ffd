//! FAILOVER end to end: errors, TIMEOUT, FORCE, ABORT, and write loads over RESP and memcached
//! with no acknowledged write lost, between ferrocache nodes and with redis-server in both
//! roles (printing SKIPPED when it is not on PATH). Helpers: tests/common/repl.rs.

mod common;
#[path = "common/repl.rs"]
mod repl;

use common::free_port;
use common::node::{have, info_field, q, wait_for};
use repl::*;
use std::net::TcpStream;
use std::time::{Duration, Instant};

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
