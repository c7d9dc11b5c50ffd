//! Per-connection state. `Client` is owned by the connection task; `ClientShared` is the part
//! other connections read (CLIENT LIST, KILL, tracking redirects).

use crate::table::Command;
use bytes::Bytes;
use ferrocache_engine::SmallBytes;
use ferrocache_protocol::resp::OwnedArgs;
use parking_lot::Mutex;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

/// Messages delivered to a connection from elsewhere in the node.
#[derive(Debug)]
pub enum ClientMsg {
    Message {
        kind: &'static str,
        pattern: Option<Bytes>,
        channel: Bytes,
        payload: Bytes,
    },
    /// Client-side caching invalidation (None: flush everything). `via_channel`: RESP2
    /// redirect, delivered as a `__redis__:invalidate` pub/sub message.
    Invalidate {
        keys: Option<Vec<Vec<u8>>>,
        via_channel: bool,
    },
    TrackingRedirBroken(u64),
    Monitor(String),
    /// The shard channel's slot moved away: the client is unsubscribed (`sunsubscribe`).
    ShardUnsubscribed(Bytes),
    Kill,
}

impl ClientMsg {
    /// Bytes counted in the receiver's output buffer while the message waits in its channel
    /// (pub/sub messages: what can pile up behind a client that does not read).
    pub fn obuf_size(&self) -> u64 {
        match self {
            ClientMsg::Message { kind, pattern, channel, payload } => {
                (kind.len() + pattern.as_ref().map_or(0, |p| p.len() + 16) + channel.len() + payload.len() + 48) as u64
            }
            _ => 0,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct TrackingInfo {
    pub redirect: u64,
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
    pub prefixes: Vec<Vec<u8>>,
}

/// Fields other connections need to read.
pub struct ClientShared {
    pub id: u64,
    pub addr: String,
    pub laddr: String,
    pub fd: i64,
    pub created_ms: u64,
    pub last_ms: AtomicU64,
    pub db: AtomicUsize,
    pub name: Mutex<Option<Vec<u8>>>,
    /// The last command run (a pointer into the static command table; null before the first).
    pub last_cmd: AtomicPtr<Command>,
    pub resp3: AtomicBool,
    pub sub: AtomicUsize,
    pub psub: AtomicUsize,
    pub ssub: AtomicUsize,
    pub multi: AtomicU64,
    pub flags: Mutex<String>,
    pub tracking: Mutex<Option<TrackingInfo>>,
    pub kill: AtomicBool,
    pub no_evict: AtomicBool,
    pub qbuf: AtomicUsize,
    /// The query buffer's capacity (CLIENT LIST qbuf-free is what is left of it).
    pub qbuf_cap: AtomicUsize,
    pub user: Mutex<String>,
    pub lib_name: Mutex<Option<String>>,
    pub lib_ver: Mutex<Option<String>>,
    /// Output buffer, part 1: bytes queued for the connection task and not encoded yet
    /// (pub/sub messages; a replica's stream).
    pub obuf_queued: AtomicU64,
    /// Output buffer, part 2: reply bytes produced and not written to the socket yet.
    pub obuf_pending: AtomicU64,
    /// When the output buffer first reached the soft limit (ms; 0 = below it).
    pub obuf_soft_since: AtomicU64,
    /// Wakes the connection task (also while it waits on a socket write) when the client is
    /// closed from elsewhere (output buffer limits).
    pub wake: tokio::sync::Notify,
}

impl ClientShared {
    /// CLIENT LIST's `cmd=` field.
    pub fn last_cmd_name(&self) -> &'static str {
        let p = self.last_cmd.load(Relaxed);
        if p.is_null() {
            return "NULL";
        }
        // SAFETY: only pointers to `'static` command table entries are ever stored.
        unsafe { (*p).name }
    }

    pub fn new(id: u64, addr: String, laddr: String, now_ms: u64) -> Arc<ClientShared> {
        Arc::new(ClientShared {
            id,
            addr,
            laddr,
            fd: 8 + id as i64,
            created_ms: now_ms,
            last_ms: AtomicU64::new(now_ms),
            db: AtomicUsize::new(0),
            name: Mutex::new(None),
            last_cmd: AtomicPtr::new(std::ptr::null_mut()),
            resp3: AtomicBool::new(false),
            sub: AtomicUsize::new(0),
            psub: AtomicUsize::new(0),
            ssub: AtomicUsize::new(0),
            multi: AtomicU64::new(u64::MAX),
            flags: Mutex::new("N".into()),
            tracking: Mutex::new(None),
            kill: AtomicBool::new(false),
            no_evict: AtomicBool::new(false),
            qbuf: AtomicUsize::new(0),
            qbuf_cap: AtomicUsize::new(0),
            user: Mutex::new("default".into()),
            lib_name: Mutex::new(None),
            lib_ver: Mutex::new(None),
            obuf_queued: AtomicU64::new(0),
            obuf_pending: AtomicU64::new(0),
            obuf_soft_since: AtomicU64::new(0),
            wake: tokio::sync::Notify::new(),
        })
    }

    /// CLIENT LIST's `omem`: replies and messages not written to the socket yet.
    pub fn omem(&self) -> u64 {
        self.obuf_queued.load(Relaxed) + self.obuf_pending.load(Relaxed)
    }

    /// The client-output-buffer-limit class (getClientType; a master link counts as normal,
    /// replicas are checked by the replication feeder).
    pub fn obuf_class(&self) -> usize {
        if self.sub.load(Relaxed) + self.psub.load(Relaxed) + self.ssub.load(Relaxed) > 0 {
            crate::config::OBUF_PUBSUB
        } else {
            crate::config::OBUF_NORMAL
        }
    }

    /// Whether the class has a limit at all (the check is skipped otherwise).
    pub fn obuf_limited(&self, hot: &crate::config::Hot) -> bool {
        let l = &hot.obuf[self.obuf_class()];
        l[0].load(Relaxed) > 0 || l[1].load(Relaxed) > 0
    }

    /// checkClientOutputBufferLimits: `used` bytes reach the hard limit, or have been at or
    /// over the soft limit for more than its seconds.
    pub fn obuf_over_limit(&self, hot: &crate::config::Hot, used: u64) -> bool {
        let l = &hot.obuf[self.obuf_class()];
        let (hard, soft, secs) = (l[0].load(Relaxed), l[1].load(Relaxed), l[2].load(Relaxed));
        if hard > 0 && used >= hard {
            return true;
        }
        if soft > 0 && used >= soft {
            let now = crate::node::now_ms();
            let since = self.obuf_soft_since.load(Relaxed);
            if since == 0 {
                self.obuf_soft_since.store(now, Relaxed);
                return false;
            }
            return now.saturating_sub(since) / 1000 > secs;
        }
        if self.obuf_soft_since.load(Relaxed) != 0 {
            self.obuf_soft_since.store(0, Relaxed);
        }
        false
    }

    /// Close the client for its output buffer (Redis's freeClientAsync and its log line):
    /// nothing more is queued or written to it; its connection task ends.
    pub fn close_for_obuf(&self) {
        if !self.kill.swap(true, Relaxed) {
            crate::persistence::log_line(
                '#',
                &format!(
                    "Client {} scheduled to be closed ASAP for overcoming of output buffer limits.",
                    self.info_line(crate::node::now_ms())
                ),
            );
        }
        self.wake.notify_one();
    }

    /// CLIENT LIST's `tot-mem` (and what INFO's mem_clients_* sum): a fixed estimate of the
    /// connection's own structures and buffers, the query buffer and the output buffer.
    pub fn mem(&self) -> u64 {
        2048 + self.qbuf.load(Relaxed) as u64 + self.omem()
    }

    /// One CLIENT LIST / CLIENT INFO line (Redis 7.0 field order).
    pub fn info_line(&self, now_ms: u64) -> String {
        let name = self.name.lock().clone().map(|n| String::from_utf8_lossy(&n).into_owned()).unwrap_or_default();
        let tr = self.tracking.lock().clone();
        let multi = self.multi.load(Relaxed);
        let mut flags = self.flags.lock().clone();
        if tr.is_some() {
            flags = flags.replace('N', "");
            flags.push('t');
        }
        if self.no_evict.load(Relaxed) {
            flags = flags.replace('N', "");
            flags.push('e');
        }
        if flags.is_empty() {
            flags.push('N');
        }
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} qbuf={} qbuf-free={} argv-mem={} multi-mem=0 rbs=1024 rbp=0 obl=0 oll=0 omem={} tot-mem={} events={} cmd={} user={} redir={} resp={}",
            self.id,
            self.addr,
            self.laddr,
            self.fd,
            name,
            now_ms.saturating_sub(self.created_ms) / 1000,
            now_ms.saturating_sub(self.last_ms.load(Relaxed)) / 1000,
            flags,
            self.db.load(Relaxed),
            self.sub.load(Relaxed),
            self.psub.load(Relaxed),
            self.ssub.load(Relaxed),
            if multi == u64::MAX { -1 } else { multi as i64 },
            self.qbuf.load(Relaxed),
            self.qbuf_cap.load(Relaxed).saturating_sub(self.qbuf.load(Relaxed)),
            0,
            self.omem(),
            self.mem(),
            if self.omem() > 0 { "rw" } else { "r" },
            self.last_cmd_name(),
            self.user.lock(),
            tr.map(|t| t.redirect as i64).unwrap_or(-1),
            if self.resp3.load(Relaxed) { 3 } else { 2 },
        )
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ReplyMode {
    On,
    Off,
    /// Skip the next reply only.
    Skip,
    SkipThis,
}

/// A request to block the connection (blocking list/zset/stream commands).
#[derive(Debug, Clone)]
pub struct BlockRequest {
    pub keys: Vec<Vec<u8>>,
    pub db: usize,
    /// Absolute deadline in unix ms, 0 = forever.
    pub deadline_ms: u64,
    /// The reply sent on timeout: true for a null array (*-1), false for a null bulk.
    pub null_array_on_timeout: bool,
}

/// What a command asks of its connection once its reply is written: a handler sets
/// `ctx.then`, the executor returns it, the connection task acts on it.
#[derive(Debug)]
pub enum Then {
    /// Wait for the keys (blocking list/zset/stream commands that found nothing).
    Block(BlockRequest),
    /// PSYNC/SYNC accepted: (replid, offset, is_old_sync); the connection becomes the feed of
    /// a replica.
    Handover(String, i64, bool),
    /// WAIT: answer once `replicas` replicas acknowledged `offset`, or at `deadline` (ms, 0 =
    /// never).
    ReplWait { offset: u64, replicas: usize, deadline: u64 },
    /// SHUTDOWN waits for lagging replicas: the process exits, or the shutdown is cancelled
    /// (shutdown_ctl.cancels moves past this value) and the error is answered.
    ShutdownWait(u64),
    /// Close the connection after the reply (QUIT, CLIENT KILL of itself, its own ACL user
    /// deleted, SHUTDOWN's exit).
    Close,
}

/// A blocked stream read: (arguments, deadline ms or 0, resolved IDs as (ms, seq)).
pub type StreamBlock = (Vec<Vec<u8>>, u64, Vec<(u64, u64)>);

pub struct Client {
    pub id: u64,
    pub db: usize,
    pub resp3: bool,
    pub authenticated: bool,
    pub shared: Arc<ClientShared>,
    pub tx: crate::client_registry::Tx,
    pub multi: Option<Vec<OwnedArgs>>,
    pub multi_error: bool,
    pub watched: Vec<(usize, SmallBytes)>,
    /// Watched keys that existed when watched, with their expiry (to detect expiry breaking WATCH).
    pub watched_expiry: Vec<u64>,
    pub watch_dirty: Arc<AtomicBool>,
    pub subs: HashSet<Bytes>,
    pub psubs: HashSet<Bytes>,
    pub ssubs: HashSet<Bytes>,
    pub tracking: Option<TrackingInfo>,
    /// CLIENT CACHING yes/no for the next command.
    pub caching_flag: Option<bool>,
    pub reply_mode: ReplyMode,
    pub monitor: bool,
    pub in_exec: bool,
    /// The script this client just ran called a read-only command (client-side caching then
    /// tracks the script's declared keys, as Redis's call() does for the script caller).
    pub script_read: bool,
    /// The client a script's redis.call runs on (Redis's CLIENT_SCRIPT).
    pub in_script: bool,
    /// A blocked XREAD/XREADGROUP: its arguments, deadline (0 = forever) and the IDs it
    /// resolved when it first blocked (`$`), so the retry after a wakeup reuses them.
    pub stream_block: Option<StreamBlock>,
    /// Replication: REPLCONF options, pending PSYNC/WAIT, master-link flag.
    pub repl: crate::replication::ClientRepl,
    /// While a blocked list/zset command is retried for one ready key: that key (the retry
    /// pops from it only, as Redis serves a waiter from the key that became ready).
    pub serving_key: Option<Vec<u8>>,
    /// The ACL user when it is not the default user (None: default).
    pub user: Option<crate::acl::UserRef>,
    /// Cluster mode: ASKING was the previous command (cleared after the next one), and
    /// READONLY (reads served by a replica of the slot's master).
    pub asking: bool,
    pub readonly: bool,
}

impl Client {
    pub fn new(shared: Arc<ClientShared>, tx: crate::client_registry::Tx) -> Client {
        Client {
            id: shared.id,
            db: 0,
            resp3: false,
            authenticated: false,
            shared,
            tx,
            multi: None,
            multi_error: false,
            watched: Vec::new(),
            watched_expiry: Vec::new(),
            watch_dirty: Arc::new(AtomicBool::new(false)),
            subs: HashSet::new(),
            psubs: HashSet::new(),
            ssubs: HashSet::new(),
            tracking: None,
            caching_flag: None,
            reply_mode: ReplyMode::On,
            monitor: false,
            in_exec: false,
            script_read: false,
            in_script: false,
            stream_block: None,
            repl: Default::default(),
            serving_key: None,
            user: None,
            asking: false,
            readonly: false,
        }
    }
    pub fn sub_count(&self) -> usize {
        self.subs.len() + self.psubs.len() + self.ssubs.len()
    }
    pub fn in_pubsub_context(&self) -> bool {
        !self.resp3 && self.sub_count() > 0
    }
    pub fn update_sub_counts(&self) {
        self.shared.sub.store(self.subs.len(), Relaxed);
        self.shared.psub.store(self.psubs.len(), Relaxed);
        self.shared.ssub.store(self.ssubs.len(), Relaxed);
    }
    pub fn set_flags(&self) {
        let mut f = String::new();
        if self.repl.is_master {
            f.push('M');
        }
        if self.multi.is_some() {
            f.push('x');
        }
        if self.watch_dirty.load(Relaxed) && !self.watched.is_empty() {
            f.push('d');
        }
        if self.sub_count() > 0 {
            f.push('P');
        }
        if self.monitor {
            f.push('O');
        }
        if f.is_empty() {
            f.push('N');
        }
        *self.shared.flags.lock() = f;
    }
}

/// islocalClient: a peer address ("ip:port", "[ip6]:port", or a unix socket path) that is
/// 127.0.0.1 or ::1 — exactly those, as Redis (127.0.0.2 is not local to it).
pub fn is_local_addr(addr: &str) -> bool {
    addr.starts_with('/') || addr.starts_with("127.0.0.1:") || addr.starts_with("[::1]:")
}
