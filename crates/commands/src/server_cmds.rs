//! Node commands: INFO, COMMAND, CONFIG, TIME, LASTSAVE, SLOWLOG, LATENCY, MEMORY, MONITOR,
//! SHUTDOWN, DEBUG.

use ferrocache_engine::memory::used_memory;
use ferrocache_engine::Value;
use ferrocache_node::node::{now_ms, now_us};
use ferrocache_node::subcommand_required;
use ferrocache_node::table::{flags::*, table, Command};
use ferrocache_node::util::*;
use ferrocache_node::{stats, Ctx};
use ferrocache_protocol::resp::{Args, ReplyBuf};
use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

/// The Redis version we are compatible with (reported where clients look for it).
pub use ferrocache_node::node::REDIS_VERSION;
const G: &str = "server";
const ADM: u64 = ADMIN | NOSCRIPT | LOADING | STALE;

pub static COMMANDS: &[Command] = &[
    Command::new("info", -1, LOADING | STALE, (0, 0, 0), info).group(G),
    Command::new("command", -1, LOADING | STALE, (0, 0, 0), command_all).group(G).subs(COMMAND_SUBS),
    Command::new("config", -2, 0, (0, 0, 0), subcommand_required).group(G).subs(CONFIG_SUBS),
    Command::new("time", 1, LOADING | STALE | FAST, (0, 0, 0), time).group(G),
    Command::new("lastsave", 1, LOADING | STALE | FAST, (0, 0, 0), lastsave).group(G),
    Command::new("role", 1, NOSCRIPT | LOADING | STALE | FAST, (0, 0, 0), role).group(G),
    Command::new("slowlog", -2, 0, (0, 0, 0), subcommand_required).group(G).subs(SLOWLOG_SUBS),
    Command::new("latency", -2, 0, (0, 0, 0), subcommand_required).group(G).subs(LATENCY_SUBS),
    Command::new("memory", -2, 0, (0, 0, 0), subcommand_required).group(G).subs(MEMORY_SUBS),
    Command::new("monitor", 1, ADM, (0, 0, 0), monitor).group(G),
    Command::new("debug", -2, ADM, (0, 0, 0), debug).group(G),
    Command::new("module", -2, 0, (0, 0, 0), subcommand_required).group(G).subs(MODULE_SUBS),
    Command::new("lolwut", -1, READONLY | FAST, (0, 0, 0), lolwut).group(G),
];

static MODULE_SUBS: &[Command] = &[
    Command::new("module|help", 2, LOADING | STALE, (0, 0, 0), module_help).group(G),
    Command::new("module|list", 2, ADMIN | NOSCRIPT, (0, 0, 0), module_list).group(G),
    Command::new("module|load", -3, ADMIN | NOSCRIPT, (0, 0, 0), module_load).group(G),
    Command::new("module|loadex", -3, ADMIN | NOSCRIPT, (0, 0, 0), module_load).group(G),
    Command::new("module|unload", 3, ADMIN | NOSCRIPT, (0, 0, 0), module_unload).group(G),
];

static COMMAND_SUBS: &[Command] = &[
    Command::new("command|count", 2, LOADING | STALE, (0, 0, 0), command_count).group(G),
    Command::new("command|info", -2, LOADING | STALE, (0, 0, 0), command_info).group(G),
    Command::new("command|docs", -2, LOADING | STALE, (0, 0, 0), command_docs).group(G),
    Command::new("command|list", -2, LOADING | STALE, (0, 0, 0), command_list).group(G),
    Command::new("command|getkeys", -4, LOADING | STALE, (0, 0, 0), command_getkeys).group(G),
    Command::new("command|getkeysandflags", -4, LOADING | STALE, (0, 0, 0), command_getkeysandflags).group(G),
    Command::new("command|help", 2, LOADING | STALE, (0, 0, 0), command_help).group(G),
];

static CONFIG_SUBS: &[Command] = &[
    Command::new("config|get", -3, ADM, (0, 0, 0), config_get).group(G),
    Command::new("config|set", -4, ADM, (0, 0, 0), config_set).group(G),
    Command::new("config|resetstat", 2, ADM, (0, 0, 0), config_resetstat).group(G),
    Command::new("config|rewrite", 2, ADM, (0, 0, 0), config_rewrite).group(G),
    Command::new("config|help", 2, LOADING | STALE, (0, 0, 0), config_help).group(G),
];

static SLOWLOG_SUBS: &[Command] = &[
    Command::new("slowlog|get", -2, ADMIN | LOADING | STALE, (0, 0, 0), slowlog_get).group(G),
    Command::new("slowlog|len", 2, ADMIN | LOADING | STALE, (0, 0, 0), slowlog_len).group(G),
    Command::new("slowlog|reset", 2, ADMIN | LOADING | STALE, (0, 0, 0), slowlog_reset).group(G),
    Command::new("slowlog|help", 2, LOADING | STALE, (0, 0, 0), slowlog_help).group(G),
];

static LATENCY_SUBS: &[Command] = &[
    Command::new("latency|latest", 2, ADM, (0, 0, 0), latency_latest).group(G),
    Command::new("latency|reset", -2, ADM, (0, 0, 0), latency_reset).group(G),
    Command::new("latency|history", 3, ADM, (0, 0, 0), latency_history).group(G),
    Command::new("latency|doctor", 2, ADM, (0, 0, 0), latency_doctor).group(G),
    Command::new("latency|help", 2, LOADING | STALE, (0, 0, 0), latency_help).group(G),
];

