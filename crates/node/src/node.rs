//! Node-wide state shared by all connections: keyspace, config, client registry, pub/sub,
//! WATCH registry, client-side-caching tracking table, slowlog, counters, and the write-effect
//! propagation point.

use crate::client::ClientMsg;
use crate::client_registry::{ClientHandle, ClientRegistry};
use crate::config::Config;
use crate::introspection::{ClientPause, LatencyMonitor, Monitors, OpsSample, Slowlog};
use bytes::Bytes;
use ferrocache_engine::glob::glob_match;
use ferrocache_engine::{notify, AccessPolicy, Db, Effects, Guards, Keyspace, SmallBytes};
use parking_lot::{Mutex, RwLock};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

/// The Redis version this node answers as (INFO, HELLO, RDB aux fields, LOLWUT).
pub const REDIS_VERSION: &str = "7.0.15";

/// A consumer of the write-effect stream (AOF, replication). Called with shard locks held,
/// in the order effects happened.
pub trait EffectSink: Send + Sync {
    fn propagate(&self, db: usize, argv: &[&[u8]]);
}

#[derive(Default)]
pub struct Counters {
    pub total_connections_received: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub net_input_bytes: AtomicU64,
    pub net_output_bytes: AtomicU64,
    pub dirty: AtomicU64,
    pub expired_keys_active: AtomicU64,
    pub pubsub_messages: AtomicU64,
    pub tracking_invalidations: AtomicU64,
    pub evicted_keys: AtomicU64,
    pub client_query_buffer_limit_disconnections: AtomicU64,
    pub total_blocking_keys: AtomicU64,
    pub propagated: AtomicU64,
    pub unexpected_error_replies: AtomicU64,
    pub total_error_replies: AtomicU64,
}

/// One node: its keyspace and every node-wide component. Fields are the node crate's own;
/// families and the server reach the components through the methods below.
pub struct Node {
    pub(crate) ks: Keyspace,
    pub(crate) config: Config,
    pub(crate) clients: ClientRegistry,
    pub(crate) pubsub: PubSub,
    pub(crate) watches: Watches,
    pub(crate) tracking: Tracking,
    pub(crate) counters: Counters,
    pub(crate) slowlog: Slowlog,
    pub(crate) latency: LatencyMonitor,
    pub(crate) pause: ClientPause,
    pub(crate) monitors: Monitors,
    pub(crate) sinks: RwLock<Vec<Arc<dyn EffectSink>>>,
    /// Fast check that `sinks` is non-empty.
    pub(crate) has_sinks: AtomicBool,
    pub(crate) start_ms: u64,
    pub(crate) run_id: String,
    pub(crate) threads: usize,
    /// Wakes the accept loops and the cron when a shutdown is decided (`shutting_down`).
    pub(crate) shutdown: tokio::sync::Notify,
    pub(crate) shutting_down: AtomicBool,
    /// SHUTDOWN / SIGTERM in progress (shutdown.rs).
    pub(crate) shutdown_ctl: crate::shutdown::Shutdown,
    /// Listeners rebound by CONFIG SET port, on their way to the accept loops.
    pub(crate) listen: crate::listeners::Rebind,
    pub(crate) last_save: AtomicU64,
    pub(crate) ops_sample: OpsSample,
    pub(crate) blocking: crate::blocking::Blocking,
    pub(crate) persist: crate::persistence::Persist,
    pub(crate) repl: crate::replication::Repl,
    pub(crate) aof: crate::aof::Aof,
    /// memcached protocol state (stats, delayed flush, connections).
    pub(crate) mc: crate::memcached::McState,
    /// Lua scripting and functions (scripting/).
    pub(crate) scripting: crate::scripting::Scripting,
    /// ACL users and log (acl/).
    pub(crate) acl: crate::acl::Acl,
    /// Redis Cluster state (cluster/state.rs); `enabled` is false outside cluster mode.
    pub(crate) cluster: crate::cluster::state::Cluster,
}

