//! Cluster-mode replication groups in `ferrocache control` (sharded/): real HTTP requests
//! against a control plane that starts real `ferrocache server` nodes with `cluster-enabled
//! yes`, a client that follows MOVED/ASK as cluster clients do, kill -9 of shard primaries and
//! of the control plane in the middle of a resharding; and the AWS CLI, boto3 and redis-py's
//! RedisCluster scaling a group 3 -> 5 -> 2 shards under load (tests/control-cluster/live.py).

mod common;

use common::control::{tags, ControlPlane};
use common::{Raw, Reply};
use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

/// One DescribeReplicationGroups answer.
struct Group(String);

impl Group {
    fn status(&self) -> String {
        tags(&self.0, "Status")[0].clone()
    }
    fn config_port(&self) -> u16 {
        tags(&tags(&self.0, "ConfigurationEndpoint")[0], "Port")[0].parse().unwrap()
    }
    /// (node group id, status, slots, member cluster ids).
    fn shards(&self) -> Vec<(String, String, String, Vec<String>)> {
        tags(&self.0, "NodeGroup")
            .iter()
            .map(|ng| {
                (
                    tags(ng, "NodeGroupId")[0].clone(),
                    tags(ng, "Status")[0].clone(),
                    tags(ng, "Slots").first().cloned().unwrap_or_default(),
                    tags(ng, "CacheClusterId"),
                )
            })
            .collect()
    }
    fn progress(&self) -> Option<f64> {
        tags(&self.0, "ProgressPercentage").first().map(|p| p.parse().unwrap())
    }
}

fn describe(cp: &ControlPlane, id: &str) -> Group {
    Group(cp.ok(&[("Action", "DescribeReplicationGroups"), ("ReplicationGroupId", id)]))
}

fn wait_available(cp: &ControlPlane, id: &str, limit: Duration) -> Group {
    let deadline = Instant::now() + limit;
    loop {
        let g = describe(cp, id);
        if g.status() == "available" {
            return g;
        }
        assert!(Instant::now() < deadline, "{} never became available: {}", id, g.0);
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An error answer: (HTTP status, code, message).
fn error(cp: &ControlPlane, params: &[(&str, &str)]) -> (u16, String, String) {
    let (status, body) = cp.call(params);
    assert_ne!(status, 200, "{:?} was accepted: {}", params, body);
    (status, tags(&body, "Code")[0].clone(), tags(&body, "Message")[0].clone())
}

/// One command sent as a cluster client sends it: to `port`, then wherever -MOVED / -ASK say.
fn cluster_cmd(port: u16, args: &[&str]) -> Reply {
    let mut port = port;
    let mut asking = false;
    for _ in 0..10 {
        let mut c = Raw::connect(port);
        if asking {
            c.cmd(&["ASKING"]);
        }
        match c.cmd(args) {
            Reply::Error(e) if e.starts_with("MOVED ") || e.starts_with("ASK ") => {
                asking = e.starts_with("ASK ");
                port = e.rsplit(':').next().unwrap().parse().unwrap();
            }
            Reply::Error(e) if e.starts_with("TRYAGAIN") || e.starts_with("CLUSTERDOWN") => {
                std::thread::sleep(Duration::from_millis(100));
            }
            r => return r,
        }
    }
    panic!("{:?}: too many redirections", args);
}

/// CLUSTER NODES lines of the node on `port`: (id, port, flags, master id, slot count).
fn cluster_nodes(port: u16) -> Vec<(String, u16, String, String, usize)> {
    let text = Raw::connect(port).cmd(&["CLUSTER", "NODES"]).as_str();
    text.lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let p = f[1].split('@').next().unwrap().rsplit(':').next().unwrap().parse().unwrap_or(0);
            let slots = f[8..]
                .iter()
                .filter(|s| !s.starts_with('['))
                .map(|s| match s.split_once('-') {
                    Some((a, b)) => b.parse::<usize>().unwrap() - a.parse::<usize>().unwrap() + 1,
                    None => 1,
                })
                .sum();
            (f[0].to_string(), p, f[2].to_string(), f[3].to_string(), slots)
        })
        .collect()
}

fn pid_of(port: u16) -> i32 {
    let info = Raw::connect(port).cmd(&["INFO", "server"]).as_str();
    info.lines().find_map(|l| l.strip_prefix("process_id:")).unwrap().trim().parse().unwrap()
}

