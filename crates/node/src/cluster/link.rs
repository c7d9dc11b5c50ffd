//! The cluster bus links (a first cut of Redis's clusterCron / clusterProcessPacket): a listener
//! on the bus port answering PING/MEET with PONG, one outbound link per known node that sends
//! MEET or PING every second, the handshake (a node met under a random name is renamed by its
//! first PONG), slot ownership and epochs learned from PING/PONG headers, gossip that starts
//! handshakes with nodes we do not know. Not yet: PFAIL/FAIL, failover, UPDATE, PUBLISH.

use super::bus::{Gossip, Msg, FAIL as FAIL_MSG, MEET, PING, PONG};
use super::slot::SLOTS;
use super::state::{random_id, ClusterNode, ClusterState, FAIL, HANDSHAKE, MASTER, MEET_FLAG, NOADDR, PFAIL, SLAVE};
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

async fn read_msg(sock: &mut TcpStream) -> std::io::Result<Msg> {
    let mut head = [0u8; 8];
    sock.read_exact(&mut head).await?;
    let bad = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
    let len = Msg::frame_len(&head).ok_or_else(|| bad("bad signature".into()))?;
    if !(8..=(1 << 20)).contains(&len) {
        return Err(bad("bad length".into()));
    }
    let mut buf = head.to_vec();
    buf.resize(len, 0);
    sock.read_exact(&mut buf[8..]).await?;
    Msg::decode(&buf).map_err(bad)
}

/// An inbound link: answer PING and MEET with PONG.
async fn inbound(srv: Arc<Node>, mut sock: TcpStream) {
    let peer = sock.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default();
    let local = sock.local_addr().map(|a| a.ip().to_string()).unwrap_or_default();
    while let Ok(m) = read_msg(&mut sock).await {
        let (reply, _) = process(&srv, &m, None, &peer, &local);
        if reply {
            let pong = build(&srv, PONG, Some(&m.sender));
            if sock.write_all(&pong).await.is_err() {
                return;
            }
        }
    }
}

/// One outbound link to node `id` (renamed by the handshake): MEET or PING now, then PING every
/// second, PONGs processed as they come.
async fn outbound(srv: Arc<Node>, mut id: String) {
    let (ip, cport) = {
        let st = srv.cluster.state.read();
        match st.nodes.get(&id) {
            Some(n) => (n.ip.clone(), n.cport),
            None => return done(&srv, &id),
        }
    };
    let timeout = Duration::from_millis(srv.config.get_i64("cluster-node-timeout").clamp(1000, 60000) as u64);
    let Ok(Ok(mut sock)) = tokio::time::timeout(timeout, TcpStream::connect((ip.as_str(), cport))).await else {
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
    set_link(&srv, &id, true);
    let mut bcast = srv.cluster.broadcast.subscribe();
    let mut next_ping = tokio::time::Instant::now();
    loop {
        while let Ok(b) = bcast.try_recv() {
            if sock.write_all(&b).await.is_err() {
                break;
            }
        }
        if tokio::time::Instant::now() >= next_ping {
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
            if sock.write_all(&msg).await.is_err() {
                break;
            }
            next_ping = tokio::time::Instant::now() + Duration::from_secs(1);
        }
        match tokio::time::timeout(Duration::from_millis(200), read_msg(&mut sock)).await {
            Err(_) => continue,
            Ok(Err(_)) => break,
            Ok(Ok(m)) => {
                let (_, renamed) = process(&srv, &m, Some(&id), &peer, &local);
                match renamed {
                    Some(new) if new.is_empty() => break,
                    Some(new) => {
                        let mut l = srv.cluster.links.lock();
                        l.remove(&id);
                        if !l.insert(new.clone()) {
                            // Another link to that node already runs: leave it to that one.
                            drop(l);
                            return;
                        }
                        id = new;
                    }
                    None => {}
                }
            }
        }
    }
    set_link(&srv, &id, false);
    done(&srv, &id);
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
            let _ = srv.cluster.broadcast.send(m.encode());
        }
    }
}

