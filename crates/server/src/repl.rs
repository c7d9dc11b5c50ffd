//! Replication, network side. Primary: a connection that sent PSYNC/SYNC is handed to
//! `serve_replica`, which answers +FULLRESYNC (and sends a point-in-time RDB, disk-backed
//! `$<len>` or diskless `$EOF:<mark>`) or +CONTINUE (backlog bytes), then streams the write
//! effects and reads REPLCONF ACKs. Replica: `link_loop` connects to the primary, does the
//! handshake (PING, AUTH, REPLCONF, PSYNC), loads the RDB and applies the stream through the
//! executor as the master client, ACKing every second and reconnecting with PSYNC on loss.

use crate::log;
use bytes::{Buf, Bytes, BytesMut};
use ferrocache_node::client::{Client, ClientMsg, ClientShared};
use ferrocache_node::node::{now_ms, ClientHandle};
use ferrocache_node::replication::{self as rp, LinkState, ReplicaConn};
use ferrocache_node::{execute_at, persistence, Node};
use ferrocache_protocol::resp::{ParseLimits, Parsed, ReplyBuf, RespParser};
use std::io::Write;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

/// Install the hook REPLICAOF uses to start a link task.
pub fn install(srv: &Arc<Node>) {
    let _ = srv.repl.start_link.set(|srv, epoch| {
        tokio::spawn(link_loop(srv, epoch));
    });
}

/// Periodic replication work (every 100 ms).
pub async fn cron(srv: Arc<Node>) {
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        rp::cron(&srv);
    }
}

// ------------------------------------------------------------------ primary side

/// Diskless transfer: the snapshot's RDB bytes, chunked into a channel.
struct ChanWriter {
    tx: UnboundedSender<Bytes>,
    buf: Vec<u8>,
}

impl Write for ChanWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= 64 * 1024 {
            self.flush()?;
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            let b = std::mem::take(&mut self.buf);
            self.tx
                .send(Bytes::from(b))
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "replica gone"))?;
        }
        Ok(())
    }
}

