//! Replication state and the operations behind REPLICAOF/SLAVEOF, ROLE, PSYNC/SYNC, WAIT and
//! FAILOVER (their handlers are in crates/commands/src/replication.rs), and the
//! "# Replication" INFO section; `feed` serves replicas on their connections, `link` is a
//! replica's link to its primary (both on the node's tokio runtime).
//!
//! Primary side: `ReplSink` is an `EffectSink`. It turns each propagated write into RESP (with
//! SELECT when the database changes), appends it to the circular backlog and hands the same
//! bytes to every attached replica's channel, under one mutex (`Repl::m`) taken with the shard
//! locks of the write held, so the stream has the order of the writes.
//!
//! Full sync start point: `persistence::repl_snapshot` holds every shard while it starts the
//! snapshot and runs our `at_start`, which records the stream offset and attaches the replica.
//! Every write region either finished (and was propagated) before that — it is in the snapshot
//! and before the offset — or starts after, sees the snapshot (copy-before-write) and is
//! propagated after the offset.
//!
//! Replica side: the master's stream is applied through the executor by a master client; the
//! bytes applied are appended unchanged to this node's backlog (so sub-replicas and PSYNC2
//! see the primary's offsets), and local effects are not fed (`MasterSide::proxy`).

use crate::client::ClientShared;
use crate::error::CommandError;
use crate::node::{now_ms, EffectSink, Node};
use bytes::Bytes;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;

pub mod feed;
mod link;
pub mod resume;

pub const READONLY_ERR: &str = "READONLY You can't write against a read only replica.";
pub const MASTERDOWN_ERR: &str = "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.";
pub const NOREPLICAS_ERR: &str = "NOREPLICAS Not enough good replicas to write.";
pub const NO_REPLID: &str = "0000000000000000000000000000000000000000";

pub fn random_replid() -> String {
    use rand::Rng;
    let mut r = rand::thread_rng();
    (0..40).map(|_| format!("{:x}", r.gen_range(0..16))).collect()
}

/// Per-connection replication state (REPLCONF options, the link from our primary).
#[derive(Default, Debug, Clone)]
pub struct ClientRepl {
    pub listening_port: u16,
    pub ip: Option<String>,
    pub capa_eof: bool,
    pub capa_psync2: bool,
    /// This client is the link from our primary (its writes are obeyed, never READONLY).
    pub is_master: bool,
    /// master_repl_offset after this client's last propagated write (Redis's c->woff).
    pub woff: u64,
}

pub const STATE_WAIT_BGSAVE: u8 = 0;
pub const STATE_SEND_BULK: u8 = 1;
pub const STATE_ONLINE: u8 = 2;

/// A replica's state as INFO and the logs name it.
pub fn state_name(st: u8) -> &'static str {
    match st {
        STATE_WAIT_BGSAVE => "wait_bgsave",
        STATE_SEND_BULK => "send_bulk",
        _ => "online",
    }
}

/// One attached replica, as the primary sees it.
pub struct ReplicaConn {
    pub id: u64,
    pub ip: String,
    pub port: u16,
    pub state: AtomicU8,
    pub ack_off: AtomicU64,
    pub ack_ms: AtomicU64,
    /// Stream bytes to send (after the RDB).
    pub tx: UnboundedSender<Bytes>,
    /// Its output buffer (bytes sent to `tx` and not written yet) is `shared.obuf_queued`.
    pub shared: Arc<ClientShared>,
    /// Wakes the feeder when the replica is dropped for its output buffer.
    pub overflow: tokio::sync::Notify,
}

impl ReplicaConn {
    pub fn new(id: u64, ip: String, port: u16, tx: UnboundedSender<Bytes>, shared: Arc<ClientShared>) -> ReplicaConn {
        ReplicaConn {
            id,
            ip,
            port,
            state: AtomicU8::new(STATE_WAIT_BGSAVE),
            ack_off: AtomicU64::new(0),
            ack_ms: AtomicU64::new(now_ms()),
            tx,
            shared,
            overflow: tokio::sync::Notify::new(),
        }
    }
    /// The feeder wrote `n` bytes of the stream.
    pub fn written(&self, n: usize) {
        self.shared.obuf_queued.fetch_sub(n as u64, Relaxed);
    }
    /// checkClientOutputBufferLimits for the replica class.
    fn over_limit(&self, lim: &ObufLimit, now: u64) -> bool {
        let used = self.shared.obuf_queued.load(Relaxed);
        if lim.hard > 0 && used >= lim.hard {
            return true;
        }
        if lim.soft > 0 && used >= lim.soft {
            let since = self.shared.obuf_soft_since.load(Relaxed);
            if since == 0 {
                self.shared.obuf_soft_since.store(now, Relaxed);
            } else if now.saturating_sub(since) / 1000 > lim.secs {
                return true;
            }
        } else {
            self.shared.obuf_soft_since.store(0, Relaxed);
        }
        false
    }
}

pub use crate::config::ObufLimit;