static MEMORY_SUBS: &[Command] = &[
    Command::new("memory|usage", -3, READONLY, (2, 2, 1), memory_usage).group(G),
    Command::new("memory|stats", 2, 0, (0, 0, 0), memory_stats).group(G),
    Command::new("memory|doctor", 2, 0, (0, 0, 0), memory_doctor).group(G),
    Command::new("memory|malloc-stats", 2, 0, (0, 0, 0), memory_malloc_stats).group(G),
    Command::new("memory|purge", 2, 0, (0, 0, 0), memory_purge).group(G),
    Command::new("memory|help", 2, LOADING | STALE, (0, 0, 0), memory_help).group(G),
];

fn help(out: &mut ReplyBuf, lines: &[&str]) {
    out.array(lines.len());
    for l in lines {
        out.simple(l);
    }
}

// ------------------------------------------------------------------ INFO

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()))
        .map(|p| p * 4096)
        .unwrap_or(0)
}

fn cpu_times() -> (f64, f64) {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = s.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = 100.0;
    let u = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / tick;
    let sy = f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / tick;
    (sy, u)
}

fn human(bytes: u64) -> String {
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
    let uptime = (now - srv.start_ms) / 1000;
    if want("server") {
        let _ = write!(
            o,
            "# Server\r\nredis_version:{}\r\nferrocache_version:{}\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_build_id:0\r\nredis_mode:standalone\r\nos:{} {}\r\narch_bits:64\r\nmonotonic_clock:POSIX clock_gettime\r\nmultiplexing_api:epoll\r\natomicvar_api:c11-builtin\r\ngcc_version:0.0.0\r\nprocess_id:{}\r\nprocess_supervised:no\r\nrun_id:{}\r\ntcp_port:{}\r\nserver_time_usec:{}\r\nuptime_in_seconds:{}\r\nuptime_in_days:{}\r\nhz:{}\r\nconfigured_hz:{}\r\nlru_clock:{}\r\nexecutable:{}\r\nconfig_file:{}\r\nio_threads_active:0\r\nthreads:{}\r\n",
            REDIS_VERSION,
            env!("CARGO_PKG_VERSION"),
            std::env::consts::OS,
            std::env::consts::ARCH,
            std::process::id(),
            srv.run_id,
            srv.config.get_i64("port"),
            now_us(),
            uptime,
            uptime / 86400,
            srv.config.get_i64("hz"),
            srv.config.get_i64("hz"),
            ferrocache_engine::keyspace::lru_clock(now),
            std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default(),
            srv.config.file.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
            srv.threads,
        );
    }
    if want("clients") {
        if !o.is_empty() {
            o.push_str("\r\n");
        }
        let clients = srv.clients.lock();
        // A killed client is gone for Redis (freed by CLIENT KILL) even while its task winds up.
        let n = clients.values().filter(|c| !c.shared.kill.load(Relaxed)).count();
        let pubsub = clients
            .values()
            .filter(|c| c.shared.sub.load(Relaxed) + c.shared.psub.load(Relaxed) + c.shared.ssub.load(Relaxed) > 0)
            .count();
        let tracking = clients.values().filter(|c| c.shared.tracking.lock().is_some()).count();
        drop(clients);
        let _ = write!(
            o,
            "# Clients\r\nconnected_clients:{}\r\ncluster_connections:0\r\nmaxclients:{}\r\nclient_recent_max_input_buffer:0\r\nclient_recent_max_output_buffer:0\r\nblocked_clients:{}\r\ntracking_clients:{}\r\nclients_in_timeout_table:0\r\npubsub_clients:{}\r\n",
            n,
            srv.config.hot.maxclients.load(Relaxed),
            srv.blocking.blocked_clients(),
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
        let max = srv.config.hot.maxmemory.load(Relaxed);
        let (nscripts, lua_eval) = srv.scripting.eval_stats();
        let (nlibs, nfuncs, lua_func) = srv.scripting.function_stats();
        let (mem_clients_normal, mem_clients_slaves) = srv.clients_memory();
        let _ = write!(
            o,
            "# Memory\r\nused_memory:{used}\r\nused_memory_human:{}\r\nused_memory_rss:{rss}\r\nused_memory_rss_human:{}\r\nused_memory_peak:{used}\r\nused_memory_peak_human:{}\r\nused_memory_peak_perc:100.00%\r\nused_memory_overhead:0\r\nused_memory_startup:0\r\nused_memory_dataset:{used}\r\nused_memory_dataset_perc:100.00%\r\nallocator_allocated:{used}\r\nallocator_active:{rss}\r\nallocator_resident:{rss}\r\ntotal_system_memory:{}\r\ntotal_system_memory_human:{}\r\nused_memory_lua:{lua_eval}\r\nused_memory_vm_eval:{lua_eval}\r\nused_memory_lua_human:{}\r\nused_memory_scripts_eval:0\r\nnumber_of_cached_scripts:{nscripts}\r\nnumber_of_functions:{nfuncs}\r\nnumber_of_libraries:{nlibs}\r\nused_memory_vm_functions:{lua_func}\r\nused_memory_vm_total:{}\r\nused_memory_vm_total_human:{}\r\nused_memory_functions:184\r\nused_memory_scripts:184\r\nused_memory_scripts_human:184B\r\nmaxmemory:{max}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:{}\r\nallocator_frag_ratio:1.00\r\nallocator_frag_bytes:0\r\nallocator_rss_ratio:1.00\r\nallocator_rss_bytes:0\r\nrss_overhead_ratio:1.00\r\nrss_overhead_bytes:0\r\nmem_fragmentation_ratio:{:.2}\r\nmem_fragmentation_bytes:{}\r\nmem_not_counted_for_evict:0\r\nmem_replication_backlog:0\r\nmem_total_replication_buffers:0\r\nmem_clients_slaves:{mem_clients_slaves}\r\nmem_clients_normal:{mem_clients_normal}\r\nmem_cluster_links:0\r\nmem_aof_buffer:0\r\nmem_allocator:libc\r\nactive_defrag_running:0\r\nlazyfree_pending_objects:{}\r\nlazyfreed_objects:{}\r\n",
            human(used),
            human(rss),
            human(used),
            total_mem(),
            human(total_mem()),
            human(lua_eval),
            lua_eval + lua_func,
            human(lua_eval + lua_func),
            human(max),
            srv.config.policy().name(),
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
        let st = srv.ks.stats();
        let cs = stats::snapshot();
        let c = &srv.counters;
        // One lock at a time: a guard temporary in write!'s arguments lives to the end of
        // the statement, and locking the same mutex twice there deadlocks.
        let (tracking_keys, tracking_items) = {
            let t = srv.tracking.table.lock();
            (t.len(), t.values().map(|s| s.len()).sum::<usize>())
        };
        let tracking_prefixes = srv.tracking.prefixes.lock().len();
        let _ = write!(
            o,
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\ninstantaneous_ops_per_sec:{}\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\ntotal_net_repl_input_bytes:0\r\ntotal_net_repl_output_bytes:0\r\ninstantaneous_input_kbps:0.00\r\ninstantaneous_output_kbps:0.00\r\ninstantaneous_input_repl_kbps:0.00\r\ninstantaneous_output_repl_kbps:0.00\r\nrejected_connections:{}\r\nsync_full:{}\r\nsync_partial_ok:{}\r\nsync_partial_err:{}\r\nexpired_keys:{}\r\nexpired_stale_perc:0.00\r\nexpired_time_cap_reached_count:0\r\nexpire_cycle_cpu_milliseconds:0\r\nevicted_keys:{}\r\nevicted_clients:0\r\ntotal_eviction_exceeded_time:0\r\ncurrent_eviction_exceeded_time:0\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\npubsub_channels:{}\r\npubsub_patterns:{}\r\npubsubshard_channels:{}\r\nlatest_fork_usec:0\r\ntotal_forks:0\r\nmigrate_cached_sockets:0\r\nslave_expires_tracked_keys:0\r\nactive_defrag_hits:0\r\nactive_defrag_misses:0\r\nactive_defrag_key_hits:0\r\nactive_defrag_key_misses:0\r\ntotal_active_defrag_time:0\r\ncurrent_active_defrag_time:0\r\ntracking_total_keys:{}\r\ntracking_total_items:{}\r\ntracking_total_prefixes:{}\r\nunexpected_error_replies:0\r\ntotal_error_replies:{}\r\ndump_payload_sanitizations:0\r\ntotal_reads_processed:{}\r\ntotal_writes_processed:{}\r\nio_threaded_reads_processed:0\r\nio_threaded_writes_processed:0\r\nreply_buffer_shrinks:0\r\nreply_buffer_expands:0\r\nclient_query_buffer_limit_disconnections:{}\r\n",
            c.total_connections_received.load(Relaxed),
            cs.total_commands,
            instantaneous_ops(ctx, cs.total_commands),
            c.net_input_bytes.load(Relaxed),
            c.net_output_bytes.load(Relaxed),
            c.rejected_connections.load(Relaxed),
            ctx.srv.repl.sync_full.load(Relaxed),
            ctx.srv.repl.sync_partial_ok.load(Relaxed),
            ctx.srv.repl.sync_partial_err.load(Relaxed),
            st.expired,
            st.evicted,
            st.hits,
            st.misses,
            srv.pubsub.channels.read().len(),
            srv.pubsub.patterns.read().len(),
            srv.pubsub.shard_channels.read().len(),
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
        let on = srv.cluster.enabled as u8;
        let _ = write!(o, "# Cluster\r\ncluster_enabled:{}\r\n", on);
    }
    if want("keyspace") {
        if !o.is_empty() {
            o.push_str("\r\n");
        }
        o.push_str("# Keyspace\r\n");
        for (i, (keys, expires)) in srv.ks.db_counts().into_iter().enumerate() {
            if keys > 0 {
                let _ = write!(o, "db{}:keys={},expires={},avg_ttl=0\r\n", i, keys, expires);
            }
        }
    }
    o
}

fn total_mem() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| s.lines().next().and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok())))
        .map(|k| k * 1024)
        .unwrap_or(0)
}

