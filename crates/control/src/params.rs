//! Which request members each action honours. ElastiCache's model (botocore's
//! `elasticache/2015-02-02/service-2.json`, extracted to crates/control/data/
//! elasticache-request-members.txt by tools/gen_elasticache_members.py) gives every action many
//! members; this control plane implements some of them. A request naming any other member is
//! refused with InvalidParameterCombination naming it — never accepted and ignored (an AuthToken
//! that is dropped leaves a cache open). Members that only have one value here (no TLS, no
//! encryption at rest, the default parameter group, ...) are accepted with that value only.
//! tests/control_params.rs walks the model to keep this table honest.

use crate::api::{combination, invalid, ApiError, Params};

/// What a request member may be.
#[derive(Clone, Copy)]
enum Rule {
    /// Handled by the action (its own validation applies).
    Implemented,
    /// Accepted only with one of these values (case-insensitive): it is what this control plane
    /// runs and reports (e.g. `TransitEncryptionEnabled=false`); any other value is refused.
    Only(&'static [&'static str]),
}
use Rule::{Implemented as I, Only};

const FALSE: Rule = Only(&["false"]);
const TRUE: Rule = Only(&["true"]);
const ZERO: Rule = Only(&["0"]);
const IPV4: Rule = Only(&["ipv4"]);
const DEFAULT_SUBNET: Rule = Only(&["default"]);

/// The members (normalized keys: list indices written `N`) each action accepts. A key matches a
/// rule when it equals it or continues it with `.`; everything not listed is refused.
fn rules(action: &str) -> Option<&'static [(&'static str, Rule)]> {
    Some(match action {
        "CreateCacheCluster" => &[
            ("CacheClusterId", I),
            ("Engine", I),
            ("NumCacheNodes", I),
            ("Tags", I),
            ("CacheNodeType", I),
            ("EngineVersion", I),
            ("AZMode", I),
            ("PreferredAvailabilityZone", I),
            ("PreferredAvailabilityZones", I),
            ("CacheParameterGroupName", Only(&["default.redis7", "default.memcached1.6"])),
            ("CacheSubnetGroupName", DEFAULT_SUBNET),
            ("SnapshotRetentionLimit", ZERO),
            ("AutoMinorVersionUpgrade", TRUE),
            ("TransitEncryptionEnabled", FALSE),
            ("NetworkType", IPV4),
            ("IpDiscovery", IPV4),
        ],
        "DescribeCacheClusters" => &[
            ("CacheClusterId", I),
            ("MaxRecords", I),
            ("Marker", I),
            ("ShowCacheNodeInfo", I),
            ("ShowCacheClustersNotInReplicationGroups", I),
        ],
        "ModifyCacheCluster" => &[
            ("CacheClusterId", I),
            ("NumCacheNodes", I),
            ("CacheNodeIdsToRemove", I),
            ("CacheNodeType", I),
            ("EngineVersion", I),
            ("AZMode", Only(&["single-az"])),
            ("ApplyImmediately", TRUE),
            ("CacheParameterGroupName", Only(&["default.redis7", "default.memcached1.6"])),
            ("AutoMinorVersionUpgrade", TRUE),
            ("SnapshotRetentionLimit", ZERO),
            ("IpDiscovery", IPV4),
        ],
        "RebootCacheCluster" => &[("CacheClusterId", I), ("CacheNodeIdsToReboot", I)],
        "DeleteCacheCluster" => &[("CacheClusterId", I)],
        "DescribeEvents" => &[
            ("SourceIdentifier", I),
            ("SourceType", I),
            ("StartTime", I),
            ("EndTime", I),
            ("Duration", I),
            ("MaxRecords", I),
            ("Marker", I),
        ],
        "CreateReplicationGroup" => &[
            ("ReplicationGroupId", I),
            ("ReplicationGroupDescription", I),
            ("AutomaticFailoverEnabled", I),
            ("MultiAZEnabled", I),
            ("NumCacheClusters", I),
            ("Tags", I),
            ("PreferredCacheClusterAZs", I),
            ("ReplicasPerNodeGroup", I),
            ("CacheNodeType", I),
            ("Engine", I),
            ("EngineVersion", I),
            ("NumNodeGroups", I),
            ("ClusterMode", I),
            ("NodeGroupConfiguration.NodeGroupConfiguration.N.NodeGroupId", I),
            ("NodeGroupConfiguration.NodeGroupConfiguration.N.Slots", I),
            ("NodeGroupConfiguration.NodeGroupConfiguration.N.ReplicaCount", I),
            ("NodeGroupConfiguration.NodeGroupConfiguration.N.PrimaryAvailabilityZone", I),
            ("NodeGroupConfiguration.NodeGroupConfiguration.N.ReplicaAvailabilityZones", I),
            ("CacheParameterGroupName", Only(&["default.redis7", "default.redis7.cluster.on"])),
            ("CacheSubnetGroupName", DEFAULT_SUBNET),
            ("SnapshotRetentionLimit", ZERO),
            ("AutoMinorVersionUpgrade", TRUE),
            ("TransitEncryptionEnabled", FALSE),
            ("AtRestEncryptionEnabled", FALSE),
            ("DataTieringEnabled", FALSE),
            ("NetworkType", IPV4),
            ("IpDiscovery", IPV4),
        ],
        "DescribeReplicationGroups" => &[("ReplicationGroupId", I), ("MaxRecords", I), ("Marker", I)],
        "ModifyReplicationGroup" => &[
            ("ReplicationGroupId", I),
            ("ReplicationGroupDescription", I),
            ("PrimaryClusterId", I),
            ("AutomaticFailoverEnabled", I),
            ("MultiAZEnabled", I),
            ("NodeGroupId", I),
            ("CacheNodeType", I),
            ("EngineVersion", I),
            ("ApplyImmediately", TRUE),
            ("CacheParameterGroupName", Only(&["default.redis7"])),
            ("AutoMinorVersionUpgrade", TRUE),
            ("SnapshotRetentionLimit", ZERO),
            ("TransitEncryptionEnabled", FALSE),
            ("ClusterMode", Only(&["disabled"])),
            ("IpDiscovery", IPV4),
        ],
        "DeleteReplicationGroup" => &[("ReplicationGroupId", I), ("RetainPrimaryCluster", I)],
        "IncreaseReplicaCount" => &[
            ("ReplicationGroupId", I),
            ("NewReplicaCount", I),
            ("ApplyImmediately", I),
            ("ReplicaConfiguration.ConfigureShard.N.NodeGroupId", I),
            ("ReplicaConfiguration.ConfigureShard.N.NewReplicaCount", I),
            ("ReplicaConfiguration.ConfigureShard.N.PreferredAvailabilityZones", I),
        ],
        "DecreaseReplicaCount" => &[
            ("ReplicationGroupId", I),
            ("NewReplicaCount", I),
            ("ReplicasToRemove", I),
            ("ApplyImmediately", I),
            ("ReplicaConfiguration.ConfigureShard.N.NodeGroupId", I),
            ("ReplicaConfiguration.ConfigureShard.N.NewReplicaCount", I),
        ],
        "TestFailover" => &[("ReplicationGroupId", I), ("NodeGroupId", I)],
        "AddTagsToResource" => &[("ResourceName", I), ("Tags", I)],
        "ListTagsForResource" => &[("ResourceName", I)],
        "RemoveTagsFromResource" => &[("ResourceName", I), ("TagKeys", I)],
        "ModifyReplicationGroupShardConfiguration" => &[
            ("ReplicationGroupId", I),
            ("NodeGroupCount", I),
            ("ApplyImmediately", I),
            ("ReshardingConfiguration.ReshardingConfiguration.N.NodeGroupId", I),
            ("ReshardingConfiguration.ReshardingConfiguration.N.PreferredAvailabilityZones", I),
            ("NodeGroupsToRemove", I),
            ("NodeGroupsToRetain", I),
        ],
        _ => return None,
    })
}

