//! The "skiplist" encoding of a sorted set: an indexable skiplist (a port of
//! Redis's `zskiplist`, with spans for O(log n) rank queries) stored in an
//! arena of fixed-size nodes addressed by `u32` index, plus a hash table
//! (`hashbrown::raw::RawTable<u32>`) mapping member -> node index for O(1)
//! score lookups.  Each member is stored exactly once (in its node, as a
//! `Box<[u8]>`); the hash table only stores the 4-byte node index.
//!
//! Allocation behaviour: inserting a member allocates the member's bytes; the
//! node itself lives in the arena (amortised, slots are recycled through a
//! free list) and its first two skiplist levels are inline. Only nodes
//! taller than two levels (1/16 of them with p = 1/4) allocate a small
//! overflow array.

use super::RangePred;
use hashbrown::hash_map::DefaultHashBuilder;
use hashbrown::raw::RawTable;
use std::hash::BuildHasher;

const MAX_LEVEL: usize = 32;
pub(crate) const NIL: u32 = u32::MAX;
const HEAD: u32 = 0;
const INLINE_LEVELS: usize = 2;

#[derive(Clone, Copy, Default)]
struct Level {
    forward: u32,
    /// Number of level-0 hops covered by `forward`. Only meaningful when
    /// `forward != NIL` (Redis leaves it unspecified otherwise; we use
    /// wrapping arithmetic to mirror the C code).
    span: u32,
}

const EMPTY_LEVEL: Level = Level { forward: NIL, span: 0 };

struct Node {
    member: Box<[u8]>,
    score: f64,
    backward: u32,
    height: u8,
    inline: [Level; INLINE_LEVELS],
    extra: Option<Box<[Level]>>,
}

impl Node {
    fn new(member: Box<[u8]>, score: f64, height: usize) -> Node {
        Node {
            member,
            score,
            backward: NIL,
            height: height as u8,
            inline: [EMPTY_LEVEL; INLINE_LEVELS],
            extra: if height > INLINE_LEVELS {
                Some(vec![EMPTY_LEVEL; height - INLINE_LEVELS].into_boxed_slice())
            } else {
                None
            },
        }
    }
    #[inline(always)]
    fn lvl(&self, i: usize) -> &Level {
        if i < INLINE_LEVELS {
            &self.inline[i]
        } else {
            &self.extra.as_ref().unwrap()[i - INLINE_LEVELS]
        }
    }
    #[inline(always)]
    fn lvl_mut(&mut self, i: usize) -> &mut Level {
        if i < INLINE_LEVELS {
            &mut self.inline[i]
        } else {
            &mut self.extra.as_mut().unwrap()[i - INLINE_LEVELS]
        }
    }
}

/// `(s1, m1) < (s2, m2)` in sorted-set order.
#[inline(always)]
fn key_lt(s1: f64, m1: &[u8], s2: f64, m2: &[u8]) -> bool {
    s1 < s2 || (s1 == s2 && m1 < m2)
}

pub(crate) struct Skiplist {
    nodes: Vec<Node>,
    /// Free arena slots (their member is empty and `extra` is None).
    free: Vec<u32>,
    tail: u32,
    length: usize,
    level: usize,
    table: RawTable<u32>,
    hasher: DefaultHashBuilder,
    rng: u64,
    member_bytes: usize,
    extra_levels: usize,
}

impl Skiplist {
    pub(crate) fn with_capacity(cap: usize) -> Skiplist {
        let mut nodes = Vec::with_capacity(cap + 1);
        nodes.push(Node::new(Box::default(), 0.0, MAX_LEVEL));
        Skiplist {
            nodes,
            free: Vec::new(),
            tail: NIL,
            length: 0,
            level: 1,
            table: RawTable::with_capacity(cap),
            hasher: DefaultHashBuilder::default(),
            rng: rand::random::<u64>() | 1,
            member_bytes: 0,
            extra_levels: MAX_LEVEL - INLINE_LEVELS,
        }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.length
    }

    #[inline(always)]
    fn lvl(&self, x: u32, i: usize) -> &Level {
        self.nodes[x as usize].lvl(i)
    }
    #[inline(always)]
    fn lvl_mut(&mut self, x: u32, i: usize) -> &mut Level {
        self.nodes[x as usize].lvl_mut(i)
    }

