//! SORT and SORT_RO (Redis 7.0 sort.c).
//!
//! Locking: BY/GET patterns name keys that are only known once the elements are read. When
//! a command uses such patterns its key spec declares no keys (the executor then holds no
//! shard) and the handler locks every shard itself, in order, so it can read any key without
//! risking a lock-order deadlock; its effects are applied before those locks are released.
//! Under EXEC the ITERATES flag makes the transaction hold every shard already. Without
//! patterns the declared keys (source, STORE destination) are locked as usual.

use ferrocache_engine::{notify, Db, ListValue, SmallBytes, Value};
use ferrocache_node::table::{flags::*, Command};
use ferrocache_node::util::*;
use ferrocache_node::Ctx;
use ferrocache_protocol::resp::{Args, ReplyBuf};
use std::cmp::Ordering;

pub static COMMANDS: &[Command] = &[
    Command::new("sort", -2, WRITE | DENYOOM | ITERATES, (1, 1, 1), sort).keys(keys_sort),
    Command::new("sort_ro", -2, READONLY | ITERATES, (1, 1, 1), sort_ro).keys(keys_sort_ro),
];

/// Parsed options.
struct Opts {
    desc: bool,
    alpha: bool,
    limit_start: i64,
    limit_count: i64,
    store: Option<usize>,
    by: Option<usize>,
    dontsort: bool,
    gets: Vec<usize>,
}

/// True when a pattern makes SORT read other keys.
fn pattern_reads_keys(p: &[u8]) -> bool {
    p != b"#" && p.contains(&b'*')
}

/// Option scan shared by the key spec and the handler; Err carries the error reply.
fn parse(a: Args, readonly: bool) -> Result<Opts, &'static str> {
    let mut o = Opts {
        desc: false,
        alpha: false,
        limit_start: 0,
        limit_count: -1,
        store: None,
        by: None,
        dontsort: false,
        gets: Vec::new(),
    };
    let mut j = 2;
    while j < a.len() {
        let left = a.len() - j - 1;
        let w = &a[j];
        if eq_ic(w, "asc") {
            o.desc = false;
        } else if eq_ic(w, "desc") {
            o.desc = true;
        } else if eq_ic(w, "alpha") {
            o.alpha = true;
        } else if eq_ic(w, "limit") && left >= 2 {
            let (Some(s), Some(c)) = (parse_i64(&a[j + 1]), parse_i64(&a[j + 2])) else { return Err(ERR_NOT_INT) };
            o.limit_start = s;
            o.limit_count = c;
            j += 2;
        } else if !readonly && eq_ic(w, "store") && left >= 1 {
            o.store = Some(j + 1);
            j += 1;
        } else if eq_ic(w, "by") && left >= 1 {
            o.by = Some(j + 1);
            o.dontsort = !a[j + 1].contains(&b'*');
            j += 1;
        } else if eq_ic(w, "get") && left >= 1 {
            o.gets.push(j + 1);
            j += 1;
        } else {
            return Err(ERR_SYNTAX);
        }
        j += 1;
    }
    Ok(o)
}

/// The first BY-with-a-pattern or GET option `parse` meets before any syntax error, as
/// (is BY): SORT refuses them to users without read access to every key.
fn first_pattern_option(a: Args, readonly: bool) -> Option<bool> {
    let mut j = 2;
    while j < a.len() {
        let left = a.len() - j - 1;
        let w = &a[j];
        if eq_ic(w, "asc") || eq_ic(w, "desc") || eq_ic(w, "alpha") {
        } else if eq_ic(w, "limit") && left >= 2 {
            parse_i64(&a[j + 1])?;
            parse_i64(&a[j + 2])?;
            j += 2;
        } else if !readonly && eq_ic(w, "store") && left >= 1 {
            j += 1;
        } else if eq_ic(w, "by") && left >= 1 {
            if a[j + 1].contains(&b'*') {
                return Some(true);
            }
            j += 1;
        } else if eq_ic(w, "get") && left >= 1 {
            return Some(false);
        } else {
            return None;
        }
        j += 1;
    }
    None
}

