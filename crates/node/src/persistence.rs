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
use crate::table::{flags::*, Command};
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

const G: &str = "server";
/// CONFIG_BGSAVE_RETRY_DELAY: seconds between save-point retries after a failed BGSAVE.
const BGSAVE_RETRY_DELAY: u64 = 5;

pub static COMMANDS: &[Command] = &[
    Command::new("save", 1, ADMIN | NOSCRIPT | NO_MULTI, (0, 0, 0), save_cmd).group(G),
    Command::new("bgsave", -1, ADMIN | NOSCRIPT, (0, 0, 0), bgsave_cmd).group(G),
];

pub const MISCONF: &str = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";

// ------------------------------------------------------------------ logging

static LOGGER: OnceLock<fn(char, &str)> = OnceLock::new();

/// The server installs its Redis-format logger here.
pub fn set_logger(f: fn(char, &str)) {
    let _ = LOGGER.set(f);
}

fn log(level: char, msg: &str) {
    match LOGGER.get() {
        Some(f) => f(level, msg),
        None => eprintln!("{}:M {} {}", std::process::id(), level, msg),
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
    /// startLoading's statistics (INFO persistence loading_*).
    pub loading_start_time: AtomicI64,
    pub loading_total_bytes: AtomicU64,
    pub loading_rdb_used_mem: AtomicU64,
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
            loading_start_time: AtomicI64::new(0),
            loading_total_bytes: AtomicU64::new(0),
            loading_rdb_used_mem: AtomicU64::new(0),
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

/// Encoder settings fixed for one snapshot.
struct EncCfg {
    opts: EncodeOptions,
    save_lru: bool,
    save_lfu: bool,
    lfu_decay: u32,
}

impl EncCfg {
    fn from(srv: &Node) -> EncCfg {
        let h = &srv.config.hot;
        let pol = srv.config.policy();
        EncCfg {
            opts: EncodeOptions {
                compression: srv.config.get_bool("rdbcompression"),
                hash_max_listpack_entries: h.hash_max_listpack_entries.load(Relaxed),
                hash_max_listpack_value: h.hash_max_listpack_value.load(Relaxed),
                zset_max_listpack_entries: h.zset_max_listpack_entries.load(Relaxed),
                zset_max_listpack_value: h.zset_max_listpack_value.load(Relaxed),
                set_max_intset_entries: h.set_max_intset_entries.load(Relaxed),
                list_max_listpack_size: h.list_max_listpack_size.load(Relaxed) as i32,
                stream_node_max_bytes: srv.config.get_i64("stream-node-max-bytes").max(0) as usize,
                stream_node_max_entries: srv.config.get_i64("stream-node-max-entries").max(0) as usize,
            },
            save_lru: matches!(pol, EvictionPolicy::AllKeysLru | EvictionPolicy::VolatileLru),
            save_lfu: pol.is_lfu(),
            lfu_decay: h.lfu_decay_time.load(Relaxed),
        }
    }
}

/// The output file of a save: header and aux fields, chunks, EOF + CRC64.
struct RdbOut {
    file: Box<dyn Write + Send>,
    /// The file to fsync (None: a stream, e.g. a diskless replication transfer).
    fsync: Option<std::fs::File>,
    tmp: String,
    crc: u64,
    checksum: bool,
    err: Option<(String, std::io::Error)>,
    /// An AOF base in command form: no RDB header, EOF or checksum.
    raw: bool,
}

impl RdbOut {
    fn create(srv: &Node, tmp: String) -> std::io::Result<RdbOut> {
        Self::create_as(srv, tmp, SnapKind::Rdb)
    }

    fn create_as(srv: &Node, tmp: String, kind: SnapKind) -> std::io::Result<RdbOut> {
        let f = std::fs::File::create(&tmp)?;
        let sync = f.try_clone()?;
        Ok(Self::init(srv, Box::new(std::io::BufWriter::with_capacity(1 << 16, f)), Some(sync), tmp, kind))
    }

    /// An RDB written to a stream (diskless replication): no fsync, no rename.
    fn with_stream(srv: &Node, w: Box<dyn Write + Send>) -> RdbOut {
        Self::init(srv, w, None, String::new(), SnapKind::Rdb)
    }

    fn init(
        srv: &Node,
        file: Box<dyn Write + Send>,
        fsync: Option<std::fs::File>,
        tmp: String,
        kind: SnapKind,
    ) -> RdbOut {
        let raw = kind == SnapKind::AofCommands;
        let mut o = RdbOut { file, fsync, tmp, crc: 0, checksum: srv.config.get_bool("rdbchecksum"), err: None, raw };
        if raw {
            if srv.config.get_bool("aof-timestamp-enabled") {
                o.write(format!("#TS:{}\r\n", now_ms() / 1000).as_bytes());
            }
            return o;
        }
        let compress = srv.config.get_bool("rdbcompression");
        let mut b = b"REDIS0010".to_vec();
        let now = now_ms() / 1000;
        let used = ferrocache_engine::memory::used_memory() as u64;
        for (k, v) in [
            ("redis-ver", crate::node::REDIS_VERSION.to_string()),
            ("redis-bits", "64".to_string()),
            ("ctime", now.to_string()),
            ("used-mem", used.to_string()),
            ("aof-base", if kind == SnapKind::AofRdb { "1" } else { "0" }.to_string()),
        ] {
            b.push(opcode::AUX);
            write_string(&mut b, k.as_bytes(), compress);
            write_string(&mut b, v.as_bytes(), compress);
        }
        // Function libraries, as Redis 7.0 writes them (FUNCTION2 opcode + library code).
        for code in crate::scripting::library_codes(srv) {
            b.push(opcode::FUNCTION2);
            write_string(&mut b, &code, compress);
        }
        o.write(&b);
        o
    }

    fn write(&mut self, b: &[u8]) {
        if self.err.is_some() {
            return;
        }
        self.crc = crc64(self.crc, b);
        if let Err(e) = self.file.write_all(b) {
            self.err = Some(("rdbSaveRio".into(), e));
        }
    }

    /// EOF, checksum, flush, fsync, rename to `dest`. Logs Redis's messages on failure.
    fn finish(mut self, dest: &str) -> bool {
        if !self.raw {
            self.write(&[opcode::EOF]);
        }
        let crc = if self.checksum { self.crc } else { 0 };
        if self.err.is_none() && !self.raw {
            if let Err(e) = self.file.write_all(&crc.to_le_bytes()) {
                self.err = Some(("rdbSaveRio".into(), e));
            }
        }
        if self.err.is_none() {
            if let Err(e) = self.file.flush() {
                self.err = Some(("fflush".into(), e));
            }
        }
        if self.err.is_none() {
            if let Some(f) = &self.fsync {
                if let Err(e) = f.sync_all() {
                    self.err = Some(("fsync".into(), e));
                }
            }
        }
        if self.fsync.is_none() {
            // A stream: nothing to rename.
            return self.err.is_none();
        }
        if let Some((op, e)) = self.err.take() {
            log('#', &format!("Write error saving DB on disk({}): {}", op, strerror(&e)));
            let _ = std::fs::remove_file(&self.tmp);
            return false;
        }
        let tmp = std::mem::take(&mut self.tmp);
        drop(self);
        if tmp == dest {
            return true;
        }
        if let Err(e) = std::fs::rename(&tmp, dest) {
            log(
                '#',
                &format!(
                    "Error moving temp DB file {} on the final destination {} (in server root dir {}): {}",
                    tmp,
                    dest,
                    cwd(),
                    strerror(&e)
                ),
            );
            let _ = std::fs::remove_file(&tmp);
            return false;
        }
        if let Some(dir) = std::path::Path::new(dest).parent() {
            let dir = if dir.as_os_str().is_empty() { std::path::Path::new(".") } else { dir };
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        true
    }

    fn abandon(self) {
        let tmp = self.tmp.clone();
        drop(self);
        let _ = std::fs::remove_file(tmp);
    }
}

fn strerror(e: &std::io::Error) -> String {
    // "No such file or directory (os error 2)" -> "No such file or directory"
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// What a snapshot writes: an RDB file (BGSAVE/SAVE), or an AOF base (BGREWRITEAOF) as RDB
/// (aof-use-rdb-preamble yes) or as commands.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SnapKind {
    Rdb,
    AofRdb,
    AofCommands,
}

/// One running snapshot.
pub struct Snapshot {
    id: u64,
    pub kind: SnapKind,
    /// Where the finished file goes.
    dest: String,
    aborted: AtomicBool,
    out: Mutex<Option<RdbOut>>,
    enc: EncCfg,
    keys: AtomicU64,
    /// Bytes of chunks currently encoded and not yet written, and its peak.
    inflight: AtomicU64,
    peak: AtomicU64,
    progress: Arc<AtomicU64>,
}

impl Snapshot {
    /// Serialize a shard (its lock held by the caller) as it was at the snapshot's start, if
    /// not yet done: a whole-shard capture, for writers that modify a shard without going
    /// through a key (SWAPDB).
    fn capture(&self, hook: &SnapshotHook, shard: &mut Shard) {
        if shard.cow.captured == self.id || self.aborted.load(Relaxed) {
            return;
        }
        let dbs = shard.take_snapshot(hook, self.id);
        let mut buf = Vec::new();
        let n = self.encode(&dbs, &mut buf);
        self.emit(buf, n);
    }

    /// Encode a captured shard (`Shard::take_snapshot`, index = database).
    fn encode(&self, dbs: &[Vec<Entry>], buf: &mut Vec<u8>) -> u64 {
        let now = now_ms();
        let mut n = 0;
        for (db, v) in dbs.iter().enumerate() {
            n += match self.kind {
                SnapKind::AofCommands => crate::aof::encode_db_commands(db, v.iter(), buf, now),
                _ => encode_db(&self.enc, db, v.iter(), buf, now),
            };
        }
        n
    }

    pub fn aborted(&self) -> bool {
        self.aborted.load(Relaxed)
    }

    fn emit(&self, buf: Vec<u8>, n: u64) {
        self.keys.fetch_add(n, Relaxed);
        self.progress.fetch_add(n, Relaxed);
        if buf.is_empty() {
            return;
        }
        let len = buf.len() as u64;
        let cur = self.inflight.fetch_add(len, Relaxed) + len;
        self.peak.fetch_max(cur, Relaxed);
        if let Some(o) = self.out.lock().as_mut() {
            o.write(&buf);
        }
        self.inflight.fetch_sub(len, Relaxed);
    }
}

/// Encode the entries of one database of a shard: `SELECTDB n` + entries (nothing if none).
fn encode_db<'e>(
    enc: &EncCfg,
    db: usize,
    entries: impl Iterator<Item = &'e Entry>,
    buf: &mut Vec<u8>,
    now: u64,
) -> u64 {
    let mut n = 0;
    let mut mc_flags = Vec::new();
    let mut mc_cas = Vec::new();
    let mut first = true;
    for e in entries {
        if first {
            first = false;
            buf.push(opcode::SELECTDB);
            write_len(buf, db as u64);
        }
        encode_entry(enc, &e.key, &e.value, e.expire_at, e.lru, buf, now);
        if let Value::Mc(m) = &e.value {
            if m.flags() != 0 {
                write_len(&mut mc_flags, e.key.len() as u64);
                mc_flags.extend_from_slice(&e.key);
                mc_flags.extend_from_slice(&m.flags().to_le_bytes());
            }
            write_len(&mut mc_cas, e.key.len() as u64);
            mc_cas.extend_from_slice(&e.key);
            mc_cas.extend_from_slice(&m.cas().to_le_bytes());
        }
        n += 1;
    }
    // memcached client flags have no place in Redis's RDB: they ride in an aux field that
    // follows the chunk's entries (redis-server ignores unknown aux fields).
    if !mc_flags.is_empty() {
        buf.push(opcode::AUX);
        write_string(buf, MC_FLAGS_AUX, false);
        write_string(buf, &mc_flags, enc.opts.compression);
    }
    // Their CAS uniques too (a replica or a restart keeps the uniques clients hold).
    if !mc_cas.is_empty() {
        buf.push(opcode::AUX);
        write_string(buf, MC_CAS_AUX, false);
        write_string(buf, &mc_cas, enc.opts.compression);
    }
    n
}

/// Aux field carrying memcached flags of the keys of the chunk before it (current database).
const MC_FLAGS_AUX: &[u8] = b"ferrocache-mc-flags";

/// Aux field carrying the memcached CAS uniques of the chunk's items (after the flags).
const MC_CAS_AUX: &[u8] = b"ferrocache-mc-cas";

/// Decode a `ferrocache-mc-cas` aux value into (key, cas).
fn parse_mc_cas(v: &[u8]) -> Vec<(Vec<u8>, u64)> {
    parse_keyed(v, 8).into_iter().map(|(k, t)| (k, u64::from_le_bytes(t.try_into().unwrap_or([0; 8])))).collect()
}

/// (key, `width` trailing bytes) entries as written for the memcached aux fields.
fn parse_keyed(v: &[u8], width: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    let mut p = 0;
    while p < v.len() {
        let (len, used) = match v[p] >> 6 {
            0 => ((v[p] & 0x3f) as usize, 1),
            1 if p + 1 < v.len() => ((((v[p] & 0x3f) as usize) << 8) | v[p + 1] as usize, 2),
            2 if p + 4 < v.len() && v[p] == 0x80 => {
                (u32::from_be_bytes([v[p + 1], v[p + 2], v[p + 3], v[p + 4]]) as usize, 5)
            }
            _ => break,
        };
        p += used;
        if p + len + width > v.len() {
            break;
        }
        out.push((v[p..p + len].to_vec(), v[p + len..p + len + width].to_vec()));
        p += len + width;
    }
    out
}

/// Decode a `ferrocache-mc-flags` aux value into (key, flags).
fn parse_mc_flags(v: &[u8]) -> Vec<(Vec<u8>, u32)> {
    parse_keyed(v, 4).into_iter().map(|(k, t)| (k, u32::from_le_bytes(t.try_into().unwrap_or([0; 4])))).collect()
}

fn encode_entry(enc: &EncCfg, key: &[u8], v: &Value, expire_at: u64, lru: u32, buf: &mut Vec<u8>, now: u64) {
    let mark = buf.len();
    if expire_at != 0 {
        buf.push(opcode::EXPIRETIME_MS);
        buf.extend_from_slice(&(expire_at as i64).to_le_bytes());
    }
    if enc.save_lru {
        buf.push(opcode::IDLE);
        write_len(buf, lru_idle_secs(lru, now));
    }
    if enc.save_lfu {
        buf.push(opcode::FREQ);
        buf.push(lfu_decr_and_return(lru, now, enc.lfu_decay) as u8);
    }
    let c = enc.opts.compression;
    if let Some(s) = v.as_bytes() {
        buf.push(rdb_type::STRING);
        write_string(buf, key, c);
        write_string(buf, s, c);
        return;
    }
    let rv = crate::rdb_bridge::to_rdb(v);
    let hint = match v.encoding() {
        "listpack" | "intset" => EncodingHint::Compact,
        "hashtable" | "skiplist" => EncodingHint::Plain,
        _ => EncodingHint::Auto,
    };
    let ty = choose_type(&rv, hint, &enc.opts);
    buf.push(ty);
    write_string(buf, key, c);
    if let Err(e) = write_value(buf, &rv, ty, &enc.opts) {
        buf.truncate(mark);
        log('#', &format!("Skipping key '{}' that can't be serialized: {}", String::from_utf8_lossy(key), e));
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

// ------------------------------------------------------------------ saving

/// A save or load that did not happen (the reason is logged).
#[derive(Debug)]
pub struct Failed;

/// Why a walk-based save did not produce a file.
enum SaveErr {
    /// Another snapshot is running.
    Busy,
    /// The temp file could not be created (logged).
    Open,
    Failed,
}

fn start_snapshot(srv: &Node) -> Result<Arc<Snapshot>, SaveErr> {
    if srv.persist.current.read().is_some() {
        return Err(SaveErr::Busy);
    }
    let id = srv.persist.next_id.fetch_add(1, Relaxed);
    start_snapshot_as(srv, id, SnapKind::Rdb, temp_name(id), dbfilename(srv), None, None)
}

/// The kind of the running snapshot, if any.
pub fn running_kind(srv: &Node) -> Option<SnapKind> {
    srv.persist.current.read().as_ref().map(|s| s.kind)
}

/// Start an AOF-rewrite snapshot writing `tmp`. `at_cut` runs with every shard held, at the
/// snapshot's point in time: writes before it are in the snapshot, writes after it are not.
pub fn start_aof_snapshot(
    srv: &Node,
    rdb: bool,
    tmp: String,
    at_cut: &mut dyn FnMut(),
) -> Result<Arc<Snapshot>, Failed> {
    let id = srv.persist.next_id.fetch_add(1, Relaxed);
    let kind = if rdb { SnapKind::AofRdb } else { SnapKind::AofCommands };
    start_snapshot_as(srv, id, kind, tmp.clone(), tmp, Some(at_cut), None).map_err(|_| Failed)
}

/// Walk a started snapshot to the end and finish its file (the AOF rewrite thread).
pub fn run_aof_snapshot(srv: &Node, s: &Arc<Snapshot>) -> bool {
    run_snapshot(srv, s)
}

/// `stream`: write the RDB there instead of `tmp` (diskless replication).
fn start_snapshot_as(
    srv: &Node,
    id: u64,
    kind: SnapKind,
    tmp: String,
    dest: String,
    at_cut: Option<&mut dyn FnMut()>,
    stream: Option<Box<dyn Write + Send>>,
) -> Result<Arc<Snapshot>, SaveErr> {
    // The file exists before the snapshot starts: writers append captured shards to it.
    let out = match stream
        .map(|w| Ok(RdbOut::with_stream(srv, w)))
        .unwrap_or_else(|| RdbOut::create_as(srv, tmp.clone(), kind))
    {
        Ok(o) => o,
        Err(e) => {
            log(
                '#',
                &format!(
                    "Failed opening the temp RDB file {} (in server root dir {}) for saving: {}",
                    tmp,
                    cwd(),
                    strerror(&e)
                ),
            );
            return Err(SaveErr::Open);
        }
    };
    let s = Arc::new(Snapshot {
        id,
        kind,
        dest,
        aborted: AtomicBool::new(false),
        out: Mutex::new(Some(out)),
        enc: EncCfg::from(srv),
        keys: AtomicU64::new(0),
        inflight: AtomicU64::new(0),
        peak: AtomicU64::new(0),
        progress: srv.persist.keys_processed.clone(),
    });
    // An AOF rewrite needs a clean cut against the write-effect stream: every shard is held
    // while the snapshot is published, so no write is half-way (modified but not propagated).
    let all = at_cut.as_ref().map(|_| srv.ks.lock_all());
    let mut cur = srv.persist.current.write();
    if cur.is_some() {
        drop(cur);
        drop(all);
        if let Some(o) = s.out.lock().take() {
            o.abandon();
        }
        return Err(SaveErr::Busy);
    }
    srv.persist.keys_total.store(0, Relaxed);
    srv.persist.keys_processed.store(0, Relaxed);
    if let Some(f) = at_cut {
        f();
    }
    *cur = Some(s.clone());
    srv.ks.snapshot.pre_peak.store(srv.ks.snapshot.pre_bytes(), Relaxed);
    // From here on, the first write of a key in a shard not yet captured keeps its pre-image.
    srv.ks.snapshot.active.store(id, SeqCst);
    drop(cur);
    drop(all);
    Ok(s)
}

fn temp_name(id: u64) -> String {
    format!("temp-{}-{}.rdb", std::process::id(), id)
}

fn dbfilename(srv: &Node) -> String {
    srv.config.get("dbfilename").unwrap_or_else(|| "dump.rdb".into())
}

/// Walk every shard of a started snapshot, then finish its file. Runs on the BGSAVE thread,
/// or on the caller for SAVE/SHUTDOWN. Returns true when the file was written and renamed.
fn run_snapshot(srv: &Node, s: &Arc<Snapshot>) -> bool {
    run_snapshot_then(srv, s, |_| {})
}

/// `run_snapshot`, calling `then(ok)` before another save may finish (the file is in place).
fn run_snapshot_then(srv: &Node, s: &Arc<Snapshot>, then: impl FnOnce(bool)) -> bool {
    let total: usize = srv.ks.db_counts().iter().map(|c| c.0).sum();
    srv.persist.keys_total.store(total as u64, Relaxed);
    let mut buf = Vec::new();
    for i in 0..srv.ks.num_shards() {
        if s.aborted.load(Relaxed) {
            break;
        }
        let n = {
            // Under the shard's lock only the copy (the encoding is done without it).
            let dbs = {
                let mut g = srv.ks.lock_one(i);
                if g.cow.captured == s.id {
                    continue;
                }
                g.take_snapshot(&srv.ks.snapshot, s.id)
            };
            s.encode(&dbs, &mut buf)
        };
        s.emit(std::mem::take(&mut buf), n);
        key_save_delay(srv, n);
    }
    let _fin = srv.persist.save_lock.lock();
    {
        let mut cur = srv.persist.current.write();
        if s.aborted.load(Relaxed) || cur.as_ref().is_none_or(|c| c.id != s.id) {
            drop(cur);
            if let Some(o) = s.out.lock().take() {
                o.abandon();
            }
            drop_pre_images(srv, s.id);
            then(false);
            return false;
        }
        *cur = None;
        srv.ks.snapshot.active.store(0, Release);
    }
    srv.persist.last_peak_buffer.store(s.peak.load(Relaxed) + srv.ks.snapshot.pre_peak.load(Relaxed) as u64, Relaxed);
    let out = s.out.lock().take();
    let ok = match out {
        Some(o) => o.finish(&s.dest),
        None => false,
    };
    then(ok);
    ok
}

/// After an aborted snapshot: free the pre-images writers kept for it. (No new ones are
/// added: `Shard::preserve` checks that the snapshot is still the active one.)
fn drop_pre_images(srv: &Node, id: u64) {
    for i in 0..srv.ks.num_shards() {
        let mut g = srv.ks.lock_one(i);
        if g.cow.id == id {
            g.cow.clear(&srv.ks.snapshot);
        }
    }
}

/// rdb-key-save-delay (debugDelay per key saved), slept by the walker after a shard, outside
/// its lock. Shards captured by writers are not delayed.
fn key_save_delay(srv: &Node, keys: u64) {
    let d = srv.config.get_i64("rdb-key-save-delay");
    if d == 0 || keys == 0 {
        return;
    }
    let us = if d > 0 {
        d as u64 * keys
    } else {
        // A negative value sleeps 1 us with probability 1/|d| per key.
        (0..keys).filter(|_| rand::random::<u64>().is_multiple_of(d.unsigned_abs())).count() as u64
    };
    std::thread::sleep(std::time::Duration::from_micros(us));
}

/// A snapshot for a replica's full sync. Its start is atomic with `at_start`: every shard is
/// held while the snapshot starts and `at_start` runs, so no write is in flight — each write
/// before it is in the snapshot and its effects were propagated before `at_start`; each write
/// after it sees the snapshot (captures its shards first) and is propagated after `at_start`.
/// `stream`: write the RDB there (diskless); None: save to `dbfilename` (disk-backed).
/// `then(ok)` runs on the snapshot thread once the RDB is complete (the file renamed).
#[allow(clippy::result_unit_err)]
pub fn repl_snapshot(
    srv: &Arc<Node>,
    stream: Option<Box<dyn Write + Send>>,
    at_start: impl FnOnce(),
    then: impl FnOnce(bool) + Send + 'static,
) -> Result<(), ()> {
    let disk = stream.is_none();
    let dirty_before = srv.counters.dirty.load(Relaxed);
    if srv.persist.current.read().is_some() {
        return Err(());
    }
    let id = srv.persist.next_id.fetch_add(1, Relaxed);
    let mut at_start = Some(at_start);
    let mut cut = || {
        if let Some(f) = at_start.take() {
            f()
        }
    };
    let s = start_snapshot_as(srv, id, SnapKind::Rdb, temp_name(id), dbfilename(srv), Some(&mut cut), stream)
        .map_err(|_| ())?;
    let srv2 = srv.clone();
    let spawned = std::thread::Builder::new().name("repl-snapshot".into()).spawn(move || {
        let ok = run_snapshot_then(&srv2, &s, then);
        if ok && disk {
            save_succeeded(&srv2, dirty_before);
        }
    });
    if spawned.is_err() {
        abort_running(srv, false);
        return Err(());
    }
    Ok(())
}

/// A snapshot (BGSAVE, SAVE, AOF rewrite or a replication transfer) is running.
pub fn snapshot_running(srv: &Node) -> bool {
    srv.persist.current.read().is_some()
}

/// Load an RDB stream into the shards held by `guards` (every shard): a replica's full sync.
pub fn load_rdb<R: std::io::Read>(srv: &Node, r: R, guards: &mut Guards) -> Result<(u64, u64), LoadError> {
    start_loading(srv, 0);
    let res = load_reader(srv, r, guards, false);
    stop_loading(srv);
    res
}

fn save_succeeded(srv: &Node, dirty_before: u64) {
    srv.persist.dirty_at_save.store(dirty_before, Relaxed);
    srv.last_save.store(now_ms() / 1000, Relaxed);
    srv.persist.bgsave_failed.store(false, Relaxed);
}

/// A synchronous save while writes continue (SAVE, SHUTDOWN, DEBUG RELOAD without locks).
fn save_walk(srv: &Node) -> Result<(), SaveErr> {
    let dirty_before = srv.counters.dirty.load(Relaxed);
    let s = start_snapshot(srv)?;
    if run_snapshot(srv, &s) {
        log('*', "DB saved on disk");
        save_succeeded(srv, dirty_before);
        Ok(())
    } else {
        Err(SaveErr::Failed)
    }
}

/// A synchronous save of the shards held by `guards` (every shard: FLUSHALL, DEBUG RELOAD).
fn save_held(srv: &Node, guards: &mut Guards) -> bool {
    let _fin = srv.persist.save_lock.lock();
    let dirty_before = srv.counters.dirty.load(Relaxed);
    let id = srv.persist.next_id.fetch_add(1, Relaxed);
    let tmp = temp_name(id);
    let mut out = match RdbOut::create(srv, tmp.clone()) {
        Ok(o) => o,
        Err(e) => {
            log(
                '#',
                &format!(
                    "Failed opening the temp RDB file {} (in server root dir {}) for saving: {}",
                    tmp,
                    cwd(),
                    strerror(&e)
                ),
            );
            return false;
        }
    };
    let enc = EncCfg::from(srv);
    let mut buf = Vec::new();
    let now = now_ms();
    guards.for_each_held(|_, sh| {
        buf.clear();
        for (db, t) in sh.dbs.iter().enumerate() {
            encode_db(&enc, db, t.iter(), &mut buf, now);
        }
        out.write(&buf);
    });
    if out.finish(&dbfilename(srv)) {
        log('*', "DB saved on disk");
        save_succeeded(srv, dirty_before);
        true
    } else {
        false
    }
}

/// rdbSaveBackground: start a BGSAVE thread. Err(Failed) when a snapshot is already running.
pub fn bgsave_start(srv: &Arc<Node>) -> Result<(), Failed> {
    let dirty_before = srv.counters.dirty.load(Relaxed);
    let p = &srv.persist;
    let s = match start_snapshot(srv) {
        Ok(s) => s,
        Err(SaveErr::Open) => {
            // Redis's child fails the same way after a successful fork.
            p.rdb_saves.fetch_add(1, Relaxed);
            p.last_bgsave_try.store(now_ms() / 1000, Relaxed);
            log('*', &format!("Background saving started by pid {}", std::process::id()));
            log('#', "Background saving error");
            p.bgsave_failed.store(true, Relaxed);
            p.last_bgsave_time_sec.store(0, Relaxed);
            return Ok(());
        }
        Err(_) => return Err(Failed),
    };
    p.rdb_saves.fetch_add(1, Relaxed);
    p.last_bgsave_try.store(now_ms() / 1000, Relaxed);
    p.bgsave_start_ms.store(now_ms(), Relaxed);
    p.bgsave_in_progress.store(true, Relaxed);
    log('*', &format!("Background saving started by pid {}", std::process::id()));
    let srv2 = srv.clone();
    let spawned = std::thread::Builder::new().name("bgsave".into()).spawn(move || {
        let srv = srv2;
        let ok = run_snapshot(&srv, &s);
        let p = &srv.persist;
        let secs = (now_ms().saturating_sub(p.bgsave_start_ms.load(Relaxed))) / 1000;
        p.last_bgsave_time_sec.store(secs as i64, Relaxed);
        if ok {
            log('*', "DB saved on disk");
            log('*', "Background saving terminated with success");
            save_succeeded(&srv, dirty_before);
        } else if s.aborted.load(Relaxed) {
            // Killed (SIGUSR1 in Redis): not an error.
            log('#', "Background saving terminated by signal 10");
        } else {
            log('#', "Background saving error");
            p.bgsave_failed.store(true, Relaxed);
        }
        p.bgsave_in_progress.store(false, Relaxed);
    });
    if let Err(e) = spawned {
        log('#', &format!("Can't save in background: fork: {}", e));
        abort_running(srv, false);
        srv.persist.bgsave_in_progress.store(false, Relaxed);
        srv.persist.bgsave_failed.store(true, Relaxed);
        return Err(Failed);
    }
    Ok(())
}

// ------------------------------------------------------------------ commands

fn save_cmd(ctx: &mut Ctx, _a: Args) {
    let srv = ctx.srv;
    match running_kind(srv) {
        Some(SnapKind::Rdb) => return ctx.out.error("ERR Background save already in progress"),
        Some(_) => {
            // An AOF rewrite is running: Redis saves synchronously next to its child. The
            // snapshot machinery serves one snapshot at a time, so this save holds every shard
            // (writes wait, as they do while Redis's SAVE blocks the event loop).
            srv.persist.rdb_saves.fetch_add(1, Relaxed);
            let mut all = srv.ks.lock_all();
            let ok = save_held(srv, &mut all);
            drop(all);
            return if ok { ctx.out.ok() } else { ctx.out.error("ERR") };
        }
        None => {}
    }
    srv.persist.rdb_saves.fetch_add(1, Relaxed);
    match save_walk(srv) {
        Ok(()) => ctx.out.ok(),
        Err(SaveErr::Busy) => ctx.out.error("ERR Background save already in progress"),
        Err(SaveErr::Failed | SaveErr::Open) => ctx.out.error("ERR"),
    }
}

fn bgsave_cmd(ctx: &mut Ctx, a: Args) {
    let mut schedule = false;
    if a.len() > 1 {
        if a.len() == 2 && eq_ic(&a[1], "schedule") {
            schedule = true;
        } else {
            return ctx.out.error(crate::util::ERR_SYNTAX);
        }
    }
    let srv = ctx.srv;
    match running_kind(srv) {
        Some(SnapKind::Rdb) => return ctx.out.error("ERR Background save already in progress"),
        Some(_) if !schedule && !ctx.client.in_exec => {
            return ctx.out.error("ERR Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible.")
        }
        Some(_) => {
            srv.persist.scheduled.store(true, Relaxed);
            return ctx.out.simple("Background saving scheduled");
        }
        None => {}
    }
    if ctx.client.in_exec {
        srv.persist.scheduled.store(true, Relaxed);
        return ctx.out.simple("Background saving scheduled");
    }
    match bgsave_start(srv) {
        Ok(()) => ctx.out.simple("Background saving started"),
        Err(Failed) => ctx.out.error("ERR Background save already in progress"),
    }
}

/// Save points are configured (`save` is not "").
pub fn save_params(srv: &Node) -> Vec<(u64, u64)> {
    let v = srv.config.get("save").unwrap_or_default();
    let p: Vec<u64> = v.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    p.chunks_exact(2).map(|c| (c[0], c[1])).collect()
}

/// Changes since the last successful save.
pub fn changes_since_save(srv: &Node) -> u64 {
    srv.counters.dirty.load(Relaxed).saturating_sub(srv.persist.dirty_at_save.load(Relaxed))
}

/// writeCommandsDeniedByDiskError: MISCONF for writes (and PING) after a failed BGSAVE.
#[inline]
pub fn writes_denied(srv: &Node) -> bool {
    srv.persist.bgsave_failed.load(Relaxed)
        && srv.config.get_bool("stop-writes-on-bgsave-error")
        && !save_params(srv).is_empty()
}

/// serverCron's part: save points and scheduled BGSAVEs. Called every cron tick.
pub fn cron(srv: &Arc<Node>) {
    let p = &srv.persist;
    if p.current.read().is_some() {
        return;
    }
    let now = now_ms() / 1000;
    let retry_ok =
        now.saturating_sub(p.last_bgsave_try.load(Relaxed)) > BGSAVE_RETRY_DELAY || !p.bgsave_failed.load(Relaxed);
    let dirty = changes_since_save(srv);
    let last = srv.last_save.load(Relaxed);
    for (secs, changes) in save_params(srv) {
        if dirty >= changes && now.saturating_sub(last) > secs && retry_ok {
            log('*', &format!("{} changes in {} seconds. Saving...", changes, secs));
            let _ = bgsave_start(srv);
            return;
        }
    }
    if p.scheduled.load(Relaxed) && retry_ok && bgsave_start(srv).is_ok() {
        p.scheduled.store(false, Relaxed);
    }
}

/// FLUSHALL with save points: save the (now empty) dataset, with every shard held. Returns
/// the dirty count the command should still add (Redis resets dirty in rdbSave).
pub fn after_flushall(ctx: &mut Ctx) {
    let srv = ctx.srv;
    if save_params(srv).is_empty() {
        return;
    }
    if save_held(srv, ctx.guards) {
        // The FLUSHALL's own dirty count is added after this; it is part of the save.
        let d = srv.counters.dirty.load(Relaxed) + ctx.fx.dirty;
        srv.persist.dirty_at_save.store(d, Relaxed);
    }
}

/// SHUTDOWN's save: Ok(()) to go on exiting, Err(Failed) when the save failed and the shutdown
/// must not proceed.
pub fn shutdown_save(srv: &Node, save: bool, nosave: bool, force: bool) -> Result<(), Failed> {
    // A partly loaded dataset is never saved (Redis turns SHUTDOWN into SHUTDOWN NOSAVE).
    let (save, nosave) = if is_loading(srv) { (false, true) } else { (save, nosave) };
    crate::aof::on_shutdown(srv);
    if abort_running(srv, true) {
        srv.persist.bgsave_in_progress.store(false, Relaxed);
    }
    if (!save_params(srv).is_empty() && !nosave) || save {
        log('*', "Saving the final RDB snapshot before exiting.");
        if save_walk(srv).is_err() {
            if force {
                log('#', "Error trying to save the DB. Exit anyway.");
            } else {
                log('#', "Error trying to save the DB, can't exit.");
                return Err(Failed);
            }
        }
    }
    Ok(())
}

/// DEBUG RELOAD [MERGE] [NOFLUSH] [NOSAVE].
pub fn debug_reload(ctx: &mut Ctx, a: Args) {
    let (mut merge, mut flush, mut save) = (false, true, true);
    for o in a.iter().skip(2) {
        if eq_ic(o, "merge") {
            merge = true;
        } else if eq_ic(o, "noflush") {
            flush = false;
        } else if eq_ic(o, "nosave") {
            save = false;
        } else {
            return ctx.out.error("ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.");
        }
    }
    let _ = merge;
    let srv = ctx.srv.clone();
    if ctx.client.in_exec && !ctx.guards.holds_all() {
        return ctx.out.error("ERR DEBUG RELOAD is not supported inside MULTI");
    }
    abort_running(&srv, false);
    let r = if ctx.guards.holds_all() {
        reload_with(&srv, ctx.guards, save, flush)
    } else {
        let mut own = srv.ks.lock_all();
        reload_with(&srv, &mut own, save, flush)
    };
    if flush {
        ctx.fx.flushed.push(None);
    }
    match r {
        Ok(()) => {
            log('#', "DB reloaded by DEBUG RELOAD");
            ctx.out.ok()
        }
        Err(e) => ctx.out.error(e),
    }
}

fn reload_with(srv: &Node, guards: &mut Guards, save: bool, flush: bool) -> Result<(), &'static str> {
    if save && !save_held(srv, guards) {
        return Err("ERR");
    }
    if flush {
        for d in 0..srv.num_dbs() {
            guards.for_each_shard(|s| s.dbs[d] = Default::default());
        }
    }
    load_into(srv, &dbfilename(srv), guards, false).map(|_| ()).map_err(|_| "ERR Error trying to load the RDB dump")
}

// ------------------------------------------------------------------ loading

/// Why loading failed.
#[derive(Debug)]
pub enum LoadError {
    NotFound,
    Io(std::io::Error),
    Rdb(RdbError),
}

fn limits(srv: &Node) -> EncodingLimits {
    let h = &srv.config.hot;
    EncodingLimits {
        hash_max_listpack_entries: h.hash_max_listpack_entries.load(Relaxed),
        hash_max_listpack_value: h.hash_max_listpack_value.load(Relaxed),
        set_max_intset_entries: h.set_max_intset_entries.load(Relaxed),
        zset_max_listpack_entries: h.zset_max_listpack_entries.load(Relaxed),
        zset_max_listpack_value: h.zset_max_listpack_value.load(Relaxed),
        list_max_listpack_size: h.list_max_listpack_size.load(Relaxed),
    }
}

/// rdbLoad into the shards held by `guards` (every shard), or with `per_key_locks` each key
/// under its own shard's lock (startup loading). Keys already expired are skipped.
pub fn load_into(srv: &Node, path: &str, guards: &mut Guards, per_key_locks: bool) -> Result<(u64, u64), LoadError> {
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(LoadError::NotFound),
        Err(e) => return Err(LoadError::Io(e)),
    };
    let size = f.metadata().map(|m| m.len()).unwrap_or(0);
    start_loading(srv, size);
    let r = load_reader(srv, std::io::BufReader::with_capacity(1 << 20, f), guards, per_key_locks);
    stop_loading(srv);
    r
}

/// loading_process_events_interval_bytes (Redis's default): the loader records its progress
/// and lets clients in every this many bytes.
pub const LOADING_INTERVAL_BYTES: u64 = 2 * 1024 * 1024;

/// startLoading: the node is loading `total_bytes` (0: unknown, e.g. a diskless transfer).
pub fn start_loading(srv: &Node, total_bytes: u64) {
    let p = &srv.persist;
    p.loading_start_time.store((now_ms() / 1000) as i64, Relaxed);
    p.loading_loaded_bytes.store(0, Relaxed);
    p.loading_total_bytes.store(total_bytes, Relaxed);
    p.loading_rdb_used_mem.store(0, Relaxed);
    p.loading_base.store(0, Relaxed);
    p.last_load_keys_expired.store(0, Relaxed);
    p.last_load_keys_loaded.store(0, Relaxed);
    p.loading.store(true, SeqCst);
}

/// stopLoading.
pub fn stop_loading(srv: &Node) {
    srv.persist.loading.store(false, SeqCst);
}

/// The node is loading its dataset: commands without the LOADING flag get -LOADING.
#[inline]
pub fn is_loading(srv: &Node) -> bool {
    srv.persist.loading.load(Relaxed)
}

pub const LOADING_ERR: &str = "LOADING Redis is loading the dataset in memory";

/// loadingAbsProgress + processEventsWhileBlocked: record the bytes loaded so far and start
/// serving clients (a no-op once they are served).
pub fn loading_progress(srv: &Node, loaded: u64) {
    srv.persist.loading_loaded_bytes.store(loaded, Relaxed);
    srv.persist.serve_during_load.notify_one();
}

/// A reader counting the bytes it delivered.
struct Progress<R> {
    r: R,
    n: Arc<AtomicU64>,
}

impl<R: std::io::Read> std::io::Read for Progress<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let k = self.r.read(buf)?;
        self.n.fetch_add(k as u64, Relaxed);
        Ok(k)
    }
}