thread_local! {
    /// (nesting depth, commands held) of the execution unit running on this thread.
    #[allow(clippy::type_complexity)]
    static EXEC_UNIT: std::cell::RefCell<(u32, Vec<(usize, Vec<Vec<u8>>)>)> = const { std::cell::RefCell::new((0, Vec::new())) };
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

pub fn now_us() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

impl Node {
    /// A node running the commands of `registry` (`ferrocache_commands::registry()`).
    pub fn new(config: Config, threads: usize, registry: crate::table::Registry) -> Arc<Node> {
        crate::table::install(registry);
        let dbs = config.get_i64("databases").max(1) as usize;
        let run_id: String = {
            use rand::Rng;
            let mut r = rand::thread_rng();
            (0..40).map(|_| format!("{:x}", r.gen_range(0..16))).collect()
        };
        let cluster = match crate::cluster::state::Cluster::init(&config) {
            Ok(c) => c,
            Err(e) => {
                crate::persistence::log_line('#', &e);
                std::process::exit(1);
            }
        };
        let ks = if cluster.enabled { Keyspace::new(1024, dbs).with_slot_sharding() } else { Keyspace::new(1024, dbs) };
        let srv = Arc::new(Node {
            cluster,
            ks,
            config,
            clients: ClientRegistry::default(),
            pubsub: PubSub::default(),
            watches: Watches::default(),
            tracking: Tracking::default(),
            counters: Counters::default(),
            slowlog: Slowlog::default(),
            latency: LatencyMonitor::default(),
            pause: ClientPause::default(),
            monitors: Monitors::default(),
            sinks: RwLock::new(Vec::new()),
            has_sinks: AtomicBool::new(false),
            start_ms: now_ms(),
            run_id,
            shutdown: tokio::sync::Notify::new(),
            shutting_down: AtomicBool::new(false),
            shutdown_ctl: Default::default(),
            listen: Default::default(),
            last_save: AtomicU64::new(now_ms() / 1000),
            threads,
            ops_sample: OpsSample::default(),
            blocking: Default::default(),
            persist: Default::default(),
            repl: Default::default(),
            aof: Default::default(),
            mc: Default::default(),
            scripting: Default::default(),
            acl: Default::default(),
        });
        if let Err(e) = crate::acl::init(&srv) {
            eprintln!("{}", e);
            std::process::exit(1);
        }
        srv
    }

    pub fn keyspace(&self) -> &Keyspace {
        &self.ks
    }
    pub fn config(&self) -> &Config {
        &self.config
    }
    pub fn clients(&self) -> &ClientRegistry {
        &self.clients
    }
    pub fn pubsub(&self) -> &PubSub {
        &self.pubsub
    }
    pub fn watches(&self) -> &Watches {
        &self.watches
    }
    pub fn tracking(&self) -> &Tracking {
        &self.tracking
    }
    pub fn counters(&self) -> &Counters {
        &self.counters
    }
    pub fn slowlog(&self) -> &Slowlog {
        &self.slowlog
    }
    pub fn latency(&self) -> &LatencyMonitor {
        &self.latency
    }
    pub fn client_pause(&self) -> &ClientPause {
        &self.pause
    }
    pub fn monitors(&self) -> &Monitors {
        &self.monitors
    }
    pub fn ops_sample(&self) -> &OpsSample {
        &self.ops_sample
    }
    pub fn blocking(&self) -> &crate::blocking::Blocking {
        &self.blocking
    }
    pub fn persist(&self) -> &crate::persistence::Persist {
        &self.persist
    }
    pub fn repl(&self) -> &crate::replication::Repl {
        &self.repl
    }
    pub fn aof(&self) -> &crate::aof::Aof {
        &self.aof
    }
    pub fn memcached(&self) -> &crate::memcached::McState {
        &self.mc
    }
    pub fn scripting(&self) -> &crate::scripting::Scripting {
        &self.scripting
    }
    pub fn acl(&self) -> &crate::acl::Acl {
        &self.acl
    }
    pub fn cluster(&self) -> &crate::cluster::state::Cluster {
        &self.cluster
    }
    pub fn shutdown_control(&self) -> &crate::shutdown::Shutdown {
        &self.shutdown_ctl
    }
    /// Rebound listeners from CONFIG SET port, for the accept loops.
    pub fn rebound_listeners(&self) -> &crate::listeners::Rebind {
        &self.listen
    }
    /// The unix time (s) of the last successful save (LASTSAVE).
    pub fn last_save(&self) -> u64 {
        self.last_save.load(Relaxed)
    }
    /// When this node started (ms).
    pub fn start_ms(&self) -> u64 {
        self.start_ms
    }
    pub fn run_id(&self) -> &str {
        &self.run_id
    }
    /// Worker threads (INFO io_threads, memcached's stats threads).
    pub fn threads(&self) -> usize {
        self.threads
    }
    /// Whether there are consumers of the write-effect stream (AOF, replicas).
    pub fn has_sinks(&self) -> bool {
        self.has_sinks.load(Relaxed)
    }
    /// A shutdown was decided: the accept loops stop.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Relaxed)
    }
    /// Wait for a shutdown decision (or a spurious wake: check `is_shutting_down`).
    pub async fn shutdown_notified(&self) {
        self.shutdown.notified().await
    }

    /// Start an execution unit (EXEC, a script) on this thread: its propagated commands are
    /// held until `end_exec_unit`, which hands them to the sinks wrapped in MULTI/EXEC when
    /// there is more than one (Redis 7's propagatePendingCommands). Units nest.
    pub fn begin_exec_unit(&self) {
        EXEC_UNIT.with(|u| u.borrow_mut().0 += 1);
    }

    /// End an execution unit; call it with the unit's shard locks still held. Returns whether
    /// the outermost unit handed anything to the sinks (the caller then updates its client's
    /// replication offset for WAIT).
    pub fn end_exec_unit(&self) -> bool {
        let ops = EXEC_UNIT.with(|u| {
            let mut u = u.borrow_mut();
            u.0 = u.0.saturating_sub(1);
            if u.0 == 0 {
                std::mem::take(&mut u.1)
            } else {
                Vec::new()
            }
        });
        if ops.is_empty() {
            return false;
        }
        let sinks = self.sinks.read();
        let wrap = ops.len() > 1;
        if wrap {
            for s in sinks.iter() {
                s.propagate(ops[0].0, &[b"MULTI"]);
            }
        }
        for (db, argv) in ops.iter() {
            let v: Vec<&[u8]> = argv.iter().map(|a| a.as_slice()).collect();
            for s in sinks.iter() {
                s.propagate(*db, &v);
            }
        }
        if wrap {
            let last = ops[ops.len() - 1].0;
            for s in sinks.iter() {
                s.propagate(last, &[b"EXEC"]);
            }
        }
        true
    }

    /// Attach a consumer of the write-effect stream (AOF, replication).
    pub fn add_sink(&self, s: Arc<dyn EffectSink>) {
        self.sinks.write().push(s);
        self.has_sinks.store(true, Relaxed);
    }

    pub fn num_dbs(&self) -> usize {
        self.ks.num_dbs
    }

    /// Apply a command's effects: propagation, notifications, WATCH, tracking, wakeups.
    /// Called with the command's shard locks still held.
    pub fn apply_effects(&self, fx: &mut Effects, origin: u64, original: Option<(usize, &[&[u8]])>) {
        self.apply_effects_inner(fx, origin, original.map(|(d, a)| (d, a.to_vec())))
    }

    /// `apply_effects` with the command's own arguments as the original.
    pub fn apply_effects_args(
        &self,
        fx: &mut Effects,
        origin: u64,
        original: Option<(usize, ferrocache_protocol::resp::Args)>,
    ) {
        if fx.is_empty() && original.is_none() {
            return;
        }
        let orig = original.and_then(|(d, a)| {
            if !self.has_sinks.load(Relaxed) {
                self.counters.propagated.fetch_add(1, Relaxed);
                None
            } else {
                Some((d, a.iter().collect::<Vec<&[u8]>>()))
            }
        });
        self.apply_effects_inner(fx, origin, orig)
    }

    fn apply_effects_inner(&self, fx: &mut Effects, origin: u64, original: Option<(usize, Vec<&[u8]>)>) {
        if fx.is_empty() && original.is_none() {
            return;
        }
        if fx.dirty > 0 {
            self.counters.dirty.fetch_add(fx.dirty, Relaxed);
        }
        if self.has_sinks.load(Relaxed) || !fx.propagate.is_empty() {
            let sinks = self.sinks.read();
            let emit = |db: usize, argv: &[&[u8]]| {
                self.counters.propagated.fetch_add(1, Relaxed);
                if self.has_sinks.load(Relaxed)
                    && EXEC_UNIT.with(|u| {
                        let mut u = u.borrow_mut();
                        if u.0 > 0 {
                            u.1.push((db, argv.iter().map(|a| a.to_vec()).collect()));
                            true
                        } else {
                            false
                        }
                    })
                {
                    return;
                }
                for s in sinks.iter() {
                    s.propagate(db, argv);
                }
            };
            // Expiries found while running come first: they happened before the command's write.
            for (db, argv) in fx.propagate.iter() {
                let v: Vec<&[u8]> = argv.iter().map(|a| a.as_slice()).collect();
                emit(*db, &v);
            }
            if let Some((db, argv)) = original {
                emit(db, &argv);
            }
        }
        let nflags = self.config.hot.notify_flags.load(Relaxed);
        for ev in fx.events.drain(..) {
            if nflags & ev.class != 0 {
                self.notify_keyspace_event(nflags, &ev);
            }
        }
        if self.watches.count.load(Relaxed) > 0 {
            for (db, k) in fx.touched.iter() {
                self.watches.touch(*db, k);
            }
            if !fx.flushed_watches_done {
                for f in fx.flushed.iter() {
                    self.watches.touch_db(*f);
                }
            }
        }
        if self.tracking.enabled.load(Relaxed) > 0 {
            for (_, k) in fx.touched.iter() {
                self.tracking_invalidate(k, origin);
            }
            if !fx.flushed.is_empty() {
                self.tracking_flush_all();
            }
        }
        for (db, k) in fx.ready.drain(..) {
            self.blocking.signal(db, &k);
        }
        fx.propagate.clear();
        fx.touched.clear();
        fx.flushed.clear();
        fx.flushed_watches_done = false;
        fx.dirty = 0;
    }

    fn notify_keyspace_event(&self, flags: u32, ev: &ferrocache_engine::KeyEvent) {
        if flags & notify::KEYSPACE != 0 {
            let mut ch = format!("__keyspace@{}__:", ev.db).into_bytes();
            ch.extend_from_slice(&ev.key);
            self.publish(&ch, ev.event.as_bytes(), false);
        }
        if flags & notify::KEYEVENT != 0 {
            let ch = format!("__keyevent@{}__:{}", ev.db, ev.event).into_bytes();
            self.publish(&ch, &ev.key, false);
        }
    }

    /// Queue a pub/sub message for a subscriber, counted in its output buffer and checked
    /// against client-output-buffer-limit (as Redis's addReply to the subscriber): a client
    /// over the limit is closed and gets nothing more, so a subscriber that does not read
    /// cannot make the node buffer without bound.
    fn deliver(&self, h: &ClientHandle, m: ClientMsg) -> bool {
        let sh = &h.shared;
        if sh.kill.load(Relaxed) {
            return true;
        }
        let size = m.obuf_size();
        sh.obuf_queued.fetch_add(size, Relaxed);
        if h.tx.send(m).is_err() {
            sh.obuf_queued.fetch_sub(size, Relaxed);
            return false;
        }
        let hot = &self.config.hot;
        if sh.obuf_limited(hot) && sh.obuf_over_limit(hot, sh.omem()) {
            sh.close_for_obuf();
        }
        true
    }

    /// Memory of the normal (and pub/sub) clients and of the replicas' connections (INFO
    /// mem_clients_normal / mem_clients_slaves).
    pub fn clients_memory(&self) -> (u64, u64) {
        let (mut normal, mut replicas) = (0, 0);
        for h in self.clients.all() {
            if h.shared.flags.lock().contains('S') {
                replicas += h.shared.mem();
            } else {
                normal += h.shared.mem();
            }
        }
        (normal, replicas)
    }

    /// PUBLISH / SPUBLISH: returns receivers.
    pub fn publish(&self, channel: &[u8], msg: &[u8], shard: bool) -> usize {
        let ch = Bytes::copy_from_slice(channel);
        let payload = Bytes::copy_from_slice(msg);
        let mut n = 0;
        let map = if shard { &self.pubsub.shard_channels } else { &self.pubsub.channels };
        if let Some(subs) = map.read().get(channel) {
            for h in subs.values() {
                let kind = if shard { "smessage" } else { "message" };
                if self.deliver(
                    h,
                    ClientMsg::Message { kind, pattern: None, channel: ch.clone(), payload: payload.clone() },
                ) {
                    n += 1;
                }
            }
        }
        if !shard {
            for (pat, subs) in self.pubsub.patterns.read().iter() {
                if glob_match(pat, channel, false) {
                    for h in subs.values() {
                        let m = ClientMsg::Message {
                            kind: "pmessage",
                            pattern: Some(pat.clone()),
                            channel: ch.clone(),
                            payload: payload.clone(),
                        };
                        if self.deliver(h, m) {
                            n += 1;
                        }
                    }
                }
            }
        }
        self.counters.pubsub_messages.fetch_add(1, Relaxed);
        n
    }

    /// Shard channels whose slot `drop` picks lose every subscriber, each told with
    /// `sunsubscribe` (the slot moved to another shard).
    pub fn drop_shard_channels(&self, drop: impl Fn(u16) -> bool) {
        let gone: Vec<(Bytes, HashMap<u64, ClientHandle>)> = {
            let mut reg = self.pubsub.shard_channels.write();
            let names: Vec<Bytes> = reg.keys().filter(|c| drop(crate::cluster::slot::key_slot(c))).cloned().collect();
            names.into_iter().filter_map(|c| reg.remove(&c).map(|subs| (c, subs))).collect()
        };
        for (ch, subs) in gone {
            for h in subs.values() {
                self.deliver(h, ClientMsg::ShardUnsubscribed(ch.clone()));
            }
        }
    }

    /// A key was modified: invalidate tracking clients that cached it.
    pub fn tracking_invalidate(&self, key: &[u8], origin: u64) {
        // BCAST: the key is remembered under each matching prefix with the client that modified
        // it last, and sent in one message per prefix by `tracking_flush_bcast` (Redis's
        // trackingRememberKeyToBroadcast, sent from beforeSleep).
        {
            let p = self.tracking.prefixes.lock();
            if !p.is_empty() {
                let mut pending = None;
                for (prefix, _) in p.iter() {
                    if key.starts_with(prefix) {
                        let pend = pending.get_or_insert_with(|| self.tracking.bcast_pending.lock());
                        pend.entry(prefix.clone()).or_default().insert(key.to_vec(), origin);
                    }
                }
                if pending.is_some() {
                    self.tracking.bcast_dirty.store(true, Relaxed);
                }
            }
        }
        self.tracking_invalidate_tracked(key, origin);
    }

    /// tracking-table-max-keys: forget keys (invalidating them for their clients, as if they
    /// were modified) until the table is back under the limit (trackingLimitUsedSlots).
    pub fn tracking_limit(&self) {
        let max = self.config.get_i64("tracking-table-max-keys");
        if max <= 0 {
            return;
        }
        loop {
            let key = {
                let t = self.tracking.table.lock();
                if t.len() as i64 <= max {
                    return;
                }
                t.keys().next().cloned()
            };
            let Some(key) = key else { return };
            self.tracking_invalidate_tracked(&key, 0);
        }
    }

    /// The clients that read `key` get an invalidation, and the key leaves the table.
    fn tracking_invalidate_tracked(&self, key: &[u8], origin: u64) {
        let mut targets: Vec<u64> = match self.tracking.table.lock().remove(key) {
            Some(ids) => ids.into_iter().collect(),
            None => return,
        };
        targets.sort_unstable();
        targets.dedup();
        let clients = self.clients.lock();
        for id in targets {
            let Some(h) = clients.get(&id) else { continue };
            let tr = h.shared.tracking.lock().clone();
            let Some(tr) = tr else { continue };
            if tr.bcast || (tr.noloop && id == origin) {
                continue;
            }
            if tr.redirect == 0
                && INLINE_INVALIDATE.with(|c| match &mut *c.borrow_mut() {
                    Some((cid, keys)) if *cid == id => {
                        keys.push(key.to_vec());
                        true
                    }
                    _ => false,
                })
            {
                self.counters.tracking_invalidations.fetch_add(1, Relaxed);
                continue;
            }
            self.counters.tracking_invalidations.fetch_add(1, Relaxed);
            self.send_invalidation(&clients, id, &tr, Some(vec![key.to_vec()]));
        }
    }

    /// Send keys modified since the last call to the BCAST clients of their prefixes: one
    /// message per prefix with its keys in lexicographic order, leaving out for a NOLOOP client
    /// the keys it modified last itself (Redis's trackingBroadcastInvalidationMessages).
    pub fn tracking_flush_bcast(&self) {
        if !self.tracking.bcast_dirty.load(Relaxed) || !self.tracking.bcast_dirty.swap(false, Relaxed) {
            return;
        }
        let pending = std::mem::take(&mut *self.tracking.bcast_pending.lock());
        let prefixes = self.tracking.prefixes.lock().clone();
        let clients = self.clients.lock();
        for (prefix, keys) in pending {
            let Some((_, ids)) = prefixes.iter().find(|(p, _)| *p == prefix) else { continue };
            for &id in ids {
                let Some(h) = clients.get(&id) else { continue };
                let Some(tr) = h.shared.tracking.lock().clone() else { continue };
                let list: Vec<Vec<u8>> =
                    keys.iter().filter(|(_, by)| !(tr.noloop && **by == id)).map(|(k, _)| k.clone()).collect();
                if list.is_empty() {
                    continue;
                }
                self.counters.tracking_invalidations.fetch_add(1, Relaxed);
                self.send_invalidation(&clients, id, &tr, Some(list));
            }
        }
    }

    /// sendTrackingMessage: a RESP3 push to the client (or to its redirection target); a RESP2
    /// redirection target gets it as a `__redis__:invalidate` message only while it is in
    /// Pub/Sub mode; a RESP2 client without redirection gets nothing.
    fn send_invalidation(
        &self,
        clients: &HashMap<u64, ClientHandle>,
        id: u64,
        tr: &crate::client::TrackingInfo,
        keys: Option<Vec<Vec<u8>>>,
    ) {
        if tr.redirect != 0 {
            if let Some(r) = clients.get(&tr.redirect) {
                let sh = &r.shared;
                if sh.resp3.load(Relaxed) {
                    let _ = r.tx.send(ClientMsg::Invalidate { keys, via_channel: false });
                } else if sh.sub.load(Relaxed) + sh.psub.load(Relaxed) + sh.ssub.load(Relaxed) > 0 {
                    let _ = r.tx.send(ClientMsg::Invalidate { keys, via_channel: true });
                }
            } else if let Some(h) = clients.get(&id) {
                let _ = h.tx.send(ClientMsg::TrackingRedirBroken(tr.redirect));
            }
        } else if let Some(h) = clients.get(&id) {
            if h.shared.resp3.load(Relaxed) {
                let _ = h.tx.send(ClientMsg::Invalidate { keys, via_channel: false });
            }
        }
    }

    /// FLUSHALL/FLUSHDB: every tracking client gets a null invalidation.
    pub fn tracking_flush_all(&self) {
        self.tracking.table.lock().clear();
        let clients = self.clients.lock();
        for (id, h) in clients.iter() {
            let tr = h.shared.tracking.lock().clone();
            if let Some(tr) = tr {
                self.send_invalidation(&clients, *id, &tr, None);
            }
        }
    }

    pub fn record_slowlog(&self, micros: u64, args: &[&[u8]], addr: &str, name: &str) {
        let th = self.config.hot.slowlog_slower_than.load(Relaxed);
        if th < 0 || (micros as i64) < th {
            return;
        }
        self.slowlog.push(micros, args, addr, name, self.config.hot.slowlog_max_len.load(Relaxed));
    }

    pub fn record_latency(&self, event: &str, ms: u64) {
        let th = self.config.hot.latency_threshold.load(Relaxed);
        if th == 0 || ms < th {
            return;
        }
        self.latency.record(event, ms);
    }

    /// Some pause holds writes now (CLIENT PAUSE of either mode, FAILOVER, a shutdown waiting for
    /// replicas): checked before each request.
    pub fn writes_may_pause(&self) -> bool {
        self.pause.until() != 0 || self.repl.failing_over() || self.shutdown_ctl.pausing_writes.load(Relaxed)
    }

    /// Keys may be deleted by expiry (active or on access) now: a primary, and no pause holds
    /// writes (Redis's checkClientPauseTimeoutAndReturnIfPaused: expired keys are only hidden).
    /// LRU/LFU access tracking as configured.
    #[inline]
    pub fn access_policy(&self) -> AccessPolicy {
        let h = &self.config.hot;
        AccessPolicy {
            lfu: self.config.policy().is_lfu(),
            lfu_log_factor: h.lfu_log_factor.load(Relaxed),
            lfu_decay_time: h.lfu_decay_time.load(Relaxed),
        }
    }

    /// Database `db` over held shards, with this node's access tracking and expiry setting.
    #[inline]
    pub fn db<'g, 'a>(&self, guards: &'g mut Guards<'a>, fx: &'g mut Effects, db: usize, now_ms: u64) -> Db<'g, 'a> {
        Db::new(guards, fx, db, now_ms).with_access(self.access_policy()).expiring(self.expire_allowed())
    }

    #[inline]
    pub fn expire_allowed(&self) -> bool {
        if !self.repl.expire_allowed() || self.shutdown_ctl.pausing_writes.load(Relaxed) {
            return false;
        }
        let p = self.pause.until();
        p == 0 || p <= now_ms()
    }

    /// Current pause that applies to a command, if any.
    pub fn paused_for(&self, is_write: bool) -> Option<u64> {
        // FAILOVER pauses writes until it ends (pause_notify wakes the waiters).
        if is_write && (self.repl.failing_over() || self.shutdown_ctl.pausing_writes.load(Relaxed)) {
            return Some(now_ms() + 1000);
        }
        self.pause.holds(is_write)
    }

    pub fn feed_monitors(&self, db: usize, addr: &str, args: &[&[u8]]) {
        self.monitors.feed(db, addr, args);
    }
}

