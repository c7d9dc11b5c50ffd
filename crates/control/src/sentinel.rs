//! A Sentinel-compatible endpoint: Sentinel-aware clients (redis-py `Sentinel`, Jedis, Lettuce,
//! ioredis) ask it where a group's primary and replicas are, and subscribe to `+switch-master`
//! to follow failovers — the answers come from the control plane's own view of its replication
//! groups (a [`Topology`]), not from a quorum of sentinels: the control plane is the one
//! authority that fails groups over.
//!
//! Speaks RESP2/RESP3 with Redis Sentinel 7.0's replies for PING, HELLO, AUTH, CLIENT, ROLE,
//! INFO, SENTINEL (MASTERS, MASTER, REPLICAS, SLAVES, SENTINELS, GET-MASTER-ADDR-BY-NAME, MYID,
//! CKQUORUM, FAILOVER, RESET, HELP), SUBSCRIBE/PSUBSCRIBE and their UN-forms, QUIT, RESET.

use ferrocache_protocol::resp::{Args, ParseLimits, Parsed, ReplyBuf, RespParser};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;

/// One replication group as Sentinel reports a monitored master.
#[derive(Clone, Debug, Default)]
pub struct MasterView {
    pub name: String,
    pub ip: String,
    pub port: u16,
    pub runid: String,
    /// The primary does not answer health checks.
    pub down: bool,
    pub failover_in_progress: bool,
    /// Bumped on every failover (Sentinel's config-epoch).
    pub config_epoch: u64,
    pub replicas: Vec<ReplicaView>,
}

#[derive(Clone, Debug, Default)]
pub struct ReplicaView {
    pub ip: String,
    pub port: u16,
    pub runid: String,
    pub down: bool,
    /// master_link_status:up on the replica.
    pub link_up: bool,
    pub offset: i64,
    pub priority: i64,
}

/// What the endpoint serves: the control plane's current view of its groups.
pub trait Topology: Send + Sync + 'static {
    fn masters(&self) -> Vec<MasterView>;
    /// SENTINEL FAILOVER: start a failover of the named group (Err: Sentinel's error line).
    fn failover(&self, name: &str) -> Result<(), String>;
}

/// The shared state of a Sentinel endpoint.
pub struct Sentinel {
    topology: Arc<dyn Topology>,
    events: broadcast::Sender<(String, String)>,
    myid: String,
    started: Instant,
    clients: std::sync::atomic::AtomicUsize,
}

const REDIS_VERSION: &str = "7.0.15";

impl Sentinel {
    pub fn new(topology: Arc<dyn Topology>) -> Arc<Sentinel> {
        let myid: String = (0..40).map(|_| format!("{:x}", rand::random::<u8>() & 15)).collect();
        let (events, _) = broadcast::channel(1024);
        Arc::new(Sentinel { topology, events, myid, started: Instant::now(), clients: Default::default() })
    }

    /// Publish a Sentinel event (channel = event type, e.g. `+switch-master`).
    pub fn publish(&self, channel: &str, message: String) {
        let _ = self.events.send((channel.to_string(), message));
    }

    /// `+switch-master <name> <old-ip> <old-port> <new-ip> <new-port>`, as Sentinel announces a
    /// completed failover.
    pub fn switch_master(&self, name: &str, old: (&str, u16), new: (&str, u16)) {
        self.publish("+switch-master", format!("{} {} {} {} {}", name, old.0, old.1, new.0, new.1));
    }