/// Run `f` with the guards a loaded key is written under: its own shard's lock
/// (`per_key`), or the caller's `guards` (which hold every shard).
fn with_key_locked<T>(
    srv: &Node,
    guards: &mut Guards,
    per_key: bool,
    key: &[u8],
    f: impl FnOnce(&mut Guards) -> T,
) -> T {
    if per_key {
        let mut g = srv.ks.lock_key(key);
        f(&mut g)
    } else {
        f(guards)
    }
}

/// Run `f` on a key loaded earlier into database `at.0` (an aux field amending it), under the
/// key's own lock like every loaded key: during a startup load the caller's guards hold nothing,
/// and a lock taken through them would stay held (the next key of that shard then waits forever).
fn with_loaded_entry(
    srv: &Node,
    guards: &mut Guards,
    per_key: bool,
    at: (usize, u64, AccessPolicy),
    fx: &mut Effects,
    key: &[u8],
    f: impl FnOnce(&mut ferrocache_engine::keyspace::Entry),
) {
    let (db, now_ms, access) = at;
    with_key_locked(srv, guards, per_key, key, |g: &mut Guards| {
        let mut d = Db::new(g, fx, db, now_ms).with_access(access).expiring(false);
        if let Some(ent) = d.peek(key) {
            f(ent);
        }
    });
}

