//! `stats` groups (general, settings, items, slabs, sizes, conns) shared by the text and binary
//! protocols, `stats reset`, and the per-class slab accounting behind `stats items|slabs`.

use super::auth::auth_required;
use super::crawler::{CRAWLER_DISABLED, CRAWLER_RECLAIMED};
use super::{limits, memcached_engine, MC_VERSION};
use crate::node::{now_ms, Node};
use ferrocache_engine::mcitem::{self, slab_chunk_size, SLAB_CLASSES, SLAB_PAGE};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

pub(super) fn reset_stats(srv: &Node) {
    srv.mc.detail.clear();
    mcitem::reset_class_counters();
    for c in &CRAWLER_RECLAIMED {
        c.store(0, Relaxed);
    }
    let s = &srv.mc.stats;
    for c in [
        &s.cmd_get,
        &s.cmd_set,
        &s.cmd_flush,
        &s.cmd_touch,
        &s.cmd_meta,
        &s.get_hits,
        &s.get_misses,
        &s.get_expired,
        &s.get_flushed,
        &s.delete_misses,
        &s.delete_hits,
        &s.incr_misses,
        &s.incr_hits,
        &s.decr_misses,
        &s.decr_hits,
        &s.cas_misses,
        &s.cas_hits,
        &s.cas_badval,
        &s.touch_hits,
        &s.touch_misses,
        &s.store_too_large,
        &s.store_no_memory,
        &s.total_items,
        &s.total_connections,
        &s.rejected_connections,
        &s.bytes_read,
        &s.bytes_written,
        &s.auth_cmds,
        &s.auth_errors,
    ] {
        c.store(0, Relaxed);
    }
}

/// Per slab class: (live items, their memcached bytes), from a walk over database 0 one shard
/// at a time (no global lock; `stats items|slabs` are rare). Logically expired items are left
/// out, as memcached reuses their memory.
fn class_usage(srv: &Node) -> Vec<(u64, u64)> {
    let mut v = vec![(0u64, 0u64); SLAB_CLASSES];
    let now = now_ms();
    for i in 0..srv.ks.num_shards() {
        let g = srv.ks.lock_one(i);
        for e in g.dbs[0].iter() {
            if e.expire_at != 0 && e.expire_at <= now {
                continue;
            }
            if let Some((cls, size)) = mcitem::entry_class(e) {
                v[cls].0 += 1;
                v[cls].1 += size;
            }
        }
    }
    v
}

/// memcached never returns slab pages: the most pages a class ever needed (`total_pages`,
/// `total_malloced`), updated whenever the slab stats are read.
static CLASS_PAGES: [AtomicU64; SLAB_CLASSES] = [const { AtomicU64::new(0) }; SLAB_CLASSES];

fn chunks_per_page(cls: usize) -> u64 {
    (SLAB_PAGE / slab_chunk_size(cls)).max(1)
}

fn class_pages(cls: usize, used: u64) -> u64 {
    let need = used.div_ceil(chunks_per_page(cls));
    CLASS_PAGES[cls].fetch_max(need, Relaxed).max(need)
}

