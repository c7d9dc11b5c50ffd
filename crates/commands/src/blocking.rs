//! Clients blocked on keys (BLPOP and friends): (db, key) → waiters in arrival order.
//! A write that makes a key ready wakes its waiters, which retry their command.

use ferrocache_engine::SmallBytes;
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use tokio::sync::Notify;

#[derive(Default)]
pub struct Blocking {
    waiters: Mutex<HashMap<(usize, SmallBytes), VecDeque<(u64, Arc<Notify>)>>>,
}

impl Blocking {
    pub fn register(&self, db: usize, keys: &[Vec<u8>], id: u64, n: &Arc<Notify>) {
        let mut w = self.waiters.lock();
        for k in keys {
            w.entry((db, SmallBytes::new(k))).or_default().push_back((id, n.clone()));
        }
    }
    pub fn unregister(&self, db: usize, keys: &[Vec<u8>], id: u64) {
        let mut w = self.waiters.lock();
        for k in keys {
            let key = (db, SmallBytes::new(k));
            if let Some(q) = w.get_mut(&key) {
                q.retain(|(i, _)| *i != id);
                if q.is_empty() {
                    w.remove(&key);
                }
            }
        }
    }
    pub fn signal(&self, db: usize, key: &SmallBytes) {
        let w = self.waiters.lock();
        if let Some(q) = w.get(&(db, key.clone())) {
            for (_, n) in q {
                n.notify_one();
            }
        }
    }
    pub fn blocked_keys(&self) -> usize {
        self.waiters.lock().len()
    }
}