    /// Accept connections until the listener fails.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        loop {
            let Ok((sock, _)) = listener.accept().await else { continue };
            let me = self.clone();
            tokio::spawn(async move {
                me.clients.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let _ = me.connection(sock).await;
                me.clients.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            });
        }
    }

    async fn connection(&self, mut sock: TcpStream) -> std::io::Result<()> {
        let _ = sock.set_nodelay(true);
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let mut conn = Conn { id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed), ..Conn::default() };
        let mut events = self.events.subscribe();
        let mut buf: Vec<u8> = Vec::with_capacity(4096);
        let mut parser = RespParser::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            tokio::select! {
                n = sock.read(&mut chunk) => {
                    let n = n?;
                    if n == 0 {
                        return Ok(());
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let mut out = ReplyBuf::new(conn.resp3);
                    let mut used = 0;
                    loop {
                        match parser.parse(&buf[used..], &ParseLimits::default()) {
                            Ok(Parsed::Request { consumed }) => {
                                let args = parser.args(&buf[used..]);
                                if !args.is_empty() {
                                    out.resp3 = conn.resp3;
                                    self.command(&mut conn, args, &mut out);
                                }
                                used += consumed;
                                if conn.quit {
                                    break;
                                }
                            }
                            Ok(Parsed::Incomplete { .. }) => break,
                            Err(e) => {
                                out.error(&e.0);
                                conn.quit = true;
                                break;
                            }
                        }
                    }
                    buf.drain(..used);
                    sock.write_all(&out.buf).await?;
                    if conn.quit {
                        return Ok(());
                    }
                }
                ev = events.recv() => {
                    let Ok((channel, message)) = ev else { continue };
                    let mut out = ReplyBuf::new(conn.resp3);
                    if conn.channels.contains(&channel) {
                        out.push(3);
                        out.bulk(b"message");
                        out.bulk(channel.as_bytes());
                        out.bulk(message.as_bytes());
                    }
                    for p in &conn.patterns {
                        if ferrocache_engine::glob::glob_match(p.as_bytes(), channel.as_bytes(), false) {
                            out.push(4);
                            out.bulk(b"pmessage");
                            out.bulk(p.as_bytes());
                            out.bulk(channel.as_bytes());
                            out.bulk(message.as_bytes());
                        }
                    }
                    if !out.is_empty() {
                        sock.write_all(&out.buf).await?;
                    }
                }
            }
        }
    }

    fn command(&self, conn: &mut Conn, a: Args, out: &mut ReplyBuf) {
        let name = String::from_utf8_lossy(&a[0]).to_ascii_lowercase();
        let subscribed = !conn.channels.is_empty() || !conn.patterns.is_empty();
        if subscribed
            && !conn.resp3
            && !matches!(
                name.as_str(),
                "subscribe" | "psubscribe" | "unsubscribe" | "punsubscribe" | "ping" | "quit" | "reset"
            )
        {
            return out.error(&format!(
                "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                name
            ));
        }
        let arity_ok = |min: usize| a.len() >= min;
        match name.as_str() {
            "ping" if a.len() <= 2 => {
                if subscribed && !conn.resp3 {
                    out.array(2);
                    out.bulk(b"pong");
                    out.bulk(a.get(1).unwrap_or(b""));
                } else if a.len() == 2 {
                    out.bulk(&a[1]);
                } else {
                    out.simple("PONG");
                }
            }
            "quit" => {
                out.ok();
                conn.quit = true;
            }
            "reset" => {
                *conn = Conn { id: conn.id, ..Conn::default() };
                out.simple("RESET");
            }
            "auth" if arity_ok(2) => out.error("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"),
            "hello" => self.hello(conn, a, out),
            "client" if arity_ok(2) => self.client(conn, a, out),
            "role" if a.len() == 1 => {
                let masters = self.topology.masters();
                out.array(2);
                out.bulk(b"sentinel");
                out.array(masters.len());
                for m in masters {
                    out.bulk(m.name.as_bytes());
                }
            }
            "info" => out.bulk(self.info(a).as_bytes()),
            "sentinel" if arity_ok(2) => self.sentinel(a, out),
            "subscribe" | "psubscribe" if arity_ok(2) => {
                let pattern = name == "psubscribe";
                for ch in a.iter().skip(1) {
                    let ch = String::from_utf8_lossy(ch).into_owned();
                    if pattern {
                        conn.patterns.insert(ch.clone());
                    } else {
                        conn.channels.insert(ch.clone());
                    }
                    out.push(3);
                    out.bulk(name.as_bytes());
                    out.bulk(ch.as_bytes());
                    out.int((conn.channels.len() + conn.patterns.len()) as i64);
                }
            }
            "unsubscribe" | "punsubscribe" => {
                let pattern = name == "punsubscribe";
                let set = if pattern { &mut conn.patterns } else { &mut conn.channels };
                let targets: Vec<String> = if a.len() > 1 {
                    a.iter().skip(1).map(|c| String::from_utf8_lossy(c).into_owned()).collect()
                } else {
                    set.iter().cloned().collect()
                };
                if targets.is_empty() {
                    out.push(3);
                    out.bulk(name.as_bytes());
                    out.null();
                    out.int((conn.channels.len() + conn.patterns.len()) as i64);
                }
                for ch in targets {
                    if pattern {
                        conn.patterns.remove(&ch);
                    } else {
                        conn.channels.remove(&ch);
                    }
                    out.push(3);
                    out.bulk(name.as_bytes());
                    out.bulk(ch.as_bytes());
                    out.int((conn.channels.len() + conn.patterns.len()) as i64);
                }
            }
            "command" => out.array(0),
            "ping" | "auth" | "client" | "role" | "sentinel" | "subscribe" | "psubscribe" => {
                out.error(&format!("ERR wrong number of arguments for '{}' command", name))
            }
            _ => {
                let mut args = String::new();
                for x in a.iter().skip(1).take(128) {
                    args.push_str(&format!("'{}' ", String::from_utf8_lossy(x)));
                }
                out.error(&format!(
                    "ERR unknown command '{}', with args beginning with: {}",
                    String::from_utf8_lossy(&a[0]),
                    args
                ))
            }
        }
    }

    fn hello(&self, conn: &mut Conn, a: Args, out: &mut ReplyBuf) {
        if a.len() >= 2 {
            match std::str::from_utf8(&a[1]).ok().and_then(|s| s.parse::<i64>().ok()) {
                Some(2) => conn.resp3 = false,
                Some(3) => conn.resp3 = true,
                Some(_) => return out.error("NOPROTO unsupported protocol version"),
                None => return out.error("ERR Protocol version is not an integer or out of range"),
            }
        }
        out.resp3 = conn.resp3;
        out.map(7);
        out.bulk(b"server");
        out.bulk(b"redis");
        out.bulk(b"version");
        out.bulk(REDIS_VERSION.as_bytes());
        out.bulk(b"proto");
        out.int(if conn.resp3 { 3 } else { 2 });
        out.bulk(b"id");
        out.int(conn.id as i64);
        out.bulk(b"mode");
        out.bulk(b"sentinel");
        out.bulk(b"role");
        out.bulk(b"master");
        out.bulk(b"modules");
        out.array(0);
    }

    fn client(&self, conn: &mut Conn, a: Args, out: &mut ReplyBuf) {
        match String::from_utf8_lossy(&a[1]).to_ascii_lowercase().as_str() {
            "setname" if a.len() == 3 => {
                conn.name = String::from_utf8_lossy(&a[2]).into_owned();
                out.ok();
            }
            "getname" if a.len() == 2 => {
                if conn.name.is_empty() {
                    out.null();
                } else {
                    out.bulk(conn.name.as_bytes());
                }
            }
            "id" if a.len() == 2 => out.int(conn.id as i64),
            _ => out.error(&format!(
                "ERR unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
                String::from_utf8_lossy(&a[1])
            )),
        }
    }

    fn info(&self, a: Args) -> String {
        let wanted: Vec<String> = a.iter().skip(1).map(|s| String::from_utf8_lossy(s).to_ascii_lowercase()).collect();
        let all = wanted.is_empty() || wanted.iter().any(|w| w == "all" || w == "everything" || w == "default");
        let want = |s: &str| all || wanted.iter().any(|w| w == s);
        let mut sections = Vec::new();
        if want("server") {
            sections.push(format!(
                "# Server\r\nredis_version:{}\r\nredis_mode:sentinel\r\nprocess_id:{}\r\nuptime_in_seconds:{}\r\n",
                REDIS_VERSION,
                std::process::id(),
                self.started.elapsed().as_secs()
            ));
        }
        if want("clients") {
            sections.push(format!(
                "# Clients\r\nconnected_clients:{}\r\n",
                self.clients.load(std::sync::atomic::Ordering::Relaxed)
            ));
        }
        if want("sentinel") {
            let masters = self.topology.masters();
            let mut s = format!(
                "# Sentinel\r\nsentinel_masters:{}\r\nsentinel_tilt:0\r\nsentinel_tilt_since_seconds:-1\r\nsentinel_running_scripts:0\r\nsentinel_scripts_queue_length:0\r\nsentinel_simulate_failure_flags:0\r\n",
                masters.len()
            );
            for (i, m) in masters.iter().enumerate() {
                s.push_str(&format!(
                    "master{}:name={},status={},address={}:{},slaves={},sentinels=1\r\n",
                    i,
                    m.name,
                    if m.down { "odown" } else { "ok" },
                    m.ip,
                    m.port,
                    m.replicas.len()
                ));
            }
            sections.push(s);
        }
        sections.join("\r\n")
    }

    fn sentinel(&self, a: Args, out: &mut ReplyBuf) {
        let sub = String::from_utf8_lossy(&a[1]).to_ascii_lowercase();
        let master = |name: &[u8]| self.topology.masters().into_iter().find(|m| m.name.as_bytes() == name);
        let numargs =
            |out: &mut ReplyBuf| out.error(&format!("ERR wrong number of arguments for 'sentinel|{}' command", sub));
        match sub.as_str() {
            "masters" => {
                if a.len() != 2 {
                    return numargs(out);
                }
                let ms = self.topology.masters();
                out.array(ms.len());
                for m in &ms {
                    master_reply(out, m);
                }
            }
            "master" | "replicas" | "slaves" | "sentinels" | "ckquorum" | "failover" | "reset" => {
                if a.len() != 3 {
                    return numargs(out);
                }
                if sub == "reset" {
                    // Nothing is cached here to reset: the count of matching masters.
                    let n = self
                        .topology
                        .masters()
                        .iter()
                        .filter(|m| ferrocache_engine::glob::glob_match(&a[2], m.name.as_bytes(), false))
                        .count();
                    return out.int(n as i64);
                }
                let Some(m) = master(&a[2]) else { return out.error("ERR No such master with that name") };
                match sub.as_str() {
                    "master" => master_reply(out, &m),
                    "replicas" | "slaves" => {
                        out.array(m.replicas.len());
                        for r in &m.replicas {
                            replica_reply(out, &m, r);
                        }
                    }
                    // This endpoint is the only "sentinel" for its groups.
                    "sentinels" => out.array(0),
                    "ckquorum" => {
                        out.raw(b"+OK 1 usable Sentinels. Quorum and failover authorization can be reached\r\n")
                    }
                    _ => {
                        if m.failover_in_progress {
                            return out.error("INPROG Failover already in progress");
                        }
                        if !m.replicas.iter().any(|r| !r.down && r.link_up) {
                            return out.error("NOGOODSLAVE No suitable replica to promote");
                        }
                        match self.topology.failover(&m.name) {
                            Ok(()) => out.ok(),
                            Err(e) => out.error(&e),
                        }
                    }
                }
            }
            "get-master-addr-by-name" => {
                if a.len() != 3 {
                    return numargs(out);
                }
                match master(&a[2]) {
                    None => out.null_array(),
                    Some(m) => {
                        out.array(2);
                        out.bulk(m.ip.as_bytes());
                        out.bulk(m.port.to_string().as_bytes());
                    }
                }
            }
            "myid" if a.len() == 2 => out.bulk(self.myid.as_bytes()),
            "help" if a.len() == 2 => {
                let lines = [
                    "SENTINEL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                    "CKQUORUM <master-name>",
                    "    Check if the current Sentinel configuration is able to reach the quorum",
                    "    needed to failover a master and the majority needed to authorize the",
                    "    failover.",
                    "GET-MASTER-ADDR-BY-NAME <master-name>",
                    "    Return the ip and port number of the master with that name.",
                    "FAILOVER <master-name>",
                    "    Manually failover a master node without asking for agreement from other",
                    "    Sentinels",
                    "MASTER <master-name>",
                    "    Show the state and info of the specified master.",
                    "MASTERS",
                    "    Show a list of monitored masters and their state.",
                    "MYID",
                    "    Return the ID of the Sentinel instance.",
                    "REPLICAS <master-name>",
                    "    Show a list of replicas for this master and their state.",
                    "RESET <pattern>",
                    "    Reset masters for specific master name matching this pattern.",
                    "SENTINELS <master-name>",
                    "    Show a list of Sentinel instances for this master and their state.",
                    "HELP",
                    "    Print this help.",
                ];
                out.array(lines.len());
                for l in lines {
                    out.simple(l);
                }
            }
            // MONITOR / REMOVE / SET / CONFIG: the groups are defined through the control plane.
            "monitor" | "remove" | "set" | "config" | "flushconfig" => out.error(
                "ERR this Sentinel endpoint serves the control plane's replication groups: change them through its API",
            ),
            _ => out.error(&format!(
                "ERR unknown subcommand or wrong number of arguments for '{}'. Try SENTINEL HELP.",
                String::from_utf8_lossy(&a[1])
            )),
        }
    }
}

