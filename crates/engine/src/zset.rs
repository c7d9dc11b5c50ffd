//! Sorted set value type (Redis `zset`), matching Redis 7.0 semantics.
//!
//! # Representation
//!
//! * Members are binary-safe byte strings. Callers pass members as `&[u8]`;
//!   the big encoding stores each one once as a `Box<[u8]>`, the compact
//!   encoding stores them inline in a packed buffer. Owned members handed
//!   back (pops) are `Vec<u8>`. Borrowed views (`&[u8]`) are returned by
//!   lookups and iterators.
//! * Scores are `f64` and never NaN. Elements are ordered by score, then by
//!   member bytes (memcmp / slice order), exactly like Redis. Score
//!   comparisons use IEEE `<`/`==`, so `-0.0 == 0.0` as in C.
//! * Two encodings, like Redis:
//!   - `"listpack"`: one packed byte buffer (see `zset/listpack.rs`), used
//!     while `len <= max_listpack_entries` and every member is
//!     `<= max_listpack_value` bytes. Linear-time operations, tiny footprint.
//!     As in Redis, a `-0` score stored in a listpack becomes `0`.
//!   - `"skiplist"`: an indexable skiplist in a node arena plus a hash table
//!     member -> node (see `zset/skiplist.rs`): O(log n) insert, remove,
//!     rank, rank/score/lex range lookups; O(1) member -> score.
//!
//!   A set converts from listpack to skiplist when a limit is exceeded and
//!   never converts back implicitly; [`SortedSet::with_hint`] and
//!   [`SortedSet::convert_to_listpack_if_fits`] cover the places where Redis
//!   chooses the encoding for a freshly built set (ZADD on a new key,
//!   ZRANGESTORE, ZUNIONSTORE/ZINTERSTORE/ZDIFFSTORE).
//!
//! # Ranges
//!
//! Rank ranges are 0-based, inclusive, and must already be normalised by the
//! caller (negative indices resolved); out-of-range ends are clamped.
//! Score ranges use [`ScoreRange`] (Redis `zrangespec`) and lex ranges
//! [`LexRange`] (Redis `zlexrangespec`), both parsed from argument bytes with
//! Redis's error texts. As in Redis, lex ranges are only meaningful when all
//! elements share the same score.
//!
//! # Numbers
//!
//! [`parse_score`] (Redis `string2d`), [`strtod`] (glibc `strtod` prefix
//! parsing), [`format_double`] / [`write_double`] (`%.17g`, as used for
//! RESP2 score replies) and [`format_human`] (the `%.17Lf` "human" long
//! double style of INCRBYFLOAT/HINCRBYFLOAT, approximated with `f64`).

mod listpack;
mod numbers;
pub use numbers::*;
mod skiplist;
#[cfg(test)]
mod tests;

use listpack::Listpack;
use skiplist::{Skiplist, NIL};

/// Encoding thresholds (`zset-max-listpack-entries`, `zset-max-listpack-value`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZsetLimits {
    pub max_listpack_entries: usize,
    pub max_listpack_value: usize,
}

impl Default for ZsetLimits {
    fn default() -> Self {
        ZsetLimits { max_listpack_entries: 128, max_listpack_value: 64 }
    }
}

// ---------------------------------------------------------------------------
// Range specifications
// ---------------------------------------------------------------------------

/// Range predicates shared by the two encodings. Both predicates must be
/// monotone along the set order for the results to be well defined.
pub(crate) trait RangePred {
    fn gte_min(&self, score: f64, member: &[u8]) -> bool;
    fn lte_max(&self, score: f64, member: &[u8]) -> bool;
    /// True if no value can satisfy both bounds.
    fn is_empty(&self) -> bool;
}

/// Errors from range argument parsing; `message()` gives Redis's reply text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeError {
    /// "ERR min or max is not a float"
    NotAFloat,
    /// "ERR min or max not valid string range item"
    InvalidLexItem,
}

impl RangeError {
    pub fn message(&self) -> &'static str {
        match self {
            RangeError::NotAFloat => "ERR min or max is not a float",
            RangeError::InvalidLexItem => "ERR min or max not valid string range item",
        }
    }
}