fn instantaneous_ops(ctx: &Ctx, total: u64) -> u64 {
    let mut s = ctx.srv.ops_sample.lock();
    let now = now_ms();
    let (last_total, last_ms, ref mut hist) = *s;
    if now > last_ms + 100 {
        let rate = (total.saturating_sub(last_total)) as f64 * 1000.0 / (now - last_ms) as f64;
        hist.push_back(rate);
        while hist.len() > 16 {
            hist.pop_front();
        }
        s.0 = total;
        s.1 = now;
    }
    let h = &s.2;
    if h.is_empty() {
        0
    } else {
        (h.iter().sum::<f64>() / h.len() as f64) as u64
    }
}

fn info(ctx: &mut Ctx, a: Args) {
    let sections: Vec<String> = a.iter().skip(1).map(|s| String::from_utf8_lossy(s).to_lowercase()).collect();
    let text = info_text(ctx, &sections);
    ctx.out.verbatim(text.as_bytes());
}

// ------------------------------------------------------------------ COMMAND

fn command_entry(out: &mut ReplyBuf, c: &Command) {
    ferrocache_node::command_docs::reply_info(out, c)
}

fn sorted_commands() -> Vec<&'static Command> {
    let mut v: Vec<_> = table().iter().collect();
    v.sort_by_key(|c| c.name);
    v
}

fn command_all(ctx: &mut Ctx, a: Args) {
    if a.len() > 1 {
        return ctx
            .out
            .error(&format!("ERR unknown subcommand '{}'. Try COMMAND HELP.", String::from_utf8_lossy(&a[1])));
    }
    let cmds = sorted_commands();
    ctx.out.array(cmds.len());
    for c in cmds {
        command_entry(ctx.out, c);
    }
}

