//! Sorted set commands (Redis 7.0 t_zset.c semantics).

use crate::zsets_args::ZaddCommand;
use ferrocache_engine::value::FastMap;
use ferrocache_engine::zset::{parse_score, LexRange, ScoreRange, SortedSet, ZsetLimits};
use ferrocache_engine::{notify, Db, Value};
use ferrocache_node::client::BlockRequest;
use ferrocache_node::table::{flags::*, Command};
use ferrocache_node::util::*;
use ferrocache_node::{or_reply, CommandError, Ctx, ErrorReply};
use ferrocache_protocol::resp::{Args, ReplyBuf};
use rand::Rng;

const G: &str = "sorted-set";
const W: u64 = WRITE | DENYOOM;

pub static COMMANDS: &[Command] = &[
    Command::new("zadd", -4, W | FAST, (1, 1, 1), zadd).group(G),
    Command::new("zincrby", 4, W | FAST, (1, 1, 1), zincrby).group(G),
    Command::new("zrem", -3, WRITE | FAST, (1, 1, 1), zrem).group(G),
    Command::new("zcard", 2, READONLY | FAST, (1, 1, 1), zcard).group(G),
    Command::new("zcount", 4, READONLY | FAST, (1, 1, 1), zcount).group(G),
    Command::new("zlexcount", 4, READONLY | FAST, (1, 1, 1), zlexcount).group(G),
    Command::new("zscore", 3, READONLY | FAST, (1, 1, 1), zscore).group(G),
    Command::new("zmscore", -3, READONLY | FAST, (1, 1, 1), zmscore).group(G),
    Command::new("zrank", 3, READONLY | FAST, (1, 1, 1), zrank).group(G),
    Command::new("zrevrank", 3, READONLY | FAST, (1, 1, 1), zrevrank).group(G),
    Command::new("zrange", -4, READONLY, (1, 1, 1), zrange).group(G),
    Command::new("zrangestore", -5, W, (1, 2, 1), zrangestore).group(G),
    Command::new("zrangebyscore", -4, READONLY, (1, 1, 1), zrangebyscore).group(G),
    Command::new("zrevrangebyscore", -4, READONLY, (1, 1, 1), zrevrangebyscore).group(G),
    Command::new("zrangebylex", -4, READONLY, (1, 1, 1), zrangebylex).group(G),
    Command::new("zrevrangebylex", -4, READONLY, (1, 1, 1), zrevrangebylex).group(G),
    Command::new("zrevrange", -4, READONLY, (1, 1, 1), zrevrange).group(G),
    Command::new("zremrangebyrank", 4, WRITE, (1, 1, 1), zremrangebyrank).group(G),
    Command::new("zremrangebyscore", 4, WRITE, (1, 1, 1), zremrangebyscore).group(G),
    Command::new("zremrangebylex", 4, WRITE, (1, 1, 1), zremrangebylex).group(G),
    Command::new("zunion", -3, READONLY, (0, 0, 0), zunion).group(G).keys(keys_numkeys1),
    Command::new("zinter", -3, READONLY, (0, 0, 0), zinter).group(G).keys(keys_numkeys1),
    Command::new("zdiff", -3, READONLY, (0, 0, 0), zdiff).group(G).keys(keys_numkeys1),
    Command::new("zintercard", -3, READONLY, (0, 0, 0), zintercard).group(G).keys(keys_numkeys1),
    Command::new("zunionstore", -4, W, (1, 1, 1), zunionstore).group(G).keys(keys_store),
    Command::new("zinterstore", -4, W, (1, 1, 1), zinterstore).group(G).keys(keys_store),
    Command::new("zdiffstore", -4, W, (1, 1, 1), zdiffstore).group(G).keys(keys_store),
    Command::new("zpopmin", -2, WRITE | FAST, (1, 1, 1), zpopmin).group(G),
    Command::new("zpopmax", -2, WRITE | FAST, (1, 1, 1), zpopmax).group(G),
    Command::new("zmpop", -4, WRITE, (0, 0, 0), zmpop).group(G).keys(keys_numkeys1),
    Command::new("bzpopmin", -3, WRITE | NOSCRIPT | FAST | BLOCKING, (1, -2, 1), bzpopmin).group(G),
    Command::new("bzpopmax", -3, WRITE | NOSCRIPT | FAST | BLOCKING, (1, -2, 1), bzpopmax).group(G),
    Command::new("bzmpop", -5, WRITE | BLOCKING, (0, 0, 0), bzmpop).group(G).keys(keys_numkeys2),
    Command::new("zrandmember", -2, READONLY, (1, 1, 1), zrandmember).group(G),
    Command::new("zscan", -3, READONLY, (1, 1, 1), zscan).group(G),
];

// ------------------------------------------------------------------ key specs

