//! The cluster bus links (a first cut of Redis's clusterCron / clusterProcessPacket): a listener
//! on the bus port answering PING/MEET with PONG, one outbound link per known node that sends
//! MEET or PING every second, the handshake (a node met under a random name is renamed by its
//! first PONG), slot ownership and epochs learned from PING/PONG headers, gossip that starts
//! handshakes with nodes we do not know, PFAIL/FAIL, UPDATE, PUBLISH/PUBLISHSHARD.

use super::bus::{
    Gossip, Msg, UpdateData, FAIL as FAIL_MSG, FAILOVER_AUTH_ACK, FAILOVER_AUTH_REQUEST, MEET, MFSTART, PING, PONG,
    PUBLISH, PUBLISHSHARD, UPDATE,
};
use super::slot::SLOTS;
use super::state::{
    random_id, ClusterNode, ClusterState, FAIL, HANDSHAKE, MASTER, MEET_FLAG, NOADDR, NOFAILOVER, PFAIL, SLAVE,
};
use crate::Node;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn now_ms() -> u64 {
    crate::node::now_ms()
}

/// Bind the bus port and start the listener and the cron (cluster mode only).
pub async fn start(srv: &Arc<Node>) -> std::io::Result<()> {
    if !srv.cluster.enabled {
        return Ok(());
    }
    let port = super::state::Cluster::bus_port(&srv.config);
    let bind = srv.config.get("bind").unwrap_or_else(|| "127.0.0.1".into());
    let addr = bind.split_whitespace().next().unwrap_or("127.0.0.1").trim_start_matches('-').to_string();
    let addr = if addr == "*" { "0.0.0.0".to_string() } else { addr };
    let l = tokio::net::TcpListener::bind((addr.as_str(), port)).await?;
    let s = srv.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = l.accept().await {
            let s = s.clone();
            tokio::spawn(async move { inbound(s, sock).await });
        }
    });
    let s = srv.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let s2 = s.clone();
            // One round's panic must not end the cron.
            let _ = tokio::task::spawn_blocking(move || cron_round(&s2)).await;
        }
    });
    Ok(())
}

/// The first whole message in `buf`, taken out of it (None: not all there yet; Err: not a bus
/// message, the link must close). The buffer grows only with bytes received, so a length field
/// never allocates by itself.
fn take_msg(buf: &mut Vec<u8>) -> Result<Option<Msg>, String> {
    if buf.len() < 8 {
        return Ok(None);
    }
    let len = Msg::frame_len(&buf[..8]).ok_or("bad signature")?;
    if len < 8 {
        return Err(format!("bad length {len}"));
    }
    if buf.len() < len {
        return Ok(None);
    }
    let m = Msg::decode(&buf[..len])?;
    buf.drain(..len);
    Ok(Some(m))
}

/// An inbound link: messages processed as they come, PING and MEET answered with PONG on it.
async fn inbound(srv: Arc<Node>, mut sock: TcpStream) {
    let peer = sock.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default();
    let local = sock.local_addr().map(|a| a.ip().to_string()).unwrap_or_default();
    let table = &srv.cluster.link_table;
    let (lid, kill) = table.open_inbound();
    let mut rbuf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    'link: loop {
        let n = tokio::select! {
            _ = kill.cancelled() => break,
            r = sock.read(&mut chunk) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            },
        };
        rbuf.extend_from_slice(&chunk[..n]);
        loop {
            let m = match take_msg(&mut rbuf) {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(_) => break 'link,
            };
            table.count_received(m.kind);
            if table.inbound_unnamed(lid) {
                let known = srv.cluster.state.read().nodes.get(&m.sender).is_some_and(|n| n.flags & HANDSHAKE == 0);
                if known {
                    table.name_inbound(lid, &m.sender);
                }
            }
            let (reply, _) = process(&srv, &m, None, &peer, &local);
            if reply {
                let pong = build(&srv, PONG, Some(&m.sender));
                table.count_sent(&pong);
                let w = tokio::select! {
                    _ = kill.cancelled() => break 'link,
                    w = sock.write_all(&pong) => w,
                };
                if w.is_err() {
                    break 'link;
                }
            }
        }
    }
    table.close(lid);
}

