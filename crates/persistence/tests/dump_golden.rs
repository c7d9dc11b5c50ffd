//! DUMP/RESTORE payload tests against a real redis-server 7.0.
//! Skipped (with a message) when `redis-server` is not on PATH.

mod common;

use common::{redis_available, RedisServer, Reply, TempDir};
use ferrocache_persistence::rdb::{dump_payload, restore_payload, RdbValue, StreamEntry, StreamId, StreamValue};

fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

struct Case {
    key: String,
    setup: Vec<Vec<Vec<u8>>>,
    expected: RdbValue,
    /// Our encoding of `expected` must equal redis's DUMP byte for byte.
    exact_from_model: bool,
    /// Re-encoding the decoded payload must equal redis's DUMP.
    exact_reencode: bool,
    encoding: &'static str,
}

fn case(key: &str, setup: Vec<Vec<Vec<u8>>>, expected: RdbValue, encoding: &'static str) -> Case {
    Case { key: key.into(), setup, expected, exact_from_model: true, exact_reencode: true, encoding }
}

fn cmd(parts: &[&[u8]]) -> Vec<Vec<u8>> {
    parts.iter().map(|p| p.to_vec()).collect()
}

fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn string_cases() -> Vec<Case> {
    let vals: Vec<(&str, Vec<u8>, &str)> = vec![
        ("s_hello", b("hello"), "embstr"),
        ("s_empty", b(""), "embstr"),
        ("s_int8", b("12"), "int"),
        ("s_int16", b("-300"), "int"),
        ("s_int32", b("100000"), "int"),
        ("s_int64", b("12345678901234"), "int"),
        ("s_min", b("-9223372036854775808"), "int"),
        ("s_leading0", b("007"), "embstr"),
        ("s_float", b("3.14"), "embstr"),
        ("s_21", b("aaaaaaaaaaaaaaaaaaaaa"), "embstr"),
        ("s_lzf", vec![b'a'; 100], "raw"),
        ("s_text", b("the quick brown fox jumps over the lazy dog; the quick brown fox jumps again and again"), "raw"),
        ("s_random", pseudo_random(200, 7), "raw"),
        ("s_big", (0..20000u32).flat_map(|i| format!("{} ", i % 97).into_bytes()).collect(), "raw"),
    ];
    vals.into_iter()
        .map(|(k, v, enc)| case(k, vec![cmd(&[b"SET", k.as_bytes(), &v])], RdbValue::String(v), enc))
        .collect()
}

fn list_cases() -> Vec<Case> {
    let mut out = Vec::new();
    let small: Vec<Vec<u8>> =
        ["a", "b", "1", "2", "300", "-5", "hello world", "", "70000", "9999999999"].iter().map(|s| b(s)).collect();
    let mut c = vec![b"RPUSH".to_vec(), b"l_small".to_vec()];
    c.extend(small.clone());
    out.push(case("l_small", vec![c], RdbValue::List(small), "quicklist"));

    let big: Vec<Vec<u8>> = (0..3000).map(|i| format!("element-{i}").into_bytes()).collect();
    let setup = big
        .chunks(500)
        .map(|ch| {
            let mut c = vec![b"RPUSH".to_vec(), b"l_big".to_vec()];
            c.extend(ch.iter().cloned());
            c
        })
        .collect();
    out.push(case("l_big", setup, RdbValue::List(big), "quicklist"));

    let fat: Vec<Vec<u8>> = (0..30).map(|i| pseudo_random(700 + i * 13, i as u64 + 1)).collect();
    let setup = fat.iter().map(|e| vec![b"RPUSH".to_vec(), b"l_fat".to_vec(), e.clone()]).collect();
    out.push(case("l_fat", setup, RdbValue::List(fat), "quicklist"));
    out
}