/// client-output-buffer-limit for the replica class (hard raised to repl-backlog-size).
pub fn replica_obuf_limit(srv: &Node) -> ObufLimit {
    let v = srv.config.get("client-output-buffer-limit").unwrap_or_default();
    let mut lim = crate::config::parse_obuf_limits(&v)[crate::config::OBUF_REPLICA];
    if lim.hard > 0 {
        lim.hard = lim.hard.max(backlog_size(srv) as u64);
    }
    lim
}

/// The circular replication backlog.
pub struct Backlog {
    buf: Vec<u8>,
    size: usize,
    /// Next write position in `buf`.
    idx: usize,
    pub histlen: usize,
    /// master_repl_offset: offset of the last byte appended.
    pub offset: u64,
    pub active: bool,
}

impl Backlog {
    fn new() -> Backlog {
        Backlog { buf: Vec::new(), size: 0, idx: 0, histlen: 0, offset: 0, active: false }
    }
    pub fn create(&mut self, size: usize) {
        self.size = size.max(16 * 1024);
        self.buf = vec![0; self.size];
        self.idx = 0;
        self.histlen = 0;
        self.active = true;
    }
    pub fn first_byte_offset(&self) -> u64 {
        if !self.active {
            return 0;
        }
        self.offset + 1 - self.histlen as u64
    }
    fn append(&mut self, mut b: &[u8]) {
        self.offset += b.len() as u64;
        if !self.active {
            return;
        }
        if b.len() > self.size {
            b = &b[b.len() - self.size..];
        }
        let n = b.len();
        let first = (self.size - self.idx).min(n);
        self.buf[self.idx..self.idx + first].copy_from_slice(&b[..first]);
        if first < n {
            self.buf[..n - first].copy_from_slice(&b[first..]);
        }
        self.idx = (self.idx + n) % self.size;
        self.histlen = (self.histlen + n).min(self.size);
    }
    /// The bytes from offset `from` (the next byte a replica wants) to the end, if still held.
    pub fn copy_from(&self, from: u64) -> Option<Vec<u8>> {
        if !self.active {
            return None;
        }
        let first = self.first_byte_offset();
        if from < first || from > self.offset + 1 {
            return None;
        }
        let n = (self.offset + 1 - from) as usize;
        let start = (self.idx + self.size - n) % self.size;
        let mut v = Vec::with_capacity(n);
        let first_part = (self.size - start).min(n);
        v.extend_from_slice(&self.buf[start..start + first_part]);
        v.extend_from_slice(&self.buf[..n - first_part]);
        Some(v)
    }
    /// Forget the history and continue from `offset` (after a full sync as a replica).
    pub fn reset_to(&mut self, offset: u64) {
        self.offset = offset;
        self.histlen = 0;
        self.idx = 0;
    }
    pub fn resize(&mut self, size: usize) {
        if self.active && size.max(16 * 1024) != self.size {
            let off = self.offset;
            self.create(size);
            self.offset = off;
        }
    }
}

/// The primary-side state: ids, backlog, replicas. One mutex, taken by the sink with shard
/// locks held.
pub struct MasterSide {
    pub replid: String,
    pub replid2: String,
    pub second_offset: i64,
    pub backlog: Backlog,
    pub replicas: Vec<Arc<ReplicaConn>>,
    /// Database of the last SELECT in the stream (-1: emit one before the next command).
    pub last_db: i64,
    /// This node is a replica: the stream is the primary's bytes, local effects are not fed.
    pub proxy: bool,
    /// When the last replica went away (for repl-backlog-ttl).
    pub no_replicas_since_ms: u64,
    /// The replica output buffer limit (refreshed by the cron).
    pub obuf_limit: ObufLimit,
}

impl MasterSide {
    /// Append raw stream bytes to the backlog and to every replica.
    pub fn feed_raw(&mut self, b: &[u8]) {
        self.backlog.append(b);
        if self.replicas.is_empty() {
            return;
        }
        let bytes = Bytes::copy_from_slice(b);
        let lim = self.obuf_limit;
        let check = lim.hard > 0 || lim.soft > 0;
        let now = if check { now_ms() } else { 0 };
        let mut over = false;
        for r in self.replicas.iter() {
            r.shared.obuf_queued.fetch_add(b.len() as u64, Relaxed);
            let _ = r.tx.send(bytes.clone());
            if check && r.over_limit(&lim, now) {
                over = true;
            }
        }
        if over {
            // Drop replicas over the limit at once: the primary never waits for a slow replica.
            self.replicas.retain(|r| {
                if !r.over_limit(&lim, now) {
                    return true;
                }
                log(
                    '#',
                    &format!(
                        "Client {} scheduled to be closed ASAP for overcoming of output buffer limits.",
                        r.shared.info_line(now_ms())
                    ),
                );
                r.shared.kill.store(true, Relaxed);
                r.overflow.notify_one();
                false
            });
            if self.replicas.is_empty() {
                self.no_replicas_since_ms = now;
            }
        }
    }
    /// Append one command (with SELECT first when the database changes).
    pub fn feed_command(&mut self, db: i64, argv: &[&[u8]]) {
        if !self.backlog.active {
            return;
        }
        let mut buf = Vec::with_capacity(64);
        if db >= 0 && db != self.last_db {
            let d = db.to_string();
            encode_command(&mut buf, &[b"SELECT", d.as_bytes()]);
            self.last_db = db;
        }
        encode_command(&mut buf, argv);
        self.feed_raw(&buf);
    }
    /// Make our replication id a new one, keeping the old as replid2 (PSYNC2: a promoted
    /// replica keeps partial resync for its former siblings).
    pub fn shift_replid(&mut self) {
        self.replid2 = std::mem::replace(&mut self.replid, random_replid());
        self.second_offset = self.backlog.offset as i64 + 1;
    }
}