    #[inline]
    fn hash(&self, member: &[u8]) -> u64 {
        self.hasher.hash_one(member)
    }

    fn random_level(&mut self) -> usize {
        // xorshift64*; P(level >= k+1) = 4^-k like Redis (ZSKIPLIST_P = 0.25).
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        let r = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
        let lvl = 1 + (r.trailing_zeros() / 2) as usize;
        lvl.min(MAX_LEVEL)
    }

    /// Node index of `member`, if present.
    #[inline]
    pub(crate) fn find(&self, member: &[u8]) -> Option<u32> {
        let h = self.hash(member);
        let nodes = &self.nodes;
        self.table.get(h, |&i| &*nodes[i as usize].member == member).copied()
    }

    #[inline]
    pub(crate) fn node_score(&self, x: u32) -> f64 {
        self.nodes[x as usize].score
    }
    #[inline]
    pub(crate) fn node_member(&self, x: u32) -> &[u8] {
        &self.nodes[x as usize].member
    }
    #[inline]
    pub(crate) fn node_next(&self, x: u32) -> u32 {
        self.lvl(x, 0).forward
    }
    #[inline]
    pub(crate) fn node_prev(&self, x: u32) -> u32 {
        self.nodes[x as usize].backward
    }
    #[inline]
    pub(crate) fn first(&self) -> u32 {
        self.lvl(HEAD, 0).forward
    }

    pub(crate) fn score(&self, member: &[u8]) -> Option<f64> {
        self.find(member).map(|x| self.node_score(x))
    }

    fn alloc_node(&mut self, member: Box<[u8]>, score: f64, height: usize) -> u32 {
        self.member_bytes += member.len();
        if height > INLINE_LEVELS {
            self.extra_levels += height - INLINE_LEVELS;
        }
        let node = Node::new(member, score, height);
        if let Some(i) = self.free.pop() {
            self.nodes[i as usize] = node;
            i
        } else {
            assert!(self.nodes.len() < NIL as usize, "sorted set too large");
            self.nodes.push(node);
            (self.nodes.len() - 1) as u32
        }
    }

    /// Release an (already unlinked) node's slot, returning its member.
    fn free_node(&mut self, x: u32) -> Box<[u8]> {
        let n = &mut self.nodes[x as usize];
        let member = std::mem::take(&mut n.member);
        if n.extra.take().is_some() {
            self.extra_levels -= n.height as usize - INLINE_LEVELS;
        }
        self.member_bytes -= member.len();
        self.free.push(x);
        member
    }

    /// Link node `x` (whose score/member/height are set) into the list.
    fn link(&mut self, x: u32) {
        let mut update = [HEAD; MAX_LEVEL];
        let mut rank = [0u32; MAX_LEVEL];
        let (score, height) = {
            let n = &self.nodes[x as usize];
            (n.score, n.height as usize)
        };
        let mut cur = HEAD;
        for i in (0..self.level).rev() {
            rank[i] = if i == self.level - 1 { 0 } else { rank[i + 1] };
            loop {
                let l = *self.lvl(cur, i);
                if l.forward == NIL {
                    break;
                }
                let f = &self.nodes[l.forward as usize];
                if key_lt(f.score, &f.member, score, &self.nodes[x as usize].member) {
                    rank[i] = rank[i].wrapping_add(l.span);
                    cur = l.forward;
                } else {
                    break;
                }
            }
            update[i] = cur;
        }
        if height > self.level {
            for i in self.level..height {
                rank[i] = 0;
                update[i] = HEAD;
                self.lvl_mut(HEAD, i).span = self.length as u32;
            }
            self.level = height;
        }
        for i in 0..height {
            let u = *self.lvl(update[i], i);
            let d = rank[0].wrapping_sub(rank[i]);
            *self.lvl_mut(x, i) = Level { forward: u.forward, span: u.span.wrapping_sub(d) };
            *self.lvl_mut(update[i], i) = Level { forward: x, span: d.wrapping_add(1) };
        }
        for (i, &u) in update.iter().enumerate().take(self.level).skip(height) {
            let l = self.lvl_mut(u, i);
            l.span = l.span.wrapping_add(1);
        }
        self.nodes[x as usize].backward = if update[0] == HEAD { NIL } else { update[0] };
        let fwd = self.lvl(x, 0).forward;
        if fwd != NIL {
            self.nodes[fwd as usize].backward = x;
        } else {
            self.tail = x;
        }
        self.length += 1;
    }

