//! XADD and XTRIM (with their shared MAXLEN / MINID / LIMIT parsing), XRANGE, XREVRANGE,
//! XLEN and XDEL.

use super::{
    b, id_bulk, lookup, node_limits, num, parse_id_gen, parse_interval_id, parse_strict_id, reply_entry, ERR_INVALID_ID,
};
use ferrocache_engine::notify;
use ferrocache_engine::stream::{AppendError, StreamEntry, StreamId, StreamValue, Trim};
use ferrocache_engine::Value;
use ferrocache_node::util::parse_i64;
use ferrocache_node::util::{eq_ic, int_arg, ERR_SYNTAX};
use ferrocache_node::{or_reply, CommandError, Ctx, ErrorReply};
use ferrocache_protocol::resp::Args;

// ------------------------------------------------------------------ XADD / XTRIM

/// MAXLEN or MINID with its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TrimStrategy {
    MaxLen(u64),
    MinId(StreamId),
}

impl TrimStrategy {
    fn engine(self) -> Trim {
        match self {
            TrimStrategy::MaxLen(n) => Trim::MaxLen(n),
            TrimStrategy::MinId(id) => Trim::MinId(id),
        }
    }
}

/// The trimming options of XADD / XTRIM: MAXLEN|MINID [=|~] threshold [LIMIT count].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TrimSpec {
    pub strategy: TrimStrategy,
    /// `~`: trim whole nodes only.
    pub approx: bool,
    /// LIMIT's count, when given (only accepted with `~`).
    pub limit: Option<i64>,
    /// The threshold's argument index (made exact in the propagated argv after a `~` trim).
    pub arg_idx: usize,
}

impl TrimSpec {
    /// The most entries one trim may remove (0: no limit): LIMIT's count, or with `~` and no
    /// LIMIT 100 times stream-node-max-entries, clamped to [10000 when <= 0, 1000000].
    pub fn effective_limit(&self, node_max_entries: i64) -> u64 {
        match (self.approx, self.limit) {
            (true, Some(l)) => l as u64,
            (true, None) => {
                let l = 100i64.saturating_mul(node_max_entries);
                if l <= 0 {
                    10000
                } else {
                    l.min(1_000_000) as u64
                }
            }
            (false, _) => 0,
        }
    }
}

/// XADD's ID argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum XaddId {
    /// `*`: generated.
    Auto,
    /// `ms-seq`, or `ms-*` (`seq_given` false: the sequence is generated).
    Explicit { id: StreamId, seq_given: bool },
}

/// What `streamParseAddOrTrimArgsOrReply` reads: the options before XADD's ID (all of XTRIM's
/// arguments), and the position where it stopped (XADD's ID).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AddTrimArgs {
    id: XaddId,
    id_pos: usize,
    nomkstream: bool,
    trim: Option<TrimSpec>,
}

const ERR_MAXLEN_MINID: &str = "ERR syntax error, MAXLEN and MINID options at the same time are not compatible";
const ERR_LIMIT_NO_STRATEGY: &str = "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy";
const ERR_XTRIM_NO_STRATEGY: &str = "ERR syntax error, XTRIM must be called with a trimming strategy";
const ERR_LIMIT_NO_TILDE: &str = "ERR syntax error, LIMIT cannot be used without the special ~ option";