impl Drop for ChanWriter {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// Write to a replica unless it was dropped for its output buffer meanwhile.
async fn write_conn(wr: &mut OwnedWriteHalf, conn: &ReplicaConn, b: &[u8]) -> bool {
    tokio::select! {
        r = wr.write_all(b) => r.is_ok(),
        _ = conn.overflow.notified() => false,
    }
}

fn peer_ip(addr: &str) -> String {
    match addr.rfind(':') {
        Some(i) => addr[..i].trim_start_matches('[').trim_end_matches(']').to_string(),
        None => addr.to_string(),
    }
}

/// Serve a connection that sent PSYNC/SYNC until the replica goes away.
/// The connection of a replica whose PSYNC/SYNC was accepted: (replid, offset, is_old_sync)
/// as the command asked (`Then::Handover`).
pub async fn serve_replica(
    srv: &Arc<Node>,
    client: &mut Client,
    psync: (String, i64, bool),
    rd: &mut OwnedReadHalf,
    wr: &mut OwnedWriteHalf,
    crx: &mut UnboundedReceiver<ClientMsg>,
) {
    let (replid, offset, old) = psync;
    let ip = client.repl.ip.clone().unwrap_or_else(|| peer_ip(&client.shared.addr));
    let port = client.repl.listening_port;
    let name = format!("{}:{}", ip, port);
    let (tx, mut rx) = unbounded_channel::<Bytes>();
    let conn = Arc::new(ReplicaConn::new(client.id, ip, port, tx, client.shared.clone()));
    *client.shared.flags.lock() = "S".into();
    srv.repl.ensure_backlog(srv);
    let mut partial = None;
    // After a diskless transfer the stream waits for the replica's first ACK (see stream_to_replica).
    let mut wait_first_ack = false;
    if !old {
        partial = rp::try_partial(srv, &conn, &replid, offset, client.repl.capa_psync2);
    }
    if let Some(bytes) = partial {
        log('*', &format!("Replica {} asks for synchronization", name));
        log('*', &format!("Partial resynchronization request from {} accepted. Sending {} bytes of backlog starting from offset {}.", name, bytes.len(), offset));
        if !write_conn(wr, &conn, &bytes).await {
            srv.repl.remove_replica(conn.id);
            return;
        }
    } else {
        log('*', &format!("Replica {} asks for synchronization", name));
        if replid != "?" && !old {
            log('*', &format!("Partial resynchronization not accepted: Replication ID mismatch (Replica asked for '{}', my replication IDs are ...)", replid));
        } else {
            log('*', &format!("Full resync requested by replica {}", name));
        }
        srv.repl.sync_full.fetch_add(1, Relaxed);
        match full_sync(srv, client, &conn, old, wr).await {
            None => {
                srv.repl.remove_replica(conn.id);
                log('#', &format!("Connection with replica {} lost.", name));
                return;
            }
            Some(true) => {
                log('*', &format!("Streamed RDB transfer with replica {} succeeded (socket). Waiting for REPLCONF ACK from slave to enable streaming", name));
                wait_first_ack = true;
            }
            Some(false) => log('*', &format!("Synchronization with replica {} succeeded", name)),
        }
    }
    stream_to_replica(srv, client, &conn, &mut rx, rd, wr, crx, wait_first_ack, &name).await;
    srv.repl.remove_replica(conn.id);
    log('*', &format!("Connection with replica {} lost.", name));
}

/// FULLRESYNC: start a snapshot whose start point is the stream offset sent, send the RDB.
/// None: the replica is gone; Some(diskless): the RDB was sent, as a `$EOF:` stream or not.
async fn full_sync(
    srv: &Arc<Node>,
    client: &Client,
    conn: &Arc<ReplicaConn>,
    old: bool,
    wr: &mut OwnedWriteHalf,
) -> Option<bool> {
    let diskless = srv.config.get_bool("repl-diskless-sync") && client.repl.capa_eof;
    send_rdb(srv, conn, old, diskless, wr).await.then_some(diskless)
}

async fn send_rdb(
    srv: &Arc<Node>,
    conn: &Arc<ReplicaConn>,
    old: bool,
    diskless: bool,
    wr: &mut OwnedWriteHalf,
) -> bool {
    let start_info = Arc::new(parking_lot::Mutex::new((String::new(), 0u64)));
    let done;
    let rdb_rx;
    let mut waited = 0u64;
    loop {
        if !persistence::snapshot_running(srv) {
            let (stream, rrx) = if diskless {
                let (t, r) = unbounded_channel::<Bytes>();
                (
                    Some(Box::new(ChanWriter { tx: t, buf: Vec::with_capacity(64 * 1024) }) as Box<dyn Write + Send>),
                    Some(r),
                )
            } else {
                (None, None)
            };
            let info = start_info.clone();
            let c2 = conn.clone();
            let srv2 = srv.clone();
            let (dtx, drx) = tokio::sync::oneshot::channel::<(bool, Option<Vec<u8>>)>();
            let dbfile = srv.config.get("dbfilename").unwrap_or_else(|| "dump.rdb".into());
            let r = persistence::repl_snapshot(
                srv,
                stream,
                move || {
                    let mut m = srv2.repl.primary.lock();
                    m.last_db = -1;
                    *info.lock() = (m.replid.clone(), m.backlog.offset);
                    m.replicas.push(c2);
                },
                move |ok| {
                    let data = if ok && !diskless { std::fs::read(&dbfile).ok() } else { None };
                    let _ = dtx.send((ok, data));
                },
            );
            // Err: lost a race with another snapshot; try again.
            if r.is_ok() {
                rdb_rx = rrx;
                done = Some(drx);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
        if waited.is_multiple_of(10) && !write_conn(wr, conn, b"\n").await {
            return false;
        }
    }
    let (replid, off) = start_info.lock().clone();
    let Some(done_rx) = done else { return false };
    log('*', &format!("Starting BGSAVE for SYNC with target: {}", if diskless { "replicas sockets" } else { "disk" }));
    if !old && !write_conn(wr, conn, format!("+FULLRESYNC {} {}\r\n", replid, off).as_bytes()).await {
        return false;
    }
    if let Some(mut rrx) = rdb_rx {
        let mark = rp::random_replid();
        if !write_conn(wr, conn, format!("$EOF:{}\r\n", mark).as_bytes()).await {
            return false;
        }
        while let Some(chunk) = rrx.recv().await {
            if !write_conn(wr, conn, &chunk).await {
                return false;
            }
        }
        let Ok((ok, _)) = done_rx.await else { return false };
        if !ok || !write_conn(wr, conn, mark.as_bytes()).await {
            return false;
        }
        log('*', "Diskless rdb transfer, done reading from pipe, 1 replicas still up.");
    } else {
        let Ok((ok, data)) = done_rx.await else { return false };
        let Some(data) = data.filter(|_| ok) else { return false };
        conn.state.store(rp::STATE_SEND_BULK, Relaxed);
        if !write_conn(wr, conn, format!("${}\r\n", data.len()).as_bytes()).await || !write_conn(wr, conn, &data).await
        {
            return false;
        }
    }
    conn.ack_ms.store(now_ms(), Relaxed);
    conn.state.store(rp::STATE_ONLINE, Relaxed);
    true
}

/// After the sync: write the stream, read REPLCONF ACKs.
///
/// `wait_first_ack`: after a `$EOF:<mark>` transfer nothing is written until the replica's
/// first REPLCONF ACK, as Redis does (repl_start_cmd_stream_on_ack). A redis-server replica
/// loading to disk finds the mark only at the very end of one read(): stream bytes glued to
/// the mark hide it, and the replica waits for the end of the RDB forever.
#[allow(clippy::too_many_arguments)]
async fn stream_to_replica(
    srv: &Arc<Node>,
    client: &Client,
    conn: &Arc<ReplicaConn>,
    rx: &mut UnboundedReceiver<Bytes>,
    rd: &mut OwnedReadHalf,
    wr: &mut OwnedWriteHalf,
    crx: &mut UnboundedReceiver<ClientMsg>,
    mut wait_first_ack: bool,
    name: &str,
) {
    let mut rbuf = BytesMut::with_capacity(4096);
    let mut parser = RespParser::new();
    let limits = ParseLimits { proto_max_bulk_len: 512 * 1024 * 1024, auth_required: false };
    let mut out: Vec<u8> = Vec::with_capacity(64 * 1024);
    loop {
        if client.shared.kill.load(Relaxed) {
            flush_queued(rx, wr, conn, &mut out).await;
            return;
        }
        tokio::select! {
            b = rx.recv(), if !wait_first_ack => {
                let Some(b) = b else { return };
                out.clear();
                out.extend_from_slice(&b);
                while out.len() < 4 * 1024 * 1024 {
                    match rx.try_recv() {
                        Ok(b) => out.extend_from_slice(&b),
                        Err(_) => break,
                    }
                }
                srv.counters.net_output_bytes.fetch_add(out.len() as u64, Relaxed);
                if !write_conn(wr, conn, &out).await {
                    return;
                }
                conn.written(out.len());
            }
            r = rd.read_buf(&mut rbuf) => {
                match r {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                let mut pos = 0;
                loop {
                    match parser.parse(&rbuf[pos..], &limits) {
                        Ok(Parsed::Request { consumed }) => {
                            let args = parser.args(&rbuf[pos..]);
                            if args.len() >= 3 && args[0].eq_ignore_ascii_case(b"replconf") && args[1].eq_ignore_ascii_case(b"ack") {
                                if let Some(off) = std::str::from_utf8(&args[2]).ok().and_then(|s| s.parse::<u64>().ok()) {
                                    conn.ack_off.fetch_max(off, Relaxed);
                                    conn.ack_ms.store(now_ms(), Relaxed);
                                    srv.repl.acks.notify_waiters();
                                }
                                if wait_first_ack {
                                    wait_first_ack = false;
                                    log('*', &format!("Synchronization with replica {} succeeded", name));
                                }
                            }
                            pos += consumed;
                        }
                        Ok(Parsed::Incomplete { .. }) => break,
                        Err(_) => return,
                    }
                }
                rbuf.advance(pos);
            }
            m = crx.recv() => {
                if matches!(m, None | Some(ClientMsg::Kill)) {
                    flush_queued(rx, wr, conn, &mut out).await;
                    return;
                }
            }
            _ = conn.overflow.notified() => return,
        }
    }
}

/// A replica disconnected by this node (REPLICAOF, CLIENT KILL) still gets the stream that was
/// produced before: Redis would have written it in beforeSleep right after those writes.
async fn flush_queued(
    rx: &mut UnboundedReceiver<Bytes>,
    wr: &mut OwnedWriteHalf,
    conn: &Arc<ReplicaConn>,
    out: &mut Vec<u8>,
) {
    out.clear();
    while let Ok(b) = rx.try_recv() {
        out.extend_from_slice(&b);
    }
    if !out.is_empty() {
        let _ = write_conn(wr, conn, out).await;
    }
}

/// WAIT: block until `n` replicas acknowledged `off`, or the deadline. Returns the count.
pub async fn wait_acks(srv: &Arc<Node>, off: u64, n: usize, deadline_ms: u64) -> usize {
    loop {
        let notified = srv.repl.acks.notified();
        let c = srv.repl.acked(off);
        if c >= n {
            return c;
        }
        let now = now_ms();
        if deadline_ms != 0 && now >= deadline_ms {
            return c;
        }
        let wait = if deadline_ms == 0 { 100 } else { (deadline_ms - now).min(100) };
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
        }
    }
}

// ------------------------------------------------------------------ replica side

/// The state of our link, unless a newer REPLICAOF replaced it (then false: stop).
fn set_state(srv: &Node, epoch: u64, st: LinkState) -> bool {
    let mut r = srv.repl.replica.lock();
    if r.epoch != epoch {
        return false;
    }
    r.state = st;
    true
}

fn current(srv: &Node, epoch: u64) -> bool {
    srv.repl.replica.lock().epoch == epoch
}

async fn link_loop(srv: Arc<Node>, epoch: u64) {
    let mut db = 0usize;
    loop {
        let master = {
            let r = srv.repl.replica.lock();
            if r.epoch != epoch {
                return;
            }
            r.master.clone()
        };
        let Some((host, port)) = master else { return };
        let res = link_once(&srv, epoch, &host, port, &mut db).await;
        {
            let mut r = srv.repl.replica.lock();
            if r.epoch != epoch {
                return;
            }
            r.state = LinkState::Connect;
            if r.down_since_ms == 0 {
                r.down_since_ms = now_ms();
            }
            r.master_client = 0;
        }
        srv.repl.link_up.store(false, Relaxed);
        if let Err(e) = res {
            log('#', &e);
        }
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
}

struct Link {
    sock: TcpStream,
    buf: BytesMut,
}

impl Link {
    async fn send(&mut self, argv: &[&[u8]]) -> Result<(), String> {
        let mut b = Vec::new();
        rp::encode_command(&mut b, argv);
        self.sock.write_all(&b).await.map_err(|e| format!("Error writing to MASTER: {}", e))
    }
    async fn fill(&mut self, timeout: u64) -> Result<(), String> {
        match tokio::time::timeout(Duration::from_secs(timeout), self.sock.read_buf(&mut self.buf)).await {
            Err(_) => Err("Timeout connecting to the MASTER...".into()),
            Ok(Ok(0)) => Err("Error reading from MASTER: connection closed".into()),
            Ok(Err(e)) => Err(format!("Error reading from MASTER: {}", e)),
            Ok(Ok(_)) => Ok(()),
        }
    }
    /// One line without its terminator ("" for a keepalive newline).
    async fn line(&mut self, timeout: u64) -> Result<String, String> {
        loop {
            if let Some(i) = self.buf.iter().position(|&c| c == b'\n') {
                let mut l = self.buf.split_to(i + 1).to_vec();
                l.pop();
                if l.last() == Some(&b'\r') {
                    l.pop();
                }
                return Ok(String::from_utf8_lossy(&l).into_owned());
            }
            self.fill(timeout).await?;
        }
    }
    async fn cmd(&mut self, argv: &[&[u8]], timeout: u64) -> Result<String, String> {
        self.send(argv).await?;
        loop {
            let l = self.line(timeout).await?;
            if !l.is_empty() {
                return Ok(l);
            }
        }
    }
}

async fn link_once(srv: &Arc<Node>, epoch: u64, host: &str, port: u16, db: &mut usize) -> Result<(), String> {
    let timeout = srv.config.get_i64("repl-timeout").max(1) as u64;
    if !set_state(srv, epoch, LinkState::Connecting) {
        return Ok(());
    }
    log('*', &format!("Connecting to MASTER {}:{}", host, port));
    let sock = match tokio::time::timeout(Duration::from_secs(timeout), TcpStream::connect((host, port))).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(format!("Error condition on socket for SYNC: {}", e)),
        Err(_) => return Err("Timeout connecting to the MASTER...".into()),
    };
    let _ = sock.set_nodelay(true);
    let laddr = sock.local_addr().map(|a| a.to_string()).unwrap_or_default();
    log('*', "MASTER <-> REPLICA sync started");
    if !set_state(srv, epoch, LinkState::Handshake) {
        return Ok(());
    }
    let mut link = Link { sock, buf: BytesMut::with_capacity(64 * 1024) };
    let pong = link.cmd(&[b"PING"], timeout).await?;
    if pong.starts_with('-')
        && !pong.starts_with("-NOAUTH")
        && !pong.starts_with("-NOPERM")
        && !pong.starts_with("-ERR operation not permitted")
    {
        return Err(format!("Error reply to PING from master: '{}'", pong));
    }
    log('*', "Master replied to PING, replication can continue...");
    let auth = srv.config.get("masterauth").unwrap_or_default();
    if !auth.is_empty() {
        let user = srv.config.get("masteruser").unwrap_or_default();
        let r = if user.is_empty() {
            link.cmd(&[b"AUTH", auth.as_bytes()], timeout).await?
        } else {
            link.cmd(&[b"AUTH", user.as_bytes(), auth.as_bytes()], timeout).await?
        };
        if r.starts_with('-') {
            return Err(format!("Unable to AUTH to MASTER: {}", r));
        }
    }
    let myport = srv
        .config
        .get("replica-announce-port")
        .and_then(|p| p.parse::<u16>().ok())
        .filter(|p| *p != 0)
        .unwrap_or(srv.config.get_i64("port") as u16);
    let r = link.cmd(&[b"REPLCONF", b"listening-port", myport.to_string().as_bytes()], timeout).await?;
    if r.starts_with('-') {
        log('*', &format!("(Non critical) Master does not understand REPLCONF listening-port: {}", r));
    }
    if let Some(ip) = srv.config.get("replica-announce-ip").filter(|s| !s.is_empty()) {
        let _ = link.cmd(&[b"REPLCONF", b"ip-address", ip.as_bytes()], timeout).await?;
    }
    let r = link.cmd(&[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"], timeout).await?;
    if r.starts_with('-') {
        log('*', &format!("(Non critical) Master does not understand REPLCONF capa: {}", r));
    }
    let (myid, myoff) = {
        let m = srv.repl.primary.lock();
        (m.replid.clone(), m.backlog.offset + 1)
    };
    log('*', &format!("Trying a partial resynchronization (request {}:{}).", myid, myoff));
    // A FAILOVER in progress: the target promotes itself when it sees our PSYNC.
    let failover = srv.repl.failover_state.load(Relaxed) == rp::FAILOVER_IN_PROGRESS;
    let offs = myoff.to_string();
    let mut argv: Vec<&[u8]> = vec![b"PSYNC", myid.as_bytes(), offs.as_bytes()];
    if failover {
        argv.push(b"FAILOVER");
    }
    if let Err(e) = link.send(&argv).await {
        if failover {
            rp::abort_failover(srv, "Write error to failover target");
        }
        return Err(e);
    }
    let reply = loop {
        let l = link.line(timeout).await?;
        if !l.is_empty() {
            break l;
        }
    };
    if failover {
        if reply.starts_with("+FULLRESYNC") || reply.starts_with("+CONTINUE") {
            rp::clear_failover(srv);
        } else {
            rp::abort_failover(srv, "Failover target rejected psync request");
            return Err(format!("Failover target rejected psync request: {}", reply));
        }
    }
    let start_off: u64;
    if let Some(rest) = reply.strip_prefix("+FULLRESYNC") {
        let mut it = rest.split_whitespace();
        let id = it.next().unwrap_or("").to_string();
        let off: u64 = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        log('*', &format!("Full resync from master: {}:{}", id, off));
        receive_and_load(srv, epoch, &mut link, &id, off, timeout).await?;
        *db = 0;
        start_off = off;
    } else if let Some(rest) = reply.strip_prefix("+CONTINUE") {
        let newid = rest.trim();
        log('*', "Successful partial resynchronization with master.");
        let mut m = srv.repl.primary.lock();
        if !newid.is_empty() && newid != m.replid {
            m.replid2 = std::mem::replace(&mut m.replid, newid.to_string());
            m.second_offset = m.backlog.offset as i64 + 1;
            log('*', &format!("Master replication ID changed to {}", newid));
            drop(m);
            srv.repl.disconnect_replicas(srv);
            m = srv.repl.primary.lock();
        }
        start_off = m.backlog.offset;
        drop(m);
        log('*', "MASTER <-> REPLICA sync: Master accepted a Partial Resynchronization.");
    } else if reply.starts_with("-NOMASTERLINK") || reply.starts_with("-LOADING") {
        return Err(format!("Master is currently unable to PSYNC but should be in the future: {}", reply));
    } else {
        return Err(format!("Unexpected reply to PSYNC from master: {}", reply));
    }
    stream_from_master(srv, epoch, link, host, port, laddr, start_off, db).await
}

async fn receive_and_load(
    srv: &Arc<Node>,
    epoch: u64,
    link: &mut Link,
    id: &str,
    off: u64,
    timeout: u64,
) -> Result<(), String> {
    if !set_state(srv, epoch, LinkState::Transfer) {
        return Err("replication target changed".into());
    }
    {
        let mut r = srv.repl.replica.lock();
        r.transfer_size = -1;
        r.transfer_read = 0;
        r.last_io_ms = now_ms();
    }
    let header = loop {
        let l = link.line(timeout).await?;
        if !l.is_empty() {
            break l;
        }
        srv.repl.replica.lock().last_io_ms = now_ms();
    };
    if !header.starts_with('$') {
        return Err(format!("Bad protocol from MASTER, the first byte is not '$' (we received '{}'), are you sure the host and port are right?", header));
    }
    let mut data: Vec<u8>;
    if let Some(mark) = header.strip_prefix("$EOF:") {
        let mark = mark.as_bytes().to_vec();
        log('*', "MASTER <-> REPLICA sync: receiving streamed RDB from master with EOF to disk");
        data = Vec::new();
        loop {
            // The stream may follow the mark in the same read: search where the new bytes
            // could complete it, and give back what follows.
            let from = data.len().saturating_sub(mark.len());
            data.extend_from_slice(&link.buf);
            link.buf.clear();
            {
                let mut r = srv.repl.replica.lock();
                r.transfer_read = data.len() as i64;
                r.last_io_ms = now_ms();
            }
            if let Some(i) = memchr::memmem::find(&data[from..], &mark) {
                let end = from + i;
                link.buf.extend_from_slice(&data[end + mark.len()..]);
                data.truncate(end);
                break;
            }
            link.fill(timeout).await?;
        }
    } else {
        let len: usize = header[1..].parse().map_err(|_| format!("Bad protocol from MASTER: '{}'", header))?;
        log('*', &format!("MASTER <-> REPLICA sync: receiving {} bytes from master to disk", len));
        srv.repl.replica.lock().transfer_size = len as i64;
        data = Vec::with_capacity(len);
        loop {
            let take = (len - data.len()).min(link.buf.len());
            data.extend_from_slice(&link.buf[..take]);
            link.buf.advance(take);
            {
                let mut r = srv.repl.replica.lock();
                r.transfer_read = data.len() as i64;
                r.last_io_ms = now_ms();
            }
            if data.len() == len {
                break;
            }
            link.fill(timeout).await?;
        }
    }
    if !current(srv, epoch) {
        return Err("replication target changed".into());
    }
    log('*', "MASTER <-> REPLICA sync: Flushing old data");
    let srv2 = srv.clone();
    let id = id.to_string();
    let r = tokio::task::spawn_blocking(move || {
        let srv = srv2;
        persistence::abort_running(&srv, false);
        srv.repl.disconnect_replicas(&srv);
        srv.repl.ensure_backlog(&srv);
        let mut g = srv.ks.lock_all();
        for d in 0..srv.num_dbs() {
            g.for_each_shard(|s| s.dbs[d] = Default::default());
        }
        log('*', "MASTER <-> REPLICA sync: Loading DB in memory");
        let r = persistence::load_rdb(&srv, &data[..], &mut g);
        {
            let mut m = srv.repl.primary.lock();
            m.replid = id;
            m.replid2 = rp::NO_REPLID.into();
            m.second_offset = -1;
            m.backlog.reset_to(off);
            m.last_db = -1;
            srv.repl.offset.store(off, Relaxed);
        }
        let mut fx = ferrocache_engine::Effects::default();
        fx.flushed.push(None);
        srv.apply_effects(&mut fx, 0, None);
        drop(g);
        r.is_ok()
    })
    .await
    .unwrap_or(false);
    if !r {
        return Err("Failed trying to load the MASTER synchronization DB from disk".into());
    }
    log('*', "MASTER <-> REPLICA sync: Finished with success");
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn stream_from_master(
    srv: &Arc<Node>,
    epoch: u64,
    link: Link,
    host: &str,
    port: u16,
    laddr: String,
    start_off: u64,
    db: &mut usize,
) -> Result<(), String> {
    let Link { sock, mut buf } = link;
    let (mut rd, mut wr) = sock.into_split();
    let id = srv.next_client_id.fetch_add(1, Relaxed);
    let shared = ClientShared::new(id, format!("{}:{}", host, port), laddr, now_ms());
    *shared.flags.lock() = "M".into();
    let (tx, mut crx) = unbounded_channel();
    let mut mc = Client::new(shared.clone(), tx.clone());
    mc.authenticated = true;
    mc.repl.is_master = true;
    mc.db = *db;
    srv.clients.lock().insert(id, ClientHandle { tx, shared: shared.clone() });
    let mut reploff = start_off;
    {
        let mut r = srv.repl.replica.lock();
        if r.epoch != epoch {
            srv.clients.lock().remove(&id);
            return Ok(());
        }
        r.state = LinkState::Connected;
        r.master_client = id;
        r.reploff = reploff as i64;
        r.read_reploff = reploff as i64;
        r.last_io_ms = now_ms();
        r.down_since_ms = 0;
    }
    srv.repl.link_up.store(true, Relaxed);
    let timeout = srv.config.get_i64("repl-timeout").max(1) as u64;
    let mut parser = RespParser::new();
    let mut out = ReplyBuf::new(false);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let send_ack = |off: u64| {
        let mut b = Vec::new();
        rp::encode_command(&mut b, &[b"REPLCONF", b"ACK", off.to_string().as_bytes()]);
        b
    };
    let res: Result<(), String> = async {
        // Process what came with the sync reply first.
        let mut pending = !buf.is_empty();
        loop {
            if pending {
                pending = false;
                let mut pos = 0;
                let mut acks: Vec<u64> = Vec::new();
                let now = now_ms();
                let limits = ParseLimits { proto_max_bulk_len: i64::MAX, auth_required: false };
                loop {
                    match parser.parse(&buf[pos..], &limits) {
                        Ok(Parsed::Request { consumed }) => {
                            let args = parser.args(&buf[pos..]);
                            if args.is_empty() {
                                pos += consumed;
                                reploff += consumed as u64;
                                continue;
                            }
                            if args.len() >= 2
                                && args[0].eq_ignore_ascii_case(b"replconf")
                                && args[1].eq_ignore_ascii_case(b"getack")
                            {
                                acks.push(reploff);
                                srv.repl.feed_raw(&buf[pos..pos + consumed]);
                            } else {
                                rp::set_pending_raw(&buf[pos..pos + consumed]);
                                // The primary's stream never blocks or waits here: what a
                                // command asks of the connection is dropped.
                                let _ = execute_at(srv, &mut mc, args, &mut out, now);
                                if let Some(raw) = rp::take_pending_raw() {
                                    srv.repl.feed_raw(&raw);
                                }
                                out.buf.clear();
                            }
                            pos += consumed;
                            reploff += consumed as u64;
                        }
                        Ok(Parsed::Incomplete { .. }) => break,
                        Err(e) => return Err(format!("Protocol error from MASTER: {}", e.0)),
                    }
                }
                buf.advance(pos);
                {
                    let mut r = srv.repl.replica.lock();
                    if r.epoch != epoch {
                        return Ok(());
                    }
                    r.reploff = reploff as i64;
                    r.read_reploff = (reploff + buf.len() as u64) as i64;
                }
                for a in acks {
                    wr.write_all(&send_ack(a)).await.map_err(|e| format!("Error writing to MASTER: {}", e))?;
                }
            }
            tokio::select! {
                r = rd.read_buf(&mut buf) => {
                    match r {
                        Ok(0) => return Err("Connection with master lost.".into()),
                        Err(e) => return Err(format!("Connection with master lost: {}", e)),
                        Ok(n) => {
                            srv.counters.net_input_bytes.fetch_add(n as u64, Relaxed);
                            srv.repl.replica.lock().last_io_ms = now_ms();
                            pending = true;
                        }
                    }
                }
                _ = tick.tick() => {
                    if !current(srv, epoch) {
                        return Ok(());
                    }
                    let last = srv.repl.replica.lock().last_io_ms;
                    if now_ms().saturating_sub(last) > timeout * 1000 {
                        return Err("MASTER timeout: no data nor PING received...".into());
                    }
                    wr.write_all(&send_ack(reploff)).await.map_err(|e| format!("Error writing to MASTER: {}", e))?;
                }
                m = crx.recv() => {
                    if matches!(m, None | Some(ClientMsg::Kill)) {
                        return Err("Connection with master lost (killed).".into());
                    }
                }
            }
            if shared.kill.load(Relaxed) {
                return Err("Connection with master lost (killed).".into());
            }
        }
    }
    .await;
    *db = mc.db;
    srv.clients.lock().remove(&id);
    {
        let mut r = srv.repl.replica.lock();
        if r.master_client == id {
            r.master_client = 0;
        }
    }
    let _ = wr.shutdown().await;
    // What was read but not applied is dropped: the offset says where to continue.
    res
}
