//! The cluster-mode side of ElastiCache's replication-group actions: CreateReplicationGroup
//! with NumNodeGroups / NodeGroupConfiguration / ClusterMode, the cluster-mode shape of
//! DescribeReplicationGroups (ConfigurationEndpoint, every NodeGroup with its Slots, resharding
//! progress), ModifyReplicationGroupShardConfiguration, Increase/DecreaseReplicaCount per shard,
//! TestFailover per NodeGroupId, ModifyReplicationGroup and DeleteReplicationGroup.

use super::topology::{even_ranges, format_ranges, parse_ranges, SLOTS};
use super::{busy_key, ops, reshard, Layout, Resharding, Shard};
use crate::api::{combination, err, internal, invalid, new_node, validate_id, ApiError, Params};
use crate::failover::{group_event, Member};
use crate::replication_group::{claim_in, endpoint, group_id, group_xml, not_found, set_status, store_members};
use crate::state::{Cluster, ReplicationGroup};
use crate::xml::Xml;
use crate::{now_ms, App};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// ElastiCache's limits: 0-5 replicas per shard, 500 shards, 90 nodes per group by default.
const MAX_REPLICAS: i64 = 5;
const MAX_SHARDS: i64 = 500;
const MAX_NODES: i64 = 90;
/// The parameter group of cluster mode enabled.
pub const CLUSTER_PARAMETER_GROUP: &str = "default.redis7.cluster.on";

/// The members of a list of structures, `Prefix.N.Field...`, by N: each as its own Params.
fn structs(p: &Params, prefix: &str) -> Vec<Params> {
    let mut by_index: BTreeMap<u32, Params> = BTreeMap::new();
    for (k, v) in &p.0 {
        let Some(rest) = k.strip_prefix(prefix).and_then(|r| r.strip_prefix('.')) else { continue };
        let Some((idx, field)) = rest.split_once('.') else { continue };
        let Ok(idx) = idx.parse() else { continue };
        by_index.entry(idx).or_insert_with(|| Params(Default::default())).0.insert(field.to_string(), v.clone());
    }
    by_index.into_values().collect()
}

fn node_group_configs(p: &Params) -> Vec<Params> {
    structs(p, "NodeGroupConfiguration.NodeGroupConfiguration")
}

/// Whether a CreateReplicationGroup asks for cluster mode.
pub fn wants_cluster_mode(p: &Params) -> Result<bool, ApiError> {
    let shards = p.int("NumNodeGroups")?;
    let configs = node_group_configs(p).len();
    let cluster_pg = p.get("CacheParameterGroupName") == Some(CLUSTER_PARAMETER_GROUP);
    match p.get("ClusterMode").map(|m| m.to_ascii_lowercase()).as_deref() {
        Some("enabled") => Ok(true),
        Some("disabled") => {
            if shards.is_some_and(|n| n != 1) || configs > 1 || cluster_pg {
                return Err(combination(
                    "A replication group with ClusterMode disabled has one node group and the parameter group default.redis7.",
                ));
            }
            Ok(false)
        }
        Some("compatible") => Err(combination(
            "ClusterMode compatible is reached from a cluster-mode-disabled group with ModifyReplicationGroup, which this control plane does not support yet; create the group with ClusterMode enabled.",
        )),
        Some(m) => {
            Err(invalid(format!("Invalid value for parameter ClusterMode: {}. Valid values: enabled, disabled, compatible", m)))
        }
        None => Ok(cluster_pg || shards.is_some_and(|n| n > 1) || configs > 1),
    }
}

/// Whether a stored group is a cluster-mode one.
pub fn is_cluster_mode(app: &App, id: &str) -> bool {
    app.store.lock().unwrap().group(&id.to_ascii_lowercase()).ok().flatten().is_some_and(|g| g.layout.is_some())
}

/// A node group id: 1-4 digits, as ElastiCache's AllowedNodeGroupId.
fn validate_shard_id(id: &str) -> Result<(), ApiError> {
    if id.is_empty() || id.len() > 4 || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(invalid(format!("Invalid value for parameter NodeGroupId: {}. It must be 1 to 4 digits.", id)));
    }
    Ok(())
}

