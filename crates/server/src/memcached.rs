//! The memcached listener: the same bind addresses as RESP on `memcached-port`, one task per
//! connection on the shared tokio runtime. A connection's protocol (text/meta or binary) is
//! negotiated on its first byte; every complete request in a read batch is executed and the
//! replies are written with one write per batch. Swallow (`conn_swallow`) and close semantics
//! follow the protocol crate's error values.

use bytes::{Buf, BytesMut};
use ferrocache_node::config::Config;
use ferrocache_node::memcached::{self as mc, McConn, McConnInfo, Outcome};
use ferrocache_node::node::now_ms;
use ferrocache_node::Node;
use ferrocache_protocol::memcache::{negotiate, parse_binary, parse_text, Protocol};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// `engine memcached`: memcached-only node (no RESP listener, LRU eviction under a 64mb
/// default limit like `memcached -m 64`, port 11211 unless configured).
pub fn apply_engine_defaults(cfg: &Config) -> Result<(), String> {
    if cfg.get("engine").as_deref() != Some("memcached") {
        return Ok(());
    }
    if cfg.get_i64("maxmemory") == 0 {
        cfg.set_startup("maxmemory", &["64mb".to_string()])?;
    }
    if cfg.policy() == ferrocache_engine::EvictionPolicy::NoEviction {
        cfg.set_startup("maxmemory-policy", &["allkeys-lru".to_string()])?;
    }
    if cfg.get_i64("memcached-port") == 0 {
        cfg.set_startup("memcached-port", &["11211".to_string()])?;
    }
    Ok(())
}

/// Bind memcached listeners on the `bind` addresses and `memcached-port` (none when 0).
pub async fn bind_memcached(cfg: &Config) -> std::io::Result<Vec<TcpListener>> {
    let port = cfg.get_i64("memcached-port");
    if port <= 0 {
        return Ok(Vec::new());
    }
    let binds = cfg.get("bind").unwrap_or_else(|| "127.0.0.1".into());
    let backlog = cfg.get_i64("tcp-backlog");
    let std_listeners =
        ferrocache_node::listeners::bind_all("memcached", &binds, port as u16, backlog, &mut |sa, e| {
            crate::log('#', &format!("Could not bind optional memcached address {}: {}", sa, e))
        })?;
    std_listeners.into_iter().map(TcpListener::from_std).collect()
}

/// Start accepting memcached connections.
pub fn spawn(srv: Arc<Node>, listeners: Vec<TcpListener>) {
    for l in listeners {
        let srv = srv.clone();
        tokio::spawn(async move { accept_loop(srv, l).await });
    }
}