pub fn encode_command(buf: &mut Vec<u8>, argv: &[&[u8]]) {
    buf.extend_from_slice(format!("*{}\r\n", argv.len()).as_bytes());
    for a in argv {
        buf.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        buf.extend_from_slice(a);
        buf.extend_from_slice(b"\r\n");
    }
}

/// Replica link states (Redis's repl_state).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LinkState {
    None,
    Connect,
    Connecting,
    Handshake,
    Transfer,
    Connected,
}

impl LinkState {
    pub fn role_name(self) -> &'static str {
        match self {
            LinkState::None => "none",
            LinkState::Connect => "connect",
            LinkState::Connecting => "connecting",
            LinkState::Handshake => "handshake",
            LinkState::Transfer => "sync",
            LinkState::Connected => "connected",
        }
    }
}

/// The replica-side state.
pub struct ReplicaSide {
    pub master: Option<(String, u16)>,
    pub state: LinkState,
    /// Bumped by every REPLICAOF: a link task whose epoch is old stops.
    pub epoch: u64,
    pub last_io_ms: u64,
    pub down_since_ms: u64,
    pub transfer_size: i64,
    pub transfer_read: i64,
    /// Offset applied from the primary's stream, and read from it.
    pub reploff: i64,
    pub read_reploff: i64,
    /// The master client's id (CLIENT KILL TYPE master).
    pub master_client: u64,
}

/// FAILOVER states (Redis's failover_state).
pub const FAILOVER_NONE: u8 = 0;
pub const FAILOVER_WAIT_SYNC: u8 = 1;
pub const FAILOVER_IN_PROGRESS: u8 = 2;

/// A coordinated FAILOVER's target and limits.
#[derive(Default)]
pub struct Failover {
    pub host: Option<String>,
    pub port: i64,
    /// Deadline (ms) for the target to catch up, 0 = none.
    pub end_ms: u64,
    pub force: bool,
}

pub struct Repl {
    /// This node as a primary: replication id, backlog, its replicas.
    pub primary: Arc<Mutex<MasterSide>>,
    /// This node as a replica: its primary, the link's state.
    pub replica: Mutex<ReplicaSide>,
    pub is_replica: AtomicBool,
    pub link_up: AtomicBool,
    /// Mirror of the backlog offset, for WAIT and woff without the mutex.
    pub offset: Arc<AtomicU64>,
    pub acks: tokio::sync::Notify,
    sink_installed: AtomicBool,
    pub sync_full: AtomicU64,
    pub sync_partial_ok: AtomicU64,
    pub sync_partial_err: AtomicU64,
    pub last_ping_ms: AtomicI64,
    /// FAILOVER_*: while not NONE, writes are paused (PAUSE_DURING_FAILOVER), no PING or
    /// GETACK is fed to replicas and nothing expires, so the offsets can meet.
    pub failover_state: AtomicU8,
    pub failover: Mutex<Failover>,
    /// Held while the primary's stream applies one command; snapshots are cut under it
    /// (resume.rs).
    pub stream_point: Mutex<resume::StreamPoint>,
    /// The stream db restored from the RDB at startup, for the first link (-1: none).
    pub resume_db: AtomicI64,
}

impl Default for Repl {
    fn default() -> Self {
        Repl {
            primary: Arc::new(Mutex::new(MasterSide {
                replid: random_replid(),
                replid2: NO_REPLID.into(),
                second_offset: -1,
                backlog: Backlog::new(),
                replicas: Vec::new(),
                last_db: -1,
                proxy: false,
                no_replicas_since_ms: now_ms(),
                obuf_limit: ObufLimit::default(),
            })),
            replica: Mutex::new(ReplicaSide {
                master: None,
                state: LinkState::None,
                epoch: 0,
                last_io_ms: 0,
                down_since_ms: 0,
                transfer_size: -1,
                transfer_read: 0,
                reploff: 0,
                read_reploff: 0,
                master_client: 0,
            }),
            is_replica: AtomicBool::new(false),
            link_up: AtomicBool::new(false),
            offset: Arc::new(AtomicU64::new(0)),
            acks: tokio::sync::Notify::new(),
            sink_installed: AtomicBool::new(false),
            sync_full: AtomicU64::new(0),
            sync_partial_ok: AtomicU64::new(0),
            sync_partial_err: AtomicU64::new(0),
            last_ping_ms: AtomicI64::new(0),
            failover_state: AtomicU8::new(FAILOVER_NONE),
            failover: Mutex::new(Failover::default()),
            stream_point: Mutex::new(resume::StreamPoint::default()),
            resume_db: AtomicI64::new(-1),
        }
    }
}

