//! Clients blocked on keys (BLPOP, BLMOVE, BLMPOP, BZPOPMIN, XREAD BLOCK, ...).
//!
//! Redis's model (blocked.c `handleClientsBlockedOnKeys`): a write that may make a key ready
//! records it (`Effects::ready` → [`Blocking::signal`]); once the write (or the whole EXEC) has
//! finished and released its shard locks, the executor calls [`Blocking::serve`], which walks
//! each ready key's waiters in arrival order (first come, first served) and re-runs each
//! waiter's command on its behalf. A waiter whose command blocks again keeps its place in every
//! queue; a served waiter gets its reply handed to its connection task and leaves every queue.
//! Serving a waiter can make further keys ready (BLMOVE's destination): those are served in
//! the same pass. Passes are serialized by one mutex, so no two threads serve the same queue
//! at once, and a waiter's state is decided exactly once (served / timed out / gone), so an
//! element is never popped for a client that has already left.

use crate::client::Client;
use crate::node::Node;
use crate::table::Command;
use ferrocache_engine::{Effects, SmallBytes};
use ferrocache_protocol::resp::{OwnedArgs, ReplyBuf};
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use tokio::sync::Notify;

/// Where a blocked client stands. Decided once: `Waiting` → one of the others.
#[derive(Debug)]
pub enum WaitState {
    Waiting,
    /// Served: the reply to send.
    Served(Vec<u8>),
    /// Timed out, disconnected or killed: never serve it.
    Cancelled,
}

/// One blocked client.
pub struct Waiter {
    pub id: u64,
    pub db: usize,
    pub keys: Vec<Vec<u8>>,
    pub cmd: &'static Command,
    /// The argv re-run when a key is ready.
    pub args: OwnedArgs,
    /// The blocked connection's own client state, lent to the waiter while it waits (the
    /// connection task takes it back when the wait ends): a retry runs with the client's
    /// real state (database, protocol, per-command stashes such as XREAD's resolved IDs).
    pub client: Mutex<Option<Client>>,
    pub resp3: bool,
    pub null_array_on_timeout: bool,
    pub state: Mutex<WaitState>,
    pub notify: Notify,
}

impl Waiter {
    /// Cancel if still waiting (timeout, disconnect). Returns the reply if it was served
    /// meanwhile, `Ok(None)` if this call cancelled it.
    pub fn cancel(&self) -> Option<Vec<u8>> {
        let mut st = self.state.lock();
        match std::mem::replace(&mut *st, WaitState::Cancelled) {
            WaitState::Served(r) => Some(r),
            _ => None,
        }
    }
    /// The reply if served.
    pub fn take_served(&self) -> Option<Vec<u8>> {
        let mut st = self.state.lock();
        if let WaitState::Served(_) = &*st {
            if let WaitState::Served(r) = std::mem::replace(&mut *st, WaitState::Cancelled) {
                return Some(r);
            }
        }
        None
    }
    /// The wait ended without a re-run (timeout, CLIENT UNBLOCK, disconnect_all): the command
    /// counts as one call now, failed with `error` when it got one (updateStatsOnUnblock).
    pub fn count_unblocked(&self, srv: &crate::node::Node, error: Option<&str>) {
        crate::stats::record(self.cmd.name, 0, error.is_some());
        if let Some(code) = error {
            crate::stats::error_code(code);
            srv.counters.total_error_replies.fetch_add(1, Relaxed);
        }
    }
    /// The reply Redis sends on timeout / CLIENT UNBLOCK ... TIMEOUT.
    pub fn timeout_reply(&self) -> Vec<u8> {
        let mut out = ReplyBuf::new(self.resp3);
        if self.null_array_on_timeout {
            out.null_array();
        } else {
            out.null();
        }
        out.buf
    }
}

type Key = (usize, SmallBytes);

#[derive(Default)]
pub struct Blocking {
    waiters: Mutex<HashMap<Key, VecDeque<Arc<Waiter>>>>,
    /// Keys made ready since the last serve pass (deduplicated, in signal order).
    ready: Mutex<Vec<Key>>,
    ready_count: AtomicUsize,
    /// Number of blocked clients (fast path for writers: nothing to signal when zero).
    clients: AtomicUsize,
    serving: Mutex<()>,
    by_id: Mutex<HashMap<u64, Arc<Waiter>>>,
    /// Connections waiting for CLIENT PAUSE to end (Redis counts them in blocked_clients).
    pub postponed: AtomicUsize,
}

