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
use crate::table::{flags::*, lookup_sub, table, Command};
use crate::Ctx;
use ferrocache_engine::Entry;
use ferrocache_engine::Value;
use ferrocache_persistence::aof::{
    display_name, encode_command, AofCommandReader, AofReadError, Manifest, MANIFEST_NAME_SUFFIX, TEMP_FILE_NAME_PREFIX,
};
use ferrocache_persistence::rdb::RdbValue;
use ferrocache_protocol::resp::{Args, OwnedArgs, ReplyBuf};
use parking_lot::Mutex;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering::*};
use std::sync::Arc;

pub static COMMANDS: &[Command] =
    &[Command::new("bgrewriteaof", 1, ADMIN | NOSCRIPT, (0, 0, 0), bgrewriteaof_cmd).group("server")];

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

// ------------------------------------------------------------------ the sink

struct AofSink(Arc<Node>);

impl EffectSink for AofSink {
    fn propagate(&self, db: usize, argv: &[&[u8]]) {
        let aof = &self.0.aof;
        // PUBLISH goes to replicas only (Redis's PROPAGATE_REPL).
        if aof.state.load(Relaxed) == OFF || argv.first().is_some_and(|c| c.eq_ignore_ascii_case(b"publish")) {
            return;
        }
        let mut g = aof.inner.lock();
        if g.file.is_none() {
            // WAIT_REWRITE before the rewrite's cut: the snapshot will hold this write.
            return;
        }
        if aof.timestamps.load(Relaxed) {
            let now = now_ms() / 1000;
            if g.cur_ts < now {
                g.cur_ts = now;
                g.buf.extend_from_slice(format!("#TS:{}\r\n", now).as_bytes());
            }
        }
        if db as i64 != g.selected_db {
            let d = db.to_string();
            g.buf.extend_from_slice(format!("*2\r\n$6\r\nSELECT\r\n${}\r\n{}\r\n", d.len(), d).as_bytes());
            g.selected_db = db as i64;
        }
        encode_command(&mut g.buf, argv);
        aof.pending.store(true, Release);
    }
}

fn ensure_sink(srv: &Arc<Node>) {
    if !srv.aof.sink_added.swap(true, SeqCst) {
        srv.add_sink(Arc::new(AofSink(srv.clone())));
    }
    if !srv.aof.thread_started.swap(true, SeqCst) {
        let s = srv.clone();
        let _ = std::thread::Builder::new().name("aof-fsync".into()).spawn(move || background(s));
    }
}

/// Everysec fsync and the flush of buffers no reply has flushed (active expiry, ...).
fn background(srv: Arc<Node>) {
    let mut last_sync = std::time::Instant::now();
    loop {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let aof = &srv.aof;
        if aof.state.load(Relaxed) == OFF {
            continue;
        }
        let w = write_pending(&srv);
        if aof.fsync.load(Relaxed) == FSYNC_EVERYSEC && last_sync.elapsed() >= std::time::Duration::from_secs(1) {
            last_sync = std::time::Instant::now();
            if let Some((f, gen, end)) = w {
                let mut s = aof.synced.lock();
                if s.0 != gen || s.1 < end {
                    if let Err(e) = f.sync_data() {
                        log('#', &format!("Can't persist append only file: {}", strerror(&e)));
                        aof.last_write_ok.store(false, Relaxed);
                        *aof.last_write_err.lock() = strerror(&e);
                    } else {
                        *s = (gen, end);
                    }
                }
            }
        }
    }
}

/// Write the buffer to the current file. Returns the file, its generation and its size.
fn write_pending(srv: &Node) -> Option<(Arc<File>, u64, u64)> {
    let aof = &srv.aof;
    let mut g = aof.inner.lock();
    let f = g.file.clone()?;
    if !g.buf.is_empty() {
        match (&*f).write_all(&g.buf) {
            Ok(()) => {
                let n = g.buf.len() as u64;
                g.written += n;
                aof.current_size.fetch_add(n, Relaxed);
                if g.buf.capacity() > 4 << 20 {
                    g.buf = Vec::new();
                } else {
                    g.buf.clear();
                }
                if !aof.last_write_ok.swap(true, Relaxed) {
                    log('#', "AOF write error looks solved, Redis can write again.");
                }
            }
            Err(e) => {
                // Remove a partial write so the file stays a sequence of whole commands.
                let _ = f.set_len(g.written);
                if aof.fsync.load(Relaxed) == FSYNC_ALWAYS {
                    log(
                        '#',
                        &format!(
                            "Can't recover from AOF write error when the AOF fsync policy is 'always'. Exiting... ({})",
                            strerror(&e)
                        ),
                    );
                    std::process::exit(1);
                }
                if aof.last_write_ok.swap(false, Relaxed) {
                    log('#', &format!("Error writing to the AOF file: {}", strerror(&e)));
                }
                *aof.last_write_err.lock() = strerror(&e);
                return None;
            }
        }
        aof.pending.store(false, Relaxed);
    }
    Some((f, g.gen, g.written))
}

