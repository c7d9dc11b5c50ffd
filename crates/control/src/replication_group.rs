//! ElastiCache's replication-group actions (Redis, cluster mode disabled: one node group
//! `0001`): CreateReplicationGroup, DescribeReplicationGroups, ModifyReplicationGroup,
//! DeleteReplicationGroup, IncreaseReplicaCount, DecreaseReplicaCount, TestFailover. The work
//! itself runs in the background (crate::failover).

use crate::api::{combination, err, internal, invalid, new_node, validate_id, ApiError, Params};
use crate::failover::{self, busy_key, load, Member};
use crate::state::{Cluster, ReplicationGroup};
use crate::xml::{iso8601, Xml};
use crate::{now_ms, App};
use std::sync::Arc;

/// Replicas per node group: 0-5, as ElastiCache.
const MAX_REPLICAS: i64 = 5;

/// The actions of this module; None for other actions.
pub fn dispatch(app: &Arc<App>, action: &str, p: &Params) -> Option<Result<String, ApiError>> {
    use crate::sharded::api as cm;
    let sharded = || p.get("ReplicationGroupId").is_some_and(|id| cm::is_cluster_mode(app, id));
    Some(match action {
        "CreateReplicationGroup" => match cm::wants_cluster_mode(p) {
            Ok(true) => cm::create(app, p),
            Ok(false) => create(app, p),
            Err(e) => Err(e),
        },
        "ModifyReplicationGroupShardConfiguration" => cm::modify_shards(app, p),
        "ModifyReplicationGroup" if sharded() => cm::modify(app, p),
        "DeleteReplicationGroup" if sharded() => cm::delete(app, p),
        "IncreaseReplicaCount" if sharded() => cm::increase(app, p),
        "DecreaseReplicaCount" if sharded() => cm::decrease(app, p),
        "TestFailover" if sharded() => cm::test_failover(app, p),
        "DescribeReplicationGroups" => describe(app, p),
        "ModifyReplicationGroup" => modify(app, p),
        "DeleteReplicationGroup" => delete(app, p),
        "IncreaseReplicaCount" => increase(app, p),
        "DecreaseReplicaCount" => decrease(app, p),
        "TestFailover" => test_failover(app, p),
        _ => return None,
    })
}

pub(crate) fn not_found(id: &str) -> ApiError {
    err(404, "ReplicationGroupNotFoundFault", format!("Replication group {} not found.", id))
}

pub(crate) fn bad_state(id: &str) -> ApiError {
    err(400, "InvalidReplicationGroupState", format!("Replication group {} is not in available state.", id))
}

pub(crate) fn group_id(p: &Params) -> Result<String, ApiError> {
    Ok(p.required("ReplicationGroupId")?.to_ascii_lowercase())
}

/// Load a group that must be `available` (and not busy) and claim it for an operation.
fn claim(app: &App, id: &str) -> Result<(ReplicationGroup, Vec<Member>), ApiError> {
    claim_in(app, id, &["available"])
}

