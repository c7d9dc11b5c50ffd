//! Redis Cluster on the node: the CLUSTER command family, READONLY/READWRITE/ASKING, and the
//! request routing the executor runs before a keyed command (`route`, Redis's getNodeByQuery).
//! Without `cluster-enabled yes` they answer exactly as a non-cluster redis-server does.
//!
//! state.rs holds the slot table and nodes.conf; the engine's slot.rs the key → slot hash;
//! bus.rs the clusterMsg codec, link.rs the bus links (MEET/PING/PONG, gossip, failure
//! detection, UPDATE), failover.rs replicas and failover (REPLICATE, elections, votes, CLUSTER
//! FAILOVER).

pub mod bus;
pub mod failover;
pub mod link;
pub mod links;
pub mod migration;
pub mod owners;
pub mod pubsub;
pub mod slot_keys;
/// Key → slot lives in the engine (the keyspace shards by slot in cluster mode).
pub use ferrocache_engine::slot;
pub mod state;

use crate::subcommand_required;
use crate::table::{flags::*, Command};
use crate::util::int_arg;
use crate::{Ctx, Node};
use ferrocache_protocol::resp::Args;
use slot::{key_slot, SLOTS};
use slot_keys::{count_in_slot, key_exists, keys_in_slot};
use state::{ClusterNode, ClusterState, MASTER, MYSELF, SLAVE};
use std::sync::atomic::Ordering::Relaxed;

const G: &str = "cluster";
const NO_CLUSTER: &str = "ERR This instance has cluster support disabled";
const ADM: u64 = ADMIN | STALE;

pub static COMMANDS: &[Command] = &[
    Command::new("cluster", -2, 0, (0, 0, 0), subcommand_required).group(G).subs(CLUSTER_SUBS),
    Command::new("readonly", 1, FAST | LOADING | STALE, (0, 0, 0), readonly).group(G),
    Command::new("readwrite", 1, FAST | LOADING | STALE, (0, 0, 0), readwrite).group(G),
    Command::new("asking", 1, FAST, (0, 0, 0), asking).group(G),
];

static CLUSTER_SUBS: &[Command] = &[
    Command::new("cluster|addslots", -3, ADM, (0, 0, 0), addslots).group(G),
    Command::new("cluster|addslotsrange", -4, ADM, (0, 0, 0), addslotsrange).group(G),
    Command::new("cluster|bumpepoch", 2, ADM, (0, 0, 0), bumpepoch).group(G),
    Command::new("cluster|count-failure-reports", 3, ADM, (0, 0, 0), count_failure_reports).group(G),
    Command::new("cluster|countkeysinslot", 3, STALE, (0, 0, 0), countkeysinslot).group(G),
    Command::new("cluster|delslots", -3, ADM, (0, 0, 0), addslots).group(G),
    Command::new("cluster|delslotsrange", -4, ADM, (0, 0, 0), addslotsrange).group(G),
    Command::new("cluster|failover", -2, ADM, (0, 0, 0), cluster_failover).group(G),
    Command::new("cluster|flushslots", 2, ADM, (0, 0, 0), flushslots).group(G),
    Command::new("cluster|forget", 3, ADM, (0, 0, 0), forget).group(G),
    Command::new("cluster|getkeysinslot", 4, STALE, (0, 0, 0), getkeysinslot).group(G),
    Command::new("cluster|help", 2, LOADING | STALE, (0, 0, 0), help).group(G),
    Command::new("cluster|info", 2, STALE, (0, 0, 0), info).group(G),
    Command::new("cluster|keyslot", 3, STALE, (0, 0, 0), keyslot).group(G),
    Command::new("cluster|links", 2, STALE, (0, 0, 0), links).group(G),
    Command::new("cluster|meet", -4, ADM, (0, 0, 0), meet).group(G),
    Command::new("cluster|myid", 2, STALE, (0, 0, 0), myid).group(G),
    Command::new("cluster|nodes", 2, STALE, (0, 0, 0), nodes).group(G),
    Command::new("cluster|replicas", 3, ADM, (0, 0, 0), replicas).group(G),
    Command::new("cluster|replicate", 3, ADM, (0, 0, 0), replicate).group(G),
    Command::new("cluster|reset", -2, ADM | NOSCRIPT, (0, 0, 0), reset).group(G),
    Command::new("cluster|saveconfig", 2, ADM, (0, 0, 0), saveconfig).group(G),
    Command::new("cluster|set-config-epoch", 3, ADM, (0, 0, 0), set_config_epoch).group(G),
    Command::new("cluster|setslot", -4, ADM, (0, 0, 0), setslot).group(G),
    Command::new("cluster|shards", 2, STALE, (0, 0, 0), shards).group(G),
    Command::new("cluster|slaves", 3, ADM, (0, 0, 0), replicas).group(G),
    Command::new("cluster|slots", 2, STALE, (0, 0, 0), slots).group(G),
];

/// clusterCommand with `server.cluster_enabled == 0` answers this to everything.
fn enabled(ctx: &mut Ctx) -> bool {
    if !ctx.srv.cluster.enabled {
        ctx.out.error(NO_CLUSTER);
        return false;
    }
    true
}

fn readonly(ctx: &mut Ctx, _a: Args) {
    if enabled(ctx) {
        ctx.client.readonly = true;
        ctx.out.ok();
    }
}

fn readwrite(ctx: &mut Ctx, _a: Args) {
    if enabled(ctx) {
        ctx.client.readonly = false;
        ctx.out.ok();
    }
}

