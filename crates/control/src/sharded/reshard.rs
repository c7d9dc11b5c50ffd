//! Online resharding (ModifyReplicationGroupShardConfiguration): new shards' nodes join, then
//! slots move to an even spread over the target shards, one slot at a time per pair of shards
//! and the pairs in parallel, each slot the way redis-cli moves one (IMPORTING on the target,
//! MIGRATING on the source, MIGRATE the keys in batches, SETSLOT NODE everywhere): clients only
//! ever see MOVED and ASK. Removed shards go once they hold no slot. Everything is recomputed
//! from what the nodes say, so a control plane killed in the middle resumes where the nodes are:
//! a slot left IMPORTING/MIGRATING is finished first, then the remaining moves are planned anew.

use super::ops::{self, cluster_nodes, me, node_ids, remove_member, Conns};
use super::topology::{format_ranges, plan_moves, ClusterNode, Move};
use super::{busy_key, shard_members};
use crate::failover::{group_event, load, Member};
use crate::{log, App};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keys moved per MIGRATE.
const BATCH: usize = 200;
/// Slots of one shard pair moved together: each step (IMPORTING, MIGRATING, the key count,
/// NODE) is sent for all of them in one pipelined round trip.
const SLOT_BATCH: usize = 32;

/// Run (or resume) the group's resharding. On an error the group stays `modifying` with its
/// resharding recorded; the health loop retries it.
pub fn op_reshard(app: &App, id: &str) {
    let key = busy_key(id);
    let started = Instant::now();
    match run(app, id) {
        Ok(moved) => {
            app.sharded.progress.lock().unwrap().remove(id);
            app.end(&key);
            ops::set_status(app, id, "available");
            group_event(
                app,
                id,
                &format!(
                    "Completed resharding of replication group {}: {} slots moved in {:.1} s",
                    id,
                    moved,
                    started.elapsed().as_secs_f64()
                ),
            );
        }
        Err(e) => {
            log(&format!("{}: resharding stopped: {} (retried shortly)", id, e));
            app.sharded.retried.lock().unwrap().insert(id.to_string(), Instant::now());
            app.end(&key);
        }
    }
}

/// Which member is the primary of each shard, and every member's node id and port.
struct Nodes {
    ids: HashMap<String, String>,
    port_of_id: HashMap<String, u16>,
}