/// Parameters common to every AWS Query request, not members of the action's input.
fn common(key: &str) -> bool {
    matches!(
        key,
        "Action"
            | "Version"
            | "AWSAccessKeyId"
            | "Signature"
            | "SignatureMethod"
            | "SignatureVersion"
            | "Timestamp"
            | "Expires"
            | "SecurityToken"
    ) || key.starts_with("X-Amz-")
}

/// `A.B.3.C` → `A.B.N.C`.
fn normalize(key: &str) -> String {
    key.split('.')
        .map(|s| if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) { "N" } else { s })
        .collect::<Vec<_>>()
        .join(".")
}

fn matches(key: &str, pattern: &str) -> bool {
    key == pattern || key.strip_prefix(pattern).is_some_and(|r| r.starts_with('.'))
}

/// Refuse any member `action` does not honour (the request is not acted upon at all).
/// Actions without a table here are not implemented (the caller answers InvalidAction).
pub fn check(action: &str, p: &Params) -> Result<(), ApiError> {
    let Some(rules) = rules(action) else { return Ok(()) };
    let mut keys: Vec<(&String, &String)> = p.0.iter().filter(|(k, v)| !common(k) && !v.is_empty()).collect();
    keys.sort();
    // Every offending member, named as the model does (the first segment; the full key inside
    // a structure that is otherwise honoured), with the value when only the value is refused.
    let mut refused: Vec<String> = Vec::new();
    let mut supported: Vec<String> = Vec::new();
    for (key, value) in keys {
        let norm = normalize(key);
        match rules.iter().find(|(pattern, _)| matches(&norm, pattern)) {
            None => {
                let first = norm.split('.').next().unwrap_or_default();
                let member = match rules.iter().any(|(pat, _)| pat.split('.').next() == Some(first)) {
                    true => key.to_string(),
                    false => key.split('.').next().unwrap_or(key).to_string(),
                };
                if !refused.contains(&member) {
                    refused.push(member);
                }
            }
            Some((_, Rule::Only(allowed))) => {
                if !allowed.iter().any(|a| a.eq_ignore_ascii_case(value)) {
                    refused.push(format!("{}={}", key, value));
                    supported.push(format!("{} {}", key, allowed.join(" or ")));
                }
            }
            Some((_, Rule::Implemented)) => {}
        }
    }
    if refused.is_empty() {
        return Ok(());
    }
    let what = match refused.len() {
        1 => format!("The parameter {} is", refused[0]),
        _ => format!("The parameters {} are", refused.join(", ")),
    };
    let only = match supported.is_empty() {
        true => String::new(),
        false => format!(" (supported: {})", supported.join(", ")),
    };
    Err(combination(format!("{} not supported by this control plane yet{}; the request was not applied.", what, only)))
}

