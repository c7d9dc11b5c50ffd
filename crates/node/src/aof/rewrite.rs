//! BGREWRITEAOF without fork: the rewrite claim, starting a rewrite at a snapshot cut,
//! the done-handler that switches the manifest, and encoding a database as commands
//! (the base file without RDB preamble).

#[allow(unused_imports)]
use super::*;

// ------------------------------------------------------------------ rewrite

pub(crate) fn temp_incr_name(srv: &Node) -> String {
    format!("{}{}.incr", TEMP_FILE_NAME_PREFIX, filename(srv))
}

pub(crate) fn open_trunc(p: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new().write(true).create(true).truncate(true).open(p)
}

/// `rewrite_claimed` taken by one caller; released on drop unless kept (the rewrite
/// started and its done-handler releases it).
pub(crate) struct RewriteClaim<'a>(Option<&'a AtomicBool>);

impl<'a> RewriteClaim<'a> {
    pub(crate) fn take(flag: &'a AtomicBool) -> Option<Self> {
        flag.compare_exchange(false, true, SeqCst, SeqCst).ok().map(|_| RewriteClaim(Some(flag)))
    }
    pub(crate) fn keep(mut self) {
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
pub(crate) fn rewrite_done(srv: &Arc<Node>, ok: bool, aborted: bool, tmp: &str, rdb: bool, started_waiting: bool) {
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
pub(crate) fn rewrite_sync(srv: &Node, dest: &Path) -> Result<(), Failed> {
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

pub(crate) fn fmt_score(f: f64) -> String {
    if f.is_infinite() {
        if f > 0.0 { "inf" } else { "-inf" }.to_string()
    } else {
        format!("{}", f)
    }
}

pub(crate) fn batched(buf: &mut Vec<u8>, cmd: &[u8], key: &[u8], items: Vec<Vec<Vec<u8>>>) {
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

pub(crate) fn sid(id: ferrocache_persistence::rdb::StreamId) -> Vec<u8> {
    format!("{}-{}", id.ms, id.seq).into_bytes()
}

pub(crate) fn rewrite_value(buf: &mut Vec<u8>, key: &[u8], v: &Value) {
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