impl std::fmt::Display for RangeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}
impl std::error::Error for RangeError {}

/// Score interval (Redis `zrangespec`). `minex`/`maxex` mark open ends.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreRange {
    pub min: f64,
    pub max: f64,
    pub minex: bool,
    pub maxex: bool,
}

impl ScoreRange {
    /// Inclusive range `[min, max]`.
    pub fn inclusive(min: f64, max: f64) -> ScoreRange {
        ScoreRange { min, max, minex: false, maxex: false }
    }

    /// Parse ZRANGEBYSCORE-style bounds (`zslParseRange`): optional `(`
    /// prefix for an open end, then anything C `strtod` accepts completely
    /// (leading whitespace, `inf`, hex floats, even the empty string = 0;
    /// overflow is not an error); NaN is rejected. Like the C code, an
    /// embedded NUL byte terminates the argument.
    pub fn parse(min: &[u8], max: &[u8]) -> Result<ScoreRange, RangeError> {
        let (min, minex) = parse_range_bound(min)?;
        let (max, maxex) = parse_range_bound(max)?;
        Ok(ScoreRange { min, max, minex, maxex })
    }

    #[inline]
    pub fn value_gte_min(&self, v: f64) -> bool {
        if self.minex {
            v > self.min
        } else {
            v >= self.min
        }
    }

    #[inline]
    pub fn value_lte_max(&self, v: f64) -> bool {
        if self.maxex {
            v < self.max
        } else {
            v <= self.max
        }
    }

    #[inline]
    pub fn contains(&self, v: f64) -> bool {
        self.value_gte_min(v) && self.value_lte_max(v)
    }

    /// True when the range cannot contain any value (zslIsInRange's check).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.min > self.max || (self.min == self.max && (self.minex || self.maxex))
    }
}

fn parse_range_bound(arg: &[u8]) -> Result<(f64, bool), RangeError> {
    // C strings stop at the first NUL.
    let arg = match memchr::memchr(0, arg) {
        Some(p) => &arg[..p],
        None => arg,
    };
    let (s, ex) = match arg.first() {
        Some(b'(') => (&arg[1..], true),
        _ => (arg, false),
    };
    let (v, used, _) = strtod(s);
    if used != s.len() || v.is_nan() {
        return Err(RangeError::NotAFloat);
    }
    Ok((v, ex))
}

impl RangePred for ScoreRange {
    #[inline(always)]
    fn gte_min(&self, score: f64, _: &[u8]) -> bool {
        self.value_gte_min(score)
    }
    #[inline(always)]
    fn lte_max(&self, score: f64, _: &[u8]) -> bool {
        self.value_lte_max(score)
    }
    #[inline(always)]
    fn is_empty(&self) -> bool {
        ScoreRange::is_empty(self)
    }
}

