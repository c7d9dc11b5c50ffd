//! MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE] [AUTH password |
//! AUTH2 username password] [KEYS key ...] — Redis 7.0's migrateCommand: DUMP the keys, send
//! them to the target as RESTORE commands over a cached connection, and delete the ones the
//! target acknowledged (propagated as one DEL). Like Redis, the transfer is synchronous: the
//! keys' shards stay locked until the target answered or `timeout` passed.

use ferrocache_engine::notify;
use ferrocache_node::table::{flags::*, Command};
use ferrocache_node::util::{eq_ic, parse_i64, ERR_NOT_INT, ERR_SYNTAX};
use ferrocache_node::Ctx;
use ferrocache_protocol::resp::Args;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

pub static COMMANDS: &[Command] = &[Command::new("migrate", -6, WRITE, (3, 3, 1), migrate)
    .keys(ferrocache_node::command_docs::migrate_keys)
    .group("generic")];

/// A connection to a target kept for the next MIGRATE (migrateCachedSocket).
struct CachedSocket {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    /// The database selected on it (-1: unknown, SELECT next time).
    last_db: i64,
    last_use: Instant,
}

/// MIGRATE_SOCKET_CACHE_ITEMS and MIGRATE_SOCKET_CACHE_TTL.
const CACHE_ITEMS: usize = 64;
const CACHE_TTL: Duration = Duration::from_secs(10);

/// The cached connections by "host:port" (one process runs one node).
static SOCKETS: Mutex<Option<HashMap<String, CachedSocket>>> = Mutex::new(None);

/// `migrate_cached_sockets` in INFO stats.
pub fn cached_sockets() -> usize {
    let mut g = SOCKETS.lock();
    let m = g.get_or_insert_with(HashMap::new);
    m.retain(|_, s| s.last_use.elapsed() < CACHE_TTL);
    m.len()
}

struct Options {
    copy: bool,
    replace: bool,
    auth: Option<(Option<Vec<u8>>, Vec<u8>)>,
    first_key: usize,
}

fn parse_options(a: Args) -> Result<Options, &'static str> {
    let mut o = Options { copy: false, replace: false, auth: None, first_key: 3 };
    let mut j = 6;
    while j < a.len() {
        let more = a.len() - 1 - j;
        if eq_ic(&a[j], "copy") {
            o.copy = true;
        } else if eq_ic(&a[j], "replace") {
            o.replace = true;
        } else if eq_ic(&a[j], "auth") {
            if more < 1 {
                return Err(ERR_SYNTAX);
            }
            o.auth = Some((None, a[j + 1].to_vec()));
            j += 1;
        } else if eq_ic(&a[j], "auth2") {
            if more < 2 {
                return Err(ERR_SYNTAX);
            }
            o.auth = Some((Some(a[j + 1].to_vec()), a[j + 2].to_vec()));
            j += 2;
        } else if eq_ic(&a[j], "keys") {
            if !a[3].is_empty() {
                return Err("ERR When using MIGRATE KEYS option, the key argument must be set to the empty string");
            }
            o.first_key = j + 1;
            return Ok(o);
        } else {
            return Err(ERR_SYNTAX);
        }
        j += 1;
    }
    Ok(o)
}

fn bulk(buf: &mut Vec<u8>, b: &[u8]) {
    buf.extend_from_slice(format!("${}\r\n", b.len()).as_bytes());
    buf.extend_from_slice(b);
    buf.extend_from_slice(b"\r\n");
}

fn array(buf: &mut Vec<u8>, n: usize) {
    buf.extend_from_slice(format!("*{}\r\n", n).as_bytes());
}

/// Where a transfer failed on the socket (the reply names it).
enum IoErr {
    Write,
    Read { first_reply: bool, timed_out: bool },
}

fn connect(host: &[u8], port: &[u8], timeout: Duration) -> Option<CachedSocket> {
    let host = std::str::from_utf8(host).ok()?;
    let port: u16 = std::str::from_utf8(port).ok()?.parse().ok()?;
    let addr = (host, port).to_socket_addrs().ok()?.next()?;
    let s = TcpStream::connect_timeout(&addr, timeout).ok()?;
    s.set_nodelay(true).ok();
    Some(CachedSocket { reader: BufReader::new(s.try_clone().ok()?), writer: s, last_db: -1, last_use: Instant::now() })
}

fn read_line(s: &mut CachedSocket) -> Result<Vec<u8>, bool> {
    let mut line = Vec::new();
    match s.reader.read_until(b'\n', &mut line) {
        Ok(n) if n > 0 && line.ends_with(b"\n") => {
            while matches!(line.last(), Some(b'\r' | b'\n')) {
                line.pop();
            }
            Ok(line)
        }
        Ok(_) => Err(false),
        Err(e) => Err(matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)),
    }
}

