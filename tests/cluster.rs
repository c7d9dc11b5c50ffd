//! Cluster mode (`--cluster-enabled yes`): the CLUSTER subcommands and the request routing
//! (-MOVED, -ASK, -TRYAGAIN, -CROSSSLOT, -CLUSTERDOWN) compared with a real redis-server 7.0
//! started the same way; nodes.conf written and reloaded; redis-cli -c following MOVED between
//! two ferrocache nodes that know each other from nodes.conf (the cluster bus is not built yet).

mod common;

use common::{Raw, Reply, ServerProc};
use std::path::Path;
use std::time::{Duration, Instant};

/// The bus port is set apart (a free port), as port + 10000 may be out of range or taken.
fn start_ferro(dir: &Path, extra: &[&str]) -> ServerProc {
    let bus = common::free_port().to_string();
    let mut args =
        vec!["--cluster-enabled", "yes", "--save", "", "--dir", dir.to_str().unwrap(), "--cluster-port", &bus];
    args.extend_from_slice(extra);
    common::ferrocache(&args)
}

fn start_redis(extra: &[&str]) -> Option<ServerProc> {
    let bus = common::free_port().to_string();
    let mut args = vec!["--cluster-enabled", "yes", "--cluster-port", &bus];
    args.extend_from_slice(extra);
    common::redis_server(&args)
}

/// The node's replies with its own id and ports replaced, so two nodes compare.
fn norm(s: &str, id: &str, port: u16) -> String {
    norm_bus(s, id, port, port as u32 + 10000)
}

fn bus_of(c: &mut Raw) -> u32 {
    c.cmd(&["CONFIG", "GET", "cluster-port"]).items()[1].as_str().parse().unwrap()
}

fn norm_bus(s: &str, id: &str, port: u16, bus: u32) -> String {
    let s: String =
        s.split("\\r\\n").filter(|l| !l.starts_with("cluster_stats_messages_")).collect::<Vec<_>>().join("\\r\\n");
    let s = if id.is_empty() { s } else { s.replace(id, "MYID") };
    s.replace(&bus.to_string(), "BUSPORT").replace(&port.to_string(), "PORT")
}

/// Every differing line printed, then a failure.
fn assert_same(ours: &[String], theirs: &[String]) {
    let mut bad = 0;
    for (a, b) in ours.iter().zip(theirs.iter()) {
        if a != b {
            eprintln!("ferrocache: {}\nredis:      {}\n", a, b);
            bad += 1;
        }
    }
    assert_eq!(bad, 0, "{} replies differ", bad);
}