/// One end of a lex range (Redis `zlexrangespec` item).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LexBound<'a> {
    /// `-`: smaller than every string.
    NegInf,
    /// `+`: greater than every string.
    PosInf,
    /// `[value`
    Inclusive(&'a [u8]),
    /// `(value`
    Exclusive(&'a [u8]),
}

impl<'a> LexBound<'a> {
    /// Parse one ZRANGEBYLEX item (`zslParseLexRangeItem`).
    pub fn parse(item: &'a [u8]) -> Result<LexBound<'a>, RangeError> {
        // `+`/`-` must be the whole C string (a NUL right after is accepted).
        let alone = item.len() == 1 || item.get(1) == Some(&0);
        match item.first() {
            Some(b'+') if alone => Ok(LexBound::PosInf),
            Some(b'-') if alone => Ok(LexBound::NegInf),
            Some(b'(') => Ok(LexBound::Exclusive(&item[1..])),
            Some(b'[') => Ok(LexBound::Inclusive(&item[1..])),
            _ => Err(RangeError::InvalidLexItem),
        }
    }

    fn exclusive(&self) -> bool {
        !matches!(self, LexBound::Inclusive(_))
    }

    /// sdscmplex(value, self) for a regular string `value`.
    #[inline(always)]
    fn cmp_value(&self, value: &[u8]) -> std::cmp::Ordering {
        use std::cmp::Ordering::*;
        match self {
            LexBound::NegInf => Greater,
            LexBound::PosInf => Less,
            LexBound::Inclusive(b) | LexBound::Exclusive(b) => value.cmp(b),
        }
    }
}

/// Lexicographic interval (Redis `zlexrangespec`), borrowing the arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LexRange<'a> {
    pub min: LexBound<'a>,
    pub max: LexBound<'a>,
}

impl<'a> LexRange<'a> {
    /// Parse ZRANGEBYLEX bounds; error text "ERR min or max not valid
    /// string range item".
    pub fn parse(min: &'a [u8], max: &'a [u8]) -> Result<LexRange<'a>, RangeError> {
        Ok(LexRange { min: LexBound::parse(min)?, max: LexBound::parse(max)? })
    }

    #[inline]
    pub fn value_gte_min(&self, v: &[u8]) -> bool {
        let c = self.min.cmp_value(v);
        if self.min.exclusive() {
            c.is_gt()
        } else {
            c.is_ge()
        }
    }

    #[inline]
    pub fn value_lte_max(&self, v: &[u8]) -> bool {
        let c = self.max.cmp_value(v);
        if self.max.exclusive() {
            c.is_lt()
        } else {
            c.is_le()
        }
    }

    /// True when no string can be in the range (zslIsInLexRange's check).
    pub fn is_empty(&self) -> bool {
        use std::cmp::Ordering::*;
        use LexBound::*;
        let c = match (self.min, self.max) {
            (NegInf, NegInf) | (PosInf, PosInf) => Equal,
            (NegInf, _) | (_, PosInf) => Less,
            (PosInf, _) | (_, NegInf) => Greater,
            (Inclusive(a) | Exclusive(a), Inclusive(b) | Exclusive(b)) => a.cmp(b),
        };
        c.is_gt() || (c.is_eq() && (self.min.exclusive() || self.max.exclusive()))
    }
}

impl RangePred for LexRange<'_> {
    #[inline(always)]
    fn gte_min(&self, _: f64, member: &[u8]) -> bool {
        self.value_gte_min(member)
    }
    #[inline(always)]
    fn lte_max(&self, _: f64, member: &[u8]) -> bool {
        self.value_lte_max(member)
    }
    #[inline(always)]
    fn is_empty(&self) -> bool {
        LexRange::is_empty(self)
    }
}

// ---------------------------------------------------------------------------
// ZADD core
// ---------------------------------------------------------------------------

/// ZADD input flags (`ZADD_IN_*`). Validation of incompatible combinations
/// (NX+XX, GT+LT, NX+GT/LT, INCR with several pairs) is the command layer's
/// job, as in Redis.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ZaddFlags {
    pub nx: bool,
    pub xx: bool,
    pub gt: bool,
    pub lt: bool,
    pub incr: bool,
}

/// Outcome of [`SortedSet::zadd`] (`ZADD_OUT_*` plus `newscore`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ZaddResult {
    /// New member added with this score (`ZADD_OUT_ADDED`).
    Added(f64),
    /// Existing member's score changed to this (`ZADD_OUT_UPDATED`).
    Updated(f64),
    /// Member exists and already had this score (no flag set, `newscore`
    /// is valid: ZADD INCR replies with it).
    Unchanged(f64),
    /// Nothing done because of NX/XX/GT/LT (`ZADD_OUT_NOP`; ZADD INCR
    /// replies nil).
    Ignored,
}

impl ZaddResult {
    pub fn is_added(&self) -> bool {
        matches!(self, ZaddResult::Added(_))
    }
    pub fn is_updated(&self) -> bool {
        matches!(self, ZaddResult::Updated(_))
    }
    /// Counted by ZADD ... CH.
    pub fn is_changed(&self) -> bool {
        self.is_added() || self.is_updated()
    }
    /// The `newscore` out value (None when ignored).
    pub fn new_score(&self) -> Option<f64> {
        match *self {
            ZaddResult::Added(s) | ZaddResult::Updated(s) | ZaddResult::Unchanged(s) => Some(s),
            ZaddResult::Ignored => None,
        }
    }
}