fn asking(ctx: &mut Ctx, _a: Args) {
    if enabled(ctx) {
        ctx.client.asking = true;
        ctx.out.ok();
    }
}

/// CLUSTER MEET ip port [cport]: start a handshake; the bus (link.rs) does the rest.
fn meet(ctx: &mut Ctx, a: Args) {
    if !enabled(ctx) {
        return;
    }
    if a.len() > 5 {
        return ctx.out.error("ERR Unknown subcommand or wrong number of arguments for 'meet'. Try CLUSTER HELP.");
    }
    let ip = String::from_utf8_lossy(&a[2]).into_owned();
    let ps = String::from_utf8_lossy(&a[3]).into_owned();
    let port = match crate::util::parse_i64(&a[3]) {
        Some(p) if (0..=65535).contains(&p) => p as u16,
        _ => return ctx.out.error(&format!("ERR Invalid TCP base port specified: {}", ps)),
    };
    let cport = match a.get(4) {
        None => port.wrapping_add(10000),
        Some(c) => match crate::util::parse_i64(c) {
            Some(p) if (0..=65535).contains(&p) => p as u16,
            _ => return ctx.out.error(&format!("ERR Invalid TCP bus port specified: {}", String::from_utf8_lossy(c))),
        },
    };
    let Ok(addr) = ip.parse::<std::net::IpAddr>() else {
        return ctx.out.error(&format!("ERR Invalid node address specified: {}:{}", ip, ps));
    };
    if port == 0 || cport == 0 {
        return ctx.out.error(&format!("ERR Invalid node address specified: {}:{}", ip, ps));
    }
    ctx.srv.cluster.update(|st| link::start_handshake(st, &addr.to_string(), port, cport));
    ctx.out.ok();
}

/// CLUSTER REPLICATE <node-id>: become a replica of that master (failover.rs).
fn replicate(ctx: &mut Ctx, a: Args) {
    if !enabled(ctx) {
        return;
    }
    match failover::replicate(ctx.srv, &a[2]) {
        Ok(()) => ctx.out.ok(),
        Err(e) => ctx.out.error(&e),
    }
}

/// CLUSTER FAILOVER [FORCE|TAKEOVER], sent to a replica (failover.rs).
fn cluster_failover(ctx: &mut Ctx, a: Args) {
    if !enabled(ctx) {
        return;
    }
    let (mut force, mut takeover) = (false, false);
    match a.len() {
        2 => {}
        3 if a[2].eq_ignore_ascii_case(b"force") => force = true,
        3 if a[2].eq_ignore_ascii_case(b"takeover") => takeover = true,
        3 => return ctx.out.error(crate::util::ERR_SYNTAX),
        _ => {
            return ctx
                .out
                .error("ERR Unknown subcommand or wrong number of arguments for 'failover'. Try CLUSTER HELP.")
        }
    }
    match failover::manual_failover(ctx.srv, force, takeover) {
        Ok(()) => ctx.out.ok(),
        Err(e) => ctx.out.error(&e),
    }
}

fn help(ctx: &mut Ctx, _a: Args) {
    if !enabled(ctx) {
        return;
    }
    const LINES: &[&str] = &[
        "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "ADDSLOTS <slot> [<slot> ...]",
        "    Assign slots to current node.",
        "ADDSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
        "    Assign slots which are between <start-slot> and <end-slot> to current node.",
        "BUMPEPOCH",
        "    Advance the cluster config epoch.",
        "COUNT-FAILURE-REPORTS <node-id>",
        "    Return number of failure reports for <node-id>.",
        "COUNTKEYSINSLOT <slot>",
        "    Return the number of keys in <slot>.",
        "DELSLOTS <slot> [<slot> ...]",
        "    Delete slots information from current node.",
        "DELSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
        "    Delete slots information which are between <start-slot> and <end-slot> from current node.",
        "FAILOVER [FORCE|TAKEOVER]",
        "    Promote current replica node to being a master.",
        "FORGET <node-id>",
        "    Remove a node from the cluster.",
        "GETKEYSINSLOT <slot> <count>",
        "    Return key names stored by current node in a slot.",
        "FLUSHSLOTS",
        "    Delete current node own slots information.",
        "INFO",
        "    Return information about the cluster.",
        "KEYSLOT <key>",
        "    Return the hash slot for <key>.",
        "MEET <ip> <port> [<bus-port>]",
        "    Connect nodes into a working cluster.",
        "MYID",
        "    Return the node id.",
        "NODES",
        "    Return cluster configuration seen by node. Output format:",
        "    <id> <ip:port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
        "REPLICATE <node-id>",
        "    Configure current node as replica to <node-id>.",
        "RESET [HARD|SOFT]",
        "    Reset current node (default: soft).",
        "SET-CONFIG-EPOCH <epoch>",
        "    Set config epoch of current node.",
        "SETSLOT <slot> (IMPORTING <node-id>|MIGRATING <node-id>|STABLE|NODE <node-id>)",
        "    Set slot state.",
        "REPLICAS <node-id>",
        "    Return <node-id> replicas.",
        "SAVECONFIG",
        "    Force saving cluster configuration on disk.",
        "SLOTS",
        "    Return information about slots range mappings. Each range is made of:",
        "    start, end, master and replicas IP addresses, ports and ids",
        "SHARDS",
        "    Return information about slot range mappings and the nodes associated with them.",
        "LINKS",
        "    Return information about all network links between this node and its peers.",
        "    Output format is an array where each array element is a map containing attributes of a link",
        "HELP",
        "    Prints this help.",
    ];
    ctx.out.array(LINES.len());
    for l in LINES {
        ctx.out.simple(l);
    }
}