fn command_count(ctx: &mut Ctx, _a: Args) {
    ctx.out.int(table().by_name.len() as i64);
}

fn find_command(name: &[u8]) -> Option<&'static Command> {
    let s = String::from_utf8_lossy(name).to_lowercase();
    if let Some((parent, sub)) = s.split_once('|') {
        let p = table().lookup(parent.as_bytes())?;
        return ferrocache_node::table::lookup_sub(p, sub.as_bytes());
    }
    table().lookup(s.as_bytes())
}

fn command_info(ctx: &mut Ctx, a: Args) {
    if a.len() == 2 {
        return command_all(ctx, a.from(1).from(1));
    }
    ctx.out.array(a.len() - 2);
    for n in a.iter().skip(2) {
        match find_command(n) {
            Some(c) => command_entry(ctx.out, c),
            None => ctx.out.null(),
        }
    }
}

fn command_docs(ctx: &mut Ctx, a: Args) {
    let cmds: Vec<&'static Command> =
        if a.len() == 2 { sorted_commands() } else { a.iter().skip(2).filter_map(find_command).collect() };
    ctx.out.map(cmds.len());
    for c in cmds {
        ctx.out.bulk(c.name.as_bytes());
        ferrocache_node::command_docs::reply_docs(ctx.out, c);
    }
}

fn command_list(ctx: &mut Ctx, a: Args) {
    let mut filter: Option<(String, String)> = None;
    if a.len() == 5 && eq_ic(&a[2], "filterby") {
        filter = Some((String::from_utf8_lossy(&a[3]).to_lowercase(), String::from_utf8_lossy(&a[4]).to_string()));
    } else if a.len() != 2 {
        return ctx.out.error(ERR_SYNTAX);
    }
    let mut names: Vec<&str> = Vec::new();
    // commandListWithFilter: every command, then its subcommands (by full name).
    for c in sorted_commands().into_iter().flat_map(|c| std::iter::once(c).chain(c.subcommands.iter())) {
        let ok = match &filter {
            None => true,
            // No modules are loaded: a module filter matches nothing.
            Some((k, _)) if k == "module" => false,
            Some((k, v)) if k == "aclcat" => c.categories().iter().any(|x| x[1..].eq_ignore_ascii_case(v)),
            Some((k, v)) if k == "pattern" => {
                ferrocache_engine::glob::glob_match(v.as_bytes(), c.name.as_bytes(), true)
            }
            Some(_) => return ctx.out.error(ERR_SYNTAX),
        };
        if ok {
            names.push(c.name);
        }
    }
    ctx.out.array(names.len());
    for n in names {
        ctx.out.bulk(n.as_bytes());
    }
}

fn getkeys_common(ctx: &mut Ctx, a: Args, with_flags: bool) {
    let sub = a.from(2);
    let Some(c) = table().lookup(&sub[0]) else {
        return ctx.out.error("ERR Invalid command specified");
    };
    // lookupCommand: a container with more arguments must name a known subcommand.
    let c = if !c.subcommands.is_empty() && sub.len() >= 2 {
        match ferrocache_node::table::lookup_sub(c, &sub[1]) {
            Some(s) => s,
            None => return ctx.out.error("ERR Invalid command specified"),
        }
    } else {
        c
    };
    if !ferrocache_node::command_docs::has_keys(c) {
        return ctx.out.error("ERR The command has no key arguments");
    }
    if !c.arity_ok(sub.len()) {
        return ctx.out.error("ERR Invalid number of arguments specified for command");
    }
    let keys = match ferrocache_node::command_docs::getkeys(c, sub) {
        Ok(k) => k,
        Err(_) => return ctx.out.error("ERR Invalid arguments specified for command"),
    };
    ctx.out.array(keys.len());
    for (p, f) in keys {
        if with_flags {
            ctx.out.array(2);
            ctx.out.bulk(&sub[p]);
            ferrocache_node::command_docs::reply_key_flags(ctx.out, f);
        } else {
            ctx.out.bulk(&sub[p]);
        }
    }
}

fn command_getkeys(ctx: &mut Ctx, a: Args) {
    getkeys_common(ctx, a, false)
}
fn command_getkeysandflags(ctx: &mut Ctx, a: Args) {
    getkeys_common(ctx, a, true)
}

fn command_help(ctx: &mut Ctx, _a: Args) {
    help(
        ctx.out,
        &[
            "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "(no subcommand)",
            "    Return details about all Redis commands.",
            "COUNT",
            "    Return the total number of commands in this Redis server.",
            "LIST",
            "    Return a list of all commands in this Redis server.",
            "INFO [<command-name> ...]",
            "    Return details about multiple Redis commands.",
            "DOCS [<command-name> ...]",
            "    Return documentation details about multiple Redis commands.",
            "GETKEYS <full-command>",
            "    Return the keys from a full Redis command.",
            "GETKEYSANDFLAGS <full-command>",
            "    Return the keys and the access flags from a full Redis command.",
            "HELP",
            "    Prints this help.",
        ],
    );
}

// ------------------------------------------------------------------ CONFIG

fn config_get(ctx: &mut Ctx, a: Args) {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for p in a.iter().skip(2) {
        for kv in ctx.srv.config.matching(&String::from_utf8_lossy(p)) {
            if !pairs.iter().any(|x| x.0 == kv.0) {
                pairs.push(kv);
            }
        }
    }
    ctx.out.map(pairs.len());
    for (k, v) in pairs {
        ctx.out.bulk(k.as_bytes());
        ctx.out.bulk(v.as_bytes());
    }
}

