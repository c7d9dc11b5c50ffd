//! Pub/Sub across the cluster bus (Redis's clusterPropagatePublish): PUBLISH goes to every
//! node, SPUBLISH to the nodes of this shard (master and replicas); shard channels whose slot
//! this shard no longer serves are unsubscribed, their clients told with `sunsubscribe`
//! (removeChannelsInSlot).

use super::bus::{Msg, PUBLISH, PUBLISHSHARD};
use super::state::{ClusterState, HANDSHAKE, MASTER};
use crate::Node;

/// The ids of the nodes serving my slots: my master (or myself) and its replicas
/// (clusterGetNodesServingMySlots), myself and nodes in handshake left out.
fn my_shard_peers(st: &ClusterState) -> Vec<String> {
    let me = st.me();
    let master = if me.flags & MASTER != 0 { Some(me.id.clone()) } else { me.master.clone() };
    let Some(master) = master else { return Vec::new() };
    st.nodes
        .values()
        .filter(|n| n.id != st.myself && n.flags & HANDSHAKE == 0)
        .filter(|n| n.id == master || n.master.as_deref() == Some(master.as_str()))
        .map(|n| n.id.clone())
        .collect()
}

/// After a local PUBLISH / SPUBLISH in cluster mode: the message for the other nodes.
pub fn propagate(srv: &Node, channel: &[u8], message: &[u8], shard: bool) {
    let mut m = super::link::header(srv, if shard { PUBLISHSHARD } else { PUBLISH });
    m.channel = channel.to_vec();
    m.message = message.to_vec();
    let b = m.encode();
    if !shard {
        return super::link::send_limited(srv, None, b);
    }
    let peers = my_shard_peers(&srv.cluster.state.read());
    for p in peers {
        super::link::send_limited(srv, Some(&p), b.clone());
    }
}

/// A PUBLISH / PUBLISHSHARD from a known node reaches this node's subscribers.
pub fn on_message(srv: &Node, m: &Msg) {
    let known = srv.cluster.state.read().nodes.get(&m.sender).is_some_and(|n| n.flags & HANDSHAKE == 0);
    if known {
        srv.publish(&m.channel, &m.message, m.kind == PUBLISHSHARD);
    }
}

/// Shard channels in slots that neither this node nor its master owns lose their subscribers.
pub fn drop_unserved_channels(srv: &Node) {
    if srv.pubsub().shard_channels.read().is_empty() {
        return;
    }
    let st = srv.cluster.state.read();
    let me = st.me();
    let master = if me.flags & MASTER != 0 { me.id.clone() } else { me.master.clone().unwrap_or_default() };
    let serves = |slot: u16| st.slots.get(slot as usize).is_some_and(|o| o == st.myself || o == master);
    srv.drop_shard_channels(|slot| !serves(slot));
}
