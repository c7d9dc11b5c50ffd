//! The node core: node state (`Node`), clients, config, the command registry and the
//! executor, blocking, persistence (RDB bridge, AOF), replication, ACL, scripting, cluster
//! mode and the memcached executor. The command families live in `ferrocache-commands` and
//! fill the registry at start (`Node::new(config, threads, ferrocache_commands::registry())`);
//! this crate never imports them.
//!
//! A command runs against the engine with the shards of its keys locked, writes its reply
//! straight into the connection's reply buffer and records its write effects; the executor
//! here does the checks Redis's `processCommand` does, in the same order, and applies effects
//! before the shard locks are released.
// Shared-state types (waiter maps, latency samples) and the `Err(())` "reply already written"
// convention are deliberate.
#![allow(clippy::type_complexity, clippy::result_unit_err)]

pub mod acl;
pub mod aof;
pub mod blocking;
pub mod client;
pub mod client_registry;
pub mod cluster;
pub mod command_docs;
pub mod config;
pub mod digest;
pub mod error;
pub mod introspection;
pub mod listeners;
pub mod lua;
pub mod memcached;
pub mod node;
pub mod persistence;
pub mod rdb_bridge;
pub mod replication;
pub mod scripting;
pub mod shutdown;
pub mod stats;
pub mod table;
pub mod transactions;
pub mod util;

use client::{Client, ReplyMode};
pub use error::{or_reply, CommandError, ErrorReply};
use ferrocache_engine::Effects;
use ferrocache_engine::{AccessPolicy, Db, EncodingLimits, Guards};
use ferrocache_protocol::resp::{Args, ReplyBuf};
pub use node::Node;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use table::{flags, lookup_sub, table, Command};

/// What a handler sees: the node, its client, the reply buffer, the locked shards and the
/// effects being recorded.
pub struct Ctx<'a, 'g> {
    pub srv: &'a Arc<Node>,
    pub client: &'a mut Client,
    pub out: &'a mut ReplyBuf,
    pub guards: &'a mut Guards<'g>,
    pub fx: &'a mut Effects,
    pub now_ms: u64,
    pub cmd: &'static Command,
    /// Handlers that propagate something other than their own argv clear this.
    pub propagate_original: bool,
    /// What the connection does after the reply (block, hand over to a replica, close...):
    /// set with `after_reply`. Boxed: the common case (nothing) moves one word.
    pub then: Option<Box<client::Then>>,
}

impl<'a, 'g> Ctx<'a, 'g> {
    /// Ask the connection for something once the reply is written (`client::Then`).
    pub fn after_reply(&mut self, then: client::Then) {
        self.then = Some(Box::new(then));
    }
    #[inline]
    pub fn access(&self) -> AccessPolicy {
        self.srv.access_policy()
    }
    /// The client's selected database.
    #[inline]
    pub fn db(&mut self) -> Db<'_, 'g> {
        self.srv.db(self.guards, self.fx, self.client.db, self.now_ms)
    }
    /// The database view and the reply buffer at once.
    #[inline]
    pub fn parts(&mut self) -> (Db<'_, 'g>, &mut ReplyBuf) {
        (self.srv.db(self.guards, self.fx, self.client.db, self.now_ms), self.out)
    }
    #[inline]
    pub fn limits(&self) -> EncodingLimits {
        let h = &self.srv.config.hot;
        EncodingLimits {
            hash_max_listpack_entries: h.hash_max_listpack_entries.load(Relaxed),
            hash_max_listpack_value: h.hash_max_listpack_value.load(Relaxed),
            set_max_intset_entries: h.set_max_intset_entries.load(Relaxed),
            zset_max_listpack_entries: h.zset_max_listpack_entries.load(Relaxed),
            zset_max_listpack_value: h.zset_max_listpack_value.load(Relaxed),
            list_max_listpack_size: h.list_max_listpack_size.load(Relaxed),
        }
    }
    /// Write `e` as the error reply.
    #[inline]
    pub fn fail(&mut self, e: &CommandError) {
        self.out.fail(e);
    }
    /// The argument error Redis gives for a wrong arity.
    #[inline]
    pub fn wrong_arity(&mut self) {
        let n = self.cmd.full_name();
        self.out.error(&format!("ERR wrong number of arguments for '{}' command", n));
    }
}