/// The `stats [group]` lines (None: unknown group).
pub fn stats_group(srv: &Arc<Node>, group: &[u8]) -> Option<Vec<(String, String)>> {
    let s = &srv.mc.stats;
    let g = |c: &AtomicU64| c.load(Relaxed).to_string();
    let now = now_ms();
    let mut v: Vec<(String, String)> = Vec::new();
    let mut push = |k: &str, val: String| v.push((k.to_string(), val));
    let maxbytes = srv.config.hot.maxmemory.load(Relaxed);
    let maxconns = srv.config.get_i64("memcached-max-connections");
    let curr_items = srv.ks.db_size(0);
    match group {
        b"" => {
            push("pid", std::process::id().to_string());
            push("uptime", ((now - srv.start_ms) / 1000).to_string());
            push("time", (now / 1000).to_string());
            push("version", MC_VERSION.to_string());
            push("libevent", "tokio".to_string());
            push("pointer_size", "64".to_string());
            let (u, sy) = rusage();
            push("rusage_user", u);
            push("rusage_system", sy);
            push("max_connections", maxconns.to_string());
            push("curr_connections", g(&s.curr_connections));
            push("total_connections", g(&s.total_connections));
            push("rejected_connections", g(&s.rejected_connections));
            push("connection_structures", g(&s.curr_connections));
            push("cmd_get", g(&s.cmd_get));
            push("cmd_set", g(&s.cmd_set));
            push("cmd_flush", g(&s.cmd_flush));
            push("cmd_touch", g(&s.cmd_touch));
            push("cmd_meta", g(&s.cmd_meta));
            push("get_hits", g(&s.get_hits));
            push("get_misses", g(&s.get_misses));
            push("get_expired", g(&s.get_expired));
            push("get_flushed", g(&s.get_flushed));
            push("delete_misses", g(&s.delete_misses));
            push("delete_hits", g(&s.delete_hits));
            push("incr_misses", g(&s.incr_misses));
            push("incr_hits", g(&s.incr_hits));
            push("decr_misses", g(&s.decr_misses));
            push("decr_hits", g(&s.decr_hits));
            push("cas_misses", g(&s.cas_misses));
            push("cas_hits", g(&s.cas_hits));
            push("cas_badval", g(&s.cas_badval));
            push("touch_hits", g(&s.touch_hits));
            push("touch_misses", g(&s.touch_misses));
            push("store_too_large", g(&s.store_too_large));
            push("store_no_memory", g(&s.store_no_memory));
            push("auth_cmds", g(&s.auth_cmds));
            push("auth_errors", g(&s.auth_errors));
            push("bytes_read", g(&s.bytes_read));
            push("bytes_written", g(&s.bytes_written));
            push("limit_maxbytes", maxbytes.to_string());
            push("accepting_conns", "1".into());
            push("listen_disabled_num", "0".into());
            push("time_in_listen_disabled_us", "0".into());
            push("threads", srv.threads.to_string());
            push("conn_yields", "0".into());
            push("bytes", ferrocache_engine::memory::used_memory().to_string());
            push("curr_items", curr_items.to_string());
            push("total_items", g(&s.total_items));
            push("evictions", srv.ks.stats().evicted.to_string());
            push("reclaimed", srv.ks.stats().expired.to_string());
            push("lrutail_reflocked", "0".into());
            push("lru_crawler_running", "0".into());
            push("log_watchers", srv.mc.watchers.count().to_string());
        }
        b"settings" => {
            push("maxbytes", maxbytes.to_string());
            push("maxconns", maxconns.to_string());
            push("tcpport", srv.config.get_i64("memcached-port").to_string());
            push("udpport", "0".into());
            push("verbosity", g(&srv.mc.verbosity));
            push("oldest", {
                let o = srv.mc.oldest_live.load(Relaxed);
                if o == 0 {
                    "0".into()
                } else {
                    ((now / 1000).saturating_sub(o)).to_string()
                }
            });
            push(
                "evictions",
                if memcached_engine(srv) || srv.config.policy() != ferrocache_engine::EvictionPolicy::NoEviction {
                    "on"
                } else {
                    "off"
                }
                .into(),
            );
            push("shutdown_command", "no".into());
            push("growth_factor", "1.25".into());
            push("chunk_size", "48".into());
            push("num_threads", srv.threads.to_string());
            push("cas_enabled", "yes".into());
            push("binding_protocol", "auto-negotiate".into());
            let auth = if auth_required(srv) { "yes" } else { "no" };
            push("auth_enabled_sasl", auth.into());
            push("auth_enabled_ascii", auth.into());
            push("item_size_max", limits(srv).item_size_max.to_string());
            push("lru_crawler", if CRAWLER_DISABLED.load(Relaxed) { "no" } else { "yes" }.into());
            push("flush_enabled", "yes".into());
            push("dump_enabled", "yes".into());
            push("engine", srv.config.get("engine").unwrap_or_default());
            push("maxmemory_policy", srv.config.policy().name().into());
        }
        b"items" => {
            let c = &mcitem::CLASS_COUNTERS;
            for (cls, (n, bytes)) in class_usage(srv).into_iter().enumerate() {
                if n == 0 {
                    continue;
                }
                let mut p = |k: &str, val: String| push(&format!("items:{cls}:{k}"), val);
                p("number", n.to_string());
                p("age", "0".into());
                p("mem_requested", bytes.to_string());
                p("evicted", c.evicted[cls].load(Relaxed).to_string());
                p("evicted_nonzero", "0".into());
                p("evicted_time", "0".into());
                p("outofmemory", "0".into());
                p("tailrepairs", "0".into());
                p("reclaimed", c.reclaimed[cls].load(Relaxed).to_string());
                p("crawler_reclaimed", CRAWLER_RECLAIMED[cls].load(Relaxed).to_string());
                p("expired_unfetched", "0".into());
                p("evicted_unfetched", "0".into());
            }
        }
        b"slabs" => {
            let mut active = 0;
            let mut malloced = 0;
            for (cls, (n, _)) in class_usage(srv).into_iter().enumerate() {
                let pages = class_pages(cls, n);
                if pages == 0 {
                    continue;
                }
                active += 1;
                malloced += pages * SLAB_PAGE;
                let per = chunks_per_page(cls);
                let mut p = |k: &str, val: String| push(&format!("{cls}:{k}"), val);
                p("chunk_size", slab_chunk_size(cls).to_string());
                p("chunks_per_page", per.to_string());
                p("total_pages", pages.to_string());
                p("total_chunks", (pages * per).to_string());
                p("used_chunks", n.to_string());
                p("free_chunks", (pages * per - n).to_string());
                p("free_chunks_end", "0".into());
            }
            push("active_slabs", active.to_string());
            push("total_malloced", malloced.to_string());
        }
        b"sizes" => push("sizes_status", "disabled".into()),
        b"conns" => {
            let conns = srv.mc.conns.lock();
            let mut ids: Vec<&u64> = conns.keys().collect();
            ids.sort();
            for id in ids {
                let c = &conns[id];
                push(&format!("{}:addr", id), format!("tcp:{}", c.addr));
                push(&format!("{}:listen_addr", id), format!("tcp:{}", c.listen_addr));
                push(&format!("{}:state", id), "conn_parse_cmd".into());
                push(
                    &format!("{}:secs_since_last_cmd", id),
                    ((now.saturating_sub(c.last_cmd_ms.load(Relaxed))) / 1000).to_string(),
                );
            }
        }
        _ => return None,
    }
    Some(v)
}

fn rusage() -> (String, String) {
    // /proc/self/stat fields 14 and 15: utime, stime in clock ticks (100 Hz on Linux).
    let txt = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = txt.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    let fmt = |t: u64| format!("{}.{:06}", t / 100, (t % 100) * 10_000);
    (fmt(tick(11)), fmt(tick(12)))
}

#[cfg(test)]
mod tests {
    use ferrocache_engine::mcitem::slab_class;

    #[test]
    fn slab_classes() {
        assert_eq!(slab_class(67), 1);
        assert_eq!(slab_class(96), 1);
        assert_eq!(slab_class(97), 2);
    }
}
