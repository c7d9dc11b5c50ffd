//! Bringing a cluster-mode group's nodes into line with its definition: starting them (fresh or
//! from their data dirs), joining them into one cluster, giving each shard's primary its slots
//! and each replica its primary; removing nodes (CLUSTER FORGET everywhere), replacing failed
//! ones, forcing a failover the nodes could not agree on, deleting the group.

use super::resp::{self, Conn};
use super::topology::{format_ranges, parse_nodes, parse_ranges, ClusterNode};
use super::{busy_key, endpoint_key, shard_members, Layout};
use crate::failover::{group_event, load, Member};
use crate::provider::NodeSpec;
use crate::state::ReplicationGroup;
use crate::{log, App};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// Timeout of one command in an operation.
const OP_TIMEOUT: Duration = Duration::from_secs(5);

pub fn spec(m: &Member) -> NodeSpec {
    App::spec(&m.0, &m.1)
}

/// CLUSTER NODES of the node on `port`.
pub fn cluster_nodes(port: u16, timeout: Duration) -> Option<Vec<ClusterNode>> {
    resp::command(port, &["CLUSTER", "NODES"], timeout).ok().map(|r| parse_nodes(&r.text()))
}

/// The node's own line.
pub fn me(view: &[ClusterNode]) -> Option<&ClusterNode> {
    view.iter().find(|n| n.myself)
}

pub fn save_group(app: &App, g: &ReplicationGroup) {
    if let Err(e) = app.store.lock().unwrap().update_group(g) {
        log(&e);
    }
}

pub fn set_status(app: &App, id: &str, status: &str) {
    let mut st = app.store.lock().unwrap();
    if let Ok(Some(mut g)) = st.group(id) {
        g.status = status.into();
        let _ = st.update_group(&g);
    }
}

/// Start a member's node: `fresh` from an empty data dir (a new node, or a failed one replaced),
/// else from its data dir (its nodes.conf keeps its cluster identity and slots).
pub fn start_member(app: &App, m: &mut Member, fresh: bool) -> Result<(), String> {
    let mut tries = 0;
    loop {
        match start_once(app, m, fresh) {
            // A new node has no clients yet: when its port or bus port was taken meanwhile (by
            // any process's outgoing connection), it moves to another port pair.
            Err(e) if m.1.status == "creating" && tries < 3 => {
                tries += 1;
                log(&format!("{}: {}; trying another port", m.0.id, e));
                m.1.port = app.provider.allocate_cluster_port()?;
                let _ = app.store.lock().unwrap().upsert_node(&m.1);
            }
            r => return r,
        }
    }
}

