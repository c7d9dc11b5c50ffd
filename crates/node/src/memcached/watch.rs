//! `watch` log streams (memcached's logger.c): the [`Watchers`] registry, the line formats of
//! fetchers / mutations / evictions / connevents, and the `watch` command that turns a text
//! connection into a watcher.

use super::crawler::uriencode;
use super::store::{exp_of, Exp, McExec};
use super::{McConn, Outcome};
use crate::node::Node;
use ferrocache_engine::mcitem::{item_total_size, slab_class};
use ferrocache_protocol::memcache::text::{self, TextReply};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

/// `watch fetchers|mutations|...` log streams (memcached's logger.c): item_get / item_store
/// lines in memcached's format. A watcher that does not keep up loses lines (bounded queue).
#[derive(Default)]
pub struct Watchers {
    any: AtomicBool,
    /// (flags, queue, lines lost since the last delivered one).
    list: Mutex<Vec<(u16, tokio::sync::mpsc::Sender<Vec<u8>>, u64)>>,
    gid: AtomicU64,
}

pub const LOG_FETCHERS: u16 = 1;
pub const LOG_MUTATIONS: u16 = 2;
pub const LOG_EVICTIONS: u16 = 4;
pub const LOG_CONNEVENTS: u16 = 8;

/// A `connevents` line: `conn_new` (reason None) or `conn_close` with memcached's reason.
pub fn log_conn(srv: &Node, id: u64, peer: &std::net::SocketAddr, reason: Option<&str>) {
    let w = &srv.mc.watchers;
    if !w.wants(LOG_CONNEVENTS) {
        return;
    }
    let (ip, port) = (peer.ip(), peer.port());
    match reason {
        None => w.log(LOG_CONNEVENTS, format_args!("type=conn_new rip={ip} rport={port} transport=tcp cfd={id}")),
        Some(r) => w.log(
            LOG_CONNEVENTS,
            format_args!("type=conn_close rip={ip} rport={port} transport=tcp reason={r} cfd={id}"),
        ),
    }
}

/// An `evictions` line for a key of database 0 the engine evicted (its item is gone: the
/// fields memcached takes from it are reported empty).
pub fn log_eviction(srv: &Node, key: &[u8]) {
    let w = &srv.mc.watchers;
    if !w.wants(LOG_EVICTIONS) {
        return;
    }
    let k = uri_key(key);
    w.log(LOG_EVICTIONS, format_args!("type=eviction key={k} fetch=no ttl=-1 la=0 clsid=0 size=0"));
}

impl Watchers {
    fn add(&self, flags: u16) -> tokio::sync::mpsc::Receiver<Vec<u8>> {
        // About memcached's default 256 KB watcher buffer of ~200-byte lines.
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        let mut l = self.list.lock();
        l.push((flags, tx, 0));
        self.any.store(true, Relaxed);
        rx
    }

    /// Watchers now connected (`stats`: log_watchers).
    pub fn count(&self) -> usize {
        let mut l = self.list.lock();
        l.retain(|(_, tx, _)| !tx.is_closed());
        l.len()
    }

    #[inline]
    pub(super) fn wants(&self, flag: u16) -> bool {
        self.any.load(Relaxed) && self.list.lock().iter().any(|(f, _, _)| f & flag != 0)
    }

    fn log(&self, flag: u16, body: std::fmt::Arguments) {
        let gid = self.gid.fetch_add(1, Relaxed) + 1;
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let line = format!("ts={}.{} gid={gid} {body}\n", t.as_secs(), t.subsec_micros()).into_bytes();
        let mut l = self.list.lock();
        use tokio::sync::mpsc::error::TrySendError;
        l.retain_mut(|(f, tx, skipped)| {
            if *f & flag == 0 {
                return !tx.is_closed();
            }
            // memcached's logger: a watcher that fell behind first gets "skipped=N".
            if *skipped > 0 {
                match tx.try_send(format!("skipped={skipped}\n").into_bytes()) {
                    Ok(()) => *skipped = 0,
                    Err(TrySendError::Full(_)) => {
                        *skipped += 1;
                        return true;
                    }
                    Err(TrySendError::Closed(_)) => return false,
                }
            }
            match tx.try_send(line.clone()) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    *skipped += 1;
                    true
                }
                Err(TrySendError::Closed(_)) => false,
            }
        });
        self.any.store(!l.is_empty(), Relaxed);
    }
}

fn uri_key(key: &[u8]) -> String {
    let mut v = Vec::new();
    uriencode(key, &mut v);
    String::from_utf8(v).unwrap_or_default()
}

/// A fetchers line (`type=item_get`): `hit` = (slab class, value bytes).
pub(super) fn log_get(ex: &McExec, key: &[u8], hit: Option<(usize, usize)>) {
    let w = &ex.srv.mc.watchers;
    if !w.wants(LOG_FETCHERS) {
        return;
    }
    let (status, cls, n) = match hit {
        Some((c, n)) => ("found", c, n),
        None => ("not_found", 0, 0),
    };
    let k = uri_key(key);
    w.log(LOG_FETCHERS, format_args!("type=item_get key={k} status={status} clsid={cls} cfd={} size={n}", ex.conn));
}

/// A mutations line (`type=item_store`).
pub(super) fn log_store(ex: &McExec, key: &[u8], status: &str, cmd: &str, exptime: i64, flags: u32, n: usize) {
    let w = &ex.srv.mc.watchers;
    if !w.wants(LOG_MUTATIONS) {
        return;
    }
    let ttl = match exp_of(exptime, ex.now) {
        Exp::At(ms) => ms.saturating_sub(ex.now).div_ceil(1000),
        _ => 0,
    };
    let cls = slab_class(item_total_size(key.len(), flags, n));
    let k = uri_key(key);
    w.log(
        LOG_MUTATIONS,
        format_args!(
            "type=item_store key={k} status={status} cmd={cmd} ttl={ttl} clsid={cls} cfd={} size={n}",
            ex.conn
        ),
    );
}

/// `watch [fetchers|mutations|...]` (process_watch_command).
pub(super) fn watch(srv: &Node, conn: &McConn, args: &[&[u8]], out: &mut Vec<u8>) -> Outcome {
    let line = |out: &mut Vec<u8>, l: &str| text::encode_line(out, l.as_bytes(), false);
    if !out.is_empty() {
        line(out, "ERROR cannot pipeline other commands before watch");
        return Outcome::Continue;
    }
    let mut flags = 0u16;
    for a in args.iter().filter(|a| **a != b"noreply") {
        match *a {
            b"fetchers" => flags |= LOG_FETCHERS,
            b"mutations" => flags |= LOG_MUTATIONS,
            b"evictions" => flags |= LOG_EVICTIONS,
            b"connevents" => flags |= LOG_CONNEVENTS,
            b"rawcmds" | b"sysevents" | b"proxyreqs" | b"proxyevents" | b"proxyuser" => flags |= 0x100,
            _ => {
                TextReply::Error.encode(out, false);
                return Outcome::Continue;
            }
        }
    }
    if flags == 0 {
        flags = LOG_FETCHERS;
    }
    *conn.watch.lock() = Some(srv.mc.watchers.add(flags));
    line(out, "OK");
    Outcome::Watch
}