fn myid(ctx: &mut Ctx, _a: Args) {
    if enabled(ctx) {
        let id = ctx.srv.cluster.state.read().myself.clone();
        ctx.out.bulk_str(&id);
    }
}

fn keyslot(ctx: &mut Ctx, a: Args) {
    if enabled(ctx) {
        ctx.out.int(key_slot(&a[2]) as i64);
    }
}

fn nodes(ctx: &mut Ctx, _a: Args) {
    if enabled(ctx) {
        let text = ctx.srv.cluster.state.read().nodes_text();
        ctx.out.verbatim(text.as_bytes());
    }
}

/// CLUSTER INFO: Redis 7.0's fields in its order.
fn info(ctx: &mut Ctx, _a: Args) {
    if !enabled(ctx) {
        return;
    }
    let full = ctx.srv.config.hot.cluster_full_coverage.load(Relaxed);
    let st = ctx.srv.cluster.state.read();
    let (mut assigned, mut ok, mut pfail, mut fail) = (0, 0, 0, 0);
    for (a, b, owner) in st.slots.runs() {
        let n = b - a + 1;
        assigned += n;
        match st.nodes.get(owner).map(|n| n.flags).unwrap_or(0) {
            f if f & state::FAIL != 0 => fail += n,
            f if f & state::PFAIL != 0 => pfail += n,
            _ => ok += n,
        }
    }
    let mut text = format!(
        "cluster_state:{}\r\ncluster_slots_assigned:{}\r\ncluster_slots_ok:{}\r\ncluster_slots_pfail:{}\r\n\
cluster_slots_fail:{}\r\ncluster_known_nodes:{}\r\ncluster_size:{}\r\ncluster_current_epoch:{}\r\n\
cluster_my_epoch:{}\r\n",
        if st.state_ok(full) { "ok" } else { "fail" },
        assigned,
        ok,
        pfail,
        fail,
        st.nodes.len(),
        st.size(),
        st.current_epoch,
        st.node_epoch(st.me()),
    );
    // Messages by type, then the totals (only types with a count, as Redis).
    let lt = &ctx.srv.cluster.link_table;
    for (dir, counts) in [("sent", &lt.sent), ("received", &lt.received)] {
        let mut total = 0;
        for (t, c) in counts.iter().enumerate() {
            let c = c.load(Relaxed);
            if c > 0 {
                total += c;
                text.push_str(&format!("cluster_stats_messages_{}_{}:{}\r\n", links::type_name(t), dir, c));
            }
        }
        text.push_str(&format!("cluster_stats_messages_{}:{}\r\n", dir, total));
    }
    text.push_str(&format!("total_cluster_links_buffer_limit_exceeded:{}\r\n", lt.limit_exceeded.load(Relaxed)));
    drop(st);
    ctx.out.verbatim(text.as_bytes());
}

/// CONFIG SET of cluster-announce-hostname / -ip / -port / -bus-port (Redis's apply functions):
/// myself changes at once, nodes.conf is saved and the next PING carries it. Also from the cron.
pub fn refresh_announced(srv: &Node) {
    if !srv.cluster.enabled {
        return;
    }
    let want = {
        let st = srv.cluster.state.read();
        let mut probe = st.me().clone();
        state::Cluster::announce_node(&srv.config, &mut probe);
        let me = st.me();
        (probe.hostname != me.hostname || probe.ip != me.ip || probe.port != me.port || probe.cport != me.cport)
            .then_some(probe)
    };
    if let Some(p) = want {
        srv.cluster.update(|st| {
            let m = st.me_mut();
            (m.hostname, m.ip, m.port, m.cport) = (p.hostname, p.ip, p.port, p.cport);
        });
    }
}

/// getSlotOrReply.
fn slot_arg(ctx: &mut Ctx, a: &[u8]) -> Option<usize> {
    match crate::util::parse_i64(a) {
        Some(s) if (0..SLOTS as i64).contains(&s) => Some(s as usize),
        _ => {
            ctx.out.error("ERR Invalid or out of range slot");
            None
        }
    }
}

/// Redis's checkSlotAssignmentsOrReply over `slots` (one count per slot in `seen`).
#[allow(clippy::needless_range_loop)]
fn check_assign(ctx: &mut Ctx, st: &ClusterState, seen: &mut [u8], start: usize, end: usize, del: bool) -> bool {
    for s in start..=end {
        if del && st.slots.is_none(s) {
            ctx.out.error(&format!("ERR Slot {} is already unassigned", s));
            return false;
        } else if !del && !st.slots.is_none(s) {
            ctx.out.error(&format!("ERR Slot {} is already busy", s));
            return false;
        }
        seen[s] += 1;
        if seen[s] == 2 {
            ctx.out.error(&format!("ERR Slot {} specified multiple times", s));
            return false;
        }
    }
    true
}

/// clusterUpdateSlots: importing state cleared, then the slot added to myself or deleted.
fn apply_slots(st: &mut ClusterState, seen: &[u8], del: bool) {
    let me = st.myself.clone();
    for (s, &n) in seen.iter().enumerate() {
        if n != 0 {
            st.importing.remove(&(s as u16));
            st.slots.set(s, if del { None } else { Some(&me) });
        }
    }
}