/// Keys counted by a numkeys argument at `idx`, following it.
fn numkeys_keys(a: Args, idx: usize) -> Vec<usize> {
    let Some(n) = a.get(idx).and_then(parse_i64) else { return Vec::new() };
    if n < 1 {
        return Vec::new();
    }
    let n = (n as usize).min(a.len().saturating_sub(idx + 1));
    (idx + 1..idx + 1 + n).collect()
}
fn keys_numkeys1(a: Args) -> Vec<usize> {
    numkeys_keys(a, 1)
}
fn keys_numkeys2(a: Args) -> Vec<usize> {
    numkeys_keys(a, 2)
}
fn keys_store(a: Args) -> Vec<usize> {
    let mut v = vec![1];
    v.extend(numkeys_keys(a, 2));
    v
}

// ------------------------------------------------------------------ helpers

pub fn zlimits(ctx: &Ctx) -> ZsetLimits {
    let l = ctx.limits();
    ZsetLimits { max_listpack_entries: l.zset_max_listpack_entries, max_listpack_value: l.zset_max_listpack_value }
}

/// Read access to a sorted set: Ok(None) when missing, Err(WrongType) for another type.
pub fn read_zset<'d>(db: &'d mut Db<'_, '_>, key: &[u8]) -> Result<Option<&'d SortedSet>, CommandError> {
    match db.get(key) {
        None => Ok(None),
        Some(e) => match &e.value {
            Value::ZSet(z) => Ok(Some(z)),
            _ => Err(CommandError::WrongType),
        },
    }
}

/// Write access to an existing sorted set: Ok(None) when missing, Err(WrongType) for another type.
pub fn write_zset<'d>(db: &'d mut Db<'_, '_>, key: &[u8]) -> Result<Option<&'d mut SortedSet>, CommandError> {
    match db.get_mut(key) {
        None => Ok(None),
        Some(e) => match &mut e.value {
            Value::ZSet(z) => Ok(Some(z)),
            _ => Err(CommandError::WrongType),
        },
    }
}

/// Store `z` at `dst` (Redis setKey) or delete `dst` when `z` is empty; records the
/// event. Returns the stored length.
pub fn store_zset(db: &mut Db<'_, '_>, dst: &[u8], z: SortedSet, event: &'static str) -> usize {
    let n = z.len();
    if n > 0 {
        db.set(dst, Value::ZSet(Box::new(z)), false);
        db.modified(dst, notify::ZSET, event);
        let d = db.db;
        db.fx.ready.push((d, ferrocache_engine::SmallBytes::new(dst)));
    } else if db.remove(dst).is_some() {
        db.modified(dst, notify::GENERIC, "del");
    }
    n
}

/// Emit (member, score) pairs: flat in RESP2, nested pairs in RESP3 when `withscores`.
fn emit_items<'x, I: Iterator<Item = (&'x [u8], f64)>>(out: &mut ReplyBuf, n: usize, it: I, withscores: bool) {
    if withscores && !out.resp3 {
        out.array(n * 2);
    } else {
        out.array(n);
    }
    for (m, s) in it {
        if withscores && out.resp3 {
            out.array(2);
        }
        out.bulk(m);
        if withscores {
            out.double(s);
        }
    }
}

/// Redis's getLongFromObjectOrReply / getPositiveLongFromObjectOrReply family.
fn range_long(out: &mut ReplyBuf, a: &[u8], min: i64, max: i64, msg: Option<&str>) -> Option<i64> {
    let Some(v) = parse_i64(a) else {
        out.error(msg.map(|m| format!("ERR {m}")).as_deref().unwrap_or(ERR_NOT_INT));
        return None;
    };
    if v < min || v > max {
        match msg {
            Some(m) => out.error(&format!("ERR {m}")),
            None => out.error(&format!("ERR value is out of range, value must between {min} and {max}")),
        }
        return None;
    }
    Some(v)
}

// ------------------------------------------------------------------ ZADD / ZINCRBY / ZREM

fn zadd(ctx: &mut Ctx, a: Args) {
    zadd_generic(ctx, a, false)
}
fn zincrby(ctx: &mut Ctx, a: Args) {
    zadd_generic(ctx, a, true)
}

fn zadd_generic(ctx: &mut Ctx, a: Args, incr_cmd: bool) {
    match ZaddCommand::parse(a, incr_cmd) {
        Ok(c) => c.apply(ctx),
        Err(e) => ctx.fail(&e),
    }
}

impl ZaddCommand<'_> {
    fn apply(&self, ctx: &mut Ctx) {
        let f = self.flags();
        let lim = zlimits(ctx);
        let key = self.key;
        let (mut db, out) = ctx.parts();
        let exists = match db.get_mut(key) {
            None => false,
            Some(e) if matches!(e.value, Value::ZSet(_)) => true,
            Some(_) => return out.error(ERR_WRONGTYPE),
        };
        let (mut added, mut updated, mut processed) = (0i64, 0i64, 0i64);
        let mut score = 0.0;
        let mut nan = false;
        if exists || !f.xx {
            if !exists {
                let z = SortedSet::with_hint(1, self.elements[0].1.len(), &lim);
                db.set(key, Value::ZSet(Box::new(z)), false);
                let d = db.db;
                db.fx.ready.push((d, ferrocache_engine::SmallBytes::new(key)));
            }
            let Some(Value::ZSet(z)) = db.get_mut(key).map(|e| &mut e.value) else { unreachable!() };
            for &(s, m) in &self.elements {
                match z.zadd(m, s, f, &lim) {
                    Err(e) => {
                        out.error(e.message());
                        nan = true;
                        break;
                    }
                    Ok(r) => {
                        if r.is_added() {
                            added += 1;
                        }
                        if r.is_updated() {
                            updated += 1;
                        }
                        if let Some(ns) = r.new_score() {
                            processed += 1;
                            score = ns;
                        }
                    }
                }
            }
        }
        if !nan {
            if f.incr {
                if processed > 0 {
                    out.double(score);
                } else {
                    out.null();
                }
            } else {
                out.int(if self.ch { added + updated } else { added });
            }
        }
        if added > 0 || updated > 0 {
            db.modified(key, notify::ZSET, if f.incr { "zincr" } else { "zadd" });
        }
        db.remove_if_empty(key);
    }
}