/// The handler of a container command (ACL, CONFIG, CLIENT...): the executor always runs one
/// of its subcommands, so reaching the container itself means a wrong arity.
pub fn subcommand_required(ctx: &mut Ctx, _a: Args) {
    ctx.wrong_arity();
}

fn unknown_command_error(args: Args) -> String {
    let name = String::from_utf8_lossy(&args[0]);
    let name: String = name.chars().take(128).collect();
    let mut s = format!("ERR unknown command '{}', with args beginning with: ", name);
    let mut budget = 128usize;
    for a in args.iter().skip(1) {
        if budget == 0 {
            break;
        }
        let t = String::from_utf8_lossy(a);
        let t: String = t.chars().take(budget).collect();
        budget = budget.saturating_sub(t.len());
        s.push_str(&format!("'{}' ", t));
    }
    s
}

/// Resolve the command (and subcommand) for `args`, or write the rejection.
fn resolve(args: Args, out: &mut ReplyBuf) -> Option<&'static Command> {
    let Some(cmd) = table().lookup(&args[0]) else {
        out.error(&unknown_command_error(args));
        return None;
    };
    if !cmd.subcommands.is_empty() && args.len() >= 2 {
        return match lookup_sub(cmd, &args[1]) {
            Some(s) => {
                if !s.arity_ok(args.len()) {
                    out.error(&format!("ERR wrong number of arguments for '{}' command", s.full_name()));
                    return None;
                }
                Some(s)
            }
            None => {
                let sub = String::from_utf8_lossy(&args[1]);
                let sub: String = sub.chars().take(128).collect();
                out.error(&format!(
                    "ERR unknown subcommand '{}'. Try {} HELP.",
                    sub,
                    String::from_utf8_lossy(&args[0]).to_uppercase()
                ));
                None
            }
        };
    }
    if !cmd.arity_ok(args.len()) {
        out.error(&format!("ERR wrong number of arguments for '{}' command", cmd.full_name()));
        return None;
    }
    Some(cmd)
}

/// Evict until under maxmemory. Returns false if still over.
pub fn ensure_memory(srv: &Node, now_ms: u64) -> bool {
    let max = srv.config.hot.maxmemory.load(Relaxed);
    if max == 0 {
        return true;
    }
    let policy = srv.config.policy();
    let samples = srv.config.hot.samples.load(Relaxed);
    let access = AccessPolicy {
        lfu: policy.is_lfu(),
        lfu_log_factor: srv.config.hot.lfu_log_factor.load(Relaxed),
        lfu_decay_time: srv.config.hot.lfu_decay_time.load(Relaxed),
    };
    let mut budget = 10_000;
    // Pre-images kept for a running snapshot are not counted (as a forked child's pages are
    // not in Redis's used_memory): evicting would not free them, only add to them.
    while ferrocache_engine::memory::used_memory().saturating_sub(srv.ks.snapshot.pre_bytes()) as u64 > max {
        if budget == 0 {
            return false;
        }
        budget -= 1;
        let mut fx = Effects::default();
        let ok = srv.ks.evict_one_with(policy, &access, samples, now_ms, &mut fx, &mut |fx| {
            srv.counters.evicted_keys.fetch_add(1, Relaxed);
            for ev in fx.events.iter().filter(|e| e.db == 0 && e.event == "evicted") {
                memcached::log_eviction(srv, &ev.key);
            }
            srv.apply_effects(fx, 0, None);
        });
        if !ok {
            return false;
        }
    }
    true
}

/// Execute one request for a client, writing its reply into `out`. Returns what the
/// connection must do after the reply, if anything.
pub fn execute(srv: &Arc<Node>, client: &mut Client, args: Args, out: &mut ReplyBuf) -> Option<Box<client::Then>> {
    execute_at(srv, client, args, out, node::now_ms())
}