/// The key type a blocked command waits for (Redis serves a ready key only to clients
/// blocked for that type): None when any type will do.
fn wanted_type(cmd: &Command) -> Option<&'static str> {
    match cmd.group {
        "list" => Some("list"),
        "sorted-set" => Some("zset"),
        "stream" => Some("stream"),
        _ => None,
    }
}

impl Blocking {
    /// Add a waiter at the back of each of its keys' queues, and mark its keys ready so that
    /// a push that landed between its command and this registration is not missed.
    pub fn register(&self, w: &Arc<Waiter>) {
        {
            let mut m = self.waiters.lock();
            for k in &w.keys {
                let q = m.entry((w.db, SmallBytes::new(k))).or_default();
                if !q.iter().any(|x| Arc::ptr_eq(x, w)) {
                    q.push_back(w.clone());
                }
            }
            self.by_id.lock().insert(w.id, w.clone());
            self.clients.fetch_add(1, Relaxed);
        }
        for k in &w.keys {
            self.push_ready(w.db, SmallBytes::new(k));
        }
    }

    /// Remove a waiter from every queue (idempotent).
    pub fn unregister(&self, w: &Arc<Waiter>) {
        let mut m = self.waiters.lock();
        let mut by_id = self.by_id.lock();
        match by_id.get(&w.id) {
            Some(x) if Arc::ptr_eq(x, w) => {
                by_id.remove(&w.id);
            }
            _ => return,
        }
        drop(by_id);
        for k in &w.keys {
            let key = (w.db, SmallBytes::new(k));
            if let Some(q) = m.get_mut(&key) {
                q.retain(|x| !Arc::ptr_eq(x, w));
                if q.is_empty() {
                    m.remove(&key);
                }
            }
        }
        self.clients.fetch_sub(1, Relaxed);
    }

    fn push_ready(&self, db: usize, key: SmallBytes) {
        let mut r = self.ready.lock();
        if !r.iter().any(|(d, k)| *d == db && *k == key) {
            r.push((db, key));
            self.ready_count.fetch_add(1, Relaxed);
        }
    }

    /// A write may have made `key` ready (called from `Node::apply_effects`).
    pub fn signal(&self, db: usize, key: &SmallBytes) {
        if self.clients.load(Relaxed) == 0 {
            return;
        }
        if self.waiters.lock().contains_key(&(db, key.clone())) {
            self.push_ready(db, key.clone());
        }
    }

    /// SWAPDB: every key waited on in these databases may have data now (Redis's
    /// scanDatabaseForReadyKeys); the serve pass checks each one's existence and type.
    pub fn signal_dbs(&self, dbs: &[usize]) {
        if self.clients.load(Relaxed) == 0 {
            return;
        }
        let keys: Vec<Key> = self.waiters.lock().keys().filter(|(d, _)| dbs.contains(d)).cloned().collect();
        for (db, key) in keys {
            self.push_ready(db, key);
        }
    }

    pub fn has_ready(&self) -> bool {
        self.ready_count.load(Relaxed) > 0
    }

    /// Number of keys with blocked clients.
    pub fn blocked_keys(&self) -> usize {
        self.waiters.lock().len()
    }

    /// Number of blocked clients.
    pub fn blocked_clients(&self) -> usize {
        self.clients.load(Relaxed) + self.postponed.load(Relaxed)
    }

    /// Is this client blocked?
    pub fn is_blocked(&self, id: u64) -> bool {
        self.by_id.lock().contains_key(&id)
    }

    /// disconnectAllBlockedClients: this node became a replica. Every key wait ends with
    /// Redis's UNBLOCKED error and the connection closes after it. Returns how many.
    pub fn disconnect_all(&self, srv: &crate::node::Node) -> usize {
        let ws: Vec<Arc<Waiter>> = self.by_id.lock().values().cloned().collect();
        let mut n = 0;
        for w in ws {
            let mut st = w.state.lock();
            if !matches!(*st, WaitState::Waiting) {
                continue;
            }
            *st = WaitState::Served(
                b"-UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)\r\n"
                    .to_vec(),
            );
            drop(st);
            w.count_unblocked(srv, Some("UNBLOCKED"));
            self.unregister(&w);
            if let Some(h) = srv.clients.get(w.id) {
                h.shared.kill.store(true, Relaxed);
            }
            w.notify.notify_one();
            n += 1;
        }
        n
    }

    /// Every blocked client, in no order.
    pub fn waiters(&self) -> Vec<Arc<Waiter>> {
        if self.clients.load(Relaxed) == 0 {
            return Vec::new();
        }
        self.by_id.lock().values().cloned().collect()
    }

