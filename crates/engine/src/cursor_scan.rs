//! SSCAN/HSCAN/ZSCAN cursors over a collection's hash-table encoding.
//!
//! Redis's guarantee: an element present from the first call to the last is returned at least
//! once, whatever is added or removed meanwhile (its reverse-binary bucket cursor survives
//! rehashing). An index into the iteration order does not: removing elements before the cursor
//! shifts the rest down and some are never returned (Redis's "SCAN regression test for issue
//! #4906"). Here the cursor is a position in the order of a fixed 64-bit hash of each element:
//! a call returns the elements whose hash is >= the cursor, smallest hashes first, and the next
//! cursor is one past the largest hash returned. Insertions and removals never move an element's
//! hash, so nothing present throughout is skipped, and the cursor stays valid across processes
//! (a replica promoted mid-scan continues it).
//!
//! Finding the smallest hashes costs one pass over the collection per call, so a call returns at
//! least 1/`MIN_FRACTION_DIVISOR` of the collection (COUNT is a hint in Redis too: a listpack is
//! always returned whole): a full scan is then a bounded number of passes, never O(N²/COUNT).

/// A call returns at least len/this many elements, so a full scan is at most ~this many passes.
const MIN_FRACTION_DIVISOR: usize = 32;

fn hasher() -> ahash::RandomState {
    // Fixed seeds: the order must be the same on every call and in every process.
    ahash::RandomState::with_seeds(
        0x243f_6a88_85a3_08d3,
        0x1319_8a2e_0370_7344,
        0xa409_3822_299f_31d0,
        0x082e_fa98_ec4e_6c89,
    )
}

/// The scan position of one element.
pub fn element_hash(member: &[u8]) -> u64 {
    hasher().hash_one(member)
}

/// One cursor step over `items` (each with the bytes that identify it: the member or field).
/// Returns the next cursor (0 when the scan is complete) and the items of this step.
pub fn step<T>(
    items: impl Iterator<Item = T>,
    key_of: impl Fn(&T) -> &[u8],
    cursor: u64,
    count: usize,
) -> (u64, Vec<T>) {
    let h = hasher();
    let mut total = 0usize;
    let mut pending: Vec<(u64, T)> = items
        .filter_map(|it| {
            total += 1;
            let pos = h.hash_one(key_of(&it));
            (pos >= cursor).then_some((pos, it))
        })
        .collect();
    let want = count.max(total / MIN_FRACTION_DIVISOR).max(1);
    if pending.len() <= want {
        return (0, pending.into_iter().map(|(_, it)| it).collect());
    }
    pending.select_nth_unstable_by_key(want - 1, |(pos, _)| *pos);
    let last = pending[want - 1].0;
    // Elements sharing the boundary hash go out together, so the next cursor can skip past it.
    let (mut taken, rest): (Vec<_>, Vec<_>) = pending.into_iter().partition(|(pos, _)| *pos <= last);
    taken.sort_unstable_by_key(|(pos, _)| *pos);
    let next = if rest.is_empty() { 0 } else { last.wrapping_add(1) };
    (next, taken.into_iter().map(|(_, it)| it).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn scan_all(
        set: &mut BTreeSet<Vec<u8>>,
        count: usize,
        mut mutate: impl FnMut(&mut BTreeSet<Vec<u8>>, usize),
    ) -> BTreeSet<Vec<u8>> {
        let mut seen = BTreeSet::new();
        let mut cursor = 0u64;
        let mut calls = 0;
        loop {
            let (next, got) = step(set.iter().cloned(), |m| m.as_slice(), cursor, count);
            seen.extend(got);
            calls += 1;
            mutate(set, calls);
            if next == 0 {
                return seen;
            }
            cursor = next;
            assert!(calls < 100_000, "scan does not end");
        }
    }

    #[test]
    fn a_full_scan_returns_everything_once_per_pass() {
        let mut set: BTreeSet<Vec<u8>> = (0..1000).map(|i| i.to_string().into_bytes()).collect();
        let all = set.clone();
        assert_eq!(scan_all(&mut set, 10, |_, _| {}), all);
    }

    #[test]
    fn elements_present_throughout_survive_removals_and_inserts() {
        for seed in 0..20usize {
            let mut set: BTreeSet<Vec<u8>> = (0..(101 + seed * 37)).map(|i| i.to_string().into_bytes()).collect();
            let keep: BTreeSet<Vec<u8>> = (0..100).map(|i| i.to_string().into_bytes()).collect();
            let seen = scan_all(&mut set, 10, |s, call| {
                if call == seed % 7 + 1 {
                    s.retain(|m| keep.contains(m));
                    s.extend((5000..5100).map(|i| format!("{i}").into_bytes()));
                }
            });
            assert!(keep.is_subset(&seen), "seed {seed}: an element present throughout was skipped");
        }
    }

    #[test]
    fn big_collections_take_a_bounded_number_of_calls() {
        let mut set: BTreeSet<Vec<u8>> = (0..100_000).map(|i| i.to_string().into_bytes()).collect();
        let mut calls = 0;
        scan_all(&mut set, 10, |_, _| calls += 1);
        assert!(calls <= 2 * MIN_FRACTION_DIVISOR + 2, "{calls} calls");
    }
}
