//! The control plane's Sentinel-compatible endpoint (crates/control/src/sentinel.rs) over real
//! ferrocache nodes, driven by the `redis` crate's Sentinel client and raw RESP: discovery of
//! the primary and replicas, `+switch-master` on failover, and Sentinel's error replies.

mod common;
use common::{ferrocache, ServerProc};
use ferrocache_control::sentinel::{MasterView, ReplicaView, Sentinel, Topology};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A two-node group whose failover really swaps the nodes' roles (REPLICAOF), as the control
/// plane does.
struct Group {
    ports: Mutex<(u16, u16)>, // (primary, replica)
    epoch: Mutex<u64>,
    sentinel: Mutex<Option<Arc<Sentinel>>>,
}

fn cmd(port: u16, args: &[&str]) -> redis::Value {
    let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection().unwrap();
    let mut k = redis::cmd(args[0]);
    for a in &args[1..] {
        k.arg(*a);
    }
    k.query(&mut c).unwrap()
}

impl Topology for Group {
    fn masters(&self) -> Vec<MasterView> {
        let (p, r) = *self.ports.lock().unwrap();
        vec![MasterView {
            name: "web".into(),
            ip: "127.0.0.1".into(),
            port: p,
            config_epoch: *self.epoch.lock().unwrap(),
            replicas: vec![ReplicaView {
                ip: "127.0.0.1".into(),
                port: r,
                link_up: true,
                priority: 100,
                ..Default::default()
            }],
            ..Default::default()
        }]
    }
    fn failover(&self, name: &str) -> Result<(), String> {
        let (p, r) = *self.ports.lock().unwrap();
        cmd(r, &["REPLICAOF", "NO", "ONE"]);
        cmd(p, &["REPLICAOF", "127.0.0.1", &r.to_string()]);
        *self.ports.lock().unwrap() = (r, p);
        *self.epoch.lock().unwrap() += 1;
        if let Some(s) = self.sentinel.lock().unwrap().as_ref() {
            s.switch_master(name, ("127.0.0.1", p), ("127.0.0.1", r));
        }
        Ok(())
    }
}

fn start_sentinel(group: Arc<Group>) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let s = Sentinel::new(group.clone());
    *group.sentinel.lock().unwrap() = Some(s.clone());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move { s.serve(tokio::net::TcpListener::from_std(listener).unwrap()).await });
    });
    port
}

fn wait_synced(replica: &ServerProc) {
    let t = Instant::now();
    loop {
        let info: String = redis::cmd("INFO").arg("replication").query(&mut replica.sync()).unwrap();
        if info.contains("master_link_status:up") {
            return;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "replica did not sync: {info}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sentinel_discovery_and_switch_master() {
    let (a, b) = (ferrocache(&[]), ferrocache(&[]));
    cmd(b.port, &["REPLICAOF", "127.0.0.1", &a.port.to_string()]);
    wait_synced(&b);
    let group =
        Arc::new(Group { ports: Mutex::new((a.port, b.port)), epoch: Mutex::new(0), sentinel: Mutex::new(None) });
    let sport = start_sentinel(group.clone());
    let surl = format!("redis://127.0.0.1:{sport}/");

    // The redis crate's Sentinel client finds the primary (and checks its ROLE) and a replica.
    let mut sentinel = redis::sentinel::Sentinel::build(vec![surl.as_str()]).unwrap();
    let mut primary = sentinel.master_for("web", None).unwrap().get_connection().unwrap();
    let _: () = redis::cmd("SET").arg("k").arg("v1").query(&mut primary).unwrap();
    let info: String = redis::cmd("INFO").arg("server").query(&mut primary).unwrap();
    assert!(info.contains(&format!("tcp_port:{}", a.port)), "discovered the wrong primary");
    let mut replica = sentinel.replica_for("web", None).unwrap().get_connection().unwrap();
    let t = Instant::now();
    while redis::cmd("GET").arg("k").query::<Option<String>>(&mut replica).unwrap().as_deref() != Some("v1") {
        assert!(t.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(sentinel.master_for("nosuch", None).is_err());

    // Raw replies in Sentinel's shapes.
    let mut raw = common::Raw::connect(sport);
    assert_eq!(
        raw.qraw("SENTINEL GET-MASTER-ADDR-BY-NAME web"),
        format!("*2\r\n$9\r\n127.0.0.1\r\n${}\r\n{}\r\n", a.port.to_string().len(), a.port)
    );
    assert_eq!(raw.qraw("SENTINEL GET-MASTER-ADDR-BY-NAME nosuch"), "*-1\r\n");
    assert_eq!(raw.qraw("SENTINEL MASTER nosuch"), "-ERR No such master with that name\r\n");
    assert_eq!(raw.qraw("SENTINEL REPLICAS"), "-ERR wrong number of arguments for 'sentinel|replicas' command\r\n");
    assert_eq!(
        raw.qraw("SENTINEL CKQUORUM web"),
        "+OK 1 usable Sentinels. Quorum and failover authorization can be reached\r\n"
    );
    assert_eq!(raw.qraw("ROLE"), "*2\r\n$8\r\nsentinel\r\n*1\r\n$3\r\nweb\r\n");
    assert!(raw
        .qraw("INFO sentinel")
        .contains(&format!("master0:name=web,status=ok,address=127.0.0.1:{},slaves=1,sentinels=1", a.port)));
    assert!(raw.qraw("NOSUCH x").starts_with("-ERR unknown command 'NOSUCH'"));

    // A subscriber sees +switch-master when the group fails over (SENTINEL FAILOVER here).
    let mut sub = common::Raw::connect(sport);
    assert_eq!(sub.qraw("SUBSCRIBE +switch-master"), "*3\r\n$9\r\nsubscribe\r\n$14\r\n+switch-master\r\n:1\r\n");
    assert!(sub.qraw("GET x").starts_with("-ERR Can't execute 'get'"));
    assert_eq!(raw.qraw("SENTINEL FAILOVER web"), "+OK\r\n");
    let msg = sub.read_str();
    let want = format!("127.0.0.1 {} 127.0.0.1 {}", a.port, b.port);
    assert!(msg.contains("$7\r\nmessage\r\n") && msg.contains(&format!("web {want}")), "{msg}");

    // Discovery now gives the promoted node, which takes writes; the old primary follows it.
    let mut primary = sentinel.master_for("web", None).unwrap().get_connection().unwrap();
    let _: () = redis::cmd("SET").arg("k").arg("v2").query(&mut primary).unwrap();
    wait_synced(&a);
    let t = Instant::now();
    while redis::cmd("GET").arg("k").query::<Option<String>>(&mut a.sync()).unwrap().as_deref() != Some("v2") {
        assert!(t.elapsed() < Duration::from_secs(10), "old primary did not follow the new one");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(raw.qraw("SENTINEL MASTER web").contains("config-epoch\r\n$1\r\n1\r\n"));
}
