//! The append-only file, Redis 7's multi-part layout: `appenddirname/` holds a base file
//! (`<appendfilename>.<n>.base.rdb` or `.base.aof`), incremental files
//! (`<appendfilename>.<n>.incr.aof`) and the manifest (`<appendfilename>.manifest`, Redis 7.0's
//! exact format, see `ferrocache_persistence::aof`), so redis-server and `redis-check-aof` read
//! what we write and the other way round.
//!
//! Fed only from the write-effect stream: `AofSink` is an `EffectSink`. It is called with the
//! command's shard locks held, in effect order, and appends `SELECT` (when the database
//! changes), an optional `#TS:` annotation and the RESP command to an in-memory buffer. Before
//! a connection writes its replies (`before_reply`, called by the server crate), the buffer is
//! written to the incr file — so, as in Redis, a reply is never sent before its write reached the
//! kernel. `appendfsync always` also fsyncs there, before the reply (group commit: one fsync
//! covers every write buffered so far; the cost is one fsync latency per reply batch, paid by the
//! connection's worker thread). `everysec` fsyncs from a background thread once a second; `no`
//! leaves it to the OS. Transactions reach the sink wrapped in MULTI/EXEC
//! (`Node::begin_exec_unit`).
//!
//! BGREWRITEAOF without fork: a point-in-time snapshot (the copy-before-write machinery of
//! `persistence.rs`) writes the new base file while writes go on. At the snapshot's start — with
//! every shard held, so no write is half-way — the sink switches to a new incr file: writes before
//! the cut are in the snapshot, writes after it are in the new incr file. When the base is
//! complete the manifest is switched atomically (temp file + rename + dir fsync) and the
//! previous base and incr files become history and are deleted.
//!
//! Loading (startup, `appendonly yes`): manifest → base (RDB, or commands) → incr files, each
//! command replayed through the executor by a fake client, as Redis does.

use crate::client::{Client, ClientShared};
use crate::node::{now_ms, EffectSink, Node};
use crate::persistence::{self, Failed, SnapKind};
use crate::table::{flags::*, lookup_sub, table};
use crate::Ctx;
use ferrocache_engine::Entry;
use ferrocache_engine::Value;
use ferrocache_persistence::aof::{
    display_name, encode_command, AofCommandReader, AofReadError, Manifest, MANIFEST_NAME_SUFFIX, TEMP_FILE_NAME_PREFIX,
};
use ferrocache_persistence::rdb::RdbValue;
use ferrocache_protocol::resp::{OwnedArgs, ReplyBuf};
use parking_lot::Mutex;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering::*};
use std::sync::Arc;

mod load;
mod rewrite;
mod sink;
pub use load::*;
pub use rewrite::*;
pub use sink::*;

pub const OFF: u8 = 0;
pub const ON: u8 = 1;
pub const WAIT_REWRITE: u8 = 2;

const FSYNC_NO: u8 = 0;
const FSYNC_ALWAYS: u8 = 1;
const FSYNC_EVERYSEC: u8 = 2;

/// Elements per command when a collection is rewritten as commands (AOF_REWRITE_ITEMS_PER_CMD).
const ITEMS_PER_CMD: usize = 64;

fn log(level: char, msg: &str) {
    persistence::log_line(level, msg);
}