/// ZADD/ZINCRBY failure (`ZADD_OUT_NAN`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZaddError {
    /// Input score NaN, or the increment produced NaN (`inf + -inf`).
    NotANumber,
}

impl ZaddError {
    /// Redis's reply text.
    pub fn message(&self) -> &'static str {
        "ERR resulting score is not a number (NaN)"
    }
}

impl std::fmt::Display for ZaddError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}
impl std::error::Error for ZaddError {}

// ---------------------------------------------------------------------------
// SortedSet
// ---------------------------------------------------------------------------

enum Repr {
    Listpack(Listpack),
    Skiplist(Box<Skiplist>),
}

/// A Redis sorted set. See the module documentation.
pub struct SortedSet {
    repr: Repr,
}

impl Default for SortedSet {
    fn default() -> Self {
        SortedSet::new()
    }
}

impl Clone for SortedSet {
    fn clone(&self) -> Self {
        match &self.repr {
            Repr::Listpack(lp) => SortedSet { repr: Repr::Listpack(lp.clone()) },
            Repr::Skiplist(sl) => {
                let mut n = Skiplist::with_capacity(sl.len());
                let mut x = sl.first();
                while x != NIL {
                    n.insert_new(sl.node_member(x).into(), sl.node_score(x));
                    x = sl.node_next(x);
                }
                SortedSet { repr: Repr::Skiplist(Box::new(n)) }
            }
        }
    }
}

impl std::fmt::Debug for SortedSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SortedSet(")?;
        f.write_str(self.encoding())?;
        f.write_str(")")?;
        f.debug_list().entries(self.iter().map(|(m, s)| (String::from_utf8_lossy(m).into_owned(), s))).finish()
    }
}

impl PartialEq for SortedSet {
    /// Same elements with the same scores (encoding ignored).
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().zip(other.iter()).all(|(a, b)| a.0 == b.0 && a.1 == b.1)
    }
}

impl SortedSet {
    /// Empty set in the listpack encoding (`createZsetListpackObject`).
    pub fn new() -> SortedSet {
        SortedSet { repr: Repr::Listpack(Listpack::default()) }
    }

    /// Empty set in the skiplist encoding (`createZsetObject`).
    pub fn new_skiplist() -> SortedSet {
        SortedSet { repr: Repr::Skiplist(Box::new(Skiplist::with_capacity(0))) }
    }

    /// Empty set whose encoding is picked for an expected number of
    /// elements and maximum member length: skiplist if
    /// `len_hint > max_listpack_entries || max_member_len > max_listpack_value`.
    ///
    /// * ZADD on a missing key: `with_hint(1, first_member.len(), l)`.
    /// * ZRANGESTORE (rank ranges): `with_hint(result_len, 0, l)`; score/lex
    ///   ranges: `new()`.
    pub fn with_hint(len_hint: usize, max_member_len: usize, limits: &ZsetLimits) -> SortedSet {
        if len_hint > limits.max_listpack_entries || max_member_len > limits.max_listpack_value {
            SortedSet { repr: Repr::Skiplist(Box::new(Skiplist::with_capacity(len_hint))) }
        } else {
            SortedSet {
                repr: Repr::Listpack(Listpack::with_capacity(
                    len_hint.saturating_mul(listpack::entry_size(max_member_len.max(8))),
                )),
            }
        }
    }

