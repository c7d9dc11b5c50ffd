//! The health check of a cluster-mode group, run every tick by the health loop
//! (crate::failover::health): each node is asked CLUSTER NODES; the configuration endpoint goes
//! to the nodes that answer; a failover the nodes made is recorded; a node that failed
//! [`FAILS`] checks in a row is dealt with:
//! - a replica (or a former primary already replaced by its replica): replaced by a fresh node
//!   that joins as a replica;
//! - a primary with live replicas: the nodes' own failover gets `NODE_TIMEOUT_MS` + 3 s; when
//!   it has not happened (e.g. too few primaries left to vote), the best replica takes over
//!   (CLUSTER FAILOVER TAKEOVER);
//! - a primary without replicas: started again from its data dir.

use super::ops::{self, me};
use super::topology::ClusterNode;
use super::{busy_key, Layout, NODE_TIMEOUT_MS};
use crate::failover::{group_event, Member, FAILS};
use crate::state::ReplicationGroup;
use crate::{log, App};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const CHECK_TIMEOUT: Duration = Duration::from_millis(250);

/// What to do about a group after one check.
enum Action {
    Replace(String),
    Restart(String),
    TakeOver(String),
    Converge,
}

/// Check one group; called with the group's busy mark held, which it releases or hands to the
/// operation it starts.
pub fn check(app: &Arc<App>, mut g: ReplicationGroup, members: Vec<Member>) {
    let key = busy_key(&g.id);
    let Some(mut layout) = g.layout.clone() else {
        app.end(&key);
        return;
    };
    let mut views: HashMap<String, Vec<ClusterNode>> = HashMap::new();
    let mut dead = Vec::new();
    for m in &members {
        let v = ops::cluster_nodes(m.1.port, CHECK_TIMEOUT);
        let mut fails = app.sharded.fails.lock().unwrap();
        let count = fails.entry(m.0.id.clone()).or_insert(0);
        match v {
            Some(v) => {
                *count = 0;
                views.insert(m.0.id.clone(), v);
            }
            None => {
                *count += 1;
                if *count >= FAILS {
                    dead.push(m.0.id.clone());
                }
            }
        }
    }
    let live: Vec<u16> = members.iter().filter(|m| views.contains_key(&m.0.id)).map(|m| m.1.port).collect();
    ops::serve_endpoint(app, &g, &live);

    // Failovers the nodes made.
    let mut changed = false;
    for shard in layout.shards.iter_mut() {
        let holder = shard
            .members
            .iter()
            .find(|c| views.get(*c).and_then(|v| me(v)).is_some_and(|n| n.master && !n.slots.is_empty()));
        if let Some(new) = holder {
            if *new != shard.primary {
                group_event(
                    app,
                    &g.id,
                    &format!("Failover from master node {} to replica node {} completed", shard.primary, new),
                );
                group_event(app, &g.id, &format!("Failover to replica node {} completed", new));
                app.sharded.down_since.lock().unwrap().remove(&shard.primary);
                shard.primary = new.clone();
                changed = true;
            }
        }
    }
    if changed {
        g.layout = Some(layout.clone());
        ops::save_group(app, &g);
    }

    match decide(app, &layout, &views, &dead) {
        None => app.end(&key),
        Some(action) => {
            for m in &members {
                app.sharded.fails.lock().unwrap().remove(&m.0.id);
            }
            ops::set_status(app, &g.id, "modifying");
            let id = g.id.clone();
            app.spawn_op(move |a| match action {
                Action::Replace(m) => ops::op_replace(a, &id, &m),
                Action::Restart(m) => ops::op_restart(a, &id, &m),
                Action::TakeOver(shard) => ops::op_failover(a, &id, &shard, false),
                Action::Converge => ops::converge(a, &id, false, ops::REPAIR_SYNC_WAIT),
            });
        }
    }
}

fn decide(app: &App, layout: &Layout, views: &HashMap<String, Vec<ClusterNode>>, dead: &[String]) -> Option<Action> {
    for d in dead {
        let Some(shard) = layout.shard_of(d) else { continue };
        if shard.primary != *d {
            log(&format!("{} failed {} health checks; replacing it", d, FAILS));
            return Some(Action::Replace(d.clone()));
        }
        let replicas_alive = shard.members.iter().any(|c| c != d && views.contains_key(c));
        if !replicas_alive {
            log(&format!("{} (a primary without live replicas) failed {} health checks; restarting it", d, FAILS));
            return Some(Action::Restart(d.clone()));
        }
        let since = *app.sharded.down_since.lock().unwrap().entry(d.clone()).or_insert_with(Instant::now);
        if since.elapsed() > Duration::from_millis(NODE_TIMEOUT_MS + 3000) {
            app.sharded.down_since.lock().unwrap().remove(d);
            log(&format!("{}: the cluster did not fail primary {} over; taking over", shard.id, d));
            return Some(Action::TakeOver(shard.id.clone()));
        }
    }
    // Live members out of place: a replica not following its shard's primary, a node that
    // does not know the others.
    let ids: HashMap<&str, &str> = views.iter().filter_map(|(c, v)| Some((c.as_str(), me(v)?.id.as_str()))).collect();
    for shard in &layout.shards {
        let Some(pid) = ids.get(shard.primary.as_str()) else { continue };
        for c in shard.members.iter().filter(|c| **c != shard.primary) {
            let Some(mine) = views.get(c).and_then(|v| me(v)) else { continue };
            let follows = !mine.master && mine.master_id.as_deref() == Some(*pid);
            if !follows {
                log(&format!("{} does not replicate {}; repairing", c, shard.primary));
                return Some(Action::Converge);
            }
        }
    }
    None
}

/// Retry a resharding that stopped on an error (every 5 s), unless an operation holds the group.
pub fn resume_stalled(app: &Arc<App>, groups: &[ReplicationGroup]) {
    for g in groups.iter().filter(|g| g.status == "modifying") {
        if g.layout.as_ref().is_none_or(|l| l.resharding.is_none()) {
            continue;
        }
        let recent =
            app.sharded.retried.lock().unwrap().get(&g.id).is_none_or(|t| t.elapsed() < Duration::from_secs(5));
        if recent || !app.try_begin(&busy_key(&g.id)) {
            continue;
        }
        app.sharded.retried.lock().unwrap().remove(&g.id);
        let id = g.id.clone();
        app.spawn_op(move |a| super::reshard::op_reshard(a, &id));
    }
}