/// Pub/sub subscriptions: channel → subscribers.
#[derive(Default)]
pub struct PubSub {
    pub channels: RwLock<HashMap<Bytes, HashMap<u64, ClientHandle>>>,
    pub patterns: RwLock<HashMap<Bytes, HashMap<u64, ClientHandle>>>,
    pub shard_channels: RwLock<HashMap<Bytes, HashMap<u64, ClientHandle>>>,
}

impl PubSub {
    /// Remove one client from one channel's subscribers, dropping the channel when it empties.
    pub fn remove_subscriber(reg: &RwLock<HashMap<Bytes, HashMap<u64, ClientHandle>>>, ch: &Bytes, id: u64) {
        let mut m = reg.write();
        if let Some(s) = m.get_mut(ch) {
            s.remove(&id);
            if s.is_empty() {
                m.remove(ch);
            }
        }
    }

    /// Unsubscribe a client from everything (RESET, disconnect).
    pub fn forget_client(&self, client: &mut crate::client::Client) {
        let id = client.id;
        for ch in client.subs.drain() {
            Self::remove_subscriber(&self.channels, &ch, id);
        }
        for ch in client.psubs.drain() {
            Self::remove_subscriber(&self.patterns, &ch, id);
        }
        for ch in client.ssubs.drain() {
            Self::remove_subscriber(&self.shard_channels, &ch, id);
        }
    }
}

