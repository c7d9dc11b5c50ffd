//! Stream metadata: XSETID (set the last ID, entries-added and max-deleted-ID) and XINFO
//! (CONSUMERS, GROUPS, STREAM [FULL], HELP).

use super::{id_bulk, lookup, parse_strict_id, reply_entry, subcommand_syntax};
use ferrocache_engine::notify;
use ferrocache_engine::stream::{ConsumerGroup, StreamEntry, StreamId, StreamValue, INVALID_ENTRIES_READ};
use ferrocache_node::util::{eq_ic, int_arg, ERR_NO_KEY, ERR_SYNTAX};
use ferrocache_node::{or_reply, Ctx, ErrorReply};
use ferrocache_protocol::resp::{Args, ReplyBuf};

// ------------------------------------------------------------------ XSETID

pub(super) fn xsetid(ctx: &mut Ctx, a: Args) {
    let out = &mut *ctx.out;
    let Some(id) = or_reply(out, parse_strict_id(&a[2], 0)) else {
        return;
    };
    let mut max_xdel = StreamId::MIN;
    let mut entries_added: i64 = -1;
    let mut i = 3;
    while i < a.len() {
        let more = a.len() - 1 - i;
        if eq_ic(&a[i], "entriesadded") && more > 0 {
            let Some(v) = int_arg(out, &a[i + 1]) else {
                return;
            };
            if v < 0 {
                return out.error("ERR entries_added must be positive");
            }
            entries_added = v;
            i += 2;
        } else if eq_ic(&a[i], "maxdeletedid") && more > 0 {
            let Some(v) = or_reply(out, parse_strict_id(&a[i + 1], 0)) else {
                return;
            };
            if id < v {
                return out.error("ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id");
            }
            max_xdel = v;
            i += 2;
        } else {
            return out.error(ERR_SYNTAX);
        }
    }
    let key = &a[1];
    let (mut db, out) = ctx.parts();
    let s = match lookup(&mut db, key, true) {
        Err(e) => return out.fail(&e),
        Ok(None) => return out.error(ERR_NO_KEY),
        Ok(Some(s)) => s,
    };
    if s.length > 0 {
        if id < s.last_live_id() {
            return out.error("ERR The ID specified in XSETID is smaller than the target stream top item");
        }
        if entries_added != -1 && s.length > entries_added as u64 {
            return out.error("ERR The entries_added specified in XSETID is smaller than the target stream length");
        }
    }
    s.last_id = id;
    if entries_added != -1 {
        s.entries_added = entries_added as u64;
    }
    if !max_xdel.is_zero() {
        s.max_deleted_entry_id = max_xdel;
    }
    out.ok();
    let dbi = db.db;
    db.fx.dirty += 1;
    db.fx.event(notify::STREAM, "xsetid", dbi, key);
}

// ------------------------------------------------------------------ XINFO

pub(super) fn xinfo_help(ctx: &mut Ctx, _a: Args) {
    let lines = [
        "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CONSUMERS <key> <groupname>",
        "    Show consumers of <groupname>.",
        "GROUPS <key>",
        "    Show the stream consumer groups.",
        "STREAM <key> [FULL [COUNT <count>]",
        "    Show information about the stream.",
        "HELP",
        "    Prints this help.",
    ];
    ctx.out.array(lines.len());
    for l in lines {
        ctx.out.simple(l);
    }
}

fn lag_reply(out: &mut ReplyBuf, s: &StreamValue, g: &ConsumerGroup) {
    match s.group_lag(g) {
        Some(l) => out.int(l),
        None => out.null(),
    }
}

fn entries_read_reply(out: &mut ReplyBuf, g: &ConsumerGroup) {
    if g.entries_read != INVALID_ENTRIES_READ {
        out.int(g.entries_read);
    } else {
        out.null();
    }
}