/// ADDSLOTS / DELSLOTS.
fn addslots(ctx: &mut Ctx, a: Args) {
    if !enabled(ctx) {
        return;
    }
    let del = a[1].eq_ignore_ascii_case(b"delslots");
    let mut list = Vec::new();
    for arg in a.iter().skip(2) {
        let Some(s) = slot_arg(ctx, arg) else { return };
        list.push(s);
    }
    let st = ctx.srv.cluster.state.read().clone();
    let mut seen = vec![0u8; SLOTS];
    for s in list {
        if !check_assign(ctx, &st, &mut seen, s, s, del) {
            return;
        }
    }
    ctx.srv.cluster.update(|st| apply_slots(st, &seen, del));
    ctx.out.ok();
}

/// ADDSLOTSRANGE / DELSLOTSRANGE.
fn addslotsrange(ctx: &mut Ctx, a: Args) {
    if !enabled(ctx) {
        return;
    }
    if a.len() % 2 == 1 {
        return ctx.wrong_arity();
    }
    let del = a[1].eq_ignore_ascii_case(b"delslotsrange");
    let mut ranges = Vec::new();
    let mut j = 2;
    while j < a.len() {
        let Some(s) = slot_arg(ctx, &a[j]) else { return };
        let Some(e) = slot_arg(ctx, &a[j + 1]) else { return };
        if s > e {
            return ctx.out.error(&format!("ERR start slot number {} is greater than end slot number {}", s, e));
        }
        ranges.push((s, e));
        j += 2;
    }
    let st = ctx.srv.cluster.state.read().clone();
    let mut seen = vec![0u8; SLOTS];
    for (s, e) in ranges {
        if !check_assign(ctx, &st, &mut seen, s, e, del) {
            return;
        }
    }
    ctx.srv.cluster.update(|st| apply_slots(st, &seen, del));
    ctx.out.ok();
}

fn flushslots(ctx: &mut Ctx, _a: Args) {
    if !enabled(ctx) {
        return;
    }
    if ctx.srv.ks.db_size(0) != 0 {
        return ctx.out.error("ERR DB must be empty to perform CLUSTER FLUSHSLOTS.");
    }
    ctx.srv.cluster.update(|st| {
        let me = st.myself.clone();
        st.slots.reassign(&me, None);
    });
    ctx.out.ok();
}

fn countkeysinslot(ctx: &mut Ctx, a: Args) {
    if !enabled(ctx) {
        return;
    }
    let Some(slot) = int_arg(ctx.out, &a[2]) else { return };
    if !(0..SLOTS as i64).contains(&slot) {
        return ctx.out.error("ERR Invalid slot");
    }
    let n = count_in_slot(ctx.srv, slot as usize, ctx.now_ms);
    ctx.out.int(n as i64);
}

fn getkeysinslot(ctx: &mut Ctx, a: Args) {
    if !enabled(ctx) {
        return;
    }
    let Some(slot) = int_arg(ctx.out, &a[2]) else { return };
    let Some(max) = int_arg(ctx.out, &a[3]) else { return };
    if !(0..SLOTS as i64).contains(&slot) || max < 0 {
        return ctx.out.error("ERR Invalid slot or number of keys");
    }
    let keys = keys_in_slot(ctx.srv, slot as usize, max as usize, ctx.now_ms);
    ctx.out.array(keys.len());
    for k in keys {
        ctx.out.bulk(&k);
    }
}

fn bumpepoch(ctx: &mut Ctx, _a: Args) {
    if !enabled(ctx) {
        return;
    }
    let (bumped, epoch) = ctx.srv.cluster.update(|st| (st.bump_epoch(), st.me().config_epoch));
    ctx.out.simple(&format!("{} {}", if bumped { "BUMPED" } else { "STILL" }, epoch));
}

fn set_config_epoch(ctx: &mut Ctx, a: Args) {
    if !enabled(ctx) {
        return;
    }
    let Some(epoch) = int_arg(ctx.out, &a[2]) else { return };
    let st = ctx.srv.cluster.state.read();
    let (known, mine) = (st.nodes.len(), st.me().config_epoch);
    drop(st);
    if epoch < 0 {
        ctx.out.error(&format!("ERR Invalid config epoch specified: {}", epoch));
    } else if known > 1 {
        ctx.out.error("ERR The user can assign a config epoch only when the node does not know any other node.");
    } else if mine != 0 {
        ctx.out.error("ERR Node config epoch is already non-zero");
    } else {
        ctx.srv.cluster.update(|st| {
            st.me_mut().config_epoch = epoch as u64;
            st.current_epoch = st.current_epoch.max(epoch as u64);
        });
        ctx.out.ok();
    }
}

fn saveconfig(ctx: &mut Ctx, _a: Args) {
    if !enabled(ctx) {
        return;
    }
    match ctx.srv.cluster.save() {
        Ok(()) => ctx.out.ok(),
        Err(e) => ctx.out.error(&format!("ERR error saving the cluster node config: {}", e)),
    }
}

fn lookup_node(st: &ClusterState, id: &[u8]) -> Option<ClusterNode> {
    std::str::from_utf8(id).ok().and_then(|id| st.nodes.get(id)).cloned()
}