/// `execute` with the caller's clock reading (one per read batch).
pub fn execute_at(
    srv: &Arc<Node>,
    client: &mut Client,
    args: Args,
    out: &mut ReplyBuf,
    now: u64,
) -> Option<Box<client::Then>> {
    let mut then = None;
    execute_checked(srv, client, args, out, now, &mut then);
    then
}

/// processCommand's checks, then the command (its `Then` into `then`).
fn execute_checked(
    srv: &Arc<Node>,
    client: &mut Client,
    args: Args,
    out: &mut ReplyBuf,
    now: u64,
    then: &mut Option<Box<client::Then>>,
) {
    if args.is_empty() {
        return;
    }
    let mark = out.len();
    client.shared.last_ms.store(now, Relaxed);
    let Some(cmd) = resolve(args, out) else {
        if client.multi.is_some() {
            client.multi_error = true;
        }
        stats::reject();
        finish_reply_mode(client, out, mark);
        return;
    };
    client.shared.last_cmd.store(cmd as *const Command as *mut Command, Relaxed);
    // The request's key positions, computed at most once: cluster routing, the shards to lock
    // and client-side tracking share them (ACL checks use Redis's key specs with their flags).
    let keys = KeyPositions::new(cmd, args);
    if srv.config.hot.requirepass_set.load(Relaxed) && !client.authenticated && !cmd.has(flags::NO_AUTH) {
        out.error("NOAUTH Authentication required.");
        return reject(srv, client, out, cmd, mark);
    }
    if acl::needs_check(srv, client)
        && !(client.multi.is_some() && cmd.has(flags::NO_MULTI))
        && !acl::check_command(srv, client, cmd, args, out)
    {
        return reject(srv, client, out, cmd, mark);
    }
    // Cluster mode: ASKING holds for the next command only (outside MULTI), then the slot
    // owner check (processCommand's getNodeByQuery).
    if srv.cluster.enabled {
        let asking = client.asking;
        if client.multi.is_none() && cmd.name != "asking" {
            client.asking = false;
        }
        if cluster::needs_routing(srv, client, cmd) {
            // A one-key command's position is known without building the key list.
            let first = [cmd.first_key as usize];
            let positions = if single_key(cmd, args) { &first[..] } else { keys.get() };
            if let Some(e) = cluster::route(srv, client, cmd, args, positions, asking, now) {
                if cmd.name == "exec" {
                    transactions::discard_state(srv, client);
                } else if client.multi.is_some() {
                    client.multi_error = true;
                }
                out.error(&e);
                count_rejection_error(srv, out, mark);
                stats::rejected(cmd.name);
                return;
            }
        }
    }
    // processCommand evicts before every command when maxmemory is set; only DENYOOM ones are
    // refused when that fails. Invalidations of keys this client tracks that eviction causes
    // come before the reply (Redis sends them at once: no command is executing yet).
    let fits = client.repl.is_master || srv.config.hot.maxmemory.load(Relaxed) == 0 || {
        let inline = client.tracking.is_some() && client.resp3;
        if inline {
            node::inline_invalidations_begin(client.id);
        }
        let ok = ensure_memory(srv, now);
        if inline {
            for k in node::inline_invalidations_end() {
                out.push(2);
                out.bulk(b"invalidate");
                out.array(1);
                out.bulk(&k);
            }
        }
        ok
    };
    let denyoom = cmd.has(flags::DENYOOM)
        || (cmd.name == "exec"
            && client.multi.as_ref().is_some_and(|q| {
                q.iter().any(|a| table().lookup(&a.args()[0]).is_some_and(|c| c.has(flags::DENYOOM)))
            }));
    if denyoom && !fits {
        out.error("OOM command not allowed when used memory > 'maxmemory'.");
        return reject(srv, client, out, cmd, mark);
    }
    if (cmd.is_write() || cmd.name == "ping" || (cmd.name == "exec" && queued_write(client)))
        && (persistence::writes_denied(srv) || aof::writes_denied(srv).is_some())
    {
        match aof::writes_denied(srv) {
            Some(e) if !persistence::writes_denied(srv) => out.error(&e),
            _ => out.error(persistence::MISCONF),
        }
        return reject(srv, client, out, cmd, mark);
    }
    if srv.config.hot.min_replicas_to_write.load(Relaxed) > 0
        && (cmd.is_write() || (cmd.name == "exec" && queued_write(client)))
        && !replication::good_replicas_ok(srv)
    {
        out.error(replication::NOREPLICAS_ERR);
        return reject(srv, client, out, cmd, mark);
    }
    if srv.repl.is_replica.load(Relaxed) && !client.repl.is_master {
        if let Some(e) = replica_denies(srv, client, cmd) {
            out.error(e);
            return reject(srv, client, out, cmd, mark);
        }
    }
    if client.in_pubsub_context() && !cmd.has(flags::PUBSUB_CONTEXT) {
        out.error(&format!(
            "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
            cmd.full_name()
        ));
        stats::rejected(cmd.name);
        return;
    }
    if persistence::is_loading(srv) && loading_denies(client, cmd) {
        out.error(persistence::LOADING_ERR);
        return reject(srv, client, out, cmd, mark);
    }
    // While a replica loads on the side, what would change or save the data set waits
    // (Redis's no-async-loading commands: SAVE, BGSAVE, REPLICAOF, CLUSTER SETSLOT, ...).
    if srv.persist.async_loading.load(Relaxed)
        && !client.repl.is_master
        && command_docs::doc(cmd).is_some_and(|d| d.has_flag("NO_ASYNC_LOADING"))
    {
        out.error(persistence::LOADING_ERR);
        return reject(srv, client, out, cmd, mark);
    }
    if !scripting::wait_not_busy(srv, cmd, out) {
        stats::rejected(cmd.name);
        if client.multi.is_some() {
            client.multi_error = true;
            if cmd.name == "exec" {
                exec_abort(srv, client, out, mark);
            }
        }
        return;
    }
    // RESET (like QUIT) runs at once inside MULTI, discarding the transaction (processCommand).
    if client.multi.is_some() && !cmd.has(flags::TRANSACTION) && cmd.name != "reset" {
        if cmd.has(flags::NO_MULTI) {
            out.error("ERR Command not allowed inside a transaction");
            client.multi_error = true;
            return;
        }
        if let Some(q) = client.multi.as_mut() {
            q.push(args.to_owned());
        }
        out.simple("QUEUED");
        return;
    }
    // EXEC is shown after the commands it ran (Redis feeds monitors from call(), after each).
    if cmd.name != "exec" && srv.monitors.active() && !cmd.has(flags::ADMIN) && !cmd.has(flags::SKIP_MONITOR) {
        let a: Vec<&[u8]> = acl::redacted_args(cmd, args);
        srv.feed_monitors(client.db, &client.shared.addr, &a);
    }
    if cmd.has(flags::TRANSACTION) {
        // MULTI/EXEC/DISCARD/WATCH/...: they lock whatever they need themselves.
        let mut none = srv.ks.lock_shards(&[]);
        *then = run_locked(srv, client, cmd, args, out, &mut none, now);
        drop(none);
        if cmd.name == "exec" && srv.monitors.active() {
            srv.feed_monitors(client.db, &client.shared.addr, &[b"exec"]);
        }
        srv.blocking.serve(srv);
        client.script_read = false;
        srv.tracking_flush_bcast();
        finish_reply_mode(client, out, mark);
        return;
    }
    let single_key = single_key(cmd, args);
    let one: [usize; 1];
    let many: Vec<usize>;
    let idx: &[usize] = if cmd.has(flags::ALL_SHARDS) {
        many = (0..srv.ks.num_shards()).collect();
        &many
    } else if single_key {
        one = [srv.ks.shard_of(&args[cmd.first_key as usize])];
        &one
    } else {
        let mut v: Vec<usize> = keys.get().iter().map(|&i| srv.ks.shard_of(&args[i])).collect();
        v.sort_unstable();
        v.dedup();
        many = v;
        &many
    };
    // A script that started after the busy check above holds every shard: wait for it without
    // blocking, answering BUSY once it passes busy-reply-threshold.
    let Some(mut guards) = scripting::lock_shards(srv, cmd, idx, cmd.has(flags::ALL_SHARDS), out) else {
        stats::rejected(cmd.name);
        return;
    };
    *then = run_locked(srv, client, cmd, args, out, &mut guards, now);
    drop(guards);
    // Serve clients blocked on keys this command made ready (Redis's handleClientsBlockedOnKeys).
    srv.blocking.serve(srv);
    // Redis's call(): a read-only command remembers its keys; a script (read-only variants
    // included) remembers its declared keys once it has called a read-only command.
    let is_script = cmd.group == "scripting";
    if client.tracking.is_some() && ((cmd.has(flags::READONLY) && !is_script) || (is_script && client.script_read)) {
        let keys: Vec<&[u8]> = keys.get().iter().map(|&i| &args[i]).collect();
        remember_tracked(srv, client, &keys);
        srv.tracking_limit();
    }
    client.script_read = false;
    srv.tracking_flush_bcast();
    if cmd.name != "client|caching" {
        client.caching_flag = None;
    }
    // (Un)subscribe confirmations are pushes (Redis's CLIENT_PUSHING): CLIENT REPLY OFF/SKIP
    // does not silence them.
    let mark = if cmd.has(flags::PUBSUB_CONTEXT) && cmd.name.contains("subscribe") { out.len() } else { mark };
    finish_reply_mode(client, out, mark);
}