/// Writes what is queued for an outbound link until the link is freed.
async fn writer(mut w: tokio::net::tcp::OwnedWriteHalf, mut ob: super::links::Outbound) {
    loop {
        let b = tokio::select! {
            _ = ob.kill.cancelled() => break,
            b = ob.rx.recv() => match b { Some(b) => b, None => break },
        };
        let r = tokio::select! {
            _ = ob.kill.cancelled() => break,
            r = w.write_all(&b) => r,
        };
        ob.queued.fetch_sub(b.len(), Relaxed);
        if r.is_err() {
            break;
        }
    }
    ob.kill.cancel();
}

/// One outbound link to node `id` (renamed by the handshake): MEET or PING now, then PING every
/// second, PONGs processed as they come; what other parts send to the node is queued on it.
async fn outbound(srv: Arc<Node>, mut id: String) {
    let (ip, cport) = {
        let st = srv.cluster.state.read();
        match st.nodes.get(&id) {
            Some(n) => (n.ip.clone(), n.cport),
            None => return done(&srv, &id),
        }
    };
    let timeout = Duration::from_millis(srv.config.get_i64("cluster-node-timeout").clamp(1000, 60000) as u64);
    let Ok(Ok(sock)) = tokio::time::timeout(timeout, TcpStream::connect((ip.as_str(), cport))).await else {
        // A node we cannot reach counts as pinged now (clusterNodeCronHandleReconnect).
        if let Some(n) = srv.cluster.state.write().nodes.get_mut(&id) {
            if n.ping_sent == 0 {
                n.ping_sent = now_ms();
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        return done(&srv, &id);
    };
    let _ = sock.set_nodelay(true);
    let peer = ip.clone();
    let local = sock.local_addr().map(|a| a.ip().to_string()).unwrap_or_default();
    let (mut rd, wr) = sock.into_split();
    let table = &srv.cluster.link_table;
    let ob = table.open_outbound(&id);
    let (lid, kill) = (ob.id, ob.kill.clone());
    tokio::spawn(writer(wr, ob));
    set_link(&srv, &id, true);
    let mut next_ping = tokio::time::Instant::now();
    let mut rbuf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    'link: loop {
        let n = tokio::select! {
            _ = kill.cancelled() => break,
            _ = tokio::time::sleep_until(next_ping) => {
                let meet = {
                    let mut st = srv.cluster.state.write();
                    let Some(n) = st.nodes.get_mut(&id) else { break };
                    let meet = n.flags & MEET_FLAG != 0;
                    n.flags &= !MEET_FLAG;
                    if n.ping_sent == 0 {
                        n.ping_sent = now_ms();
                    }
                    meet
                };
                let msg = build(&srv, if meet { MEET } else { PING }, Some(&id));
                send_limited(&srv, Some(&id), msg);
                next_ping = tokio::time::Instant::now() + Duration::from_secs(1);
                continue;
            }
            r = rd.read(&mut chunk) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            },
        };
        // `read` is cancel-safe: bytes collect in `rbuf` and whole messages are taken from its
        // front.
        rbuf.extend_from_slice(&chunk[..n]);
        loop {
            let m = match take_msg(&mut rbuf) {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(_) => break 'link,
            };
            table.count_received(m.kind);
            let (_, renamed) = process(&srv, &m, Some(&id), &peer, &local);
            match renamed {
                Some(new) if new.is_empty() => break 'link,
                Some(new) => {
                    let mut l = srv.cluster.links.lock();
                    l.remove(&id);
                    if !l.insert(new.clone()) {
                        // Another link to that node already runs: leave it to that one.
                        drop(l);
                        table.close(lid);
                        return;
                    }
                    table.rename(lid, &new);
                    id = new;
                }
                None => {}
            }
        }
    }
    table.close(lid);
    set_link(&srv, &id, false);
    done(&srv, &id);
}

/// Queue a message on the outbound link(s), under cluster-link-sendbuf-limit.
pub(crate) fn send_limited(srv: &Node, to: Option<&str>, msg: Vec<u8>) {
    let limit = srv.config.get_i64("cluster-link-sendbuf-limit").max(0) as usize;
    srv.cluster.link_table.send(to, msg, limit);
}

