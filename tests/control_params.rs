//! No request parameter is accepted and ignored (issue 11 §6), and the HTTP edges of the API
//! (issue 11 §7): every member of every request shape of the actions this control plane
//! implements, walked from botocore's model (crates/control/data/elasticache-request-members.txt,
//! made by tools/gen_elasticache_members.py), is either honoured (visible in Describe output)
//! or refused with ElastiCache's error document naming it. Real `ferrocache control` process,
//! real HTTP, the AWS CLI and boto3 where they can be installed.

mod common;
use common::control::{tags, ControlPlane};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The actions the API implements.
const ACTIONS: &[&str] = &[
    "CreateCacheCluster",
    "DescribeCacheClusters",
    "ModifyCacheCluster",
    "RebootCacheCluster",
    "DeleteCacheCluster",
    "DescribeEvents",
    "CreateReplicationGroup",
    "DescribeReplicationGroups",
    "ModifyReplicationGroup",
    "DeleteReplicationGroup",
    "IncreaseReplicaCount",
    "DecreaseReplicaCount",
    "TestFailover",
    "ModifyReplicationGroupShardConfiguration",
    "AddTagsToResource",
    "ListTagsForResource",
    "RemoveTagsFromResource",
];

/// The members each action honours (value semantics are checked by the other control tests and
/// by `honoured_members_show_in_describe_output` below). Every other member must be refused.
const HONOURED: &[(&str, &[&str])] = &[
    (
        "CreateCacheCluster",
        &[
            "CacheClusterId",
            "Engine",
            "NumCacheNodes",
            "CacheNodeType",
            "EngineVersion",
            "AZMode",
            "PreferredAvailabilityZone",
            "PreferredAvailabilityZones",
            "Tags",
        ],
    ),
    (
        "DescribeCacheClusters",
        &["CacheClusterId", "MaxRecords", "Marker", "ShowCacheNodeInfo", "ShowCacheClustersNotInReplicationGroups"],
    ),
    (
        "ModifyCacheCluster",
        &["CacheClusterId", "NumCacheNodes", "CacheNodeIdsToRemove", "CacheNodeType", "EngineVersion"],
    ),
    ("RebootCacheCluster", &["CacheClusterId", "CacheNodeIdsToReboot"]),
    ("DeleteCacheCluster", &["CacheClusterId"]),
    ("DescribeEvents", &["SourceIdentifier", "SourceType", "StartTime", "EndTime", "Duration", "MaxRecords", "Marker"]),
    (
        "CreateReplicationGroup",
        &[
            "ReplicationGroupId",
            "ReplicationGroupDescription",
            "AutomaticFailoverEnabled",
            "MultiAZEnabled",
            "NumCacheClusters",
            "PreferredCacheClusterAZs",
            "ReplicasPerNodeGroup",
            "CacheNodeType",
            "Engine",
            "EngineVersion",
            "NumNodeGroups",
            "ClusterMode",
            "NodeGroupConfiguration",
            "Tags",
        ],
    ),
    ("DescribeReplicationGroups", &["ReplicationGroupId", "MaxRecords", "Marker"]),
    (
        "ModifyReplicationGroup",
        &[
            "ReplicationGroupId",
            "ReplicationGroupDescription",
            "PrimaryClusterId",
            "AutomaticFailoverEnabled",
            "MultiAZEnabled",
            "NodeGroupId",
            "CacheNodeType",
            "EngineVersion",
        ],
    ),
    ("DeleteReplicationGroup", &["ReplicationGroupId", "RetainPrimaryCluster"]),
    ("IncreaseReplicaCount", &["ReplicationGroupId", "NewReplicaCount", "ReplicaConfiguration", "ApplyImmediately"]),
    (
        "DecreaseReplicaCount",
        &["ReplicationGroupId", "NewReplicaCount", "ReplicaConfiguration", "ReplicasToRemove", "ApplyImmediately"],
    ),
    ("TestFailover", &["ReplicationGroupId", "NodeGroupId"]),
    (
        "ModifyReplicationGroupShardConfiguration",
        &[
            "ReplicationGroupId",
            "NodeGroupCount",
            "ApplyImmediately",
            "ReshardingConfiguration",
            "NodeGroupsToRemove",
            "NodeGroupsToRetain",
        ],
    ),
    ("AddTagsToResource", &["ResourceName", "Tags"]),
    ("ListTagsForResource", &["ResourceName"]),
    ("RemoveTagsFromResource", &["ResourceName", "TagKeys"]),
];