struct ReplSink {
    primary: Arc<Mutex<MasterSide>>,
    offset: Arc<AtomicU64>,
}

thread_local! {
    /// On a replica: the primary's bytes of the command being applied, fed to our backlog by
    /// the first effect it propagates (so with its shard locks held, like a local write).
    static PENDING_RAW: std::cell::RefCell<Option<Vec<u8>>> = const { std::cell::RefCell::new(None) };
}

/// Replica link: the raw bytes of the command about to be applied.
pub fn set_pending_raw(b: &[u8]) {
    PENDING_RAW.with(|p| *p.borrow_mut() = Some(b.to_vec()));
}

/// Replica link: the raw bytes not fed yet by the command just applied (it wrote nothing).
pub fn take_pending_raw() -> Option<Vec<u8>> {
    PENDING_RAW.with(|p| p.borrow_mut().take())
}

impl EffectSink for ReplSink {
    fn propagate(&self, db: usize, argv: &[&[u8]]) {
        let mut m = self.primary.lock();
        if m.proxy {
            if let Some(raw) = take_pending_raw() {
                m.feed_raw(&raw);
                self.offset.store(m.backlog.offset, Relaxed);
            }
            return;
        }
        if !m.backlog.active {
            return;
        }
        m.feed_command(db as i64, argv);
        self.offset.store(m.backlog.offset, Relaxed);
    }
}

impl Repl {
    /// Attach the replication sink (once) and create the backlog if there is none.
    pub fn ensure_backlog(&self, srv: &Node) {
        if !self.sink_installed.swap(true, Relaxed) {
            srv.add_sink(Arc::new(ReplSink { primary: self.primary.clone(), offset: self.offset.clone() }));
        }
        let mut m = self.primary.lock();
        m.obuf_limit = replica_obuf_limit(srv);
        if !m.backlog.active {
            m.backlog.create(backlog_size(srv));
            // A new backlog starts a new history: nobody can continue from the old one.
            m.replid2 = NO_REPLID.into();
            m.second_offset = -1;
        }
    }
    pub fn master_offset(&self) -> u64 {
        self.offset.load(Relaxed)
    }
    /// Feed raw bytes (the replica proxying its primary's stream, PINGs, GETACKs).
    pub fn feed_raw(&self, b: &[u8]) {
        let mut m = self.primary.lock();
        m.feed_raw(b);
        self.offset.store(m.backlog.offset, Relaxed);
    }
    /// Replicas whose acknowledged offset reached `off`.
    pub fn acked(&self, off: u64) -> usize {
        let m = self.primary.lock();
        m.replicas.iter().filter(|r| r.state.load(Relaxed) == STATE_ONLINE && r.ack_off.load(Relaxed) >= off).count()
    }
    /// Writes are paused by a FAILOVER in progress.
    pub fn failing_over(&self) -> bool {
        self.failover_state.load(Relaxed) != FAILOVER_NONE
    }
    /// This node may delete expired keys itself: it is a primary and no FAILOVER pauses it
    /// (a replica only hides logically expired keys and waits for the primary's DEL).
    pub fn expire_allowed(&self) -> bool {
        !self.is_replica.load(Relaxed) && !self.failing_over()
    }
    /// Ask replicas for an ACK now (WAIT). Not while failing over: it would move the offset.
    pub fn request_acks(&self) {
        if self.failing_over() {
            return;
        }
        let mut m = self.primary.lock();
        if m.replicas.is_empty() || m.proxy {
            return;
        }
        m.feed_command(-1, &[b"REPLCONF", b"GETACK", b"*"]);
        self.offset.store(m.backlog.offset, Relaxed);
    }
    pub fn remove_replica(&self, id: u64) {
        let mut m = self.primary.lock();
        m.replicas.retain(|r| r.id != id);
        if m.replicas.is_empty() {
            m.no_replicas_since_ms = now_ms();
        }
    }
    /// Disconnect every replica (their feeder tasks stop on the kill flag).
    pub fn disconnect_replicas(&self, srv: &Node) {
        let reps: Vec<Arc<ReplicaConn>> = std::mem::take(&mut self.primary.lock().replicas);
        for r in reps {
            r.shared.kill.store(true, Relaxed);
            srv.clients.kill(r.id);
        }
    }
}

pub fn backlog_size(srv: &Node) -> usize {
    srv.config.get_i64("repl-backlog-size").max(16 * 1024) as usize
}

