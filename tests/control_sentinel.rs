//! The control plane's Sentinel endpoint (`ferrocache control --sentinel-port P`) over real
//! replication groups: Sentinel-aware clients (the `redis` crate's Sentinel client and redis-py's
//! `redis.sentinel.Sentinel`) find the primary and the replicas, follow a failover after `kill -9`
//! of the primary (`+switch-master`), and `SENTINEL FAILOVER` switches the primary.

mod common;

use common::control::{tags, ControlPlane};
use common::{Raw, Reply};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

impl ControlPlane {
    fn wait_available(&self, id: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let g = self.ok(&[("Action", "DescribeReplicationGroups"), ("ReplicationGroupId", id)]);
            if tags(&g, "Status")[0] == "available" {
                return g;
            }
            assert!(Instant::now() < deadline, "{} never became available: {}", id, g);
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn events(&self, id: &str) -> Vec<String> {
        let ev =
            self.ok(&[("Action", "DescribeEvents"), ("SourceIdentifier", id), ("SourceType", "replication-group")]);
        tags(&ev, "Message")
    }
}

/// (node port, role) of each member of a DescribeReplicationGroups answer.
fn members(g: &str) -> Vec<(u16, String)> {
    tags(g, "NodeGroupMember")
        .iter()
        .map(|m| (tags(&tags(m, "ReadEndpoint")[0], "Port")[0].parse().unwrap(), tags(m, "CurrentRole")[0].clone()))
        .collect()
}

fn info_field(port: u16, section: &str, field: &str) -> String {
    let info = Raw::connect(port).cmd(&["INFO", section]).as_str();
    info.lines().find_map(|l| l.strip_prefix(&format!("{}:", field))).unwrap_or("").trim().to_string()
}

/// A flat field/value reply (SENTINEL MASTER, one entry of SENTINEL REPLICAS) as a map.
fn fields(r: &Reply) -> HashMap<String, String> {
    r.items().chunks(2).map(|kv| (kv[0].as_str(), kv[1].as_str())).collect()
}

fn master(s: u16, name: &str) -> HashMap<String, String> {
    fields(&Raw::connect(s).cmd(&["SENTINEL", "MASTER", name]))
}

fn replicas(s: u16, name: &str) -> Vec<HashMap<String, String>> {
    Raw::connect(s).cmd(&["SENTINEL", "REPLICAS", name]).items().iter().map(fields).collect()
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {}", what);
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The next message on a subscribed connection: (channel, payload).
fn next_message(sub: &mut Raw) -> (String, String) {
    let r = sub.read();
    let v = r.items();
    match v[0].as_str().as_str() {
        "message" => (v[1].as_str(), v[2].as_str()),
        "pmessage" => (v[2].as_str(), v[3].as_str()),
        other => panic!("not a message: {} {:?}", other, r),
    }
}

/// Messages on `sub` until one on `channel` arrives (the others are returned too).
fn wait_message(sub: &mut Raw, channel: &str, seen: &mut Vec<(String, String)>) -> String {
    loop {
        let (c, m) = next_message(sub);
        seen.push((c.clone(), m.clone()));
        if c == channel {
            return m;
        }
    }
}

/// The Python of the venv the control tests share (target/awscli-venv), with redis-py 5.0.8
/// installed on first use; None when it cannot be installed.
fn redis_py() -> Option<PathBuf> {
    common::control::shared_venv_python(&[("redis, sys; sys.exit(redis.__version__ != '5.0.8')", "redis==5.0.8")])
}

/// A long-lived redis-py client: one `Sentinel` and one `master_for`/`slave_for` pair, driven by
/// lines on stdin, so that the same Sentinel-managed connection pool is used before and after a
/// failover.
const PY_CLIENT: &str = r#"
import sys, time
from redis.sentinel import Sentinel
from redis.exceptions import ConnectionError, ReadOnlyError, TimeoutError
s = Sentinel([("127.0.0.1", int(sys.argv[1]))], socket_timeout=1)
m = s.master_for("web", socket_timeout=1)
r = s.slave_for("web", socket_timeout=1)
def out(*a):
    print(*a, flush=True)
for line in sys.stdin:
    cmd = line.split()
    if not cmd:
        continue
    if cmd[0] == "discover":
        out("master", *s.discover_master("web"), "slaves", *sorted(p for _, p in s.discover_slaves("web")))
    elif cmd[0] == "write":
        # Retries while the group fails over: each failed attempt makes the pool ask Sentinel again.
        t0, tries = time.time(), 0
        while True:
            tries += 1
            try:
                m.set(cmd[1], cmd[2])
                break
            except (ConnectionError, ReadOnlyError, TimeoutError) as e:
                if time.time() - t0 > 30:
                    out("FAIL", repr(e))
                    raise
                time.sleep(0.05)
        out("written", m.info("server")["tcp_port"], tries, "%.3f" % (time.time() - t0))
    elif cmd[0] == "read":
        t0 = time.time()
        while True:
            try:
                v = r.get(cmd[1])
                if v is not None and v.decode() == cmd[2]:
                    break
            except (ConnectionError, TimeoutError):
                pass
            if time.time() - t0 > 30:
                out("FAIL read", v)
                sys.exit(1)
            time.sleep(0.05)
        out("read", r.info("server")["tcp_port"], r.info("replication")["role"])
"#;

struct Py {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Py {
    fn start(python: &Path, sentinel: u16) -> Py {
        let mut child = Command::new(python)
            .args(["-u", "-c", PY_CLIENT, &sentinel.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Py { child, stdin, stdout }
    }
    fn ask(&mut self, line: &str) -> Vec<String> {
        self.send(line);
        self.answer(line)
    }
    fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{}", line).unwrap();
    }
    fn answer(&mut self, line: &str) -> Vec<String> {
        let mut answer = String::new();
        self.stdout.read_line(&mut answer).unwrap();
        assert!(!answer.is_empty() && !answer.starts_with("FAIL"), "redis-py `{}`: {:?}", line, answer);
        answer.split_whitespace().map(String::from).collect()
    }
}

impl Drop for Py {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn sentinel_clients_through_the_control_plane() {
    let mut cp = ControlPlane::with_sentinel("clients");
    let s = cp.sentinel;
    cp.ok(&[
        ("Action", "CreateReplicationGroup"),
        ("ReplicationGroupId", "web"),
        ("ReplicationGroupDescription", "sentinel test"),
        ("NumCacheClusters", "3"),
        ("AutomaticFailoverEnabled", "true"),
    ]);
    let g = cp.wait_available("web");
    let ms = members(&g);
    let primary = ms.iter().find(|m| m.1 == "primary").unwrap().0;
    let mut reps: Vec<u16> = ms.iter().filter(|m| m.1 == "replica").map(|m| m.0).collect();
    reps.sort();
    assert_eq!(reps.len(), 2);
    let primary_endpoint: u16 = tags(&tags(&g, "PrimaryEndpoint")[0], "Port")[0].parse().unwrap();

    // What the endpoint reports: the group as a master at its primary *node*.
    let mut raw = Raw::connect(s);
    assert_eq!(raw.qraw("ROLE"), "*2\r\n$8\r\nsentinel\r\n*1\r\n$3\r\nweb\r\n");
    assert_eq!(
        raw.cmd(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "web"]),
        Reply::Array(vec![Reply::Bulk(b"127.0.0.1".to_vec()), Reply::Bulk(primary.to_string().into_bytes())])
    );
    assert_ne!(primary, primary_endpoint);
    let m = master(s, "web");
    assert_eq!((m["name"].as_str(), m["ip"].as_str(), m["flags"].as_str()), ("web", "127.0.0.1", "master"));
    assert_eq!((m["port"].clone(), m["num-slaves"].as_str()), (primary.to_string(), "2"));
    assert_eq!(m["config-epoch"], "0");
    wait_until("both replicas in sync in SENTINEL REPLICAS", Duration::from_secs(10), || {
        let rs = replicas(s, "web");
        let mut ports: Vec<u16> = rs.iter().map(|r| r["port"].parse().unwrap()).collect();
        ports.sort();
        ports == reps
            && rs.iter().all(|r| {
                r["flags"] == "slave" && r["master-link-status"] == "ok" && r["master-port"] == primary.to_string()
            })
    });
    assert_eq!(raw.qraw("SENTINEL MASTER nosuch"), "-ERR No such master with that name\r\n");
    assert!(raw
        .qraw("INFO sentinel")
        .contains(&format!("master0:name=web,status=ok,address=127.0.0.1:{},slaves=2,sentinels=1", primary)));

    // (a) The redis crate's Sentinel client: the primary (checked with ROLE) and a replica.
    let surl = format!("redis://127.0.0.1:{s}/");
    let mut sentinel = redis::sentinel::Sentinel::build(vec![surl.as_str()]).unwrap();
    let mut pc = sentinel.master_for("web", None).unwrap().get_connection().unwrap();
    let port: String = redis::cmd("CONFIG").arg("GET").arg("port").query::<Vec<String>>(&mut pc).unwrap().remove(1);
    assert_eq!(port, primary.to_string(), "redis crate: wrong primary");
    let _: () = redis::cmd("SET").arg("crate").arg("1").query(&mut pc).unwrap();
    let mut rc = sentinel.replica_for("web", None).unwrap().get_connection().unwrap();
    let rport: u16 =
        redis::cmd("CONFIG").arg("GET").arg("port").query::<Vec<String>>(&mut rc).unwrap()[1].parse().unwrap();
    assert!(reps.contains(&rport), "redis crate: {} is not a replica", rport);
    wait_until("the write on the replica", Duration::from_secs(10), || {
        redis::cmd("GET").arg("crate").query::<Option<String>>(&mut rc).unwrap().as_deref() == Some("1")
    });
    assert!(sentinel.master_for("nosuch", None).is_err());
    println!("redis crate: primary {} and replica {} discovered", primary, rport);

    // (b) redis-py: master_for / slave_for, writes and reads.
    let python = redis_py();
    let mut py = python.as_ref().map(|p| Py::start(p, s));
    if let Some(py) = py.as_mut() {
        let d = py.ask("discover");
        assert_eq!(
            d,
            ["master", "127.0.0.1", &primary.to_string(), "slaves", &reps[0].to_string(), &reps[1].to_string()]
        );
        let w = py.ask("write py before");
        assert_eq!(w[1], primary.to_string());
        let r = py.ask("read py before");
        assert!(reps.contains(&r[1].parse().unwrap()) && r[2] == "slave", "{:?}", r);
        println!("redis-py: master_for wrote to {}, slave_for read from {}", w[1], r[1]);
    } else {
        println!("SKIPPED (redis-py parts): could not install redis==5.0.8");
    }

    // (c) kill -9 of the primary: +sdown/+odown, then +switch-master; clients follow.
    let mut sub = Raw::connect(s);
    sub.set_timeout(Duration::from_secs(30));
    assert_eq!(sub.qraw("SUBSCRIBE +switch-master"), "*3\r\n$9\r\nsubscribe\r\n$14\r\n+switch-master\r\n:1\r\n");
    let mut all = Raw::connect(s);
    all.set_timeout(Duration::from_secs(30));
    assert_eq!(all.qraw("PSUBSCRIBE *"), "*3\r\n$10\r\npsubscribe\r\n$1\r\n*\r\n:1\r\n");
    let pid: i32 = info_field(primary, "server", "process_id").parse().unwrap();
    let killed = Instant::now();
    common::control::signal(pid, 9);
    // redis-py writes while the group fails over: its pool retries through Sentinel.
    if let Some(py) = py.as_mut() {
        py.send("write py during-failover");
    }
    let msg = wait_message(&mut sub, "+switch-master", &mut Vec::new());
    let switch_ms = killed.elapsed().as_millis();
    let f: Vec<&str> = msg.split(' ').collect();
    assert_eq!(&f[..4], ["web", "127.0.0.1", &primary.to_string(), "127.0.0.1"], "{}", msg);
    let new_primary: u16 = f[4].parse().unwrap();
    assert!(reps.contains(&new_primary), "{}", msg);
    let mut seen = Vec::new();
    wait_message(&mut all, "+switch-master", &mut seen);
    let inst = format!("master web 127.0.0.1 {}", primary);
    let want = [
        ("+sdown".to_string(), inst.clone()),
        ("+odown".to_string(), format!("{} #quorum 1/1", inst)),
        ("+try-failover".to_string(), inst.clone()),
        ("+failover-end".to_string(), inst.clone()),
        ("+switch-master".to_string(), msg.clone()),
    ];
    assert_eq!(seen, want);
    println!("+switch-master {} ms after kill -9 of the primary: {}", switch_ms, msg);

    // Discovery now returns the new primary, which has the data.
    let mut pc = sentinel.master_for("web", None).unwrap().get_connection().unwrap();
    let port: String = redis::cmd("CONFIG").arg("GET").arg("port").query::<Vec<String>>(&mut pc).unwrap().remove(1);
    assert_eq!(port, new_primary.to_string());
    assert_eq!(redis::cmd("GET").arg("crate").query::<Option<String>>(&mut pc).unwrap().as_deref(), Some("1"));
    let m = master(s, "web");
    assert_eq!(
        (m["port"].clone(), m["flags"].as_str(), m["config-epoch"].as_str()),
        (new_primary.to_string(), "master", "1")
    );
    if let Some(py) = py.as_mut() {
        // The same redis-py client (its pool) reconnects through Sentinel to the new primary.
        let w = py.answer("write during the failover");
        assert_eq!(w[1], new_primary.to_string(), "redis-py wrote to the wrong node: {:?}", w);
        println!(
            "redis-py: write issued right after kill -9 accepted by the new primary after {} s ({} tries)",
            w[3], w[2]
        );
        let w = py.ask("write py after-kill");
        assert_eq!(w[1], new_primary.to_string(), "redis-py wrote to the wrong node: {:?}", w);
        println!("redis-py: write through master_for accepted {} s after the switch ({} tries)", w[3], w[2]);
        let d = py.ask("discover");
        assert_eq!(d[..3], ["master", "127.0.0.1", &new_primary.to_string()]);
        // (slave_for keeps its connection: the replica it reads from may be the promoted node.)
        py.ask("read py after-kill");
        assert_eq!(
            redis::cmd("GET").arg("py").query::<Option<String>>(&mut pc).unwrap().as_deref(),
            Some("after-kill")
        );
    }
    // The failed node comes back as a replica of the new primary: -sdown, listed in sync again.
    let inst = format!("slave 127.0.0.1:{p} 127.0.0.1 {p} @ web 127.0.0.1 {}", new_primary, p = primary);
    let mut seen = Vec::new();
    assert_eq!(wait_message(&mut all, "-sdown", &mut seen), inst, "{:?}", seen);
    wait_until("the replaced node in SENTINEL REPLICAS", Duration::from_secs(15), || {
        replicas(s, "web")
            .iter()
            .any(|r| r["port"] == primary.to_string() && r["flags"] == "slave" && r["master-link-status"] == "ok")
    });
    cp.wait_available("web");

    // (d) SENTINEL FAILOVER: the planned switch, reported in DescribeEvents.
    let before = new_primary;
    assert_eq!(raw.qraw("SENTINEL FAILOVER web"), "+OK\r\n");
    assert_eq!(raw.qraw("SENTINEL FAILOVER web"), "-INPROG Failover already in progress\r\n");
    let msg = wait_message(&mut sub, "+switch-master", &mut Vec::new());
    let f: Vec<&str> = msg.split(' ').collect();
    assert_eq!(&f[..4], ["web", "127.0.0.1", &before.to_string(), "127.0.0.1"], "{}", msg);
    let third: u16 = f[4].parse().unwrap();
    assert_ne!(third, before);
    cp.wait_available("web");
    let m = master(s, "web");
    assert_eq!((m["port"].clone(), m["config-epoch"].as_str()), (third.to_string(), "2"));
    let ev = cp.events("web");
    assert!(ev.iter().any(|e| e == "Failover requested through the Sentinel endpoint (SENTINEL FAILOVER)"), "{:?}", ev);
    assert_eq!(ev.iter().filter(|e| e.starts_with("Failover to replica node")).count(), 2, "{:?}", ev);
    // The demoted primary follows the new one; writes follow the switch (redis-py sees READONLY
    // or a closed connection and asks Sentinel again).
    wait_until("the old primary replicating from the new one", Duration::from_secs(10), || {
        info_field(before, "replication", "master_port") == third.to_string()
    });
    if let Some(py) = py.as_mut() {
        let w = py.ask("write py after-failover");
        assert_eq!(w[1], third.to_string(), "{:?}", w);
        println!("redis-py: write after SENTINEL FAILOVER reached the new primary {}", third);
    }
    let mut pc = sentinel.master_for("web", None).unwrap().get_connection().unwrap();
    let port: String = redis::cmd("CONFIG").arg("GET").arg("port").query::<Vec<String>>(&mut pc).unwrap().remove(1);
    assert_eq!(port, third.to_string());

    // kill -9 of a replica: +sdown for it, -sdown once it is replaced.
    let victim = before;
    let inst = format!("slave 127.0.0.1:{v} 127.0.0.1 {v} @ web 127.0.0.1 {}", third, v = victim);
    let pid: i32 = info_field(victim, "server", "process_id").parse().unwrap();
    common::control::signal(pid, 9);
    let mut seen = Vec::new();
    assert_eq!(wait_message(&mut all, "+sdown", &mut seen), inst, "{:?}", seen);
    assert_eq!(wait_message(&mut all, "-sdown", &mut seen), inst, "{:?}", seen);
    wait_until("the replaced replica in sync", Duration::from_secs(15), || {
        replicas(s, "web").iter().all(|r| r["flags"] == "slave" && r["master-link-status"] == "ok")
    });
    assert_eq!(master(s, "web")["config-epoch"], "2");

    // Errors in Sentinel's words; a group without replicas.
    assert_eq!(raw.qraw("SENTINEL FAILOVER nosuch"), "-ERR No such master with that name\r\n");
    cp.ok(&[
        ("Action", "CreateReplicationGroup"),
        ("ReplicationGroupId", "solo"),
        ("ReplicationGroupDescription", "no replicas"),
        ("NumCacheClusters", "1"),
    ]);
    let solo = members(&cp.wait_available("solo"))[0].0;
    assert_eq!(raw.qraw("SENTINEL FAILOVER solo"), "-NOGOODSLAVE No suitable replica to promote\r\n");
    let ms = raw.cmd(&["SENTINEL", "MASTERS"]);
    let mut names: Vec<(String, String)> =
        ms.items().iter().map(fields).map(|m| (m["name"].clone(), m["port"].clone())).collect();
    names.sort();
    assert_eq!(names, [("solo".to_string(), solo.to_string()), ("web".to_string(), third.to_string())]);
    assert_eq!(replicas(s, "solo").len(), 0);

    // The config-epoch survives a restart of the control plane (it counts the recorded switches).
    cp.kill();
    cp.start();
    cp.wait_available("web");
    let m = master(s, "web");
    assert_eq!((m["port"].clone(), m["config-epoch"].as_str()), (third.to_string(), "2"));
}