fn hash_cases() -> Vec<Case> {
    let mut out = Vec::new();
    let small = vec![
        (b("f1"), b("v1")),
        (b("num"), b("123")),
        (b("neg"), b("-7")),
        (b("big"), b("9999999999")),
        (b("12"), b("")),
        (b("v64"), vec![b'x'; 64]),
    ];
    let mut c = vec![b"HSET".to_vec(), b"h_small".to_vec()];
    for (f, v) in &small {
        c.push(f.clone());
        c.push(v.clone());
    }
    out.push(case("h_small", vec![c], RdbValue::Hash(small), "listpack"));

    let long = vec![(b("a"), b("1")), (b("v65"), vec![b'y'; 65])];
    let mut c = vec![b"HSET".to_vec(), b"h_longval".to_vec()];
    for (f, v) in &long {
        c.push(f.clone());
        c.push(v.clone());
    }
    let mut cs = case("h_longval", vec![c], RdbValue::Hash(long), "hashtable");
    cs.exact_from_model = false;
    out.push(cs);

    let big: Vec<(Vec<u8>, Vec<u8>)> =
        (0..600).map(|i| (format!("field:{i}").into_bytes(), format!("value {i}").into_bytes())).collect();
    let mut c = vec![b"HSET".to_vec(), b"h_big".to_vec()];
    for (f, v) in &big {
        c.push(f.clone());
        c.push(v.clone());
    }
    let mut cs = case("h_big", vec![c], RdbValue::Hash(big), "hashtable");
    cs.exact_from_model = false;
    out.push(cs);
    out
}

fn set_cases() -> Vec<Case> {
    let mut out = Vec::new();
    let mk = |key: &str, members: Vec<Vec<u8>>, enc: &'static str, exact: bool| {
        let mut c = vec![b"SADD".to_vec(), key.as_bytes().to_vec()];
        c.extend(members.clone());
        let mut cs = case(key, vec![c], RdbValue::Set(members), enc);
        cs.exact_from_model = exact;
        cs
    };
    out.push(mk("set_int16", ["3", "1", "2", "-5", "100"].iter().map(|s| b(s)).collect(), "intset", true));
    out.push(mk("set_int32", ["1", "70000", "-70000"].iter().map(|s| b(s)).collect(), "intset", true));
    out.push(mk(
        "set_int64",
        ["1", "9223372036854775807", "-9223372036854775808"].iter().map(|s| b(s)).collect(),
        "intset",
        true,
    ));
    out.push(mk("set_str", ["a", "b", "c", "1"].iter().map(|s| b(s)).collect(), "hashtable", false));
    out.push(mk("set_manyints", (0..600).map(|i| i.to_string().into_bytes()).collect(), "hashtable", false));
    out
}

fn zset_cases() -> Vec<Case> {
    let mut out = Vec::new();
    let mk = |key: &str, members: Vec<(Vec<u8>, f64)>, score_strs: Vec<String>, enc: &'static str| {
        let mut c = vec![b"ZADD".to_vec(), key.as_bytes().to_vec()];
        for ((m, _), s) in members.iter().zip(&score_strs) {
            c.push(s.clone().into_bytes());
            c.push(m.clone());
        }
        case(key, vec![c], RdbValue::ZSet(members), enc)
    };
    let small = vec![
        (b("a"), 1.0),
        (b("b"), 2.5),
        (b("c"), -3.0),
        (b("d"), 1e20),
        (b("e"), 0.1),
        (b("f"), f64::INFINITY),
        (b("g"), f64::NEG_INFINITY),
        (b("h"), 1.0),
        (b("123"), 123456789012.0),
        (b("tiny"), 1.5e-10),
    ];
    let strs = ["1", "2.5", "-3", "1e20", "0.1", "+inf", "-inf", "1", "123456789012", "1.5e-10"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    out.push(mk("z_small", small, strs, "listpack"));
    let big: Vec<(Vec<u8>, f64)> =
        (0..200).map(|i| (format!("member-{i}").into_bytes(), (i as f64) * 0.7 - 30.0)).collect();
    let strs = big.iter().map(|(_, s)| format!("{s:?}")).collect();
    out.push(mk("z_big", big, strs, "skiplist"));
    let long = vec![(b("a"), 1.0), (vec![b'm'; 65], 2.0)];
    out.push(mk("z_longmember", long, vec!["1".into(), "2".into()], "skiplist"));
    out
}