async fn accept_loop(srv: Arc<Node>, l: TcpListener) {
    loop {
        match l.accept().await {
            Ok((sock, peer)) => {
                let srv = srv.clone();
                tokio::spawn(async move { connection(srv, sock, peer).await });
            }
            Err(e) => {
                crate::log('#', &format!("Accepting memcached connection: {}", e));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

async fn connection(srv: Arc<Node>, mut sock: TcpStream, peer: SocketAddr) {
    let _ = sock.set_nodelay(true);
    crate::set_keepalive(&sock, srv.config().get_i64("tcp-keepalive"));
    let st = &srv.memcached().stats;
    let max = srv.config().get_i64("memcached-max-connections").max(1) as u64;
    if st.curr_connections.fetch_add(1, Relaxed) >= max {
        st.curr_connections.fetch_sub(1, Relaxed);
        st.rejected_connections.fetch_add(1, Relaxed);
        let _ = sock.write_all(b"ERROR Too many open connections\r\n").await;
        let _ = sock.shutdown().await;
        return;
    }
    st.total_connections.fetch_add(1, Relaxed);
    let id = srv.clients().new_id();
    let last = Arc::new(AtomicU64::new(now_ms()));
    let laddr = sock.local_addr().map(|a| a.to_string()).unwrap_or_default();
    srv.memcached()
        .conns
        .lock()
        .insert(id, McConnInfo { addr: peer.to_string(), listen_addr: laddr, last_cmd_ms: last.clone() });
    let conn = McConn {
        id,
        last_cmd_ms: last,
        authenticated: AtomicBool::new(!mc::auth_required(&srv)),
        watch: Default::default(),
    };
    mc::log_conn(&srv, id, &peer, None);
    let reason = serve(&srv, &conn, sock).await;
    mc::log_conn(&srv, id, &peer, Some(reason));
    srv.memcached().conns.lock().remove(&id);
    srv.memcached().stats.curr_connections.fetch_sub(1, Relaxed);
}

/// Back-pressure: stop executing requests once this much output is pending, write it, and only
/// then go on with the requests already read (and only read more when none is left). A client
/// that pipelines `get big` without reading thus holds at most this plus one reply in memory,
/// as memcached stops reading a connection it cannot write to.
const OUTPUT_HIGH_WATER: usize = 4 * 1024 * 1024;

struct ConnState {
    proto: Option<Protocol>,
    /// Input bytes still to discard (memcached's conn_swallow).
    swallow: u64,
    /// `watch` made this connection a log stream.
    watching: bool,
    /// The connection closes because of a protocol error.
    error_close: bool,
}

/// Serve one connection; returns why it closed (memcached's conn_close reasons).
async fn serve(srv: &Arc<Node>, conn: &McConn, sock: TcpStream) -> &'static str {
    let (mut rd, mut wr) = sock.into_split();
    let mut rbuf = BytesMut::with_capacity(16 * 1024);
    let mut out: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut state = ConnState { proto: None, swallow: 0, watching: false, error_close: false };
    let mut paused = false;
    let mut backlog = false;
    loop {
        if backlog {
            // Requests left in `rbuf` after a full output batch: run them before reading more.
        } else if paused {
            // A FAILOVER pauses writes: retry the request when it ends.
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
                _ = srv.client_pause().notify.notified() => {}
            }
        } else {
            if rbuf.capacity() - rbuf.len() < 4096 {
                rbuf.reserve(64 * 1024);
            }
            match rd.read_buf(&mut rbuf).await {
                Ok(0) => return "normal",
                Err(_) => return "error",
                Ok(n) => {
                    srv.memcached().stats.bytes_read.fetch_add(n as u64, Relaxed);
                }
            }
        }
        let close;
        (close, paused, backlog) = process(srv, conn, &mut state, &mut rbuf, &mut out);
        if !out.is_empty() {
            ferrocache_node::aof::before_reply(srv);
            srv.memcached().stats.bytes_written.fetch_add(out.len() as u64, Relaxed);
            if wr.write_all(&out).await.is_err() {
                return "error";
            }
            if out.capacity() > 1024 * 1024 {
                out = Vec::with_capacity(16 * 1024);
            } else {
                out.clear();
            }
        }
        if close {
            let _ = wr.shutdown().await;
            return if state.error_close { "error" } else { "normal" };
        }
        if state.watching {
            let Some(rx) = conn.watch.lock().take() else { return "normal" };
            watch_stream(rd, wr, rx).await;
            return "normal";
        }
    }
}

/// A `watch` connection: stream the log lines; input is read and ignored until EOF.
async fn watch_stream(
    mut rd: tokio::net::tcp::OwnedReadHalf,
    mut wr: tokio::net::tcp::OwnedWriteHalf,
    mut rx: tokio::sync::mpsc::Receiver<Vec<u8>>,
) {
    let mut sink = [0u8; 4096];
    loop {
        tokio::select! {
            line = rx.recv() => match line {
                Some(l) => {
                    if wr.write_all(&l).await.is_err() {
                        return;
                    }
                }
                None => return,
            },
            n = rd.read(&mut sink) => {
                if !matches!(n, Ok(k) if k > 0) {
                    return;
                }
            }
        }
    }
}

/// Execute the complete requests in `rbuf` until the output reaches [`OUTPUT_HIGH_WATER`].
/// Returns (the connection must close, a write is paused by a FAILOVER and stays in `rbuf`,
/// execution stopped at the output bound with requests possibly left in `rbuf`).
fn process(
    srv: &Arc<Node>,
    conn: &McConn,
    state: &mut ConnState,
    rbuf: &mut BytesMut,
    out: &mut Vec<u8>,
) -> (bool, bool, bool) {
    let limits = mc::limits(srv);
    let mut pos = 0usize;
    let mut close = false;
    let mut paused = false;
    let mut full = false;
    loop {
        if out.len() >= OUTPUT_HIGH_WATER {
            full = true;
            break;
        }
        if state.swallow > 0 {
            let k = (state.swallow as usize).min(rbuf.len() - pos);
            pos += k;
            state.swallow -= k as u64;
            if state.swallow > 0 {
                break;
            }
        }
        if pos >= rbuf.len() {
            break;
        }
        let buf = &rbuf[pos..];
        let proto = *state.proto.get_or_insert_with(|| negotiate(buf[0]));
        match proto {
            Protocol::Text => {
                if !conn.authenticated.load(Relaxed) {
                    match mc::text_auth(srv, conn, buf, out) {
                        None => break,
                        Some((n, c)) => {
                            pos += n;
                            if c {
                                close = true;
                                break;
                            }
                            continue;
                        }
                    }
                }
                if let Some(n) = mc::try_config_line(srv, buf, out) {
                    pos += n;
                    continue;
                }
                match parse_text(buf, &limits) {
                    Ok(None) => break,
                    Ok(Some((req, consumed))) => {
                        if srv.repl().failing_over() && mc::text_is_write(&req) {
                            paused = true;
                            break;
                        }
                        let o = mc::execute_text(srv, conn, req, out);
                        pos += consumed;
                        if o == Outcome::Close {
                            close = true;
                            break;
                        }
                        if o == Outcome::Watch {
                            state.watching = true;
                            break;
                        }
                    }
                    Err(e) => {
                        e.encode(out);
                        if let Some(k) = &e.unlink_key {
                            mc::unlink(srv, k);
                        }
                        pos += e.consumed.min(buf.len());
                        state.swallow = e.swallow;
                        if e.close {
                            close = true;
                            state.error_close = true;
                            break;
                        }
                    }
                }
            }
            Protocol::Binary => match parse_binary(buf, &limits) {
                Ok(None) => break,
                Ok(Some((req, consumed))) => {
                    if srv.repl().failing_over() && mc::binary_is_write(&req) {
                        paused = true;
                        break;
                    }
                    let o = mc::execute_binary(srv, conn, req, out);
                    pos += consumed;
                    if o == Outcome::Close {
                        close = true;
                        break;
                    }
                }
                Err(e) => {
                    e.encode(out);
                    if let Some(k) = e.unlink_key {
                        mc::unlink(srv, k);
                    }
                    pos += e.consumed.min(buf.len());
                    state.swallow = e.swallow;
                    if e.close {
                        close = true;
                        state.error_close = true;
                        break;
                    }
                }
            },
        }
    }
    rbuf.advance(pos);
    (close, paused, full)
}
