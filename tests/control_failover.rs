//! End-to-end tests of replication groups in `ferrocache control`: real HTTP requests (and the
//! AWS CLI / boto3) against a control plane that starts real `ferrocache server` nodes, with
//! the primary/reader endpoints (TCP proxies in the control plane) and automatic failover.

mod common;

use common::control::{tags, ControlPlane};
use common::{encode, read_reply, Raw, Reply};
use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

impl ControlPlane {
    /// An error reply: its HTTP status, code and ElastiCache's error document shape.
    fn err(&self, params: &[(&str, &str)], status: u16, code: &str) -> String {
        let (s, body) = self.call(params);
        assert_eq!((s, tags(&body, "Code")), (status, vec![code.to_string()]), "{:?}: {}", params, body);
        assert!(
            body.starts_with(
                "<ErrorResponse xmlns=\"http://elasticache.amazonaws.com/doc/2015-02-02/\"><Error><Type>Sender</Type><Code>"
            ),
            "{}",
            body
        );
        assert_eq!(tags(&body, "RequestId").len(), 1);
        tags(&body, "Message")[0].clone()
    }

    fn describe(&self, id: &str) -> Group {
        Group(self.ok(&[("Action", "DescribeReplicationGroups"), ("ReplicationGroupId", id)]))
    }