fn set_link(srv: &Node, id: &str, up: bool) {
    if let Some(n) = srv.cluster.state.write().nodes.get_mut(id) {
        n.link = up;
    }
}

fn done(srv: &Node, id: &str) {
    srv.cluster.links.lock().remove(id);
}

/// Every 100 ms: a link to every node that has none; handshakes that did not complete within
/// the node timeout (at least 1 s) are dropped, as Redis's clusterCron does.
fn cron_round(srv: &Arc<Node>) {
    let rt = tokio::runtime::Handle::current();
    let _g = rt.enter();
    cron(srv);
}

fn cron(srv: &Arc<Node>) {
    let now = now_ms();
    let hs_timeout = srv.config.get_i64("cluster-node-timeout").max(1000) as u64;
    let mut start = Vec::new();
    {
        let mut st = srv.cluster.state.write();
        let me = st.myself.clone();
        let links = srv.cluster.links.lock();
        st.nodes.retain(|id, n| {
            n.flags & HANDSHAKE == 0 || n.ctime == 0 || now.saturating_sub(n.ctime) < hs_timeout || links.contains(id)
        });
        for (id, n) in &st.nodes {
            if *id != me && n.flags & NOADDR == 0 && !links.contains(id) && !n.ip.is_empty() {
                start.push(id.clone());
            }
        }
    }
    for id in start {
        srv.cluster.links.lock().insert(id.clone());
        tokio::spawn(outbound(srv.clone(), id));
    }
    if let Some(failed) = detect_failures(srv, now) {
        for id in failed {
            let mut m = header(srv, FAIL_MSG);
            m.fail_node = id;
            super::failover::send(srv, None, m.encode());
        }
    }
    super::failover::cron(srv, now);
    super::pubsub::drop_unserved_channels(srv);
    super::redirect_blocked_clients(srv);
    super::migration::cron(srv, now);
}

/// PFAIL for nodes that did not answer a PING within the node timeout; FAIL (to broadcast) when
/// a majority of the slot-owning masters agree (markNodeAsFailingIfNeeded).
fn detect_failures(srv: &Node, now: u64) -> Option<Vec<String>> {
    let timeout = srv.config.get_i64("cluster-node-timeout").max(0) as u64;
    let mut st = srv.cluster.state.write();
    let mut changed = false;
    let me = st.myself.clone();
    let me_master = st.me().flags & MASTER != 0;
    // The quorum walks the slot table: only when some node is in PFAIL.
    let quorum = if st.nodes.values().any(|n| n.flags & PFAIL != 0) { st.size() / 2 + 1 } else { usize::MAX };
    let mut failed = Vec::new();
    for (id, n) in st.nodes.iter_mut() {
        if *id == me || n.flags & HANDSHAKE != 0 {
            continue;
        }
        if n.ping_sent != 0 && now.saturating_sub(n.ping_sent) > timeout && n.flags & (PFAIL | FAIL) == 0 {
            n.flags |= PFAIL;
            changed = true;
        }
        n.fail_reports.retain(|(_, t)| now.saturating_sub(*t) <= 2 * timeout);
        if n.flags & PFAIL != 0 && n.flags & FAIL == 0 && n.fail_reports.len() + me_master as usize >= quorum {
            n.flags = (n.flags | FAIL) & !PFAIL;
            n.fail_time = now;
            failed.push(id.clone());
            changed = true;
        }
    }
    drop(st);
    if changed {
        let _ = srv.cluster.save_nosync();
    }
    Some(failed)
}

/// Redis's clusterStartHandshake: a node under a random name, to be renamed by its PONG.
pub fn start_handshake(st: &mut ClusterState, ip: &str, port: u16, cport: u16) -> bool {
    if st.nodes.values().any(|n| n.flags & HANDSHAKE != 0 && n.ip == ip && n.port == port && n.cport == cport) {
        return false;
    }
    let n = ClusterNode {
        id: random_id(),
        ip: ip.to_string(),
        port,
        cport,
        flags: HANDSHAKE | MEET_FLAG,
        ctime: now_ms(),
        ..Default::default()
    };
    st.nodes.insert(n.id.clone(), n);
    true
}