fn wait_state(c: &mut Raw, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let info = c.q("CLUSTER INFO").as_str();
        if info.contains(&format!("cluster_state:{}", want)) {
            return;
        }
        assert!(Instant::now() < deadline, "cluster_state never became {}: {}", want, info);
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One single-node session: slot assignment, errors, then data commands once all slots are
/// served.
fn single_node_session(p: &ServerProc) -> Vec<String> {
    let mut c = p.conn();
    let id = c.q("CLUSTER MYID").as_str();
    assert_eq!(id.len(), 40);
    let mut out = Vec::new();
    let bus = bus_of(&mut c);
    let r = |c: &mut Raw, out: &mut Vec<String>, line: &str| {
        let rep = c.q(line);
        out.push(format!("{} => {}", line, norm_bus(&format!("{:?}", rep), &id, p.port, bus)));
    };
    for line in [
        "CLUSTER INFO",
        "CLUSTER NODES",
        "CLUSTER SLOTS",
        "CLUSTER SHARDS",
        "SET foo bar",
        "GET foo",
        "CLUSTER KEYSLOT foo",
        "CLUSTER KEYSLOT a{foo}b",
        "CLUSTER KEYSLOT {}foo",
        "CLUSTER KEYSLOT foo{{bar}}zap",
        "CLUSTER ADDSLOTS 0 1 2",
        "CLUSTER ADDSLOTSRANGE 10 20 30 40",
        "CLUSTER ADDSLOTS 0",
        "CLUSTER ADDSLOTS 5 5",
        "CLUSTER ADDSLOTS 99999",
        "CLUSTER ADDSLOTS x",
        "CLUSTER ADDSLOTSRANGE 5 3",
        "CLUSTER ADDSLOTSRANGE 1 2 3",
        "CLUSTER DELSLOTS 500",
        "CLUSTER DELSLOTSRANGE 30 40",
        "CLUSTER NODES",
        "CLUSTER INFO",
        "CLUSTER SLOTS",
        "CLUSTER SHARDS",
        "CLUSTER SETSLOT 5 IMPORTING abc",
        "CLUSTER SETSLOT 6 MIGRATING abc",
        "CLUSTER SETSLOT 0 MIGRATING abc",
        "CLUSTER SETSLOT 0 NODE abc",
        "CLUSTER SETSLOT 0 BOGUS",
        "CLUSTER SETSLOT 0 STABLE",
        "CLUSTER COUNTKEYSINSLOT 5",
        "CLUSTER COUNTKEYSINSLOT 16384",
        "CLUSTER COUNTKEYSINSLOT x",
        "CLUSTER GETKEYSINSLOT 5 -1",
        "CLUSTER BUMPEPOCH",
        "CLUSTER BUMPEPOCH",
        "CLUSTER SET-CONFIG-EPOCH 5",
        "CLUSTER SET-CONFIG-EPOCH -1",
        "CLUSTER COUNT-FAILURE-REPORTS abc",
        "CLUSTER FORGET abc",
        "CLUSTER REPLICAS abc",
        "SELECT 1",
        "SELECT 0",
        "CLUSTER FLUSHSLOTS",
        "CLUSTER ADDSLOTSRANGE 0 16383",
        "READONLY",
        "READWRITE",
        "ASKING",
    ] {
        r(&mut c, &mut out, line);
    }
    wait_state(&mut c, "ok");
    for line in [
        "CLUSTER INFO",
        "CLUSTER NODES",
        "CLUSTER SLOTS",
        "SET foo bar",
        "SET {foo}2 baz",
        "MSET a 1 b 2",
        "MSET {x}a 1 {x}b 2",
        "MGET {x}a {x}b",
        "MOVE {x}a 1",
        "SWAPDB 0 1",
        "COPY {x}a {x}c DB 1",
        "COPY {x}a {x}c",
        "CLUSTER COUNTKEYSINSLOT 12182",
        "MULTI",
        "SET q 1",
        "SET w 2",
        "EXEC",
        "CLUSTER FLUSHSLOTS",
        "CLUSTER RESET",
    ] {
        r(&mut c, &mut out, line);
    }
    // Redis lists a slot's keys newest first; ferrocache (no per-slot index yet) in table order.
    let mut keys: Vec<String> = c.q("CLUSTER GETKEYSINSLOT 12182 10").items().iter().map(|k| k.as_str()).collect();
    keys.sort();
    out.push(format!("GETKEYSINSLOT 12182 10 => {:?}", keys));
    out.push(format!("GETKEYSINSLOT 12182 1 => {}", c.q("CLUSTER GETKEYSINSLOT 12182 1").items().len()));
    r(&mut c, &mut out, "DEL foo {foo}2");
    let ev = c.cmd(&["EVAL", "return redis.call('get', KEYS[1])", "2", "{x}a", "b"]);
    out.push(format!("EVAL 2 keys, two slots => {:?}", ev));
    let ev = c.cmd(&["EVAL", "return redis.call('get', KEYS[1])", "2", "{x}a", "{x}b"]);
    out.push(format!("EVAL 2 keys, one slot => {:?}", ev));
    c.q("FLUSHALL");
    r(&mut c, &mut out, "CLUSTER FLUSHSLOTS");
    r(&mut c, &mut out, "CLUSTER INFO");
    out
}

#[test]
fn single_node_as_redis() {
    let dir = common::temp_dir("cluster1");
    let f = start_ferro(&dir, &[]);
    let ours = single_node_session(&f);
    let Some(r) = start_redis(&[]) else {
        eprintln!("SKIPPED: redis-server is not on PATH");
        return;
    };
    // redis-server reports cluster_size:1 until its first state update, which waits
    // CLUSTER_WRITABLE_DELAY (2 s) after startup.
    std::thread::sleep(Duration::from_millis(2100));
    let theirs = single_node_session(&r);
    assert_same(&ours, &theirs);
    assert_eq!(ours.len(), theirs.len());
    // nodes.conf exists in the data directory.
    assert!(std::fs::read_to_string(dir.join("nodes.conf")).unwrap().contains("myself,master"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn non_cluster_node_answers_as_redis() {
    let f = common::ferrocache(&[]);
    let mut c = f.conn();
    assert_eq!(c.q("CLUSTER INFO").as_str(), "ERR This instance has cluster support disabled");
    assert_eq!(c.q("READONLY").as_str(), "ERR This instance has cluster support disabled");
    assert_eq!(c.q("SELECT 1").as_str(), "OK");
}

const OTHER: &str = "0123456789abcdef0123456789abcdef01234567";
const ME: &str = "fedcba9876543210fedcba9876543210fedcba98";

/// nodes.conf for a node that serves 0-8191 and knows OTHER (at `other_port`) serving the rest.
fn two_node_conf(me: &str, my_port: u16, other: &str, other_port: u16, my_range: &str, other_range: &str) -> String {
    format!(
        "{me} 127.0.0.1:{mp}@{mb} myself,master - 0 0 1 connected {mr}\n\
{other} 127.0.0.1:{op}@{ob} master - 0 0 2 connected {or}\n\
vars currentEpoch 2 lastVoteEpoch 0\n",
        mp = my_port,
        mb = my_port as u32 + 10000,
        op = other_port,
        ob = other_port as u32 + 10000,
        mr = my_range,
        or = other_range
    )
}

/// Routing with a second (unreachable) master known from nodes.conf: MOVED, ASK, TRYAGAIN,
/// ASKING on an importing slot.
fn routing_session(p: &ServerProc, other_port: u16) -> Vec<String> {
    let mut c = p.conn();
    wait_state(&mut c, "ok");
    let mut out = Vec::new();
    let mut r = |c: &mut Raw, line: &str| {
        let rep = c.q(line);
        let s = format!("{:?}", rep).replace(&other_port.to_string(), "OTHERPORT");
        out.push(format!("{} => {}", line, norm(&s, ME, p.port)));
    };
    // foo: 12182 (other's), bar: 5061 (mine), {bar}x too.
    for line in [
        "GET foo",
        "SET foo 1",
        "SET bar 1",
        "MGET bar foo",
        "MGET foo bar",
        "EXISTS foo",
        "CLUSTER SLOTS",
        "CLUSTER SETSLOT 5061 MIGRATING 0123456789abcdef0123456789abcdef01234567",
        "GET bar",
        "GET {bar}missing",
        "MGET bar {bar}missing",
        "SET {bar}new 1",
        "CLUSTER SETSLOT 5061 STABLE",
        "CLUSTER SETSLOT 12182 IMPORTING 0123456789abcdef0123456789abcdef01234567",
        "GET foo",
        "ASKING",
        "SET foo 2",
        "GET foo",
        "ASKING",
        "MGET foo {foo}missing",
        "CLUSTER SETSLOT 12182 NODE fedcba9876543210fedcba9876543210fedcba98",
        "GET foo",
        "CLUSTER INFO",
        "CLUSTER FORGET 0123456789abcdef0123456789abcdef01234567",
        "CLUSTER INFO",
        "GET bar",
    ] {
        r(&mut c, line);
    }
    out
}

fn start_with_conf(redis: bool, make: impl Fn(u16) -> String) -> Option<ServerProc> {
    // The node's port must be known before nodes.conf is written: pick it, write, start.
    for _ in 0..5 {
        let port = common::free_port();
        let dir = common::temp_dir("clusterconf");
        std::fs::write(dir.join("nodes.conf"), make(port)).unwrap();
        let d = dir.to_str().unwrap().to_string();
        let p = port.to_string();
        let bus = common::free_port().to_string();
        let mut proc = if redis {
            let bin = common::redis_server_path()?;
            let child = std::process::Command::new(bin)
                .args(["--port", &p, "--save", "", "--appendonly", "no", "--dir", &d, "--bind", "127.0.0.1"])
                .args(["--cluster-enabled", "yes", "--logfile", "/dev/null", "--cluster-port", &bus])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap();
            ServerProc { child, port, dir: Some(dir), name: "redis-server" }
        } else {
            let child = std::process::Command::new(env!("CARGO_BIN_EXE_ferrocache"))
                .args([
                    "server",
                    "--port",
                    &p,
                    "--save",
                    "",
                    "--dir",
                    &d,
                    "--cluster-enabled",
                    "yes",
                    "--cluster-port",
                    &bus,
                ])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            ServerProc { child, port, dir: Some(dir), name: "ferrocache" }
        };
        if common::listening_within(port, &mut proc.child, Duration::from_secs(10)) {
            return Some(proc);
        }
    }
    panic!("could not start a node with a nodes.conf");
}

#[test]
fn moved_ask_tryagain_as_redis() {
    let other_port = common::free_port();
    let conf = |p| two_node_conf(ME, p, OTHER, other_port, "0-8191", "8192-16383");
    let f = start_with_conf(false, conf).unwrap();
    let ours = routing_session(&f, other_port);
    assert!(ours[0].contains("MOVED 12182 127.0.0.1:OTHERPORT"), "{}", ours[0]);
    let Some(r) = start_with_conf(true, conf) else {
        eprintln!("SKIPPED: redis-server is not on PATH");
        return;
    };
    let theirs = routing_session(&r, other_port);
    assert_same(&ours, &theirs);
}

#[test]
fn nodes_conf_reloaded_on_restart() {
    let dir = common::temp_dir("cluster-restart");
    let (id, nodes) = {
        let f = start_ferro(&dir, &[]);
        let mut c = f.conn();
        assert_eq!(c.q("CLUSTER ADDSLOTSRANGE 0 100 200 300").as_str(), "OK");
        assert_eq!(c.q("CLUSTER BUMPEPOCH").as_str(), "BUMPED 1");
        let id = c.q("CLUSTER MYID").as_str();
        let conf = std::fs::read_to_string(dir.join("nodes.conf")).unwrap();
        assert_eq!(
            conf,
            format!(
                "{} :{}@{} myself,master - 0 0 1 connected 0-100 200-300\nvars currentEpoch 1 lastVoteEpoch 0\n",
                id,
                f.port,
                bus_of(&mut c)
            )
        );
        // No temporary file is left beside it.
        let names: Vec<String> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert_eq!(names, vec!["nodes.conf".to_string()], "{:?}", names);
        let bus = bus_of(&mut c);
        (id, norm_bus(&c.q("CLUSTER NODES").as_str(), "", f.port, bus))
    };
    let f = start_ferro(&dir, &[]);
    let mut c = f.conn();
    assert_eq!(c.q("CLUSTER MYID").as_str(), id);
    let bus = bus_of(&mut c);
    assert_eq!(norm_bus(&c.q("CLUSTER NODES").as_str(), "", f.port, bus), nodes);
    assert!(c.q("CLUSTER INFO").as_str().contains("cluster_my_epoch:1\r\n"));
    // A hard reset gives a new id and epoch 0, saved at once.
    assert_eq!(c.q("CLUSTER RESET HARD").as_str(), "OK");
    let new_id = c.q("CLUSTER MYID").as_str();
    assert_ne!(new_id, id);
    assert!(std::fs::read_to_string(dir.join("nodes.conf")).unwrap().starts_with(&new_id));
    drop(f);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cluster_config_options() {
    let dir = common::temp_dir("cluster-cfg");
    let f = start_ferro(
        &dir,
        &[
            "--cluster-config-file",
            "my-nodes.conf",
            "--cluster-node-timeout",
            "5000",
            "--cluster-announce-ip",
            "10.0.0.9",
            "--cluster-announce-hostname",
            "node-a",
            "--cluster-allow-reads-when-down",
            "yes",
        ],
    );
    let mut c = f.conn();
    let get = |c: &mut Raw, n: &str| c.cmd(&["CONFIG", "GET", n]).items()[1].as_str();
    assert_eq!(get(&mut c, "cluster-enabled"), "yes");
    assert_eq!(get(&mut c, "cluster-config-file"), "my-nodes.conf");
    assert_eq!(get(&mut c, "cluster-node-timeout"), "5000");
    assert_eq!(get(&mut c, "cluster-require-full-coverage"), "yes");
    assert_eq!(get(&mut c, "cluster-allow-reads-when-down"), "yes");
    assert_eq!(get(&mut c, "cluster-slave-validity-factor"), "10");
    assert!(c.q("CONFIG SET cluster-enabled no").is_error());
    assert_eq!(c.q("CONFIG SET cluster-require-full-coverage no").as_str(), "OK");
    let nodes = c.q("CLUSTER NODES").as_str();
    assert!(nodes.contains(&format!(" 10.0.0.9:{}@{},node-a myself,master ", f.port, bus_of(&mut c))), "{}", nodes);
    assert!(dir.join("my-nodes.conf").exists());
    // Without full coverage a node with some slots is up.
    c.q("CLUSTER ADDSLOTS 1");
    assert!(c.q("CLUSTER INFO").as_str().starts_with("cluster_state:ok\r\n"));
    drop(f);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two ferrocache nodes that know each other from nodes.conf: redis-cli -c follows MOVED.
#[test]
fn redis_cli_follows_moved_between_ferrocache_nodes() {
    let Some(cli) = common::which("redis-cli") else {
        eprintln!("SKIPPED: redis-cli is not on PATH");
        return;
    };
    let pb = common::free_port();
    let a = start_with_conf(false, |p| two_node_conf(ME, p, OTHER, pb, "0-8191", "8192-16383")).unwrap();
    let pa = a.port;
    let mut b = {
        let dir = common::temp_dir("cluster-b");
        std::fs::write(dir.join("nodes.conf"), two_node_conf(OTHER, pb, ME, pa, "8192-16383", "0-8191")).unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_ferrocache"))
            .args(["server", "--port", &pb.to_string(), "--save", "", "--cluster-enabled", "yes"])
            .args(["--cluster-port", &common::free_port().to_string()])
            .arg("--dir")
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        ServerProc { child, port: pb, dir: Some(dir), name: "ferrocache" }
    };
    assert!(common::listening_within(pb, &mut b.child, Duration::from_secs(10)));
    let run = |args: &[&str]| {
        let o = std::process::Command::new(&cli).args(["-c", "-p", &pa.to_string()]).args(args).output().unwrap();
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    assert_eq!(run(&["SET", "foo", "on-b"]), "OK");
    assert_eq!(run(&["GET", "foo"]), "on-b");
    assert_eq!(run(&["SET", "bar", "on-a"]), "OK");
    let mut cb = b.conn();
    assert_eq!(cb.q("GET foo").as_str(), "on-b");
    assert_eq!(cb.q("GET bar").as_str(), format!("MOVED 5061 127.0.0.1:{}", pa));
    let mut ca = a.conn();
    assert_eq!(ca.q("GET bar").as_str(), "on-a");
    assert_eq!(ca.q("DBSIZE").as_int(), 1);

    // Move slot 5061 (bar) from a to b the way redis-cli --cluster reshard does: IMPORTING on
    // the target, MIGRATING on the source, MIGRATE (RESTORE-ASKING on the target), NODE on both.
    assert_eq!(cb.q(&format!("CLUSTER SETSLOT 5061 IMPORTING {}", ME)).as_str(), "OK");
    assert_eq!(ca.q(&format!("CLUSTER SETSLOT 5061 MIGRATING {}", OTHER)).as_str(), "OK");
    assert_eq!(ca.q("CLUSTER GETKEYSINSLOT 5061 10").items().len(), 1);
    assert_eq!(ca.q(&format!("MIGRATE 127.0.0.1 {} bar 0 5000", pb)).as_str(), "OK");
    assert_eq!(ca.q("GET bar").as_str(), format!("ASK 5061 127.0.0.1:{}", pb));
    assert_eq!(cb.q("GET bar").as_str(), format!("MOVED 5061 127.0.0.1:{}", pa));
    assert_eq!(cb.q("ASKING").as_str(), "OK");
    assert_eq!(cb.q("GET bar").as_str(), "on-a");
    assert_eq!(cb.q("GET bar").as_str(), format!("MOVED 5061 127.0.0.1:{}", pa), "ASKING is one-shot");
    assert_eq!(cb.q(&format!("CLUSTER SETSLOT 5061 NODE {}", OTHER)).as_str(), "OK");
    assert_eq!(ca.q(&format!("CLUSTER SETSLOT 5061 NODE {}", OTHER)).as_str(), "OK");
    assert_eq!(cb.q("GET bar").as_str(), "on-a");
    assert_eq!(ca.q("GET bar").as_str(), format!("MOVED 5061 127.0.0.1:{}", pb));
    assert_eq!(run(&["GET", "bar"]), "on-a");
    let nodes_a = ca.q("CLUSTER NODES").as_str();
    assert!(nodes_a.contains(" myself,master - 0 0 1 connected 0-5060 5062-8191\n"), "{}", nodes_a);
    // Importing a slot bumped b's config epoch (clusterBumpConfigEpochWithoutConsensus).
    assert!(cb.q("CLUSTER INFO").as_str().contains("cluster_my_epoch:3\r\n"));
}

/// The bus message codec against a real redis-server 7.0: its MEET decodes, and PONGs that we
/// encode make it add us to its CLUSTER NODES under our name, with our slots.
#[test]
fn bus_messages_interoperate_with_redis() {
    use ferrocache_node::cluster::bus::{Msg, MEET, PING, PONG};
    use std::io::{Read, Write};
    let Some(r) = start_redis(&["--cluster-node-timeout", "5000"]) else {
        eprintln!("SKIPPED: redis-server is not on PATH");
        return;
    };
    let mut c = r.conn();
    let redis_id = c.q("CLUSTER MYID").as_str();
    let bus = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let cport = bus.local_addr().unwrap().port();
    let base = 7999u16;
    assert_eq!(c.q(&format!("CLUSTER MEET 127.0.0.1 {} {}", base, cport)).as_str(), "OK");
    let (mut s, _) = bus.accept().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let read_msg = |s: &mut std::net::TcpStream| -> Msg {
        let mut head = [0u8; 8];
        s.read_exact(&mut head).unwrap();
        let len = Msg::frame_len(&head).expect("RCmb signature");
        let mut buf = head.to_vec();
        buf.resize(len, 0);
        s.read_exact(&mut buf[8..]).unwrap();
        Msg::decode(&buf).unwrap()
    };
    let meet = read_msg(&mut s);
    assert_eq!(meet.kind, MEET);
    assert_eq!(meet.sender, redis_id);
    assert_eq!(meet.port, r.port);
    assert_eq!(meet.cport as u32, bus_of(&mut c));
    assert_eq!(
        meet.flags & 1,
        1,
        "a master: {:?}",
        (meet.flags, meet.pport, meet.cport, meet.state, meet.mflags, meet.myip.clone())
    );
    // Answer as a master that serves slots 0-99.
    let our_id = "f00dfeedf00dfeedf00dfeedf00dfeedf00dfeed";
    let pong = |port: u16| {
        let mut m = Msg {
            kind: PONG,
            port,
            sender: our_id.into(),
            cport,
            flags: 1,
            hostname: "ferro-test".into(),
            ..Default::default()
        };
        for slot in 0..100 {
            m.claim(slot);
        }
        m.encode()
    };
    s.write_all(&pong(base)).unwrap();
    // Keep answering its PINGs until it shows our slots.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let nodes = c.q("CLUSTER NODES").as_str();
        let line = nodes.lines().find(|l| l.starts_with(our_id)).map(|l| l.to_string());
        if let Some(l) = &line {
            if l.ends_with(" 0-99") {
                assert!(l.contains(&format!("127.0.0.1:{}@{},ferro-test master - ", base, cport)), "{}", l);
                break;
            }
        }
        assert!(Instant::now() < deadline, "redis never took our PONG: {}", nodes);
        s.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        let mut head = [0u8; 8];
        if s.read_exact(&mut head).is_ok() {
            let len = Msg::frame_len(&head).unwrap();
            let mut buf = head.to_vec();
            buf.resize(len, 0);
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s.read_exact(&mut buf[8..]).unwrap();
            let m = Msg::decode(&buf).unwrap();
            assert!(m.kind == PING || m.kind == MEET, "{}", m.kind);
            s.write_all(&pong(base)).unwrap();
        }
    }
}

/// A ferrocache node and a redis-server 7.0 node joined with CLUSTER MEET (each way) converge
/// over the bus: each lists the other with its slots, both report cluster_state:ok, and
/// redis-cli -c follows MOVED between them.
#[test]
fn mixed_cluster_converges_over_the_bus() {
    for redis_meets in [true, false] {
        let dir = common::temp_dir("cluster-mixed");
        let f = start_ferro(&dir, &["--cluster-node-timeout", "1000"]);
        let Some(r) = start_redis(&["--cluster-node-timeout", "1000"]) else {
            eprintln!("SKIPPED: redis-server is not on PATH");
            return;
        };
        let (mut cf, mut cr) = (f.conn(), r.conn());
        let (fbus, rbus) = (bus_of(&mut cf), bus_of(&mut cr));
        let (fid, rid) = (cf.q("CLUSTER MYID").as_str(), cr.q("CLUSTER MYID").as_str());
        assert_eq!(cf.q("CLUSTER ADDSLOTSRANGE 8192 16383").as_str(), "OK");
        assert_eq!(cr.q("CLUSTER ADDSLOTSRANGE 0 8191").as_str(), "OK");
        let meet = if redis_meets {
            cr.q(&format!("CLUSTER MEET 127.0.0.1 {} {}", f.port, fbus))
        } else {
            cf.q(&format!("CLUSTER MEET 127.0.0.1 {} {}", r.port, rbus))
        };
        assert_eq!(meet.as_str(), "OK");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let nf = cf.q("CLUSTER NODES").as_str();
            let nr = cr.q("CLUSTER NODES").as_str();
            let f_sees = nf.lines().any(|l| {
                l.starts_with(&rid)
                    && l.contains(&format!("127.0.0.1:{}@{} master - ", r.port, rbus))
                    && l.ends_with(" connected 0-8191")
            });
            let r_sees = nr.lines().any(|l| {
                l.starts_with(&fid)
                    && l.contains(&format!("127.0.0.1:{}@{} master - ", f.port, fbus))
                    && l.ends_with(" connected 8192-16383")
            });
            let ok = cf.q("CLUSTER INFO").as_str().starts_with("cluster_state:ok")
                && cr.q("CLUSTER INFO").as_str().starts_with("cluster_state:ok");
            if f_sees && r_sees && ok {
                assert!(nf.contains(" myself,master - 0 0 "), "{}", nf);
                break;
            }
            assert!(Instant::now() < deadline, "no convergence (redis meets: {}):\n{}\n{}", redis_meets, nf, nr);
            std::thread::sleep(Duration::from_millis(200));
        }
        // The two masters had the same config epoch (0): one of them bumped it.
        let ef: Vec<String> =
            cf.q("CLUSTER NODES").as_str().lines().map(|l| l.split(' ').nth(6).unwrap().to_string()).collect();
        assert_ne!(ef[0], ef[1], "config epochs still collide");
        // Routing across the mixed cluster.
        assert_eq!(cf.q("SET bar on-redis").as_str(), format!("MOVED 5061 127.0.0.1:{}", r.port));
        assert_eq!(cr.q("SET foo on-ferro").as_str(), format!("MOVED 12182 127.0.0.1:{}", f.port));
        if let Some(cli) = common::which("redis-cli") {
            let run = |port: u16, args: &[&str]| {
                let o =
                    std::process::Command::new(&cli).args(["-c", "-p", &port.to_string()]).args(args).output().unwrap();
                String::from_utf8_lossy(&o.stdout).trim().to_string()
            };
            assert_eq!(run(f.port, &["SET", "bar", "on-redis"]), "OK");
            assert_eq!(run(r.port, &["SET", "foo", "on-ferro"]), "OK");
            assert_eq!(cr.q("GET bar").as_str(), "on-redis");
            assert_eq!(cf.q("GET foo").as_str(), "on-ferro");
        }
        // PUBLISH crosses the bus both ways (CLUSTERMSG_TYPE_PUBLISH); SPUBLISH stays in its
        // shard (no replicas here: no one else hears it) and is routed by its channel's slot.
        for (sub_port, pub_port) in [(r.port, f.port), (f.port, r.port)] {
            let mut sub = Raw::connect(sub_port);
            sub.set_timeout(Duration::from_secs(5));
            sub.q("SUBSCRIBE news");
            let mut p = Raw::connect(pub_port);
            let msg = format!("from {pub_port}");
            assert_eq!(p.cmd(&["PUBLISH", "news", &msg]).as_int(), 0, "no local subscriber");
            let got = sub.read();
            let got: Vec<String> = got.items().iter().map(|x| x.as_str()).collect();
            assert_eq!(got, ["message", "news", msg.as_str()]);
        }
        assert_eq!(cf.q("SPUBLISH foo x").as_int(), 0);
        assert_eq!(cf.q("SPUBLISH bar x").as_str(), format!("MOVED 5061 127.0.0.1:{}", r.port));
        // CLUSTER LINKS: one link to the peer and one from it, as redis-server lists them.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let links = cf.q("CLUSTER LINKS");
            let dirs: Vec<(String, String)> =
                links.items().iter().map(|l| (l.items()[1].as_str(), l.items()[3].as_str())).collect();
            if dirs.contains(&("to".into(), rid.clone())) && dirs.contains(&("from".into(), rid.clone())) {
                assert_eq!(dirs.len(), 2, "{:?}", dirs);
                assert_eq!(links.items()[0].items()[4].as_str(), "create-time");
                break;
            }
            assert!(Instant::now() < deadline, "links: {:?}", dirs);
            std::thread::sleep(Duration::from_millis(200));
        }
        let info = cf.q("CLUSTER INFO").as_str();
        assert!(info.contains("cluster_stats_messages_publish_sent:1\r\n"), "{}", info);
        assert!(info.contains("cluster_stats_messages_publish_received:1\r\n"), "{}", info);
        // nodes.conf on the ferrocache side records the peer.
        let conf = std::fs::read_to_string(dir.join("nodes.conf")).unwrap();
        assert!(conf.lines().any(|l| l.starts_with(&rid) && l.ends_with(" 0-8191")), "{}", conf);
        drop(f);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// redis-cli --cluster create, check and reshard (600 slots, keys moved by MIGRATE) on three
/// ferrocache nodes.
#[test]
fn redis_cli_cluster_create_check_reshard() {
    let Some(cli) = common::which("redis-cli") else {
        eprintln!("SKIPPED: redis-cli is not on PATH");
        return;
    };
    let mut nodes = Vec::new();
    while nodes.len() < 3 {
        let port = common::port_pair();
        let dir = common::temp_dir("cluster-cli");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_ferrocache"))
            .args(["server", "--port", &port.to_string(), "--save", "", "--cluster-enabled", "yes"])
            .args(["--cluster-node-timeout", "2000"])
            .arg("--dir")
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut p = ServerProc { child, port, dir: Some(dir), name: "ferrocache" };
        common::listening_within(port, &mut p.child, Duration::from_secs(10));
        if p.alive() {
            nodes.push(p);
        }
    }
    let addrs: Vec<String> = nodes.iter().map(|n| n.addr()).collect();
    let cli_run = |args: &[&str]| {
        let o = std::process::Command::new(&cli).args(args).output().unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
    };
    let mut create = vec!["--cluster", "create"];
    create.extend(addrs.iter().map(|s| s.as_str()));
    create.push("--cluster-yes");
    let out = cli_run(&create);
    assert!(out.contains("[OK] All 16384 slots covered."), "{}", out);
    let check = || cli_run(&["--cluster", "check", &addrs[0]]);
    let out = check();
    assert!(out.contains("[OK] All nodes agree about slots configuration."), "{}", out);
    let mut c0 = nodes[0].conn();
    for i in 0..300 {
        let o = std::process::Command::new(&cli)
            .args(["-c", "-p", &nodes[i % 3].port.to_string(), "SET", &format!("key{}", i), &format!("v{}", i)])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "OK");
    }
    let from = c0.q("CLUSTER MYID").as_str();
    let to = nodes[1].conn().q("CLUSTER MYID").as_str();
    let out = cli_run(&[
        "--cluster",
        "reshard",
        &addrs[0],
        "--cluster-from",
        &from,
        "--cluster-to",
        &to,
        "--cluster-slots",
        "600",
        "--cluster-yes",
    ]);
    assert!(out.contains("Moving slot 599 from"), "{}", out);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = check();
        if out.contains("[OK] All nodes agree about slots configuration.")
            && out.contains("[OK] 300 keys in 3 masters.")
            && out.contains("slots:[0-599],[5461-10922] (6062 slots) master")
        {
            break;
        }
        assert!(Instant::now() < deadline, "{}", out);
        std::thread::sleep(Duration::from_millis(200));
    }
    let total: i64 = nodes.iter().map(|n| n.conn().q("DBSIZE").as_int()).sum();
    assert_eq!(total, 300);
    assert_eq!(c0.q("GET key0").as_str().split(' ').next().unwrap(), "MOVED");
}

/// Failure detection in a mixed cluster (one ferrocache, two redis-server masters): when one
/// redis-server dies, both survivors mark it `fail` (PFAIL, then FAIL from a majority of reports
/// carried by gossip) and report cluster_state:fail.
#[test]
fn mixed_cluster_detects_a_failed_master() {
    let dir = common::temp_dir("cluster-fail");
    let f = start_ferro(&dir, &["--cluster-node-timeout", "1000"]);
    let Some(r1) = start_redis(&["--cluster-node-timeout", "1000"]) else {
        eprintln!("SKIPPED: redis-server is not on PATH");
        return;
    };
    let mut r2 = start_redis(&["--cluster-node-timeout", "1000"]).unwrap();
    let (mut cf, mut c1, mut c2) = (f.conn(), r1.conn(), r2.conn());
    assert_eq!(cf.q("CLUSTER ADDSLOTSRANGE 0 5460").as_str(), "OK");
    assert_eq!(c1.q("CLUSTER ADDSLOTSRANGE 5461 10922").as_str(), "OK");
    assert_eq!(c2.q("CLUSTER ADDSLOTSRANGE 10923 16383").as_str(), "OK");
    let (b1, b2) = (bus_of(&mut c1), bus_of(&mut c2));
    assert_eq!(cf.q(&format!("CLUSTER MEET 127.0.0.1 {} {}", r1.port, b1)).as_str(), "OK");
    assert_eq!(c1.q(&format!("CLUSTER MEET 127.0.0.1 {} {}", r2.port, b2)).as_str(), "OK");
    let wait = |c: &mut Raw, what: &dyn Fn(&str, &str) -> bool, label: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let nodes = c.q("CLUSTER NODES").as_str();
            let info = c.q("CLUSTER INFO").as_str();
            if what(&nodes, &info) {
                return;
            }
            assert!(Instant::now() < deadline, "{}: {}\n{}", label, nodes, info);
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    // All three know each other (the third through gossip) and the cluster is up.
    let up = |n: &str, i: &str| n.lines().count() == 3 && i.starts_with("cluster_state:ok");
    wait(&mut cf, &up, "ferrocache");
    wait(&mut c2, &up, "redis 2");
    let dead = c2.q("CLUSTER MYID").as_str();
    let _ = r2.child.kill();
    let _ = r2.child.wait();
    let failed = |n: &str, i: &str| {
        n.lines().any(|l| l.starts_with(&dead) && l.contains(" master,fail ")) && i.starts_with("cluster_state:fail")
    };
    wait(&mut cf, &failed, "ferrocache marks it failed");
    wait(&mut c1, &failed, "redis marks it failed");
    drop(f);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn keys_in_slot_found_after_writes_deletes_and_a_restart() {
    // COUNTKEYSINSLOT/GETKEYSINSLOT walk only the shard that holds a slot's keys: the counts
    // must match what CLUSTER KEYSLOT says of every key, through deletes, expiry and a reload.
    let dir = common::temp_dir("cluster-slot-keys");
    let mut by_slot: std::collections::BTreeMap<i64, Vec<String>> = Default::default();
    let keys: Vec<String> =
        (0..3000).map(|i| if i % 3 == 0 { format!("{{user{}}}:k{i}", i % 50) } else { format!("key:{i}") }).collect();
    let check = |c: &mut Raw, by_slot: &std::collections::BTreeMap<i64, Vec<String>>| {
        for (slot, ks) in by_slot.iter().take(200) {
            assert_eq!(c.q(&format!("CLUSTER COUNTKEYSINSLOT {slot}")).as_int(), ks.len() as i64, "slot {slot}");
            let mut got: Vec<String> =
                c.q(&format!("CLUSTER GETKEYSINSLOT {slot} 1000")).items().iter().map(|r| r.as_str()).collect();
            got.sort();
            let mut want = ks.clone();
            want.sort();
            assert_eq!(got, want, "slot {slot}");
        }
        // An empty slot, and a limit.
        let empty = (0..16384).find(|s| !by_slot.contains_key(s)).unwrap();
        assert_eq!(c.q(&format!("CLUSTER COUNTKEYSINSLOT {empty}")).as_int(), 0);
        let (slot, ks) = by_slot.iter().max_by_key(|(_, v)| v.len()).unwrap();
        assert!(ks.len() > 2);
        assert_eq!(c.q(&format!("CLUSTER GETKEYSINSLOT {slot} 2")).items().len(), 2);
    };
    {
        let f = start_ferro(&dir, &["--save", "3600 1"]);
        let mut c = f.conn();
        assert_eq!(c.q("CLUSTER ADDSLOTSRANGE 0 16383").as_str(), "OK");
        for k in &keys {
            let slot = c.cmd(&["CLUSTER", "KEYSLOT", k]).as_int();
            c.cmd(&["SET", k, "v"]);
            by_slot.entry(slot).or_default().push(k.clone());
        }
        // Deletes and an expired key leave the counts.
        for k in keys.iter().step_by(7) {
            c.cmd(&["DEL", k]);
        }
        c.cmd(&["SET", "gone", "v", "PX", "1"]);
        std::thread::sleep(Duration::from_millis(20));
        for v in by_slot.values_mut() {
            v.retain(|k| keys.iter().position(|x| x == k).unwrap() % 7 != 0);
        }
        by_slot.retain(|_, v| !v.is_empty());
        check(&mut c, &by_slot);
        assert_eq!(c.q("SAVE").as_str(), "OK");
    }
    let f = start_ferro(&dir, &[]);
    let mut c = f.conn();
    check(&mut c, &by_slot);
    drop(f);
    let _ = std::fs::remove_dir_all(&dir);
}

/// CLUSTER FORGET keeps the node out for a minute even while another node still gossips about
/// it (Redis's blacklist): A forgets C, B does not; A must not re-learn C from B's gossip. The
/// same check against redis-server as A shows the expectation is Redis's.
#[test]
fn forgotten_node_not_relearned_from_gossip() {
    for a_is_redis in [false, true] {
        let dir = common::temp_dir("cluster-forget");
        for d in ["a", "b", "c"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        let a = if a_is_redis {
            match start_redis(&["--cluster-node-timeout", "1000"]) {
                Some(r) => r,
                None => return eprintln!("SKIPPED: redis-server is not on PATH"),
            }
        } else {
            start_ferro(&dir.join("a"), &["--cluster-node-timeout", "1000"])
        };
        let b = start_ferro(&dir.join("b"), &["--cluster-node-timeout", "1000"]);
        let c = start_ferro(&dir.join("c"), &["--cluster-node-timeout", "1000"]);
        let (mut ca, mut cb, mut cc) = (a.conn(), b.conn(), c.conn());
        let cid = cc.q("CLUSTER MYID").as_str();
        for (conn, p) in [(&mut cb, b.port), (&mut cc, c.port)] {
            let bus = bus_of(conn);
            assert_eq!(ca.q(&format!("CLUSTER MEET 127.0.0.1 {p} {bus}")).as_str(), "OK");
        }
        let known =
            |conn: &mut Raw| conn.q("CLUSTER NODES").as_str().lines().filter(|l| !l.contains("handshake")).count();
        let t = Instant::now();
        while known(&mut ca) < 3 || known(&mut cb) < 3 || known(&mut cc) < 3 {
            assert!(t.elapsed() < Duration::from_secs(20), "no full mesh");
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(ca.q(&format!("CLUSTER FORGET {cid}")).as_str(), "OK");
        // B's PINGs carry gossip about C several times a second (and C still pings A).
        std::thread::sleep(Duration::from_secs(4));
        let nodes = ca.q("CLUSTER NODES").as_str();
        let kind = if a_is_redis { "redis-server" } else { "ferrocache" };
        assert!(!nodes.contains(&cid), "{kind} re-learned the forgotten node:\n{nodes}");
        assert!(!nodes.contains(&format!(":{}@", c.port)), "{kind} met the forgotten node again:\n{nodes}");
        assert_eq!(ca.q(&format!("CLUSTER FORGET {cid}")).as_str(), format!("ERR Unknown node {cid}"), "{kind}");
    }
}

/// A client blocked on a key (BLPOP, ...) whose slot moves away gets -MOVED, and one whose slot
/// leaves the cluster down gets -CLUSTERDOWN, instead of waiting for a write that will never
/// come (clusterRedirectBlockedClientIfNeeded), as with redis-server.
#[test]
fn blocked_clients_redirected_when_their_slot_moves() {
    for redis in [false, true] {
        let other_port = common::free_port();
        let conf = |p| two_node_conf(ME, p, OTHER, other_port, "0-8191", "8192-16383");
        let Some(p) = start_with_conf(redis, conf) else {
            eprintln!("SKIPPED: redis-server is not on PATH");
            return;
        };
        let kind = if redis { "redis-server" } else { "ferrocache" };
        let mut c = p.conn();
        wait_state(&mut c, "ok");
        // bar hashes to slot 5061 and hello to 866, both of this node's.
        let mut moved = p.conn();
        moved.set_timeout(Duration::from_secs(5));
        moved.send_cmd(&["BLPOP", "bar", "0"]);
        let mut down = p.conn();
        down.set_timeout(Duration::from_secs(5));
        down.send_cmd(&["BZPOPMIN", "hello", "0"]);
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(c.q(&format!("CLUSTER SETSLOT 5061 NODE {OTHER}")).as_str(), "OK", "{kind}");
        assert_eq!(moved.read(), Reply::Error(format!("MOVED 5061 127.0.0.1:{other_port}")), "{kind}");
        assert_eq!(c.q("CLUSTER DELSLOTS 866").as_str(), "OK", "{kind}");
        assert_eq!(down.read(), Reply::Error("CLUSTERDOWN The cluster is down".into()), "{kind}");
        // Both are ordinary connections again.
        assert_eq!(moved.q("PING").as_str(), "PONG");
        assert_eq!(down.q("PING").as_str(), "PONG");
    }
}
