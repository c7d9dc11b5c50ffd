//! The clients connected to this node (CLIENT LIST, CLIENT KILL, INFO clients, tracking
//! redirections, ACL's "kill the user's clients"): id → the client's shared state and its
//! message channel, plus the id counter and the maxclients admission count.

use crate::client::{ClientMsg, ClientShared};
use parking_lot::{Mutex, MutexGuard};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;

/// A connection's message channel (pub/sub, invalidations, MONITOR lines, kill).
pub type Tx = UnboundedSender<ClientMsg>;

/// What other parts of the node hold of a client: its shared state and its channel.
#[derive(Clone)]
pub struct ClientHandle {
    pub tx: Tx,
    pub shared: Arc<ClientShared>,
}

impl ClientHandle {
    /// CLIENT KILL: mark the client killed (it is gone for CLIENT LIST and INFO at once, as
    /// Redis frees it inside the command) and tell its task to close the connection.
    pub fn kill(&self) {
        self.shared.kill.store(true, Relaxed);
        let _ = self.tx.send(ClientMsg::Kill);
    }

    /// Killed, its task still winding up.
    pub fn is_killed(&self) -> bool {
        self.shared.kill.load(Relaxed)
    }
}

pub struct ClientRegistry {
    map: Mutex<HashMap<u64, ClientHandle>>,
    next_id: AtomicU64,
    /// Client connections counted against maxclients (accepted and not yet closed).
    admitted: AtomicUsize,
}

impl Default for ClientRegistry {
    fn default() -> Self {
        ClientRegistry { map: Mutex::new(HashMap::new()), next_id: AtomicU64::new(1), admitted: AtomicUsize::new(0) }
    }
}

impl ClientRegistry {
    /// A new client id (CLIENT ID; shared by RESP, memcached and replication-link clients).
    pub fn new_id(&self) -> u64 {
        self.next_id.fetch_add(1, Relaxed)
    }

    /// Count a new connection against `maxclients`; false (and nothing counted) when full.
    pub fn admit(&self, maxclients: usize) -> bool {
        if self.admitted.fetch_add(1, Relaxed) >= maxclients {
            self.admitted.fetch_sub(1, Relaxed);
            return false;
        }
        true
    }

    /// A connection counted by `admit` closed.
    pub fn leave(&self) {
        self.admitted.fetch_sub(1, Relaxed);
    }

    /// Connections counted by `admit` now.
    pub fn admitted(&self) -> usize {
        self.admitted.load(Relaxed)
    }

    pub fn insert(&self, id: u64, h: ClientHandle) {
        self.map.lock().insert(id, h);
    }

    pub fn remove(&self, id: u64) {
        self.map.lock().remove(&id);
    }

    pub fn contains(&self, id: u64) -> bool {
        self.map.lock().contains_key(&id)
    }

    pub fn get(&self, id: u64) -> Option<ClientHandle> {
        self.map.lock().get(&id).cloned()
    }

    /// Kill client `id` if it is registered (see `ClientHandle::kill`).
    pub fn kill(&self, id: u64) -> bool {
        match self.map.lock().get(&id) {
            Some(h) => {
                h.kill();
                true
            }
            None => false,
        }
    }

    /// The clients not killed, by id.
    pub fn live(&self) -> Vec<ClientHandle> {
        let mut v: Vec<ClientHandle> = self.map.lock().values().filter(|h| !h.is_killed()).cloned().collect();
        v.sort_by_key(|h| h.shared.id);
        v
    }

    /// Every registered client, killed ones included, in no order.
    pub fn all(&self) -> Vec<ClientHandle> {
        self.map.lock().values().cloned().collect()
    }

    /// The map itself, for the node's own walks that must see one consistent set while they
    /// send (tracking invalidations).
    pub(crate) fn lock(&self) -> MutexGuard<'_, HashMap<u64, ClientHandle>> {
        self.map.lock()
    }
}
