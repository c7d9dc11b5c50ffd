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
}

impl Default for SlotOwners {
    fn default() -> Self {
        SlotOwners { owner: vec![0; SLOTS].into_boxed_slice(), ids: Vec::new() }
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
        self.owner[slot] = id.map(|i| self.intern(i)).unwrap_or(0);
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
        self.owner.contains(&0)
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
        match self.number(id) {
            Some(n) => self.owner.iter().filter(|&&o| o == n).count(),
            None => 0,
        }
    }

    /// Whether `id` owns any slot.
    pub fn owns_any(&self, id: &str) -> bool {
        self.number(id).is_some_and(|n| self.owner.contains(&n))
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

    /// The distinct owners, in the order of their first slot.
    pub fn owners(&self) -> Vec<&str> {
        let mut seen = vec![false; self.ids.len() + 1];
        let mut out = Vec::new();
        let mut last = 0;
        for &o in self.owner.iter() {
            if o != 0 && o != last {
                last = o;
                if !seen[o as usize] {
                    seen[o as usize] = true;
                    out.push(self.ids[o as usize - 1].as_str());
                }
            }
        }
        out
    }

    /// Give every slot of `from` to `to` (None: unassign them); how many there were.
    pub fn reassign(&mut self, from: &str, to: Option<&str>) -> usize {
        let Some(f) = self.number(from) else { return 0 };
        let t = to.map(|i| self.intern(i)).unwrap_or(0);
        let mut changed = 0;
        for o in self.owner.iter_mut().filter(|o| **o == f) {
            *o = t;
            changed += 1;
        }
        changed
    }

    /// Unassign every slot.
    pub fn clear(&mut self) {
        self.owner.fill(0);
        self.ids.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
