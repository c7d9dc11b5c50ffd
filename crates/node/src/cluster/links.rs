//! The bus links as CLUSTER LINKS sees them (Redis's clusterLink): one outbound link to every
//! known node ("to", it carries what we send) and the inbound links accepted from them ("from",
//! named after the node once its first message arrives). Each outbound link has its own send
//! queue; a queue over `cluster-link-sendbuf-limit` frees the link, as Redis's
//! clusterNodeCronFreeLinkOnBufferLimitReached, and the cron opens a new one.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio_util::sync::CancellationToken;

/// CLUSTERMSG_TYPE_COUNT.
pub const MSG_TYPES: usize = 11;

/// One link's entry.
struct Entry {
    inbound: bool,
    /// The node's id (a random one while in handshake); empty for an inbound link not yet named.
    node: String,
    ctime: u64,
    /// Bytes queued and not yet written (the sndbuf).
    queued: Arc<AtomicUsize>,
    tx: Option<UnboundedSender<Vec<u8>>>,
    kill: CancellationToken,
}

/// What an outbound link's tasks hold.
pub struct Outbound {
    pub id: u64,
    pub rx: UnboundedReceiver<Vec<u8>>,
    pub queued: Arc<AtomicUsize>,
    pub kill: CancellationToken,
}

/// One row of CLUSTER LINKS.
pub struct LinkRow {
    pub inbound: bool,
    pub node: String,
    pub ctime: u64,
    pub queued: usize,
}

#[derive(Default)]
pub struct LinkTable {
    next: AtomicU64,
    links: Mutex<HashMap<u64, Entry>>,
    /// total_cluster_links_buffer_limit_exceeded.
    pub limit_exceeded: AtomicU64,
    /// cluster_stats_messages_<type>_sent / _received.
    pub sent: [AtomicU64; MSG_TYPES],
    pub received: [AtomicU64; MSG_TYPES],
}

/// A bus message's type (bytes 12..14 of the header).
fn msg_type(b: &[u8]) -> usize {
    b.get(12..14).map(|t| u16::from_be_bytes([t[0], t[1]]) as usize).unwrap_or(usize::MAX)
}

impl LinkTable {
    pub fn open_outbound(&self, node: &str) -> Outbound {
        let id = self.next.fetch_add(1, Relaxed);
        let (tx, rx) = unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let kill = CancellationToken::new();
        let e = Entry {
            inbound: false,
            node: node.to_string(),
            ctime: crate::node::now_ms(),
            queued: queued.clone(),
            tx: Some(tx),
            kill: kill.clone(),
        };
        self.links.lock().insert(id, e);
        Outbound { id, rx, queued, kill }
    }

    pub fn open_inbound(&self) -> (u64, CancellationToken) {
        let id = self.next.fetch_add(1, Relaxed);
        let kill = CancellationToken::new();
        let e = Entry {
            inbound: true,
            node: String::new(),
            ctime: crate::node::now_ms(),
            queued: Default::default(),
            tx: None,
            kill: kill.clone(),
        };
        self.links.lock().insert(id, e);
        (id, kill)
    }

    pub fn close(&self, id: u64) {
        if let Some(e) = self.links.lock().remove(&id) {
            e.kill.cancel();
        }
    }

    /// The handshake renamed an outbound link's node.
    pub fn rename(&self, id: u64, node: &str) {
        if let Some(e) = self.links.lock().get_mut(&id) {
            e.node = node.to_string();
        }
    }

    /// An inbound link's first message from a known node names it; an older inbound link from
    /// that node is freed (setClusterNodeToInboundClusterLink).
    pub fn name_inbound(&self, id: u64, node: &str) {
        let mut l = self.links.lock();
        match l.get(&id) {
            Some(e) if e.node.is_empty() => {}
            _ => return,
        }
        let old: Vec<u64> =
            l.iter().filter(|(k, e)| **k != id && e.inbound && e.node == node).map(|(k, _)| *k).collect();
        for k in old {
            if let Some(e) = l.remove(&k) {
                e.kill.cancel();
            }
        }
        if let Some(e) = l.get_mut(&id) {
            e.node = node.to_string();
        }
    }

    /// Whether an inbound link is still unnamed.
    pub fn inbound_unnamed(&self, id: u64) -> bool {
        self.links.lock().get(&id).is_some_and(|e| e.node.is_empty())
    }