/// [`claim`] for a group in one of `states`.
pub(crate) fn claim_in(app: &App, id: &str, states: &[&str]) -> Result<(ReplicationGroup, Vec<Member>), ApiError> {
    let (g, _) = load(app, id).ok_or_else(|| not_found(id))?;
    if !states.contains(&g.status.as_str()) {
        return Err(bad_state(id));
    }
    // The health loop holds the group for a moment on every check (and longer while it replaces
    // a failed node): wait for it a little.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while !app.try_begin(&busy_key(id)) {
        if std::time::Instant::now() > deadline {
            return Err(bad_state(id));
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // Reload: the state may have changed while waiting.
    let (g, members) = load(app, id).ok_or_else(|| not_found(id))?;
    if !states.contains(&g.status.as_str()) {
        app.end(&busy_key(id));
        return Err(bad_state(id));
    }
    Ok((g, members))
}

pub(crate) fn set_status(app: &App, g: &mut ReplicationGroup, status: &str) -> Result<(), ApiError> {
    g.status = status.into();
    app.store.lock().unwrap().update_group(g).map_err(internal)
}

pub(crate) fn endpoint(x: &mut Xml, name: &str, addr: &str, port: u16) {
    x.open(name).leaf("Address", addr).leaf("Port", &port.to_string()).close(name);
}

fn write_group(app: &App, x: &mut Xml, g: &ReplicationGroup, members: &[Member]) {
    if g.layout.is_some() {
        return crate::sharded::api::write_group(app, x, g, members);
    }
    let addr = app.provider.address(&crate::provider::NodeSpec {
        cluster_id: g.id.clone(),
        node_id: String::new(),
        engine: "redis".into(),
        port: 0,
        mc_port: 0,
        cluster_mode: false,
    });
    let live: Vec<&Member> = members.iter().filter(|m| m.0.status != "deleting").collect();
    let ready = g.status != "creating";
    x.open("ReplicationGroup");
    x.leaf("ReplicationGroupId", &g.id);
    x.leaf("Description", &g.description);
    x.leaf("Status", &g.status);
    x.empty("PendingModifiedValues");
    x.open("MemberClusters");
    for m in &live {
        x.leaf("ClusterId", &m.0.id);
    }
    x.close("MemberClusters");
    x.open("NodeGroups").open("NodeGroup");
    x.leaf("NodeGroupId", "0001");
    x.leaf("Status", &g.status);
    if ready {
        endpoint(x, "PrimaryEndpoint", &addr, g.primary_port);
        endpoint(x, "ReaderEndpoint", &addr, g.reader_port);
    }
    x.open("NodeGroupMembers");
    for m in &live {
        x.open("NodeGroupMember");
        x.leaf("CacheClusterId", &m.0.id);
        x.leaf("CacheNodeId", &m.1.node_id);
        if m.1.status != "creating" {
            endpoint(x, "ReadEndpoint", &addr, m.1.port);
        }
        x.leaf("PreferredAvailabilityZone", &m.0.az);
        if ready {
            x.leaf("CurrentRole", if m.0.id == g.primary { "primary" } else { "replica" });
        }
        x.close("NodeGroupMember");
    }
    x.close("NodeGroupMembers");
    x.close("NodeGroup").close("NodeGroups");
    x.leaf("AutomaticFailover", if g.automatic_failover { "enabled" } else { "disabled" });
    x.leaf("MultiAZ", if g.multi_az { "enabled" } else { "disabled" });
    write_group_settings(app, x, g, false);
}

/// The members of a ReplicationGroup after its configuration endpoint, the same for both
/// cluster modes (botocore's order), and the closing tag.
pub(crate) fn write_group_settings(app: &App, x: &mut Xml, g: &ReplicationGroup, cluster_mode: bool) {
    x.leaf("SnapshotRetentionLimit", "0");
    x.leaf("SnapshotWindow", "06:00-07:00");
    x.leaf("ClusterEnabled", if cluster_mode { "true" } else { "false" });
    x.leaf("CacheNodeType", &g.node_type);
    x.leaf("AuthTokenEnabled", "false");
    x.leaf("TransitEncryptionEnabled", "false");
    x.leaf("AtRestEncryptionEnabled", "false");
    x.open("MemberClustersOutpostArns").close("MemberClustersOutpostArns");
    x.leaf("ARN", &format!("arn:aws:elasticache:{}:000000000000:replicationgroup:{}", app.region, g.id));
    x.empty("LogDeliveryConfigurations");
    x.leaf("ReplicationGroupCreateTime", &iso8601(g.created_ms));
    x.leaf("DataTiering", "disabled");
    x.leaf("AutoMinorVersionUpgrade", "true");
    x.leaf("NetworkType", "ipv4");
    x.leaf("IpDiscovery", "ipv4");
    x.leaf("ClusterMode", if cluster_mode { "enabled" } else { "disabled" });
    x.leaf("Engine", "redis");
    x.close("ReplicationGroup");
}

pub(crate) fn group_xml(app: &App, id: &str) -> Result<String, ApiError> {
    let (g, members) = load(app, id).ok_or_else(|| not_found(id))?;
    let mut x = Xml::default();
    write_group(app, &mut x, &g, &members);
    Ok(x.out)
}

/// A new member cluster `<group>-NNN` (one node, `creating`); not stored yet.
fn new_member(app: &App, g: &mut ReplicationGroup, az: &str) -> Result<Member, ApiError> {
    let mut c = Cluster {
        id: format!("{}-{:03}", g.id, g.next_member),
        engine: "redis".into(),
        engine_version: g.engine_version.clone(),
        node_type: g.node_type.clone(),
        status: "creating".into(),
        az: az.to_string(),
        created_ms: now_ms(),
        next_node: 1,
        cluster_mode: false,
    };
    g.next_member += 1;
    let n = new_node(app, &mut c)?;
    Ok((c, n))
}

/// Store new members (failing on an id collision with an existing cache cluster) and claim them.
pub(crate) fn store_members(app: &App, g: &mut ReplicationGroup, added: &[Member]) -> Result<(), ApiError> {
    let mut st = app.store.lock().unwrap();
    for (c, _) in added {
        if st.cluster(&c.id).map_err(internal)?.is_some() {
            return Err(err(400, "CacheClusterAlreadyExists", format!("Cache cluster {} already exists.", c.id)));
        }
    }
    for (c, n) in added {
        st.insert_cluster(c).map_err(internal)?;
        st.upsert_node(n).map_err(internal)?;
        app.try_begin(&c.id);
        g.members.push((c.id.clone(), c.az.clone()));
    }
    Ok(())
}

fn create(app: &Arc<App>, p: &Params) -> Result<String, ApiError> {
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
    if p.0.keys().any(|k| k.starts_with("NodeGroupConfiguration.")) {
        return Err(combination(
            "NodeGroupConfiguration is supported for cluster mode enabled groups here; a cluster mode disabled group takes NumCacheClusters and PreferredCacheClusterAZs.",
        ));
    }
    let num = p.int("NumCacheClusters")?;
    let rpn = p.int("ReplicasPerNodeGroup")?;
    let num = match (num, rpn) {
        (Some(n), Some(r)) if n != r + 1 => {
            return Err(combination("NumCacheClusters and ReplicasPerNodeGroup do not match."));
        }
        (Some(n), _) => n,
        (None, Some(r)) => {
            if !(0..=MAX_REPLICAS).contains(&r) {
                return Err(invalid(format!("ReplicasPerNodeGroup must be between 0 and {}.", MAX_REPLICAS)));
            }
            r + 1
        }
        (None, None) => 1,
    };
    if !(1..=MAX_REPLICAS + 1).contains(&num) {
        return Err(invalid(format!(
            "The number of cache clusters must be between 1 and {} (one primary and up to {} replicas).",
            MAX_REPLICAS + 1,
            MAX_REPLICAS
        )));
    }
    let failover = p.bool("AutomaticFailoverEnabled")?.unwrap_or(false);
    let multi_az = p.bool("MultiAZEnabled")?.unwrap_or(false);
    if failover && num < 2 {
        return Err(combination(
            "When AutomaticFailoverEnabled is true, the replication group must have at least one read replica.",
        ));
    }
    if multi_az && !failover {
        return Err(combination("When MultiAZEnabled is true, AutomaticFailoverEnabled must be true too."));
    }
    let mut azs = p.list("PreferredCacheClusterAZs");
    if azs.is_empty() {
        azs = vec![format!("{}a", app.region); num as usize];
    } else if azs.len() as i64 != num {
        return Err(combination(format!(
            "The number of PreferredCacheClusterAZs ({}) must equal the number of cache clusters ({}).",
            azs.len(),
            num
        )));
    }
    for az in &azs {
        crate::params::validate_az("PreferredCacheClusterAZs", az, &app.region)?;
    }
    let version = crate::params::engine_version("redis", p.get("EngineVersion"))?;
    let node_type = crate::params::node_type(p)?;
    let pp = app.provider.allocate_ports("redis").map_err(internal)?.0;
    let mut rp = app.provider.allocate_ports("redis").map_err(internal)?.0;
    while rp == pp {
        rp = app.provider.allocate_ports("redis").map_err(internal)?.0;
    }
    let mut g = ReplicationGroup {
        id: id.clone(),
        description,
        status: "creating".into(),
        automatic_failover: failover,
        multi_az,
        node_type,
        engine_version: version,
        created_ms: now_ms(),
        primary: String::new(),
        members: Vec::new(),
        next_member: 1,
        primary_port: pp,
        reader_port: rp,
        layout: None,
    };
    let mut added = Vec::new();
    for az in &azs {
        added.push(new_member(app, &mut g, az)?);
    }
    // Ports are only reserved once bound: make the group's node and endpoint ports distinct.
    let mut used = vec![g.primary_port, g.reader_port];
    for (_, n) in added.iter_mut() {
        while used.contains(&n.port) {
            n.port = app.provider.allocate_ports("redis").map_err(internal)?.0;
        }
        used.push(n.port);
    }
    g.primary = added[0].0.id.clone();
    {
        let st = app.store.lock().unwrap();
        if st.group(&id).map_err(internal)?.is_some() {
            return Err(err(400, "ReplicationGroupAlreadyExists", "Replication group already exists."));
        }
    }
    if !app.try_begin(&busy_key(&id)) {
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
        crate::tags::put_new(app, "replicationgroup", &id, &tags)?;
        app.groups.endpoints.ensure(&id, pp, rp).map_err(internal)
    })();
    if let Err(e) = res {
        app.end(&busy_key(&id));
        return Err(e);
    }
    let out = group_xml(app, &id)?;
    app.spawn_op(move |a| failover::op_converge(a, &id, true));
    Ok(out)
}