    fn wait_available(&self, id: &str) -> Group {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let g = self.describe(id);
            if g.status() == "available" {
                return g;
            }
            assert!(Instant::now() < deadline, "{} never became available: {}", id, g.0);
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait_gone(&self, id: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (code, body) = self.call(&[("Action", "DescribeReplicationGroups"), ("ReplicationGroupId", id)]);
            if code == 404 {
                assert_eq!(tags(&body, "Code"), ["ReplicationGroupNotFoundFault"]);
                return;
            }
            assert!(Instant::now() < deadline, "{} never went away", id);
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn events(&self, id: &str, source_type: &str) -> Vec<String> {
        let ev = self.ok(&[("Action", "DescribeEvents"), ("SourceIdentifier", id), ("SourceType", source_type)]);
        tags(&ev, "Message")
    }
}

/// A DescribeReplicationGroups answer for one group.
struct Group(String);

impl Group {
    fn status(&self) -> String {
        tags(&self.0, "Status")[0].clone()
    }
    fn endpoint(&self, name: &str) -> u16 {
        tags(&tags(&self.0, name)[0], "Port")[0].parse().unwrap()
    }
    fn primary_endpoint(&self) -> u16 {
        self.endpoint("PrimaryEndpoint")
    }
    fn reader_endpoint(&self) -> u16 {
        self.endpoint("ReaderEndpoint")
    }
    /// (cluster id, node port, role) of each member.
    fn members(&self) -> Vec<(String, u16, String)> {
        tags(&self.0, "NodeGroupMember")
            .iter()
            .map(|m| {
                (
                    tags(m, "CacheClusterId")[0].clone(),
                    tags(&tags(m, "ReadEndpoint")[0], "Port")[0].parse().unwrap(),
                    tags(m, "CurrentRole")[0].clone(),
                )
            })
            .collect()
    }
    fn primary(&self) -> (String, u16) {
        let (c, p, _) = self.members().into_iter().find(|m| m.2 == "primary").unwrap();
        (c, p)
    }
    fn replicas(&self) -> Vec<u16> {
        self.members().into_iter().filter(|m| m.2 == "replica").map(|m| m.1).collect()
    }
}

/// One command on a fresh connection.
fn cmd(port: u16, args: &[&str]) -> Reply {
    let mut c = Raw::connect(port);
    c.cmd(args)
}

fn info_field(port: u16, section: &str, field: &str) -> String {
    let info = cmd(port, &["INFO", section]).as_str();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{}:", field)))
        .unwrap_or_else(|| panic!("{} not in {}", field, info))
        .trim()
        .to_string()
}

/// INFO of a node that may be down or (re)starting.
fn try_info(port: u16, section: &str) -> Option<String> {
    let mut w = Writer { port, conn: None };
    match w.cmd(&["INFO", section]) {
        Ok(Reply::Bulk(b)) => Some(String::from_utf8_lossy(&b).into_owned()),
        _ => None,
    }
}

fn try_pid(port: u16) -> Option<i32> {
    try_info(port, "server")?.lines().find_map(|l| l.strip_prefix("process_id:")).and_then(|p| p.trim().parse().ok())
}

fn pid_of(port: u16) -> i32 {
    info_field(port, "server", "process_id").parse().unwrap()
}

/// The node port a connection through an endpoint reached.
fn reached(endpoint: u16) -> u16 {
    info_field(endpoint, "server", "tcp_port").parse().unwrap()
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {}", what);
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn replication_group_lifecycle_endpoints_and_restart() {
    let mut cp = ControlPlane::new("life");
    let created = cp.ok(&[
        ("Action", "CreateReplicationGroup"),
        ("ReplicationGroupId", "Orders"),
        ("ReplicationGroupDescription", "orders cache"),
        ("NumCacheClusters", "3"),
        ("PreferredCacheClusterAZs.AvailabilityZone.1", "us-east-1a"),
        ("PreferredCacheClusterAZs.AvailabilityZone.2", "us-east-1b"),
        ("PreferredCacheClusterAZs.AvailabilityZone.3", "us-east-1c"),
        ("AutomaticFailoverEnabled", "true"),
        ("MultiAZEnabled", "true"),
        ("CacheNodeType", "cache.r6g.large"),
    ]);
    assert!(created.starts_with("<CreateReplicationGroupResponse xmlns=\"http://elasticache.amazonaws.com/doc/2015-02-02/\"><CreateReplicationGroupResult><ReplicationGroup><ReplicationGroupId>orders</ReplicationGroupId><Description>orders cache</Description><Status>creating</Status>"), "{}", created);
    assert_eq!(tags(&created, "ClusterId"), ["orders-001", "orders-002", "orders-003"]);

    let g = cp.wait_available("orders");
    assert_eq!(tags(&g.0, "AutomaticFailover"), ["enabled"]);
    assert_eq!(tags(&g.0, "MultiAZ"), ["enabled"]);
    assert_eq!(tags(&g.0, "CacheNodeType"), ["cache.r6g.large"]);
    assert_eq!(tags(&g.0, "NodeGroupId"), ["0001"]);
    assert_eq!(tags(&g.0, "PreferredAvailabilityZone"), ["us-east-1a", "us-east-1b", "us-east-1c"]);
    assert_eq!(tags(&g.0, "CacheNodeId"), ["0001", "0001", "0001"]);
    assert_eq!(g.primary().0, "orders-001");
    let (pe, re) = (g.primary_endpoint(), g.reader_endpoint());
    let replicas = g.replicas();
    assert_eq!(replicas.len(), 2);
    for r in &replicas {
        assert_eq!(info_field(*r, "replication", "role"), "slave");
        assert_eq!(info_field(*r, "replication", "master_port"), g.primary().1.to_string());
    }

    // The primary endpoint reaches the primary; writes reach both replicas.
    assert_eq!(reached(pe), g.primary().1);
    let mut c = Raw::connect(pe);
    assert_eq!(c.q("SET greeting hello"), Reply::Simple("OK".into()));
    assert_eq!(c.q("WAIT 2 2000"), Reply::Int(2));
    // The reader endpoint spreads connections over the replicas.
    let mut seen: Vec<u16> = (0..6).map(|_| reached(re)).collect();
    seen.sort();
    seen.dedup();
    let mut want = replicas.clone();
    want.sort();
    assert_eq!(seen, want, "reader endpoint round-robin");
    assert_eq!(cmd(re, &["GET", "greeting"]), Reply::Bulk(b"hello".to_vec()));

    // Member clusters are cache clusters of the group.
    let clusters = cp.ok(&[("Action", "DescribeCacheClusters"), ("ShowCacheNodeInfo", "true")]);
    assert_eq!(tags(&clusters, "CacheClusterId"), ["orders-001", "orders-002", "orders-003"]);
    assert_eq!(tags(&clusters, "ReplicationGroupId"), ["orders", "orders", "orders"]);
    cp.err(&[("Action", "DeleteCacheCluster"), ("CacheClusterId", "orders-001")], 400, "InvalidCacheClusterState");

    // A reader connection to orders-002 (it stays a replica through the switch below).
    let port_002 = g.members().into_iter().find(|m| m.0 == "orders-002").unwrap().1;
    let mut reader_002 = loop {
        let mut r = Raw::connect(re);
        let info = r.cmd(&["INFO", "server"]).as_str();
        if info.contains(&format!("tcp_port:{}\r", port_002)) {
            break r;
        }
    };

    // Modify: description, and a planned switch of the primary.
    let m = cp.ok(&[
        ("Action", "ModifyReplicationGroup"),
        ("ReplicationGroupId", "orders"),
        ("ReplicationGroupDescription", "orders v2"),
        ("PrimaryClusterId", "orders-003"),
        ("ApplyImmediately", "true"),
    ]);
    assert_eq!(tags(&m, "Status")[0], "modifying");
    let g = cp.wait_available("orders");
    assert_eq!(tags(&g.0, "Description"), ["orders v2"]);
    assert_eq!(g.primary().0, "orders-003");
    assert_eq!(reached(pe), g.primary().1, "primary endpoint follows the switch");
    assert!(c.try_read().is_err() || c.closed(), "connections to the old primary are closed");
    assert_eq!(reader_002.q("GET greeting"), Reply::Bulk(b"hello".to_vec()), "reader connections stay");
    let mut c = Raw::connect(pe);
    assert_eq!(c.q("GET greeting"), Reply::Bulk(b"hello".to_vec()));
    assert_eq!(c.q("SET k2 v2"), Reply::Simple("OK".into()));
    assert_eq!(c.q("WAIT 2 5000"), Reply::Int(2));
    for r in g.replicas() {
        assert_eq!(info_field(r, "replication", "master_port"), g.primary().1.to_string());
    }

    // TestFailover: another member becomes primary, the old one a replica; events recorded.
    let t = cp.ok(&[("Action", "TestFailover"), ("ReplicationGroupId", "orders"), ("NodeGroupId", "0001")]);
    assert_eq!(tags(&t, "Status")[0], "modifying");
    let g = cp.wait_available("orders");
    assert_ne!(g.primary().0, "orders-003");
    assert_eq!(reached(pe), g.primary().1);
    assert_eq!(cmd(pe, &["GET", "k2"]), Reply::Bulk(b"v2".to_vec()));
    let ev = cp.events("orders", "replication-group");
    assert!(ev.contains(&"Test Failover API called for node group 0001".to_string()), "{:?}", ev);
    assert!(
        ev.contains(&format!("Failover from master node orders-003 to replica node {} completed", g.primary().0)),
        "{:?}",
        ev
    );
    assert!(ev.contains(&format!("Failover to replica node {} completed", g.primary().0)), "{:?}", ev);

    // Increase to 4 replicas (ReplicaConfiguration form), then back to 2 by ids.
    let inc = cp.ok(&[
        ("Action", "IncreaseReplicaCount"),
        ("ReplicationGroupId", "orders"),
        ("ReplicaConfiguration.ConfigureShard.1.NodeGroupId", "0001"),
        ("ReplicaConfiguration.ConfigureShard.1.NewReplicaCount", "4"),
        ("ReplicaConfiguration.ConfigureShard.1.PreferredAvailabilityZones.PreferredAvailabilityZone.1", "us-east-1d"),
        ("ApplyImmediately", "true"),
    ]);
    assert_eq!(tags(&inc, "Status")[0], "modifying");
    let g = cp.wait_available("orders");
    assert_eq!(tags(&g.0, "ClusterId"), ["orders-001", "orders-002", "orders-003", "orders-004", "orders-005"]);
    assert!(tags(&g.0, "PreferredAvailabilityZone").contains(&"us-east-1d".to_string()));
    assert_eq!(cmd(pe, &["WAIT", "4", "5000"]), Reply::Int(4));
    for r in g.replicas() {
        assert_eq!(cmd(r, &["GET", "greeting"]), Reply::Bulk(b"hello".to_vec()), "new replicas have the data");
    }
    let primary = g.primary().0;
    let victims: Vec<String> = g.members().into_iter().filter(|m| m.2 == "replica").map(|m| m.0).take(2).collect();
    let victim_ports: Vec<u16> = g.members().into_iter().filter(|m| victims.contains(&m.0)).map(|m| m.1).collect();
    cp.ok(&[
        ("Action", "DecreaseReplicaCount"),
        ("ReplicationGroupId", "orders"),
        ("NewReplicaCount", "2"),
        ("ReplicasToRemove.member.1", &victims[0]),
        ("ReplicasToRemove.member.2", &victims[1]),
        ("ApplyImmediately", "true"),
    ]);
    let g = cp.wait_available("orders");
    assert_eq!(g.members().len(), 3);
    assert_eq!(g.primary().0, primary);
    for v in &victims {
        assert!(!tags(&g.0, "ClusterId").contains(v));
    }
    for p in &victim_ports {
        assert!(TcpStream::connect(("127.0.0.1", *p)).is_err(), "removed replica on {} stopped", p);
    }
    // Without ids: the newest replica goes.
    cp.ok(&[
        ("Action", "DecreaseReplicaCount"),
        ("ReplicationGroupId", "orders"),
        ("NewReplicaCount", "1"),
        ("ApplyImmediately", "true"),
    ]);
    let g = cp.wait_available("orders");
    assert_eq!(g.members().len(), 2);
    let ev = cp.events("orders", "replication-group");
    assert!(ev.contains(&"Added replica cluster orders-005 to replication group orders".to_string()), "{:?}", ev);
    assert!(ev.contains(&format!("Removed replica cluster {} from replication group orders", victims[0])), "{:?}", ev);
    assert!(cp.events("orders-005", "cache-cluster").contains(&"Cache cluster created".to_string()));

    // kill -9 of the control plane: the group, its nodes (with their data) and its endpoint
    // ports survive; the endpoints are served again by the restarted control plane.
    let before = g.members();
    cp.kill();
    assert!(TcpStream::connect(("127.0.0.1", pe)).is_err(), "endpoints live in the control plane");
    cp.start();
    let g = cp.wait_available("orders");
    assert_eq!(g.members(), before);
    assert_eq!((g.primary_endpoint(), g.reader_endpoint()), (pe, re));
    assert_eq!(cmd(pe, &["GET", "k2"]), Reply::Bulk(b"v2".to_vec()));
    assert_eq!(cmd(re, &["GET", "greeting"]), Reply::Bulk(b"hello".to_vec()));

    // Disable automatic failover, then delete.
    let m = cp.ok(&[
        ("Action", "ModifyReplicationGroup"),
        ("ReplicationGroupId", "orders"),
        ("AutomaticFailoverEnabled", "false"),
        ("MultiAZEnabled", "false"),
        ("ApplyImmediately", "true"),
    ]);
    assert_eq!(tags(&m, "AutomaticFailover"), ["disabled"]);
    let del = cp.ok(&[("Action", "DeleteReplicationGroup"), ("ReplicationGroupId", "orders")]);
    assert_eq!(tags(&del, "Status")[0], "deleting");
    cp.wait_gone("orders");
    for (_, p, _) in &before {
        assert!(TcpStream::connect(("127.0.0.1", *p)).is_err(), "node on {} stopped", p);
    }
    assert!(TcpStream::connect(("127.0.0.1", pe)).is_err(), "primary endpoint closed");
    assert!(TcpStream::connect(("127.0.0.1", re)).is_err(), "reader endpoint closed");
    let clusters = cp.ok(&[("Action", "DescribeCacheClusters")]);
    assert!(tags(&clusters, "CacheClusterId").is_empty(), "{}", clusters);
    let ev = cp.events("orders", "replication-group");
    assert_eq!(ev[0], "Replication group orders deleted");
    assert!(ev.contains(&"Replication group orders created".to_string()));
}

#[test]
fn replication_group_errors() {
    let cp = ControlPlane::new("errors");
    cp.err(&[("Action", "NoSuchAction")], 400, "InvalidAction");
    cp.err(&[("Action", "CreateReplicationGroup"), ("ReplicationGroupId", "g")], 400, "MissingParameter");
    cp.err(&[("Action", "CreateReplicationGroup"), ("ReplicationGroupDescription", "d")], 400, "MissingParameter");
    let create = |extra: &[(&'static str, &'static str)]| {
        let mut p = vec![
            ("Action", "CreateReplicationGroup"),
            ("ReplicationGroupId", "g1"),
            ("ReplicationGroupDescription", "d"),
        ];
        p.extend_from_slice(extra);
        p
    };
    let bad = [
        (vec![("ReplicationGroupId", "1bad")], "InvalidParameterValue"),
        (vec![("ReplicationGroupId", "a--b")], "InvalidParameterValue"),
        (vec![("Engine", "memcached")], "InvalidParameterValue"),
        (vec![("NumCacheClusters", "7")], "InvalidParameterValue"),
        (vec![("NumCacheClusters", "0")], "InvalidParameterValue"),
        (vec![("ReplicasPerNodeGroup", "6")], "InvalidParameterValue"),
        (vec![("NumCacheClusters", "abc")], "InvalidParameterValue"),
        (vec![("NumCacheClusters", "3"), ("ReplicasPerNodeGroup", "1")], "InvalidParameterCombination"),
        (vec![("AutomaticFailoverEnabled", "true")], "InvalidParameterCombination"),
        (vec![("NumCacheClusters", "2"), ("MultiAZEnabled", "true")], "InvalidParameterCombination"),
        (
            vec![("NumCacheClusters", "2"), ("PreferredCacheClusterAZs.AvailabilityZone.1", "us-east-1a")],
            "InvalidParameterCombination",
        ),
        // Three node groups are cluster mode (tests/control_cluster_mode.rs): not with ClusterMode disabled.
        (vec![("NumNodeGroups", "3"), ("ClusterMode", "disabled")], "InvalidParameterCombination"),
        (vec![("EngineVersion", "99.0")], "InvalidParameterValue"),
    ];
    for (extra, code) in bad {
        let mut p = create(&[]);
        for (k, v) in extra {
            if let Some(slot) = p.iter_mut().find(|(pk, _)| *pk == k) {
                slot.1 = v;
            } else {
                p.push((k, v));
            }
        }
        cp.err(&p, 400, code);
    }
    for action in ["DescribeReplicationGroups", "ModifyReplicationGroup", "DeleteReplicationGroup"] {
        let msg = cp.err(&[("Action", action), ("ReplicationGroupId", "nope")], 404, "ReplicationGroupNotFoundFault");
        assert_eq!(msg, "Replication group nope not found.");
    }
    cp.err(&[("Action", "DescribeReplicationGroups"), ("MaxRecords", "5")], 400, "InvalidParameterValue");
    cp.err(
        &[
            ("Action", "IncreaseReplicaCount"),
            ("ReplicationGroupId", "nope"),
            ("NewReplicaCount", "2"),
            ("ApplyImmediately", "true"),
        ],
        404,
        "ReplicationGroupNotFoundFault",
    );
    cp.err(
        &[("Action", "TestFailover"), ("ReplicationGroupId", "nope"), ("NodeGroupId", "0001")],
        404,
        "ReplicationGroupNotFoundFault",
    );
    cp.err(&[("Action", "TestFailover"), ("ReplicationGroupId", "nope")], 400, "MissingParameter");

    // A group with one replica, automatic failover off.
    cp.ok(&create(&[("NumCacheClusters", "2")]));
    cp.err(&create(&[("NumCacheClusters", "2")]), 400, "ReplicationGroupAlreadyExists");
    cp.err(
        &[("Action", "ModifyReplicationGroup"), ("ReplicationGroupId", "g1"), ("ReplicationGroupDescription", "x")],
        400,
        "InvalidReplicationGroupState",
    );
    cp.wait_available("g1");
    // A cache cluster whose id a new member would take.
    cp.ok(&[("Action", "CreateCacheCluster"), ("CacheClusterId", "g2-001"), ("Engine", "redis")]);
    cp.err(
        &[("Action", "CreateReplicationGroup"), ("ReplicationGroupId", "g2"), ("ReplicationGroupDescription", "d")],
        400,
        "CacheClusterAlreadyExists",
    );
    cp.err(
        &[("Action", "DescribeReplicationGroups"), ("ReplicationGroupId", "g2")],
        404,
        "ReplicationGroupNotFoundFault",
    );

    let count = |action: &'static str, n: &'static str| {
        vec![("Action", action), ("ReplicationGroupId", "g1"), ("NewReplicaCount", n), ("ApplyImmediately", "true")]
    };
    cp.err(&count("IncreaseReplicaCount", "6"), 400, "InvalidParameterValue");
    cp.err(&count("IncreaseReplicaCount", "1"), 400, "InvalidParameterValue");
    cp.err(&count("DecreaseReplicaCount", "1"), 400, "InvalidParameterValue");
    cp.err(&count("DecreaseReplicaCount", "-1"), 400, "InvalidParameterValue");
    cp.err(
        &[("Action", "IncreaseReplicaCount"), ("ReplicationGroupId", "g1"), ("NewReplicaCount", "2")],
        400,
        "MissingParameter",
    );
    cp.err(
        &[("Action", "IncreaseReplicaCount"), ("ReplicationGroupId", "g1"), ("ApplyImmediately", "true")],
        400,
        "InvalidParameterCombination",
    );
    cp.err(
        &[
            ("Action", "IncreaseReplicaCount"),
            ("ReplicationGroupId", "g1"),
            ("NewReplicaCount", "2"),
            ("ReplicaConfiguration.ConfigureShard.1.NodeGroupId", "0001"),
            ("ReplicaConfiguration.ConfigureShard.1.NewReplicaCount", "2"),
            ("ApplyImmediately", "true"),
        ],
        400,
        "InvalidParameterCombination",
    );
    cp.err(
        &[
            ("Action", "IncreaseReplicaCount"),
            ("ReplicationGroupId", "g1"),
            ("ReplicaConfiguration.ConfigureShard.1.NodeGroupId", "0002"),
            ("ReplicaConfiguration.ConfigureShard.1.NewReplicaCount", "2"),
            ("ApplyImmediately", "true"),
        ],
        404,
        "NodeGroupNotFoundFault",
    );
    cp.err(
        &[
            ("Action", "DecreaseReplicaCount"),
            ("ReplicationGroupId", "g1"),
            ("ReplicasToRemove.member.1", "g1-001"),
            ("ApplyImmediately", "true"),
        ],
        400,
        "InvalidParameterValue",
    );
    cp.err(
        &[
            ("Action", "DecreaseReplicaCount"),
            ("ReplicationGroupId", "g1"),
            ("ReplicasToRemove.member.1", "other-001"),
            ("ApplyImmediately", "true"),
        ],
        400,
        "InvalidParameterValue",
    );
    cp.err(
        &[
            ("Action", "DecreaseReplicaCount"),
            ("ReplicationGroupId", "g1"),
            ("NewReplicaCount", "0"),
            ("ReplicasToRemove.member.1", "g1-002"),
            ("ReplicasToRemove.member.2", "g1-001"),
            ("ApplyImmediately", "true"),
        ],
        400,
        "InvalidParameterCombination",
    );
    cp.err(
        &[("Action", "TestFailover"), ("ReplicationGroupId", "g1"), ("NodeGroupId", "0001")],
        400,
        "InvalidReplicationGroupState",
    );
    cp.err(
        &[("Action", "TestFailover"), ("ReplicationGroupId", "g1"), ("NodeGroupId", "0002")],
        404,
        "NodeGroupNotFoundFault",
    );
    cp.err(
        &[("Action", "ModifyReplicationGroup"), ("ReplicationGroupId", "g1"), ("MultiAZEnabled", "true")],
        400,
        "InvalidParameterCombination",
    );
    cp.err(
        &[("Action", "ModifyReplicationGroup"), ("ReplicationGroupId", "g1"), ("PrimaryClusterId", "zzz")],
        400,
        "InvalidParameterValue",
    );
    cp.err(
        &[("Action", "ModifyReplicationGroup"), ("ReplicationGroupId", "g1"), ("AutomaticFailoverEnabled", "maybe")],
        400,
        "InvalidParameterValue",
    );
    // Down to 0 replicas (allowed without automatic failover); then automatic failover cannot
    // be turned on.
    cp.ok(&count("DecreaseReplicaCount", "0"));
    let g = cp.wait_available("g1");
    assert_eq!(g.members().len(), 1);
    assert!(g.replicas().is_empty());
    // The reader endpoint falls back to the primary.
    assert_eq!(reached(g.reader_endpoint()), g.primary().1);
    cp.err(
        &[("Action", "ModifyReplicationGroup"), ("ReplicationGroupId", "g1"), ("AutomaticFailoverEnabled", "true")],
        400,
        "InvalidParameterCombination",
    );
    // Delete keeping the primary: it stays as a standalone cache cluster (with its data); the
    // replica goes.
    cp.ok(&count("IncreaseReplicaCount", "1"));
    let g = cp.wait_available("g1");
    let (pid_port, replica) = (g.primary().1, g.replicas()[0]);
    assert_eq!(cmd(g.primary_endpoint(), &["SET", "kept", "yes"]), Reply::Simple("OK".into()));
    cp.ok(&[("Action", "DeleteReplicationGroup"), ("ReplicationGroupId", "g1"), ("RetainPrimaryCluster", "true")]);
    cp.err(&[("Action", "DeleteReplicationGroup"), ("ReplicationGroupId", "g1")], 400, "InvalidReplicationGroupState");
    cp.wait_gone("g1");
    assert!(TcpStream::connect(("127.0.0.1", replica)).is_err(), "replica stopped");
    let d = cp.ok(&[("Action", "DescribeCacheClusters"), ("CacheClusterId", "g1-001"), ("ShowCacheNodeInfo", "true")]);
    assert_eq!(tags(&d, "CacheClusterStatus"), ["available"]);
    assert!(tags(&d, "ReplicationGroupId").is_empty(), "{}", d);
    assert_eq!(cmd(pid_port, &["GET", "kept"]), Reply::Bulk(b"yes".to_vec()));
    let (code, _) = cp.call(&[("Action", "DescribeCacheClusters"), ("CacheClusterId", "g1-002")]);
    assert_eq!(code, 404);
    // It is an ordinary cache cluster now.
    cp.ok(&[("Action", "DeleteCacheCluster"), ("CacheClusterId", "g1-001")]);
}

/// A client of the primary endpoint that reconnects on errors.
struct Writer {
    port: u16,
    conn: Option<Raw>,
}

impl Writer {
    fn cmd(&mut self, args: &[&str]) -> std::io::Result<Reply> {
        if self.conn.is_none() {
            let s = TcpStream::connect(("127.0.0.1", self.port))?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.set_nodelay(true)?;
            self.conn = Some(Raw { r: BufReader::new(s.try_clone()?), w: s });
        }
        let c = self.conn.as_mut().unwrap();
        let r = c.w.write_all(&encode(args)).and_then(|_| {
            let mut raw = Vec::new();
            read_reply(&mut c.r, &mut raw)
        });
        if r.is_err() {
            self.conn = None;
        }
        r
    }
}

#[test]
fn failover_under_write_load_keeps_acknowledged_writes() {
    let cp = ControlPlane::new("failover");
    cp.ok(&[
        ("Action", "CreateReplicationGroup"),
        ("ReplicationGroupId", "ha"),
        ("ReplicationGroupDescription", "failover test"),
        ("ReplicasPerNodeGroup", "2"),
        ("AutomaticFailoverEnabled", "true"),
    ]);
    let g = cp.wait_available("ha");
    let pe = g.primary_endpoint();
    let (old_primary, old_port) = g.primary();
    let old_pid = pid_of(old_port);

    // Bounded write load through the primary endpoint, WAIT 1 1000 after each write; the
    // primary is killed (kill -9) after 300 writes.
    let mut w = Writer { port: pe, conn: None };
    let mut acked: Vec<String> = Vec::new();
    let mut killed_at = None;
    let mut resumed_after = None;
    let mut errors = 0;
    let mut i = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.len() < 900 {
        assert!(Instant::now() < deadline, "write load did not finish: {} acked", acked.len());
        if i == 300 && killed_at.is_none() {
            common::control::signal(old_pid, 9);
            killed_at = Some(Instant::now());
        }
        let key = format!("key:{}", i);
        i += 1;
        match w.cmd(&["SET", &key, &format!("value-{}", i)]) {
            Ok(Reply::Simple(s)) if s == "OK" => {
                if let (Some(k), None) = (killed_at, resumed_after) {
                    resumed_after = Some(k.elapsed());
                }
                match w.cmd(&["WAIT", "1", "1000"]) {
                    Ok(Reply::Int(n)) if n >= 1 => acked.push(key),
                    _ => {}
                }
            }
            _ => {
                errors += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
    let failover = resumed_after.expect("writes resumed");
    println!(
        "failover: writes accepted again through the primary endpoint {} ms after kill -9 of the primary ({} failed attempts, {} acknowledged writes)",
        failover.as_millis(),
        errors,
        acked.len()
    );
    assert!(failover < Duration::from_secs(2), "failover took {:?}", failover);

    // Every acknowledged write is there, through the same endpoint and on every replica.
    let g = cp.wait_available("ha");
    assert_ne!(g.primary().0, old_primary);
    let mut c = Raw::connect(pe);
    assert_eq!(c.cmd(&["WAIT", "2", "5000"]), Reply::Int(2), "the failed node came back as a replica");
    for k in &acked {
        let v = c.cmd(&["EXISTS", k]);
        assert_eq!(v, Reply::Int(1), "acknowledged write {} lost", k);
    }
    let dbsize = c.cmd(&["DBSIZE"]).as_int();
    for r in g.replicas() {
        assert_eq!(cmd(r, &["DBSIZE"]).as_int(), dbsize);
    }
    // Self-healing: the failed member is a replica again (fresh node on its port, new pid).
    let back = g.members().into_iter().find(|m| m.0 == old_primary).unwrap();
    assert_eq!(back.2, "replica");
    assert_eq!(back.1, old_port);
    assert_ne!(pid_of(old_port), old_pid);
    let ev = cp.events("ha", "replication-group");
    assert!(ev.contains(&format!("Failover to replica node {} completed", g.primary().0)), "{:?}", ev);
    let ev = cp.events(&old_primary, "cache-cluster");
    assert!(ev.contains(&"Recovering cache nodes 0001".to_string()), "{:?}", ev);
    assert!(ev.contains(&"Finished recovery for cache nodes 0001".to_string()), "{:?}", ev);

    // A crashed replica is replaced too (the primary stays).
    let primary = g.primary();
    let replica = g.replicas()[0];
    let rpid = pid_of(replica);
    common::control::signal(rpid, 9);
    wait_until("the replica to come back", Duration::from_secs(20), || {
        try_pid(replica).is_some_and(|p| p != rpid)
            && try_info(replica, "replication").is_some_and(|i| i.contains("master_link_status:up"))
    });
    assert_ne!(pid_of(replica), rpid);
    assert_eq!(cmd(replica, &["DBSIZE"]).as_int(), dbsize);
    let g = cp.wait_available("ha");
    assert_eq!(g.primary(), primary);

    // A hung primary (SIGSTOP: its port still accepts connections, commands time out) is
    // failed over too, and killed and replaced. (Waits out the flapping protection first: at
    // most one automatic failover per group every 5 s.)
    let since = killed_at.unwrap().elapsed();
    if since < Duration::from_secs(6) {
        std::thread::sleep(Duration::from_secs(6) - since);
    }
    let (hung_id, hung_port) = primary.clone();
    let hung_pid = pid_of(hung_port);
    let mut w = Writer { port: pe, conn: None };
    assert!(matches!(w.cmd(&["SET", "before-hang", "1"]), Ok(Reply::Simple(_))));
    assert!(matches!(w.cmd(&["WAIT", "2", "2000"]), Ok(Reply::Int(2))));
    assert_eq!(common::control::signal(hung_pid, 19), 0);
    let proc_state = |pid: i32| {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid)).unwrap_or_default();
        stat.rsplit(')').next().unwrap_or("").trim_start().chars().next().unwrap_or('?')
    };
    wait_until("the node to stop", Duration::from_secs(5), || proc_state(hung_pid) == 'T');
    let stopped = Instant::now();
    loop {
        if let Ok(Reply::Simple(s)) = w.cmd(&["SET", "after-hang", "1"]) {
            assert_eq!(s, "OK");
            break;
        }
        assert!(stopped.elapsed() < Duration::from_secs(20), "no failover from a hung primary");
        std::thread::sleep(Duration::from_millis(5));
    }
    let hung_failover = stopped.elapsed();
    println!("failover from a hung (SIGSTOP) primary: writes accepted again after {} ms", hung_failover.as_millis());
    assert!(hung_failover < Duration::from_secs(2), "hung-primary failover took {:?}", hung_failover);
    let g = cp.wait_available("ha");
    assert_ne!(
        g.primary().0,
        hung_id,
        "state of {}: {}; events {:?}",
        hung_pid,
        proc_state(hung_pid),
        cp.events("ha", "replication-group")
    );
    assert_eq!(cmd(pe, &["GET", "before-hang"]), Reply::Bulk(b"1".to_vec()));
    wait_until("the hung node to be replaced", Duration::from_secs(20), || {
        try_pid(hung_port).is_some_and(|p| p != hung_pid)
    });
    assert!(
        !Path::new(&format!("/proc/{}", hung_pid)).exists() || {
            let stat = std::fs::read_to_string(format!("/proc/{}/stat", hung_pid)).unwrap_or_default();
            stat.rsplit(')').next().is_some_and(|r| r.trim_start().starts_with('Z'))
        },
        "the hung process was killed"
    );
    let primary = g.primary();

    // With automatic failover off, a failed primary is restarted in place instead.
    cp.ok(&[("Action", "ModifyReplicationGroup"), ("ReplicationGroupId", "ha"), ("AutomaticFailoverEnabled", "false")]);
    let ppid = pid_of(primary.1);
    common::control::signal(ppid, 9);
    wait_until("the primary to be restarted", Duration::from_secs(20), || {
        try_pid(primary.1).is_some_and(|p| p != ppid)
    });
    let g = cp.wait_available("ha");
    assert_eq!(g.primary(), primary);
    assert_eq!(cmd(pe, &["SET", "after", "restart"]), Reply::Simple("OK".into()));
}

/// The AWS CLI and boto3 for every replication-group action.
#[test]
fn aws_cli_and_boto3_replication_groups() {
    let Some(py) = common::control::shared_venv_python(&[("awscli", "awscli")]) else {
        println!("SKIPPED: could not install the AWS CLI (pip install awscli)");
        return;
    };
    let venv = py.parent().unwrap().parent().unwrap().to_path_buf();
    let aws = venv.join("bin/aws");
    let cp = ControlPlane::new("awscli");
    let endpoint = format!("http://127.0.0.1:{}", cp.port);
    let run = |args: &[&str]| -> String {
        let out = Command::new(&aws)
            .arg("elasticache")
            .args(args)
            .args(["--endpoint-url", &endpoint, "--region", "us-east-1", "--output", "json"])
            .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
            .env("AWS_SECRET_ACCESS_KEY", "secret")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .output()
            .unwrap();
        let (o, e) = (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "aws {:?}: {}{}", args, o, e);
        o
    };
    let fails = |args: &[&str]| -> String {
        let out = Command::new(&aws)
            .arg("elasticache")
            .args(args)
            .args(["--endpoint-url", &endpoint, "--region", "us-east-1"])
            .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
            .env("AWS_SECRET_ACCESS_KEY", "secret")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .output()
            .unwrap();
        assert!(!out.status.success(), "aws {:?} should fail", args);
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let out = run(&[
        "create-replication-group",
        "--replication-group-id",
        "cli",
        "--replication-group-description",
        "from the CLI",
        "--engine",
        "redis",
        "--cache-node-type",
        "cache.t3.micro",
        "--num-cache-clusters",
        "2",
        "--preferred-cache-cluster-a-zs",
        "us-east-1a",
        "us-east-1b",
        "--automatic-failover-enabled",
    ]);
    assert!(out.contains("\"Status\": \"creating\""), "{}", out);
    cp.wait_available("cli");
    // The CLI's waiter (it polls every 15 s, so only once the group is available).
    run(&["wait", "replication-group-available", "--replication-group-id", "cli"]);
    let out = run(&["describe-replication-groups", "--replication-group-id", "cli"]);
    assert!(out.contains("\"PrimaryEndpoint\"") && out.contains("\"ReaderEndpoint\""), "{}", out);
    assert!(
        out.contains("\"CurrentRole\": \"primary\"") && out.contains("\"AutomaticFailover\": \"enabled\""),
        "{}",
        out
    );
    let err = fails(&["describe-replication-groups", "--replication-group-id", "nope"]);
    assert!(
        err.contains("(ReplicationGroupNotFoundFault)") && err.contains("Replication group nope not found."),
        "{}",
        err
    );
    let err = fails(&[
        "increase-replica-count",
        "--replication-group-id",
        "cli",
        "--new-replica-count",
        "9",
        "--apply-immediately",
    ]);
    assert!(err.contains("(InvalidParameterValue)"), "{}", err);
    let out = run(&[
        "increase-replica-count",
        "--replication-group-id",
        "cli",
        "--new-replica-count",
        "2",
        "--apply-immediately",
    ]);
    assert!(out.contains("\"modifying\""), "{}", out);
    cp.wait_available("cli");
    let out = run(&[
        "modify-replication-group",
        "--replication-group-id",
        "cli",
        "--replication-group-description",
        "changed",
        "--primary-cluster-id",
        "cli-002",
        "--apply-immediately",
    ]);
    assert!(out.contains("\"Description\": \"changed\""), "{}", out);
    let g = cp.wait_available("cli");
    assert_eq!(g.primary().0, "cli-002");
    let out = run(&["test-failover", "--replication-group-id", "cli", "--node-group-id", "0001"]);
    assert!(out.contains("\"modifying\""), "{}", out);
    let g = cp.wait_available("cli");
    assert_ne!(g.primary().0, "cli-002");
    let out = run(&[
        "decrease-replica-count",
        "--replication-group-id",
        "cli",
        "--new-replica-count",
        "1",
        "--apply-immediately",
    ]);
    assert!(out.contains("\"modifying\""), "{}", out);
    let g = cp.wait_available("cli");
    assert_eq!(g.members().len(), 2);
    let out = run(&["describe-events", "--source-identifier", "cli", "--source-type", "replication-group"]);
    assert!(out.contains("Test Failover API called for node group 0001"), "{}", out);

    // boto3 (from the system python, when it has it) against the same group.
    let script = format!(
        r#"
import boto3, time
ec = boto3.client("elasticache", endpoint_url="{}", region_name="us-east-1",
                  aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret")
g = ec.describe_replication_groups(ReplicationGroupId="cli")["ReplicationGroups"][0]
assert g["NodeGroups"][0]["PrimaryEndpoint"]["Port"] > 0, g
assert g["NodeGroups"][0]["ReaderEndpoint"]["Port"] > 0, g
ec.increase_replica_count(ReplicationGroupId="cli", NewReplicaCount=2, ApplyImmediately=True)
def wait():
    for _ in range(300):
        if ec.describe_replication_groups(ReplicationGroupId="cli")["ReplicationGroups"][0]["Status"] == "available":
            return
        time.sleep(0.1)
    raise Exception("not available")
wait()
ec.test_failover(ReplicationGroupId="cli", NodeGroupId="0001")
wait()
r = ec.modify_replication_group(ReplicationGroupId="cli", ReplicationGroupDescription="boto3", ApplyImmediately=True)
assert r["ReplicationGroup"]["Description"] == "boto3"
ec.decrease_replica_count(ReplicationGroupId="cli", NewReplicaCount=1, ApplyImmediately=True)
wait()
try:
    ec.test_failover(ReplicationGroupId="cli", NodeGroupId="0002")
    raise Exception("no error")
except ec.exceptions.NodeGroupNotFoundFault:
    pass
ec.delete_replication_group(ReplicationGroupId="cli")
ec.get_waiter("replication_group_deleted").wait(ReplicationGroupId="cli", WaiterConfig={{"Delay": 1}})
print("boto3 ok")
"#,
        endpoint
    );
    // boto3 in the same venv (installed on first use), else a system python3 that has it.
    let venv_python = venv.join("bin/python");
    let has = |py: &Path| {
        Command::new(py).args(["-c", "import boto3"]).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
    };
    if !has(&venv_python) {
        let _ = Command::new(venv.join("bin/pip"))
            .args(["install", "-q", "boto3"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    let python = [venv_python.clone(), PathBuf::from("python3")].into_iter().find(|p| has(p));
    if let Some(python) = python {
        let out = Command::new(&python)
            .args(["-c", &script])
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "boto3: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        println!("boto3 ({}): describe/increase/test-failover/modify/decrease/delete passed", python.display());
    } else {
        println!("SKIPPED (boto3 part): could not install boto3 (pip install boto3)");
        run(&["delete-replication-group", "--replication-group-id", "cli"]);
    }
    cp.wait_gone("cli");
    println!("AWS CLI: create/describe/increase/modify/test-failover/decrease/describe-events passed");
}

#[test]
fn control_plane_killed_during_group_operations() {
    let mut cp = ControlPlane::new("midop");
    // Killed right after accepting a create: the restarted control plane finishes it.
    cp.ok(&[
        ("Action", "CreateReplicationGroup"),
        ("ReplicationGroupId", "half"),
        ("ReplicationGroupDescription", "d"),
        ("NumCacheClusters", "2"),
        ("AutomaticFailoverEnabled", "true"),
    ]);
    cp.kill();
    cp.start();
    let g = cp.wait_available("half");
    let (pe, re) = (g.primary_endpoint(), g.reader_endpoint());
    assert_eq!(g.replicas().len(), 1);
    assert_eq!(info_field(g.replicas()[0], "replication", "master_port"), g.primary().1.to_string());
    assert_eq!(cmd(pe, &["SET", "k", "v"]), Reply::Simple("OK".into()));
    assert_eq!(cmd(pe, &["WAIT", "1", "2000"]), Reply::Int(1));
    assert!(cp.events("half", "replication-group").contains(&"Replication group half created".to_string()));

    // Killed right after accepting IncreaseReplicaCount.
    cp.ok(&[
        ("Action", "IncreaseReplicaCount"),
        ("ReplicationGroupId", "half"),
        ("NewReplicaCount", "2"),
        ("ApplyImmediately", "true"),
    ]);
    cp.kill();
    cp.start();
    let g = cp.wait_available("half");
    assert_eq!(g.replicas().len(), 2);
    assert_eq!(cmd(pe, &["WAIT", "2", "5000"]), Reply::Int(2));

    // The primary dies while the control plane is down: the restarted control plane fails over
    // before serving, on the same endpoint ports, with the data.
    let (old, old_port) = g.primary();
    cp.kill();
    common::control::signal(pid_of(old_port), 9);
    cp.start();
    let g = cp.wait_available("half");
    assert_ne!(g.primary().0, old);
    assert_eq!((g.primary_endpoint(), g.reader_endpoint()), (pe, re));
    assert_eq!(cmd(pe, &["GET", "k"]), Reply::Bulk(b"v".to_vec()));
    assert_eq!(cmd(pe, &["WAIT", "2", "5000"]), Reply::Int(2), "the old primary is back as a replica");

    // A replica turned into a primary behind the control plane's back is repointed.
    let stray = g.replicas()[0];
    assert_eq!(cmd(stray, &["REPLICAOF", "NO", "ONE"]), Reply::Simple("OK".into()));
    wait_until("the stray replica to be repointed", Duration::from_secs(10), || {
        try_info(stray, "replication")
            .is_some_and(|i| i.contains("role:slave") && i.contains(&format!("master_port:{}\r", g.primary().1)))
    });

    // Killed right after accepting a delete: the restarted control plane finishes it.
    let ports: Vec<u16> = g.members().iter().map(|m| m.1).collect();
    cp.ok(&[("Action", "DeleteReplicationGroup"), ("ReplicationGroupId", "half")]);
    cp.kill();
    cp.start();
    cp.wait_gone("half");
    for p in &ports {
        assert!(TcpStream::connect(("127.0.0.1", *p)).is_err(), "node on {} stopped", p);
    }
    assert!(TcpStream::connect(("127.0.0.1", pe)).is_err());
    let leftover = std::fs::read_dir(cp.dir.join("nodes")).unwrap().count();
    assert_eq!(leftover, 0, "node data dirs removed");
}
