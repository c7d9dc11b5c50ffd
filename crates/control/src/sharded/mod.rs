//! Cluster-mode replication groups (ElastiCache's "cluster mode enabled"): shards of a primary
//! and its replicas, all nodes running `cluster-enabled yes` and joined into one Redis Cluster
//! by the control plane (CLUSTER MEET / ADDSLOTSRANGE / REPLICATE), slots moved online with
//! SETSLOT + MIGRATE, failures left to the nodes' own cluster failover and watched.
//!
//! - `api`: the Query actions' cluster-mode side (create, describe, shard configuration,
//!   replica counts, test failover).
//! - `ops`: bringing the nodes into the cluster as the definition says (create, replace,
//!   resume after a control-plane restart), removing nodes, deleting.
//! - `reshard`: ModifyReplicationGroupShardConfiguration's online slot migration.
//! - `health`: the per-tick watch (failovers the nodes did, dead nodes to replace, the
//!   configuration endpoint's targets).
//! - `topology`: CLUSTER NODES parsing and the slot arithmetic; `resp`: the RESP client.

pub mod api;
pub mod health;
pub mod ops;
pub mod reshard;
pub mod resp;
pub mod topology;

use crate::failover::Member;
use crate::state::ReplicationGroup;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// `cluster-node-timeout` of the nodes: how long a node may be unreachable before the cluster
/// fails it over (ElastiCache's parameter groups default to 15 s; a shorter one fails over
/// faster on one machine, where a slow node is not a slow network).
pub const NODE_TIMEOUT_MS: u64 = 3000;

/// The definition of a cluster-mode group, stored with the group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Layout {
    pub shards: Vec<Shard>,
    /// A ModifyReplicationGroupShardConfiguration in flight (resumed after a restart).
    pub resharding: Option<Resharding>,
}

/// One node group (shard).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Shard {
    /// `0001`, `0002`, ... (or the id given in NodeGroupConfiguration).
    pub id: String,
    /// Member cache clusters (`<group>-<shard>-NNN`, one node each), the primary among them.
    pub members: Vec<String>,
    /// The member that is the primary, as last seen (the nodes fail over by themselves).
    pub primary: String,
    /// The slots it holds, as recorded after creation and after each resharding.
    pub slots: String,
    /// The next member number of this shard.
    pub next_member: i64,
}

/// Where a resharding is going.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Resharding {
    /// The shards that hold the slots at the end, evenly (the first take the remainder).
    pub targets: Vec<String>,
    /// Shards removed once their slots are gone (scale-in).
    pub removing: Vec<String>,
}

impl Layout {
    pub fn shard_of(&self, member: &str) -> Option<&Shard> {
        self.shards.iter().find(|s| s.members.iter().any(|m| m == member))
    }
    pub fn shard_mut(&mut self, id: &str) -> Option<&mut Shard> {
        self.shards.iter_mut().find(|s| s.id == id)
    }
}

/// Run-time state of the cluster-mode groups.
#[derive(Default)]
pub struct Runtime {
    /// Resharding progress per group, percent.
    pub progress: Mutex<HashMap<String, f64>>,
    /// Consecutive failed health checks per member.
    pub fails: Mutex<HashMap<String, u32>>,
    /// When a shard primary was first seen failed (its replicas get the cluster's own failover
    /// some time to happen before the control plane forces one).
    pub down_since: Mutex<HashMap<String, Instant>>,
    /// When each group's stalled resharding was last retried.
    pub retried: Mutex<HashMap<String, Instant>>,
}

impl Runtime {
    /// Drop what is kept about a deleted group.
    pub fn forget_group(&self, id: &str, members: &[Member]) {
        self.progress.lock().unwrap().remove(id);
        self.retried.lock().unwrap().remove(id);
        for m in members {
            self.fails.lock().unwrap().remove(&m.0.id);
            self.down_since.lock().unwrap().remove(&m.0.id);
        }
    }
}

/// The layout of a cluster-mode group (None for the others).
pub fn layout(g: &ReplicationGroup) -> Option<&Layout> {
    g.layout.as_ref()
}

/// The members of one shard, in layout order.
pub fn shard_members<'a>(shard: &Shard, members: &'a [Member]) -> Vec<&'a Member> {
    shard.members.iter().filter_map(|id| members.iter().find(|m| &m.0.id == id)).collect()
}

/// The busy key of a cluster-mode group is the same as of any replication group.
pub use crate::failover::busy_key;

/// The address a group's nodes and configuration endpoint are reached at.
pub fn address(app: &crate::App, group: &str) -> String {
    app.provider.address(&crate::provider::NodeSpec {
        cluster_id: group.to_string(),
        node_id: String::new(),
        engine: "redis".into(),
        port: 0,
        mc_port: 0,
        cluster_mode: true,
    })
}

/// The configuration endpoint's key among [`crate::mc_config::ConfigEndpoints`] (memcached
/// cluster ids cannot contain ':').
pub fn endpoint_key(id: &str) -> String {
    format!("rg:{}", id)
}