fn start_once(app: &App, m: &mut Member, fresh: bool) -> Result<(), String> {
    let s = spec(m);
    if fresh {
        // A hung node may hold its port: kill it, but only by a pid that is still this node's.
        let pid = if crate::provider::is_node_process(m.1.pid, m.1.port) { m.1.pid } else { 0 };
        if pid > 0 {
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
        app.provider.destroy(&s, pid);
    }
    let pid = app.provider.start(&s).map_err(|e| format!("{}: {}", m.0.id, e))?;
    m.1.pid = pid;
    let _ = app.store.lock().unwrap().upsert_node(&m.1);
    Ok(())
}

/// CLUSTER MYID of every member that answers, by member id.
pub fn node_ids(members: &[Member]) -> HashMap<String, String> {
    members
        .iter()
        .filter_map(|m| {
            let id = resp::command(m.1.port, &["CLUSTER", "MYID"], OP_TIMEOUT).ok()?.text();
            (!id.is_empty()).then(|| (m.0.id.clone(), id))
        })
        .collect()
}

/// Wait until every member knows every other one (bounded).
fn wait_known(members: &[Member], ids: &HashMap<String, String>, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let want: HashSet<&str> = ids.values().map(|s| s.as_str()).collect();
    loop {
        let all = members.iter().filter(|m| ids.contains_key(&m.0.id)).all(|m| {
            cluster_nodes(m.1.port, OP_TIMEOUT).is_some_and(|v| {
                let known: HashSet<&str> = v.iter().filter(|n| !n.joining).map(|n| n.id.as_str()).collect();
                want.is_subset(&known)
            })
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

/// Whether every member says `cluster_state:ok` with every slot assigned, and every replica's
/// link is up (bounded).
fn wait_healthy(members: &[Member], layout: &Layout, ids: &HashMap<String, String>, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    // The replicas every node should see as replicas (a replaced node is a master with no
    // slots in the others' views until gossip tells them otherwise).
    let replicas: HashSet<&str> = members
        .iter()
        .filter(|m| layout.shard_of(&m.0.id).is_some_and(|s| s.primary != m.0.id))
        .filter_map(|m| ids.get(&m.0.id).map(|s| s.as_str()))
        .collect();
    loop {
        let ok = members.iter().all(|m| {
            // Every node sees every slot served (with full coverage not required, cluster_state
            // is ok before gossip has told a node about the other shards' slots).
            let state = resp::command(m.1.port, &["CLUSTER", "INFO"], OP_TIMEOUT).is_ok_and(|r| {
                let t = r.text();
                t.lines().any(|l| l.trim() == "cluster_state:ok")
                    && t.lines().any(|l| l.trim() == "cluster_slots_assigned:16384")
            });
            let roles = cluster_nodes(m.1.port, OP_TIMEOUT)
                .is_some_and(|v| v.iter().filter(|n| replicas.contains(n.id.as_str())).all(|n| !n.master));
            let primary = layout.shard_of(&m.0.id).is_some_and(|s| s.primary == m.0.id);
            state
                && roles
                && (primary
                    || resp::command(m.1.port, &["INFO", "replication"], OP_TIMEOUT)
                        .is_ok_and(|r| r.text().lines().any(|l| l.trim() == "master_link_status:up")))
        });
        if ok {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Make the nodes match the group's layout: start the nodes that do not answer (new ones and
/// those marked for replacement fresh, the others from their data dirs), join them all, give
/// each shard's primary the recorded slots nobody holds, make every other member a replica of
/// its shard's primary. The layout's primaries follow what the nodes did (a failover).
pub fn bring_up(
    app: &App,
    g: &mut ReplicationGroup,
    members: &mut [Member],
    sync_wait: Duration,
) -> Result<(), String> {
    let mut layout = g.layout.clone().ok_or("not a cluster-mode group")?;
    for m in members.iter_mut() {
        if let Some(pid) = app.provider.probe(&spec(m)) {
            m.1.pid = pid;
            continue;
        }
        let fresh = m.1.status == "creating";
        start_member(app, m, fresh)?;
    }
    let ids = node_ids(members);
    // Everyone meets one node (the first shard's primary when it answers).
    let anchor = members
        .iter()
        .find(|m| layout.shards.first().is_some_and(|s| s.primary == m.0.id) && ids.contains_key(&m.0.id))
        .or_else(|| members.iter().find(|m| ids.contains_key(&m.0.id)))
        .ok_or("no node answers")?
        .clone();
    let known: HashSet<String> = cluster_nodes(anchor.1.port, OP_TIMEOUT)
        .unwrap_or_default()
        .into_iter()
        .filter(|n| !n.joining)
        .map(|n| n.id)
        .collect();
    let host = app.provider.address(&spec(&anchor));
    for m in members.iter().filter(|m| m.0.id != anchor.0.id) {
        if ids.get(&m.0.id).is_some_and(|id| !known.contains(id)) {
            resp::command(m.1.port, &["CLUSTER", "MEET", &host, &anchor.1.port.to_string()], OP_TIMEOUT)
                .map_err(|e| format!("{}: CLUSTER MEET: {}", m.0.id, e))?;
        }
    }
    if !wait_known(members, &ids, Duration::from_secs(20)) {
        return Err("the nodes did not all meet within 20 s".into());
    }
    // Slots recorded for a shard that no node holds (a new group) go to its primary.
    let view = cluster_nodes(anchor.1.port, OP_TIMEOUT).ok_or("the anchor node stopped answering")?;
    let assigned: HashSet<u16> = view.iter().flat_map(|n| n.slots.iter().copied()).collect();
    for shard in &layout.shards {
        if shard.slots.is_empty() {
            continue;
        }
        let want = parse_ranges(&shard.slots)?;
        let missing: Vec<u16> = want.into_iter().filter(|s| !assigned.contains(s)).collect();
        if missing.is_empty() {
            continue;
        }
        let Some(p) = members.iter().find(|m| m.0.id == shard.primary) else { continue };
        let mut args = vec!["CLUSTER".to_string(), "ADDSLOTSRANGE".to_string()];
        for r in format_ranges(&missing).split(',') {
            let (a, b) = r.split_once('-').unwrap_or((r, r));
            args.push(a.to_string());
            args.push(b.to_string());
        }
        let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        resp::command(p.1.port, &args, OP_TIMEOUT).map_err(|e| format!("{}: ADDSLOTSRANGE: {}", p.0.id, e))?;
    }
    // The primaries are whoever holds the shard's slots as a master.
    for shard in layout.shards.iter_mut() {
        for m in shard_members(shard, members) {
            let holds = cluster_nodes(m.1.port, OP_TIMEOUT)
                .and_then(|v| me(&v).map(|n| n.master && !n.slots.is_empty()))
                .unwrap_or(false);
            if holds && shard.primary != m.0.id {
                log(&format!("{}: shard {} primary is {} (was {})", g.id, shard.id, m.0.id, shard.primary));
                shard.primary = m.0.id.clone();
            }
        }
    }
    // Every other member replicates its shard's primary (not in a shard being emptied: its
    // primary may already have become a replica of where its last slot went).
    let removing: Vec<String> = layout.resharding.as_ref().map(|r| r.removing.clone()).unwrap_or_default();
    for shard in layout.shards.iter().filter(|s| !removing.contains(&s.id)) {
        let Some(pid) = ids.get(&shard.primary) else { continue };
        for m in shard_members(shard, members).into_iter().filter(|m| m.0.id != shard.primary) {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let mine = cluster_nodes(m.1.port, OP_TIMEOUT).and_then(|v| me(&v).cloned());
                if mine.as_ref().is_some_and(|n| !n.master && n.master_id.as_deref() == Some(pid)) {
                    break;
                }
                match resp::command(m.1.port, &["CLUSTER", "REPLICATE", pid], OP_TIMEOUT) {
                    Ok(_) => break,
                    // It may not have heard of the primary yet.
                    Err(e) if Instant::now() > deadline => return Err(format!("{}: CLUSTER REPLICATE: {}", m.0.id, e)),
                    Err(_) => std::thread::sleep(Duration::from_millis(100)),
                }
            }
        }
    }
    if !wait_healthy(members, &layout, &ids, sync_wait) {
        log(&format!("{}: not every node reports cluster_state:ok with its replica links up yet", g.id));
    }
    g.layout = Some(layout);
    save_group(app, g);
    Ok(())
}

/// Point the configuration endpoint at the members that answer.
pub fn serve_endpoint(app: &App, g: &ReplicationGroup, ports: &[u16]) {
    let addr = super::address(app, &g.id);
    let targets = ports.iter().filter_map(|p| format!("{}:{}", addr, p).parse().ok()).collect();
    app.config_endpoints.serve(&endpoint_key(&g.id), g.primary_port, targets);
}

/// The cluster node id of the node on `port` as the other members know it.
fn id_by_port(members: &[Member], port: u16) -> Option<String> {
    members.iter().filter(|m| m.1.port != port).find_map(|m| {
        cluster_nodes(m.1.port, Duration::from_millis(500))?
            .into_iter()
            .find(|n| n.port == port && !n.myself)
            .map(|n| n.id)
    })
}

/// CLUSTER FORGET `node` on every member that answers (within the 60 s blacklist, so gossip
/// does not bring it back).
fn forget_everywhere(members: &[Member], node: &str) {
    for m in members {
        let _ = resp::command(m.1.port, &["CLUSTER", "FORGET", node], OP_TIMEOUT);
    }
}

/// Stop and remove a member: its node, its data, its cluster identity on the other nodes, its
/// record. `others` are the members that stay.
pub fn remove_member(app: &App, g: &mut ReplicationGroup, victim: &Member, others: &[Member]) {
    let node = resp::command(victim.1.port, &["CLUSTER", "MYID"], Duration::from_secs(1))
        .ok()
        .map(|r| r.text())
        .or_else(|| id_by_port(others, victim.1.port));
    let pid = app.provider.probe(&spec(victim)).unwrap_or(0);
    app.provider.destroy(&spec(victim), pid);
    if let Some(node) = node {
        forget_everywhere(others, &node);
    }
    let _ = app.store.lock().unwrap().delete_cluster(&victim.0.id);
    app.end(&victim.0.id);
    g.members.retain(|(c, _)| *c != victim.0.id);
    if let Some(l) = g.layout.as_mut() {
        for s in l.shards.iter_mut() {
            s.members.retain(|c| *c != victim.0.id);
        }
    }
    save_group(app, g);
    app.event(&victim.0.id, "Cache cluster deleted");
}

/// How long a repair waits for the replicas' links before the group is available again.
pub const REPAIR_SYNC_WAIT: Duration = Duration::from_secs(5);

/// Converge a cluster-mode group on its definition (after create, replica count changes, a
/// repair, a control-plane restart), then mark it and its members available.
pub fn converge(app: &App, id: &str, created: bool, sync_wait: Duration) {
    let key = busy_key(id);
    let Some((mut g, mut members)) = load(app, id) else {
        app.end(&key);
        return;
    };
    // Members being removed (DecreaseReplicaCount): replicas go before anything else.
    let (gone, kept): (Vec<Member>, Vec<Member>) = members.into_iter().partition(|m| m.0.status == "deleting");
    members = kept;
    for v in &gone {
        remove_member(app, &mut g, v, &members);
        group_event(app, id, &format!("Removed replica cluster {} from replication group {}", v.0.id, id));
    }
    let new: Vec<String> = members.iter().filter(|m| m.0.status == "creating").map(|m| m.0.id.clone()).collect();
    if let Err(e) = bring_up(app, &mut g, &mut members, sync_wait) {
        log(&format!("{}: {}", id, e));
        app.end(&key);
        set_status(app, id, if created { "incompatible-parameters" } else { "available" });
        return;
    }
    finish(app, &g, &mut members);
    app.end(&key);
    set_status(app, id, "available");
    if created {
        for m in &members {
            app.event(&m.0.id, "Cache cluster created");
        }
        group_event(app, id, &format!("Replication group {} created", id));
    } else {
        for c in &new {
            app.event(c, "Cache cluster created");
            group_event(app, id, &format!("Added replica cluster {} to replication group {}", c, id));
        }
    }
}

/// Mark every member available and point the configuration endpoint at them.
pub fn finish(app: &App, g: &ReplicationGroup, members: &mut [Member]) {
    let mut st = app.store.lock().unwrap();
    for m in members.iter_mut() {
        m.0.status = "available".into();
        m.1.status = "available".into();
        let _ = st.update_cluster(&m.0);
        let _ = st.upsert_node(&m.1);
    }
    drop(st);
    let ports: Vec<u16> = members.iter().map(|m| m.1.port).collect();
    serve_endpoint(app, g, &ports);
}

/// Delete a cluster-mode group: every node, the configuration endpoint, the definition.
pub fn op_delete(app: &App, id: &str) {
    let key = busy_key(id);
    let Some((g, members)) = load(app, id) else {
        app.end(&key);
        return;
    };
    app.config_endpoints.stop(&endpoint_key(id));
    for m in &members {
        let pid = app.provider.probe(&spec(m)).unwrap_or(0);
        app.provider.destroy(&spec(m), pid);
        let _ = app.store.lock().unwrap().delete_cluster(&m.0.id);
        app.end(&m.0.id);
        app.event(&m.0.id, "Cache cluster deleted");
    }
    app.sharded.forget_group(&g.id, &members);
    app.end(&key);
    let _ = app.store.lock().unwrap().delete_group(id);
    group_event(app, id, &format!("Replication group {} deleted", id));
}

/// A failed member is replaced by a fresh node that joins as a replica of its shard's primary
/// (the failed node's cluster identity is forgotten everywhere).
pub fn op_replace(app: &App, id: &str, member: &str) {
    let key = busy_key(id);
    let Some((mut g, mut members)) = load(app, id) else {
        app.end(&key);
        return;
    };
    let Some(i) = members.iter().position(|m| m.0.id == member) else {
        app.end(&key);
        set_status(app, id, "available");
        return;
    };
    let node = members[i].1.node_id.clone();
    app.event(member, &format!("Recovering cache nodes {}", node));
    let others: Vec<Member> = members.iter().filter(|m| m.0.id != member).cloned().collect();
    if let Some(old) = id_by_port(&others, members[i].1.port) {
        forget_everywhere(&others, &old);
    }
    members[i].1.status = "creating".into();
    match bring_up(app, &mut g, &mut members, REPAIR_SYNC_WAIT) {
        Ok(()) => {
            finish(app, &g, &mut members);
            app.event(member, &format!("Finished recovery for cache nodes {}", node));
        }
        Err(e) => log(&format!("{}: replacing {}: {}", id, member, e)),
    }
    app.end(&key);
    set_status(app, id, "available");
}

/// A shard primary without replicas stopped answering: start it again from its data dir (it
/// keeps its cluster identity and slots).
pub fn op_restart(app: &App, id: &str, member: &str) {
    if let Some((g, mut members)) = load(app, id) {
        if let Some(m) = members.iter_mut().find(|m| m.0.id == member) {
            app.event(member, &format!("Recovering cache nodes {}", m.1.node_id));
            match start_member(app, m, false) {
                Ok(()) => app.event(member, &format!("Finished recovery for cache nodes {}", m.1.node_id)),
                Err(e) => log(&format!("{}: {}", g.id, e)),
            }
        }
    }
    converge(app, id, false, REPAIR_SYNC_WAIT);
}

/// The live replica of a shard with the highest replication offset.
pub fn best_replica<'a>(shard: &super::Shard, members: &'a [Member]) -> Option<&'a Member> {
    shard_members(shard, members)
        .into_iter()
        .filter(|m| m.0.id != shard.primary)
        .filter_map(|m| {
            let info = resp::command(m.1.port, &["INFO", "replication"], Duration::from_millis(500)).ok()?.text();
            Some((m, crate::failover::parse_info(&info).offset))
        })
        .max_by_key(|(_, o)| *o)
        .map(|(m, _)| m)
}

/// Make `to` its shard's primary: `CLUSTER FAILOVER` (`force` adds TAKEOVER, for when the old
/// primary is gone and the other primaries cannot vote), falling back to TAKEOVER when the
/// coordinated one does not finish. True when `to` is a master.
pub fn promote(to: &Member, force: bool) -> bool {
    let is_master = || {
        cluster_nodes(to.1.port, OP_TIMEOUT)
            .and_then(|v| me(&v).map(|n| n.master && !n.slots.is_empty()))
            .unwrap_or(false)
    };
    let modes: &[Option<&str>] = if force { &[Some("TAKEOVER")] } else { &[None, Some("TAKEOVER")] };
    for mode in modes {
        let mut args = vec!["CLUSTER", "FAILOVER"];
        args.extend(*mode);
        if let Err(e) = resp::command(to.1.port, &args, OP_TIMEOUT) {
            log(&format!("{}: CLUSTER FAILOVER {}: {}", to.0.id, mode.unwrap_or(""), e));
            continue;
        }
        let deadline = Instant::now() + Duration::from_secs(if mode.is_none() { 8 } else { 5 });
        while Instant::now() < deadline {
            if is_master() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    false
}

/// Fail a shard over to its best replica (TestFailover, or a primary that failed without the
/// cluster electing a replica), then converge.
pub fn op_failover(app: &App, id: &str, shard_id: &str, test: bool) {
    let key = busy_key(id);
    let Some((mut g, members)) = load(app, id) else {
        app.end(&key);
        return;
    };
    if test {
        group_event(app, id, &format!("Test Failover API called for node group {}", shard_id));
    }
    let shard = g.layout.as_ref().and_then(|l| l.shards.iter().find(|s| s.id == shard_id)).cloned();
    if let Some(shard) = shard {
        match best_replica(&shard, &members) {
            Some(to) if promote(to, !test) => {
                if let Some(s) = g.layout.as_mut().and_then(|l| l.shard_mut(shard_id)) {
                    s.primary = to.0.id.clone();
                }
                save_group(app, &g);
                group_event(
                    app,
                    id,
                    &format!("Failover from master node {} to replica node {} completed", shard.primary, to.0.id),
                );
                group_event(app, id, &format!("Failover to replica node {} completed", to.0.id));
            }
            Some(to) => log(&format!("{}: {} could not be promoted", id, to.0.id)),
            None => log(&format!("{}: shard {} has no replica to fail over to", id, shard_id)),
        }
    }
    converge(app, id, false, REPAIR_SYNC_WAIT);
}

/// One connection per node for a run of commands, reconnecting once on a broken connection.
pub struct Conns(HashMap<u16, Conn>);

impl Conns {
    pub fn new() -> Conns {
        Conns(HashMap::new())
    }

    /// Run `f` on the connection to `port`, reconnecting once on a broken connection (the
    /// commands sent here are safe to send again).
    fn with<T>(&mut self, port: u16, f: impl Fn(&mut Conn) -> Result<T, String>) -> Result<T, String> {
        for attempt in 0..2 {
            let conn = match self.0.entry(port) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => e.insert(Conn::connect(port, Duration::from_secs(10))?),
            };
            match f(conn) {
                Ok(r) => return Ok(r),
                Err(e) => {
                    self.0.remove(&port);
                    if attempt == 1 {
                        return Err(e);
                    }
                }
            }
        }
        unreachable!()
    }

    pub fn call_raw(&mut self, port: u16, args: &[&[u8]]) -> Result<resp::Reply, String> {
        self.with(port, |c| c.call_raw(args))
    }

    /// Send `cmds` in one write and read their replies (error replies included).
    pub fn pipeline(&mut self, port: u16, cmds: &[Vec<String>]) -> Result<Vec<resp::Reply>, String> {
        self.with(port, |c| c.pipeline(cmds))
    }

    pub fn call(&mut self, port: u16, args: &[&str]) -> Result<resp::Reply, String> {
        let raw: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        match self.call_raw(port, &raw)? {
            resp::Reply::Error(e) => Err(e),
            r => Ok(r),
        }
    }
}

impl Default for Conns {
    fn default() -> Self {
        Self::new()
    }
}

/// On control-plane start (the group's busy mark held): serve the configuration endpoint,
/// finish deleting, resume a resharding, or converge.
pub fn start(app: &std::sync::Arc<App>, g: &ReplicationGroup) {
    if g.status == "deleting" {
        log(&format!("{}: finishing deletion", g.id));
        op_delete(app, &g.id);
        return;
    }
    let ports: Vec<u16> = load(app, &g.id).map(|(_, m)| m.iter().map(|m| m.1.port).collect()).unwrap_or_default();
    serve_endpoint(app, g, &ports);
    if g.layout.as_ref().is_some_and(|l| l.resharding.is_some()) {
        log(&format!("{}: resuming the resharding", g.id));
        let id = g.id.clone();
        app.spawn_op(move |a| super::reshard::op_reshard(a, &id));
        return;
    }
    converge(app, &g.id, g.status == "creating", Duration::from_secs(10));
    log(&format!("{}: re-adopted", g.id));
}
