//! String commands: GET, SET and its variants, counters, ranges, LCS.

use ferrocache_engine::{notify, Db, Value};
use ferrocache_node::table::{flags::*, Command};
use ferrocache_node::util::*;
use ferrocache_node::{or_reply, CommandError, Ctx, ErrorReply};
use ferrocache_protocol::resp::Args;

const W: u64 = WRITE | DENYOOM;
const G: &str = "string";

pub static COMMANDS: &[Command] = &[
    Command::new("get", 2, READONLY | FAST, (1, 1, 1), get).group(G),
    Command::new("set", -3, W, (1, 1, 1), set).group(G),
    Command::new("setnx", 3, W | FAST, (1, 1, 1), setnx).group(G),
    Command::new("setex", 4, W, (1, 1, 1), setex).group(G),
    Command::new("psetex", 4, W, (1, 1, 1), psetex).group(G),
    Command::new("getset", 3, W | FAST, (1, 1, 1), getset).group(G),
    Command::new("getdel", 2, WRITE | FAST, (1, 1, 1), getdel).group(G),
    Command::new("getex", -2, WRITE | FAST, (1, 1, 1), getex).group(G),
    Command::new("mget", -2, READONLY | FAST, (1, -1, 1), mget).group(G),
    Command::new("mset", -3, W, (1, -1, 2), mset).group(G),
    Command::new("msetnx", -3, W, (1, -1, 2), msetnx).group(G),
    Command::new("append", 3, W | FAST, (1, 1, 1), append).group(G),
    Command::new("strlen", 2, READONLY | FAST, (1, 1, 1), strlen).group(G),
    Command::new("incr", 2, W | FAST, (1, 1, 1), incr).group(G),
    Command::new("decr", 2, W | FAST, (1, 1, 1), decr).group(G),
    Command::new("incrby", 3, W | FAST, (1, 1, 1), incrby).group(G),
    Command::new("decrby", 3, W | FAST, (1, 1, 1), decrby).group(G),
    Command::new("incrbyfloat", 3, W | FAST, (1, 1, 1), incrbyfloat).group(G),
    Command::new("setrange", 4, W, (1, 1, 1), setrange).group(G),
    Command::new("getrange", 4, READONLY, (1, 1, 1), getrange).group(G),
    Command::new("substr", 4, READONLY, (1, 1, 1), getrange).group(G),
    Command::new("lcs", -3, READONLY, (1, 2, 1), lcs).group(G),
];

/// A string value lookup: Ok(None) for a missing key, Err(WrongType) for another type.
pub fn read_str<'d>(db: &'d mut Db<'_, '_>, key: &[u8]) -> Result<Option<&'d [u8]>, CommandError> {
    match db.get(key) {
        None => Ok(None),
        Some(e) => match e.value.as_bytes() {
            Some(b) => Ok(Some(b)),
            None => Err(CommandError::WrongType),
        },
    }
}

fn get(ctx: &mut Ctx, a: Args) {
    let (mut db, out) = ctx.parts();
    if let Some(v) = or_reply(out, read_str(&mut db, &a[1])) {
        match v {
            Some(v) => out.bulk(v),
            None => out.null(),
        }
    }
}

/// NX / XX: set only when the key is missing / present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetCondition {
    Nx,
    Xx,
}

/// EX / PX / EXAT / PXAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpireKind {
    Ex,
    Px,
    ExAt,
    PxAt,
}

impl ExpireKind {
    fn in_seconds(self) -> bool {
        matches!(self, ExpireKind::Ex | ExpireKind::ExAt)
    }
    /// EX / PX: relative to now.
    fn relative(self) -> bool {
        matches!(self, ExpireKind::Ex | ExpireKind::Px)
    }
}

/// The TTL option of SET / GETEX: at most one is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtlOption<'a> {
    /// KEEPTTL (SET only).
    Keep,
    /// PERSIST (GETEX only).
    Persist,
    /// EX / PX / EXAT / PXAT with its argument, not yet checked.
    Expire(ExpireKind, &'a [u8]),
}