impl Opts {
    fn uses_patterns(&self, a: Args) -> bool {
        self.by.is_some_and(|i| !self.dontsort && pattern_reads_keys(&a[i]))
            || self.gets.iter().any(|&i| pattern_reads_keys(&a[i]))
    }
}

fn keys_generic(a: Args, readonly: bool) -> Vec<usize> {
    match parse(a, readonly) {
        Ok(o) if o.uses_patterns(a) => Vec::new(),
        Ok(o) => {
            let mut v = vec![1];
            v.extend(o.store);
            v
        }
        Err(_) => vec![1],
    }
}
fn keys_sort(a: Args) -> Vec<usize> {
    keys_generic(a, false)
}
fn keys_sort_ro(a: Args) -> Vec<usize> {
    keys_generic(a, true)
}

fn sort(ctx: &mut Ctx, a: Args) {
    sort_generic(ctx, a, false)
}
fn sort_ro(ctx: &mut Ctx, a: Args) {
    sort_generic(ctx, a, true)
}

fn sort_generic(ctx: &mut Ctx, a: Args, readonly: bool) {
    if let Some(e) = ferrocache_node::acl::sort_pattern_denied(ctx, a, first_pattern_option(a, readonly)) {
        return ctx.out.error(e);
    }
    let o = match parse(a, readonly) {
        Ok(o) => o,
        Err(e) => return ctx.out.error(e),
    };
    if o.uses_patterns(a) && !ctx.guards.holds_all() {
        let mut own = ctx.srv.ks.lock_all();
        // The same region as far as a running snapshot is concerned.
        own.snapshot = ctx.guards.snapshot;
        own.writing = ctx.guards.writing;
        let access = ctx.access();
        let dbi = ctx.client.db;
        {
            let mut db =
                Db::new(&mut own, &mut *ctx.fx, dbi, ctx.now_ms).with_access(access).expiring(ctx.srv.expire_allowed());
            run(&mut db, ctx.out, a, &o, ctx.client.in_script);
        }
        // Apply the effects while every shard is still held.
        let argv: Vec<&[u8]> = a.iter().collect();
        let original = if !readonly && ctx.fx.dirty > 0 { Some((dbi, argv.as_slice())) } else { None };
        ctx.srv.apply_effects(ctx.fx, ctx.client.id, original);
        ctx.propagate_original = false;
        drop(own);
        return;
    }
    let in_script = ctx.client.in_script;
    let (mut db, out) = ctx.parts();
    run(&mut db, out, a, &o, in_script);
}

/// Redis's lookupKeyByPattern.
fn lookup_by_pattern(db: &mut Db, pat: &[u8], subst: &[u8]) -> Option<Vec<u8>> {
    if pat == b"#" {
        return Some(subst.to_vec());
    }
    let star = pat.iter().position(|&c| c == b'*')?;
    let rest = &pat[star + 1..];
    let arrow = rest.windows(2).position(|w| w == b"->").filter(|&p| p + 2 < rest.len());
    let (postfix, field) = match arrow {
        Some(p) => (&rest[..p], Some(&rest[p + 2..])),
        None => (rest, None),
    };
    let mut key = Vec::with_capacity(pat.len() + subst.len());
    key.extend_from_slice(&pat[..star]);
    key.extend_from_slice(subst);
    key.extend_from_slice(postfix);
    let e = db.get(&key)?;
    match field {
        Some(f) => match &e.value {
            Value::Hash(h) => h.get(f).map(|v| v.to_vec()),
            _ => None,
        },
        None => e.value.as_bytes().map(|v| v.to_vec()),
    }
}

struct Item {
    obj: Vec<u8>,
    score: f64,
    cmp: Option<Vec<u8>>,
}