fn setslot(ctx: &mut Ctx, a: Args) {
    if !enabled(ctx) {
        return;
    }
    let Some(slot) = slot_arg(ctx, &a[2]) else { return };
    let action = a[3].to_ascii_lowercase();
    let id = a.get(4).map(|x| String::from_utf8_lossy(x).into_owned()).unwrap_or_default();
    let s16 = slot as u16;
    // Keys are counted before the state is read: no shard lock is taken under the state lock.
    let keys = if action == b"node" && a.len() == 5 { count_in_slot(ctx.srv, slot, ctx.now_ms) } else { 0 };
    enum Change {
        Migrating(String),
        Importing(String),
        Stable,
        Node(String),
    }
    // The checks under a read guard (a copy of the state would copy 16384 slot owners: it made
    // every SETSLOT cost ~1.5 ms, a reshard 5 times slower than Redis's).
    let change = {
        let srv = ctx.srv;
        let st = srv.cluster.state.read();
        if st.me().flags & SLAVE != 0 {
            return ctx.out.error("ERR Please use SETSLOT only with masters.");
        }
        let target = |ctx: &mut Ctx, unknown: &str| -> Option<String> {
            let Some(n) = lookup_node(&st, &a[4]) else {
                ctx.out.error(&format!("ERR {} {}", unknown, id));
                return None;
            };
            if n.flags & SLAVE != 0 {
                ctx.out.error("ERR Target node is not a master");
                return None;
            }
            Some(n.id)
        };
        match (action.as_slice(), a.len()) {
            (b"migrating", 5) => {
                if !st.is_mine(slot) {
                    return ctx.out.error(&format!("ERR I'm not the owner of hash slot {}", slot));
                }
                let Some(n) = target(ctx, "I don't know about node") else { return };
                Change::Migrating(n)
            }
            (b"importing", 5) => {
                if st.is_mine(slot) {
                    return ctx.out.error(&format!("ERR I'm already the owner of hash slot {}", slot));
                }
                let Some(n) = target(ctx, "I don't know about node") else { return };
                Change::Importing(n)
            }
            (b"stable", 4) => Change::Stable,
            (b"node", 5) => {
                let Some(n) = target(ctx, "Unknown node") else { return };
                if st.is_mine(slot) && n != st.myself && keys != 0 {
                    return ctx.out.error(&format!(
                        "ERR Can't assign hashslot {} to a different node while I still hold keys for this hash slot.",
                        slot
                    ));
                }
                Change::Node(n)
            }
            _ => {
                return ctx.out.error("ERR Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP");
            }
        }
    };
    match change {
        Change::Migrating(n) => ctx.srv.cluster.update(|st| {
            st.migrating.insert(s16, n);
        }),
        Change::Importing(n) => ctx.srv.cluster.update(|st| {
            st.importing.insert(s16, n);
        }),
        Change::Stable => ctx.srv.cluster.update(|st| {
            st.importing.remove(&s16);
            st.migrating.remove(&s16);
        }),
        Change::Node(n) => {
            let imported = ctx.srv.cluster.update(|st| {
                if keys == 0 {
                    st.migrating.remove(&s16);
                }
                // A slot imported into myself: bump the config epoch without consensus.
                let imported = n == st.myself && st.importing.remove(&s16).is_some();
                st.slots.set(slot, Some(&n));
                if imported {
                    st.bump_epoch();
                }
                imported
            });
            if imported {
                // Let every node know the new owner at once (clusterBroadcastPong).
                failover::send(ctx.srv, None, link::build(ctx.srv, bus::PONG, None));
            }
        }
    }
    ctx.out.ok();
}

fn forget(ctx: &mut Ctx, a: Args) {
    if !enabled(ctx) {
        return;
    }
    let st = ctx.srv.cluster.state.read().clone();
    let Some(n) = lookup_node(&st, &a[2]) else {
        return ctx.out.error(&format!("ERR Unknown node {}", String::from_utf8_lossy(&a[2])));
    };
    if n.id == st.myself {
        return ctx.out.error("ERR I tried hard but I can't forget myself...");
    }
    if st.me().master.as_deref() == Some(n.id.as_str()) {
        return ctx.out.error("ERR Can't forget my master!");
    }
    ctx.srv.cluster.update(|st| {
        st.nodes.remove(&n.id);
        st.slots.reassign(&n.id, None);
        st.migrating.retain(|_, v| *v != n.id);
        st.importing.retain(|_, v| *v != n.id);
        // clusterDelNode: its failure reports go, its replicas no longer name it.
        for other in st.nodes.values_mut() {
            other.fail_reports.retain(|(by, _)| *by != n.id);
            if other.master.as_deref() == Some(n.id.as_str()) {
                other.master = None;
            }
        }
    });
    // Gossip from nodes that still know it must not bring it back for a minute: time for
    // CLUSTER FORGET to reach every node (clusterBlacklistAddNode).
    let now = ctx.now_ms;
    let mut forgotten = ctx.srv.cluster.forgotten.lock();
    forgotten.retain(|_, until| *until > now);
    forgotten.insert(n.id.clone(), now + 60_000);
    drop(forgotten);
    ctx.out.ok();
}

fn replicas(ctx: &mut Ctx, a: Args) {
    if !enabled(ctx) {
        return;
    }
    let st = ctx.srv.cluster.state.read().clone();
    let Some(n) = lookup_node(&st, &a[2]) else {
        return ctx.out.error(&format!("ERR Unknown node {}", String::from_utf8_lossy(&a[2])));
    };
    if n.flags & SLAVE != 0 {
        return ctx.out.error("ERR The specified node is not a master");
    }
    let lines: Vec<String> = st
        .nodes
        .values()
        .filter(|r| r.flags & SLAVE != 0 && r.master.as_deref() == Some(n.id.as_str()))
        .map(|r| st.node_line(r))
        .collect();
    ctx.out.array(lines.len());
    for l in lines {
        ctx.out.bulk_str(&l);
    }
}

