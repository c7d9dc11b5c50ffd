//! Replication groups at run time: bringing member nodes up as a primary and its replicas
//! (`REPLICAOF` through each node's public commands), deleting them, switching the primary
//! (planned: ModifyReplicationGroup PrimaryClusterId, TestFailover; unplanned: the primary
//! stopped answering), self-healing of failed nodes, and the health loop driving it all.
//!
//! Member clusters of a group are held "busy" in [`App`] for as long as they belong to it, so
//! the cache-cluster operations and the cache-cluster health loop leave them alone.

use crate::endpoints::{Endpoints, Targets};
use crate::provider::resp_command;
use crate::state::{Cluster, Event, Node, ReplicationGroup};
use crate::{log, now_ms, App};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Health-check period.
pub const TICK: Duration = Duration::from_millis(300);
/// Consecutive failed checks before a node counts as failed.
pub const FAILS: u32 = 3;
/// Timeout of one health check.
const CHECK_TIMEOUT: Duration = Duration::from_millis(250);
/// Minimum time between two automatic failovers of one group (flapping protection).
pub const FAILOVER_COOLDOWN: Duration = Duration::from_secs(5);

/// Run-time state of the replication groups: endpoints and health-check counters.
pub struct Groups {
    pub endpoints: Endpoints,
    fails: Mutex<HashMap<String, u32>>,
    last_failover: Mutex<HashMap<String, Instant>>,
    /// The Sentinel endpoint's view (crate::sentinel_link).
    pub sentinel: crate::sentinel_link::SentinelLink,
}

impl Groups {
    pub fn new(bind: &str) -> Groups {
        Groups {
            endpoints: Endpoints::new(bind),
            fails: Mutex::new(HashMap::new()),
            last_failover: Mutex::new(HashMap::new()),
            sentinel: Default::default(),
        }
    }
}

/// Record a completed switch of the primary (the Sentinel endpoint announces `+switch-master`).
fn switched(app: &App, id: &str, old: &Member, new: &Member) {
    app.groups.sentinel.switched(app, id, old, new);
    group_event(app, id, &format!("Failover from master node {} to replica node {} completed", old.0.id, new.0.id));
    group_event(app, id, &format!("Failover to replica node {} completed", new.0.id));
}

/// The busy mark of a group (cluster ids cannot contain ':').
pub fn busy_key(id: &str) -> String {
    format!("rg:{}", id)
}

/// A member: its cluster and its (single) node.
pub type Member = (Cluster, Node);

/// What `INFO replication` says about a node.
#[derive(Debug, Default, Clone)]
pub struct ReplInfo {
    pub master: bool,
    pub master_port: Option<u16>,
    pub link_up: bool,
    pub offset: i64,
}

pub fn parse_info(info: &str) -> ReplInfo {
    let mut r = ReplInfo::default();
    let mut master_offset = 0;
    let mut slave_offset = None;
    for l in info.lines() {
        let Some((k, v)) = l.trim().split_once(':') else { continue };
        match k {
            "role" => r.master = v == "master",
            "master_port" => r.master_port = v.parse().ok(),
            "master_link_status" => r.link_up = v == "up",
            "master_repl_offset" => master_offset = v.parse().unwrap_or(0),
            "slave_repl_offset" => slave_offset = v.parse().ok(),
            _ => {}
        }
    }
    r.offset = slave_offset.unwrap_or(master_offset);
    r
}

fn info(n: &Node, timeout: Duration) -> Option<ReplInfo> {
    resp_command(n.port, &["INFO", "replication"], timeout).ok().map(|s| parse_info(&s))
}

pub fn group_event(app: &App, id: &str, message: &str) {
    log(&format!("{}: {}", id, message));
    let ev = Event {
        source_id: id.into(),
        source_type: "replication-group".into(),
        message: message.into(),
        date_ms: now_ms(),
    };
    if let Err(e) = app.store.lock().unwrap().add_event(&ev) {
        log(&e);
    }
}

/// The group a cache cluster belongs to.
pub fn group_of(app: &App, cluster_id: &str) -> Option<String> {
    let groups = app.store.lock().unwrap().groups().ok()?;
    groups.into_iter().find(|g| g.members.iter().any(|(c, _)| c == cluster_id)).map(|g| g.id)
}