/// `streamParseAddOrTrimArgsOrReply` for XADD (`xadd`) or XTRIM, in Redis 7.0's order of
/// checks: the options one by one, then LIMIT without a strategy, XTRIM without one, LIMIT
/// without `~`.
fn parse_add_trim(a: Args, xadd: bool) -> Result<AddTrimArgs, CommandError> {
    let mut p = AddTrimArgs { id: XaddId::Auto, id_pos: 0, nomkstream: false, trim: None };
    let argc = a.len();
    let mut i = 2;
    let mut approx = false;
    let mut limit: Option<i64> = None;
    while i < argc {
        let more = argc - 1 - i;
        let opt = &a[i];
        if xadd && opt == b"*" {
            break;
        } else if (eq_ic(opt, "maxlen") || eq_ic(opt, "minid")) && more > 0 {
            if p.trim.is_some() {
                return Err(ERR_MAXLEN_MINID.into());
            }
            approx = false;
            let next = &a[i + 1];
            if more >= 2 && next == b"~" {
                approx = true;
                i += 1;
            } else if more >= 2 && next == b"=" {
                i += 1;
            }
            let strategy = if eq_ic(opt, "maxlen") {
                let v = parse_i64(&a[i + 1]).ok_or(CommandError::NotInt)?;
                if v < 0 {
                    return Err("ERR The MAXLEN argument must be >= 0.".into());
                }
                TrimStrategy::MaxLen(v as u64)
            } else {
                TrimStrategy::MinId(parse_id_gen(&a[i + 1], 0, true, None).ok_or(ERR_INVALID_ID)?)
            };
            i += 1;
            p.trim = Some(TrimSpec { strategy, approx, limit: None, arg_idx: i });
        } else if eq_ic(opt, "limit") && more > 0 {
            let v = parse_i64(&a[i + 1]).ok_or(CommandError::NotInt)?;
            if v < 0 {
                return Err("ERR The LIMIT argument must be >= 0.".into());
            }
            limit = Some(v);
            i += 1;
        } else if xadd && eq_ic(opt, "nomkstream") {
            p.nomkstream = true;
        } else if xadd {
            let mut seq_given = true;
            let id = parse_id_gen(opt, 0, true, Some(&mut seq_given)).ok_or(ERR_INVALID_ID)?;
            p.id = XaddId::Explicit { id, seq_given };
            break;
        } else {
            return Err(CommandError::Syntax);
        }
        i += 1;
    }
    p.id_pos = i;
    if limit.is_some_and(|l| l != 0) && p.trim.is_none() {
        return Err(ERR_LIMIT_NO_STRATEGY.into());
    }
    if !xadd && p.trim.is_none() {
        return Err(ERR_XTRIM_NO_STRATEGY.into());
    }
    if limit.is_some() && !approx {
        return Err(ERR_LIMIT_NO_TILDE.into());
    }
    if let Some(t) = &mut p.trim {
        t.limit = limit;
    }
    Ok(p)
}

/// A parsed XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id field
/// value [field value ...], over the borrowed arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct XaddCommand<'a> {
    pub key: &'a [u8],
    pub nomkstream: bool,
    pub trim: Option<TrimSpec>,
    pub id: XaddId,
    /// The ID's argument index (replaced by the ID added in the propagated argv).
    pub id_pos: usize,
    /// Field, value, field, value...
    pub fields: Vec<&'a [u8]>,
}

impl<'a> XaddCommand<'a> {
    /// Redis 7.0's xaddCommand checks, in its order: the options and the ID, the field/value
    /// count (a wrong arity), then an explicit 0-0.
    pub fn parse(a: Args<'a>) -> Result<Self, CommandError> {
        let p = parse_add_trim(a, true)?;
        let field_pos = p.id_pos + 1;
        if a.len() < field_pos + 2 || (a.len() - field_pos) % 2 == 1 {
            return Err(CommandError::WrongArity("xadd"));
        }
        if let XaddId::Explicit { id, seq_given: true } = p.id {
            if id.is_zero() {
                return Err("ERR The ID specified in XADD must be greater than 0-0".into());
            }
        }
        Ok(XaddCommand {
            key: a.get(1).unwrap_or_default(),
            nomkstream: p.nomkstream,
            trim: p.trim,
            id: p.id,
            id_pos: p.id_pos,
            fields: a.iter().skip(field_pos).collect(),
        })
    }

