//! RDB persistence: SAVE, BGSAVE [SCHEDULE], LASTSAVE's state, save points (the cron), load at
//! startup, DEBUG RELOAD, saves on SHUTDOWN and FLUSHALL, MISCONF, INFO persistence.
//!
//! Snapshots without fork: a snapshot is a point-in-time image taken while writes continue.
//! The keyspace is 1024 shards. Starting a snapshot publishes its id in
//! `Keyspace::snapshot.active`; a walker (the BGSAVE thread, or the caller for SAVE) then locks
//! the shards one at a time and serializes every shard not yet captured.
//!
//! Copy-before-write is per key (`ShardCow` in the engine): while the snapshot runs, the first
//! modification of a key in a shard not yet captured saves that key's entry as it was (a deep
//! copy of the value with its expiry and LRU/LFU data, or "absent" when the key did not exist)
//! in the shard's pre-images, under the shard lock the writer already holds. The `Db` methods
//! do it: `set`, `remove`, `set_expire`, `persist`, expiry on access, and the lookups
//! (`get`/`get_mut`/`peek`) of a writing region (`Guards::writing`, set by `before_write` for
//! WRITE and MAY_REPLICATE commands and by the memcached protocol), since they hand out
//! `&mut Entry`. Entries removed by active expiry, eviction and FLUSHDB (`Db::clear`) are moved
//! into the pre-images instead of copied. The walker captures a shard under its lock with
//! `Shard::take_snapshot` (copies of the live entries without a pre-image, plus the pre-images
//! of keys that existed, moved out; the shard is marked captured) and encodes that copy after
//! releasing the lock, so writers wait for a memcpy-sized copy, not for LZF and the file. Every
//! key therefore lands in the file exactly as it was when the snapshot started; the extra
//! memory is one copy of each key written during the save (until the walker passes its shard)
//! plus the shard being encoded, and the write path encodes nothing. Pre-images are not counted for eviction (`SnapshotHook::pre_bytes`). The one
//! mutation that goes around keys, SWAPDB, captures (encodes) every shard whole first
//! (`before_write_slow`); FLUSHALL aborts an RDB snapshot, as Redis kills its child; the
//! whole-dataset replacements (DEBUG RELOAD, a replica's full sync) abort the snapshot first.
//! Each captured shard is one self-contained chunk (`SELECTDB n` + its entries) appended to the
//! file in capture order; the RDB loader accepts repeated SELECTDB.
//!
//! Loading (as Redis's loadDataFromDisk): the loader runs on a blocking thread holding each
//! key's shard only while inserting it; at its first progress point (every 2 MB of RDB,
//! `LOADING_INTERVAL_BYTES`; every 1024 AOF commands, from the first) the RESP listeners start
//! accepting. The commands allowed while loading (LOADING flag: INFO, SELECT, CLIENT, CONFIG,
//! SHUTDOWN, ...) run meanwhile and see the data loaded so far; the others get `-LOADING`. INFO persistence shows `loading_*` as Redis computes them. SHUTDOWN while loading
//! never saves. A small file is loaded before any client is served.
//!
//! The snapshot's start is decided once per lock-holding region (a command, or a whole EXEC):
//! `Guards::snapshot` records the id seen at the region's first write or key lookup, so a transaction's
//! writes are either all in the snapshot or all after it.

use crate::node::{now_ms, Node};
use crate::table::Command;
use crate::util::eq_ic;
use crate::Ctx;
use ferrocache_engine::keyspace::{initial_lru, lfu_decr_and_return, lru_clock, lru_idle_secs, Shard, SnapshotHook};
use ferrocache_engine::Entry;
use ferrocache_engine::{AccessPolicy, Db, Effects, EncodingLimits, EvictionPolicy, Guards, Value};
use ferrocache_persistence::rdb::crc64::crc64;
use ferrocache_persistence::rdb::encode::{choose_type, write_len, write_string, write_value};
use ferrocache_persistence::rdb::{opcode, rdb_type, EncodeOptions, EncodingHint, RdbError, RdbEvent, RdbReader};
use ferrocache_protocol::resp::Args;
use parking_lot::{Mutex, RwLock};
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::*};
use std::sync::{Arc, OnceLock};

mod load;
mod save;
mod snapshot;
pub use load::*;
pub use save::*;
pub use snapshot::*;

/// CONFIG_BGSAVE_RETRY_DELAY: seconds between save-point retries after a failed BGSAVE.
const BGSAVE_RETRY_DELAY: u64 = 5;

pub const MISCONF: &str = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";

// ------------------------------------------------------------------ logging

static LOGGER: OnceLock<fn(char, &str)> = OnceLock::new();

/// The server installs its Redis-format logger here.
pub fn set_logger(f: fn(char, &str)) {
    let _ = LOGGER.set(f);
}

/// The role character of log lines (Redis's: M master, S replica), set by the replication
/// role changes.
pub static LOG_ROLE: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(b'M');