/// Called by a connection before it writes its replies: the writes those replies acknowledge
/// reach the file (and, with `appendfsync always`, the disk) first.
#[inline]
pub fn before_reply(srv: &Node) {
    if srv.aof.pending.load(Acquire) {
        flush(srv);
    }
}

#[cold]
fn flush(srv: &Node) {
    let Some((f, gen, end)) = write_pending(srv) else { return };
    if srv.aof.fsync.load(Relaxed) == FSYNC_ALWAYS {
        let mut s = srv.aof.synced.lock();
        if s.0 != gen || s.1 < end {
            if let Err(e) = f.sync_data() {
                log('#', &format!("Can't persist append only file: {}. Exiting...", strerror(&e)));
                std::process::exit(1);
            }
            *s = (gen, end);
        }
    }
}

/// Switch the sink to a new incr file (with every shard held, or when no rewrite runs). The
/// old file's buffered writes go to the old file first; it is fsynced and closed in the
/// background.
fn switch_file(srv: &Node, f: File) {
    let aof = &srv.aof;
    let mut g = aof.inner.lock();
    if let Some(old) = g.file.clone() {
        if !g.buf.is_empty() {
            if (&*old).write_all(&g.buf).is_ok() {
                aof.current_size.fetch_add(g.buf.len() as u64, Relaxed);
            } else {
                log('#', "Error writing the last commands to the previous AOF incr file");
            }
            g.buf.clear();
        }
        std::thread::spawn(move || {
            let _ = old.sync_data();
        });
    }
    g.file = Some(Arc::new(f));
    g.gen += 1;
    g.written = 0;
    g.selected_db = -1;
    // Each incr file starts with its own timestamp annotation (when enabled).
    g.cur_ts = 0;
    aof.pending.store(false, Relaxed);
}

fn close_file(srv: &Node, sync: bool) {
    let _ = write_pending(srv);
    let mut g = srv.aof.inner.lock();
    if let Some(f) = g.file.take() {
        if sync {
            if let Err(e) = f.sync_data() {
                log('#', &format!("Fail to fsync the AOF file: {}", strerror(&e)));
            }
        }
    }
    g.buf.clear();
    g.selected_db = -1;
    g.written = 0;
    srv.aof.pending.store(false, Relaxed);
}

// ------------------------------------------------------------------ manifest IO

fn persist_manifest(srv: &Node, am: &mut Manifest) -> Result<(), Failed> {
    if !am.dirty {
        return Ok(());
    }
    let dir = dirname(srv);
    let name = format!("{}{}", filename(srv), MANIFEST_NAME_SUFFIX);
    let tmp_name = format!("{}{}", TEMP_FILE_NAME_PREFIX, name);
    let tmp = dir.join(&tmp_name);
    let r = (|| -> Result<(), String> {
        let mut f = File::create(&tmp)
            .map_err(|e| format!("Can't open the AOF manifest file {}: {}", tmp_name, strerror(&e)))?;
        f.write_all(am.format().as_bytes()).map_err(|e| {
            format!("Error trying to write the temporary AOF manifest file {}: {}", tmp_name, strerror(&e))
        })?;
        f.sync_all().map_err(|e| format!("Fail to fsync the temp AOF file {}: {}.", tmp_name, strerror(&e)))?;
        std::fs::rename(&tmp, dir.join(&name)).map_err(|e| {
            format!(
                "Error trying to rename the temporary AOF manifest file {} into {}: {}",
                tmp_name,
                name,
                strerror(&e)
            )
        })?;
        fsync_dir(&dir)
            .map_err(|e| format!("Fail to fsync AOF directory {}: {}.", dir.join(&name).display(), strerror(&e)))?;
        Ok(())
    })();
    match r {
        Ok(()) => {
            am.dirty = false;
            Ok(())
        }
        Err(m) => {
            log('#', &m);
            Err(Failed)
        }
    }
}

/// aofLoadManifestFromDisk (fatal on a corrupt manifest, as Redis).
fn load_manifest(srv: &Node) -> Result<Manifest, Failed> {
    let dir = dirname(srv);
    if !dir.is_dir() {
        return Ok(Manifest::default());
    }
    let path = dir.join(format!("{}{}", filename(srv), MANIFEST_NAME_SUFFIX));
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Manifest::default()),
        Err(e) => {
            log(
                '#',
                &format!(
                    "Fatal error: can't open the AOF manifest file {} for reading: {}",
                    path.display(),
                    strerror(&e)
                ),
            );
            return Err(Failed);
        }
    };
    Manifest::parse(&text).map_err(|e| {
        log('#', "\n*** FATAL AOF MANIFEST FILE ERROR ***\n");
        if let Some(t) = &e.text {
            log('#', &format!("Reading the manifest file, at line {}\n", e.line));
            log('#', &format!(">>> '{}'\n", t));
        }
        log('#', &format!("{}\n", e.msg));
        Failed
    })
}