/// PSYNC: try a partial resync from the backlog. On success the replica is attached (its
/// channel receives everything after the returned bytes) and the reply line and backlog
/// bytes to send first are returned.
pub fn try_partial(srv: &Node, conn: &Arc<ReplicaConn>, replid: &str, offset: i64, psync2: bool) -> Option<Vec<u8>> {
    let repl = &srv.repl;
    let mut m = repl.primary.lock();
    if replid == "?" || offset < 0 || !m.backlog.active {
        if replid != "?" {
            repl.sync_partial_err.fetch_add(1, Relaxed);
        }
        return None;
    }
    let ok_id = replid.eq_ignore_ascii_case(&m.replid)
        || (replid.eq_ignore_ascii_case(&m.replid2) && offset <= m.second_offset);
    if !ok_id {
        repl.sync_partial_err.fetch_add(1, Relaxed);
        return None;
    }
    let data = match m.backlog.copy_from(offset as u64) {
        Some(d) => d,
        None => {
            repl.sync_partial_err.fetch_add(1, Relaxed);
            return None;
        }
    };
    let mut out = if psync2 { format!("+CONTINUE {}\r\n", m.replid).into_bytes() } else { b"+CONTINUE\r\n".to_vec() };
    out.extend_from_slice(&data);
    conn.state.store(STATE_ONLINE, Relaxed);
    conn.ack_ms.store(now_ms(), Relaxed);
    m.replicas.push(conn.clone());
    repl.sync_partial_ok.fetch_add(1, Relaxed);
    Some(out)
}

// ------------------------------------------------------------------ operations
// The commands (crates/commands/src/replication.rs) parse their arguments, call these and
// render what they return.

/// REPLICAOF NO ONE: a replica becomes a primary (a primary stays one).
pub fn replicaof_no_one(srv: &Arc<Node>) {
    if srv.repl.is_replica.load(Relaxed) {
        become_master(srv);
        log('*', "MASTER MODE enabled (user request from client)");
    }
}

/// What REPLICAOF host port did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaofOutcome {
    /// The link to the new primary starts.
    Started,
    /// Already a replica of that primary: nothing done.
    AlreadyConnected,
}

/// REPLICAOF host port.
pub fn replicaof(srv: &Arc<Node>, host: String, port: u16) -> ReplicaofOutcome {
    {
        let r = srv.repl.replica.lock();
        if srv.repl.is_replica.load(Relaxed)
            && r.master.as_ref().is_some_and(|(h, p)| h.eq_ignore_ascii_case(&host) && *p == port)
        {
            drop(r);
            log('*', "REPLICAOF would result into synchronization with the master we are already connected with. No operation performed.");
            return ReplicaofOutcome::AlreadyConnected;
        }
    }
    become_replica(srv, host.clone(), port);
    // Clients blocked on keys here would wait for writes a replica never takes (callers of
    // become_replica do this with no shard lock held: serving a waiter locks shards under it).
    srv.blocking.disconnect_all(srv);
    log('*', &format!("REPLICAOF {}:{} enabled (user request from client)", host, port));
    ReplicaofOutcome::Started
}

/// replicationSetMaster.
pub fn become_replica(srv: &Arc<Node>, host: String, port: u16) {
    let repl = &srv.repl;
    let was_master = !repl.is_replica.swap(true, Relaxed);
    crate::persistence::LOG_ROLE.store(b'S', Relaxed);
    {
        let mut m = repl.primary.lock();
        m.proxy = true;
        if was_master {
            // Our own history can be continued by the new primary if it was our replica.
            m.last_db = -1;
        }
    }
    // Sub-replicas must resync with the new history.
    repl.disconnect_replicas(srv);
    let epoch = {
        let mut r = repl.replica.lock();
        r.master = Some((host, port));
        r.state = LinkState::Connect;
        r.epoch += 1;
        r.down_since_ms = 0;
        let id = std::mem::take(&mut r.master_client);
        if id != 0 {
            kill_client(srv, id);
        }
        r.epoch
    };
    repl.link_up.store(false, Relaxed);
    // The link task runs on the node's runtime (absent only in unit tests that build a node
    // without one: no link is started then).
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(link::link_loop(srv.clone(), epoch));
    }
}

/// replicationUnsetMaster: REPLICAOF NO ONE.
pub fn become_master(srv: &Arc<Node>) {
    let repl = &srv.repl;
    repl.is_replica.store(false, Relaxed);
    crate::persistence::LOG_ROLE.store(b'M', Relaxed);
    {
        let mut r = repl.replica.lock();
        r.master = None;
        r.state = LinkState::None;
        r.epoch += 1;
        let id = std::mem::take(&mut r.master_client);
        if id != 0 {
            kill_client(srv, id);
        }
    }
    repl.link_up.store(false, Relaxed);
    let mut m = repl.primary.lock();
    m.proxy = false;
    m.shift_replid();
    m.last_db = -1;
    drop(m);
    // Sub-replicas continue with the new id (PSYNC2): disconnect them so they re-PSYNC.
    repl.disconnect_replicas(srv);
}

fn kill_client(srv: &Node, id: u64) {
    srv.clients.kill(id);
}

fn log(level: char, msg: &str) {
    crate::persistence::log_line(level, msg);
}

/// ROLE's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// A primary: its stream offset and its online replicas (ip, port, acknowledged offset).
    Master { offset: u64, replicas: Vec<(String, u16, u64)> },
    /// A replica: its primary, the link's state name and the offset applied (-1 before the
    /// first sync).
    Replica { host: String, port: u16, state: &'static str, offset: i64 },
}