fn describe(app: &Arc<App>, p: &Params) -> Result<String, ApiError> {
    let max = p.int("MaxRecords")?.unwrap_or(100);
    if !(20..=100).contains(&max) {
        return Err(invalid("The parameter MaxRecords must be between 20 and 100."));
    }
    let groups = match p.get("ReplicationGroupId") {
        Some(id) => {
            let id = id.to_ascii_lowercase();
            vec![app.store.lock().unwrap().group(&id).map_err(internal)?.ok_or_else(|| not_found(&id))?]
        }
        None => app.store.lock().unwrap().groups().map_err(internal)?,
    };
    let start = match p.get("Marker") {
        Some(m) => groups.iter().position(|g| g.id.as_str() >= m).unwrap_or(groups.len()),
        None => 0,
    };
    let mut x = Xml::default();
    if let Some(next) = groups.get(start + max as usize) {
        x.leaf("Marker", &next.id);
    }
    x.open("ReplicationGroups");
    for g in groups.iter().skip(start).take(max as usize) {
        if let Some((g, members)) = load(app, &g.id) {
            write_group(app, &mut x, &g, &members);
        }
    }
    x.close("ReplicationGroups");
    Ok(x.out)
}

fn modify(app: &Arc<App>, p: &Params) -> Result<String, ApiError> {
    let id = group_id(p)?;
    let failover = p.bool("AutomaticFailoverEnabled")?;
    let multi_az = p.bool("MultiAZEnabled")?;
    let primary = p.get("PrimaryClusterId").map(|s| s.to_ascii_lowercase());
    if p.get("NodeGroupId").is_some_and(|n| n != "0001") {
        return Err(err(
            404,
            "NodeGroupNotFoundFault",
            format!("NodeGroup {} not found.", p.get("NodeGroupId").unwrap()),
        ));
    }
    if let Some(t) = p.get("CacheNodeType") {
        crate::params::validate_node_type(t)?;
    }
    crate::params::engine_version("redis", p.get("EngineVersion"))?;
    let (mut g, members) = claim(app, &id)?;
    let res = (|| {
        let replicas = members.len() as i64 - 1;
        let new_failover = failover.unwrap_or(g.automatic_failover);
        let new_multi_az = multi_az.unwrap_or(g.multi_az && new_failover);
        if new_failover && replicas < 1 {
            return Err(combination(
                "When AutomaticFailoverEnabled is true, the replication group must have at least one read replica.",
            ));
        }
        if new_multi_az && !new_failover {
            return Err(combination("When MultiAZEnabled is true, AutomaticFailoverEnabled must be true too."));
        }
        if let Some(pc) = &primary {
            if !members.iter().any(|m| &m.0.id == pc) {
                return Err(invalid(format!("Cache cluster {} is not a member of replication group {}.", pc, id)));
            }
        }
        if let Some(d) = p.get("ReplicationGroupDescription") {
            g.description = d.to_string();
        }
        if let Some(t) = p.get("CacheNodeType") {
            // Recorded and reported for the group and each member cluster.
            g.node_type = t.to_string();
            let mut st = app.store.lock().unwrap();
            for (c, _) in &members {
                let mut c = c.clone();
                c.node_type = t.to_string();
                st.update_cluster(&c).map_err(internal)?;
            }
        }
        g.automatic_failover = new_failover;
        g.multi_az = new_multi_az;
        let switch = primary.filter(|pc| *pc != g.primary);
        g.status = if switch.is_some() { "modifying" } else { "available" }.into();
        app.store.lock().unwrap().update_group(&g).map_err(internal)?;
        Ok(switch)
    })();
    match res {
        Err(e) => {
            app.end(&busy_key(&id));
            Err(e)
        }
        Ok(None) => {
            app.end(&busy_key(&id));
            group_xml(app, &id)
        }
        Ok(Some(target)) => {
            let out = group_xml(app, &id)?;
            app.spawn_op(move |a| failover::op_switch(a, &id, Some(target), false));
            Ok(out)
        }
    }
}