/// A new member cache cluster `<group>-<shard>-NNN` of `shard` (one node, `creating`).
fn new_member(app: &App, g: &ReplicationGroup, shard: &mut Shard, az: &str) -> Result<Member, ApiError> {
    let mut c = Cluster {
        id: format!("{}-{}-{:03}", g.id, shard.id, shard.next_member),
        engine: "redis".into(),
        engine_version: g.engine_version.clone(),
        node_type: g.node_type.clone(),
        status: "creating".into(),
        az: az.to_string(),
        created_ms: now_ms(),
        next_node: 1,
        cluster_mode: true,
    };
    shard.next_member += 1;
    let mut n = new_node(app, &mut c)?;
    n.port = app.provider.allocate_cluster_port().map_err(internal)?;
    shard.members.push(c.id.clone());
    Ok((c, n))
}

/// Give new members ports distinct from each other and from the group's.
fn distinct_ports(app: &App, used: &mut Vec<u16>, added: &mut [Member]) -> Result<(), ApiError> {
    for (_, n) in added.iter_mut() {
        while used.contains(&n.port) || used.contains(&(n.port + 10000)) || used.contains(&(n.port.wrapping_sub(10000)))
        {
            n.port = app.provider.allocate_cluster_port().map_err(internal)?;
        }
        used.push(n.port);
    }
    Ok(())
}

/// One shard's request: id, slots, replica count, primary and replica zones.
struct ShardRequest {
    id: String,
    slots: Vec<u16>,
    replicas: i64,
    primary_az: String,
    replica_azs: Vec<String>,
}

fn shard_requests(app: &App, p: &Params) -> Result<Vec<ShardRequest>, ApiError> {
    let configs = node_group_configs(p);
    let count = match p.int("NumNodeGroups")? {
        Some(n) => n,
        None if !configs.is_empty() => configs.len() as i64,
        None => 1,
    };
    if count < 1 {
        return Err(invalid("The parameter NumNodeGroups must be at least 1."));
    }
    if count > MAX_SHARDS {
        return Err(err(
            400,
            "NodeGroupsPerReplicationGroupQuotaExceeded",
            format!("The request cannot be processed because it would exceed the maximum of {} node groups (shards) in a single replication group.", MAX_SHARDS),
        ));
    }
    if !configs.is_empty() && configs.len() as i64 != count {
        return Err(combination(format!(
            "NodeGroupConfiguration has {} entries but NumNodeGroups is {}: give one entry per node group.",
            configs.len(),
            count
        )));
    }
    let rpn = p.int("ReplicasPerNodeGroup")?.unwrap_or(0);
    let default_az = format!("{}a", app.region);
    let with_slots = configs.iter().filter(|c| c.get("Slots").is_some()).count();
    if with_slots != 0 && with_slots != configs.len() {
        return Err(combination("Slots must be given for every node group or for none."));
    }
    let even = even_ranges(count as usize);
    let mut out = Vec::new();
    let mut ids = HashSet::new();
    let mut covered = vec![false; SLOTS];
    for (i, even_slots) in even.into_iter().enumerate() {
        let c = configs.get(i);
        let id = match c.and_then(|c| c.get("NodeGroupId")) {
            Some(id) => {
                validate_shard_id(id)?;
                format!("{:0>4}", id)
            }
            None => format!("{:04}", i + 1),
        };
        if !ids.insert(id.clone()) {
            return Err(invalid(format!("NodeGroupId {} is given more than once.", id)));
        }
        let slots = match c.and_then(|c| c.get("Slots")) {
            Some(s) => {
                let slots =
                    parse_ranges(s).map_err(|e| invalid(format!("Invalid value for parameter Slots: {}", e)))?;
                for s in &slots {
                    if std::mem::replace(&mut covered[*s as usize], true) {
                        return Err(invalid(format!("Slot {} is given to more than one node group.", s)));
                    }
                }
                slots
            }
            None => even_slots,
        };
        let replicas = match c.map(|c| c.int("ReplicaCount")).transpose()?.flatten() {
            Some(r) => r,
            None => rpn,
        };
        if !(0..=MAX_REPLICAS).contains(&replicas) {
            return Err(invalid(format!("The replica count of a node group must be between 0 and {}.", MAX_REPLICAS)));
        }
        let primary_az =
            c.and_then(|c| c.get("PrimaryAvailabilityZone")).map(str::to_string).unwrap_or(default_az.clone());
        crate::params::validate_az("PrimaryAvailabilityZone", &primary_az, &app.region)?;
        let mut replica_azs = c.map(|c| c.list("ReplicaAvailabilityZones")).unwrap_or_default();
        if replica_azs.is_empty() {
            replica_azs = vec![default_az.clone(); replicas as usize];
        } else if replica_azs.len() as i64 != replicas {
            return Err(combination(format!(
                "ReplicaAvailabilityZones of node group {} has {} zones for {} replicas.",
                id,
                replica_azs.len(),
                replicas
            )));
        }
        for az in &replica_azs {
            crate::params::validate_az("ReplicaAvailabilityZones", az, &app.region)?;
        }
        out.push(ShardRequest { id, slots, replicas, primary_az, replica_azs });
    }
    if with_slots > 0 && covered.iter().any(|c| !c) {
        return Err(invalid("The Slots of the node groups must together cover every slot, 0-16383."));
    }
    Ok(out)
}