/// The options SET and GETEX share (Redis's parseExtendedStringArgumentsOrReply), over the
/// borrowed arguments. Parsing only checks the syntax; the expire value is checked by
/// [`Expiry::parse`], where each command does it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SetOptions<'a> {
    pub condition: Option<SetCondition>,
    pub get: bool,
    pub ttl: Option<TtlOption<'a>>,
}

impl<'a> SetOptions<'a> {
    /// The options from `a[start..]`: SET's (`is_set`) or GETEX's.
    pub fn parse(a: Args<'a>, start: usize, is_set: bool) -> Result<Self, CommandError> {
        let mut o = SetOptions::default();
        let mut j = start;
        while j < a.len() {
            let opt = &a[j];
            let next = a.get(j + 1);
            if eq_ic(opt, "nx") && o.condition != Some(SetCondition::Xx) && is_set {
                o.condition = Some(SetCondition::Nx);
            } else if eq_ic(opt, "xx") && o.condition != Some(SetCondition::Nx) && is_set {
                o.condition = Some(SetCondition::Xx);
            } else if eq_ic(opt, "get") && is_set {
                o.get = true;
            } else if eq_ic(opt, "keepttl") && matches!(o.ttl, None | Some(TtlOption::Keep)) && is_set {
                o.ttl = Some(TtlOption::Keep);
            } else if eq_ic(opt, "persist") && !is_set && matches!(o.ttl, None | Some(TtlOption::Persist)) {
                o.ttl = Some(TtlOption::Persist);
            } else if let (Some(v), None) = (next, o.ttl) {
                let kind = if eq_ic(opt, "ex") {
                    ExpireKind::Ex
                } else if eq_ic(opt, "px") {
                    ExpireKind::Px
                } else if eq_ic(opt, "exat") {
                    ExpireKind::ExAt
                } else if eq_ic(opt, "pxat") {
                    ExpireKind::PxAt
                } else {
                    return Err(CommandError::Syntax);
                };
                o.ttl = Some(TtlOption::Expire(kind, v));
                j += 1;
            } else {
                return Err(CommandError::Syntax);
            }
            j += 1;
        }
        Ok(o)
    }
}

/// A checked EX / PX / EXAT / PXAT value, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiry {
    pub kind: ExpireKind,
    pub ms: i64,
}

fn invalid_expire(cmd: &str) -> CommandError {
    CommandError::Custom(format!("ERR invalid expire time in '{}' command", cmd))
}

impl Expiry {
    /// The argument of `kind` for command `cmd`, or Redis's error.
    pub fn parse(kind: ExpireKind, v: &[u8], cmd: &str) -> Result<Self, CommandError> {
        let n = parse_i64(v).ok_or(CommandError::NotInt)?;
        let seconds = kind.in_seconds();
        if n <= 0 || (seconds && n > i64::MAX / 1000) {
            return Err(invalid_expire(cmd));
        }
        Ok(Expiry { kind, ms: if seconds { n * 1000 } else { n } })
    }

    /// The absolute expiry in ms, or Redis's error when it overflows.
    pub fn at_ms(self, now: u64, cmd: &str) -> Result<u64, CommandError> {
        let mut ms = self.ms;
        if self.kind.relative() {
            ms = ms.checked_add(now as i64).ok_or_else(|| invalid_expire(cmd))?;
        }
        if ms <= 0 {
            return Err(invalid_expire(cmd));
        }
        Ok(ms as u64)
    }
}

/// A parsed SET (also what SETNX / SETEX / PSETEX run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetCommand<'a> {
    pub key: &'a [u8],
    pub value: &'a [u8],
    pub condition: Option<SetCondition>,
    pub get: bool,
    pub keep_ttl: bool,
    pub expire: Option<Expiry>,
}

impl<'a> SetCommand<'a> {
    /// SET key value [NX|XX] [GET] [EX|PX|EXAT|PXAT n|KEEPTTL]: the syntax first, then the
    /// expire value, as Redis checks them.
    pub fn parse(a: Args<'a>) -> Result<Self, CommandError> {
        let o = SetOptions::parse(a, 3, true)?;
        let expire = match o.ttl {
            Some(TtlOption::Expire(kind, v)) => Some(Expiry::parse(kind, v, "set")?),
            _ => None,
        };
        Ok(SetCommand {
            key: a.get(1).unwrap_or_default(),
            value: a.get(2).unwrap_or_default(),
            condition: o.condition,
            get: o.get,
            keep_ttl: o.ttl == Some(TtlOption::Keep),
            expire,
        })
    }