    fn apply(&self, ctx: &mut Ctx, a: Args) {
        let lim = node_limits(ctx);
        let now = ctx.now_ms;
        let key = self.key;
        let (mut db, out) = ctx.parts();
        let exists = match lookup(&mut db, key, true) {
            Err(e) => return out.fail(&e),
            Ok(s) => s.is_some(),
        };
        if !exists {
            if self.nomkstream {
                return out.null();
            }
            db.set(key, Value::Stream(Box::default()), false);
        }
        let s = lookup(&mut db, key, true).ok().flatten().unwrap();
        if s.last_id == StreamId::MAX {
            return out.error("ERR The stream has exhausted the last possible ID, unable to add more items");
        }
        let (given, seq_given) = match self.id {
            XaddId::Auto => (None, true),
            XaddId::Explicit { id, seq_given } => (Some(id), seq_given),
        };
        let id = match s.append(&self.fields, given, seq_given, now, lim) {
            Ok(id) => id,
            Err(AppendError::IdTooSmall) => {
                return out.error("ERR The ID specified in XADD is equal or smaller than the target stream top item")
            }
            Err(AppendError::TooLarge) => return out.error("ERR Elements are too large to be stored"),
        };
        id_bulk(out, id);
        let mut argv: Vec<Vec<u8>> = a.iter().map(|x| x.to_vec()).collect();
        let mut trimmed = 0;
        if let Some(t) = &self.trim {
            trimmed = s.trim(t.strategy.engine(), t.approx, t.effective_limit(lim.max_entries as i64));
            if t.approx {
                rewrite_trim(&mut argv, s, t);
            }
        }
        if !matches!(self.id, XaddId::Explicit { seq_given: true, .. }) {
            argv[self.id_pos] = id.to_bytes();
        }
        db.modified(key, notify::STREAM, "xadd");
        if trimmed > 0 {
            db.fx.event(notify::STREAM, "xtrim", db.db, key);
        }
        let dbi = db.db;
        db.fx.propagate(dbi, argv);
        db.fx.ready.push((dbi, ferrocache_engine::SmallBytes::new(key)));
        ctx.propagate_original = false;
    }
}

/// The argv Redis propagates after an approximate trim (`~` → `=`, the count/ID made exact).
fn rewrite_trim(argv: &mut [Vec<u8>], s: &StreamValue, t: &TrimSpec) {
    argv[t.arg_idx - 1] = b("=");
    argv[t.arg_idx] = match t.strategy {
        TrimStrategy::MaxLen(_) => num(s.length as i64),
        TrimStrategy::MinId(_) => s.first_id_with_tombstones().to_bytes(),
    };
}

pub(super) fn xadd(ctx: &mut Ctx, a: Args) {
    match XaddCommand::parse(a) {
        Ok(c) => c.apply(ctx, a),
        Err(e) => ctx.fail(&e),
    }
}

pub(super) fn xtrim(ctx: &mut Ctx, a: Args) {
    let lim = node_limits(ctx);
    let t = match parse_add_trim(a, false) {
        Ok(AddTrimArgs { trim: Some(t), .. }) => t,
        Ok(_) => unreachable!("XTRIM without a strategy is refused by the parser"),
        Err(e) => return ctx.fail(&e),
    };
    let key = &a[1];
    let (mut db, out) = ctx.parts();
    let s = match lookup(&mut db, key, true) {
        Err(e) => return out.fail(&e),
        Ok(None) => return out.int(0),
        Ok(Some(s)) => s,
    };
    let deleted = s.trim(t.strategy.engine(), t.approx, t.effective_limit(lim.max_entries as i64));
    if deleted > 0 {
        let mut argv: Vec<Vec<u8>> = a.iter().map(|x| x.to_vec()).collect();
        if t.approx {
            rewrite_trim(&mut argv, s, &t);
        }
        db.modified(key, notify::STREAM, "xtrim");
        db.fx.dirty += deleted - 1;
        let dbi = db.db;
        db.fx.propagate(dbi, argv);
    }
    out.int(deleted as i64);
    ctx.propagate_original = false;
}

// ------------------------------------------------------------------ XRANGE / XLEN / XDEL

fn xrange_generic(ctx: &mut Ctx, a: Args, rev: bool) {
    let out = &mut *ctx.out;
    let (sa, ea) = if rev { (&a[3], &a[2]) } else { (&a[2], &a[3]) };
    let Some((mut start, sx)) = parse_interval_id(out, sa, 0) else {
        return;
    };
    if sx {
        match start.incr() {
            Some(s) => start = s,
            None => return out.error("ERR invalid start ID for the interval"),
        }
    }
    let Some((mut end, ex)) = parse_interval_id(out, ea, u64::MAX) else {
        return;
    };
    if ex {
        match end.decr() {
            Some(e) => end = e,
            None => return out.error("ERR invalid end ID for the interval"),
        }
    }
    let mut count: i64 = -1;
    let mut j = 4;
    while j < a.len() {
        if eq_ic(&a[j], "count") && j + 1 < a.len() {
            let Some(c) = int_arg(out, &a[j + 1]) else {
                return;
            };
            count = c.max(0);
            j += 2;
        } else {
            return out.error(ERR_SYNTAX);
        }
    }
    let (mut db, out) = ctx.parts();
    let s = match lookup(&mut db, &a[1], false) {
        Err(e) => return out.fail(&e),
        Ok(None) => return out.empty_array(),
        Ok(Some(s)) => s,
    };
    if count == 0 {
        return out.null_array();
    }
    let it = s.range(start, end, rev);
    let items: Vec<&StreamEntry> = if count > 0 { it.take(count as usize).collect() } else { it.collect() };
    out.array(items.len());
    for e in items {
        reply_entry(out, e);
    }
}