fn run(app: &App, id: &str) -> Result<usize, String> {
    let (mut g, mut members) = load(app, id).ok_or("the group is gone")?;
    let Some(plan) = g.layout.as_ref().and_then(|l| l.resharding.clone()) else { return Ok(0) };
    ops::bring_up(app, &mut g, &mut members, Duration::from_secs(10))?;
    let layout = g.layout.clone().ok_or("not a cluster-mode group")?;
    let ids = node_ids(&members);
    let port_of_id = members.iter().filter_map(|m| Some((ids.get(&m.0.id)?.clone(), m.1.port))).collect();
    let nodes = Nodes { ids, port_of_id };
    let host = app.provider.address(&ops::spec(&members[0]));
    let masters: Vec<u16> =
        layout.shards.iter().filter_map(|s| members.iter().find(|m| m.0.id == s.primary)).map(|m| m.1.port).collect();

    // A slot left half-moved by an earlier run goes where it was going.
    let mut conns = Conns::new();
    for port in &masters {
        let Some(view) = cluster_nodes(*port, Duration::from_secs(5)) else { continue };
        let Some(mine) = me(&view) else { continue };
        for (slot, to) in mine.migrating.clone() {
            if let Some(dst) = nodes.port_of_id.get(&to) {
                migrate_slot(&mut conns, &host, (*port, &mine.id), (*dst, &to), &masters, slot)?;
            }
        }
        for (slot, from) in mine.importing.clone() {
            if let Some(src) = nodes.port_of_id.get(&from) {
                migrate_slot(&mut conns, &host, (*src, &from), (*port, &mine.id), &masters, slot)?;
            }
        }
    }

    // What each shard holds now, and the moves to the even spread.
    let view = cluster_nodes(masters[0], Duration::from_secs(5)).ok_or("a primary stopped answering")?;
    let owned = owned_by_shard(&layout, &nodes, &view);
    let moves = plan_moves(&owned, &plan.targets);
    let total = moves.len();
    let slotless: Vec<String> = owned.iter().filter(|(_, s)| s.is_empty()).map(|(k, _)| k.clone()).collect();
    execute(app, id, &host, &layout, &members, &nodes, &masters, moves, &slotless)?;

    // Removed shards: replicas first, then the (now empty) primary.
    let (mut g, members) = load(app, id).ok_or("the group is gone")?;
    for shard_id in &plan.removing {
        let Some(shard) = g.layout.as_ref().and_then(|l| l.shards.iter().find(|s| &s.id == shard_id)).cloned() else {
            continue;
        };
        if let Some(p) = members.iter().find(|m| m.0.id == shard.primary) {
            let still = cluster_nodes(p.1.port, Duration::from_secs(5)).and_then(|v| me(&v).map(|n| n.slots.len()));
            if still.is_some_and(|n| n > 0) {
                return Err(format!("shard {} still holds {} slots", shard_id, still.unwrap()));
            }
        }
        let mut order: Vec<&Member> = shard_members(&shard, &members);
        order.sort_by_key(|m| m.0.id == shard.primary);
        for victim in order {
            let others: Vec<Member> = members.iter().filter(|m| !shard.members.contains(&m.0.id)).cloned().collect();
            remove_member(app, &mut g, victim, &others);
        }
        if let Some(l) = g.layout.as_mut() {
            l.shards.retain(|s| &s.id != shard_id);
        }
        ops::save_group(app, &g);
        group_event(app, id, &format!("Removed node group {} from replication group {}", shard_id, id));
    }

    // Record where the slots are, and that the resharding is over.
    let (mut g, mut members) = load(app, id).ok_or("the group is gone")?;
    let ids = node_ids(&members);
    let port_of_id = members.iter().filter_map(|m| Some((ids.get(&m.0.id)?.clone(), m.1.port))).collect();
    let nodes = Nodes { ids, port_of_id };
    let first = members.iter().find(|m| g.layout.as_ref().is_some_and(|l| l.shards[0].primary == m.0.id));
    let view = first.and_then(|m| cluster_nodes(m.1.port, Duration::from_secs(5))).unwrap_or_default();
    if let Some(l) = g.layout.as_mut() {
        let owned = owned_by_shard(l, &nodes, &view);
        for s in l.shards.iter_mut() {
            s.slots = format_ranges(owned.get(&s.id).map_or(&[][..], |v| v.as_slice()));
        }
        l.resharding = None;
    }
    ops::save_group(app, &g);
    ops::finish(app, &g, &mut members);
    Ok(total)
}

/// Slots per shard: those its primary holds in `view`.
fn owned_by_shard(layout: &super::Layout, nodes: &Nodes, view: &[ClusterNode]) -> BTreeMap<String, Vec<u16>> {
    layout
        .shards
        .iter()
        .map(|s| {
            let slots = nodes
                .ids
                .get(&s.primary)
                .and_then(|nid| view.iter().find(|n| &n.id == nid))
                .map(|n| n.slots.clone())
                .unwrap_or_default();
            (s.id.clone(), slots)
        })
        .collect()
}

