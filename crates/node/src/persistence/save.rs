//! Saving: starting and running snapshots (SAVE, BGSAVE, save points, AOF rewrite and
//! full-sync snapshots), the SAVE/BGSAVE commands, shutdown saves and DEBUG RELOAD.

#[allow(unused_imports)]
use super::*;

// ------------------------------------------------------------------ saving

/// A save or load that did not happen (the reason is logged).
#[derive(Debug)]
pub struct Failed;

/// Why a walk-based save did not produce a file.
pub(crate) enum SaveErr {
    /// Another snapshot is running.
    Busy,
    /// The temp file could not be created (logged).
    Open,
    Failed,
}

pub(crate) fn start_snapshot(srv: &Node) -> Result<Arc<Snapshot>, SaveErr> {
    if srv.persist.current.read().is_some() {
        return Err(SaveErr::Busy);
    }
    let id = srv.persist.next_id.fetch_add(1, Relaxed);
    // On a replica the file records the primary's stream point, cut between two of its
    // commands (a restart then continues with PSYNC; see replication/resume.rs).
    crate::replication::resume::at_cut(srv, |repl| {
        let tmp = temp_name(id);
        let out = open_out(srv, &tmp, SnapKind::Rdb, repl.as_ref())?;
        start_snapshot_as(srv, id, SnapKind::Rdb, tmp, dbfilename(srv), None, Some(out))
    })
}