fn delete(app: &Arc<App>, p: &Params) -> Result<String, ApiError> {
    let id = group_id(p)?;
    let retain = p.bool("RetainPrimaryCluster")?.unwrap_or(false);
    // A group whose nodes could not be brought up can still be deleted.
    let (mut g, _) = claim_in(app, &id, &["available", "incompatible-parameters"])?;
    if let Err(e) = set_status(app, &mut g, "deleting") {
        app.end(&busy_key(&id));
        return Err(e);
    }
    let out = group_xml(app, &id)?;
    app.spawn_op(move |a| failover::op_delete(a, &id, retain));
    Ok(out)
}

/// NewReplicaCount or ReplicaConfiguration (node group 0001): the requested replica count.
fn requested_count(p: &Params) -> Result<Option<i64>, ApiError> {
    if p.get("ApplyImmediately").is_none() {
        return Err(err(400, "MissingParameter", "The request must contain the parameter ApplyImmediately"));
    }
    if p.bool("ApplyImmediately")? == Some(false) {
        return Err(invalid("ApplyImmediately must be true: replica count changes are applied immediately."));
    }
    let direct = p.int("NewReplicaCount")?;
    let shard_group = p.get("ReplicaConfiguration.ConfigureShard.1.NodeGroupId");
    let shard_count = p.int("ReplicaConfiguration.ConfigureShard.1.NewReplicaCount")?;
    if p.get("ReplicaConfiguration.ConfigureShard.2.NodeGroupId").is_some() {
        return Err(err(404, "NodeGroupNotFoundFault", "Only node group 0001 exists."));
    }
    match (direct, shard_group, shard_count) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            Err(combination("Either NewReplicaCount or ReplicaConfiguration can be given, not both."))
        }
        (Some(n), None, None) => Ok(Some(n)),
        (None, Some(ng), Some(n)) => {
            if ng != "0001" {
                return Err(err(404, "NodeGroupNotFoundFault", format!("NodeGroup {} not found.", ng)));
            }
            Ok(Some(n))
        }
        (None, None, None) => Ok(None),
        (None, _, _) => Err(err(
            400,
            "MissingParameter",
            "A ConfigureShard must contain the parameters NodeGroupId and NewReplicaCount",
        )),
    }
}