/// The replication offset this node announces (replicationGetSlaveOffset for a replica: 0
/// during a full sync, whose transfer and load discard the old history; CLUSTER SLOTS hides a
/// replica at offset 0).
pub(crate) fn my_repl_offset(srv: &Node, replica: bool) -> u64 {
    if replica && srv.repl.replica.lock().state == crate::replication::LinkState::Transfer {
        return 0;
    }
    srv.repl.master_offset()
}

/// clusterBuildMessageHdr.
pub(crate) fn header(srv: &Node, kind: u16) -> Msg {
    let full = srv.config.hot.cluster_full_coverage.load(Relaxed);
    let st = srv.cluster.state.read();
    let me = st.me();
    let master_id = me.master.clone().unwrap_or_else(|| me.id.clone());
    let mut m = Msg {
        kind,
        port: me.port,
        current_epoch: st.current_epoch,
        config_epoch: st.node_epoch(me),
        offset: my_repl_offset(srv, me.flags & SLAVE != 0),
        sender: me.id.clone(),
        slaveof: me.master.clone().unwrap_or_default(),
        myip: srv.config.get("cluster-announce-ip").unwrap_or_default(),
        cport: me.cport,
        flags: me.flags,
        state: if srv.cluster.state.state_ok(&st, full) { 0 } else { 1 },
        hostname: me.hostname.clone(),
        ..Default::default()
    };
    // A master pausing its clients for a manual failover says so in every message.
    if me.flags & MASTER != 0 && srv.cluster.election.lock().mf_end != 0 {
        m.mflags[0] |= super::bus::FLAG0_PAUSED;
    }
    for j in st.slots.of(&master_id) {
        m.claim(j);
    }
    m
}

/// Our PING/PONG/MEET (clusterBuildMessageHdr + clusterSendPing with a few gossip entries).
pub(crate) fn build(srv: &Node, kind: u16, to: Option<&str>) -> Vec<u8> {
    let mut m = header(srv, kind);
    let st = srv.cluster.state.read();
    let me = st.me();
    let mut others: Vec<&ClusterNode> = st
        .nodes
        .values()
        .filter(|n| n.id != me.id && Some(n.id.as_str()) != to && n.flags & (HANDSHAKE | NOADDR) == 0)
        .collect();
    // Random nodes (clusterSendPing picks them at random: with a fixed choice, nodes met
    // along a chain of MEETs never hear of each other), those in PFAIL first, so that failure
    // reports spread (Redis adds all of them).
    {
        use rand::seq::SliceRandom;
        others.shuffle(&mut rand::thread_rng());
    }
    others.sort_by_key(|n| n.flags & PFAIL == 0);
    let wanted = (st.nodes.len() / 10).max(3).min(others.len());
    for n in others.into_iter().take(wanted) {
        m.gossip.push(Gossip {
            name: n.id.clone(),
            ping_sent: (n.ping_sent / 1000) as u32,
            pong_received: (n.pong_recv / 1000) as u32,
            ip: n.ip.clone(),
            port: n.port,
            cport: n.cport,
            flags: n.flags,
            pport: 0,
        });
    }
    m.encode()
}

