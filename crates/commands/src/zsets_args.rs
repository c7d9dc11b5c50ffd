//! Typed arguments of the sorted-set commands: parsed over the borrowed request first, then
//! applied by the handlers in `zsets.rs`, so the parsing is tested on its own.

use ferrocache_engine::zset::{parse_score, ZaddFlags};
use ferrocache_node::util::*;
use ferrocache_node::CommandError;
use ferrocache_protocol::resp::Args;

/// NX / XX: only add new elements / only update existing ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZaddCondition {
    Nx,
    Xx,
}

/// GT / LT: only update when the new score is greater / less.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZaddCompare {
    Gt,
    Lt,
}

pub const ERR_ZADD_NX_XX: &str = "ERR XX and NX options at the same time are not compatible";
pub const ERR_ZADD_GT_LT_NX: &str = "ERR GT, LT, and/or NX options at the same time are not compatible";
pub const ERR_ZADD_INCR_PAIRS: &str = "ERR INCR option supports a single increment-element pair";

/// A parsed ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...], or ZINCRBY
/// key increment member (the same parser, with INCR implied).
#[derive(Debug, Clone, PartialEq)]
pub struct ZaddCommand<'a> {
    pub key: &'a [u8],
    pub condition: Option<ZaddCondition>,
    pub compare: Option<ZaddCompare>,
    pub ch: bool,
    pub incr: bool,
    /// (score, member) pairs: at least one, exactly one with `incr`.
    pub elements: Vec<(f64, &'a [u8])>,
}

impl<'a> ZaddCommand<'a> {
    /// Redis's zaddGenericCommand checks, in its order: the flags (any order, any case, until
    /// the first word that is not one), the pair count, NX+XX, GT/LT/NX, INCR with several
    /// pairs, then each score.
    pub fn parse(a: Args<'a>, incr_cmd: bool) -> Result<Self, CommandError> {
        let (mut nx, mut xx, mut gt, mut lt, mut ch, mut incr) = (false, false, false, false, false, incr_cmd);
        let mut idx = 2;
        while idx < a.len() {
            let o = &a[idx];
            if eq_ic(o, "nx") {
                nx = true
            } else if eq_ic(o, "xx") {
                xx = true
            } else if eq_ic(o, "ch") {
                ch = true
            } else if eq_ic(o, "incr") {
                incr = true
            } else if eq_ic(o, "gt") {
                gt = true
            } else if eq_ic(o, "lt") {
                lt = true
            } else {
                break;
            }
            idx += 1;
        }
        let rest = a.len().saturating_sub(idx);
        if !rest.is_multiple_of(2) || rest == 0 {
            return Err(CommandError::Syntax);
        }
        if nx && xx {
            return Err(ERR_ZADD_NX_XX.into());
        }
        if (nx && (gt || lt)) || (gt && lt) {
            return Err(ERR_ZADD_GT_LT_NX.into());
        }
        if incr && rest > 2 {
            return Err(ERR_ZADD_INCR_PAIRS.into());
        }
        let mut elements = Vec::with_capacity(rest / 2);
        let mut pairs = a.from(idx);
        while let (Some(s), Some(m)) = (pairs.get(0), pairs.get(1)) {
            elements.push((parse_score(s).ok_or(CommandError::NotFloat)?, m));
            pairs = pairs.from(2);
        }
        let condition = if nx {
            Some(ZaddCondition::Nx)
        } else if xx {
            Some(ZaddCondition::Xx)
        } else {
            None
        };
        let compare = if gt {
            Some(ZaddCompare::Gt)
        } else if lt {
            Some(ZaddCompare::Lt)
        } else {
            None
        };
        Ok(ZaddCommand { key: a.get(1).unwrap_or_default(), condition, compare, ch, incr, elements })
    }