/// Members accepted only with the value this control plane runs and reports (the test checks
/// that value is accepted and shown, and that the walk's other value is refused).
const ONLY: &[(&str, &str, &str, &str)] = &[
    // (action, member, the accepted value, the value the walk sends)
    ("CreateCacheCluster", "TransitEncryptionEnabled", "false", "true"),
    ("CreateCacheCluster", "AutoMinorVersionUpgrade", "true", "false"),
    ("CreateCacheCluster", "SnapshotRetentionLimit", "0", "7"),
    ("CreateCacheCluster", "CacheParameterGroupName", "default.memcached1.6", "my-params"),
    ("CreateCacheCluster", "CacheSubnetGroupName", "default", "my-subnets"),
    ("CreateCacheCluster", "NetworkType", "ipv4", "dual_stack"),
    ("CreateCacheCluster", "IpDiscovery", "ipv4", "ipv6"),
    ("CreateReplicationGroup", "TransitEncryptionEnabled", "false", "true"),
    ("CreateReplicationGroup", "AtRestEncryptionEnabled", "false", "true"),
    ("CreateReplicationGroup", "DataTieringEnabled", "false", "true"),
    ("CreateReplicationGroup", "AutoMinorVersionUpgrade", "true", "false"),
    ("CreateReplicationGroup", "SnapshotRetentionLimit", "0", "7"),
    ("CreateReplicationGroup", "CacheParameterGroupName", "default.redis7", "my-params"),
    ("CreateReplicationGroup", "CacheSubnetGroupName", "default", "my-subnets"),
    ("CreateReplicationGroup", "NetworkType", "ipv4", "dual_stack"),
    ("CreateReplicationGroup", "IpDiscovery", "ipv4", "ipv6"),
    ("ModifyCacheCluster", "ApplyImmediately", "true", "false"),
    ("ModifyCacheCluster", "AZMode", "single-az", "cross-az"),
    ("ModifyCacheCluster", "AutoMinorVersionUpgrade", "true", "false"),
    ("ModifyCacheCluster", "SnapshotRetentionLimit", "0", "7"),
    ("ModifyCacheCluster", "CacheParameterGroupName", "default.memcached1.6", "my-params"),
    ("ModifyCacheCluster", "IpDiscovery", "ipv4", "ipv6"),
    ("ModifyReplicationGroup", "ApplyImmediately", "true", "false"),
    ("ModifyReplicationGroup", "AutoMinorVersionUpgrade", "true", "false"),
    ("ModifyReplicationGroup", "SnapshotRetentionLimit", "0", "7"),
    ("ModifyReplicationGroup", "CacheParameterGroupName", "default.redis7", "my-params"),
    ("ModifyReplicationGroup", "TransitEncryptionEnabled", "false", "true"),
    ("ModifyReplicationGroup", "ClusterMode", "disabled", "enabled"),
    ("ModifyReplicationGroup", "IpDiscovery", "ipv4", "ipv6"),
];

/// Parts of honoured structures that are refused: (action, leaf key containing this).
const NESTED_REFUSED: &[(&str, &str)] = &[
    ("IncreaseReplicaCount", "PreferredOutpostArns"),
    ("DecreaseReplicaCount", "PreferredOutpostArns"),
    ("DecreaseReplicaCount", "PreferredAvailabilityZones"),
    ("CreateReplicationGroup", "OutpostArn"),
];

/// One member of the model: (type, example query keys with their leaf types).
struct Member {
    keys: Vec<(String, String)>,
}

fn model() -> BTreeMap<String, BTreeMap<String, Member>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/control/data/elasticache-request-members.txt");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut ops: BTreeMap<String, BTreeMap<String, Member>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let keys = f[4..]
            .iter()
            .map(|kv| {
                let (k, t) = kv.rsplit_once('=').unwrap();
                (k.to_string(), t.to_string())
            })
            .collect();
        ops.entry(f[0].to_string()).or_default().insert(f[1].to_string(), Member { keys });
    }
    ops
}

