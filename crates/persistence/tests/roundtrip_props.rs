//! Property tests: every value type round-trips through every encoding the
//! codec can write (DUMP payloads, RDB files, legacy types), and the decoder
//! never panics on garbage.

use std::collections::{BTreeMap, BTreeSet};

use ferrocache_persistence::rdb::encode::{choose_type, write_value};
use ferrocache_persistence::rdb::{
    dump_payload_with, listpack, lzf, rdb_type, read_value, restore_payload, EncodeOptions, EncodingHint, EntryMeta,
    RdbEvent, RdbReader, RdbValue, RdbWriter, RdbWriterOptions, StreamConsumer, StreamEntry, StreamGroup, StreamId,
    StreamPendingEntry, StreamValue,
};
use proptest::prelude::*;

fn elem() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => proptest::collection::vec(any::<u8>(), 0..24),
        2 => any::<i64>().prop_map(|i| i.to_string().into_bytes()),
        2 => (-200i64..200).prop_map(|i| i.to_string().into_bytes()),
        1 => "[a-c]{0,3}".prop_map(|s| s.into_bytes()),
        1 => (0usize..3000, any::<u8>()).prop_map(|(n, b)| vec![b; n]),
        1 => proptest::collection::vec(any::<u8>(), 60..300),
        1 => Just(b"007".to_vec()),
        1 => Just(b"-0".to_vec()),
    ]
}

fn score() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => any::<f64>().prop_filter("no nan", |f| !f.is_nan()),
        2 => (-1000i64..1000).prop_map(|i| i as f64),
        1 => (-1000i64..1000).prop_map(|i| i as f64 / 8.0),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => any::<i64>().prop_map(|i| i as f64),
    ]
    .prop_map(|f| if f == 0.0 { 0.0 } else { f })
}

fn stream_value() -> impl Strategy<Value = StreamValue> {
    (
        proptest::collection::vec(
            (0u64..4, 0u64..3, proptest::collection::vec((elem(), elem()), 1..4), any::<bool>()),
            0..150,
        ),
        proptest::collection::vec(
            (
                "[a-z]{1,6}",
                any::<i64>(),
                proptest::collection::vec(("[a-d]{1,3}", any::<i64>()), 0..4),
                proptest::collection::vec((any::<prop::sample::Index>(), 0u64..5, any::<i64>(), 0usize..5), 0..8),
            ),
            0..3,
        ),
        0u64..10,
    )
        .prop_map(|(raw, groups, extra_added)| {
            let mut id = StreamId::new(1_600_000_000_000, 0);
            let mut entries = Vec::new();
            let mut shared: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
            for (dms, dseq, fields, same) in raw {
                id = if dms == 0 { StreamId::new(id.ms, id.seq + 1 + dseq) } else { StreamId::new(id.ms + dms, dseq) };
                let fields = if same && !shared.is_empty() {
                    shared.iter().map(|(f, _)| (f.clone(), fields[0].1.clone())).collect()
                } else {
                    shared = fields.clone();
                    fields
                };
                entries.push(StreamEntry { id, fields });
            }
            let mut s = StreamValue::from_entries(entries);
            s.entries_added += extra_added;
            if extra_added > 0 {
                s.max_deleted_entry_id = StreamId::new(7, 7);
            }
            let mut seen = BTreeSet::new();
            for (name, read, consumers, pel) in groups {
                if !seen.insert(name.clone()) {
                    continue;
                }
                let mut cnames = BTreeMap::new();
                for (c, t) in consumers {
                    cnames.entry(c.into_bytes()).or_insert(t);
                }
                let cvec: Vec<Vec<u8>> = cnames.keys().cloned().collect();
                let mut pending = BTreeMap::new();
                let mut owned: BTreeMap<Vec<u8>, Vec<StreamId>> = BTreeMap::new();
                for (idx, count, t, owner) in pel {
                    if s.entries.is_empty() {
                        break;
                    }
                    let pid = s.entries[idx.index(s.entries.len())].id;
                    if pending.contains_key(&pid) {
                        continue;
                    }
                    let consumer = cvec.get(owner).cloned();
                    if let Some(c) = &consumer {
                        owned.entry(c.clone()).or_default().push(pid);
                    }
                    pending
                        .insert(pid, StreamPendingEntry { id: pid, delivery_time: t, delivery_count: count, consumer });
                }
                s.groups.push(StreamGroup {
                    name: name.into_bytes(),
                    last_id: s.last_id,
                    entries_read: if read < 0 { -1 } else { read % 1000 },
                    pending: pending.into_values().collect(),
                    consumers: cnames
                        .into_iter()
                        .map(|(n, t)| StreamConsumer {
                            pending: owned.remove(&n).unwrap_or_default(),
                            name: n,
                            seen_time: t,
                        })
                        .collect(),
                });
            }
            s
        })
}

