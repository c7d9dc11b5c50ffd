//! Replicas and failover in cluster mode (Redis 7.0's cluster.c): CLUSTER REPLICATE, the
//! replica's election when its master fails (clusterHandleSlaveFailover: rank delay,
//! FAILOVER_AUTH_REQUEST, a majority of slot-owning masters' FAILOVER_AUTH_ACK, then
//! clusterFailoverReplaceYourMaster), the masters' vote (clusterSendFailoverAuthIfNeeded),
//! CLUSTER FAILOVER [FORCE|TAKEOVER] with the MFSTART handshake, and keeping the replication
//! link pointed at the node's master as the cluster configuration says.

use super::bus::{Msg, FAILOVER_AUTH_ACK, FAILOVER_AUTH_REQUEST, FLAG0_FORCEACK, MFSTART, PONG};
use super::state::{ClusterState, FAIL, HANDSHAKE, MASTER, NOFAILOVER, SLAVE};
use crate::node::now_ms;
use crate::Node;
use std::sync::Arc;

/// CLUSTER_MF_TIMEOUT: a manual failover must complete within 5 s.
const MF_TIMEOUT_MS: u64 = 5000;

/// The replica's election and the manual failover in progress (clusterState's failover_auth_*
/// and mf_* fields).
#[derive(Debug, Default)]
pub struct Election {
    /// When this replica may (or did) ask for votes; 0: no election.
    pub auth_time: u64,
    pub auth_count: usize,
    pub auth_sent: bool,
    pub auth_rank: usize,
    pub auth_epoch: u64,
    /// A manual failover runs until this time (0: none).
    pub mf_end: u64,
    /// Master side: the replica that asked (MFSTART).
    pub mf_replica: Option<String>,
    /// Replica side: the master's offset once it paused its clients.
    pub mf_master_offset: Option<u64>,
    /// Replica side: the election may start (offset reached, or FORCE).
    pub mf_can_start: bool,
}

impl Election {
    fn reset_manual(&mut self) {
        self.mf_end = 0;
        self.mf_replica = None;
        self.mf_master_offset = None;
        self.mf_can_start = false;
    }
}

fn log(level: char, msg: &str) {
    crate::persistence::log_line(level, msg);
}

/// Send a message to one node (over our link to it) or, with None, to every node.
pub fn send(srv: &Node, to: Option<&str>, msg: Vec<u8>) {
    super::link::send_limited(srv, to, msg);
}

/// CLUSTER REPLICATE <node-id> (clusterCommand "replicate" + clusterSetMaster).
pub fn replicate(srv: &Arc<Node>, id: &[u8]) -> Result<(), String> {
    let name = String::from_utf8_lossy(id).into_owned();
    srv.cluster.update(|st| {
        let Some(n) = st.nodes.get(&name).filter(|n| n.flags & HANDSHAKE == 0) else {
            return Err(format!("ERR Unknown node {}", name));
        };
        if n.id == st.myself {
            return Err("ERR Can't replicate myself".into());
        }
        if n.flags & SLAVE != 0 {
            return Err("ERR I can only replicate a master, not a replica.".into());
        }
        if st.me().flags & MASTER != 0 && (st.num_slots(&st.myself) != 0 || srv.ks.db_size(0) != 0) {
            return Err("ERR To set a master the node must be empty and without assigned slots.".into());
        }
        set_master(st, &name);
        Ok(())
    })?;
    srv.cluster.election.lock().reset_manual();
    follow_master(srv);
    Ok(())
}

/// clusterSetMaster's state part: myself becomes a replica of `id` (slots being migrated or
/// imported are forgotten, as clusterCloseAllSlots).
fn set_master(st: &mut ClusterState, id: &str) {
    let me = st.me_mut();
    if me.flags & MASTER != 0 {
        me.flags = (me.flags & !MASTER) | SLAVE;
        st.migrating.clear();
        st.importing.clear();
    }
    let me = st.myself.clone();
    let old = st.me_mut().master.replace(id.to_string());
    super::migration::master_changed(st, &me, old.as_deref(), Some(id));
}