/// A plausible value for one query key of `member`.
fn plausible(member: &str, key: &str, leaf: &str) -> String {
    let specific = match member {
        "AuthToken" => "a-long-enough-secret-token-1234",
        "SnapshotArns" => "arn:aws:s3:::my-bucket/snapshot.rdb",
        "SnapshotName" | "FinalSnapshotIdentifier" | "ServerlessCacheSnapshotName" => "my-snapshot",
        "SnapshotWindow" => "05:00-09:00",
        "PreferredMaintenanceWindow" => "sun:23:00-mon:01:30",
        "NotificationTopicArn" => "arn:aws:sns:us-east-1:000000000000:topic",
        "NotificationTopicStatus" => "active",
        "Port" => "6380",
        "KmsKeyId" => "arn:aws:kms:us-east-1:000000000000:key/1234",
        "TransitEncryptionMode" => "required",
        "AuthTokenUpdateStrategy" => "ROTATE",
        "OutpostMode" => "single-outpost",
        "Durability" => "strong",
        "CacheNodeType" => "cache.t3.small",
        "PreferredAvailabilityZone" | "PreferredAvailabilityZones" | "NewAvailabilityZones" => "us-east-1b",
        "PreferredCacheClusterAZs" => "us-east-1b",
        "EngineVersion" => "7.0",
        "SourceType" => "cache-cluster",
        _ => "",
    };
    if key.ends_with(".LogType") {
        return "slow-log".into();
    }
    if key.ends_with(".DestinationType") {
        return "cloudwatch-logs".into();
    }
    if key.ends_with(".LogFormat") {
        return "json".into();
    }
    if !specific.is_empty() {
        return specific.into();
    }
    match leaf {
        "integer" => "1".into(),
        "boolean" => "true".into(),
        "timestamp" => "2026-01-01T00:00:00Z".into(),
        "double" => "1.5".into(),
        _ => "x1".into(),
    }
}