fn strerror(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// The sink's side: the file being appended to and the buffer not yet written.
struct Inner {
    file: Option<Arc<File>>,
    /// Bumped at every file switch (fsync bookkeeping).
    gen: u64,
    buf: Vec<u8>,
    selected_db: i64,
    cur_ts: u64,
    /// Bytes written to the current incr file (aof_last_incr_size).
    written: u64,
}

/// Control state: the manifest (never touched under shard locks).
struct Control {
    manifest: Manifest,
}

/// Node-wide AOF state (`srv.aof`).
pub struct Aof {
    pub state: AtomicU8,
    fsync: AtomicU8,
    timestamps: AtomicBool,
    inner: Mutex<Inner>,
    /// (file generation, bytes of it known to be fsynced): group commit for `always`.
    synced: Mutex<(u64, u64)>,
    ctl: Mutex<Control>,
    pending: AtomicBool,
    sink_added: AtomicBool,
    thread_started: AtomicBool,
    pub rewrite_in_progress: AtomicBool,
    /// Taken by the one caller starting a rewrite, until that rewrite's done-handler ends
    /// (rewrite_in_progress, what INFO shows, is set only once it really started).
    pub rewrite_claimed: AtomicBool,
    pub rewrite_scheduled: AtomicBool,
    rewrite_start: AtomicI64,
    last_rewrite_time: AtomicI64,
    last_bgrewrite_ok: AtomicBool,
    rewrites: AtomicU64,
    consecutive_failures: AtomicU64,
    last_write_ok: AtomicBool,
    last_write_err: Mutex<String>,
    current_size: AtomicU64,
    base_size: AtomicU64,
    delayed_fsync: AtomicU64,
}

impl Default for Aof {
    fn default() -> Self {
        Aof {
            state: AtomicU8::new(OFF),
            fsync: AtomicU8::new(FSYNC_EVERYSEC),
            timestamps: AtomicBool::new(false),
            inner: Mutex::new(Inner { file: None, gen: 0, buf: Vec::new(), selected_db: -1, cur_ts: 0, written: 0 }),
            synced: Mutex::new((0, 0)),
            ctl: Mutex::new(Control { manifest: Manifest::default() }),
            pending: AtomicBool::new(false),
            sink_added: AtomicBool::new(false),
            thread_started: AtomicBool::new(false),
            rewrite_in_progress: AtomicBool::new(false),
            rewrite_claimed: AtomicBool::new(false),
            rewrite_scheduled: AtomicBool::new(false),
            rewrite_start: AtomicI64::new(-1),
            last_rewrite_time: AtomicI64::new(-1),
            last_bgrewrite_ok: AtomicBool::new(true),
            rewrites: AtomicU64::new(0),
            consecutive_failures: AtomicU64::new(0),
            last_write_ok: AtomicBool::new(true),
            last_write_err: Mutex::new(String::new()),
            current_size: AtomicU64::new(0),
            base_size: AtomicU64::new(0),
            delayed_fsync: AtomicU64::new(0),
        }
    }
}

fn dirname(srv: &Node) -> PathBuf {
    PathBuf::from(srv.config.get("appenddirname").unwrap_or_else(|| "appendonlydir".into()))
}

fn filename(srv: &Node) -> String {
    srv.config.get("appendfilename").unwrap_or_else(|| "appendonly.aof".into())
}

/// A manifest file name as a path component (Unix file names are bytes).
fn os(name: &[u8]) -> &std::ffi::OsStr {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::OsStr::from_bytes(name)
}

fn file_size(p: &Path) -> std::io::Result<u64> {
    std::fs::metadata(p).map(|m| m.len())
}

fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Read the config values the write path uses into atomics.
pub fn refresh_config(srv: &Node) {
    let p = match srv.config.get("appendfsync").as_deref() {
        Some("always") => FSYNC_ALWAYS,
        Some("no") => FSYNC_NO,
        _ => FSYNC_EVERYSEC,
    };
    srv.aof.fsync.store(p, Relaxed);
    srv.aof.timestamps.store(srv.config.get_bool("aof-timestamp-enabled"), Relaxed);
}

// ------------------------------------------------------------------ start / stop

/// startAppendOnly (CONFIG SET appendonly yes).
pub fn start(srv: &Arc<Node>, in_exec: bool) -> Result<(), Failed> {
    let aof = &srv.aof;
    refresh_config(srv);
    aof.state.store(WAIT_REWRITE, SeqCst);
    ensure_sink(srv);
    match persistence::running_kind(srv) {
        Some(SnapKind::Rdb) => {
            aof.rewrite_scheduled.store(true, Relaxed);
            log('#', "AOF was enabled but there is already another background operation. An AOF background was scheduled to start when possible.");
        }
        Some(_) => {
            log('#', "AOF was enabled but there is already an AOF rewriting in background. Stopping background AOF and starting a rewrite now.");
            persistence::abort_running(srv, false);
            aof.rewrite_scheduled.store(true, Relaxed);
        }
        None if in_exec => {
            aof.rewrite_scheduled.store(true, Relaxed);
            log('#', "AOF was enabled during a transaction. An AOF background was scheduled to start when possible.");
        }
        None => {
            if rewrite_background(srv).is_err() {
                aof.state.store(OFF, SeqCst);
                log('#', "Redis needs to enable the AOF but can't trigger a background AOF rewrite operation. Check the above logs for more info about the error.");
                return Err(Failed);
            }
        }
    }
    if !aof.last_write_ok.swap(true, Relaxed) {
        log('#', "AOF reopen, just ignore the last error.");
    }
    Ok(())
}

/// stopAppendOnly (CONFIG SET appendonly no).
pub fn stop(srv: &Node) {
    let aof = &srv.aof;
    close_file(srv, true);
    aof.state.store(OFF, SeqCst);
    aof.rewrite_scheduled.store(false, Relaxed);
    if persistence::running_kind(srv).is_some_and(|k| k != SnapKind::Rdb) {
        log('*', &format!("Killing running AOF rewrite child: {}", std::process::id()));
        persistence::abort_running(srv, false);
    }
}

/// CONFIG SET hook: apply appendonly / appendfsync / aof-timestamp-enabled changes.
pub fn config_changed(ctx: &mut Ctx, names: &[String]) -> Result<(), String> {
    refresh_config(ctx.srv);
    if names.iter().any(|n| n == "appendonly") {
        let want = ctx.srv.config.get_bool("appendonly");
        let state = ctx.srv.aof.state.load(SeqCst);
        if !want && state != OFF {
            stop(ctx.srv);
        } else if want && state == OFF && start(ctx.srv, ctx.client.in_exec).is_err() {
            return Err("ERR CONFIG SET failed (possibly related to argument 'appendonly') - Unable to turn on AOF. Check server logs.".into());
        }
    }
    Ok(())
}

/// SHUTDOWN: kill a running rewrite, write and fsync what is buffered.
pub fn on_shutdown(srv: &Node) {
    if persistence::running_kind(srv).is_some_and(|k| k != SnapKind::Rdb) {
        log('#', "There is a child rewriting the AOF. Killing it!");
        persistence::abort_running(srv, false);
    }
    if srv.aof.state.load(SeqCst) != OFF {
        log('*', "Calling fsync() on the AOF file.");
        if let Some((f, _, _)) = write_pending(srv) {
            let _ = f.sync_data();
        }
    }
}

/// writeCommandsDeniedByDiskError's AOF part: the MISCONF error text, if writes are denied.
pub fn writes_denied(srv: &Node) -> Option<String> {
    if srv.aof.state.load(Relaxed) != OFF && !srv.aof.last_write_ok.load(Relaxed) {
        return Some(format!("MISCONF Errors writing to the AOF file: {}", srv.aof.last_write_err.lock()));
    }
    None
}

/// serverCron's AOF part: scheduled and automatic rewrites. Runs off the async workers.
pub fn cron(srv: &Arc<Node>) {
    let aof = &srv.aof;
    if persistence::running_kind(srv).is_some() || aof.rewrite_in_progress.load(SeqCst) {
        return;
    }
    if aof.rewrite_scheduled.load(Relaxed) {
        let _ = rewrite_background(srv);
        return;
    }
    let perc = srv.config.get_i64("auto-aof-rewrite-percentage");
    let min = srv.config.get_i64("auto-aof-rewrite-min-size").max(0) as u64;
    let cur = aof.current_size.load(Relaxed);
    if aof.state.load(SeqCst) == ON && perc > 0 && cur > min {
        let base = aof.base_size.load(Relaxed).max(1);
        let growth = (cur * 100 / base) as i64 - 100;
        if growth >= perc && aof.consecutive_failures.load(Relaxed) < 3 {
            log('*', &format!("Starting automatic rewriting of AOF on {}% growth", growth));
            let _ = rewrite_background(srv);
        }
    }
}

/// What BGREWRITEAOF did (the handler renders it).
#[derive(Debug, PartialEq, Eq)]
pub enum RewriteOutcome {
    Started,
    Scheduled,
    /// A rewrite runs already (or another client's started first).
    Busy,
    Failed,
}

/// BGREWRITEAOF: start a rewrite now, or schedule it behind a running save (or inside EXEC).
pub fn rewrite_request(srv: &Arc<Node>, in_exec: bool) -> RewriteOutcome {
    let aof = &srv.aof;
    if aof.rewrite_in_progress.load(SeqCst) {
        RewriteOutcome::Busy
    } else if persistence::running_kind(srv).is_some() || in_exec {
        aof.rewrite_scheduled.store(true, Relaxed);
        aof.consecutive_failures.store(0, Relaxed);
        RewriteOutcome::Scheduled
    } else if rewrite_background(srv).is_ok() {
        RewriteOutcome::Started
    } else if aof.rewrite_claimed.load(SeqCst) {
        // Another client's rewrite started first.
        RewriteOutcome::Busy
    } else {
        RewriteOutcome::Failed
    }
}

// ------------------------------------------------------------------ INFO

/// The aof_* part of INFO persistence.
pub fn info(srv: &Node) -> String {
    let aof = &srv.aof;
    let in_progress = aof.rewrite_in_progress.load(Relaxed);
    let start = aof.rewrite_start.load(Relaxed);
    let cur = if in_progress && start >= 0 { (now_ms() / 1000) as i64 - start } else { -1 };
    let mut s = format!(
        "aof_enabled:{}\r\naof_rewrite_in_progress:{}\r\naof_rewrite_scheduled:{}\r\naof_last_rewrite_time_sec:{}\r\naof_current_rewrite_time_sec:{}\r\naof_last_bgrewrite_status:{}\r\naof_rewrites:{}\r\naof_rewrites_consecutive_failures:{}\r\naof_last_write_status:{}\r\naof_last_cow_size:0\r\nmodule_fork_in_progress:0\r\nmodule_fork_last_cow_size:0\r\n",
        (aof.state.load(Relaxed) != OFF) as u8,
        in_progress as u8,
        aof.rewrite_scheduled.load(Relaxed) as u8,
        aof.last_rewrite_time.load(Relaxed),
        cur,
        if aof.last_bgrewrite_ok.load(Relaxed) { "ok" } else { "err" },
        aof.rewrites.load(Relaxed),
        aof.consecutive_failures.load(Relaxed),
        if aof.last_write_ok.load(Relaxed) { "ok" } else { "err" },
    );
    if srv.config.get_bool("appendonly") {
        let buffered = aof.inner.lock().buf.len();
        s.push_str(&format!(
            "aof_current_size:{}\r\naof_base_size:{}\r\naof_pending_rewrite:{}\r\naof_buffer_length:{}\r\naof_pending_bio_fsync:0\r\naof_delayed_fsync:{}\r\n",
            aof.current_size.load(Relaxed),
            aof.base_size.load(Relaxed),
            aof.rewrite_scheduled.load(Relaxed) as u8,
            buffered,
            aof.delayed_fsync.load(Relaxed),
        ));
    }
    s.push_str(&persistence::info_loading(srv));
    s
}
