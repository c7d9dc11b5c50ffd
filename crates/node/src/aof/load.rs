//! Loading the AOF at startup: the manifest, the base (RDB preamble or commands) and the
//! incr files, each command replayed through the executor by a fake client.

#[allow(unused_imports)]
use super::*;

// ------------------------------------------------------------------ loading

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum LoadStatus {
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
pub(crate) fn open_on_server_start(srv: &Arc<Node>) -> Result<(), Failed> {
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
pub(crate) fn load_append_only_files(srv: &Arc<Node>) -> LoadStatus {
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
pub(crate) fn fake_client() -> Client {
    let shared = ClientShared::new(AOF_CLIENT_ID, String::new(), String::new(), now_ms());
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let mut c = Client::new(shared, tx);
    c.authenticated = true;
    c
}

/// Run one replayed command (no processCommand checks, as Redis's loader calls the command
/// directly; MULTI/EXEC go through the executor, which queues and runs them).
pub(crate) fn replay(srv: &Arc<Node>, client: &mut Client, argv: &[Vec<u8>], out: &mut ReplyBuf) -> bool {
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
        // A replayed command never blocks or closes anything: what it asks is dropped.
        let _ = crate::run_locked(srv, client, cmd, args, out, &mut guards, now);
    }
    out.buf.clear();
    true
}

/// loadSingleAppendOnlyFile.
pub(crate) fn load_single(srv: &Arc<Node>, name: &[u8]) -> LoadStatus {
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

pub(crate) struct CountingReader<R: Read> {
    pub(crate) r: R,
    pub(crate) n: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let k = self.r.read(buf)?;
        self.n += k as u64;
        Ok(k)
    }
}