/// The base request of each action: valid, acting on nothing (an existing id for the creates,
/// a missing one for the others), so a member that passes is answered with a resource error.
fn base(action: &str) -> Vec<(String, String)> {
    let p: &[(&str, &str)] = match action {
        "CreateCacheCluster" => {
            &[("CacheClusterId", "existing"), ("Engine", "memcached"), ("CacheNodeType", "cache.t3.micro")]
        }
        "CreateReplicationGroup" => &[
            ("ReplicationGroupId", "existing-group"),
            ("ReplicationGroupDescription", "walk"),
            ("CacheNodeType", "cache.t3.micro"),
        ],
        "ModifyCacheCluster" | "DeleteCacheCluster" => &[("CacheClusterId", "ghost")],
        "RebootCacheCluster" => &[("CacheClusterId", "ghost"), ("CacheNodeIdsToReboot.CacheNodeId.1", "0001")],
        "ModifyReplicationGroup" | "DeleteReplicationGroup" => &[("ReplicationGroupId", "ghost")],
        "IncreaseReplicaCount" | "DecreaseReplicaCount" => {
            &[("ReplicationGroupId", "ghost"), ("ApplyImmediately", "true"), ("NewReplicaCount", "1")]
        }
        "TestFailover" => &[("ReplicationGroupId", "ghost"), ("NodeGroupId", "0001")],
        _ => &[],
    };
    p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn with(action: &str, extra: &[(String, String)]) -> Vec<(String, String)> {
    let mut p = vec![("Action".to_string(), action.to_string())];
    let names: BTreeSet<&str> = extra.iter().map(|(k, _)| k.split('.').next().unwrap()).collect();
    p.extend(base(action).into_iter().filter(|(k, _)| !names.contains(k.split('.').next().unwrap())));
    p.extend(extra.iter().cloned());
    p
}

fn call(cp: &ControlPlane, p: &[(String, String)]) -> (u16, String) {
    let refs: Vec<(&str, &str)> = p.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    cp.call(&refs)
}

/// Every member of every implemented action's input shape: honoured or refused by name.
#[test]
fn every_model_member_is_honoured_or_refused() {
    let model = model();
    let cp = ControlPlane::new("params-walk");
    // The "existing" ids the creates collide with.
    cp.ok(&[("Action", "CreateCacheCluster"), ("CacheClusterId", "existing"), ("Engine", "redis")]);
    cp.ok(&[
        ("Action", "CreateReplicationGroup"),
        ("ReplicationGroupId", "existing-group"),
        ("ReplicationGroupDescription", "walk"),
    ]);
    let honoured: BTreeMap<&str, &[&str]> = HONOURED.iter().copied().collect();
    let only: BTreeMap<(&str, &str), (&str, &str)> =
        ONLY.iter().map(|(a, m, ok, bad)| ((*a, *m), (*ok, *bad))).collect();
    let (mut refused, mut accepted) = (0, 0);
    for action in ACTIONS {
        let members = model.get(*action).unwrap_or_else(|| panic!("{} is not in the model", action));
        let h = honoured[action];
        for m in h {
            assert!(members.contains_key(*m), "{}.{} is not in the model", action, m);
        }
        for (name, member) in members {
            let values: Vec<(String, String)> = member
                .keys
                .iter()
                .map(|(k, leaf)| {
                    let v = match only.get(&(*action, name.as_str())) {
                        Some((_, bad)) => bad.to_string(),
                        None => plausible(name, k, leaf),
                    };
                    (k.clone(), v)
                })
                .collect();
            let nested: Vec<&str> = NESTED_REFUSED.iter().filter(|(a, _)| a == action).map(|(_, part)| *part).collect();
            let (inner_refused, values): (Vec<_>, Vec<_>) =
                values.into_iter().partition(|(k, _)| nested.iter().any(|part| k.contains(part)));
            for part in &inner_refused {
                // The rest of the structure with this one refused part.
                let mut v = values.clone();
                v.push(part.clone());
                let (code, body) = call(&cp, &with(action, &v));
                assert_eq!(code, 400, "{} {:?}: {}", action, part, body);
                assert!(tags(&body, "Message").join("").contains(&part.0), "{}", body);
                refused += 1;
            }
            let (code, body) = call(&cp, &with(action, &values));
            let codes = tags(&body, "Code");
            let message = tags(&body, "Message").join("");
            let unsupported = message.contains("not supported by this control plane");
            if h.contains(&name.as_str()) {
                assert!(!unsupported, "{}.{} is implemented but was refused: {}", action, name, body);
                accepted += 1;
                continue;
            }
            // Not honoured: refused, with ElastiCache's error document naming the member.
            assert_eq!(code, 400, "{}.{} = {:?} was not refused: {}", action, name, values, body);
            assert!(body.starts_with("<ErrorResponse xmlns=\"http://elasticache.amazonaws.com/doc/2015-02-02/\"><Error><Type>Sender</Type>"), "{}", body);
            assert!(
                codes == ["InvalidParameterCombination"] || codes == ["InvalidParameterValue"],
                "{}.{}: {}",
                action,
                name,
                body
            );
            assert!(message.contains(name.as_str()), "{}.{}: the message does not name it: {}", action, name, message);
            refused += 1;
        }
        // The values accepted for the ONLY members: not refused.
        for ((a, m), (ok, _)) in only.iter().filter(|((a, _), _)| a == action) {
            let keys = &members.get(*m).unwrap_or_else(|| panic!("{}.{} is not in the model", a, m)).keys;
            let values: Vec<(String, String)> = keys.iter().map(|(k, _)| (k.clone(), ok.to_string())).collect();
            let (_, body) = call(&cp, &with(action, &values));
            assert!(!body.contains("not supported by this control plane"), "{}.{}={}: {}", a, m, ok, body);
        }
        // A parameter that is not in the model at all is refused too.
        let (code, body) = call(&cp, &with(action, &[("NoSuchParameter".into(), "1".into())]));
        assert_eq!((code, tags(&body, "Code")), (400, vec!["InvalidParameterCombination".to_string()]), "{}", body);
        assert!(body.contains("NoSuchParameter"), "{}", body);
    }
    println!("model walk: {} members refused by name, {} honoured", refused, accepted);
    assert_eq!(accepted, HONOURED.iter().map(|(_, m)| m.len()).sum::<usize>());
    assert!(refused >= 90, "{} members refused", refused);
    // Nested members are checked too: a PreferredOutpostArns inside ReplicaConfiguration.
    let (code, body) = call(
        &cp,
        &with(
            "IncreaseReplicaCount",
            &[
                ("ReplicaConfiguration.ConfigureShard.1.NodeGroupId".into(), "0001".into()),
                ("ReplicaConfiguration.ConfigureShard.1.NewReplicaCount".into(), "2".into()),
                ("ReplicaConfiguration.ConfigureShard.1.PreferredOutpostArns.PreferredOutpostArn.1".into(), "x".into()),
                ("NewReplicaCount".into(), "".into()),
            ],
        ),
    );
    assert_eq!(code, 400, "{}", body);
    assert!(body.contains("ReplicaConfiguration.ConfigureShard.1.PreferredOutpostArns"), "{}", body);
}

/// The issue's reproductions, and the honoured members visible in Describe output.
#[test]
fn honoured_members_show_in_describe_output() {
    let cp = ControlPlane::new("params-honoured");
    let refused = |p: &[(&str, &str)], code: &str, names: &str| {
        let (status, body) = cp.call(p);
        assert_eq!((status, tags(&body, "Code")), (400, vec![code.to_string()]), "{:?}: {}", p, body);
        assert!(tags(&body, "Message")[0].contains(names), "{:?}: {}", p, body);
    };
    // AuthToken + TLS + encryption at rest: refused, and no group exists afterwards.
    refused(
        &[
            ("Action", "CreateReplicationGroup"),
            ("ReplicationGroupId", "secure"),
            ("ReplicationGroupDescription", "d"),
            ("AuthToken", "a-long-enough-secret-token-1234"),
            ("TransitEncryptionEnabled", "true"),
            ("AtRestEncryptionEnabled", "true"),
        ],
        "InvalidParameterCombination",
        "AuthToken",
    );
    let (status, body) = cp.call(&[("Action", "DescribeReplicationGroups"), ("ReplicationGroupId", "secure")]);
    assert_eq!(status, 404, "{}", body);
    for (k, v) in [
        ("SnapshotArns.SnapshotArn.1", "arn:aws:s3:::bucket/dump.rdb"),
        ("SnapshotRetentionLimit", "5"),
        ("Port", "6380"),
        ("LogDeliveryConfigurations.LogDeliveryConfigurationRequest.1.LogType", "slow-log"),
    ] {
        let name = k.split('.').next().unwrap();
        refused(
            &[("Action", "CreateCacheCluster"), ("CacheClusterId", "c1"), ("Engine", "redis"), (k, v)],
            "InvalidParameterCombination",
            name,
        );
    }
    refused(
        &[
            ("Action", "CreateCacheCluster"),
            ("CacheClusterId", "c1"),
            ("Engine", "redis"),
            ("CacheNodeType", "cache.zz.nonexistent"),
        ],
        "InvalidParameterValue",
        "CacheNodeType",
    );
    refused(
        &[
            ("Action", "CreateCacheCluster"),
            ("CacheClusterId", "c1"),
            ("Engine", "redis"),
            ("PreferredAvailabilityZone", "mars-1a"),
        ],
        "InvalidParameterValue",
        "PreferredAvailabilityZone",
    );
    refused(
        &[("Action", "CreateCacheCluster"), ("CacheClusterId", "c1"), ("Engine", "redis"), ("EngineVersion", "6.2")],
        "InvalidParameterValue",
        "EngineVersion",
    );
    // No CacheNodeType: ElastiCache's InvalidParameterValue, not a default.
    for action in ["CreateCacheCluster", "CreateReplicationGroup"] {
        refused(
            &[
                ("Action", action),
                ("CacheClusterId", "c1"),
                ("Engine", "redis"),
                ("ReplicationGroupId", "g1"),
                ("ReplicationGroupDescription", "d"),
                ("CacheNodeType", ""),
            ]
            .into_iter()
            .filter(|(k, _)| {
                action == "CreateCacheCluster" && !k.starts_with("Replication")
                    || action != "CreateCacheCluster" && *k != "CacheClusterId"
            })
            .collect::<Vec<_>>(),
            "InvalidParameterValue",
            "The parameter CacheNodeType must be provided and must not be blank.",
        );
    }
    let (s, b) = cp.call(&[("Action", "DescribeCacheClusters")]);
    assert_eq!((s, tags(&b, "CacheClusterId")), (200, vec![]), "{}", b);

    // Honoured: every implemented member of the creates at once, plus the accepted defaults.
    cp.ok(&[
        ("Action", "CreateCacheCluster"),
        ("CacheClusterId", "mc"),
        ("Engine", "memcached"),
        ("NumCacheNodes", "2"),
        ("CacheNodeType", "cache.m5.large"),
        ("EngineVersion", "1.6"),
        ("AZMode", "single-az"),
        ("PreferredAvailabilityZones.PreferredAvailabilityZone.1", "us-east-1c"),
        ("PreferredAvailabilityZones.PreferredAvailabilityZone.2", "us-east-1c"),
        ("TransitEncryptionEnabled", "false"),
        ("AutoMinorVersionUpgrade", "true"),
        ("CacheParameterGroupName", "default.memcached1.6"),
        ("CacheSubnetGroupName", "default"),
        ("SnapshotRetentionLimit", "0"),
        ("NetworkType", "ipv4"),
        ("IpDiscovery", "ipv4"),
    ]);
    cp.ok(&[
        ("Action", "CreateCacheCluster"),
        ("CacheClusterId", "single"),
        ("Engine", "redis"),
        ("CacheNodeType", "cache.r6g.large"),
        ("EngineVersion", "7.0.15"),
        ("PreferredAvailabilityZone", "us-east-1d"),
    ]);
    cp.ok(&[
        ("Action", "CreateReplicationGroup"),
        ("ReplicationGroupId", "rg"),
        ("ReplicationGroupDescription", "honoured"),
        ("Engine", "redis"),
        ("EngineVersion", "7.0"),
        ("CacheNodeType", "cache.t4g.small"),
        ("ReplicasPerNodeGroup", "1"),
        ("AutomaticFailoverEnabled", "true"),
        ("MultiAZEnabled", "true"),
        ("PreferredCacheClusterAZs.AvailabilityZone.1", "us-east-1e"),
        ("PreferredCacheClusterAZs.AvailabilityZone.2", "us-east-1f"),
        ("TransitEncryptionEnabled", "false"),
        ("AtRestEncryptionEnabled", "false"),
        ("NumNodeGroups", "1"),
        ("ClusterMode", "disabled"),
    ]);
    let describe = |id: &str| cp.ok(&[("Action", "DescribeCacheClusters"), ("CacheClusterId", id)]);
    let d = describe("mc");
    assert_eq!(tags(&d, "CacheNodeType"), ["cache.m5.large"]);
    assert_eq!(tags(&d, "EngineVersion"), ["1.6.18"]);
    assert_eq!(tags(&d, "PreferredAvailabilityZone"), ["us-east-1c"]);
    assert_eq!(tags(&d, "NumCacheNodes"), ["2"]);
    assert_eq!(tags(&d, "TransitEncryptionEnabled"), ["false"]);
    assert_eq!(tags(&d, "CacheParameterGroupName"), ["default.memcached1.6"]);
    let d = describe("single");
    assert_eq!(tags(&d, "CacheNodeType"), ["cache.r6g.large"]);
    assert_eq!(tags(&d, "EngineVersion"), ["7.0.15"]);
    assert_eq!(tags(&d, "PreferredAvailabilityZone"), ["us-east-1d"]);
    let g = cp.ok(&[("Action", "DescribeReplicationGroups"), ("ReplicationGroupId", "rg")]);
    assert_eq!(tags(&g, "Description"), ["honoured"]);
    assert_eq!(tags(&g, "CacheNodeType"), ["cache.t4g.small"]);
    assert_eq!(tags(&g, "AutomaticFailover"), ["enabled"]);
    assert_eq!(tags(&g, "MultiAZ"), ["enabled"]);
    assert_eq!(tags(&g, "PreferredAvailabilityZone"), ["us-east-1e", "us-east-1f"]);
    assert_eq!(tags(&g, "AtRestEncryptionEnabled"), ["false"]);
    assert_eq!(tags(&describe("rg-001"), "EngineVersion"), ["7.0.15"]);

    let wait = |id: &str, group: bool| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let body = if group {
                cp.ok(&[("Action", "DescribeReplicationGroups"), ("ReplicationGroupId", id)])
            } else {
                describe(id)
            };
            let st =
                if group { tags(&body, "Status")[0].clone() } else { tags(&body, "CacheClusterStatus")[0].clone() };
            if st == "available" {
                return;
            }
            assert!(Instant::now() < deadline, "{} stays {}", id, st);
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    wait("mc", false);
    wait("single", false);
    wait("rg", true);
    // Modify: CacheNodeType recorded, EngineVersion checked against what runs, the rest refused.
    cp.ok(&[
        ("Action", "ModifyCacheCluster"),
        ("CacheClusterId", "mc"),
        ("CacheNodeType", "cache.t3.small"),
        ("EngineVersion", "1.6.18"),
        ("ApplyImmediately", "true"),
    ]);
    assert_eq!(tags(&describe("mc"), "CacheNodeType"), ["cache.t3.small"]);
    for (k, v, code) in [
        ("EngineVersion", "1.6.22", "InvalidParameterValue"),
        ("CacheNodeType", "cache.huge", "InvalidParameterValue"),
        ("CacheParameterGroupName", "custom", "InvalidParameterCombination"),
        ("PreferredMaintenanceWindow", "sun:23:00-mon:01:30", "InvalidParameterCombination"),
        ("ApplyImmediately", "false", "InvalidParameterCombination"),
    ] {
        refused(
            &[("Action", "ModifyCacheCluster"), ("CacheClusterId", "mc"), ("CacheNodeType", "cache.m5.xlarge"), (k, v)],
            code,
            k,
        );
    }
    assert_eq!(tags(&describe("mc"), "CacheNodeType"), ["cache.t3.small"], "a refused request changed nothing");
    cp.ok(&[
        ("Action", "ModifyReplicationGroup"),
        ("ReplicationGroupId", "rg"),
        ("CacheNodeType", "cache.r7g.large"),
        ("EngineVersion", "7.0"),
        ("ApplyImmediately", "true"),
    ]);
    let g = cp.ok(&[("Action", "DescribeReplicationGroups"), ("ReplicationGroupId", "rg")]);
    assert_eq!(tags(&g, "CacheNodeType"), ["cache.r7g.large"]);
    assert_eq!(tags(&describe("rg-002"), "CacheNodeType"), ["cache.r7g.large"]);
    for (k, v, code) in [
        ("EngineVersion", "6.2", "InvalidParameterValue"),
        ("AuthToken", "a-long-enough-secret-token-1234", "InvalidParameterCombination"),
        ("PreferredMaintenanceWindow", "sun:23:00-mon:01:30", "InvalidParameterCombination"),
        ("CacheParameterGroupName", "custom", "InvalidParameterCombination"),
    ] {
        refused(&[("Action", "ModifyReplicationGroup"), ("ReplicationGroupId", "rg"), (k, v)], code, k);
    }
    // ShowCacheClustersNotInReplicationGroups.
    let all = cp.ok(&[("Action", "DescribeCacheClusters"), ("ShowCacheClustersNotInReplicationGroups", "true")]);
    assert_eq!(tags(&all, "CacheClusterId"), ["mc", "single"]);

    // The AWS CLI and boto3 see the same errors.
    let Some(py) = venv_python() else {
        println!("SKIPPED (AWS CLI / boto3 part): no venv with awscli and boto3");
        return;
    };
    let aws = |args: &[&str]| -> (bool, String) {
        let out = Command::new(&py)
            .args(["-m", "awscli", "elasticache"])
            .args(args)
            .args(["--endpoint-url", &cp.url(), "--region", "us-east-1", "--output", "json"])
            .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
            .env("AWS_SECRET_ACCESS_KEY", "secret")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (ok, err) = aws(&[
        "create-replication-group",
        "--replication-group-id",
        "secure",
        "--replication-group-description",
        "d",
        "--cache-node-type",
        "cache.t3.micro",
        "--auth-token",
        "a-long-enough-secret-token-1234",
        "--transit-encryption-enabled",
        "--at-rest-encryption-enabled",
    ]);
    assert!(
        !ok && err.contains("(InvalidParameterCombination) when calling the CreateReplicationGroup operation: The parameters AtRestEncryptionEnabled=true, AuthToken, TransitEncryptionEnabled=true are not supported"),
        "{}",
        err
    );
    let (ok, err) = aws(&["create-cache-cluster", "--cache-cluster-id", "nt", "--engine", "redis"]);
    assert!(
        !ok && err.contains("(InvalidParameterValue) when calling the CreateCacheCluster operation: The parameter CacheNodeType must be provided and must not be blank."),
        "{}",
        err
    );
    let (ok, err) = aws(&[
        "modify-cache-cluster",
        "--cache-cluster-id",
        "mc",
        "--preferred-maintenance-window",
        "sun:23:00-mon:01:30",
        "--apply-immediately",
    ]);
    assert!(
        !ok && err.contains("(InvalidParameterCombination)") && err.contains("PreferredMaintenanceWindow"),
        "{}",
        err
    );
    let script = format!(
        r#"
import boto3, botocore
ec = boto3.client("elasticache", endpoint_url="{}", region_name="us-east-1",
                  aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret")
def code(f, **kw):
    try:
        f(**kw)
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"] + ": " + e.response["Error"]["Message"]
    return "accepted"
print(code(ec.create_cache_cluster, CacheClusterId="t1", Engine="redis", CacheNodeType="cache.t3.micro",
           Tags=[{{"Key": "team", "Value": "cache"}}]))
print(code(ec.create_cache_cluster, CacheClusterId="t1", Engine="redis", CacheNodeType="cache.t3.micro",
           SnapshotArns=["arn:aws:s3:::bucket/dump.rdb"]))
print(code(ec.create_cache_cluster, CacheClusterId="t1", Engine="redis"))
"#,
        cp.url()
    );
    let out = Command::new(&py).args(["-c", &script]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{}{}", text, String::from_utf8_lossy(&out.stderr));
    // Tags are honoured (tests/control_tags.rs); the others are refused by name.
    assert_eq!(lines[0], "accepted", "{}", text);
    assert!(lines[1].starts_with("InvalidParameterCombination: The parameter SnapshotArns"), "{}", text);
    assert!(lines[2].starts_with("InvalidParameterValue: The parameter CacheNodeType"), "{}", text);
}

/// The venv of the AWS CLI tests (target/awscli-venv) when it has awscli and boto3.
fn venv_python() -> Option<PathBuf> {
    common::control::shared_venv_python(&[("awscli", "awscli"), ("boto3", "boto3")])
}

/// A raw HTTP/1.1 exchange on a socket: (status line, headers, body, seconds until the
/// server closed).
fn exchange(port: u16, request: &[u8]) -> (String, String, String, f64) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let t = Instant::now();
    let _ = s.write_all(request);
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    let secs = t.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&all).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (status.to_string(), headers.to_ascii_lowercase(), body.to_string(), secs)
}

fn error_code(body: &str) -> (String, String) {
    assert!(
        body.starts_with("<ErrorResponse xmlns=\"http://elasticache.amazonaws.com/doc/2015-02-02/\"><Error><Type>Sender</Type><Code>"),
        "not ElastiCache's error document: {:?}",
        body
    );
    (tags(body, "Code")[0].clone(), tags(body, "Message")[0].clone())
}

/// Oversized and chunked bodies, bodies and headers that never finish, and the Version
/// parameter, answered as ElastiCache (AWS Query) answers them.
#[test]
fn http_edges_answer_in_elasticache_shape() {
    let cp = ControlPlane::with_args("http-edges", &["--read-timeout", "2"]);
    // A 10 MB body: 413 with the XML error document.
    let big = format!("Action=DescribeCacheClusters&Version=2015-02-02&Pad={}", "a".repeat(10 << 20));
    let req = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{}",
        big.len(),
        big
    );
    let (status, headers, body, _) = exchange(cp.port, req.as_bytes());
    assert_eq!(status, "HTTP/1.1 413 Payload Too Large", "{}", body);
    assert!(headers.contains("content-type: text/xml"), "{}", headers);
    assert_eq!(error_code(&body).0, "RequestEntityTooLarge");
    // The same, chunked.
    let chunk = "a".repeat(1 << 16);
    let mut req = String::from("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    for _ in 0..40 {
        req.push_str(&format!("{:x}\r\n{}\r\n", chunk.len(), chunk));
    }
    req.push_str("0\r\n\r\n");
    let (status, _, body, _) = exchange(cp.port, req.as_bytes());
    assert_eq!(
        (status.as_str(), error_code(&body).0.as_str()),
        ("HTTP/1.1 413 Payload Too Large", "RequestEntityTooLarge")
    );
    // A small chunked request is served.
    let form = "Action=DescribeCacheClusters&Version=2015-02-02";
    let req = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{}\r\n0\r\n\r\n",
        form.len(),
        form
    );
    let (status, _, body, _) = exchange(cp.port, req.as_bytes());
    assert_eq!(status, "HTTP/1.1 200 OK", "{}", body);
    assert!(body.starts_with("<DescribeCacheClustersResponse"), "{}", body);
    // A malformed chunked body: the XML error document.
    let req = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\nAction\r\n0\r\n\r\n";
    let (status, _, body, _) = exchange(cp.port, req.as_bytes());
    if !body.is_empty() {
        assert!(status.starts_with("HTTP/1.1 400"), "{}", status);
        error_code(&body);
    }
    // A body that never finishes: RequestTimeout after --read-timeout, connection closed.
    let req = "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nAction=Describe";
    let (status, headers, body, secs) = exchange(cp.port, req.as_bytes());
    assert_eq!(status, "HTTP/1.1 400 Bad Request", "{}", body);
    assert_eq!(error_code(&body).0, "RequestTimeout");
    assert!(headers.contains("connection: close"), "{}", headers);
    assert!((1.5..10.0).contains(&secs), "{} s", secs);
    // Headers that never finish: closed after the read timeout.
    let (status, _, _, secs) = exchange(cp.port, b"POST / HTTP/1.1\r\nHost: x\r\n");
    assert!(secs < 10.0, "held for {} s", secs);
    assert!(status.is_empty() || status.starts_with("HTTP/1.1 408"), "{}", status);
    // Version: missing or another one, as AWS Query services answer.
    let post = |form: &str| {
        let req = format!(
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
            form.len(),
            form
        );
        let (status, _, body, _) = exchange(cp.port, req.as_bytes());
        (status, body)
    };
    let (status, body) = post("Action=DescribeCacheClusters");
    assert_eq!(status, "HTTP/1.1 400 Bad Request");
    assert_eq!(
        error_code(&body),
        (
            "InvalidAction".into(),
            "Could not find operation DescribeCacheClusters for version NO_VERSION_SPECIFIED".into()
        )
    );
    let (status, body) = post("Action=DescribeCacheClusters&Version=2014-09-30");
    assert_eq!(status, "HTTP/1.1 400 Bad Request");
    assert_eq!(
        error_code(&body),
        ("InvalidAction".into(), "Could not find operation DescribeCacheClusters for version 2014-09-30".into())
    );
    let (status, _) = post("Action=DescribeCacheClusters&Version=2015-02-02");
    assert_eq!(status, "HTTP/1.1 200 OK");
}
