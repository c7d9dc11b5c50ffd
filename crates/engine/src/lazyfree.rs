//! Freeing big values off the request path (Redis's lazyfree.c): UNLINK, FLUSHALL/FLUSHDB
//! ASYNC and the `lazyfree-lazy-*` settings hand values whose free effort is above
//! `LAZYFREE_THRESHOLD` to one background thread, so that dropping a 10M-element set does not
//! hold a worker and the shard lock for the whole free. INFO reports `lazyfree_pending_objects`
//! and `lazyfreed_objects` as Redis 7.0 does.

use crate::keyspace::Entry;
use crate::value::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Mutex, OnceLock};

/// Redis's LAZYFREE_THRESHOLD: values costing more allocations than this are freed in the
/// background; smaller ones are cheaper to free at once than to hand over.
pub const LAZYFREE_THRESHOLD: usize = 64;

static PENDING: AtomicU64 = AtomicU64::new(0);
static FREED: AtomicU64 = AtomicU64::new(0);

/// Something to drop in the background and how many objects it counts for.
struct Job(Box<dyn Send>, u64);

fn sender() -> &'static Mutex<Sender<Job>> {
    static TX: OnceLock<Mutex<Sender<Job>>> = OnceLock::new();
    TX.get_or_init(|| {
        let (tx, rx) = channel::<Job>();
        std::thread::Builder::new()
            .name("lazyfree".into())
            .spawn(move || {
                for Job(garbage, objects) in rx {
                    drop(garbage);
                    PENDING.fetch_sub(objects, Ordering::Relaxed);
                    FREED.fetch_add(objects, Ordering::Relaxed);
                }
            })
            .expect("spawn the lazyfree thread");
        Mutex::new(tx)
    })
}

fn submit(garbage: Box<dyn Send>, objects: u64) {
    PENDING.fetch_add(objects, Ordering::Relaxed);
    if let Err(e) = sender().lock().unwrap_or_else(|p| p.into_inner()).send(Job(garbage, objects)) {
        // The thread is gone (never expected): free here rather than leak.
        PENDING.fetch_sub(objects, Ordering::Relaxed);
        drop(e.0);
    }
}

/// Redis's lazyfreeGetFreeEffort: roughly how many allocations freeing `v` costs.
pub fn free_effort(v: &Value) -> usize {
    match v {
        // A quicklist node holds up to 8 KB (list-max-listpack-size -2).
        Value::List(l) => l.mem_usage() / 8192 + 1,
        Value::Hash(h) if h.encoding() == "hashtable" => h.len(),
        Value::Set(s) if s.encoding() == "hashtable" => s.len(),
        Value::ZSet(z) if z.encoding() == "skiplist" => z.len(),
        Value::Stream(s) => {
            // Every node is an allocation; so are the groups and their PEL entries (the first
            // group's PEL size stands for all, as Redis estimates).
            let pel = s.groups.values().next().map_or(0, |g| g.pel.len());
            s.nodes.len() + s.groups.len() * (1 + pel)
        }
        _ => 1,
    }
}

/// Free a deleted key's entry: in the background when it is big, here otherwise.
pub fn free_entry(e: Entry) {
    if free_effort(&e.value) > LAZYFREE_THRESHOLD {
        submit(Box::new(e), 1);
    }
}

/// Free the entries of a flushed database in the background (FLUSHALL/FLUSHDB ASYNC); each
/// key counts as one object, as Redis's emptyDbAsync counts them.
pub fn free_entries<T: Send + 'static>(garbage: T, keys: usize) {
    if keys > 0 {
        submit(Box::new(garbage), keys as u64);
    }
}

/// INFO's lazyfree_pending_objects.
pub fn pending() -> u64 {
    PENDING.load(Ordering::Relaxed)
}

/// INFO's lazyfreed_objects (since start or CONFIG RESETSTAT).
pub fn freed() -> u64 {
    FREED.load(Ordering::Relaxed)
}

/// CONFIG RESETSTAT.
pub fn reset_stats() {
    FREED.store(0, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effort_follows_redis_estimates() {
        let mut s = crate::value::SetValue::default();
        for i in 0..200 {
            s.insert(format!("m{i}").as_bytes(), &crate::value::EncodingLimits::default());
        }
        let v = Value::Set(Box::new(s));
        assert!(free_effort(&v) > LAZYFREE_THRESHOLD, "a 200-member hashtable set is freed lazily");
        assert_eq!(free_effort(&Value::str(b"x")), 1);
    }
}