    /// A plain SET of `key` to `value`, for the variants to fill in.
    fn plain(key: &'a [u8], value: &'a [u8]) -> Self {
        SetCommand { key, value, condition: None, get: false, keep_ttl: false, expire: None }
    }

    /// The core of SET / SETNX / SETEX / PSETEX; `ok_int`: reply 1/0 (SETNX), not OK/nil.
    fn apply(self, ctx: &mut Ctx, ok_int: bool) {
        let SetCommand { key, value: val, condition, get, keep_ttl, expire } = self;
        let cmdname = ctx.cmd.full_name();
        let exp = match expire {
            Some(e) => match e.at_ms(ctx.now_ms, cmdname) {
                Ok(ms) => Some(ms),
                Err(e) => return ctx.fail(&e),
            },
            None => None,
        };
        let (mut db, out) = ctx.parts();
        if get {
            match read_str(&mut db, key) {
                Err(e) => return out.fail(&e),
                Ok(Some(v)) => out.bulk(v),
                Ok(None) => out.null(),
            }
        }
        let found = db.get_mut(key).is_some();
        if (condition == Some(SetCondition::Nx) && found) || (condition == Some(SetCondition::Xx) && !found) {
            if !get {
                if ok_int {
                    out.int(0);
                } else {
                    out.null();
                }
            }
            return;
        }
        db.set(key, Value::str(val), keep_ttl);
        db.modified(key, notify::STRING, "set");
        if let Some(ms) = exp {
            db.set_expire(key, ms);
            db.fx.event(notify::GENERIC, "expire", db.db, key);
            let d = db.db;
            db.fx.propagate(
                d,
                vec![b"SET".to_vec(), key.to_vec(), val.to_vec(), b"PXAT".to_vec(), ms.to_string().into_bytes()],
            );
            ctx.propagate_original = false;
        } else if get {
            let d = db.db;
            let mut argv = vec![b"SET".to_vec(), key.to_vec(), val.to_vec()];
            if keep_ttl {
                argv.push(b"KEEPTTL".to_vec());
            }
            db.fx.propagate(d, argv);
            ctx.propagate_original = false;
        }
        if !get {
            if ok_int {
                ctx.out.int(1);
            } else {
                ctx.out.ok();
            }
        }
    }
}

fn set(ctx: &mut Ctx, a: Args) {
    match SetCommand::parse(a) {
        Ok(c) => c.apply(ctx, false),
        Err(e) => ctx.fail(&e),
    }
}
fn setnx(ctx: &mut Ctx, a: Args) {
    let c = SetCommand { condition: Some(SetCondition::Nx), ..SetCommand::plain(&a[1], &a[2]) };
    c.apply(ctx, true)
}
/// SETEX / PSETEX: key, expire, value.
fn setex_generic(ctx: &mut Ctx, a: Args, kind: ExpireKind) {
    match Expiry::parse(kind, &a[2], ctx.cmd.full_name()) {
        Ok(e) => SetCommand { expire: Some(e), ..SetCommand::plain(&a[1], &a[3]) }.apply(ctx, false),
        Err(e) => ctx.fail(&e),
    }
}
fn setex(ctx: &mut Ctx, a: Args) {
    setex_generic(ctx, a, ExpireKind::Ex)
}
fn psetex(ctx: &mut Ctx, a: Args) {
    setex_generic(ctx, a, ExpireKind::Px)
}

fn getset(ctx: &mut Ctx, a: Args) {
    let (mut db, out) = ctx.parts();
    match read_str(&mut db, &a[1]) {
        Err(e) => return out.fail(&e),
        Ok(Some(v)) => out.bulk(v),
        Ok(None) => out.null(),
    }
    db.set(&a[1], Value::str(&a[2]), false);
    db.modified(&a[1], notify::STRING, "set");
    let d = db.db;
    db.fx.propagate(d, vec![b"SET".to_vec(), a[1].to_vec(), a[2].to_vec()]);
    ctx.propagate_original = false;
}