/// PFAIL for nodes that did not answer a PING within the node timeout; FAIL (to broadcast) when
/// a majority of the slot-owning masters agree (markNodeAsFailingIfNeeded).
fn detect_failures(srv: &Node, now: u64) -> Option<Vec<String>> {
    let timeout = srv.config.get_i64("cluster-node-timeout").max(0) as u64;
    let mut st = srv.cluster.state.write();
    let mut changed = false;
    let me = st.myself.clone();
    let me_master = st.me().flags & MASTER != 0;
    let quorum = st.size() / 2 + 1;
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

/// clusterBuildMessageHdr.
fn header(srv: &Node, kind: u16) -> Msg {
    let full = srv.config.hot.cluster_full_coverage.load(Relaxed);
    let st = srv.cluster.state.read();
    let me = st.me();
    let master_id = me.master.clone().unwrap_or_else(|| me.id.clone());
    let mut m = Msg {
        kind,
        port: me.port,
        current_epoch: st.current_epoch,
        config_epoch: st.node_epoch(me),
        offset: srv.repl.master_offset(),
        sender: me.id.clone(),
        slaveof: me.master.clone().unwrap_or_default(),
        myip: srv.config.get("cluster-announce-ip").unwrap_or_default(),
        cport: me.cport,
        flags: me.flags,
        state: if st.state_ok(full) { 0 } else { 1 },
        hostname: me.hostname.clone(),
        ..Default::default()
    };
    for (j, s) in st.slots.iter().enumerate().take(SLOTS) {
        if s.as_deref() == Some(master_id.as_str()) {
            m.claim(j);
        }
    }
    m
}

/// Our PING/PONG/MEET (clusterBuildMessageHdr + clusterSendPing with a few gossip entries).
fn build(srv: &Node, kind: u16, to: Option<&str>) -> Vec<u8> {
    let mut m = header(srv, kind);
    let st = srv.cluster.state.read();
    let me = st.me();
    let mut others: Vec<&ClusterNode> = st
        .nodes
        .values()
        .filter(|n| n.id != me.id && Some(n.id.as_str()) != to && n.flags & (HANDSHAKE | NOADDR) == 0)
        .collect();
    // Nodes in PFAIL first, so that failure reports spread (Redis adds them all).
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

/// Process one message (clusterProcessPacket, PING/PONG/MEET only). `link` is the node of the
/// outbound link it came on. Returns whether to answer PONG, and for an outbound link its
/// node's new id after a handshake (empty: close the link).
fn process(srv: &Node, m: &Msg, link: Option<&str>, peer_ip: &str, local_ip: &str) -> (bool, Option<String>) {
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
    let changed = {
        let mut st = srv.cluster.state.write();
        let before = st.fingerprint();
        let known = st.nodes.get(&m.sender).is_some_and(|n| n.flags & HANDSHAKE == 0);
        if known {
            st.current_epoch = st.current_epoch.max(m.current_epoch);
            let n = st.nodes.get_mut(&m.sender).unwrap();
            n.config_epoch = n.config_epoch.max(m.config_epoch);
        }
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
                gossip(&mut st, m);
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
                    n.config_epoch = m.config_epoch;
                    st.nodes.insert(n.id.clone(), n);
                    renamed = Some(m.sender.clone());
                }
            }
            let lid = renamed.clone().filter(|r| !r.is_empty()).unwrap_or_else(|| lid.to_string());
            if m.kind == PONG {
                let timeout = srv.config.get_i64("cluster-node-timeout").max(0) as u64;
                let has_slots = st.slots.iter().any(|s| s.as_deref() == Some(lid.as_str()));
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
        let now_known = st.nodes.get(&m.sender).is_some_and(|n| n.flags & HANDSHAKE == 0);
        if now_known && m.sender != st.myself {
            let master = (!m.slaveof.is_empty()).then(|| m.slaveof.clone());
            let n = st.nodes.get_mut(&m.sender).unwrap();
            n.flags = (n.flags & !(MASTER | SLAVE)) | if master.is_some() { SLAVE } else { MASTER };
            n.master = master;
            n.hostname = m.hostname.clone();
            if m.kind == PING && n.ip != sender_ip && !sender_ip.is_empty() {
                n.ip = sender_ip.clone();
            }
            n.port = m.port;
            n.cport = m.cport;
            if m.slaveof.is_empty() {
                update_slots(&mut st, m);
                // clusterHandleConfigEpochCollision: the smaller node id bumps its epoch.
                let me = st.me().clone();
                if me.flags & MASTER != 0 && m.config_epoch == me.config_epoch && m.sender.as_str() > me.id.as_str() {
                    st.current_epoch += 1;
                    let e = st.current_epoch;
                    st.me_mut().config_epoch = e;
                }
            }
            gossip(&mut st, m);
        }
        st.fingerprint() != before
    };
    if changed {
        if let Err(e) = srv.cluster.save_nosync() {
            crate::persistence::log_line('#', &format!("Could not save the cluster config file: {}", e));
        }
    }
    (m.kind != PONG, renamed)
}

/// clusterUpdateSlotsConfigWith: claimed slots go to the sender when unassigned or held with an
/// older config epoch (slots we are importing are left alone).
fn update_slots(st: &mut ClusterState, m: &Msg) {
    for j in 0..SLOTS {
        if !m.claims(j) {
            continue;
        }
        let cur = st.slots[j].clone();
        if cur.as_deref() == Some(m.sender.as_str()) || st.importing.contains_key(&(j as u16)) {
            continue;
        }
        let older = match cur.as_ref().and_then(|id| st.nodes.get(id)) {
            None => true,
            Some(o) => o.config_epoch < m.config_epoch,
        };
        if older {
            st.slots[j] = Some(m.sender.clone());
        }
    }
}

/// clusterProcessGossipSection: failure reports from masters, and nodes to discover.
fn gossip(st: &mut ClusterState, m: &Msg) {
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
        start_handshake(st, &g.ip, g.port, g.cport);
    }
}