pub fn log_role() -> char {
    LOG_ROLE.load(std::sync::atomic::Ordering::Relaxed) as char
}

fn log(level: char, msg: &str) {
    match LOGGER.get() {
        Some(f) => f(level, msg),
        None => eprintln!("{}:{} {} {}", std::process::id(), log_role(), level, msg),
    }
}

/// Log a line in the server's format (for the AOF module).
pub fn log_line(level: char, msg: &str) {
    log(level, msg)
}

fn cwd() -> String {
    std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_else(|_| "unknown".into())
}

// ------------------------------------------------------------------ state

/// Node-wide persistence state (`srv.persist`).
pub struct Persist {
    /// The running snapshot (BGSAVE, SAVE, shutdown save), if any.
    current: Arc<RwLock<Option<Arc<Snapshot>>>>,
    next_id: AtomicU64,
    /// Finishing a file (EOF, fsync, rename) and whole-locked saves are serialized by this.
    save_lock: Mutex<()>,
    /// `counters.dirty` as of the last successful save.
    pub dirty_at_save: AtomicU64,
    /// lastbgsave_status == C_ERR.
    pub bgsave_failed: AtomicBool,
    /// Unix seconds of the last BGSAVE attempt.
    pub last_bgsave_try: AtomicU64,
    pub last_bgsave_time_sec: AtomicI64,
    pub bgsave_in_progress: AtomicBool,
    pub bgsave_start_ms: AtomicU64,
    pub rdb_saves: AtomicU64,
    pub scheduled: AtomicBool,
    pub loading: AtomicBool,
    /// A replica loads its master's data set on the side while serving the old one
    /// (repl-diskless-load swapdb, same replication history: INFO async_loading).
    pub async_loading: AtomicBool,
    /// startLoading's statistics (INFO persistence loading_*).
    pub loading_start_time: AtomicI64,
    pub loading_total_bytes: AtomicU64,
    pub loading_rdb_used_mem: AtomicU64,
    /// The replication stream point the last loaded RDB recorded (replication/resume.rs).
    pub loaded_repl: parking_lot::Mutex<Option<crate::replication::resume::ReplInfo>>,
    pub loading_loaded_bytes: AtomicU64,
    /// Bytes of the files loaded before the current one (multi-part AOF).
    pub loading_base: AtomicU64,
    /// Signalled at the loader's first progress point (processEventsWhileBlocked): the node
    /// starts serving clients, which get -LOADING until the dataset is in memory.
    pub serve_during_load: tokio::sync::Notify,
    pub last_load_keys_loaded: AtomicU64,
    pub last_load_keys_expired: AtomicU64,
    /// Progress of the running save.
    pub keys_processed: Arc<AtomicU64>,
    pub keys_total: AtomicU64,
    /// Peak bytes of pre-images plus shard chunks held in memory by the last snapshot (its "COW" analogue).
    pub last_peak_buffer: AtomicU64,
}

impl Default for Persist {
    fn default() -> Self {
        Persist {
            current: Arc::new(RwLock::new(None)),
            next_id: AtomicU64::new(1),
            save_lock: Mutex::new(()),
            dirty_at_save: AtomicU64::new(0),
            bgsave_failed: AtomicBool::new(false),
            last_bgsave_try: AtomicU64::new(0),
            last_bgsave_time_sec: AtomicI64::new(-1),
            bgsave_in_progress: AtomicBool::new(false),
            bgsave_start_ms: AtomicU64::new(0),
            rdb_saves: AtomicU64::new(0),
            scheduled: AtomicBool::new(false),
            loading: AtomicBool::new(false),
            async_loading: AtomicBool::new(false),
            loading_start_time: AtomicI64::new(0),
            loading_total_bytes: AtomicU64::new(0),
            loading_rdb_used_mem: AtomicU64::new(0),
            loaded_repl: Default::default(),
            loading_loaded_bytes: AtomicU64::new(0),
            loading_base: AtomicU64::new(0),
            serve_during_load: tokio::sync::Notify::new(),
            last_load_keys_loaded: AtomicU64::new(0),
            last_load_keys_expired: AtomicU64::new(0),
            keys_processed: Arc::new(AtomicU64::new(0)),
            keys_total: AtomicU64::new(0),
            last_peak_buffer: AtomicU64::new(0),
        }
    }
}

// ------------------------------------------------------------------ write hook

/// Called by the executor before a command that may modify keys (WRITE, or MAY_REPLICATE
/// like PFCOUNT) runs, with its shards held: fixes the region's side of a running snapshot's
/// start and marks the region as writing, so that the `Db` methods keep the pre-image of
/// every key they hand out or modify (per-key copy-before-write, `ShardCow`).
#[inline]
pub fn before_write(srv: &Node, cmd: &Command, guards: &mut Guards) {
    guards.writing = true;
    let id = guards.cow_id();
    if id != 0 {
        before_write_slow(srv, cmd, id, guards);
    }
}