fn zrem(ctx: &mut Ctx, a: Args) {
    let key = &a[1];
    let (mut db, out) = ctx.parts();
    let Some(z) = or_reply(out, write_zset(&mut db, key)) else { return };
    let Some(z) = z else { return out.int(0) };
    let mut deleted = 0;
    for m in a.iter().skip(2) {
        if z.remove(m) {
            deleted += 1;
        }
        if z.is_empty() {
            break;
        }
    }
    if deleted > 0 {
        db.modified(key, notify::ZSET, "zrem");
        if db.remove_if_empty(key) {
            let d = db.db;
            db.fx.event(notify::GENERIC, "del", d, key);
        }
    }
    out.int(deleted);
}

// ------------------------------------------------------------------ simple reads

fn zcard(ctx: &mut Ctx, a: Args) {
    let (mut db, out) = ctx.parts();
    if let Some(z) = or_reply(out, read_zset(&mut db, &a[1])) {
        out.int(z.map_or(0, |z| z.len()) as i64);
    }
}

fn zcount(ctx: &mut Ctx, a: Args) {
    let r = match ScoreRange::parse(&a[2], &a[3]) {
        Ok(r) => r,
        Err(e) => return ctx.out.error(e.message()),
    };
    let (mut db, out) = ctx.parts();
    if let Some(z) = or_reply(out, read_zset(&mut db, &a[1])) {
        out.int(z.map_or(0, |z| z.count_in_score_range(&r)) as i64);
    }
}

fn zlexcount(ctx: &mut Ctx, a: Args) {
    let r = match LexRange::parse(&a[2], &a[3]) {
        Ok(r) => r,
        Err(e) => return ctx.out.error(e.message()),
    };
    let (mut db, out) = ctx.parts();
    if let Some(z) = or_reply(out, read_zset(&mut db, &a[1])) {
        out.int(z.map_or(0, |z| z.count_in_lex_range(&r)) as i64);
    }
}

fn zscore(ctx: &mut Ctx, a: Args) {
    let (mut db, out) = ctx.parts();
    if let Some(z) = or_reply(out, read_zset(&mut db, &a[1])) {
        match z.and_then(|z| z.score(&a[2])) {
            Some(s) => out.double(s),
            None => out.null(),
        }
    }
}

fn zmscore(ctx: &mut Ctx, a: Args) {
    let (mut db, out) = ctx.parts();
    if let Some(z) = or_reply(out, read_zset(&mut db, &a[1])) {
        out.array(a.len() - 2);
        for m in a.iter().skip(2) {
            match z.and_then(|z| z.score(m)) {
                Some(s) => out.double(s),
                None => out.null(),
            }
        }
    }
}

fn zrank_generic(ctx: &mut Ctx, a: Args, rev: bool) {
    let (mut db, out) = ctx.parts();
    if let Some(z) = or_reply(out, read_zset(&mut db, &a[1])) {
        match z.and_then(|z| z.rank(&a[2], rev)) {
            Some(r) => out.int(r as i64),
            None => out.null(),
        }
    }
}
fn zrank(ctx: &mut Ctx, a: Args) {
    zrank_generic(ctx, a, false)
}
fn zrevrank(ctx: &mut Ctx, a: Args) {
    zrank_generic(ctx, a, true)
}

// ------------------------------------------------------------------ ZRANGE family

#[derive(Clone, Copy, PartialEq, Eq)]
enum RangeType {
    Auto,
    Rank,
    Score,
    Lex,
}
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    Auto,
    Fwd,
    Rev,
}

fn zrange(ctx: &mut Ctx, a: Args) {
    zrange_generic(ctx, a, 1, false, RangeType::Auto, Dir::Auto)
}
fn zrangestore(ctx: &mut Ctx, a: Args) {
    zrange_generic(ctx, a, 2, true, RangeType::Auto, Dir::Auto)
}
fn zrevrange(ctx: &mut Ctx, a: Args) {
    zrange_generic(ctx, a, 1, false, RangeType::Rank, Dir::Rev)
}
fn zrangebyscore(ctx: &mut Ctx, a: Args) {
    zrange_generic(ctx, a, 1, false, RangeType::Score, Dir::Fwd)
}
fn zrevrangebyscore(ctx: &mut Ctx, a: Args) {
    zrange_generic(ctx, a, 1, false, RangeType::Score, Dir::Rev)
}
fn zrangebylex(ctx: &mut Ctx, a: Args) {
    zrange_generic(ctx, a, 1, false, RangeType::Lex, Dir::Fwd)
}
fn zrevrangebylex(ctx: &mut Ctx, a: Args) {
    zrange_generic(ctx, a, 1, false, RangeType::Lex, Dir::Rev)
}

