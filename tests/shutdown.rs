//! Stops and restarts: SIGTERM / SIGINT and SHUTDOWN behave as redis-server 7.0's (final RDB,
//! AOF fsync, waiting for lagging replicas, a failed save aborts unless FORCE, ABORT), and a
//! node always comes back from what it wrote (memcached items with flags and CAS, big strings).
//! Each test runs its own nodes on a fresh `--dir`, kills or signals them, and restarts them on
//! the same directory.

mod common;

use common::{free_port, temp_dir, wait_ready_within, Raw, Reply};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

struct Node {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    /// A node on `dir` (logging to dir/node-PORT.log), ready to answer PING with PONG.
    fn start(dir: &Path, extra: &[&str]) -> Node {
        let port = free_port();
        let log = dir.join(format!("node-{}.log", port));
        let child = Command::new(env!("CARGO_BIN_EXE_ferrocache"))
            .arg("server")
            .args(["--port", &port.to_string(), "--dir"])
            .arg(dir)
            .arg("--logfile")
            .arg(&log)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ferrocache");
        let mut n = Node { child, port, dir: dir.to_path_buf() };
        let (d, p) = (n.dir.clone(), n.port);
        let log = move || std::fs::read_to_string(d.join(format!("node-{}.log", p))).unwrap_or_default();
        wait_ready_within(n.port, &mut n.child, Duration::from_secs(30), &log);
        n
    }
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join(format!("node-{}.log", self.port))).unwrap_or_default()
    }
    fn raw(&self) -> Raw {
        Raw::connect(self.port)
    }
    fn signal(&self, sig: &str) {
        let st = Command::new("kill").args([&format!("-{}", sig), &self.child.id().to_string()]).status().unwrap();
        assert!(st.success());
    }
    fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let t = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(t.elapsed() < limit, "node did not exit within {:?}: {}", limit, self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    fn still_running_after(&mut self, d: Duration) -> bool {
        std::thread::sleep(d);
        self.child.try_wait().unwrap().is_none()
    }
}

fn bulk(r: &Reply) -> Option<Vec<u8>> {
    r.as_bytes().map(|b| b.to_vec())
}

fn fill(c: &mut Raw, n: usize, prefix: &str) {
    let mut buf = Vec::new();
    for i in 0..n {
        buf.extend_from_slice(&common::encode(&[
            "SET".to_string(),
            format!("{}{}", prefix, i),
            format!("value-{}", i),
        ]));
    }
    c.send(&buf);
    for _ in 0..n {
        assert_eq!(c.read().as_str(), "OK");
    }
}

fn check(c: &mut Raw, n: usize, prefix: &str) {
    for i in 0..n {
        let v = c.cmd(&["GET".to_string(), format!("{}{}", prefix, i)]);
        assert_eq!(bulk(&v), Some(format!("value-{}", i).into_bytes()), "key {}{} lost", prefix, i);
    }
}

