//! Replication, primary side: a connection whose PSYNC/SYNC was accepted (`Then::Handover`)
//! is served here: +FULLRESYNC (and a point-in-time RDB, disk-backed `$<len>` or diskless
//! `$EOF:<mark>`) or +CONTINUE (backlog bytes), then the write stream, reading REPLCONF ACKs;
//! and WAIT's wait for acknowledgements.

use crate::client::{Client, ClientMsg};
use crate::node::now_ms;
use crate::persistence::log_line as log;
use crate::replication::{self as rp, ReplicaConn};
use crate::{persistence, Node};
use bytes::{Buf, Bytes, BytesMut};
use ferrocache_protocol::resp::{ParseLimits, Parsed, RespParser};
use std::io::Write;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

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
            // Err (`ReplSnapshotError`): Busy is a race lost to another snapshot; Start and
            // Spawn failures are retried the same way.
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