pub fn role(srv: &Node) -> Role {
    let repl = &srv.repl;
    if repl.is_replica.load(Relaxed) {
        let r = repl.replica.lock();
        let (host, port) = r.master.clone().unwrap_or_default();
        let offset = if r.master_client != 0 || r.state == LinkState::Connected { r.reploff } else { -1 };
        return Role::Replica { host, port, state: r.state.role_name(), offset };
    }
    let m = repl.primary.lock();
    let replicas = m
        .replicas
        .iter()
        .filter(|r| r.state.load(Relaxed) == STATE_ONLINE)
        .map(|r| (r.ip.clone(), r.port, r.ack_off.load(Relaxed)))
        .collect();
    Role::Master { offset: m.backlog.offset, replicas }
}

/// Why PSYNC / SYNC from this client cannot start now (None: it can).
pub fn psync_refusal(srv: &Node, client: &crate::client::Client) -> Option<&'static str> {
    if client.repl.is_master {
        return Some("ERR Replica can't interact with the keyspace");
    }
    if srv.repl.failing_over() {
        return Some("NOMASTERLINK Can't SYNC while failing over");
    }
    if srv.repl.is_replica.load(Relaxed) && !srv.repl.link_up.load(Relaxed) {
        return Some("NOMASTERLINK Can't SYNC while not connected with my master");
    }
    None
}

/// PSYNC <replid> <offset> FAILOVER: our primary hands over to us (syncCommand): we become a
/// primary when `replid` is our primary's.
pub fn accept_failover_psync(
    srv: &Arc<Node>,
    replid: &[u8],
    client: &crate::client::Client,
) -> Result<(), CommandError> {
    log('#', &format!("Failover request received for replid {}.", String::from_utf8_lossy(replid)));
    if !srv.repl.is_replica.load(Relaxed) {
        return Err("ERR PSYNC FAILOVER can't be sent to a master.".into());
    }
    let mine = srv.repl.primary.lock().replid.clone();
    if !replid.eq_ignore_ascii_case(mine.as_bytes()) {
        return Err("ERR PSYNC FAILOVER replid must match my replid.".into());
    }
    become_master(srv);
    log(
        '*',
        &format!(
            "MASTER MODE enabled (failover request from 'id={} addr={} laddr={}')",
            client.id, client.shared.addr, client.shared.laddr
        ),
    );
    Ok(())
}

// ------------------------------------------------------------------ min-replicas

/// refreshGoodSlavesCount: online replicas whose last ACK is at most min-replicas-max-lag
/// seconds old (None when min-replicas-to-write or min-replicas-max-lag is 0).
fn good_replicas(srv: &Node, m: &MasterSide, now: u64) -> Option<usize> {
    let min = srv.config.hot.min_replicas_to_write.load(Relaxed);
    let maxlag = srv.config.hot.min_replicas_max_lag.load(Relaxed);
    if min <= 0 || maxlag <= 0 {
        return None;
    }
    let secs = now / 1000;
    Some(
        m.replicas
            .iter()
            .filter(|r| {
                r.state.load(Relaxed) == STATE_ONLINE
                    && secs.saturating_sub(r.ack_ms.load(Relaxed) / 1000) <= maxlag as u64
            })
            .count(),
    )
}

/// checkGoodReplicasStatus: a replica, or no limit configured, or enough good replicas.
pub fn good_replicas_ok(srv: &Node) -> bool {
    if srv.repl.is_replica.load(Relaxed) {
        return true;
    }
    let min = srv.config.hot.min_replicas_to_write.load(Relaxed);
    let m = srv.repl.primary.lock();
    good_replicas(srv, &m, now_ms()).is_none_or(|g| g as i64 >= min)
}

// ------------------------------------------------------------------ FAILOVER

pub fn failover_state_name(st: u8) -> &'static str {
    match st {
        FAILOVER_NONE => "no-failover",
        FAILOVER_IN_PROGRESS => "failover-in-progress",
        FAILOVER_WAIT_SYNC => "waiting-for-sync",
        _ => "unknown",
    }
}

/// clearFailoverState: forget the target and unpause writes.
pub fn clear_failover(srv: &Node) {
    *srv.repl.failover.lock() = Failover::default();
    srv.repl.failover_state.store(FAILOVER_NONE, Relaxed);
    srv.pause.notify.notify_waiters();
}

/// abortFailover: back to a primary if we already switched, then unpause.
pub fn abort_failover(srv: &Arc<Node>, err: &str) {
    let st = srv.repl.failover_state.load(Relaxed);
    if st == FAILOVER_NONE {
        return;
    }
    {
        let f = srv.repl.failover.lock();
        match &f.host {
            Some(h) => log('*', &format!("FAILOVER to {}:{} aborted: {}", h, f.port, err)),
            None => log('*', &format!("FAILOVER to any replica aborted: {}", err)),
        }
    }
    if st == FAILOVER_IN_PROGRESS {
        become_master(srv);
    }
    clear_failover(srv);
}