fn increase(app: &Arc<App>, p: &Params) -> Result<String, ApiError> {
    let id = group_id(p)?;
    let Some(count) = requested_count(p)? else {
        return Err(combination("Either NewReplicaCount or ReplicaConfiguration must be given."));
    };
    let azs = p.list("ReplicaConfiguration.ConfigureShard.1.PreferredAvailabilityZones");
    for az in &azs {
        crate::params::validate_az("PreferredAvailabilityZones", az, &app.region)?;
    }
    let (mut g, members) = claim(app, &id)?;
    let res = (|| {
        let current = members.len() as i64 - 1;
        if count > MAX_REPLICAS {
            return Err(invalid(format!("The replica count must be at most {}; got {}.", MAX_REPLICAS, count)));
        }
        if count <= current {
            return Err(invalid(format!(
                "The new replica count ({}) must be greater than the current replica count ({}).",
                count, current
            )));
        }
        let mut added = Vec::new();
        for i in 0..(count - current) as usize {
            let az = azs.get(i).cloned().unwrap_or_else(|| format!("{}a", app.region));
            added.push(new_member(app, &mut g, &az)?);
        }
        g.status = "modifying".into();
        store_members(app, &mut g, &added)?;
        app.store.lock().unwrap().update_group(&g).map_err(internal)
    })();
    if let Err(e) = res {
        app.end(&busy_key(&id));
        return Err(e);
    }
    let out = group_xml(app, &id)?;
    app.spawn_op(move |a| failover::op_converge(a, &id, false));
    Ok(out)
}

