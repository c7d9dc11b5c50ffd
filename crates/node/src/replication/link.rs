//! Replication, replica side: `link_loop` connects to the primary, does the handshake (PING,
//! AUTH, REPLCONF, PSYNC), loads the RDB and applies the stream through the executor as the
//! master client, ACKing every second and reconnecting with PSYNC on loss. REPLICAOF starts it
//! (`become_replica`).

use crate::client::{Client, ClientMsg, ClientShared};
use crate::client_registry::ClientHandle;
use crate::node::now_ms;
use crate::persistence::log_line as log;
use crate::replication::{self as rp, LinkState};
use crate::{execute_at, persistence, Node};
use bytes::{Buf, BytesMut};
use ferrocache_protocol::resp::{ParseLimits, Parsed, ReplyBuf, RespParser};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc::unbounded_channel;

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

pub(crate) async fn link_loop(srv: Arc<Node>, epoch: u64) {
    // The stream's db as the RDB loaded at startup recorded it (resume.rs), else 0.
    let mut db = usize::try_from(srv.repl.resume_db.swap(-1, Relaxed)).unwrap_or(0);
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
    // Redis's async loading: with repl-diskless-load swapdb and the master's replication id
    // ours (the old data set is an earlier point of the same history), the old data set is
    // served until the new one, loaded on the side, is swapped in. A failed transfer keeps it.
    let aside =
        srv.config.get("repl-diskless-load").as_deref() == Some("swapdb") && srv.repl.primary.lock().replid == id;
    let _async_loading = aside.then(|| AsyncLoading::start(srv));
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
    let srv2 = srv.clone();
    let id = id.to_string();
    let r = tokio::task::spawn_blocking(move || {
        let srv = srv2;
        let side = aside.then(|| srv.ks.sibling());
        let mut side_guards = side.as_ref().map(|k| k.lock_all());
        if let Some(sg) = side_guards.as_mut() {
            log('*', "MASTER <-> REPLICA sync: Loading DB in memory");
            if persistence::load_rdb_aside(&srv, &data[..], sg).is_err() {
                log('*', "MASTER <-> REPLICA sync: Discarding temporary DB in background");
                return false;
            }
        } else {
            log('*', "MASTER <-> REPLICA sync: Flushing old data");
        }
        persistence::abort_running(&srv, false);
        srv.repl.disconnect_replicas(&srv);
        srv.repl.ensure_backlog(&srv);
        let mut g = srv.ks.lock_all();
        let r = match side_guards.as_mut() {
            Some(sg) => {
                log('*', "MASTER <-> REPLICA sync: Swapping active DB with loaded DB");
                g.swap_dbs_with(sg);
                Ok((0, 0))
            }
            None => {
                for d in 0..srv.num_dbs() {
                    g.for_each_shard(|s| s.dbs[d] = Default::default());
                }
                log('*', "MASTER <-> REPLICA sync: Loading DB in memory");
                persistence::load_rdb(&srv, &data[..], &mut g)
            }
        };
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
        if side.is_some() {
            drop(side_guards);
            drop(side);
            log('*', "MASTER <-> REPLICA sync: Discarding old DB in background");
        }
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

/// INFO async_loading:1 while alive.
struct AsyncLoading(Arc<Node>);

impl AsyncLoading {
    fn start(srv: &Arc<Node>) -> AsyncLoading {
        srv.persist.async_loading.store(true, Relaxed);
        AsyncLoading(srv.clone())
    }
}

impl Drop for AsyncLoading {
    fn drop(&mut self) {
        self.0.persist.async_loading.store(false, Relaxed);
    }
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
    let id = srv.clients.new_id();
    let shared = ClientShared::new(id, format!("{}:{}", host, port), laddr, now_ms());
    *shared.flags.lock() = "M".into();
    let (tx, mut crx) = unbounded_channel();
    let mut mc = Client::new(shared.clone(), tx.clone());
    mc.authenticated = true;
    mc.repl.is_master = true;
    mc.db = *db;
    srv.clients.insert(id, ClientHandle { tx, shared: shared.clone() });
    let mut reploff = start_off;
    {
        let mut r = srv.repl.replica.lock();
        if r.epoch != epoch {
            srv.clients.remove(id);
            return Ok(());
        }
        r.state = LinkState::Connected;
        r.master_client = id;
        r.reploff = reploff as i64;
        r.read_reploff = reploff as i64;
        r.last_io_ms = now_ms();
        r.down_since_ms = 0;
    }
    *srv.repl.stream_point.lock() = super::resume::StreamPoint { db: mc.db, in_multi: false };
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
                                let _point = srv.repl.stream_point.lock();
                                srv.repl.feed_raw(&buf[pos..pos + consumed]);
                            } else {
                                // Applied and fed to the backlog as one step (resume.rs).
                                let mut point = srv.repl.stream_point.lock();
                                rp::set_pending_raw(&buf[pos..pos + consumed]);
                                // The primary's stream never blocks or waits here: what a
                                // command asks of the connection is dropped.
                                let _ = execute_at(srv, &mut mc, args, &mut out, now);
                                if let Some(raw) = rp::take_pending_raw() {
                                    srv.repl.feed_raw(&raw);
                                }
                                point.db = mc.db;
                                point.in_multi = mc.multi.is_some();
                                drop(point);
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
    srv.clients.remove(id);
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