/// FAILOVER ABORT.
pub fn failover_abort(srv: &Arc<Node>) -> Result<(), CommandError> {
    if !srv.repl.failing_over() {
        return Err("ERR No failover in progress.".into());
    }
    abort_failover(srv, "Failover manually aborted");
    Ok(())
}

/// FAILOVER [TO host port [FORCE]] [TIMEOUT ms], parsed: start handing over to a replica.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FailoverRequest {
    pub to: Option<(String, i64)>,
    pub force: bool,
    /// ms; 0: none.
    pub timeout: i64,
}

pub fn failover_start(srv: &Node, req: FailoverRequest) -> Result<(), CommandError> {
    if srv.repl.failing_over() {
        return Err("ERR FAILOVER already in progress.".into());
    }
    if srv.repl.is_replica.load(Relaxed) {
        return Err("ERR FAILOVER is not valid when server is a replica.".into());
    }
    let FailoverRequest { to, force, timeout } = req;
    {
        let m = srv.repl.primary.lock();
        if m.replicas.is_empty() {
            return Err("ERR FAILOVER requires connected replicas.".into());
        }
        if force && (timeout == 0 || to.is_none()) {
            return Err("ERR FAILOVER with force option requires both a timeout and target HOST and IP.".into());
        }
        if let Some((h, port)) = &to {
            let Some(r) = m.replicas.iter().find(|r| r.ip.eq_ignore_ascii_case(h) && r.port as i64 == *port) else {
                return Err("ERR FAILOVER target HOST and PORT is not a replica.".into());
            };
            if r.state.load(Relaxed) != STATE_ONLINE {
                return Err("ERR FAILOVER target replica is not online.".into());
            }
            log('*', &format!("FAILOVER requested to {}:{}.", h, port));
        } else {
            log('*', "FAILOVER requested to any replica.");
        }
    }
    let (host, port) = match to {
        Some((h, p)) => (Some(h), p),
        None => (None, 0),
    };
    *srv.repl.failover.lock() =
        Failover { host, port, end_ms: if timeout > 0 { now_ms() + timeout as u64 } else { 0 }, force };
    srv.repl.failover_state.store(FAILOVER_WAIT_SYNC, Relaxed);
    Ok(())
}

/// updateFailoverStatus: time out (abort, or switch anyway with FORCE), or switch once the
/// target acknowledged our whole stream. The switch happens with every shard held, so no
/// write is between "the target has everything" and "we are a replica".
pub fn update_failover(srv: &Arc<Node>) {
    let repl = &srv.repl;
    if repl.failover_state.load(Relaxed) != FAILOVER_WAIT_SYNC {
        return;
    }
    let now = now_ms();
    let (end, force, host, port) = {
        let f = repl.failover.lock();
        (f.end_ms, f.force, f.host.clone(), f.port)
    };
    if end != 0 && end <= now {
        if force {
            let h = host.unwrap_or_default();
            log('*', &format!("FAILOVER to {}:{} time out exceeded, failing over.", h, port));
            repl.failover_state.store(FAILOVER_IN_PROGRESS, Relaxed);
            become_replica(srv, h, port as u16);
            srv.blocking.disconnect_all(srv);
        } else {
            abort_failover(srv, "Replica never caught up before timeout");
        }
        return;
    }
    let find = || {
        let m = repl.primary.lock();
        let off = m.backlog.offset;
        let found = match &host {
            Some(h) => m.replicas.iter().find(|r| r.ip.eq_ignore_ascii_case(h) && r.port as i64 == port),
            None => m.replicas.iter().find(|r| r.state.load(Relaxed) == STATE_ONLINE && r.ack_off.load(Relaxed) == off),
        };
        found
            .filter(|r| r.state.load(Relaxed) == STATE_ONLINE && r.ack_off.load(Relaxed) == off)
            .map(|r| (r.ip.clone(), r.port))
    };
    if find().is_none() {
        return;
    }
    // Confirm with every shard held (no write can be running), and switch under them.
    let guards = srv.ks.lock_all();
    if let Some((h, p)) = find() {
        {
            let mut f = repl.failover.lock();
            f.host = Some(h.clone());
            f.port = p as i64;
        }
        repl.failover_state.store(FAILOVER_IN_PROGRESS, Relaxed);
        log('*', &format!("Failover target {}:{} is synced, failing over.", h, p));
        become_replica(srv, h, p);
        drop(guards);
        srv.blocking.disconnect_all(srv);
    }
}

// ------------------------------------------------------------------ INFO