/// The snapshot's file, created (its failure logged as Redis does).
fn open_out(
    srv: &Node,
    tmp: &str,
    kind: SnapKind,
    repl: Option<&crate::replication::resume::ReplInfo>,
) -> Result<RdbOut, SaveErr> {
    RdbOut::create_recording(srv, tmp.to_string(), kind, repl).map_err(|e| {
        log(
            '#',
            &format!(
                "Failed opening the temp RDB file {} (in server root dir {}) for saving: {}",
                tmp,
                cwd(),
                strerror(&e)
            ),
        );
        SaveErr::Open
    })
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
pub(crate) fn start_snapshot_as(
    srv: &Node,
    id: u64,
    kind: SnapKind,
    tmp: String,
    dest: String,
    at_cut: Option<&mut dyn FnMut()>,
    out: Option<RdbOut>,
) -> Result<Arc<Snapshot>, SaveErr> {
    // The file exists before the snapshot starts: writers append captured shards to it.
    let out = match out {
        Some(o) => o,
        None => open_out(srv, &tmp, kind, None)?,
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

pub(crate) fn temp_name(id: u64) -> String {
    format!("temp-{}-{}.rdb", std::process::id(), id)
}

pub(crate) fn dbfilename(srv: &Node) -> String {
    srv.config.get("dbfilename").unwrap_or_else(|| "dump.rdb".into())
}

/// Walk every shard of a started snapshot, then finish its file. Runs on the BGSAVE thread,
/// or on the caller for SAVE/SHUTDOWN. Returns true when the file was written and renamed.
pub(crate) fn run_snapshot(srv: &Node, s: &Arc<Snapshot>) -> bool {
    run_snapshot_then(srv, s, |_| {})
}

/// `run_snapshot`, calling `then(ok)` before another save may finish (the file is in place).
pub(crate) fn run_snapshot_then(srv: &Node, s: &Arc<Snapshot>, then: impl FnOnce(bool)) -> bool {
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
pub(crate) fn drop_pre_images(srv: &Node, id: u64) {
    for i in 0..srv.ks.num_shards() {
        let mut g = srv.ks.lock_one(i);
        if g.cow.id == id {
            g.cow.clear(&srv.ks.snapshot);
        }
    }
}

/// rdb-key-save-delay (debugDelay per key saved), slept by the walker after a shard, outside
/// its lock. Shards captured by writers are not delayed.
pub(crate) fn key_save_delay(srv: &Node, keys: u64) {
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

/// Why a full-sync snapshot did not start.
#[derive(Debug, thiserror::Error)]
pub enum ReplSnapshotError {
    /// Another snapshot is running (the caller retries).
    #[error("another snapshot is running")]
    Busy,
    /// The snapshot could not start (the temp file could not be created: logged).
    #[error("the snapshot could not start")]
    Start,
    /// The snapshot thread could not be spawned.
    #[error("could not spawn the snapshot thread: {0}")]
    Spawn(std::io::Error),
}

/// A snapshot for a replica's full sync. Its start is atomic with `at_start`: every shard is
/// held while the snapshot starts and `at_start` runs, so no write is in flight — each write
/// before it is in the snapshot and its effects were propagated before `at_start`; each write
/// after it sees the snapshot (captures its shards first) and is propagated after `at_start`.
/// `stream`: write the RDB there (diskless); None: save to `dbfilename` (disk-backed).
/// `then(ok)` runs on the snapshot thread once the RDB is complete (the file renamed).
pub fn repl_snapshot(
    srv: &Arc<Node>,
    stream: Option<Box<dyn Write + Send>>,
    at_start: impl FnOnce(),
    then: impl FnOnce(bool) + Send + 'static,
) -> Result<(), ReplSnapshotError> {
    let disk = stream.is_none();
    let dirty_before = srv.counters.dirty.load(Relaxed);
    if srv.persist.current.read().is_some() {
        return Err(ReplSnapshotError::Busy);
    }
    let id = srv.persist.next_id.fetch_add(1, Relaxed);
    let mut at_start = Some(at_start);
    let mut cut = || {
        if let Some(f) = at_start.take() {
            f()
        }
    };
    let out = stream.map(|w| RdbOut::with_stream(srv, w));
    let s = start_snapshot_as(srv, id, SnapKind::Rdb, temp_name(id), dbfilename(srv), Some(&mut cut), out).map_err(
        |e| match e {
            SaveErr::Busy => ReplSnapshotError::Busy,
            SaveErr::Open | SaveErr::Failed => ReplSnapshotError::Start,
        },
    )?;
    let srv2 = srv.clone();
    let spawned = std::thread::Builder::new().name("repl-snapshot".into()).spawn(move || {
        let ok = run_snapshot_then(&srv2, &s, then);
        if ok && disk {
            save_succeeded(&srv2, dirty_before);
        }
    });
    if let Err(e) = spawned {
        abort_running(srv, false);
        return Err(ReplSnapshotError::Spawn(e));
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

/// Load an RDB stream into a keyspace on the side (held whole by `guards`) while the node
/// keeps serving its own: a replica's asynchronous load. Not "loading" (no -LOADING replies).
pub fn load_rdb_aside<R: std::io::Read>(srv: &Node, r: R, guards: &mut Guards) -> Result<(u64, u64), LoadError> {
    load_reader(srv, r, guards, false)
}

pub(crate) fn save_succeeded(srv: &Node, dirty_before: u64) {
    srv.persist.dirty_at_save.store(dirty_before, Relaxed);
    srv.last_save.store(now_ms() / 1000, Relaxed);
    srv.persist.bgsave_failed.store(false, Relaxed);
}

/// A synchronous save while writes continue (SAVE, SHUTDOWN, DEBUG RELOAD without locks).
pub(crate) fn save_walk(srv: &Node) -> Result<(), SaveErr> {
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
pub(crate) fn save_held(srv: &Node, guards: &mut Guards) -> bool {
    let _fin = srv.persist.save_lock.lock();
    let dirty_before = srv.counters.dirty.load(Relaxed);
    let id = srv.persist.next_id.fetch_add(1, Relaxed);
    let tmp = temp_name(id);
    let Ok(mut out) = open_out(srv, &tmp, SnapKind::Rdb, None) else { return false };
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
    // A save runs until its file is in place and its dirty count is settled (Redis: until the
    // child is reaped), not only until its snapshot ends: a save point seen in between would
    // start a second save of the same changes (and write dump.rdb after INFO said no save runs).
    if p.bgsave_in_progress.load(Acquire) {
        return Err(Failed);
    }
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
        p.bgsave_in_progress.store(false, Release);
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

/// What SAVE did (the SAVE handler renders it).
#[derive(Debug, PartialEq, Eq)]
pub enum SaveOutcome {
    Saved,
    /// A BGSAVE runs ("Background save already in progress").
    Busy,
    Failed,
}

/// SAVE: a synchronous save while writes continue (or, beside an AOF rewrite, with every shard
/// held, as Redis's SAVE blocks the event loop).
pub fn save_now(srv: &Node) -> SaveOutcome {
    match running_kind(srv) {
        Some(SnapKind::Rdb) => return SaveOutcome::Busy,
        Some(_) => {
            // An AOF rewrite is running: Redis saves synchronously next to its child. The
            // snapshot machinery serves one snapshot at a time, so this save holds every shard
            // (writes wait, as they do while Redis's SAVE blocks the event loop).
            srv.persist.rdb_saves.fetch_add(1, Relaxed);
            let mut all = srv.ks.lock_all();
            let ok = save_held(srv, &mut all);
            drop(all);
            return if ok { SaveOutcome::Saved } else { SaveOutcome::Failed };
        }
        None => {}
    }
    srv.persist.rdb_saves.fetch_add(1, Relaxed);
    match save_walk(srv) {
        Ok(()) => SaveOutcome::Saved,
        Err(SaveErr::Busy) => SaveOutcome::Busy,
        Err(SaveErr::Failed | SaveErr::Open) => SaveOutcome::Failed,
    }
}

/// What BGSAVE [SCHEDULE] did (the BGSAVE handler renders it).
#[derive(Debug, PartialEq, Eq)]
pub enum BgsaveOutcome {
    Started,
    Scheduled,
    /// A BGSAVE runs already.
    Busy,
    /// An AOF rewrite runs and SCHEDULE was not given.
    OtherChild,
}

/// BGSAVE: start a background save now, or schedule it (SCHEDULE, inside EXEC, or behind an
/// AOF rewrite when SCHEDULE is given).
pub fn bgsave_request(srv: &Arc<Node>, schedule: bool, in_exec: bool) -> BgsaveOutcome {
    match running_kind(srv) {
        Some(SnapKind::Rdb) => return BgsaveOutcome::Busy,
        Some(_) if !schedule && !in_exec => return BgsaveOutcome::OtherChild,
        Some(_) => {
            srv.persist.scheduled.store(true, Relaxed);
            return BgsaveOutcome::Scheduled;
        }
        None => {}
    }
    if in_exec {
        srv.persist.scheduled.store(true, Relaxed);
        return BgsaveOutcome::Scheduled;
    }
    match bgsave_start(srv) {
        Ok(()) => BgsaveOutcome::Started,
        Err(Failed) => BgsaveOutcome::Busy,
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
    if p.current.read().is_some() || p.bgsave_in_progress.load(Acquire) {
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

pub(crate) fn reload_with(srv: &Node, guards: &mut Guards, save: bool, flush: bool) -> Result<(), &'static str> {
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