/// Point the replication link where the cluster configuration says: at myself's master when
/// a replica (its address known), nowhere when a master. Run after every role change and from
/// the cron (a node restarted as a replica from nodes.conf starts replicating here).
pub fn follow_master(srv: &Arc<Node>) {
    // The cron and a role change may both get here: one decision at a time.
    static ONE: parking_lot::Mutex<()> = parking_lot::Mutex::new(());
    let _one = ONE.lock();
    let (is_master, want) = {
        let st = srv.cluster.state.read();
        let me = st.me();
        let want = if me.flags & SLAVE != 0 {
            me.master
                .as_ref()
                .and_then(|m| st.nodes.get(m))
                .filter(|n| !n.ip.is_empty() && n.port != 0 && n.flags & HANDSHAKE == 0)
                .map(|n| (n.ip.clone(), n.port))
        } else {
            None
        };
        (me.flags & MASTER != 0, want)
    };
    let repl = &srv.repl;
    let is_replica = repl.is_replica.load(std::sync::atomic::Ordering::Relaxed);
    match want {
        Some((ip, port)) => {
            let current = repl.replica.lock().master.clone();
            if !is_replica || current.as_ref().is_none_or(|(h, p)| *h != ip || *p != port) {
                log('*', &format!("Connecting to MASTER {}:{}", ip, port));
                crate::replication::become_replica(srv, ip, port);
                srv.blocking.disconnect_all(srv);
            }
        }
        None if is_master && is_replica => {
            crate::replication::become_master(srv);
            log('*', "MASTER MODE enabled (cluster configuration)");
        }
        None => {}
    }
}

/// CLUSTER FAILOVER [FORCE|TAKEOVER], sent to a replica.
pub fn manual_failover(srv: &Arc<Node>, force: bool, takeover: bool) -> Result<(), String> {
    {
        let st = srv.cluster.state.read();
        let me = st.me();
        if me.flags & MASTER != 0 {
            return Err("ERR You should send CLUSTER FAILOVER to a replica".into());
        }
        let Some(m) = me.master.as_ref().and_then(|m| st.nodes.get(m)) else {
            return Err("ERR I'm a replica but my master is unknown to me".into());
        };
        if !force && !takeover && (m.failed() || !m.link) {
            return Err("ERR Master is down or failed, please use CLUSTER FAILOVER FORCE".into());
        }
    }
    let master = srv.cluster.state.read().me().master.clone();
    {
        let mut e = srv.cluster.election.lock();
        e.reset_manual();
        e.mf_end = now_ms() + MF_TIMEOUT_MS;
    }
    if takeover {
        // A takeover needs no agreement: a new config epoch of our own, then the switch.
        log('#', "Taking over the master (user request).");
        let epoch = srv.cluster.update(|st| {
            st.current_epoch += 1;
            let e = st.current_epoch;
            st.me_mut().config_epoch = e;
            e
        });
        replace_master(srv, epoch);
    } else if force {
        log('#', "Forced failover user request accepted.");
        srv.cluster.election.lock().mf_can_start = true;
    } else {
        log('#', "Manual failover user request accepted.");
        let msg = super::link::header(srv, MFSTART).encode();
        send(srv, master.as_deref(), msg);
    }
    Ok(())
}

/// A message's header from a known node, before its type is handled: epochs, replication
/// offset, and a paused master's offset for our manual failover.
pub fn on_header(srv: &Node, st: &mut ClusterState, m: &Msg) {
    let Some(n) = st.nodes.get_mut(&m.sender).filter(|n| n.flags & HANDSHAKE == 0) else { return };
    n.repl_offset = m.offset;
    if m.config_epoch > n.config_epoch {
        n.config_epoch = m.config_epoch;
    }
    st.current_epoch = st.current_epoch.max(m.current_epoch);
    let me = st.me();
    if me.flags & SLAVE != 0
        && me.master.as_deref() == Some(m.sender.as_str())
        && m.mflags[0] & super::bus::FLAG0_PAUSED != 0
    {
        let mut e = srv.cluster.election.lock();
        if e.mf_end != 0 && e.mf_master_offset.is_none() {
            e.mf_master_offset = Some(m.offset);
            log('#', &format!("Received replication offset for paused master manual failover: {}", m.offset));
        }
    }
}