    /// `"listpack"` or `"skiplist"` (OBJECT ENCODING).
    pub fn encoding(&self) -> &'static str {
        match self.repr {
            Repr::Listpack(_) => "listpack",
            Repr::Skiplist(_) => "skiplist",
        }
    }

    pub fn is_listpack(&self) -> bool {
        matches!(self.repr, Repr::Listpack(_))
    }

    #[inline]
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Listpack(lp) => lp.len(),
            Repr::Skiplist(sl) => sl.len(),
        }
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Score of `member` (ZSCORE). O(1) in skiplist encoding.
    #[inline]
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match &self.repr {
            Repr::Listpack(lp) => lp.find(member).map(|(_, s)| s),
            Repr::Skiplist(sl) => sl.score(member),
        }
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        self.score(member).is_some()
    }

    /// Convert to the skiplist encoding (no-op if already there).
    pub fn convert_to_skiplist(&mut self) {
        if let Repr::Listpack(lp) = &self.repr {
            let mut sl = Skiplist::with_capacity(lp.len() + 1);
            let buf = lp.buf();
            let mut pos = 0;
            while pos < buf.len() {
                let e = listpack::decode(buf, pos);
                sl.insert_new(buf[e.mstart..e.mend].into(), e.score);
                pos = e.next;
            }
            self.repr = Repr::Skiplist(Box::new(sl));
        }
    }

    /// `zsetConvertToListpackIfNeeded`: switch a skiplist-encoded set back to
    /// listpack if it fits the limits. Redis does this only for the
    /// destination of ZUNIONSTORE/ZINTERSTORE/ZDIFFSTORE.
    pub fn convert_to_listpack_if_fits(&mut self, limits: &ZsetLimits) {
        let Repr::Skiplist(sl) = &self.repr else {
            return;
        };
        if sl.len() > limits.max_listpack_entries || sl.max_member_len() > limits.max_listpack_value {
            return;
        }
        let mut lp = Listpack::with_capacity(0);
        let mut x = sl.first();
        while x != NIL {
            lp.push_back(sl.node_member(x), sl.node_score(x));
            x = sl.node_next(x);
        }
        lp.shrink_to_fit();
        self.repr = Repr::Listpack(lp);
    }

    /// Plain insert-or-update (ZADD without flags). The caller guarantees
    /// `score` is not NaN (panics otherwise).
    pub fn insert(&mut self, member: &[u8], score: f64, limits: &ZsetLimits) -> ZaddResult {
        self.zadd(member, score, ZaddFlags::default(), limits).expect("NaN score")
    }

    /// ZINCRBY core: add `delta` to the member's score (0 if absent).
    /// Returns the new score or [`ZaddError::NotANumber`].
    pub fn incr_by(&mut self, member: &[u8], delta: f64, limits: &ZsetLimits) -> Result<f64, ZaddError> {
        let flags = ZaddFlags { incr: true, ..Default::default() };
        Ok(self.zadd(member, delta, flags, limits)?.new_score().unwrap_or(delta))
    }

    /// ZADD core, a port of `zsetAdd()`: applies NX/XX/GT/LT/INCR semantics
    /// and may convert the set to the skiplist encoding.
    pub fn zadd(
        &mut self,
        member: &[u8],
        score: f64,
        flags: ZaddFlags,
        limits: &ZsetLimits,
    ) -> Result<ZaddResult, ZaddError> {
        if score.is_nan() {
            return Err(ZaddError::NotANumber);
        }
        let mut score = score;
        if let Repr::Listpack(lp) = &mut self.repr {
            if let Some((pos, cur)) = lp.find(member) {
                if flags.nx {
                    return Ok(ZaddResult::Ignored);
                }
                if flags.incr {
                    score += cur;
                    if score.is_nan() {
                        return Err(ZaddError::NotANumber);
                    }
                }
                if (flags.lt && score >= cur) || (flags.gt && score <= cur) {
                    return Ok(ZaddResult::Ignored);
                }
                if score != cur {
                    lp.update_score(pos, score);
                    return Ok(ZaddResult::Updated(score));
                }
                return Ok(ZaddResult::Unchanged(score));
            } else if !flags.xx {
                if lp.len() + 1 > limits.max_listpack_entries
                    || member.len() > limits.max_listpack_value
                    || lp.bytes() + listpack::entry_size(member.len()) > LISTPACK_SAFETY_SIZE
                {
                    self.convert_to_skiplist();
                } else {
                    lp.insert(member, score);
                    return Ok(ZaddResult::Added(score));
                }
            } else {
                return Ok(ZaddResult::Ignored);
            }
        }
        let Repr::Skiplist(sl) = &mut self.repr else { unreachable!() };
        if let Some(x) = sl.find(member) {
            if flags.nx {
                return Ok(ZaddResult::Ignored);
            }
            let cur = sl.node_score(x);
            if flags.incr {
                score += cur;
                if score.is_nan() {
                    return Err(ZaddError::NotANumber);
                }
            }
            if (flags.lt && score >= cur) || (flags.gt && score <= cur) {
                return Ok(ZaddResult::Ignored);
            }
            if score != cur {
                sl.update_score(x, score);
                return Ok(ZaddResult::Updated(score));
            }
            Ok(ZaddResult::Unchanged(score))
        } else if !flags.xx {
            sl.insert_new(member.into(), score);
            Ok(ZaddResult::Added(score))
        } else {
            Ok(ZaddResult::Ignored)
        }
    }

    /// Remove `member` (ZREM). Returns true if it was present.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Listpack(lp) => match lp.find(member) {
                Some((pos, _)) => {
                    lp.delete_at(pos);
                    true
                }
                None => false,
            },
            Repr::Skiplist(sl) => sl.remove(member).is_some(),
        }
    }

    /// 0-based rank of `member` (ZRANK; ZREVRANK with `reverse`).
    pub fn rank(&self, member: &[u8], reverse: bool) -> Option<usize> {
        let r = match &self.repr {
            Repr::Listpack(lp) => lp.rank(member),
            Repr::Skiplist(sl) => sl.rank(member),
        }?;
        Some(if reverse { self.len() - 1 - r } else { r })
    }

    /// Element at 0-based rank (ascending order). O(log n) for skiplist,
    /// O(n) for listpack. Useful for ZRANDMEMBER.
    pub fn get_by_rank(&self, rank: usize) -> Option<(&[u8], f64)> {
        self.iter_from(rank, 1, false).next()
    }

    /// A uniformly random element (ZRANDMEMBER without count), via rank
    /// access: O(log n) skiplist, O(n) listpack.
    pub fn random_element<G: rand::Rng + ?Sized>(&self, rng: &mut G) -> Option<(&[u8], f64)> {
        if self.is_empty() {
            return None;
        }
        self.get_by_rank(rng.gen_range(0..self.len()))
    }

    /// Iterator over all elements in ascending order.
    pub fn iter(&self) -> Iter<'_> {
        self.iter_from(0, self.len(), false)
    }

    /// Iterator over all elements in descending order.
    pub fn iter_rev(&self) -> Iter<'_> {
        let n = self.len();
        self.iter_from(n.wrapping_sub(1), n, true)
    }

    /// Iterate `count` elements starting at ascending rank `rank`, moving
    /// towards higher ranks (or lower ones if `rev`).
    fn iter_from(&self, rank: usize, count: usize, rev: bool) -> Iter<'_> {
        if count == 0 || rank >= self.len() {
            return Iter::empty();
        }
        match &self.repr {
            Repr::Listpack(lp) => {
                Iter { src: Src::Lp { buf: lp.buf(), pos: lp.offset_of_rank(rank) }, remaining: count, rev }
            }
            Repr::Skiplist(sl) => Iter { src: Src::Sl { sl, node: sl.by_rank(rank) }, remaining: count, rev },
        }
    }

    /// ZRANGE by rank: 0-based inclusive `start..=end` (already normalised
    /// by the caller; `end` is clamped to `len-1`). With `reverse`, ranks
    /// count from the highest element (ZREVRANGE) and elements come in
    /// descending order.
    pub fn range_by_rank(&self, start: usize, end: usize, reverse: bool) -> Iter<'_> {
        let len = self.len();
        if start > end || start >= len {
            return Iter::empty();
        }
        let end = end.min(len - 1);
        let count = end - start + 1;
        if reverse {
            self.iter_from(len - 1 - start, count, true)
        } else {
            self.iter_from(start, count, false)
        }
    }

    /// First/last (ascending rank) of elements in range.
    /// Ranks (ascending) of the first and last elements in range.
    fn rank_bounds<R: RangePred>(&self, r: &R) -> Option<(usize, usize)> {
        self.bounds(r).map(|b| (b.0 .1, b.1 .1))
    }

    /// (position, rank) of the first and last elements in range; position
    /// is a byte offset (listpack) or node index (skiplist).
    #[allow(clippy::type_complexity)]
    fn bounds<R: RangePred>(&self, r: &R) -> Option<((usize, usize), (usize, usize))> {
        match &self.repr {
            Repr::Listpack(lp) => {
                let first = lp.first_in_range(r)?;
                let last = lp.last_in_range(r)?;
                Some((first, last))
            }
            Repr::Skiplist(sl) => {
                let (fx, first) = sl.first_in_range(r)?;
                let (lx, last) = sl.last_in_range(r)?;
                Some(((fx as usize, first), (lx as usize, last)))
            }
        }
        .filter(|(f, l)| f.1 <= l.1)
    }

    /// Iterator starting at a known position (see [`bounds`](Self::bounds)).
    fn iter_at(&self, pos: usize, count: usize, rev: bool) -> Iter<'_> {
        let src = match &self.repr {
            Repr::Listpack(lp) => Src::Lp { buf: lp.buf(), pos },
            Repr::Skiplist(sl) => Src::Sl { sl, node: pos as u32 },
        };
        Iter { src, remaining: count, rev }
    }

    fn range_generic<R: RangePred>(&self, r: &R, reverse: bool, offset: i64, limit: i64) -> Iter<'_> {
        if offset < 0 || limit == 0 {
            return Iter::empty();
        }
        let Some(((fpos, first), (lpos, last))) = self.bounds(r) else {
            return Iter::empty();
        };
        let total = last - first + 1;
        let offset = offset as u64;
        if offset >= total as u64 {
            return Iter::empty();
        }
        let offset = offset as usize;
        let avail = total - offset;
        let n = if limit < 0 { avail } else { avail.min(limit as u64 as usize) };
        match (reverse, offset) {
            (true, 0) => self.iter_at(lpos, n, true),
            (false, 0) => self.iter_at(fpos, n, false),
            (true, _) => self.iter_from(last - offset, n, true),
            (false, _) => self.iter_from(first + offset, n, false),
        }
    }

    /// ZRANGEBYSCORE / ZREVRANGEBYSCORE with `LIMIT offset count` semantics:
    /// negative `offset` yields nothing, negative `limit` means no limit
    /// (pass `0, -1` when there is no LIMIT clause). Reverse iterates from
    /// the highest element in range downwards.
    pub fn range_by_score(&self, range: &ScoreRange, reverse: bool, offset: i64, limit: i64) -> Iter<'_> {
        self.range_generic(range, reverse, offset, limit)
    }

    /// ZRANGEBYLEX / ZREVRANGEBYLEX; same `offset`/`limit` rules as
    /// [`range_by_score`](Self::range_by_score).
    pub fn range_by_lex(&self, range: &LexRange<'_>, reverse: bool, offset: i64, limit: i64) -> Iter<'_> {
        self.range_generic(range, reverse, offset, limit)
    }

    /// ZCOUNT: O(log n) in skiplist encoding.
    pub fn count_in_score_range(&self, range: &ScoreRange) -> usize {
        self.rank_bounds(range).map_or(0, |(f, l)| l - f + 1)
    }

    /// ZLEXCOUNT: O(log n) in skiplist encoding.
    pub fn count_in_lex_range(&self, range: &LexRange<'_>) -> usize {
        self.rank_bounds(range).map_or(0, |(f, l)| l - f + 1)
    }

    fn remove_range_generic<R: RangePred>(&mut self, r: &R) -> usize {
        match &mut self.repr {
            Repr::Listpack(lp) => lp.delete_range(r),
            Repr::Skiplist(sl) => sl.delete_range(r),
        }
    }

    /// ZREMRANGEBYSCORE; returns the number of removed elements.
    pub fn remove_range_by_score(&mut self, range: &ScoreRange) -> usize {
        self.remove_range_generic(range)
    }

    /// ZREMRANGEBYLEX; returns the number of removed elements.
    pub fn remove_range_by_lex(&mut self, range: &LexRange<'_>) -> usize {
        self.remove_range_generic(range)
    }

    /// ZREMRANGEBYRANK with normalised 0-based inclusive ranks (end clamped).
    pub fn remove_range_by_rank(&mut self, start: usize, end: usize) -> usize {
        match &mut self.repr {
            Repr::Listpack(lp) => lp.delete_rank_range(start, end),
            Repr::Skiplist(sl) => sl.delete_rank_range(start, end),
        }
    }

    /// ZPOPMIN (or ZPOPMAX with `max`): remove and return up to `count`
    /// elements, in pop order (ascending for min, descending for max).
    pub fn pop(&mut self, count: usize, max: bool) -> Vec<(Vec<u8>, f64)> {
        let n = count.min(self.len());
        let mut out = Vec::with_capacity(n);
        if n == 0 {
            return out;
        }
        match &mut self.repr {
            Repr::Listpack(lp) => {
                let buf = lp.buf();
                if max {
                    let mut end = buf.len();
                    for _ in 0..n {
                        let p = listpack::prev_start(buf, end);
                        let e = listpack::decode(buf, p);
                        out.push((buf[e.mstart..e.mend].to_vec(), e.score));
                        end = p;
                    }
                    lp.delete_run(end, n);
                } else {
                    let mut pos = 0;
                    for _ in 0..n {
                        let e = listpack::decode(buf, pos);
                        out.push((buf[e.mstart..e.mend].to_vec(), e.score));
                        pos = e.next;
                    }
                    lp.delete_run(0, n);
                }
            }
            Repr::Skiplist(sl) => {
                for _ in 0..n {
                    let (m, s) = sl.pop(max).expect("len checked");
                    out.push((m.into_vec(), s));
                }
            }
        }
        out
    }

    /// Approximate memory footprint in bytes (MEMORY USAGE), including the
    /// `SortedSet` itself.
    pub fn memory_usage(&self) -> usize {
        std::mem::size_of::<SortedSet>()
            + match &self.repr {
                Repr::Listpack(lp) => lp.mem_usage(),
                Repr::Skiplist(sl) => sl.mem_usage(),
            }
    }

    #[cfg(test)]
    fn check_invariants(&self) {
        if let Repr::Skiplist(sl) = &self.repr {
            sl.check_invariants();
        }
        let v: Vec<_> = self.iter().collect();
        assert_eq!(v.len(), self.len());
        for w in v.windows(2) {
            assert!(w[0].1 < w[1].1 || (w[0].1 == w[1].1 && w[0].0 < w[1].0));
        }
        let r: Vec<_> = self.iter_rev().collect();
        assert_eq!(r.len(), v.len());
        assert!(r.iter().rev().eq(v.iter()));
    }
}

