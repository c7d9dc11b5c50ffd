//! Network side of a node: listeners, one task per connection, pipelining, pub/sub delivery,
//! blocking waits, and the periodic jobs (active expiry).
//!
//! Threading model: a tokio multi-threaded runtime with `threads` workers (default: number of
//! cores). Each connection is one task that reads a batch of bytes, parses and executes every
//! complete request in it against the sharded keyspace (no global lock: a command locks only
//! the shards of its keys, for the table operation only), appends replies to one buffer, and
//! writes that buffer once per batch. See docs/architecture.md for the measurements.

use bytes::{Buf, BytesMut};
use ferrocache_node::blocking::{WaitState, Waiter};
use ferrocache_node::client::{BlockRequest, Client, ClientMsg, ClientShared, Then};
use ferrocache_node::client_registry::ClientHandle;
use ferrocache_node::node::now_ms;
use ferrocache_node::table::table;
use ferrocache_node::{execute_at, Node};
use ferrocache_protocol::resp::{OwnedArgs, ParseLimits, Parsed, ReplyBuf, RespParser};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::UnboundedReceiver;

pub mod memcached;

pub use ferrocache_node::config::Config;

/// Per-thread spare connection buffers. A connection takes a read buffer when its socket is
/// readable and a reply buffer when it has something to run, and gives both back once they
/// are empty again (Redis 7.4's thread-shared query buffer, for both directions): idle
/// connections hold neither, so thousands of idle or short-lived connections do not each keep
/// (and fragment the allocator with) 32 KB of buffers.
mod bufs {
    use bytes::BytesMut;
    use std::cell::RefCell;

    const SIZE: usize = 16 * 1024;

    thread_local! {
        static READ: RefCell<Option<BytesMut>> = const { RefCell::new(None) };
        static WRITE: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
    }

    pub fn take_read() -> BytesMut {
        READ.with(|r| r.borrow_mut().take()).unwrap_or_else(|| BytesMut::with_capacity(SIZE))
    }

    /// An empty read buffer goes back to this thread's spare (big ones are freed). `read`: the
    /// bytes read into it since it was taken. Its allocation is at most `read` + capacity()
    /// (consumed bytes stay in front of a BytesMut until a reserve reclaims them), so a buffer
    /// that once held a 1 MB request is never kept as a spare behind a small capacity().
    pub fn give_read(mut b: BytesMut, read: usize) {
        if read + b.capacity() > 4 * SIZE {
            return;
        }
        b.clear();
        b.reserve(SIZE);
        if b.capacity() <= 4 * SIZE {
            READ.with(|r| *r.borrow_mut() = Some(b));
        }
    }

    pub fn take_write() -> Vec<u8> {
        WRITE.with(|w| w.borrow_mut().take()).unwrap_or_else(|| Vec::with_capacity(SIZE))
    }

    pub fn give_write(mut v: Vec<u8>) {
        v.clear();
        if (SIZE..=4 * SIZE).contains(&v.capacity()) {
            WRITE.with(|w| *w.borrow_mut() = Some(v));
        }
    }
}

static LOGFILE: std::sync::OnceLock<Option<parking_lot::Mutex<std::fs::File>>> = std::sync::OnceLock::new();

/// Send log lines to `logfile` (empty: standard error), as Redis does.
pub fn init_log(cfg: &Config) {
    let path = cfg.get("logfile").unwrap_or_default();
    let f = if path.is_empty() {
        None
    } else {
        std::fs::OpenOptions::new().create(true).append(true).open(&path).ok().map(parking_lot::Mutex::new)
    };
    let _ = LOGFILE.set(f);
    ferrocache_node::persistence::set_logger(log);
}

/// Log a line in Redis's format ("pid:M hh:mm:ss.mmm * message").
pub fn log(level: char, msg: &str) {
    use std::io::Write;
    let now = now_ms();
    let secs = now / 1000;
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    let role = ferrocache_node::persistence::log_role();
    let line =
        format!("{}:{} {:02}:{:02}:{:02}.{:03} {} {}\n", std::process::id(), role, h, m, s, now % 1000, level, msg);
    match LOGFILE.get() {
        Some(Some(f)) => {
            let _ = f.lock().write_all(line.as_bytes());
        }
        _ => eprint!("{}", line),
    }
}