fn config_set(ctx: &mut Ctx, a: Args) {
    if !a.len().is_multiple_of(2) {
        return ctx.wrong_arity();
    }
    // All-or-nothing, as Redis 7: validate every pair first.
    let mut seen: Vec<String> = vec![];
    for i in (2..a.len()).step_by(2) {
        let name = String::from_utf8_lossy(&a[i]).to_lowercase();
        let canon = ferrocache_node::config::find_spec(&name).map(|s| s.name.to_string()).unwrap_or(name.clone());
        if seen.contains(&canon) {
            return ctx.out.error(&format!(
                "ERR CONFIG SET failed (possibly related to argument '{}') - duplicate parameter",
                name
            ));
        }
        if ferrocache_node::config::PROTECTED.contains(&canon.as_str())
            && !allow_protected(ctx, "enable-protected-configs")
        {
            return ctx.out.error(&format!(
                "ERR CONFIG SET failed (possibly related to argument '{}') - can't set protected config",
                name
            ));
        }
        seen.push(canon);
    }
    let mut old: Vec<(String, String)> = vec![];
    for i in (2..a.len()).step_by(2) {
        let name = String::from_utf8_lossy(&a[i]).to_string();
        let val = String::from_utf8_lossy(&a[i + 1]).to_string();
        let prev = ctx.srv.config.get(&name);
        if let Err(e) = ctx.srv.config.set_runtime(&name, &val) {
            for (n, v) in old {
                let _ = ctx.srv.config.set_runtime(&n, &v);
            }
            return ctx.out.error(&e.0);
        }
        if let Some(p) = prev {
            old.push((name, p));
        }
    }
    // Redis's apply functions: a port that cannot be bound undoes the whole CONFIG SET.
    let port_changed = seen.iter().any(|n| n == "port")
        && old.iter().any(|(n, v)| n.eq_ignore_ascii_case("port") && ctx.srv.config.get("port").as_deref() != Some(v));
    if port_changed {
        if let Err(e) = ferrocache_node::listeners::change_port(ctx.srv) {
            for (n, v) in old {
                let _ = ctx.srv.config.set_runtime(&n, &v);
            }
            return ctx.out.error(&format!("ERR CONFIG SET failed (possibly related to argument 'port') - {}", e));
        }
    }
    if let Err(e) = ferrocache_node::aof::config_changed(ctx, &seen) {
        return ctx.out.error(&e);
    }
    ferrocache_node::acl::config_changed(ctx.srv, &seen);
    // Redis's updateMaxmemory evicts at once down to the new limit (performEvictions), so the
    // evicted events are out before the reply. Inside EXEC/scripts shard locks are held: the
    // next write evicts instead.
    if seen.iter().any(|n| n == "maxmemory") && !ctx.client.in_exec {
        ferrocache_node::ensure_memory(ctx.srv, ferrocache_node::node::now_ms());
    }
    ctx.out.ok();
}

fn config_resetstat(ctx: &mut Ctx, _a: Args) {
    stats::reset();
    ctx.srv.ks.reset_stats();
    ferrocache_engine::lazyfree::reset_stats();
    let c = &ctx.srv.counters;
    c.total_connections_received.store(0, Relaxed);
    c.rejected_connections.store(0, Relaxed);
    c.net_input_bytes.store(0, Relaxed);
    c.net_output_bytes.store(0, Relaxed);
    c.total_error_replies.store(0, Relaxed);
    c.pubsub_messages.store(0, Relaxed);
    c.evicted_keys.store(0, Relaxed);
    ctx.srv.slowlog.lock().1.clear();
    ctx.srv.latency.lock().clear();
    ctx.out.ok();
}

fn config_rewrite(ctx: &mut Ctx, _a: Args) {
    let Some(path) = ctx.srv.config.file.clone() else {
        return ctx.out.error("ERR The server is running without a config file");
    };
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let mut lines: Vec<String> = Vec::new();
    let mut written: Vec<&str> = Vec::new();
    let all = ctx.srv.config.all();
    // ACL users replace the old `user` lines (none are written when an aclfile is used).
    let mut user_lines = ferrocache_node::acl::config_user_lines(ctx.srv);
    for l in old.lines() {
        let t = l.trim();
        let name = t.split_whitespace().next().unwrap_or("").to_lowercase();
        if name == "user" {
            lines.extend(user_lines.take().unwrap_or_default());
            continue;
        }
        if t.starts_with('#') || name.is_empty() {
            if !t.starts_with("# Generated by CONFIG REWRITE") {
                lines.push(l.to_string());
            }
            continue;
        }
        match ferrocache_node::config::find_spec(&name) {
            Some(spec) => {
                if written.contains(&spec.name) {
                    continue;
                }
                let v = all.iter().find(|x| x.0 == spec.name).map(|x| x.1.clone()).unwrap_or_default();
                lines.push(format!("{} {}", spec.name, quote_config(spec.name, &v)));
                written.push(spec.name);
            }
            None => lines.push(l.to_string()),
        }
    }
    let mut header = false;
    for (name, v, is_default) in all.iter() {
        if *is_default || written.contains(name) {
            continue;
        }
        if !header {
            lines.push("# Generated by CONFIG REWRITE".into());
            header = true;
        }
        lines.push(format!("{} {}", name, quote_config(name, v)));
    }
    if let Some(u) = user_lines.take().filter(|u| !u.is_empty()) {
        if !header {
            lines.push("# Generated by CONFIG REWRITE".into());
        }
        lines.extend(u);
    }
    let mut text = lines.join("\n");
    text.push('\n');
    let tmp = path.with_extension("tmp-rewrite");
    if let Err(e) = std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, &path)) {
        return ctx.out.error(&format!("ERR Rewriting config file: {}", e));
    }
    ctx.out.ok();
}