/// rdbLoad's reading part. `per_key_locks`: each key is inserted under its own shard's lock
/// (startup loading: the commands allowed while loading, INFO for one, walk the shards
/// meanwhile, as Redis serves them between two chunks); otherwise `guards` hold every shard.
pub(crate) fn load_reader<R: std::io::Read>(
    srv: &Node,
    r: R,
    guards: &mut Guards,
    per_key_locks: bool,
) -> Result<(u64, u64), LoadError> {
    let counted = Arc::new(AtomicU64::new(0));
    let r = Progress { r, n: counted.clone() };
    let base = srv.persist.loading_base.load(Relaxed);
    let mut tick = 0u64;
    let p = &srv.persist;
    p.last_load_keys_loaded.store(0, Relaxed);
    p.last_load_keys_expired.store(0, Relaxed);
    let mut reader =
        RdbReader::new(r).map_err(|e| report_load_error(&e))?.verify_checksum(srv.config.get_bool("rdbchecksum"));
    let now = now_ms();
    let lim = limits(srv);
    let policy = srv.config.policy();
    let access = AccessPolicy { lfu: policy.is_lfu(), ..Default::default() };
    let lru_policy = matches!(policy, EvictionPolicy::AllKeysLru | EvictionPolicy::VolatileLru);
    let mut fx = Effects::default();
    let (mut loaded, mut expired) = (0u64, 0u64);
    let mut cur_db = 0usize;
    loop {
        let ev = match reader.next_event() {
            Ok(Some(ev)) => ev,
            Ok(None) => break,
            Err(e) => return Err(report_load_error(&e)),
        };
        let pos = counted.load(Relaxed);
        if pos / LOADING_INTERVAL_BYTES != tick {
            tick = pos / LOADING_INTERVAL_BYTES;
            loading_progress(srv, base + pos);
        }
        match ev {
            RdbEvent::Aux { key, value } => {
                let v = String::from_utf8_lossy(&value);
                match key.as_slice() {
                    b"redis-ver" => log('*', &format!("Loading RDB produced by version {}", v)),
                    b"ctime" => {
                        let t: i64 = v.parse().unwrap_or(0);
                        log('*', &format!("RDB age {} seconds", (now as i64 / 1000 - t).max(0)));
                    }
                    b"used-mem" => {
                        let m: i64 = v.parse().unwrap_or(0);
                        log('*', &format!("RDB memory usage when created {:.2} Mb", m as f64 / (1024.0 * 1024.0)));
                        p.loading_rdb_used_mem.store(m.max(0) as u64, Relaxed);
                    }
                    b"aof-preamble" if v != "0" => log('*', "RDB has an AOF tail"),
                    b"aof-base" if v != "0" => log('*', "RDB is base AOF"),
                    k if k.first() == Some(&b'%') => log('*', &format!("RDB '{}': {}", String::from_utf8_lossy(k), v)),
                    MC_FLAGS_AUX => {
                        for (k, flags) in parse_mc_flags(&value) {
                            with_loaded_entry(srv, guards, per_key_locks, (cur_db, now, access), &mut fx, &k, |ent| {
                                if let Some(data) = ent.value.as_bytes() {
                                    let item = ferrocache_engine::mcitem::McItem::new(data, flags, (now / 1000) as u32);
                                    ent.value = Value::Mc(item);
                                }
                            });
                        }
                    }
                    MC_CAS_AUX => {
                        for (k, cas) in parse_mc_cas(&value) {
                            with_loaded_entry(srv, guards, per_key_locks, (cur_db, now, access), &mut fx, &k, |ent| {
                                if let Value::Mc(m) = &mut ent.value {
                                    m.set_cas(cas);
                                } else if let Some(data) = ent.value.as_bytes() {
                                    let mut item = ferrocache_engine::mcitem::McItem::new(data, 0, (now / 1000) as u32);
                                    item.set_cas(cas);
                                    ent.value = Value::Mc(item);
                                }
                            });
                            ferrocache_engine::mcitem::observe_cas(cas);
                        }
                    }
                    _ => {}
                }
            }
            RdbEvent::SelectDb(db) => {
                cur_db = db as usize;
                if db as usize >= srv.num_dbs() {
                    log('#', &format!("FATAL: Data file was created with a Redis server configured to handle more than {} databases. Exiting\n", srv.num_dbs()));
                    return Err(LoadError::Rdb(RdbError::Corrupt("database index out of range".into())));
                }
            }
            RdbEvent::Entry(e) => {
                if e.expire_ms.is_some_and(|t| t < now as i64) {
                    expired += 1;
                    continue;
                }
                let Some(v) = crate::rdb_bridge::from_rdb(e.value, &lim) else { continue };
                if !matches!(v, Value::Str(_) | Value::Raw(_) | Value::Stream(_)) && v.is_empty() {
                    log('#', &format!("rdbLoadObject skipping empty key: {}", String::from_utf8_lossy(&e.key)));
                    continue;
                }
                with_key_locked(srv, guards, per_key_locks, &e.key, |g: &mut Guards| {
                    let mut db = Db::new(g, &mut fx, e.db as usize, now).with_access(access).expiring(false);
                    db.insert_new(&e.key, v, e.expire_ms.map(|t| t.max(1) as u64).unwrap_or(0));
                    if let Some(ent) = db.peek(&e.key) {
                        if access.lfu {
                            if let Some(f) = e.lfu_freq {
                                ent.lru = (initial_lru(&access, now) & !0xff) | f as u32;
                            }
                        } else if lru_policy {
                            if let Some(idle) = e.lru_idle {
                                ent.lru = lru_clock(now.saturating_sub(idle.saturating_mul(1000)));
                            }
                        }
                    }
                });
                loaded += 1;
                fx.propagate.clear();
                fx.touched.clear();
                fx.events.clear();
            }
            RdbEvent::Function(code) => {
                if let Err(e) = crate::scripting::load_library(srv, &code) {
                    log('#', &format!("Failed loading library from RDB: {}", e));
                }
            }
            RdbEvent::ModuleAux { module_name, .. } => {
                log(
                    '#',
                    &format!(
                        "The RDB file contains AUX module data I can't load: no matching module '{}'",
                        module_name
                    ),
                );
                return Err(LoadError::Rdb(RdbError::Corrupt("module aux".into())));
            }
            RdbEvent::ResizeDb { .. } | RdbEvent::Eof => {}
        }
    }
    p.last_load_keys_loaded.store(loaded, Relaxed);
    p.last_load_keys_expired.store(expired, Relaxed);
    log('*', &format!("Done loading RDB, keys loaded: {}, keys expired: {}.", loaded, expired));
    Ok((loaded, expired))
}