fn count_failure_reports(ctx: &mut Ctx, a: Args) {
    if !enabled(ctx) {
        return;
    }
    let st = ctx.srv.cluster.state.read().clone();
    let Some(n) = lookup_node(&st, &a[2]) else {
        return ctx.out.error(&format!("ERR Unknown node {}", String::from_utf8_lossy(&a[2])));
    };
    ctx.out.int(n.fail_reports.len() as i64);
}

/// CLUSTER LINKS: every bus link, "to" (outbound) and "from" (inbound) a node.
fn links(ctx: &mut Ctx, _a: Args) {
    if !enabled(ctx) {
        return;
    }
    let rows = ctx.srv.cluster.link_table.rows();
    ctx.out.array(rows.len());
    for r in rows {
        ctx.out.map(6);
        ctx.out.bulk(b"direction");
        ctx.out.bulk(if r.inbound { b"from" } else { b"to" });
        ctx.out.bulk(b"node");
        ctx.out.bulk(r.node.as_bytes());
        ctx.out.bulk(b"create-time");
        ctx.out.int(r.ctime as i64);
        ctx.out.bulk(b"events");
        // A read handler always; a write handler while bytes wait to be written.
        ctx.out.bulk(if r.queued > 0 { b"rw" } else { b"r" });
        ctx.out.bulk(b"send-buffer-allocated");
        ctx.out.int(r.queued as i64);
        ctx.out.bulk(b"send-buffer-used");
        ctx.out.int(r.queued as i64);
    }
}

/// CLUSTER RESET [HARD|SOFT] (Redis's clusterReset).
fn reset(ctx: &mut Ctx, a: Args) {
    if !enabled(ctx) {
        return;
    }
    let hard = match a.get(2) {
        None => false,
        Some(x) if x.eq_ignore_ascii_case(b"hard") => true,
        Some(x) if x.eq_ignore_ascii_case(b"soft") => false,
        Some(_) => return ctx.out.error("ERR syntax error"),
    };
    if a.len() > 3 {
        return ctx.wrong_arity();
    }
    let is_master = ctx.srv.cluster.state.read().me().flags & MASTER != 0;
    // A replica stops replicating and empties itself first (clusterReset).
    if !is_master {
        crate::replication::become_master(ctx.srv);
        let srv = ctx.srv;
        let mut guards = srv.ks.lock_all();
        let mut fx = ferrocache_engine::Effects::default();
        for d in 0..srv.num_dbs() {
            srv.db(&mut guards, &mut fx, d, crate::node::now_ms()).clear(false);
        }
    }
    if is_master && ctx.srv.ks.db_size(0) != 0 {
        return ctx.out.error("ERR CLUSTER RESET can't be called with master nodes containing keys");
    }
    ctx.srv.cluster.update(|st| {
        let mut me = st.me().clone();
        me.flags = MYSELF | MASTER;
        me.master = None;
        st.slots.clear();
        st.migrating.clear();
        st.importing.clear();
        st.nodes.clear();
        if hard {
            st.current_epoch = 0;
            st.last_vote_epoch = 0;
            me.config_epoch = 0;
            me.id = state::random_id();
        }
        st.myself = me.id.clone();
        st.nodes.insert(me.id.clone(), me);
    });
    ctx.out.ok();
}

/// getPreferredEndpoint: what redirections name a node by (cluster-preferred-endpoint-type).
/// clusterRedirectBlockedClientIfNeeded, from the cron: a client blocked on keys (BLPOP,
/// BZPOPMIN, XREAD BLOCK, ...) whose slot this node no longer serves gets -MOVED (or
/// -CLUSTERDOWN when the slot is unassigned or the cluster is down) instead of waiting for a
/// write that will never come here.
pub fn redirect_blocked_clients(srv: &Node) {
    // Each waiter's slot and whether a replica may serve it, read before the cluster state is
    // locked: a waiter being served holds its client while its command routes under that lock.
    let waiters: Vec<_> = srv
        .blocking
        .waiters()
        .into_iter()
        .filter_map(|w| {
            let slot = key_slot(w.keys.first()?) as usize;
            let replica_may_serve = !w.cmd.is_write() && w.client.lock().as_ref().is_some_and(|c| c.readonly);
            Some((w, slot, replica_may_serve))
        })
        .collect();
    if waiters.is_empty() {
        return;
    }
    let full = srv.config.hot.cluster_full_coverage.load(Relaxed);
    let errors: Vec<_> = {
        let st = srv.cluster.state.read();
        let down = !srv.cluster.state.state_ok(&st, full);
        let me = st.me();
        waiters
            .into_iter()
            .filter_map(|(w, slot, replica_may_serve)| {
                if down {
                    return Some((w, "CLUSTERDOWN The cluster is down".to_string()));
                }
                let owner = st.slots.get(slot);
                let served = owner == Some(st.myself.as_str())
                    || st.importing.contains_key(&(slot as u16))
                    || (replica_may_serve && me.flags & SLAVE != 0 && owner.is_some() && me.master.as_deref() == owner);
                if served {
                    return None;
                }
                let e = match owner.and_then(|o| st.nodes.get(o)) {
                    None => "CLUSTERDOWN Hash slot not served".to_string(),
                    Some(n) => format!("MOVED {} {}:{}", slot, preferred_endpoint(srv, n), n.port),
                };
                Some((w, e))
            })
            .collect()
    };
    for (w, e) in errors {
        srv.blocking.end_wait(srv, &w, format!("-{e}\r\n").into_bytes(), e.split(' ').next());
    }
}