/// Process one message (clusterProcessPacket). `link` is the node of the outbound link it came
/// on. Returns whether to answer PONG, and for an outbound link its node's new id after a
/// handshake (empty: close the link).
fn process(srv: &Arc<Node>, m: &Msg, link: Option<&str>, peer_ip: &str, local_ip: &str) -> (bool, Option<String>) {
    if m.kind as i64 == srv.cluster.drop_filter.load(Relaxed) {
        crate::persistence::log_line('#', "Dropping packet that matches debug drop filter");
        return (false, None);
    }
    // Any message from a known node: its epochs and replication offset.
    let epochs_changed = {
        let mut st = srv.cluster.state.write();
        let before = (st.current_epoch, st.nodes.get(&m.sender).map(|n| n.config_epoch));
        super::failover::on_header(srv, &mut st, m);
        before != (st.current_epoch, st.nodes.get(&m.sender).map(|n| n.config_epoch))
    };
    if epochs_changed {
        let _ = srv.cluster.save_nosync();
    }
    match m.kind {
        FAILOVER_AUTH_REQUEST => {
            super::failover::on_auth_request(srv, m);
            return (false, None);
        }
        FAILOVER_AUTH_ACK => {
            super::failover::on_auth_ack(srv, m);
            return (false, None);
        }
        MFSTART => {
            super::failover::on_mfstart(srv, m);
            return (false, None);
        }
        UPDATE => {
            on_update(srv, m);
            return (false, None);
        }
        PUBLISH | PUBLISHSHARD => {
            super::pubsub::on_message(srv, m);
            return (false, None);
        }
        _ => {}
    }
    if m.kind == FAIL_MSG {
        let mut st = srv.cluster.state.write();
        let known = st.nodes.get(&m.sender).is_some_and(|n| n.flags & HANDSHAKE == 0);
        let me = st.myself.clone();
        if known && m.fail_node != me {
            if let Some(n) = st.nodes.get_mut(&m.fail_node) {
                if n.flags & FAIL == 0 {
                    n.flags = (n.flags | FAIL) & !PFAIL;
                    n.fail_time = now_ms();
                }
            }
        }
        drop(st);
        let _ = srv.cluster.save_nosync();
        return (false, None);
    }
    if !matches!(m.kind, PING | PONG | MEET) {
        return (false, None);
    }
    let announced = !srv.config.get("cluster-announce-ip").unwrap_or_default().is_empty();
    let mut renamed = None;
    let mut slots_update = SlotsUpdate::default();
    let mut stale_claim = None;
    let mut slots_changed = false;
    let changed = {
        let mut st = srv.cluster.state.write();
        let before = st.fingerprint();
        let known = st.nodes.get(&m.sender).is_some_and(|n| n.flags & HANDSHAKE == 0);
        let sender_ip = if m.myip.is_empty() { peer_ip.to_string() } else { m.myip.clone() };
        if m.kind != PONG {
            if (m.kind == MEET || st.me().ip.is_empty()) && !announced && !local_ip.is_empty() {
                st.me_mut().ip = local_ip.to_string();
            }
            if !known && m.kind == MEET {
                if start_handshake(&mut st, &sender_ip, m.port, m.cport) {
                    // Redis creates it with HANDSHAKE only: it PINGs, not MEETs, back.
                    if let Some(n) = st
                        .nodes
                        .values_mut()
                        .find(|n| n.flags & HANDSHAKE != 0 && n.ip == sender_ip && n.port == m.port)
                    {
                        n.flags &= !MEET_FLAG;
                    }
                }
                gossip(&mut st, m, &srv.cluster.forgotten);
            }
        }
        if let Some(lid) = link {
            let in_handshake = st.nodes.get(lid).is_some_and(|n| n.flags & HANDSHAKE != 0);
            if m.kind == PONG && in_handshake {
                if known || m.sender == st.myself {
                    st.nodes.remove(lid);
                    renamed = Some(String::new());
                } else if let Some(mut n) = st.nodes.remove(lid) {
                    n.id = m.sender.clone();
                    n.flags &= !(HANDSHAKE | MEET_FLAG);
                    n.flags |= m.flags & (MASTER | SLAVE);
                    st.nodes.insert(n.id.clone(), n);
                    renamed = Some(m.sender.clone());
                }
            }
            let lid = renamed.clone().filter(|r| !r.is_empty()).unwrap_or_else(|| lid.to_string());
            if m.kind == PONG {
                let timeout = srv.config.get_i64("cluster-node-timeout").max(0) as u64;
                let has_slots = st.slots.owns_any(&lid);
                if let Some(n) = st.nodes.get_mut(&lid) {
                    n.pong_recv = now_ms();
                    n.ping_sent = 0;
                    n.flags &= !PFAIL;
                    // clearNodeFailureIfNeeded: at once for a replica or a master without slots,
                    // else after twice the node timeout.
                    if n.flags & FAIL != 0
                        && (n.flags & SLAVE != 0 || !has_slots || now_ms().saturating_sub(n.fail_time) > 2 * timeout)
                    {
                        n.flags &= !FAIL;
                    }
                }
            }
        }
        // Only a sender known before this message: the PONG that ends a handshake renames the
        // node and nothing more; its slots, role, epoch and gossip come with its next message
        // (Redis looks the sender up before the rename). A node whose PINGs are all dropped
        // (DEBUG DROP-CLUSTER-PACKET-FILTER) stays known but without slots, as in Redis.
        if known && m.sender != st.myself {
            let master = (!m.slaveof.is_empty()).then(|| m.slaveof.clone());
            let n = st.nodes.get_mut(&m.sender).unwrap();
            let demoted = master.is_some() && n.flags & MASTER != 0;
            n.flags = (n.flags & !(MASTER | SLAVE)) | if master.is_some() { SLAVE } else { MASTER };
            // A replica that will not fail over says so in its flags (cluster-replica-no-failover).
            n.flags = (n.flags & !NOFAILOVER) | (m.flags & NOFAILOVER);
            if demoted {
                // A master turned into a replica: its slots are unassigned until their new
                // owner claims them (clusterDelNodeSlots), whatever epoch the replica now
                // advertises (its master's).
                if st.slots.reassign(&m.sender, None) > 0 {
                    slots_changed = true;
                }
            }
            let n = st.nodes.get_mut(&m.sender).unwrap();
            let old_master = std::mem::replace(&mut n.master, master.clone());
            super::migration::master_changed(&mut st, &m.sender, old_master.as_deref(), master.as_deref());
            let n = st.nodes.get_mut(&m.sender).unwrap();
            n.hostname = m.hostname.clone();
            if m.kind == PING && n.ip != sender_ip && !sender_ip.is_empty() {
                n.ip = sender_ip.clone();
            }
            n.port = m.port;
            n.cport = m.cport;
            if m.slaveof.is_empty() {
                let allow = srv.config.get_bool("cluster-allow-replica-migration");
                slots_update =
                    update_slots(&mut st, &m.sender, m.config_epoch, |j| m.claims(j), allow, &mut slots_changed);
                stale_claim = stale_owner(&st, m);
                // clusterHandleConfigEpochCollision: the smaller node id bumps its epoch.
                let me = st.me().clone();
                if me.flags & MASTER != 0 && m.config_epoch == me.config_epoch && m.sender.as_str() > me.id.as_str() {
                    st.current_epoch += 1;
                    let e = st.current_epoch;
                    st.me_mut().config_epoch = e;
                }
            }
            gossip(&mut st, m, &srv.cluster.forgotten);
        }
        slots_changed || st.fingerprint() != before
    };
    if changed {
        if let Err(e) = srv.cluster.save_nosync() {
            crate::persistence::log_line('#', &format!("Could not save the cluster config file: {}", e));
        }
    }
    if let Some(owner) = stale_claim {
        send_update(srv, &m.sender, &owner);
    }
    slots_update.apply(srv);
    (m.kind != PONG, renamed)
}