/// Bind the listeners for `bind` addresses and `port`.
pub async fn bind_all(cfg: &Config) -> std::io::Result<Vec<TcpListener>> {
    let port = cfg.get_i64("port") as u16;
    let binds = cfg.get("bind").unwrap_or_else(|| "127.0.0.1".into());
    let std_listeners =
        ferrocache_node::listeners::bind_all("server", &binds, port, cfg.get_i64("tcp-backlog"), &mut |sa, e| {
            log('#', &format!("Could not bind optional address {}: {}", sa, e))
        })?;
    std_listeners.into_iter().map(TcpListener::from_std).collect()
}

/// Load the dataset (AOF when enabled, else RDB).
pub fn load_data(srv: &Arc<Node>) -> bool {
    ferrocache_node::aof::load_data_from_disk(srv).is_ok()
}

/// How startup loading ended.
pub enum Loaded {
    /// The dataset is in memory; these listeners are not accepting yet.
    Ready(Vec<TcpListener>),
    /// Loading failed (logged): exit 1.
    Failed,
    /// SHUTDOWN during loading.
    Shutdown,
}

/// Load the dataset on a blocking thread, as Redis's loadDataFromDisk does: the RESP listeners
/// start accepting at the loader's first progress point (every 2 MB of RDB, every 1024 AOF
/// commands), and until the dataset is in memory commands without the LOADING flag get
/// `-LOADING` (INFO shows the progress). A small RDB is loaded before any client is served.
pub async fn load_data_serving(srv: &Arc<Node>, listeners: Vec<TcpListener>) -> Loaded {
    let s = srv.clone();
    let mut load = tokio::task::spawn_blocking(move || load_data(&s));
    let mut pending = Some(listeners);
    loop {
        tokio::select! {
            r = &mut load => {
                return match r {
                    Ok(true) => Loaded::Ready(pending.unwrap_or_default()),
                    _ => Loaded::Failed,
                };
            }
            _ = srv.persist().serve_during_load.notified(), if pending.is_some() => {
                for l in pending.take().unwrap_or_default() {
                    let srv = srv.clone();
                    tokio::spawn(async move { accept_loop(srv, l).await });
                }
            }
            _ = srv.shutdown_notified() => {
                if srv.is_shutting_down() {
                    return Loaded::Shutdown;
                }
            }
        }
    }
}

/// Run a node until SHUTDOWN.
pub async fn run(srv: Arc<Node>, listeners: Vec<TcpListener>) {
    // `replicaof host port` in the configuration: connect once the local data is loaded (its
    // replication ID and offset allow a partial resync), as Redis does.
    if let Some((host, port)) = srv.config().get("replicaof").as_deref().and_then(|v| v.split_once(' ')) {
        if let Ok(port) = port.parse() {
            ferrocache_node::replication::become_replica(&srv, host.to_string(), port);
        }
    }
    let repl_cron = srv.clone();
    tokio::spawn(async move {
        // Periodic replication work (pings, timeouts, backlog), every 100 ms.
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            ferrocache_node::replication::cron(&repl_cron);
        }
    });
    // The accept loops of the current listeners; CONFIG SET port hands over a new set
    // (listeners.rs) and the old loops end, closing their sockets.
    let mut loops: Vec<tokio::task::JoinHandle<()>> =
        listeners.into_iter().map(|l| tokio::spawn(accept_loop(srv.clone(), l))).collect();
    let s1 = srv.clone();
    tokio::spawn(async move {
        loop {
            s1.rebound_listeners().notify.notified().await;
            let Some(set) = s1.rebound_listeners().take() else { continue };
            for h in loops.drain(..) {
                h.abort();
            }
            for l in set {
                match TcpListener::from_std(l) {
                    Ok(l) => loops.push(tokio::spawn(accept_loop(s1.clone(), l))),
                    Err(e) => log('#', &format!("Could not listen on the new port: {}", e)),
                }
            }
        }
    });
    let s2 = srv.clone();
    tokio::spawn(async move { cron(s2).await });
    loop {
        srv.shutdown_notified().await;
        if srv.is_shutting_down() {
            break;
        }
    }
    exit_now().await;
}