/// SIGTERM with `extra` persistence settings: the node logs Redis's lines, exits 0, and a node
/// started on the same directory has every key back.
fn sigterm_keeps_every_key(extra: &[&str], expect_in_log: &[&str]) {
    let dir = temp_dir("sigterm");
    let mut a = Node::start(&dir, extra);
    let mut c = a.raw();
    fill(&mut c, 2000, "k:");
    a.signal("TERM");
    let st = a.wait_exit(Duration::from_secs(20));
    assert!(st.success(), "exit status {}: {}", st, a.log());
    let log = a.log();
    if let Some(i) = extra.iter().position(|a| *a == "--pidfile") {
        assert!(!Path::new(extra[i + 1]).exists(), "the pidfile is left behind");
    }
    for line in ["Received SIGTERM scheduling shutdown...", "User requested shutdown...", "ready to exit, bye bye"]
        .iter()
        .chain(expect_in_log)
    {
        assert!(log.contains(line), "log lacks {:?}:\n{}", line, log);
    }
    let b = Node::start(&dir, extra);
    let mut c = b.raw();
    assert_eq!(c.q("DBSIZE").as_int(), 2000);
    check(&mut c, 2000, "k:");
    drop(b);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigterm_saves_the_final_rdb() {
    let pidfile = std::env::temp_dir().join(format!("ferro-pid-{}", free_port()));
    let p = pidfile.to_str().unwrap();
    sigterm_keeps_every_key(
        &["--pidfile", p],
        &["Saving the final RDB snapshot before exiting.", "Removing the pid file."],
    );
    let _ = std::fs::remove_file(&pidfile);
}

#[test]
fn sigterm_fsyncs_the_aof() {
    sigterm_keeps_every_key(
        &["--save", "", "--appendonly", "yes", "--appendfsync", "everysec"],
        &["Calling fsync() on the AOF file."],
    );
}

#[test]
fn sigterm_with_rdb_and_aof() {
    sigterm_keeps_every_key(
        &["--appendonly", "yes", "--appendfsync", "no"],
        &["Calling fsync() on the AOF file.", "Saving the final RDB snapshot before exiting."],
    );
}

#[test]
fn sigint_shuts_down_like_sigterm_and_shutdown_on_sigterm_nosave_skips_the_save() {
    let dir = temp_dir("sigint");
    let mut a = Node::start(&dir, &[]);
    fill(&mut a.raw(), 100, "i:");
    a.signal("INT");
    assert!(a.wait_exit(Duration::from_secs(20)).success());
    assert!(a.log().contains("Received SIGINT scheduling shutdown..."), "{}", a.log());
    assert!(dir.join("dump.rdb").exists());
    std::fs::remove_file(dir.join("dump.rdb")).unwrap();

    let mut b = Node::start(&dir, &["--shutdown-on-sigterm", "nosave"]);
    assert_eq!(b.raw().q("CONFIG GET shutdown-on-sigterm").items()[1].as_str(), "nosave");
    fill(&mut b.raw(), 100, "i:");
    b.signal("TERM");
    assert!(b.wait_exit(Duration::from_secs(20)).success());
    assert!(!dir.join("dump.rdb").exists(), "shutdown-on-sigterm nosave saved anyway");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn shutdown_options_and_errors() {
    let dir = temp_dir("shutdown-opts");
    let mut a = Node::start(&dir, &[]);
    let mut c = a.raw();
    assert_eq!(c.q("SHUTDOWN ABORT").as_str(), "ERR No shutdown in progress.");
    assert_eq!(c.q("SHUTDOWN SAVE NOSAVE").as_str(), "ERR syntax error");
    assert_eq!(c.q("SHUTDOWN ABORT NOW").as_str(), "ERR syntax error");
    assert_eq!(c.q("SHUTDOWN FOO").as_str(), "ERR syntax error");
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "shutdown-on-sigint", "save nosave"]).as_str(),
        "ERR CONFIG SET failed (possibly related to argument 'shutdown-on-sigint') - shutdown options SAVE and NOSAVE can't be used simultaneously"
    );
    assert_eq!(c.cmd(&["CONFIG", "SET", "shutdown-on-sigint", "NOW nosave"]).as_str(), "OK");
    assert_eq!(c.q("CONFIG GET shutdown-on-sigint").items()[1].as_str(), "nosave now");
    assert_eq!(
        c.q("CONFIG SET dir /tmp").as_str(),
        "ERR CONFIG SET failed (possibly related to argument 'dir') - can't set protected config"
    );
    assert_eq!(c.q("CONFIG SET shutdown-timeout 3").as_str(), "OK");
    // A failed final save (the RDB's name is taken by a directory) aborts the shutdown...
    std::fs::create_dir(dir.join("dump.rdb")).unwrap();
    fill(&mut c, 10, "s:");
    assert_eq!(c.q("SHUTDOWN").as_str(), "ERR Errors trying to SHUTDOWN. Check logs.");
    assert!(a.still_running_after(Duration::from_millis(300)));
    assert_eq!(c.q("GET s:1").as_str(), "value-1");
    assert!(a.log().contains("Error trying to save the DB, can't exit."), "{}", a.log());
    // ... unless FORCE.
    c.send_cmd(&["SHUTDOWN", "FORCE"]);
    assert!(a.wait_exit(Duration::from_secs(10)).success());
    assert!(a.log().contains("Error trying to save the DB. Exit anyway."), "{}", a.log());
    let _ = std::fs::remove_dir_all(&dir);
}

