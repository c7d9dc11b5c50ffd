//! `lru_crawler` (crawl: reclaim expired items now; metadump: list the items) and `slabs`
//! (reassign / automove answers), with the crawler's enabled flag and per-class reclaims.

use super::store::{lookup, McExec};
use crate::node::{now_ms, Node};
use ferrocache_engine::mcitem::{self, FETCHED, SLAB_CLASSES};
use ferrocache_engine::Value;
use ferrocache_protocol::memcache::text::{self, TextReply};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// `lru_crawler` state: enabled (memcached 1.6's default) and per-class crawler reclaims.
pub(super) static CRAWLER_DISABLED: AtomicBool = AtomicBool::new(false);
pub(super) static CRAWLER_RECLAIMED: [AtomicU64; SLAB_CLASSES] = [const { AtomicU64::new(0) }; SLAB_CLASSES];

/// The classes named by `lru_crawler crawl|metadump <all|hash|1,2,...>` (None: BADCLASS).
fn crawler_classes(arg: &[u8]) -> Option<[bool; SLAB_CLASSES]> {
    let mut sel = [false; SLAB_CLASSES];
    if arg == b"all" || arg == b"hash" {
        return Some([true; SLAB_CLASSES]);
    }
    for part in arg.split(|&c| c == b',') {
        let id = ferrocache_protocol::memcache::num::safe_strtoul(part)? as usize;
        if id == 0 || id >= SLAB_CLASSES {
            return None;
        }
        sel[id] = true;
    }
    Some(sel)
}

/// The memcached items of database 0 in the selected classes, live or expired, one shard at a
/// time: (key, expire_at ms, atime secs, cas, fetched, class, size).
type CrawledItem = (Vec<u8>, u64, u32, u64, bool, usize, u64);

fn crawl(srv: &Node, sel: &[bool; SLAB_CLASSES], mut f: impl FnMut(CrawledItem)) {
    for i in 0..srv.ks.num_shards() {
        let g = srv.ks.lock_one(i);
        for e in g.dbs[0].iter() {
            let Some((cls, size)) = mcitem::entry_class(e) else { continue };
            let Value::Mc(m) = &e.value else { continue };
            if sel[cls] {
                f((e.key.to_vec(), e.expire_at, m.atime(), m.cas(), m.has(FETCHED), cls, size));
            }
        }
    }
}

/// memcached's `uriencode` (metadump keys).
pub(super) fn uriencode(key: &[u8], out: &mut Vec<u8>) {
    for &c in key {
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
            out.push(c);
        } else {
            out.extend_from_slice(format!("%{c:02X}").as_bytes());
        }
    }
}

pub(super) fn lru_crawler(srv: &Arc<Node>, args: &[&[u8]], out: &mut Vec<u8>) {
    let line = |out: &mut Vec<u8>, l: &str| text::encode_line(out, l.as_bytes(), false);
    let enabled = !CRAWLER_DISABLED.load(Relaxed);
    match args {
        [b"crawl", classes] => {
            if !enabled {
                return line(out, "CLIENT_ERROR lru crawler disabled");
            }
            let Some(sel) = crawler_classes(classes) else { return line(out, "BADCLASS invalid class id") };
            // Reclaim the expired items now (the crawl finishes before OK: lru_crawler_running
            // is never seen set). The lookup expires them through the engine's usual path.
            let now = now_ms();
            let mut expired = Vec::new();
            crawl(srv, &sel, |(key, exp, _, _, _, cls, _)| {
                if exp != 0 && exp <= now {
                    expired.push((key, cls));
                }
            });
            let ex = McExec::new(srv);
            for (key, cls) in expired {
                let (gone, _) = ex.with_key(&key, |_, db| {
                    let (found, expired) = lookup(db, &key, false);
                    (found.is_none(), expired)
                });
                if gone {
                    CRAWLER_RECLAIMED[cls].fetch_add(1, Relaxed);
                }
            }
            line(out, "OK");
        }
        [b"metadump", classes] => {
            if !enabled {
                return line(out, "CLIENT_ERROR lru crawler disabled");
            }
            if !out.is_empty() {
                return line(out, "ERROR cannot pipeline other commands before metadump");
            }
            let Some(sel) = crawler_classes(classes) else { return line(out, "BADCLASS invalid class id") };
            let now = now_ms();
            crawl(srv, &sel, |(key, exp, atime, cas, fetched, cls, size)| {
                if exp != 0 && exp <= now {
                    return;
                }
                out.extend_from_slice(b"key=");
                uriencode(&key, out);
                let exp = if exp == 0 { -1 } else { (exp / 1000) as i64 };
                let fetch = if fetched { "yes" } else { "no" };
                out.extend_from_slice(
                    format!(" exp={exp} la={atime} cas={cas} fetch={fetch} cls={cls} size={size}\n").as_bytes(),
                );
            });
            text::encode_end(out);
        }
        [b"tocrawl", n] | [b"sleep", n] => match ferrocache_protocol::memcache::num::safe_strtoul(n) {
            Some(v) if args[0] == b"sleep" && v > 1_000_000 => {
                line(out, "CLIENT_ERROR sleep must be one second or less")
            }
            Some(_) => line(out, "OK"),
            None => line(out, "CLIENT_ERROR bad command line format"),
        },
        [b"enable"] | [b"disable"] => {
            CRAWLER_DISABLED.store(args[0] == b"disable", Relaxed);
            line(out, "OK");
        }
        _ => TextReply::Error.encode(out, false),
    }
}

/// `slabs reassign|automove` (process_slabs_command). Ferrocache has no slab pages to move:
/// a reassignment always finds no spare page, as memcached does when a class has under two.
pub(super) fn slabs(args: &[&[u8]], out: &mut Vec<u8>) {
    use ferrocache_protocol::memcache::num::{safe_strtol, safe_strtoul};
    let line = |out: &mut Vec<u8>, l: &str| text::encode_line(out, l.as_bytes(), false);
    let noreply = args.last() == Some(&&b"noreply"[..]);
    match args {
        [b"reassign", src, dst] => {
            let (Some(src), Some(dst)) = (safe_strtol(src), safe_strtol(dst)) else {
                return line(out, "CLIENT_ERROR bad command line format");
            };
            let last = SLAB_CLASSES as i32 - 1;
            if !(0..=last).contains(&src) || !(0..=last).contains(&dst) {
                line(out, "BADCLASS invalid src or dst class id")
            } else if src == dst {
                line(out, "SAME src and dst class are identical")
            } else {
                line(out, "NOSPARE source class has no spare pages")
            }
        }
        [b"automove", rest @ ..] if !rest.is_empty() => {
            let reply = if rest[0] == b"ratio" {
                match rest.get(1).and_then(|r| std::str::from_utf8(r).ok()?.parse::<f64>().ok()) {
                    Some(_) => "OK",
                    None => "ERROR",
                }
            } else {
                match safe_strtoul(rest[0]) {
                    Some(0..=2) => "OK",
                    Some(_) => "ERROR",
                    None => "CLIENT_ERROR bad command line format",
                }
            };
            text::encode_line(out, reply.as_bytes(), noreply);
        }
        _ => TextReply::Error.encode(out, false),
    }
}