pub fn create(app: &Arc<App>, p: &Params) -> Result<String, ApiError> {
    let raw_id = p.required("ReplicationGroupId")?;
    let description = p.required("ReplicationGroupDescription")?.to_string();
    let tags = crate::tags::from_request(p)?;
    crate::tags::check_new(&tags)?;
    if raw_id.len() > 40 {
        return Err(invalid("Replication group id must be at most 40 characters long."));
    }
    let id = validate_id(raw_id).map_err(|_| {
        invalid("Replication group id must begin with a letter; must contain only ASCII letters, digits, and hyphens; and must not end with a hyphen or contain two consecutive hyphens.")
    })?;
    if let Some(e) = p.get("Engine") {
        if !e.eq_ignore_ascii_case("redis") {
            return Err(invalid(format!("Invalid engine {} for a replication group. Valid engines: redis", e)));
        }
    }
    if let Some(pg) = p.get("CacheParameterGroupName") {
        if pg != CLUSTER_PARAMETER_GROUP {
            return Err(combination(format!(
                "Cluster mode needs a parameter group with cluster-enabled yes ({}); {} has cluster-enabled no.",
                CLUSTER_PARAMETER_GROUP, pg
            )));
        }
    }
    if p.get("NumCacheClusters").is_some() || !p.list("PreferredCacheClusterAZs").is_empty() {
        return Err(combination(
            "NumCacheClusters and PreferredCacheClusterAZs are for cluster mode disabled; give NumNodeGroups, ReplicasPerNodeGroup or NodeGroupConfiguration.",
        ));
    }
    if p.bool("AutomaticFailoverEnabled")? == Some(false) {
        return Err(combination("Redis with cluster mode enabled cannot be created with auto failover turned off."));
    }
    let multi_az = p.bool("MultiAZEnabled")?.unwrap_or(false);
    let requests = shard_requests(app, p)?;
    if multi_az && requests.iter().any(|r| r.replicas < 1) {
        return Err(combination("When MultiAZEnabled is true, every node group must have at least one replica."));
    }
    let nodes: i64 = requests.iter().map(|r| r.replicas + 1).sum();
    if nodes > MAX_NODES {
        return Err(err(
            400,
            "NodeQuotaForClusterExceeded",
            format!("The request would create {} nodes; a replication group has at most {}.", nodes, MAX_NODES),
        ));
    }
    let version = crate::params::engine_version("redis", p.get("EngineVersion"))?;
    let node_type = crate::params::node_type(p)?;
    let config_port = app.config_endpoints.allocate_port().map_err(internal)?;
    let mut g = ReplicationGroup {
        id: id.clone(),
        description,
        status: "creating".into(),
        automatic_failover: true,
        multi_az,
        node_type,
        engine_version: version,
        created_ms: now_ms(),
        primary: String::new(),
        members: Vec::new(),
        next_member: 1,
        primary_port: config_port,
        reader_port: 0,
        layout: None,
    };
    let mut layout = Layout { shards: Vec::new(), resharding: None };
    let mut added = Vec::new();
    for r in &requests {
        let mut shard = Shard {
            id: r.id.clone(),
            members: Vec::new(),
            primary: String::new(),
            slots: format_ranges(&r.slots),
            next_member: 1,
        };
        added.push(new_member(app, &g, &mut shard, &r.primary_az)?);
        shard.primary = shard.members[0].clone();
        for az in &r.replica_azs {
            added.push(new_member(app, &g, &mut shard, az)?);
        }
        layout.shards.push(shard);
    }
    g.layout = Some(layout);
    distinct_ports(app, &mut vec![config_port], &mut added)?;
    if app.store.lock().unwrap().group(&id).map_err(internal)?.is_some() || !app.try_begin(&busy_key(&id)) {
        return Err(err(400, "ReplicationGroupAlreadyExists", "Replication group already exists."));
    }
    let res = (|| {
        if !app.store.lock().unwrap().insert_group(&g).map_err(internal)? {
            return Err(err(400, "ReplicationGroupAlreadyExists", "Replication group already exists."));
        }
        if let Err(e) = store_members(app, &mut g, &added) {
            let _ = app.store.lock().unwrap().delete_group(&id);
            return Err(e);
        }
        app.store.lock().unwrap().update_group(&g).map_err(internal)?;
        crate::tags::put_new(app, "replicationgroup", &id, &tags)
    })();
    if let Err(e) = res {
        app.end(&busy_key(&id));
        return Err(e);
    }
    let out = group_xml(app, &id)?;
    app.spawn_op(move |a| ops::converge(a, &id, true, std::time::Duration::from_secs(30)));
    Ok(out)
}