/// Run the moves: one thread per (source, target) shard pair, the slots of a pair in order.
#[allow(clippy::too_many_arguments)]
fn execute(
    app: &App,
    id: &str,
    host: &str,
    layout: &super::Layout,
    members: &[Member],
    nodes: &Nodes,
    masters: &[u16],
    moves: Vec<Move>,
    slotless: &[String],
) -> Result<(), String> {
    let total = moves.len().max(1);
    let mut pairs: BTreeMap<(String, String), Vec<u16>> = BTreeMap::new();
    for m in moves {
        pairs.entry((m.from, m.to)).or_default().push(m.slot);
    }
    let endpoint = |shard: &str| -> Result<(u16, String), String> {
        let s = layout.shards.iter().find(|s| s.id == shard).ok_or("unknown shard")?;
        let m = members.iter().find(|m| m.0.id == s.primary).ok_or("shard without a primary")?;
        let nid = nodes.ids.get(&m.0.id).ok_or_else(|| format!("{} does not answer", m.0.id))?;
        Ok((m.1.port, nid.clone()))
    };
    let done = AtomicUsize::new(0);
    // A shard without slots is in no client's slot map (CLUSTER SLOTS lists only nodes that
    // hold slots), and some clients cannot follow an ASK to a node they do not know (redis-py
    // 5: redis/redis-py#4015). Such a shard first gets one slot with no keys, alone: from then
    // on a client that refreshes its map (redis-py does after a few MOVED) knows the node before
    // any key moves there and an ASK can point at it.
    let mut conns = Conns::new();
    let mut primed: Vec<String> = Vec::new();
    for ((from, to), slots) in pairs.iter_mut() {
        if !slotless.contains(to) || primed.contains(to) || slots.is_empty() {
            continue;
        }
        let (src, dst) = (endpoint(from)?, endpoint(to)?);
        let mut pick = 0;
        for (i, slot) in slots.iter().enumerate().take(256) {
            if matches!(
                conns.call(src.0, &["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()])?,
                super::resp::Reply::Int(0)
            ) {
                pick = i;
                break;
            }
        }
        let slot = slots.remove(pick);
        migrate_slot(&mut conns, host, (src.0, &src.1), (dst.0, &dst.1), masters, slot)?;
        done.fetch_add(1, Ordering::Relaxed);
        primed.push(to.clone());
    }
    let stop = AtomicBool::new(false);
    let error = Mutex::new(None);
    app.sharded.progress.lock().unwrap().insert(id.to_string(), 0.0);
    std::thread::scope(|scope| {
        for ((from, to), slots) in &pairs {
            let (src, dst) = match (endpoint(from), endpoint(to)) {
                (Ok(s), Ok(d)) => (s, d),
                (Err(e), _) | (_, Err(e)) => {
                    *error.lock().unwrap() = Some(e);
                    return;
                }
            };
            let (done, stop, error) = (&done, &stop, &error);
            scope.spawn(move || {
                let mut conns = Conns::new();
                for batch in slots.chunks(SLOT_BATCH) {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    if let Err(e) = migrate_slots(&mut conns, host, (src.0, &src.1), (dst.0, &dst.1), masters, batch) {
                        stop.store(true, Ordering::Relaxed);
                        error.lock().unwrap().get_or_insert(format!(
                            "slots {}-{}: {}",
                            batch[0],
                            batch[batch.len() - 1],
                            e
                        ));
                        return;
                    }
                    let n = done.fetch_add(batch.len(), Ordering::Relaxed) + batch.len();
                    {
                        let pct = (n as f64 * 100.0 / total as f64 * 100.0).floor() / 100.0;
                        app.sharded.progress.lock().unwrap().insert(id.to_string(), pct);
                    }
                }
            });
        }
    });
    match error.into_inner().unwrap() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Whether an error says the node already is in the state asked for.
fn settled(e: &str) -> bool {
    e.contains("already the owner") || e.contains("not the owner") || e.contains("only with masters")
}

/// Move `slots` from `src` to `dst` (port, node id), each the way redis-cli moves one
/// (IMPORTING on the target, MIGRATING on the source, the keys, NODE on the target then the
/// source), in as few round trips as that order allows: the IMPORTING of all of them in one
/// pipeline, a slot's MIGRATING with its first key listing, and the other primaries told of
/// all the new owners in one pipeline at the end (gossip would tell them too). A slot stays
/// MIGRATING only while its own keys move: a client's write of a new key there is redirected
/// with ASK to the target, which some clients only follow to a node they already know (redis-py
/// 5 does not learn a new shard's node from an ASK, redis/redis-py#2432).
/// Idempotent, so an interrupted move can be run again. `masters`: every primary.
fn migrate_slots(
    conns: &mut Conns,
    host: &str,
    src: (u16, &str),
    dst: (u16, &str),
    masters: &[u16],
    slots: &[u16],
) -> Result<(), String> {
    let set = |s: u16, verb: &str, id: &str| -> Vec<String> {
        vec!["CLUSTER".into(), "SETSLOT".into(), s.to_string(), verb.into(), id.into()]
    };
    let check = |r: super::resp::Reply, what: &str, tolerate: bool| match r {
        super::resp::Reply::Error(e) if !(tolerate && settled(&e)) => Err(format!("{}: {}", what, e)),
        _ => Ok(()),
    };
    let importing: Vec<Vec<String>> = slots.iter().map(|s| set(*s, "IMPORTING", src.1)).collect();
    for r in conns.pipeline(dst.0, &importing)? {
        check(r, "SETSLOT IMPORTING", true)?;
    }
    for &slot in slots {
        let listing = vec!["CLUSTER".into(), "GETKEYSINSLOT".into(), slot.to_string(), BATCH.to_string()];
        let mut replies = conns.pipeline(src.0, &[set(slot, "MIGRATING", dst.1), listing])?.into_iter();
        check(replies.next().ok_or("no reply")?, "SETSLOT MIGRATING", true)?;
        let keys = replies.next().ok_or("no reply")?.items();
        if !keys.is_empty() {
            move_keys(conns, host, src.0, dst.0, slot, Some(keys))?;
        }
        // The target first (it stops answering ASK-only), then the source. A source that gave
        // its last slot away may already be a replica of the target (replica migration).
        check(
            conns.call_raw(dst.0, &[b"CLUSTER", b"SETSLOT", slot.to_string().as_bytes(), b"NODE", dst.1.as_bytes()])?,
            "SETSLOT NODE",
            false,
        )?;
        check(
            conns.call_raw(src.0, &[b"CLUSTER", b"SETSLOT", slot.to_string().as_bytes(), b"NODE", dst.1.as_bytes()])?,
            "SETSLOT NODE",
            true,
        )?;
    }
    let node: Vec<Vec<String>> = slots.iter().map(|s| set(*s, "NODE", dst.1)).collect();
    for m in masters.iter().filter(|p| **p != src.0 && **p != dst.0) {
        let _ = conns.pipeline(*m, &node);
    }
    Ok(())
}

/// MIGRATE a slot's keys from `src` to `dst` in batches until the slot is empty; `first`: the
/// first batch, already listed. A MIGRATING slot takes no new keys, so a short listing that
/// moved is the last one.
fn move_keys(
    conns: &mut Conns,
    host: &str,
    src: u16,
    dst: u16,
    slot: u16,
    first: Option<Vec<Vec<u8>>>,
) -> Result<(), String> {
    let s = slot.to_string();
    let port = dst.to_string();
    let batch = BATCH.to_string();
    let mut failures = 0;
    let mut listed = first;
    loop {
        let keys = match listed.take() {
            Some(k) => k,
            None => conns.call(src, &["CLUSTER", "GETKEYSINSLOT", &s, &batch])?.items(),
        };
        if keys.is_empty() {
            return Ok(());
        }
        let mut args: Vec<&[u8]> =
            vec![b"MIGRATE", host.as_bytes(), port.as_bytes(), b"", b"0", b"10000", b"REPLACE", b"KEYS"];
        args.extend(keys.iter().map(|k| k.as_slice()));
        match conns.call_raw(src, &args)? {
            super::resp::Reply::Error(e) => {
                failures += 1;
                if failures > 5 {
                    return Err(format!("MIGRATE: {}", e));
                }
                std::thread::sleep(Duration::from_millis(100 * failures));
            }
            _ if keys.len() < BATCH => return Ok(()),
            _ => failures = 0,
        }
    }
}

/// Move one slot from `src` to `dst` (port, node id); idempotent, so an interrupted move can be
/// run again. `masters`: every primary, told the new owner at the end.
fn migrate_slot(
    conns: &mut Conns,
    host: &str,
    src: (u16, &str),
    dst: (u16, &str),
    masters: &[u16],
    slot: u16,
) -> Result<(), String> {
    migrate_slots(conns, host, src, dst, masters, &[slot])
}
