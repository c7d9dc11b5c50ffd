//! The owner of each of the 16384 slots, as a small number per slot into a table of node ids
//! (Redis keeps a clusterNode pointer per slot). A 40-character id string per slot made every
//! whole-table question a walk of 16384 string comparisons: CLUSTER INFO, each SETSLOT's
//! nodes.conf (once per node), the slot bitmap of every bus PING, the slot count of every PONG.

use super::slot::SLOTS;

#[derive(Clone, Debug)]
pub struct SlotOwners {
    /// Per slot: 0 for unassigned, else 1 + an index into `ids`.
    owner: Box<[u16]>,
    /// Every id that ever owned a slot here (a node is interned once; the table stays small).
    ids: Vec<String>,
    /// Per number (0: unassigned), how many slots it has: the bus asks for the owners and their
    /// counts on every message (cluster state, cluster size), too often for a table walk.
    counts: Vec<u32>,
}

impl Default for SlotOwners {
    fn default() -> Self {
        SlotOwners { owner: vec![0; SLOTS].into_boxed_slice(), ids: Vec::new(), counts: vec![SLOTS as u32] }
    }
}

impl SlotOwners {
    /// The number `id` is known by (1-based), if it was ever interned.
    fn number(&self, id: &str) -> Option<u16> {
        self.ids.iter().position(|x| x == id).map(|i| i as u16 + 1)
    }

    fn intern(&mut self, id: &str) -> u16 {
        if let Some(n) = self.number(id) {
            return n;
        }
        if self.ids.len() >= Self::COMPACT_AT {
            self.compact();
        }
        self.ids.push(id.to_string());
        self.counts.push(0);
        self.ids.len() as u16
    }

    /// Ids interned before `ids` is rebuilt from the owners left (nodes come and go).
    const COMPACT_AT: usize = 4096;

    fn compact(&mut self) {
        let mut renumber = vec![0u16; self.ids.len() + 1];
        let mut ids = Vec::new();
        for o in self.owner.iter_mut().filter(|o| **o != 0) {
            if renumber[*o as usize] == 0 {
                ids.push(std::mem::take(&mut self.ids[*o as usize - 1]));
                renumber[*o as usize] = ids.len() as u16;
            }
            *o = renumber[*o as usize];
        }
        self.ids = ids;
        self.recount();
    }

    fn recount(&mut self) {
        self.counts = vec![0; self.ids.len() + 1];
        for &o in self.owner.iter() {
            self.counts[o as usize] += 1;
        }
    }

    fn name(&self, n: u16) -> Option<&str> {
        (n != 0).then(|| self.ids[n as usize - 1].as_str())
    }

    /// The owner of `slot`.
    pub fn get(&self, slot: usize) -> Option<&str> {
        self.name(self.owner[slot])
    }

    /// Assign `slot` to `id` (None: unassign it).
    pub fn set(&mut self, slot: usize, id: Option<&str>) {
        let n = id.map(|i| self.intern(i)).unwrap_or(0);
        self.counts[self.owner[slot] as usize] -= 1;
        self.counts[n as usize] += 1;
        self.owner[slot] = n;
    }

    /// Whether `id` owns `slot`.
    pub fn is(&self, slot: usize, id: &str) -> bool {
        self.owner[slot] != 0 && self.number(id) == Some(self.owner[slot])
    }

    /// Whether `slot` is unassigned.
    pub fn is_none(&self, slot: usize) -> bool {
        self.owner[slot] == 0
    }

    /// Whether some slot is unassigned.
    pub fn any_unassigned(&self) -> bool {
        self.counts[0] > 0
    }

