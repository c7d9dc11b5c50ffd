//! Pub/sub: SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE and their UN-forms, PUBLISH, SPUBLISH, PUBSUB.

use bytes::Bytes;
use ferrocache_engine::glob::glob_match;
use ferrocache_node::client_registry::ClientHandle;
use ferrocache_node::node::PubSub;
use ferrocache_node::subcommand_required;
use ferrocache_node::table::{flags::*, Command};
use ferrocache_node::Ctx;
use ferrocache_protocol::resp::Args;
use parking_lot::RwLock;
use std::collections::{HashMap, HashSet};

const G: &str = "pubsub";
const PS: u64 = PUBSUB | NOSCRIPT | LOADING | STALE | PUBSUB_CONTEXT;

pub static COMMANDS: &[Command] = &[
    Command::new("subscribe", -2, PS, (0, 0, 0), subscribe).group(G),
    Command::new("unsubscribe", -1, PS, (0, 0, 0), unsubscribe).group(G),
    Command::new("psubscribe", -2, PS, (0, 0, 0), psubscribe).group(G),
    Command::new("punsubscribe", -1, PS, (0, 0, 0), punsubscribe).group(G),
    Command::new("ssubscribe", -2, PS, (1, -1, 1), ssubscribe).group(G),
    Command::new("sunsubscribe", -1, PS, (1, -1, 1), sunsubscribe).group(G),
    Command::new("publish", 3, PUBSUB | LOADING | STALE | FAST | MAY_REPLICATE, (0, 0, 0), publish).group(G),
    Command::new("spublish", 3, PUBSUB | LOADING | STALE | FAST | MAY_REPLICATE, (1, 1, 1), spublish).group(G),
    Command::new("pubsub", -2, 0, (0, 0, 0), subcommand_required).group(G).subs(PUBSUB_SUBS),
];

static PUBSUB_SUBS: &[Command] = &[
    Command::new("pubsub|channels", -2, PUBSUB | LOADING | STALE, (0, 0, 0), pubsub_channels).group(G),
    Command::new("pubsub|numsub", -2, PUBSUB | LOADING | STALE, (0, 0, 0), pubsub_numsub).group(G),
    Command::new("pubsub|numpat", 2, PUBSUB | LOADING | STALE, (0, 0, 0), pubsub_numpat).group(G),
    Command::new("pubsub|shardchannels", -2, PUBSUB | LOADING | STALE, (0, 0, 0), pubsub_shardchannels).group(G),
    Command::new("pubsub|shardnumsub", -2, PUBSUB | LOADING | STALE, (0, 0, 0), pubsub_shardnumsub).group(G),
    Command::new("pubsub|help", 2, LOADING | STALE, (0, 0, 0), pubsub_help).group(G),
];

#[derive(Clone, Copy)]
enum Kind {
    Channel,
    Pattern,
    Shard,
}

fn registry<'s>(ctx: &'s Ctx, k: Kind) -> &'s Registry {
    match k {
        Kind::Channel => &ctx.srv.pubsub().channels,
        Kind::Pattern => &ctx.srv.pubsub().patterns,
        Kind::Shard => &ctx.srv.pubsub().shard_channels,
    }
}

fn client_set<'c>(ctx: &'c mut Ctx, k: Kind) -> &'c mut HashSet<Bytes> {
    match k {
        Kind::Channel => &mut ctx.client.subs,
        Kind::Pattern => &mut ctx.client.psubs,
        Kind::Shard => &mut ctx.client.ssubs,
    }
}

fn count_for(ctx: &Ctx, k: Kind) -> usize {
    match k {
        Kind::Shard => ctx.client.ssubs.len(),
        _ => ctx.client.subs.len() + ctx.client.psubs.len(),
    }
}

type Registry = RwLock<HashMap<Bytes, HashMap<u64, ClientHandle>>>;

fn sub_generic(ctx: &mut Ctx, a: Args, k: Kind, verb: &str) {
    let id = ctx.client.id;
    let h = ClientHandle { tx: ctx.client.tx.clone(), shared: ctx.client.shared.clone() };
    for ch in a.iter().skip(1) {
        let b = Bytes::copy_from_slice(ch);
        if client_set(ctx, k).insert(b.clone()) {
            registry(ctx, k).write().entry(b).or_default().insert(id, h.clone());
        }
        let n = count_for(ctx, k);
        ctx.out.push(3);
        ctx.out.bulk(verb.as_bytes());
        ctx.out.bulk(ch);
        ctx.out.int(n as i64);
    }
    ctx.client.update_sub_counts();
    ctx.client.set_flags();
}

fn unsub_generic(ctx: &mut Ctx, a: Args, k: Kind, verb: &str) {
    let id = ctx.client.id;
    let targets: Vec<Bytes> = if a.len() > 1 {
        a.iter().skip(1).map(Bytes::copy_from_slice).collect()
    } else {
        client_set(ctx, k).iter().cloned().collect()
    };
    if targets.is_empty() {
        let n = count_for(ctx, k);
        ctx.out.push(3);
        ctx.out.bulk(verb.as_bytes());
        ctx.out.null();
        ctx.out.int(n as i64);
    }
    for ch in targets {
        if client_set(ctx, k).remove(&ch) {
            PubSub::remove_subscriber(registry(ctx, k), &ch, id);
        }
        let n = count_for(ctx, k);
        ctx.out.push(3);
        ctx.out.bulk(verb.as_bytes());
        ctx.out.bulk(&ch);
        ctx.out.int(n as i64);
    }
    ctx.client.update_sub_counts();
    ctx.client.set_flags();
}