fn quote_config(name: &str, v: &str) -> String {
    if let Some(spec) = ferrocache_node::config::find_spec(name) {
        if matches!(spec.kind, ferrocache_node::config::Kind::Memory) {
            if let Ok(n) = v.parse::<i64>() {
                return ferrocache_node::config::format_memory_for_rewrite(n);
            }
        }
    }
    if name == "save" || name == "bind" || name == "client-output-buffer-limit" {
        if v.is_empty() {
            return "\"\"".into();
        }
        return v.to_string();
    }
    if v.is_empty() || v.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'') {
        format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        v.to_string()
    }
}

fn config_help(ctx: &mut Ctx, _a: Args) {
    help(
        ctx.out,
        &[
            "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
            "HELP",
            "    Prints this help.",
        ],
    );
}

// ------------------------------------------------------------------ misc

fn time(ctx: &mut Ctx, _a: Args) {
    let us = now_us();
    ctx.out.array(2);
    ctx.out.bulk((us / 1_000_000).to_string().as_bytes());
    ctx.out.bulk((us % 1_000_000).to_string().as_bytes());
}

/// ROLE of a master without replicas: ["master", replication offset, []].
fn role(ctx: &mut Ctx, _a: Args) {
    ctx.out.array(3);
    ctx.out.bulk(b"master");
    ctx.out.int(0);
    ctx.out.array(0);
}

fn lastsave(ctx: &mut Ctx, _a: Args) {
    ctx.out.int(ctx.srv.last_save.load(Relaxed) as i64);
}

fn slowlog_get(ctx: &mut Ctx, a: Args) {
    let mut count = 10i64;
    if a.len() == 3 {
        match parse_i64(&a[2]) {
            Some(n) if n >= -1 => count = n,
            _ => return ctx.out.error("ERR count should be greater than or equal to -1"),
        }
    } else if a.len() > 3 {
        return ctx.wrong_arity();
    }
    let sl = ctx.srv.slowlog.lock();
    let n = if count == -1 { sl.1.len() } else { (count as usize).min(sl.1.len()) };
    ctx.out.array(n);
    for e in sl.1.iter().take(n) {
        ctx.out.array(6);
        ctx.out.int(e.id as i64);
        ctx.out.int(e.time as i64);
        ctx.out.int(e.micros as i64);
        ctx.out.array(e.args.len());
        for x in &e.args {
            ctx.out.bulk(x);
        }
        ctx.out.bulk(e.addr.as_bytes());
        ctx.out.bulk(e.name.as_bytes());
    }
}

fn slowlog_len(ctx: &mut Ctx, _a: Args) {
    let n = ctx.srv.slowlog.lock().1.len();
    ctx.out.int(n as i64);
}

fn slowlog_reset(ctx: &mut Ctx, _a: Args) {
    ctx.srv.slowlog.lock().1.clear();
    ctx.out.ok();
}

fn slowlog_help(ctx: &mut Ctx, _a: Args) {
    help(
        ctx.out,
        &[
            "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GET [<count>]",
            "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
            "    Entries are made of:",
            "    id, timestamp, time in microseconds, arguments array, client IP and port,",
            "    client name",
            "LEN",
            "    Return the length of the slowlog.",
            "RESET",
            "    Reset the slowlog.",
            "HELP",
            "    Prints this help.",
        ],
    );
}

fn latency_latest(ctx: &mut Ctx, _a: Args) {
    let l = ctx.srv.latency.lock();
    ctx.out.array(l.len());
    for (name, (t, max, hist)) in l.iter() {
        ctx.out.array(4);
        ctx.out.bulk(name.as_bytes());
        ctx.out.int(*t as i64);
        ctx.out.int(hist.back().map(|x| x.1).unwrap_or(0) as i64);
        ctx.out.int(*max as i64);
    }
}

fn latency_reset(ctx: &mut Ctx, a: Args) {
    let mut l = ctx.srv.latency.lock();
    let n = if a.len() == 2 {
        let n = l.len();
        l.clear();
        n
    } else {
        a.iter().skip(2).filter(|e| l.remove(&String::from_utf8_lossy(e).to_string()).is_some()).count()
    };
    ctx.out.int(n as i64);
}

fn latency_history(ctx: &mut Ctx, a: Args) {
    let l = ctx.srv.latency.lock();
    match l.get(&String::from_utf8_lossy(&a[2]).to_string()) {
        None => ctx.out.empty_array(),
        Some((_, _, hist)) => {
            ctx.out.array(hist.len());
            for (t, v) in hist {
                ctx.out.array(2);
                ctx.out.int(*t as i64);
                ctx.out.int(*v as i64);
            }
        }
    }
}

fn latency_doctor(ctx: &mut Ctx, _a: Args) {
    ctx.out.verbatim(b"Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sleep tonight.\n");
}

fn latency_help(ctx: &mut Ctx, _a: Args) {
    help(
        ctx.out,
        &[
            "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "DOCTOR",
            "    Return a human readable latency analysis report.",
            "GRAPH <event>",
            "    Return an ASCII latency graph for the <event> class.",
            "HISTORY <event>",
            "    Return time-latency samples for the <event> class.",
            "LATEST",
            "    Return the latest latency samples for all events.",
            "RESET [<event> ...]",
            "    Reset latency data of one or more <event> classes.",
            "    (default: reset all data for all event classes)",
            "HELP",
            "    Prints this help.",
        ],
    );
}

fn memory_usage(ctx: &mut Ctx, a: Args) {
    if a.len() == 5 {
        if !eq_ic(&a[3], "samples") {
            return ctx.out.error(ERR_SYNTAX);
        }
        if int_arg(ctx.out, &a[4]).is_none() {
            return;
        }
    } else if a.len() != 3 {
        return ctx.out.error(ERR_SYNTAX);
    }
    let key = a[2].to_vec();
    let (mut db, out) = ctx.parts();
    match db.peek(&key) {
        None => out.null(),
        Some(e) => {
            let base = 72 + if e.key.is_inline() { 0 } else { e.key.len() };
            out.int((base + e.value.mem_usage()) as i64)
        }
    }
}