/// The "# Replication" INFO section body (without the header).
pub fn info_replication(srv: &Node) -> String {
    use std::fmt::Write;
    let repl = &srv.repl;
    let mut o = String::new();
    let is_replica = repl.is_replica.load(Relaxed);
    let _ = write!(o, "role:{}\r\n", if is_replica { "slave" } else { "master" });
    let now = now_ms();
    if is_replica {
        let r = repl.replica.lock();
        let (host, port) = r.master.clone().unwrap_or_default();
        let up = r.state == LinkState::Connected;
        let _ = write!(
            o,
            "master_host:{}\r\nmaster_port:{}\r\nmaster_link_status:{}\r\nmaster_last_io_seconds_ago:{}\r\nmaster_sync_in_progress:{}\r\nslave_read_repl_offset:{}\r\nslave_repl_offset:{}\r\n",
            host,
            port,
            if up { "up" } else { "down" },
            if r.master_client != 0 { (now.saturating_sub(r.last_io_ms) / 1000) as i64 } else { -1 },
            (r.state == LinkState::Transfer) as u8,
            r.read_reploff,
            r.reploff,
        );
        if r.state == LinkState::Transfer {
            let perc = if r.transfer_size > 0 { r.transfer_read as f64 / r.transfer_size as f64 * 100.0 } else { 0.0 };
            let _ = write!(
                o,
                "master_sync_total_bytes:{}\r\nmaster_sync_read_bytes:{}\r\nmaster_sync_left_bytes:{}\r\nmaster_sync_perc:{:.2}\r\nmaster_sync_last_io_seconds_ago:{}\r\n",
                r.transfer_size,
                r.transfer_read,
                r.transfer_size - r.transfer_read,
                perc,
                now.saturating_sub(r.last_io_ms) / 1000
            );
        }
        if !up {
            let since = if r.down_since_ms != 0 { (now.saturating_sub(r.down_since_ms) / 1000) as i64 } else { -1 };
            let _ = write!(o, "master_link_down_since_seconds:{}\r\n", since);
        }
        let _ = write!(
            o,
            "slave_priority:{}\r\nslave_read_only:{}\r\nreplica_announced:1\r\n",
            srv.config.get_i64("replica-priority"),
            srv.config.get_bool("replica-read-only") as u8
        );
    }
    let m = repl.primary.lock();
    let _ = write!(o, "connected_slaves:{}\r\n", m.replicas.len());
    if let Some(good) = good_replicas(srv, &m, now) {
        let _ = write!(o, "min_slaves_good_slaves:{}\r\n", good);
    }
    for (i, r) in m.replicas.iter().enumerate() {
        let st = r.state.load(Relaxed);
        let state = state_name(st);
        let lag = if st == STATE_ONLINE { (now / 1000).saturating_sub(r.ack_ms.load(Relaxed) / 1000) } else { 0 };
        let _ = write!(
            o,
            "slave{}:ip={},port={},state={},offset={},lag={}\r\n",
            i,
            r.ip,
            r.port,
            state,
            r.ack_off.load(Relaxed),
            lag
        );
    }
    let _ = write!(
        o,
        "master_failover_state:{}\r\nmaster_replid:{}\r\nmaster_replid2:{}\r\nmaster_repl_offset:{}\r\nsecond_repl_offset:{}\r\nrepl_backlog_active:{}\r\nrepl_backlog_size:{}\r\nrepl_backlog_first_byte_offset:{}\r\nrepl_backlog_histlen:{}\r\n",
        failover_state_name(repl.failover_state.load(Relaxed)),
        m.replid,
        m.replid2,
        m.backlog.offset,
        m.second_offset,
        m.backlog.active as u8,
        backlog_size(srv),
        m.backlog.first_byte_offset(),
        m.backlog.histlen,
    );
    o
}

/// replicationCron's master part: PING replicas every repl-ping-replica-period seconds, free
/// the backlog after repl-backlog-ttl without replicas, follow repl-backlog-size changes.
pub fn cron(srv: &Arc<Node>) {
    update_failover(srv);
    let repl = &srv.repl;
    let now = now_ms();
    let period = srv.config.get_i64("repl-ping-replica-period").max(1) as u64 * 1000;
    // Redis pings on a schedule counted from its start (replication_cron_loops % period), not
    // as soon as a replica attaches: a replica stream attached after CONFIG SET
    // repl-ping-replica-period 3600 sees no PING for an hour.
    if repl.last_ping_ms.load(Relaxed) == 0 {
        repl.last_ping_ms.store(now as i64, Relaxed);
    }
    let mut m = repl.primary.lock();
    let size = backlog_size(srv);
    m.backlog.resize(size);
    m.obuf_limit = replica_obuf_limit(srv);
    if !m.proxy && !m.replicas.is_empty() && !repl.failing_over() {
        let last = repl.last_ping_ms.load(Relaxed) as u64;
        if now.saturating_sub(last) >= period {
            repl.last_ping_ms.store(now as i64, Relaxed);
            let db = m.last_db;
            m.feed_command(db, &[b"PING"]);
            repl.offset.store(m.backlog.offset, Relaxed);
        }
    }
    let ttl = srv.config.get_i64("repl-backlog-ttl") as u64;
    if !repl.is_replica.load(Relaxed)
        && m.replicas.is_empty()
        && m.backlog.active
        && ttl > 0
        && now.saturating_sub(m.no_replicas_since_ms) / 1000 >= ttl
    {
        // Redis changes the replid too: nobody can continue the freed history.
        m.shift_replid();
        m.replid2 = NO_REPLID.into();
        m.second_offset = -1;
        m.backlog.active = false;
        m.backlog.buf = Vec::new();
        m.backlog.histlen = 0;
    }
}