/// MFSTART from one of our replicas: pause writes for the manual failover and tell it our
/// offset (every message we send while it lasts carries the PAUSED flag).
pub fn on_mfstart(srv: &Arc<Node>, m: &Msg) {
    {
        let st = srv.cluster.state.read();
        let Some(n) = st.nodes.get(&m.sender) else { return };
        if n.master.as_deref() != Some(st.myself.as_str()) || st.me().flags & MASTER == 0 {
            return;
        }
    }
    let end = now_ms() + MF_TIMEOUT_MS;
    {
        let mut e = srv.cluster.election.lock();
        e.reset_manual();
        e.mf_end = end;
        e.mf_replica = Some(m.sender.clone());
    }
    srv.pause.pause(end, true);
    log('#', &format!("Manual failover requested by replica {}.", m.sender));
    let ping = super::link::build(srv, super::bus::PING, Some(&m.sender));
    send(srv, Some(&m.sender), ping);
}

/// FAILOVER_AUTH_REQUEST from a replica (clusterSendFailoverAuthIfNeeded): vote for it when
/// we are a master with slots, have not voted in this epoch, its master failed (or the request
/// forces the ack: a manual failover), we did not vote for a replica of that master within two
/// node timeouts, and no slot it claims has an owner with a newer config epoch.
pub fn on_auth_request(srv: &Node, m: &Msg) {
    let timeout = srv.config.get_i64("cluster-node-timeout").max(0) as u64;
    let now = now_ms();
    let force = m.mflags[0] & FLAG0_FORCEACK != 0;
    let vote = {
        let mut st = srv.cluster.state.write();
        let me = st.me();
        if me.flags & SLAVE != 0 || st.num_slots(&st.myself) == 0 {
            return;
        }
        let refuse = |why: &str| {
            log('#', &format!("Failover auth denied to {}: {}", m.sender, why));
        };
        if m.current_epoch < st.current_epoch {
            return refuse(&format!("reqEpoch ({}) < curEpoch({})", m.current_epoch, st.current_epoch));
        }
        if st.last_vote_epoch == st.current_epoch {
            return refuse(&format!("already voted for epoch {}", st.current_epoch));
        }
        let Some(node) = st.nodes.get(&m.sender) else { return };
        let Some(master_id) = node.master.clone().filter(|_| node.flags & SLAVE != 0) else {
            return refuse("it is a master node");
        };
        let Some(master) = st.nodes.get(&master_id) else { return refuse("I don't know its master") };
        if master.flags & FAIL == 0 && !force {
            return refuse("its master is up");
        }
        if now.saturating_sub(master.voted_time) < timeout * 2 {
            return refuse("can't vote about this master before some time");
        }
        for j in 0..super::slot::SLOTS {
            if !m.claims(j) {
                continue;
            }
            let Some(owner) = st.slots.get(j).and_then(|o| st.nodes.get(o)) else { continue };
            if owner.config_epoch > m.config_epoch {
                return refuse(&format!("slot {} epoch ({}) > reqEpoch ({})", j, owner.config_epoch, m.config_epoch));
            }
        }
        st.last_vote_epoch = st.current_epoch;
        if let Some(master) = st.nodes.get_mut(&master_id) {
            master.voted_time = now;
        }
        log('#', &format!("Failover auth granted to {} for epoch {}", m.sender, st.current_epoch));
        true
    };
    if vote {
        // The vote is on disk before it is sent (CLUSTER_TODO_FSYNC_CONFIG).
        let _ = srv.cluster.save_from_task();
        send(srv, Some(&m.sender), super::link::header(srv, FAILOVER_AUTH_ACK).encode());
    }
}

