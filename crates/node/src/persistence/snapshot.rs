//! Encoding a snapshot: the per-save encoder settings, the RDB writer, the running
//! snapshot (`Snapshot`) and how one shard's entries (with memcached flags/CAS aux data) are encoded.

#[allow(unused_imports)]
use super::*;

/// Encoder settings fixed for one snapshot.
pub(crate) struct EncCfg {
    pub(crate) opts: EncodeOptions,
    pub(crate) save_lru: bool,
    pub(crate) save_lfu: bool,
    pub(crate) lfu_decay: u32,
}

impl EncCfg {
    pub(crate) fn from(srv: &Node) -> EncCfg {
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
pub(crate) struct RdbOut {
    pub(crate) file: Box<dyn Write + Send>,
    /// The file to fsync (None: a stream, e.g. a diskless replication transfer).
    pub(crate) fsync: Option<std::fs::File>,
    pub(crate) tmp: String,
    pub(crate) crc: u64,
    pub(crate) checksum: bool,
    pub(crate) err: Option<(String, std::io::Error)>,
    /// An AOF base in command form: no RDB header, EOF or checksum.
    pub(crate) raw: bool,
}

impl RdbOut {
    /// The snapshot's file, its header recording the replication stream's point when given (a
    /// replica's RDB).
    pub(crate) fn create_recording(
        srv: &Node,
        tmp: String,
        kind: SnapKind,
        repl: Option<&crate::replication::resume::ReplInfo>,
    ) -> std::io::Result<RdbOut> {
        let f = std::fs::File::create(&tmp)?;
        let sync = f.try_clone()?;
        Ok(Self::init(srv, Box::new(std::io::BufWriter::with_capacity(1 << 16, f)), Some(sync), tmp, kind, repl))
    }

    /// An RDB written to a stream (diskless replication): no fsync, no rename.
    pub(crate) fn with_stream(srv: &Node, w: Box<dyn Write + Send>) -> RdbOut {
        Self::init(srv, w, None, String::new(), SnapKind::Rdb, None)
    }

    pub(crate) fn init(
        srv: &Node,
        file: Box<dyn Write + Send>,
        fsync: Option<std::fs::File>,
        tmp: String,
        kind: SnapKind,
        repl: Option<&crate::replication::resume::ReplInfo>,
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
        let fields = [
            ("redis-ver", crate::node::REDIS_VERSION.to_string()),
            ("redis-bits", "64".to_string()),
            ("ctime", now.to_string()),
            ("used-mem", used.to_string()),
        ];
        let repl = repl.map(|r| r.aux()).into_iter().flatten();
        let base = [("aof-base", if kind == SnapKind::AofRdb { "1" } else { "0" }.to_string())];
        for (k, v) in fields.into_iter().chain(repl).chain(base) {
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

    pub(crate) fn write(&mut self, b: &[u8]) {
        if self.err.is_some() {
            return;
        }
        self.crc = crc64(self.crc, b);
        if let Err(e) = self.file.write_all(b) {
            self.err = Some(("rdbSaveRio".into(), e));
        }
    }

    /// EOF, checksum, flush, fsync, rename to `dest`. Logs Redis's messages on failure.
    pub(crate) fn finish(mut self, dest: &str) -> bool {
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

    pub(crate) fn abandon(self) {
        let tmp = self.tmp.clone();
        drop(self);
        let _ = std::fs::remove_file(tmp);
    }
}

pub(crate) fn strerror(e: &std::io::Error) -> String {
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
    pub(crate) id: u64,
    pub kind: SnapKind,
    /// Where the finished file goes.
    pub(crate) dest: String,
    pub(crate) aborted: AtomicBool,
    pub(crate) out: Mutex<Option<RdbOut>>,
    pub(crate) enc: EncCfg,
    pub(crate) keys: AtomicU64,
    /// Bytes of chunks currently encoded and not yet written, and its peak.
    pub(crate) inflight: AtomicU64,
    pub(crate) peak: AtomicU64,
    pub(crate) progress: Arc<AtomicU64>,
}

impl Snapshot {
    /// Serialize a shard (its lock held by the caller) as it was at the snapshot's start, if
    /// not yet done: a whole-shard capture, for writers that modify a shard without going
    /// through a key (SWAPDB).
    pub(crate) fn capture(&self, hook: &SnapshotHook, shard: &mut Shard) {
        if shard.cow.captured == self.id || self.aborted.load(Relaxed) {
            return;
        }
        let dbs = shard.take_snapshot(hook, self.id);
        let mut buf = Vec::new();
        let n = self.encode(&dbs, &mut buf);
        self.emit(buf, n);
    }

    /// Encode a captured shard (`Shard::take_snapshot`, index = database).
    pub(crate) fn encode(&self, dbs: &[Vec<Entry>], buf: &mut Vec<u8>) -> u64 {
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

    pub(crate) fn emit(&self, buf: Vec<u8>, n: u64) {
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
pub(crate) fn encode_db<'e>(
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
pub(crate) const MC_FLAGS_AUX: &[u8] = b"ferrocache-mc-flags";

/// Aux field carrying the memcached CAS uniques of the chunk's items (after the flags).
pub(crate) const MC_CAS_AUX: &[u8] = b"ferrocache-mc-cas";

/// Decode a `ferrocache-mc-cas` aux value into (key, cas).
pub(crate) fn parse_mc_cas(v: &[u8]) -> Vec<(Vec<u8>, u64)> {
    parse_keyed(v, 8).into_iter().map(|(k, t)| (k, u64::from_le_bytes(t.try_into().unwrap_or([0; 8])))).collect()
}

/// (key, `width` trailing bytes) entries as written for the memcached aux fields.
pub(crate) fn parse_keyed(v: &[u8], width: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
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
pub(crate) fn parse_mc_flags(v: &[u8]) -> Vec<(Vec<u8>, u32)> {
    parse_keyed(v, 4).into_iter().map(|(k, t)| (k, u32::from_le_bytes(t.try_into().unwrap_or([0; 4])))).collect()
}

pub(crate) fn encode_entry(enc: &EncCfg, key: &[u8], v: &Value, expire_at: u64, lru: u32, buf: &mut Vec<u8>, now: u64) {
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