/// Redis refuses to grow a listpack past ~1GB (`lpSafeToAdd`).
const LISTPACK_SAFETY_SIZE: usize = 1 << 30;

enum Src<'a> {
    Empty,
    Lp { buf: &'a [u8], pos: usize },
    Sl { sl: &'a Skiplist, node: u32 },
}

/// Iterator over `(member, score)` pairs of a [`SortedSet`]; knows its exact
/// length up front (handy for array reply headers).
pub struct Iter<'a> {
    src: Src<'a>,
    remaining: usize,
    rev: bool,
}

impl<'a> Iter<'a> {
    fn empty() -> Iter<'a> {
        Iter { src: Src::Empty, remaining: 0, rev: false }
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], f64);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        match &mut self.src {
            Src::Empty => None,
            Src::Lp { buf, pos } => {
                let buf: &'a [u8] = buf;
                let e = listpack::decode(buf, *pos);
                if self.rev {
                    if *pos > 0 {
                        *pos = listpack::prev_start(buf, *pos);
                    } else {
                        self.remaining = 0;
                    }
                } else {
                    *pos = e.next;
                }
                Some((&buf[e.mstart..e.mend], e.score))
            }
            Src::Sl { sl, node } => {
                let sl: &'a Skiplist = sl;
                if *node == NIL {
                    self.remaining = 0;
                    return None;
                }
                let x = *node;
                *node = if self.rev { sl.node_prev(x) } else { sl.node_next(x) };
                Some((sl.node_member(x), sl.node_score(x)))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Iter<'_> {}
