//! MULTI / EXEC / DISCARD / WATCH / UNWATCH. EXEC locks the shards of every key its queued
//! commands declare (every shard when one of them walks the keyspace) and runs them under that
//! one lock set: atomic over any keys.

use crate::client::Client;
use crate::node::Node;
use crate::table::{flags::*, lookup_sub, table, Command};
use crate::Ctx;
use ferrocache_engine::keyspace::Guards;
use ferrocache_engine::SmallBytes;
use ferrocache_protocol::resp::Args;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

const G: &str = "transactions";
const T: u64 = TRANSACTION | NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY;

pub static COMMANDS: &[Command] = &[
    Command::new("multi", 1, T, (0, 0, 0), multi).group(G),
    Command::new("exec", 1, TRANSACTION | NOSCRIPT | LOADING | STALE | SKIP_SLOWLOG, (0, 0, 0), exec).group(G),
    Command::new("discard", 1, T, (0, 0, 0), discard).group(G),
    Command::new("watch", -2, T, (1, -1, 1), watch).group(G),
    Command::new("unwatch", 1, T, (0, 0, 0), unwatch).group(G),
];

fn multi(ctx: &mut Ctx, _a: Args) {
    if ctx.client.multi.is_some() {
        return ctx.out.error("ERR MULTI calls can not be nested");
    }
    ctx.client.multi = Some(Vec::new());
    ctx.client.multi_error = false;
    ctx.client.shared.multi.store(0, Relaxed);
    ctx.client.set_flags();
    ctx.out.ok();
}

/// Forget all watched keys of a client.
pub fn unwatch_all(srv: &Node, client: &mut Client) {
    if !client.watched.is_empty() {
        srv.watches.remove_all(client.id, &client.watched);
        client.watched.clear();
        client.watched_expiry.clear();
    }
    client.watch_dirty.store(false, Relaxed);
}

/// Leave MULTI state and unwatch (DISCARD, RESET, EXEC).
pub fn discard_state(srv: &Node, client: &mut Client) {
    client.multi = None;
    client.multi_error = false;
    client.shared.multi.store(u64::MAX, Relaxed);
    unwatch_all(srv, client);
    client.set_flags();
}

fn discard(ctx: &mut Ctx, _a: Args) {
    if ctx.client.multi.is_none() {
        return ctx.out.error("ERR DISCARD without MULTI");
    }
    discard_state(ctx.srv, ctx.client);
    ctx.out.ok();
}

fn watch(ctx: &mut Ctx, a: Args) {
    if ctx.client.multi.is_some() {
        return ctx.out.error("ERR WATCH inside MULTI is not allowed");
    }
    let now = ctx.now_ms;
    for k in a.iter().skip(1) {
        let db = ctx.client.db;
        if ctx.client.watched.iter().any(|(d, x)| *d == db && x.as_slice() == k) {
            continue;
        }
        let mut g = ctx.srv.ks.lock_keys([k]);
        let shard = g.shard(ctx.srv.ks.shard_of(k));
        let h = ctx.srv.ks.hash(k);
        let exp = shard.dbs[db].get(h, k).map(|e| e.expire_at).unwrap_or(0);
        let already_expired = exp != 0 && exp <= now;
        // Registered under the shard lock: a writer that takes it next sees the watch.
        ctx.srv.watches.add(db, k, ctx.client.id, &ctx.client.watch_dirty);
        drop(g);
        ctx.client.watched.push((db, SmallBytes::new(k)));
        ctx.client.watched_expiry.push(already_expired as u64);
    }
    ctx.out.ok();
}

fn unwatch(ctx: &mut Ctx, _a: Args) {
    unwatch_all(ctx.srv, ctx.client);
    ctx.out.ok();
}

pub(crate) fn resolve_queued(args: Args) -> Option<&'static Command> {
    let c = table().lookup(&args[0])?;
    if !c.subcommands.is_empty() && args.len() >= 2 {
        return lookup_sub(c, &args[1]);
    }
    Some(c)
}