fn report_load_error(e: &RdbError) -> LoadError {
    match e {
        RdbError::BadSignature => log('#', "Wrong signature trying to load DB from file"),
        RdbError::UnsupportedVersion(v) => log('#', &format!("Can't handle RDB format version {}", v)),
        RdbError::ChecksumMismatch { expected, computed } => {
            log('#', &format!("Wrong RDB checksum expected: ({:x}) but got ({:x}). Aborting now.", computed, expected));
            log('#', "Internal error in RDB reading offset 0, function at rdb.c:0 -> RDB CRC error");
        }
        RdbError::UnexpectedEof | RdbError::Io(_) => {
            log('#', "Short read or OOM loading DB. Unrecoverable error, aborting now.");
            log('#', "Internal error in RDB reading offset 0, function at rdb.c:0 -> Unexpected EOF reading RDB file");
        }
        RdbError::ModuleValue { module_name, .. } => {
            log('#', &format!("The RDB file contains module data I can't load: no matching module '{}'", module_name))
        }
        other => log('#', &format!("Internal error in RDB reading offset 0, function at rdb.c:0 -> {}", other)),
    }
    log('#', "Terminating server after rdb file reading failure.");
    LoadError::Rdb(match e {
        RdbError::Io(io) => RdbError::Corrupt(io.to_string()),
        other => RdbError::Corrupt(other.to_string()),
    })
}