fn getdel(ctx: &mut Ctx, a: Args) {
    let (mut db, out) = ctx.parts();
    match read_str(&mut db, &a[1]) {
        Err(e) => out.fail(&e),
        Ok(None) => out.null(),
        Ok(Some(v)) => {
            out.bulk(v);
            db.remove(&a[1]);
            db.modified(&a[1], notify::GENERIC, "del");
            let d = db.db;
            db.fx.propagate(d, vec![b"DEL".to_vec(), a[1].to_vec()]);
            ctx.propagate_original = false;
        }
    }
}

fn getex(ctx: &mut Ctx, a: Args) {
    let o = match SetOptions::parse(a, 2, false) {
        Ok(o) => o,
        Err(e) => return ctx.fail(&e),
    };
    let now = ctx.now_ms;
    let key = &a[1];
    // GETEX is never propagated as is: as PEXPIREAT, DEL or PERSIST.
    ctx.propagate_original = false;
    let (mut db, out) = ctx.parts();
    match read_str(&mut db, key) {
        Err(e) => return out.fail(&e),
        Ok(None) => return out.null(),
        Ok(Some(_)) => {}
    }
    // The expire value is checked once the key is known to hold a string.
    let expire = match o.ttl {
        Some(TtlOption::Expire(kind, v)) => match Expiry::parse(kind, v, "getex").and_then(|e| e.at_ms(now, "getex")) {
            Ok(ms) => Some((kind, ms)),
            Err(e) => return out.fail(&e),
        },
        _ => None,
    };
    let v = db.get_mut(key).unwrap().value.as_bytes().unwrap().to_vec();
    out.bulk(&v);
    let d = db.db;
    if expire.is_some_and(|(kind, ms)| !kind.relative() && ms <= now) {
        db.remove(key);
        db.modified(key, notify::GENERIC, "del");
        db.fx.propagate(d, vec![b"DEL".to_vec(), key.to_vec()]);
    } else if let Some((_, ms)) = expire {
        db.set_expire(key, ms);
        db.modified(key, notify::GENERIC, "expire");
        db.fx.propagate(d, vec![b"PEXPIREAT".to_vec(), key.to_vec(), ms.to_string().into_bytes()]);
    } else if o.ttl == Some(TtlOption::Persist) && db.persist(key) {
        db.modified(key, notify::GENERIC, "persist");
        db.fx.propagate(d, vec![b"PERSIST".to_vec(), key.to_vec()]);
    }
}

fn mget(ctx: &mut Ctx, a: Args) {
    let (mut db, out) = ctx.parts();
    out.array(a.len() - 1);
    for k in a.iter().skip(1) {
        match db.get(k).and_then(|e| e.value.as_bytes()) {
            Some(v) => out.bulk(v),
            None => out.null(),
        }
    }
}

fn mset_generic(ctx: &mut Ctx, a: Args, nx: bool) {
    if a.len().is_multiple_of(2) {
        let name = ctx.cmd.full_name();
        return ctx.out.error(&format!("ERR wrong number of arguments for '{}' command", name));
    }
    let (mut db, out) = ctx.parts();
    if nx {
        for i in (1..a.len()).step_by(2) {
            if db.get_mut(&a[i]).is_some() {
                return out.int(0);
            }
        }
    }
    for i in (1..a.len()).step_by(2) {
        db.set(&a[i], Value::str(&a[i + 1]), false);
        db.modified(&a[i], notify::STRING, "set");
    }
    if nx {
        out.int(1)
    } else {
        out.ok()
    }
}
fn mset(ctx: &mut Ctx, a: Args) {
    mset_generic(ctx, a, false)
}
fn msetnx(ctx: &mut Ctx, a: Args) {
    mset_generic(ctx, a, true)
}

/// Redis's checkStringLength against proto-max-bulk-len.
fn check_len(ctx: &Ctx, total: u64) -> bool {
    total <= ctx.srv.config().hot.proto_max_bulk_len.load(std::sync::atomic::Ordering::Relaxed) as u64
}