    /// The engine's flags for [`ferrocache_engine::zset::SortedSet::zadd`].
    pub fn flags(&self) -> ZaddFlags {
        ZaddFlags {
            nx: self.condition == Some(ZaddCondition::Nx),
            xx: self.condition == Some(ZaddCondition::Xx),
            gt: self.compare == Some(ZaddCompare::Gt),
            lt: self.compare == Some(ZaddCompare::Lt),
            incr: self.incr,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrocache_protocol::resp::OwnedArgs;

    fn zadd(s: &str) -> Result<ZaddCommand<'static>, String> {
        // Leaked so the parsed command may outlive the helper: test-only.
        let o: &'static OwnedArgs = Box::leak(Box::new(OwnedArgs::from_slices(&s.split(' ').collect::<Vec<_>>())));
        ZaddCommand::parse(o.args(), eq_ic(&o.args()[0], "zincrby")).map_err(|e| e.to_string())
    }

    #[test]
    fn plain_pairs() {
        let c = zadd("ZADD k 1 a 2.5 b -inf c").unwrap();
        assert_eq!(c.key, b"k");
        assert_eq!((c.condition, c.compare, c.ch, c.incr), (None, None, false, false));
        assert_eq!(c.elements, vec![(1.0, &b"a"[..]), (2.5, &b"b"[..]), (f64::NEG_INFINITY, &b"c"[..])]);
        assert_eq!(c.flags(), ZaddFlags::default());
    }

    #[test]
    fn flags_any_order_and_case() {
        let c = zadd("zadd k Ch xX gt 1 a").unwrap();
        assert_eq!(
            (c.condition, c.compare, c.ch, c.incr),
            (Some(ZaddCondition::Xx), Some(ZaddCompare::Gt), true, false)
        );
        assert_eq!(c.flags(), ZaddFlags { xx: true, gt: true, ..Default::default() });
        let d = zadd("zadd k GT CH XX 1 a").unwrap();
        assert_eq!(c, d);
        let c = zadd("zadd k nx INCR 5 m").unwrap();
        assert_eq!((c.condition, c.incr), (Some(ZaddCondition::Nx), true));
        assert_eq!(c.elements, vec![(5.0, &b"m"[..])]);
        assert_eq!(zadd("zadd k lt lt 1 a").unwrap().compare, Some(ZaddCompare::Lt));
        // Flags end at the first other word: a later "nx" is a member.
        let c = zadd("zadd k 1 nx 2 ch").unwrap();
        assert_eq!(c.condition, None);
        assert_eq!(c.elements, vec![(1.0, &b"nx"[..]), (2.0, &b"ch"[..])]);
    }

    #[test]
    fn zincrby_is_incr() {
        let c = zadd("zincrby k 2 m").unwrap();
        assert!(c.incr && c.flags().incr);
        assert_eq!(c.elements, vec![(2.0, &b"m"[..])]);
        // ZINCRBY goes through the same flag scan, as in Redis.
        assert_eq!(zadd("zincrby k nx m"), Err(ERR_SYNTAX.to_string()));
        assert_eq!(zadd("zincrby k abc m"), Err(ERR_NOT_FLOAT.to_string()));
    }

    #[test]
    fn errors() {
        assert_eq!(zadd("zadd k 1"), Err(ERR_SYNTAX.to_string()));
        assert_eq!(zadd("zadd k 1 a 2"), Err(ERR_SYNTAX.to_string()));
        assert_eq!(zadd("zadd k nx"), Err(ERR_SYNTAX.to_string()));
        assert_eq!(zadd("zadd k nx xx ch"), Err(ERR_SYNTAX.to_string()));
        assert_eq!(zadd("zadd k nx xx 1 a"), Err(ERR_ZADD_NX_XX.to_string()));
        assert_eq!(zadd("zadd k nx gt 1 a"), Err(ERR_ZADD_GT_LT_NX.to_string()));
        assert_eq!(zadd("zadd k nx lt 1 a"), Err(ERR_ZADD_GT_LT_NX.to_string()));
        assert_eq!(zadd("zadd k gt lt 1 a"), Err(ERR_ZADD_GT_LT_NX.to_string()));
        assert_eq!(zadd("zadd k incr 1 a 2 b"), Err(ERR_ZADD_INCR_PAIRS.to_string()));
        assert_eq!(zadd("zadd k 1 a x b"), Err(ERR_NOT_FLOAT.to_string()));
        assert_eq!(zadd("zadd k nan a"), Err(ERR_NOT_FLOAT.to_string()));
    }

    #[test]
    fn error_precedence() {
        // Pair count, then NX+XX, then GT/LT/NX, then INCR, then the scores.
        assert_eq!(zadd("zadd k nx xx gt lt incr 1 a 2"), Err(ERR_SYNTAX.to_string()));
        assert_eq!(zadd("zadd k nx xx gt lt incr x a y b"), Err(ERR_ZADD_NX_XX.to_string()));
        assert_eq!(zadd("zadd k nx gt incr x a y b"), Err(ERR_ZADD_GT_LT_NX.to_string()));
        assert_eq!(zadd("zadd k incr x a y b"), Err(ERR_ZADD_INCR_PAIRS.to_string()));
        assert_eq!(zadd("zadd k 1 a bad b bad2 c"), Err(ERR_NOT_FLOAT.to_string()));
    }
}