fn unique<T: Clone, K: Ord + Clone>(v: Vec<T>, key: impl Fn(&T) -> K) -> Vec<T> {
    let mut seen = BTreeSet::new();
    v.into_iter().filter(|x| seen.insert(key(x))).collect()
}

fn value() -> impl Strategy<Value = RdbValue> {
    let n = 0..40usize;
    prop_oneof![
        elem().prop_map(RdbValue::String),
        proptest::collection::vec(elem(), 0..300).prop_map(RdbValue::List),
        proptest::collection::vec(elem(), n.clone()).prop_map(|v| RdbValue::Set(unique(v, |x| x.clone()))),
        proptest::collection::vec(any::<i64>().prop_map(|i| i.to_string().into_bytes()), 0..40)
            .prop_map(|v| RdbValue::Set(unique(v, |x| x.clone()))),
        proptest::collection::vec((elem(), score()), n.clone())
            .prop_map(|v| RdbValue::ZSet(unique(v, |x| x.0.clone()))),
        proptest::collection::vec((elem(), elem()), n).prop_map(|v| RdbValue::Hash(unique(v, |x| x.0.clone()))),
        stream_value().prop_map(RdbValue::Stream),
    ]
}

fn options() -> impl Strategy<Value = EncodeOptions> {
    (any::<bool>(), 0usize..20, 0usize..70, -5i32..6, 0usize..600, 0usize..12).prop_map(
        |(compression, entries, val, fill, node_bytes, node_entries)| EncodeOptions {
            compression,
            hash_max_listpack_entries: entries,
            hash_max_listpack_value: val,
            zset_max_listpack_entries: entries,
            zset_max_listpack_value: val,
            set_max_intset_entries: entries,
            list_max_listpack_size: if fill == 0 { -2 } else { fill },
            stream_node_max_bytes: node_bytes,
            stream_node_max_entries: node_entries,
        },
    )
}