/// Whether the command has exactly one key, at `first_key` (no key-finding function).
#[inline]
fn single_key(cmd: &Command, args: Args) -> bool {
    cmd.keys_fn.is_none() && cmd.first_key > 0 && cmd.first_key == cmd.last_key && (cmd.first_key as usize) < args.len()
}

/// A request's key positions (`Command::key_positions`), computed on first use and kept.
struct KeyPositions<'a> {
    cmd: &'static Command,
    args: Args<'a>,
    cached: std::cell::OnceCell<Vec<usize>>,
}

impl<'a> KeyPositions<'a> {
    fn new(cmd: &'static Command, args: Args<'a>) -> Self {
        KeyPositions { cmd, args, cached: std::cell::OnceCell::new() }
    }

    fn get(&self) -> &[usize] {
        self.cached.get_or_init(|| self.cmd.key_positions(self.args))
    }
}

/// A command refused by processCommand's checks (its error already written): inside MULTI the
/// transaction is marked failed (EXEC itself aborts it), and the rejection is counted.
fn reject(srv: &Arc<Node>, client: &mut Client, out: &mut ReplyBuf, cmd: &Command, mark: usize) {
    if client.multi.is_some() {
        client.multi_error = true;
        if cmd.name == "exec" {
            exec_abort(srv, client, out, mark);
        }
    }
    count_rejection_error(srv, out, mark);
    stats::rejected(cmd.name);
}