pub(super) fn xrange(ctx: &mut Ctx, a: Args) {
    xrange_generic(ctx, a, false)
}
pub(super) fn xrevrange(ctx: &mut Ctx, a: Args) {
    xrange_generic(ctx, a, true)
}

pub(super) fn xlen(ctx: &mut Ctx, a: Args) {
    let (mut db, out) = ctx.parts();
    match lookup(&mut db, &a[1], false) {
        Err(e) => out.fail(&e),
        Ok(None) => out.int(0),
        Ok(Some(s)) => out.int(s.length as i64),
    }
}

pub(super) fn xdel(ctx: &mut Ctx, a: Args) {
    let key = &a[1];
    let (mut db, out) = ctx.parts();
    let s = match lookup(&mut db, key, true) {
        Err(e) => return out.fail(&e),
        Ok(None) => return out.int(0),
        Ok(Some(s)) => s,
    };
    let mut ids = Vec::with_capacity(a.len() - 2);
    for x in a.iter().skip(2) {
        let Some(id) = or_reply(out, parse_strict_id(x, 0)) else {
            return;
        };
        ids.push(id);
    }
    let mut deleted = 0u64;
    let mut first_entry = false;
    for id in ids {
        if s.delete(id) {
            if id == s.first_id {
                first_entry = true;
            }
            if id > s.max_deleted_entry_id {
                s.max_deleted_entry_id = id;
            }
            deleted += 1;
        }
    }
    if deleted > 0 {
        if s.length == 0 {
            s.first_id = StreamId::MIN;
        } else if first_entry {
            s.first_id = s.first_live_id();
        }
        db.modified(key, notify::STREAM, "xdel");
        db.fx.dirty += deleted - 1;
    }
    out.int(deleted as i64);
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrocache_node::util::ERR_NOT_INT;
    use ferrocache_protocol::resp::OwnedArgs;

    fn args(s: &str) -> &'static OwnedArgs {
        // Leaked so the parsed command may outlive the helper: test-only.
        Box::leak(Box::new(OwnedArgs::from_slices(&s.split(' ').collect::<Vec<_>>())))
    }
    fn xadd(s: &str) -> Result<XaddCommand<'static>, String> {
        XaddCommand::parse(args(s).args()).map_err(|e| e.to_string())
    }
    fn xtrim(s: &str) -> Result<AddTrimArgs, String> {
        parse_add_trim(args(s).args(), false).map_err(|e| e.to_string())
    }
    fn trim(strategy: TrimStrategy, approx: bool, limit: Option<i64>, arg_idx: usize) -> Option<TrimSpec> {
        Some(TrimSpec { strategy, approx, limit, arg_idx })
    }
    const ARITY: &str = "ERR wrong number of arguments for 'xadd' command";

    #[test]
    fn plain() {
        let c = xadd("XADD s * f v").unwrap();
        assert_eq!(c.key, b"s");
        assert_eq!((c.nomkstream, c.trim, c.id, c.id_pos), (false, None, XaddId::Auto, 2));
        assert_eq!(c.fields, vec![&b"f"[..], b"v"]);
        let c = xadd("xadd s 5-3 a 1 b 2").unwrap();
        assert_eq!(c.id, XaddId::Explicit { id: StreamId::new(5, 3), seq_given: true });
        assert_eq!(c.fields, vec![&b"a"[..], b"1", b"b", b"2"]);
        // A bare ms is ms-0; ms-* leaves the sequence to the stream.
        assert_eq!(xadd("xadd s 7 f v").unwrap().id, XaddId::Explicit { id: StreamId::new(7, 0), seq_given: true });
        assert_eq!(xadd("xadd s 7-* f v").unwrap().id, XaddId::Explicit { id: StreamId::new(7, 0), seq_given: false });
        assert_eq!(xadd("xadd s 0-* f v").unwrap().id, XaddId::Explicit { id: StreamId::MIN, seq_given: false });
    }

    #[test]
    fn nomkstream() {
        let c = xadd("xadd s NoMkStream * f v").unwrap();
        assert!(c.nomkstream);
        assert_eq!((c.id, c.id_pos), (XaddId::Auto, 3));
        // After the ID it is a field.
        let c = xadd("xadd s * nomkstream v").unwrap();
        assert!(!c.nomkstream);
        assert_eq!(c.fields, vec![&b"nomkstream"[..], b"v"]);
    }

    #[test]
    fn options_any_order() {
        let a = xadd("xadd s nomkstream maxlen ~ 10 limit 5 * f v").unwrap();
        let b = xadd("xadd s LIMIT 5 MAXLEN ~ 10 NOMKSTREAM * f v").unwrap();
        assert!(a.nomkstream && b.nomkstream);
        assert_eq!(a.trim, trim(TrimStrategy::MaxLen(10), true, Some(5), 5));
        assert_eq!(b.trim, trim(TrimStrategy::MaxLen(10), true, Some(5), 6));
        assert_eq!((a.id_pos, b.id_pos), (8, 8));
        assert_eq!(a.fields, b.fields);
    }

    #[test]
    fn maxlen() {
        assert_eq!(xadd("xadd s maxlen 3 * f v").unwrap().trim, trim(TrimStrategy::MaxLen(3), false, None, 3));
        assert_eq!(xadd("xadd s maxlen = 3 * f v").unwrap().trim, trim(TrimStrategy::MaxLen(3), false, None, 4));
        let c = xadd("xadd s MAXLEN ~ 1000 LIMIT 50 1-1 f v").unwrap();
        assert_eq!(c.trim, trim(TrimStrategy::MaxLen(1000), true, Some(50), 4));
        assert_eq!((c.id_pos, c.id), (7, XaddId::Explicit { id: StreamId::new(1, 1), seq_given: true }));
        assert_eq!(xadd("xadd s maxlen ~ 0 * f v").unwrap().trim, trim(TrimStrategy::MaxLen(0), true, None, 4));
        // `~` as the threshold when nothing follows it: a bad integer.
        assert_eq!(xadd("xadd s maxlen ~").unwrap_err(), ERR_NOT_INT);
    }

    #[test]
    fn minid() {
        let c = xadd("xadd s minid 5-1 * f v").unwrap();
        assert_eq!(c.trim, trim(TrimStrategy::MinId(StreamId::new(5, 1)), false, None, 3));
        let c = xadd("xadd s MinId ~ 5 limit 0 * f v").unwrap();
        assert_eq!(c.trim, trim(TrimStrategy::MinId(StreamId::new(5, 0)), true, Some(0), 4));
        assert_eq!(xadd("xadd s minid 5-x * f v").unwrap_err(), ERR_INVALID_ID);
        assert_eq!(xadd("xadd s minid - * f v").unwrap_err(), ERR_INVALID_ID);
    }

    #[test]
    fn effective_limit() {
        let t = |approx, limit| TrimSpec { strategy: TrimStrategy::MaxLen(1), approx, limit, arg_idx: 3 };
        assert_eq!(t(false, None).effective_limit(100), 0);
        assert_eq!(t(true, Some(7)).effective_limit(100), 7);
        assert_eq!(t(true, Some(0)).effective_limit(100), 0);
        assert_eq!(t(true, None).effective_limit(100), 10_000);
        assert_eq!(t(true, None).effective_limit(0), 10_000);
        assert_eq!(t(true, None).effective_limit(-5), 10_000);
        assert_eq!(t(true, None).effective_limit(20_000), 1_000_000);
        assert_eq!(t(true, None).effective_limit(i64::MAX), 1_000_000);
    }

    #[test]
    fn limit_errors() {
        assert_eq!(xadd("xadd s maxlen 10 limit 5 * f v").unwrap_err(), ERR_LIMIT_NO_TILDE);
        assert_eq!(xadd("xadd s maxlen = 10 limit 5 * f v").unwrap_err(), ERR_LIMIT_NO_TILDE);
        assert_eq!(xadd("xadd s limit 5 * f v").unwrap_err(), ERR_LIMIT_NO_STRATEGY);
        // LIMIT 0 without a strategy gets past the strategy check (Redis tests limit != 0).
        assert_eq!(xadd("xadd s limit 0 * f v").unwrap_err(), ERR_LIMIT_NO_TILDE);
        assert_eq!(xadd("xadd s maxlen ~ 10 limit -1 * f v").unwrap_err(), "ERR The LIMIT argument must be >= 0.");
        assert_eq!(xadd("xadd s maxlen ~ 10 limit x * f v").unwrap_err(), ERR_NOT_INT);
    }

    #[test]
    fn option_errors() {
        assert_eq!(xadd("xadd s maxlen -1 * f v").unwrap_err(), "ERR The MAXLEN argument must be >= 0.");
        assert_eq!(xadd("xadd s maxlen x * f v").unwrap_err(), ERR_NOT_INT);
        assert_eq!(xadd("xadd s maxlen 1 minid 1 * f v").unwrap_err(), ERR_MAXLEN_MINID);
        assert_eq!(xadd("xadd s minid 1 maxlen 1 * f v").unwrap_err(), ERR_MAXLEN_MINID);
    }

    #[test]
    fn bad_id() {
        for bad in ["xadd s foo f v", "xadd s 1-x f v", "xadd s - f v", "xadd s + f v", "xadd s 1-2-3 f v"] {
            assert_eq!(xadd(bad).unwrap_err(), ERR_INVALID_ID, "{bad}");
        }
        assert_eq!(xadd("xadd s 0-0 f v").unwrap_err(), "ERR The ID specified in XADD must be greater than 0-0");
        assert_eq!(xadd("xadd s 0 f v").unwrap_err(), "ERR The ID specified in XADD must be greater than 0-0");
    }

    #[test]
    fn field_value_count() {
        assert_eq!(xadd("xadd s * f v g").unwrap_err(), ARITY);
        assert_eq!(xadd("xadd s * f").unwrap_err(), ARITY);
        assert_eq!(xadd("xadd s maxlen 1 *").unwrap_err(), ARITY);
        assert_eq!(xadd("xadd s nomkstream maxlen 1").unwrap_err(), ARITY);
    }

    #[test]
    fn error_precedence() {
        // The options and the ID come first, then the field count, then 0-0.
        assert_eq!(xadd("xadd s maxlen x * f").unwrap_err(), ERR_NOT_INT);
        assert_eq!(xadd("xadd s foo f").unwrap_err(), ERR_INVALID_ID);
        assert_eq!(xadd("xadd s maxlen 1 limit 5 * f").unwrap_err(), ERR_LIMIT_NO_TILDE);
        assert_eq!(xadd("xadd s 0-0 f").unwrap_err(), ARITY);
        // Options are read one by one: the first bad one wins.
        assert_eq!(xadd("xadd s maxlen -1 minid x * f v").unwrap_err(), "ERR The MAXLEN argument must be >= 0.");
    }

    #[test]
    fn xtrim_parse() {
        let p = xtrim("xtrim s maxlen ~ 5 limit 2").unwrap();
        assert_eq!(p.trim, trim(TrimStrategy::MaxLen(5), true, Some(2), 4));
        assert_eq!(
            xtrim("xtrim s minid 3").unwrap().trim,
            trim(TrimStrategy::MinId(StreamId::new(3, 0)), false, None, 3)
        );
        assert_eq!(xtrim("xtrim s limit 0").unwrap_err(), ERR_XTRIM_NO_STRATEGY);
        assert_eq!(xtrim("xtrim s limit 1").unwrap_err(), ERR_LIMIT_NO_STRATEGY);
        assert_eq!(xtrim("xtrim s maxlen 5 nomkstream").unwrap_err(), ERR_SYNTAX);
        assert_eq!(xtrim("xtrim s maxlen 5 *").unwrap_err(), ERR_SYNTAX);
    }
}