fn hint() -> impl Strategy<Value = EncodingHint> {
    prop_oneof![Just(EncodingHint::Auto), Just(EncodingHint::Compact), Just(EncodingHint::Plain)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn dump_restore_roundtrip(v in value(), h in hint(), opts in options()) {
        let p = dump_payload_with(&v, h, &opts);
        let back = restore_payload(&p).unwrap();
        prop_assert_eq!(back.normalized(), v.normalized());
    }

    #[test]
    fn default_options_roundtrip(v in value()) {
        let p = dump_payload_with(&v, EncodingHint::Auto, &EncodeOptions::default());
        let back = restore_payload(&p).unwrap();
        prop_assert_eq!(back.normalized(), v.normalized());
        // Encoding is idempotent: re-encoding the decoded value gives the same bytes.
        prop_assert_eq!(dump_payload_with(&back, EncodingHint::Auto, &EncodeOptions::default()), p);
    }

    #[test]
    fn legacy_types_roundtrip(v in value(), compression in any::<bool>()) {
        let opts = EncodeOptions { compression, ..Default::default() };
        let types: &[u8] = match &v {
            RdbValue::List(_) => &[rdb_type::LIST, rdb_type::LIST_ZIPLIST, rdb_type::LIST_QUICKLIST],
            RdbValue::ZSet(_) => &[rdb_type::ZSET, rdb_type::ZSET_ZIPLIST],
            RdbValue::Hash(_) => &[rdb_type::HASH_ZIPLIST, rdb_type::HASH_ZIPMAP],
            RdbValue::Stream(_) => &[rdb_type::STREAM_LISTPACKS],
            _ => &[],
        };
        for &ty in types {
            let mut out = Vec::new();
            write_value(&mut out, &v, ty, &opts).unwrap();
            let mut r = out.as_slice();
            let back = read_value(&mut r, ty).unwrap();
            prop_assert!(r.is_empty());
            match (&back, &v) {
                (RdbValue::Stream(a), RdbValue::Stream(b)) => {
                    prop_assert_eq!(&a.entries, &b.entries);
                    prop_assert_eq!(a.last_id, b.last_id);
                    prop_assert_eq!(a.groups.len(), b.groups.len());
                }
                _ => prop_assert_eq!(back.normalized(), v.normalized(), "type {}", ty),
            }
        }
    }

    #[test]
    fn rdb_file_roundtrip(vals in proptest::collection::vec((value(), proptest::option::of(any::<i64>()), proptest::option::of(any::<u8>()), 0u64..3), 0..12), checksum in any::<bool>()) {
        let opts = RdbWriterOptions { checksum, ..Default::default() };
        let mut w = RdbWriter::with_options(Vec::new(), opts).unwrap();
        w.write_default_aux(1, 2).unwrap();
        w.write_function(b"#!lua name=x\n").unwrap();
        let mut db = u64::MAX;
        let mut sorted = vals.clone();
        sorted.sort_by_key(|x| x.3);
        for (i, (v, exp, freq, d)) in sorted.iter().enumerate() {
            if *d != db {
                db = *d;
                w.select_db(db).unwrap();
                w.resize_db(3, 1).unwrap();
            }
            let meta = EntryMeta { expire_ms: *exp, lfu_freq: *freq, lru_idle: None, hint: EncodingHint::Auto };
            w.write_entry(format!("key{i}").as_bytes(), v, &meta).unwrap();
        }
        let file = w.finish().unwrap();
        let events: Vec<RdbEvent> = RdbReader::new(file.as_slice()).unwrap().map(|e| e.unwrap()).collect();
        let got: Vec<_> = events.iter().filter_map(|e| match e { RdbEvent::Entry(e) => Some(e.clone()), _ => None }).collect();
        prop_assert_eq!(got.len(), sorted.len());
        for (i, (e, (v, exp, freq, d))) in got.iter().zip(&sorted).enumerate() {
            prop_assert_eq!(&e.key, &format!("key{i}").into_bytes());
            prop_assert_eq!(e.value.normalized(), v.normalized());
            prop_assert_eq!(e.expire_ms, *exp);
            prop_assert_eq!(e.lfu_freq, *freq);
            prop_assert_eq!(e.db, *d);
        }
        prop_assert_eq!(events.last(), Some(&RdbEvent::Eof));
        // A flipped byte is detected by the checksum (or fails parsing).
        if checksum && file.len() > 30 {
            let mut bad = file.clone();
            let pos = 9 + (bad.len() - 18) / 2;
            bad[pos] ^= 0x20;
            let res: Result<Vec<_>, _> = match RdbReader::new(bad.as_slice()) {
                Ok(r) => r.collect(),
                Err(e) => Err(e),
            };
            prop_assert!(res.is_err());
        }
    }

    #[test]
    fn decoder_never_panics(ty in 0u8..22, data in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut r = data.as_slice();
        let _ = read_value(&mut r, ty);
    }

    #[test]
    fn decoder_never_panics_on_mutated_payloads(v in value(), flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        let mut out = Vec::new();
        let ty = choose_type(&v, EncodingHint::Auto, &EncodeOptions::default());
        write_value(&mut out, &v, ty, &EncodeOptions::default()).unwrap();
        if !out.is_empty() {
            for (i, b) in flips {
                let n = out.len();
                out[i.index(n)] ^= b;
            }
        }
        let mut r = out.as_slice();
        let _ = read_value(&mut r, ty);
    }

    #[test]
    fn lzf_roundtrip(data in proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), any::<u8>()], 1..5000)) {
        if let Some(c) = lzf::compress(&data, data.len() + 16) {
            prop_assert_eq!(lzf::decompress(&c, data.len()).unwrap(), data);
        }
    }

    #[test]
    fn listpack_roundtrip(items in proptest::collection::vec(elem(), 0..100)) {
        let lp = listpack::build(items.iter().map(|v| v.as_slice()));
        let back: Vec<Vec<u8>> = listpack::parse(&lp).unwrap().into_iter().map(|e| e.into_bytes()).collect();
        prop_assert_eq!(back, items);
    }
}