fn preferred_endpoint(srv: &Node, n: &ClusterNode) -> String {
    match srv.config.get("cluster-preferred-endpoint-type").unwrap_or_default().as_str() {
        "hostname" if n.hostname.is_empty() => "?".into(),
        "hostname" => n.hostname.clone(),
        "unknown-endpoint" => String::new(),
        _ => n.ip.clone(),
    }
}

fn addr_line(ctx: &mut Ctx, n: &ClusterNode) {
    ctx.out.array(4);
    let pref = ctx.srv.config.get("cluster-preferred-endpoint-type").unwrap_or_default();
    match pref.as_str() {
        "hostname" if n.hostname.is_empty() => ctx.out.bulk_str("?"),
        "hostname" => ctx.out.bulk_str(&n.hostname),
        "unknown-endpoint" => ctx.out.null(),
        _ => ctx.out.bulk_str(&n.ip),
    }
    ctx.out.int(n.port as i64);
    ctx.out.bulk_str(&n.id);
    let ip_meta = pref != "ip";
    let host_meta = pref != "hostname" && !n.hostname.is_empty();
    ctx.out.map(ip_meta as usize + host_meta as usize);
    if ip_meta {
        ctx.out.bulk_str("ip");
        ctx.out.bulk_str(&n.ip);
    }
    if host_meta {
        ctx.out.bulk_str("hostname");
        ctx.out.bulk_str(&n.hostname);
    }
}

/// CLUSTER SLOTS: one entry per run of slots with the same owner, the owner then its replicas.
fn slots(ctx: &mut Ctx, _a: Args) {
    if !enabled(ctx) {
        return;
    }
    // A read guard, not a copy: cloning the state copies 16384 slot owners.
    let srv = ctx.srv;
    let st = srv.cluster.state.read();
    let runs = st.slots.runs();
    ctx.out.array(runs.len());
    for (s, e, id) in runs {
        let master = st.nodes.get(id).cloned().unwrap_or_default();
        let reps: Vec<ClusterNode> = st
            .nodes
            .values()
            .filter(|r| r.flags & SLAVE != 0 && r.master.as_deref() == Some(id) && !r.failed())
            // isReplicaAvailable: a replica that announces offset 0 (loading) is left out.
            .filter(|r| {
                let off = if r.flags & MYSELF != 0 { link::my_repl_offset(ctx.srv, true) } else { r.repl_offset };
                off != 0
            })
            .cloned()
            .collect();
        ctx.out.array(3 + reps.len());
        ctx.out.int(s as i64);
        ctx.out.int(e as i64);
        addr_line(ctx, &master);
        for r in &reps {
            addr_line(ctx, r);
        }
    }
}

fn shard_node(ctx: &mut Ctx, st: &ClusterState, n: &ClusterNode) {
    let pref = ctx.srv.config.get("cluster-preferred-endpoint-type").unwrap_or_default();
    let endpoint = match pref.as_str() {
        "hostname" if !n.hostname.is_empty() => n.hostname.clone(),
        "hostname" => "?".into(),
        "unknown-endpoint" => String::new(),
        _ => n.ip.clone(),
    };
    let replica = n.flags & SLAVE != 0;
    // Myself's own offset; the others' as their last message announced it.
    let offset = if n.flags & MYSELF != 0 { link::my_repl_offset(ctx.srv, replica) } else { n.repl_offset } as i64;
    ctx.out.map(7 + (!n.hostname.is_empty()) as usize);
    ctx.out.bulk_str("id");
    ctx.out.bulk_str(&n.id);
    ctx.out.bulk_str("port");
    ctx.out.int(n.port as i64);
    ctx.out.bulk_str("ip");
    ctx.out.bulk_str(&n.ip);
    ctx.out.bulk_str("endpoint");
    ctx.out.bulk_str(&endpoint);
    if !n.hostname.is_empty() {
        ctx.out.bulk_str("hostname");
        ctx.out.bulk_str(&n.hostname);
    }
    ctx.out.bulk_str("role");
    ctx.out.bulk_str(if replica { "replica" } else { "master" });
    ctx.out.bulk_str("replication-offset");
    ctx.out.int(offset);
    ctx.out.bulk_str("health");
    ctx.out.bulk_str(if n.failed() {
        "fail"
    } else if replica && offset == 0 {
        "loading"
    } else {
        "online"
    });
    let _ = st;
}

/// CLUSTER SHARDS: one entry per master: its slot ranges, then it and its replicas.
fn shards(ctx: &mut Ctx, _a: Args) {
    if !enabled(ctx) {
        return;
    }
    let srv = ctx.srv;
    let st = srv.cluster.state.read();
    let masters: Vec<ClusterNode> = st.nodes.values().filter(|n| n.flags & MASTER != 0).cloned().collect();
    ctx.out.array(masters.len());
    for m in masters {
        ctx.out.map(2);
        ctx.out.bulk_str("slots");
        let ranges = st.ranges(&m.id);
        ctx.out.array(ranges.len() * 2);
        for (s, e) in ranges {
            ctx.out.int(s as i64);
            ctx.out.int(e as i64);
        }
        ctx.out.bulk_str("nodes");
        let mut members = vec![m.clone()];
        members.extend(
            st.nodes.values().filter(|r| r.flags & SLAVE != 0 && r.master.as_deref() == Some(m.id.as_str())).cloned(),
        );
        ctx.out.array(members.len());
        for n in &members {
            shard_node(ctx, &st, n);
        }
    }
}