/// A rejection's error reply counts in total_error_replies and errorstats by its code, as every
/// error reply does in Redis (afterErrorReply), e.g. `errorstat_MOVED`.
fn count_rejection_error(srv: &Node, out: &ReplyBuf, mark: usize) {
    let Some(err) = out.buf.get(mark..).and_then(|b| b.strip_prefix(b"-")) else { return };
    let code = err.iter().position(|&c| c == b' ' || c == b'\r').map(|i| &err[..i]).unwrap_or(err);
    srv.counters.total_error_replies.fetch_add(1, Relaxed);
    stats::error_code(&String::from_utf8_lossy(code));
}

/// rejectCommand for EXEC itself (execCommandAbort): the transaction is discarded and the
/// rejection (already written from `mark`) becomes `-EXECABORT Transaction discarded because
/// of: <error>`.
fn exec_abort(srv: &Arc<Node>, client: &mut Client, out: &mut ReplyBuf, mark: usize) {
    let err = out.buf[mark..].strip_prefix(b"-").unwrap_or(&out.buf[mark..]).to_vec();
    let err = String::from_utf8_lossy(&err);
    let err = err.trim_end_matches("\r\n").to_string();
    out.buf.truncate(mark);
    transactions::discard_state(srv, client);
    out.error(&format!("EXECABORT Transaction discarded because of: {}", err));
}