fn del_history_files(srv: &Node, am: &mut Manifest) {
    if am.history.is_empty() {
        return;
    }
    let dir = dirname(srv);
    for h in std::mem::take(&mut am.history) {
        log('*', &format!("Removing the history file {} in the background", display_name(&h.file_name)));
        let p = dir.join(os(&h.file_name));
        std::thread::spawn(move || {
            let _ = std::fs::remove_file(p);
        });
    }
    am.dirty = true;
    let _ = persist_manifest(srv, am);
}

// ------------------------------------------------------------------ rewrite

fn temp_incr_name(srv: &Node) -> String {
    format!("{}{}.incr", TEMP_FILE_NAME_PREFIX, filename(srv))
}

fn open_trunc(p: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new().write(true).create(true).truncate(true).open(p)
}

/// `rewrite_claimed` taken by one caller; released on drop unless kept (the rewrite
/// started and its done-handler releases it).
struct RewriteClaim<'a>(Option<&'a AtomicBool>);

impl<'a> RewriteClaim<'a> {
    fn take(flag: &'a AtomicBool) -> Option<Self> {
        flag.compare_exchange(false, true, SeqCst, SeqCst).ok().map(|_| RewriteClaim(Some(flag)))
    }
    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for RewriteClaim<'_> {
    fn drop(&mut self) {
        if let Some(f) = self.0 {
            f.store(false, SeqCst);
        }
    }
}

/// rewriteAppendOnlyFileBackground. Err when it could not start (logged).
pub fn rewrite_background(srv: &Arc<Node>) -> Result<(), Failed> {
    let aof = &srv.aof;
    if persistence::running_kind(srv).is_some() {
        return Err(Failed);
    }
    // One rewrite at a time, from here until its done-handler has renamed its files: the
    // claim is taken before anything is opened (two callers racing used to share a temp file
    // and open incr files for nothing) and given back by every early return.
    let Some(claim) = RewriteClaim::take(&aof.rewrite_claimed) else { return Err(Failed) };
    let mut ctl = aof.ctl.lock();
    let dir = dirname(srv);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        log('#', &format!("Can't open or create append-only dir {}: {}", dir.display(), strerror(&e)));
        aof.last_bgrewrite_ok.store(false, Relaxed);
        return Err(Failed);
    }
    let _ = write_pending(srv);
    // openNewIncrAofForAppend
    let state = aof.state.load(SeqCst);
    let mut new_file = None;
    let mut temp_am = None;
    if state != OFF {
        let name = if state == WAIT_REWRITE {
            temp_incr_name(srv)
        } else {
            let mut am = ctl.manifest.clone();
            let n = am.new_incr_name(&filename(srv));
            temp_am = Some(am);
            n
        };
        let f = match open_trunc(&dir.join(&name)) {
            Ok(f) => f,
            Err(e) => {
                log('#', &format!("Can't open the append-only file {}: {}", name, strerror(&e)));
                aof.last_bgrewrite_ok.store(false, Relaxed);
                return Err(Failed);
            }
        };
        if let Some(am) = temp_am.as_mut() {
            if persist_manifest(srv, am).is_err() {
                aof.last_bgrewrite_ok.store(false, Relaxed);
                return Err(Failed);
            }
        }
        log('*', &format!("Creating AOF incr file {} on background rewrite", name));
        new_file = Some(f);
    }
    if let Some(am) = temp_am {
        ctl.manifest = am;
    }
    let seq = aof.rewrites.fetch_add(1, Relaxed);
    // Its own temp file (Redis names it after the child's pid).
    let tmp = format!("temp-rewriteaof-bg-{}-{}.aof", std::process::id(), seq);
    let rdb = srv.config.get_bool("aof-use-rdb-preamble");
    let mut nf = new_file;
    let started_waiting = state == WAIT_REWRITE;
    let snap = persistence::start_aof_snapshot(srv, rdb, tmp.clone(), &mut || {
        if let Some(f) = nf.take() {
            switch_file(srv, f);
        }
    });
    let snap = match snap {
        Ok(s) => s,
        Err(Failed) => {
            // Another snapshot started meanwhile: the new incr file is in the manifest; use it.
            if let Some(f) = nf.take() {
                switch_file(srv, f);
            }
            aof.last_bgrewrite_ok.store(false, Relaxed);
            log('#', "Can't rewrite append only file in background: another background operation is running");
            return Err(Failed);
        }
    };
    drop(ctl);
    claim.keep();
    aof.rewrite_in_progress.store(true, SeqCst);
    aof.rewrite_scheduled.store(false, Relaxed);
    aof.rewrite_start.store((now_ms() / 1000) as i64, Relaxed);
    log('*', &format!("Background append only file rewriting started by pid {}", std::process::id()));
    let s2 = srv.clone();
    let spawned = std::thread::Builder::new().name("aof-rewrite".into()).spawn(move || {
        let ok = persistence::run_aof_snapshot(&s2, &snap);
        if ok {
            log('*', &format!("Successfully created the temporary AOF base file {}", tmp));
        }
        rewrite_done(&s2, ok, snap.aborted(), &tmp, snap.kind == SnapKind::AofRdb, started_waiting);
    });
    if spawned.is_err() {
        persistence::abort_running(srv, false);
        aof.rewrite_in_progress.store(false, SeqCst);
        aof.rewrite_claimed.store(false, SeqCst);
        aof.last_bgrewrite_ok.store(false, Relaxed);
        return Err(Failed);
    }
    Ok(())
}