/// WATCH registry: (db, key) → watching clients' dirty flags.
#[derive(Default)]
pub struct Watches {
    pub map: Mutex<HashMap<(usize, SmallBytes), Vec<(u64, Arc<AtomicBool>)>>>,
    pub count: AtomicUsize,
}

impl Watches {
    pub fn touch(&self, db: usize, key: &SmallBytes) {
        let m = self.map.lock();
        if let Some(v) = m.get(&(db, key.clone())) {
            for (_, f) in v {
                f.store(true, Relaxed);
            }
        }
    }
    /// The watched keys of these databases (before a flush or swap decides which it touches).
    pub fn keys_in(&self, dbs: &[usize]) -> Vec<(usize, SmallBytes)> {
        if self.count.load(Relaxed) == 0 {
            return Vec::new();
        }
        self.map.lock().keys().filter(|(d, _)| dbs.contains(d)).cloned().collect()
    }
    pub fn touch_db(&self, db: Option<usize>) {
        let m = self.map.lock();
        for ((d, _), v) in m.iter() {
            if db.is_none() || db == Some(*d) {
                for (_, f) in v {
                    f.store(true, Relaxed);
                }
            }
        }
    }
    pub fn add(&self, db: usize, key: &[u8], id: u64, flag: &Arc<AtomicBool>) {
        let mut m = self.map.lock();
        let v = m.entry((db, SmallBytes::new(key))).or_default();
        if !v.iter().any(|(i, _)| *i == id) {
            v.push((id, flag.clone()));
            self.count.fetch_add(1, Relaxed);
        }
    }
    pub fn remove_all(&self, id: u64, keys: &[(usize, SmallBytes)]) {
        let mut m = self.map.lock();
        for k in keys {
            if let Some(v) = m.get_mut(k) {
                let before = v.len();
                v.retain(|(i, _)| *i != id);
                if v.len() < before {
                    self.count.fetch_sub(1, Relaxed);
                }
                if v.is_empty() {
                    m.remove(k);
                }
            }
        }
    }
}