fn zrange_generic(ctx: &mut Ctx, a: Args, start: usize, store: bool, mut rt: RangeType, mut dir: Dir) {
    let key = &a[start];
    let (mut minidx, mut maxidx) = (start + 1, start + 2);
    let mut withscores = false;
    let (mut offset, mut limit) = (0i64, -1i64);
    let mut j = start + 3;
    while j < a.len() {
        let left = a.len() - j - 1;
        let o = &a[j];
        if !store && eq_ic(o, "withscores") {
            withscores = true;
        } else if eq_ic(o, "limit") && left >= 2 {
            let Some(off) = int_arg(ctx.out, &a[j + 1]) else { return };
            let Some(lim) = int_arg(ctx.out, &a[j + 2]) else { return };
            offset = off;
            limit = lim;
            j += 2;
        } else if dir == Dir::Auto && eq_ic(o, "rev") {
            dir = Dir::Rev;
        } else if rt == RangeType::Auto && eq_ic(o, "bylex") {
            rt = RangeType::Lex;
        } else if rt == RangeType::Auto && eq_ic(o, "byscore") {
            rt = RangeType::Score;
        } else {
            return ctx.out.error(ERR_SYNTAX);
        }
        j += 1;
    }
    if dir == Dir::Auto {
        dir = Dir::Fwd;
    }
    if rt == RangeType::Auto {
        rt = RangeType::Rank;
    }
    if limit != -1 && rt == RangeType::Rank {
        return ctx.out.error("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX");
    }
    if withscores && rt == RangeType::Lex {
        return ctx.out.error("ERR syntax error, WITHSCORES not supported in combination with BYLEX");
    }
    let rev = dir == Dir::Rev;
    if rev && rt != RangeType::Rank {
        std::mem::swap(&mut minidx, &mut maxidx);
    }
    let (mut rstart, mut rend) = (0i64, 0i64);
    let mut srange = None;
    let mut lrange = None;
    match rt {
        RangeType::Rank | RangeType::Auto => {
            let Some(s) = int_arg(ctx.out, &a[minidx]) else { return };
            let Some(e) = int_arg(ctx.out, &a[maxidx]) else { return };
            rstart = s;
            rend = e;
        }
        RangeType::Score => match ScoreRange::parse(&a[minidx], &a[maxidx]) {
            Ok(r) => srange = Some(r),
            Err(e) => return ctx.out.error(e.message()),
        },
        RangeType::Lex => match LexRange::parse(&a[minidx], &a[maxidx]) {
            Ok(r) => lrange = Some(r),
            Err(e) => return ctx.out.error(e.message()),
        },
    }
    let lim = zlimits(ctx);
    let (mut db, out) = ctx.parts();
    let z = match read_zset(&mut db, key) {
        Err(e) => return out.fail(&e),
        Ok(None) => {
            if store {
                out.int(0);
                store_zset(&mut db, &a[1], SortedSet::new(), "zrangestore");
            } else {
                out.empty_array();
            }
            return;
        }
        Ok(Some(z)) => z,
    };
    let it = match rt {
        RangeType::Score => z.range_by_score(srange.as_ref().unwrap(), rev, offset, limit),
        RangeType::Lex => z.range_by_lex(lrange.as_ref().unwrap(), rev, offset, limit),
        _ => match range_indices(rstart, rend, z.len()) {
            Some((s, e)) => z.range_by_rank(s, e, rev),
            None => z.range_by_rank(1, 0, rev),
        },
    };
    let n = it.len();
    if !store {
        return emit_items(out, n, it, withscores);
    }
    let mut dst = if rt == RangeType::Rank { SortedSet::with_hint(n, 0, &lim) } else { SortedSet::new() };
    for (m, s) in it {
        dst.insert(m, s, &lim);
    }
    out.int(n as i64);
    store_zset(&mut db, &a[1], dst, "zrangestore");
}

// ------------------------------------------------------------------ ZREMRANGEBY*

fn zremrangebyrank(ctx: &mut Ctx, a: Args) {
    let Some(s) = int_arg(ctx.out, &a[2]) else { return };
    let Some(e) = int_arg(ctx.out, &a[3]) else { return };
    zrem_range(
        ctx,
        a,
        |z| match range_indices(s, e, z.len()) {
            Some((s, e)) => z.remove_range_by_rank(s, e),
            None => 0,
        },
        "zremrangebyrank",
    )
}

fn zremrangebyscore(ctx: &mut Ctx, a: Args) {
    let r = match ScoreRange::parse(&a[2], &a[3]) {
        Ok(r) => r,
        Err(e) => return ctx.out.error(e.message()),
    };
    zrem_range(ctx, a, |z| z.remove_range_by_score(&r), "zremrangebyscore")
}

