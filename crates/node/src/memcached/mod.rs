//! The memcached side: executes parsed memcached requests (text, meta and binary protocols,
//! `ferrocache_protocol::memcache`) against the same keyspace as RESP, with memcached 1.6
//! semantics. Not part of the RESP command table: the memcached listener
//! (`crates/server/src/memcached.rs`) calls [`execute_text`] / [`execute_binary`].
//!
//! * Items live in database 0 as strings (`Value::Mc`: bytes + client flags + CAS; see
//!   `ferrocache_engine::mcitem`). A plain Redis string reads as flags 0; the first memcached
//!   hit upgrades it in place to an item with a fresh CAS. Keys holding other Redis types are
//!   invisible to memcached reads (misses), `add` on them answers NOT_STORED and `set` replaces.
//! * Every write records Redis write effects (propagated as SET/DEL/PEXPIREAT/PERSIST/FLUSHDB,
//!   keyspace events, WATCH and client-tracking invalidation) before the shard lock is released.
//! * Expiry follows memcached: 0 = never, up to 30 days relative seconds, beyond that absolute
//!   unix time, negative (or an absolute time in the past) = already expired.
//!
//! The files: `store.rs` (memcached time/expiry, the per-request execution context and the
//! storage core every protocol shares), `text.rs` / `meta.rs` / `binary.rs` (the three
//! protocols), `stats.rs` (`stats` groups), `watch.rs` (`watch` log streams), `crawler.rs`
//! (`lru_crawler`, `slabs`), `auth.rs` (ASCII and SASL login) and `discovery.rs` (ElastiCache
//! Auto Discovery). This file holds the node-wide state and the per-connection types.

mod auth;
mod binary;
mod crawler;
mod discovery;
mod meta;
mod stats;
mod store;
mod text;
mod watch;

pub use auth::{auth_required, text_auth};
pub use binary::{binary_is_write, execute_binary};
pub use discovery::{cluster_body, cluster_payload, encode_config_cluster, try_config_line, CLUSTER_KEY};
pub use stats::stats_group;
pub use store::{apply_meta, meta_argv, unlink, MC_META};
pub use text::{execute_text, text_is_write, MC_READONLY};
pub use watch::{log_conn, log_eviction, Watchers, LOG_CONNEVENTS, LOG_EVICTIONS, LOG_FETCHERS, LOG_MUTATIONS};

use crate::node::Node;
use ferrocache_protocol::memcache::Limits;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// The version memcached clients see (`version`, `stats`).
pub const MC_VERSION: &str = "1.6.18";

/// memcached's global counters (`stats`).
#[derive(Default)]
pub struct McStats {
    pub cmd_get: AtomicU64,
    pub cmd_set: AtomicU64,
    pub cmd_flush: AtomicU64,
    pub cmd_touch: AtomicU64,
    pub cmd_meta: AtomicU64,
    pub get_hits: AtomicU64,
    pub get_misses: AtomicU64,
    pub get_expired: AtomicU64,
    pub get_flushed: AtomicU64,
    pub delete_misses: AtomicU64,
    pub delete_hits: AtomicU64,
    pub incr_misses: AtomicU64,
    pub incr_hits: AtomicU64,
    pub decr_misses: AtomicU64,
    pub decr_hits: AtomicU64,
    pub cas_misses: AtomicU64,
    pub cas_hits: AtomicU64,
    pub cas_badval: AtomicU64,
    pub touch_hits: AtomicU64,
    pub touch_misses: AtomicU64,
    pub store_too_large: AtomicU64,
    pub store_no_memory: AtomicU64,
    pub total_items: AtomicU64,
    pub curr_connections: AtomicU64,
    pub total_connections: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub bytes_read: AtomicU64,
    pub bytes_written: AtomicU64,
    pub auth_cmds: AtomicU64,
    pub auth_errors: AtomicU64,
}

