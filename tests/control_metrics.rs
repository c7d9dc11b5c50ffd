//! End-to-end tests of the control plane's metrics: real clusters, traffic from real clients
//! (the `redis` crate, memcached's text protocol on a raw socket), then `GET /metrics`
//! (Prometheus text) and `GET /metrics/json` (GetMetricStatistics's shape) checked against
//! the workload and the nodes' own INFO / stats.

mod common;
use common::control::{tags, ControlPlane};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A parsed exposition: (name, sorted labels) → value.
type Scrape = HashMap<(String, Vec<(String, String)>), f64>;

fn wait_available(cp: &ControlPlane, id: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let d = cp.ok(&[("Action", "DescribeCacheClusters"), ("CacheClusterId", id), ("ShowCacheNodeInfo", "true")]);
        if tags(&d, "CacheClusterStatus") == ["available"] {
            return d;
        }
        assert!(Instant::now() < deadline, "{} never became available: {}", id, d);
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn node_ports(xml: &str) -> Vec<u16> {
    tags(xml, "CacheNode").iter().map(|n| tags(n, "Port")[0].parse().unwrap()).collect()
}

fn get(cp: &ControlPlane, path: &str) -> (u16, String, String) {
    match ureq::get(&format!("{}{}", cp.url(), path)).call() {
        Ok(r) => {
            let ct = r.header("content-type").unwrap_or("").to_string();
            (r.status(), ct, r.into_string().unwrap())
        }
        Err(ureq::Error::Status(code, r)) => (code, String::new(), r.into_string().unwrap()),
        Err(e) => panic!("GET {}: {}", path, e),
    }
}

/// Parse a Prometheus text exposition strictly: every line is `# HELP name text`,
/// `# TYPE name counter|gauge` (before the name's samples) or `name{l="v",...} value`.
/// Returns (name, labels) → value.
fn parse_prometheus(text: &str) -> Scrape {
    let valid_name = |n: &str| {
        !n.is_empty()
            && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            && !n.starts_with(|c: char| c.is_ascii_digit())
    };
    let mut typed: HashMap<String, String> = HashMap::new();
    let mut out = HashMap::new();
    assert!(text.is_empty() || text.ends_with('\n'), "exposition must end with a newline");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap();
            assert!(valid_name(name), "bad HELP line {:?}", line);
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let v: Vec<&str> = rest.split(' ').collect();
            assert_eq!(v.len(), 2, "bad TYPE line {:?}", line);
            assert!(valid_name(v[0]) && (v[1] == "counter" || v[1] == "gauge"), "bad TYPE line {:?}", line);
            assert!(typed.insert(v[0].to_string(), v[1].to_string()).is_none(), "TYPE twice: {:?}", line);
            continue;
        }
        assert!(!line.starts_with('#') && !line.is_empty(), "unexpected line {:?}", line);
        let open = line.find('{').unwrap_or_else(|| panic!("no labels: {:?}", line));
        let close = line.rfind('}').unwrap();
        let name = &line[..open];
        assert!(valid_name(name), "bad metric name in {:?}", line);
        assert!(typed.contains_key(name), "sample before its TYPE: {:?}", line);
        if typed[name] == "counter" {
            assert!(name.ends_with("_total"), "counter without _total: {:?}", line);
        }
        let mut labels = Vec::new();
        let mut rest = &line[open + 1..close];
        while !rest.is_empty() {
            let eq = rest.find("=\"").unwrap_or_else(|| panic!("bad label in {:?}", line));
            let lname = &rest[..eq];
            assert!(valid_name(lname), "bad label name in {:?}", line);
            let after = &rest[eq + 2..];
            let mut end = None;
            let mut esc = false;
            for (i, c) in after.char_indices() {
                match (esc, c) {
                    (true, _) => esc = false,
                    (false, '\\') => esc = true,
                    (false, '"') => {
                        end = Some(i);
                        break;
                    }
                    _ => {}
                }
            }
            let end = end.unwrap_or_else(|| panic!("unterminated label value in {:?}", line));
            labels.push((lname.to_string(), after[..end].to_string()));
            rest = &after[end + 1..];
            rest = rest.strip_prefix(',').unwrap_or(rest);
        }
        let value = line[close + 1..].trim_start_matches(' ');
        let v: f64 = value.parse().unwrap_or_else(|_| panic!("bad value in {:?}", line));
        assert!(v.is_finite(), "{:?}", line);
        labels.sort();
        assert!(out.insert((name.to_string(), labels), v).is_none(), "duplicate series {:?}", line);
    }
    out
}