pub(super) fn xinfo(ctx: &mut Ctx, a: Args) {
    let now = ctx.now_ms as i64;
    let opt = a[1].to_ascii_lowercase();
    let key = &a[2];
    // Parse XINFO STREAM options before the lookup? Redis looks the key up first.
    let (mut db, out) = ctx.parts();
    let s = match lookup(&mut db, key, false) {
        Err(e) => return out.fail(&e),
        Ok(None) => return out.error(ERR_NO_KEY),
        Ok(Some(s)) => s,
    };
    if opt == b"consumers" && a.len() == 4 {
        let Some(g) = s.groups.get(&a[3] as &[u8]) else {
            return out.error(&format!(
                "NOGROUP No such consumer group '{}' for key name '{}'",
                String::from_utf8_lossy(&a[3]),
                String::from_utf8_lossy(key)
            ));
        };
        out.array(g.consumers.len());
        for (name, c) in &g.consumers {
            out.map(3);
            out.bulk(b"name");
            out.bulk(name);
            out.bulk(b"pending");
            out.int(c.pel.len() as i64);
            out.bulk(b"idle");
            out.int((now - c.seen_time).max(0));
        }
    } else if opt == b"groups" && a.len() == 3 {
        out.array(s.groups.len());
        for (name, g) in &s.groups {
            out.map(6);
            out.bulk(b"name");
            out.bulk(name);
            out.bulk(b"consumers");
            out.int(g.consumers.len() as i64);
            out.bulk(b"pending");
            out.int(g.pel.len() as i64);
            out.bulk(b"last-delivered-id");
            id_bulk(out, g.last_id);
            out.bulk(b"entries-read");
            entries_read_reply(out, g);
            out.bulk(b"lag");
            lag_reply(out, s, g);
        }
    } else if opt == b"stream" {
        let optc = a.len() - 3;
        let mut full = true;
        let mut count: i64 = 10;
        if optc == 0 {
            full = false;
        } else {
            if (optc != 1 && optc != 3) || !eq_ic(&a[3], "full") {
                return subcommand_syntax(out, &a);
            }
            if optc == 3 {
                if !eq_ic(&a[4], "count") {
                    return subcommand_syntax(out, &a);
                }
                let Some(c) = int_arg(out, &a[5]) else { return };
                count = if c < 0 { 10 } else { c };
            }
        }
        out.map(if full { 9 } else { 10 });
        out.bulk(b"length");
        out.int(s.length as i64);
        out.bulk(b"radix-tree-keys");
        out.int(s.rax_keys() as i64);
        out.bulk(b"radix-tree-nodes");
        out.int(s.rax_nodes() as i64);
        out.bulk(b"last-generated-id");
        id_bulk(out, s.last_id);
        out.bulk(b"max-deleted-entry-id");
        id_bulk(out, s.max_deleted_entry_id);
        out.bulk(b"entries-added");
        out.int(s.entries_added as i64);
        out.bulk(b"recorded-first-entry-id");
        id_bulk(out, s.first_id);
        let lim = if count == 0 { usize::MAX } else { count as usize };
        if !full {
            out.bulk(b"groups");
            out.int(s.groups.len() as i64);
            out.bulk(b"first-entry");
            match s.range(StreamId::MIN, StreamId::MAX, false).next() {
                Some(e) => reply_entry(out, e),
                None => out.null(),
            }
            out.bulk(b"last-entry");
            match s.range(StreamId::MIN, StreamId::MAX, true).next() {
                Some(e) => reply_entry(out, e),
                None => out.null(),
            }
        } else {
            out.bulk(b"entries");
            let items: Vec<&StreamEntry> = s.range(StreamId::MIN, StreamId::MAX, false).take(lim).collect();
            out.array(items.len());
            for e in items {
                reply_entry(out, e);
            }
            out.bulk(b"groups");
            out.array(s.groups.len());
            for (name, g) in &s.groups {
                out.map(7);
                out.bulk(b"name");
                out.bulk(name);
                out.bulk(b"last-delivered-id");
                id_bulk(out, g.last_id);
                out.bulk(b"entries-read");
                entries_read_reply(out, g);
                out.bulk(b"lag");
                lag_reply(out, s, g);
                out.bulk(b"pel-count");
                out.int(g.pel.len() as i64);
                out.bulk(b"pending");
                let pel: Vec<_> = g.pel.iter().take(lim).collect();
                out.array(pel.len());
                for (id, n) in pel {
                    out.array(4);
                    id_bulk(out, *id);
                    out.bulk(&n.consumer);
                    out.int(n.delivery_time);
                    out.int(n.delivery_count as i64);
                }
                out.bulk(b"consumers");
                out.array(g.consumers.len());
                for (cn, c) in &g.consumers {
                    out.map(4);
                    out.bulk(b"name");
                    out.bulk(cn);
                    out.bulk(b"seen-time");
                    out.int(c.seen_time);
                    out.bulk(b"pel-count");
                    out.int(c.pel.len() as i64);
                    out.bulk(b"pending");
                    let ids: Vec<_> = c.pel.iter().take(lim).collect();
                    out.array(ids.len());
                    for id in ids {
                        let n = &g.pel[id];
                        out.array(3);
                        id_bulk(out, *id);
                        out.int(n.delivery_time);
                        out.int(n.delivery_count as i64);
                    }
                }
            }
        }
    } else {
        subcommand_syntax(out, &a);
    }
}