/// backgroundRewriteDoneHandler.
fn rewrite_done(srv: &Arc<Node>, ok: bool, aborted: bool, tmp: &str, rdb: bool, started_waiting: bool) {
    let aof = &srv.aof;
    let dir = dirname(srv);
    let fname = filename(srv);
    let mut ctl = aof.ctl.lock();
    let state = aof.state.load(SeqCst);
    let fail = |msg: &str| {
        log('#', msg);
        aof.last_bgrewrite_ok.store(false, Relaxed);
        aof.consecutive_failures.fetch_add(1, Relaxed);
    };
    if ok && state == WAIT_REWRITE && !started_waiting {
        // AOF was switched on while a rewrite that does not collect writes was running.
        fail("Background AOF rewrite finished but AOF was enabled meanwhile: a new rewrite is needed");
    } else if ok {
        log('*', "Background AOF rewrite terminated with success");
        let mut am = ctl.manifest.clone();
        let base = am.new_base_name(&fname, rdb);
        let base_path = dir.join(&base);
        let mut good = true;
        if let Err(e) = std::fs::rename(tmp, &base_path) {
            fail(&format!(
                "Error trying to rename the temporary AOF base file {} into {}: {}",
                tmp,
                base_path.display(),
                strerror(&e)
            ));
            good = false;
        } else {
            log('*', &format!("Successfully renamed the temporary AOF base file {} into {}", tmp, base));
        }
        let mut new_incr_path = None;
        if good && state == WAIT_REWRITE {
            let t = temp_incr_name(srv);
            let n = am.new_incr_name(&fname);
            let p = dir.join(&n);
            if let Err(e) = std::fs::rename(dir.join(&t), &p) {
                let _ = std::fs::remove_file(&base_path);
                fail(&format!(
                    "Error trying to rename the temporary AOF incr file {} into {}: {}",
                    dir.join(&t).display(),
                    p.display(),
                    strerror(&e)
                ));
                good = false;
            } else {
                log('*', &format!("Successfully renamed the temporary AOF incr file {} into {}", t, n));
                new_incr_path = Some(p);
            }
        }
        if good {
            am.mark_rewritten_incr_as_history(state != OFF);
            if persist_manifest(srv, &mut am).is_err() {
                let _ = std::fs::remove_file(&base_path);
                if let Some(p) = new_incr_path {
                    let _ = std::fs::remove_file(p);
                }
                aof.last_bgrewrite_ok.store(false, Relaxed);
                aof.consecutive_failures.fetch_add(1, Relaxed);
            } else {
                ctl.manifest = am;
                if state != OFF {
                    let written = aof.inner.lock().written;
                    let size = file_size(&base_path).unwrap_or(0) + written;
                    aof.current_size.store(size, Relaxed);
                    aof.base_size.store(size, Relaxed);
                }
                del_history_files(srv, &mut ctl.manifest);
                aof.last_bgrewrite_ok.store(true, Relaxed);
                aof.consecutive_failures.store(0, Relaxed);
                log('*', "Background AOF rewrite finished successfully");
                if state == WAIT_REWRITE {
                    aof.state.store(ON, SeqCst);
                }
            }
        }
    } else if !aborted {
        fail("Background AOF rewrite terminated with error");
    } else {
        log('#', "Background AOF rewrite terminated by signal 10");
    }
    let _ = std::fs::remove_file(tmp);
    if aof.state.load(SeqCst) == WAIT_REWRITE {
        // Writes collected for this rewrite are useless without its base: start over.
        close_file(srv, false);
        log('*', &format!("Removing the temp incr aof file {} in the background", temp_incr_name(srv)));
        let _ = std::fs::remove_file(dir.join(temp_incr_name(srv)));
        aof.rewrite_scheduled.store(true, Relaxed);
    }
    let start = aof.rewrite_start.swap(-1, Relaxed);
    aof.last_rewrite_time.store((now_ms() / 1000) as i64 - start, Relaxed);
    aof.rewrite_in_progress.store(false, SeqCst);
    aof.rewrite_claimed.store(false, SeqCst);
}

/// rewriteAppendOnlyFile: a synchronous rewrite into `dest` (startup with an empty dataset).
fn rewrite_sync(srv: &Node, dest: &Path) -> Result<(), Failed> {
    let tmp = format!("temp-rewriteaof-{}.aof", std::process::id());
    let rdb = srv.config.get_bool("aof-use-rdb-preamble");
    let snap = persistence::start_aof_snapshot(srv, rdb, tmp.clone(), &mut || {})?;
    if !persistence::run_aof_snapshot(srv, &snap) {
        log('#', "Write error writing append only file on disk");
        return Err(Failed);
    }
    std::fs::rename(&tmp, dest).map_err(|e| {
        log('#', &format!("Error moving temp append only file on the final destination: {}", strerror(&e)));
        let _ = std::fs::remove_file(&tmp);
        Failed
    })
}