fn migrate(ctx: &mut Ctx, a: Args) {
    let o = match parse_options(a) {
        Ok(o) => o,
        Err(e) => return ctx.out.error(e),
    };
    let (Some(timeout), Some(dbid)) = (parse_i64(&a[5]), parse_i64(&a[4])) else {
        return ctx.out.error(ERR_NOT_INT);
    };
    let timeout = Duration::from_millis(if timeout <= 0 { 1000 } else { timeout as u64 });
    let now = ctx.now_ms;
    // The keys that are here, with their remaining TTL and DUMP payload.
    let mut keys: Vec<(Vec<u8>, i64, Vec<u8>)> = Vec::new();
    {
        let (mut db, _) = ctx.parts();
        let last = if o.first_key == 3 { 4 } else { a.len() };
        for i in o.first_key..last {
            let k = &a[i];
            if let Some(e) = db.get(k) {
                let ttl = if e.expire_at == 0 { 0 } else { (e.expire_at as i64 - now as i64).max(1) };
                keys.push((k.to_vec(), ttl, crate::server_cmds::dump_value(&e.value)));
            }
        }
    }
    if keys.is_empty() {
        return ctx.out.simple("NOKEY");
    }
    let mut payload = Vec::new();
    if let Some((user, pass)) = &o.auth {
        array(&mut payload, if user.is_some() { 3 } else { 2 });
        bulk(&mut payload, b"AUTH");
        if let Some(u) = user {
            bulk(&mut payload, u);
        }
        bulk(&mut payload, pass);
    }
    let name = format!("{}:{}", String::from_utf8_lossy(&a[1]), String::from_utf8_lossy(&a[2]));
    let mut may_retry = true;
    loop {
        let mut sock = {
            let mut g = SOCKETS.lock();
            let m = g.get_or_insert_with(HashMap::new);
            match m.remove(&name).filter(|s| s.last_use.elapsed() < CACHE_TTL) {
                Some(s) => s,
                None => match connect(&a[1], &a[2], timeout) {
                    Some(s) => s,
                    None => return ctx.out.error("IOERR error or timeout connecting to the client"),
                },
            }
        };
        let _ = sock.writer.set_write_timeout(Some(timeout));
        let _ = sock.reader.get_ref().set_read_timeout(Some(timeout));
        let mut cmd = payload.clone();
        // In cluster mode the target may be importing the slot: RESTORE-ASKING (Redis 7.0).
        let restore: &[u8] = if ctx.srv.cluster().enabled { b"RESTORE-ASKING" } else { b"RESTORE" };
        let select = sock.last_db != dbid;
        if select {
            array(&mut cmd, 2);
            bulk(&mut cmd, b"SELECT");
            bulk(&mut cmd, dbid.to_string().as_bytes());
        }
        for (k, ttl, dump) in &keys {
            array(&mut cmd, if o.replace { 5 } else { 4 });
            bulk(&mut cmd, restore);
            bulk(&mut cmd, k);
            bulk(&mut cmd, ttl.to_string().as_bytes());
            bulk(&mut cmd, dump);
            if o.replace {
                bulk(&mut cmd, b"REPLACE");
            }
        }
        match transfer(&mut sock, &cmd, o.auth.is_some(), select, keys.len()) {
            Ok(replies) => {
                let mut target_error: Option<Vec<u8>> = None;
                let mut migrated = Vec::new();
                for (i, r) in replies.iter().enumerate() {
                    if let Some(e) = r.strip_prefix(b"-") {
                        target_error.get_or_insert_with(|| e.to_vec());
                    } else {
                        migrated.push(&keys[i].0);
                    }
                }
                sock.last_db = if target_error.is_some() { -1 } else { dbid };
                sock.last_use = Instant::now();
                cache(name, sock);
                if !o.copy && !migrated.is_empty() {
                    let (mut db, _) = ctx.parts();
                    let d = db.db;
                    let mut del = vec![b"DEL".to_vec()];
                    for k in migrated {
                        db.remove(k);
                        db.modified(k, notify::GENERIC, "del");
                        del.push(k.clone());
                    }
                    db.fx.propagate(d, del);
                }
                ctx.propagate_original = false;
                return match target_error {
                    None => ctx.out.ok(),
                    Some(e) => ctx
                        .out
                        .error(&format!("ERR Target instance replied with error: {}", String::from_utf8_lossy(&e))),
                };
            }
            Err(e) => {
                // A cached connection the target closed: reconnect once, unless a reply was
                // already read or it was a timeout.
                let retry = match e {
                    IoErr::Write => true,
                    IoErr::Read { first_reply, timed_out } => first_reply && !timed_out,
                };
                if retry && may_retry {
                    may_retry = false;
                    continue;
                }
                ctx.propagate_original = false;
                let what = if matches!(e, IoErr::Write) { "writing" } else { "reading" };
                return ctx.out.error(&format!("IOERR error or timeout {} to target instance", what));
            }
        }
    }
}

fn cache(name: String, sock: CachedSocket) {
    let mut g = SOCKETS.lock();
    let m = g.get_or_insert_with(HashMap::new);
    if m.len() >= CACHE_ITEMS {
        if let Some(k) = m.keys().next().cloned() {
            m.remove(&k);
        }
    }
    m.insert(name, sock);
}

/// Write the commands, then read the AUTH and SELECT replies (their errors stand for every
/// key) and one RESTORE reply per key.
fn transfer(s: &mut CachedSocket, cmd: &[u8], auth: bool, select: bool, n: usize) -> Result<Vec<Vec<u8>>, IoErr> {
    for chunk in cmd.chunks(64 * 1024) {
        s.writer.write_all(chunk).map_err(|_| IoErr::Write)?;
    }
    let mut head_error: Option<Vec<u8>> = None;
    for _ in 0..(auth as usize + select as usize) {
        let l = read_line(s).map_err(|t| IoErr::Read { first_reply: true, timed_out: t })?;
        if l.starts_with(b"-") && head_error.is_none() {
            head_error = Some(l);
        }
    }
    let mut replies = Vec::with_capacity(n);
    for i in 0..n {
        let l = read_line(s).map_err(|t| IoErr::Read { first_reply: i == 0, timed_out: t })?;
        replies.push(head_error.clone().unwrap_or(l));
    }
    Ok(replies)
}