fn zremrangebylex(ctx: &mut Ctx, a: Args) {
    let r = match LexRange::parse(&a[2], &a[3]) {
        Ok(r) => r,
        Err(e) => return ctx.out.error(e.message()),
    };
    zrem_range(ctx, a, |z| z.remove_range_by_lex(&r), "zremrangebylex")
}

fn zrem_range(ctx: &mut Ctx, a: Args, f: impl FnOnce(&mut SortedSet) -> usize, event: &'static str) {
    let key = &a[1];
    let (mut db, out) = ctx.parts();
    let Some(z) = or_reply(out, write_zset(&mut db, key)) else { return };
    let Some(z) = z else { return out.int(0) };
    let n = f(z);
    if n > 0 {
        db.modified(key, notify::ZSET, event);
        if db.remove_if_empty(key) {
            let d = db.db;
            db.fx.event(notify::GENERIC, "del", d, key);
        }
    }
    out.int(n as i64);
}

// ------------------------------------------------------------------ ZUNION / ZINTER / ZDIFF

#[derive(Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Aggr {
    Sum,
    Min,
    Max,
}

fn aggregate(target: &mut f64, v: f64, ag: Aggr) {
    match ag {
        Aggr::Sum => {
            *target += v;
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Aggr::Min => {
            if v < *target {
                *target = v
            }
        }
        Aggr::Max => {
            if v > *target {
                *target = v
            }
        }
    }
}

/// One input of a set operation (a sorted set or a plain set with score 1).
#[derive(Default)]
struct OpSrc {
    items: Vec<(Vec<u8>, f64)>,
    index: FastMap<Vec<u8>, f64>,
    weight: f64,
}

impl OpSrc {
    fn find(&self, m: &[u8]) -> Option<f64> {
        self.index.get(m).copied()
    }
}

fn zunion(ctx: &mut Ctx, a: Args) {
    zsetop(ctx, a, None, 1, SetOp::Union, false)
}
fn zinter(ctx: &mut Ctx, a: Args) {
    zsetop(ctx, a, None, 1, SetOp::Inter, false)
}
fn zdiff(ctx: &mut Ctx, a: Args) {
    zsetop(ctx, a, None, 1, SetOp::Diff, false)
}
fn zintercard(ctx: &mut Ctx, a: Args) {
    zsetop(ctx, a, None, 1, SetOp::Inter, true)
}
fn zunionstore(ctx: &mut Ctx, a: Args) {
    zsetop(ctx, a, Some(1), 2, SetOp::Union, false)
}
fn zinterstore(ctx: &mut Ctx, a: Args) {
    zsetop(ctx, a, Some(1), 2, SetOp::Inter, false)
}
fn zdiffstore(ctx: &mut Ctx, a: Args) {
    zsetop(ctx, a, Some(1), 2, SetOp::Diff, false)
}

fn zsetop(ctx: &mut Ctx, a: Args, dst: Option<usize>, numidx: usize, op: SetOp, card_only: bool) {
    let Some(setnum) = int_arg(ctx.out, &a[numidx]) else { return };
    if setnum < 1 {
        let n = ctx.cmd.full_name();
        return ctx.out.error(&format!("ERR at least 1 input key is needed for '{}' command", n));
    }
    if setnum > (a.len() - (numidx + 1)) as i64 {
        return ctx.out.error(ERR_SYNTAX);
    }
    let setnum = setnum as usize;
    let lim = zlimits(ctx);
    let mut srcs: Vec<OpSrc> = Vec::with_capacity(setnum);
    {
        let (mut db, out) = ctx.parts();
        for i in 0..setnum {
            let key = &a[numidx + 1 + i];
            let mut s = OpSrc { weight: 1.0, ..Default::default() };
            match db.get(key).map(|e| &e.value) {
                None => {}
                Some(Value::ZSet(z)) => s.items = z.iter().map(|(m, sc)| (m.to_vec(), sc)).collect(),
                Some(Value::Set(st)) => s.items = st.members().into_iter().map(|m| (m, 1.0)).collect(),
                Some(_) => return out.error(ERR_WRONGTYPE),
            }
            srcs.push(s);
        }
    }
    let mut j = numidx + 1 + setnum;
    let mut ag = Aggr::Sum;
    let mut withscores = false;
    let mut limit = 0i64;
    while j < a.len() {
        let remaining = a.len() - j;
        if op != SetOp::Diff && !card_only && remaining > setnum && eq_ic(&a[j], "weights") {
            j += 1;
            for s in srcs.iter_mut() {
                match parse_score(&a[j]) {
                    Some(w) => s.weight = w,
                    None => return ctx.out.error("ERR weight value is not a float"),
                }
                j += 1;
            }
        } else if op != SetOp::Diff && !card_only && remaining >= 2 && eq_ic(&a[j], "aggregate") {
            let v = &a[j + 1];
            ag = if eq_ic(v, "sum") {
                Aggr::Sum
            } else if eq_ic(v, "min") {
                Aggr::Min
            } else if eq_ic(v, "max") {
                Aggr::Max
            } else {
                return ctx.out.error(ERR_SYNTAX);
            };
            j += 2;
        } else if dst.is_none() && !card_only && eq_ic(&a[j], "withscores") {
            withscores = true;
            j += 1;
        } else if card_only && remaining >= 2 && eq_ic(&a[j], "limit") {
            match parse_i64(&a[j + 1]) {
                Some(l) if l >= 0 => limit = l,
                _ => return ctx.out.error("ERR LIMIT can't be negative"),
            }
            j += 2;
        } else {
            return ctx.out.error(ERR_SYNTAX);
        }
    }
    if op != SetOp::Diff {
        srcs.sort_by_key(|s| s.items.len());
    }
    let need_index = |i: usize| match op {
        SetOp::Union => false,
        SetOp::Inter => i > 0,
        SetOp::Diff => i > 0,
    };
    for (i, s) in srcs.iter_mut().enumerate() {
        if need_index(i) {
            s.index = s.items.iter().map(|(m, sc)| (m.clone(), *sc)).collect();
        }
    }
    let mut res = SortedSet::new_skiplist();
    let mut card = 0i64;
    match op {
        SetOp::Inter => {
            if !srcs[0].items.is_empty() {
                'outer: for (m, sc) in srcs[0].items.iter() {
                    let mut score = srcs[0].weight * sc;
                    if score.is_nan() {
                        score = 0.0;
                    }
                    for s in srcs[1..].iter() {
                        match s.find(m) {
                            Some(v) => aggregate(&mut score, v * s.weight, ag),
                            None => continue 'outer,
                        }
                    }
                    if card_only {
                        card += 1;
                        if limit > 0 && card >= limit {
                            break;
                        }
                    } else {
                        res.insert(m, score, &lim);
                    }
                }
            }
        }
        SetOp::Union => {
            let mut acc: FastMap<&[u8], f64> = FastMap::default();
            let mut order: Vec<&[u8]> = Vec::new();
            for s in srcs.iter() {
                for (m, sc) in s.items.iter() {
                    let mut score = s.weight * sc;
                    if score.is_nan() {
                        score = 0.0;
                    }
                    match acc.get_mut(m.as_slice()) {
                        Some(t) => aggregate(t, score, ag),
                        None => {
                            acc.insert(m, score);
                            order.push(m);
                        }
                    }
                }
            }
            for m in order {
                res.insert(m, acc[m], &lim);
            }
        }
        SetOp::Diff => {
            for (m, sc) in srcs[0].items.iter() {
                if srcs[1..].iter().all(|s| s.find(m).is_none()) {
                    res.insert(m, *sc, &lim);
                }
            }
        }
    }
    let (mut db, out) = ctx.parts();
    if let Some(d) = dst {
        res.convert_to_listpack_if_fits(&lim);
        let ev = match op {
            SetOp::Union => "zunionstore",
            SetOp::Inter => "zinterstore",
            SetOp::Diff => "zdiffstore",
        };
        let n = store_zset(&mut db, &a[d], res, ev);
        out.int(n as i64);
    } else if card_only {
        out.int(card);
    } else {
        emit_items(out, res.len(), res.iter(), withscores);
    }
}