fn write_keys(port: u16, n: usize) {
    for i in 0..n {
        let k = format!("key:{}", i);
        assert_eq!(cluster_cmd(port, &["SET", &k, &format!("v{}", i)]), Reply::Simple("OK".into()));
    }
}

fn check_keys(port: u16, n: usize) {
    for i in 0..n {
        let k = format!("key:{}", i);
        assert_eq!(cluster_cmd(port, &["GET", &k]), Reply::Bulk(format!("v{}", i).into_bytes()), "{}", k);
    }
}

/// Member cluster id -> node port, from DescribeCacheClusters.
fn member_ports(cp: &ControlPlane) -> BTreeMap<String, u16> {
    let body = cp.ok(&[("Action", "DescribeCacheClusters"), ("ShowCacheNodeInfo", "true")]);
    tags(&body, "CacheCluster")
        .iter()
        .filter_map(|c| {
            let port = tags(&tags(c, "Endpoint").first()?.clone(), "Port")[0].parse().ok()?;
            Some((tags(c, "CacheClusterId")[0].clone(), port))
        })
        .collect()
}

#[test]
fn cluster_mode_groups_api_shapes_and_errors() {
    let cp = ControlPlane::new("cm-api");
    let created = cp.ok(&[
        ("Action", "CreateReplicationGroup"),
        ("ReplicationGroupId", "Shop"),
        ("ReplicationGroupDescription", "shop cache"),
        ("NumNodeGroups", "3"),
        ("ReplicasPerNodeGroup", "1"),
        ("CacheParameterGroupName", "default.redis7.cluster.on"),
    ]);
    assert_eq!(tags(&created, "Status")[0], "creating");
    assert_eq!(tags(&created, "ClusterEnabled"), ["true"]);
    let g = wait_available(&cp, "shop", Duration::from_secs(60));
    assert_eq!(tags(&g.0, "ClusterMode"), ["enabled"]);
    assert_eq!(tags(&g.0, "AutomaticFailover"), ["enabled"]);
    let shards = g.shards();
    assert_eq!(
        shards.iter().map(|s| (s.0.as_str(), s.1.as_str(), s.2.as_str())).collect::<Vec<_>>(),
        [("0001", "available", "0-5461"), ("0002", "available", "5462-10922"), ("0003", "available", "10923-16383")]
    );
    assert_eq!(shards[1].3, ["shop-0002-001", "shop-0002-002"]);
    // The configuration endpoint answers like a node of a healthy cluster.
    let cfg = g.config_port();
    let info = Raw::connect(cfg).cmd(&["CLUSTER", "INFO"]).as_str();
    assert!(info.contains("cluster_state:ok") && info.contains("cluster_size:3"), "{}", info);
    assert!(info.contains("cluster_known_nodes:6"), "{}", info);
    write_keys(cfg, 300);
    check_keys(cfg, 300);
    let member = cp.ok(&[("Action", "DescribeCacheClusters"), ("CacheClusterId", "shop-0001-001")]);
    assert_eq!(tags(&member, "CacheParameterGroupName"), ["default.redis7.cluster.on"]);
    assert_eq!(tags(&member, "ReplicationGroupId"), ["shop"]);

    // Requests ElastiCache refuses.
    let base =
        [("Action", "CreateReplicationGroup"), ("ReplicationGroupId", "bad"), ("ReplicationGroupDescription", "x")];
    let with = |extra: &[(&'static str, &'static str)]| -> Vec<(&'static str, &'static str)> {
        base.iter().copied().chain(extra.iter().copied()).collect()
    };
    for (extra, code) in [
        (&[("ClusterMode", "disabled"), ("NumNodeGroups", "3")][..], "InvalidParameterCombination"),
        (&[("NumNodeGroups", "3"), ("CacheParameterGroupName", "default.redis7")][..], "InvalidParameterCombination"),
        (&[("NumNodeGroups", "2"), ("AutomaticFailoverEnabled", "false")][..], "InvalidParameterCombination"),
        (&[("ClusterMode", "sideways")][..], "InvalidParameterValue"),
        (&[("NumNodeGroups", "501")][..], "NodeGroupsPerReplicationGroupQuotaExceeded"),
        (&[("NumNodeGroups", "2"), ("ReplicasPerNodeGroup", "6")][..], "InvalidParameterValue"),
        (&[("NumNodeGroups", "2"), ("MultiAZEnabled", "true")][..], "InvalidParameterCombination"),
        (&[("NumNodeGroups", "2"), ("NumCacheClusters", "2")][..], "InvalidParameterCombination"),
        (
            &[("NumNodeGroups", "2"), ("NodeGroupConfiguration.NodeGroupConfiguration.1.Slots", "0-16383")][..],
            "InvalidParameterCombination",
        ),
        (
            &[
                ("ClusterMode", "enabled"),
                ("NodeGroupConfiguration.NodeGroupConfiguration.1.Slots", "0-9000"),
                ("NodeGroupConfiguration.NodeGroupConfiguration.2.Slots", "8000-16383"),
            ][..],
            "InvalidParameterValue",
        ),
        (
            &[
                ("ClusterMode", "enabled"),
                ("NodeGroupConfiguration.NodeGroupConfiguration.1.Slots", "0-100"),
                ("NodeGroupConfiguration.NodeGroupConfiguration.2.Slots", "200-16383"),
            ][..],
            "InvalidParameterValue",
        ),
    ] {
        let (status, c, m) = error(&cp, &with(extra));
        assert_eq!((status, c.as_str()), (400, code), "{:?}: {}", extra, m);
    }
    let (_, code, _) = error(
        &cp,
        &[
            ("Action", "ModifyReplicationGroupShardConfiguration"),
            ("ReplicationGroupId", "shop"),
            ("NodeGroupCount", "2"),
            ("ApplyImmediately", "true"),
        ],
    );
    assert_eq!(code, "InvalidParameterValue");
    let (_, code, _) = error(
        &cp,
        &[
            ("Action", "ModifyReplicationGroupShardConfiguration"),
            ("ReplicationGroupId", "shop"),
            ("NodeGroupCount", "2"),
            ("ApplyImmediately", "true"),
            ("NodeGroupsToRemove.NodeGroupToRemove.1", "0009"),
        ],
    );
    assert_eq!(code, "InvalidParameterValue");
    let (_, code, _) = error(
        &cp,
        &[
            ("Action", "ModifyReplicationGroupShardConfiguration"),
            ("ReplicationGroupId", "shop"),
            ("NodeGroupCount", "3"),
            ("ApplyImmediately", "true"),
        ],
    );
    assert_eq!(code, "InvalidParameterValue");
    let (status, code, _) =
        error(&cp, &[("Action", "TestFailover"), ("ReplicationGroupId", "shop"), ("NodeGroupId", "0009")]);
    assert_eq!((status, code.as_str()), (404, "NodeGroupNotFoundFault"));
    let (_, code, _) = error(
        &cp,
        &[("Action", "DeleteReplicationGroup"), ("ReplicationGroupId", "shop"), ("RetainPrimaryCluster", "true")],
    );
    assert_eq!(code, "InvalidParameterCombination");
    let (_, code, _) = error(
        &cp,
        &[("Action", "ModifyReplicationGroup"), ("ReplicationGroupId", "shop"), ("PrimaryClusterId", "shop-0001-002")],
    );
    assert_eq!(code, "InvalidParameterCombination");

    // Per-shard replica counts: shard 0002 gets a second replica, then loses it again.
    cp.ok(&[
        ("Action", "IncreaseReplicaCount"),
        ("ReplicationGroupId", "shop"),
        ("ApplyImmediately", "true"),
        ("ReplicaConfiguration.ConfigureShard.1.NodeGroupId", "0002"),
        ("ReplicaConfiguration.ConfigureShard.1.NewReplicaCount", "2"),
        ("ReplicaConfiguration.ConfigureShard.1.PreferredAvailabilityZones.PreferredAvailabilityZone.1", "us-east-1c"),
    ]);
    let g = wait_available(&cp, "shop", Duration::from_secs(60));
    assert_eq!(g.shards()[1].3, ["shop-0002-001", "shop-0002-002", "shop-0002-003"]);
    assert_eq!(g.shards()[0].3.len(), 2);
    let ports = member_ports(&cp);
    let primary_id = cluster_nodes(ports["shop-0002-001"]).into_iter().find(|n| n.2.contains("myself")).unwrap().0;
    let new_node = cluster_nodes(ports["shop-0002-003"]).into_iter().find(|n| n.2.contains("myself")).unwrap();
    assert!(new_node.2.contains("slave") && new_node.3 == primary_id, "{:?}", new_node);
    cp.ok(&[
        ("Action", "DecreaseReplicaCount"),
        ("ReplicationGroupId", "shop"),
        ("ApplyImmediately", "true"),
        ("ReplicasToRemove.member.1", "shop-0002-002"),
    ]);
    let g = wait_available(&cp, "shop", Duration::from_secs(60));
    assert_eq!(g.shards()[1].3, ["shop-0002-001", "shop-0002-003"]);
    // The removed node is gone from the cluster too.
    let known = cluster_nodes(cfg);
    assert_eq!(known.len(), 6, "{:?}", known);
    assert!(!known.iter().any(|n| n.1 == ports["shop-0002-002"]));
    check_keys(cfg, 300);

    // Explicit node groups: ids and slots as given.
    cp.ok(&[
        ("Action", "CreateReplicationGroup"),
        ("ReplicationGroupId", "custom"),
        ("ReplicationGroupDescription", "custom"),
        ("ClusterMode", "enabled"),
        ("NodeGroupConfiguration.NodeGroupConfiguration.1.NodeGroupId", "7"),
        ("NodeGroupConfiguration.NodeGroupConfiguration.1.Slots", "0-99"),
        ("NodeGroupConfiguration.NodeGroupConfiguration.2.NodeGroupId", "8"),
        ("NodeGroupConfiguration.NodeGroupConfiguration.2.Slots", "100-16383"),
        ("NodeGroupConfiguration.NodeGroupConfiguration.2.PrimaryAvailabilityZone", "us-east-1b"),
    ]);
    let c = wait_available(&cp, "custom", Duration::from_secs(60));
    assert_eq!(
        c.shards().iter().map(|s| (s.0.as_str(), s.2.as_str())).collect::<Vec<_>>(),
        [("0007", "0-99"), ("0008", "100-16383")]
    );
    let counts: Vec<usize> = cluster_nodes(c.config_port()).iter().map(|n| n.4).collect();
    assert!(counts.contains(&100) && counts.contains(&16284), "{:?}", counts);
    assert!(tags(&c.0, "PreferredAvailabilityZone").contains(&"us-east-1b".to_string()));

    // Delete: nodes and endpoint gone, events recorded.
    cp.ok(&[("Action", "DeleteReplicationGroup"), ("ReplicationGroupId", "custom")]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while cp.call(&[("Action", "DescribeReplicationGroups"), ("ReplicationGroupId", "custom")]).0 != 404 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(std::net::TcpStream::connect(("127.0.0.1", c.config_port())).is_err());
    let events = cp.ok(&[("Action", "DescribeEvents"), ("SourceType", "replication-group")]);
    let messages = tags(&events, "Message");
    for m in [
        "Replication group shop created",
        "Replication group custom deleted",
        "Added replica cluster shop-0002-003 to replication group shop",
    ] {
        assert!(messages.iter().any(|x| x == m), "{} not in {:?}", m, messages);
    }
}

#[test]
fn shard_primary_killed_fails_over_and_is_replaced() {
    let cp = ControlPlane::new("cm-failover");
    cp.ok(&[
        ("Action", "CreateReplicationGroup"),
        ("ReplicationGroupId", "fo"),
        ("ReplicationGroupDescription", "failover"),
        ("NumNodeGroups", "3"),
        ("ReplicasPerNodeGroup", "1"),
    ]);
    let g = wait_available(&cp, "fo", Duration::from_secs(60));
    let cfg = g.config_port();
    write_keys(cfg, 500);
    // WAIT: the replicas have every write before the primary dies.
    let ports = member_ports(&cp);
    for shard in ["0001", "0002", "0003"] {
        let p = ports[&format!("fo-{}-001", shard)];
        let mut c = Raw::connect(p);
        assert_eq!(c.cmd(&["WAIT", "1", "5000"]), Reply::Int(1));
    }
    let victim = ports["fo-0002-001"];
    let replica = ports["fo-0002-002"];
    let t0 = Instant::now();
    unsafe { libc::kill(pid_of(victim), libc::SIGKILL) };
    // The replica takes the shard over (the nodes' own failover).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let me = std::panic::catch_unwind(|| cluster_nodes(replica))
            .ok()
            .and_then(|v| v.into_iter().find(|n| n.2.contains("myself")));
        if me.is_some_and(|n| n.2.contains("master") && n.4 > 0) {
            break;
        }
        assert!(Instant::now() < deadline, "no failover within 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    let failover_ms = t0.elapsed().as_millis();
    // The configuration endpoint never hands a client the dead node.
    for _ in 0..20 {
        assert_eq!(Raw::connect(cfg).cmd(&["PING"]), Reply::Simple("PONG".into()));
    }
    println!("shard 0002 failed over {} ms after kill -9 of its primary", failover_ms);
    check_keys(cfg, 500);
    // The dead node is replaced and rejoins as a replica of the new primary.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let events = cp.ok(&[("Action", "DescribeEvents"), ("SourceIdentifier", "fo-0002-001")]);
        if tags(&events, "Message").iter().any(|m| m == "Finished recovery for cache nodes 0001")
            && describe(&cp, "fo").status() == "available"
        {
            break;
        }
        assert!(Instant::now() < deadline, "the failed node was not replaced: {}", events);
        std::thread::sleep(Duration::from_millis(200));
    }
    let new_primary = cluster_nodes(replica).into_iter().find(|n| n.2.contains("myself")).unwrap();
    let back = cluster_nodes(victim).into_iter().find(|n| n.2.contains("myself")).unwrap();
    assert!(back.2.contains("slave") && back.3 == new_primary.0, "{:?} {:?}", back, new_primary);
    // No stale entry for the dead node's old identity.
    let nodes = cluster_nodes(cfg);
    assert_eq!(nodes.len(), 6, "{:?}", nodes);
    assert!(nodes.iter().all(|n| !n.2.contains("fail")), "{:?}", nodes);
    let events = cp.ok(&[("Action", "DescribeEvents"), ("SourceIdentifier", "fo")]);
    assert!(
        tags(&events, "Message")
            .iter()
            .any(|m| m == "Failover from master node fo-0002-001 to replica node fo-0002-002 completed"),
        "{}",
        events
    );

    // TestFailover of shard 0001 moves its primary to the replica.
    cp.ok(&[("Action", "TestFailover"), ("ReplicationGroupId", "fo"), ("NodeGroupId", "0001")]);
    wait_available(&cp, "fo", Duration::from_secs(60));
    let me = cluster_nodes(ports["fo-0001-002"]).into_iter().find(|n| n.2.contains("myself")).unwrap();
    assert!(me.2.contains("master") && me.4 == 5462, "{:?}", me);
    let events = cp.ok(&[("Action", "DescribeEvents"), ("SourceIdentifier", "fo")]);
    assert!(tags(&events, "Message").iter().any(|m| m == "Test Failover API called for node group 0001"));
    check_keys(cfg, 500);
}

#[test]
fn control_plane_killed_mid_resharding_resumes() {
    let mut cp = ControlPlane::new("cm-resume");
    cp.ok(&[
        ("Action", "CreateReplicationGroup"),
        ("ReplicationGroupId", "rs"),
        ("ReplicationGroupDescription", "resume"),
        ("NumNodeGroups", "2"),
    ]);
    let g = wait_available(&cp, "rs", Duration::from_secs(60));
    let cfg = g.config_port();
    write_keys(cfg, 3000);
    let started = cp.ok(&[
        ("Action", "ModifyReplicationGroupShardConfiguration"),
        ("ReplicationGroupId", "rs"),
        ("NodeGroupCount", "4"),
        ("ApplyImmediately", "true"),
    ]);
    assert_eq!(tags(&started, "Status")[0], "modifying");
    assert_eq!(tags(&started, "ProgressPercentage"), ["0.00"]);
    // Killed once slots are moving.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let g = describe(&cp, "rs");
        if g.progress().is_some_and(|p| p > 2.0) {
            assert_eq!(g.shards().len(), 4);
            assert!(g.shards().iter().any(|s| s.1 == "creating" || s.1 == "modifying"));
            break;
        }
        assert!(g.status() == "modifying" && Instant::now() < deadline, "{}", g.0);
        std::thread::sleep(Duration::from_millis(50));
    }
    let node = member_ports(&cp)["rs-0001-001"];
    cp.kill();
    // The data stays reachable (through the nodes) while nobody drives the move.
    check_keys(node, 3000);
    cp.start();
    let g = wait_available(&cp, "rs", Duration::from_secs(180));
    let counts: Vec<usize> = g
        .shards()
        .iter()
        .map(|s| {
            s.2.split(',')
                .map(|r| match r.split_once('-') {
                    Some((a, b)) => b.parse::<usize>().unwrap() - a.parse::<usize>().unwrap() + 1,
                    None => 1,
                })
                .sum()
        })
        .collect();
    assert_eq!(counts, [4096, 4096, 4096, 4096], "{}", g.0);
    let masters: Vec<usize> = cluster_nodes(cfg).iter().filter(|n| n.2.contains("master")).map(|n| n.4).collect();
    assert_eq!(masters, [4096; 4]);
    check_keys(cfg, 3000);
    let mut total = 0;
    for n in cluster_nodes(cfg).iter().filter(|n| n.2.contains("master")) {
        total += Raw::connect(n.1).cmd(&["DBSIZE"]).as_int();
    }
    assert_eq!(total, 3000);
    let events = cp.ok(&[("Action", "DescribeEvents"), ("SourceIdentifier", "rs")]);
    assert!(
        tags(&events, "Message").iter().any(|m| m.starts_with("Completed resharding of replication group rs")),
        "{}",
        events
    );

    // Scale in to two shards: 0001's and 0004's slots move to 0002 and 0003, their nodes go.
    cp.ok(&[
        ("Action", "ModifyReplicationGroupShardConfiguration"),
        ("ReplicationGroupId", "rs"),
        ("NodeGroupCount", "2"),
        ("ApplyImmediately", "true"),
        ("NodeGroupsToRemove.NodeGroupToRemove.1", "0001"),
        ("NodeGroupsToRemove.NodeGroupToRemove.2", "0004"),
    ]);
    let g = wait_available(&cp, "rs", Duration::from_secs(180));
    assert_eq!(g.shards().iter().map(|s| s.0.as_str()).collect::<Vec<_>>(), ["0002", "0003"]);
    let nodes = cluster_nodes(cfg);
    assert_eq!(nodes.iter().map(|n| n.4).collect::<Vec<_>>(), [8192, 8192], "{:?}", nodes);
    check_keys(cfg, 3000);
}