/// The node types of ElastiCache's model documentation (CreateCacheCluster's CacheNodeType).
/// A node's type is recorded and reported; nodes here are local processes of any size.
pub const NODE_TYPES: &[&str] = &[
    "cache.c1.xlarge",
    "cache.m1.large",
    "cache.m1.medium",
    "cache.m1.small",
    "cache.m1.xlarge",
    "cache.m2.2xlarge",
    "cache.m2.4xlarge",
    "cache.m2.xlarge",
    "cache.m3.2xlarge",
    "cache.m3.large",
    "cache.m3.medium",
    "cache.m3.xlarge",
    "cache.m4.10xlarge",
    "cache.m4.2xlarge",
    "cache.m4.4xlarge",
    "cache.m4.large",
    "cache.m4.xlarge",
    "cache.m5.12xlarge",
    "cache.m5.24xlarge",
    "cache.m5.2xlarge",
    "cache.m5.4xlarge",
    "cache.m5.large",
    "cache.m5.xlarge",
    "cache.m6g.12xlarge",
    "cache.m6g.16xlarge",
    "cache.m6g.2xlarge",
    "cache.m6g.4xlarge",
    "cache.m6g.8xlarge",
    "cache.m6g.large",
    "cache.m6g.xlarge",
    "cache.m7g.12xlarge",
    "cache.m7g.16xlarge",
    "cache.m7g.2xlarge",
    "cache.m7g.4xlarge",
    "cache.m7g.8xlarge",
    "cache.m7g.large",
    "cache.m7g.xlarge",
    "cache.r3.2xlarge",
    "cache.r3.4xlarge",
    "cache.r3.8xlarge",
    "cache.r3.large",
    "cache.r3.xlarge",
    "cache.r4.16xlarge",
    "cache.r4.2xlarge",
    "cache.r4.4xlarge",
    "cache.r4.8xlarge",
    "cache.r4.large",
    "cache.r4.xlarge",
    "cache.r5.12xlarge",
    "cache.r5.24xlarge",
    "cache.r5.2xlarge",
    "cache.r5.4xlarge",
    "cache.r5.large",
    "cache.r5.xlarge",
    "cache.r6g.12xlarge",
    "cache.r6g.16xlarge",
    "cache.r6g.2xlarge",
    "cache.r6g.4xlarge",
    "cache.r6g.8xlarge",
    "cache.r6g.large",
    "cache.r6g.xlarge",
    "cache.r7g.12xlarge",
    "cache.r7g.16xlarge",
    "cache.r7g.2xlarge",
    "cache.r7g.4xlarge",
    "cache.r7g.8xlarge",
    "cache.r7g.large",
    "cache.r7g.xlarge",
    "cache.t1.micro",
    "cache.t2.medium",
    "cache.t2.micro",
    "cache.t2.small",
    "cache.t3.medium",
    "cache.t3.micro",
    "cache.t3.small",
    "cache.t4g.medium",
    "cache.t4g.micro",
    "cache.t4g.small",
];

/// CacheNodeType: required where ElastiCache requires it, and one of [`NODE_TYPES`].
pub fn node_type(p: &Params) -> Result<String, ApiError> {
    let Some(t) = p.get("CacheNodeType") else {
        return Err(invalid("The parameter CacheNodeType must be provided and must not be blank."));
    };
    validate_node_type(t)?;
    Ok(t.to_string())
}