fn subscribe(ctx: &mut Ctx, a: Args) {
    sub_generic(ctx, a, Kind::Channel, "subscribe")
}
fn unsubscribe(ctx: &mut Ctx, a: Args) {
    unsub_generic(ctx, a, Kind::Channel, "unsubscribe")
}
fn psubscribe(ctx: &mut Ctx, a: Args) {
    sub_generic(ctx, a, Kind::Pattern, "psubscribe")
}
fn punsubscribe(ctx: &mut Ctx, a: Args) {
    unsub_generic(ctx, a, Kind::Pattern, "punsubscribe")
}
fn ssubscribe(ctx: &mut Ctx, a: Args) {
    sub_generic(ctx, a, Kind::Shard, "ssubscribe")
}
fn sunsubscribe(ctx: &mut Ctx, a: Args) {
    unsub_generic(ctx, a, Kind::Shard, "sunsubscribe")
}

fn publish(ctx: &mut Ctx, a: Args) {
    let n = ctx.srv.publish(&a[1], &a[2], false);
    // In cluster mode every node gets it over the bus; else replicas get PUBLISH too, so their
    // subscribers see it (forceCommandPropagation with PROPAGATE_REPL; the AOF sink leaves it
    // out).
    if ctx.srv.cluster().enabled {
        ferrocache_node::cluster::pubsub::propagate(ctx.srv, &a[1], &a[2], false);
    } else if ctx.srv.has_sinks() {
        let db = ctx.client.db;
        ctx.fx.propagate(db, a.iter().map(|x| x.to_vec()).collect());
    }
    ctx.out.int(n as i64);
}
fn spublish(ctx: &mut Ctx, a: Args) {
    let n = ctx.srv.publish(&a[1], &a[2], true);
    if ctx.srv.cluster().enabled {
        ferrocache_node::cluster::pubsub::propagate(ctx.srv, &a[1], &a[2], true);
    } else if ctx.srv.has_sinks() {
        let db = ctx.client.db;
        ctx.fx.propagate(db, a.iter().map(|x| x.to_vec()).collect());
    }
    ctx.out.int(n as i64);
}

fn list_channels(ctx: &mut Ctx, a: Args, k: Kind) {
    let pat = if a.len() >= 3 { Some(a[2].to_vec()) } else { None };
    if a.len() > 3 {
        return ctx.wrong_arity();
    }
    let names: Vec<Bytes> = registry(ctx, k)
        .read()
        .keys()
        .filter(|c| pat.as_ref().is_none_or(|p| glob_match(p, c, false)))
        .cloned()
        .collect();
    ctx.out.array(names.len());
    for n in names {
        ctx.out.bulk(&n);
    }
}

fn numsub(ctx: &mut Ctx, a: Args, k: Kind) {
    ctx.out.array((a.len() - 2) * 2); // an array in RESP3 too (Redis 7.0)
    for ch in a.iter().skip(2) {
        let n = registry(ctx, k).read().get(ch).map(|s| s.len()).unwrap_or(0);
        ctx.out.bulk(ch);
        ctx.out.int(n as i64);
    }
}

fn pubsub_channels(ctx: &mut Ctx, a: Args) {
    list_channels(ctx, a, Kind::Channel)
}
fn pubsub_shardchannels(ctx: &mut Ctx, a: Args) {
    list_channels(ctx, a, Kind::Shard)
}
fn pubsub_numsub(ctx: &mut Ctx, a: Args) {
    numsub(ctx, a, Kind::Channel)
}
fn pubsub_shardnumsub(ctx: &mut Ctx, a: Args) {
    numsub(ctx, a, Kind::Shard)
}
fn pubsub_numpat(ctx: &mut Ctx, _a: Args) {
    let n = ctx.srv.pubsub().patterns.read().len();
    ctx.out.int(n as i64);
}
fn pubsub_help(ctx: &mut Ctx, _a: Args) {
    let lines = [
        "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CHANNELS [<pattern>]",
        "    Return the currently active channels matching a <pattern> (default: '*').",
        "NUMPAT",
        "    Return number of subscriptions to patterns.",
        "NUMSUB [<channel> ...]",
        "    Return the number of subscribers for the specified channels, excluding",
        "    pattern subscriptions(default: no channels).",
        "SHARDCHANNELS [<pattern>]",
        "    Return the currently active shard level channels matching a <pattern> (default: '*').",
        "SHARDNUMSUB [<shardchannel> ...]",
        "    Return the number of subscribers for the specified shard level channel(s)",
        "HELP",
        "    Prints this help.",
    ];
    ctx.out.array(lines.len());
    for l in lines {
        ctx.out.simple(l);
    }
}