// ------------------------------------------------------------------ pops

/// Redis's genericZpopCommand. `count` -1 is a plain single pop. Returns the key popped from
/// and the number of elements popped.
#[allow(clippy::too_many_arguments)]
fn generic_zpop(
    db: &mut Db<'_, '_>,
    out: &mut ReplyBuf,
    keys: &[&[u8]],
    max: bool,
    emitkey: bool,
    count: i64,
    nested: bool,
    nil_when_empty: bool,
) -> Option<(Vec<u8>, usize)> {
    let mut found: Option<&[u8]> = None;
    for k in keys {
        match db.get_mut(k).map(|e| &e.value) {
            None => continue,
            Some(Value::ZSet(_)) => {
                found = Some(k);
                break;
            }
            Some(_) => {
                out.error(ERR_WRONGTYPE);
                return None;
            }
        }
    }
    let Some(key) = found else {
        if nil_when_empty {
            out.null_array();
        } else {
            out.empty_array();
        }
        return None;
    };
    if count == 0 {
        out.empty_array();
        return None;
    }
    let count = if count == -1 { 1 } else { count as usize };
    let Some(Value::ZSet(z)) = db.get_mut(key).map(|e| &mut e.value) else { unreachable!() };
    let popped = z.pop(count, max);
    let n = popped.len();
    match (nested, emitkey) {
        (false, false) => out.array(n * 2),
        (true, false) => out.array(n),
        (false, true) => {
            out.array(n * 2 + 1);
            out.bulk(key);
        }
        (true, true) => {
            out.array(2);
            out.bulk(key);
            out.array(n);
        }
    }
    for (m, s) in &popped {
        if nested {
            out.array(2);
        }
        out.bulk(m);
        out.double(*s);
    }
    db.modified(key, notify::ZSET, if max { "zpopmax" } else { "zpopmin" });
    db.fx.dirty += n.saturating_sub(1) as u64;
    if db.remove_if_empty(key) {
        let d = db.db;
        db.fx.event(notify::GENERIC, "del", d, key);
    }
    Some((key.to_vec(), n))
}

