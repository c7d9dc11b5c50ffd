//! Loading an RDB (at startup, DEBUG RELOAD, a full sync): -LOADING state and progress,
//! per-key locking while inserting, memcached aux records, load errors.

#[allow(unused_imports)]
use super::*;

// ------------------------------------------------------------------ loading

/// Why loading failed.
#[derive(Debug)]
pub enum LoadError {
    NotFound,
    Io(std::io::Error),
    Rdb(RdbError),
}

pub(crate) fn limits(srv: &Node) -> EncodingLimits {
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

/// loading-process-events-interval-bytes (Redis's default): the loader records its progress
/// and lets clients in every this many bytes.
pub const LOADING_INTERVAL_BYTES: u64 = 2 * 1024 * 1024;

/// Redis's debugDelay for key-load-delay / rdb-key-save-delay: `usec` > 0 sleeps that long,
/// < 0 sleeps 1 µs with probability 1/|usec|.
pub fn debug_delay(usec: i64) {
    let us = if usec < 0 { u64::from(rand::random::<u64>().is_multiple_of(usec.unsigned_abs())) } else { usec as u64 };
    if us > 0 {
        std::thread::sleep(std::time::Duration::from_micros(us));
    }
}

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
pub(crate) struct Progress<R> {
    pub(crate) r: R,
    pub(crate) n: Arc<AtomicU64>,
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
pub(crate) fn with_key_locked<T>(
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
pub(crate) fn with_loaded_entry(
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
    let mut repl_aux = crate::replication::resume::AuxSeen::default();
    let i_am_master = if srv.cluster.enabled {
        srv.cluster.state.read().me().flags & crate::cluster::state::MASTER != 0
    } else {
        !srv.repl.is_replica.load(Relaxed) && srv.config.get("replicaof").unwrap_or_default().is_empty()
    };
    // key-load-delay (a testing setting, as Redis) and the progress interval.
    let key_delay = srv.config.get_i64("key-load-delay");
    let interval = (srv.config.get_i64("loading-process-events-interval-bytes").max(1024)) as u64;
    loop {
        let ev = match reader.next_event() {
            Ok(Some(ev)) => ev,
            Ok(None) => break,
            Err(e) => return Err(report_load_error(&e)),
        };
        let pos = counted.load(Relaxed);
        if pos / interval != tick {
            tick = pos / interval;
            loading_progress(srv, base + pos);
        }
        match ev {
            RdbEvent::Aux { key, value } => {
                let v = String::from_utf8_lossy(&value);
                repl_aux.see(&key, &v);
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
                // Only a master drops keys already expired; a replica keeps them until its
                // master's DEL (rdbLoad's iAmMaster check).
                if i_am_master && e.expire_ms.is_some_and(|t| t < now as i64) {
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
                if key_delay != 0 {
                    debug_delay(key_delay);
                }
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
    *p.loaded_repl.lock() = repl_aux.info();
    log('*', &format!("Done loading RDB, keys loaded: {}, keys expired: {}.", loaded, expired));
    Ok((loaded, expired))
}

pub(crate) fn report_load_error(e: &RdbError) -> LoadError {
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
            if let Some(info) = srv.persist.loaded_repl.lock().take() {
                crate::replication::resume::restore(srv, info);
            }
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