/// The same for writers outside the executor (the memcached protocol).
#[inline]
pub fn before_write_any(_srv: &Node, guards: &mut Guards) {
    guards.writing = true;
    guards.cow_id();
}

#[cold]
fn before_write_slow(srv: &Node, cmd: &Command, id: u64, guards: &mut Guards) {
    if cmd.name == "flushall" && running_kind(srv) == Some(SnapKind::Rdb) {
        // Redis kills the saving child on FLUSHALL (and saves the empty dataset if save
        // points are configured).
        abort_running(srv, false);
        return;
    }
    if cmd.name == "swapdb" {
        // Modifies tables without going through keys: capture every (held) shard whole.
        let snap = srv.persist.current.read().clone();
        if let Some(s) = snap {
            if s.id == id {
                let hook = &srv.ks.snapshot;
                guards.for_each_held(|_, sh| s.capture(hook, sh));
            }
        }
    }
}

/// Abort the running snapshot, if any (FLUSHALL, SHUTDOWN, DEBUG RELOAD).
pub fn abort_running(srv: &Node, log_kill: bool) -> bool {
    let mut cur = srv.persist.current.write();
    let Some(s) = cur.take() else { return false };
    if log_kill {
        log('#', "There is a child saving an .rdb. Killing it!");
    }
    s.aborted.store(true, Relaxed);
    srv.ks.snapshot.active.store(0, Release);
    true
}

// ------------------------------------------------------------------ INFO

/// The loading_* fields of INFO persistence (only while loading), as Redis computes them.
pub fn info_loading(srv: &Node) -> String {
    let p = &srv.persist;
    if !is_loading(srv) {
        return String::new();
    }
    let start = p.loading_start_time.load(Relaxed);
    let total = p.loading_total_bytes.load(Relaxed);
    let used = p.loading_rdb_used_mem.load(Relaxed);
    let loaded = p.loading_loaded_bytes.load(Relaxed);
    let mut perc = 0.0;
    let mut remaining: i64 = 1;
    if total > 0 {
        perc = loaded as f64 / total as f64 * 100.0;
        remaining = total as i64 - loaded as i64;
    } else if used > 0 {
        perc = (loaded as f64 / used as f64 * 100.0).min(99.99);
        remaining = (used as i64 - loaded as i64).max(1);
    }
    let elapsed = (now_ms() / 1000) as i64 - start;
    let eta = if elapsed == 0 { 1 } else { elapsed * remaining / (loaded as i64 + 1) };
    format!(
        "loading_start_time:{}\r\nloading_total_bytes:{}\r\nloading_rdb_used_mem:{}\r\nloading_loaded_bytes:{}\r\nloading_loaded_perc:{:.2}\r\nloading_eta_seconds:{}\r\n",
        start, total, used, loaded, perc, eta
    )
}

/// The "# Persistence" INFO section body (without the header).
pub fn info_persistence(srv: &Node) -> String {
    let p = &srv.persist;
    let running = p.bgsave_in_progress.load(Relaxed);
    let saving = p.current.read().is_some();
    let (processed, total) = if saving { (p.keys_processed.load(Relaxed), p.keys_total.load(Relaxed)) } else { (0, 0) };
    let perc = if saving && total > 0 { processed as f64 * 100.0 / total as f64 } else { 0.0 };
    let cur_secs =
        if running { ((now_ms().saturating_sub(p.bgsave_start_ms.load(Relaxed))) / 1000) as i64 } else { -1 };
    format!(
        "loading:{}\r\nasync_loading:{}\r\ncurrent_cow_peak:{}\r\ncurrent_cow_size:{}\r\ncurrent_cow_size_age:0\r\ncurrent_fork_perc:{:.2}\r\ncurrent_save_keys_processed:{}\r\ncurrent_save_keys_total:{}\r\nrdb_changes_since_last_save:{}\r\nrdb_bgsave_in_progress:{}\r\nrdb_last_save_time:{}\r\nrdb_last_bgsave_status:{}\r\nrdb_last_bgsave_time_sec:{}\r\nrdb_current_bgsave_time_sec:{}\r\nrdb_saves:{}\r\nrdb_last_cow_size:{}\r\nrdb_last_load_keys_expired:{}\r\nrdb_last_load_keys_loaded:{}\r\n",
        p.loading.load(Relaxed) as u8,
        p.async_loading.load(Relaxed) as u8,
        if running { srv.ks.snapshot.pre_peak.load(Relaxed) } else { 0 },
        if running { srv.ks.snapshot.pre_bytes() } else { 0 },
        perc,
        processed,
        total,
        changes_since_save(srv),
        running as u8,
        srv.last_save.load(Relaxed),
        if p.bgsave_failed.load(Relaxed) { "err" } else { "ok" },
        p.last_bgsave_time_sec.load(Relaxed),
        cur_secs,
        p.rdb_saves.load(Relaxed),
        p.last_peak_buffer.load(Relaxed),
        p.last_load_keys_expired.load(Relaxed),
        p.last_load_keys_loaded.load(Relaxed),
    )
}