    /// Fill `update` with the rightmost node at each level that sorts strictly
    /// before `(score, member)`; returns the level-0 successor.
    fn find_update(&self, score: f64, member: &[u8], update: &mut [u32; MAX_LEVEL]) -> u32 {
        let mut cur = HEAD;
        for i in (0..self.level).rev() {
            loop {
                let f = self.lvl(cur, i).forward;
                if f == NIL {
                    break;
                }
                let n = &self.nodes[f as usize];
                if key_lt(n.score, &n.member, score, member) {
                    cur = f;
                } else {
                    break;
                }
            }
            update[i] = cur;
        }
        self.lvl(cur, 0).forward
    }

    /// zslDeleteNode: unlink `x` given its `update` vector.
    fn unlink(&mut self, x: u32, update: &[u32; MAX_LEVEL]) {
        for (i, &u) in update.iter().enumerate().take(self.level) {
            let ul = *self.lvl(u, i);
            if ul.forward == x {
                let xl = *self.lvl(x, i);
                *self.lvl_mut(u, i) =
                    Level { forward: xl.forward, span: ul.span.wrapping_add(xl.span).wrapping_sub(1) };
            } else {
                self.lvl_mut(u, i).span = ul.span.wrapping_sub(1);
            }
        }
        let fwd = self.lvl(x, 0).forward;
        let back = self.nodes[x as usize].backward;
        if fwd != NIL {
            self.nodes[fwd as usize].backward = back;
        } else {
            self.tail = back;
        }
        while self.level > 1 && self.lvl(HEAD, self.level - 1).forward == NIL {
            self.level -= 1;
        }
        self.length -= 1;
    }

    /// Insert a member that is known not to be present.
    pub(crate) fn insert_new(&mut self, member: Box<[u8]>, score: f64) {
        let h = self.hash(&member);
        let height = self.random_level();
        let x = self.alloc_node(member, score, height);
        self.link(x);
        let nodes = &self.nodes;
        let hasher = &self.hasher;
        self.table.insert(h, x, |&i| hasher.hash_one(&*nodes[i as usize].member));
    }

    /// Change the score of node `x` (zslUpdateScore).
    pub(crate) fn update_score(&mut self, x: u32, new_score: f64) {
        let (cur, back, fwd) = {
            let n = &self.nodes[x as usize];
            (n.score, n.backward, n.lvl(0).forward)
        };
        if (back == NIL || self.nodes[back as usize].score < new_score)
            && (fwd == NIL || self.nodes[fwd as usize].score > new_score)
        {
            self.nodes[x as usize].score = new_score;
            return;
        }
        let mut update = [HEAD; MAX_LEVEL];
        let found = self.find_update(cur, &self.nodes[x as usize].member, &mut update);
        debug_assert_eq!(found, x);
        self.unlink(x, &update);
        let n = &mut self.nodes[x as usize];
        n.score = new_score;
        // Reset the node's own levels before relinking (same height).
        for i in 0..n.height as usize {
            *n.lvl_mut(i) = EMPTY_LEVEL;
        }
        self.link(x);
    }