/// loadDataFromDisk at startup. Err(Failed) means the server must exit(1).
pub fn load_at_startup(srv: &Node) -> Result<(), Failed> {
    let start = std::time::Instant::now();
    let path = dbfilename(srv);
    // Nothing else writes while loading (commands that write are refused, the cron is not
    // running yet): each key is inserted under its own shard's lock.
    let mut g = srv.ks.lock_shards(&[]);
    let r = load_into(srv, &path, &mut g, true);
    drop(g);
    match r {
        Ok(_) => {
            log('*', &format!("DB loaded from disk: {:.3} seconds", start.elapsed().as_secs_f64()));
            srv.persist.dirty_at_save.store(srv.counters.dirty.load(Relaxed), Relaxed);
            Ok(())
        }
        Err(LoadError::NotFound) => Ok(()),
        Err(LoadError::Io(e)) => {
            log('#', &format!("Fatal error loading the DB: {}. Exiting.", strerror(&e)));
            Err(Failed)
        }
        Err(LoadError::Rdb(_)) => Err(Failed),
    }
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
        "loading:{}\r\nasync_loading:0\r\ncurrent_cow_peak:{}\r\ncurrent_cow_size:{}\r\ncurrent_cow_size_age:0\r\ncurrent_fork_perc:{:.2}\r\ncurrent_save_keys_processed:{}\r\ncurrent_save_keys_total:{}\r\nrdb_changes_since_last_save:{}\r\nrdb_bgsave_in_progress:{}\r\nrdb_last_save_time:{}\r\nrdb_last_bgsave_status:{}\r\nrdb_last_bgsave_time_sec:{}\r\nrdb_current_bgsave_time_sec:{}\r\nrdb_saves:{}\r\nrdb_last_cow_size:{}\r\nrdb_last_load_keys_expired:{}\r\nrdb_last_load_keys_loaded:{}\r\n",
        p.loading.load(Relaxed) as u8,
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