fn exec(ctx: &mut Ctx, _a: Args) {
    let Some(queued) = ctx.client.multi.take() else {
        return ctx.out.error("ERR EXEC without MULTI");
    };
    let srv: Arc<Node> = ctx.srv.clone();
    if ctx.client.multi_error {
        discard_state(&srv, ctx.client);
        return ctx.out.error("EXECABORT Transaction discarded because of previous errors.");
    }
    let now = ctx.now_ms;
    let mut all = false;
    // The watched keys' shards are locked with the queued commands' ones: the check that
    // nobody touched them and the commit are one critical section (a writer marks watchers
    // dirty under the same shard lock, before releasing it).
    let mut keys: Vec<Vec<u8>> = ctx.client.watched.iter().map(|(_, k)| k.to_vec()).collect();
    let cmds: Vec<Option<&'static Command>> = queued.iter().map(|q| resolve_queued(q.args())).collect();
    for (q, c) in queued.iter().zip(cmds.iter()) {
        let Some(c) = c else { continue };
        if c.has(ALL_SHARDS) || c.has(ITERATES) {
            all = true;
        }
        for i in c.key_positions(q.args()) {
            keys.push(q.args()[i].to_vec());
        }
    }
    let idx: Vec<usize> = if all {
        (0..srv.ks.num_shards()).collect()
    } else {
        let mut v: Vec<usize> = keys.iter().map(|k| srv.ks.shard_of(k)).collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    // A script that took the locks after EXEC passed the busy check: BUSY once it passes
    // busy-reply-threshold, and the transaction stays open and flagged (Redis's rejectCommand).
    let Some(mut guards) = crate::scripting::lock_shards(&srv, ctx.cmd, &idx, all, ctx.out) else {
        ctx.client.multi = Some(queued);
        ctx.client.multi_error = true;
        return;
    };
    if watched_changed(&srv, ctx.client, &mut guards, now) {
        drop(guards);
        discard_state(&srv, ctx.client);
        return ctx.out.null_array();
    }
    ctx.client.in_exec = true;
    ctx.out.array(queued.len());
    srv.begin_exec_unit();
    for (q, c) in queued.iter().zip(cmds.iter()) {
        match c {
            Some(c) => match crate::acl::check_queued(&srv, ctx.client, c, q.args()) {
                Ok(()) => {
                    if srv.monitors.active()
                        && !c.has(crate::table::flags::ADMIN)
                        && !c.has(crate::table::flags::SKIP_MONITOR)
                    {
                        let a: Vec<&[u8]> = crate::acl::redacted_args(c, q.args());
                        srv.feed_monitors(ctx.client.db, &ctx.client.shared.addr, &a);
                    }
                    // What a queued command asks of the connection holds after EXEC's reply.
                    if let Some(t) = crate::run_locked(&srv, ctx.client, c, q.args(), ctx.out, &mut guards, now) {
                        ctx.then = Some(t);
                    }
                }
                Err(reason) => ctx.out.error(&reason),
            },
            None => ctx.out.error("ERR unknown command"),
        }
    }
    if srv.end_exec_unit() {
        ctx.client.repl.woff = srv.repl.master_offset();
    }
    drop(guards);
    ctx.client.in_exec = false;
    discard_state(&srv, ctx.client);
}

/// EXEC's abort check, under the watched keys' shard locks: a watched key was modified, or
/// expired since WATCH (Redis 7's isWatchedKeyExpired).
fn watched_changed(srv: &Node, client: &Client, guards: &mut Guards, now: u64) -> bool {
    if client.watch_dirty.load(Relaxed) {
        return true;
    }
    client.watched.iter().enumerate().any(|(i, (db, k))| {
        client.watched_expiry[i] != 1
            && guards.shard(srv.ks.shard_of(k)).dbs[*db]
                .get(srv.ks.hash(k), k)
                .is_some_and(|e| e.expire_at != 0 && e.expire_at <= now)
    })
}