fn stream_cases() -> Vec<Case> {
    let mut out = Vec::new();
    let mut entries = Vec::new();
    let mut setup = Vec::new();
    for i in 0..250u64 {
        let id = StreamId::new(1000 + i / 3, i % 3);
        let fields: Vec<(Vec<u8>, Vec<u8>)> = if i % 17 == 5 {
            vec![(b("other"), b("x")), (b("n"), i.to_string().into_bytes())]
        } else {
            vec![(b("sensor"), format!("s-{}", i % 4).into_bytes()), (b("temp"), (i * 3).to_string().into_bytes())]
        };
        let mut c = vec![b"XADD".to_vec(), b"st_plain".to_vec(), id.to_string().into_bytes()];
        for (f, v) in &fields {
            c.push(f.clone());
            c.push(v.clone());
        }
        setup.push(c);
        entries.push(StreamEntry { id, fields });
    }
    out.push(case("st_plain", setup, RdbValue::Stream(StreamValue::from_entries(entries)), "stream"));

    // Empty stream created with MKSTREAM, with a group.
    let mut cs = case(
        "st_empty",
        vec![cmd(&[b"XGROUP", b"CREATE", b"st_empty", b"g", b"$", b"MKSTREAM"])],
        RdbValue::Stream(StreamValue {
            groups: vec![ferrocache_persistence::rdb::StreamGroup {
                name: b("g"),
                last_id: StreamId::default(),
                entries_read: -1,
                pending: vec![],
                consumers: vec![],
            }],
            ..Default::default()
        }),
        "stream",
    );
    cs.exact_from_model = true;
    out.push(cs);
    out
}

fn dump(c: &mut common::Client, key: &str) -> Vec<u8> {
    c.cmd(&[b"DUMP", key.as_bytes()]).bulk()
}

#[test]
fn dump_payloads_match_redis() {
    if !redis_available() {
        return;
    }
    let dir = TempDir::new("dump");
    let srv = RedisServer::start(dir.path(), "dump.rdb", &["--sanitize-dump-payload", "yes"]);
    let mut c = srv.client();
    let mut cases = string_cases();
    cases.extend(list_cases());
    cases.extend(hash_cases());
    cases.extend(set_cases());
    cases.extend(zset_cases());
    cases.extend(stream_cases());
    let mut checked = 0;
    for cs in &cases {
        for s in &cs.setup {
            let a: Vec<&[u8]> = s.iter().map(|x| x.as_slice()).collect();
            c.cmd(&a);
        }
        let enc = c.cmds(&["OBJECT", "ENCODING", &cs.key]).text();
        if cs.encoding != "stream" {
            assert_eq!(enc, cs.encoding, "redis encoding of {}", cs.key);
        }
        let p = dump(&mut c, &cs.key);
        let v = restore_payload(&p).unwrap_or_else(|e| panic!("{}: {e}", cs.key));
        assert_eq!(v.normalized(), cs.expected.normalized(), "decoded value of {}", cs.key);
        if cs.exact_reencode {
            assert_eq!(dump_payload(&v), p, "re-encoded payload of {}", cs.key);
        }
        if cs.exact_from_model {
            assert_eq!(dump_payload(&cs.expected), p, "payload of {} from model", cs.key);
        }
        // RESTORE our payload (deep-sanitized) and compare.
        let newkey = format!("{}__restored", cs.key);
        let ours = dump_payload(&cs.expected);
        let r = c.cmd(&[b"RESTORE", newkey.as_bytes(), b"0", &ours]);
        assert_eq!(r, Reply::Simple("OK".into()), "{}", cs.key);
        let enc2 = c.cmds(&["OBJECT", "ENCODING", &newkey]).text();
        assert_eq!(enc2, enc, "encoding after RESTORE of {}", cs.key);
        let back = restore_payload(&dump(&mut c, &newkey)).unwrap();
        assert_eq!(back.normalized(), cs.expected.normalized(), "{}", cs.key);
        checked += 1;
    }
    assert_eq!(checked, cases.len());
}