pub fn validate_node_type(t: &str) -> Result<(), ApiError> {
    if NODE_TYPES.contains(&t) {
        Ok(())
    } else {
        Err(invalid(format!("Invalid value for parameter CacheNodeType: {}", t)))
    }
}

/// An availability zone of `region` (`us-east-1a` ... `us-east-1f`).
pub fn validate_az(param: &str, az: &str, region: &str) -> Result<(), ApiError> {
    let ok = az.strip_prefix(region).is_some_and(|z| z.len() == 1 && ('a'..='f').contains(&z.chars().next().unwrap()));
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "Invalid value for parameter {}: {} (the availability zones of {} are {}a to {}f)",
            param, az, region, region, region
        )))
    }
}

/// The engine version the nodes run: `7.0.15` for Redis (asked for as `7.0` or `7.0.15`),
/// `1.6.18` for Memcached (`1.6` or `1.6.18`).
pub const REDIS_VERSION: &str = "7.0.15";
pub const MEMCACHED_VERSION: &str = "1.6.18";

pub fn engine_version(engine: &str, asked: Option<&str>) -> Result<String, ApiError> {
    let running = if engine == "memcached" { MEMCACHED_VERSION } else { REDIS_VERSION };
    match asked {
        None => Ok(running.to_string()),
        Some(v) if v == running || running.rsplit_once('.').is_some_and(|(minor, _)| minor == v) => {
            Ok(running.to_string())
        }
        Some(v) => Err(invalid(format!(
            "Cannot find version {} for {} (parameter EngineVersion; the nodes of this control plane run {} {})",
            v, engine, engine, running
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn params(kv: &[(&str, &str)]) -> Params {
        Params(kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<HashMap<_, _>>())
    }

    fn refusal(action: &str, kv: &[(&str, &str)]) -> Option<String> {
        check(action, &params(kv)).err().map(|e| e.message().to_string())
    }

    #[test]
    fn members_are_honoured_or_refused_by_name() {
        assert_eq!(refusal("CreateCacheCluster", &[("Action", "CreateCacheCluster"), ("CacheClusterId", "a")]), None);
        assert_eq!(refusal("CreateCacheCluster", &[("CacheClusterId", "a"), ("Tags.Tag.1.Key", "k")]), None);
        let m = refusal("CreateCacheCluster", &[("CacheClusterId", "a"), ("SnapshotName", "s")]).unwrap();
        assert!(m.starts_with("The parameter SnapshotName is not supported"), "{}", m);
        let m = refusal("CreateReplicationGroup", &[("AuthToken", "x"), ("TransitEncryptionEnabled", "true")]).unwrap();
        assert!(m.starts_with("The parameters AuthToken, TransitEncryptionEnabled=true are"), "{}", m);
        assert_eq!(refusal("CreateReplicationGroup", &[("TransitEncryptionEnabled", "FALSE")]), None);
        // Empty values are absent; SigV4 query parameters are not members.
        assert_eq!(refusal("CreateCacheCluster", &[("AuthToken", ""), ("X-Amz-Date", "1")]), None);
        // Inside an honoured structure, the refused part is named in full.
        let m = refusal(
            "IncreaseReplicaCount",
            &[
                ("ReplicaConfiguration.ConfigureShard.2.NodeGroupId", "0001"),
                ("ReplicaConfiguration.ConfigureShard.2.PreferredOutpostArns.PreferredOutpostArn.1", "x"),
            ],
        )
        .unwrap();
        assert!(
            m.contains("ReplicaConfiguration.ConfigureShard.2.PreferredOutpostArns.PreferredOutpostArn.1"),
            "{}",
            m
        );
        // Actions without a table are answered InvalidAction by the caller.
        assert_eq!(refusal("CreateSnapshot", &[("Anything", "1")]), None);
    }

    #[test]
    fn values() {
        assert!(validate_node_type("cache.t3.micro").is_ok());
        assert!(validate_node_type("cache.zz.nonexistent").is_err());
        assert!(validate_az("P", "us-east-1f", "us-east-1").is_ok());
        for bad in ["us-east-1g", "mars-1a", "us-east-1", "us-east-1aa"] {
            assert!(validate_az("P", bad, "us-east-1").is_err(), "{}", bad);
        }
        assert_eq!(engine_version("redis", None).ok(), Some("7.0.15".into()));
        assert_eq!(engine_version("redis", Some("7.0")).ok(), Some("7.0.15".into()));
        assert_eq!(engine_version("memcached", Some("1.6")).ok(), Some("1.6.18".into()));
        assert!(engine_version("redis", Some("6.2")).is_err());
        assert!(engine_version("redis", Some("7")).is_err());
        assert!(node_type(&params(&[])).is_err());
    }
}