pub fn load(app: &App, id: &str) -> Option<(ReplicationGroup, Vec<Member>)> {
    let st = app.store.lock().unwrap();
    let g = st.group(id).ok()??;
    let mut members = Vec::new();
    for (cid, _) in &g.members {
        if let (Ok(Some(c)), Ok(nodes)) = (st.cluster(cid), st.nodes(cid)) {
            if let Some(n) = nodes.into_iter().next() {
                members.push((c, n));
            }
        }
    }
    Some((g, members))
}

fn save_group(app: &App, g: &ReplicationGroup) {
    if let Err(e) = app.store.lock().unwrap().update_group(g) {
        log(&e);
    }
}

fn set_group_status(app: &App, id: &str, status: &str) {
    let mut st = app.store.lock().unwrap();
    if let Ok(Some(mut g)) = st.group(id) {
        g.status = status.into();
        let _ = st.update_group(&g);
    }
}

fn set_member_status(app: &App, m: &mut Member, status: &str) {
    m.0.status = status.into();
    m.1.status = status.into();
    let mut st = app.store.lock().unwrap();
    let _ = st.update_cluster(&m.0);
    let _ = st.upsert_node(&m.1);
}

fn replicaof(app: &App, m: &Member, primary: &Member) -> Result<String, String> {
    let spec = App::spec(&m.0, &m.1);
    let host = app.provider.address(&App::spec(&primary.0, &primary.1));
    app.provider.command(&spec, &["REPLICAOF", &host, &primary.1.port.to_string()])
}

fn promote(app: &App, m: &Member) -> Result<String, String> {
    app.provider.command(&App::spec(&m.0, &m.1), &["REPLICAOF", "NO", "ONE"])
}