/// A client blocked in SHUTDOWN: returns once the shutdown is cancelled (the process exits
/// otherwise).
async fn shutdown_wait(srv: &Node, seen: u64) {
    let ctl = &srv.shutdown_control();
    loop {
        let n = ctl.cancelled.notified();
        tokio::pin!(n);
        n.as_mut().enable();
        if ctl.cancels.load(Relaxed) != seen {
            return;
        }
        n.await;
    }
}

/// SIGTERM / SIGINT and the shutdown cron (shutdown.rs): installed before the dataset loads, so
/// a signal during a long load stops the node too.
pub fn spawn_shutdown_tasks(srv: &Arc<Node>) {
    use ferrocache_node::shutdown::{self, Signal};
    use tokio::signal::unix::{signal, SignalKind};
    let s = srv.clone();
    tokio::spawn(async move {
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
            log('#', "Could not install the SIGTERM/SIGINT handlers");
            return;
        };
        loop {
            let sig = tokio::select! {
                _ = term.recv() => Signal::Term,
                _ = int.recv() => Signal::Int,
            };
            if shutdown::on_signal(&s, sig) {
                std::process::exit(1);
            }
        }
    });
    let s = srv.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = s.shutdown_control().kick.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
            let s2 = s.clone();
            if tokio::task::spawn_blocking(move || shutdown::cron(&s2)).await.unwrap_or(false) {
                exit_now().await;
            }
        }
    });
}