/// A shard's status for DescribeReplicationGroups.
fn shard_status(g: &ReplicationGroup, layout: &Layout, shard: &Shard) -> &'static str {
    match (&layout.resharding, g.status.as_str()) {
        (_, "creating") => "creating",
        (_, "deleting") => "deleting",
        (Some(r), _) if r.removing.contains(&shard.id) => "deleting",
        (Some(_), _) if shard.slots.is_empty() => "creating",
        (Some(_), _) => "modifying",
        _ => "available",
    }
}

/// The cluster-mode shape of a ReplicationGroup.
pub fn write_group(app: &App, x: &mut Xml, g: &ReplicationGroup, members: &[Member]) {
    let Some(layout) = g.layout.as_ref() else { return };
    let addr = super::address(app, &g.id);
    let live: Vec<&Member> = members.iter().filter(|m| m.0.status != "deleting").collect();
    x.open("ReplicationGroup");
    x.leaf("ReplicationGroupId", &g.id);
    x.leaf("Description", &g.description);
    x.leaf("Status", &g.status);
    match &layout.resharding {
        Some(_) if g.status == "modifying" => {
            let pct = app.sharded.progress.lock().unwrap().get(&g.id).copied().unwrap_or(0.0);
            x.open("PendingModifiedValues").open("Resharding").open("SlotMigration");
            x.leaf("ProgressPercentage", &format!("{:.2}", pct));
            x.close("SlotMigration").close("Resharding").close("PendingModifiedValues");
        }
        _ => {
            x.empty("PendingModifiedValues");
        }
    }
    x.open("MemberClusters");
    for m in &live {
        x.leaf("ClusterId", &m.0.id);
    }
    x.close("MemberClusters");
    x.open("NodeGroups");
    for shard in &layout.shards {
        x.open("NodeGroup");
        x.leaf("NodeGroupId", &shard.id);
        x.leaf("Status", shard_status(g, layout, shard));
        if !shard.slots.is_empty() {
            x.leaf("Slots", &shard.slots);
        }
        x.open("NodeGroupMembers");
        for m in live.iter().filter(|m| shard.members.contains(&m.0.id)) {
            x.open("NodeGroupMember");
            x.leaf("CacheClusterId", &m.0.id);
            x.leaf("CacheNodeId", &m.1.node_id);
            x.leaf("PreferredAvailabilityZone", &m.0.az);
            x.close("NodeGroupMember");
        }
        x.close("NodeGroupMembers");
        x.close("NodeGroup");
    }
    x.close("NodeGroups");
    x.leaf("AutomaticFailover", "enabled");
    x.leaf("MultiAZ", if g.multi_az { "enabled" } else { "disabled" });
    if g.status != "creating" {
        endpoint(x, "ConfigurationEndpoint", &addr, g.primary_port);
    }
    crate::replication_group::write_group_settings(app, x, g, true);
}

fn claim(app: &App, id: &str) -> Result<(ReplicationGroup, Vec<Member>), ApiError> {
    claim_in(app, id, &["available"])
}

/// Release a claimed group after a refused request.
fn refuse<T>(app: &App, id: &str, e: ApiError) -> Result<T, ApiError> {
    app.end(&busy_key(id));
    Err(e)
}