/// FAILOVER_AUTH_ACK: a vote for our election when it comes from a master with slots, for
/// this election's epoch or later.
pub fn on_auth_ack(srv: &Node, m: &Msg) {
    let st = srv.cluster.state.read();
    let Some(n) = st.nodes.get(&m.sender) else { return };
    if n.flags & MASTER == 0 || st.num_slots(&m.sender) == 0 {
        return;
    }
    let mut e = srv.cluster.election.lock();
    if e.auth_sent && m.current_epoch >= e.auth_epoch {
        e.auth_count += 1;
    }
}

/// clusterGetSlaveRank: replicas of our master with a greater replication offset.
fn rank(st: &ClusterState, my_offset: u64) -> usize {
    let me = st.me();
    st.nodes
        .values()
        .filter(|n| n.id != me.id && n.master == me.master && n.flags & SLAVE != 0 && n.flags & NOFAILOVER == 0)
        .filter(|n| n.repl_offset > my_offset)
        .count()
}

/// The cron's failover step (every 100 ms): the replica's election, the manual failover's
/// timeouts, the replication link following the configuration.
pub fn cron(srv: &Arc<Node>, now: u64) {
    follow_master(srv);
    super::refresh_announced(srv);
    // clusterUpdateMyselfFlags: NOFAILOVER follows cluster-replica-no-failover.
    let no_failover = srv.config.get_bool("cluster-replica-no-failover");
    let has = srv.cluster.state.read().me().flags & NOFAILOVER != 0;
    if has != no_failover {
        srv.cluster.update(|st| {
            let me = st.me_mut();
            me.flags = if no_failover { me.flags | NOFAILOVER } else { me.flags & !NOFAILOVER };
        });
    }
    {
        let mut e = srv.cluster.election.lock();
        if e.mf_end != 0 && now > e.mf_end {
            log('#', "Manual failover timed out.");
            let was_master = e.mf_replica.is_some();
            e.reset_manual();
            if was_master {
                srv.pause.unpause();
            }
        }
        // Replica side: the paused master's offset reached, the election may start.
        if e.mf_end != 0 && !e.mf_can_start {
            if let Some(off) = e.mf_master_offset {
                if srv.repl.master_offset() == off {
                    e.mf_can_start = true;
                    log('#', "All master replication stream processed, manual failover can start.");
                }
            }
        }
    }
    replica_election(srv, now);
}