/// The AWS CLI, boto3 and redis-py's RedisCluster: a 3x1 group scaled 3 -> 5 -> 2 under load.
#[test]
fn aws_cli_boto3_and_redis_py_cluster_scale_out_and_in_under_load() {
    let Some(py) =
        common::control::shared_venv_python(&[("awscli", "awscli"), ("boto3", "boto3"), ("redis", "redis==5.0.8")])
    else {
        println!("SKIPPED: could not install awscli, boto3 and redis-py");
        return;
    };
    let cp = ControlPlane::new("cm-live");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/control-cluster/live.py");
    let bin = py.parent().unwrap();
    let out = Command::new(&py)
        .arg(&script)
        .arg(cp.url())
        .env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default()))
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "secret")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{}{}", stdout, String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success());
    assert!(stdout.contains(" 0 failed"), "{}", stdout);
}

/// `ferrocache cluster create --shards`, `scale` (progress on stderr), `describe`, `failover
/// --shard`.
#[test]
fn cli_creates_scales_and_describes_a_cluster_mode_group() {
    let cp = ControlPlane::new("cm-cli");
    let cli = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_ferrocache"))
            .arg("cluster")
            .args(args)
            .args(["--endpoint", &cp.url()])
            .env_remove("FERROCACHE_CONTROL_ENDPOINT")
            .output()
            .unwrap();
        let (o, e) =
            (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
        assert!(out.status.success(), "{:?}: {}{}", args, o, e);
        (o, e)
    };
    let (out, _) = cli(&["create", "web", "--engine", "redis", "--shards", "2", "--replicas", "1", "--wait"]);
    assert!(out.contains("Cluster mode:           enabled"), "{}", out);
    assert!(out.contains("0001   available  0-8191") && out.contains("0002   available  8192-16383"), "{}", out);
    let cfg = describe(&cp, "web").config_port();
    write_keys(cfg, 200);
    let (out, err) = cli(&["scale", "web", "--shards", "3"]);
    assert!(err.contains("resharding web: 100%"), "{}", err);
    assert!(out.contains("Shards:                 3"), "{}", out);
    let (out, _) = cli(&["describe", "web"]);
    assert!(out.contains("0003   available"), "{}", out);
    check_keys(cfg, 200);
    let (out, _) = cli(&["failover", "web", "--shard", "0002", "--wait"]);
    assert!(out.contains("Status:                 available"), "{}", out);
    let events = cp.ok(&[("Action", "DescribeEvents"), ("SourceIdentifier", "web")]);
    assert!(tags(&events, "Message").iter().any(|m| m == "Test Failover API called for node group 0002"));
    // Scaling in without --remove removes the last shards.
    let (out, _) = cli(&["scale", "web", "--shards", "1"]);
    assert!(out.contains("Shards:                 1") && out.contains("0001   available  0-16383"), "{}", out);
    check_keys(cfg, 200);
}