pub fn modify_shards(app: &Arc<App>, p: &Params) -> Result<String, ApiError> {
    let id = group_id(p)?;
    let count = p
        .int("NodeGroupCount")?
        .ok_or_else(|| err(400, "MissingParameter", "The request must contain the parameter NodeGroupCount"))?;
    if p.get("ApplyImmediately").is_none() {
        return Err(err(400, "MissingParameter", "The request must contain the parameter ApplyImmediately"));
    }
    if p.bool("ApplyImmediately")? == Some(false) {
        return Err(invalid("ApplyImmediately must be true: resharding is applied immediately."));
    }
    {
        let g = app.store.lock().unwrap().group(&id).map_err(internal)?.ok_or_else(|| not_found(&id))?;
        if g.layout.is_none() {
            return Err(invalid(format!(
                "Replication group {} does not have cluster mode enabled; its node group count cannot be changed.",
                id
            )));
        }
    }
    if !(1..=MAX_SHARDS).contains(&count) {
        return Err(invalid(format!("The parameter NodeGroupCount must be between 1 and {}.", MAX_SHARDS)));
    }
    let remove = p.list("NodeGroupsToRemove");
    let retain = p.list("NodeGroupsToRetain");
    let reconf = structs(p, "ReshardingConfiguration.ReshardingConfiguration");
    for r in &reconf {
        if let Some(ng) = r.get("NodeGroupId") {
            validate_shard_id(ng)?;
        }
        for az in r.list("PreferredAvailabilityZones") {
            crate::params::validate_az("PreferredAvailabilityZones", &az, &app.region)?;
        }
    }
    let (mut g, members) = claim(app, &id)?;
    let mut layout = g.layout.clone().unwrap_or(Layout { shards: vec![], resharding: None });
    let current = layout.shards.len() as i64;
    let existing: Vec<String> = layout.shards.iter().map(|s| s.id.clone()).collect();
    let message;
    let mut added = Vec::new();
    if count == current {
        return refuse(app, &id, invalid(format!("Replication group {} already has {} node groups.", id, count)));
    } else if count > current {
        if !remove.is_empty() || !retain.is_empty() {
            return refuse(
                app,
                &id,
                combination("NodeGroupsToRemove and NodeGroupsToRetain apply only when NodeGroupCount is reduced."),
            );
        }
        let nodes = members.len() as i64 / current.max(1) * count;
        if nodes > MAX_NODES {
            return refuse(
                app,
                &id,
                err(
                    400,
                    "NodeQuotaForClusterExceeded",
                    format!("The request would make {} nodes; a replication group has at most {}.", nodes, MAX_NODES),
                ),
            );
        }
        let replicas = layout.shards.first().map_or(0, |s| s.members.len().saturating_sub(1));
        // New shards take the ReshardingConfiguration entries that do not name an existing one.
        let mut fresh =
            reconf.iter().filter(|r| r.get("NodeGroupId").is_none_or(|ng| !existing.contains(&format!("{:0>4}", ng))));
        let mut next = 1;
        let mut taken: HashSet<String> = existing.iter().cloned().collect();
        for _ in current..count {
            let conf = fresh.next();
            let sid = match conf.and_then(|c| c.get("NodeGroupId")) {
                Some(ng) => format!("{:0>4}", ng),
                None => {
                    while taken.contains(&format!("{:04}", next)) {
                        next += 1;
                    }
                    format!("{:04}", next)
                }
            };
            if !taken.insert(sid.clone()) {
                return refuse(app, &id, invalid(format!("NodeGroupId {} is given more than once.", sid)));
            }
            let azs = conf.map(|c| c.list("PreferredAvailabilityZones")).unwrap_or_default();
            let az = |i: usize| azs.get(i).cloned().unwrap_or_else(|| format!("{}a", app.region));
            let mut shard =
                Shard { id: sid, members: vec![], primary: String::new(), slots: String::new(), next_member: 1 };
            let made = (|| {
                let mut v = vec![new_member(app, &g, &mut shard, &az(0))?];
                for i in 0..replicas {
                    v.push(new_member(app, &g, &mut shard, &az(i + 1))?);
                }
                Ok::<_, ApiError>(v)
            })();
            match made {
                Ok(v) => added.extend(v),
                Err(e) => return refuse(app, &id, e),
            }
            shard.primary = shard.members[0].clone();
            layout.shards.push(shard);
        }
        let targets = layout.shards.iter().map(|s| s.id.clone()).collect();
        layout.resharding = Some(Resharding { targets, removing: vec![] });
        message = format!("Scaling out replication group {} from {} to {} node groups started", id, current, count);
    } else {
        let norm = |v: &[String]| v.iter().map(|s| format!("{:0>4}", s)).collect::<Vec<_>>();
        let (remove, retain) = (norm(&remove), norm(&retain));
        let removing: Vec<String> = match (remove.is_empty(), retain.is_empty()) {
            (true, true) => {
                return refuse(
                    app,
                    &id,
                    invalid("NodeGroupsToRemove or NodeGroupsToRetain is required when NodeGroupCount is less than the current number of node groups."),
                )
            }
            (false, false) => {
                return refuse(app, &id, combination("Give NodeGroupsToRemove or NodeGroupsToRetain, not both."))
            }
            (false, true) => remove,
            (true, false) => existing.iter().filter(|s| !retain.contains(s)).cloned().collect(),
        };
        for s in removing.iter().chain(retain.iter()) {
            if !existing.contains(s) {
                return refuse(app, &id, invalid(format!("Node group {} is not part of replication group {}.", s, id)));
            }
        }
        if existing.len() - removing.len() != count as usize {
            return refuse(
                app,
                &id,
                invalid(format!(
                    "Removing {} of {} node groups does not leave NodeGroupCount ({}) node groups.",
                    removing.len(),
                    current,
                    count
                )),
            );
        }
        let targets = existing.iter().filter(|s| !removing.contains(s)).cloned().collect();
        layout.resharding = Some(Resharding { targets, removing });
        message = format!("Scaling in replication group {} from {} to {} node groups started", id, current, count);
    }
    let res = (|| {
        let mut used: Vec<u16> = members.iter().map(|m| m.1.port).chain([g.primary_port]).collect();
        distinct_ports(app, &mut used, &mut added)?;
        g.layout = Some(layout);
        g.status = "modifying".into();
        store_members(app, &mut g, &added)?;
        app.store.lock().unwrap().update_group(&g).map_err(internal)
    })();
    if let Err(e) = res {
        return refuse(app, &id, e);
    }
    app.sharded.progress.lock().unwrap().insert(id.clone(), 0.0);
    group_event(app, &id, &message);
    let out = group_xml(app, &id)?;
    app.spawn_op(move |a| reshard::op_reshard(a, &id));
    Ok(out)
}