/// A replica refuses writes (replica-read-only) and, with the link down and
/// replica-serve-stale-data off, commands without the STALE flag.
fn replica_denies(srv: &Node, client: &Client, cmd: &Command) -> Option<&'static str> {
    // EXEC is refused like any queued command without the STALE flag (cmd_inv_flags).
    let deny_stale = !cmd.has(flags::STALE)
        || (cmd.name == "exec"
            && client.multi.as_ref().is_some_and(|q| {
                q.iter().any(|a| {
                    let a = a.args();
                    table()
                        .lookup(&a[0])
                        .map(|c| match (c.subcommands.is_empty(), a.len() >= 2) {
                            (false, true) => lookup_sub(c, &a[1]).unwrap_or(c),
                            _ => c,
                        })
                        .is_some_and(|c| !c.has(flags::STALE))
                })
            }));
    if !srv.repl.link_up.load(Relaxed) && deny_stale && !srv.config.get_bool("replica-serve-stale-data") {
        return Some(replication::MASTERDOWN_ERR);
    }
    let write = cmd.is_write() || (cmd.name == "exec" && queued_write(client));
    if write && srv.config.get_bool("replica-read-only") {
        return Some(replication::READONLY_ERR);
    }
    None
}

/// While loading, commands without the LOADING flag (and EXEC of a transaction holding one)
/// are refused; the AOF loader's own client and the master link are not checked.
fn loading_denies(client: &Client, cmd: &Command) -> bool {
    if client.id == aof::AOF_CLIENT_ID || client.repl.is_master {
        return false;
    }
    !cmd.has(flags::LOADING)
        || (cmd.name == "exec"
            && client.multi.as_ref().is_some_and(|q| {
                q.iter().any(|a| {
                    let a = a.args();
                    let c = table().lookup(&a[0]).map(|c| match (c.subcommands.is_empty(), a.len() >= 2) {
                        (false, true) => lookup_sub(c, &a[1]).unwrap_or(c),
                        _ => c,
                    });
                    c.is_some_and(|c| !c.has(flags::LOADING))
                })
            }))
}

/// EXEC of a transaction holding a write command (MISCONF applies to it).
fn queued_write(client: &Client) -> bool {
    client.multi.as_ref().is_some_and(|q| q.iter().any(|a| table().lookup(&a.args()[0]).is_some_and(|c| c.is_write())))
}

/// EXEC of a transaction holding a write or may-replicate command (paused like a write).
pub fn queued_may_replicate(srv: &Node, client: &Client) -> bool {
    client.multi.as_ref().is_some_and(|q| {
        q.iter().any(|a| table().lookup(&a.args()[0]).is_some_and(|c| may_replicate(srv, c, a.args())))
    })
}

/// Whether a request is held by CLIENT PAUSE WRITE (and the FAILOVER / SHUTDOWN pauses):
/// processCommand's is_may_replicate_command, where EVAL/EVALSHA/FCALL take their flags from
/// the script (a `#!lua flags=no-writes` script or function is a read).
pub fn pausable_write(srv: &Node, client: &Client, args: Args) -> bool {
    match table().lookup(&args[0]) {
        Some(c) if c.name == "exec" => queued_may_replicate(srv, client),
        Some(c) => may_replicate(srv, c, args),
        None => false,
    }
}

fn may_replicate(srv: &Node, c: &Command, args: Args) -> bool {
    (c.is_write() || c.has(flags::MAY_REPLICATE)) && !crate::scripting::declares_no_writes(srv, c, args)
}

fn remember_tracked(srv: &Node, client: &mut Client, keys: &[&[u8]]) {
    let Some(tr) = &client.tracking else { return };
    if tr.bcast {
        return;
    }
    let cache = if tr.optin {
        client.caching_flag == Some(true)
    } else if tr.optout {
        client.caching_flag != Some(false)
    } else {
        true
    };
    if cache {
        for k in keys {
            srv.tracking.remember(client.id, k);
        }
    }
}

