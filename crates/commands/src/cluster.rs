//! Cluster-mode commands on a node without cluster support (`cluster-enabled no`, the only
//! mode so far): CLUSTER, READONLY, READWRITE and ASKING answer exactly as redis-server does
//! then. Redis Cluster sharding will give them their cluster-mode behaviour.

use crate::keys::help_only;
use crate::table::{flags::*, Command};
use crate::Ctx;
use ferrocache_protocol::resp::Args;

const G: &str = "cluster";
const NO_CLUSTER: &str = "ERR This instance has cluster support disabled";
const ADM: u64 = ADMIN | STALE;

pub static COMMANDS: &[Command] = &[
    Command::new("cluster", -2, 0, (0, 0, 0), help_only).group(G).subs(CLUSTER_SUBS),
    Command::new("readonly", 1, FAST | LOADING | STALE, (0, 0, 0), disabled).group(G),
    Command::new("readwrite", 1, FAST | LOADING | STALE, (0, 0, 0), disabled).group(G),
    Command::new("asking", 1, FAST, (0, 0, 0), disabled).group(G),
];

static CLUSTER_SUBS: &[Command] = &[
    Command::new("cluster|addslots", -3, ADM, (0, 0, 0), disabled).group(G),
    Command::new("cluster|addslotsrange", -4, ADM, (0, 0, 0), disabled).group(G),
    Command::new("cluster|bumpepoch", 2, ADM, (0, 0, 0), disabled).group(G),
    Command::new("cluster|count-failure-reports", 3, ADM, (0, 0, 0), disabled).group(G),
    Command::new("cluster|countkeysinslot", 3, STALE, (0, 0, 0), disabled).group(G),
    Command::new("cluster|delslots", -3, ADM, (0, 0, 0), disabled).group(G),
    Command::new("cluster|delslotsrange", -4, ADM, (0, 0, 0), disabled).group(G),
    Command::new("cluster|failover", -2, ADM, (0, 0, 0), disabled).group(G),
    Command::new("cluster|flushslots", 2, ADM, (0, 0, 0), disabled).group(G),
    Command::new("cluster|forget", 3, ADM, (0, 0, 0), disabled).group(G),
    Command::new("cluster|getkeysinslot", 4, STALE, (0, 0, 0), disabled).group(G),
    Command::new("cluster|help", 2, LOADING | STALE, (0, 0, 0), disabled).group(G),
    Command::new("cluster|info", 2, STALE, (0, 0, 0), disabled).group(G),
    Command::new("cluster|keyslot", 3, STALE, (0, 0, 0), disabled).group(G),
    Command::new("cluster|links", 2, STALE, (0, 0, 0), disabled).group(G),
    Command::new("cluster|meet", -4, ADM, (0, 0, 0), disabled).group(G),
    Command::new("cluster|myid", 2, STALE, (0, 0, 0), disabled).group(G),
    Command::new("cluster|nodes", 2, STALE, (0, 0, 0), disabled).group(G),
    Command::new("cluster|replicas", 3, ADM, (0, 0, 0), disabled).group(G),
    Command::new("cluster|replicate", 3, ADM, (0, 0, 0), disabled).group(G),
    Command::new("cluster|reset", -2, ADM | NOSCRIPT, (0, 0, 0), disabled).group(G),
    Command::new("cluster|saveconfig", 2, ADM, (0, 0, 0), disabled).group(G),
    Command::new("cluster|set-config-epoch", 3, ADM, (0, 0, 0), disabled).group(G),
    Command::new("cluster|setslot", -4, ADM, (0, 0, 0), disabled).group(G),
    Command::new("cluster|shards", 2, STALE, (0, 0, 0), disabled).group(G),
    Command::new("cluster|slaves", 3, ADM, (0, 0, 0), disabled).group(G),
    Command::new("cluster|slots", 2, STALE, (0, 0, 0), disabled).group(G),
];

/// clusterCommand / readonlyCommand / ... with `server.cluster_enabled == 0`.
fn disabled(ctx: &mut Ctx, _a: Args) {
    ctx.out.error(NO_CLUSTER);
}