/// Encode the entries of one database of a shard as commands (the AOF base without RDB
/// preamble): a SELECT, then per key the commands that rebuild it and its PEXPIREAT. Keys
/// already expired are skipped, as Redis does.
pub fn encode_db_commands<'e>(db: usize, entries: impl Iterator<Item = &'e Entry>, buf: &mut Vec<u8>, now: u64) -> u64 {
    let mut n = 0;
    let mut first = true;
    for e in entries {
        if e.expire_at != 0 && e.expire_at < now {
            continue;
        }
        if first {
            first = false;
            encode_command(buf, &[b"SELECT".as_slice(), db.to_string().as_bytes()]);
        }
        rewrite_value(buf, &e.key, &e.value);
        if e.expire_at != 0 {
            encode_command(buf, &[b"PEXPIREAT".as_slice(), &e.key, e.expire_at.to_string().as_bytes()]);
        }
        n += 1;
    }
    n
}

fn fmt_score(f: f64) -> String {
    if f.is_infinite() {
        if f > 0.0 { "inf" } else { "-inf" }.to_string()
    } else {
        format!("{}", f)
    }
}

fn batched(buf: &mut Vec<u8>, cmd: &[u8], key: &[u8], items: Vec<Vec<Vec<u8>>>) {
    for chunk in items.chunks(ITEMS_PER_CMD) {
        let mut argv: Vec<&[u8]> = vec![cmd, key];
        for it in chunk {
            for x in it {
                argv.push(x);
            }
        }
        encode_command(buf, &argv);
    }
}

fn sid(id: ferrocache_persistence::rdb::StreamId) -> Vec<u8> {
    format!("{}-{}", id.ms, id.seq).into_bytes()
}