    /// End `w`'s wait with `reply` without re-running its command (counted as one call, failed
    /// with `error` when given). False when it was no longer waiting.
    pub fn end_wait(&self, srv: &crate::node::Node, w: &Arc<Waiter>, reply: Vec<u8>, error: Option<&str>) -> bool {
        let mut st = w.state.lock();
        if !matches!(*st, WaitState::Waiting) {
            return false;
        }
        *st = WaitState::Served(reply);
        drop(st);
        w.count_unblocked(srv, error);
        self.unregister(w);
        w.notify.notify_one();
        true
    }

    /// CLIENT UNBLOCK: end a client's wait with the timeout reply or an error.
    pub fn unblock(&self, srv: &crate::node::Node, id: u64, error: bool) -> bool {
        let Some(w) = self.by_id.lock().get(&id).cloned() else { return false };
        let reply =
            if error { b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n".to_vec() } else { w.timeout_reply() };
        self.end_wait(srv, &w, reply, error.then_some("UNBLOCKED"))
    }

    /// Serve the waiters of every ready key, FIFO per key. Call with no shard lock held.
    pub fn serve(&self, srv: &Arc<Node>) {
        if !self.has_ready() {
            return;
        }
        let _serving = self.serving.lock();
        loop {
            let next = {
                let mut r = self.ready.lock();
                if r.is_empty() {
                    break;
                }
                self.ready_count.fetch_sub(1, Relaxed);
                r.remove(0)
            };
            self.serve_key(srv, next.0, &next.1);
        }
    }

    fn key_type(&self, srv: &Arc<Node>, db: usize, key: &[u8]) -> Option<&'static str> {
        let mut fx = Effects::default();
        let t = {
            let mut g = srv.ks.lock_keys([key]);
            let mut d =
                ferrocache_engine::Db::new(&mut g, &mut fx, db, crate::node::now_ms()).expiring(srv.expire_allowed());
            d.peek(key).map(|e| e.value.value_type().name())
        };
        if !fx.is_empty() {
            srv.apply_effects(&mut fx, 0, None);
        }
        t
    }

    fn serve_key(&self, srv: &Arc<Node>, db: usize, key: &SmallBytes) {
        let queue: Vec<Arc<Waiter>> = match self.waiters.lock().get(&(db, key.clone())) {
            Some(q) => q.iter().cloned().collect(),
            None => return,
        };
        for w in queue {
            let want = wanted_type(w.cmd);
            match self.key_type(srv, db, key) {
                // A deleted stream is still offered to its XREAD[GROUP] waiters: XREADGROUP
                // answers UNBLOCKED (Redis's signalDeletedKeyAsReady), XREAD blocks again.
                None if want != Some("stream") => continue,
                Some(ty) if want.is_some_and(|want| want != ty && want != "stream") => continue,
                _ => {}
            }
            let mut st = w.state.lock();
            if !matches!(*st, WaitState::Waiting) {
                continue;
            }
            let mut lent = w.client.lock();
            let Some(client) = lent.as_mut() else { continue };
            let mut out = ReplyBuf::new(client.resp3);
            let args = w.args.args();
            let keys: Vec<&[u8]> = w.cmd.key_positions(args).into_iter().map(|i| &args[i]).collect();
            // Like Redis (serveClientBlockedOnList & co), a waiter served for this key pops
            // from this key, not from the first non-empty one of its keys.
            client.serving_key = Some(key.to_vec());
            // Invalidations this command causes for its own client follow its reply (Redis's
            // tracking_pending_keys), so they are appended to the reply here rather than queued.
            crate::node::inline_invalidations_begin(w.id);
            let then = {
                let mut guards = srv.ks.lock_keys(keys.iter().copied());
                crate::run_locked(srv, client, w.cmd, args, &mut out, &mut guards, crate::node::now_ms())
            };
            let own = crate::node::inline_invalidations_end();
            client.serving_key = None;
            if matches!(then.as_deref(), Some(crate::client::Then::Block(_))) {
                // Nothing for it after all: it keeps its place.
                continue;
            }
            for k in own.into_iter().filter(|_| w.resp3) {
                out.push(2);
                out.bulk(b"invalidate");
                out.array(1);
                out.bulk(&k);
            }
            drop(lent);
            *st = WaitState::Served(out.buf);
            drop(st);
            self.unregister(&w);
            w.notify.notify_one();
        }
    }
}