/// The value of `name` for (cluster, node) in a parsed exposition.
fn prom(m: &Scrape, name: &str, cluster: &str, node: &str) -> Option<f64> {
    m.iter()
        .find(|((n, l), _)| {
            n == name
                && l.iter().any(|(k, v)| k == "cluster" && v == cluster)
                && l.iter().any(|(k, v)| k == "node" && v == node)
        })
        .map(|(_, v)| *v)
}

fn scrape(cp: &ControlPlane) -> Scrape {
    let (code, ct, body) = get(cp, "/metrics");
    assert_eq!(code, 200, "{}", body);
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{}", ct);
    parse_prometheus(&body)
}

/// Poll until `f` holds on a scrape (15 s).
fn wait_scrape(cp: &ControlPlane, what: &str, f: impl Fn(&Scrape) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let m = scrape(cp);
        if f(&m) {
            return;
        }
        assert!(Instant::now() < deadline, "never: {}; last scrape:\n{:?}", what, m);
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `/metrics/json`: the parsed document.
fn json(cp: &ControlPlane, query: &str) -> serde_json::Value {
    let (code, ct, body) = get(cp, &format!("/metrics/json?{}", query));
    assert_eq!(code, 200, "{}: {}", query, body);
    assert_eq!(ct, "application/json");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{}: {}", e, body))
}

/// The sum of the datapoints' `Sum` over the whole history of a metric (Period=60).
fn total(cp: &ControlPlane, dims: &str, metric: &str) -> f64 {
    let now = common::control::now_secs();
    let doc =
        json(cp, &format!("{}&MetricName={}&Period=60&StartTime={}&EndTime={}", dims, metric, now - 600, now + 60));
    assert_eq!(doc["Label"], metric);
    doc["Datapoints"].as_array().unwrap().iter().map(|d| d["Sum"].as_f64().unwrap()).sum()
}

fn info_field(con: &mut redis::Connection, section: &str, field: &str) -> f64 {
    let info: String = redis::cmd("INFO").arg(section).query(con).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{}:", field)))
        .unwrap_or_else(|| panic!("{} not in INFO {}", field, section))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn redis_cluster_metrics_match_the_workload_and_info() {
    let cp = ControlPlane::new("metrics-redis");
    // Before any cluster: an empty but valid exposition, no longer MissingAction.
    let (code, _, body) = get(&cp, "/metrics");
    assert_eq!(code, 200, "{}", body);
    assert_eq!(body, "");

    cp.ok(&[("Action", "CreateCacheCluster"), ("CacheClusterId", "stats"), ("Engine", "redis")]);
    let d = wait_available(&cp, "stats");
    let port = node_ports(&d)[0];
    // The sampler has a baseline and one sample of the node before the workload.
    wait_scrape(&cp, "the node is sampled", |m| prom(m, "elasticache_cache_hits_total", "stats", "0001").is_some());

    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", port)).unwrap();
    let mut con = client.get_connection().unwrap();
    let _idle1 = client.get_connection().unwrap();
    let _idle2 = client.get_connection().unwrap();
    let (keys, hits, misses) = (10, 25, 7);
    for k in 0..keys {
        let _: () = redis::cmd("SET").arg(format!("k{}", k)).arg("v").query(&mut con).unwrap();
    }
    for i in 0..hits {
        let v: Option<String> = redis::cmd("GET").arg(format!("k{}", i % keys)).query(&mut con).unwrap();
        assert_eq!(v.as_deref(), Some("v"));
    }
    for i in 0..misses {
        let v: Option<String> = redis::cmd("GET").arg(format!("missing{}", i)).query(&mut con).unwrap();
        assert_eq!(v, None);
    }
    let info_hits = info_field(&mut con, "stats", "keyspace_hits");
    let info_misses = info_field(&mut con, "stats", "keyspace_misses");
    assert_eq!((info_hits, info_misses), (hits as f64, misses as f64));

    // Prometheus: the node's own counters, the gauges of the latest sample.
    wait_scrape(&cp, "hits, misses and items as INFO says", |m| {
        prom(m, "elasticache_cache_hits_total", "stats", "0001") == Some(info_hits)
            && prom(m, "elasticache_cache_misses_total", "stats", "0001") == Some(info_misses)
            && prom(m, "elasticache_curr_items", "stats", "0001") == Some(keys as f64)
    });
    let m = scrape(&cp);
    // Three clients of ours (the sampler's own connection is not counted; a health probe of
    // the control plane may be connected at the moment of the sample).
    let conns = prom(&m, "elasticache_curr_connections", "stats", "0001").unwrap();
    assert!((3.0..=4.0).contains(&conns), "CurrConnections {}", conns);
    assert_eq!(prom(&m, "elasticache_is_master", "stats", "0001"), Some(1.0));
    assert!(prom(&m, "elasticache_get_type_cmds_total", "stats", "0001").unwrap() >= (hits + misses) as f64);
    assert!(prom(&m, "elasticache_set_type_cmds_total", "stats", "0001").unwrap() >= keys as f64);
    assert!(prom(&m, "elasticache_bytes_used_for_cache", "stats", "0001").unwrap() > 0.0);
    assert!(prom(&m, "elasticache_freeable_memory_bytes", "stats", "0001").unwrap() > 0.0);
    assert!(prom(&m, "elasticache_network_packets_in_total", "stats", "0001").unwrap() > 0.0);
    assert!(prom(&m, "elasticache_network_bytes_in_total", "stats", "0001").unwrap() > 0.0);
    let labels =
        m.keys().find(|(n, l)| n == "elasticache_cache_hits_total" && l.iter().any(|(_, v)| v == "stats")).unwrap();
    assert_eq!(
        labels.1,
        vec![
            ("cluster".to_string(), "stats".to_string()),
            ("engine".into(), "redis".into()),
            ("node".into(), "0001".into()),
            ("replication_group".into(), "".into()),
            ("role".into(), "primary".into()),
            ("shard".into(), "".into())
        ]
    );

    // JSON (GetMetricStatistics's shape): the per-period Sums add up to exactly the workload.
    let deadline = Instant::now() + Duration::from_secs(10);
    while total(&cp, "CacheClusterId=stats", "CacheHits") != hits as f64 {
        assert!(Instant::now() < deadline, "CacheHits Sum never reached {}", hits);
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(total(&cp, "CacheClusterId=stats&CacheNodeId=0001", "CacheHits"), hits as f64);
    assert_eq!(total(&cp, "CacheClusterId=stats", "CacheMisses"), misses as f64);
    assert_eq!(total(&cp, "CacheClusterId=stats", "GetTypeCmds"), (hits + misses) as f64);
    assert_eq!(total(&cp, "CacheClusterId=stats", "SetTypeCmds"), keys as f64);

    let now = common::control::now_secs();
    let doc = json(
        &cp,
        &format!("CacheClusterId=stats&MetricName=CurrItems&Period=1&StartTime={}&EndTime={}", now - 5, now + 1),
    );
    let points = doc["Datapoints"].as_array().unwrap();
    assert!(!points.is_empty(), "{}", doc);
    let last = points.last().unwrap();
    assert_eq!(last["Average"].as_f64(), Some(keys as f64), "{}", doc);
    assert_eq!(last["Maximum"].as_f64(), Some(keys as f64));
    assert_eq!(last["SampleCount"].as_f64(), Some(1.0));
    assert_eq!(last["Unit"], "Count");
    assert!(last["Timestamp"].as_str().unwrap().ends_with('Z'), "{}", last);
    // Only the statistics asked for.
    let doc = json(
        &cp,
        &format!(
            "CacheClusterId=stats&MetricName=CacheHitRate&Period=600&StartTime={}&EndTime={}&Statistics.member.1=Maximum",
            now - 600,
            now + 1
        ),
    );
    let p = &doc["Datapoints"][0];
    assert!(p.get("Sum").is_none() && p.get("Average").is_none(), "{}", doc);
    let rate = p["Maximum"].as_f64().unwrap();
    assert!(rate > 0.0 && rate <= 100.0, "{}", doc);
    assert_eq!(p["Unit"], "Percent");

    // Errors.
    let (code, _, body) = get(&cp, "/metrics/json?CacheClusterId=stats&MetricName=NoSuchMetric");
    assert_eq!(code, 400, "{}", body);
    assert!(body.contains("NoSuchMetric"), "{}", body);
    let (code, _, body) = get(&cp, "/metrics/json?MetricName=CacheHits");
    assert_eq!(code, 400, "{}", body);
    // No parameter is accepted and ignored.
    let (code, _, body) =
        get(&cp, "/metrics/json?CacheClusterId=stats&MetricName=CacheHits&Unit=Count&ExtendedStatistics.member.1=p99");
    assert_eq!(code, 400, "{}", body);
    assert!(body.contains("ExtendedStatistics.member.1, Unit"), "{}", body);
    json(&cp, "CacheClusterId=stats&MetricName=CacheHits&Namespace=AWS%2FElastiCache");
    // As CloudWatch: dimensions nothing reports under have no datapoints.
    let doc = json(&cp, "CacheClusterId=nope&MetricName=CacheHits");
    assert_eq!(doc["Datapoints"].as_array().unwrap().len(), 0, "{}", doc);
    // A node killed and restarted by the health loop: its counters start again from zero,
    // and the new hits add to the series (the old ones stay counted).
    let pid = info_field(&mut con, "server", "process_id");
    assert_eq!(common::control::signal(pid as i32, 9), 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut con = loop {
        if let Ok(mut c) = client.get_connection() {
            if redis::cmd("PING").query::<String>(&mut c).is_ok() && info_field(&mut c, "server", "process_id") != pid {
                break c;
            }
        }
        assert!(Instant::now() < deadline, "the node was not restarted");
        std::thread::sleep(Duration::from_millis(100));
    };
    let _: () = redis::cmd("SET").arg("after").arg("v").query(&mut con).unwrap();
    for _ in 0..5 {
        let v: Option<String> = redis::cmd("GET").arg("after").query(&mut con).unwrap();
        assert_eq!(v.as_deref(), Some("v"));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while total(&cp, "CacheClusterId=stats", "CacheHits") != (hits + 5) as f64 {
        assert!(
            Instant::now() < deadline,
            "CacheHits Sum after the restart: {}",
            total(&cp, "CacheClusterId=stats", "CacheHits")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    wait_scrape(&cp, "the restarted node's own counter", |m| {
        prom(m, "elasticache_cache_hits_total", "stats", "0001") == Some(5.0)
    });

    // Periods are aligned on multiples of the period.
    let doc = json(&cp, "CacheClusterId=stats&MetricName=CurrItems&Period=60");
    for p in doc["Datapoints"].as_array().unwrap() {
        assert!(p["Timestamp"].as_str().unwrap().ends_with(":00.000Z"), "{}", doc);
    }
}

/// A memcached text request on a connection; the reply up to and including `terminator`.
fn mc(r: &mut BufReader<TcpStream>, req: &str, terminator: &str) -> String {
    r.get_mut().write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    loop {
        let mut line = String::new();
        assert!(r.read_line(&mut line).unwrap() > 0, "closed after {:?}", out);
        out.push_str(&line);
        if line == terminator {
            return out;
        }
    }
}

fn mc_conn(port: u16) -> BufReader<TcpStream> {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    BufReader::new(s)
}

fn mc_stat(r: &mut BufReader<TcpStream>, name: &str) -> f64 {
    let reply = mc(r, "stats\r\n", "END\r\n");
    reply
        .lines()
        .find_map(|l| l.strip_prefix(&format!("STAT {} ", name)))
        .unwrap_or_else(|| panic!("no {} in {}", name, reply))
        .parse()
        .unwrap()
}

#[test]
fn memcached_cluster_metrics_per_node_and_per_cluster() {
    let cp = ControlPlane::new("metrics-mc");
    cp.ok(&[
        ("Action", "CreateCacheCluster"),
        ("CacheClusterId", "mcm"),
        ("Engine", "memcached"),
        ("NumCacheNodes", "2"),
    ]);
    let d = wait_available(&cp, "mcm");
    assert_eq!(tags(&d, "CacheNodeId"), ["0001", "0002"]);
    let ports = node_ports(&d);
    wait_scrape(&cp, "both nodes sampled", |m| {
        prom(m, "elasticache_get_hits_total", "mcm", "0001").is_some()
            && prom(m, "elasticache_get_hits_total", "mcm", "0002").is_some()
    });

    // Node 0001: 5 items, 8 hits, 3 misses, a cas hit and a cas miss; two connections open.
    // Node 0002: 2 items, 4 hits.
    let mut a = mc_conn(ports[0]);
    let _a_idle = mc_conn(ports[0]);
    let mut b = mc_conn(ports[1]);
    for k in 0..5 {
        assert_eq!(mc(&mut a, &format!("set a{} 0 0 1\r\nx\r\n", k), "STORED\r\n"), "STORED\r\n");
    }
    for i in 0..8 {
        assert!(mc(&mut a, &format!("get a{}\r\n", i % 5), "END\r\n").starts_with("VALUE"));
    }
    for i in 0..3 {
        assert_eq!(mc(&mut a, &format!("get nope{}\r\n", i), "END\r\n"), "END\r\n");
    }
    let gets = mc(&mut a, "gets a0\r\n", "END\r\n");
    let cas: u64 = gets.lines().next().unwrap().rsplit(' ').next().unwrap().parse().unwrap();
    assert_eq!(mc(&mut a, &format!("cas a0 0 0 1 {}\r\ny\r\n", cas), "STORED\r\n"), "STORED\r\n");
    assert_eq!(mc(&mut a, "cas nope 0 0 1 1\r\ny\r\n", "NOT_FOUND\r\n"), "NOT_FOUND\r\n");
    for k in 0..2 {
        assert_eq!(mc(&mut b, &format!("set b{} 0 0 1\r\nx\r\n", k), "STORED\r\n"), "STORED\r\n");
    }
    for i in 0..4 {
        assert!(mc(&mut b, &format!("get b{}\r\n", i % 2), "END\r\n").starts_with("VALUE"));
    }
    // `gets` counts as a get hit too (as in memcached).
    let a_hits = mc_stat(&mut a, "get_hits");
    assert_eq!(a_hits, 9.0);
    assert_eq!(mc_stat(&mut a, "get_misses"), 3.0);
    assert_eq!(mc_stat(&mut b, "get_hits"), 4.0);
    let sets = (mc_stat(&mut a, "cmd_set"), mc_stat(&mut b, "cmd_set"));
    assert!(sets.0 >= 5.0 && sets.1 == 2.0, "{:?}", sets);

    wait_scrape(&cp, "hits, misses, items as stats says", |m| {
        prom(m, "elasticache_get_hits_total", "mcm", "0001") == Some(a_hits)
            && prom(m, "elasticache_get_misses_total", "mcm", "0001") == Some(3.0)
            && prom(m, "elasticache_get_hits_total", "mcm", "0002") == Some(4.0)
            && prom(m, "elasticache_curr_items", "mcm", "0001") == Some(5.0)
            && prom(m, "elasticache_curr_items", "mcm", "0002") == Some(2.0)
    });
    let m = scrape(&cp);
    assert_eq!(prom(&m, "elasticache_cas_hits_total", "mcm", "0001"), Some(1.0));
    assert_eq!(prom(&m, "elasticache_cas_misses_total", "mcm", "0001"), Some(1.0));
    assert_eq!(prom(&m, "elasticache_curr_connections", "mcm", "0001"), Some(2.0));
    assert_eq!(prom(&m, "elasticache_curr_connections", "mcm", "0002"), Some(1.0));
    assert_eq!(prom(&m, "elasticache_cmd_set_total", "mcm", "0001"), Some(sets.0));
    assert!(prom(&m, "elasticache_bytes_used_for_cache_items", "mcm", "0001").unwrap() > 0.0);
    // Redis-only metrics are not reported for memcached nodes.
    assert_eq!(prom(&m, "elasticache_cache_hits_total", "mcm", "0001"), None);

    // JSON: per node, and the cluster's aggregate (Sum over its nodes).
    let deadline = Instant::now() + Duration::from_secs(10);
    while total(&cp, "CacheClusterId=mcm", "GetHits") != a_hits + 4.0 {
        assert!(Instant::now() < deadline, "cluster GetHits never reached {}", a_hits + 4.0);
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(total(&cp, "CacheClusterId=mcm&CacheNodeId=0001", "GetHits"), a_hits);
    assert_eq!(total(&cp, "CacheClusterId=mcm&CacheNodeId=0002", "GetHits"), 4.0);
    assert_eq!(total(&cp, "CacheClusterId=mcm", "GetMisses"), 3.0);
    assert_eq!(total(&cp, "CacheClusterId=mcm", "CasHits"), 1.0);
    assert_eq!(total(&cp, "CacheClusterId=mcm", "CmdSet"), sets.0 + sets.1);
    let now = common::control::now_secs();
    let doc = json(
        &cp,
        &format!("CacheClusterId=mcm&MetricName=CurrItems&Period=1&StartTime={}&EndTime={}", now - 5, now + 1),
    );
    let last = doc["Datapoints"].as_array().unwrap().last().cloned().unwrap();
    assert_eq!(last["Average"].as_f64(), Some(7.0), "{}", doc);
}

#[test]
fn replication_group_metrics_roles_and_aggregates() {
    let cp = ControlPlane::new("metrics-rg");
    cp.ok(&[
        ("Action", "CreateReplicationGroup"),
        ("ReplicationGroupId", "rg"),
        ("ReplicationGroupDescription", "metrics"),
        ("NumCacheClusters", "2"),
    ]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let g = loop {
        let g = cp.ok(&[("Action", "DescribeReplicationGroups"), ("ReplicationGroupId", "rg")]);
        if tags(&g, "Status")[0] == "available" {
            break g;
        }
        assert!(Instant::now() < deadline, "group never became available: {}", g);
        std::thread::sleep(Duration::from_millis(100));
    };
    let primary: u16 = tags(&tags(&g, "PrimaryEndpoint")[0], "Port")[0].parse().unwrap();
    wait_scrape(&cp, "both members sampled", |m| {
        prom(m, "elasticache_set_type_cmds_total", "rg-001", "0001").is_some()
            && prom(m, "elasticache_set_type_cmds_total", "rg-002", "0001").is_some()
    });
    let mut con = redis::Client::open(format!("redis://127.0.0.1:{}/", primary)).unwrap().get_connection().unwrap();
    for k in 0..4 {
        let _: () = redis::cmd("SET").arg(format!("k{}", k)).arg("v").query(&mut con).unwrap();
    }
    let role = |m: &Scrape, cluster: &str| -> Option<String> {
        m.keys()
            .find(|(n, l)| n == "elasticache_is_master" && l.iter().any(|(k, v)| k == "cluster" && v == cluster))
            .and_then(|(_, l)| l.iter().find(|(k, _)| k == "role").map(|(_, v)| v.clone()))
    };
    wait_scrape(&cp, "primary and replica with the group's items", |m| {
        let roles = (role(m, "rg-001"), role(m, "rg-002"));
        (roles == (Some("primary".into()), Some("replica".into()))
            || roles == (Some("replica".into()), Some("primary".into())))
            && prom(m, "elasticache_curr_items", "rg-001", "0001") == Some(4.0)
            && prom(m, "elasticache_curr_items", "rg-002", "0001") == Some(4.0)
    });
    let m = scrape(&cp);
    let (p, r) = if role(&m, "rg-001").unwrap() == "primary" { ("rg-001", "rg-002") } else { ("rg-002", "rg-001") };
    assert_eq!(prom(&m, "elasticache_is_master", p, "0001"), Some(1.0));
    assert_eq!(prom(&m, "elasticache_is_master", r, "0001"), Some(0.0));
    assert_eq!(prom(&m, "elasticache_master_link_health_status", r, "0001"), Some(1.0));
    assert_eq!(prom(&m, "elasticache_master_link_health_status", p, "0001"), None);
    assert!(m.keys().any(|(n, l)| n == "elasticache_is_master"
        && l.iter().any(|(k, v)| k == "replication_group" && v == "rg")
        && l.iter().any(|(k, v)| k == "shard" && v == "0001")));

    // Per group: IsMaster adds up to one primary; CurrItems is the sum over the members.
    let now = common::control::now_secs();
    let doc = json(
        &cp,
        &format!("ReplicationGroupId=rg&MetricName=IsMaster&Period=1&StartTime={}&EndTime={}", now - 5, now + 1),
    );
    let last = doc["Datapoints"].as_array().unwrap().last().cloned().unwrap();
    assert_eq!(last["Maximum"].as_f64(), Some(1.0), "{}", doc);
    let doc = json(
        &cp,
        &format!("ReplicationGroupId=rg&MetricName=CurrItems&Period=1&StartTime={}&EndTime={}", now - 5, now + 1),
    );
    let last = doc["Datapoints"].as_array().unwrap().last().cloned().unwrap();
    assert_eq!(last["Average"].as_f64(), Some(8.0), "{}", doc);
    let deadline = Instant::now() + Duration::from_secs(10);
    while total(&cp, "ReplicationGroupId=rg", "SetTypeCmds") < 4.0 {
        assert!(Instant::now() < deadline, "the group's SetTypeCmds never reached 4");
        std::thread::sleep(Duration::from_millis(200));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while total(&cp, "ReplicationGroupId=rg", "ReplicationBytes") <= 0.0 {
        assert!(Instant::now() < deadline, "no ReplicationBytes");
        std::thread::sleep(Duration::from_millis(200));
    }
}