fn memory_stats(ctx: &mut Ctx, _a: Args) {
    let used = used_memory() as i64;
    let counts = ctx.srv.ks.db_counts();
    let keys: usize = counts.iter().map(|c| c.0).sum();
    let out = &mut *ctx.out;
    let dbs: Vec<_> = counts.iter().enumerate().filter(|(_, c)| c.0 > 0).collect();
    out.map(23 + dbs.len());
    for (k, v) in [
        ("peak.allocated", used),
        ("total.allocated", used),
        ("startup.allocated", 0),
        ("replication.backlog", 0),
        ("clients.slaves", 0),
        ("clients.normal", 0),
        ("cluster.links", 0),
        ("aof.buffer", 0),
        ("lua.caches", 0),
        ("functions.caches", 0),
        ("overhead.total", 0),
    ] {
        out.bulk(k.as_bytes());
        out.int(v);
    }
    for (i, c) in dbs {
        out.bulk(format!("db.{}", i).as_bytes());
        out.map(2);
        out.bulk(b"overhead.hashtable.main");
        out.int(c.0 as i64 * 16);
        out.bulk(b"overhead.hashtable.expires");
        out.int(c.1 as i64 * 16);
    }
    out.bulk(b"keys.count");
    out.int(keys as i64);
    out.bulk(b"keys.bytes-per-key");
    out.int(if keys > 0 { used / keys as i64 } else { 0 });
    out.bulk(b"dataset.bytes");
    out.int(used);
    out.bulk(b"dataset.percentage");
    out.double(100.0);
    out.bulk(b"peak.percentage");
    out.double(100.0);
    for k in ["allocator.allocated", "allocator.active", "allocator.resident"] {
        out.bulk(k.as_bytes());
        out.int(used);
    }
    out.bulk(b"allocator-fragmentation.ratio");
    out.double(1.0);
    out.bulk(b"allocator-fragmentation.bytes");
    out.int(0);
    out.bulk(b"allocator.rss-ratio");
    out.double(1.0);
    out.bulk(b"allocator.rss-bytes");
    out.int(0);
    out.bulk(b"rss-overhead.ratio");
    out.double(1.0);
    out.bulk(b"fragmentation");
    out.double(1.0);
}

fn memory_doctor(ctx: &mut Ctx, _a: Args) {
    ctx.out.verbatim(
        b"Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.\n",
    );
}

fn memory_malloc_stats(ctx: &mut Ctx, _a: Args) {
    ctx.out.verbatim(
        format!("Stats not supported for the current allocator (mimalloc); used={}\n", used_memory()).as_bytes(),
    );
}

fn memory_purge(ctx: &mut Ctx, _a: Args) {
    ctx.out.ok();
}

fn memory_help(ctx: &mut Ctx, _a: Args) {
    help(
        ctx.out,
        &[
            "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "DOCTOR",
            "    Return memory problems reports.",
            "MALLOC-STATS",
            "    Return internal statistics report from the memory allocator.",
            "PURGE",
            "    Attempt to purge dirty pages for reclamation by the allocator.",
            "STATS",
            "    Return information about the memory usage of the server.",
            "USAGE <key> [SAMPLES <count>]",
            "    Return memory in bytes used by <key> and its value. Nested values are",
            "    sampled up to <count> times (default: 5, 0 means sample all).",
            "HELP",
            "    Prints this help.",
        ],
    );
}

fn monitor(ctx: &mut Ctx, _a: Args) {
    if ctx.client.monitor {
        return;
    }
    ctx.client.monitor = true;
    ctx.srv.monitors.lock().push((ctx.client.id, ctx.client.tx.clone()));
    ctx.srv.monitor_count.fetch_add(1, Relaxed);
    ctx.client.set_flags();
    ctx.out.ok();
}

/// allowProtectedAction: `option` is "yes", or "local" and the client is local (islocalClient:
/// 127.0.0.1 or ::1 exactly, as Redis).
pub fn allow_protected(ctx: &Ctx, option: &str) -> bool {
    let setting = ctx.srv.config.get(option).unwrap_or_default();
    setting == "yes" || (setting == "local" && ferrocache_node::client::is_local_addr(&ctx.client.shared.addr))
}

fn protected_allowed(ctx: &mut Ctx, option: &str, command: &str) -> bool {
    if allow_protected(ctx, option) {
        return true;
    }
    ctx.out.error(&format!(
        "ERR {command} command not allowed. If the {option} option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server."
    ));
    false
}

