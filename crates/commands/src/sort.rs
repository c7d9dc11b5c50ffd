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
use ferrocache_node::{CommandError, Ctx};
use ferrocache_protocol::resp::{Args, ReplyBuf};
use std::cmp::Ordering;

pub static COMMANDS: &[Command] = &[
    Command::new("sort", -2, WRITE | DENYOOM | ITERATES, (1, 1, 1), sort).keys(keys_sort),
    Command::new("sort_ro", -2, READONLY | ITERATES, (1, 1, 1), sort_ro).keys(keys_sort_ro),
];

/// A parsed SORT / SORT_RO key [BY pattern] [LIMIT offset count] [GET pattern ...]
/// [ASC|DESC] [ALPHA] [STORE destination], over the borrowed arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SortCommand<'a> {
    key: &'a [u8],
    desc: bool,
    alpha: bool,
    /// LIMIT's offset and count; 0 and -1 (everything) without LIMIT.
    limit_start: i64,
    limit_count: i64,
    /// STORE's destination, with its argument index for the key spec.
    store: Option<(usize, &'a [u8])>,
    /// The last BY pattern.
    by: Option<&'a [u8]>,
    /// BY with a pattern that has no `*`: no sorting at all.
    dontsort: bool,
    gets: Vec<&'a [u8]>,
}

/// True when a pattern makes SORT read other keys.
fn pattern_reads_keys(p: &[u8]) -> bool {
    p != b"#" && p.contains(&b'*')
}

impl<'a> SortCommand<'a> {
    /// The option scan shared by the key spec and the handler (Redis's sortCommandGeneric):
    /// options in any order and case, later ones overriding earlier ones; STORE only when
    /// not `readonly` (SORT_RO). Err carries the error reply.
    fn parse(a: Args<'a>, readonly: bool) -> Result<Self, CommandError> {
        let mut o = SortCommand {
            key: a.get(1).unwrap_or_default(),
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
            // The argument after the option word (present when `left` allows it).
            let next = a.get(j + 1).unwrap_or_default();
            if eq_ic(w, "asc") {
                o.desc = false;
            } else if eq_ic(w, "desc") {
                o.desc = true;
            } else if eq_ic(w, "alpha") {
                o.alpha = true;
            } else if eq_ic(w, "limit") && left >= 2 {
                let (Some(s), Some(c)) = (parse_i64(next), parse_i64(&a[j + 2])) else {
                    return Err(CommandError::NotInt);
                };
                o.limit_start = s;
                o.limit_count = c;
                j += 2;
            } else if !readonly && eq_ic(w, "store") && left >= 1 {
                o.store = Some((j + 1, next));
                j += 1;
            } else if eq_ic(w, "by") && left >= 1 {
                o.by = Some(next);
                o.dontsort = !next.contains(&b'*');
                j += 1;
            } else if eq_ic(w, "get") && left >= 1 {
                o.gets.push(next);
                j += 1;
            } else {
                return Err(CommandError::Syntax);
            }
            j += 1;
        }
        Ok(o)
    }