fn rewrite_value(buf: &mut Vec<u8>, key: &[u8], v: &Value) {
    if let Some(s) = v.as_bytes() {
        encode_command(buf, &[b"SET".as_slice(), key, s]);
        if let Value::Mc(m) = v {
            let meta = crate::memcached::meta_argv(key, m.flags(), m.cas());
            encode_command(buf, &[meta[0].as_slice(), &meta[1]]);
        }
        return;
    }
    match crate::rdb_bridge::to_rdb(v) {
        RdbValue::List(items) => batched(buf, b"RPUSH", key, items.into_iter().map(|x| vec![x]).collect()),
        RdbValue::Set(items) => batched(buf, b"SADD", key, items.into_iter().map(|x| vec![x]).collect()),
        RdbValue::ZSet(items) => {
            batched(buf, b"ZADD", key, items.into_iter().map(|(m, s)| vec![fmt_score(s).into_bytes(), m]).collect())
        }
        RdbValue::Hash(items) => batched(buf, b"HMSET", key, items.into_iter().map(|(f, x)| vec![f, x]).collect()),
        RdbValue::Stream(s) => {
            if s.entries.is_empty() {
                encode_command(buf, &[b"XADD".as_slice(), key, b"MAXLEN", b"0", &sid(s.last_id), b"x", b"y"]);
            }
            for e in &s.entries {
                let id = sid(e.id);
                let mut argv: Vec<&[u8]> = vec![b"XADD", key, &id];
                for (f, x) in &e.fields {
                    argv.push(f);
                    argv.push(x);
                }
                encode_command(buf, &argv);
            }
            let added = s.entries_added.to_string();
            encode_command(
                buf,
                &[
                    b"XSETID".as_slice(),
                    key,
                    &sid(s.last_id),
                    b"ENTRIESADDED",
                    added.as_bytes(),
                    b"MAXDELETEDID",
                    &sid(s.max_deleted_entry_id),
                ],
            );
            for g in &s.groups {
                let read = g.entries_read.to_string();
                encode_command(
                    buf,
                    &[b"XGROUP".as_slice(), b"CREATE", key, &g.name, &sid(g.last_id), b"ENTRIESREAD", read.as_bytes()],
                );
                for c in &g.consumers {
                    if c.pending.is_empty() {
                        encode_command(buf, &[b"XGROUP".as_slice(), b"CREATECONSUMER", key, &g.name, &c.name]);
                    }
                    for id in &c.pending {
                        let Some(p) = g.pending.iter().find(|p| p.id == *id) else { continue };
                        let (t, cnt) = (p.delivery_time.to_string(), p.delivery_count.to_string());
                        encode_command(
                            buf,
                            &[
                                b"XCLAIM".as_slice(),
                                key,
                                &g.name,
                                &c.name,
                                b"0",
                                &sid(*id),
                                b"TIME",
                                t.as_bytes(),
                                b"RETRYCOUNT",
                                cnt.as_bytes(),
                                b"JUSTID",
                                b"FORCE",
                            ],
                        );
                    }
                }
            }
        }
        RdbValue::String(s) => encode_command(buf, &[b"SET".as_slice(), key, &s]),
        RdbValue::Module(_) => {}
    }
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

fn bgrewriteaof_cmd(ctx: &mut Ctx, _a: Args) {
    let srv = ctx.srv;
    let aof = &srv.aof;
    if aof.rewrite_in_progress.load(SeqCst) {
        ctx.out.error("ERR Background append only file rewriting already in progress");
    } else if persistence::running_kind(srv).is_some() || ctx.client.in_exec {
        aof.rewrite_scheduled.store(true, Relaxed);
        aof.consecutive_failures.store(0, Relaxed);
        ctx.out.simple("Background append only file rewriting scheduled");
    } else if rewrite_background(srv).is_ok() {
        ctx.out.simple("Background append only file rewriting started");
    } else if aof.rewrite_claimed.load(SeqCst) {
        // Another client's rewrite started first.
        ctx.out.error("ERR Background append only file rewriting already in progress");
    } else {
        ctx.out
            .error("ERR Can't execute an AOF background rewriting. Please check the server logs for more information.");
    }
}

// ------------------------------------------------------------------ loading

#[derive(Debug, PartialEq, Eq)]
enum LoadStatus {
    Ok,
    NotExist,
    Empty,
    OpenErr,
    Failed,
    Truncated,
}

/// loadDataFromDisk: the AOF when `appendonly yes` (the RDB is then ignored, as in Redis),
/// else the RDB; then the AOF is opened for appending. Err(Failed) means exit(1).
pub fn load_data_from_disk(srv: &Arc<Node>) -> Result<(), Failed> {
    refresh_config(srv);
    let am = load_manifest(srv)?;
    srv.aof.ctl.lock().manifest = am;
    if !srv.config.get_bool("appendonly") {
        return persistence::load_at_startup(srv);
    }
    srv.aof.state.store(ON, SeqCst);
    let start = std::time::Instant::now();
    let r = load_append_only_files(srv);
    match r {
        LoadStatus::Failed | LoadStatus::OpenErr => return Err(Failed),
        LoadStatus::NotExist => {}
        _ => log('*', &format!("DB loaded from append only file: {:.3} seconds", start.elapsed().as_secs_f64())),
    }
    srv.persist.dirty_at_save.store(srv.counters.dirty.load(Relaxed), Relaxed);
    open_on_server_start(srv)
}

/// aofOpenIfNeededOnServerStart + aofDelHistoryFiles.
fn open_on_server_start(srv: &Arc<Node>) -> Result<(), Failed> {
    let dir = dirname(srv);
    let fname = filename(srv);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        log('#', &format!("Can't open or create append-only dir {}: {}", dir.display(), strerror(&e)));
        return Err(Failed);
    }
    let mut ctl = srv.aof.ctl.lock();
    let incr_len = ctl.manifest.incr.len();
    if ctl.manifest.base.is_none() && incr_len == 0 {
        let base = ctl.manifest.new_base_name(&fname, srv.config.get_bool("aof-use-rdb-preamble"));
        rewrite_sync(srv, &dir.join(&base))?;
        log('*', &format!("Creating AOF base file {} on server start", base));
        let sz = file_size(&dir.join(&base)).unwrap_or(0);
        srv.aof.current_size.store(sz, Relaxed);
        srv.aof.base_size.store(sz, Relaxed);
    }
    let name = ctl.manifest.last_incr_name(&fname);
    let f = match std::fs::OpenOptions::new().append(true).create(true).open(dir.join(os(&name))) {
        Ok(f) => f,
        Err(e) => {
            log('#', &format!("Can't open the append-only file {}: {}", display_name(&name), strerror(&e)));
            return Err(Failed);
        }
    };
    let name = display_name(&name);
    persist_manifest(srv, &mut ctl.manifest)?;
    let size = f.metadata().map(|m| m.len()).unwrap_or(0);
    {
        let mut g = srv.aof.inner.lock();
        g.file = Some(Arc::new(f));
        g.gen += 1;
        g.written = size;
        g.selected_db = -1;
    }
    *srv.aof.synced.lock() = (srv.aof.inner.lock().gen, size);
    if incr_len > 0 {
        log('*', &format!("Opening AOF incr file {} on server start", name));
    } else {
        log('*', &format!("Creating AOF incr file {} on server start", name));
    }
    del_history_files(srv, &mut ctl.manifest);
    drop(ctl);
    ensure_sink(srv);
    Ok(())
}