/// clusterHandleSlaveFailover.
fn replica_election(srv: &Arc<Node>, now: u64) {
    let timeout = srv.config.get_i64("cluster-node-timeout").max(0) as u64;
    let auth_timeout = (timeout * 2).max(2000);
    let auth_retry = auth_timeout * 2;
    let manual = {
        let e = srv.cluster.election.lock();
        e.mf_end != 0 && e.mf_can_start
    };
    let my_offset = srv.repl.master_offset();
    let quorum;
    {
        let st = srv.cluster.state.read();
        let me = st.me();
        let Some(master) = me.master.as_ref().and_then(|m| st.nodes.get(m)) else { return };
        if me.flags & SLAVE == 0
            || (master.flags & FAIL == 0 && !manual)
            || (srv.config.get_bool("cluster-replica-no-failover") && !manual)
            || st.num_slots(&master.id) == 0
        {
            return;
        }
        // Data too old to be promoted (cluster-replica-validity-factor), unless manual.
        let factor = srv.config.get_i64("cluster-replica-validity-factor").max(0) as u64;
        if factor > 0 && !manual {
            let down = srv.repl.replica.lock().down_since_ms;
            let mut age = if down == 0 { 0 } else { now.saturating_sub(down) };
            if age > timeout {
                age -= timeout;
            }
            let ping_period = srv.config.get_i64("repl-ping-replica-period").max(0) as u64 * 1000;
            if age > ping_period + timeout * factor {
                return;
            }
        }
        quorum = st.size() / 2 + 1;
        let mut e = srv.cluster.election.lock();
        // A new election once the last one is over (its retry time passed).
        if now.saturating_sub(e.auth_time) > auth_retry || e.auth_time == 0 {
            let r = rank(&st, my_offset);
            e.auth_time = now + 500 + rand::random::<u64>() % 500 + r as u64 * 1000;
            e.auth_count = 0;
            e.auth_sent = false;
            e.auth_rank = r;
            if manual {
                e.auth_time = now;
                e.auth_rank = 0;
            }
            log(
                '#',
                &format!(
                    "Start of election delayed for {} milliseconds (rank #{}, offset {}).",
                    e.auth_time.saturating_sub(now),
                    e.auth_rank,
                    my_offset
                ),
            );
            return;
        }
        // While waiting, a worse rank (others got more data) delays us further.
        if !e.auth_sent && !manual {
            let r = rank(&st, my_offset);
            if r > e.auth_rank {
                e.auth_time += (r - e.auth_rank) as u64 * 1000;
                e.auth_rank = r;
            }
        }
        if now < e.auth_time {
            return;
        }
        if now - e.auth_time > auth_timeout {
            return; // this election timed out; the next starts after the retry time
        }
    }
    let sent = srv.cluster.election.lock().auth_sent;
    if !sent {
        let epoch = srv.cluster.update(|st| {
            st.current_epoch += 1;
            st.current_epoch
        });
        {
            let mut e = srv.cluster.election.lock();
            e.auth_epoch = epoch;
            e.auth_sent = true;
        }
        log('#', &format!("Starting a failover election for epoch {}.", epoch));
        let mut req = super::link::header(srv, FAILOVER_AUTH_REQUEST);
        if manual {
            req.mflags[0] |= FLAG0_FORCEACK;
        }
        send(srv, None, req.encode());
        return;
    }
    let (count, epoch) = {
        let e = srv.cluster.election.lock();
        (e.auth_count, e.auth_epoch)
    };
    if count >= quorum {
        log('#', "Failover election won: I'm the new master.");
        srv.cluster.update(|st| {
            if st.me().config_epoch < epoch {
                st.me_mut().config_epoch = epoch;
                log('#', &format!("configEpoch set to {} after successful failover", epoch));
            }
        });
        replace_master(srv, epoch);
    }
}

/// clusterFailoverReplaceYourMaster: myself becomes a master owning the old master's slots,
/// stops replicating (keeping the history, PSYNC2), saves the configuration and tells every
/// node at once with a PONG.
fn replace_master(srv: &Arc<Node>, epoch: u64) {
    srv.cluster.update(|st| {
        let me_id = st.myself.clone();
        let Some(old) = st.me().master.clone() else { return };
        let me = st.me_mut();
        me.flags = (me.flags & !SLAVE) | MASTER;
        me.master = None;
        if me.config_epoch < epoch {
            me.config_epoch = epoch;
        }
        super::migration::master_changed(st, &me_id, Some(&old), None);
        st.slots.reassign(&old, Some(&me_id));
    });
    {
        let mut e = srv.cluster.election.lock();
        *e = Election::default();
    }
    crate::replication::become_master(srv);
    log('*', "MASTER MODE enabled (failover)");
    let _ = srv.cluster.save();
    send(srv, None, super::link::build(srv, PONG, None));
}

/// A master that we followed lost its slots to `new_master` (clusterUpdateSlotsConfigWith's
/// "Configuration change detected"): follow that node instead.
pub fn reconfigure_as_replica_of(srv: &Arc<Node>, new_master: &str) {
    log('#', &format!("Configuration change detected. Reconfiguring myself as a replica of {}", new_master));
    srv.cluster.update(|st| set_master(st, new_master));
    srv.cluster.election.lock().reset_manual();
    follow_master(srv);
}