thread_local! {
    /// The client whose invalidations are written into its own reply buffer rather than queued
    /// (see `inline_invalidations_begin`), and the keys collected so far.
    static INLINE_INVALIDATE: std::cell::RefCell<Option<(u64, Vec<Vec<u8>>)>> = const { std::cell::RefCell::new(None) };
}

/// Until `inline_invalidations_end`, invalidations for client `id` caused on this thread are
/// collected instead of queued: the executor writes them before the command's reply (eviction
/// in processCommand runs before the command, so Redis's messages precede its reply).
pub fn inline_invalidations_begin(id: u64) {
    INLINE_INVALIDATE.with(|c| *c.borrow_mut() = Some((id, Vec::new())));
}

pub fn inline_invalidations_end() -> Vec<Vec<u8>> {
    INLINE_INVALIDATE.with(|c| c.borrow_mut().take().map(|(_, k)| k).unwrap_or_default())
}

/// Client-side caching: keys read by tracking clients, and BCAST prefixes.
#[derive(Default)]
pub struct Tracking {
    pub table: Mutex<HashMap<Vec<u8>, HashSet<u64>>>,
    pub prefixes: Mutex<Vec<(Vec<u8>, HashSet<u64>)>>,
    pub enabled: AtomicUsize,
    /// BCAST: per prefix, the keys modified since the last broadcast and who modified each last.
    pub bcast_pending: Mutex<std::collections::BTreeMap<Vec<u8>, std::collections::BTreeMap<Vec<u8>, u64>>>,
    pub bcast_dirty: AtomicBool,
}

impl Tracking {
    pub fn remember(&self, id: u64, key: &[u8]) {
        self.table.lock().entry(key.to_vec()).or_default().insert(id);
    }
    pub fn add_prefix(&self, id: u64, prefix: &[u8]) {
        let mut p = self.prefixes.lock();
        if let Some(e) = p.iter_mut().find(|(x, _)| x == prefix) {
            e.1.insert(id);
        } else {
            p.push((prefix.to_vec(), [id].into_iter().collect()));
        }
    }
    pub fn forget_client(&self, id: u64) {
        let mut p = self.prefixes.lock();
        for (_, s) in p.iter_mut() {
            s.remove(&id);
        }
        p.retain(|(_, s)| !s.is_empty());
        drop(p);
        let mut t = self.table.lock();
        t.retain(|_, s| {
            s.remove(&id);
            !s.is_empty()
        });
    }
}