fn decrease(app: &Arc<App>, p: &Params) -> Result<String, ApiError> {
    let id = group_id(p)?;
    let count = requested_count(p)?;
    let remove: Vec<String> = p.list("ReplicasToRemove").into_iter().map(|s| s.to_ascii_lowercase()).collect();
    if count.is_none() && remove.is_empty() {
        return Err(combination("Either NewReplicaCount, ReplicaConfiguration or ReplicasToRemove must be given."));
    }
    let (mut g, members) = claim(app, &id)?;
    let res = (|| {
        let current = members.len() as i64 - 1;
        let count = count.unwrap_or(current - remove.len() as i64);
        if count < 0 {
            return Err(invalid(format!("The replica count must be at least 0; got {}.", count)));
        }
        if count >= current {
            return Err(invalid(format!(
                "The new replica count ({}) must be less than the current replica count ({}).",
                count, current
            )));
        }
        if g.automatic_failover && count < 1 {
            return Err(combination(
                "A replication group with automatic failover enabled must keep at least one replica.",
            ));
        }
        let victims: Vec<String> = if remove.is_empty() {
            // Not given: the newest replicas go.
            members
                .iter()
                .rev()
                .filter(|m| m.0.id != g.primary)
                .take((current - count) as usize)
                .map(|m| m.0.id.clone())
                .collect()
        } else {
            if remove.len() as i64 != current - count {
                return Err(combination(format!(
                    "The number of replicas to remove ({}) must equal the current replica count ({}) minus NewReplicaCount ({}).",
                    remove.len(),
                    current,
                    count
                )));
            }
            for r in &remove {
                if !members.iter().any(|m| &m.0.id == r) {
                    return Err(invalid(format!("Cache cluster {} is not a member of replication group {}.", r, id)));
                }
                if *r == g.primary {
                    return Err(invalid(format!("Cannot remove the primary cache cluster {}.", r)));
                }
            }
            remove.clone()
        };
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
        app.end(&busy_key(&id));
        return Err(e);
    }
    let out = group_xml(app, &id)?;
    app.spawn_op(move |a| failover::op_converge(a, &id, false));
    Ok(out)
}

fn test_failover(app: &Arc<App>, p: &Params) -> Result<String, ApiError> {
    let id = group_id(p)?;
    let ng = p.required("NodeGroupId")?;
    {
        let st = app.store.lock().unwrap();
        st.group(&id).map_err(internal)?.ok_or_else(|| not_found(&id))?;
    }
    if ng != "0001" {
        return Err(err(404, "NodeGroupNotFoundFault", format!("NodeGroup {} not found.", ng)));
    }
    let (mut g, members) = claim(app, &id)?;
    if !g.automatic_failover || members.len() < 2 {
        app.end(&busy_key(&id));
        return Err(err(
            400,
            "InvalidReplicationGroupState",
            format!("Replication group {} must have automatic failover enabled to test failover.", id),
        ));
    }
    if let Err(e) = set_status(app, &mut g, "modifying") {
        app.end(&busy_key(&id));
        return Err(e);
    }
    let out = group_xml(app, &id)?;
    app.spawn_op(move |a| failover::op_switch(a, &id, None, true));
    Ok(out)
}
