//! Replica migration (Redis's clusterHandleSlaveMigration): a replica of the master with the
//! most working replicas moves to an orphaned master (one with slots, no working replica, and
//! the MIGRATE_TO mark: it had replicas, or took over from a master that had them), when its
//! own master keeps more than `cluster-migration-barrier` working replicas.

use super::state::{ClusterState, FAIL, HANDSHAKE, MASTER, MIGRATE_TO, MYSELF, NOADDR, PFAIL, SLAVE};
use crate::persistence::log_line;
use crate::Node;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// CLUSTER_SLAVE_MIGRATION_DELAY: how long a master stays orphaned before a replica moves.
const MIGRATION_DELAY_MS: u64 = 5000;

#[derive(Default)]
pub struct Tracker {
    /// Masters that had slots at the last cron (a master's first slot marks it MIGRATE_TO).
    with_slots: HashSet<String>,
    /// When each orphaned master became orphaned.
    orphaned_since: HashMap<String, u64>,
}

/// clusterNodeAddSlave / clusterNodeRemoveSlave / clusterSetNodeAsMaster: `node`'s master went
/// from `old` to `new` (already recorded in the state).
pub fn master_changed(st: &mut ClusterState, node: &str, old: Option<&str>, new: Option<&str>) {
    if old == new {
        return;
    }
    if let Some(o) = old {
        let left = st.nodes.values().any(|n| n.master.as_deref() == Some(o));
        if let Some(m) = st.nodes.get_mut(o).filter(|_| !left) {
            m.flags &= !MIGRATE_TO;
        }
    }
    if let Some(m) = new.and_then(|n| st.nodes.get_mut(n)) {
        m.flags |= MIGRATE_TO;
    }
    let me = st.myself.clone();
    if let Some(n) = st.nodes.get_mut(node) {
        if new.is_some() {
            n.flags &= !MIGRATE_TO;
        } else if old.is_some() && node != me {
            n.flags |= MIGRATE_TO;
        }
    }
}

/// Replicas of `id` that are not FAIL (clusterCountNonFailingSlaves).
fn ok_replicas(st: &ClusterState, id: &str, count_pfail: bool) -> usize {
    st.nodes
        .values()
        .filter(|n| n.master.as_deref() == Some(id) && n.flags & SLAVE != 0 && n.flags & FAIL == 0)
        .filter(|n| count_pfail || n.flags & PFAIL == 0)
        .count()
}

/// From the cluster cron.
pub fn cron(srv: &Arc<Node>, now: u64) {
    first_slot_marks(srv);
    let target = {
        let st = srv.cluster.state.read();
        let mut tr = srv.cluster.migration.lock();
        pick_target(srv, &st, &mut tr, now)
    };
    if let Some(t) = target {
        log_line('#', &format!("Migrating to orphaned master {}", t));
        if let Err(e) = super::failover::replicate(srv, t.as_bytes()) {
            log_line('#', &format!("Replica migration to {} failed: {}", t, e));
        }
    }
}

/// clusterNodeSetSlotBit: a master that gets its first slot while other masters have
/// replicas is a valid migration target.
fn first_slot_marks(srv: &Node) {
    let (gained, with): (Vec<String>, HashSet<String>) = {
        let st = srv.cluster.state.read();
        // The distinct owners (a handful), each copied once, not once per slot.
        let with: HashSet<String> = st.slots.owners().into_iter().map(str::to_string).collect();
        let tr = srv.cluster.migration.lock();
        (with.difference(&tr.with_slots).cloned().collect(), with)
    };
    if !gained.is_empty() {
        let mut st = srv.cluster.state.write();
        let masters_have_replicas = st.nodes.values().any(|n| n.flags & SLAVE != 0 && n.master.is_some());
        if masters_have_replicas {
            for g in &gained {
                if let Some(n) = st.nodes.get_mut(g).filter(|n| n.flags & MASTER != 0) {
                    n.flags |= MIGRATE_TO;
                }
            }
        }
    }
    srv.cluster.migration.lock().with_slots = with;
}

/// clusterCron's orphaned-master count and clusterHandleSlaveMigration: the master to migrate
/// to, when this replica is the one to go now.
fn pick_target(srv: &Node, st: &ClusterState, tr: &mut Tracker, now: u64) -> Option<String> {
    let me = st.me();
    let mymaster = me.master.clone().filter(|_| me.flags & SLAVE != 0)?;
    if !srv.config.get_bool("cluster-allow-replica-migration") {
        return None;
    }
    let (mut orphaned, mut max_replicas, mut mine) = (0, 0, 0);
    for n in st.nodes.values() {
        if n.flags & (MYSELF | NOADDR | HANDSHAKE) != 0 || n.flags & MASTER == 0 || n.flags & FAIL != 0 {
            continue;
        }
        let ok = ok_replicas(st, &n.id, true);
        if ok == 0 && n.flags & MIGRATE_TO != 0 && st.num_slots(&n.id) > 0 {
            orphaned += 1;
        }
        max_replicas = max_replicas.max(ok);
        if n.id == mymaster {
            mine = ok;
        }
    }
    if orphaned == 0 || max_replicas < 2 || mine != max_replicas {
        return None;
    }
    let full = srv.config.hot.cluster_full_coverage.load(std::sync::atomic::Ordering::Relaxed);
    if !st.state_ok(full) {
        return None;
    }
    // My master keeps more than the barrier's working replicas after I leave.
    let barrier = srv.config.get_i64("cluster-migration-barrier").max(0) as usize;
    if ok_replicas(st, &mymaster, false) <= barrier {
        return None;
    }
    let mut candidate = st.myself.as_str();
    let mut target = None;
    for n in st.nodes.values() {
        let ok = if n.flags & MASTER != 0 { ok_replicas(st, &n.id, true) } else { 0 };
        let is_orphaned = n.flags & MASTER != 0 && n.flags & FAIL == 0 && n.flags & MIGRATE_TO != 0 && ok == 0;
        if is_orphaned {
            if target.is_none() && st.num_slots(&n.id) > 0 {
                target = Some(n.id.clone());
            }
            tr.orphaned_since.entry(n.id.clone()).or_insert(now);
        } else {
            tr.orphaned_since.remove(&n.id);
        }
        if ok == max_replicas {
            for r in st.nodes.values().filter(|r| r.master.as_deref() == Some(n.id.as_str())) {
                if r.id.as_str() < candidate {
                    candidate = r.id.as_str();
                }
            }
        }
    }
    let target = target?;
    let since = tr.orphaned_since.get(&target).copied().unwrap_or(now);
    (candidate == st.myself && now.saturating_sub(since) > MIGRATION_DELAY_MS).then_some(target)
}