    /// True when BY or GET read other keys.
    fn uses_patterns(&self) -> bool {
        self.by.is_some_and(|p| !self.dontsort && pattern_reads_keys(p))
            || self.gets.iter().any(|p| pattern_reads_keys(p))
    }
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

fn keys_generic(a: Args, readonly: bool) -> Vec<usize> {
    match SortCommand::parse(a, readonly) {
        Ok(o) if o.uses_patterns() => Vec::new(),
        Ok(o) => {
            let mut v = vec![1];
            v.extend(o.store.map(|(i, _)| i));
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
    let o = match SortCommand::parse(a, readonly) {
        Ok(o) => o,
        Err(e) => return ctx.fail(&e),
    };
    if o.uses_patterns() && !ctx.guards.holds_all() {
        let mut own = ctx.srv.keyspace().lock_all();
        // The same region as far as a running snapshot is concerned.
        own.snapshot = ctx.guards.snapshot;
        own.writing = ctx.guards.writing;
        let access = ctx.access();
        let dbi = ctx.client.db;
        {
            let mut db =
                Db::new(&mut own, &mut *ctx.fx, dbi, ctx.now_ms).with_access(access).expiring(ctx.srv.expire_allowed());
            run(&mut db, ctx.out, &o, ctx.client.in_script);
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
    run(&mut db, out, &o, in_script);
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

fn run(db: &mut Db, out: &mut ReplyBuf, o: &SortCommand, in_script: bool) {
    let mut alpha = o.alpha;
    let mut dontsort = o.dontsort;
    let mut by = o.by;
    // Elements in the source's natural order; `ordered`: list or sorted set.
    let (mut elems, ordered, is_set): (Vec<Vec<u8>>, bool, bool) = match db.get(o.key) {
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
                Some(p) => match lookup_by_pattern(db, p, &it.obj) {
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
                    match lookup_by_pattern(db, g, &it.obj) {
                        Some(v) => out.bulk(&v),
                        None => out.null(),
                    }
                }
            }
        }
        Some((_, dst)) => {
            let mut list = ListValue { quicklist: true, ..Default::default() };
            for it in range {
                if getop == 0 {
                    list.bytes += it.obj.len();
                    list.items.push_back(SmallBytes::new(&it.obj));
                }
                for &g in &o.gets {
                    let v = lookup_by_pattern(db, g, &it.obj).unwrap_or_default();
                    list.bytes += v.len();
                    list.items.push_back(SmallBytes::new(&v));
                }
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use ferrocache_protocol::resp::OwnedArgs;

    fn argv(s: &str) -> OwnedArgs {
        OwnedArgs::from_slices(&s.split(' ').collect::<Vec<_>>())
    }
    fn parse(s: &str, readonly: bool) -> Result<SortCommand<'static>, String> {
        // Leaked so the parsed command may outlive the helper: test-only.
        let o: &'static OwnedArgs = Box::leak(Box::new(argv(s)));
        SortCommand::parse(o.args(), readonly).map_err(|e| e.to_string())
    }
    fn sort(s: &str) -> Result<SortCommand<'static>, String> {
        parse(s, false)
    }

    #[test]
    fn defaults() {
        let o = sort("SORT k").unwrap();
        assert_eq!(o.key, b"k");
        assert!(!o.desc && !o.alpha && !o.dontsort);
        assert_eq!((o.limit_start, o.limit_count), (0, -1));
        assert_eq!((o.store, o.by), (None, None));
        assert!(o.gets.is_empty() && !o.uses_patterns());
    }

    #[test]
    fn all_options_any_order_and_case() {
        let o = sort("sort k By w_* LiMiT 1 2 get # GET h_*->f desc Alpha STORE dst").unwrap();
        assert_eq!(o.by, Some(&b"w_*"[..]));
        assert!(!o.dontsort && o.desc && o.alpha);
        assert_eq!((o.limit_start, o.limit_count), (1, 2));
        assert_eq!(o.gets, vec![&b"#"[..], &b"h_*->f"[..]]);
        assert_eq!(o.store, Some((14, &b"dst"[..])));
        assert!(o.uses_patterns());
        let p = sort("sort k store dst alpha DESC get h_*->f limit 1 2 get # by w_*").unwrap();
        assert_eq!(p.gets, vec![&b"h_*->f"[..], &b"#"[..]]);
        assert_eq!((p.by, p.desc, p.alpha, p.limit_start, p.limit_count), (o.by, true, true, 1, 2));
        assert_eq!(p.store, Some((3, &b"dst"[..])));
    }

    #[test]
    fn later_options_override() {
        assert!(!sort("sort k desc asc").unwrap().desc);
        assert!(sort("sort k asc desc").unwrap().desc);
        let o = sort("sort k limit 1 2 limit -5 -7 store a store b").unwrap();
        assert_eq!((o.limit_start, o.limit_count), (-5, -7));
        assert_eq!(o.store, Some((11, &b"b"[..])));
        // The last BY is the pattern; one without `*` means no sorting.
        let o = sort("sort k by w_* by nosort").unwrap();
        assert_eq!((o.by, o.dontsort), (Some(&b"nosort"[..]), true));
    }

    #[test]
    fn patterns() {
        assert!(!sort("sort k by nosort").unwrap().uses_patterns());
        assert!(!sort("sort k get #").unwrap().uses_patterns());
        assert!(sort("sort k get x*").unwrap().uses_patterns());
        assert!(sort("sort k by x* get #").unwrap().uses_patterns());
    }

    #[test]
    fn errors() {
        assert_eq!(sort("sort k limit a 1"), Err(ERR_NOT_INT.to_string()));
        assert_eq!(sort("sort k limit 1 b"), Err(ERR_NOT_INT.to_string()));
        assert_eq!(sort("sort k limit 1.5 2"), Err(ERR_NOT_INT.to_string()));
        for bad in [
            "sort k limit 1",
            "sort k limit",
            "sort k by",
            "sort k get",
            "sort k store",
            "sort k foo",
            "sort k asc desc nosuch",
            "sort k 1",
        ] {
            assert_eq!(sort(bad), Err(ERR_SYNTAX.to_string()), "{bad}");
        }
        // Options are checked in order: a syntax error first wins.
        assert_eq!(sort("sort k foo limit a b"), Err(ERR_SYNTAX.to_string()));
        assert_eq!(sort("sort k limit a b foo"), Err(ERR_NOT_INT.to_string()));
    }

    #[test]
    fn sort_ro_has_no_store() {
        assert_eq!(parse("sort_ro k store dst", true), Err(ERR_SYNTAX.to_string()));
        assert_eq!(parse("sort_ro k by w_* get # alpha", true).unwrap().by, Some(&b"w_*"[..]));
    }

    #[test]
    fn first_pattern_before_any_error() {
        let f = |s: &str, ro| first_pattern_option(argv(s).args(), ro);
        assert_eq!(f("sort k by w_* get #", false), Some(true));
        assert_eq!(f("sort k by nosort get #", false), Some(false));
        assert_eq!(f("sort k alpha", false), None);
        assert_eq!(f("sort k foo by w_*", false), None);
        assert_eq!(f("sort k limit a 1 by w_*", false), None);
        assert_eq!(f("sort_ro k store d get #", true), None);
        assert_eq!(f("sort k store d get #", false), Some(false));
    }
}
