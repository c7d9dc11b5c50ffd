//! Property tests for the list and set value types against simple reference models
//! (VecDeque, BTreeSet), including the set's intset -> hashtable conversion.

use ferrocache_engine::smallbytes::SmallBytes;
use ferrocache_engine::value::{parse_i64_exact, EncodingLimits, ListValue, SetValue};
use proptest::prelude::*;
use std::collections::{BTreeSet, VecDeque};

fn member() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (-20i64..20).prop_map(|i| i.to_string().into_bytes()),
        any::<i64>().prop_map(|i| i.to_string().into_bytes()),
        prop::sample::select(vec![
            "007",
            "-0",
            "+1",
            " 1",
            "1 ",
            "abc",
            "",
            "9223372036854775807",
            "-9223372036854775808",
            "9223372036854775808",
            "0x10",
            "1.0"
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
        prop::collection::vec(any::<u8>(), 0..6),
    ]
}

#[derive(Debug, Clone)]
enum SetOp {
    Insert(Vec<u8>),
    Remove(Vec<u8>),
    Contains(Vec<u8>),
}

fn set_op() -> impl Strategy<Value = SetOp> {
    prop_oneof![
        4 => member().prop_map(SetOp::Insert),
        2 => member().prop_map(SetOp::Remove),
        2 => member().prop_map(SetOp::Contains),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// SetValue behaves as a BTreeSet of byte strings; it is an intset exactly while every
    /// member ever inserted was a canonical 64-bit integer and the count stayed within
    /// set-max-intset-entries (the conversion is one-way, as in Redis).
    #[test]
    fn set_matches_btreeset(max_intset in 0usize..8, ops in prop::collection::vec(set_op(), 0..80)) {
        let lim = EncodingLimits { set_max_intset_entries: max_intset, ..Default::default() };
        let mut s = SetValue::default();
        let mut model: BTreeSet<Vec<u8>> = BTreeSet::new();
        let mut intset = true;
        for op in ops {
            match op {
                SetOp::Insert(m) => {
                    let new = !model.contains(&m);
                    if intset && new && (parse_i64_exact(&m).is_none() || model.len() >= max_intset) {
                        intset = false;
                    }
                    prop_assert_eq!(s.insert(&m, &lim), new, "insert {:?}", m);
                    model.insert(m);
                }
                SetOp::Remove(m) => prop_assert_eq!(s.remove(&m), model.remove(&m), "remove {:?}", m),
                SetOp::Contains(m) => prop_assert_eq!(s.contains(&m), model.contains(&m), "contains {:?}", m),
            }
            prop_assert_eq!(s.len(), model.len());
            prop_assert_eq!(s.is_empty(), model.is_empty());
            prop_assert_eq!(s.encoding(), if intset { "intset" } else { "hashtable" });
            let mut members = s.members();
            if intset {
                // an intset lists its members in integer order
                let ints: Vec<i64> = members.iter().map(|m| parse_i64_exact(m).unwrap()).collect();
                prop_assert!(ints.windows(2).all(|w| w[0] < w[1]));
            }
            members.sort();
            prop_assert_eq!(members, model.iter().cloned().collect::<Vec<_>>());
        }
        // the values survive a deep clone unchanged
        let c = s.clone();
        prop_assert_eq!(c.len(), s.len());
        prop_assert_eq!(c.encoding(), s.encoding());
    }
}

#[derive(Debug, Clone)]
enum ListOp {
    Push(bool, Vec<u8>),
    Pop(bool),
    Set(usize, Vec<u8>),
    Insert(usize, Vec<u8>),
    Remove(usize),
    Trim(usize, usize),
}

fn list_op() -> impl Strategy<Value = ListOp> {
    prop_oneof![
        4 => (any::<bool>(), member()).prop_map(|(l, m)| ListOp::Push(l, m)),
        2 => any::<bool>().prop_map(ListOp::Pop),
        1 => (0usize..20, member()).prop_map(|(i, m)| ListOp::Set(i, m)),
        1 => (0usize..20, member()).prop_map(|(i, m)| ListOp::Insert(i, m)),
        1 => (0usize..20).prop_map(ListOp::Remove),
        1 => (0usize..20, 0usize..20).prop_map(|(a, b)| ListOp::Trim(a, b)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// ListValue (a deque of SmallBytes with a byte count kept by the list commands) against a
    /// VecDeque<Vec<u8>>: same elements in the same order, the byte count matching, and the
    /// encoding always "quicklist" (Redis 7.0).
    #[test]
    fn list_matches_vecdeque(ops in prop::collection::vec(list_op(), 0..80)) {
        let mut l = ListValue::default();
        let mut model: VecDeque<Vec<u8>> = VecDeque::new();
        for op in ops {
            match op {
                ListOp::Push(left, m) => {
                    l.bytes += m.len();
                    if left { l.items.push_front(SmallBytes::new(&m)) } else { l.items.push_back(SmallBytes::new(&m)) }
                    if left { model.push_front(m) } else { model.push_back(m) }
                }
                ListOp::Pop(left) => {
                    let got = if left { l.items.pop_front() } else { l.items.pop_back() };
                    if let Some(g) = &got {
                        l.bytes -= g.len();
                    }
                    let want = if left { model.pop_front() } else { model.pop_back() };
                    prop_assert_eq!(got.map(|g| g.to_vec()), want);
                }
                ListOp::Set(i, m) if i < model.len() => {
                    l.bytes = l.bytes + m.len() - l.items[i].len();
                    l.items[i] = SmallBytes::new(&m);
                    model[i] = m;
                }
                ListOp::Insert(i, m) if i <= model.len() => {
                    l.bytes += m.len();
                    l.items.insert(i, SmallBytes::new(&m));
                    model.insert(i, m);
                }
                ListOp::Remove(i) if i < model.len() => {
                    let g = l.items.remove(i).unwrap();
                    l.bytes -= g.len();
                    prop_assert_eq!(g.to_vec(), model.remove(i).unwrap());
                }
                ListOp::Trim(a, b) => {
                    let (a, b) = (a.min(model.len()), b.min(model.len()));
                    let (a, b) = (a.min(b), a.max(b));
                    l.items = l.items.iter().skip(a).take(b - a).cloned().collect();
                    l.bytes = l.items.iter().map(|x| x.len()).sum();
                    model = model.iter().skip(a).take(b - a).cloned().collect();
                }
                _ => {}
            }
            prop_assert_eq!(l.len(), model.len());
            prop_assert_eq!(l.is_empty(), model.is_empty());
            prop_assert_eq!(l.encoding(), "quicklist");
            prop_assert_eq!(l.bytes, model.iter().map(|x| x.len()).sum::<usize>());
            let items: Vec<Vec<u8>> = l.items.iter().map(|x| x.to_vec()).collect();
            prop_assert_eq!(items, model.iter().cloned().collect::<Vec<_>>());
            prop_assert!(l.mem_usage() >= model.iter().filter(|x| x.len() > 22).map(|x| x.len()).sum::<usize>());
        }
    }
}