/// The replica counts asked for, per shard: NewReplicaCount for every shard or
/// ReplicaConfiguration's ConfigureShard entries (with their zones).
fn replica_requests(p: &Params, layout: &Layout) -> Result<Vec<(String, i64, Vec<String>)>, ApiError> {
    if p.get("ApplyImmediately").is_none() {
        return Err(err(400, "MissingParameter", "The request must contain the parameter ApplyImmediately"));
    }
    if p.bool("ApplyImmediately")? == Some(false) {
        return Err(invalid("ApplyImmediately must be true: replica count changes are applied immediately."));
    }
    let direct = p.int("NewReplicaCount")?;
    let shards = structs(p, "ReplicaConfiguration.ConfigureShard");
    match (direct, shards.is_empty()) {
        (Some(_), false) => Err(combination("Either NewReplicaCount or ReplicaConfiguration can be given, not both.")),
        (Some(n), true) => Ok(layout.shards.iter().map(|s| (s.id.clone(), n, vec![])).collect()),
        (None, true) => Ok(vec![]),
        (None, false) => shards
            .iter()
            .map(|c| {
                let (Some(ng), Some(n)) = (c.get("NodeGroupId"), c.int("NewReplicaCount")?) else {
                    return Err(err(
                        400,
                        "MissingParameter",
                        "A ConfigureShard must contain the parameters NodeGroupId and NewReplicaCount",
                    ));
                };
                let ng = format!("{:0>4}", ng);
                if !layout.shards.iter().any(|s| s.id == ng) {
                    return Err(err(404, "NodeGroupNotFoundFault", format!("NodeGroup {} not found.", ng)));
                }
                Ok((ng, n, c.list("PreferredAvailabilityZones")))
            })
            .collect(),
    }
}