/// One memcached connection as `stats conns` shows it.
pub struct McConnInfo {
    pub addr: String,
    pub listen_addr: String,
    pub last_cmd_ms: Arc<AtomicU64>,
}

/// Node-wide memcached state (a field of [`Node`]).
#[derive(Default)]
pub struct McState {
    pub stats: McStats,
    /// Bumped by every flush_all; a delayed flush only fires if no later flush_all came.
    pub flush_gen: AtomicU64,
    /// Absolute unix seconds of the pending/last flush_all (`stats settings` oldest).
    pub oldest_live: AtomicU64,
    pub verbosity: AtomicU64,
    pub conns: Mutex<HashMap<u64, McConnInfo>>,
    pub detail: PrefixStats,
    pub watchers: Watchers,
}

/// `stats detail on|off|dump`: per-prefix get/hit/set/del counters (memcached's
/// stats_prefix.c); the prefix is the key up to its first `:`, keys without one are not counted.
/// Classic text and binary get/store/delete requests record, meta requests do not (as memcached).
#[derive(Default)]
pub struct PrefixStats {
    pub enabled: AtomicBool,
    /// (prefix, [get, hit, set, del]) in first-seen order.
    counters: Mutex<Vec<(Vec<u8>, [u64; 4])>>,
}

#[derive(Clone, Copy)]
enum PrefixOp {
    Get(bool),
    Set,
    Del,
}

impl PrefixStats {
    fn record(&self, key: &[u8], op: PrefixOp) {
        if !self.enabled.load(Relaxed) {
            return;
        }
        let Some(i) = key.iter().position(|&c| c == b':') else { return };
        let prefix = &key[..i];
        let mut m = self.counters.lock();
        let idx = match m.iter().position(|(p, _)| p == prefix) {
            Some(x) => x,
            None => {
                m.push((prefix.to_vec(), [0; 4]));
                m.len() - 1
            }
        };
        let c = &mut m[idx].1;
        match op {
            PrefixOp::Get(hit) => {
                c[0] += 1;
                c[1] += hit as u64;
            }
            PrefixOp::Set => c[2] += 1,
            PrefixOp::Del => c[3] += 1,
        }
    }

    /// The `stats detail dump` text, `END\r\n` included.
    pub fn dump(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (p, c) in self.counters.lock().iter() {
            out.extend_from_slice(b"PREFIX ");
            out.extend_from_slice(p);
            out.extend_from_slice(format!(" get {} hit {} set {} del {}\r\n", c[0], c[1], c[2], c[3]).as_bytes());
        }
        out.extend_from_slice(b"END\r\n");
        out
    }

    fn clear(&self) {
        self.counters.lock().clear();
    }
}

impl McState {
    fn bump(c: &AtomicU64) {
        c.fetch_add(1, Relaxed);
    }
}

/// Per-connection state.
pub struct McConn {
    pub id: u64,
    pub last_cmd_ms: Arc<AtomicU64>,
    /// False until the client logs in, on a node that requires it ([`auth_required`]).
    pub authenticated: AtomicBool,
    /// Set by `watch`: the log lines this connection now streams (see [`Watchers`]).
    pub watch: Mutex<Option<tokio::sync::mpsc::Receiver<Vec<u8>>>>,
}

/// What the connection loop does after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Continue,
    /// Flush what was written, then close.
    Close,
    /// The connection became a log watcher (`watch`): write what is pending, then only stream
    /// the lines of `McConn::watch` (further input is ignored, as memcached's conn_watch).
    Watch,
}

/// Parser limits from the config (`memcached-item-size-max`).
pub fn limits(srv: &Node) -> Limits {
    let max = srv.config.hot.mc_item_size_max.load(Relaxed);
    Limits { item_size_max: max, ..Limits::default() }
}

/// Whether this node runs as a memcached-only engine (`engine memcached`).
pub fn memcached_engine(srv: &Node) -> bool {
    srv.config.hot.mc_engine.load(Relaxed)
}
