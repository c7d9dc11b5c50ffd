//! End-to-end tests of `ferrocache control`: real HTTP requests in ElastiCache's Query protocol
//! against a control plane that starts real `ferrocache server` node processes.

mod common;
use common::control::{tags, ControlPlane};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

impl ControlPlane {
    fn describe(&self, id: &str) -> String {
        self.ok(&[("Action", "DescribeCacheClusters"), ("CacheClusterId", id), ("ShowCacheNodeInfo", "true")])
    }

    fn wait_status(&self, id: &str, status: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let d = self.describe(id);
            if tags(&d, "CacheClusterStatus") == [status] {
                return d;
            }
            assert!(Instant::now() < deadline, "{} never became {}: {}", id, status, d);
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait_gone(&self, id: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (code, body) = self.call(&[("Action", "DescribeCacheClusters"), ("CacheClusterId", id)]);
            if code == 404 {
                assert_eq!(tags(&body, "Code"), ["CacheClusterNotFound"]);
                return;
            }
            assert!(Instant::now() < deadline, "{} never went away", id);
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The ports of the CacheNode endpoints in a Describe response.
fn node_ports(xml: &str) -> Vec<u16> {
    tags(xml, "CacheNode").iter().map(|n| tags(n, "Port")[0].parse().unwrap()).collect()
}

/// A memcached text request; the reply up to and including the terminator line.
fn mc(port: u16, req: &str, terminator: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(req.as_bytes()).unwrap();
    let mut r = BufReader::new(s);
    let mut out = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap() == 0 {
            return out;
        }
        out.push_str(&line);
        if line == terminator {
            return out;
        }
    }
}

/// `config get cluster` on a node: (version, sorted node ports).
fn discovery(port: u16) -> (u64, Vec<u16>) {
    let reply = mc(port, "config get cluster\r\n", "END\r\n");
    let lines: Vec<&str> = reply.split("\r\n").collect();
    assert!(lines[0].starts_with("CONFIG cluster 0 "), "{}", reply);
    let mut body = lines[1].split('\n');
    let version = body.next().unwrap().parse().unwrap();
    let mut ports: Vec<u16> = body
        .next()
        .unwrap()
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(|n| n.rsplit('|').next().unwrap().parse().unwrap())
        .collect();
    ports.sort();
    (version, ports)
}

/// The ConfigurationEndpoint's port in a Describe response.
fn config_port(xml: &str) -> u16 {
    tags(&tags(xml, "ConfigurationEndpoint")[0], "Port")[0].parse().unwrap()
}

fn sorted(mut v: Vec<u16>) -> Vec<u16> {
    v.sort();
    v
}

fn resp_ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

fn events(cp: &ControlPlane, id: &str) -> Vec<String> {
    let ev = cp.ok(&[("Action", "DescribeEvents"), ("SourceIdentifier", id), ("SourceType", "cache-cluster")]);
    tags(&ev, "Message")
}

#[test]
fn memcached_cluster_lifecycle_and_control_plane_restart() {
    let mut cp = ControlPlane::new("mc");
    let created = cp.ok(&[
        ("Action", "CreateCacheCluster"),
        ("CacheClusterId", "Web-Cache"),
        ("Engine", "memcached"),
        ("NumCacheNodes", "2"),
        ("CacheNodeType", "cache.t3.small"),
    ]);
    assert!(created.starts_with("<CreateCacheClusterResponse xmlns=\"http://elasticache.amazonaws.com/doc/2015-02-02/\"><CreateCacheClusterResult><CacheCluster>"), "{}", created);
    assert_eq!(tags(&created, "CacheClusterId"), ["web-cache"]);
    assert_eq!(tags(&created, "CacheClusterStatus"), ["creating"]);
    assert_eq!(tags(&created, "NumCacheNodes"), ["2"]);
    assert_eq!(tags(&created, "RequestId").len(), 1);

    let d = cp.wait_status("web-cache", "available");
    assert_eq!(tags(&d, "CacheNodeId"), ["0001", "0002"]);
    assert_eq!(tags(&d, "CacheNodeType"), ["cache.t3.small"]);
    let ports = sorted(node_ports(&d));
    assert_eq!(ports.len(), 2);
    let cfg_port = config_port(&d);
    assert!(!ports.contains(&cfg_port), "the configuration endpoint is the control plane's own port");
    let (v1, list) = discovery(cfg_port);
    assert_eq!(list, ports, "configuration endpoint lists both nodes");
    for p in &ports {
        assert_eq!(discovery(*p), (v1, ports.clone()), "node {} lists both nodes, same version", p);
    }
    // The configuration endpoint speaks memcached (it forwards to a node).
    assert_eq!(mc(cfg_port, "version\r\n", "VERSION 1.6.18\r\n"), "VERSION 1.6.18\r\n");

    // Data in a node, to show that the node is re-adopted (not restarted) later.
    assert_eq!(mc(ports[0], "set k 0 0 5\r\nhello\r\n", "STORED\r\n"), "STORED\r\n");

    // Add a node: every node's Auto Discovery list grows and its version goes up.
    let m = cp.ok(&[
        ("Action", "ModifyCacheCluster"),
        ("CacheClusterId", "web-cache"),
        ("NumCacheNodes", "3"),
        ("ApplyImmediately", "true"),
    ]);
    assert_eq!(tags(&m, "CacheClusterStatus"), ["modifying"]);
    let d = cp.wait_status("web-cache", "available");
    let ports3 = sorted(node_ports(&d));
    assert_eq!(ports3.len(), 3);
    assert_eq!(tags(&d, "NumCacheNodes"), ["3"]);
    let (v2, list) = discovery(cfg_port);
    assert_eq!(list, ports3);
    assert!(v2 > v1, "version went up: {} -> {}", v1, v2);
    assert_eq!(config_port(&d), cfg_port, "the configuration endpoint is stable");
    for p in &ports3 {
        assert_eq!(discovery(*p), (v2, ports3.clone()), "node {}: same list and version", p);
    }

    // Restart the control plane (kill -9): the definition survives, nodes are re-adopted.
    cp.kill();
    for p in &ports3 {
        assert!(discovery(*p).1.len() == 3, "node {} outlives the control plane", p);
    }
    cp.start();
    let d = cp.wait_status("web-cache", "available");
    assert_eq!(sorted(node_ports(&d)), ports3);
    assert_eq!(config_port(&d), cfg_port, "the configuration endpoint survives a restart");
    assert_eq!(discovery(cfg_port), (v2, ports3.clone()), "no node change, no new version");
    assert_eq!(tags(&d, "CacheNodeType"), ["cache.t3.small"]);
    assert_eq!(
        mc(ports[0], "get k\r\n", "END\r\n"),
        "VALUE k 0 5\r\nhello\r\nEND\r\n",
        "node kept running (re-adopted)"
    );

    // Remove node 0002 by id.
    let ids = tags(&d, "CacheNodeId");
    let by_id: Vec<(String, u16)> = ids.into_iter().zip(node_ports(&d)).collect();
    let p0002 = by_id.iter().find(|(i, _)| i == "0002").unwrap().1;
    cp.ok(&[
        ("Action", "ModifyCacheCluster"),
        ("CacheClusterId", "web-cache"),
        ("NumCacheNodes", "2"),
        ("CacheNodeIdsToRemove.member.1", "0002"),
    ]);
    let d = cp.wait_status("web-cache", "available");
    assert_eq!(tags(&d, "CacheNodeId"), ["0001", "0003"]);
    let ports2 = sorted(node_ports(&d));
    assert!(!ports2.contains(&p0002));
    let (v3, list) = discovery(cfg_port);
    assert_eq!(list, ports2);
    assert!(v3 > v2);
    for p in &ports2 {
        assert_eq!(discovery(*p), (v3, ports2.clone()));
    }
    assert!(TcpStream::connect(("127.0.0.1", p0002)).is_err(), "removed node stopped");

    // Reboot node 0001.
    let r = cp.ok(&[
        ("Action", "RebootCacheCluster"),
        ("CacheClusterId", "web-cache"),
        ("CacheNodeIdsToReboot.member.1", "0001"),
    ]);
    assert_eq!(tags(&r, "CacheClusterStatus"), ["rebooting cache cluster nodes"]);
    let d = cp.wait_status("web-cache", "available");
    let p0001 = node_ports(&d)[0];
    assert_eq!(discovery(p0001), (v3, ports2.clone()), "a rebooted node gets the list and its version back");

    // Delete.
    let del = cp.ok(&[("Action", "DeleteCacheCluster"), ("CacheClusterId", "web-cache")]);
    assert_eq!(tags(&del, "CacheClusterStatus"), ["deleting"]);
    cp.wait_gone("web-cache");
    for p in &ports2 {
        assert!(TcpStream::connect(("127.0.0.1", *p)).is_err(), "node on {} stopped", p);
    }
    assert!(TcpStream::connect(("127.0.0.1", cfg_port)).is_err(), "configuration endpoint closed");
    let ev = events(&cp, "web-cache");
    for want in [
        "Cache cluster created",
        "Added cache node 0003 in availability zone us-east-1a",
        "Removed cache nodes 0002",
        "Cache node 0001 restarted",
        "Cache cluster deleted",
    ] {
        assert!(ev.iter().any(|e| e == want), "event {:?} in {:?}", want, ev);
    }
    assert_eq!(ev[0], "Cache cluster deleted", "newest first");

    // Still gone after another restart.
    cp.kill();
    cp.start();
    let (code, _) = cp.call(&[("Action", "DescribeCacheClusters"), ("CacheClusterId", "web-cache")]);
    assert_eq!(code, 404);
}

#[test]
fn redis_cluster_errors_and_self_healing() {
    let cp = ControlPlane::new("redis");
    let err = |params: &[(&str, &str)], status: u16, code: &str| {
        let (s, body) = cp.call(params);
        assert_eq!((s, tags(&body, "Code")), (status, vec![code.to_string()]), "{:?}: {}", params, body);
        assert!(
            body.starts_with(
                "<ErrorResponse xmlns=\"http://elasticache.amazonaws.com/doc/2015-02-02/\"><Error><Type>Sender</Type>"
            ),
            "{}",
            body
        );
        assert_eq!(tags(&body, "RequestId").len(), 1);
    };
    err(&[("Action", "NoSuchAction")], 400, "InvalidAction");
    err(&[("Action", "CreateCacheCluster"), ("Engine", "redis")], 400, "MissingParameter");
    err(
        &[("Action", "CreateCacheCluster"), ("CacheClusterId", "a"), ("Engine", "mongodb")],
        400,
        "InvalidParameterValue",
    );
    err(
        &[("Action", "CreateCacheCluster"), ("CacheClusterId", "1abc"), ("Engine", "redis")],
        400,
        "InvalidParameterValue",
    );
    err(
        &[("Action", "CreateCacheCluster"), ("CacheClusterId", "a--b"), ("Engine", "redis")],
        400,
        "InvalidParameterValue",
    );
    err(
        &[("Action", "CreateCacheCluster"), ("CacheClusterId", "r"), ("Engine", "redis"), ("NumCacheNodes", "2")],
        400,
        "InvalidParameterValue",
    );
    err(
        &[("Action", "CreateCacheCluster"), ("CacheClusterId", "m"), ("Engine", "memcached"), ("NumCacheNodes", "41")],
        400,
        "InvalidParameterValue",
    );
    err(&[("Action", "DescribeCacheClusters"), ("CacheClusterId", "nope")], 404, "CacheClusterNotFound");
    err(&[("Action", "DescribeCacheClusters"), ("MaxRecords", "5")], 400, "InvalidParameterValue");
    err(&[("Action", "DeleteCacheCluster"), ("CacheClusterId", "nope")], 404, "CacheClusterNotFound");

    cp.ok(&[("Action", "CreateCacheCluster"), ("CacheClusterId", "sessions"), ("Engine", "redis")]);
    err(
        &[("Action", "CreateCacheCluster"), ("CacheClusterId", "sessions"), ("Engine", "redis")],
        400,
        "CacheClusterAlreadyExists",
    );
    let d = cp.wait_status("sessions", "available");
    assert!(tags(&d, "ConfigurationEndpoint").is_empty());
    assert_eq!(tags(&d, "EngineVersion"), ["7.0.15"]);
    let port = node_ports(&d)[0];
    assert!(resp_ping(port));

    err(&[("Action", "RebootCacheCluster"), ("CacheClusterId", "sessions")], 400, "MissingParameter");
    err(
        &[("Action", "RebootCacheCluster"), ("CacheClusterId", "sessions"), ("CacheNodeIdsToReboot.member.1", "0009")],
        400,
        "InvalidParameterValue",
    );
    err(
        &[("Action", "ModifyCacheCluster"), ("CacheClusterId", "sessions"), ("NumCacheNodes", "2")],
        400,
        "InvalidParameterValue",
    );
    err(
        &[
            ("Action", "ModifyCacheCluster"),
            ("CacheClusterId", "sessions"),
            ("NumCacheNodes", "1"),
            ("CacheNodeIdsToRemove.member.1", "0001"),
        ],
        400,
        "InvalidParameterCombination",
    );

    // GET with a query string works too.
    let body = ureq::get(&format!("http://127.0.0.1:{}/?Action=DescribeCacheClusters&Version=2015-02-02", cp.port))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert_eq!(tags(&body, "CacheClusterId"), ["sessions"]);

    // Kill the node process: the health loop restarts it on the same port.
    let pid_line = {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"INFO server\r\n").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut buf = vec![0u8; 8192];
        let n = s.read(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).lines().find(|l| l.starts_with("process_id:")).unwrap().to_string()
    };
    let pid: i32 = pid_line["process_id:".len()..].trim().parse().unwrap();
    common::control::signal(pid, 9);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !events(&cp, "sessions").iter().any(|e| e == "Recovered cache nodes 0001") {
        assert!(Instant::now() < deadline, "node was not recovered: {:?}", events(&cp, "sessions"));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(resp_ping(port));

    cp.ok(&[("Action", "DeleteCacheCluster"), ("CacheClusterId", "sessions")]);
    err(&[("Action", "DeleteCacheCluster"), ("CacheClusterId", "sessions")], 400, "InvalidCacheClusterState");
    cp.wait_gone("sessions");
    assert!(!resp_ping(port));
}

/// The AWS CLI (from PyPI, in a venv under target/) against the control plane. Prints SKIPPED
/// when the CLI cannot be installed (no network to PyPI, no python3 venv).
#[test]
fn aws_cli_against_the_control_plane() {
    let Some(py) = common::control::shared_venv_python(&[("awscli", "awscli")]) else {
        println!("SKIPPED: could not install the AWS CLI (pip install awscli)");
        return;
    };
    let venv = py.parent().unwrap().parent().unwrap().to_path_buf();
    let aws = venv.join("bin/aws");
    // With keys configured, SigV4 signatures are verified.
    let secured = ControlPlane::with_env(
        "awscli-keys",
        &[("FERROCACHE_CONTROL_ACCESS_KEY_ID", "AKIDFERRO"), ("FERROCACHE_CONTROL_SECRET_ACCESS_KEY", "s3cret/Key+1")],
    );
    let signed = |key: &str, secret: &str| {
        let out = Command::new(&aws)
            .args(["elasticache", "describe-cache-clusters", "--region", "us-east-1", "--output", "json"])
            .args(["--endpoint-url", &format!("http://127.0.0.1:{}", secured.port)])
            .env("AWS_ACCESS_KEY_ID", key)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    assert_eq!(signed("AKIDFERRO", "s3cret/Key+1"), (true, String::new()));
    let (ok, err) = signed("AKIDFERRO", "wrong");
    assert!(!ok && err.contains("(SignatureDoesNotMatch)"), "{}", err);
    let (ok, err) = signed("AKIDOTHER", "s3cret/Key+1");
    assert!(!ok && err.contains("(InvalidClientTokenId)"), "{}", err);
    let (code, body) = secured.call(&[("Action", "DescribeCacheClusters")]);
    assert_eq!((code, tags(&body, "Code")), (403, vec!["InvalidClientTokenId".to_string()]));
    drop(secured);

    let cp = ControlPlane::new("awscli");
    let endpoint = format!("http://127.0.0.1:{}", cp.port);
    let run = |args: &[&str]| -> (bool, String, String) {
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
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = run(&[
        "create-cache-cluster",
        "--cache-cluster-id",
        "cli",
        "--engine",
        "memcached",
        "--num-cache-nodes",
        "2",
        "--cache-node-type",
        "cache.t3.micro",
    ]);
    assert!(ok, "{}{}", out, err);
    assert!(out.contains("\"CacheClusterStatus\": \"creating\""), "{}", out);
    let (ok, _, err) = run(&["wait", "cache-cluster-available", "--cache-cluster-id", "cli"]);
    assert!(ok, "{}", err);
    let (ok, out, err) = run(&["describe-cache-clusters", "--show-cache-node-info"]);
    assert!(ok, "{}", err);
    assert_eq!(out.matches("\"CacheNodeId\"").count(), 2, "{}", out);
    assert!(out.contains("\"ConfigurationEndpoint\""), "{}", out);
    let (ok, _, err) = run(&["describe-cache-clusters", "--cache-cluster-id", "nope"]);
    assert!(!ok);
    assert!(err.contains("(CacheClusterNotFound)") && err.contains("CacheCluster not found: nope"), "{}", err);
    let (ok, out, err) =
        run(&["modify-cache-cluster", "--cache-cluster-id", "cli", "--num-cache-nodes", "3", "--apply-immediately"]);
    assert!(ok, "{}", err);
    assert!(out.contains("\"modifying\""), "{}", out);
    let (ok, _, err) = run(&["wait", "cache-cluster-available", "--cache-cluster-id", "cli"]);
    assert!(ok, "{}", err);
    let (ok, out, err) =
        run(&["reboot-cache-cluster", "--cache-cluster-id", "cli", "--cache-node-ids-to-reboot", "0001"]);
    assert!(ok && out.contains("rebooting cache cluster nodes"), "{}{}", out, err);
    let (ok, _, err) = run(&["wait", "cache-cluster-available", "--cache-cluster-id", "cli"]);
    assert!(ok, "{}", err);
    let (ok, _, err) = run(&["delete-cache-cluster", "--cache-cluster-id", "cli"]);
    assert!(ok, "{}", err);
    let (ok, _, err) = run(&["wait", "cache-cluster-deleted", "--cache-cluster-id", "cli"]);
    assert!(ok, "{}", err);
    let (ok, out, err) =
        run(&["describe-events", "--source-identifier", "cli", "--source-type", "cache-cluster", "--duration", "60"]);
    assert!(ok, "{}", err);
    for want in ["Cache cluster created", "Added cache node 0003", "Cache node 0001 restarted", "Cache cluster deleted"]
    {
        assert!(out.contains(want), "{} in {}", want, out);
    }
    println!("AWS CLI: create/wait/describe/modify/reboot/delete/describe-events all passed");
}

#[test]
fn control_plane_killed_in_the_middle_of_operations() {
    let mut cp = ControlPlane::new("midop");
    // Killed right after accepting a create: the restarted control plane finishes it.
    cp.ok(&[
        ("Action", "CreateCacheCluster"),
        ("CacheClusterId", "half"),
        ("Engine", "memcached"),
        ("NumCacheNodes", "3"),
    ]);
    cp.kill();
    cp.start();
    let d = cp.wait_status("half", "available");
    let ports = sorted(node_ports(&d));
    assert_eq!(ports.len(), 3);
    for p in &ports {
        assert_eq!(discovery(*p).1, ports);
    }
    assert!(events(&cp, "half").iter().any(|e| e == "Cache cluster created"));

    // Killed right after accepting a scale-in and a scale-out.
    cp.ok(&[
        ("Action", "ModifyCacheCluster"),
        ("CacheClusterId", "half"),
        ("NumCacheNodes", "2"),
        ("CacheNodeIdsToRemove.member.1", "0001"),
    ]);
    cp.kill();
    cp.start();
    let d = cp.wait_status("half", "available");
    assert_eq!(tags(&d, "CacheNodeId"), ["0002", "0003"]);
    // The configuration endpoint outlives node 0001 (and the control plane's restart).
    let cfg = config_port(&d);
    assert_eq!(discovery(cfg).1, sorted(node_ports(&d)));
    assert_eq!(mc(cfg, "set k 0 0 1\r\nv\r\n", "STORED\r\n"), "STORED\r\n");
    cp.ok(&[("Action", "ModifyCacheCluster"), ("CacheClusterId", "half"), ("NumCacheNodes", "4")]);
    cp.kill();
    cp.start();
    let d = cp.wait_status("half", "available");
    assert_eq!(tags(&d, "CacheNodeId"), ["0002", "0003", "0004", "0005"]);
    let ports = sorted(node_ports(&d));
    for p in &ports {
        assert_eq!(discovery(*p).1, ports);
    }

    // Killed right after accepting a delete: the restarted control plane finishes it.
    cp.ok(&[("Action", "DeleteCacheCluster"), ("CacheClusterId", "half")]);
    cp.kill();
    cp.start();
    cp.wait_gone("half");
    for p in &ports {
        assert!(TcpStream::connect(("127.0.0.1", *p)).is_err(), "node on {} stopped", p);
    }
    let leftover = std::fs::read_dir(cp.dir.join("nodes")).unwrap().count();
    assert_eq!(leftover, 0, "node data dirs removed");
}