/// The owner (with a greater config epoch) of a slot that a master's message claims, if any:
/// that master's view is stale and it gets an UPDATE about the owner.
fn stale_owner(st: &ClusterState, m: &Msg) -> Option<String> {
    (0..SLOTS).filter(|&j| m.claims(j)).find_map(|j| {
        let owner = st.slots.get(j).filter(|o| *o != m.sender)?;
        let n = st.nodes.get(owner)?;
        (n.config_epoch > m.config_epoch).then(|| owner.to_string())
    })
}

/// clusterSendUpdate: tell `to` the configuration (epoch and slots) of node `about`.
fn send_update(srv: &Node, to: &str, about: &str) {
    let mut msg = header(srv, UPDATE);
    {
        let st = srv.cluster.state.read();
        let Some(n) = st.nodes.get(about) else { return };
        let mut slots = Box::new([0u8; SLOTS / 8]);
        for j in st.slots.of(about) {
            slots[j / 8] |= 1 << (j & 7);
        }
        msg.update = Some(Box::new(UpdateData { config_epoch: n.config_epoch, node: about.to_string(), slots }));
    }
    super::failover::send(srv, Some(to), msg.encode());
}

/// UPDATE: a node's newer configuration (a master that was failed over learns who owns its
/// slots now, and follows it).
fn on_update(srv: &Arc<Node>, m: &Msg) {
    let Some(u) = m.update.as_deref() else { return };
    let allow = srv.config.get_bool("cluster-allow-replica-migration");
    let slots_update = {
        let mut st = srv.cluster.state.write();
        let Some(n) = st.nodes.get_mut(&u.node) else { return };
        if n.config_epoch >= u.config_epoch {
            return;
        }
        n.config_epoch = u.config_epoch;
        if n.flags & SLAVE != 0 {
            n.flags = (n.flags & !SLAVE) | MASTER;
            let old = n.master.take();
            super::migration::master_changed(&mut st, &u.node, old.as_deref(), None);
        }
        update_slots(&mut st, &u.node, u.config_epoch, |j| u.claims(j), allow, &mut false)
    };
    let _ = srv.cluster.save_nosync();
    slots_update.apply(srv);
}