/// loadAppendOnlyFiles.
fn load_append_only_files(srv: &Arc<Node>) -> LoadStatus {
    let dir = dirname(srv);
    let fname = filename(srv);
    let mut ctl = srv.aof.ctl.lock();
    // An old-style single AOF in `dir`: move it into the AOF directory as the base.
    if Path::new(&fname).is_file() {
        let am = &ctl.manifest;
        let upgrade = !dir.is_dir()
            || (am.base.is_none() && am.incr.is_empty())
            || (am.incr.is_empty()
                && am.base.as_ref().is_some_and(|b| b.file_name == fname.as_bytes())
                && !dir.join(&fname).exists());
        if upgrade {
            if let Err(e) = std::fs::create_dir_all(&dir) {
                log('#', &format!("Can't open or create append-only dir {}: {}", dir.display(), strerror(&e)));
                return LoadStatus::Failed;
            }
            let mut am = Manifest { base: None, ..Default::default() };
            am.base = Some(ferrocache_persistence::aof::AofInfo {
                file_name: fname.clone().into_bytes(),
                file_seq: 1,
                file_type: ferrocache_persistence::aof::FileType::Base,
            });
            am.curr_base_file_seq = 1;
            am.dirty = true;
            if persist_manifest(srv, &mut am).is_err() {
                return LoadStatus::Failed;
            }
            if let Err(e) = std::fs::rename(&fname, dir.join(&fname)) {
                log(
                    '#',
                    &format!(
                        "Error trying to move the old AOF file {} into dir {}: {}",
                        fname,
                        dir.display(),
                        strerror(&e)
                    ),
                );
                return LoadStatus::Failed;
            }
            log(
                '*',
                &format!(
                    "Successfully migrated an old-style AOF file ({}) into the AOF directory ({}).",
                    fname,
                    dir.display()
                ),
            );
            ctl.manifest = am;
        }
    }
    let am = ctl.manifest.clone();
    drop(ctl);
    if am.base.is_none() && am.incr.is_empty() {
        return LoadStatus::NotExist;
    }
    let mut files: Vec<(Vec<u8>, bool)> = Vec::new();
    if let Some(b) = &am.base {
        files.push((b.file_name.clone(), true));
    }
    for i in &am.incr {
        files.push((i.file_name.clone(), false));
    }
    let mut total = 0u64;
    let mut base_size = 0u64;
    for (n, is_base) in &files {
        match file_size(&dir.join(os(n))) {
            Ok(s) => {
                total += s;
                if *is_base {
                    base_size = s;
                }
            }
            Err(e) => {
                log('#', &format!("Unable to obtain the AOF file {} length. stat: {}", display_name(n), strerror(&e)));
                return LoadStatus::Failed;
            }
        }
    }
    if total == 0 {
        return LoadStatus::Empty;
    }
    persistence::start_loading(srv, total);
    let mut ret = LoadStatus::Ok;
    let count = files.len();
    let mut done_bytes = 0u64;
    for (i, (name, is_base)) in files.iter().enumerate() {
        let last = i + 1 == count;
        let start = std::time::Instant::now();
        srv.persist.loading_base.store(done_bytes, Relaxed);
        done_bytes += file_size(&dir.join(os(name))).unwrap_or(0);
        let mut r = load_single(srv, name);
        if r == LoadStatus::Ok || (r == LoadStatus::Truncated && last) {
            log(
                '*',
                &format!(
                    "DB loaded from {} file {}: {:.3} seconds",
                    if *is_base { "base" } else { "incr" },
                    display_name(name),
                    start.elapsed().as_secs_f64()
                ),
            );
        }
        if r == LoadStatus::Empty {
            r = LoadStatus::Ok;
        }
        if r == LoadStatus::Truncated && !last {
            r = LoadStatus::Failed;
            log('#', "Fatal error: the truncated file is not the last file");
        }
        if r == LoadStatus::OpenErr || r == LoadStatus::Failed {
            ret = r;
            break;
        }
        ret = r;
    }
    persistence::stop_loading(srv);
    if ret == LoadStatus::Ok || ret == LoadStatus::Truncated {
        srv.aof.current_size.store(total, Relaxed);
        srv.aof.base_size.store(base_size, Relaxed);
    }
    ret
}

/// CLIENT_ID_AOF: the id of the client replaying the AOF.
pub const AOF_CLIENT_ID: u64 = u64::MAX;

/// A fake client executing AOF commands (CLIENT_ID_AOF).
fn fake_client() -> Client {
    let shared = ClientShared::new(AOF_CLIENT_ID, String::new(), String::new(), now_ms());
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let mut c = Client::new(shared, tx);
    c.authenticated = true;
    c
}

/// Run one replayed command (no processCommand checks, as Redis's loader calls the command
/// directly; MULTI/EXEC go through the executor, which queues and runs them).
fn replay(srv: &Arc<Node>, client: &mut Client, argv: &[Vec<u8>], out: &mut ReplyBuf) -> bool {
    let owned = OwnedArgs::from_slices(argv);
    let args = owned.args();
    let Some(mut cmd) = table().lookup(&args[0]) else { return false };
    if !cmd.subcommands.is_empty() && args.len() >= 2 {
        match lookup_sub(cmd, &args[1]) {
            Some(s) => cmd = s,
            None => return true,
        }
    }
    let now = now_ms();
    if cmd.has(TRANSACTION) || client.multi.is_some() {
        crate::execute_at(srv, client, args, out, now);
    } else if cmd.arity_ok(args.len()) {
        let mut guards = if cmd.has(ALL_SHARDS) {
            srv.ks.lock_all()
        } else {
            srv.ks.lock_keys(cmd.key_positions(args).into_iter().map(|i| &args[i]))
        };
        crate::run_locked(srv, client, cmd, args, out, &mut guards, now);
    }
    client.block = None;
    out.buf.clear();
    true
}