    /// Every slot's owner, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = Option<&str>> + '_ {
        self.owner.iter().map(|&n| self.name(n))
    }

    /// The slots `id` owns, ascending.
    pub fn of(&self, id: &str) -> impl Iterator<Item = usize> + '_ {
        let n = self.number(id).unwrap_or(u16::MAX);
        self.owner.iter().enumerate().filter(move |(_, &o)| o == n).map(|(j, _)| j)
    }

    /// How many slots `id` owns.
    pub fn count(&self, id: &str) -> usize {
        self.number(id).map_or(0, |n| self.counts[n as usize] as usize)
    }

    /// Whether `id` owns any slot.
    pub fn owns_any(&self, id: &str) -> bool {
        self.number(id).is_some_and(|n| self.counts[n as usize] > 0)
    }

    /// The slot ranges `id` owns, as (start, end) pairs.
    pub fn ranges(&self, id: &str) -> Vec<(usize, usize)> {
        let Some(n) = self.number(id) else { return Vec::new() };
        let mut out: Vec<(usize, usize)> = Vec::new();
        for (j, &o) in self.owner.iter().enumerate() {
            if o == n {
                match out.last_mut() {
                    Some(last) if last.1 + 1 == j => last.1 = j,
                    _ => out.push((j, j)),
                }
            }
        }
        out
    }

    /// Runs of consecutive slots with one owner: (start, end, owner), assigned slots only.
    pub fn runs(&self) -> Vec<(usize, usize, &str)> {
        let mut out: Vec<(usize, usize, u16)> = Vec::new();
        for (j, &o) in self.owner.iter().enumerate() {
            if o == 0 {
                continue;
            }
            match out.last_mut() {
                Some(last) if last.2 == o && last.1 + 1 == j => last.1 = j,
                _ => out.push((j, j, o)),
            }
        }
        out.into_iter().map(|(a, b, o)| (a, b, self.name(o).unwrap_or_default())).collect()
    }

    /// The distinct owners (in the order they were first seen).
    pub fn owners(&self) -> Vec<&str> {
        self.ids.iter().zip(&self.counts[1..]).filter(|(_, c)| **c > 0).map(|(id, _)| id.as_str()).collect()
    }

    /// Give every slot of `from` to `to` (None: unassign them); how many there were.
    pub fn reassign(&mut self, from: &str, to: Option<&str>) -> usize {
        if self.number(from).is_none() {
            return 0;
        }
        // Interning may renumber (compaction): the source's number is taken after it.
        let t = to.map(|i| self.intern(i)).unwrap_or(0);
        let Some(f) = self.number(from) else { return 0 };
        let mut changed = 0;
        for o in self.owner.iter_mut().filter(|o| **o == f) {
            *o = t;
            changed += 1;
        }
        self.counts[f as usize] -= changed as u32;
        self.counts[t as usize] += changed as u32;
        changed
    }

    /// Unassign every slot.
    pub fn clear(&mut self) {
        self.owner.fill(0);
        self.ids.clear();
        self.counts = vec![SLOTS as u32];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kept counts agree with a walk of the table after any mix of changes.
    #[test]
    fn counts_follow_every_change() {
        let mut t = SlotOwners::default();
        let mut seed = 7u64;
        let mut next = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as usize
        };
        for round in 0..20_000 {
            let id = format!("n{}", next() % 9);
            match next() % 10 {
                0 => {
                    t.reassign(&id, Some(&format!("n{}", next() % 9)));
                }
                1 if round % 500 == 0 => t.clear(),
                2 => {
                    t.reassign(&id, None);
                }
                _ => t.set(next() % SLOTS, if next() % 5 == 0 { None } else { Some(&id) }),
            }
        }
        for i in 0..9 {
            let id = format!("n{}", i);
            assert_eq!(t.count(&id), t.iter().filter(|o| *o == Some(id.as_str())).count());
        }
        assert_eq!(t.any_unassigned(), t.iter().any(|o| o.is_none()));
        let mut walked: Vec<&str> = t.iter().flatten().collect();
        walked.sort();
        walked.dedup();
        let mut owners = t.owners();
        owners.sort();
        assert_eq!(owners, walked);
    }

    #[test]
    fn owners_table() {
        let mut t = SlotOwners::default();
        assert!(t.any_unassigned());
        assert_eq!(t.count("a"), 0);
        for j in 0..10 {
            t.set(j, Some("a"));
        }
        t.set(20, Some("b"));
        t.set(21, Some("a"));
        assert_eq!(t.get(5), Some("a"));
        assert_eq!(t.get(10), None);
        assert!(t.is(20, "b") && !t.is(20, "a") && !t.is(30, "c"));
        assert_eq!(t.count("a"), 11);
        assert_eq!(t.ranges("a"), vec![(0, 9), (21, 21)]);
        assert_eq!(t.runs(), vec![(0, 9, "a"), (20, 20, "b"), (21, 21, "a")]);
        assert_eq!(t.owners(), vec!["a", "b"]);
        assert_eq!(t.of("b").collect::<Vec<_>>(), vec![20]);
        assert_eq!(t.reassign("a", Some("c")), 11);
        assert_eq!(t.count("a"), 0);
        assert!(!t.owns_any("a") && t.owns_any("c"));
        assert_eq!(t.reassign("b", None), 1);
        assert!(t.is_none(20));
        // Slots 100.. keep their owners while slots 0..99 go through many short-lived nodes.
        let n = SlotOwners::COMPACT_AT + 10;
        for i in 0..n {
            t.set(i % 100, Some(&format!("n{i}")));
        }
        assert!(t.ids.len() <= 200, "{}", t.ids.len());
        for j in 0..100 {
            let last = (0..n).filter(|i| i % 100 == j).max().unwrap();
            assert_eq!(t.get(j), Some(format!("n{last}").as_str()));
        }
        t.set(100, Some("c"));
        assert_eq!(t.count("c"), 1);
        t.clear();
        assert_eq!(t.iter().flatten().count(), 0);
    }
}
