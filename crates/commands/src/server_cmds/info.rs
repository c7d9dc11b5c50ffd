//! INFO: every section's text, as redis-server 7.0 lays it out, with the process figures
//! (RSS, CPU times) read from /proc.

#[allow(unused_imports)]
use super::*;

// ------------------------------------------------------------------ INFO

pub(crate) fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()))
        .map(|p| p * 4096)
        .unwrap_or(0)
}

pub(crate) fn cpu_times() -> (f64, f64) {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = s.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = 100.0;
    let u = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / tick;
    let sy = f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / tick;
    (sy, u)
}

pub(crate) fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b < 1024.0 {
        format!("{}B", bytes)
    } else if b < 1024.0 * 1024.0 {
        format!("{:.2}K", b / 1024.0)
    } else if b < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2}M", b / 1024.0 / 1024.0)
    } else {
        format!("{:.2}G", b / 1024.0 / 1024.0 / 1024.0)
    }
}

/// Build the INFO text for the given section names (lowercase; empty = default set).
pub fn info_text(ctx: &Ctx, sections: &[String]) -> String {
    let srv = ctx.srv;
    let default = [
        "server",
        "clients",
        "memory",
        "persistence",
        "stats",
        "replication",
        "cpu",
        "modules",
        "errorstats",
        "cluster",
        "keyspace",
    ];
    let all = sections.iter().any(|s| s == "all" || s == "everything");
    let want = |name: &str| -> bool {
        if (sections.is_empty() || sections.iter().any(|s| s == "default")) && default.contains(&name) {
            return true;
        }
        if all && name != "modules" || sections.iter().any(|s| s == "everything") {
            return true;
        }
        sections.iter().any(|s| s == name)
    };
    let mut o = String::new();
    let now = now_ms();
    let uptime = (now - srv.start_ms()) / 1000;
    if want("server") {
        let _ = write!(
            o,
            "# Server\r\nredis_version:{}\r\nferrocache_version:{}\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_build_id:0\r\nredis_mode:standalone\r\nos:{} {}\r\narch_bits:64\r\nmonotonic_clock:POSIX clock_gettime\r\nmultiplexing_api:epoll\r\natomicvar_api:c11-builtin\r\ngcc_version:0.0.0\r\nprocess_id:{}\r\nprocess_supervised:no\r\nrun_id:{}\r\ntcp_port:{}\r\nserver_time_usec:{}\r\nuptime_in_seconds:{}\r\nuptime_in_days:{}\r\nhz:{}\r\nconfigured_hz:{}\r\nlru_clock:{}\r\nexecutable:{}\r\nconfig_file:{}\r\nio_threads_active:0\r\nthreads:{}\r\n",
            REDIS_VERSION,
            env!("CARGO_PKG_VERSION"),
            std::env::consts::OS,
            std::env::consts::ARCH,
            std::process::id(),
            srv.run_id(),
            srv.config().get_i64("port"),
            now_us(),
            uptime,
            uptime / 86400,
            srv.config().get_i64("hz"),
            srv.config().get_i64("hz"),
            ferrocache_engine::keyspace::lru_clock(now),
            std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default(),
            srv.config().file.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
            srv.threads(),
        );
    }
    if want("clients") {
        if !o.is_empty() {
            o.push_str("\r\n");
        }
        // A killed client is gone for Redis (freed by CLIENT KILL) even while its task winds up.
        let clients = srv.clients().all();
        let n = clients.iter().filter(|c| !c.is_killed()).count();
        let pubsub = clients
            .iter()
            .filter(|c| c.shared.sub.load(Relaxed) + c.shared.psub.load(Relaxed) + c.shared.ssub.load(Relaxed) > 0)
            .count();
        let tracking = clients.iter().filter(|c| c.shared.tracking.lock().is_some()).count();
        drop(clients);
        let _ = write!(
            o,
            "# Clients\r\nconnected_clients:{}\r\ncluster_connections:0\r\nmaxclients:{}\r\nclient_recent_max_input_buffer:0\r\nclient_recent_max_output_buffer:0\r\nblocked_clients:{}\r\ntracking_clients:{}\r\nclients_in_timeout_table:0\r\npubsub_clients:{}\r\n",
            n,
            srv.config().hot.maxclients.load(Relaxed),
            srv.blocking().blocked_clients(),
            tracking,
            pubsub
        );
    }
    if want("memory") {
        if !o.is_empty() {
            o.push_str("\r\n");
        }
        let used = used_memory() as u64;
        let rss = rss_bytes();
        let max = srv.config().hot.maxmemory.load(Relaxed);
        let (nscripts, lua_eval) = srv.scripting().eval_stats();
        let (nlibs, nfuncs, lua_func) = srv.scripting().function_stats();
        let (mem_clients_normal, mem_clients_slaves) = srv.clients_memory();
        let mem_cluster_links = srv.cluster().link_table.memory();
        let _ = write!(
            o,
            "# Memory\r\nused_memory:{used}\r\nused_memory_human:{}\r\nused_memory_rss:{rss}\r\nused_memory_rss_human:{}\r\nused_memory_peak:{used}\r\nused_memory_peak_human:{}\r\nused_memory_peak_perc:100.00%\r\nused_memory_overhead:0\r\nused_memory_startup:0\r\nused_memory_dataset:{used}\r\nused_memory_dataset_perc:100.00%\r\nallocator_allocated:{used}\r\nallocator_active:{rss}\r\nallocator_resident:{rss}\r\ntotal_system_memory:{}\r\ntotal_system_memory_human:{}\r\nused_memory_lua:{lua_eval}\r\nused_memory_vm_eval:{lua_eval}\r\nused_memory_lua_human:{}\r\nused_memory_scripts_eval:0\r\nnumber_of_cached_scripts:{nscripts}\r\nnumber_of_functions:{nfuncs}\r\nnumber_of_libraries:{nlibs}\r\nused_memory_vm_functions:{lua_func}\r\nused_memory_vm_total:{}\r\nused_memory_vm_total_human:{}\r\nused_memory_functions:184\r\nused_memory_scripts:184\r\nused_memory_scripts_human:184B\r\nmaxmemory:{max}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:{}\r\nallocator_frag_ratio:1.00\r\nallocator_frag_bytes:0\r\nallocator_rss_ratio:1.00\r\nallocator_rss_bytes:0\r\nrss_overhead_ratio:1.00\r\nrss_overhead_bytes:0\r\nmem_fragmentation_ratio:{:.2}\r\nmem_fragmentation_bytes:{}\r\nmem_not_counted_for_evict:0\r\nmem_replication_backlog:0\r\nmem_total_replication_buffers:0\r\nmem_clients_slaves:{mem_clients_slaves}\r\nmem_clients_normal:{mem_clients_normal}\r\nmem_cluster_links:{mem_cluster_links}\r\nmem_aof_buffer:0\r\nmem_allocator:libc\r\nactive_defrag_running:0\r\nlazyfree_pending_objects:{}\r\nlazyfreed_objects:{}\r\n",
            human(used),
            human(rss),
            human(used),
            total_mem(),
            human(total_mem()),
            human(lua_eval),
            lua_eval + lua_func,
            human(lua_eval + lua_func),
            human(max),
            srv.config().policy().name(),
            if used > 0 { rss as f64 / used as f64 } else { 1.0 },
            rss as i64 - used as i64,
            ferrocache_engine::lazyfree::pending(),
            ferrocache_engine::lazyfree::freed(),
        );
    }
    if want("persistence") {
        if !o.is_empty() {
            o.push_str("\r\n");
        }
        let _ = write!(
            o,
            "# Persistence\r\n{}{}",
            ferrocache_node::persistence::info_persistence(srv),
            ferrocache_node::aof::info(srv),
        );
    }
    if want("stats") {
        if !o.is_empty() {
            o.push_str("\r\n");
        }
        let st = srv.keyspace().stats();
        let cs = stats::snapshot();
        let c = srv.counters();
        // One lock at a time: a guard temporary in write!'s arguments lives to the end of
        // the statement, and locking the same mutex twice there deadlocks.
        let (tracking_keys, tracking_items) = {
            let t = srv.tracking().table.lock();
            (t.len(), t.values().map(|s| s.len()).sum::<usize>())
        };
        let tracking_prefixes = srv.tracking().prefixes.lock().len();
        let _ = write!(
            o,
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\ninstantaneous_ops_per_sec:{}\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\ntotal_net_repl_input_bytes:0\r\ntotal_net_repl_output_bytes:0\r\ninstantaneous_input_kbps:0.00\r\ninstantaneous_output_kbps:0.00\r\ninstantaneous_input_repl_kbps:0.00\r\ninstantaneous_output_repl_kbps:0.00\r\nrejected_connections:{}\r\nsync_full:{}\r\nsync_partial_ok:{}\r\nsync_partial_err:{}\r\nexpired_keys:{}\r\nexpired_stale_perc:0.00\r\nexpired_time_cap_reached_count:0\r\nexpire_cycle_cpu_milliseconds:0\r\nevicted_keys:{}\r\nevicted_clients:0\r\ntotal_eviction_exceeded_time:0\r\ncurrent_eviction_exceeded_time:0\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\npubsub_channels:{}\r\npubsub_patterns:{}\r\npubsubshard_channels:{}\r\nlatest_fork_usec:0\r\ntotal_forks:0\r\nmigrate_cached_sockets:0\r\nslave_expires_tracked_keys:0\r\nactive_defrag_hits:0\r\nactive_defrag_misses:0\r\nactive_defrag_key_hits:0\r\nactive_defrag_key_misses:0\r\ntotal_active_defrag_time:0\r\ncurrent_active_defrag_time:0\r\ntracking_total_keys:{}\r\ntracking_total_items:{}\r\ntracking_total_prefixes:{}\r\nunexpected_error_replies:0\r\ntotal_error_replies:{}\r\ndump_payload_sanitizations:0\r\ntotal_reads_processed:{}\r\ntotal_writes_processed:{}\r\nio_threaded_reads_processed:0\r\nio_threaded_writes_processed:0\r\nreply_buffer_shrinks:0\r\nreply_buffer_expands:0\r\nclient_query_buffer_limit_disconnections:{}\r\n",
            c.total_connections_received.load(Relaxed),
            cs.total_commands,
            instantaneous_ops(ctx, cs.total_commands),
            c.net_input_bytes.load(Relaxed),
            c.net_output_bytes.load(Relaxed),
            c.rejected_connections.load(Relaxed),
            ctx.srv.repl().sync_full.load(Relaxed),
            ctx.srv.repl().sync_partial_ok.load(Relaxed),
            ctx.srv.repl().sync_partial_err.load(Relaxed),
            st.expired,
            st.evicted,
            st.hits,
            st.misses,
            srv.pubsub().channels.read().len(),
            srv.pubsub().patterns.read().len(),
            srv.pubsub().shard_channels.read().len(),
            tracking_keys,
            tracking_items,
            tracking_prefixes,
            c.total_error_replies.load(Relaxed) + cs.rejected_unknown + cs.cmds.values().map(|s| s.rejected).sum::<u64>(),
            cs.total_commands,
            cs.total_commands,
            c.client_query_buffer_limit_disconnections.load(Relaxed),
        );
    }
    if want("replication") {
        if !o.is_empty() {
            o.push_str("\r\n");
        }
        o.push_str("# Replication\r\n");
        o.push_str(&ferrocache_node::replication::info_replication(srv));
    }
    if want("cpu") {
        if !o.is_empty() {
            o.push_str("\r\n");
        }
        let (sys, user) = cpu_times();
        let _ = write!(
            o,
            "# CPU\r\nused_cpu_sys:{:.6}\r\nused_cpu_user:{:.6}\r\nused_cpu_sys_children:0.000000\r\nused_cpu_user_children:0.000000\r\nused_cpu_sys_main_thread:{:.6}\r\nused_cpu_user_main_thread:{:.6}\r\n",
            sys, user, sys, user
        );
    }
    if want("modules") {
        if !o.is_empty() {
            o.push_str("\r\n");
        }
        o.push_str("# Modules\r\n");
    }
    if want("commandstats") {
        if !o.is_empty() {
            o.push_str("\r\n");
        }
        o.push_str("# Commandstats\r\n");
        let cs = stats::snapshot();
        let mut v: Vec<_> = cs.cmds.iter().collect();
        v.sort_by_key(|(k, _)| *k);
        for (name, s) in v {
            if s.calls == 0 && s.rejected == 0 && s.failed == 0 {
                continue;
            }
            let _ = write!(
                o,
                "cmdstat_{}:calls={},usec={},usec_per_call={:.2},rejected_calls={},failed_calls={}\r\n",
                name,
                s.calls,
                s.usec,
                if s.calls > 0 { s.usec as f64 / s.calls as f64 } else { 0.0 },
                s.rejected,
                s.failed
            );
        }
    }
    if want("errorstats") {
        if !o.is_empty() {
            o.push_str("\r\n");
        }
        o.push_str("# Errorstats\r\n");
        let cs = stats::snapshot();
        let mut v: Vec<_> = cs.errors.iter().filter(|(_, n)| **n > 0).collect();
        v.sort();
        for (code, n) in v {
            let _ = write!(o, "errorstat_{}:count={}\r\n", code, n);
        }
    }
    if want("cluster") {
        if !o.is_empty() {
            o.push_str("\r\n");
        }
        let on = srv.cluster().enabled as u8;
        let _ = write!(o, "# Cluster\r\ncluster_enabled:{}\r\n", on);
    }
    if want("keyspace") {
        if !o.is_empty() {
            o.push_str("\r\n");
        }
        o.push_str("# Keyspace\r\n");
        for (i, (keys, expires)) in srv.keyspace().db_counts().into_iter().enumerate() {
            if keys > 0 {
                let _ = write!(o, "db{}:keys={},expires={},avg_ttl=0\r\n", i, keys, expires);
            }
        }
    }
    o
}

pub(crate) fn total_mem() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| s.lines().next().and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok())))
        .map(|k| k * 1024)
        .unwrap_or(0)
}

pub(crate) fn instantaneous_ops(ctx: &Ctx, total: u64) -> u64 {
    ctx.srv.ops_sample().rate(total)
}

pub(crate) fn info(ctx: &mut Ctx, a: Args) {
    let sections: Vec<String> = a.iter().skip(1).map(|s| String::from_utf8_lossy(s).to_lowercase()).collect();
    let text = info_text(ctx, &sections);
    ctx.out.verbatim(text.as_bytes());
}