fn debug(ctx: &mut Ctx, a: Args) {
    if !protected_allowed(ctx, "enable-debug-command", "DEBUG") {
        return;
    }
    let sub = a[1].to_ascii_lowercase();
    match sub.as_slice() {
        // The message is the whole error line, code included (`DEBUG ERROR LOADING x`).
        b"error" if a.len() == 3 => ctx.out.error(&String::from_utf8_lossy(&a[2])),
        b"sleep" if a.len() == 3 => {
            let Some(secs) = parse_f64(&a[2]) else { return ctx.out.error(ERR_NOT_FLOAT) };
            std::thread::sleep(std::time::Duration::from_micros((secs.max(0.0) * 1e6) as u64));
            ctx.out.ok();
        }
        b"set-active-expire" if a.len() == 3 => {
            ctx.out.ok();
        }
        b"object" if a.len() == 3 => {
            let key = a[2].to_vec();
            let now = ctx.now_ms;
            let (mut db, out) = ctx.parts();
            match db.peek(&key) {
                None => out.error(ERR_NO_KEY),
                Some(e) => out.simple(&format!(
                    "Value at:0x0 refcount:1 encoding:{} serializedlength:{} lru:{} lru_seconds_idle:{}",
                    e.value.encoding(),
                    e.value.len(),
                    e.lru & 0xFFFFFF,
                    ferrocache_engine::keyspace::lru_idle_secs(e.lru, now)
                )),
            }
        }
        b"reload" => ferrocache_node::persistence::debug_reload(ctx, a),
        b"set-disable-deny-scripts" if a.len() == 3 => {
            let on = ferrocache_node::util::parse_i64(&a[2]).unwrap_or(0) != 0;
            ctx.srv.scripting.disable_deny.store(on, Relaxed);
            ctx.out.ok();
        }
        b"protocol" if a.len() == 3 => debug_protocol(ctx, &a[2]),
        b"help" => help(
            ctx.out,
            &[
                "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "ERROR <string>",
                "    Return a Redis protocol error with <string> as message.",
                "SLEEP <seconds>",
                "OBJECT <key>",
                "RELOAD [MERGE] [NOFLUSH] [NOSAVE]",
                "SET-ACTIVE-EXPIRE <0|1>",
                "HELP",
            ],
        ),
        _ => ctx.out.error(&format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
            String::from_utf8_lossy(&a[1])
        )),
    }
}

/// DEBUG PROTOCOL <type>: one reply of each RESP type.
fn debug_protocol(ctx: &mut Ctx, name: &[u8]) {
    let out = &mut *ctx.out;
    match name.to_ascii_lowercase().as_slice() {
        b"string" => out.bulk(b"Hello World"),
        b"integer" => out.int(12345),
        #[allow(clippy::approx_constant)] // Redis's literal, not π
        b"double" => out.double(3.141),
        b"bignum" => {
            if out.resp3 {
                out.raw(b"(1234567999999999999999999999999999999\r\n");
            } else {
                out.bulk(b"1234567999999999999999999999999999999");
            }
        }
        b"null" => out.null(),
        b"array" | b"set" => {
            if name.eq_ignore_ascii_case(b"set") {
                out.set(3);
            } else {
                out.array(3);
            }
            for j in 0..3 {
                out.int(j);
            }
        }
        b"map" => {
            out.map(3);
            for j in 0..3 {
                out.int(j);
                out.bool(j == 1);
            }
        }
        b"attrib" => {
            if out.resp3 {
                out.raw(b"|1\r\n");
                out.bulk(b"key-popularity");
                out.array(2);
                out.bulk(b"key:123");
                out.int(90);
            }
            out.bulk(b"Some real reply following the attribute");
        }
        b"push" => {
            if !out.resp3 {
                return out.error("ERR RESP2 is not supported by this command");
            }
            out.push(2);
            out.bulk(b"server-cpu-usage");
            out.int(42);
            out.bulk(b"Some real reply following the push reply");
        }
        b"true" => out.bool(true),
        b"false" => out.bool(false),
        b"verbatim" => out.verbatim(b"This is a verbatim\nstring"),
        _ => out.error("ERR Wrong protocol type name. Please use one of the following: string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false"),
    }
}

/// DUMP payload of a value (Redis's format: RDB value + RDB version + CRC64).
pub fn dump_value(v: &Value) -> Vec<u8> {
    ferrocache_node::rdb_bridge::dump(v)
}

/// Decode a DUMP payload, or Redis's error text.
pub fn restore_value(p: &[u8]) -> Result<Value, String> {
    ferrocache_node::rdb_bridge::restore(p)
}

// ------------------------------------------------------------------ MODULE, LOLWUT

fn module_help(ctx: &mut Ctx, _a: Args) {
    help(
        ctx.out,
        &[
            "MODULE <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "LIST",
            "    Return a list of loaded modules.",
            "LOAD <path> [<arg> ...]",
            "    Load a module library from <path>, passing to it any optional arguments.",
            "LOADEX <path> [[CONFIG NAME VALUE] [CONFIG NAME VALUE]] [ARGS ...]",
            "    Load a module library from <path>, while passing it module configurations and optional arguments.",
            "UNLOAD <name>",
            "    Unload a module.",
            "HELP",
            "    Print this help.",
        ],
    );
}

/// No modules are ever loaded (LIST is not a protected subcommand).
fn module_list(ctx: &mut Ctx, _a: Args) {
    ctx.out.array(0);
}

/// Redis modules are C shared objects written against redis-server's internals: ferrocache
/// cannot load them, and answers as redis-server does when a load fails.
fn module_load(ctx: &mut Ctx, a: Args) {
    if protected_allowed(ctx, "enable-module-command", "MODULE") {
        ferrocache_node::persistence::log_line(
            '#',
            &format!(
                "Module {} failed to load: ferrocache does not load Redis modules",
                String::from_utf8_lossy(&a[2])
            ),
        );
        ctx.out.error("ERR Error loading the extension. Please check the server logs.");
    }
}

fn module_unload(ctx: &mut Ctx, _a: Args) {
    if protected_allowed(ctx, "enable-module-command", "MODULE") {
        ctx.out.error("ERR Error unloading module: no such module with that name");
    }
}

/// LOLWUT [VERSION v]: what Redis 7.0 prints for its own version (versions 5 and 6 draw
/// random computer art in Redis; here every version prints the version line).
fn lolwut(ctx: &mut Ctx, a: Args) {
    if a.len() >= 3 && eq_ic(&a[1], "version") && parse_i64(&a[2]).is_none() {
        return ctx.out.error(ERR_NOT_INT);
    }
    ctx.out.verbatim(format!("Redis ver. {REDIS_VERSION}\n").as_bytes());
}