fn zpop_cmd(ctx: &mut Ctx, a: Args, max: bool) {
    if a.len() > 3 {
        return ctx.out.error(ERR_SYNTAX);
    }
    let mut count = -1;
    if a.len() == 3 {
        let Some(c) = range_long(ctx.out, &a[2], 0, i64::MAX, Some("value is out of range, must be positive")) else {
            return;
        };
        count = c;
    }
    let nested = ctx.out.resp3 && count != -1;
    let (mut db, out) = ctx.parts();
    generic_zpop(&mut db, out, &[&a[1]], max, false, count, nested, false);
}
fn zpopmin(ctx: &mut Ctx, a: Args) {
    zpop_cmd(ctx, a, false)
}
fn zpopmax(ctx: &mut Ctx, a: Args) {
    zpop_cmd(ctx, a, true)
}

fn pop_name(max: bool) -> Vec<u8> {
    if max {
        b"ZPOPMAX".to_vec()
    } else {
        b"ZPOPMIN".to_vec()
    }
}

/// Parse a blocking timeout in seconds (getTimeoutFromObjectOrReply): absolute ms, 0 = forever.
pub fn parse_timeout(ctx: &mut Ctx, a: &[u8]) -> Option<u64> {
    let Some(f) = parse_f64(a) else {
        ctx.out.error("ERR timeout is not a float or out of range");
        return None;
    };
    let t = (f * 1000.0).ceil();
    if t < 0.0 {
        ctx.out.error("ERR timeout is negative");
        return None;
    }
    let t = if t >= i64::MAX as f64 { i64::MAX as u64 / 2 } else { t as u64 };
    Some(if t > 0 { ctx.now_ms.saturating_add(t) } else { 0 })
}

/// BZPOPMIN/BZPOPMAX/BZMPOP core (blockingGenericZpopCommand).
fn blocking_zpop(ctx: &mut Ctx, keys: &[&[u8]], max: bool, deadline: u64, count: i64, nested: bool) {
    let dbi = ctx.client.db;
    let in_exec = ctx.client.in_exec;
    let candidates = crate::lists::serving_keys(ctx, keys);
    let (mut db, out) = ctx.parts();
    for k in &candidates {
        match db.get_mut(k).map(|e| &e.value) {
            None => continue,
            Some(Value::ZSet(z)) if z.is_empty() => continue,
            Some(Value::ZSet(_)) => {}
            Some(_) => return out.error(ERR_WRONGTYPE),
        }
        let Some((key, n)) = generic_zpop(&mut db, out, &[k], max, true, count, nested, nested) else { return };
        let mut argv = vec![pop_name(max), key];
        if count != -1 {
            argv.push(n.to_string().into_bytes());
        }
        db.fx.propagate(dbi, argv);
        ctx.propagate_original = false;
        return;
    }
    if in_exec {
        return out.null_array();
    }
    ctx.after_reply(ferrocache_node::client::Then::Block(BlockRequest {
        keys: keys.iter().map(|k| k.to_vec()).collect(),
        db: dbi,
        deadline_ms: deadline,
        null_array_on_timeout: true,
    }));
}

fn bzpop(ctx: &mut Ctx, a: Args, max: bool) {
    let Some(deadline) = parse_timeout(ctx, &a[a.len() - 1]) else { return };
    let keys: Vec<&[u8]> = (1..a.len() - 1).map(|i| &a[i]).collect();
    blocking_zpop(ctx, &keys, max, deadline, -1, false)
}
fn bzpopmin(ctx: &mut Ctx, a: Args) {
    bzpop(ctx, a, false)
}
fn bzpopmax(ctx: &mut Ctx, a: Args) {
    bzpop(ctx, a, true)
}

fn zmpop_generic(ctx: &mut Ctx, a: Args, numidx: usize, block: bool) {
    let Some(numkeys) = range_long(ctx.out, &a[numidx], 1, i64::MAX, Some("numkeys should be greater than 0")) else {
        return;
    };
    let where_idx = numidx as u64 + numkeys as u64 + 1;
    if where_idx >= a.len() as u64 {
        return ctx.out.error(ERR_SYNTAX);
    }
    let where_idx = where_idx as usize;
    let max = if eq_ic(&a[where_idx], "min") {
        false
    } else if eq_ic(&a[where_idx], "max") {
        true
    } else {
        return ctx.out.error(ERR_SYNTAX);
    };
    let mut count = -1;
    let mut j = where_idx + 1;
    while j < a.len() {
        if count == -1 && eq_ic(&a[j], "count") && j + 1 < a.len() {
            let Some(c) = range_long(ctx.out, &a[j + 1], 1, i64::MAX, Some("count should be greater than 0")) else {
                return;
            };
            count = c;
            j += 2;
        } else {
            return ctx.out.error(ERR_SYNTAX);
        }
    }
    if count == -1 {
        count = 1;
    }
    let keys: Vec<&[u8]> = (numidx + 1..where_idx).map(|i| &a[i]).collect();
    if block {
        let Some(deadline) = parse_timeout(ctx, &a[1]) else { return };
        return blocking_zpop(ctx, &keys, max, deadline, count, true);
    }
    let dbi = ctx.client.db;
    let (mut db, out) = ctx.parts();
    if let Some((key, n)) = generic_zpop(&mut db, out, &keys, max, true, count, true, true) {
        db.fx.propagate(dbi, vec![pop_name(max), key, n.to_string().into_bytes()]);
        ctx.propagate_original = false;
    }
}
fn zmpop(ctx: &mut Ctx, a: Args) {
    zmpop_generic(ctx, a, 1, false)
}
fn bzmpop(ctx: &mut Ctx, a: Args) {
    zmpop_generic(ctx, a, 2, true)
}