/// loadSingleAppendOnlyFile.
fn load_single(srv: &Arc<Node>, name: &[u8]) -> LoadStatus {
    let path = dirname(srv).join(os(name));
    let name = &display_name(name);
    let f = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            log('#', &format!("The append log file {} doesn't exist: {}", name, strerror(&e)));
            return LoadStatus::NotExist;
        }
        Err(e) => {
            log('#', &format!("Fatal error: can't open the append log file {} for reading: {}", name, strerror(&e)));
            return LoadStatus::OpenErr;
        }
    };
    if f.metadata().map(|m| m.len()).unwrap_or(0) == 0 {
        return LoadStatus::Empty;
    }
    let mut r = std::io::BufReader::with_capacity(1 << 20, f);
    let mut sig = [0u8; 5];
    let n = {
        let mut got = 0;
        while got < 5 {
            match r.read(&mut sig[got..]) {
                Ok(0) => break,
                Ok(k) => got += k,
                Err(_) => break,
            }
        }
        got
    };
    let mut start = 0u64;
    if n == 5 && &sig == b"REDIS" {
        let old_style = *name == filename(srv);
        log(
            '*',
            if old_style { "Reading RDB preamble from AOF file..." } else { "Reading RDB base file on AOF loading..." },
        );
        let f2 = match File::open(&path) {
            Ok(f) => f,
            Err(_) => return LoadStatus::OpenErr,
        };
        let mut cr = CountingReader { r: std::io::BufReader::with_capacity(1 << 20, f2), n: 0 };
        let res = {
            let mut g = srv.ks.lock_shards(&[]);
            persistence::load_reader(srv, &mut cr, &mut g, true)
        };
        if res.is_err() {
            if old_style {
                log('#', &format!("Error reading the RDB preamble of the AOF file {}, AOF loading aborted", name));
            } else {
                log('#', &format!("Error reading the RDB base file {}, AOF loading aborted", name));
            }
            return LoadStatus::Failed;
        }
        if old_style {
            log('*', "Reading the remaining AOF tail...");
        }
        start = cr.n;
        r = cr.r;
    } else {
        r = std::io::BufReader::with_capacity(
            1 << 20,
            match File::open(&path) {
                Ok(f) => f,
                Err(_) => return LoadStatus::OpenErr,
            },
        );
    }
    let mut reader = AofCommandReader::new(r, start);
    let mut client = fake_client();
    let mut out = ReplyBuf::new(false);
    let truncated_ok = srv.config.get_bool("aof-load-truncated");
    let mut valid_up_to = start;
    let mut valid_before_multi = start;
    let base = srv.persist.loading_base.load(Relaxed);
    let mut loops = 0u64;
    let uxeof = |valid_up_to: u64| -> LoadStatus {
        if truncated_ok {
            log('#', &format!("!!! Warning: short read while loading the AOF file {}!!!", name));
            log('#', &format!("!!! Truncating the AOF {} at offset {} !!!", name, valid_up_to));
            let t = std::fs::OpenOptions::new().write(true).open(&path).and_then(|f| f.set_len(valid_up_to));
            match t {
                Ok(()) => {
                    log('#', &format!("AOF {} loaded anyway because aof-load-truncated is enabled", name));
                    return LoadStatus::Truncated;
                }
                Err(e) => log('#', &format!("Error truncating the AOF file {}: {}", name, strerror(&e))),
            }
        }
        log('#', &format!("Unexpected end of file reading the append only file {}. You can: 1) Make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>. 2) Alternatively you can set the 'aof-load-truncated' configuration option to yes and restart the server.", name));
        LoadStatus::Failed
    };
    loop {
        // Serve the clients from time to time (every 1024 commands, from the first one).
        if loops.is_multiple_of(1024) {
            persistence::loading_progress(srv, base + reader.offset);
        }
        loops += 1;
        match reader.next_command() {
            Ok(Some(argv)) => {
                let is_multi = argv[0].eq_ignore_ascii_case(b"multi");
                if is_multi {
                    valid_before_multi = valid_up_to;
                }
                if !replay(srv, &mut client, &argv, &mut out) {
                    log(
                        '#',
                        &format!(
                            "Unknown command '{}' reading the append only file {}",
                            String::from_utf8_lossy(&argv[0]),
                            name
                        ),
                    );
                    return LoadStatus::Failed;
                }
                valid_up_to = reader.offset;
            }
            Ok(None) => {
                if client.multi.is_some() {
                    log('#', &format!("Revert incomplete MULTI/EXEC transaction in AOF file {}", name));
                    return uxeof(valid_before_multi);
                }
                return LoadStatus::Ok;
            }
            Err(AofReadError::Truncated) => {
                return uxeof(if client.multi.is_some() { valid_before_multi } else { valid_up_to });
            }
            Err(AofReadError::Io(e)) => {
                log('#', &format!("Unrecoverable error reading the append only file {}: {}", name, strerror(&e)));
                return LoadStatus::Failed;
            }
            Err(AofReadError::Format) => {
                log('#', &format!("Bad file format reading the append only file {}: make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>", name));
                return LoadStatus::Failed;
            }
        }
    }
}

struct CountingReader<R: Read> {
    r: R,
    n: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let k = self.r.read(buf)?;
        self.n += k as u64;
        Ok(k)
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