fn run(db: &mut Db, out: &mut ReplyBuf, a: Args, o: &Opts, in_script: bool) {
    let mut alpha = o.alpha;
    let mut dontsort = o.dontsort;
    let mut by = o.by;
    // Elements in the source's natural order; `ordered`: list or sorted set.
    let (mut elems, ordered, is_set): (Vec<Vec<u8>>, bool, bool) = match db.get(&a[1]) {
        None => (Vec::new(), true, false),
        Some(e) => match &mut e.value {
            Value::List(l) => (l.items.iter().map(|x| x.to_vec()).collect(), true, false),
            Value::Set(s) => (s.members(), false, true),
            Value::ZSet(z) => {
                // Redis converts the sorted set to the skiplist encoding for SORT.
                z.convert_to_skiplist();
                (z.iter().map(|(m, _)| m.to_vec()).collect(), true, false)
            }
            _ => return out.error(ERR_WRONGTYPE),
        },
    };
    // A set's order is not deterministic: sorted output for STORE and scripts (replication).
    if dontsort && is_set && (o.store.is_some() || in_script) {
        dontsort = false;
        alpha = true;
        by = None;
    }
    let vlen = elems.len() as i64;
    let mut start = o.limit_start.max(0).min(vlen);
    let limit_count = o.limit_count.max(-1).min(vlen);
    let mut end = if limit_count < 0 { vlen - 1 } else { start + limit_count - 1 };
    if start >= vlen {
        start = vlen - 1;
        end = vlen - 2;
    }
    if end >= vlen {
        end = vlen - 1;
    }
    if dontsort && ordered && o.desc {
        elems.reverse();
    }
    let mut items: Vec<Item> = elems.into_iter().map(|obj| Item { obj, score: 0.0, cmp: None }).collect();
    let mut conv_error = false;
    if !dontsort {
        for it in items.iter_mut() {
            let byval = match by {
                Some(p) => match lookup_by_pattern(db, &a[p], &it.obj) {
                    Some(v) => v,
                    None => continue,
                },
                None => it.obj.clone(),
            };
            if alpha {
                if by.is_some() {
                    it.cmp = Some(byval);
                }
            } else {
                let (v, used, erange) = ferrocache_engine::zset::strtod(&byval);
                let clean_end = used == byval.len() || byval[used] == 0;
                if !clean_end || erange || v.is_nan() {
                    conv_error = true;
                }
                it.score = v;
            }
        }
        let desc = o.desc;
        let bypat = by.is_some();
        items.sort_by(|x, y| {
            let c = if !alpha {
                x.score.partial_cmp(&y.score).unwrap_or(Ordering::Equal).then_with(|| x.obj.cmp(&y.obj))
            } else if bypat {
                match (&x.cmp, &y.cmp) {
                    (None, None) => Ordering::Equal,
                    (None, _) => Ordering::Less,
                    (_, None) => Ordering::Greater,
                    (Some(p), Some(q)) => p.cmp(q),
                }
            } else {
                x.obj.cmp(&y.obj)
            };
            if desc {
                c.reverse()
            } else {
                c
            }
        });
    }
    let n = if end >= start { (end - start + 1) as usize } else { 0 };
    let getop = o.gets.len();
    let outputlen = if getop > 0 { getop * n } else { n };
    if conv_error {
        return out.error("ERR One or more scores can't be converted into double");
    }
    let range = if n > 0 { &items[start as usize..=end as usize] } else { &items[0..0] };
    match o.store {
        None => {
            out.array(outputlen);
            for it in range {
                if getop == 0 {
                    out.bulk(&it.obj);
                }
                for &g in &o.gets {
                    match lookup_by_pattern(db, &a[g], &it.obj) {
                        Some(v) => out.bulk(&v),
                        None => out.null(),
                    }
                }
            }
        }
        Some(si) => {
            let mut list = ListValue { quicklist: true, ..Default::default() };
            for it in range {
                if getop == 0 {
                    list.bytes += it.obj.len();
                    list.items.push_back(SmallBytes::new(&it.obj));
                }
                for &g in &o.gets {
                    let v = lookup_by_pattern(db, &a[g], &it.obj).unwrap_or_default();
                    list.bytes += v.len();
                    list.items.push_back(SmallBytes::new(&v));
                }
            }
            let dst = &a[si];
            if outputlen > 0 {
                db.set(dst, Value::List(Box::new(list)), false);
                db.modified(dst, notify::LIST, "sortstore");
                let d = db.db;
                db.fx.ready.push((d, SmallBytes::new(dst)));
            } else if db.remove(dst).is_some() {
                db.modified(dst, notify::GENERIC, "del");
            }
            out.int(outputlen as i64);
        }
    }
}