/// Start a member's node from an empty data dir; as a replica of `primary` when given.
fn start_fresh(app: &App, m: &mut Member, primary: Option<&Member>) -> bool {
    let spec = App::spec(&m.0, &m.1);
    // A hung node (it may still hold its port) is killed by its recorded pid, but only when that
    // pid is still this node's process (a recorded pid may belong to another process by now).
    let pid = if crate::provider::is_node_process(m.1.pid, m.1.port) { m.1.pid } else { 0 };
    if pid > 0 {
        // It failed (or is new): no graceful shutdown to wait for.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
    app.provider.destroy(&spec, pid);
    match app.provider.start(&spec) {
        Ok(pid) => {
            m.1.pid = pid;
            let _ = app.store.lock().unwrap().upsert_node(&m.1);
            if let Some(p) = primary {
                if let Err(e) = replicaof(app, m, p) {
                    log(&format!("{}: REPLICAOF failed: {}", m.0.id, e));
                    return false;
                }
            }
            true
        }
        Err(e) => {
            log(&format!("{}: {}", m.0.id, e));
            false
        }
    }
}

/// The live replica with the highest replication offset (ties: the first member).
fn best_replica(members: &[Member], primary: &str, only: Option<&str>) -> Option<(usize, i64)> {
    let mut best: Option<(usize, i64)> = None;
    for (i, m) in members.iter().enumerate() {
        if m.0.id == primary || only.is_some_and(|o| o != m.0.id) {
            continue;
        }
        if let Some(r) = info(&m.1, Duration::from_millis(500)) {
            if best.is_none_or(|(_, o)| r.offset > o) {
                best = Some((i, r.offset));
            }
        }
    }
    best
}

/// Recompute the endpoints' targets from the nodes' replication state.
pub fn refresh_targets(app: &App, g: &ReplicationGroup, members: &[Member]) {
    let Some(p) = members.iter().find(|m| m.0.id == g.primary) else { return };
    let mut replicas = Vec::new();
    for m in members.iter().filter(|m| m.0.id != g.primary && m.0.status != "deleting") {
        if let Some(r) = info(&m.1, CHECK_TIMEOUT) {
            if !r.master && r.link_up && r.master_port == Some(p.1.port) {
                replicas.push(m.1.port);
            }
            app.groups.sentinel.checked(app, &g.id, m, &r);
        }
    }
    let members = members.iter().filter(|m| m.0.status != "deleting").map(|m| m.1.port).collect();
    app.groups.endpoints.set_targets(&g.id, Targets { primary: Some(p.1.port), replicas, members });
}

/// Wait until every replica's link to the primary is up (bounded).
fn wait_links(g: &ReplicationGroup, members: &[Member], limit: Duration) -> bool {
    let Some(p) = members.iter().find(|m| m.0.id == g.primary) else { return false };
    let deadline = Instant::now() + limit;
    loop {
        let all = members.iter().filter(|m| m.0.id != g.primary).all(|m| {
            info(&m.1, Duration::from_millis(500))
                .is_some_and(|r| !r.master && r.link_up && r.master_port == Some(p.1.port))
        });
        if all {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Make the nodes match the definition: remove members marked deleting, start missing nodes,
/// make the primary a primary and every other member its replica, then mark all available.
/// Used after create / increase / decrease, and on control-plane start (re-adoption).
pub fn op_converge(app: &App, id: &str, created: bool) {
    converge(app, id, created, Duration::from_secs(30))
}

/// How long a repair (after a failover, a replaced node, a restart) waits for replicas to be in
/// sync before the group is `available` again and checked by the health loop once more.
const REPAIR_SYNC_WAIT: Duration = Duration::from_secs(3);

/// [`op_converge`] waiting at most `sync_wait` for the replicas' links.
pub fn converge(app: &App, id: &str, created: bool, sync_wait: Duration) {
    let key = busy_key(id);
    let Some((mut g, mut members)) = load(app, id) else {
        app.end(&key);
        return;
    };
    // Members being removed.
    let mut removed = Vec::new();
    for m in members.iter().filter(|m| m.0.status == "deleting") {
        let pid = app.provider.probe(&App::spec(&m.0, &m.1)).unwrap_or(0);
        app.provider.destroy(&App::spec(&m.0, &m.1), pid);
        let _ = app.store.lock().unwrap().delete_cluster(&m.0.id);
        app.end(&m.0.id);
        removed.push(m.0.id.clone());
    }
    members.retain(|m| !removed.contains(&m.0.id));
    g.members.retain(|(c, _)| !removed.contains(c));
    save_group(app, &g);
    for r in &removed {
        app.event(r, "Cache cluster deleted");
    }

    let new_members: Vec<String> =
        members.iter().filter(|m| m.0.status == "creating" && m.0.id != g.primary).map(|m| m.0.id.clone()).collect();

    // The primary.
    let Some(pi) = members.iter().position(|m| m.0.id == g.primary) else {
        log(&format!("{}: primary {} is missing", id, g.primary));
        app.end(&key);
        set_group_status(app, id, "incompatible-parameters");
        return;
    };
    let mut replaced_old_primary = None;
    let pspec = App::spec(&members[pi].0, &members[pi].1);
    match app.provider.probe(&pspec) {
        Some(pid) => members[pi].1.pid = pid,
        None => {
            let new = if members[pi].1.status != "creating" && g.automatic_failover {
                best_replica(&members, &g.primary, None)
            } else {
                None
            };
            match new {
                Some((ni, _)) => {
                    // The primary is gone and a replica is there: fail over to it.
                    let old = g.primary.clone();
                    if let Err(e) = promote(app, &members[ni]) {
                        log(&format!("{}: promoting {} failed: {}", id, members[ni].0.id, e));
                    }
                    g.primary = members[ni].0.id.clone();
                    save_group(app, &g);
                    switched(app, id, &members[pi], &members[ni]);
                    replaced_old_primary = Some(old);
                }
                None => {
                    if !start_fresh_or_restart(app, &mut members[pi]) {
                        app.end(&key);
                        set_group_status(app, id, "incompatible-parameters");
                        return;
                    }
                }
            }
        }
    }
    let pi = members.iter().position(|m| m.0.id == g.primary).unwrap();
    if info(&members[pi].1, Duration::from_secs(2)).is_some_and(|r| !r.master) {
        let _ = promote(app, &members[pi]);
    }
    let primary = members[pi].clone();
    app.groups.endpoints.switch_primary(&g.id, Some(primary.1.port));

    // The replicas.
    // A replica that cannot be started or repointed now is retried by the health loop (the
    // group stays available with fewer replicas in its reader endpoint).
    for m in members.iter_mut().filter(|m| m.0.id != g.primary) {
        let spec = App::spec(&m.0, &m.1);
        match app.provider.probe(&spec) {
            Some(pid) if replaced_old_primary.as_deref() != Some(m.0.id.as_str()) => {
                m.1.pid = pid;
                let r = info(&m.1, Duration::from_secs(2)).unwrap_or_default();
                if r.master || r.master_port != Some(primary.1.port) {
                    if let Err(e) = replicaof(app, m, &primary) {
                        log(&format!("{}: REPLICAOF failed: {}", m.0.id, e));
                    }
                }
            }
            _ => {
                let recovering = m.1.status != "creating";
                if recovering {
                    app.event(&m.0.id, &format!("Recovering cache nodes {}", m.1.node_id));
                }
                if start_fresh(app, m, Some(&primary)) && recovering {
                    app.event(&m.0.id, &format!("Finished recovery for cache nodes {}", m.1.node_id));
                }
            }
        }
    }
    if !wait_links(&g, &members, sync_wait) {
        log(&format!("{}: not every replica is in sync yet", id));
    }
    for m in members.iter_mut() {
        if m.0.status != "available" || m.1.status != "available" {
            set_member_status(app, m, "available");
        } else {
            let _ = app.store.lock().unwrap().upsert_node(&m.1);
        }
    }
    refresh_targets(app, &g, &members);
    app.end(&key);
    set_group_status(app, id, "available");
    if created {
        for m in &members {
            app.event(&m.0.id, "Cache cluster created");
        }
        group_event(app, id, &format!("Replication group {} created", id));
    } else {
        // Replicas added by IncreaseReplicaCount.
        for c in &new_members {
            app.event(c, "Cache cluster created");
            group_event(app, id, &format!("Added replica cluster {} to replication group {}", c, id));
        }
    }
    for r in &removed {
        group_event(app, id, &format!("Removed replica cluster {} from replication group {}", r, id));
    }
}

/// A primary that cannot be replaced by a replica: restart it from its data dir.
fn start_fresh_or_restart(app: &App, m: &mut Member) -> bool {
    match app.provider.start(&App::spec(&m.0, &m.1)) {
        Ok(pid) => {
            m.1.pid = pid;
            let _ = app.store.lock().unwrap().upsert_node(&m.1);
            true
        }
        Err(e) => {
            log(&format!("{}: {}", m.0.id, e));
            false
        }
    }
}

/// Delete a group: every member node (but the primary when `retain_primary`, which stays as a
/// standalone cache cluster), the endpoints and the definition.
pub fn op_delete(app: &App, id: &str, retain_primary: bool) {
    let key = busy_key(id);
    let Some((g, members)) = load(app, id) else {
        app.end(&key);
        return;
    };
    app.groups.endpoints.remove(id);
    for m in &members {
        if retain_primary && m.0.id == g.primary {
            continue;
        }
        let spec = App::spec(&m.0, &m.1);
        let pid = app.provider.probe(&spec).unwrap_or(0);
        app.provider.destroy(&spec, pid);
        let _ = app.store.lock().unwrap().delete_cluster(&m.0.id);
        app.end(&m.0.id);
        app.event(&m.0.id, "Cache cluster deleted");
    }
    if retain_primary {
        if let Some(p) = members.iter().find(|m| m.0.id == g.primary) {
            let mut p = p.clone();
            set_member_status(app, &mut p, "available");
            app.end(&p.0.id);
        }
    }
    app.end(&key);
    app.groups.sentinel.forget(id, &members);
    let _ = app.store.lock().unwrap().delete_group(id);
    group_event(app, id, &format!("Replication group {} deleted", id));
}

/// A planned switch of the primary (ModifyReplicationGroup PrimaryClusterId, TestFailover):
/// new connections to the primary endpoint wait, writes on the old primary are paused until the
/// new primary has caught up with it, the new primary is promoted, the endpoint switched, and
/// the old primary and the other replicas replicate from the new one.
pub fn op_switch(app: &App, id: &str, target: Option<String>, test: bool) {
    let key = busy_key(id);
    let Some((mut g, members)) = load(app, id) else {
        app.groups.sentinel.abort_failover(id);
        app.end(&key);
        return;
    };
    if test {
        group_event(app, id, "Test Failover API called for node group 0001");
    }
    app.groups.sentinel.begin_failover(app, id);
    let old = g.primary.clone();
    let Some(oi) = members.iter().position(|m| m.0.id == old) else {
        app.groups.sentinel.abort_failover(id);
        app.end(&key);
        set_group_status(app, id, "available");
        return;
    };
    app.groups.endpoints.switch_primary(id, None);
    let old_alive = app.provider.probe(&App::spec(&members[oi].0, &members[oi].1)).is_some();
    let mut goal = None;
    if old_alive {
        let _ =
            app.provider.command(&App::spec(&members[oi].0, &members[oi].1), &["CLIENT", "PAUSE", "10000", "WRITE"]);
        goal = info(&members[oi].1, Duration::from_secs(1)).map(|r| r.offset);
    }
    let Some((ni, _)) = best_replica(&members, &old, target.as_deref()) else {
        log(&format!("{}: no replica to fail over to", id));
        app.groups.sentinel.abort_failover(id);
        if old_alive {
            let _ = app.provider.command(&App::spec(&members[oi].0, &members[oi].1), &["CLIENT", "UNPAUSE"]);
        }
        refresh_targets(app, &g, &members);
        app.end(&key);
        set_group_status(app, id, "available");
        return;
    };
    if let Some(goal) = goal {
        let deadline = Instant::now() + Duration::from_secs(5);
        while info(&members[ni].1, Duration::from_millis(500)).is_none_or(|r| r.offset < goal)
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    if let Err(e) = promote(app, &members[ni]) {
        log(&format!("{}: promoting {} failed: {}", id, members[ni].0.id, e));
    }
    g.primary = members[ni].0.id.clone();
    save_group(app, &g);
    app.groups.endpoints.switch_primary(id, Some(members[ni].1.port));
    for m in members.iter().filter(|m| m.0.id != g.primary) {
        if let Err(e) = replicaof(app, m, &members[ni]) {
            log(&format!("{}: REPLICAOF failed: {}", m.0.id, e));
        }
    }
    if old_alive {
        let _ = app.provider.command(&App::spec(&members[oi].0, &members[oi].1), &["CLIENT", "UNPAUSE"]);
    }
    switched(app, id, &members[oi], &members[ni]);
    // Whatever did not come back (e.g. the old primary was already dead) is healed by converge.
    converge(app, id, false, REPAIR_SYNC_WAIT);
}

/// The primary stopped answering: promote the replica with the highest replication offset,
/// repoint the others, switch the endpoints, then replace the failed node with a fresh replica.
fn op_failover(app: &App, id: &str) {
    let key = busy_key(id);
    let Some((mut g, mut members)) = load(app, id) else {
        app.end(&key);
        return;
    };
    let started = Instant::now();
    let old = g.primary.clone();
    app.groups.endpoints.switch_primary(id, None);
    app.groups.sentinel.begin_failover(app, id);
    let Some((ni, offset)) = best_replica(&members, &old, None) else {
        // Nothing to promote: restart the primary where it was (converge does it).
        app.groups.sentinel.abort_failover(id);
        converge(app, id, false, REPAIR_SYNC_WAIT);
        return;
    };
    if let Err(e) = promote(app, &members[ni]) {
        log(&format!("{}: promoting {} failed: {}", id, members[ni].0.id, e));
    }
    g.primary = members[ni].0.id.clone();
    save_group(app, &g);
    app.groups.endpoints.switch_primary(id, Some(members[ni].1.port));
    log(&format!(
        "{}: {} promoted (replication offset {}) {} ms after the failure was declared",
        id,
        g.primary,
        offset,
        started.elapsed().as_millis()
    ));
    let primary = members[ni].clone();
    for m in members.iter().filter(|m| m.0.id != g.primary && m.0.id != old) {
        if let Err(e) = replicaof(app, m, &primary) {
            log(&format!("{}: REPLICAOF failed: {}", m.0.id, e));
        }
    }
    if let Some(o) = members.iter().find(|m| m.0.id == old) {
        switched(app, id, o, &primary);
    }
    // Self-healing: the failed node comes back as a fresh replica of the new primary.
    if let Some(m) = members.iter_mut().find(|m| m.0.id == old) {
        app.event(&m.0.id, &format!("Recovering cache nodes {}", m.1.node_id));
        if start_fresh(app, m, Some(&primary)) {
            app.event(&m.0.id, &format!("Finished recovery for cache nodes {}", m.1.node_id));
        }
    }
    converge(app, id, false, REPAIR_SYNC_WAIT);
}

/// One health check of every idle group: failed primaries are failed over (or restarted),
/// failed replicas replaced, misconfigured replicas repointed, endpoints kept current.
pub fn health(app: &Arc<App>) {
    let groups = app.store.lock().unwrap().groups().unwrap_or_default();
    crate::sharded::health::resume_stalled(app, &groups);
    for g in groups.into_iter().filter(|g| g.status == "available") {
        let key = busy_key(&g.id);
        if !app.try_begin(&key) {
            continue;
        }
        let Some((g, members)) = load(app, &g.id) else {
            app.end(&key);
            continue;
        };
        if g.layout.is_some() {
            crate::sharded::health::check(app, g, members);
            continue;
        }
        let mut primary_failed = false;
        let mut replica_trouble = false;
        let pport = members.iter().find(|m| m.0.id == g.primary).map(|m| m.1.port);
        for m in &members {
            let r = info(&m.1, CHECK_TIMEOUT);
            match &r {
                Some(r) => app.groups.sentinel.checked(app, &g.id, m, r),
                None if app.groups.fails.lock().unwrap().get(&m.0.id).map_or(0, |c| *c) + 1 >= FAILS => {
                    app.groups.sentinel.failed(app, &g.id, m)
                }
                None => {}
            }
            let mut fails = app.groups.fails.lock().unwrap();
            let count = fails.entry(m.0.id.clone()).or_insert(0);
            match r {
                Some(r) => {
                    *count = 0;
                    if m.0.id == g.primary {
                        if !r.master {
                            replica_trouble = true;
                        }
                    } else if r.master || r.master_port != pport {
                        replica_trouble = true;
                    }
                }
                None => {
                    *count += 1;
                    if *count >= FAILS {
                        if m.0.id == g.primary {
                            primary_failed = true;
                        } else {
                            replica_trouble = true;
                        }
                    }
                }
            }
        }
        if primary_failed {
            let cooling =
                app.groups.last_failover.lock().unwrap().get(&g.id).is_some_and(|t| t.elapsed() < FAILOVER_COOLDOWN);
            if cooling {
                app.end(&key);
                continue;
            }
            app.groups.last_failover.lock().unwrap().insert(g.id.clone(), Instant::now());
            for m in &members {
                app.groups.fails.lock().unwrap().remove(&m.0.id);
            }
            log(&format!("{}: primary {} failed {} health checks", g.id, g.primary, FAILS));
            let id = g.id.clone();
            set_group_status(app, &id, "modifying");
            if g.automatic_failover {
                app.spawn_op(move |a| op_failover(a, &id));
            } else {
                app.spawn_op(move |a| converge(a, &id, false, REPAIR_SYNC_WAIT));
            }
            continue;
        }
        if replica_trouble {
            for m in &members {
                app.groups.fails.lock().unwrap().remove(&m.0.id);
            }
            let id = g.id.clone();
            app.spawn_op(move |a| converge(a, &id, false, REPAIR_SYNC_WAIT));
            continue;
        }
        refresh_targets(app, &g, &members);
        app.end(&key);
    }
}

/// On control-plane start: claim the member clusters (before the cache-cluster reconciliation
/// would touch them).
pub fn claim_members(app: &App) {
    let groups = app.store.lock().unwrap().groups().unwrap_or_default();
    for g in &groups {
        for (c, _) in &g.members {
            app.try_begin(c);
        }
    }
}

/// On control-plane start (after `claim_members` and the cache-cluster reconciliation): open the
/// endpoints, re-adopt or heal every group, finish what was in flight, start the health loop.
pub fn start(app: &Arc<App>) {
    let probe = crate::provider::NodeSpec {
        cluster_id: String::new(),
        node_id: String::new(),
        engine: "redis".into(),
        port: 0,
        mc_port: 0,
        cluster_mode: false,
    };
    app.groups.endpoints.set_node_addr(&app.provider.address(&probe));
    let groups = app.store.lock().unwrap().groups().unwrap_or_default();
    for g in groups {
        app.try_begin(&busy_key(&g.id));
        if g.status == "deleting" {
            log(&format!("{}: finishing deletion", g.id));
            op_delete(app, &g.id, false);
            continue;
        }
        if g.layout.is_some() {
            crate::sharded::ops::start(app, &g);
            continue;
        }
        if let Err(e) = app.groups.endpoints.ensure(&g.id, g.primary_port, g.reader_port) {
            log(&format!("{}: endpoints: {}", g.id, e));
        }
        converge(app, &g.id, g.status == "creating", Duration::from_secs(10));
        log(&format!("{}: re-adopted", g.id));
    }
    let a = app.clone();
    std::thread::spawn(move || loop {
        // A fixed rate: checks that time out do not stretch the period.
        let t0 = Instant::now();
        health(&a);
        std::thread::sleep(TICK.saturating_sub(t0.elapsed()));
    });
}