/// The last step of a shutdown: give connections (replicas first) a moment to flush what they
/// have, then exit(0) — without waiting for runtime workers, one of which may be running a
/// script that will never end.
pub async fn exit_now() -> ! {
    static EXITING: AtomicBool = AtomicBool::new(false);
    if EXITING.swap(true, Relaxed) {
        std::future::pending::<()>().await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    log('#', "Ferrocache is now ready to exit, bye bye...");
    std::process::exit(0)
}

async fn accept_loop(srv: Arc<Node>, l: TcpListener) {
    loop {
        match l.accept().await {
            Ok((sock, peer)) => {
                let srv = srv.clone();
                tokio::spawn(async move { connection(srv, sock, peer).await });
            }
            Err(e) => {
                log('#', &format!("Accepting client connection: {}", e));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Gives memory freed by closed connections back to the OS. glibc's malloc keeps freed memory
/// in its arenas (a heap only shrinks from its top), so after a burst of connections the RSS
/// would stay near the burst's peak for good (Redis's jemalloc returns it by itself). After
/// 1000 connections closed, at most once a second, when the RSS exceeds used_memory by 8 MB:
/// malloc_trim(0), on a blocking thread.
#[derive(Default)]
struct MemoryTrim {
    closed_at_last: u64,
    last_ms: u64,
}

impl MemoryTrim {
    fn tick(&mut self, srv: &Arc<Node>) {
        let received = srv.counters().total_connections_received.load(Relaxed);
        let closed = received.saturating_sub(srv.clients().admitted() as u64);
        let now = now_ms();
        if closed < self.closed_at_last + 1000 || now < self.last_ms + 1000 {
            return;
        }
        self.closed_at_last = closed;
        self.last_ms = now;
        let rss = std::fs::read_to_string("/proc/self/statm")
            .ok()
            .and_then(|s| s.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()))
            .map_or(0, |p| p * 4096);
        let used = ferrocache_engine::memory::used_memory() as u64;
        if rss > used + 8 * 1024 * 1024 {
            tokio::task::spawn_blocking(release_free_memory);
        }
    }
}

fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of the allocator's heaps to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Periodic work: active expiry (hz times per second).
async fn cron(srv: Arc<Node>) {
    let mut cursor = 0usize;
    let mut trim = MemoryTrim::default();
    loop {
        let hz = srv.config().get_i64("hz").clamp(1, 500) as u64;
        tokio::time::sleep(Duration::from_millis(1000 / hz)).await;
        trim.tick(&srv);
        // A running script holds every shard: skip the tick (Redis does no active expiry
        // during a script either), and never block a runtime worker on shard locks.
        if srv.scripting().is_running() {
            continue;
        }
        let n = srv.keyspace().num_shards();
        let per_tick = (n / hz as usize).max(1);
        let s = srv.clone();
        let step = tokio::task::spawn_blocking(move || {
            let mut fx = ferrocache_engine::Effects::default();
            let s2 = s.clone();
            // Replicas never expire keys themselves: the primary's DELs do.
            let c = if !s.expire_allowed() {
                cursor
            } else {
                s.keyspace()
                    .active_expire_step(cursor, per_tick, now_ms(), &mut fx, &mut |fx| s2.apply_effects(fx, 0, None))
            };
            ferrocache_node::aof::cron(&s);
            c
        });
        cursor = step.await.unwrap_or(cursor);
        // Keys expired by the step above reach BCAST tracking clients.
        srv.tracking_flush_bcast();
        if srv.tracking().enabled.load(Relaxed) > 0 {
            srv.tracking_limit();
        }
        ferrocache_node::persistence::cron(&srv);
    }
}

/// Encode a message from the client's channel into its reply buffer (its bytes move from the
/// queued part of the output buffer to the pending part).
fn encode_msg(out: &mut ReplyBuf, client: &mut Client, m: ClientMsg) -> bool {
    let sh = &client.shared;
    let size = m.obuf_size();
    if size > 0 {
        // Pending first: the bytes are never missing from both parts (a PUBLISH checking the
        // limit meanwhile must see them), at worst briefly in both.
        sh.obuf_pending.fetch_add(size, Relaxed);
        sh.obuf_queued.fetch_sub(size, Relaxed);
    }
    match m {
        ClientMsg::Message { kind, pattern, channel, payload } => {
            out.push(if pattern.is_some() { 4 } else { 3 });
            out.bulk(kind.as_bytes());
            if let Some(p) = pattern {
                out.bulk(&p);
            }
            out.bulk(&channel);
            out.bulk(&payload);
        }
        ClientMsg::Invalidate { keys, via_channel } => {
            if via_channel {
                out.array(3);
                out.bulk(b"message");
                out.bulk(b"__redis__:invalidate");
            } else {
                out.push(2);
                out.bulk(b"invalidate");
            }
            match keys {
                None => out.null_array(),
                Some(k) => {
                    out.array(k.len());
                    for x in k {
                        out.bulk(&x);
                    }
                }
            }
        }
        ClientMsg::TrackingRedirBroken(id) => {
            if out.resp3 {
                out.push(2);
                out.bulk(b"tracking-redir-broken");
                out.int(id as i64);
            }
        }
        ClientMsg::Monitor(line) => {
            out.simple(&line);
        }
        ClientMsg::ShardUnsubscribed(ch) => {
            // Only a subscription the client still holds (it may have left it meanwhile).
            if client.ssubs.remove(&ch) {
                client.update_sub_counts();
                client.set_flags();
                out.push(3);
                out.bulk(b"sunsubscribe");
                out.bulk(&ch);
                out.int(client.ssubs.len() as i64);
            }
        }
        ClientMsg::Kill => return false,
    }
    true
}

enum Step {
    /// All complete requests were executed.
    Done,
    /// Close the connection after flushing.
    Close,
    /// A command asked to block; its owned arguments are kept for the retry.
    Block(OwnedArgs, BlockRequest),
    /// A pause applies to the next request: wait until the deadline.
    Paused(u64),
    /// PSYNC/SYNC: the connection becomes a replica's (replid, offset, is_old_sync).
    Handover((String, i64, bool)),
    /// Over its client-output-buffer-limit: close now, discarding the output.
    Overflow,
    /// WAIT for replica acknowledgements: (offset, replicas, deadline ms or 0).
    ReplWait(u64, usize, u64),
    /// SHUTDOWN waits for replicas: the process exits, or the shutdown is cancelled (the
    /// cancel count it started from).
    ShutdownWait(u64),
}

/// Execute every complete request in `rbuf`, consuming them.
fn process(
    srv: &Arc<Node>,
    client: &mut Client,
    parser: &mut RespParser,
    rbuf: &mut BytesMut,
    out: &mut ReplyBuf,
) -> Step {
    let mut pos = 0;
    let now = now_ms();
    let limits = ParseLimits {
        proto_max_bulk_len: srv.config().hot.proto_max_bulk_len.load(Relaxed),
        auth_required: srv.config().hot.requirepass_set.load(Relaxed) && !client.authenticated,
    };
    // CLIENT LIST's qbuf while this batch runs: the whole buffer (Redis trims it afterwards).
    client.shared.qbuf.store(rbuf.len(), Relaxed);
    client.shared.qbuf_cap.store(rbuf.capacity(), Relaxed);
    let step = loop {
        match parser.parse(&rbuf[pos..], &limits) {
            Ok(Parsed::Request { consumed }) => {
                let args = parser.args(&rbuf[pos..]);
                if args.is_empty() {
                    pos += consumed;
                    continue;
                }
                if srv.writes_may_pause() {
                    let is_write = ferrocache_node::pausable_write(srv, client, args);
                    if let Some(until) = srv.paused_for(is_write) {
                        break Step::Paused(until);
                    }
                }
                let then = execute_at(srv, client, args, out, now);
                // checkClientOutputBufferLimits after each reply (a client that never reads
                // and pipelines big replies is closed at the limit, as Redis does).
                let pending = out.buf.len() as u64;
                let sh = &client.shared;
                sh.obuf_pending.store(pending, Relaxed);
                let hot = &srv.config().hot;
                if (pending > 1024 && hot.requirepass_set.load(Relaxed) && !client.authenticated)
                    || (sh.obuf_limited(hot) && sh.obuf_over_limit(hot, pending + sh.obuf_queued.load(Relaxed)))
                {
                    sh.close_for_obuf();
                    pos += consumed;
                    break Step::Overflow;
                }
                let owned = matches!(then.as_deref(), Some(Then::Block(_))).then(|| args.to_owned());
                pos += consumed;
                match then.map(|t| *t) {
                    None => {}
                    Some(Then::Block(req)) => break Step::Block(owned.expect("owned for a block"), req),
                    Some(Then::Handover(id, off, old)) => break Step::Handover((id, off, old)),
                    Some(Then::ReplWait { offset, replicas, deadline }) => {
                        break Step::ReplWait(offset, replicas, deadline)
                    }
                    Some(Then::ShutdownWait(seen)) => break Step::ShutdownWait(seen),
                    Some(Then::Close) => break Step::Close,
                }
            }
            Ok(Parsed::Incomplete { hint }) => {
                if hint > 0 {
                    rbuf.reserve(hint);
                }
                break Step::Done;
            }
            Err(e) => {
                out.error(&e.0);
                log(
                    '-',
                    &format!("Protocol error ({}) from client: id={} addr={}", e.0, client.id, client.shared.addr),
                );
                break Step::Close;
            }
        }
    };
    rbuf.advance(pos);
    client.shared.qbuf.store(rbuf.len(), Relaxed);
    client.shared.qbuf_cap.store(rbuf.capacity(), Relaxed);
    step
}

/// tcp-keepalive: SO_KEEPALIVE with the probe interval Redis uses (idle = interval = value).
pub fn set_keepalive(sock: &TcpStream, secs: i64) {
    if secs > 0 {
        let d = Duration::from_secs(secs as u64);
        let ka = socket2::TcpKeepalive::new().with_time(d).with_interval(Duration::from_secs((secs as u64 / 3).max(1)));
        let _ = socket2::SockRef::from(sock).set_tcp_keepalive(&ka);
    }
}

async fn connection(srv: Arc<Node>, sock: TcpStream, peer: SocketAddr) {
    let _ = sock.set_nodelay(true);
    set_keepalive(&sock, srv.config().get_i64("tcp-keepalive"));
    let laddr = sock.local_addr().map(|a| a.to_string()).unwrap_or_default();
    srv.counters().total_connections_received.fetch_add(1, Relaxed);
    let (mut rd, mut wr) = sock.into_split();
    let maxclients = srv.config().hot.maxclients.load(Relaxed);
    if !srv.clients().admit(maxclients) {
        srv.counters().rejected_connections.fetch_add(1, Relaxed);
        let _ = wr.write_all(b"-ERR max number of clients reached\r\n").await;
        return;
    }
    if protected_mode_denies(&srv, &peer) {
        srv.clients().leave();
        srv.counters().rejected_connections.fetch_add(1, Relaxed);
        let _ = wr.write_all(PROTECTED_MODE_DENIED.as_bytes()).await;
        return;
    }
    let id = srv.clients().new_id();
    let shared = ClientShared::new(id, peer.to_string(), laddr, now_ms());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    srv.clients().insert(id, ClientHandle { tx: tx.clone(), shared: shared.clone() });
    let mut client = Client::new(shared, tx);
    if !srv.config().hot.requirepass_set.load(Relaxed) {
        client.authenticated = true;
    }
    serve(&srv, &mut client, &mut rd, &mut wr, &mut rx).await;
    cleanup(&srv, &mut client);
    srv.clients().leave();
}

/// Redis 7.0's text for a client refused by protected mode (clientAcceptHandler).
const PROTECTED_MODE_DENIED: &str = "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

/// Protected mode (the default) with no password for the default user: only 127.0.0.1 and
/// ::1 may connect.
fn protected_mode_denies(srv: &Node, peer: &SocketAddr) -> bool {
    srv.config().get_bool("protected-mode")
        && !ferrocache_node::client::is_local_addr(&peer.to_string())
        && ferrocache_node::acl::default_nopass(srv)
}

async fn serve(
    srv: &Arc<Node>,
    client: &mut Client,
    rd: &mut tokio::net::tcp::OwnedReadHalf,
    wr: &mut tokio::net::tcp::OwnedWriteHalf,
    rx: &mut UnboundedReceiver<ClientMsg>,
) {
    // Both buffers come from the thread's spares when needed (see `bufs`).
    let mut rbuf = BytesMut::new();
    let mut rbuf_read = 0usize;
    let mut parser = RespParser::new();
    let mut out = ReplyBuf::new(false);
    out.buf = Vec::new();
    loop {
        let idle = srv.config().hot.timeout.load(Relaxed);
        let idle_timer = async {
            if idle == 0 || client.sub_count() > 0 {
                std::future::pending::<()>().await
            } else {
                tokio::time::sleep(Duration::from_secs(idle)).await
            }
        };
        let mut close = false;
        tokio::select! {
            r = rd.readable() => {
                if r.is_err() {
                    return;
                }
                if rbuf.capacity() == 0 {
                    rbuf = bufs::take_read();
                    rbuf_read = 0;
                } else if rbuf.capacity() - rbuf.len() < 1024 {
                    rbuf.reserve(16 * 1024);
                }
                match rd.try_read_buf(&mut rbuf) {
                    Ok(0) => return,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => return,
                    Ok(n) => {
                        rbuf_read += n;
                        if out.buf.capacity() == 0 {
                            out.buf = bufs::take_write();
                        }
                        srv.counters().net_input_bytes.fetch_add(n as u64, Relaxed);
                        let limit = srv.config().hot.query_buffer_limit.load(Relaxed);
                        if rbuf.len() > limit {
                            log('#', &format!("Closing client that reached max query buffer length: id={} addr={} (qbuf initial bytes: {:?})", client.id, client.shared.addr, String::from_utf8_lossy(&rbuf[..rbuf.len().min(64)])));
                            srv.counters().client_query_buffer_limit_disconnections.fetch_add(1, Relaxed);
                            return;
                        }
                        // Messages queued before these requests were read (pub/sub, tracking
                        // invalidations) go out before their replies, as on Redis where they
                        // were written when the other client's command ran.
                        while let Ok(m) = rx.try_recv() {
                            if !encode_msg(&mut out, client, m) { close = true; }
                        }
                        loop {
                            match process(srv, client, &mut parser, &mut rbuf, &mut out) {
                                Step::Done => break,
                                Step::Close => { close = true; break; }
                                Step::Overflow => return,
                                Step::Paused(until) => {
                                    if !flush(srv, &client.shared, wr, &mut out).await { return; }
                                    let wait = until.saturating_sub(now_ms());
                                    srv.blocking().postponed.fetch_add(1, Relaxed);
                                    tokio::select! {
                                        _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
                                        _ = srv.client_pause().notify.notified() => {}
                                    }
                                    srv.blocking().postponed.fetch_sub(1, Relaxed);
                                }
                                Step::Handover(psync) => {
                                    if !flush(srv, &client.shared, wr, &mut out).await { return; }
                                    ferrocache_node::replication::feed::serve_replica(srv, client, psync, rd, wr, rx).await;
                                    return;
                                }
                                Step::ShutdownWait(seen) => {
                                    if !flush(srv, &client.shared, wr, &mut out).await { return; }
                                    shutdown_wait(srv, seen).await;
                                    out.error(ferrocache_node::shutdown::SHUTDOWN_FAILED);
                                }
                                Step::ReplWait(off, n, deadline) => {
                                    if !flush(srv, &client.shared, wr, &mut out).await { return; }
                                    let c = ferrocache_node::replication::feed::wait_acks(srv, off, n, deadline).await;
                                    out.int(c as i64);
                                }
                                Step::Block(args, req) => {
                                    if !flush(srv, &client.shared, wr, &mut out).await { return; }
                                    if !block(srv, client, args, req, rd, &mut rbuf, &mut out, rx).await { return; }
                                }
                            }
                        }
                    }
                }
            }
            m = rx.recv() => {
                if let Some(m) = m {
                    if !encode_msg(&mut out, client, m) { close = true; }
                    while let Ok(m) = rx.try_recv() {
                        if !encode_msg(&mut out, client, m) { close = true; }
                    }
                    // The limit holds for what was just added too (Redis checks on every
                    // addReply): a subscriber that drained its channel into a buffer it never
                    // reads is closed here.
                    let (sh, hot) = (&client.shared, &srv.config().hot);
                    if sh.obuf_limited(hot) && sh.obuf_over_limit(hot, sh.omem()) {
                        sh.close_for_obuf();
                        return;
                    }
                }
            }
            _ = idle_timer => { return; }
            _ = client.shared.wake.notified() => {
                if client.shared.kill.load(Relaxed) { return; }
            }
        }
        if close {
            // QUIT's effect (this client is gone: tracking redirections to it are broken, it
            // leaves CLIENT LIST) is visible once its reply has been read.
            srv.clients().remove(client.id);
        }
        if !flush(srv, &client.shared, wr, &mut out).await {
            return;
        }
        if rbuf.is_empty() && rbuf.capacity() > 0 {
            bufs::give_read(std::mem::take(&mut rbuf), rbuf_read);
            // CLIENT LIST: this client holds no query buffer now (Redis 7.4's reusable query
            // buffer: qbuf=0 qbuf-free=0 between commands).
            client.shared.qbuf_cap.store(0, Relaxed);
            parser.release_large();
        }
        if out.buf.capacity() > 0 {
            bufs::give_write(std::mem::take(&mut out.buf));
        }
        if close || client.shared.kill.load(Relaxed) {
            let _ = wr.shutdown().await;
            return;
        }
    }
}

/// Write the reply buffer. What is not written yet counts as the client's output buffer
/// (`omem`); a client closed meanwhile for its output buffer (a subscriber that does not read
/// while messages pile up) ends the wait.
async fn flush(srv: &Node, sh: &ClientShared, wr: &mut tokio::net::tcp::OwnedWriteHalf, out: &mut ReplyBuf) -> bool {
    if out.buf.is_empty() {
        return true;
    }
    ferrocache_node::aof::before_reply(srv);
    srv.counters().net_output_bytes.fetch_add(out.buf.len() as u64, Relaxed);
    let len = out.buf.len();
    let mut off = 0;
    let mut ok = true;
    while off < len {
        sh.obuf_pending.store((len - off) as u64, Relaxed);
        tokio::select! {
            biased;
            r = wr.write(&out.buf[off..]) => match r {
                Ok(n) if n > 0 => off += n,
                _ => {
                    ok = false;
                    break;
                }
            },
            _ = sh.wake.notified() => {
                if sh.kill.load(Relaxed) {
                    ok = false;
                    break;
                }
            }
        }
    }
    sh.obuf_pending.store(0, Relaxed);
    if out.buf.capacity() > 1024 * 1024 {
        out.buf = Vec::new();
    } else {
        out.buf.clear();
    }
    ok
}

/// Wait until a blocking command is served (by `Blocking::serve`, in arrival order), times
/// out, or the connection goes away. Returns false when the connection went away.
#[allow(clippy::too_many_arguments)]
async fn block(
    srv: &Arc<Node>,
    client: &mut Client,
    args: OwnedArgs,
    req: BlockRequest,
    rd: &mut tokio::net::tcp::OwnedReadHalf,
    rbuf: &mut BytesMut,
    out: &mut ReplyBuf,
    rx: &mut UnboundedReceiver<ClientMsg>,
) -> bool {
    let Some(cmd) = table().lookup(&args.args()[0]) else { return true };
    let cmd = match cmd.subcommands.is_empty() {
        true => cmd,
        false => match args.args().get(1).and_then(|s| ferrocache_node::table::lookup_sub(cmd, s)) {
            Some(sub) => sub,
            None => return true,
        },
    };
    // Lend the client state to the waiter for the retries; take it back when the wait ends.
    let placeholder = Client::new(client.shared.clone(), client.tx.clone());
    let real = std::mem::replace(client, placeholder);
    let w = Arc::new(Waiter {
        id: real.id,
        db: req.db,
        keys: req.keys.clone(),
        cmd,
        args,
        resp3: real.resp3,
        client: parking_lot::Mutex::new(Some(real)),
        null_array_on_timeout: req.null_array_on_timeout,
        state: parking_lot::Mutex::new(WaitState::Waiting),
        notify: tokio::sync::Notify::new(),
    });
    srv.blocking().register(&w);
    // A push may have landed between the command and the registration.
    srv.blocking().serve(srv);
    let alive = wait_blocked(srv, &w, req.deadline_ms, rd, rbuf, out, rx).await;
    if let Some(real) = w.client.lock().take() {
        *client = real;
    }
    alive
}

/// The wait itself: served, timed out, or the connection went away (false).
#[allow(clippy::too_many_arguments)]
async fn wait_blocked(
    srv: &Arc<Node>,
    w: &Arc<Waiter>,
    deadline: u64,
    rd: &mut tokio::net::tcp::OwnedReadHalf,
    rbuf: &mut BytesMut,
    out: &mut ReplyBuf,
    rx: &mut UnboundedReceiver<ClientMsg>,
) -> bool {
    loop {
        let wait = async {
            if deadline == 0 {
                std::future::pending::<()>().await
            } else {
                tokio::time::sleep(Duration::from_millis(deadline.saturating_sub(now_ms()))).await
            }
        };
        tokio::select! {
            _ = w.notify.notified() => {
                if let Some(reply) = w.take_served() {
                    out.raw(&reply);
                    return true;
                }
            }
            _ = wait => {
                match w.cancel() {
                    Some(reply) => out.raw(&reply),
                    None => {
                        srv.blocking().unregister(w);
                        w.count_unblocked(srv, None);
                        out.raw(&w.timeout_reply());
                    }
                }
                return true;
            }
            r = rd.read_buf(rbuf) => {
                if matches!(r, Ok(0) | Err(_)) {
                    w.cancel();
                    srv.blocking().unregister(w);
                    return false;
                }
                // Requests sent while blocked wait in the buffer, as in Redis.
            }
            m = rx.recv() => {
                match m {
                    Some(ClientMsg::Kill) | None => {
                        w.cancel();
                        srv.blocking().unregister(w);
                        return false;
                    }
                    Some(m) => {
                        // The blocked client waits inside the registration.
                        if let Some(c) = w.client.lock().as_mut() {
                            encode_msg(out, c, m);
                        }
                    }
                }
            }
        }
    }
}

fn cleanup(srv: &Arc<Node>, client: &mut Client) {
    let id = client.id;
    srv.clients().remove(id);
    ferrocache_node::transactions::discard_state(srv, client);
    srv.pubsub().forget_client(client);
    if client.tracking.take().is_some() {
        srv.tracking().forget_client(id);
        srv.tracking().enabled.fetch_sub(1, Relaxed);
    }
    if client.monitor {
        srv.monitors().remove(id);
    }
}