fn append(ctx: &mut Ctx, a: Args) {
    let (k, v) = (&a[1], &a[2]);
    let cur_len = {
        let (mut db, out) = ctx.parts();
        match db.get_mut(k) {
            None => None,
            Some(e) => match e.value.as_bytes() {
                Some(b) => Some(b.len()),
                None => return out.error(ERR_WRONGTYPE),
            },
        }
    };
    if let Some(l) = cur_len {
        if !check_len(ctx, (l + v.len()) as u64) {
            return ctx.out.error("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
        }
    }
    let (mut db, out) = ctx.parts();
    let newlen = match db.get_mut(k) {
        None => {
            db.set(k, Value::str(v), false);
            v.len()
        }
        Some(e) => {
            let r = e.value.as_raw_mut().unwrap();
            r.extend_from_slice(v);
            r.len()
        }
    };
    db.modified(k, notify::STRING, "append");
    out.int(newlen as i64);
}

fn strlen(ctx: &mut Ctx, a: Args) {
    let (mut db, out) = ctx.parts();
    if let Some(v) = or_reply(out, read_str(&mut db, &a[1])) {
        out.int(v.map(|v| v.len()).unwrap_or(0) as i64);
    }
}

fn incr_generic(ctx: &mut Ctx, key: &[u8], by: i64) {
    let (mut db, out) = ctx.parts();
    let cur = match db.get_mut(key) {
        None => 0,
        Some(e) => match e.value.as_bytes() {
            None => return out.error(ERR_WRONGTYPE),
            Some(b) => match parse_i64(b) {
                Some(v) => v,
                None => return out.error(ERR_NOT_INT),
            },
        },
    };
    let Some(n) = cur.checked_add(by) else { return out.error(ERR_OVERFLOW) };
    let mut b = itoa::Buffer::new();
    let s = b.format(n);
    db.set(key, Value::str(s.as_bytes()), true);
    db.modified(key, notify::STRING, "incrby");
    out.int(n);
}
fn incr(ctx: &mut Ctx, a: Args) {
    incr_generic(ctx, &a[1], 1)
}
fn decr(ctx: &mut Ctx, a: Args) {
    incr_generic(ctx, &a[1], -1)
}
fn incrby(ctx: &mut Ctx, a: Args) {
    if let Some(n) = int_arg(ctx.out, &a[2]) {
        incr_generic(ctx, &a[1], n)
    }
}
fn decrby(ctx: &mut Ctx, a: Args) {
    if let Some(n) = int_arg(ctx.out, &a[2]) {
        if n == i64::MIN {
            return ctx.out.error("ERR decrement would overflow");
        }
        incr_generic(ctx, &a[1], -n)
    }
}

fn incrbyfloat(ctx: &mut Ctx, a: Args) {
    use crate::ldouble::LDouble;
    let key = &a[1];
    let (mut db, out) = ctx.parts();
    let cur = match db.get_mut(key) {
        None => LDouble::zero(false),
        Some(e) => match e.value.as_bytes() {
            None => return out.error(ERR_WRONGTYPE),
            Some(b) => match LDouble::parse(b) {
                Some(v) => v,
                None => return out.error(ERR_NOT_FLOAT),
            },
        },
    };
    let Some(by) = LDouble::parse(&a[2]) else { return out.error(ERR_NOT_FLOAT) };
    let n = cur.plus(by);
    if n.is_nan() || n.is_inf() {
        return out.error("ERR increment would produce NaN or Infinity");
    }
    let s = n.to_human();
    db.set(key, Value::str(s.as_bytes()), true);
    db.modified(key, notify::STRING, "incrbyfloat");
    out.bulk(s.as_bytes());
    let d = db.db;
    db.fx.propagate(d, vec![b"SET".to_vec(), key.to_vec(), s.into_bytes(), b"KEEPTTL".to_vec()]);
    ctx.propagate_original = false;
}

fn setrange(ctx: &mut Ctx, a: Args) {
    let key = &a[1];
    let Some(off) = int_arg(ctx.out, &a[2]) else { return };
    if off < 0 {
        return ctx.out.error("ERR offset is out of range");
    }
    let v = &a[3];
    let exists = {
        let (mut db, out) = ctx.parts();
        match db.get_mut(key) {
            None => false,
            Some(e) if e.value.as_bytes().is_none() => return out.error(ERR_WRONGTYPE),
            Some(_) => true,
        }
    };
    if v.is_empty() {
        let (mut db, out) = ctx.parts();
        let l = if exists { db.get_mut(key).unwrap().value.as_bytes().unwrap().len() } else { 0 };
        return out.int(l as i64);
    }
    if !check_len(ctx, off as u64 + v.len() as u64) {
        return ctx.out.error("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
    }
    let (mut db, out) = ctx.parts();
    if !exists {
        db.set(key, Value::Raw(Box::default()), false);
    }
    let e = db.get_mut(key).unwrap();
    let r = e.value.as_raw_mut().unwrap();
    let off = off as usize;
    if r.len() < off + v.len() {
        r.resize(off + v.len(), 0);
    }
    r[off..off + v.len()].copy_from_slice(v);
    let l = r.len();
    db.modified(key, notify::STRING, "setrange");
    out.int(l as i64);
}

fn getrange(ctx: &mut Ctx, a: Args) {
    let Some(start) = int_arg(ctx.out, &a[2]) else { return };
    let Some(end) = int_arg(ctx.out, &a[3]) else { return };
    let (mut db, out) = ctx.parts();
    let v = match read_str(&mut db, &a[1]) {
        Err(e) => return out.fail(&e),
        Ok(None) => return out.bulk(b""),
        Ok(Some(v)) => v,
    };
    if start < 0 && end < 0 && start > end {
        return out.bulk(b"");
    }
    let len = v.len() as i64;
    let mut s = if start < 0 { len + start } else { start };
    let mut e = if end < 0 { len + end } else { end };
    if s < 0 {
        s = 0;
    }
    if e < 0 {
        e = 0;
    }
    if e >= len {
        e = len - 1;
    }
    if s > e || len == 0 {
        return out.bulk(b"");
    }
    out.bulk(&v[s as usize..=e as usize]);
}

fn lcs(ctx: &mut Ctx, a: Args) {
    // Redis checks both keys' types before it parses the options.
    let (mut db, out) = ctx.parts();
    let mut fetch = |k: &[u8]| -> Option<Vec<u8>> {
        match db.get(k) {
            None => Some(Vec::new()),
            Some(e) => e.value.as_bytes().map(|b| b.to_vec()),
        }
    };
    let (Some(sa), Some(sb)) = (fetch(&a[1]), fetch(&a[2])) else {
        return out.error("ERR The specified keys must contain string values");
    };
    let mut get_len = false;
    let mut get_idx = false;
    let mut with_match_len = false;
    let mut min_match_len: i64 = 0;
    let mut j = 3;
    while j < a.len() {
        let o = &a[j];
        if eq_ic(o, "idx") {
            get_idx = true;
        } else if eq_ic(o, "len") {
            get_len = true;
        } else if eq_ic(o, "withmatchlen") {
            with_match_len = true;
        } else if eq_ic(o, "minmatchlen") && j + 1 < a.len() {
            let Some(n) = int_arg(out, &a[j + 1]) else { return };
            min_match_len = n.max(0);
            j += 1;
        } else {
            return out.error(ERR_SYNTAX);
        }
        j += 1;
    }
    if get_idx && get_len {
        return out.error("ERR If you want both the length and indexes, please just use IDX.");
    }
    let (n, m) = (sa.len(), sb.len());
    if (n + 1).saturating_mul(m + 1) > 512 * 1024 * 1024 {
        return out.error("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len");
    }
    // dp[i][j] = LCS length of sa[..i], sb[..j]
    let w = m + 1;
    let mut dp = vec![0u32; (n + 1) * w];
    for i in 1..=n {
        for jj in 1..=m {
            dp[i * w + jj] = if sa[i - 1] == sb[jj - 1] {
                dp[(i - 1) * w + jj - 1] + 1
            } else {
                dp[(i - 1) * w + jj].max(dp[i * w + jj - 1])
            };
        }
    }
    let total = dp[n * w + m] as usize;
    let mut result = vec![0u8; total];
    let mut idx = total;
    let (mut i, mut jj) = (n, m);
    // matches: (a_start, a_end, b_start, b_end, len)
    let mut matches: Vec<(usize, usize, usize, usize)> = Vec::new();
    let mut cur: Option<(usize, usize, usize, usize)> = None;
    while i > 0 && jj > 0 {
        if sa[i - 1] == sb[jj - 1] {
            idx -= 1;
            result[idx] = sa[i - 1];
            match cur {
                Some((as_, ae, bs, be)) if as_ == i && bs == jj => cur = Some((i - 1, ae, jj - 1, be)),
                Some(r) => {
                    matches.push(r);
                    cur = Some((i - 1, i - 1, jj - 1, jj - 1));
                }
                None => cur = Some((i - 1, i - 1, jj - 1, jj - 1)),
            }
            i -= 1;
            jj -= 1;
        } else if dp[(i - 1) * w + jj] > dp[i * w + jj - 1] {
            i -= 1;
        } else {
            jj -= 1;
        }
    }
    if let Some(r) = cur {
        matches.push(r);
    }
    if get_idx {
        let sel: Vec<_> = matches.iter().filter(|m| (m.1 - m.0 + 1) as i64 >= min_match_len).collect();
        out.map(2);
        out.bulk(b"matches");
        out.array(sel.len());
        for m in sel {
            out.array(if with_match_len { 3 } else { 2 });
            out.array(2);
            out.int(m.0 as i64);
            out.int(m.1 as i64);
            out.array(2);
            out.int(m.2 as i64);
            out.int(m.3 as i64);
            if with_match_len {
                out.int((m.1 - m.0 + 1) as i64);
            }
        }
        out.bulk(b"len");
        out.int(total as i64);
    } else if get_len {
        out.int(total as i64);
    } else {
        out.bulk(&result);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrocache_protocol::resp::OwnedArgs;

    fn argv(s: &str) -> OwnedArgs {
        OwnedArgs::from_slices(&s.split(' ').collect::<Vec<_>>())
    }
    fn set(s: &str) -> Result<SetCommand<'static>, String> {
        // Leaked so the parsed command may outlive the helper: test-only.
        let o: &'static OwnedArgs = Box::leak(Box::new(argv(s)));
        SetCommand::parse(o.args()).map_err(|e| e.to_string())
    }
    fn getex(s: &str) -> Result<SetOptions<'static>, String> {
        let o: &'static OwnedArgs = Box::leak(Box::new(argv(s)));
        SetOptions::parse(o.args(), 2, false).map_err(|e| e.to_string())
    }
    fn expiry(kind: ExpireKind, ms: i64) -> Option<Expiry> {
        Some(Expiry { kind, ms })
    }
    const INVALID: &str = "ERR invalid expire time in 'set' command";

    #[test]
    fn set_plain() {
        let c = set("SET k v").unwrap();
        assert_eq!(c, SetCommand::plain(b"k", b"v"));
    }

    #[test]
    fn set_options() {
        let c = set("set k v nx").unwrap();
        assert_eq!(c.condition, Some(SetCondition::Nx));
        let c = set("set k v XX GET").unwrap();
        assert_eq!((c.condition, c.get), (Some(SetCondition::Xx), true));
        assert_eq!(set("set k v EX 10").unwrap().expire, expiry(ExpireKind::Ex, 10_000));
        assert_eq!(set("set k v px 10").unwrap().expire, expiry(ExpireKind::Px, 10));
        assert_eq!(set("set k v ExAt 10").unwrap().expire, expiry(ExpireKind::ExAt, 10_000));
        assert_eq!(set("set k v pxAT 10").unwrap().expire, expiry(ExpireKind::PxAt, 10));
        let c = set("set k v KeepTTL").unwrap();
        assert!(c.keep_ttl && c.expire.is_none());
    }

    #[test]
    fn set_option_order_and_repeats() {
        let a = set("set k v get ex 5 nx").unwrap();
        let b = set("set k v NX EX 5 GET").unwrap();
        assert_eq!(a, b);
        assert_eq!((a.condition, a.get, a.expire), (Some(SetCondition::Nx), true, expiry(ExpireKind::Ex, 5000)));
        // The same flag twice is accepted, as in Redis.
        assert_eq!(set("set k v nx nx").unwrap().condition, Some(SetCondition::Nx));
        assert_eq!(set("set k v xx xx").unwrap().condition, Some(SetCondition::Xx));
        assert!(set("set k v keepttl keepttl").unwrap().keep_ttl);
        assert!(set("set k v get get").unwrap().get);
        // Option words are only options after the value.
        assert_eq!(set("set nx ex").unwrap(), SetCommand::plain(b"nx", b"ex"));
    }

    #[test]
    fn set_syntax_errors() {
        for bad in [
            "set k v nx xx",
            "set k v xx nx",
            "set k v ex 10 px 10",
            "set k v ex 10 ex 10",
            "set k v ex 10 keepttl",
            "set k v keepttl ex 10",
            "set k v keepttl pxat 10",
            "set k v ex",
            "set k v get ex",
            "set k v persist",
            "set k v foo",
            "set k v nx foo 1",
            "set k v 10",
        ] {
            assert_eq!(set(bad), Err(ERR_SYNTAX.to_string()), "{bad}");
        }
    }

    #[test]
    fn set_expire_errors() {
        assert_eq!(set("set k v ex abc"), Err(ERR_NOT_INT.to_string()));
        assert_eq!(set("set k v px 1.5"), Err(ERR_NOT_INT.to_string()));
        assert_eq!(set("set k v ex 99999999999999999999"), Err(ERR_NOT_INT.to_string()));
        for bad in
            ["ex 0", "px 0", "exat 0", "pxat 0", "ex -1", "px -5", "ex 9223372036854776", "exat 9223372036854776"]
        {
            assert_eq!(set(&format!("set k v {bad}")), Err(INVALID.to_string()), "{bad}");
        }
        assert_eq!(set("set k v ex 9223372036854775").unwrap().expire, expiry(ExpireKind::Ex, 9223372036854775000));
        assert_eq!(set("set k v px 9223372036854775807").unwrap().expire, expiry(ExpireKind::Px, i64::MAX));
    }

    #[test]
    fn set_error_precedence() {
        // The whole syntax is checked before the expire value.
        assert_eq!(set("set k v ex abc nx xx"), Err(ERR_SYNTAX.to_string()));
        assert_eq!(set("set k v ex 0 foo"), Err(ERR_SYNTAX.to_string()));
        assert_eq!(set("set k v px -1 get"), Err(INVALID.to_string()));
    }

    #[test]
    fn expiry_at_ms() {
        let now = 1_700_000_000_000u64;
        let ex = Expiry::parse(ExpireKind::Ex, b"10", "set").unwrap();
        assert_eq!(ex.at_ms(now, "set"), Ok(now + 10_000));
        let pxat = Expiry::parse(ExpireKind::PxAt, b"123", "set").unwrap();
        assert_eq!(pxat.at_ms(now, "set"), Ok(123));
        let exat = Expiry::parse(ExpireKind::ExAt, b"2", "set").unwrap();
        assert_eq!(exat.at_ms(now, "set"), Ok(2000));
        // A relative expiry that overflows once now is added.
        let px = Expiry::parse(ExpireKind::Px, b"9223372036854775807", "setex").unwrap();
        assert_eq!(px.at_ms(now, "setex").unwrap_err().to_string(), "ERR invalid expire time in 'setex' command");
        assert_eq!(
            Expiry::parse(ExpireKind::Ex, b"0", "psetex").map_err(|e| e.to_string()),
            Err("ERR invalid expire time in 'psetex' command".to_string())
        );
    }

    #[test]
    fn getex_options() {
        assert_eq!(getex("getex k"), Ok(SetOptions::default()));
        assert_eq!(getex("getex k PERSIST").unwrap().ttl, Some(TtlOption::Persist));
        assert_eq!(getex("getex k persist persist").unwrap().ttl, Some(TtlOption::Persist));
        assert_eq!(getex("getex k ex 10").unwrap().ttl, Some(TtlOption::Expire(ExpireKind::Ex, b"10")));
        // The value is not checked by the parser: GETEX checks it once the key is read.
        assert_eq!(getex("getex k PXAT abc").unwrap().ttl, Some(TtlOption::Expire(ExpireKind::PxAt, b"abc")));
        for bad in [
            "getex k nx",
            "getex k xx",
            "getex k get",
            "getex k keepttl",
            "getex k ex 10 persist",
            "getex k persist ex 10",
            "getex k ex 1 px 1",
            "getex k ex",
            "getex k foo bar",
        ] {
            assert_eq!(getex(bad), Err(ERR_SYNTAX.to_string()), "{bad}");
        }
    }
}