    /// Remove `member`; returns its score if it was present.
    pub(crate) fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let h = self.hash(member);
        let nodes = &self.nodes;
        let x = self.table.remove_entry(h, |&i| &*nodes[i as usize].member == member)?;
        let score = self.nodes[x as usize].score;
        let mut update = [HEAD; MAX_LEVEL];
        let found = self.find_update(score, member, &mut update);
        debug_assert_eq!(found, x);
        self.unlink(x, &update);
        self.free_node(x);
        Some(score)
    }

    /// Remove node `x` from the hash table (helper for range deletions).
    fn table_remove_node(&mut self, x: u32) {
        let nodes = &self.nodes;
        let member = &nodes[x as usize].member;
        let h = self.hasher.hash_one(&**member);
        self.table.remove_entry(h, |&i| i == x);
    }

    /// 1-based rank of the node holding (score, member) (zslGetRank).
    fn rank_of(&self, score: f64, member: &[u8]) -> usize {
        let mut rank: usize = 0;
        let mut cur = HEAD;
        for i in (0..self.level).rev() {
            loop {
                let l = *self.lvl(cur, i);
                if l.forward == NIL {
                    break;
                }
                let n = &self.nodes[l.forward as usize];
                if n.score < score || (n.score == score && *n.member <= *member) {
                    rank += l.span as usize;
                    cur = l.forward;
                } else {
                    break;
                }
            }
            if cur != HEAD && &*self.nodes[cur as usize].member == member {
                return rank;
            }
        }
        0
    }

    /// 0-based rank of `member`.
    pub(crate) fn rank(&self, member: &[u8]) -> Option<usize> {
        let x = self.find(member)?;
        let n = &self.nodes[x as usize];
        let r = self.rank_of(n.score, &n.member);
        debug_assert!(r >= 1);
        Some(r - 1)
    }

    /// Node at 0-based `rank` (zslGetElementByRank with rank+1).
    pub(crate) fn by_rank(&self, rank: usize) -> u32 {
        if rank >= self.length {
            return NIL;
        }
        let target = rank + 1;
        let mut traversed = 0usize;
        let mut cur = HEAD;
        for i in (0..self.level).rev() {
            loop {
                let l = *self.lvl(cur, i);
                if l.forward != NIL && traversed + l.span as usize <= target {
                    traversed += l.span as usize;
                    cur = l.forward;
                } else {
                    break;
                }
            }
            if traversed == target {
                return cur;
            }
        }
        NIL
    }

    fn is_in_range<R: RangePred>(&self, r: &R) -> bool {
        if r.is_empty() || self.length == 0 {
            return false;
        }
        let t = &self.nodes[self.tail as usize];
        if !r.gte_min(t.score, &t.member) {
            return false;
        }
        let f = &self.nodes[self.first() as usize];
        r.lte_max(f.score, &f.member)
    }

    /// First node in range with its 0-based rank.
    pub(crate) fn first_in_range<R: RangePred>(&self, r: &R) -> Option<(u32, usize)> {
        if !self.is_in_range(r) {
            return None;
        }
        let mut cur = HEAD;
        let mut rank = 0usize;
        for i in (0..self.level).rev() {
            loop {
                let l = *self.lvl(cur, i);
                if l.forward == NIL {
                    break;
                }
                let n = &self.nodes[l.forward as usize];
                if !r.gte_min(n.score, &n.member) {
                    rank += l.span as usize;
                    cur = l.forward;
                } else {
                    break;
                }
            }
        }
        let x = self.lvl(cur, 0).forward;
        if x == NIL {
            return None;
        }
        let n = &self.nodes[x as usize];
        if !r.lte_max(n.score, &n.member) {
            return None;
        }
        Some((x, rank))
    }

    /// Last node in range with its 0-based rank.
    pub(crate) fn last_in_range<R: RangePred>(&self, r: &R) -> Option<(u32, usize)> {
        if !self.is_in_range(r) {
            return None;
        }
        let mut cur = HEAD;
        let mut rank = 0usize;
        for i in (0..self.level).rev() {
            loop {
                let l = *self.lvl(cur, i);
                if l.forward == NIL {
                    break;
                }
                let n = &self.nodes[l.forward as usize];
                if r.lte_max(n.score, &n.member) {
                    rank += l.span as usize;
                    cur = l.forward;
                } else {
                    break;
                }
            }
        }
        if cur == HEAD {
            return None;
        }
        let n = &self.nodes[cur as usize];
        if !r.gte_min(n.score, &n.member) {
            return None;
        }
        Some((cur, rank - 1))
    }

    /// Delete the nodes in `range` (zslDeleteRangeBy{Score,Lex}).
    pub(crate) fn delete_range<R: RangePred>(&mut self, r: &R) -> usize {
        if !self.is_in_range(r) {
            return 0;
        }
        let mut update = [HEAD; MAX_LEVEL];
        let mut cur = HEAD;
        for i in (0..self.level).rev() {
            loop {
                let f = self.lvl(cur, i).forward;
                if f == NIL {
                    break;
                }
                let n = &self.nodes[f as usize];
                if !r.gte_min(n.score, &n.member) {
                    cur = f;
                } else {
                    break;
                }
            }
            update[i] = cur;
        }
        let mut x = self.lvl(cur, 0).forward;
        let mut removed = 0;
        while x != NIL {
            let n = &self.nodes[x as usize];
            if !r.lte_max(n.score, &n.member) {
                break;
            }
            let next = n.lvl(0).forward;
            self.unlink(x, &update);
            self.table_remove_node(x);
            self.free_node(x);
            removed += 1;
            x = next;
        }
        removed
    }

    /// Delete nodes with 0-based rank in `start..=end` (zslDeleteRangeByRank).
    pub(crate) fn delete_rank_range(&mut self, start: usize, end: usize) -> usize {
        if start > end || start >= self.length {
            return 0;
        }
        let start1 = start + 1;
        let end1 = end + 1;
        let mut update = [HEAD; MAX_LEVEL];
        let mut traversed = 0usize;
        let mut cur = HEAD;
        for i in (0..self.level).rev() {
            loop {
                let l = *self.lvl(cur, i);
                if l.forward != NIL && traversed + (l.span as usize) < start1 {
                    traversed += l.span as usize;
                    cur = l.forward;
                } else {
                    break;
                }
            }
            update[i] = cur;
        }
        traversed += 1;
        let mut x = self.lvl(cur, 0).forward;
        let mut removed = 0;
        while x != NIL && traversed <= end1 {
            let next = self.lvl(x, 0).forward;
            self.unlink(x, &update);
            self.table_remove_node(x);
            self.free_node(x);
            removed += 1;
            traversed += 1;
            x = next;
        }
        removed
    }

    /// Remove the first (or last) element and return it.
    pub(crate) fn pop(&mut self, last: bool) -> Option<(Box<[u8]>, f64)> {
        let x = if last { self.tail } else { self.first() };
        if x == NIL {
            return None;
        }
        let mut update = [HEAD; MAX_LEVEL];
        if last {
            let n = &self.nodes[x as usize];
            self.find_update(n.score, &n.member, &mut update);
        } else {
            // All levels that reach `x` come straight from the header.
        }
        self.unlink(x, &update);
        self.table_remove_node(x);
        let score = self.nodes[x as usize].score;
        Some((self.free_node(x), score))
    }

    /// Approximate heap + inline footprint in bytes.
    pub(crate) fn mem_usage(&self) -> usize {
        std::mem::size_of::<Skiplist>()
            + self.nodes.capacity() * std::mem::size_of::<Node>()
            + self.free.capacity() * 4
            + self.extra_levels * std::mem::size_of::<Level>()
            + self.member_bytes
            + self.table.buckets() * (std::mem::size_of::<u32>() + 1)
    }

    /// Largest member length (used when converting back to listpack).
    pub(crate) fn max_member_len(&self) -> usize {
        let mut m = 0;
        let mut x = self.first();
        while x != NIL {
            m = m.max(self.nodes[x as usize].member.len());
            x = self.node_next(x);
        }
        m
    }

    #[cfg(test)]
    pub(crate) fn check_invariants(&self) {
        // Level-0 chain, backward links, spans and hash table consistency.
        let mut count = 0usize;
        let mut prev = NIL;
        let mut x = self.first();
        while x != NIL {
            let n = &self.nodes[x as usize];
            assert_eq!(n.backward, prev);
            if prev != NIL {
                let p = &self.nodes[prev as usize];
                assert!(key_lt(p.score, &p.member, n.score, &n.member));
            }
            assert_eq!(self.find(&n.member), Some(x));
            count += 1;
            prev = x;
            x = n.lvl(0).forward;
        }
        assert_eq!(self.tail, prev);
        assert_eq!(count, self.length);
        assert_eq!(self.table.len(), self.length);
        for i in 0..self.level {
            let mut cur = HEAD;
            let mut rank = 0usize;
            loop {
                let l = *self.lvl(cur, i);
                if l.forward == NIL {
                    break;
                }
                rank += l.span as usize;
                cur = l.forward;
                assert_eq!(self.by_rank(rank - 1), cur, "level {i}");
            }
        }
    }
}