fn finish_reply_mode(client: &mut Client, out: &mut ReplyBuf, mark: usize) {
    match client.reply_mode {
        ReplyMode::On => {}
        ReplyMode::Off => out.buf.truncate(mark),
        ReplyMode::SkipThis => {
            out.buf.truncate(mark);
            client.reply_mode = ReplyMode::On;
        }
        ReplyMode::Skip => client.reply_mode = ReplyMode::SkipThis,
    }
}

/// Run a resolved command with its shards already held (plain calls and EXEC). Returns what
/// its handler asked of the connection (`Ctx::then`).
#[must_use]
pub fn run_locked<'g>(
    srv: &Arc<Node>,
    client: &mut Client,
    cmd: &'static Command,
    args: Args,
    out: &mut ReplyBuf,
    guards: &mut Guards<'g>,
    now: u64,
) -> Option<Box<client::Then>> {
    // A write that passed the replica check just before this node became a replica
    // (FAILOVER switches with every shard held): refuse it under the locks. Inside EXEC the
    // check was made for the whole transaction (a REPLICAOF queued in it does not fail the
    // writes after it, as in Redis).
    if cmd.is_write()
        && !client.in_exec
        && !client.repl.is_master
        && srv.repl.is_replica.load(Relaxed)
        && srv.config.get_bool("replica-read-only")
    {
        out.error(replication::READONLY_ERR);
        return None;
    }
    let mut fx = Effects::default();
    let errors_before = out.errors;
    let start = std::time::Instant::now();
    let db = client.db;
    let (propagate_original, then) = {
        let mut ctx = Ctx {
            srv,
            client: &mut *client,
            out: &mut *out,
            guards,
            fx: &mut fx,
            now_ms: now,
            cmd,
            propagate_original: true,
            then: None,
        };
        if cmd.is_write() || cmd.has(flags::MAY_REPLICATE) {
            persistence::before_write(srv, cmd, ctx.guards);
        }
        // The primary's stream sees the keys the primary still has (expired or not here);
        // commands nested in it (EXEC, scripts) run under the same guards and see the same.
        let outer_view = ctx.guards.primary_view;
        ctx.guards.primary_view |= ctx.client.repl.is_master;
        // A bug in one handler must not take the node down: answer an error instead.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (cmd.handler)(&mut ctx, args)));
        ctx.guards.primary_view = outer_view;
        if r.is_err() {
            ctx.out.error(&format!("ERR internal error while executing '{}'", cmd.full_name()));
        }
        (ctx.propagate_original, ctx.then.take())
    };
    let original = if cmd.is_write() && propagate_original && fx.dirty > 0 { Some((db, args)) } else { None };
    let propagates = original.is_some() || !fx.propagate.is_empty();
    srv.apply_effects_args(&mut fx, client.id, original);
    if propagates {
        client.repl.woff = srv.repl.master_offset();
    }
    let micros = start.elapsed().as_micros() as u64;
    let failed = out.errors > errors_before;
    if failed {
        srv.counters.total_error_replies.fetch_add(out.errors - errors_before, Relaxed);
        if let Some(code) = &out.last_error_code {
            stats::error_code(code);
        }
    }
    // A command that blocked counts once, when its wait ends (Redis's updateStatsOnUnblock):
    // served (its re-run lands here unblocked), timed out or unblocked (blocking.rs).
    if !matches!(then.as_deref(), Some(client::Then::Block(_))) {
        stats::record(cmd.name, micros, failed);
    }
    if !cmd.has(flags::SKIP_SLOWLOG) && micros as i64 >= srv.config.hot.slowlog_slower_than.load(Relaxed) {
        let a: Vec<&[u8]> = acl::redacted_args(cmd, args);
        let name =
            client.shared.name.lock().clone().map(|n| String::from_utf8_lossy(&n).into_owned()).unwrap_or_default();
        srv.record_slowlog(micros, &a, &client.shared.addr, &name);
    }
    if micros >= 1000 {
        srv.record_latency("command", micros / 1000);
    }
    then
}