fn wait_until(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < limit, "timed out waiting for {}", what);
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn info_field(c: &mut Raw, section: &str, field: &str) -> String {
    let info = c.cmd(&["INFO", section]).as_str();
    info.lines().find_map(|l| l.strip_prefix(&format!("{}:", field)).map(|v| v.trim().to_string())).unwrap_or_default()
}

/// A primary with one replica in sync.
fn primary_and_replica(dir: &Path) -> (Node, Node) {
    let p = Node::start(&dir.join("p"), &["--save", ""]);
    let r = Node::start(&dir.join("r"), &["--save", "", "--replicaof", "127.0.0.1", &p.port.to_string()]);
    let mut rc = r.raw();
    wait_until(Duration::from_secs(20), "replica link up", || {
        info_field(&mut rc, "replication", "master_link_status") == "up"
    });
    (p, r)
}

fn temp_dir_pr(tag: &str) -> PathBuf {
    let d = temp_dir(tag);
    std::fs::create_dir_all(d.join("p")).unwrap();
    std::fs::create_dir_all(d.join("r")).unwrap();
    d
}

/// 20 MB of writes the stopped replica cannot take yet: more than the sockets buffer, so
/// without waiting for it the primary would exit with them unsent.
fn big_writes(c: &mut Raw) {
    let v = "x".repeat(100_000);
    let mut buf = Vec::new();
    for i in 0..200 {
        buf.extend_from_slice(&common::encode(&["SET", &format!("big:{}", i), &v]));
    }
    c.send(&buf);
    for _ in 0..200 {
        assert_eq!(c.read().as_str(), "OK");
    }
}