pub fn increase(app: &Arc<App>, p: &Params) -> Result<String, ApiError> {
    let id = group_id(p)?;
    let (mut g, members) = claim(app, &id)?;
    let mut layout = g.layout.clone().unwrap();
    let requests = match replica_requests(p, &layout) {
        Ok(r) if r.is_empty() => {
            return refuse(app, &id, combination("Either NewReplicaCount or ReplicaConfiguration must be given."))
        }
        Ok(r) => r,
        Err(e) => return refuse(app, &id, e),
    };
    let mut added = Vec::new();
    for (sid, count, azs) in &requests {
        let shard = layout.shard_mut(sid).unwrap();
        let current = shard.members.len() as i64 - 1;
        if *count > MAX_REPLICAS || *count <= current {
            return refuse(
                app,
                &id,
                invalid(format!(
                    "The new replica count of node group {} ({}) must be greater than its current replica count ({}) and at most {}.",
                    sid, count, current, MAX_REPLICAS
                )),
            );
        }
        for i in 0..(count - current) as usize {
            let az = azs.get(i).cloned().unwrap_or_else(|| format!("{}a", app.region));
            if let Err(e) = crate::params::validate_az("PreferredAvailabilityZones", &az, &app.region) {
                return refuse(app, &id, e);
            }
            match new_member(app, &g, shard, &az) {
                Ok(m) => added.push(m),
                Err(e) => return refuse(app, &id, e),
            }
        }
    }
    let res = (|| {
        let mut used: Vec<u16> = members.iter().map(|m| m.1.port).chain([g.primary_port]).collect();
        distinct_ports(app, &mut used, &mut added)?;
        g.layout = Some(layout);
        g.status = "modifying".into();
        store_members(app, &mut g, &added)?;
        app.store.lock().unwrap().update_group(&g).map_err(internal)
    })();
    if let Err(e) = res {
        return refuse(app, &id, e);
    }
    let out = group_xml(app, &id)?;
    app.spawn_op(move |a| ops::converge(a, &id, false, std::time::Duration::from_secs(30)));
    Ok(out)
}

pub fn decrease(app: &Arc<App>, p: &Params) -> Result<String, ApiError> {
    let id = group_id(p)?;
    let remove: Vec<String> = p.list("ReplicasToRemove").into_iter().map(|s| s.to_ascii_lowercase()).collect();
    let (mut g, members) = claim(app, &id)?;
    let layout = g.layout.clone().unwrap();
    let requests = match replica_requests(p, &layout) {
        Ok(r) => r,
        Err(e) => return refuse(app, &id, e),
    };
    if requests.is_empty() && remove.is_empty() {
        return refuse(
            app,
            &id,
            combination("Either NewReplicaCount, ReplicaConfiguration or ReplicasToRemove must be given."),
        );
    }
    let mut victims: Vec<String> = Vec::new();
    for r in &remove {
        match layout.shard_of(r) {
            Some(s) if s.primary != *r => victims.push(r.clone()),
            Some(_) => return refuse(app, &id, invalid(format!("Cannot remove the primary cache cluster {}.", r))),
            None => {
                return refuse(
                    app,
                    &id,
                    invalid(format!("Cache cluster {} is not a member of replication group {}.", r, id)),
                )
            }
        }
    }
    for (sid, count, _) in &requests {
        let shard = layout.shards.iter().find(|s| &s.id == sid).unwrap();
        let current = shard.members.len() as i64 - 1;
        if *count < 0 || *count >= current {
            return refuse(
                app,
                &id,
                invalid(format!(
                    "The new replica count of node group {} ({}) must be less than its current replica count ({}) and at least 0.",
                    sid, count, current
                )),
            );
        }
        let need = (current - count) as usize;
        let mut chosen = victims.iter().filter(|v| shard.members.contains(v)).count();
        // Not named: the newest replicas go.
        for m in shard.members.iter().rev().filter(|m| **m != shard.primary) {
            if chosen >= need {
                break;
            }
            if !victims.contains(m) {
                victims.push(m.clone());
                chosen += 1;
            }
        }
    }
    if g.multi_az
        && layout
            .shards
            .iter()
            .any(|s| s.members.iter().filter(|m| **m != s.primary && !victims.contains(m)).count() < 1)
    {
        return refuse(
            app,
            &id,
            combination("A replication group with Multi-AZ enabled must keep a replica in every node group."),
        );
    }
    let res = (|| {
        g.status = "modifying".into();
        let mut st = app.store.lock().unwrap();
        st.update_group(&g).map_err(internal)?;
        for m in members.iter().filter(|m| victims.contains(&m.0.id)) {
            let (mut c, mut n) = m.clone();
            c.status = "deleting".into();
            n.status = "deleting".into();
            st.update_cluster(&c).map_err(internal)?;
            st.upsert_node(&n).map_err(internal)?;
        }
        Ok(())
    })();
    if let Err(e) = res {
        return refuse(app, &id, e);
    }
    let out = group_xml(app, &id)?;
    app.spawn_op(move |a| ops::converge(a, &id, false, std::time::Duration::from_secs(30)));
    Ok(out)
}