/// Whether the executor must route this command (processCommand's condition): cluster mode,
/// not from our master, and a command with keys (or EXEC).
pub fn needs_routing(srv: &Node, client: &crate::client::Client, cmd: &Command) -> bool {
    srv.cluster.enabled && !client.repl.is_master && (cmd.first_key > 0 || cmd.keys_fn.is_some() || cmd.name == "exec")
}

/// Redis's getNodeByQuery + clusterRedirectClient: None when this node serves the request,
/// else the error to answer (-MOVED, -ASK, -CROSSSLOT, -TRYAGAIN, -CLUSTERDOWN). `keys`: the
/// request's key positions (the executor computes them once per request); EXEC routes its
/// queued commands' keys.
pub fn route(
    srv: &Node,
    client: &crate::client::Client,
    cmd: &'static Command,
    args: Args,
    keys: &[usize],
    asking: bool,
    now: u64,
) -> Option<String> {
    // The fast path: every key in one slot that this node serves as it is (no lock, no
    // allocation). ASKING and EXEC take the full path.
    if !asking && cmd.name != "exec" {
        let mut slot = None;
        let mut one = true;
        for &i in keys {
            // Through the keyspace: the shard choice and the lookup find this key's hash again.
            let s = srv.ks.key_slot(&args[i]);
            match slot {
                None => slot = Some(s),
                Some(x) if x != s => {
                    one = false;
                    break;
                }
                _ => {}
            }
        }
        match slot {
            None => return None,
            Some(s)
                if one
                    && srv
                        .cluster
                        .state
                        .served_here(s as usize, srv.config.hot.cluster_full_coverage.load(Relaxed)) =>
            {
                return None
            }
            _ => {}
        }
    }
    let list: Vec<(&'static Command, Args, std::borrow::Cow<'_, [usize]>)> = if cmd.name == "exec" {
        let q = client.multi.as_ref()?;
        q.iter()
            .filter_map(|a| {
                crate::transactions::resolve_queued(a.args()).map(|c| (c, a.args(), c.key_positions(a.args()).into()))
            })
            .collect()
    } else {
        vec![(cmd, args, keys.into())]
    };
    let st = srv.cluster.state.read();
    let mut first: Option<&[u8]> = None;
    let mut slot = 0usize;
    let mut owner: Option<&str> = None;
    let (mut migrating, mut importing, mut multiple) = (false, false, false);
    let (mut missing, mut existing) = (0, 0);
    let is_pubsubshard = matches!(cmd.name, "ssubscribe" | "sunsubscribe" | "spublish");
    let mut any_write = false;
    for (c, a, positions) in &list {
        any_write |= c.is_write();
        for &i in positions.iter() {
            let key = &a[i];
            let this = srv.ks.key_slot(key) as usize;
            match first {
                None => {
                    first = Some(key);
                    slot = this;
                    let Some(o) = st.slots.get(slot) else {
                        return Some("CLUSTERDOWN Hash slot not served".into());
                    };
                    owner = Some(o);
                    if o == st.myself && st.migrating.contains_key(&(slot as u16)) {
                        migrating = true;
                    } else if st.importing.contains_key(&(slot as u16)) {
                        importing = true;
                    }
                }
                Some(f) if f != key => {
                    if this != slot {
                        return Some("CROSSSLOT Keys in request don't hash to the same slot".into());
                    }
                    multiple = true;
                }
                _ => {}
            }
            if (migrating || importing) && !is_pubsubshard {
                if key_exists(srv, key, now) {
                    existing += 1;
                } else {
                    missing += 1;
                }
            }
        }
    }
    let owner = owner?;
    if !srv.cluster.state.state_ok(&st, srv.config.hot.cluster_full_coverage.load(Relaxed)) {
        if is_pubsubshard {
            if !srv.config.get_bool("cluster-allow-pubsubshard-when-down") {
                return Some("CLUSTERDOWN The cluster is down".into());
            }
        } else if !srv.config.hot.cluster_reads_when_down.load(Relaxed) {
            return Some("CLUSTERDOWN The cluster is down".into());
        } else if cmd.is_write() {
            return Some("CLUSTERDOWN The cluster is down and only accepts read commands".into());
        }
    }
    if (migrating || importing) && cmd.name == "migrate" {
        return None;
    }
    let redirect = |kind: &str, id: &str| {
        let n = st.nodes.get(id).cloned().unwrap_or_default();
        Some(format!("{} {} {}:{}", kind, slot, preferred_endpoint(srv, &n), n.port))
    };
    if migrating && missing > 0 {
        if existing > 0 {
            return Some("TRYAGAIN Multiple keys request during rehashing of slot".into());
        }
        return redirect("ASK", &st.migrating[&(slot as u16)]);
    }
    if importing && (asking || cmd.name == "restore-asking") {
        if multiple && missing > 0 {
            return Some("TRYAGAIN Multiple keys request during rehashing of slot".into());
        }
        return None;
    }
    let is_write =
        cmd.is_write() || (cmd.name == "exec" && any_write) || crate::scripting::script_writes(srv, cmd, args);
    let me = st.me();
    if (client.readonly || is_pubsubshard) && !is_write && me.flags & SLAVE != 0 && me.master.as_deref() == Some(owner)
    {
        return None;
    }
    if owner != st.myself {
        return redirect("MOVED", owner);
    }
    None
}