#[test]
fn sigterm_waits_for_a_lagging_replica() {
    let dir = temp_dir_pr("lagging");
    let (mut p, r) = primary_and_replica(&dir);
    r.signal("STOP");
    let mut pc = p.raw();
    big_writes(&mut pc);
    p.signal("TERM");
    // The primary waits (shutdown-timeout 10 s) for the replica it cannot reach now.
    assert!(p.still_running_after(Duration::from_millis(1500)), "exited without its replica: {}", p.log());
    assert!(p.log().contains("Waiting for replicas before shutting down."), "{}", p.log());
    r.signal("CONT");
    assert!(p.wait_exit(Duration::from_secs(15)).success());
    assert!(p.log().contains("1 of 1 replicas are in sync when shutting down."), "{}", p.log());
    let mut rc = r.raw();
    for i in 0..200 {
        let v = rc.cmd(&["STRLEN".to_string(), format!("big:{}", i)]);
        assert_eq!(v.as_int(), 100_000, "the replica lacks big:{}", i);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn shutdown_abort_while_waiting_for_a_replica() {
    let dir = temp_dir_pr("abort");
    let (mut p, r) = primary_and_replica(&dir);
    r.signal("STOP");
    let mut pc = p.raw();
    big_writes(&mut pc);
    let mut waiter = p.raw();
    waiter.send_cmd(&["SHUTDOWN"]);
    std::thread::sleep(Duration::from_millis(500));
    // Writes are paused while it waits; reads go on.
    let mut other = p.raw();
    assert_eq!(other.q("GET big:0").as_bytes().map(|b| b.len()), Some(100_000));
    assert_eq!(other.q("SHUTDOWN ABORT").as_str(), "OK");
    assert_eq!(waiter.read().as_str(), "ERR Errors trying to SHUTDOWN. Check logs.");
    assert_eq!(other.q("SET after abort").as_str(), "OK");
    assert!(p.still_running_after(Duration::from_millis(200)));
    r.signal("CONT");
    // shutdown-timeout passes with a replica that stays behind: exit anyway, logging it.
    r.signal("STOP");
    big_writes(&mut pc);
    assert_eq!(other.q("CONFIG SET shutdown-timeout 1").as_str(), "OK");
    other.send_cmd(&["SHUTDOWN"]);
    assert!(p.wait_exit(Duration::from_secs(10)).success());
    assert!(p.log().contains("Lagging replica"), "{}", p.log());
    r.signal("CONT");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn shutdown_nosave_while_a_script_is_busy_exits() {
    let dir = temp_dir("busy");
    let mut a = Node::start(&dir, &["--busy-reply-threshold", "100"]);
    let mut s = a.raw();
    s.send_cmd(&["EVAL", "while true do end", "0"]);
    std::thread::sleep(Duration::from_millis(300));
    let mut c = a.raw();
    assert!(c.q("SHUTDOWN").as_str().starts_with("BUSY"), "plain SHUTDOWN must be refused while busy");
    c.send_cmd(&["SHUTDOWN", "NOSAVE"]);
    let st = a.wait_exit(Duration::from_secs(10));
    assert!(st.success(), "{}", st);
    let _ = std::fs::remove_dir_all(&dir);
}

// ------------------------------------------------------------------ restarts

fn mc_cmd(s: &mut TcpStream, r: &mut BufReader<TcpStream>, cmd: &[u8], lines: usize) -> Vec<String> {
    s.write_all(cmd).unwrap();
    let mut out = Vec::new();
    for _ in 0..lines {
        let mut l = String::new();
        r.read_line(&mut l).unwrap();
        out.push(l.trim_end().to_string());
    }
    out
}

/// The data-safety issue's hang: memcached items (flags, CAS) next to big strings, saved at
/// SHUTDOWN, then a restart (RDB, and an AOF whose base was rewritten) must finish loading and
/// give back every item with its flags and CAS unique.
fn memcached_items_survive_restart(extra: &[&str]) {
    let dir = temp_dir("mc-restart");
    let mcport = free_port().to_string();
    let mut args: Vec<&str> = vec!["--memcached-port", &mcport];
    args.extend_from_slice(extra);
    let mut a = Node::start(&dir, &args);
    let mut s = TcpStream::connect(("127.0.0.1", mcport.parse::<u16>().unwrap())).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    for i in 0..300 {
        let v = format!("v{}", i);
        let cmd = format!("set k{} {} 0 {}\r\n{}\r\n", i, i * 7, v.len(), v);
        assert_eq!(mc_cmd(&mut s, &mut r, cmd.as_bytes(), 1), ["STORED"]);
    }
    let mut c = a.raw();
    let big = "b".repeat(1 << 20);
    for i in 0..8 {
        assert_eq!(c.cmd(&[&b"SET"[..], format!("big{}", i).as_bytes(), big.as_bytes()]).as_str(), "OK");
    }
    let mut before = Vec::new();
    for i in 0..300 {
        before.push(mc_cmd(&mut s, &mut r, format!("gets k{}\r\n", i).as_bytes(), 3));
    }
    if extra.contains(&"yes") {
        assert_eq!(c.q("BGREWRITEAOF").as_str(), "Background append only file rewriting started");
        wait_until(Duration::from_secs(20), "rewrite", || {
            info_field(&mut c, "persistence", "aof_rewrite_in_progress") == "0"
        });
    }
    c.send_cmd(&["SHUTDOWN"]);
    assert!(a.wait_exit(Duration::from_secs(20)).success());
    let b = Node::start(&dir, &args);
    let mut s = TcpStream::connect(("127.0.0.1", mcport.parse::<u16>().unwrap())).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    for (i, want) in before.iter().enumerate() {
        let got = mc_cmd(&mut s, &mut r, format!("gets k{}\r\n", i).as_bytes(), 3);
        assert_eq!(&got, want, "item k{} after restart", i);
        assert!(got[0].starts_with(&format!("VALUE k{} {} ", i, i * 7)), "{:?}", got);
    }
    let mut c = b.raw();
    for i in 0..8 {
        assert_eq!(c.cmd(&["STRLEN".to_string(), format!("big{}", i)]).as_int(), 1 << 20);
    }
    drop(b);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn memcached_items_survive_an_rdb_restart() {
    memcached_items_survive_restart(&[]);
}

#[test]
fn memcached_items_survive_an_aof_restart() {
    memcached_items_survive_restart(&["--appendonly", "yes"]);
}

/// The RDB of the issue's report, when the steering repository's shared/ folder is beside this
/// checkout (CI has it): a node on a folder holding it loads it and serves.
#[test]
fn the_reported_rdb_loads() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/repro/restart-hang.rdb");
    let Ok(bytes) = std::fs::read(&src) else {
        eprintln!("SKIPPED: {} not present", src.display());
        return;
    };
    let dir = temp_dir("repro");
    std::fs::write(dir.join("dump.rdb"), &bytes).unwrap();
    let b = Node::start(&dir, &["--save", ""]);
    let mut c = b.raw();
    assert!(c.q("DBSIZE").as_int() >= 500, "{}", c.q("DBSIZE").as_int());
    drop(b);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Three clients asking for BGREWRITEAOF in a loop while writes go on: one rewrite at a time
/// (the others are refused as "already in progress"), no rename errors, incr file numbers
/// without gaps, and a restart has every write.
#[test]
fn concurrent_bgrewriteaof_runs_one_rewrite_at_a_time() {
    let dir = temp_dir("rewrites");
    let mut a = Node::start(&dir, &["--save", "", "--appendonly", "yes", "--appendfsync", "everysec"]);
    let port = a.port;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let askers: Vec<_> = (0..3)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut c = Raw::connect(port);
                let (mut started, mut refused) = (0, 0);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let r = c.q("BGREWRITEAOF").as_str();
                    match r.as_str() {
                        "Background append only file rewriting started" => started += 1,
                        "ERR Background append only file rewriting already in progress" => refused += 1,
                        "Background append only file rewriting scheduled" => {}
                        other => panic!("BGREWRITEAOF answered {:?}", other),
                    }
                }
                (started, refused)
            })
        })
        .collect();
    let mut c = a.raw();
    let t0 = Instant::now();
    let mut n = 0;
    while n < 3000 || t0.elapsed() < Duration::from_secs(2) {
        assert_eq!(c.cmd(&["SET".to_string(), format!("w{}", n), n.to_string()]).as_str(), "OK");
        n += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut started = 0;
    for t in askers {
        started += t.join().unwrap().0;
    }
    wait_until(Duration::from_secs(20), "last rewrite", || {
        info_field(&mut c, "persistence", "aof_rewrite_in_progress") == "0"
    });
    let log = a.log();
    assert!(!log.contains("Error trying to rename"), "{}", log);
    assert!(started > 0);
    let rewrites: u64 = info_field(&mut c, "persistence", "aof_rewrites").parse().unwrap();
    let manifest = std::fs::read_to_string(dir.join("appendonlydir/appendonly.aof.manifest")).unwrap();
    let incr_seq: u64 = manifest
        .lines()
        .find(|l| l.contains("type i"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no incr file in {}", manifest));
    assert_eq!(incr_seq, rewrites + 1, "incr numbers skipped: {} rewrites, manifest:\n{}", rewrites, manifest);
    a.signal("TERM");
    assert!(a.wait_exit(Duration::from_secs(20)).success());
    let b = Node::start(&dir, &["--save", "", "--appendonly", "yes"]);
    let mut c = b.raw();
    for i in (0..n).step_by(7) {
        assert_eq!(c.cmd(&["GET".to_string(), format!("w{}", i)]).as_str(), i.to_string());
    }
    assert_eq!(c.q("DBSIZE").as_int(), n as i64);
    drop(b);
    let _ = std::fs::remove_dir_all(&dir);
}