#[derive(Default)]
struct Conn {
    id: u64,
    resp3: bool,
    quit: bool,
    name: String,
    channels: BTreeSet<String>,
    patterns: BTreeSet<String>,
}

/// A flat field/value list (a map under RESP3), in Sentinel's order.
fn fields(out: &mut ReplyBuf, kv: &[(&str, String)]) {
    out.map(kv.len());
    for (k, v) in kv {
        out.bulk(k.as_bytes());
        out.bulk(v.as_bytes());
    }
}

fn master_reply(out: &mut ReplyBuf, m: &MasterView) {
    let mut flags = String::new();
    if m.down {
        flags.push_str("s_down,o_down,");
    }
    flags.push_str("master");
    if m.failover_in_progress {
        flags.push_str(",failover_in_progress");
    }
    fields(
        out,
        &[
            ("name", m.name.clone()),
            ("ip", m.ip.clone()),
            ("port", m.port.to_string()),
            ("runid", m.runid.clone()),
            ("flags", flags),
            ("link-pending-commands", "0".into()),
            ("link-refcount", "1".into()),
            ("last-ping-sent", "0".into()),
            ("last-ok-ping-reply", "0".into()),
            ("last-ping-reply", "0".into()),
            ("down-after-milliseconds", "1000".into()),
            ("info-refresh", "0".into()),
            ("role-reported", "master".into()),
            ("role-reported-time", "0".into()),
            ("config-epoch", m.config_epoch.to_string()),
            ("num-slaves", m.replicas.len().to_string()),
            ("num-other-sentinels", "0".into()),
            ("quorum", "1".into()),
            ("failover-timeout", "60000".into()),
            ("parallel-syncs", "1".into()),
        ],
    );
}

fn replica_reply(out: &mut ReplyBuf, m: &MasterView, r: &ReplicaView) {
    let flags = if r.down { "s_down,slave" } else { "slave" };
    fields(
        out,
        &[
            ("name", format!("{}:{}", r.ip, r.port)),
            ("ip", r.ip.clone()),
            ("port", r.port.to_string()),
            ("runid", r.runid.clone()),
            ("flags", flags.into()),
            ("link-pending-commands", "0".into()),
            ("link-refcount", "1".into()),
            ("last-ping-sent", "0".into()),
            ("last-ok-ping-reply", "0".into()),
            ("last-ping-reply", "0".into()),
            ("down-after-milliseconds", "1000".into()),
            ("info-refresh", "0".into()),
            ("role-reported", "slave".into()),
            ("role-reported-time", "0".into()),
            ("master-link-down-time", "0".into()),
            ("master-link-status", if r.link_up { "ok" } else { "err" }.into()),
            ("master-host", m.ip.clone()),
            ("master-port", m.port.to_string()),
            ("slave-priority", r.priority.to_string()),
            ("slave-repl-offset", r.offset.to_string()),
            ("replica-announced", "1".into()),
        ],
    );
}
