//! The AOF sink (an `EffectSink` fed in effect order under the shard locks), the write
//! path (buffer, write before replies, fsync policies, the background thread), switching incr
//! files, and the manifest on disk.

#[allow(unused_imports)]
use super::*;

// ------------------------------------------------------------------ the sink

pub(crate) struct AofSink(Arc<Node>);

impl EffectSink for AofSink {
    fn propagate(&self, db: usize, argv: &[&[u8]]) {
        let aof = &self.0.aof;
        // PUBLISH goes to replicas only (Redis's PROPAGATE_REPL).
        if aof.state.load(Relaxed) == OFF
            || argv.first().is_some_and(|c| c.eq_ignore_ascii_case(b"publish") || c.eq_ignore_ascii_case(b"spublish"))
        {
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

pub(crate) fn ensure_sink(srv: &Arc<Node>) {
    if !srv.aof.sink_added.swap(true, SeqCst) {
        srv.add_sink(Arc::new(AofSink(srv.clone())));
    }
    if !srv.aof.thread_started.swap(true, SeqCst) {
        let s = srv.clone();
        let _ = std::thread::Builder::new().name("aof-fsync".into()).spawn(move || background(s));
    }
}

/// Everysec fsync and the flush of buffers no reply has flushed (active expiry, ...).
pub(crate) fn background(srv: Arc<Node>) {
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
pub(crate) fn write_pending(srv: &Node) -> Option<(Arc<File>, u64, u64)> {
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
pub(crate) fn flush(srv: &Node) {
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
pub(crate) fn switch_file(srv: &Node, f: File) {
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

pub(crate) fn close_file(srv: &Node, sync: bool) {
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

pub(crate) fn persist_manifest(srv: &Node, am: &mut Manifest) -> Result<(), Failed> {
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
pub(crate) fn load_manifest(srv: &Node) -> Result<Manifest, Failed> {
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

pub(crate) fn del_history_files(srv: &Node, am: &mut Manifest) {
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