// ------------------------------------------------------------------ ZRANDMEMBER / ZSCAN

fn zrandmember(ctx: &mut Ctx, a: Args) {
    if a.len() >= 3 {
        let Some(l) = range_long(ctx.out, &a[2], -i64::MAX, i64::MAX, None) else { return };
        let mut withscores = false;
        if a.len() > 4 || (a.len() == 4 && !eq_ic(&a[3], "withscores")) {
            return ctx.out.error(ERR_SYNTAX);
        } else if a.len() == 4 {
            withscores = true;
            if !(-i64::MAX / 2..=i64::MAX / 2).contains(&l) {
                return ctx.out.error("ERR value is out of range");
            }
        }
        return zrandmember_count(ctx, a, l, withscores);
    }
    let (mut db, out) = ctx.parts();
    if let Some(z) = or_reply(out, read_zset(&mut db, &a[1])) {
        match z.and_then(|z| z.random_element(&mut rand::thread_rng())) {
            Some((m, _)) => out.bulk(m),
            None => out.null(),
        }
    }
}

fn zrandmember_count(ctx: &mut Ctx, a: Args, l: i64, withscores: bool) {
    let (mut db, out) = ctx.parts();
    let Some(z) = or_reply(out, read_zset(&mut db, &a[1])) else { return };
    let Some(z) = z else { return out.empty_array() };
    let size = z.len();
    let uniq = l >= 0;
    let count = l.unsigned_abs() as usize;
    if count == 0 {
        return out.empty_array();
    }
    let mut rng = rand::thread_rng();
    let emit = |out: &mut ReplyBuf, m: &[u8], s: f64| {
        if withscores && out.resp3 {
            out.array(2);
        }
        out.bulk(m);
        if withscores {
            out.double(s);
        }
    };
    if !uniq || count == 1 {
        out.array(if withscores && !out.resp3 { count * 2 } else { count });
        if z.is_listpack() {
            let all: Vec<(&[u8], f64)> = z.iter().collect();
            for _ in 0..count {
                let (m, s) = all[rng.gen_range(0..all.len())];
                emit(out, m, s);
            }
        } else {
            for _ in 0..count {
                let (m, s) = z.random_element(&mut rng).unwrap();
                emit(out, m, s);
            }
        }
        return;
    }
    if count >= size {
        return emit_items(out, size, z.iter_rev(), withscores);
    }
    out.array(if withscores && !out.resp3 { count * 2 } else { count });
    let picks = rand::seq::index::sample(&mut rng, size, count);
    if z.is_listpack() {
        let all: Vec<(&[u8], f64)> = z.iter().collect();
        for i in picks {
            emit(out, all[i].0, all[i].1);
        }
    } else {
        for i in picks {
            let (m, s) = z.get_by_rank(i).unwrap();
            emit(out, m, s);
        }
    }
}

fn zscan(ctx: &mut Ctx, a: Args) {
    let Some(cursor) = ferrocache_node::util::cursor_arg(ctx.out, &a[2]) else { return };
    let Some((pat, count, _)) = crate::keys::scan_options(ctx, a, 3, false) else { return };
    let (mut db, out) = ctx.parts();
    let Some(z) = or_reply(out, read_zset(&mut db, &a[1])) else { return };
    let Some(z) = z else {
        out.array(2);
        out.bulk(b"0");
        return out.empty_array();
    };
    let len = z.len();
    let all = z.range_by_rank(0, len.saturating_sub(1), false).take(len);
    // The compact encoding is returned whole, as Redis does for listpacks.
    let (next, all): (u64, Vec<(&[u8], f64)>) = if z.is_listpack() {
        (0, all.collect())
    } else {
        ferrocache_engine::cursor_scan::step(all, |(m, _)| m, cursor, count)
    };
    let sel: Vec<(&[u8], f64)> = all
        .into_iter()
        .filter(|(m, _)| pat.as_ref().is_none_or(|p| ferrocache_engine::glob::glob_match(p, m, false)))
        .collect();
    out.array(2);
    out.bulk(next.to_string().as_bytes());
    out.array(sel.len() * 2);
    for (m, s) in sel {
        out.bulk(m);
        out.bulk(ferrocache_engine::zset::format_double(s).as_bytes());
    }
}