/// clusterUpdateSlotsConfigWith: claimed slots go to `sender` when unassigned or held with an
/// older config epoch (slots we are importing are left alone). Returns the node to follow when
/// our master (or myself) lost its last slot to it (Redis's "newmaster"; with
/// cluster-allow-replica-migration off, only when all its slots went to that one node), and
/// the slots myself lost (their keys are deleted unless myself follows the new owner).
fn update_slots(
    st: &mut ClusterState,
    sender: &str,
    epoch: u64,
    claims: impl Fn(usize) -> bool,
    allow_replica_migration: bool,
    changed: &mut bool,
) -> SlotsUpdate {
    let mut out = SlotsUpdate::default();
    if sender == st.myself {
        return out;
    }
    let me = st.me();
    let curmaster = if me.flags & MASTER != 0 { Some(me.id.clone()) } else { me.master.clone() };
    let (mut sender_slots, mut migrated_ours, mut newmaster) = (0, 0, false);
    for j in 0..SLOTS {
        if !claims(j) {
            continue;
        }
        sender_slots += 1;
        if st.slots.is(j, sender) || st.importing.contains_key(&(j as u16)) {
            continue;
        }
        let cur = st.slots.get(j);
        let older = cur.and_then(|id| st.nodes.get(id)).is_none_or(|o| o.config_epoch < epoch);
        if older {
            if cur == Some(st.myself.as_str()) {
                out.lost.push(j);
            }
            if cur.is_some() && cur == curmaster.as_deref() {
                newmaster = true;
                migrated_ours += 1;
            }
            st.slots.set(j, Some(sender));
            *changed = true;
        }
    }
    let cur_left = curmaster.as_deref().map(|c| st.num_slots(c)).unwrap_or(0);
    out.new_master = (newmaster && cur_left == 0 && (allow_replica_migration || sender_slots == migrated_ours))
        .then(|| sender.to_string());
    out
}

/// What `update_slots` changed that the caller acts on once the state lock is released.
#[derive(Default)]
struct SlotsUpdate {
    new_master: Option<String>,
    lost: Vec<usize>,
}

impl SlotsUpdate {
    /// Follow the new master, or else (still a master of other slots) drop the keys of the
    /// slots lost: they are served elsewhere now (Redis's dirty slots).
    fn apply(self, srv: &Arc<Node>) {
        if let Some(nm) = self.new_master {
            super::failover::reconfigure_as_replica_of(srv, &nm);
            return;
        }
        for j in self.lost {
            super::slot_keys::del_keys_in_slot(srv, j);
        }
    }
}

/// clusterProcessGossipSection: failure reports from masters, and nodes to discover (not those
/// CLUSTER FORGET blacklisted).
fn gossip(st: &mut ClusterState, m: &Msg, forgotten: &parking_lot::Mutex<std::collections::HashMap<String, u64>>) {
    let sender_master = st.nodes.get(&m.sender).is_some_and(|n| n.flags & MASTER != 0 && n.flags & HANDSHAKE == 0);
    if sender_master {
        let now = now_ms();
        for g in &m.gossip {
            if g.name == st.myself {
                continue;
            }
            if let Some(n) = st.nodes.get_mut(&g.name) {
                n.fail_reports.retain(|(r, _)| *r != m.sender);
                if g.flags & (PFAIL | FAIL) != 0 {
                    n.fail_reports.push((m.sender.clone(), now));
                }
            }
        }
    }
    for g in &m.gossip {
        if g.name == st.myself || st.nodes.contains_key(&g.name) || g.flags & NOADDR != 0 || g.ip.is_empty() {
            continue;
        }
        if forgotten.lock().get(&g.name).is_some_and(|&until| until > now_ms()) {
            continue;
        }
        start_handshake(st, &g.ip, g.port, g.cport);
    }
}