    /// Queue `msg` on the outbound link of node `to` (None: every outbound link). A link whose
    /// queue goes over `limit` bytes (0: no limit) is freed.
    pub fn send(&self, to: Option<&str>, msg: Vec<u8>, limit: usize) {
        let t = msg_type(&msg);
        let mut l = self.links.lock();
        let mut over = Vec::new();
        for (id, e) in l.iter() {
            if e.inbound || to.is_some_and(|t| t != e.node) {
                continue;
            }
            let Some(tx) = &e.tx else { continue };
            let q = e.queued.fetch_add(msg.len(), Relaxed) + msg.len();
            if tx.send(msg.clone()).is_err() {
                e.queued.fetch_sub(msg.len(), Relaxed);
                continue;
            }
            if let Some(c) = self.sent.get(t) {
                c.fetch_add(1, Relaxed);
            }
            if limit > 0 && q > limit {
                over.push(*id);
            }
        }
        for id in over {
            if let Some(e) = l.remove(&id) {
                crate::persistence::log_line(
                    '#',
                    &format!(
                        "Freeing cluster link(to node {}, used memory: {}) due to exceeding send buffer memory limit.",
                        e.node,
                        e.queued.load(Relaxed)
                    ),
                );
                e.kill.cancel();
                self.limit_exceeded.fetch_add(1, Relaxed);
            }
        }
    }

    /// A PONG written straight to an inbound link counts as sent.
    pub fn count_sent(&self, msg: &[u8]) {
        if let Some(c) = self.sent.get(msg_type(msg)) {
            c.fetch_add(1, Relaxed);
        }
    }

    pub fn count_received(&self, kind: u16) {
        if let Some(c) = self.received.get(kind as usize) {
            c.fetch_add(1, Relaxed);
        }
    }

    /// Every named link (CLUSTER LINKS leaves out inbound links not yet named, as Redis lists
    /// only links set on a node), grouped by node.
    pub fn rows(&self) -> Vec<LinkRow> {
        let l = self.links.lock();
        let mut rows: Vec<(u64, LinkRow)> = l
            .iter()
            .filter(|(_, e)| !e.node.is_empty())
            .map(|(id, e)| {
                (
                    *id,
                    LinkRow {
                        inbound: e.inbound,
                        node: e.node.clone(),
                        ctime: e.ctime,
                        queued: e.queued.load(Relaxed),
                    },
                )
            })
            .collect();
        // Per node, its "to" link then its "from" link, as Redis walks its nodes (clients pair
        // them: redis-py's test_cluster_links).
        rows.sort_by(|(a, x), (b, y)| (&x.node, x.inbound, a).cmp(&(&y.node, y.inbound, b)));
        rows.into_iter().map(|(_, r)| r).collect()
    }

    /// mem_cluster_links: what the send queues hold.
    pub fn memory(&self) -> usize {
        self.links.lock().values().map(|e| e.queued.load(Relaxed)).sum()
    }

    /// Free every link (CLUSTER RESET, shutdown).
    pub fn close_all(&self) {
        for (_, e) in self.links.lock().drain() {
            e.kill.cancel();
        }
    }
}

/// Redis's names for the message types in CLUSTER INFO (clusterGetMessageTypeString).
pub fn type_name(t: usize) -> &'static str {
    ["ping", "pong", "meet", "fail", "publish", "auth-req", "auth-ack", "update", "mfstart", "module", "publishshard"]
        .get(t)
        .copied()
        .unwrap_or("unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(kind: u16, len: usize) -> Vec<u8> {
        let mut m = vec![0u8; len.max(14)];
        m[12..14].copy_from_slice(&kind.to_be_bytes());
        m
    }

    #[test]
    fn send_queues_per_node_and_frees_over_limit() {
        let t = LinkTable::default();
        let mut a = t.open_outbound("a");
        let b = t.open_outbound("b");
        t.send(Some("a"), msg(4, 100), 0);
        assert_eq!(a.rx.try_recv().unwrap().len(), 100);
        assert_eq!(a.queued.load(Relaxed), 100, "queued until the writer takes it off");
        t.send(None, msg(0, 10), 150);
        assert_eq!(t.limit_exceeded.load(Relaxed), 0);
        t.send(Some("a"), msg(4, 100), 150);
        assert_eq!(t.limit_exceeded.load(Relaxed), 1);
        assert!(a.kill.is_cancelled() && !b.kill.is_cancelled());
        assert_eq!(t.rows().len(), 1);
        assert_eq!(t.sent[4].load(Relaxed), 2);
    }

    #[test]
    fn inbound_named_once_and_older_replaced() {
        let t = LinkTable::default();
        let (i1, k1) = t.open_inbound();
        assert!(t.rows().is_empty(), "unnamed inbound links are not listed");
        t.name_inbound(i1, "n");
        let (i2, _k2) = t.open_inbound();
        t.name_inbound(i2, "n");
        assert!(k1.is_cancelled());
        let rows = t.rows();
        assert_eq!(rows.len(), 1);
        assert!(rows[0].inbound && rows[0].node == "n");
        let _out = t.open_outbound("n");
        let _other = t.open_outbound("m");
        let order: Vec<(String, bool)> = t.rows().into_iter().map(|r| (r.node, r.inbound)).collect();
        assert_eq!(order, [("m".to_string(), false), ("n".to_string(), false), ("n".to_string(), true)]);
    }
}