#[test]
fn stream_with_groups_and_deletions() {
    if !redis_available() {
        return;
    }
    let dir = TempDir::new("dump-stream");
    let srv = RedisServer::start(dir.path(), "dump.rdb", &["--sanitize-dump-payload", "yes"]);
    let mut c = srv.client();
    for i in 1..=10 {
        c.cmds(&["XADD", "s", &format!("{i}-0"), "f", &format!("v{i}"), "g", "x"]);
    }
    c.cmds(&["XGROUP", "CREATE", "s", "g1", "0"]);
    c.cmds(&["XREADGROUP", "GROUP", "g1", "alice", "COUNT", "3", "STREAMS", "s", ">"]);
    c.cmds(&["XREADGROUP", "GROUP", "g1", "bob", "COUNT", "2", "STREAMS", "s", ">"]);
    c.cmds(&["XACK", "s", "g1", "2-0"]);
    c.cmds(&["XGROUP", "CREATE", "s", "g2", "$"]);
    c.cmds(&["XGROUP", "CREATECONSUMER", "s", "g2", "carol"]);
    let p = dump(&mut c, "s");
    let v = restore_payload(&p).unwrap();
    assert_eq!(dump_payload(&v), p, "re-encoding with groups is byte-identical");
    let RdbValue::Stream(s) = &v else { panic!("not a stream") };
    assert_eq!(s.entries.len(), 10);
    assert_eq!(s.last_id, StreamId::new(10, 0));
    assert_eq!(s.first_id, StreamId::new(1, 0));
    assert_eq!(s.entries_added, 10);
    assert_eq!(s.groups.len(), 2);
    let g1 = &s.groups[0];
    assert_eq!(g1.name, b("g1"));
    assert_eq!(g1.last_id, StreamId::new(5, 0));
    assert_eq!(g1.entries_read, 5);
    let pel: Vec<_> = g1.pending.iter().map(|p| (p.id.ms, p.consumer.clone().unwrap())).collect();
    assert_eq!(pel, vec![(1, b("alice")), (3, b("alice")), (4, b("bob")), (5, b("bob"))]);
    assert!(g1.pending.iter().all(|p| p.delivery_count == 1 && p.delivery_time > 0));
    assert_eq!(g1.consumers.len(), 2);
    assert_eq!(g1.consumers[0].pending, vec![StreamId::new(1, 0), StreamId::new(3, 0)]);
    let g2 = &s.groups[1];
    assert_eq!(g2.last_id, StreamId::new(10, 0));
    assert_eq!(g2.consumers[0].name, b("carol"));
    assert!(g2.pending.is_empty());

    // Deletions leave tombstones in redis's listpacks; they are not entries.
    c.cmds(&["XDEL", "s", "7-0", "10-0"]);
    let p = dump(&mut c, "s");
    let v = restore_payload(&p).unwrap();
    let RdbValue::Stream(s2) = &v else { panic!() };
    let ids: Vec<u64> = s2.entries.iter().map(|e| e.id.ms).collect();
    assert_eq!(ids, vec![1, 2, 3, 4, 5, 6, 8, 9]);
    assert_eq!(s2.max_deleted_entry_id, StreamId::new(10, 0));
    assert_eq!(s2.last_id, StreamId::new(10, 0));
    // Our (tombstone-free) encoding is accepted by redis and means the same.
    let ours = dump_payload(&v);
    c.cmd(&[b"RESTORE", b"s2", b"0", &ours]);
    let back = restore_payload(&dump(&mut c, "s2")).unwrap();
    assert_eq!(back.normalized(), v.normalized());
    let info = c.cmds(&["XINFO", "GROUPS", "s2"]).array();
    assert_eq!(info.len(), 2);
}

#[test]
fn restore_errors_match_redis() {
    if !redis_available() {
        return;
    }
    let dir = TempDir::new("dump-err");
    let srv = RedisServer::start(dir.path(), "dump.rdb", &[]);
    let mut c = srv.client();
    let mut p = dump_payload(&RdbValue::String(b("hello")));
    let n = p.len();
    p[n - 3] ^= 0x55;
    let ours = restore_payload(&p).unwrap_err();
    let theirs = c.cmd_err(&[b"RESTORE", b"k", b"0", &p]);
    assert_eq!(ours.redis_reply(), theirs);
}

trait ErrCmd {
    fn cmd_err(&mut self, args: &[&[u8]]) -> String;
}

impl ErrCmd for common::Client {
    fn cmd_err(&mut self, args: &[&[u8]]) -> String {
        match self.try_cmd(args).unwrap() {
            Reply::Error(e) => e,
            other => panic!("expected error, got {other:?}"),
        }
    }
}