pub fn test_failover(app: &Arc<App>, p: &Params) -> Result<String, ApiError> {
    let id = group_id(p)?;
    let ng = format!("{:0>4}", p.required("NodeGroupId")?);
    let (mut g, _) = claim(app, &id)?;
    let Some(shard) = g.layout.as_ref().and_then(|l| l.shards.iter().find(|s| s.id == ng)).cloned() else {
        return refuse(app, &id, err(404, "NodeGroupNotFoundFault", format!("NodeGroup {} not found.", ng)));
    };
    if shard.members.len() < 2 {
        return refuse(
            app,
            &id,
            err(
                400,
                "InvalidReplicationGroupState",
                format!("Node group {} of replication group {} has no replica to fail over to.", ng, id),
            ),
        );
    }
    if let Err(e) = set_status(app, &mut g, "modifying") {
        return refuse(app, &id, e);
    }
    let out = group_xml(app, &id)?;
    app.spawn_op(move |a| ops::op_failover(a, &id, &ng, true));
    Ok(out)
}

pub fn modify(app: &Arc<App>, p: &Params) -> Result<String, ApiError> {
    let id = group_id(p)?;
    if p.get("PrimaryClusterId").is_some() || p.get("NodeGroupId").is_some() {
        return Err(combination(
            "PrimaryClusterId and NodeGroupId apply to cluster mode disabled groups; use TestFailover with a NodeGroupId to move a shard's primary.",
        ));
    }
    if p.bool("AutomaticFailoverEnabled")? == Some(false) {
        return Err(combination("Automatic failover cannot be disabled on a cluster mode enabled replication group."));
    }
    if let Some(t) = p.get("CacheNodeType") {
        crate::params::validate_node_type(t)?;
    }
    crate::params::engine_version("redis", p.get("EngineVersion"))?;
    let multi_az = p.bool("MultiAZEnabled")?;
    let (mut g, members) = claim(app, &id)?;
    let layout = g.layout.clone().unwrap();
    if multi_az == Some(true) && layout.shards.iter().any(|s| s.members.len() < 2) {
        return refuse(
            app,
            &id,
            combination("When MultiAZEnabled is true, every node group must have at least one replica."),
        );
    }
    let res = (|| {
        if let Some(d) = p.get("ReplicationGroupDescription") {
            g.description = d.to_string();
        }
        if let Some(t) = p.get("CacheNodeType") {
            g.node_type = t.to_string();
            let mut st = app.store.lock().unwrap();
            for (c, _) in &members {
                let mut c = c.clone();
                c.node_type = t.to_string();
                st.update_cluster(&c).map_err(internal)?;
            }
        }
        if let Some(m) = multi_az {
            g.multi_az = m;
        }
        app.store.lock().unwrap().update_group(&g).map_err(internal)
    })();
    app.end(&busy_key(&id));
    res?;
    group_xml(app, &id)
}

pub fn delete(app: &Arc<App>, p: &Params) -> Result<String, ApiError> {
    let id = group_id(p)?;
    if p.bool("RetainPrimaryCluster")? == Some(true) {
        return Err(combination("RetainPrimaryCluster is not supported for cluster mode enabled replication groups."));
    }
    let (mut g, _) = claim_in(app, &id, &["available", "incompatible-parameters"])?;
    if let Err(e) = set_status(app, &mut g, "deleting") {
        return refuse(app, &id, e);
    }
    let out = group_xml(app, &id)?;
    app.spawn_op(move |a| ops::op_delete(a, &id));
    Ok(out)
}
